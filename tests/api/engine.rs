use chrono::{Days, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    default_strategy_and_templates_exist_from_the_start,
    one_combined_action_per_customer_at_the_highest_level,
    rerunning_a_date_is_a_no_op_and_earlier_dates_are_refused,
    payments_promises_and_disputes_before_the_run_remove_items,
    undelivered_invoices_are_resent_first,
    legal_steps_wait_for_approval,
    templates_are_checked_and_previewed_in_five_languages,
    strategy_versions_publish_and_acknowledge,
    payment_or_promise_before_delivery_cancels_the_queued_message,
);

fn as_of() -> NaiveDate {
    Utc::now().date_naive() + Days::new(40)
}

fn due(days_past_due: i64) -> String {
    let d = if days_past_due >= 0 {
        as_of() - Days::new(days_past_due as u64)
    } else {
        as_of() + Days::new((-days_past_due) as u64)
    };
    d.format("%Y-%m-%d").to_string()
}

async fn customer(app: &TestApp, ext: &str, language: &str) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": format!("Client {ext}"), "language": language, "collector": "marta", "sales_rep": "joan",
            "contacts": [{"name": "Anna", "email": "ap@example.com", "is_primary_for_collections": true}]}),
    )
    .await
    .expect(201)
    .body["id"]
    .as_str()
    .expect("id")
    .to_string()
}

