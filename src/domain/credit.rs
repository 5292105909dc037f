//! Credit control (P3): a customer's exposure against its credit limit, the hold rules of
//! the organisation, and the answer to a credit check, all computed from the customer's
//! credit snapshot and a date. No I/O: the snapshot is read (one row or three) by the
//! caller, which is what keeps a credit check fast.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::format_stored;
use crate::domain::scorecard::ScorecardWeights;
use crate::error::{FieldError, Violations};

/// Credit settings of an organisation: application completeness, scorecard weights and the
/// hold rules. Every field has a default, so stored settings without it keep working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditSettings {
    /// Trade references an application needs before it can be submitted (default 2).
    #[serde(default = "default_trade_refs")]
    #[schema(minimum = 0, maximum = 10)]
    pub min_trade_references: u32,
    /// Bank references an application needs before it can be submitted (default 1).
    #[serde(default = "default_bank_refs")]
    #[schema(minimum = 0, maximum = 10)]
    pub min_bank_references: u32,
    /// Weights of the application scorecard's factors.
    #[serde(default)]
    pub scorecard_weights: ScorecardWeights,
    /// Hold while exposure exceeds the credit limit.
    #[serde(default = "yes")]
    pub hold_over_limit: bool,
    /// Hold while any invoice is more than this many days overdue (default 60); 0 disables.
    #[serde(default = "default_overdue_days")]
    #[schema(minimum = 0, maximum = 3650)]
    pub hold_overdue_days: u32,
    /// Hold at this many broken promises within `broken_promise_window_days` (default 2);
    /// 0 disables.
    #[serde(default = "default_broken_promises")]
    #[schema(minimum = 0, maximum = 100)]
    pub hold_broken_promises: u32,
    /// The window of the broken-promise rule, in days (default 90).
    #[serde(default = "default_promise_window")]
    #[schema(minimum = 1, maximum = 365)]
    pub broken_promise_window_days: u32,
    /// Hold for this many days after a payment plan defaulted (default 365); 0 disables.
    #[serde(default = "default_plan_days")]
    #[schema(minimum = 0, maximum = 3650)]
    pub hold_defaulted_plan_days: u32,
    /// Hold while the collection strategy's `credit_hold` step has an active credit-hold
    /// escalation on the account (default true).
    #[serde(default = "yes")]
    pub hold_on_strategy_step: bool,
    /// A customer without a credit limit: orders are approved (false, default) or held.
    #[serde(default)]
    pub hold_without_limit: bool,
    /// How long a manual release lasts when the manager gives no date (default 30 days).
    #[serde(default = "default_release_days")]
    #[schema(minimum = 1, maximum = 365)]
    pub manual_release_days: u32,
}

fn default_trade_refs() -> u32 {
    2
}
fn default_bank_refs() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_overdue_days() -> u32 {
    60
}
fn default_broken_promises() -> u32 {
    2
}
fn default_promise_window() -> u32 {
    90
}
fn default_plan_days() -> u32 {
    365
}
fn default_release_days() -> u32 {
    30
}

impl Default for CreditSettings {
    fn default() -> Self {
        CreditSettings {
            min_trade_references: default_trade_refs(),
            min_bank_references: default_bank_refs(),
            scorecard_weights: ScorecardWeights::default(),
            hold_over_limit: true,
            hold_overdue_days: default_overdue_days(),
            hold_broken_promises: default_broken_promises(),
            broken_promise_window_days: default_promise_window(),
            hold_defaulted_plan_days: default_plan_days(),
            hold_on_strategy_step: true,
            hold_without_limit: false,
            manual_release_days: default_release_days(),
        }
    }
}

impl CreditSettings {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Violations::new();
        if self.min_trade_references > 10 {
            v.add("min_trade_references", "must be between 0 and 10");
        }
        if self.min_bank_references > 10 {
            v.add("min_bank_references", "must be between 0 and 10");
        }
        if self.hold_overdue_days > 3650 {
            v.add("hold_overdue_days", "must be between 0 and 3650");
        }
        if self.hold_broken_promises > 100 {
            v.add("hold_broken_promises", "must be between 0 and 100");
        }
        if !(1..=365).contains(&self.broken_promise_window_days) {
            v.add("broken_promise_window_days", "must be between 1 and 365");
        }
        if self.hold_defaulted_plan_days > 3650 {
            v.add("hold_defaulted_plan_days", "must be between 0 and 3650");
        }
        if !(1..=365).contains(&self.manual_release_days) {
            v.add("manual_release_days", "must be between 1 and 365");
        }
        if let Err(errors) = self.scorecard_weights.validate() {
            v.extend_prefixed("scorecard_weights.", errors);
        }
        v.finish()
    }
}

