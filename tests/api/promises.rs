use chrono::{Days, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    promise_is_checked_and_kept_when_the_payment_arrives,
    broken_promise_records_a_fact_a_task_and_an_event_once,
    late_partial_payment_keeps_a_promise_partially,
    on_account_promise_counts_any_payment_of_the_customer,
    promises_can_be_edited_and_cancelled_while_open,
    plan_splits_the_open_amount_and_fills_instalments_in_order,
    plan_defaults_after_the_grace_days_and_returns_invoices_to_collection,
    plan_rounding_in_jpy_and_bad_plans_are_refused,
    open_commitments_remove_invoices_from_collection,
    daily_scheduler_evaluates_once_per_day,
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> String {
    let t = today();
    let d = if offset >= 0 {
        t + Days::new(offset as u64)
    } else {
        t - Days::new((-offset) as u64)
    };
    d.format("%Y-%m-%d").to_string()
}

async fn customer_with_collector(app: &TestApp, ext: &str) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": ext, "collector": "marta"}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn promise(app: &TestApp, body: Value) -> Value {
    app.post("/v1/promises", &body).await.expect(201).body
}

async fn promise_is_checked_and_kept_when_the_payment_arrives(app: TestApp) {
    let c = customer_with_collector(&app, "C-1").await;
    let other = app.customer("C-2").await;
    let inv = app.invoice(&c, "F-1", "100.00", &day(-10)).await;
    let theirs = app.invoice(&other, "F-9", "100.00", &day(-10)).await;
    for (body, field) in [
        (
            json!({"customer_id": c, "invoice_ids": [inv], "amount": "100.01", "promised_date": day(5)}),
            "amount",
        ),
        (
            json!({"customer_id": c, "invoice_ids": [inv], "amount": "50.00", "promised_date": day(-1)}),
            "promised_date",
        ),
        (
            json!({"customer_id": c, "invoice_ids": [inv], "amount": "50.00", "currency": "USD", "promised_date": day(5)}),
            "invoice_ids[0]",
        ),
        (
            json!({"customer_id": c, "invoice_ids": [theirs], "amount": "50.00", "promised_date": day(5)}),
            "invoice_ids[0]",
        ),
        (
            json!({"customer_id": c, "invoice_ids": [inv], "amount": "50.00", "promised_date": day(5), "channel": "pigeon"}),
            "channel",
        ),
        (
            json!({"invoice_ids": [inv], "amount": "50.00", "promised_date": day(5)}),
            "customer_id",
        ),
    ] {
        let r = app.post("/v1/promises", &body).await.expect_problem(422);
        assert!(r.error_fields().contains(&field.to_string()), "{field}: {}", r.body);
    }
    let viewer = app.token("viewer");
    app.send(
        Method::POST,
        "/v1/promises",
        Some(&viewer),
        Some(&json!({"customer_id": c, "amount": "1.00", "promised_date": day(1)})),
    )
    .await
    .expect_problem(403);
    let collector = app.token("collector");
    let p = app
        .send(
            Method::POST,
            "/v1/promises",
            Some(&collector),
            Some(&json!({"customer_id": c, "invoice_ids": [inv], "amount": "100.00", "promised_date": day(5), "contact_name": "Marta"})),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(p["status"], "open");
    assert_eq!(p["taken_by"], "collector-user");
    assert_eq!(p["window_end"], day(7), "promised date + 2 days of tolerance");
    let pid = p["id"].as_str().expect("id").to_string();
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "60.00"}))
        .await
        .expect(201);
    let half = app.get(&format!("/v1/promises/{pid}")).await.expect(200).body;
    assert_eq!(half["status"], "open");
    assert_eq!(half["paid_amount"], "60.00");
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "40.00"}))
        .await
        .expect(201);
    let kept = app.get(&format!("/v1/promises/{pid}")).await.expect(200).body;
    assert_eq!(kept["status"], "kept", "kept at once when the payment posts");
    let events = app.get("/v1/events?kind=promise.kept").await.expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(1));
    let summary = app.get(&format!("/v1/customers/{c}/summary")).await.expect(200).body;
    assert_eq!(summary["promises"]["made"], 1);
    assert_eq!(summary["promises"]["kept"], 1);
    assert_eq!(summary["promises"]["kept_rate"], 1.0);
}

