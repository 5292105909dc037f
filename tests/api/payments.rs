use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    automatic_allocation_follows_the_rules_and_keeps_the_rest_unapplied,
    explicit_allocations_are_checked_and_bad_ones_write_nothing,
    bad_payments_are_refused_naming_the_field,
    idempotency_key_replays_the_first_response,
    unapplied_cash_is_applied_later_and_can_be_unapplied,
    reversal_reopens_invoices_and_cannot_happen_twice,
    a_bounced_payment_reopens_a_written_off_invoice,
    credit_notes_are_applied_like_payments,
    batch_posts_payments_with_per_item_results,
    put_by_external_id_repeats_safely,
    allocation_rules_follow_the_organisation_settings,
    concurrent_allocations_never_over_allocate,
    concurrent_automatic_payments_keep_the_invariants,
    concurrent_requests_with_one_idempotency_key_post_once,
);

async fn open_amount(app: &TestApp, invoice: &str) -> (String, String) {
    let r = app.get(&format!("/v1/invoices/{invoice}")).await.expect(200);
    (
        r.body["open_amount"].as_str().unwrap_or("?").to_string(),
        r.body["status"].as_str().unwrap_or("?").to_string(),
    )
}

async fn automatic_allocation_follows_the_rules_and_keeps_the_rest_unapplied(app: TestApp) {
    let c = app.customer("C-1").await;
    let old = app.invoice(&c, "F-100", "100.00", "2026-01-31").await;
    let mid = app.invoice(&c, "F-101", "250.00", "2026-02-28").await;
    let new = app.invoice(&c, "F-102", "120.00", "2026-03-31").await;
    // Reference names F-102: it is paid first; the rest goes oldest first.
    let p = app
        .post(
            "/v1/payments",
            &json!({"customer_id": c, "amount": "170.00", "received_on": "2026-04-02", "reference": "Transfer F-102"}),
        )
        .await
        .expect(201);
    let allocations = p.body["allocations"].as_array().expect("allocations");
    let summary: Vec<(String, String, String)> = allocations
        .iter()
        .map(|a| {
            (
                a["invoice_id"].as_str().unwrap_or("").to_string(),
                a["amount"].as_str().unwrap_or("").to_string(),
                a["rule"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (new.clone(), "120.00".into(), "reference".into()),
            (old.clone(), "50.00".into(), "oldest_due".into())
        ]
    );
    assert_eq!(p.body["status"], "applied");
    assert_eq!(p.body["unapplied_amount"], "0.00");
    // The answer is built from the rows as written; it is what a read returns.
    let id = p.body["id"].as_str().expect("id");
    assert_eq!(app.get(&format!("/v1/payments/{id}")).await.expect(200).body, p.body);
    assert_eq!(open_amount(&app, &new).await, ("0.00".into(), "paid".into()));
    assert_eq!(open_amount(&app, &old).await, ("50.00".into(), "partially_paid".into()));
    let paid = app.get(&format!("/v1/invoices/{new}")).await.expect(200);
    assert_eq!(paid.body["paid_on"], "2026-04-02");
    // Exact amount beats oldest first.
    let p = app
        .post("/v1/payments", &json!({"customer_id": c, "amount": "250.00"}))
        .await
        .expect(201);
    assert_eq!(p.body["allocations"][0]["invoice_id"], mid);
    assert_eq!(p.body["allocations"][0]["rule"], "exact_amount");
    // More than is open: the rest stays as unapplied cash.
    let p = app
        .post(
            "/v1/payments",
            &json!({"customer_id": c, "amount": "80.00", "method": "cheque"}),
        )
        .await
        .expect(201);
    assert_eq!(p.body["status"], "partially_applied");
    assert_eq!(p.body["allocated_amount"], "50.00");
    assert_eq!(p.body["unapplied_amount"], "30.00");
    let s = app
        .get(&format!("/v1/customers/{c}/statement?as_of=2026-04-30"))
        .await
        .expect(200);
    assert_eq!(s.body["open_items"], json!([]));
    assert_eq!(s.body["totals"][0]["balance"], "0.00");
    assert_eq!(s.body["totals"][0]["unapplied_cash"], "30.00");
    assert_eq!(s.body["totals"][0]["net_balance"], "-30.00");
    assert_eq!(s.body["unapplied_payments"].as_array().map(Vec::len), Some(1));
    assert_eq!(s.body["recent_payments"].as_array().map(Vec::len), Some(3));
    let unapplied = app.get("/v1/payments?unapplied=true").await.expect(200);
    assert_eq!(unapplied.body["items"].as_array().map(Vec::len), Some(1));
    let events = app.get("/v1/events?kind=invoice.paid").await.expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(3));
}

async fn explicit_allocations_are_checked_and_bad_ones_write_nothing(app: TestApp) {
    let c = app.customer("C-1").await;
    let other = app.customer("C-2").await;
    let a = app.invoice(&c, "A", "100.00", "2026-01-31").await;
    let b = app.invoice(&c, "B", "100.00", "2026-02-28").await;
    let foreign = app.invoice(&other, "X", "100.00", "2026-01-31").await;
    let usd = app
        .post(
            "/v1/invoices",
            &json!({"customer_id": c, "number": "U", "currency": "USD", "amount": "10.00", "issue_date": "2026-01-01"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let cancelled = app.invoice(&c, "Z", "10.00", "2026-01-31").await;
    app.post(
        &format!("/v1/invoices/{cancelled}/cancel"),
        &json!({"reason": "duplicate"}),
    )
    .await
    .expect(200);
    let cases = [
        (json!([{"invoice_id": a, "amount": "100.01"}]), "allocations[0].amount"),
        (
            json!([{"invoice_id": a, "amount": "100.00"}, {"invoice_id": b, "amount": "60.00"}]),
            "allocations",
        ),
        (
            json!([{"invoice_id": foreign, "amount": "1.00"}]),
            "allocations[0].invoice_id",
        ),
        (
            json!([{"invoice_id": usd, "amount": "1.00"}]),
            "allocations[0].invoice_id",
        ),
        (
            json!([{"invoice_id": cancelled, "amount": "1.00"}]),
            "allocations[0].invoice_id",
        ),
        (
            json!([{"invoice_id": "inv_999999", "amount": "1.00"}]),
            "allocations[0].invoice_id",
        ),
        (json!([{"invoice_id": a, "amount": "1.001"}]), "allocations[0].amount"),
        (
            json!([{"invoice_id": a, "amount": "1.00"}, {"invoice_id": a, "amount": "1.00"}]),
            "allocations[1].invoice_id",
        ),
    ];
    for (allocations, field) in cases {
        let r = app
            .post(
                "/v1/payments",
                &json!({"customer_id": c, "amount": "150.00", "allocations": allocations}),
            )
            .await
            .expect_problem(422);
        assert!(r.error_fields().contains(&field.to_string()), "{field}: {}", r.body);
    }
    let payments = app.get("/v1/payments").await.expect(200);
    assert_eq!(payments.body["items"], json!([]));
    assert_eq!(open_amount(&app, &a).await.0, "100.00");
    let ok = app
        .post("/v1/payments", &json!({"customer_id": c, "amount": "150.00", "allocations": [{"invoice_id": b, "amount": "40.00"}, {"invoice_id": a, "amount": "100.00"}]}))
        .await
        .expect(201);
    assert_eq!(ok.body["allocated_amount"], "140.00");
    assert_eq!(ok.body["allocations"][0]["rule"], "explicit");
    assert_eq!(open_amount(&app, &a).await, ("0.00".into(), "paid".into()));
    assert_eq!(open_amount(&app, &b).await, ("60.00".into(), "partially_paid".into()));
}

async fn bad_payments_are_refused_naming_the_field(app: TestApp) {
    let c = app.customer("C-1").await;
    for (body, field) in [
        (json!({"customer_id": c, "amount": "0"}), "amount"),
        (json!({"customer_id": c, "amount": "-5.00"}), "amount"),
        (json!({"customer_id": c, "amount": "5.001"}), "amount"),
        (
            json!({"customer_id": c, "amount": "5.00", "currency": "EURO"}),
            "currency",
        ),
        (json!({"customer_id": "cus_999999", "amount": "5.00"}), "customer_id"),
        (
            json!({"customer_external_id": "nobody", "amount": "5.00"}),
            "customer_external_id",
        ),
        (json!({"amount": "5.00"}), "customer_id"),
        (
            json!({"customer_id": c, "amount": "5.00", "method": "barter"}),
            "method",
        ),
    ] {
        let r = app.post("/v1/payments", &body).await.expect_problem(422);
        assert_eq!(r.error_fields(), vec![field], "{body}");
    }
    app.post("/v1/payments", &json!({"customer_id": c, "amount": 5}))
        .await
        .expect_problem(400);
    assert_eq!(app.get("/v1/payments").await.body["items"], json!([]));
    let viewer = app.token("viewer");
    app.send(
        Method::POST,
        "/v1/payments",
        Some(&viewer),
        Some(&json!({"customer_id": c, "amount": "5.00"})),
    )
    .await
    .expect_problem(403);
}

pub(crate) async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, Value, Option<String>) {
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&app.admin)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("sent");
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), replayed)
}

