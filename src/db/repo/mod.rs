//! Repositories, one module per aggregate. Every function takes the caller's organisation
//! id and scopes its query by it.

pub mod api_clients;
pub mod customers;
pub mod invoices;
pub mod organizations;