async fn broken_promise_records_a_fact_a_task_and_an_event_once(app: TestApp) {
    let c = customer_with_collector(&app, "C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", &day(-30)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "invoice_ids": [inv], "amount": "100.00", "promised_date": day(0)}),
    )
    .await;
    let pid = p["id"].as_str().expect("id").to_string();
    // Still within the tolerance on day +2.
    let r = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(2)}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["promises_broken"], 0);
    assert_eq!(app.get(&format!("/v1/promises/{pid}")).await.body["status"], "open");
    let r = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(3)}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["promises_broken"], 1);
    assert_eq!(app.get(&format!("/v1/promises/{pid}")).await.body["status"], "broken");
    // Idempotent: nothing new on a second run.
    let again = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(3)}))
        .await
        .expect(200)
        .body;
    assert_eq!(again["promises_evaluated"], 0);
    let tasks = app.get("/v1/tasks?assignee=marta").await.expect(200).body;
    // The broken promise is also a risk signal (a `risk_check_in` task may follow from it);
    // the follow-up of the promise itself is created once.
    let items: Vec<&Value> = tasks["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["kind"] == "promise_follow_up")
        .collect();
    assert_eq!(items.len(), 1, "{tasks}");
    assert_eq!(items[0]["priority"], "high");
    assert_eq!(items[0]["kind"], "promise_follow_up");
    assert_eq!(items[0]["source_id"], pid);
    let summary = app.get(&format!("/v1/customers/{c}/summary")).await.expect(200).body;
    assert_eq!(summary["broken_promises_recorded"], 1);
    assert_eq!(summary["promises"]["broken"], 1);
    assert_eq!(summary["promises"]["kept_rate"], 0.0);
    let events = app.get("/v1/events?kind=promise.broken").await.expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(1));
    // A collector sees only their own tasks.
    let collector = app.token("collector");
    let own = app
        .send(Method::GET, "/v1/tasks", Some(&collector), None)
        .await
        .expect(200);
    assert_eq!(own.body["items"], json!([]));
    app.send(Method::GET, "/v1/tasks?assignee=marta", Some(&collector), None)
        .await
        .expect_problem(403);
    app.send(
        Method::POST,
        "/v1/promise-evaluations",
        Some(&collector),
        Some(&json!({})),
    )
    .await
    .expect_problem(403);
}

async fn late_partial_payment_keeps_a_promise_partially(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", &day(-30)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "invoice_ids": [inv], "amount": "100.00", "promised_date": day(0)}),
    )
    .await;
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "30.00"}))
        .await
        .expect(201);
    let r = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(3)}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["promises_partially_kept"], 1);
    let p = app
        .get(&format!("/v1/promises/{}", p["id"].as_str().expect("id")))
        .await
        .body;
    assert_eq!(p["status"], "partially_kept");
    assert_eq!(p["paid_amount"], "30.00");
}

async fn on_account_promise_counts_any_payment_of_the_customer(app: TestApp) {
    let c = app.customer("C-1").await;
    app.invoice(&c, "F-1", "100.00", &day(-30)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "amount": "80.00", "promised_date": day(3)}),
    )
    .await;
    assert_eq!(p["invoice_ids"], json!([]));
    app.post(
        "/v1/promises",
        &json!({"customer_id": c, "amount": "100.01", "promised_date": day(3)}),
    )
    .await
    .expect_problem(422);
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "80.00", "allocations": [{"invoice_id": app.get("/v1/invoices").await.body["items"][0]["id"], "amount": "10.00"}]}))
        .await
        .expect(201);
    let p = app
        .get(&format!("/v1/promises/{}", p["id"].as_str().expect("id")))
        .await
        .body;
    assert_eq!(p["status"], "kept");
}

async fn promises_can_be_edited_and_cancelled_while_open(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", &day(-30)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "invoice_ids": [inv], "amount": "50.00", "promised_date": day(3)}),
    )
    .await;
    let path = format!("/v1/promises/{}", p["id"].as_str().expect("id"));
    let r = app
        .patch(&path, &json!({"promised_date": day(10), "notes": "moved by phone"}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["promised_date"], day(10));
    assert_eq!(r["window_end"], day(12));
    assert_eq!(r["version"], 2);
    app.patch(&path, &json!({"amount": "500.00"})).await.expect_problem(422);
    app.patch(&path, &json!({"invoice_ids": []})).await.expect_problem(422);
    let stale = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&app.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"notes": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status().as_u16(), 412);
    let cancelled = app.post(&format!("{path}/cancel"), &json!({})).await.expect(200).body;
    assert_eq!(cancelled["status"], "cancelled");
    app.post(&format!("{path}/cancel"), &json!({}))
        .await
        .expect_problem(409);
    app.patch(&path, &json!({"notes": "late"})).await.expect_problem(409);
    let list = app
        .get(&format!("/v1/promises?customer_id={c}&status=cancelled"))
        .await
        .expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
}

