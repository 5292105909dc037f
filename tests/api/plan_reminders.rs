//! The collection run chases payment-plan instalments (once each, within the grace days),
//! and assignment rules on risk class pick their strategy.

use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    an_overdue_instalment_gets_one_reminder_and_a_rerun_is_a_no_op,
    a_paid_instalment_gets_no_reminder_and_payment_cancels_a_queued_one,
    a_rule_on_risk_class_d_picks_its_strategy,
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A date `n` days from today (negative: ago), as the API writes it.
fn day(n: i64) -> String {
    let d = if n >= 0 {
        today() + Days::new(n as u64)
    } else {
        today() - Days::new((-n) as u64)
    };
    d.format("%Y-%m-%d").to_string()
}

fn date(n: i64) -> NaiveDate {
    NaiveDate::parse_from_str(&day(n), "%Y-%m-%d").expect("date")
}

async fn customer(app: &TestApp, ext: &str, language: &str) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": format!("Client {ext}"), "language": language, "collector": "laura",
            "contacts": [{"name": "Anna", "email": "ap@example.com", "is_primary_for_collections": true}]}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn invoice(app: &TestApp, customer: &str, number: &str, amount: &str, issued: i64, due: i64) -> String {
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": amount, "issue_date": day(issued),
            "due_date": day(due), "delivered_on": day(issued)}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// A plan of two instalments over one invoice of 300.00: 100.00 in 10 days, 200.00 in 40.
async fn plan(app: &TestApp, invoice: &str) -> Value {
    app.post(
        "/v1/payment-plans",
        &json!({"invoice_ids": [invoice], "grace_days": 5,
            "instalments": [{"due_date": day(10), "amount": "100.00"}, {"due_date": day(40), "amount": "200.00"}]}),
    )
    .await
    .expect(201)
    .body
}

async fn run(app: &TestApp, on: NaiveDate) -> Value {
    app.post(
        "/v1/collection-runs",
        &json!({"as_of": on.format("%Y-%m-%d").to_string()}),
    )
    .await
    .expect(201)
    .body
}

async fn actions(app: &TestApp, query: &str) -> Vec<Value> {
    app.get(&format!("/v1/actions?limit=500{query}")).await.expect(200).body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn an_overdue_instalment_gets_one_reminder_and_a_rerun_is_a_no_op(app: TestApp) {
    let c = customer(&app, "C-1", "es").await;
    let inv = invoice(&app, &c, "2026/0042", "300.00", -40, -10).await;
    plan(&app, &inv).await;
    // The day before the instalment's date nothing is due; the invoice is in the plan.
    let before = run(&app, date(10)).await;
    assert_eq!(before["summary"]["actions_created"], 0, "{before}");
    assert_eq!(before["summary"]["skipped"]["in_payment_plan"], 1);
    assert_eq!(before["summary"]["skipped"]["instalment_not_yet_due"], 2);

    // Two days late: one reminder, in Spanish, naming the instalment, its date and amount,
    // the consequence of a default and the last day of grace.
    let r = run(&app, date(12)).await;
    assert_eq!(r["summary"]["actions_by_step"]["plan_instalment_reminder"], 1, "{r}");
    assert_eq!(r["summary"]["skipped"]["instalment_not_yet_due"], 1);
    let list = actions(&app, &format!("&customer_id={c}")).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a["step_key"], "plan_instalment_reminder");
    assert_eq!(a["action"], "email");
    assert_eq!(a["status"], "queued");
    assert_eq!(a["recipient"], "ap@example.com");
    assert_eq!(a["assignee"], "laura");
    assert_eq!(a["invoice_ids"], json!([inv]));
    let text = a["body_text"].as_str().unwrap_or_default();
    let reply_by = date(15).format("%d/%m/%Y").to_string();
    for expected in [
        "Plazo 1 de 2",
        &date(10).format("%d/%m/%Y").to_string(),
        "100,00 €",
        "2 días de retraso",
        "2026/0042",
        "el plan de pagos quedará sin efecto",
        "300,00 €",
        &reply_by,
    ] {
        assert!(text.contains(expected), "`{expected}` missing from:\n{text}");
    }
    assert!(
        a["subject"].as_str().is_some_and(|s| s.contains("plazo 1 de 2")),
        "{}",
        a["subject"]
    );

    // Re-running the date returns the same run; a later run does not repeat the reminder.
    let again = run(&app, date(12)).await;
    assert_eq!(again["id"], r["id"]);
    let next = run(&app, date(13)).await;
    assert_eq!(next["summary"]["actions_created"], 0, "{next}");
    assert_eq!(next["summary"]["skipped"]["instalment_already_reminded"], 1);
    assert_eq!(actions(&app, &format!("&customer_id={c}")).await.len(), 1);
}

