//! Aging: which bucket an open item falls in, and the per-currency totals of a statement.
//! Amounts of different currencies are never added together.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::invoice::days_past_due;

/// Buckets of days past due: current (not yet due), 1–30, 31–60, 61–90, 91–120, over 120.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Current,
    Days1To30,
    Days31To60,
    Days61To90,
    Days91To120,
    Over120,
}

pub fn bucket(days_past_due: i64) -> Bucket {
    match days_past_due {
        i64::MIN..=0 => Bucket::Current,
        1..=30 => Bucket::Days1To30,
        31..=60 => Bucket::Days31To60,
        61..=90 => Bucket::Days61To90,
        91..=120 => Bucket::Days91To120,
        _ => Bucket::Over120,
    }
}

/// An open item as aging sees it. Credit notes carry a negative open amount.
#[derive(Debug, Clone)]
pub struct OpenItem<'a> {
    pub currency: &'a str,
    pub open_minor: i64,
    pub due_date: NaiveDate,
    pub is_credit: bool,
}

/// Totals of one currency, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrencyAging {
    pub balance: i64,
    pub overdue: i64,
    pub current: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub days_91_120: i64,
    pub over_120: i64,
}

impl CurrencyAging {
    fn add(&mut self, which: Bucket, amount: i64) {
        self.balance += amount;
        if which != Bucket::Current {
            self.overdue += amount;
        }
        let slot = match which {
            Bucket::Current => &mut self.current,
            Bucket::Days1To30 => &mut self.days_1_30,
            Bucket::Days31To60 => &mut self.days_31_60,
            Bucket::Days61To90 => &mut self.days_61_90,
            Bucket::Days91To120 => &mut self.days_91_120,
            Bucket::Over120 => &mut self.over_120,
        };
        *slot += amount;
    }
}

/// Ages open items as of a date, per currency (sorted by code). Open credit is not late:
/// it reduces the current bucket.
pub fn age<'a>(items: impl IntoIterator<Item = OpenItem<'a>>, as_of: NaiveDate) -> BTreeMap<String, CurrencyAging> {
    let mut totals: BTreeMap<String, CurrencyAging> = BTreeMap::new();
    age_into(&mut totals, items, as_of);
    totals
}

/// Ages open items into running totals: a report that reads its items a page at a time.
pub fn age_into<'a>(
    totals: &mut BTreeMap<String, CurrencyAging>,
    items: impl IntoIterator<Item = OpenItem<'a>>,
    as_of: NaiveDate,
) {
    for item in items {
        let (which, amount) = if item.is_credit {
            (Bucket::Current, -item.open_minor)
        } else {
            (bucket(days_past_due(item.due_date, as_of)), item.open_minor)
        };
        totals.entry(item.currency.to_string()).or_default().add(which, amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn bucket_edges() {
        assert_eq!(bucket(-5), Bucket::Current);
        assert_eq!(bucket(0), Bucket::Current);
        assert_eq!(bucket(1), Bucket::Days1To30);
        assert_eq!(bucket(30), Bucket::Days1To30);
        assert_eq!(bucket(31), Bucket::Days31To60);
        assert_eq!(bucket(60), Bucket::Days31To60);
        assert_eq!(bucket(61), Bucket::Days61To90);
        assert_eq!(bucket(90), Bucket::Days61To90);
        assert_eq!(bucket(91), Bucket::Days91To120);
        assert_eq!(bucket(120), Bucket::Days91To120);
        assert_eq!(bucket(121), Bucket::Over120);
    }

    #[test]
    fn totals_are_per_currency_and_credit_reduces_current() {
        let as_of = date("2026-11-30");
        let items = vec![
            OpenItem {
                currency: "EUR",
                open_minor: 1000,
                due_date: date("2026-12-10"),
                is_credit: false,
            },
            OpenItem {
                currency: "EUR",
                open_minor: 500,
                due_date: date("2026-11-20"),
                is_credit: false,
            },
            OpenItem {
                currency: "EUR",
                open_minor: 200,
                due_date: date("2026-07-01"),
                is_credit: false,
            },
            OpenItem {
                currency: "EUR",
                open_minor: 300,
                due_date: date("2026-11-01"),
                is_credit: true,
            },
            OpenItem {
                currency: "USD",
                open_minor: 700,
                due_date: date("2026-09-15"),
                is_credit: false,
            },
        ];
        let totals = age(items, as_of);
        let eur = &totals["EUR"];
        assert_eq!(eur.balance, 1400);
        assert_eq!(eur.current, 700);
        assert_eq!(eur.days_1_30, 500);
        assert_eq!(eur.over_120, 200);
        assert_eq!(eur.overdue, 700);
        let usd = &totals["USD"];
        assert_eq!(usd.days_61_90, 700);
        assert_eq!(usd.balance, 700);
        assert_eq!(totals.len(), 2);
    }
}