async fn plan_splits_the_open_amount_and_fills_instalments_in_order(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "60.00", &day(-40)).await;
    let b = app.invoice(&c, "B", "40.00", &day(-20)).await;
    let plan = app
        .post(
            "/v1/payment-plans",
            &json!({"invoice_ids": [a, b], "count": 3, "frequency": "monthly", "first_due_date": day(5)}),
        )
        .await
        .expect(201)
        .body;
    let amounts: Vec<&str> = plan["instalments"]
        .as_array()
        .expect("i")
        .iter()
        .map(|i| i["amount"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(amounts, vec!["33.33", "33.33", "33.34"]);
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["total"], "100.00");
    // The same invoice cannot be in two active plans.
    let r = app
        .post(
            "/v1/payment-plans",
            &json!({"invoice_ids": [a], "instalments": [{"due_date": day(5), "amount": "60.00"}]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["invoice_ids[0]"]);
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "50.00"}))
        .await
        .expect(201);
    let plan = app
        .get(&format!("/v1/payment-plans/{}", plan["id"].as_str().expect("id")))
        .await
        .body;
    let states: Vec<(&str, &str)> = plan["instalments"]
        .as_array()
        .expect("i")
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap_or(""),
                i["paid_amount"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![("paid", "33.33"), ("partially_paid", "16.67"), ("pending", "0.00")]
    );
    app.post("/v1/payments", &json!({"customer_id": c, "amount": "50.00"}))
        .await
        .expect(201);
    let plan = app
        .get(&format!("/v1/payment-plans/{}", plan["id"].as_str().expect("id")))
        .await
        .body;
    assert_eq!(plan["status"], "completed");
    let events = app.get("/v1/events?kind=plan.completed").await.expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(1));
}

async fn plan_defaults_after_the_grace_days_and_returns_invoices_to_collection(app: TestApp) {
    let c = app.customer("C-1").await;
    let a = app.invoice(&c, "A", "100.00", &day(-40)).await;
    let plan = app
        .post("/v1/payment-plans", &json!({"invoice_ids": [a], "instalments": [{"due_date": day(1), "amount": "50.00"}, {"due_date": day(31), "amount": "50.00"}]}))
        .await
        .expect(201)
        .body;
    let pid = plan["id"].as_str().expect("id").to_string();
    let items = app
        .get(&format!("/v1/collectable-items?as_of={}", day(2)))
        .await
        .expect(200)
        .body;
    assert_eq!(items["items"][0]["exclusion"], "in_payment_plan");
    let r = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(6)}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["plans_defaulted"], 0, "day +6 is the last day of grace");
    let r = app
        .post("/v1/promise-evaluations", &json!({"as_of": day(7)}))
        .await
        .expect(200)
        .body;
    assert_eq!(r["plans_defaulted"], 1);
    let plan = app.get(&format!("/v1/payment-plans/{pid}")).await.body;
    assert_eq!(plan["status"], "defaulted");
    assert_eq!(plan["defaulted_on"], day(7));
    assert_eq!(plan["instalments"][0]["status"], "overdue");
    let items = app
        .get(&format!("/v1/collectable-items?as_of={}", day(7)))
        .await
        .expect(200)
        .body;
    assert_eq!(items["items"][0]["exclusion"], Value::Null, "back in normal collection");
    let summary = app.get(&format!("/v1/customers/{c}/summary")).await.expect(200).body;
    assert_eq!(summary["defaulted_plans"], 1);
    app.post(&format!("/v1/payment-plans/{pid}/cancel"), &json!({"reason": "x"}))
        .await
        .expect_problem(409);
}

