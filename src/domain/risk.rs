//! Risk signals (P13): warning signs read from a customer's payment history — how long it
//! takes to pay and whether that is getting worse, how much is paid late, small invoices
//! paid while large old ones stay open, partial payments, reversed payments, broken
//! promises, disputes, exposure over the limit, and an account that used to pay on time
//! and now pays late. Each signal has a value, whether it fires, the points it adds and an
//! explanation; the risk score is the sum of points (0 = nothing seen, capped at 100) and
//! its class runs from A (low risk) to E.
//!
//! Windows: "recent" is the 90 days up to `as_of`; "before" is the 180 days before that.
//! Amount-weighted figures only use documents in one currency (the caller passes the
//! customer's credit currency), so amounts of different currencies are never combined.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const RECENT_DAYS: u64 = 90;
pub const BEFORE_DAYS: u64 = 180;

/// An invoice paid in full, with when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidInvoice {
    pub amount_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_on: NaiveDate,
}

/// An invoice (or debit note) with an open balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInvoice {
    pub amount_minor: i64,
    pub open_minor: i64,
    pub due_date: NaiveDate,
}

/// An invoice that received money in the recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentlyPaid {
    pub amount_minor: i64,
    pub due_date: NaiveDate,
    /// Still partly open after the money.
    pub still_open: bool,
}

/// What the signals read about one customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskHistory {
    /// Invoices paid in full in the last 270 days.
    pub paid: Vec<PaidInvoice>,
    pub open: Vec<OpenInvoice>,
    pub recently_paid: Vec<RecentlyPaid>,
    /// Payments reversed (bounced) in the last 180 days.
    pub reversed_payments: u32,
    /// Promises broken in the last 90 days.
    pub broken_promises: u32,
    /// Disputes raised, and invoices issued, in the last 180 days.
    pub disputes: u32,
    pub invoices_issued: u32,
    pub exposure_minor: i64,
    pub limit_minor: Option<i64>,
}

/// One signal as shown on `GET /v1/customers/{id}/risk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "signal": "oldest_overdue_days", "value": 71.0, "fires": true, "points": 10,
    "explanation": "the oldest open invoice is 71 days overdue"
}))]
pub struct Signal {
    pub signal: String,
    /// The measured value (days, a share 0–1, a count or a percentage; see `explanation`);
    /// null when there is no data.
    pub value: Option<f64>,
    /// Whether the signal is a warning now.
    pub fires: bool,
    /// Points it adds to the risk score.
    pub points: u32,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskAssessment {
    /// 0 (nothing seen) to 100 (every warning sign).
    pub score: u32,
    /// `A` (low risk) to `E`.
    pub risk_class: String,
    /// Whether there is any history to judge by (else the class from a credit decision
    /// stays).
    pub has_history: bool,
    pub signals: Vec<Signal>,
}

/// The class of a risk score: A < 15, B < 30, C < 50, D < 70, else E.
pub fn class_of(score: u32) -> &'static str {
    match score {
        0..=14 => "A",
        15..=29 => "B",
        30..=49 => "C",
        50..=69 => "D",
        _ => "E",
    }
}

