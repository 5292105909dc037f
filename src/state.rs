//! The state shared by every request handler.

use std::sync::Arc;

use crate::auth::{OrgDirectory, TokenKeys};
use crate::db::{DbPool, Engine};
use crate::payment_groups::PaymentPoster;
use crate::telemetry::Metrics;

pub struct AppState {
    pub pool: DbPool,
    pub engine: Engine,
    pub keys: Arc<TokenKeys>,
    pub orgs: OrgDirectory,
    pub metrics: Metrics,
    /// Posts `POST /v1/payments` requests in groups (see `payment_groups`).
    pub payments: PaymentPoster,
}

impl AppState {
    /// Today's date in UTC: the one clock business dates are measured against when a
    /// request gives no `as_of`.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().date_naive()
    }
}
