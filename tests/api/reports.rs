use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    receivables_are_rebuilt_from_the_ledger_for_any_period,
    collections_are_credited_to_the_actions_before_them,
    promise_report_gives_the_kept_rate_per_collector,
    report_periods_are_checked,
);

fn day(offset: i64) -> String {
    let today: NaiveDate = Utc::now().date_naive();
    let d = if offset >= 0 {
        today + Days::new(offset as u64)
    } else {
        today - Days::new((-offset) as u64)
    };
    d.format("%Y-%m-%d").to_string()
}

async fn invoice(
    app: &TestApp,
    customer: &str,
    number: &str,
    amount: &str,
    currency: &str,
    issued: &str,
    due: &str,
) -> String {
    app.create(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": amount, "currency": currency,
            "issue_date": issued, "due_date": due}),
    )
    .await
}

async fn pay(app: &TestApp, customer: &str, invoice: &str, amount: &str, received_on: &str) -> String {
    app.create(
        "/v1/payments",
        &json!({"customer_id": customer, "amount": amount, "received_on": received_on,
            "allocations": [{"invoice_id": invoice, "amount": amount}]}),
    )
    .await
}

fn currency<'a>(report: &'a Value, code: &str) -> &'a Value {
    report["currencies"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["currency"] == code))
        .unwrap_or_else(|| panic!("no {code} in {report}"))
}

async fn receivables_are_rebuilt_from_the_ledger_for_any_period(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = invoice(&app, &c, "A", "1000.00", "EUR", "2026-01-01", "2026-01-31").await;
    let b = invoice(&app, &c, "B", "500.00", "EUR", "2026-03-10", "2026-04-09").await;
    let w = invoice(&app, &c, "W", "200.00", "EUR", "2026-03-15", "2026-03-20").await;
    invoice(&app, &c, "U", "50.00", "USD", "2026-03-02", "2026-03-30").await;
    pay(&app, &c, &a, "400.00", "2026-03-05").await;
    let bounced = pay(&app, &c, &a, "100.00", "2026-03-20").await;
    pay(&app, &c, &b, "300.00", "2026-04-15").await;

    // March, before anything was reversed or written off: A had 1 000 open at the start;
    // B and W were sold; 400 and 100 were paid on A.
    let march = "/v1/reports/receivables?from=2026-03-01&to=2026-03-31";
    let before = app.get(march).await.expect(200).body;
    assert_eq!(before["days"], 31);
    let eur = currency(&before, "EUR");
    assert_eq!(eur["opening"], "1000.00");
    assert_eq!(eur["sales"], "700.00");
    assert_eq!(eur["collected"], "500.00");
    assert_eq!(eur["written_off"], "0.00");
    // A 500 (59 days late), B 500 (not yet due), W 200 (11 days late).
    assert_eq!(eur["closing"], "1200.00");
    assert_eq!(eur["closing_current"], "500.00");
    assert_eq!(eur["closing_overdue"], "700.00");
    assert_eq!(eur["closing_aging"]["days_1_30"], "200.00");
    assert_eq!(eur["closing_aging"]["days_31_60"], "500.00");
    assert_eq!(eur["dso"], 53.1, "1 200 / 700 × 31");
    assert_eq!(eur["best_possible_dso"], 22.1, "500 / 700 × 31");
    assert_eq!(eur["average_days_delinquent"], 31.0);
    assert_eq!(eur["cei"], 41.7, "500 / 1 200");
    let usd = currency(&before, "USD");
    assert_eq!(usd["sales"], "50.00");
    assert_eq!(usd["closing"], "50.00");
    assert_eq!(usd["opening"], "0.00");

    // Today the 100 bounces and W is written off: March is unchanged, since both happened
    // after it.
    app.post(
        &format!("/v1/payments/{bounced}/reverse"),
        &json!({"reason": "cheque bounced"}),
    )
    .await
    .expect(200);
    app.post(&format!("/v1/invoices/{w}/write-off"), &json!({"reason": "insolvent"}))
        .await
        .expect(200);
    assert_eq!(app.get(march).await.expect(200).body, before);

    // From April to today: 1 200 open at the start; A is back to 600, B has 200 left, W
    // is written off; collected 300 − 100 = 200; nothing is current any more.
    let since = app
        .get(&format!("/v1/reports/receivables?from=2026-04-01&to={}", day(0)))
        .await
        .expect(200)
        .body;
    let eur = currency(&since, "EUR");
    assert_eq!(eur["opening"], "1200.00");
    assert_eq!(eur["sales"], "0.00");
    assert_eq!(eur["written_off"], "200.00");
    assert_eq!(eur["closing"], "800.00");
    assert_eq!(eur["collected"], "200.00");
    assert_eq!(eur["closing_current"], "0.00");
    assert_eq!(eur["dso"], Value::Null, "no sales, no DSO");
    assert_eq!(eur["cei"], 33.3, "(1 200 − 800) / 1 200");
}

