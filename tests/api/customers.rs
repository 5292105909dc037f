use reqwest::Method;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    create_read_and_defaults,
    validation_lists_every_bad_field_and_writes_nothing,
    malformed_bodies_are_400,
    external_ids_are_unique,
    patch_merges_and_honours_if_match,
    put_by_external_id_creates_updates_and_keeps_unchanged,
    batch_upserts_with_one_result_per_item,
    lists_paginate_with_cursors_and_filter,
    concurrent_batches_all_land,
);

async fn create_read_and_defaults(app: TestApp) {
    let created = app
        .post(
            "/v1/customers",
            &json!({
                "external_id": "C-1001", "name": "Ferreteria Puig", "country": "es", "language": "ca",
                "credit_limit": "25000", "segment": "wholesale",
                "contacts": [{"name": "Marta", "email": "ap@example.com", "phone": "+34 933 000 111",
                    "role": "accounts_payable", "is_primary_for_collections": true, "preferred_channel": "phone",
                    "calling_window": {"days": ["mon", "fri"], "start": "09:00", "end": "13:00", "timezone": "Europe/Madrid"}}]
            }),
        )
        .await
        .expect(201);
    let b = &created.body;
    assert!(b["id"].as_str().is_some_and(|id| id.starts_with("cus_")));
    assert_eq!(b["country"], "ES");
    assert_eq!(b["currency"], "EUR");
    assert_eq!(b["payment_terms_days"], 30);
    assert_eq!(b["credit_limit"], "25000.00");
    assert_eq!(b["version"], 1);
    assert_eq!(b["contacts"][0]["calling_window"]["timezone"], "Europe/Madrid");
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    let id = b["id"].as_str().expect("id");
    let read = app.get(&format!("/v1/customers/{id}")).await.expect(200);
    assert_eq!(read.body, created.body);
    app.get("/v1/customers/cus_424242").await.expect_problem(404);
    app.get("/v1/customers/not-an-id").await.expect_problem(404);
}

async fn validation_lists_every_bad_field_and_writes_nothing(app: TestApp) {
    let r = app
        .post(
            "/v1/customers",
            &json!({"name": "", "currency": "XYZ", "language": "de", "payment_terms_days": 9999,
                    "contacts": [{"name": "A", "email": "nope", "phone": "555"}]}),
        )
        .await
        .expect_problem(422);
    let fields = r.error_fields();
    for f in [
        "name",
        "currency",
        "language",
        "payment_terms_days",
        "contacts[0].email",
        "contacts[0].phone",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} missing in {fields:?}");
    }
    let r = app
        .post(
            "/v1/customers",
            &json!({"name": "JPY", "currency": "JPY", "credit_limit": "100.5"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["credit_limit"]);
    let r = app
        .post("/v1/customers", &json!({"name": "Neg", "credit_limit": "-1.00"}))
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["credit_limit"]);
    let list = app.get("/v1/customers").await.expect(200);
    assert_eq!(list.body["items"], json!([]));
}

async fn malformed_bodies_are_400(app: TestApp) {
    app.raw(Method::POST, "/v1/customers", "application/json", "{not json")
        .await
        .expect_problem(400);
    app.post("/v1/customers", &json!({"name": "A", "unknown_field": 1}))
        .await
        .expect_problem(400);
    app.post("/v1/customers", &json!({"name": 12}))
        .await
        .expect_problem(400);
    app.post("/v1/customers", &json!([1, 2])).await.expect_problem(400);
    app.raw(Method::POST, "/v1/customers", "text/plain", "{}")
        .await
        .expect_problem(415);
    app.get("/v1/customers?limit=abc").await.expect_problem(400);
    app.get("/v1/customers?limit=0").await.expect_problem(422);
    app.get("/v1/customers?cursor=%%%").await.expect_problem(422);
    app.get("/v1/customers?updated_since=yesterday")
        .await
        .expect_problem(422);
}

async fn external_ids_are_unique(app: TestApp) {
    app.customer("C-1").await;
    let r = app
        .post("/v1/customers", &json!({"external_id": "C-1", "name": "Dup"}))
        .await
        .expect_problem(409);
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains("by-external-id")));
    let other = app.customer("C-2").await;
    app.patch(&format!("/v1/customers/{other}"), &json!({"external_id": "C-1"}))
        .await
        .expect_problem(409);
}

