//! Group posting of single payments (`payment_groups`): every request gets the answer it
//! would have had alone, whether it was posted in a group or not.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;
use crate::payments::{cents, check_invariants, five_monthly_invoices, post_with_key};
use recaudo::error::AppError;
use recaudo::service::payments::GroupOutcome;

both_engines!(
    a_group_answers_each_payment_as_if_posted_alone,
    concurrent_single_payments_each_get_their_own_answer,
    concurrent_payments_with_idempotency_keys_post_once_each,
);

fn input(body: Value) -> recaudo::domain::payment::PaymentInput {
    serde_json::from_value(body).expect("a payment input")
}

fn allocations(app_invoice_ids: &[&str], posted: &GroupOutcome) -> Vec<(String, i64)> {
    let GroupOutcome::Posted(p) = posted else {
        panic!("not posted: {posted:?}");
    };
    p.allocations
        .iter()
        .map(|a| {
            let index = app_invoice_ids
                .iter()
                .position(|id| recaudo::domain::ids::Kind::Invoice.encode(a.invoice_id) == *id)
                .map_or("?".to_string(), |i| i.to_string());
            (index, a.amount_minor)
        })
        .collect()
}

async fn a_group_answers_each_payment_as_if_posted_alone(app: TestApp) {
    let c1 = app.customer("C-1").await;
    let c2 = app.customer("C-2").await;
    let f1 = app.invoice(&c1, "F-1", "100.00", "2026-01-31").await;
    let f2 = app.invoice(&c1, "F-2", "50.00", "2026-02-28").await;
    let g1 = app.invoice(&c2, "G-1", "30.00", "2026-01-31").await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": c2, "external_id": "BANK-OLD", "amount": "1.00"}),
    )
    .await
    .expect(201);
    let inputs = [
        input(json!({"customer_id": c1, "external_id": "B-1", "amount": "120.00"})),
        // Sees what the first payment took: only 30.00 of F-2 is left.
        input(json!({"customer_external_id": "C-1", "external_id": "B-2", "amount": "40.00"})),
        input(json!({"customer_external_id": "C-404", "amount": "5.00"})),
        // Same external id as the first: its answer depends on the first's, so it waits.
        input(json!({"customer_id": c2, "external_id": "B-1", "amount": "5.00"})),
        input(json!({"customer_id": c2, "external_id": "BANK-OLD", "amount": "1.00"})),
        input(json!({"customer_id": c2, "amount": "29.00"})),
    ];
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let mut conn = app.state.pool.get().expect("connection");
    let org = recaudo::db::repo::organizations::find_by_slug(&mut conn, recaudo::DEFAULT_ORG)
        .expect("read")
        .expect("org");
    let outcomes = recaudo::db::write_transaction(&mut conn, |c| {
        recaudo::service::payments::post_group(c, org.id, "erp", &inputs.iter().collect::<Vec<_>>(), today)
    })
    .expect("group posted");
    drop(conn);
    assert_eq!(outcomes.len(), 6);
    let ids = [f1.as_str(), f2.as_str(), g1.as_str()];
    assert_eq!(
        allocations(&ids, &outcomes[0]),
        vec![("0".into(), 10_000), ("1".into(), 2_000)]
    );
    assert_eq!(allocations(&ids, &outcomes[1]), vec![("1".into(), 3_000)]);
    assert!(
        matches!(&outcomes[2], GroupOutcome::Refused(AppError::Validation(e)) if e.iter().any(|f| f.field == "customer_external_id")),
        "{:?}",
        outcomes[2]
    );
    assert!(matches!(outcomes[3], GroupOutcome::PostAlone), "{:?}", outcomes[3]);
    assert!(
        matches!(&outcomes[4], GroupOutcome::Refused(AppError::Conflict(m)) if m.contains("BANK-OLD")),
        "{:?}",
        outcomes[4]
    );
    assert_eq!(allocations(&ids, &outcomes[5]), vec![("2".into(), 2_900)]);
    // What the API reads back: the balances and payments the group wrote, nothing of the
    // refused ones.
    for (invoice, open, status) in [(&f1, "0.00", "paid"), (&f2, "0.00", "paid"), (&g1, "0.00", "paid")] {
        let r = app.get(&format!("/v1/invoices/{invoice}")).await.expect(200);
        assert_eq!(
            (r.body["open_amount"].as_str(), r.body["status"].as_str()),
            (Some(open), Some(status))
        );
    }
    let b2 = app.get("/v1/payments?limit=50").await.expect(200);
    let items = b2.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 4, "BANK-OLD, B-1, B-2 and the unnamed 29.00: {items:?}");
    let second = items.iter().find(|p| p["external_id"] == "B-2").expect("B-2");
    assert_eq!(
        (second["allocated_amount"].as_str(), second["status"].as_str()),
        (Some("30.00"), Some("partially_applied"))
    );
    let events = app.get("/v1/events?limit=100").await.expect(200);
    let received = events.body["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "payment.received")
        .count();
    assert_eq!(received, 4);
}