/// Why a customer's credit is held, or why an order is not approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldReason {
    /// `over_limit`, `overdue`, `broken_promises`, `defaulted_plan`, `strategy_credit_hold`,
    /// `no_credit_limit`, `order_exceeds_available`.
    pub code: String,
    pub message: String,
}

impl HoldReason {
    fn new(code: &str, message: String) -> HoldReason {
        HoldReason {
            code: code.to_string(),
            message,
        }
    }
}

/// The customer's credit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditStatus {
    /// No hold rule applies.
    Ok,
    /// At least one hold rule applies: orders are held.
    OnHold,
    /// Hold rules apply but a manager released the account until a date.
    ManualRelease,
}

impl CreditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CreditStatus::Ok => "ok",
            CreditStatus::OnHold => "on_hold",
            CreditStatus::ManualRelease => "manual_release",
        }
    }

    pub fn parse(text: &str) -> Option<CreditStatus> {
        [CreditStatus::Ok, CreditStatus::OnHold, CreditStatus::ManualRelease]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Exposure in one currency: open receivables − unapplied cash + open orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Open invoices and debit notes minus open credit notes.
    pub open_receivables_minor: i64,
    pub unapplied_minor: i64,
    pub open_orders_minor: i64,
}

impl Exposure {
    pub fn total(&self) -> i64 {
        self.open_receivables_minor
            .saturating_sub(self.unapplied_minor)
            .saturating_add(self.open_orders_minor)
    }
}

/// What the hold rules read about a customer (its credit snapshot and limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditFacts {
    /// The credit currency: the customer's currency, which its limit is in.
    pub currency: String,
    pub limit_minor: Option<i64>,
    /// Exposure in the credit currency; other currencies are never added to it.
    pub exposure: Exposure,
    /// Oldest due date of an open invoice that is not wholly disputed.
    pub oldest_due_date: Option<NaiveDate>,
    pub broken_promise_dates: Vec<NaiveDate>,
    pub plan_defaulted_on: Option<NaiveDate>,
    /// A manual release lasts until this date (inclusive).
    pub release_until: Option<NaiveDate>,
    /// Opening date of the oldest active credit-hold escalation (the strategy's
    /// `credit_hold` step, or a manager by hand).
    pub strategy_hold_since: Option<NaiveDate>,
}

impl CreditFacts {
    /// Limit minus exposure (negative when over the limit); `None` without a limit.
    pub fn available_minor(&self) -> Option<i64> {
        self.limit_minor.map(|l| l.saturating_sub(self.exposure.total()))
    }

    pub fn over_limit(&self) -> bool {
        self.available_minor().is_some_and(|a| a < 0)
    }
}

/// The hold rules that apply to a customer on `as_of`, in a fixed order.
pub fn hold_reasons(f: &CreditFacts, s: &CreditSettings, as_of: NaiveDate) -> Vec<HoldReason> {
    let mut reasons = Vec::new();
    let money = |m: i64| format!("{} {}", format_stored(m, &f.currency), f.currency);
    if s.hold_over_limit
        && let Some(limit) = f.limit_minor
        && f.exposure.total() > limit
    {
        reasons.push(HoldReason::new(
            "over_limit",
            format!(
                "exposure {} exceeds the credit limit {}",
                money(f.exposure.total()),
                money(limit)
            ),
        ));
    }
    if s.hold_overdue_days > 0
        && let Some(due) = f.oldest_due_date
    {
        let days = (as_of - due).num_days();
        if days > i64::from(s.hold_overdue_days) {
            reasons.push(HoldReason::new(
                "overdue",
                format!(
                    "an invoice due on {due} is {days} days overdue (more than {})",
                    s.hold_overdue_days
                ),
            ));
        }
    }
    if s.hold_broken_promises > 0 {
        let since = as_of - chrono::Days::new(u64::from(s.broken_promise_window_days));
        let n = f
            .broken_promise_dates
            .iter()
            .filter(|d| **d > since && **d <= as_of)
            .count();
        if n >= s.hold_broken_promises as usize {
            reasons.push(HoldReason::new(
                "broken_promises",
                format!(
                    "{n} promises broken in the last {} days (hold at {})",
                    s.broken_promise_window_days, s.hold_broken_promises
                ),
            ));
        }
    }
    if s.hold_defaulted_plan_days > 0
        && let Some(on) = f.plan_defaulted_on
        && (as_of - on).num_days() < i64::from(s.hold_defaulted_plan_days)
        && on <= as_of
    {
        reasons.push(HoldReason::new(
            "defaulted_plan",
            format!("a payment plan defaulted on {on}"),
        ));
    }
    if s.hold_on_strategy_step
        && let Some(since) = f.strategy_hold_since
    {
        reasons.push(HoldReason::new(
            "strategy_credit_hold",
            format!("the collection strategy put the account on credit hold on {since}"),
        ));
    }
    reasons
}

