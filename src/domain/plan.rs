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

/// Why an instalment of an active plan gets no reminder in a collection run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstalmentSkip {
    /// The instalment's date has not passed yet.
    NotYetDue,
    /// Payments to the plan cover the instalment.
    Paid,
    /// The instalment was already reminded (once per instalment).
    AlreadyReminded,
    /// The grace days are over: the plan defaults and its invoices return to normal dunning.
    GraceExpired,
    /// The customer's dunning is paused.
    CustomerPaused,
}

impl InstalmentSkip {
    /// The name the run summary counts skips under (`instalment_paid`, …).
    pub fn summary_key(self) -> &'static str {
        match self {
            InstalmentSkip::NotYetDue => "instalment_not_yet_due",
            InstalmentSkip::Paid => "instalment_paid",
            InstalmentSkip::AlreadyReminded => "instalment_already_reminded",
            InstalmentSkip::GraceExpired => "instalment_grace_expired",
            InstalmentSkip::CustomerPaused => "instalment_customer_paused",
        }
    }
}

/// Facts about one instalment of an active plan for the reminder step.
#[derive(Debug, Clone, Copy)]
pub struct InstalmentFacts {
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    /// What payments to the plan cover of this instalment (`fill`).
    pub paid_minor: i64,
    pub grace_days: u32,
    pub reminded_on: Option<NaiveDate>,
    pub paused_until: Option<NaiveDate>,
}

/// The last day an unpaid instalment may be paid before its plan defaults.
pub fn last_grace_day(due_date: NaiveDate, grace_days: u32) -> NaiveDate {
    due_date
        .checked_add_days(chrono::Days::new(u64::from(grace_days)))
        .unwrap_or(due_date)
}

/// Whether an instalment is reminded on a date: it is overdue (the day after its date),
/// not fully paid, not yet reminded, still within the grace days (after them the plan
/// defaults and normal dunning takes over), and the customer is not paused. `Ok` carries
/// the reply-by date: the last day of grace.
pub fn remind_instalment(f: &InstalmentFacts, as_of: NaiveDate) -> Result<NaiveDate, InstalmentSkip> {
    if f.paid_minor >= f.amount_minor {
        return Err(InstalmentSkip::Paid);
    }
    if as_of <= f.due_date {
        return Err(InstalmentSkip::NotYetDue);
    }
    if f.reminded_on.is_some() {
        return Err(InstalmentSkip::AlreadyReminded);
    }
    let last = last_grace_day(f.due_date, f.grace_days);
    if as_of > last {
        return Err(InstalmentSkip::GraceExpired);
    }
    if f.paused_until.is_some_and(|until| until >= as_of) {
        return Err(InstalmentSkip::CustomerPaused);
    }
    Ok(last)
}

/// The text naming what happens when the plan defaults, for the `consequence` variable of
/// the instalment reminder; `balance` is the plan's outstanding amount, already formatted.
pub fn default_consequence(language: &str, balance: &str) -> String {
    match language {
        "es" => format!(
            "el plan de pagos quedará sin efecto y el saldo pendiente de {balance} volverá a ser exigible en su totalidad, conforme a nuestro procedimiento habitual de cobro"
        ),
        "ca" => format!(
            "el pla de pagaments quedarà sense efecte i el saldo pendent de {balance} tornarà a ser exigible en la seva totalitat, d'acord amb el nostre procediment habitual de cobrament"
        ),
        "fr" => format!(
            "l'échéancier prendra fin et la totalité du solde restant dû, soit {balance}, redeviendra exigible selon notre procédure habituelle de recouvrement"
        ),
        "pl" => format!(
            "plan spłaty wygaśnie, a całe pozostałe saldo w wysokości {balance} stanie się natychmiast wymagalne i zostanie objęte naszą standardową procedurą windykacyjną"
        ),
        _ => format!(
            "the payment plan will lapse and the whole outstanding balance of {balance} will fall due again under our normal collection procedure"
        ),
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

    #[test]
    fn instalment_reminder_table() {
        let facts = InstalmentFacts {
            due_date: d("2026-12-10"),
            amount_minor: 100,
            paid_minor: 0,
            grace_days: 5,
            reminded_on: None,
            paused_until: None,
        };
        let cases = [
            (facts, "2026-12-10", Err(InstalmentSkip::NotYetDue)),
            (facts, "2026-12-11", Ok(d("2026-12-15"))),
            (facts, "2026-12-15", Ok(d("2026-12-15"))),
            (facts, "2026-12-16", Err(InstalmentSkip::GraceExpired)),
            (
                InstalmentFacts {
                    paid_minor: 100,
                    ..facts
                },
                "2026-12-11",
                Err(InstalmentSkip::Paid),
            ),
            (
                InstalmentFacts {
                    paid_minor: 40,
                    ..facts
                },
                "2026-12-12",
                Ok(d("2026-12-15")),
            ),
            (
                InstalmentFacts {
                    reminded_on: Some(d("2026-12-11")),
                    ..facts
                },
                "2026-12-12",
                Err(InstalmentSkip::AlreadyReminded),
            ),
            (
                InstalmentFacts {
                    paused_until: Some(d("2026-12-12")),
                    ..facts
                },
                "2026-12-12",
                Err(InstalmentSkip::CustomerPaused),
            ),
            (
                InstalmentFacts { grace_days: 0, ..facts },
                "2026-12-11",
                Err(InstalmentSkip::GraceExpired),
            ),
        ];
        for (f, on, expected) in cases {
            assert_eq!(remind_instalment(&f, d(on)), expected, "{f:?} on {on}");
        }
        // A paid instalment is never reminded, even long after its date.
        let paid = InstalmentFacts {
            paid_minor: 100,
            ..facts
        };
        assert_eq!(remind_instalment(&paid, d("2027-06-01")), Err(InstalmentSkip::Paid));
    }

    #[test]
    fn the_reminder_agrees_with_fill_and_plan_status() {
        // On every day the reminder is due, the plan is still active; the day after the
        // last reply-by day it has defaulted.
        let plan = vec![(d("2026-12-10"), 100), (d("2027-01-10"), 100)];
        for day in ["2026-12-11", "2026-12-15"] {
            let states = fill(&plan, 0, d(day));
            assert_eq!(states[0].status, InstalmentStatus::Overdue);
            assert_eq!(plan_status(&plan, &states, 5, d(day)), PlanStatus::Active);
        }
        let after = fill(&plan, 0, d("2026-12-16"));
        assert_eq!(plan_status(&plan, &after, 5, d("2026-12-16")), PlanStatus::Defaulted);
    }

    #[test]
    fn default_consequence_names_the_balance_in_every_language() {
        for lang in crate::domain::customer::LANGUAGES {
            assert!(default_consequence(lang, "1 234,00 €").contains("1 234,00 €"), "{lang}");
        }
        assert!(default_consequence("es", "x").contains("plan de pagos"));
    }
}