async fn concurrent_single_payments_each_get_their_own_answer(app: TestApp) {
    let c = app.customer("C-1").await;
    let invoices = five_monthly_invoices(&app, &c).await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": c, "external_id": "OLD", "amount": "1.00"}),
    )
    .await
    .expect(201);
    let mut bodies: Vec<(String, Value)> = (0..20)
        .map(|i| {
            (
                format!("P-{i}"),
                json!({"customer_id": c, "external_id": format!("P-{i}"), "amount": "9.00"}),
            )
        })
        .collect();
    bodies.push((
        "DUP".into(),
        json!({"customer_id": c, "external_id": "DUP", "amount": "9.00"}),
    ));
    bodies.push((
        "DUP".into(),
        json!({"customer_id": c, "external_id": "DUP", "amount": "9.00"}),
    ));
    bodies.push(("NOPE".into(), json!({"customer_external_id": "NOPE", "amount": "9.00"})));
    bodies.push((
        "OLD".into(),
        json!({"customer_id": c, "external_id": "OLD", "amount": "1.00"}),
    ));
    let mut handles = Vec::new();
    for (name, body) in bodies {
        let client = app.client.clone();
        let url = format!("{}/v1/payments", app.address);
        let token = app.admin.clone();
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("sent");
            let status = r.status().as_u16();
            (name, status, r.json::<Value>().await.expect("json"))
        }));
    }
    let mut duplicates = Vec::new();
    for h in handles {
        let (name, status, body) = h.await.expect("join");
        match name.as_str() {
            "DUP" => duplicates.push(status),
            "NOPE" => assert_eq!(status, 422, "{body}"),
            "OLD" => assert_eq!(status, 409, "{body}"),
            _ => {
                assert_eq!(status, 201, "{name}: {body}");
                assert_eq!(body["external_id"], name.as_str());
                assert_eq!(body["amount"], "9.00");
                let allocated: i64 = body["allocations"]
                    .as_array()
                    .expect("allocations")
                    .iter()
                    .map(|a| cents(&a["amount"]))
                    .sum();
                assert_eq!(allocated, 900, "{body}");
            }
        }
    }
    duplicates.sort();
    assert_eq!(duplicates, vec![201, 409]);
    // 1.00 + 21 × 9.00 = 190.00 applied, oldest first, out of 200.00.
    check_invariants(&app, &invoices).await;
    let s = app.get(&format!("/v1/customers/{c}/statement")).await.expect(200);
    assert_eq!(s.body["totals"][0]["balance"], "10.00");
    // Every request reached the posting threads (the unknown customer is refused there).
    let metrics = app.get("/metrics").await.body;
    let sum = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("recaudo_payment_group_size_sum "))
        .expect("the group size metric");
    assert_eq!(sum.trim(), "25");
}

async fn post_keyed(app: &TestApp, key: &str, body: &Value) -> (u16, Value, bool) {
    let (status, body, replayed) = post_with_key(app, "/v1/payments", key, body).await;
    (status, body, replayed.is_some())
}

async fn concurrent_payments_with_idempotency_keys_post_once_each(app: TestApp) {
    let c = app.customer("C-1").await;
    let invoice = app.invoice(&c, "F-1", "100.00", "2026-01-31").await;
    let mut requests: Vec<(String, Value)> = (0..12)
        .map(|i| {
            (
                format!("K-{i}"),
                json!({"customer_id": c, "amount": "5.00", "reference": format!("r{i}")}),
            )
        })
        .collect();
    for _ in 0..3 {
        requests.push(("SAME".into(), json!({"customer_id": c, "amount": "7.00"})));
    }
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for (key, body) in requests {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let answer = post_keyed(&app, &key, &body).await;
            (key, answer)
        }));
    }
    let mut same = Vec::new();
    let mut first_of_k0 = String::new();
    for h in handles {
        let (key, (status, body, replayed)) = h.await.expect("join");
        assert_eq!(status, 201, "{key}: {body}");
        if key == "SAME" {
            same.push((replayed, body["id"].as_str().unwrap_or("").to_string()));
        } else {
            assert!(!replayed, "{key} was posted once: {body}");
            assert_eq!(body["amount"], "5.00");
            if key == "K-0" {
                first_of_k0 = body["id"].as_str().unwrap_or("").to_string();
            }
        }
    }
    same.sort();
    assert_eq!(same.iter().filter(|(replayed, _)| !replayed).count(), 1, "{same:?}");
    assert!(
        same.iter().all(|(_, id)| *id == same[0].1),
        "one payment for the key: {same:?}"
    );
    // Later retries replay; a different request under a used key is refused.
    let (status, body, replayed) = post_keyed(
        &app,
        "K-0",
        &json!({"customer_id": c, "amount": "5.00", "reference": "r0"}),
    )
    .await;
    assert_eq!(
        (status, replayed, body["id"].as_str()),
        (201, true, Some(first_of_k0.as_str()))
    );
    let (status, body, _) = post_keyed(&app, "K-0", &json!({"customer_id": c, "amount": "6.00"})).await;
    assert_eq!(status, 422, "{body}");
    let payments = app.get("/v1/payments?limit=100").await.expect(200);
    assert_eq!(payments.body["items"].as_array().map(Vec::len), Some(13));
    // 12 × 5.00 + 7.00 = 67.00 applied to the one invoice.
    let r = app.get(&format!("/v1/invoices/{invoice}")).await.expect(200);
    assert_eq!(r.body["open_amount"], "33.00");
    check_invariants(&app, &[(invoice, 10_000)]).await;
}
