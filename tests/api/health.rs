use reqwest::Method;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    health_endpoints_answer_without_a_token,
    unknown_routes_and_methods_are_problems,
    metrics_count_requests_by_route,
    nul_bytes_in_filters_are_not_server_errors,
);

async fn health_endpoints_answer_without_a_token(app: TestApp) {
    let live = app.send(Method::GET, "/health/live", None, None).await.expect(200);
    assert_eq!(live.body["status"], "ok");
    assert!(live.header("x-request-id").is_some_and(|id| id.len() >= 16));
    let ready = app.send(Method::GET, "/health/ready", None, None).await.expect(200);
    let expected = match app.engine {
        crate::helpers::Engine::Sqlite => "sqlite",
        crate::helpers::Engine::Postgres => "postgres",
    };
    assert_eq!(ready.body["database"], expected);
}

async fn unknown_routes_and_methods_are_problems(app: TestApp) {
    app.get("/v1/nothing-here").await.expect_problem(404);
    app.send(Method::DELETE, "/v1/customers", Some(&app.admin), None)
        .await
        .expect_problem(405);
    // Inside a segment's scope, past its end and beside its prefix.
    app.get("/v1/customers/cus_1/nothing-here").await.expect_problem(404);
    app.get("/v1/customers-and-more").await.expect_problem(404);
    app.get("/v1/customers/").await.expect_problem(404);
    app.send(Method::DELETE, "/v1/credit-checks", Some(&app.admin), None)
        .await
        .expect_problem(405);
    // The same segment filled by two modules (customers and credit).
    app.get("/v1/customers/cus_999/credit").await.expect_problem(404);
}

async fn metrics_count_requests_by_route(app: TestApp) {
    app.get("/v1/customers/cus_999").await.expect_problem(404);
    let metrics = app.send(Method::GET, "/metrics", None, None).await.expect(200);
    let text = metrics.body.as_str().expect("text").to_string();
    assert!(
        text.contains(r#"recaudo_http_requests_total{method="GET",route="/v1/customers/{id}",status="404"} 1"#),
        "{text}"
    );
    app.get("/v1/customers/cus_999/credit").await.expect_problem(404);
    let metrics = app.send(Method::GET, "/metrics", None, None).await.expect(200);
    let text = metrics.body.as_str().expect("text").to_string();
    assert!(
        text.contains(r#"recaudo_http_requests_total{method="GET",route="/v1/customers/{id}/credit",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains("recaudo_http_request_duration_seconds_bucket"));
    assert!(text.contains("recaudo_db_pool_connections"));
}

/// PostgreSQL refuses NUL bytes in text (found by schemathesis): a client error, not a 500.
async fn nul_bytes_in_filters_are_not_server_errors(app: TestApp) {
    for path in [
        "/v1/events?kind=a%00b",
        "/v1/invoices?external_id=%00",
        "/v1/customers?segment=x%00",
    ] {
        let r = app.get(path).await;
        assert!(r.status == 200 || r.status == 400, "{path}: {} {}", r.status, r.body);
        if r.status == 400 {
            assert_eq!(r.header("content-type").as_deref(), Some("application/problem+json"));
        }
    }
}