/// The status that follows from the rules that apply and a manual release.
pub fn status(reasons: &[HoldReason], release_until: Option<NaiveDate>, as_of: NaiveDate) -> CreditStatus {
    if reasons.is_empty() {
        CreditStatus::Ok
    } else if release_until.is_some_and(|d| d >= as_of) {
        CreditStatus::ManualRelease
    } else {
        CreditStatus::OnHold
    }
}

/// The answer to a credit check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub approved: bool,
    pub status: CreditStatus,
    pub reasons: Vec<HoldReason>,
    /// Available credit before the order; `None` without a limit.
    pub available_minor: Option<i64>,
}

/// Decides whether an order of `order_minor` (in the credit currency) may ship: the
/// account must not be on hold, and the order must fit in the available credit. A manual
/// release waives both until its date.
pub fn check_order(f: &CreditFacts, s: &CreditSettings, order_minor: i64, as_of: NaiveDate) -> CheckOutcome {
    let mut reasons = hold_reasons(f, s, as_of);
    let status = status(&reasons, f.release_until, as_of);
    let available = f.available_minor();
    let released = f.release_until.is_some_and(|d| d >= as_of);
    match available {
        Some(a) if order_minor > a && !reasons.iter().any(|r| r.code == "over_limit") => {
            reasons.push(HoldReason::new(
                "order_exceeds_available",
                format!(
                    "the order of {} {cur} exceeds the available credit of {} {cur}",
                    format_stored(order_minor, &f.currency),
                    format_stored(a, &f.currency),
                    cur = f.currency
                ),
            ));
        }
        None if s.hold_without_limit => reasons.push(HoldReason::new(
            "no_credit_limit",
            "the customer has no credit limit; the organisation holds such orders".into(),
        )),
        _ => {}
    }
    if released {
        reasons.clear();
    }
    CheckOutcome {
        approved: reasons.is_empty(),
        status: if released && status == CreditStatus::Ok {
            CreditStatus::Ok
        } else {
            status
        },
        reasons,
        available_minor: available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn facts() -> CreditFacts {
        CreditFacts {
            currency: "EUR".into(),
            limit_minor: Some(100_000),
            exposure: Exposure {
                open_receivables_minor: 50_000,
                unapplied_minor: 10_000,
                open_orders_minor: 5_000,
            },
            ..Default::default()
        }
    }

    #[test]
    fn exposure_and_available() {
        let f = facts();
        assert_eq!(f.exposure.total(), 45_000);
        assert_eq!(f.available_minor(), Some(55_000));
        assert!(!f.over_limit());
        let s = CreditSettings::default();
        assert!(hold_reasons(&f, &s, d("2026-11-23")).is_empty());
    }

    #[test]
    fn each_rule_holds_on_its_own() {
        let s = CreditSettings::default();
        let today = d("2026-11-23");
        let mut f = facts();
        f.exposure.open_receivables_minor = 120_000;
        let r = hold_reasons(&f, &s, today);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, "over_limit");
        assert!(r[0].message.contains("1150.00 EUR"), "{}", r[0].message);

        let mut f = facts();
        f.oldest_due_date = Some(d("2026-09-24")); // 60 days: not more than 60
        assert!(hold_reasons(&f, &s, today).is_empty());
        f.oldest_due_date = Some(d("2026-09-23")); // 61 days
        assert_eq!(hold_reasons(&f, &s, today)[0].code, "overdue");

        let mut f = facts();
        f.broken_promise_dates = vec![d("2026-11-01"), d("2026-06-01")];
        assert!(hold_reasons(&f, &s, today).is_empty(), "one in the window");
        f.broken_promise_dates.push(d("2026-10-01"));
        assert_eq!(hold_reasons(&f, &s, today)[0].code, "broken_promises");

        let mut f = facts();
        f.plan_defaulted_on = Some(d("2026-11-01"));
        assert_eq!(hold_reasons(&f, &s, today)[0].code, "defaulted_plan");
        f.plan_defaulted_on = Some(d("2025-11-01"));
        assert!(hold_reasons(&f, &s, today).is_empty(), "a year later");
    }

    #[test]
    fn a_strategy_hold_holds_until_released() {
        let s = CreditSettings::default();
        let today = d("2026-11-23");
        let mut f = facts();
        f.strategy_hold_since = Some(d("2026-11-20"));
        let r = hold_reasons(&f, &s, today);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code, "strategy_credit_hold");
        assert!(r[0].message.contains("2026-11-20"), "{}", r[0].message);
        let answer = check_order(&f, &s, 1, today);
        assert!(!answer.approved);
        assert_eq!(answer.status, CreditStatus::OnHold);
        f.strategy_hold_since = None;
        assert!(check_order(&f, &s, 1, today).approved);
    }

    #[test]
    fn disabled_rules_never_hold() {
        let s = CreditSettings {
            hold_over_limit: false,
            hold_overdue_days: 0,
            hold_broken_promises: 0,
            hold_defaulted_plan_days: 0,
            hold_on_strategy_step: false,
            ..CreditSettings::default()
        };
        let mut f = facts();
        f.strategy_hold_since = Some(d("2026-11-01"));
        f.exposure.open_receivables_minor = 1_000_000;
        f.oldest_due_date = Some(d("2020-01-01"));
        f.broken_promise_dates = vec![d("2026-11-20"); 5];
        f.plan_defaulted_on = Some(d("2026-11-20"));
        assert!(hold_reasons(&f, &s, d("2026-11-23")).is_empty());
    }

    #[test]
    fn status_and_manual_release() {
        let today = d("2026-11-23");
        let reason = vec![HoldReason::new("overdue", String::new())];
        assert_eq!(status(&[], None, today), CreditStatus::Ok);
        assert_eq!(status(&reason, None, today), CreditStatus::OnHold);
        assert_eq!(status(&reason, Some(today), today), CreditStatus::ManualRelease);
        assert_eq!(status(&reason, Some(d("2026-11-22")), today), CreditStatus::OnHold);
    }

    #[test]
    fn credit_check_answers() {
        let s = CreditSettings::default();
        let today = d("2026-11-23");
        let f = facts();
        let ok = check_order(&f, &s, 55_000, today);
        assert!(ok.approved);
        assert_eq!(ok.available_minor, Some(55_000));
        let too_big = check_order(&f, &s, 55_001, today);
        assert!(!too_big.approved);
        assert_eq!(too_big.reasons[0].code, "order_exceeds_available");
        assert_eq!(too_big.status, CreditStatus::Ok, "the account itself is not on hold");

        let mut over = facts();
        over.exposure.open_receivables_minor = 200_000;
        let held = check_order(&over, &s, 1, today);
        assert!(!held.approved);
        assert_eq!(held.status, CreditStatus::OnHold);
        assert_eq!(
            held.reasons.len(),
            1,
            "over limit is not repeated as order_exceeds_available"
        );
        assert_eq!(held.available_minor, Some(-95_000));

        over.release_until = Some(d("2026-12-01"));
        let released = check_order(&over, &s, 1, today);
        assert!(released.approved);
        assert_eq!(released.status, CreditStatus::ManualRelease);

        let mut no_limit = facts();
        no_limit.limit_minor = None;
        assert!(check_order(&no_limit, &s, 1_000_000, today).approved);
        let strict = CreditSettings {
            hold_without_limit: true,
            ..CreditSettings::default()
        };
        assert_eq!(
            check_order(&no_limit, &strict, 1, today).reasons[0].code,
            "no_credit_limit"
        );
    }

    #[test]
    fn settings_validate() {
        assert!(CreditSettings::default().validate().is_ok());
        let bad = CreditSettings {
            min_trade_references: 11,
            broken_promise_window_days: 0,
            manual_release_days: 0,
            ..CreditSettings::default()
        };
        assert_eq!(bad.validate().expect_err("invalid").len(), 3);
    }
}
