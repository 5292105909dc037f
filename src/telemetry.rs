//! Logs, request ids and Prometheus metrics: the tracing subscriber, per-route request
//! counters and latency histograms, e-mail deliveries by outcome, and the database pool's
//! state read at scrape time.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tracing_actix_web::RequestId;
use tracing_subscriber::EnvFilter;

use crate::db::DbPool;

/// Installs the global tracing subscriber (text or JSON lines). Safe to call twice.
pub fn init_tracing(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    deliveries: IntCounterVec,
    payment_groups: Histogram,
    payment_groups_failed: IntCounter,
}

impl Metrics {
    pub fn new(pool: DbPool) -> Result<Metrics, String> {
        let registry = Registry::new_custom(Some("recaudo".into()), None).map_err(|e| e.to_string())?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["method", "route", "status"],
        )
        .map_err(|e| e.to_string())?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route, method and status",
            )
            // Fine below 10 ms: a credit check's service-level target is a single-digit
            // millisecond p99.
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["method", "route", "status"],
        )
        .map_err(|e| e.to_string())?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "email_deliveries_total",
                "E-mail delivery attempts by outcome: sent, retry, failed, bounced (rejected by the SMTP server or reported later), claim_lost",
            ),
            &["outcome"],
        )
        .map_err(|e| e.to_string())?;
        let payment_groups = Histogram::with_opts(
            HistogramOpts::new(
                "payment_group_size",
                "Payments posted together in one transaction (POST /v1/payments)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .map_err(|e| e.to_string())?;
        let payment_groups_failed = IntCounter::new(
            "payment_groups_failed_total",
            "Payment groups whose transaction failed; their payments were then posted one by one",
        )
        .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(payment_groups.clone()))
            .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(payment_groups_failed.clone()))
            .map_err(|e| e.to_string())?;
        for outcome in ["sent", "retry", "failed", "bounced"] {
            deliveries.with_label_values(&[outcome]);
        }
        registry
            .register(Box::new(deliveries.clone()))
            .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(requests.clone()))
            .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(latency.clone()))
            .map_err(|e| e.to_string())?;
        registry
            .register(Box::new(PoolCollector::new(pool)?))
            .map_err(|e| e.to_string())?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            deliveries,
            payment_groups,
            payment_groups_failed,
        })
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }

    /// Counts one e-mail delivery outcome.
    pub fn email_delivery(&self, outcome: &str) {
        self.deliveries.with_label_values(&[outcome]).inc();
    }

    /// Records the size of one payment group.
    pub fn payment_group(&self, size: usize) {
        self.payment_groups.observe(size as f64);
    }

    /// Counts one payment group whose transaction failed.
    pub fn payment_group_failed(&self) {
        self.payment_groups_failed.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut buffer).is_err() {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Reports the pool's open and idle connections when scraped.
struct PoolCollector {
    pool: DbPool,
    connections: IntGauge,
    idle: IntGauge,
    max: IntGauge,
    descs: Vec<Desc>,
}

impl PoolCollector {
    fn new(pool: DbPool) -> Result<PoolCollector, String> {
        let connections =
            IntGauge::new("db_pool_connections", "Open database connections").map_err(|e| e.to_string())?;
        let idle = IntGauge::new("db_pool_idle_connections", "Idle database connections").map_err(|e| e.to_string())?;
        let max = IntGauge::new("db_pool_max_connections", "Configured pool size").map_err(|e| e.to_string())?;
        let descs = [&connections, &idle, &max]
            .iter()
            .flat_map(|g| g.desc().into_iter().cloned())
            .collect();
        Ok(PoolCollector {
            pool,
            connections,
            idle,
            max,
            descs,
        })
    }
}

impl Collector for PoolCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let state = self.pool.state();
        self.connections.set(i64::from(state.connections));
        self.idle.set(i64::from(state.idle_connections));
        self.max.set(i64::from(self.pool.max_size()));
        [&self.connections, &self.idle, &self.max]
            .iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Middleware: echoes the request id and records the request in the metrics, labelled by
/// route pattern (not raw path, so ids do not explode the label set).
pub async fn observe_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let start = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID, id);
    }
    if let Some(metrics) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        metrics.observe(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    }
    Ok(res)
}
