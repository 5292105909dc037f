//! Promises to pay (P3): the evaluation rule. Payments received from the promise's
//! creation until its promised date plus the tolerance count; reaching the amount keeps it
//! at once; after the window it is partially kept (enough was paid) or broken.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "open")]
pub enum PromiseStatus {
    Open,
    Kept,
    PartiallyKept,
    Broken,
    Cancelled,
}

impl PromiseStatus {
    pub const ALL: [PromiseStatus; 5] = [
        PromiseStatus::Open,
        PromiseStatus::Kept,
        PromiseStatus::PartiallyKept,
        PromiseStatus::Broken,
        PromiseStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PromiseStatus::Open => "open",
            PromiseStatus::Kept => "kept",
            PromiseStatus::PartiallyKept => "partially_kept",
            PromiseStatus::Broken => "broken",
            PromiseStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<PromiseStatus> {
        PromiseStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

pub const CHANNELS: [&str; 5] = ["phone", "email", "letter", "portal", "in_person"];

/// The last day payments count for a promise.
pub fn window_end(promised_date: NaiveDate, tolerance_days: u32) -> NaiveDate {
    promised_date
        .checked_add_days(chrono::Days::new(u64::from(tolerance_days)))
        .unwrap_or(promised_date)
}

/// The status of an open promise of `amount` with `paid` counted so far, as of a date.
/// `min_share_percent` is the share of the amount that makes a late promise partially kept
/// rather than broken (0 = any payment).
pub fn evaluate(
    amount: i64,
    paid: i64,
    window_end: NaiveDate,
    min_share_percent: u32,
    as_of: NaiveDate,
) -> PromiseStatus {
    if paid >= amount {
        return PromiseStatus::Kept;
    }
    if as_of <= window_end {
        return PromiseStatus::Open;
    }
    let enough = if min_share_percent == 0 {
        paid > 0
    } else {
        // paid / amount ≥ share / 100, in integers.
        i128::from(paid) * 100 >= i128::from(amount) * i128::from(min_share_percent)
    };
    if enough {
        PromiseStatus::PartiallyKept
    } else {
        PromiseStatus::Broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn window_includes_the_tolerance() {
        assert_eq!(window_end(d("2026-11-30"), 2), d("2026-12-02"));
        assert_eq!(window_end(d("2026-11-30"), 0), d("2026-11-30"));
    }

    #[test]
    fn kept_as_soon_as_the_amount_is_reached() {
        assert_eq!(
            evaluate(100, 100, d("2026-12-02"), 0, d("2026-11-01")),
            PromiseStatus::Kept
        );
        assert_eq!(
            evaluate(100, 120, d("2026-12-02"), 0, d("2026-12-31")),
            PromiseStatus::Kept
        );
    }

    #[test]
    fn open_until_the_last_day_of_the_window() {
        let end = window_end(d("2026-11-30"), 2);
        assert_eq!(
            evaluate(100, 0, end, 0, d("2026-12-02")),
            PromiseStatus::Open,
            "paying on promised + tolerance is in time"
        );
        assert_eq!(
            evaluate(100, 0, end, 0, d("2026-12-03")),
            PromiseStatus::Broken,
            "one day after"
        );
    }

    #[test]
    fn partial_payments_after_the_window() {
        let end = d("2026-12-02");
        let after = d("2026-12-03");
        assert_eq!(
            evaluate(100, 1, end, 0, after),
            PromiseStatus::PartiallyKept,
            "default: any payment"
        );
        assert_eq!(evaluate(100, 49, end, 50, after), PromiseStatus::Broken);
        assert_eq!(evaluate(100, 50, end, 50, after), PromiseStatus::PartiallyKept);
        assert_eq!(evaluate(100, 0, end, 50, after), PromiseStatus::Broken);
    }
}