fn days(a: NaiveDate, b: NaiveDate) -> f64 {
    (b - a).num_days() as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn average(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

fn weighted(items: &[PaidInvoice], f: impl Fn(&PaidInvoice) -> f64) -> Option<f64> {
    let total: f64 = items.iter().map(|p| p.amount_minor as f64).sum();
    (total > 0.0).then(|| items.iter().map(|p| f(p) * p.amount_minor as f64).sum::<f64>() / total)
}

fn signal(name: &str, value: Option<f64>, points: u32, explanation: String) -> Signal {
    Signal {
        signal: name.to_string(),
        value: value.map(round2),
        fires: points > 0,
        points,
        explanation,
    }
}

/// Days to pay (issue → paid) of invoices paid in a window.
fn window(paid: &[PaidInvoice], from: NaiveDate, to: NaiveDate) -> Vec<PaidInvoice> {
    paid.iter()
        .filter(|p| p.paid_on > from && p.paid_on <= to)
        .copied()
        .collect()
}

/// Computes every signal of a customer as of a date.
pub fn assess(h: &RiskHistory, as_of: NaiveDate) -> RiskAssessment {
    let recent_from = as_of - chrono::Days::new(RECENT_DAYS);
    let before_from = recent_from - chrono::Days::new(BEFORE_DAYS);
    let all = window(&h.paid, before_from, as_of);
    let recent = window(&h.paid, recent_from, as_of);
    let before = window(&h.paid, before_from, recent_from);
    let dtp = |p: &PaidInvoice| days(p.issue_date, p.paid_on);
    let late = |p: &PaidInvoice| days(p.due_date, p.paid_on);
    let mut signals = Vec::new();

    let avg = average(all.iter().map(dtp));
    signals.push(signal(
        "average_days_to_pay",
        avg,
        0,
        match avg {
            Some(a) => format!(
                "{a:.1} days from issue to payment over {} invoices paid in 270 days",
                all.len()
            ),
            None => "no invoice paid in the last 270 days".into(),
        },
    ));

    let w_dtp = weighted(&all, dtp);
    let w_late = weighted(&all, late);
    let points = match w_late {
        Some(l) if l >= 30.0 => 20,
        Some(l) if l >= 15.0 => 12,
        Some(l) if l >= 5.0 => 5,
        _ => 0,
    };
    signals.push(signal(
        "weighted_days_to_pay",
        w_dtp,
        points,
        match (w_dtp, w_late) {
            (Some(d), Some(l)) => {
                format!("{d:.1} days to pay weighted by amount, {l:.1} days after the due date (warning from 5)")
            }
            _ => "no invoice paid in the last 270 days".into(),
        },
    ));

    let (avg_recent, avg_before) = (average(recent.iter().map(dtp)), average(before.iter().map(dtp)));
    let trend = match (avg_recent, avg_before) {
        (Some(r), Some(b)) => Some(r - b),
        _ => None,
    };
    let points = match trend {
        Some(t) if t >= 15.0 => 20,
        Some(t) if t >= 7.0 => 12,
        _ => 0,
    };
    signals.push(signal(
        "days_to_pay_trend",
        trend,
        points,
        match (avg_recent, avg_before) {
            (Some(r), Some(b)) => format!(
                "{r:.1} days to pay in the last 90 days against {b:.1} in the 180 days before ({:+.1}; warning from +7)",
                r - b
            ),
            _ => "needs invoices paid both in the last 90 days and in the 180 days before".into(),
        },
    ));

    let late_share = (!all.is_empty()).then(|| all.iter().filter(|p| late(p) > 0.0).count() as f64 / all.len() as f64);
    let points = match late_share {
        Some(s) if s >= 0.5 => 10,
        Some(s) if s >= 0.25 => 5,
        _ => 0,
    };
    signals.push(signal(
        "share_paid_late",
        late_share,
        points,
        match late_share {
            Some(s) => format!(
                "{:.0} % of {} invoices paid in 270 days were paid after their due date",
                s * 100.0,
                all.len()
            ),
            None => "no invoice paid in the last 270 days".into(),
        },
    ));

    // Small before large: money recently went to invoices that are newer and smaller than
    // an overdue invoice still open.
    let overdue: Vec<&OpenInvoice> = h.open.iter().filter(|o| o.due_date < as_of).collect();
    let skipped = h
        .recently_paid
        .iter()
        .filter(|p| {
            overdue
                .iter()
                .any(|o| o.due_date < p.due_date && o.amount_minor > p.amount_minor)
        })
        .count();
    let share = (!h.recently_paid.is_empty()).then(|| skipped as f64 / h.recently_paid.len() as f64);
    let fires = skipped >= 2 && share.is_some_and(|s| s >= 0.5);
    signals.push(signal(
        "small_before_large",
        share,
        if fires { 15 } else { 0 },
        if h.recently_paid.is_empty() {
            "no payment in the last 90 days".into()
        } else {
            format!(
                "{skipped} of {} invoices paid in the last 90 days are smaller and newer than an overdue invoice left open",
                h.recently_paid.len()
            )
        },
    ));

    let partial = h.recently_paid.iter().filter(|p| p.still_open).count();
    let share = (!h.recently_paid.is_empty()).then(|| partial as f64 / h.recently_paid.len() as f64);
    let fires = partial >= 2 && share.is_some_and(|s| s >= 0.5);
    signals.push(signal(
        "partial_payments",
        share,
        if fires { 8 } else { 0 },
        format!(
            "{partial} of {} invoices that received money in the last 90 days were only partly paid",
            h.recently_paid.len()
        ),
    ));

    signals.push(signal(
        "reversed_payments",
        Some(f64::from(h.reversed_payments)),
        (h.reversed_payments * 10).min(20),
        format!(
            "{} payments reversed (bounced) in the last 180 days",
            h.reversed_payments
        ),
    ));

    signals.push(signal(
        "broken_promises",
        Some(f64::from(h.broken_promises)),
        (h.broken_promises * 10).min(25),
        format!("{} promises to pay broken in the last 90 days", h.broken_promises),
    ));

    let freq = (h.invoices_issued > 0).then(|| f64::from(h.disputes) / f64::from(h.invoices_issued));
    let fires = h.disputes >= 2 && freq.is_none_or(|f| f >= 0.2);
    signals.push(signal(
        "dispute_frequency",
        freq,
        if fires { 8 } else { 0 },
        format!(
            "{} disputes raised against {} invoices issued in the last 180 days",
            h.disputes, h.invoices_issued
        ),
    ));

    let usage = h
        .limit_minor
        .filter(|l| *l > 0)
        .map(|l| h.exposure_minor as f64 / l as f64 * 100.0);
    let points = match (usage, h.limit_minor) {
        (Some(u), _) if u > 100.0 => 15,
        (Some(u), _) if u > 90.0 => 5,
        (None, Some(0)) if h.exposure_minor > 0 => 15,
        _ => 0,
    };
    signals.push(signal(
        "exposure_over_limit",
        usage,
        points,
        match usage {
            Some(u) => format!("exposure is {u:.0} % of the credit limit"),
            None => "no credit limit to compare with".into(),
        },
    ));

    let on_time_before =
        (before.len() >= 2).then(|| before.iter().filter(|p| late(p) <= 0.0).count() as f64 / before.len() as f64);
    let late_recent =
        (!recent.is_empty()).then(|| recent.iter().filter(|p| late(p) > 0.0).count() as f64 / recent.len() as f64);
    let fires = on_time_before.is_some_and(|s| s >= 0.8) && late_recent.is_some_and(|s| s >= 0.5);
    signals.push(signal(
        "used_to_pay_on_time_now_late",
        late_recent,
        if fires { 15 } else { 0 },
        match (on_time_before, late_recent) {
            (Some(b), Some(r)) => format!(
                "{:.0} % paid on time in the 180 days before, {:.0} % paid late in the last 90 days",
                b * 100.0,
                r * 100.0
            ),
            _ => "needs at least two invoices paid before and one paid recently".into(),
        },
    ));

    let oldest = overdue.iter().map(|o| (as_of - o.due_date).num_days()).max();
    let points = match oldest {
        Some(d) if d > 90 => 15,
        Some(d) if d > 60 => 10,
        Some(d) if d > 30 => 5,
        _ => 0,
    };
    signals.push(signal(
        "oldest_overdue_days",
        oldest.map(|d| d as f64),
        points,
        match oldest {
            Some(d) => format!("the oldest open invoice is {d} days overdue"),
            None => "nothing overdue".into(),
        },
    ));

    let score = signals.iter().map(|s| s.points).sum::<u32>().min(100);
    let has_history =
        !h.paid.is_empty() || !h.open.is_empty() || h.reversed_payments > 0 || h.broken_promises > 0 || h.disputes > 0;
    RiskAssessment {
        score,
        risk_class: class_of(score).to_string(),
        has_history,
        signals,
    }
}

/// The signals that fire now and did not fire in the previous assessment: each is a
/// reason for a proactive check-in call (P13).
pub fn worsened<'a>(previous: &[Signal], current: &'a [Signal]) -> Vec<&'a Signal> {
    current
        .iter()
        .filter(|s| s.fires)
        .filter(|s| !previous.iter().any(|p| p.signal == s.signal && p.fires))
        .collect()
}