async fn idempotency_key_replays_the_first_response(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", "2026-01-31").await;
    let body = json!({"customer_id": c, "amount": "60.00"});
    let (s1, b1, r1) = post_with_key(&app, "/v1/payments", "key-1", &body).await;
    let (s2, b2, r2) = post_with_key(&app, "/v1/payments", "key-1", &body).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2);
    assert_eq!((r1, r2.as_deref()), (None, Some("true")));
    assert_eq!(open_amount(&app, &inv).await.0, "40.00");
    let (s3, b3, _) = post_with_key(
        &app,
        "/v1/payments",
        "key-1",
        &json!({"customer_id": c, "amount": "61.00"}),
    )
    .await;
    assert_eq!(s3, 422);
    assert_eq!(b3["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(
        app.get("/v1/payments").await.body["items"].as_array().map(Vec::len),
        Some(1)
    );
    // Keys are per organisation: another tenant may use the same key.
    let other = app.create_org("other-co");
    let oc = app
        .send(Method::POST, "/v1/customers", Some(&other), Some(&json!({"name": "O"})))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = app
        .client
        .post(format!("{}/v1/payments", app.address))
        .bearer_auth(&other)
        .header("idempotency-key", "key-1")
        .json(&json!({"customer_id": oc, "amount": "60.00"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 201);
    // A failed request does not burn the key.
    let (s4, _, _) = post_with_key(&app, "/v1/payments", "key-2", &json!({"customer_id": c, "amount": "0"})).await;
    assert_eq!(s4, 422);
    let (s5, _, _) = post_with_key(
        &app,
        "/v1/payments",
        "key-2",
        &json!({"customer_id": c, "amount": "1.00"}),
    )
    .await;
    assert_eq!(s5, 201);
}

async fn unapplied_cash_is_applied_later_and_can_be_unapplied(app: TestApp) {
    let c = app.customer("C-1").await;
    let p = app
        .post("/v1/payments", &json!({"customer_id": c, "amount": "90.00"}))
        .await
        .expect(201);
    assert_eq!(p.body["status"], "unapplied");
    let pid = p.body["id"].as_str().expect("id").to_string();
    let a = app.invoice(&c, "A", "50.00", "2026-01-31").await;
    let b = app.invoice(&c, "B", "70.00", "2026-02-28").await;
    let r = app
        .post(
            &format!("/v1/payments/{pid}/allocations"),
            &json!({"allocations": [{"invoice_id": b, "amount": "20.00"}]}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["allocated_amount"], "20.00");
    // Automatic for the rest: oldest first.
    let r = app
        .post(&format!("/v1/payments/{pid}/allocations"), &json!({}))
        .await
        .expect(200);
    assert_eq!(r.body["status"], "applied");
    assert_eq!(open_amount(&app, &a).await, ("0.00".into(), "paid".into()));
    assert_eq!(open_amount(&app, &b).await.0, "30.00");
    app.post(&format!("/v1/payments/{pid}/allocations"), &json!({}))
        .await
        .expect_problem(409);
    let first = r.body["allocations"][0]["id"].as_str().expect("id").to_string();
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/payments/{pid}/allocations/{first}"),
            Some(&app.admin),
            None,
        )
        .await
        .expect(200);
    assert_eq!(r.body["allocated_amount"], "70.00");
    assert!(r.body["allocations"][0]["released_at"].is_string());
    assert_eq!(open_amount(&app, &b).await.0, "50.00");
    app.send(
        Method::DELETE,
        &format!("/v1/payments/{pid}/allocations/{first}"),
        Some(&app.admin),
        None,
    )
    .await
    .expect_problem(409);
    app.send(
        Method::DELETE,
        &format!("/v1/payments/{pid}/allocations/alc_999999"),
        Some(&app.admin),
        None,
    )
    .await
    .expect_problem(404);
}

async fn reversal_reopens_invoices_and_cannot_happen_twice(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "50.00", "2026-01-31").await;
    let p = app
        .post(
            "/v1/payments",
            &json!({"customer_id": c, "amount": "50.00", "method": "cheque"}),
        )
        .await
        .expect(201);
    let pid = p.body["id"].as_str().expect("id").to_string();
    assert_eq!(open_amount(&app, &a).await, ("0.00".into(), "paid".into()));
    app.post(&format!("/v1/payments/{pid}/reverse"), &json!({"reason": ""}))
        .await
        .expect_problem(422);
    let r = app
        .post(
            &format!("/v1/payments/{pid}/reverse"),
            &json!({"reason": "cheque bounced"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["status"], "reversed");
    assert_eq!(r.body["allocated_amount"], "0.00");
    assert_eq!(r.body["unapplied_amount"], "0.00");
    assert!(
        r.body["allocations"]
            .as_array()
            .expect("a")
            .iter()
            .all(|a| a["released_at"].is_string())
    );
    assert_eq!(open_amount(&app, &a).await, ("50.00".into(), "open".into()));
    let inv = app.get(&format!("/v1/invoices/{a}")).await.expect(200);
    assert_eq!(inv.body["paid_on"], Value::Null);
    app.post(&format!("/v1/payments/{pid}/reverse"), &json!({"reason": "again"}))
        .await
        .expect_problem(409);
    app.post(&format!("/v1/payments/{pid}/allocations"), &json!({}))
        .await
        .expect_problem(409);
    let events = app.get("/v1/events?kind=payment.reversed").await.expect(200);
    assert_eq!(events.body["items"][0]["payload"]["reason"], "cheque bounced");
    assert_eq!(
        app.get("/v1/payments?status=reversed").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// 20.00 paid, the other 30.00 written off, then the payment bounces: the customer owes
/// the 20.00 again, so the invoice is open to collection (and in the aging) with its
/// write-off kept.
async fn a_bounced_payment_reopens_a_written_off_invoice(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "50.00", "2026-01-31").await;
    let p = app
        .post(
            "/v1/payments",
            &json!({"customer_id": c, "amount": "20.00", "method": "cheque"}),
        )
        .await
        .expect(201);
    let pid = p.body["id"].as_str().expect("id").to_string();
    app.post(
        &format!("/v1/invoices/{a}/write-off"),
        &json!({"reason": "small balance"}),
    )
    .await
    .expect(200);
    assert_eq!(open_amount(&app, &a).await, ("0.00".into(), "written_off".into()));
    app.post(
        &format!("/v1/payments/{pid}/reverse"),
        &json!({"reason": "cheque bounced"}),
    )
    .await
    .expect(200);
    let inv = app.get(&format!("/v1/invoices/{a}")).await.expect(200).body;
    assert_eq!(
        (
            inv["open_amount"].as_str(),
            inv["written_off_amount"].as_str(),
            inv["status"].as_str()
        ),
        (Some("20.00"), Some("30.00"), Some("partially_paid")),
        "{inv}"
    );
    let s = app.get(&format!("/v1/customers/{c}/statement")).await.expect(200).body;
    assert_eq!(s["totals"][0]["balance"], "20.00", "{s}");
    // Open again, it takes the next payment.
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "20.00"}))
        .await
        .expect(201);
    let inv = app.get(&format!("/v1/invoices/{a}")).await.expect(200).body;
    assert_eq!(
        (
            inv["open_amount"].as_str(),
            inv["written_off_amount"].as_str(),
            inv["status"].as_str()
        ),
        (Some("0.00"), Some("30.00"), Some("paid")),
        "{inv}"
    );
}

async fn credit_notes_are_applied_like_payments(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "100.00", "2026-01-31").await;
    let cn = app.credit_note(&c, "CN-1", "30.00").await;
    app.post(&format!("/v1/invoices/{a}/applications"), &json!({}))
        .await
        .expect_problem(409);
    let r = app
        .post(
            &format!("/v1/invoices/{cn}/applications"),
            &json!({"allocations": [{"invoice_id": a, "amount": "30.01"}]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(
        r.error_fields(),
        vec!["allocations"],
        "more than the credit note's open credit"
    );
    let r = app
        .post(&format!("/v1/invoices/{cn}/applications"), &json!({}))
        .await
        .expect(200);
    assert_eq!(r.body["credit_note"]["open_amount"], "0.00");
    assert_eq!(r.body["credit_note"]["status"], "paid");
    assert_eq!(r.body["applications"][0]["credit_note_id"], cn);
    assert_eq!(open_amount(&app, &a).await, ("70.00".into(), "partially_paid".into()));
    app.post(&format!("/v1/invoices/{cn}/applications"), &json!({}))
        .await
        .expect_problem(409);
}

async fn batch_posts_payments_with_per_item_results(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "100.00", "2026-01-31").await;
    let items = json!({"items": [
        {"external_id": "BK-1", "customer_external_id": "C-1", "amount": "60.00", "received_on": "2026-02-01"},
        {"external_id": "BK-2", "customer_external_id": "C-1", "amount": "60.00", "received_on": "2026-02-01"},
        {"external_id": "BK-3", "customer_external_id": "C-1", "amount": "0"},
        {"customer_external_id": "C-1", "amount": "1.00"},
        {"external_id": "BK-4", "customer_id": c, "amount": "5.00", "allocations": [{"invoice_id": a, "amount": "500.00"}]}
    ]});
    let r = app.post("/v1/payments/batch", &items).await.expect(200);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .expect("r")
        .iter()
        .map(|x| x["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(statuses, vec!["created", "created", "error", "error", "error"]);
    // The two payments share the invoice: 60 + 40, and 20 stays unapplied.
    assert_eq!(open_amount(&app, &a).await, ("0.00".into(), "paid".into()));
    let second = app.get("/v1/payments?external_id=BK-2").await.expect(200);
    assert_eq!(second.body["items"][0]["allocated_amount"], "40.00");
    assert_eq!(second.body["items"][0]["unapplied_amount"], "20.00");
    // Re-sending the statement posts nothing twice.
    let again = app.post("/v1/payments/batch", &items).await.expect(200);
    assert_eq!(again.body["results"][0]["status"], "unchanged");
    assert_eq!(again.body["results"][1]["status"], "unchanged");
    assert_eq!(
        app.get("/v1/payments").await.body["items"].as_array().map(Vec::len),
        Some(2)
    );
}

async fn put_by_external_id_repeats_safely(app: TestApp) {
    let c = app.customer("C-1").await;
    app.invoice(&c, "A", "100.00", "2026-01-31").await;
    let body = json!({"customer_id": c, "amount": "80.00", "received_on": "2026-02-01", "reference": "first"});
    let r = app.put("/v1/payments/by-external-id/BK-9", &body).await.expect(201);
    assert_eq!(r.body["allocated_amount"], "80.00");
    let r = app.put("/v1/payments/by-external-id/BK-9", &body).await.expect(200);
    assert_eq!(r.body["version"], 1);
    let r = app
        .put(
            "/v1/payments/by-external-id/BK-9",
            &json!({"customer_id": c, "amount": "85.00", "received_on": "2026-02-01", "reference": "fixed"}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["reference"], "fixed");
    assert_eq!(r.body["unapplied_amount"], "5.00");
    app.put(
        "/v1/payments/by-external-id/BK-9",
        &json!({"customer_id": c, "amount": "79.00", "received_on": "2026-02-01"}),
    )
    .await
    .expect_problem(409);
    app.post(
        "/v1/payments",
        &json!({"external_id": "BK-9", "customer_id": c, "amount": "1.00"}),
    )
    .await
    .expect_problem(409);
}

async fn allocation_rules_follow_the_organisation_settings(app: TestApp) {
    let s = app.get("/v1/settings").await.expect(200);
    assert_eq!(
        s.body["allocation_rules"],
        json!(["reference", "exact_amount", "oldest_due"])
    );
    let manager = app.token("manager");
    app.send(
        Method::PATCH,
        "/v1/settings",
        Some(&manager),
        Some(&json!({"allocation_rules": ["oldest_due"]})),
    )
    .await
    .expect_problem(403);
    app.patch(
        "/v1/settings",
        &json!({"allocation_rules": ["oldest_due", "oldest_due"]}),
    )
    .await
    .expect_problem(422);
    app.patch("/v1/settings", &json!({"allocation_rules": ["magic"]}))
        .await
        .expect_problem(400);
    app.patch("/v1/settings", &json!({"allocation_rules": ["oldest_due"]}))
        .await
        .expect(200);
    let c = app.customer("C-1").await;
    let old = app.invoice(&c, "OLD", "100.00", "2026-01-31").await;
    app.invoice(&c, "NEW", "100.00", "2026-03-31").await;
    let p = app
        .post(
            "/v1/payments",
            &json!({"customer_id": c, "amount": "100.00", "reference": "NEW"}),
        )
        .await
        .expect(201);
    assert_eq!(p.body["allocations"][0]["invoice_id"], old);
    assert_eq!(p.body["allocations"][0]["rule"], "oldest_due");
    app.patch("/v1/settings", &json!({"allocation_rules": []}))
        .await
        .expect(200);
    let p = app
        .post("/v1/payments", &json!({"customer_id": c, "amount": "10.00"}))
        .await
        .expect(201);
    assert_eq!(p.body["status"], "unapplied");
}

/// Sums every live allocation per invoice and per payment, and checks them against the
/// balances the API reports.
pub(crate) async fn check_invariants(app: &TestApp, invoices: &[(String, i64)]) {
    let mut per_invoice: std::collections::HashMap<String, i64> = Default::default();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/v1/payments?limit=500{cursor}")).await.expect(200);
        for p in page.body["items"].as_array().expect("items") {
            let amount = cents(&p["amount"]);
            let mut live = 0;
            for a in p["allocations"].as_array().expect("allocations") {
                if a["released_at"].is_null() {
                    live += cents(&a["amount"]);
                    *per_invoice
                        .entry(a["invoice_id"].as_str().unwrap_or("").to_string())
                        .or_default() += cents(&a["amount"]);
                }
            }
            assert!(live <= amount, "payment over-allocated: {p}");
            assert_eq!(live, cents(&p["allocated_amount"]), "{p}");
            if p["status"] == "reversed" {
                assert_eq!(live, 0);
            }
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    for (id, amount) in invoices {
        let applied = per_invoice.get(id).copied().unwrap_or(0);
        assert!(applied <= *amount, "invoice {id} over-allocated: {applied} > {amount}");
        let inv = app.get(&format!("/v1/invoices/{id}")).await.expect(200);
        assert_eq!(cents(&inv.body["open_amount"]), amount - applied, "{id}");
        assert!(cents(&inv.body["open_amount"]) >= 0);
    }
}

pub(crate) fn cents(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or("0");
    let (whole, frac) = s.split_once('.').unwrap_or((s, "00"));
    whole.parse::<i64>().unwrap_or(0) * 100 + frac.parse::<i64>().unwrap_or(0)
}

async fn concurrent_allocations_never_over_allocate(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "HOT", "100.00", "2026-01-31").await;
    // 20 unapplied payments of 15.00, then all applied at once to the same 100.00 invoice.
    let mut payments = Vec::new();
    for i in 0..20 {
        let p = app
            .post(
                "/v1/payments",
                &json!({"customer_id": c, "amount": "15.00", "reference": format!("p{i}")}),
            )
            .await;
        payments.push(p.body["id"].as_str().expect("id").to_string());
    }
    // They were auto-applied: 6 paid 15.00 and one 10.00. Unapply everything, then race.
    for pid in &payments {
        let p = app.get(&format!("/v1/payments/{pid}")).await.expect(200);
        for a in p.body["allocations"].as_array().expect("a") {
            if a["released_at"].is_null() {
                let aid = a["id"].as_str().expect("id");
                app.send(
                    Method::DELETE,
                    &format!("/v1/payments/{pid}/allocations/{aid}"),
                    Some(&app.admin),
                    None,
                )
                .await
                .expect(200);
            }
        }
    }
    assert_eq!(open_amount(&app, &inv).await.0, "100.00");
    let mut handles = Vec::new();
    for pid in &payments {
        let client = app.client.clone();
        let url = format!("{}/v1/payments/{pid}/allocations", app.address);
        let token = app.admin.clone();
        let body = json!({"allocations": [{"invoice_id": inv, "amount": "15.00"}]});
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut ok = 0;
    for h in handles {
        let status = h.await.expect("join").expect("sent");
        assert!(matches!(status, 200 | 409 | 422 | 503), "unexpected {status}");
        if status == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 6, "exactly six 15.00 allocations fit in 100.00");
    assert_eq!(open_amount(&app, &inv).await, ("10.00".into(), "partially_paid".into()));
    check_invariants(&app, &[(inv, 10_000)]).await;
}

/// Five invoices of 40.00 for the customer, due on the first of January to May, with
/// their amounts in cents for [`check_invariants`].
pub(crate) async fn five_monthly_invoices(app: &TestApp, customer: &str) -> Vec<(String, i64)> {
    let mut invoices = Vec::new();
    for i in 0..5 {
        let id = app
            .invoice(customer, &format!("F-{i}"), "40.00", &format!("2026-0{}-01", i + 1))
            .await;
        invoices.push((id, 4_000));
    }
    invoices
}

async fn concurrent_automatic_payments_keep_the_invariants(app: TestApp) {
    let c = app.customer("C-1").await;
    let invoices = five_monthly_invoices(&app, &c).await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let client = app.client.clone();
        let url = format!("{}/v1/payments", app.address);
        let token = app.admin.clone();
        let body = json!({"customer_id": c, "amount": "17.00", "reference": format!("F-{}", i % 5)});
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for h in handles {
        let status = h.await.expect("join").expect("sent");
        assert!(matches!(status, 201 | 503), "unexpected {status}");
    }
    check_invariants(&app, &invoices).await;
    // 16 × 17.00 = 272.00 received against 200.00 open: everything is paid, 72.00 unapplied.
    let s = app.get(&format!("/v1/customers/{c}/statement")).await.expect(200);
    let posted = app.get("/v1/payments?limit=500").await.body["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if posted == 16 {
        assert_eq!(s.body["totals"][0]["balance"], "0.00");
        assert_eq!(s.body["totals"][0]["unapplied_cash"], "72.00");
    }
}

async fn concurrent_requests_with_one_idempotency_key_post_once(app: TestApp) {
    let c = app.customer("C-1").await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/v1/payments", app.address);
        let token = app.admin.clone();
        let body = json!({"customer_id": c, "amount": "12.34"});
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "same")
                .json(&body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await?;
            Ok::<_, reqwest::Error>((status, body))
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let (status, body) = h.await.expect("join").expect("sent");
        if status == 201 {
            ids.insert(body["id"].as_str().unwrap_or("").to_string());
        } else {
            assert!(matches!(status, 409 | 503), "unexpected {status}: {body}");
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same payment");
    assert_eq!(
        app.get("/v1/payments").await.body["items"].as_array().map(Vec::len),
        Some(1)
    );
}