async fn delivered_invoice(app: &TestApp, customer: &str, number: &str, days_past_due: i64) -> String {
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": "100.00", "issue_date": "2026-01-01",
            "due_date": due(days_past_due), "delivered_on": "2026-01-02"}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn run(app: &TestApp, date: NaiveDate) -> Value {
    app.post(
        "/v1/collection-runs",
        &json!({"as_of": date.format("%Y-%m-%d").to_string()}),
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

async fn default_strategy_and_templates_exist_from_the_start(app: TestApp) {
    let list = app.get("/v1/strategies").await.expect(200).body;
    let s = &list["items"][0];
    assert_eq!(s["is_default"], true);
    assert_eq!(s["versions"][0]["status"], "published");
    let offsets: Vec<i64> = s["versions"][0]["document"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|x| x["offset_days"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(offsets, vec![-5, 1, 7, 15, 30, 30, 45, 60]);
    let templates = app.get("/v1/templates?limit=500").await.expect(200).body;
    assert_eq!(
        templates["items"].as_array().map(Vec::len),
        Some(50),
        "10 templates in 5 languages"
    );
}

async fn one_combined_action_per_customer_at_the_highest_level(app: TestApp) {
    let c = customer(&app, "C-1", "es").await;
    for (n, dpd) in [("M5", -5), ("P1", 1), ("P7", 7), ("P15", 15), ("P30", 30)] {
        delivered_invoice(&app, &c, n, dpd).await;
    }
    let r = run(&app, as_of()).await;
    assert_eq!(r["status"], "completed");
    assert_eq!(r["summary"]["customers_examined"], 1);
    assert_eq!(r["summary"]["invoices_examined"], 5);
    let list = actions(&app, &format!("&customer_id={c}")).await;
    let keys: Vec<&str> = list.iter().map(|a| a["step_key"].as_str().unwrap_or("")).collect();
    assert_eq!(
        keys,
        vec!["sales_escalation", "credit_hold"],
        "the steps of the highest level reached (30 days)"
    );
    let hold = &list[1];
    assert_eq!(
        hold["invoice_ids"].as_array().map(Vec::len),
        Some(5),
        "one action lists every invoice due for a step"
    );
    assert_eq!(hold["language"], "es");
    assert_eq!(hold["recipient"], "Anna");
    assert!(hold["subject"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        hold["body_text"].as_str().is_some_and(|b| b.contains("100,00 €")),
        "{}",
        hold["body_text"]
    );
    assert_eq!(list[0]["assignee"], "joan", "sales escalation goes to the sales rep");
    assert_eq!(list[0]["status"], "planned");
    // The invoices remember their own level; the next day nothing new is due.
    let next = run(&app, as_of() + Days::new(1)).await;
    assert_eq!(next["summary"]["actions_created"], 0);
    assert_eq!(next["summary"]["skipped"]["already_done"], 5);
    // At +45 days for the oldest, a final notice.
    let later = run(&app, as_of() + Days::new(15)).await;
    let list = actions(&app, &format!("&run_id={}", later["id"].as_str().expect("id"))).await;
    assert_eq!(
        list.iter()
            .map(|a| a["step_key"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        vec!["final_notice"]
    );
    assert_eq!(list[0]["action"], "email");
    assert_eq!(list[0]["status"], "queued");
    assert_eq!(list[0]["recipient"], "ap@example.com");
}

async fn rerunning_a_date_is_a_no_op_and_earlier_dates_are_refused(app: TestApp) {
    let c = customer(&app, "C-1", "en").await;
    delivered_invoice(&app, &c, "P1", 1).await;
    let first = run(&app, as_of()).await;
    let again = run(&app, as_of()).await;
    assert_eq!(first["id"], again["id"], "the completed run of the date is returned");
    assert_eq!(actions(&app, "").await.len(), 1);
    let r = app
        .post(
            "/v1/collection-runs",
            &json!({"as_of": (as_of() - Days::new(1)).format("%Y-%m-%d").to_string()}),
        )
        .await
        .expect_problem(409);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("already completed"))
    );
    let dry = app
        .post(
            "/v1/collection-runs",
            &json!({"as_of": (as_of() + Days::new(10)).format("%Y-%m-%d").to_string(), "dry_run": true}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        dry["summary"]["actions_created"], 1,
        "a dry run counts what it would do"
    );
    assert_eq!(actions(&app, "").await.len(), 1, "and creates nothing");
    let collector = app.token("collector");
    app.send(Method::POST, "/v1/collection-runs", Some(&collector), Some(&json!({})))
        .await
        .expect_problem(403);
    let runs = app.get("/v1/collection-runs").await.expect(200).body;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(2));
}

async fn payments_promises_and_disputes_before_the_run_remove_items(app: TestApp) {
    let c = customer(&app, "C-1", "fr").await;
    let paid = delivered_invoice(&app, &c, "PAID", 20).await;
    let promised = delivered_invoice(&app, &c, "PROM", 20).await;
    let disputed = delivered_invoice(&app, &c, "DISP", 20).await;
    let chased = delivered_invoice(&app, &c, "LEFT", 20).await;
    app.post(
        "/v1/payments",
        &json!({"customer_id": c, "amount": "100.00", "allocations": [{"invoice_id": paid, "amount": "100.00"}]}),
    )
    .await
    .expect(201);
    let today = Utc::now().date_naive();
    app.post(
        "/v1/promises",
        &json!({"customer_id": c, "invoice_ids": [promised], "amount": "100.00", "promised_date": (today + Days::new(60)).format("%Y-%m-%d").to_string()}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/disputes",
        &json!({"invoice_id": disputed, "reason": "damaged_goods"}),
    )
    .await
    .expect(201);
    let r = run(&app, as_of()).await;
    assert_eq!(r["summary"]["skipped"]["promised"], 1);
    assert_eq!(r["summary"]["skipped"]["disputed"], 1);
    let list = actions(&app, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["step_key"], "firm_letter");
    assert_eq!(list[0]["invoice_ids"], json!([chased]));
    assert!(
        list[0]["body_text"]
            .as_str()
            .is_some_and(|b| b.contains("100,00 €") && !b.contains("PAID"))
    );
}

async fn undelivered_invoices_are_resent_first(app: TestApp) {
    let c = customer(&app, "C-1", "ca").await;
    let inv = app
        .post("/v1/invoices", &json!({"customer_id": c, "number": "ND-1", "amount": "50.00", "issue_date": "2026-01-01", "due_date": due(10)}))
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = run(&app, as_of()).await;
    assert_eq!(r["summary"]["invoices_resent"], 1);
    let list = actions(&app, "").await;
    assert_eq!(list[0]["step_key"], "resend_invoice");
    assert_eq!(list[0]["invoice_ids"], json!([inv]));
    // The clock restarts from the re-send: nothing more until a step is due again.
    let r = run(&app, as_of() + Days::new(1)).await;
    assert_eq!(
        r["summary"]["actions_created"], 1,
        "first reminder one day after the re-send"
    );
    let list = actions(&app, &format!("&run_id={}", r["id"].as_str().expect("id"))).await;
    assert_eq!(list[0]["step_key"], "first_reminder");
}

async fn legal_steps_wait_for_approval(app: TestApp) {
    let c = customer(&app, "C-1", "pl").await;
    delivered_invoice(&app, &c, "OLD", 61).await;
    run(&app, as_of()).await;
    let list = actions(&app, "").await;
    assert_eq!(list[0]["step_key"], "law_firm_letter");
    assert_eq!(list[0]["status"], "awaiting_approval");
    let id = list[0]["id"].as_str().expect("id").to_string();
    let collector = app.token("collector");
    app.send(
        Method::POST,
        &format!("/v1/actions/{id}/approve"),
        Some(&collector),
        Some(&json!({})),
    )
    .await
    .expect_problem(403);
    let a = app
        .post(&format!("/v1/actions/{id}/approve"), &json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(a["status"], "queued");
    assert_eq!(a["approved_by"], "admin-user");
    app.post(&format!("/v1/actions/{id}/approve"), &json!({}))
        .await
        .expect_problem(409);
    let done = app
        .post(&format!("/v1/actions/{id}/complete"), &json!({"outcome": "posted"}))
        .await
        .expect(200)
        .body;
    assert_eq!(done["status"], "done");
    app.post(&format!("/v1/actions/{id}/cancel"), &json!({}))
        .await
        .expect_problem(409);
    // A collector sees only their own actions.
    let own = app
        .send(Method::GET, "/v1/actions", Some(&collector), None)
        .await
        .expect(200);
    assert_eq!(own.body["items"], json!([]));
}

async fn templates_are_checked_and_previewed_in_five_languages(app: TestApp) {
    let c = customer(&app, "C-1", "es").await;
    delivered_invoice(&app, &c, "F-1", 20).await;
    for (lang, money) in [
        ("en", "€100.00"),
        ("es", "100,00 €"),
        ("ca", "100,00 €"),
        ("fr", "100,00 €"),
        ("pl", "100,00 €"),
    ] {
        let list = app
            .get(&format!("/v1/templates?key=firm_letter&language={lang}"))
            .await
            .expect(200)
            .body;
        let id = list["items"][0]["id"].as_str().expect("template").to_string();
        let sample = app
            .post(&format!("/v1/templates/{id}/preview"), &json!({}))
            .await
            .expect(200)
            .body;
        assert!(
            sample["rendered"]["body_text"]
                .as_str()
                .is_some_and(|b| b.contains("2026/0042")),
            "{lang}"
        );
        let real = app
            .post(
                &format!("/v1/templates/{id}/preview"),
                &json!({"customer_id": c, "as_of": as_of().format("%Y-%m-%d").to_string()}),
            )
            .await
            .expect(200)
            .body;
        let body = real["rendered"]["body_text"].as_str().unwrap_or("");
        assert!(body.contains("F-1"), "{lang}: {body}");
        assert!(
            real["rendered"]["body_html"]
                .as_str()
                .is_some_and(|h| h.contains("F-1"))
        );
        let _ = money;
    }
    let r = app
        .post("/v1/templates", &json!({"key": "custom", "language": "en", "subject": "Hi {{ custmer_name }}", "body_text": "x", "body_html": "x"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["subject"]);
    app.post(
        "/v1/templates",
        &json!({"key": "custom", "language": "de", "subject": "Hi", "body_text": "x", "body_html": "x"}),
    )
    .await
    .expect_problem(422);
    let t = app
        .post("/v1/templates", &json!({"key": "custom", "language": "en", "subject": "Hi {{ customer_name }}", "body_text": "{{ total_overdue }}", "body_html": "<p>{{ customer_name }}</p>"}))
        .await
        .expect(201)
        .body;
    let id = t["id"].as_str().expect("id");
    let t2 = app
        .put(
            &format!("/v1/templates/{id}"),
            &json!({"subject": "Hello {{ customer_name }}", "body_text": "x", "body_html": "y"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(t2["version"], 2);
    app.put(
        &format!("/v1/templates/{id}"),
        &json!({"subject": "{{ nope }}", "body_text": "x", "body_html": "y"}),
    )
    .await
    .expect_problem(422);
    app.post(
        &format!("/v1/templates/{id}/preview"),
        &json!({"customer_id": "cus_999999"}),
    )
    .await
    .expect_problem(422);
}

async fn strategy_versions_publish_and_acknowledge(app: TestApp) {
    let doc = json!({"description": "Key accounts: softer ladder", "rules": {"segments": ["key"]},
        "steps": [{"key": "courtesy_call", "offset_days": 3, "action": "call", "tone": "friendly", "template": "call_script"},
                  {"key": "firm_letter", "offset_days": 20, "action": "letter", "tone": "firm"}]});
    let s = app
        .post("/v1/strategies", &json!({"name": "Key accounts", "document": doc}))
        .await
        .expect(201)
        .body;
    let id = s["id"].as_str().expect("id").to_string();
    assert_eq!(s["versions"][0]["status"], "draft");
    let bad = json!({"description": "x", "steps": [{"key": "b", "offset_days": 5, "action": "call", "tone": "friendly"}, {"key": "a", "offset_days": 1, "action": "call", "tone": "friendly"}]});
    let r = app
        .post(&format!("/v1/strategies/{id}/versions"), &bad)
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["steps[1].offset_days"]);
    let collector = app.token("collector");
    app.send(
        Method::POST,
        &format!("/v1/strategies/{id}/versions/1/acknowledgements"),
        Some(&collector),
        Some(&json!({})),
    )
    .await
    .expect_problem(409);
    app.post(&format!("/v1/strategies/{id}/versions/1/publish"), &json!({}))
        .await
        .expect(200);
    let s = app
        .send(
            Method::POST,
            &format!("/v1/strategies/{id}/versions/1/acknowledgements"),
            Some(&collector),
            Some(&json!({})),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(s["versions"][0]["acknowledged_by"], json!(["collector-user"]));
    app.post(&format!("/v1/strategies/{id}/versions"), &doc)
        .await
        .expect(201);
    app.post(&format!("/v1/strategies/{id}/versions/2/publish"), &json!({}))
        .await
        .expect(200);
    let s = app.get(&format!("/v1/strategies/{id}")).await.expect(200).body;
    let statuses: Vec<&str> = s["versions"]
        .as_array()
        .expect("v")
        .iter()
        .map(|v| v["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(statuses, vec!["retired", "published"]);
    app.post(&format!("/v1/strategies/{id}/versions/1/publish"), &json!({}))
        .await
        .expect_problem(409);
    // Key-segment customers follow the new strategy: a call at 3 days.
    let c = app
        .post(
            "/v1/customers",
            &json!({"name": "Key", "segment": "key", "collector": "marta"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    delivered_invoice(&app, &c, "K-1", 4).await;
    run(&app, as_of()).await;
    let list = actions(&app, &format!("&customer_id={c}")).await;
    assert_eq!(list[0]["step_key"], "courtesy_call");
    let compliance = app.get("/v1/strategies/compliance").await.expect(200).body;
    let marta = compliance["collectors"]
        .as_array()
        .expect("c")
        .iter()
        .find(|c| c["collector"] == "marta")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        marta["unacknowledged"].as_array().map(Vec::len),
        Some(2),
        "neither published version acknowledged by marta"
    );
}

async fn payment_or_promise_before_delivery_cancels_the_queued_message(app: TestApp) {
    let payer = customer(&app, "C-1", "en").await;
    let promiser = customer(&app, "C-2", "en").await;
    let a = delivered_invoice(&app, &payer, "A", 20).await;
    let b = delivered_invoice(&app, &promiser, "B", 20).await;
    run(&app, as_of()).await;
    let queued = actions(&app, "&status=queued").await;
    assert_eq!(queued.len(), 2);
    app.post(
        "/v1/payments",
        &json!({"customer_id": payer, "amount": "100.00", "allocations": [{"invoice_id": a, "amount": "100.00"}]}),
    )
    .await
    .expect(201);
    let today = Utc::now().date_naive();
    app.post(
        "/v1/promises",
        &json!({"customer_id": promiser, "invoice_ids": [b], "amount": "100.00", "promised_date": (today + Days::new(5)).format("%Y-%m-%d").to_string()}),
    )
    .await
    .expect(201);
    let cancelled = actions(&app, "&status=cancelled").await;
    assert_eq!(cancelled.len(), 2);
    let reasons: Vec<&str> = cancelled.iter().map(|x| x["outcome"].as_str().unwrap_or("")).collect();
    assert!(reasons.contains(&"paid before delivery"));
    assert!(reasons.contains(&"promise to pay taken before delivery"));
}
