use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    invoice_defaults_come_from_the_customer,
    money_is_exact_or_refused,
    list_filters,
    batch_upsert_resolves_customers_and_isolates_bad_items,
    a_batch_of_several_statements_gives_each_item_its_own_row,
    amount_changes_respect_what_was_applied,
    a_document_with_money_applied_keeps_its_kind,
    cancel_and_write_off_need_a_manager_and_a_reason,
    statement_ages_open_items_per_currency,
);

async fn invoice_defaults_come_from_the_customer(app: TestApp) {
    app.post(
        "/v1/customers",
        &json!({"external_id": "C-9", "name": "Nine", "currency": "PLN", "payment_terms_days": 14}),
    )
    .await
    .expect(201);
    let r = app
        .post(
            "/v1/invoices",
            &json!({"customer_external_id": "C-9", "number": "FV/1", "amount": "1230.00", "tax_amount": "230.00", "issue_date": "2026-10-01"}),
        )
        .await
        .expect(201);
    let b = &r.body;
    assert_eq!(b["currency"], "PLN");
    assert_eq!(b["due_date"], "2026-10-15");
    assert_eq!(b["kind"], "invoice");
    assert_eq!(b["status"], "open");
    assert_eq!(b["open_amount"], "1230.00");
    assert_eq!(b["delivered_on"], serde_json::Value::Null);
    let id = b["id"].as_str().expect("id");
    let aged = app
        .get(&format!("/v1/invoices/{id}?as_of=2026-10-25"))
        .await
        .expect(200);
    assert_eq!(aged.body["days_overdue"], 10);
    let early = app
        .get(&format!("/v1/invoices/{id}?as_of=2026-10-01"))
        .await
        .expect(200);
    assert_eq!(early.body["days_overdue"], 0);
    app.get(&format!("/v1/invoices/{id}?as_of=tomorrow"))
        .await
        .expect_problem(422);
}

