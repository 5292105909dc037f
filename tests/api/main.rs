//! Black-box tests of the HTTP API: every test runs once on SQLite and once on PostgreSQL
//! (when `TEST_DATABASE_URL` is set), each against its own fresh database.

mod helpers;

mod auth;
mod credit;
mod customers;
mod delivery;
mod disputes;
mod engine;
mod escalations;
mod health;
mod invoices;
mod money_races;
mod openapi;
mod payment_groups;
mod payments;
mod plan_reminders;
mod promises;
mod reports;
mod tenancy;
mod users;
mod worklist;