async fn a_paid_instalment_gets_no_reminder_and_payment_cancels_a_queued_one(app: TestApp) {
    // Paid before the run: no reminder.
    let paid = customer(&app, "C-1", "en").await;
    let inv = invoice(&app, &paid, "A-1", "300.00", -40, -10).await;
    plan(&app, &inv).await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": paid, "amount": "100.00", "received_on": day(0), "reference": "A-1"}),
    )
    .await
    .expect(201);
    // Reminded, then paid before delivery: the queued message is cancelled.
    let late = customer(&app, "C-2", "en").await;
    let inv2 = invoice(&app, &late, "B-1", "300.00", -40, -10).await;
    plan(&app, &inv2).await;

    let r = run(&app, date(12)).await;
    assert_eq!(r["summary"]["skipped"]["instalment_paid"], 1, "{r}");
    assert_eq!(r["summary"]["actions_by_step"]["plan_instalment_reminder"], 1);
    assert!(actions(&app, &format!("&customer_id={paid}")).await.is_empty());
    let reminder = actions(&app, &format!("&customer_id={late}")).await;
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0]["status"], "queued");
    assert!(
        reminder[0]["body_text"]
            .as_str()
            .is_some_and(|t| t.contains("Instalment 1 of 2") && t.contains("€100.00")),
        "{}",
        reminder[0]["body_text"]
    );
    app.post(
        "/v1/payments",
        &json!({"customer_id": late, "amount": "100.00", "received_on": day(0), "reference": "B-1"}),
    )
    .await
    .expect(201);
    let reminder = actions(&app, &format!("&customer_id={late}")).await;
    assert_eq!(reminder[0]["status"], "cancelled", "{:?}", reminder[0]);
}

async fn a_rule_on_risk_class_d_picks_its_strategy(app: TestApp) {
    // Risk class D from the payment history: an invoice paid 40 days late (20 + 10
    // points), one open 100 days overdue (15) and exposure over a limit of 1.00 (15).
    let risky = customer(&app, "C-1", "en").await;
    app.patch(&format!("/v1/customers/{risky}"), &json!({"credit_limit": "1.00"}))
        .await
        .expect(200);
    invoice(&app, &risky, "R-1", "100.00", -200, -190).await;
    invoice(&app, &risky, "R-2", "1000.00", -130, -100).await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": risky, "amount": "100.00", "received_on": day(-150), "reference": "R-1"}),
    )
    .await
    .expect(201);
    let row = app.get(&format!("/v1/customers/{risky}")).await.expect(200).body;
    assert_eq!(
        row["risk_class"],
        "D",
        "{}",
        app.get(&format!("/v1/customers/{risky}/risk")).await.body
    );
    // A steady customer with the same overdue invoice stays on the default strategy.
    let steady = customer(&app, "C-2", "en").await;
    invoice(&app, &steady, "S-1", "1000.00", -130, -100).await;

    let doc = json!({"description": "Class D accounts: a call from the first day overdue",
        "rules": {"risk_classes": ["D"]},
        "steps": [{"key": "class_d_call", "offset_days": 1, "action": "call", "tone": "firm", "template": "call_script"}]});
    let s = app
        .post("/v1/strategies", &json!({"name": "Class D", "document": doc}))
        .await
        .expect(201)
        .body;
    let id = s["id"].as_str().expect("id");
    app.post(&format!("/v1/strategies/{id}/versions/1/publish"), &json!({}))
        .await
        .expect(200);

    run(&app, today()).await;
    let list = actions(&app, &format!("&customer_id={risky}")).await;
    let keys: Vec<&str> = list.iter().map(|a| a["step_key"].as_str().unwrap_or("")).collect();
    assert_eq!(keys, vec!["class_d_call"]);
    let other = actions(&app, &format!("&customer_id={steady}")).await;
    assert!(
        other.iter().all(|a| a["step_key"] != "class_d_call") && !other.is_empty(),
        "{other:?}"
    );
}