async fn money_is_exact_or_refused(app: TestApp) {
    let c = app.customer("C-M").await;
    let base = |amount: &str, currency: &str| json!({"customer_id": c, "number": "N", "amount": amount, "currency": currency, "issue_date": "2026-01-01"});
    for (amount, currency, field) in [
        ("10.001", "EUR", "amount"),
        ("10.5", "JPY", "amount"),
        ("-10.00", "EUR", "amount"),
        ("0", "EUR", "amount"),
        ("1e3", "EUR", "amount"),
        ("10.00", "ABC", "currency"),
    ] {
        let r = app
            .post("/v1/invoices", &base(amount, currency))
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec![field], "{amount} {currency}");
    }
    let ok = app.post("/v1/invoices", &base("1.234", "BHD")).await.expect(201);
    assert_eq!(ok.body["amount"], "1.234");
    let ok = app.post("/v1/invoices", &base("1500", "JPY")).await.expect(201);
    assert_eq!(ok.body["amount"], "1500");
    // A number instead of a string is a malformed body.
    app.post(
        "/v1/invoices",
        &json!({"customer_id": c, "number": "N", "amount": 10.5, "issue_date": "2026-01-01"}),
    )
    .await
    .expect_problem(400);
    let r = app
        .post(
            "/v1/invoices",
            &json!({"customer_id": "cus_999", "number": "N", "amount": "1", "issue_date": "2026-01-01"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["customer_id"]);
    let r = app
        .post("/v1/invoices", &json!({"customer_id": c, "number": "N", "amount": "1", "issue_date": "2026-02-01", "due_date": "2026-01-01"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["due_date"]);
}

async fn list_filters(app: TestApp) {
    let a = app.customer("A").await;
    let b = app.customer("B").await;
    app.invoice(&a, "A-1", "100.00", "2026-01-31").await;
    app.invoice(&a, "A-2", "200.00", "2026-03-31").await;
    let b1 = app.invoice(&b, "B-1", "300.00", "2026-02-28").await;
    app.post(&format!("/v1/invoices/{b1}/cancel"), &json!({"reason": "duplicate"}))
        .await
        .expect(200);
    let count = |body: &serde_json::Value| body["items"].as_array().map(Vec::len).unwrap_or(0);
    let r = app.get(&format!("/v1/invoices?customer_id={a}")).await.expect(200);
    assert_eq!(count(&r.body), 2);
    let r = app.get("/v1/invoices?overdue=true&as_of=2026-03-01").await.expect(200);
    assert_eq!(count(&r.body), 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["number"], "A-1");
    assert_eq!(r.body["items"][0]["days_overdue"], 29);
    let r = app.get("/v1/invoices?status=cancelled").await.expect(200);
    assert_eq!(count(&r.body), 1);
    let r = app.get("/v1/invoices?status=open,cancelled").await.expect(200);
    assert_eq!(count(&r.body), 3);
    app.get("/v1/invoices?status=lost").await.expect_problem(422);
    let r = app
        .get("/v1/invoices?due_before=2026-03-01&due_after=2026-01-31")
        .await
        .expect(200);
    assert_eq!(count(&r.body), 1);
    let r = app.get("/v1/invoices?currency=USD").await.expect(200);
    assert_eq!(count(&r.body), 0);
    let r = app.get("/v1/invoices?customer_id=garbage").await.expect(200);
    assert_eq!(count(&r.body), 0);
}

async fn batch_upsert_resolves_customers_and_isolates_bad_items(app: TestApp) {
    let c = app.customer("C-B").await;
    let r = app
        .post(
            "/v1/invoices/batch",
            &json!({"items": [
                {"external_id": "I-1", "customer_external_id": "C-B", "number": "1", "amount": "10.00", "issue_date": "2026-01-01"},
                {"external_id": "I-2", "customer_id": c, "number": "2", "amount": "20.00", "issue_date": "2026-01-01"},
                {"external_id": "I-3", "customer_external_id": "NOPE", "number": "3", "amount": "30.00", "issue_date": "2026-01-01"},
                {"external_id": "I-4", "customer_id": c, "number": "4", "amount": "1.001", "issue_date": "2026-01-01"},
                {"external_id": "I-5", "customer_id": c, "customer_external_id": "C-B", "number": "5", "amount": "5.00", "issue_date": "2026-01-01"}
            ]}),
        )
        .await
        .expect(200);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .expect("r")
        .iter()
        .map(|x| x["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(statuses, vec!["created", "created", "error", "error", "created"]);
    assert_eq!(
        r.body["results"][2]["problem"]["errors"][0]["field"],
        "customer_external_id"
    );
    // Re-sending the same batch changes nothing; a changed amount updates.
    let r = app
        .post(
            "/v1/invoices/batch",
            &json!({"items": [
                {"external_id": "I-1", "customer_external_id": "C-B", "number": "1", "amount": "10.00", "issue_date": "2026-01-01"},
                {"external_id": "I-2", "customer_id": c, "number": "2", "amount": "25.00", "issue_date": "2026-01-01"}
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["results"][0]["status"], "unchanged");
    assert_eq!(r.body["results"][1]["status"], "updated");
    let i2 = r.body["results"][1]["id"].as_str().expect("id").to_string();
    let read = app.get(&format!("/v1/invoices/{i2}")).await.expect(200);
    assert_eq!(read.body["amount"], "25.00");
    assert_eq!(read.body["open_amount"], "25.00");
    assert_eq!(read.body["version"], 2);
    let all = app.get("/v1/invoices").await.expect(200);
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(3));
}

/// Batches are written 250 rows a statement plus one statement for the rest: 300 customers
/// and 620 invoices cross both kinds, and every item still gets its own row and id, on
/// creation and on update.
async fn a_batch_of_several_statements_gives_each_item_its_own_row(app: TestApp) {
    let customers: Vec<_> = (0..300)
        .map(|i| json!({"external_id": format!("C-{i}"), "name": format!("Customer {i}"), "currency": "EUR"}))
        .collect();
    let r = app
        .post("/v1/customers/batch", &json!({ "items": customers }))
        .await
        .expect(200);
    let results = r.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 300);
    assert!(results.iter().all(|x| x["status"] == "created"), "{results:?}");

    let invoices = |amount_of: &dyn Fn(usize) -> usize| -> Vec<serde_json::Value> {
        (0..620)
            .map(|i| {
                json!({"external_id": format!("I-{i}"), "customer_external_id": format!("C-{}", i % 300),
                       "number": format!("N-{i}"), "amount": format!("{}.00", amount_of(i)),
                       "issue_date": "2026-01-01"})
            })
            .collect()
    };
    let r = app
        .post("/v1/invoices/batch", &json!({ "items": invoices(&|i| i + 1) }))
        .await
        .expect(200);
    let created = r.body["results"].as_array().expect("results").clone();
    assert_eq!(created.len(), 620);
    assert!(created.iter().all(|x| x["status"] == "created"), "{created:?}");
    let ids: std::collections::HashSet<&str> = created.iter().filter_map(|x| x["id"].as_str()).collect();
    assert_eq!(ids.len(), 620, "one row per item");
    for i in [0, 249, 250, 499, 500, 619] {
        let id = created[i]["id"].as_str().expect("id");
        let read = app.get(&format!("/v1/invoices/{id}")).await.expect(200);
        assert_eq!(read.body["external_id"], format!("I-{i}"));
        assert_eq!(read.body["number"], format!("N-{i}"));
        assert_eq!(read.body["amount"], format!("{}.00", i + 1));
    }

    // The same batch with the last 120 amounts changed: those are updated in place.
    let r = app
        .post(
            "/v1/invoices/batch",
            &json!({ "items": invoices(&|i| if i >= 500 { i + 1000 } else { i + 1 }) }),
        )
        .await
        .expect(200);
    let again = r.body["results"].as_array().expect("results");
    for (i, x) in again.iter().enumerate() {
        assert_eq!(x["status"], if i >= 500 { "updated" } else { "unchanged" }, "item {i}");
        assert_eq!(x["id"], created[i]["id"], "item {i}");
    }
    let id = created[619]["id"].as_str().expect("id");
    let read = app.get(&format!("/v1/invoices/{id}")).await.expect(200);
    assert_eq!(read.body["amount"], "1619.00");
    assert_eq!(read.body["version"], 2);
}

async fn amount_changes_respect_what_was_applied(app: TestApp) {
    let c = app.customer("C-A").await;
    let id = app.invoice(&c, "F-A", "100.00", "2026-02-01").await;
    let r = app
        .patch(&format!("/v1/invoices/{id}"), &json!({"amount": "150.00"}))
        .await
        .expect(200);
    assert_eq!(r.body["open_amount"], "150.00");
    assert_eq!(r.body["version"], 2);
    // Cancelled invoices cannot change.
    app.post(&format!("/v1/invoices/{id}/cancel"), &json!({"reason": "issued twice"}))
        .await
        .expect(200);
    app.patch(&format!("/v1/invoices/{id}"), &json!({"amount": "10.00"}))
        .await
        .expect_problem(409);
    app.put("/v1/invoices/by-external-id/F-A", &json!({"customer_id": c, "number": "F-A", "amount": "99.00", "issue_date": "2026-01-01", "due_date": "2026-02-01"}))
        .await
        .expect_problem(409);
    let read = app.get(&format!("/v1/invoices/{id}")).await.expect(200);
    assert_eq!(read.body["amount"], "150.00");
    assert_eq!(read.body["status"], "cancelled");
    assert_eq!(read.body["open_amount"], "0.00");
}

async fn a_document_with_money_applied_keeps_its_kind(app: TestApp) {
    let c = app.customer("C-A").await;
    let paid = app.invoice(&c, "F-A", "50.00", "2026-02-01").await;
    let untouched = app.invoice(&c, "F-B", "40.00", "2026-03-01").await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": c, "amount": "30.00", "allocations": [{"invoice_id": paid, "amount": "30.00"}]}),
    )
    .await
    .expect(201);
    let r = app
        .patch(&format!("/v1/invoices/{paid}"), &json!({"kind": "credit_note"}))
        .await
        .expect_problem(409);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot become a credit note")),
        "{}",
        r.body
    );
    app.put(
        "/v1/invoices/by-external-id/F-A",
        &json!({"customer_id": c, "kind": "credit_note", "number": "F-A", "amount": "50.00", "issue_date": "2026-01-01"}),
    )
    .await
    .expect_problem(409);
    let still = app.get(&format!("/v1/invoices/{paid}")).await.expect(200).body;
    assert_eq!(
        (still["kind"].as_str(), still["open_amount"].as_str()),
        (Some("invoice"), Some("20.00"))
    );

    // A credit note that gave credit stays one; a document nothing is applied to may change.
    let note = app.credit_note(&c, "CN-1", "10.00").await;
    app.post(
        &format!("/v1/invoices/{note}/applications"),
        &json!({"allocations": [{"invoice_id": untouched, "amount": "10.00"}]}),
    )
    .await
    .expect(200);
    app.patch(
        &format!("/v1/invoices/{note}"),
        &json!({"kind": "invoice", "due_date": "2026-04-01"}),
    )
    .await
    .expect_problem(409);
    let fresh = app.invoice(&c, "F-C", "25.00", "2026-03-01").await;
    let r = app
        .patch(&format!("/v1/invoices/{fresh}"), &json!({"kind": "debit_note"}))
        .await
        .expect(200);
    assert_eq!(r.body["kind"], "debit_note");
}

async fn cancel_and_write_off_need_a_manager_and_a_reason(app: TestApp) {
    let c = app.customer("C-W").await;
    let id = app.invoice(&c, "F-W", "80.00", "2026-02-01").await;
    let collector = app.token("collector");
    app.send(
        reqwest::Method::POST,
        &format!("/v1/invoices/{id}/write-off"),
        Some(&collector),
        Some(&json!({"reason": "x"})),
    )
    .await
    .expect_problem(403);
    app.post(&format!("/v1/invoices/{id}/write-off"), &json!({"reason": "  "}))
        .await
        .expect_problem(422);
    let manager = app.token("manager");
    let r = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/invoices/{id}/write-off"),
            Some(&manager),
            Some(&json!({"reason": "insolvent"})),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "written_off");
    assert_eq!(r.body["written_off_amount"], "80.00");
    assert_eq!(r.body["open_amount"], "0.00");
    assert_eq!(r.body["status_reason"], "insolvent");
    app.post(&format!("/v1/invoices/{id}/cancel"), &json!({"reason": "x"}))
        .await
        .expect_problem(409);
}

async fn statement_ages_open_items_per_currency(app: TestApp) {
    let c = app.customer("C-S").await;
    // As of 2026-06-30: current, 1-30, 31-60, 61-90, 91-120, >120.
    for (n, amount, due) in [
        ("S-0", "10.00", "2026-07-15"),
        ("S-1", "20.00", "2026-06-15"),
        ("S-2", "30.00", "2026-05-15"),
        ("S-3", "40.00", "2026-04-15"),
        ("S-4", "50.00", "2026-03-15"),
        ("S-5", "60.00", "2026-01-15"),
    ] {
        app.invoice(&c, n, amount, due).await;
    }
    app.post("/v1/invoices", &json!({"customer_id": c, "number": "USD-1", "currency": "USD", "amount": "5.00", "issue_date": "2026-01-01", "due_date": "2026-06-01"}))
        .await
        .expect(201);
    app.post("/v1/invoices", &json!({"customer_id": c, "kind": "credit_note", "number": "CN-1", "amount": "7.00", "issue_date": "2026-06-01"}))
        .await
        .expect(201);
    let s = app
        .get(&format!("/v1/customers/{c}/statement?as_of=2026-06-30"))
        .await
        .expect(200);
    assert_eq!(s.body["open_items"].as_array().map(Vec::len), Some(8));
    let totals = s.body["totals"].as_array().expect("totals");
    assert_eq!(totals.len(), 2);
    let eur = &totals[0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(eur["current"], "3.00");
    assert_eq!(eur["days_1_30"], "20.00");
    assert_eq!(eur["days_31_60"], "30.00");
    assert_eq!(eur["days_61_90"], "40.00");
    assert_eq!(eur["days_91_120"], "50.00");
    assert_eq!(eur["over_120"], "60.00");
    assert_eq!(eur["overdue"], "200.00");
    assert_eq!(eur["balance"], "203.00");
    assert_eq!(totals[1]["currency"], "USD");
    assert_eq!(totals[1]["days_1_30"], "5.00");
    app.get(&format!("/v1/customers/{c}/statement?as_of=30-06-2026"))
        .await
        .expect_problem(422);
}