async fn plan_rounding_in_jpy_and_bad_plans_are_refused(app: TestApp) {
    let c = app
        .post("/v1/customers", &json!({"name": "Tokyo", "currency": "JPY"}))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let inv = app
        .post(
            "/v1/invoices",
            &json!({"customer_id": c, "number": "J-1", "amount": "1000", "issue_date": day(-30)}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = app
        .post("/v1/payment-plans", &json!({"invoice_ids": [inv], "instalments": [{"due_date": day(5), "amount": "500"}, {"due_date": day(35), "amount": "499"}]}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["instalments"]);
    let r = app
        .post("/v1/payment-plans", &json!({"invoice_ids": [inv], "instalments": [{"due_date": day(35), "amount": "500"}, {"due_date": day(5), "amount": "500"}]}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["instalments[1].due_date"]);
    app.post("/v1/payment-plans", &json!({"invoice_ids": [inv], "count": 3}))
        .await
        .expect_problem(422);
    let plan = app
        .post(
            "/v1/payment-plans",
            &json!({"invoice_ids": [inv], "count": 3, "frequency": "weekly", "first_due_date": day(7)}),
        )
        .await
        .expect(201)
        .body;
    let amounts: Vec<&str> = plan["instalments"]
        .as_array()
        .expect("i")
        .iter()
        .map(|i| i["amount"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(amounts, vec!["333", "333", "334"]);
    assert_eq!(plan["instalments"][2]["due_date"], day(21));
    let cancelled = app
        .post(
            &format!("/v1/payment-plans/{}/cancel", plan["id"].as_str().expect("id")),
            &json!({"reason": "customer paid in full"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["status"], "cancelled");
}

async fn open_commitments_remove_invoices_from_collection(app: TestApp) {
    let c = app.customer("C-1").await;
    let paused = app
        .post(
            "/v1/customers",
            &json!({"name": "Paused", "dunning_paused_until": day(10), "dunning_pause_reason": "negotiating"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let free = app.invoice(&c, "FREE", "100.00", &day(-10)).await;
    let promised = app.invoice(&c, "PROM", "100.00", &day(-10)).await;
    let disputed = app.invoice(&c, "DISP", "100.00", &day(-10)).await;
    let partly = app.invoice(&c, "PART", "100.00", &day(-10)).await;
    let on_hold = app.invoice(&paused, "HOLD", "100.00", &day(-10)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "invoice_ids": [promised], "amount": "100.00", "promised_date": day(3)}),
    )
    .await;
    app.post(
        "/v1/disputes",
        &json!({"invoice_id": disputed, "reason": "damaged_goods"}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/disputes",
        &json!({"invoice_id": partly, "reason": "pricing", "amount": "30.00"}),
    )
    .await
    .expect(201);
    let items = app.get("/v1/collectable-items").await.expect(200).body;
    let by_id = |id: &str| {
        items["items"]
            .as_array()
            .expect("i")
            .iter()
            .find(|i| i["invoice_id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_id(&free)["exclusion"], Value::Null);
    assert_eq!(by_id(&free)["collectable_amount"], "100.00");
    assert_eq!(by_id(&promised)["exclusion"], "promised");
    assert_eq!(by_id(&disputed)["exclusion"], "disputed");
    assert_eq!(by_id(&partly)["exclusion"], Value::Null);
    assert_eq!(by_id(&partly)["collectable_amount"], "70.00");
    assert_eq!(by_id(&on_hold)["exclusion"], "customer_paused");
    // Cancelling the promise puts the invoice back.
    app.post(
        &format!("/v1/promises/{}/cancel", p["id"].as_str().expect("id")),
        &json!({}),
    )
    .await
    .expect(200);
    let items = app.get("/v1/collectable-items").await.expect(200).body;
    let again = items["items"]
        .as_array()
        .expect("i")
        .iter()
        .find(|i| i["invoice_id"] == promised)
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(again["exclusion"], Value::Null);
    // Paid invoices are not collectable at all.
    app.post(
        "/v1/payments",
        &json!({"customer_id": c, "amount": "100.00", "allocations": [{"invoice_id": free, "amount": "100.00"}]}),
    )
    .await
    .expect(201);
    let items = app.get("/v1/collectable-items").await.expect(200).body;
    assert!(
        items["items"]
            .as_array()
            .expect("i")
            .iter()
            .all(|i| i["invoice_id"] != free)
    );
    let viewer = app.token("viewer");
    app.send(Method::GET, "/v1/collectable-items", Some(&viewer), None)
        .await
        .expect_problem(403);
}

/// The scheduler's daily entry point: runs the evaluation once per organisation and day,
/// whatever the number of callers (it takes a lease in the database).
async fn daily_scheduler_evaluates_once_per_day(app: TestApp) {
    let c = app.customer("C-1").await;
    let inv = app.invoice(&c, "F-1", "100.00", &day(-30)).await;
    let p = promise(
        &app,
        json!({"customer_id": c, "invoice_ids": [inv], "amount": "100.00", "promised_date": day(0)}),
    )
    .await;
    let pool = app.state.pool.clone();
    let runs = tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().expect("connection");
        let org = recaudo::db::repo::organizations::find_by_slug(&mut conn, recaudo::DEFAULT_ORG)
            .expect("query")
            .expect("default org");
        let as_of = today() + Days::new(3);
        let first = recaudo::scheduler::run_daily(&mut conn, org.id, as_of).expect("first run");
        let second = recaudo::scheduler::run_daily(&mut conn, org.id, as_of).expect("second run");
        (first, second)
    })
    .await
    .expect("join");
    assert_eq!(
        runs.0,
        vec![
            recaudo::scheduler::EVALUATION_JOB,
            recaudo::scheduler::CREDIT_JOB,
            recaudo::scheduler::COLLECTION_JOB
        ]
    );
    assert!(runs.1.is_empty(), "the second call for the same day does nothing");
    let p = app
        .get(&format!("/v1/promises/{}", p["id"].as_str().expect("id")))
        .await
        .body;
    assert_eq!(p["status"], "broken");
}
