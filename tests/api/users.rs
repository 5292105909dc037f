//! The user directory: admins manage it; letters, the worklist and the compliance view
//! read the collector's name, e-mail and phone from it.

use chrono::{Days, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    users_crud_with_roles_versions_and_tenancy,
    preview_and_worklist_name_the_collector_from_the_directory,
    compliance_lists_directory_collectors_who_have_not_acknowledged,
);

fn laura() -> Value {
    json!({"subject": "laura", "display_name": "Laura Martí", "email": "laura@example.com",
        "phone": "+34 933 000 222", "roles": ["collector"], "team": "Iberia", "language": "ca"})
}

async fn users_crud_with_roles_versions_and_tenancy(app: TestApp) {
    let created = app.post("/v1/users", &laura()).await.expect(201);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    let u = created.body;
    let id = u["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("usr_"));
    assert_eq!(u["roles"], json!(["collector"]));
    assert_eq!(u["active"], true);
    app.post("/v1/users", &laura()).await.expect_problem(409);
    let bad = app
        .post(
            "/v1/users",
            &json!({"subject": "two words", "display_name": "", "email": "nope", "language": "de"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["subject", "display_name", "email", "language"]);
    app.post(
        "/v1/users",
        &json!({"subject": "x", "display_name": "X", "roles": ["janitor"]}),
    )
    .await
    .expect_problem(400);

    let got = app.get(&format!("/v1/users/{id}")).await.expect(200).body;
    assert_eq!(got["display_name"], "Laura Martí");
    let list = app.get("/v1/users?active=true&limit=10").await.expect(200).body;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["next_cursor"], Value::Null);

    // Merge patch with If-Match; a stale version is a 412, the subject never changes.
    let patched = app
        .send(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            Some(&app.admin),
            Some(&json!({"phone": "+34 933 000 333", "team": null})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["team"], Value::Null);
    let stale = app
        .client
        .patch(format!("{}/v1/users/{id}", app.address))
        .bearer_auth(&app.admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status().as_u16(), 412);
    app.patch(&format!("/v1/users/{id}"), &json!({"subject": "other"}))
        .await
        .expect_problem(422);
    let inactive = app
        .client
        .patch(format!("{}/v1/users/{id}", app.address))
        .bearer_auth(&app.admin)
        .header("If-Match", "\"2\"")
        .json(&json!({"active": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(inactive.status().as_u16(), 200);
    let none = app.get("/v1/users?active=true").await.expect(200).body;
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));

    // Only admins manage the directory.
    for role in ["manager", "collector", "sales", "integration", "viewer"] {
        let token = app.token(role);
        app.send(Method::GET, "/v1/users", Some(&token), None)
            .await
            .expect_problem(403);
        app.send(Method::POST, "/v1/users", Some(&token), Some(&laura()))
            .await
            .expect_problem(403);
        app.send(Method::GET, &format!("/v1/users/{id}"), Some(&token), None)
            .await
            .expect_problem(403);
    }
    app.send(Method::GET, "/v1/users", None, None).await.expect_problem(401);

    // Another organisation sees nothing of this one.
    let other = app.create_org("other");
    app.send(Method::GET, &format!("/v1/users/{id}"), Some(&other), None)
        .await
        .expect_problem(404);
    app.send(
        Method::PATCH,
        &format!("/v1/users/{id}"),
        Some(&other),
        Some(&json!({"display_name": "Taken"})),
    )
    .await
    .expect_problem(404);
    let theirs = app
        .send(Method::GET, "/v1/users", Some(&other), None)
        .await
        .expect(200)
        .body;
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(0));
    app.get("/v1/users/usr_999999").await.expect_problem(404);
    app.get("/v1/users/cus_1").await.expect_problem(404);
}

async fn customer(app: &TestApp, ext: &str, collector: Option<&str>) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": format!("Client {ext}"), "language": "en", "collector": collector,
            "contacts": [{"name": "Anna", "email": "ap@example.com", "is_primary_for_collections": true}]}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn overdue_invoice(app: &TestApp, customer: &str, number: &str, days: u64) {
    let due = (Utc::now().date_naive() - Days::new(days))
        .format("%Y-%m-%d")
        .to_string();
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": "100.00", "issue_date": "2026-01-01",
            "due_date": due, "delivered_on": "2026-01-02"}),
    )
    .await
    .expect(201);
}