async fn collections_are_credited_to_the_actions_before_them(app: TestApp) {
    let c = app
        .create(
            "/v1/customers",
            &json!({"external_id": "C-1", "name": "Client", "language": "pl", "collector": "marta",
                "contacts": [{"name": "Anna", "email": "ap@example.com", "is_primary_for_collections": true}]}),
        )
        .await;
    let inv = app
        .create(
            "/v1/invoices",
            &json!({"customer_id": c, "number": "OLD", "amount": "100.00", "issue_date": "2026-01-01",
                "due_date": day(-21), "delivered_on": "2026-01-02"}),
        )
        .await;
    // Paid in part before the action: not credited to it.
    pay(&app, &c, &inv, "10.00", &day(-3)).await;
    // 61 days late as of the run: the law firm's letter, approved and sent by hand.
    app.post("/v1/collection-runs", &json!({"as_of": day(40)}))
        .await
        .expect(201);
    let actions = app.get("/v1/actions").await.expect(200).body["items"].clone();
    let action = &actions[0];
    let id = action["id"].as_str().expect("id");
    app.post(&format!("/v1/actions/{id}/approve"), &json!({}))
        .await
        .expect(200);
    app.post(&format!("/v1/actions/{id}/complete"), &json!({"outcome": "posted"}))
        .await
        .expect(200);
    let empty = app.get("/v1/reports/collection-effectiveness").await.expect(200).body;
    assert_eq!(empty["total"]["actions"], 1);
    assert_eq!(
        empty["total"]["collected"],
        json!({"EUR": "0.00"}),
        "nothing paid since the action"
    );
    pay(&app, &c, &inv, "60.00", &day(0)).await;

    let r = app
        .get("/v1/reports/collection-effectiveness?within_days=0")
        .await
        .expect(200)
        .body;
    assert_eq!(r["within_days"], 0);
    let expected = json!({"actions": 1, "invoices": 1, "collected": {"EUR": "60.00"}});
    assert_eq!(r["total"], expected);
    assert_eq!(r["by_collector"], json!({"marta": expected}));
    let step = action["step_key"].as_str().expect("step");
    let channel = action["action"].as_str().expect("channel");
    assert_eq!(r["by_step"], json!({step: expected}));
    assert_eq!(r["by_channel"], json!({channel: expected}));
    // Performed today: a period that ended yesterday has no actions.
    let before = app
        .get(&format!("/v1/reports/collection-effectiveness?to={}", day(-1)))
        .await
        .expect(200)
        .body;
    assert_eq!(before["total"]["actions"], 0);
}

async fn promise_report_gives_the_kept_rate_per_collector(app: TestApp) {
    let c = app.customer("C-1").await;
    let kept_inv = app.invoice(&c, "F-1", "100.00", &day(-10)).await;
    let broken_inv = app.invoice(&c, "F-2", "80.00", &day(-10)).await;
    let open_inv = app.invoice(&c, "F-3", "30.00", &day(-10)).await;
    app.post(
        "/v1/promises",
        &json!({"customer_id": c, "invoice_ids": [kept_inv], "amount": "100.00", "promised_date": day(1)}),
    )
    .await
    .expect(201);
    let manager = app.token("manager");
    app.send(
        reqwest::Method::POST,
        "/v1/promises",
        Some(&manager),
        Some(&json!({"customer_id": c, "invoice_ids": [broken_inv], "amount": "80.00", "promised_date": day(1)})),
    )
    .await
    .expect(201);
    app.post(
        "/v1/promises",
        &json!({"customer_id": c, "invoice_ids": [open_inv], "amount": "30.00", "promised_date": day(20)}),
    )
    .await
    .expect(201);
    pay(&app, &c, &kept_inv, "100.00", &day(0)).await;
    app.post("/v1/promise-evaluations", &json!({"as_of": day(5)}))
        .await
        .expect(200);

    let r = app
        .get(&format!("/v1/reports/promises?from={}&to={}", day(0), day(30)))
        .await
        .expect(200)
        .body;
    assert_eq!(r["total"]["kept"], 1);
    assert_eq!(r["total"]["broken"], 1);
    assert_eq!(r["total"]["open"], 1);
    assert_eq!(r["total"]["kept_rate"], 0.5);
    assert_eq!(
        r["total"]["amounts"]["EUR"],
        json!({"promised": "210.00", "paid": "100.00"})
    );
    assert_eq!(r["by_collector"]["admin-user"]["kept_rate"], 1.0);
    assert_eq!(r["by_collector"]["admin-user"]["open"], 1);
    assert_eq!(r["by_collector"]["manager-user"]["kept_rate"], 0.0);
    assert_eq!(
        r["by_collector"]["manager-user"]["amounts"]["EUR"],
        json!({"promised": "80.00", "paid": "0.00"})
    );
    // Only the promises due in the period count.
    let first_days = app
        .get(&format!("/v1/reports/promises?from={}&to={}", day(0), day(10)))
        .await
        .expect(200)
        .body;
    assert_eq!(first_days["total"]["open"], 0);
    assert_eq!(first_days["total"]["kept"], 1);
}

async fn report_periods_are_checked(app: TestApp) {
    for (path, field) in [
        (format!("/v1/reports/receivables?to={}", day(1)), "to"),
        (
            "/v1/reports/receivables?from=2026-03-02&to=2026-03-01".to_string(),
            "from",
        ),
        (
            "/v1/reports/receivables?from=2023-01-01&to=2026-03-01".to_string(),
            "from",
        ),
        ("/v1/reports/receivables?from=2026-13-01".to_string(), "from"),
        (format!("/v1/reports/collection-effectiveness?to={}", day(1)), "to"),
        (
            "/v1/reports/collection-effectiveness?within_days=91".to_string(),
            "within_days",
        ),
        ("/v1/reports/promises?from=2026-03-02&to=2026-03-01".to_string(), "from"),
    ] {
        let r = app.get(&path).await.expect_problem(422);
        assert_eq!(r.error_fields(), vec![field.to_string()], "{path}");
    }
    app.get("/v1/reports/collection-effectiveness?within_days=-1")
        .await
        .expect_problem(400);
    // An empty book has no currencies.
    let r = app.get("/v1/reports/receivables").await.expect(200).body;
    assert_eq!(r["currencies"], json!([]));
    assert_eq!(r["days"], 90);
}
