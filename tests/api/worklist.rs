use chrono::{Days, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    worklist_puts_money_first_and_respects_calling_windows,
    contact_outcomes_have_their_effects
);

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

async fn customer(app: &TestApp, name: &str, window: Option<Value>) -> String {
    let mut contact = json!({"name": "Anna", "phone": "+34 933 000 111", "is_primary_for_collections": true});
    if let Some(w) = window {
        contact["calling_window"] = w;
    }
    app.post(
        "/v1/customers",
        &json!({"name": name, "collector": "collector-user", "contacts": [contact]}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn invoice(app: &TestApp, customer: &str, number: &str, amount: &str, due: NaiveDate) -> String {
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": amount, "issue_date": "2026-01-01", "due_date": date(due), "delivered_on": "2026-01-02"}),
    )
    .await
    .expect(201)
    .body["id"]
    .as_str()
    .expect("id")
    .to_string()
}

async fn worklist_puts_money_first_and_respects_calling_windows(app: TestApp) {
    let weekdays = json!({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "13:00", "timezone": "Europe/Madrid"});
    let big = customer(&app, "Big", Some(weekdays)).await;
    let small = customer(&app, "Small", None).await;
    // Fixed dates (the calling windows depend on the weekday): the run is on Monday
    // 2026-11-23, a week after the invoices fell due.
    let run_day = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let due = run_day - Days::new(7);
    invoice(&app, &big, "B-1", "9000.00", due).await;
    invoice(&app, &small, "S-1", "100.00", due).await;
    app.post("/v1/collection-runs", &json!({"as_of": date(run_day)}))
        .await
        .expect(201);
    let collector = app.token("collector");
    // A Monday at 09:30 in Madrid: both calls can be made; the big account comes first.
    let monday = "2026-11-23T08:30:00Z";
    let list = app
        .send(
            Method::GET,
            &format!("/v1/worklist?at={monday}"),
            Some(&collector),
            None,
        )
        .await
        .expect(200)
        .body;
    let order: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["customer_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(order, vec![big.as_str(), small.as_str()]);
    assert_eq!(list["items"][0]["what"], "call");
    assert_eq!(list["items"][0]["in_top_80_percent"], true, "{list}");
    assert_eq!(list["items"][1]["in_top_80_percent"], false);
    assert!(
        list["items"][0]["context"]["script"]
            .as_str()
            .is_some_and(|s| s.contains("B-1")),
        "the call script lists the invoice"
    );
    assert_eq!(list["items"][0]["context"]["overdue"]["EUR"], "9000.00");
    // Saturday: the big account's contact cannot be called; the next window is Monday 09:00.
    let saturday = "2026-11-28T10:00:00Z";
    let list = app
        .send(
            Method::GET,
            &format!("/v1/worklist?at={saturday}"),
            Some(&collector),
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["customer_id"], small);
    assert_eq!(list["later"][0]["customer_id"], big);
    assert_eq!(list["later"][0]["next_window_start"], "2026-11-30T08:00:00Z");
    app.send(
        Method::GET,
        "/v1/worklist?collector=someone-else",
        Some(&collector),
        None,
    )
    .await
    .expect_problem(403);
    let everyone = app.get("/v1/worklist?collector=*").await.expect(200).body;
    assert_eq!(
        everyone["items"].as_array().map(Vec::len).unwrap_or(0)
            + everyone["later"].as_array().map(Vec::len).unwrap_or(0),
        2
    );
    app.send(Method::GET, "/v1/worklist", Some(&app.token("viewer")), None)
        .await
        .expect_problem(403);
}

async fn contact_outcomes_have_their_effects(app: TestApp) {
    let c = customer(&app, "Client", None).await;
    let inv = invoice(&app, &c, "F-1", "500.00", today() - Days::new(7)).await;
    app.post("/v1/collection-runs", &json!({"as_of": date(today())}))
        .await
        .expect(201);
    let call = app.get(&format!("/v1/actions?customer_id={c}")).await.body["items"][0]["id"]
        .as_str()
        .expect("call")
        .to_string();
    let collector = app.token("collector");
    let post = |body: Value| {
        let token = collector.clone();
        let app = &app;
        async move {
            app.send(Method::POST, "/v1/activities", Some(&token), Some(&body))
                .await
        }
    };
    let r = post(json!({"customer_id": c, "invoice_ids": [inv], "action_id": call, "channel": "phone", "direction": "outbound",
        "outcome": "promise_made", "notes": "Pays Friday", "promise": {"amount": "500.00", "promised_date": date(today() + Days::new(4))}}))
    .await
    .expect(201)
    .body;
    let promise = r["promise_id"].as_str().expect("promise").to_string();
    assert_eq!(
        app.get(&format!("/v1/promises/{promise}")).await.body["invoice_ids"],
        json!([inv])
    );
    assert_eq!(app.get(&format!("/v1/actions/{call}")).await.body["status"], "done");
    let r = post(json!({"customer_id": c, "channel": "phone", "direction": "inbound", "outcome": "promise_made"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["promise"]);
    let r = post(json!({"customer_id": c, "invoice_ids": [inv], "channel": "email", "direction": "inbound", "outcome": "dispute_raised",
        "dispute": {"reason": "quantity", "amount": "50.00"}}))
    .await
    .expect(201)
    .body;
    assert!(r["dispute_id"].as_str().is_some());
    assert_eq!(
        app.get(&format!("/v1/invoices/{inv}")).await.body["disputed_amount"],
        "50.00"
    );
    let r = post(json!({"customer_id": c, "invoice_ids": [inv], "channel": "phone", "direction": "outbound", "outcome": "in_spam"})).await.expect(201).body;
    assert_eq!(r["resent_invoice_ids"], json!([inv]));
    let items = app
        .get(&format!("/v1/collectable-items?as_of={}", date(today())))
        .await
        .body;
    assert_eq!(
        items["items"][0]["days_past_due"], 0,
        "the clock restarts from the re-send"
    );
    let r = post(json!({"customer_id": c, "channel": "phone", "direction": "inbound", "outcome": "paid_already", "notes": "Paid by transfer last week"}))
        .await
        .expect(201)
        .body;
    let task = r["task_id"].as_str().expect("task").to_string();
    let tasks = app.get("/v1/tasks").await.body;
    assert!(
        tasks["items"]
            .as_array()
            .expect("t")
            .iter()
            .any(|t| t["id"] == task && t["kind"] == "find_payment")
    );
    for (body, field) in [
        (
            json!({"customer_id": c, "channel": "fax", "direction": "outbound", "outcome": "reached"}),
            "channel",
        ),
        (
            json!({"customer_id": c, "channel": "phone", "direction": "sideways", "outcome": "reached"}),
            "direction",
        ),
        (
            json!({"customer_id": c, "channel": "phone", "direction": "outbound", "outcome": "shouted"}),
            "outcome",
        ),
        (
            json!({"customer_id": "cus_999999", "channel": "phone", "direction": "outbound", "outcome": "reached"}),
            "customer_id",
        ),
    ] {
        let r = post(body).await.expect_problem(422);
        assert_eq!(r.error_fields(), vec![field]);
    }
    let list = app.get("/v1/worklist?collector=*").await.expect(200).body;
    let contacts = &list["items"][0]["context"]["last_contacts"];
    assert_eq!(
        contacts.as_array().map(Vec::len),
        Some(4),
        "the logged contacts are in the item's context: {list}"
    );
    assert_eq!(contacts[0]["outcome"], "paid_already", "newest first");
}