async fn preview_and_worklist_name_the_collector_from_the_directory(app: TestApp) {
    app.post("/v1/users", &laura()).await.expect(201);
    let assigned = customer(&app, "C-1", Some("laura")).await;
    let unassigned = customer(&app, "C-2", None).await;
    overdue_invoice(&app, &assigned, "A-1", 8).await;
    overdue_invoice(&app, &unassigned, "B-1", 8).await;
    app.patch(
        "/v1/settings",
        &json!({"collections_contact": {"name": "Cobros Demo", "email": "cobros@example.com", "phone": "+34 933 000 100"}}),
    )
    .await
    .expect(200);
    let templates = app
        .get("/v1/templates?key=first_reminder&language=en")
        .await
        .expect(200)
        .body;
    let tpl = templates["items"][0]["id"].as_str().expect("template").to_string();
    let preview = |customer: String| {
        let app = &app;
        let tpl = tpl.clone();
        async move {
            app.post(
                &format!("/v1/templates/{tpl}/preview"),
                &json!({"customer_id": customer}),
            )
            .await
            .expect(200)
            .body
        }
    };
    let mine = preview(assigned.clone()).await;
    assert_eq!(mine["context"]["collector_name"], "Laura Martí");
    assert_eq!(mine["context"]["collector_phone"], "+34 933 000 222");
    assert!(
        mine["rendered"]["body_text"]
            .as_str()
            .is_some_and(|t| t.contains("Laura Martí") && t.contains("laura@example.com")),
        "{}",
        mine["rendered"]["body_text"]
    );
    let desk = preview(unassigned).await;
    assert_eq!(desk["context"]["collector_name"], "Cobros Demo");
    assert_eq!(desk["context"]["collector_email"], "cobros@example.com");

    // The run plans a call for laura at 7 days; her worklist shows who she is.
    app.post("/v1/collection-runs", &json!({})).await.expect(201);
    let list = app.get("/v1/worklist?collector=laura").await.expect(200).body;
    let item = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["customer_id"] == assigned.as_str()))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(item["what"], "call", "{list}");
    assert_eq!(item["context"]["collector"]["name"], "Laura Martí");
    assert_eq!(item["context"]["collector"]["source"], "directory");
    assert_eq!(item["context"]["collector"]["subject"], "laura");
    assert!(
        item["context"]["script"]
            .as_str()
            .is_some_and(|s| s.contains("Laura Martí")),
        "the run's letters are signed from the directory too: {}",
        item["context"]["script"]
    );
}

async fn compliance_lists_directory_collectors_who_have_not_acknowledged(app: TestApp) {
    // `collector-user` is the subject of the test's collector token.
    for (subject, roles, active) in [
        ("collector-user", json!(["collector"]), true),
        ("pau", json!(["collector"]), true),
        ("gone", json!(["collector"]), false),
        ("sam", json!(["sales"]), true),
    ] {
        app.post(
            "/v1/users",
            &json!({"subject": subject, "display_name": subject.to_uppercase(), "roles": roles, "active": active}),
        )
        .await
        .expect(201);
    }
    let compliance = app.get("/v1/strategies/compliance").await.expect(200).body;
    let row = |body: &Value, who: &str| {
        body["collectors"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["collector"] == who))
            .cloned()
    };
    let pau = row(&compliance, "pau").expect("pau is listed though no customer names him");
    assert_eq!(pau["display_name"], "PAU");
    assert_eq!(pau["in_directory"], true);
    assert_eq!(pau["unacknowledged"].as_array().map(Vec::len), Some(1));
    assert!(row(&compliance, "gone").is_none(), "inactive users are left out");
    assert!(row(&compliance, "sam").is_none(), "not a collector");
    assert!(row(&compliance, "collector-user").is_some());

    let strategies = app.get("/v1/strategies").await.expect(200).body;
    let id = strategies["items"][0]["id"].as_str().expect("id").to_string();
    app.send(
        Method::POST,
        &format!("/v1/strategies/{id}/versions/1/acknowledgements"),
        Some(&app.token("collector")),
        Some(&json!({})),
    )
    .await
    .expect(201);
    let after = app.get("/v1/strategies/compliance").await.expect(200).body;
    let acked = row(&after, "collector-user").expect("still listed");
    assert_eq!(acked["unacknowledged"], json!([]));
    let pau = row(&after, "pau").expect("pau");
    assert_eq!(pau["unacknowledged"].as_array().map(Vec::len), Some(1));
}
