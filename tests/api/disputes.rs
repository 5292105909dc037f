use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    disputes_hold_their_amount_out_of_collection,
    resolution_returns_or_credits_the_amount,
    dispute_lifecycle_and_comments,
    root_cause_report_groups_by_reason_and_department,
);

async fn disputes_hold_their_amount_out_of_collection(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", "2026-01-31").await;
    let d = app
        .post(
            "/v1/disputes",
            &json!({"invoice_id": inv, "amount": "40.00", "reason": "quantity", "description": "Two units short"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(d["owner_department"], "logistics", "defaults from the reason");
    assert_eq!(d["status"], "open");
    let invoice = app.get(&format!("/v1/invoices/{inv}")).await.expect(200).body;
    assert_eq!(invoice["disputed_amount"], "40.00");
    let r = app
        .post(
            "/v1/disputes",
            &json!({"invoice_id": inv, "amount": "60.01", "reason": "pricing"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["amount"]);
    for (body, field) in [
        (json!({"invoice_id": inv, "reason": "bad mood"}), "reason"),
        (
            json!({"invoice_id": inv, "reason": "pricing", "owner_department": "it"}),
            "owner_department",
        ),
        (json!({"invoice_id": "inv_999999", "reason": "pricing"}), "invoice_id"),
        (json!({"reason": "pricing"}), "invoice_id"),
    ] {
        let r = app.post("/v1/disputes", &body).await.expect_problem(422);
        assert_eq!(r.error_fields(), vec![field], "{body}");
    }
    // The rest of the invoice (60.00) can be disputed; then nothing is left.
    app.post("/v1/disputes", &json!({"invoice_id": inv, "reason": "pricing"}))
        .await
        .expect(201);
    let invoice = app.get(&format!("/v1/invoices/{inv}")).await.expect(200).body;
    assert_eq!(invoice["disputed_amount"], "100.00");
    app.post("/v1/disputes", &json!({"invoice_id": inv, "reason": "pricing"}))
        .await
        .expect_problem(422);
    let items = app.get("/v1/collectable-items").await.expect(200).body;
    assert_eq!(items["items"][0]["exclusion"], "disputed");
    let integration = app.token("integration");
    app.send(
        Method::POST,
        "/v1/disputes",
        Some(&integration),
        Some(&json!({"invoice_id": inv, "reason": "pricing"})),
    )
    .await
    .expect_problem(422);
    let viewer = app.token("viewer");
    app.send(
        Method::POST,
        "/v1/disputes",
        Some(&viewer),
        Some(&json!({"invoice_id": inv, "reason": "pricing"})),
    )
    .await
    .expect_problem(403);
}

async fn resolution_returns_or_credits_the_amount(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", "2026-01-31").await;
    let rejected = app
        .post(
            "/v1/disputes",
            &json!({"invoice_id": inv, "amount": "30.00", "reason": "pricing"}),
        )
        .await
        .expect(201)
        .body;
    let credited = app
        .post(
            "/v1/disputes",
            &json!({"invoice_id": inv, "amount": "20.00", "reason": "damaged_goods"}),
        )
        .await
        .expect(201)
        .body;
    let collector = app.token("collector");
    app.send(
        Method::POST,
        &format!("/v1/disputes/{}/resolve", rejected["id"].as_str().expect("id")),
        Some(&collector),
        Some(&json!({"resolution": "rejected_invoice_valid"})),
    )
    .await
    .expect_problem(403);
    let r = app
        .post(
            &format!("/v1/disputes/{}/resolve", rejected["id"].as_str().expect("id")),
            &json!({"resolution": "rejected_invoice_valid", "comment": "Price was as quoted"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["comments"][0]["body"], "Price was as quoted");
    assert_eq!(
        app.get(&format!("/v1/invoices/{inv}")).await.body["disputed_amount"],
        "20.00"
    );
    let cn = app.credit_note(&c, "CN-1", "20.00").await;
    app.post(
        &format!("/v1/disputes/{}/resolve", credited["id"].as_str().expect("id")),
        &json!({"resolution": "magic"}),
    )
    .await
    .expect_problem(422);
    app.post(
        &format!("/v1/disputes/{}/resolve", credited["id"].as_str().expect("id")),
        &json!({"resolution": "credit_note_issued", "credit_note_id": inv}),
    )
    .await
    .expect_problem(422);
    let r = app
        .post(
            &format!("/v1/disputes/{}/resolve", credited["id"].as_str().expect("id")),
            &json!({"resolution": "credit_note_issued", "credit_note_id": cn}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["credit_note_id"], cn);
    let invoice = app.get(&format!("/v1/invoices/{inv}")).await.body;
    assert_eq!(invoice["disputed_amount"], "0.00");
    assert_eq!(
        invoice["open_amount"], "80.00",
        "the credit note was applied to the disputed invoice"
    );
    app.post(
        &format!("/v1/disputes/{}/resolve", credited["id"].as_str().expect("id")),
        &json!({"resolution": "customer_accepted"}),
    )
    .await
    .expect_problem(409);
}

async fn dispute_lifecycle_and_comments(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", "2026-01-31").await;
    let d = app
        .post("/v1/disputes", &json!({"invoice_id": inv, "reason": "not_delivered"}))
        .await
        .expect(201)
        .body;
    let path = format!("/v1/disputes/{}", d["id"].as_str().expect("id"));
    let r = app
        .patch(
            &path,
            &json!({"status": "under_review", "assignee": "jordi", "amount": "50.00"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["status"], "under_review");
    assert_eq!(r["amount"], "50.00");
    assert_eq!(
        app.get(&format!("/v1/invoices/{inv}")).await.body["disputed_amount"],
        "50.00"
    );
    app.patch(&path, &json!({"status": "resolved"}))
        .await
        .expect_problem(422);
    app.patch(&path, &json!({"invoice_id": "inv_1"}))
        .await
        .expect_problem(422);
    let r = app
        .post(
            &format!("{path}/comments"),
            &json!({"body": "Carrier confirms delivery"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(r["comments"][0]["author"], "admin-user");
    app.post(&format!("{path}/comments"), &json!({"body": ""}))
        .await
        .expect_problem(422);
    let r = app.patch(&path, &json!({"status": "withdrawn"})).await.expect(200).body;
    assert_eq!(r["status"], "withdrawn");
    assert_eq!(
        app.get(&format!("/v1/invoices/{inv}")).await.body["disputed_amount"],
        "0.00"
    );
    app.patch(&path, &json!({"status": "open"})).await.expect_problem(409);
    let list = app
        .get(&format!("/v1/disputes?invoice_id={inv}&status=withdrawn"))
        .await
        .expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    app.get("/v1/disputes?status=lost").await.expect_problem(422);
}

async fn root_cause_report_groups_by_reason_and_department(app: TestApp) {
    let c = app.customer("C-1").await;
    let mut ids = Vec::new();
    for (n, reason, amount) in [
        ("A", "damaged_goods", "10.00"),
        ("B", "damaged_goods", "20.00"),
        ("C", "pricing", "5.00"),
        ("D", "duplicate_billing", "7.00"),
    ] {
        let inv = app.invoice(&c, n, "100.00", "2026-01-31").await;
        let d = app
            .post(
                "/v1/disputes",
                &json!({"invoice_id": inv, "reason": reason, "amount": amount}),
            )
            .await
            .expect(201)
            .body;
        ids.push(d["id"].as_str().expect("id").to_string());
    }
    app.post(
        &format!("/v1/disputes/{}/resolve", ids[0]),
        &json!({"resolution": "customer_accepted"}),
    )
    .await
    .expect(200);
    let r = app.get("/v1/reports/disputes").await.expect(200).body;
    assert_eq!(r["total"]["count"], 4);
    assert_eq!(r["total"]["open"], 3);
    assert_eq!(r["total"]["resolved"], 1);
    assert_eq!(r["by_reason"]["damaged_goods"]["count"], 2);
    assert_eq!(r["by_reason"]["damaged_goods"]["amounts"]["EUR"], "30.00");
    assert_eq!(r["by_owner_department"]["logistics"]["count"], 2);
    assert_eq!(r["by_owner_department"]["billing"]["count"], 1);
    assert_eq!(r["by_owner_department"]["sales"]["amounts"]["EUR"], "5.00");
    assert_eq!(r["average_days_to_resolve"], 0.0);
    assert_eq!(r["p90_days_to_resolve"], 0);
    assert_eq!(r["oldest_open"].as_array().map(Vec::len), Some(3));
    let empty = app
        .get("/v1/reports/disputes?from=2020-01-01&to=2020-12-31")
        .await
        .expect(200)
        .body;
    assert_eq!(empty["total"]["count"], 0);
    assert_eq!(empty["p90_days_to_resolve"], Value::Null);
    app.get("/v1/reports/disputes?from=2026-12-31&to=2026-01-01")
        .await
        .expect_problem(422);
}
