//! Disputes (P1): reasons, owner departments, and the state machine from open to resolved
//! or withdrawn. While a dispute is open or under review its amount is out of collection.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const REASONS: [&str; 9] = [
    "pricing",
    "quantity",
    "damaged_goods",
    "not_delivered",
    "not_ordered",
    "duplicate_billing",
    "tax_error",
    "service_quality",
    "other",
];

pub const DEPARTMENTS: [&str; 5] = ["sales", "logistics", "billing", "customer_service", "quality"];

pub const RESOLUTIONS: [&str; 4] = [
    "credit_note_issued",
    "customer_accepted",
    "rejected_invoice_valid",
    "partial_credit",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "under_review")]
pub enum DisputeStatus {
    Open,
    UnderReview,
    Resolved,
    Withdrawn,
}

impl DisputeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::Open => "open",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Resolved => "resolved",
            DisputeStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<DisputeStatus> {
        [
            DisputeStatus::Open,
            DisputeStatus::UnderReview,
            DisputeStatus::Resolved,
            DisputeStatus::Withdrawn,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Open and under-review disputes hold their amount out of collection.
    pub fn is_active(self) -> bool {
        matches!(self, DisputeStatus::Open | DisputeStatus::UnderReview)
    }

    /// Whether a dispute may move from `self` to `next`.
    pub fn can_become(self, next: DisputeStatus) -> bool {
        use DisputeStatus::*;
        matches!(
            (self, next),
            (Open, UnderReview)
                | (Open, Resolved)
                | (Open, Withdrawn)
                | (UnderReview, Resolved)
                | (UnderReview, Withdrawn)
                | (UnderReview, Open)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use DisputeStatus::*;
        assert!(Open.can_become(UnderReview));
        assert!(UnderReview.can_become(Resolved));
        assert!(Open.can_become(Withdrawn));
        assert!(!Resolved.can_become(Open));
        assert!(!Withdrawn.can_become(UnderReview));
        assert!(!Open.can_become(Open));
        assert!(Open.is_active() && UnderReview.is_active());
        assert!(!Resolved.is_active() && !Withdrawn.is_active());
    }
}
