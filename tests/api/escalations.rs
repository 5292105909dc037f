//! Escalations (issue 6): agency placements and legal cases opened by approved strategy
//! steps stop normal dunning; the strategy's credit hold puts the account on hold until
//! what it covered is settled or a manager releases it; lifecycles refuse illegal moves.

use chrono::{Days, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    an_approved_agency_step_places_the_invoices_and_later_runs_skip_them,
    an_approved_law_firm_letter_makes_the_customer_legal,
    the_credit_hold_step_holds_the_account_until_its_items_are_paid,
    a_manager_opens_and_releases_a_hold_with_a_reason,
    illegal_transitions_are_refused_and_write_nothing,
    roles_and_tenancy,
    an_agency_placement_cancels_the_reminders_not_yet_delivered,
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn days_ago(n: u64) -> String {
    date(today() - Days::new(n))
}

async fn customer(app: &TestApp, ext: &str) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": format!("Client {ext}"), "language": "es", "collector": "marta",
            "contacts": [{"name": "Anna", "email": "ap@example.com", "is_primary_for_collections": true}]}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn invoice(app: &TestApp, customer: &str, number: &str, amount: &str, days_past_due: u64) -> String {
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": amount, "issue_date": days_ago(days_past_due + 30),
            "due_date": days_ago(days_past_due), "delivered_on": days_ago(days_past_due + 29)}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn run(app: &TestApp, d: NaiveDate) -> Value {
    app.post("/v1/collection-runs", &json!({"as_of": date(d)}))
        .await
        .expect(201)
        .body
}

