//! Roles and the permission table every endpoint refers to (also printed in the README).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "integration")]
pub enum Role {
    Admin,
    Manager,
    Collector,
    Sales,
    Integration,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Manager,
        Role::Collector,
        Role::Sales,
        Role::Integration,
        Role::Viewer,
    ];

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Collector => "collector",
            Role::Sales => "sales",
            Role::Integration => "integration",
            Role::Viewer => "viewer",
        }
    }
}

/// Who may read receivables data: every role.
pub const READERS: &[Role] = &Role::ALL;
/// Who may push master data and invoices (the ERP and the people who run the ledger).
pub const LEDGER_WRITERS: &[Role] = &[Role::Admin, Role::Manager, Role::Integration];
/// Who may cancel or write off an invoice.
pub const MANAGERS: &[Role] = &[Role::Admin, Role::Manager];
/// Who does collection work: takes promises, agrees plans, raises disputes.
pub const COLLECTION_STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Collector, Role::Sales];
/// Who may raise and edit disputes: collection staff, and the ERP pushing them.
pub const DISPUTE_WRITERS: &[Role] = &[
    Role::Admin,
    Role::Manager,
    Role::Collector,
    Role::Sales,
    Role::Integration,
];
/// Who may agree payment plans.
pub const PLAN_WRITERS: &[Role] = &[Role::Admin, Role::Manager, Role::Collector];
/// Who may fill in and submit credit applications: managers, sales (who bring the
/// applicant) and the ERP or portal pushing them.
pub const CREDIT_APPLICANTS: &[Role] = &[Role::Admin, Role::Manager, Role::Sales, Role::Integration];
/// Who may ask for a credit check before releasing an order.
pub const CREDIT_CHECKERS: &[Role] = &[Role::Admin, Role::Manager, Role::Sales, Role::Integration];
/// Who may manage API clients.
pub const ADMINS: &[Role] = &[Role::Admin];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
    }
}
