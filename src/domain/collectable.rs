//! What the collection engine may chase: an open invoice is collectable unless a
//! pre-contact check (P16) or a commitment keeps it out. `exclusion` says which, first
//! match wins, so the engine can record every skip with its reason. An open escalation
//! (agency placement, legal case, repossession offer: `domain::escalation`) comes first:
//! while someone else owns the case, normal dunning stops.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// The customer's dunning is paused until a later date.
    CustomerPaused,
    /// All of the open amount is disputed.
    Disputed,
    /// An open promise to pay covers the invoice.
    Promised,
    /// The invoice is in an active payment plan (its instalments are chased instead).
    InPaymentPlan,
    /// The invoice is placed with a collection agency (P15).
    WithAgency,
    /// A law-firm letter or a small-claims filing covers the invoice (P9).
    Legal,
    /// The goods are offered back for the invoice (P8).
    RepossessionOffered,
}

/// What the rule needs to know about one open invoice.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceFacts {
    pub open_minor: i64,
    pub disputed_minor: i64,
    pub paused_until: Option<NaiveDate>,
    pub promised: bool,
    pub in_active_plan: bool,
    /// Why an open escalation covering the invoice keeps it out, if one does.
    pub escalated: Option<Exclusion>,
}

/// The amount that may be chased: open minus disputed, never below zero.
pub fn collectable_amount(f: &InvoiceFacts) -> i64 {
    (f.open_minor - f.disputed_minor).max(0)
}

pub fn exclusion(f: &InvoiceFacts, as_of: NaiveDate) -> Option<Exclusion> {
    if let Some(e) = f.escalated {
        Some(e)
    } else if f.paused_until.is_some_and(|until| until >= as_of) {
        Some(Exclusion::CustomerPaused)
    } else if collectable_amount(f) == 0 {
        Some(Exclusion::Disputed)
    } else if f.in_active_plan {
        Some(Exclusion::InPaymentPlan)
    } else if f.promised {
        Some(Exclusion::Promised)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn open(amount: i64) -> InvoiceFacts {
        InvoiceFacts {
            open_minor: amount,
            disputed_minor: 0,
            paused_until: None,
            promised: false,
            in_active_plan: false,
            escalated: None,
        }
    }

    #[test]
    fn table_of_exclusions() {
        let as_of = d("2026-11-23");
        let cases = [
            (open(100), None, 100),
            (
                InvoiceFacts {
                    disputed_minor: 40,
                    ..open(100)
                },
                None,
                60,
            ),
            (
                InvoiceFacts {
                    disputed_minor: 100,
                    ..open(100)
                },
                Some(Exclusion::Disputed),
                0,
            ),
            (
                InvoiceFacts {
                    disputed_minor: 150,
                    ..open(100)
                },
                Some(Exclusion::Disputed),
                0,
            ),
            (
                InvoiceFacts {
                    promised: true,
                    ..open(100)
                },
                Some(Exclusion::Promised),
                100,
            ),
            (
                InvoiceFacts {
                    in_active_plan: true,
                    promised: true,
                    ..open(100)
                },
                Some(Exclusion::InPaymentPlan),
                100,
            ),
            (
                InvoiceFacts {
                    paused_until: Some(d("2026-11-23")),
                    ..open(100)
                },
                Some(Exclusion::CustomerPaused),
                100,
            ),
            (
                InvoiceFacts {
                    paused_until: Some(d("2026-11-22")),
                    ..open(100)
                },
                None,
                100,
            ),
            (
                InvoiceFacts {
                    escalated: Some(Exclusion::WithAgency),
                    promised: true,
                    paused_until: Some(d("2026-12-31")),
                    ..open(100)
                },
                Some(Exclusion::WithAgency),
                100,
            ),
            (
                InvoiceFacts {
                    escalated: Some(Exclusion::Legal),
                    disputed_minor: 100,
                    ..open(100)
                },
                Some(Exclusion::Legal),
                0,
            ),
            (
                InvoiceFacts {
                    escalated: Some(Exclusion::RepossessionOffered),
                    in_active_plan: true,
                    ..open(100)
                },
                Some(Exclusion::RepossessionOffered),
                100,
            ),
        ];
        for (facts, expected, amount) in cases {
            assert_eq!(exclusion(&facts, as_of), expected, "{facts:?}");
            assert_eq!(collectable_amount(&facts), amount);
        }
    }
}