async fn escalations(app: &TestApp, query: &str) -> Vec<Value> {
    app.get(&format!("/v1/escalations?limit=500{query}"))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn flags(app: &TestApp, customer: &str) -> Value {
    app.get(&format!("/v1/customers/{customer}")).await.expect(200).body["flags"].clone()
}

async fn check(app: &TestApp, customer: &str) -> Value {
    app.post(
        "/v1/credit-checks",
        &json!({"customer_id": customer, "order_amount": "10.00", "currency": "EUR"}),
    )
    .await
    .expect(200)
    .body
}

async fn step(app: &TestApp, path: &str, body: Value) -> Value {
    app.post(path, &body).await.expect(200).body
}

async fn an_approved_agency_step_places_the_invoices_and_later_runs_skip_them(app: TestApp) {
    let c = customer(&app, "C-1").await;
    let old = invoice(&app, &c, "OLD", "100.00", 61).await;
    let doc = json!({"description": "Accounts that stop answering go to the agency after 60 days",
        "rules": {"customers": [c]},
        "steps": [{"key": "first_reminder", "offset_days": 1, "action": "email", "tone": "friendly"},
                  {"key": "agency", "offset_days": 60, "action": "agency_placement", "tone": "legal",
                   "assignee_role": "manager", "requires_approval": true}]});
    let s = app
        .post("/v1/strategies", &json!({"name": "Agency", "document": doc}))
        .await
        .expect(201)
        .body;
    let sid = s["id"].as_str().expect("id").to_string();
    app.post(&format!("/v1/strategies/{sid}/versions/1/publish"), &json!({}))
        .await
        .expect(200);

    let r = run(&app, today()).await;
    let actions = app
        .get(&format!("/v1/actions?run_id={}", r["id"].as_str().expect("run")))
        .await
        .expect(200)
        .body;
    let action = &actions["items"][0];
    assert_eq!(action["step_key"], "agency");
    assert_eq!(action["status"], "awaiting_approval");
    assert_eq!(
        escalations(&app, "").await,
        Vec::<Value>::new(),
        "nothing is placed before a manager approves"
    );
    let action_id = action["id"].as_str().expect("action").to_string();
    let manager = app.token("manager");
    let approved = app
        .send(
            Method::POST,
            &format!("/v1/actions/{action_id}/approve"),
            Some(&manager),
            Some(&json!({})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(approved["status"], "planned");

    let list = escalations(&app, &format!("&customer_id={c}&kind=agency_placement")).await;
    assert_eq!(list.len(), 1);
    let e = &list[0];
    assert_eq!(e["status"], "proposed");
    assert_eq!(e["open"], true);
    assert_eq!(e["amount"], "100.00");
    assert_eq!(e["invoices"], json!([{"invoice_id": old, "amount": "100.00"}]));
    assert_eq!(e["action_id"], action_id.as_str());
    assert_eq!(e["created_by"], "manager-user");
    assert_eq!(e["next_statuses"], json!(["placed", "withdrawn"]));
    assert_eq!(flags(&app, &c).await["with_agency"], true);
    let id = e["id"].as_str().expect("id").to_string();
    // Approving again finds the action no longer awaiting approval and opens nothing twice.
    app.post(&format!("/v1/actions/{action_id}/approve"), &json!({}))
        .await
        .expect_problem(409);
    assert_eq!(escalations(&app, "").await.len(), 1);

    let placed = app
        .send(
            Method::POST,
            &format!("/v1/escalations/{id}/transitions"),
            Some(&manager),
            Some(&json!({"to": "placed", "agency": "Cobros Levante SL", "agency_reference": "CL-778"})),
        )
        .await
        .expect(200);
    assert_eq!(placed.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(placed.body["status"], "placed");
    assert_eq!(placed.body["placed_on"], date(today()));
    assert_eq!(placed.body["agency"], "Cobros Levante SL");

    // Later runs leave the placed invoice to the agency, with the reason.
    let later = run(&app, today() + Days::new(1)).await;
    assert_eq!(later["summary"]["skipped"]["with_agency"], 1, "{}", later["summary"]);
    assert_eq!(later["summary"]["actions_created"], 0);
    let collectable = app.get("/v1/collectable-items?limit=500").await.expect(200).body;
    let item = collectable["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["invoice_id"] == old.as_str()).cloned())
        .expect("the placed invoice is listed");
    assert_eq!(item["exclusion"], "with_agency");

    // The agency recovers part of it: the money is recorded and the placement closes.
    let closed = step(
        &app,
        &format!("/v1/escalations/{id}/transitions"),
        json!({"to": "partially_recovered", "recovered_amount": "40.00", "commission": "6.00"}),
    )
    .await;
    assert_eq!(closed["open"], false);
    assert_eq!(closed["recovered_amount"], "40.00");
    assert_eq!(closed["commission"], "6.00");
    assert_eq!(closed["closed_on"], date(today()));
    let to: Vec<&str> = closed["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|t| t["to"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(to, vec!["proposed", "placed", "partially_recovered"]);
    assert_eq!(flags(&app, &c).await["with_agency"], false);
    let events = app
        .get("/v1/events?kind=escalation.partially_recovered")
        .await
        .expect(200)
        .body;
    assert_eq!(events["items"][0]["payload"]["recovered_amount"], "40.00");
    let after = run(&app, today() + Days::new(2)).await;
    assert!(
        after["summary"]["skipped"]["with_agency"].is_null(),
        "{}",
        after["summary"]
    );
    assert_eq!(escalations(&app, "&open=true").await.len(), 0);
    assert_eq!(escalations(&app, "&status=partially_recovered").await.len(), 1);
}

async fn an_approved_law_firm_letter_makes_the_customer_legal(app: TestApp) {
    let c = customer(&app, "C-1").await;
    invoice(&app, &c, "OLD", "250.00", 61).await;
    run(&app, today()).await;
    let actions = app.get("/v1/actions?step=law_firm_letter").await.expect(200).body;
    let action = actions["items"][0]["id"].as_str().expect("action").to_string();
    app.post(&format!("/v1/actions/{action}/approve"), &json!({}))
        .await
        .expect(200);
    let list = escalations(&app, "&kind=law_firm_letter").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "letter_sent");
    let f = flags(&app, &c).await;
    assert_eq!(f["legal"], true);
    assert_eq!(f["with_agency"], false);
    let later = run(&app, today() + Days::new(1)).await;
    assert_eq!(later["summary"]["skipped"]["legal"], 1, "{}", later["summary"]);

    let id = list[0]["id"].as_str().expect("id").to_string();
    let r = app
        .post(&format!("/v1/escalations/{id}/transitions"), &json!({"to": "filed"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["court", "filing_reference"]);
    let filed = step(
        &app,
        &format!("/v1/escalations/{id}/transitions"),
        json!({"to": "filed", "court": "Juzgado de Primera Instancia n.º 3 de Valencia",
            "filing_reference": "MON-2026-0042", "law_firm": "Bufete Soler"}),
    )
    .await;
    assert_eq!(filed["status"], "filed");
    assert_eq!(filed["filing_reference"], "MON-2026-0042");
    assert_eq!(filed["filed_on"], date(today()));
    let settled = step(
        &app,
        &format!("/v1/escalations/{id}/transitions"),
        json!({"to": "settled", "recovered_amount": "250.00"}),
    )
    .await;
    assert_eq!(settled["open"], false);
    assert_eq!(flags(&app, &c).await["legal"], false);
}

async fn the_credit_hold_step_holds_the_account_until_its_items_are_paid(app: TestApp) {
    let c = customer(&app, "C-1").await;
    invoice(&app, &c, "F-30", "100.00", 30).await;
    assert_eq!(check(&app, &c).await["decision"], "approved");
    run(&app, today()).await;
    let holds = escalations(&app, &format!("&customer_id={c}&kind=credit_hold")).await;
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0]["status"], "active");
    assert_eq!(holds[0]["amount"], "100.00");
    assert!(holds[0]["action_id"].as_str().is_some());

    let answer = check(&app, &c).await;
    assert_eq!(answer["decision"], "hold");
    assert_eq!(answer["credit_status"], "on_hold");
    assert_eq!(answer["reasons"][0]["code"], "strategy_credit_hold", "{answer}");
    let credit = app.get(&format!("/v1/customers/{c}/credit")).await.expect(200).body;
    assert_eq!(credit["status"], "on_hold");
    assert_eq!(flags(&app, &c).await["credit_hold"], true);
    let placed = app.get("/v1/events?kind=credit.hold_placed").await.expect(200).body;
    assert_eq!(placed["items"].as_array().map(Vec::len), Some(1));

    // Paying what the hold covered releases it by itself.
    app.post(
        "/v1/payments",
        &json!({"customer_id": c, "amount": "100.00", "received_on": date(today()), "reference": "F-30"}),
    )
    .await
    .expect(201);
    let hold = app
        .get(&format!("/v1/escalations/{}", holds[0]["id"].as_str().expect("id")))
        .await
        .expect(200)
        .body;
    assert_eq!(hold["status"], "released");
    assert_eq!(hold["open"], false);
    assert_eq!(hold["history"][1]["by"], "system");
    let answer = check(&app, &c).await;
    assert_eq!(answer["decision"], "approved", "{answer}");
    assert_eq!(flags(&app, &c).await["credit_hold"], false);
    let released = app.get("/v1/events?kind=credit.hold_released").await.expect(200).body;
    assert_eq!(released["items"].as_array().map(Vec::len), Some(1));
}

async fn a_manager_opens_and_releases_a_hold_with_a_reason(app: TestApp) {
    let c = customer(&app, "C-1").await;
    invoice(&app, &c, "F-1", "100.00", 5).await;
    let manager = app.token("manager");
    let hold = app
        .send(
            Method::POST,
            "/v1/escalations",
            Some(&manager),
            Some(&json!({"customer_id": c, "kind": "credit_hold", "reason": "Owner announced insolvency proceedings"})),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(hold["status"], "active");
    assert_eq!(hold["invoices"], json!([]));
    assert_eq!(check(&app, &c).await["reasons"][0]["code"], "strategy_credit_hold");
    app.post("/v1/escalations", &json!({"customer_id": c, "kind": "credit_hold"}))
        .await
        .expect_problem(409);
    let id = hold["id"].as_str().expect("id").to_string();
    let r = app
        .post(&format!("/v1/escalations/{id}/transitions"), &json!({"to": "released"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["reason"]);
    let released = app
        .send(
            Method::POST,
            &format!("/v1/escalations/{id}/transitions"),
            Some(&manager),
            Some(&json!({"to": "released", "reason": "Guarantee received from the parent company"})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(released["status"], "released");
    assert_eq!(
        released["history"][1]["reason"],
        "Guarantee received from the parent company"
    );
    assert_eq!(released["history"][1]["by"], "manager-user");
    assert_eq!(check(&app, &c).await["decision"], "approved");
    let events = app.get("/v1/events?kind=escalation.released").await.expect(200).body;
    assert_eq!(events["items"][0]["payload"]["by"], "manager-user");
}

async fn illegal_transitions_are_refused_and_write_nothing(app: TestApp) {
    let c = customer(&app, "C-1").await;
    let inv = invoice(&app, &c, "F-1", "300.00", 20).await;
    let offer = app
        .post(
            "/v1/escalations",
            &json!({"customer_id": c, "kind": "repossession_offer", "invoice_ids": [inv],
                "reason": "The pallets are unused and can be taken back"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(offer["status"], "offered");
    let id = offer["id"].as_str().expect("id").to_string();
    let path = format!("/v1/escalations/{id}/transitions");
    for body in [
        json!({"to": "placed", "agency": "Cobros Levante SL"}),
        json!({"to": "goods_returned"}),
        json!({"to": "nonsense"}),
    ] {
        app.post(&path, &body).await.expect_problem(409);
    }
    let unchanged = app.get(&format!("/v1/escalations/{id}")).await.expect(200);
    assert_eq!(unchanged.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(unchanged.body["status"], "offered");
    assert_eq!(unchanged.body["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get("/v1/events?kind=escalation.placed").await.expect(200).body["items"],
        json!([])
    );

    // An open offer keeps the invoice out of dunning; the invoice cannot be escalated twice.
    let r = run(&app, today()).await;
    assert_eq!(r["summary"]["skipped"]["repossession_offered"], 1, "{}", r["summary"]);
    let twice = app
        .post(
            "/v1/escalations",
            &json!({"customer_id": c, "kind": "agency_placement", "invoice_ids": [inv]}),
        )
        .await
        .expect_problem(422);
    assert_eq!(twice.error_fields(), vec!["invoice_ids[0]"]);
    let bad = app
        .post(
            "/v1/escalations",
            &json!({"customer_id": c, "kind": "small_claims", "invoice_ids": ["inv_999999"], "agency": "X"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["agency", "invoice_ids[0]"]);

    // Optimistic concurrency, then the legal path to the end.
    let stale = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(&app.admin)
        .header("If-Match", "\"7\"")
        .json(&json!({"to": "accepted"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status().as_u16(), 412);
    step(&app, &path, json!({"to": "accepted"})).await;
    let done = step(&app, &path, json!({"to": "goods_returned"})).await;
    assert_eq!(done["open"], false);
    assert_eq!(done["next_statuses"], json!([]));
    app.post(&path, &json!({"to": "withdrawn", "reason": "too late"}))
        .await
        .expect_problem(409);
}

async fn roles_and_tenancy(app: TestApp) {
    let c = customer(&app, "C-1").await;
    let inv = invoice(&app, &c, "F-1", "100.00", 20).await;
    let body = json!({"customer_id": c, "kind": "agency_placement", "invoice_ids": [inv]});
    for role in ["collector", "sales", "integration", "viewer"] {
        app.send(Method::POST, "/v1/escalations", Some(&app.token(role)), Some(&body))
            .await
            .expect_problem(403);
    }
    let e = app.post("/v1/escalations", &body).await.expect(201).body;
    let id = e["id"].as_str().expect("id").to_string();
    let collector = app.token("collector");
    app.send(
        Method::POST,
        &format!("/v1/escalations/{id}/transitions"),
        Some(&collector),
        Some(&json!({"to": "placed", "agency": "Cobros Levante SL"})),
    )
    .await
    .expect_problem(403);
    let seen = app
        .send(Method::GET, &format!("/v1/escalations/{id}"), Some(&collector), None)
        .await
        .expect(200);
    assert_eq!(seen.body["status"], "proposed");

    let other = app.create_org("other");
    app.send(Method::GET, &format!("/v1/escalations/{id}"), Some(&other), None)
        .await
        .expect_problem(404);
    app.send(
        Method::POST,
        &format!("/v1/escalations/{id}/transitions"),
        Some(&other),
        Some(&json!({"to": "placed", "agency": "Cobros Levante SL"})),
    )
    .await
    .expect_problem(404);
    let list = app
        .send(Method::GET, "/v1/escalations", Some(&other), None)
        .await
        .expect(200);
    assert_eq!(list.body["items"], json!([]));
    let r = app
        .send(Method::POST, "/v1/escalations", Some(&other), Some(&body))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["customer_id", "invoice_ids[0]"]);
    app.get("/v1/escalations/inv_1").await.expect_problem(404);
    app.get("/v1/escalations?kind=bogus").await.expect_problem(422);
    assert_eq!(
        escalations(&app, "").await.len(),
        1,
        "the refused requests wrote nothing"
    );
}

async fn an_agency_placement_cancels_the_reminders_not_yet_delivered(app: TestApp) {
    // An action is cancelled when every invoice it chases was taken over (like a payment:
    // a letter that also chases other unpaid invoices still goes).
    let c = customer(&app, "C-1").await;
    let placed = invoice(&app, &c, "F-1", "100.00", 20).await;
    let other = customer(&app, "C-2").await;
    invoice(&app, &other, "G-1", "70.00", 20).await;
    run(&app, today()).await;
    let pending = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|a| matches!(a["status"].as_str(), Some("queued" | "planned" | "awaiting_approval")))
            .map(|a| a["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let before = pending(&app.get(&format!("/v1/actions?customer_id={c}")).await.expect(200).body);
    assert!(!before.is_empty(), "the run chased the overdue invoice");
    let others = pending(
        &app.get(&format!("/v1/actions?customer_id={other}"))
            .await
            .expect(200)
            .body,
    );
    assert!(!others.is_empty());
    app.send(
        Method::POST,
        "/v1/escalations",
        Some(&app.token("manager")),
        Some(
            &json!({"customer_id": c, "kind": "agency_placement", "invoice_ids": [placed],
            "agency": "Cobros Norte SL", "reason": "No answer after three calls"}),
        ),
    )
    .await
    .expect(201);
    for id in &before {
        let action = app.get(&format!("/v1/actions/{id}")).await.expect(200).body;
        assert_eq!(action["status"], "cancelled", "{id}");
        assert_eq!(action["outcome"], "escalated before delivery", "{id}");
    }
    let after = pending(
        &app.get(&format!("/v1/actions?customer_id={other}"))
            .await
            .expect(200)
            .body,
    );
    assert_eq!(after, others, "another customer's actions go on");
}
