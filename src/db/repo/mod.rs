//! Repositories, one module per aggregate. Every function takes the caller's organisation
//! id and scopes its query by it (or works on ids already read within that scope).

pub mod actions;
pub mod analytics;
pub mod api_clients;
pub mod credit;
pub mod credit_applications;
pub mod credit_queue;
pub mod customers;
pub mod disputes;
pub mod escalations;
pub mod events;
pub mod idempotency;
pub mod invoices;
pub mod jobs;
pub mod organizations;
pub mod outbox;
pub mod payments;
pub mod plans;
pub mod promises;
pub mod strategies;
pub mod tasks;
pub mod users;