async fn patch_merges_and_honours_if_match(app: TestApp) {
    let id = app.customer("C-P").await;
    let path = format!("/v1/customers/{id}");
    let r = app
        .patch(&path, &json!({"segment": "retail", "collector": "marta", "dunning_paused_until": "2026-12-31", "dunning_pause_reason": "negotiating"}))
        .await
        .expect(200);
    assert_eq!(r.body["segment"], "retail");
    assert_eq!(r.body["name"], "Customer C-P");
    assert_eq!(r.body["version"], 2);
    // null clears a field.
    let r = app.patch(&path, &json!({"segment": null})).await.expect(200);
    assert_eq!(r.body["segment"], serde_json::Value::Null);
    assert_eq!(r.body["collector"], "marta");
    assert_eq!(r.body["version"], 3);
    // A patch that changes nothing keeps the version.
    let r = app.patch(&path, &json!({"collector": "marta"})).await.expect(200);
    assert_eq!(r.body["version"], 3);
    // If-Match.
    let stale = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&app.admin)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status().as_u16(), 412);
    let fresh = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&app.admin)
        .header("if-match", "\"3\"")
        .json(&json!({"name": "Fresh"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(fresh.status().as_u16(), 200);
    // Invalid values are 422 and change nothing.
    app.patch(&path, &json!({"currency": "ZZZ"})).await.expect_problem(422);
    app.patch(&path, &json!({"name": null})).await.expect_problem(422);
    let now = app.get(&path).await.expect(200);
    assert_eq!(now.body["name"], "Fresh");
    assert_eq!(now.body["version"], 4);
}

async fn put_by_external_id_creates_updates_and_keeps_unchanged(app: TestApp) {
    let body = json!({"name": "Upserted", "currency": "PLN", "language": "pl"});
    let created = app.put("/v1/customers/by-external-id/ERP-9", &body).await.expect(201);
    assert_eq!(created.body["external_id"], "ERP-9");
    let same = app.put("/v1/customers/by-external-id/ERP-9", &body).await.expect(200);
    assert_eq!(same.body["version"], 1);
    assert_eq!(same.body["id"], created.body["id"]);
    let changed = app
        .put(
            "/v1/customers/by-external-id/ERP-9",
            &json!({"name": "Renamed", "currency": "PLN", "language": "pl"}),
        )
        .await
        .expect(200);
    assert_eq!(changed.body["version"], 2);
    assert_eq!(changed.body["name"], "Renamed");
    app.put(
        "/v1/customers/by-external-id/ERP-9",
        &json!({"external_id": "OTHER", "name": "x"}),
    )
    .await
    .expect_problem(422);
}

async fn batch_upserts_with_one_result_per_item(app: TestApp) {
    app.customer("B-1").await;
    let r = app
        .post(
            "/v1/customers/batch",
            &json!({"items": [
                {"external_id": "B-1", "name": "Customer B-1", "currency": "EUR"},
                {"external_id": "B-1", "name": "Customer B-1 renamed"},
                {"external_id": "B-2", "name": "New"},
                {"external_id": "B-3", "name": ""},
                {"external_id": "B-4", "name": 5},
                {"name": "no external id"},
                {"external_id": "B-2", "name": "twice"}
            ]}),
        )
        .await
        .expect(200);
    let results = r.body["results"].as_array().expect("results").clone();
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
    assert_eq!(
        statuses,
        vec!["unchanged", "error", "created", "error", "error", "error", "error"]
    );
    assert_eq!(results[1]["problem"]["status"], 422);
    assert_eq!(results[3]["problem"]["errors"][0]["field"], "name");
    assert_eq!(results[4]["problem"]["status"], 400);
    assert_eq!(results[4]["external_id"], "B-4");
    // The batch may carry the first B-1 as unchanged, and the second is refused as a duplicate.
    let list = app.get("/v1/customers?external_id=B-2").await.expect(200);
    assert_eq!(list.body["items"][0]["name"], "New");
    assert_eq!(list.body["items"][0]["id"], results[2]["id"]);
    // B-3 and B-4 were not written.
    let list = app.get("/v1/customers").await.expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(2));
    // An update in a batch bumps the version once.
    let r = app
        .post(
            "/v1/customers/batch",
            &json!({"items": [{"external_id": "B-2", "name": "Newer"}]}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["results"][0]["status"], "updated");
    let list = app.get("/v1/customers?external_id=B-2").await.expect(200);
    assert_eq!(list.body["items"][0]["version"], 2);
    app.post("/v1/customers/batch", &json!({"items": []}))
        .await
        .expect_problem(422);
    let too_many: Vec<_> = (0..1001)
        .map(|i| json!({"external_id": format!("X{i}"), "name": "x"}))
        .collect();
    app.post("/v1/customers/batch", &json!({"items": too_many}))
        .await
        .expect_problem(422);
}

async fn lists_paginate_with_cursors_and_filter(app: TestApp) {
    let items: Vec<_> = (0..7)
        .map(|i| json!({"external_id": format!("L-{i}"), "name": format!("N{i}"), "segment": if i % 2 == 0 { "even" } else { "odd" }}))
        .collect();
    app.post("/v1/customers/batch", &json!({"items": items}))
        .await
        .expect(200);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?limit=3&cursor={c}"),
            None => "/v1/customers?limit=3".to_string(),
        };
        let page = app.get(&path).await.expect(200);
        for item in page.body["items"].as_array().expect("items") {
            seen.push(item["external_id"].as_str().expect("ext").to_string());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("L-{i}")).collect::<Vec<_>>());
    let even = app.get("/v1/customers?segment=even").await.expect(200);
    assert_eq!(even.body["items"].as_array().map(Vec::len), Some(4));
    let future = app
        .get("/v1/customers?updated_since=2999-01-01T00:00:00Z")
        .await
        .expect(200);
    assert_eq!(future.body["items"], json!([]));
    let past = app
        .get("/v1/customers?updated_since=2000-01-01T00:00:00Z")
        .await
        .expect(200);
    assert_eq!(past.body["items"].as_array().map(Vec::len), Some(7));
}

/// Many writers at once: none fails with a lock error, every row lands.
async fn concurrent_batches_all_land(app: TestApp) {
    let mut handles = Vec::new();
    for w in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/v1/customers/batch", app.address);
        let token = app.admin.clone();
        handles.push(tokio::spawn(async move {
            let items: Vec<_> = (0..50)
                .map(|i| json!({"external_id": format!("W{w}-{i}"), "name": "n"}))
                .collect();
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"items": items}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for h in handles {
        assert_eq!(h.await.expect("join").expect("sent"), 200);
    }
    let mut count = 0;
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/v1/customers?limit=500{cursor}")).await.expect(200);
        count += page.body["items"].as_array().map(Vec::len).unwrap_or(0);
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(count, 400);
}
