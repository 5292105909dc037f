//! Payment plans (P19): instalments generated from a total (the last one takes the
//! rounding), and the status of each instalment and of the plan from what was paid.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "monthly")]
pub enum Frequency {
    Weekly,
    Biweekly,
    Monthly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Weekly => "weekly",
            Frequency::Biweekly => "biweekly",
            Frequency::Monthly => "monthly",
        }
    }

    /// The `n`-th date (0-based) from `first`.
    pub fn nth(self, first: NaiveDate, n: u32) -> Option<NaiveDate> {
        match self {
            Frequency::Weekly => first.checked_add_days(chrono::Days::new(7 * u64::from(n))),
            Frequency::Biweekly => first.checked_add_days(chrono::Days::new(14 * u64::from(n))),
            Frequency::Monthly => first.checked_add_months(Months::new(n)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentStatus {
    Pending,
    Paid,
    PartiallyPaid,
    Overdue,
}

impl InstalmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstalmentStatus::Pending => "pending",
            InstalmentStatus::Paid => "paid",
            InstalmentStatus::PartiallyPaid => "partially_paid",
            InstalmentStatus::Overdue => "overdue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "active")]
pub enum PlanStatus {
    Active,
    Completed,
    Defaulted,
    Cancelled,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Completed => "completed",
            PlanStatus::Defaulted => "defaulted",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<PlanStatus> {
        [
            PlanStatus::Active,
            PlanStatus::Completed,
            PlanStatus::Defaulted,
            PlanStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Splits `total` minor units into `count` instalments from `first` at `frequency`; every
/// instalment gets `total / count` and the last also takes the remainder.
pub fn generate(total: i64, count: u32, frequency: Frequency, first: NaiveDate) -> Option<Vec<(NaiveDate, i64)>> {
    if count == 0 || total <= 0 || i64::from(count) > total {
        return None;
    }
    let base = total / i64::from(count);
    let mut out = Vec::with_capacity(count as usize);
    for n in 0..count {
        let date = frequency.nth(first, n)?;
        let amount = if n + 1 == count {
            total - base * i64::from(count - 1)
        } else {
            base
        };
        out.push((date, amount));
    }
    Some(out)
}

/// One instalment after distributing what was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalmentState {
    pub paid: i64,
    pub status: InstalmentStatus,
}

/// Fills instalments in order with `paid`, and gives each its status as of a date.
pub fn fill(instalments: &[(NaiveDate, i64)], paid: i64, as_of: NaiveDate) -> Vec<InstalmentState> {
    let mut left = paid.max(0);
    instalments
        .iter()
        .map(|(due, amount)| {
            let share = left.min(*amount);
            left -= share;
            let status = if share >= *amount {
                InstalmentStatus::Paid
            } else if as_of > *due {
                InstalmentStatus::Overdue
            } else if share > 0 {
                InstalmentStatus::PartiallyPaid
            } else {
                InstalmentStatus::Pending
            };
            InstalmentState { paid: share, status }
        })
        .collect()
}

/// The plan's status: completed when everything is paid, defaulted when an instalment is
/// still unpaid `grace_days` after its due date, else active.
pub fn plan_status(
    instalments: &[(NaiveDate, i64)],
    states: &[InstalmentState],
    grace_days: u32,
    as_of: NaiveDate,
) -> PlanStatus {
    if states.iter().all(|s| s.status == InstalmentStatus::Paid) {
        return PlanStatus::Completed;
    }
    let defaulted = instalments.iter().zip(states).any(|((due, _), s)| {
        s.status != InstalmentStatus::Paid
            && due
                .checked_add_days(chrono::Days::new(u64::from(grace_days)))
                .is_some_and(|limit| as_of > limit)
    });
    if defaulted {
        PlanStatus::Defaulted
    } else {
        PlanStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn last_instalment_takes_the_rounding_in_eur_and_jpy() {
        let eur = generate(10_000, 3, Frequency::Monthly, d("2026-01-31")).expect("plan");
        assert_eq!(
            eur.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            vec![3_333, 3_333, 3_334]
        );
        assert_eq!(
            eur.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
            vec![d("2026-01-31"), d("2026-02-28"), d("2026-03-31")]
        );
        let jpy = generate(1_000, 3, Frequency::Weekly, d("2026-01-01")).expect("plan");
        assert_eq!(jpy.iter().map(|(_, a)| *a).collect::<Vec<_>>(), vec![333, 333, 334]);
        assert_eq!(jpy[2].0, d("2026-01-15"));
        let bi = generate(500, 2, Frequency::Biweekly, d("2026-01-01")).expect("plan");
        assert_eq!(bi[1], (d("2026-01-15"), 250));
        assert!(generate(2, 3, Frequency::Weekly, d("2026-01-01")).is_none());
        assert!(generate(100, 0, Frequency::Weekly, d("2026-01-01")).is_none());
    }

    #[test]
    fn payments_fill_instalments_in_order() {
        let plan = vec![(d("2026-01-10"), 100), (d("2026-02-10"), 100), (d("2026-03-10"), 100)];
        let states = fill(&plan, 150, d("2026-01-20"));
        assert_eq!(
            states[0],
            InstalmentState {
                paid: 100,
                status: InstalmentStatus::Paid
            }
        );
        assert_eq!(
            states[1],
            InstalmentState {
                paid: 50,
                status: InstalmentStatus::PartiallyPaid
            }
        );
        assert_eq!(
            states[2],
            InstalmentState {
                paid: 0,
                status: InstalmentStatus::Pending
            }
        );
        let late = fill(&plan, 150, d("2026-02-11"));
        assert_eq!(late[1].status, InstalmentStatus::Overdue);
    }

    #[test]
    fn plan_defaults_after_the_grace_days() {
        let plan = vec![(d("2026-01-10"), 100), (d("2026-02-10"), 100)];
        let at = |s: &str, paid: i64| {
            let states = fill(&plan, paid, d(s));
            plan_status(&plan, &states, 5, d(s))
        };
        assert_eq!(at("2026-01-15", 0), PlanStatus::Active, "last day of grace");
        assert_eq!(at("2026-01-16", 0), PlanStatus::Defaulted);
        assert_eq!(at("2026-01-16", 100), PlanStatus::Active);
        assert_eq!(at("2026-03-01", 200), PlanStatus::Completed);
    }
}