/// The signals a proactive check-in is due for on `as_of` (P13): those [`worsened`] since
/// the previous assessment, once the customer's baseline (`baseline_on`, the day of its
/// first assessment with history) is from an earlier day. What already fires on that first
/// day is where the customer stands, not a change: importing an existing book, whose first
/// assessments find four customers in five with a warning sign, creates no tasks, and
/// neither do a new customer's first invoices.
pub fn check_in_signals<'a>(
    baseline_on: Option<NaiveDate>,
    as_of: NaiveDate,
    previous: &[Signal],
    current: &'a [Signal],
) -> Vec<&'a Signal> {
    match baseline_on {
        Some(day) if day < as_of => worsened(previous, current),
        _ => Vec::new(),
    }
}

/// The baseline day to store after an assessment on `as_of`: the stored one, or this day
/// if this is the first assessment with history.
pub fn baseline_after(stored: Option<NaiveDate>, has_history: bool, as_of: NaiveDate) -> Option<NaiveDate> {
    stored.or(has_history.then_some(as_of))
}

/// Whether the assessment puts the account at risk (the `at_risk` flag): class D or E, or
/// one of the behaviour-change signals fires.
pub fn at_risk(a: &RiskAssessment) -> bool {
    matches!(a.risk_class.as_str(), "D" | "E")
        || a.signals.iter().any(|s| {
            s.fires
                && matches!(
                    s.signal.as_str(),
                    "days_to_pay_trend" | "small_before_large" | "used_to_pay_on_time_now_late"
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn paid(issue: &str, terms: u64, dtp: u64, amount: i64) -> PaidInvoice {
        let issue_date = d(issue);
        PaidInvoice {
            amount_minor: amount,
            issue_date,
            due_date: issue_date + chrono::Days::new(terms),
            paid_on: issue_date + chrono::Days::new(dtp),
        }
    }

    fn get<'a>(a: &'a RiskAssessment, name: &str) -> &'a Signal {
        a.signals.iter().find(|s| s.signal == name).expect("signal")
    }

    #[test]
    fn days_to_pay_going_5_12_25_is_a_worsening_trend() {
        let as_of = d("2026-11-23");
        // Terms of 10 days: paid 5 days after issue in spring, 12 in summer, 25 now.
        let h = RiskHistory {
            paid: vec![
                paid("2026-05-01", 10, 5, 10_000),
                paid("2026-05-15", 10, 5, 10_000),
                paid("2026-07-20", 10, 12, 10_000),
                paid("2026-08-01", 10, 12, 10_000),
                paid("2026-10-10", 10, 25, 10_000),
                paid("2026-10-20", 10, 25, 10_000),
            ],
            ..Default::default()
        };
        let a = assess(&h, as_of);
        let trend = get(&a, "days_to_pay_trend");
        assert!(trend.fires, "{trend:?}");
        assert_eq!(trend.value, Some(25.0 - 8.5));
        assert_eq!(trend.points, 20);
        assert_eq!(get(&a, "average_days_to_pay").value, Some(14.0));
        assert_eq!(get(&a, "share_paid_late").value, Some(0.67));
        let now_late = get(&a, "used_to_pay_on_time_now_late");
        assert!(!now_late.fires, "half were already late before (12 > 10)");
        assert!(at_risk(&a));
        assert!(a.has_history);
        assert!(a.score >= 30, "{}", a.score);
    }

    #[test]
    fn weighted_days_to_pay_follow_the_money() {
        let as_of = d("2026-11-23");
        // Small invoices paid early, the big one 40 days late: the weighted figure sees it.
        let h = RiskHistory {
            paid: vec![
                paid("2026-09-01", 30, 10, 1_000),
                paid("2026-09-02", 30, 10, 1_000),
                paid("2026-09-03", 30, 70, 100_000),
            ],
            ..Default::default()
        };
        let a = assess(&h, as_of);
        assert_eq!(get(&a, "average_days_to_pay").value, Some(30.0));
        let w = get(&a, "weighted_days_to_pay");
        assert_eq!(w.value, Some(68.82));
        assert_eq!(w.points, 20, "{w:?}");
        assert!(w.fires);
    }

    #[test]
    fn paying_on_time_then_late_fires() {
        let as_of = d("2026-11-23");
        let h = RiskHistory {
            paid: vec![
                paid("2026-05-01", 30, 20, 10_000),
                paid("2026-06-01", 30, 25, 10_000),
                paid("2026-07-01", 30, 30, 10_000),
                paid("2026-09-20", 30, 50, 10_000),
            ],
            ..Default::default()
        };
        let a = assess(&h, as_of);
        assert!(get(&a, "used_to_pay_on_time_now_late").fires);
        assert!(get(&a, "days_to_pay_trend").fires);
    }

    #[test]
    fn a_customer_paying_the_small_invoices_first() {
        let as_of = d("2026-11-23");
        let h = RiskHistory {
            open: vec![
                OpenInvoice {
                    amount_minor: 500_000,
                    open_minor: 500_000,
                    due_date: d("2026-08-31"),
                },
                OpenInvoice {
                    amount_minor: 400_000,
                    open_minor: 400_000,
                    due_date: d("2026-09-30"),
                },
            ],
            recently_paid: vec![
                RecentlyPaid {
                    amount_minor: 20_000,
                    due_date: d("2026-10-15"),
                    still_open: false,
                },
                RecentlyPaid {
                    amount_minor: 15_000,
                    due_date: d("2026-10-31"),
                    still_open: false,
                },
                RecentlyPaid {
                    amount_minor: 30_000,
                    due_date: d("2026-11-15"),
                    still_open: false,
                },
            ],
            ..Default::default()
        };
        let a = assess(&h, as_of);
        let s = get(&a, "small_before_large");
        assert!(s.fires, "{s:?}");
        assert_eq!(s.value, Some(1.0));
        assert!(at_risk(&a));
        assert!(get(&a, "oldest_overdue_days").fires);
        assert!(!get(&a, "partial_payments").fires);
        // Paying the oldest, largest invoice first is not the signal.
        let mut fair = h.clone();
        fair.recently_paid = vec![RecentlyPaid {
            amount_minor: 600_000,
            due_date: d("2026-07-31"),
            still_open: false,
        }];
        assert!(!get(&assess(&fair, as_of), "small_before_large").fires);
    }

    #[test]
    fn counts_partials_exposure_and_disputes() {
        let as_of = d("2026-11-23");
        let h = RiskHistory {
            recently_paid: vec![
                RecentlyPaid {
                    amount_minor: 100,
                    due_date: d("2026-11-01"),
                    still_open: true,
                },
                RecentlyPaid {
                    amount_minor: 100,
                    due_date: d("2026-11-02"),
                    still_open: true,
                },
            ],
            reversed_payments: 1,
            broken_promises: 3,
            disputes: 3,
            invoices_issued: 10,
            exposure_minor: 12_000,
            limit_minor: Some(10_000),
            ..Default::default()
        };
        let a = assess(&h, as_of);
        assert!(get(&a, "partial_payments").fires);
        assert_eq!(get(&a, "reversed_payments").points, 10);
        assert_eq!(get(&a, "broken_promises").points, 25);
        assert_eq!(get(&a, "dispute_frequency").value, Some(0.3));
        assert!(get(&a, "dispute_frequency").fires);
        assert_eq!(get(&a, "exposure_over_limit").value, Some(120.0));
        assert_eq!(get(&a, "exposure_over_limit").points, 15);
        assert_eq!(a.score, 8 + 10 + 25 + 8 + 15);
        assert_eq!(a.risk_class, "D");
    }

    #[test]
    fn a_clean_account_is_class_a_and_worsening_is_detected() {
        let as_of = d("2026-11-23");
        let clean = assess(&RiskHistory::default(), as_of);
        assert_eq!((clean.score, clean.risk_class.as_str()), (0, "A"));
        assert!(!clean.has_history);
        assert!(!at_risk(&clean));
        let bad = assess(
            &RiskHistory {
                broken_promises: 1,
                ..Default::default()
            },
            as_of,
        );
        let w = worsened(&clean.signals, &bad.signals);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].signal, "broken_promises");
        assert!(worsened(&bad.signals, &bad.signals).is_empty(), "already known");
        assert_eq!(
            [0, 14, 15, 29, 30, 49, 50, 69, 70, 100].map(class_of),
            ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]
        );
    }

    #[test]
    fn signals_firing_on_the_first_day_with_history_are_the_baseline() {
        let today = d("2026-11-23");
        let yesterday = d("2026-11-22");
        let clean = assess(&RiskHistory::default(), today);
        let bad = assess(
            &RiskHistory {
                broken_promises: 1,
                ..Default::default()
            },
            today,
        );
        // No assessment with history before: this one sets the baseline, no task.
        assert!(check_in_signals(None, today, &clean.signals, &bad.signals).is_empty());
        assert_eq!(baseline_after(None, bad.has_history, today), Some(today));
        assert_eq!(baseline_after(None, false, today), None, "no history, no baseline");
        // The same day as the baseline (the rest of an import): still where it stands.
        assert!(check_in_signals(Some(today), today, &clean.signals, &bad.signals).is_empty());
        // A later day: a signal that starts firing is a reason to call.
        let due = check_in_signals(Some(yesterday), today, &clean.signals, &bad.signals);
        assert_eq!(
            due.iter().map(|s| s.signal.as_str()).collect::<Vec<_>>(),
            ["broken_promises"]
        );
        assert!(check_in_signals(Some(yesterday), today, &bad.signals, &bad.signals).is_empty());
        assert_eq!(baseline_after(Some(yesterday), true, today), Some(yesterday), "kept");
    }
}
