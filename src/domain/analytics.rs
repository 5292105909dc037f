//! Receivables analytics: the period measures of one currency (DSO, best possible DSO,
//! average days delinquent, collection effectiveness index) and how collections are
//! credited to the actions that preceded them. Amounts are minor units of one currency.

use chrono::NaiveDate;

/// Receivables of one currency over a period of `days` days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodBalances {
    /// Open at the end of the day before the period.
    pub opening: i64,
    /// Invoices and debit notes issued in the period.
    pub sales: i64,
    /// Written off in the period.
    pub written_off: i64,
    /// Open at the end of the period.
    pub closing: i64,
    /// The part of `closing` not yet due at the end of the period.
    pub closing_current: i64,
}

/// The measures of a period; `None` where a ratio has no denominator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodMeasures {
    /// Cash and credit notes applied in the period: opening + sales − closing − written off.
    pub collected: i64,
    /// Days sales outstanding: closing ÷ sales × days.
    pub dso: Option<f64>,
    /// The DSO if nothing were overdue: closing current ÷ sales × days.
    pub best_possible_dso: Option<f64>,
    /// DSO − best possible DSO: the days that late payment adds.
    pub average_days_delinquent: Option<f64>,
    /// Collection effectiveness index, 0–100: (opening + sales − closing) ÷ (opening +
    /// sales − closing current) × 100. Write-offs count as collected, as in the usual
    /// definition; they are reported beside it.
    pub cei: Option<f64>,
}

pub fn measures(b: &PeriodBalances, days: i64) -> PeriodMeasures {
    let per_sales =
        |amount: i64| (b.sales > 0 && days > 0).then(|| round1(amount as f64 / b.sales as f64 * days as f64));
    let dso = per_sales(b.closing);
    let best_possible_dso = per_sales(b.closing_current);
    let collectable = b.opening + b.sales - b.closing_current;
    PeriodMeasures {
        collected: b.opening + b.sales - b.closing - b.written_off,
        dso,
        best_possible_dso,
        average_days_delinquent: dso.zip(best_possible_dso).map(|(d, best)| round1(d - best)),
        cei: (collectable > 0).then(|| round1((b.opening + b.sales - b.closing) as f64 / collectable as f64 * 100.0)),
    }
}

/// What was applied to an action's invoices from the day it was performed to `within_days`
/// days after: the collections credited to it. `applied` holds `(value date, amount)`. An
/// amount is credited to every action that preceded it within the window, so the figures
/// of different actions on one invoice overlap.
pub fn collected_within(performed_on: NaiveDate, within_days: u32, applied: &[(NaiveDate, i64)]) -> i64 {
    let last = performed_on + chrono::Days::new(u64::from(within_days));
    applied
        .iter()
        .filter(|(on, _)| (performed_on..=last).contains(on))
        .map(|(_, amount)| amount)
        .sum()
}

/// An open amount as of a day: the invoice amount less what was applied by then and the
/// write-off if it was made by then. Never negative.
pub fn open_as_of(
    amount: i64,
    applied: i64,
    written_off: i64,
    written_off_on: Option<NaiveDate>,
    as_of: NaiveDate,
) -> i64 {
    let written = if written_off_on.is_some_and(|on| on <= as_of) {
        written_off
    } else {
        0
    };
    (amount - applied - written).max(0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn measures_of_a_quarter() {
        // 90 days: 100 000 open at the start, 300 000 sold, 120 000 open at the end of
        // which 90 000 not yet due, 5 000 written off.
        let b = PeriodBalances {
            opening: 100_000,
            sales: 300_000,
            written_off: 5_000,
            closing: 120_000,
            closing_current: 90_000,
        };
        let m = measures(&b, 90);
        assert_eq!(m.collected, 275_000);
        assert_eq!(m.dso, Some(36.0));
        assert_eq!(m.best_possible_dso, Some(27.0));
        assert_eq!(m.average_days_delinquent, Some(9.0));
        // (100 000 + 300 000 − 120 000) / (100 000 + 300 000 − 90 000) = 280 / 310.
        assert_eq!(m.cei, Some(90.3));
    }

    #[test]
    fn everything_collected_is_a_cei_of_100_and_no_sales_no_dso() {
        let all_paid = PeriodBalances {
            opening: 50_000,
            sales: 0,
            written_off: 0,
            closing: 0,
            closing_current: 0,
        };
        let m = measures(&all_paid, 30);
        assert_eq!(m.cei, Some(100.0));
        assert_eq!(m.dso, None, "no sales: DSO is undefined, not zero");
        assert_eq!(m.average_days_delinquent, None);
        assert_eq!(m.collected, 50_000);
        let nothing = measures(&PeriodBalances::default(), 30);
        assert_eq!(nothing.cei, None);
    }

    #[test]
    fn collections_count_from_the_action_day_to_the_window_end() {
        let applied = [
            (date("2026-11-09"), 1_000), // the day before the action
            (date("2026-11-10"), 2_000), // the action's day
            (date("2026-11-24"), 4_000), // the fourteenth day after
            (date("2026-11-25"), 8_000), // one day too late
        ];
        assert_eq!(collected_within(date("2026-11-10"), 14, &applied), 6_000);
        assert_eq!(collected_within(date("2026-11-10"), 0, &applied), 2_000);
    }

    #[test]
    fn open_amount_rebuilt_for_a_past_day() {
        let on = date("2026-11-10");
        assert_eq!(open_as_of(10_000, 3_000, 7_000, Some(on), date("2026-11-09")), 7_000);
        assert_eq!(open_as_of(10_000, 3_000, 7_000, Some(on), on), 0);
        assert_eq!(open_as_of(10_000, 12_000, 0, None, on), 0, "never negative");
    }
}
