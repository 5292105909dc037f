//! Pure business rules: no I/O, no framework types beyond serde. Each module takes data and
//! returns decisions, and is unit-tested on its own.

pub mod aging;
pub mod allocation;
pub mod analytics;
pub mod chunks;
pub mod collectable;
pub mod credit;
pub mod customer;
pub mod delivery;
pub mod dispute;
pub mod escalation;
pub mod format;
pub mod ids;
pub mod invoice;
pub mod letter;
pub mod money;
pub mod payment;
pub mod plan;
pub mod promise;
pub mod risk;
pub mod scorecard;
pub mod settings;
pub mod strategy;
pub mod text;
pub mod user;
pub mod worklist;
