use reqwest::Method;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(another_organisation_sees_404_for_every_id, role_table_is_enforced);

async fn another_organisation_sees_404_for_every_id(app: TestApp) {
    let customer = app.customer("C-1").await;
    let invoice = app.invoice(&customer, "F-1", "100.00", "2026-02-01").await;
    let client = app
        .post("/v1/api-clients", &json!({"name": "a", "role": "viewer"}))
        .await
        .expect(201);
    let client_id = client.body["id"].as_str().expect("id").to_string();
    let other = app.create_org("other-co");
    let g = |p: String| (Method::GET, p, None);
    let cases: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        g(format!("/v1/customers/{customer}")),
        g(format!("/v1/customers/{customer}/statement")),
        (
            Method::PATCH,
            format!("/v1/customers/{customer}"),
            Some(json!({"name": "Stolen"})),
        ),
        g(format!("/v1/invoices/{invoice}")),
        (
            Method::PATCH,
            format!("/v1/invoices/{invoice}"),
            Some(json!({"amount": "1.00"})),
        ),
        (
            Method::POST,
            format!("/v1/invoices/{invoice}/cancel"),
            Some(json!({"reason": "x"})),
        ),
        (
            Method::POST,
            format!("/v1/invoices/{invoice}/write-off"),
            Some(json!({"reason": "x"})),
        ),
        g(format!("/v1/api-clients/{client_id}")),
        (
            Method::POST,
            format!("/v1/api-clients/{client_id}/revoke"),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in cases {
        let r = app.send(method.clone(), &path, Some(&other), body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    // Lists are scoped too.
    let customers = app
        .send(Method::GET, "/v1/customers", Some(&other), None)
        .await
        .expect(200);
    assert_eq!(customers.body["items"], json!([]));
    let invoices = app
        .send(Method::GET, "/v1/invoices", Some(&other), None)
        .await
        .expect(200);
    assert_eq!(invoices.body["items"], json!([]));
    // The other organisation may reuse the same external ids without clashing.
    app.send(
        Method::POST,
        "/v1/customers",
        Some(&other),
        Some(&json!({"external_id": "C-1", "name": "Theirs"})),
    )
    .await
    .expect(201);
    // An invoice of the other organisation cannot point at our customer.
    let r = app
        .send(
            Method::POST,
            "/v1/invoices",
            Some(&other),
            Some(&json!({"customer_id": customer, "number": "X", "amount": "1.00", "issue_date": "2026-01-01"})),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), vec!["customer_id"]);
    // And ours is untouched.
    let mine = app.get(&format!("/v1/customers/{customer}")).await.expect(200);
    assert_eq!(mine.body["name"], "Customer C-1");
}

/// Each role against each kind of operation: allowed means anything but 401/403.
async fn role_table_is_enforced(app: TestApp) {
    let customer = app.customer("C-R").await;
    let invoice = app.invoice(&customer, "F-R", "100.00", "2026-02-01").await;
    struct Op {
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
        allowed: &'static [&'static str],
    }
    let everyone: &[&str] = &["admin", "manager", "collector", "sales", "integration", "viewer"];
    let ledger: &[&str] = &["admin", "manager", "integration"];
    let managers: &[&str] = &["admin", "manager"];
    let ops = vec![
        Op {
            method: Method::GET,
            path: "/v1/customers".into(),
            body: None,
            allowed: everyone,
        },
        Op {
            method: Method::GET,
            path: format!("/v1/customers/{customer}"),
            body: None,
            allowed: everyone,
        },
        Op {
            method: Method::GET,
            path: format!("/v1/customers/{customer}/statement"),
            body: None,
            allowed: everyone,
        },
        Op {
            method: Method::GET,
            path: "/v1/invoices".into(),
            body: None,
            allowed: everyone,
        },
        Op {
            method: Method::GET,
            path: format!("/v1/invoices/{invoice}"),
            body: None,
            allowed: everyone,
        },
        Op {
            method: Method::POST,
            path: "/v1/customers".into(),
            body: Some(json!({"name": "N"})),
            allowed: ledger,
        },
        Op {
            method: Method::PATCH,
            path: format!("/v1/customers/{customer}"),
            body: Some(json!({"segment": "s"})),
            allowed: ledger,
        },
        Op {
            method: Method::PUT,
            path: "/v1/customers/by-external-id/C-PUT".into(),
            body: Some(json!({"name": "P"})),
            allowed: ledger,
        },
        Op {
            method: Method::POST,
            path: "/v1/customers/batch".into(),
            body: Some(json!({"items": [{"external_id": "C-B", "name": "B"}]})),
            allowed: ledger,
        },
        Op {
            method: Method::POST,
            path: "/v1/invoices".into(),
            body: Some(json!({"customer_id": customer, "number": "N", "amount": "1.00", "issue_date": "2026-01-01"})),
            allowed: ledger,
        },
        Op {
            method: Method::PATCH,
            path: format!("/v1/invoices/{invoice}"),
            body: Some(json!({"purchase_order": "PO"})),
            allowed: ledger,
        },
        Op {
            method: Method::PUT,
            path: "/v1/invoices/by-external-id/F-PUT".into(),
            body: Some(json!({"customer_id": customer, "number": "P", "amount": "1.00", "issue_date": "2026-01-01"})),
            allowed: ledger,
        },
        Op {
            method: Method::POST,
            path: "/v1/invoices/batch".into(),
            body: Some(
                json!({"items": [{"external_id": "F-B", "customer_id": customer, "number": "B", "amount": "1.00", "issue_date": "2026-01-01"}]}),
            ),
            allowed: ledger,
        },
        Op {
            method: Method::POST,
            path: format!("/v1/invoices/{invoice}/write-off"),
            body: Some(json!({"reason": "r"})),
            allowed: managers,
        },
        Op {
            method: Method::POST,
            path: "/v1/invoices/inv_999999/cancel".into(),
            body: Some(json!({"reason": "r"})),
            allowed: managers,
        },
        Op {
            method: Method::GET,
            path: "/v1/api-clients".into(),
            body: None,
            allowed: &["admin"],
        },
    ];
    for op in &ops {
        for role in everyone {
            let token = app.token(role);
            let r = app
                .send(op.method.clone(), &op.path, Some(&token), op.body.as_ref())
                .await;
            if op.allowed.contains(role) {
                assert!(
                    r.status != 401 && r.status != 403,
                    "{role} should be allowed {} {}: {}",
                    op.method,
                    op.path,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status, 403,
                    "{role} should be refused {} {}: {}",
                    op.method, op.path, r.body
                );
            }
        }
    }
}
