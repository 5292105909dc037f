use chrono::{Days, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use std::time::Duration;

use crate::both_engines;
use crate::helpers::{Engine, Options, TestApp, spawn_with};

both_engines!(
    application_lifecycle_and_approval_update_the_customer,
    prospect_approval_creates_the_customer_and_rejection_needs_a_reason,
    credit_checks_approve_or_hold_with_reasons,
    hold_is_placed_and_released_automatically_when_money_moves,
    manual_release_by_a_manager,
    risk_endpoint_on_a_crafted_history_and_risk_filters,
    imported_history_is_the_risk_baseline,
    roles_and_tenancy,
    payments_queue_the_recomputation_and_reads_settle_it,
    a_recomputation_removes_only_entries_no_writer_moved,
    where_a_requeued_customer_goes_in_the_queue,
    writes_that_answer_a_credit_view_settle_a_queued_customer,
    a_recomputation_writes_each_customer_its_own_columns,
    exposures_follow_payments_down_to_zero_and_keep_open_orders,
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn days_ago(n: u64) -> String {
    (today() - Days::new(n)).to_string()
}

fn days_ahead(n: u64) -> String {
    (today() + Days::new(n)).to_string()
}

fn trade(company: &str, days: u32) -> Value {
    json!({"company": company, "email": format!("credit@{}.example", company.to_lowercase()),
           "average_days_to_pay": days, "status": "received", "relationship_years": 4})
}

fn bank() -> Value {
    json!({"bank": "Banc Sabadell", "account_age_years": 9, "rating": "good", "status": "received"})
}

async fn set_limit(app: &TestApp, customer: &str, limit: &str) {
    app.patch(&format!("/v1/customers/{customer}"), &json!({"credit_limit": limit}))
        .await
        .expect(200);
}

/// An invoice with explicit dates.
async fn invoice(app: &TestApp, customer: &str, number: &str, amount: &str, issue: &str, due: &str) -> String {
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "external_id": number, "number": number, "amount": amount,
                "issue_date": issue, "due_date": due}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn pay(app: &TestApp, customer: &str, amount: &str, on: &str, reference: &str) {
    app.post(
        "/v1/payments",
        &json!({"customer_id": customer, "amount": amount, "received_on": on, "reference": reference}),
    )
    .await
    .expect(201);
}

async fn check(app: &TestApp, body: Value) -> Value {
    app.post("/v1/credit-checks", &body).await.expect(200).body
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    app.get(&format!("/v1/events?kind={kind}&limit=500"))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn application_lifecycle_and_approval_update_the_customer(app: TestApp) {
    let c = app.customer("C-1").await;
    let draft = app
        .post(
            "/v1/credit-applications",
            &json!({"customer_id": c, "legal_name": "Customer C-1 SL", "years_in_business": 12,
                    "requested_limit": "20000.00", "requested_terms_days": 60,
                    "trade_references": [trade("Vila", 30)]}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["currency"], "EUR", "the customer's currency");
    assert!(draft["id"].as_str().is_some_and(|id| id.starts_with("cap_")));
    let id = draft["id"].as_str().expect("id").to_string();

    let r = app
        .post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["trade_references", "bank_references"]);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 given"))
    );

    // Shape errors are listed at once.
    let r = app
        .patch(
            &format!("/v1/credit-applications/{id}"),
            &json!({"bank_references": [{"bank": "X", "rating": "superb"}], "requested_limit": "1.001"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["requested_limit", "bank_references[0].rating"]);

    let patched = app
        .patch(
            &format!("/v1/credit-applications/{id}"),
            &json!({"trade_references": [trade("Vila", 30), trade("Roca", 40)], "bank_references": [bank()],
                    "financials": {"annual_revenue": "2400000.00", "equity": "600000.00", "net_income": "96000.00"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(patched["version"], 2);

    let submitted = app
        .post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(submitted["status"], "submitted");
    let card = &submitted["scorecard"];
    let score = card["score"].as_u64().expect("score");
    assert!(score <= 100);
    assert_eq!(card["factors"].as_array().map(Vec::len), Some(5));
    let history = card["factors"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["factor"] == "payment_history"))
        .expect("history factor");
    assert_eq!(history["available"], false, "no paid invoices yet");
    let class = card["risk_class"].as_str().expect("class").to_string();
    assert_eq!(class, "A", "strong references and financials: {card}");

    // Only managers decide.
    let sales = app.token("sales");
    app.send(
        Method::POST,
        &format!("/v1/credit-applications/{id}/decision"),
        Some(&sales),
        Some(&json!({"decision": "approved"})),
    )
    .await
    .expect_problem(403);
    let manager = app.token("manager");
    let reviewed = app
        .send(
            Method::POST,
            &format!("/v1/credit-applications/{id}/decision"),
            Some(&manager),
            Some(&json!({"decision": "under_review"})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(reviewed["status"], "under_review");
    let approved = app
        .send(
            Method::POST,
            &format!("/v1/credit-applications/{id}/decision"),
            Some(&manager),
            Some(
                &json!({"decision": "approved", "approved_limit": "15000.00", "payment_terms_days": 45,
                         "reason": "Good references"}),
            ),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["decision"]["reviewer"], "manager-user");
    assert_eq!(approved["decision"]["approved_limit"], "15000.00");
    assert_eq!(approved["decision"]["next_review_on"], days_ahead(365));

    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["credit_limit"], "15000.00");
    assert_eq!(customer["payment_terms_days"], 45);
    assert_eq!(customer["risk_class"], class.as_str());
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["history"][0]["new_limit"], "15000.00");
    assert_eq!(credit["history"][0]["previous_limit"], Value::Null);
    assert_eq!(credit["history"][0]["application_id"], id.as_str());
    assert_eq!(credit["available"], "15000.00");
    assert_eq!(credit["status"], "ok");

    // A decided application is closed.
    app.patch(&format!("/v1/credit-applications/{id}"), &json!({"notes": "late"}))
        .await
        .expect_problem(409);
    app.post(
        &format!("/v1/credit-applications/{id}/decision"),
        &json!({"decision": "rejected", "reason": "changed my mind"}),
    )
    .await
    .expect_problem(409);
    let listed = app
        .get(&format!("/v1/credit-applications?status=approved&customer_id={c}"))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(events_of(&app, "credit.limit_changed").await.len(), 1);
}

async fn prospect_approval_creates_the_customer_and_rejection_needs_a_reason(app: TestApp) {
    let body = json!({"legal_name": "Nova Distribucions SL", "tax_id": "B99999999", "country": "ES",
                      "years_in_business": 3, "requested_limit": "10000.00", "currency": "EUR",
                      "requested_terms_days": 30, "trade_references": [trade("Vila", 35), trade("Roca", 50)],
                      "bank_references": [bank()], "attachments": ["https://files.example/nova.pdf"]});
    let id = app.post("/v1/credit-applications", &body).await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let submitted = app
        .post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect(200)
        .body;
    let recommended = submitted["scorecard"]["recommended_limit"]
        .as_str()
        .expect("limit")
        .to_string();
    let approved = app
        .post(
            &format!("/v1/credit-applications/{id}/decision"),
            &json!({"decision": "approved"}),
        )
        .await
        .expect(200)
        .body;
    let customer_id = approved["customer_id"]
        .as_str()
        .expect("a customer was created")
        .to_string();
    let customer = app.get(&format!("/v1/customers/{customer_id}")).await.expect(200).body;
    assert_eq!(customer["name"], "Nova Distribucions SL");
    assert_eq!(customer["tax_id"], "B99999999");
    assert_eq!(customer["credit_limit"], recommended.as_str());
    assert_eq!(
        customer["risk_class"], submitted["scorecard"]["risk_class"],
        "the decision sets the class"
    );

    // Rejection needs a reason; the applicant stays a prospect.
    let id = app.post("/v1/credit-applications", &body).await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.post(
        &format!("/v1/credit-applications/{id}/decision"),
        &json!({"decision": "rejected", "reason": "x"}),
    )
    .await
    .expect_problem(409);
    app.post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect(200);
    app.patch(&format!("/v1/credit-applications/{id}"), &json!({"notes": "x"}))
        .await
        .expect_problem(409);
    // Sent back for more information, edited and submitted again.
    let back = app
        .post(
            &format!("/v1/credit-applications/{id}/decision"),
            &json!({"decision": "more_information_requested", "reason": "Send the 2025 accounts"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(back["status"], "more_information_requested");
    app.patch(
        &format!("/v1/credit-applications/{id}"),
        &json!({"financials": {"annual_revenue": "800000.00", "net_income": "-12000.00", "equity": "90000.00"}}),
    )
    .await
    .expect(200);
    let again = app
        .post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect(200)
        .body;
    let financials = again["scorecard"]["factors"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["factor"] == "financials"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(financials["available"], true, "a loss is rated: {financials}");
    let r = app
        .post(
            &format!("/v1/credit-applications/{id}/decision"),
            &json!({"decision": "rejected"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["reason"]);
    let rejected = app
        .post(
            &format!("/v1/credit-applications/{id}/decision"),
            &json!({"decision": "rejected", "reason": "Bank reference poor"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decision"]["reason"], "Bank reference poor");
    assert_eq!(rejected["customer_id"], Value::Null);

    // Completeness is configurable: with no references required, a bare draft submits.
    app.patch(
        "/v1/settings",
        &json!({"credit": {"min_trade_references": 0, "min_bank_references": 0}}),
    )
    .await
    .expect(200);
    let id = app
        .post(
            "/v1/credit-applications",
            &json!({"legal_name": "Bare SL", "requested_limit": "100.00"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let bare = app
        .post(&format!("/v1/credit-applications/{id}/submit"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(bare["scorecard"]["score"], 0, "nothing known: {}", bare["scorecard"]);
    assert_eq!(bare["scorecard"]["risk_class"], "E");
}

async fn credit_checks_approve_or_hold_with_reasons(app: TestApp) {
    let c = app.customer("C-1").await;
    set_limit(&app, &c, "1000.00").await;
    invoice(&app, &c, "F-1", "600.00", &days_ago(5), &days_ahead(25)).await;
    let ok = check(
        &app,
        json!({"customer_id": c, "order_amount": "300.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(ok["decision"], "approved");
    assert_eq!(ok["available_credit"], "400.00");
    assert_eq!(ok["exposure"], "600.00");
    assert_eq!(ok["reasons"], json!([]));
    let big = check(
        &app,
        json!({"customer_external_id": "C-1", "order_amount": "500.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(big["decision"], "hold");
    assert_eq!(big["reasons"][0]["code"], "order_exceeds_available");
    assert_eq!(big["credit_status"], "ok");

    // Open orders count in the exposure.
    let view = app
        .put(
            &format!("/v1/customers/{c}/open-orders"),
            &json!({"amount": "300.00", "currency": "EUR"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(view["exposure"]["open_orders"], "300.00");
    assert_eq!(view["exposure"]["exposure"], "900.00");
    assert_eq!(view["available"], "100.00");
    let r = check(
        &app,
        json!({"customer_id": c, "order_amount": "300.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(r["decision"], "hold");

    // Over the limit: the account itself is on hold.
    invoice(&app, &c, "F-2", "200.00", &days_ago(1), &days_ahead(29)).await;
    let held = check(
        &app,
        json!({"customer_id": c, "order_amount": "1.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(held["decision"], "hold");
    assert_eq!(held["credit_status"], "on_hold");
    assert_eq!(held["reasons"][0]["code"], "over_limit");
    assert_eq!(held["available_credit"], "-100.00");
    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["credit_status"], "on_hold");
    assert_eq!(customer["flags"]["credit_hold"], true);
    assert_eq!(customer["flags"]["over_limit"], true);
    assert_eq!(events_of(&app, "credit.hold_placed").await.len(), 1);
    // Raising the limit releases the hold at once.
    set_limit(&app, &c, "2000.00").await;
    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["credit_status"], "ok");
    assert_eq!(customer["flags"]["over_limit"], false);
    assert_eq!(events_of(&app, "credit.hold_released").await.len(), 1);
    set_limit(&app, &c, "1000.00").await;

    // More than 60 days overdue holds a customer without any limit.
    let d = app.customer("C-2").await;
    invoice(&app, &d, "G-1", "50.00", &days_ago(120), &days_ago(61)).await;
    let overdue = check(
        &app,
        json!({"customer_id": d, "order_amount": "10.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(overdue["decision"], "hold");
    assert_eq!(overdue["reasons"][0]["code"], "overdue");
    assert_eq!(overdue["available_credit"], Value::Null);
    let e = app.customer("C-3").await;
    invoice(&app, &e, "H-1", "50.00", &days_ago(100), &days_ago(60)).await;
    let fine = check(
        &app,
        json!({"customer_id": e, "order_amount": "10.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(fine["decision"], "approved", "60 days is not more than 60: {fine}");

    // Bad requests.
    for (body, field) in [
        (
            json!({"customer_id": c, "order_amount": "1.00", "currency": "USD"}),
            "currency",
        ),
        (
            json!({"customer_id": c, "order_amount": "1.001", "currency": "EUR"}),
            "order_amount",
        ),
        (
            json!({"customer_id": "cus_999999", "order_amount": "1.00", "currency": "EUR"}),
            "customer_id",
        ),
        (
            json!({"customer_external_id": "nope", "order_amount": "1.00", "currency": "EUR"}),
            "customer_external_id",
        ),
        (json!({"order_amount": "1.00", "currency": "EUR"}), "customer_id"),
    ] {
        let r = app.post("/v1/credit-checks", &body).await.expect_problem(422);
        assert_eq!(r.error_fields(), vec![field], "{body}");
    }
}

async fn hold_is_placed_and_released_automatically_when_money_moves(app: TestApp) {
    let c = app.customer("C-1").await;
    set_limit(&app, &c, "1000.00").await;
    invoice(&app, &c, "F-1", "1200.00", &days_ago(3), &days_ahead(27)).await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["status"], "on_hold");
    assert_eq!(credit["reasons"][0]["code"], "over_limit");
    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["credit_status"], "on_hold");

    // A payment brings the exposure under the limit: released in the same transaction.
    pay(&app, &c, "300.00", &today().to_string(), "F-1").await;
    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["credit_status"], "ok");
    assert_eq!(customer["flags"]["credit_hold"], false);
    let released = events_of(&app, "credit.hold_released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["payload"]["manual"], false);
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "900.00");
    assert_eq!(credit["available"], "100.00");

    // Unapplied cash lowers the exposure too.
    pay(&app, &c, "50.00", &today().to_string(), "nothing to match").await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["exposure"], "850.00", "{credit}");

    // The daily recomputation through the API changes nothing more.
    let summary = app.post("/v1/credit-evaluations", &json!({})).await.expect(200).body;
    assert_eq!(summary["holds_placed"], 0);
    assert_eq!(summary["customers"], 1);
}

async fn manual_release_by_a_manager(app: TestApp) {
    let c = app.customer("C-1").await;
    invoice(&app, &c, "F-1", "100.00", &days_ago(150), &days_ago(90)).await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["status"], "on_hold");
    let path = format!("/v1/customers/{c}/credit/release");
    let collector = app.token("collector");
    app.send(Method::POST, &path, Some(&collector), Some(&json!({"reason": "x"})))
        .await
        .expect_problem(403);
    let r = app.post(&path, &json!({"reason": "  "})).await.expect_problem(422);
    assert_eq!(r.error_fields(), vec!["reason"]);
    let manager = app.token("manager");
    let view = app
        .send(
            Method::POST,
            &path,
            Some(&manager),
            Some(&json!({"reason": "Paid by wire, remittance pending", "until": days_ahead(7)})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(view["status"], "manual_release");
    assert_eq!(view["manual_release"]["reason"], "Paid by wire, remittance pending");
    assert_eq!(view["manual_release"]["released_by"], "manager-user");
    assert_eq!(view["reasons"][0]["code"], "overdue", "the rule still applies, waived");
    let answer = check(
        &app,
        json!({"customer_id": c, "order_amount": "10.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(answer["decision"], "approved");
    assert_eq!(answer["credit_status"], "manual_release");
    let released = events_of(&app, "credit.hold_released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["payload"]["manual"], true);
    assert_eq!(released[0]["payload"]["released_by"], "manager-user");
    // A customer that is not on hold cannot be released.
    let d = app.customer("C-2").await;
    app.post(
        &format!("/v1/customers/{d}/credit/release"),
        &json!({"reason": "why not"}),
    )
    .await
    .expect_problem(409);
}

/// Six invoices of 100.00 on terms of 10 days, paid in 5, 5, then 12, 12, then 25, 25 days.
/// With `baseline_first`, the customer is assessed as of yesterday after the first two (paid
/// on time): the baseline the later slowdown is a change from.
async fn slowing_payer_history(app: &TestApp, c: &str, baseline_first: bool) {
    for (n, (issued, dtp)) in [(200, 5), (190, 5), (150, 12), (140, 12), (60, 25), (50, 25)]
        .into_iter()
        .enumerate()
    {
        let number = format!("F-{n}");
        invoice(app, c, &number, "100.00", &days_ago(issued), &days_ago(issued - 10)).await;
        pay(app, c, "100.00", &days_ago(issued - dtp), &number).await;
        if baseline_first && n == 1 {
            app.post("/v1/credit-evaluations", &json!({"as_of": days_ago(1)}))
                .await
                .expect(200);
        }
    }
}

/// A customer loaded with a history of paying late: its first assessment shows the risk
/// (signals, class, the at-risk flag) but creates no check-in task, since nothing changed;
/// a signal that starts firing on a later day does.
async fn imported_history_is_the_risk_baseline(app: TestApp) {
    let c = app.customer("C-1").await;
    app.patch(
        &format!("/v1/customers/{c}"),
        &json!({"collector": "marta", "credit_limit": "10000.00"}),
    )
    .await
    .expect(200);
    slowing_payer_history(&app, &c, false).await;
    invoice(&app, &c, "OPEN-1", "500.00", &days_ago(5), &days_ahead(25)).await;
    let risk = app.get(&format!("/v1/customers/{c}/risk")).await.expect(200).body;
    assert_eq!(risk["flags"]["at_risk"], true, "{risk}");
    let check_ins = |tasks: &Value| -> Vec<String> {
        tasks["items"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter(|x| x["kind"] == "risk_check_in")
                    .filter_map(|x| x["title"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let tasks = app.get(&format!("/v1/tasks?customer_id={c}")).await.expect(200).body;
    assert_eq!(
        check_ins(&tasks),
        Vec::<String>::new(),
        "the first day is the baseline: {tasks}"
    );

    // Tomorrow the exposure is over a lowered limit: that is a change, and a call is due.
    app.patch(&format!("/v1/customers/{c}"), &json!({"credit_limit": "100.00"}))
        .await
        .expect(200);
    app.post("/v1/credit-evaluations", &json!({"as_of": days_ahead(1)}))
        .await
        .expect(200);
    let tasks = app.get(&format!("/v1/tasks?customer_id={c}")).await.expect(200).body;
    let titles = check_ins(&tasks);
    assert_eq!(titles.len(), 1, "{tasks}");
    assert!(titles[0].contains("credit limit"), "{titles:?}");
}

async fn risk_endpoint_on_a_crafted_history_and_risk_filters(app: TestApp) {
    let c = app.customer("C-1").await;
    app.patch(&format!("/v1/customers/{c}"), &json!({"collector": "marta"}))
        .await
        .expect(200);
    slowing_payer_history(&app, &c, true).await;
    let risk = app.get(&format!("/v1/customers/{c}/risk")).await.expect(200).body;
    let signal = |name: &str| {
        risk["signals"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["signal"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(signal("days_to_pay_trend")["fires"], true, "{risk}");
    assert_eq!(signal("days_to_pay_trend")["value"], 16.5);
    assert_eq!(signal("average_days_to_pay")["value"], 14.0);
    assert_eq!(signal("share_paid_late")["value"], 0.67);
    assert!(
        signal("days_to_pay_trend")["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("25.0"))
    );
    // Paid into in the last 90 days: the two invoices paid 35 and 25 days ago, in full.
    assert_eq!(signal("partial_payments")["value"], 0.0, "{risk}");
    assert!(
        signal("partial_payments")["explanation"]
            .as_str()
            .is_some_and(|e| e.starts_with("0 of 2 invoices")),
        "{risk}"
    );
    assert_eq!(risk["score"], 30);
    assert_eq!(risk["risk_class"], "C");
    assert_eq!(risk["class_source"], "payment_history");
    assert_eq!(risk["flags"]["at_risk"], true);

    // The customer row was recomputed when the payments posted.
    let customer = app.get(&format!("/v1/customers/{c}")).await.expect(200).body;
    assert_eq!(customer["risk_class"], "C");
    assert_eq!(customer["risk_score"], 30);
    assert_eq!(customer["flags"]["at_risk"], true);
    let tasks = app
        .get(&format!("/v1/tasks?customer_id={c}&assignee=marta"))
        .await
        .expect(200)
        .body;
    let check_ins: Vec<&Value> = tasks["items"]
        .as_array()
        .map(|t| t.iter().filter(|x| x["kind"] == "risk_check_in").collect())
        .unwrap_or_default();
    assert!(
        !check_ins.is_empty(),
        "a worsening signal creates a check-in task: {tasks}"
    );

    let clean = app.customer("C-2").await;
    let clean_risk = app.get(&format!("/v1/customers/{clean}/risk")).await.expect(200).body;
    assert_eq!(clean_risk["score"], 0);
    assert_eq!(clean_risk["class_source"], "none");

    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["id"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let c_only = app.get("/v1/customers?risk_class=C").await.expect(200).body;
    assert_eq!(ids(&c_only), vec![c.clone()]);
    let bad = app.get("/v1/customers?risk_class=D,E").await.expect(200).body;
    assert!(ids(&bad).is_empty());
    let sorted = app.get("/v1/customers?sort=risk&limit=1").await.expect(200).body;
    assert_eq!(ids(&sorted), vec![c.clone()], "riskiest first");
    let cursor = sorted["next_cursor"].as_str().expect("more").to_string();
    let next = app
        .get(&format!("/v1/customers?sort=risk&limit=1&cursor={cursor}"))
        .await
        .expect(200)
        .body;
    assert_eq!(ids(&next), vec![clean]);
    assert_eq!(next["next_cursor"], Value::Null);
    app.get("/v1/customers?risk_class=Z").await.expect_problem(422);
    app.get("/v1/customers?sort=name").await.expect_problem(422);
}

async fn roles_and_tenancy(app: TestApp) {
    let c = app.customer("C-1").await;
    let id = app
        .post(
            "/v1/credit-applications",
            &json!({"customer_id": c, "requested_limit": "100.00"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let viewer = app.token("viewer");
    let collector = app.token("collector");
    app.send(Method::POST, "/v1/credit-applications", Some(&viewer), Some(&json!({})))
        .await
        .expect_problem(403);
    app.send(
        Method::GET,
        &format!("/v1/credit-applications/{id}"),
        Some(&viewer),
        None,
    )
    .await
    .expect(200);
    app.send(
        Method::POST,
        "/v1/credit-checks",
        Some(&collector),
        Some(&json!({"customer_id": c, "order_amount": "1.00", "currency": "EUR"})),
    )
    .await
    .expect_problem(403);
    app.send(
        Method::PUT,
        &format!("/v1/customers/{c}/open-orders"),
        Some(&collector),
        Some(&json!({"amount": "1.00", "currency": "EUR"})),
    )
    .await
    .expect_problem(403);
    app.send(
        Method::POST,
        "/v1/credit-evaluations",
        Some(&collector),
        Some(&json!({})),
    )
    .await
    .expect_problem(403);
    let sales = app.token("sales");
    check_as(&app, &sales, &c).await;

    let other = app.create_org("other");
    for path in [
        format!("/v1/credit-applications/{id}"),
        format!("/v1/customers/{c}/credit"),
        format!("/v1/customers/{c}/risk"),
        "/v1/credit-applications/cap_0".to_string(),
        "/v1/customers/inv_1/risk".to_string(),
    ] {
        app.send(Method::GET, &path, Some(&other), None)
            .await
            .expect_problem(404);
    }
    app.send(
        Method::POST,
        &format!("/v1/credit-applications/{id}/submit"),
        Some(&other),
        Some(&json!({})),
    )
    .await
    .expect_problem(404);
    app.send(
        Method::PUT,
        &format!("/v1/customers/{c}/open-orders"),
        Some(&other),
        Some(&json!({"amount": "1.00", "currency": "EUR"})),
    )
    .await
    .expect_problem(404);
    let r = app
        .send(
            Method::POST,
            "/v1/credit-checks",
            Some(&other),
            Some(&json!({"customer_id": c, "order_amount": "1.00", "currency": "EUR"})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["customer_id"]);
    let list = app
        .send(Method::GET, "/v1/credit-applications", Some(&other), None)
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"], json!([]));
}

async fn check_as(app: &TestApp, token: &str, customer: &str) {
    let r = app
        .send(
            Method::POST,
            "/v1/credit-checks",
            Some(token),
            Some(&json!({"customer_id": customer, "order_amount": "1.00", "currency": "EUR"})),
        )
        .await
        .expect(200);
    assert_eq!(r.body["decision"], "approved");
}

/// What the database holds for a customer, read directly (no API read, which would
/// recompute a queued customer first): its credit status and whether it is queued.
async fn stored_credit_state(app: &TestApp, customer: &str) -> (String, bool) {
    let pool = app.state.pool.clone();
    let id = recaudo::domain::ids::Kind::Customer
        .decode(customer)
        .expect("customer id");
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        let org = recaudo::db::repo::organizations::find_by_slug(&mut conn, recaudo::DEFAULT_ORG)
            .expect("query")
            .expect("default org");
        let row = recaudo::db::repo::customers::find(&mut conn, org.id, id).expect("customer");
        let queued = recaudo::db::repo::credit_queue::is_queued(&mut conn, id).expect("queue");
        (row.credit_status, queued)
    })
    .await
    .expect("join")
}

/// Over its limit, then paid under it.
async fn held_then_paid(app: &TestApp) -> String {
    let c = app.customer("C-1").await;
    set_limit(app, &c, "1000.00").await;
    invoice(app, &c, "F-1", "1200.00", &days_ago(3), &days_ahead(27)).await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["status"], "on_hold");
    assert_eq!(stored_credit_state(app, &c).await, ("on_hold".to_string(), false));
    pay(app, &c, "300.00", &today().to_string(), "F-1").await;
    c
}

/// Without the background worker: the payment queues the customer and leaves its stored
/// credit state alone; the next credit check recomputes it first and answers from it.
async fn payments_queue_the_recomputation_and_reads_settle_it(app: TestApp) {
    let c = held_then_paid(&app).await;
    assert_eq!(stored_credit_state(&app, &c).await, ("on_hold".to_string(), true));
    let r = check(
        &app,
        json!({"customer_id": c, "order_amount": "50.00", "currency": "EUR"}),
    )
    .await;
    assert_eq!(r["decision"], "approved", "{r}");
    assert_eq!(r["credit_status"], "ok");
    assert_eq!(r["available_credit"], "100.00");
    assert_eq!(stored_credit_state(&app, &c).await, ("ok".to_string(), false));
    assert_eq!(events_of(&app, "credit.hold_released").await.len(), 1);
}

/// Open orders and a manual release answer with the credit view, which recomputes a
/// queued customer inside the write's own transaction (a nested transaction: it failed on
/// SQLite with a 500 when a posting was still queued).
async fn writes_that_answer_a_credit_view_settle_a_queued_customer(app: TestApp) {
    let c = held_then_paid(&app).await;
    assert_eq!(stored_credit_state(&app, &c).await, ("on_hold".to_string(), true));
    let view = app
        .put(
            &format!("/v1/customers/{c}/open-orders"),
            &json!({"amount": "50.00", "currency": "EUR"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(view["exposure"]["exposure"], "950.00", "{view}");
    assert_eq!(view["status"], "ok");
    assert_eq!(stored_credit_state(&app, &c).await, ("ok".to_string(), false));

    invoice(&app, &c, "F-2", "500.00", &days_ago(1), &days_ahead(29)).await;
    assert!(stored_credit_state(&app, &c).await.1);
    let manager = app.token("manager");
    let released = app
        .send(
            Method::POST,
            &format!("/v1/customers/{c}/credit/release"),
            Some(&manager),
            Some(&json!({"reason": "order approved by the CFO"})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(released["exposure"]["exposure"], "1450.00", "{released}");
    assert!(!stored_credit_state(&app, &c).await.1);
}

/// With the background worker on, a queued customer is recomputed without any read.
async fn the_background_worker_recomputes_queued_customers(engine: Engine) {
    let Some(app) = spawn_with(
        engine,
        Options {
            credit_refresh: Some(Duration::from_millis(20)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let c = held_then_paid(&app).await;
    let mut state = stored_credit_state(&app, &c).await;
    for _ in 0..200 {
        if state == ("ok".to_string(), false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = stored_credit_state(&app, &c).await;
    }
    assert_eq!(state, ("ok".to_string(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_recomputes_queued_customers_on_sqlite() {
    the_background_worker_recomputes_queued_customers(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_recomputes_queued_customers_on_postgres() {
    the_background_worker_recomputes_queued_customers(Engine::Postgres).await;
}

/// A recomputation removes only the queue entries it read unchanged: on PostgreSQL one a
/// writer bumped and committed since stays queued, and one a writer is bumping in a still
/// open transaction is skipped at once rather than waited for (waiting let a writer that
/// enqueues again later in its transaction deadlock with the background worker). On
/// SQLite, where no writer commits while a recomputation runs, queuing a queued customer
/// leaves its entry as it was, and the recomputation removes it.
async fn a_recomputation_removes_only_entries_no_writer_moved(app: TestApp) {
    use diesel::RunQueryDsl;
    use recaudo::db::repo::credit_queue as queue;
    use recaudo::db::{DbConnection, write_transaction};
    use recaudo::error::AppError;

    let customer = app.customer("C-QUEUE").await;
    let id = recaudo::domain::ids::Kind::Customer
        .decode(&customer)
        .expect("customer id");
    let pool = app.state.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = pool.get().expect("connection");
        let mut remover = pool.get().expect("connection");
        let org = recaudo::db::repo::organizations::find_by_slug(&mut writer, recaudo::DEFAULT_ORG)
            .expect("query")
            .expect("default org")
            .id;
        queue::enqueue(&mut writer, org, &[id]).expect("enqueue");
        let read = queue::entry(&mut remover, id).expect("read").expect("queued");

        queue::enqueue(&mut writer, org, &[id]).expect("bump");
        if let DbConnection::Sqlite(_) = &*remover {
            assert_eq!(
                queue::entry(&mut remover, id).expect("read"),
                Some(read),
                "left as it was"
            );
            queue::remove_done(&mut remover, &[read]).expect("remove");
            assert_eq!(queue::entry(&mut remover, id).expect("read"), None);
            return;
        }
        queue::remove_done(&mut remover, &[read]).expect("remove");
        let bumped = queue::entry(&mut remover, id).expect("read").expect("still queued");
        assert_eq!(bumped.seq, read.seq + 1);

        if let DbConnection::Pg(pg) = &mut *remover {
            // Without the skip, the removal below would wait for the writer's transaction,
            // which waits for the removal: it fails on this timeout instead of hanging.
            diesel::sql_query("SET lock_timeout = '5s'").execute(pg).expect("set");
            write_transaction(&mut writer, |w| {
                queue::enqueue(w, org, &[id])?;
                queue::remove_done(&mut remover, &[bumped])?;
                Ok::<_, AppError>(())
            })
            .expect("the removal skips the entry being bumped");
            if let DbConnection::Pg(pg) = &mut *remover {
                diesel::sql_query("RESET lock_timeout").execute(pg).expect("reset");
            }
        }
        let current = queue::entry(&mut remover, id).expect("read").expect("still queued");
        queue::remove_done(&mut remover, &[current]).expect("remove");
        assert_eq!(queue::entry(&mut remover, id).expect("read"), None);
    })
    .await
    .expect("join");
}

/// Queuing a customer already queued: on PostgreSQL it bumps its `seq` and sends it to the
/// back, so the customers that every batch re-queues (the largest) do not keep the worker
/// from the others; on SQLite the entry keeps its place and its `seq`.
async fn where_a_requeued_customer_goes_in_the_queue(app: TestApp) {
    use recaudo::db::repo::credit_queue as queue;
    use recaudo::domain::ids::Kind;

    let first = Kind::Customer.decode(&app.customer("C-FIRST").await).expect("id");
    let second = Kind::Customer.decode(&app.customer("C-SECOND").await).expect("id");
    let pool = app.state.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pool.get().expect("connection");
        let org = recaudo::db::repo::organizations::find_by_slug(&mut c, recaudo::DEFAULT_ORG)
            .expect("query")
            .expect("default org")
            .id;
        let queued = queue::of_org(&mut c, org, 100).expect("read");
        queue::remove_done(&mut c, &queued).expect("empty the queue");

        queue::enqueue(&mut c, org, &[first]).expect("enqueue");
        queue::enqueue(&mut c, org, &[second]).expect("enqueue");
        queue::enqueue(&mut c, org, &[first]).expect("enqueue again");
        let order: Vec<(i64, i64)> = queue::of_org(&mut c, org, 100)
            .expect("read")
            .into_iter()
            .map(|e| (e.customer_id, e.seq))
            .collect();
        let (expected, oldest) = match &*c {
            recaudo::db::DbConnection::Pg(_) => (vec![(second, 1), (first, 2)], second),
            recaudo::db::DbConnection::Sqlite(_) => (vec![(first, 1), (second, 1)], first),
        };
        assert_eq!(order, expected);
        assert_eq!(queue::oldest(&mut c, 1).expect("read")[0].customer_id, oldest);
    })
    .await
    .expect("join");
}

/// The recomputation writes the derived customer columns of a batch grouped by their new
/// values: customers that end up different each get their own, and a customer whose values
/// did not change keeps its version.
async fn a_recomputation_writes_each_customer_its_own_columns(app: TestApp) {
    use diesel::RunQueryDsl;

    let clean = app.customer("C-CLEAN").await;
    let held = app.customer("C-HELD").await;
    let untouched = app.customer("C-UNTOUCHED").await;
    set_limit(&app, &held, "1000.00").await;
    invoice(&app, &held, "F-1", "1200.00", &days_ago(3), &days_ahead(27)).await;
    let customer = |id: String| {
        let app = &app;
        async move { app.get(&format!("/v1/customers/{id}")).await.expect(200).body }
    };
    assert_eq!(customer(held.clone()).await["credit_status"], "on_hold");
    let untouched_version = customer(untouched.clone()).await["version"].clone();

    // Stale columns, swapped: the clean customer looks held, the held one looks clean.
    let number = |id: &str| recaudo::domain::ids::Kind::Customer.decode(id).expect("customer id");
    let (clean_id, held_id) = (number(&clean), number(&held));
    let pool = app.state.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pool.get().expect("connection");
        for sql in [
            format!("UPDATE customers SET credit_status = 'on_hold', flag_over_limit = TRUE WHERE id = {clean_id}"),
            format!("UPDATE customers SET credit_status = 'ok', flag_over_limit = FALSE WHERE id = {held_id}"),
        ] {
            diesel::sql_query(sql).execute(&mut *c).expect("update");
        }
    })
    .await
    .expect("blocking task");

    let summary = app.post("/v1/credit-evaluations", &json!({})).await.expect(200).body;
    assert_eq!(summary["customers"], 3);
    let clean_after = customer(clean).await;
    assert_eq!(clean_after["credit_status"], "ok", "{clean_after}");
    assert_eq!(clean_after["flags"]["over_limit"], false);
    let held_after = customer(held).await;
    assert_eq!(held_after["credit_status"], "on_hold", "{held_after}");
    assert_eq!(held_after["flags"]["over_limit"], true);
    assert_eq!(customer(untouched).await["version"], untouched_version);
}

// The recomputation writes only the exposure rows that changed: a currency whose last
// open invoice is paid has its receivables zeroed (its open orders stay), and a
// recomputation that finds nothing new leaves the amounts as they are.
async fn exposures_follow_payments_down_to_zero_and_keep_open_orders(app: TestApp) {
    let c = app.customer("C-1").await;
    set_limit(&app, &c, "5000.00").await;
    invoice(&app, &c, "F-1", "400.00", &days_ago(3), &days_ahead(27)).await;
    invoice(&app, &c, "F-2", "100.00", &days_ago(2), &days_ahead(28)).await;
    app.put(
        &format!("/v1/customers/{c}/open-orders"),
        &json!({"currency": "EUR", "amount": "250.00"}),
    )
    .await
    .expect(200);
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "500.00", "{credit}");
    assert_eq!(credit["exposure"]["exposure"], "750.00", "{credit}");

    pay(&app, &c, "400.00", &today().to_string(), "F-1").await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "100.00", "{credit}");

    pay(&app, &c, "100.00", &today().to_string(), "F-2").await;
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "0.00", "{credit}");
    assert_eq!(credit["exposure"]["open_orders"], "250.00", "{credit}");
    assert_eq!(credit["exposure"]["exposure"], "250.00", "{credit}");

    // Without open orders or unapplied cash nothing is computed for the currency any
    // more: its stored row is the one zeroed.
    let d = app.customer("C-2").await;
    invoice(&app, &d, "G-1", "300.00", &days_ago(3), &days_ahead(27)).await;
    let credit = app.get(&format!("/v1/customers/{d}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "300.00", "{credit}");
    pay(&app, &d, "300.00", &today().to_string(), "G-1").await;
    let credit = app.get(&format!("/v1/customers/{d}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "0.00", "{credit}");
    assert_eq!(credit["exposure"]["exposure"], "0.00", "{credit}");

    let summary = app.post("/v1/credit-evaluations", &json!({})).await.expect(200).body;
    assert_eq!(summary["customers"], 2);
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["open_receivables"], "0.00", "{credit}");
    assert_eq!(credit["exposure"]["exposure"], "250.00", "{credit}");
    let credit = app.get(&format!("/v1/customers/{d}/credit")).await.expect(200).body;
    assert_eq!(credit["exposure"]["exposure"], "0.00", "{credit}");
}
