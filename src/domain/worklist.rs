//! The collector's worklist rules: calling windows in the contact's time zone (P4), the
//! Pareto split of overdue money (P6), and the priority that orders the work.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::domain::customer::CallingWindow;

fn weekday(name: &str) -> Option<Weekday> {
    match name {
        "mon" => Some(Weekday::Mon),
        "tue" => Some(Weekday::Tue),
        "wed" => Some(Weekday::Wed),
        "thu" => Some(Weekday::Thu),
        "fri" => Some(Weekday::Fri),
        "sat" => Some(Weekday::Sat),
        "sun" => Some(Weekday::Sun),
        _ => None,
    }
}

/// Whether `at` falls inside the window, and otherwise when the next window opens (UTC).
/// A window that cannot be read (unknown zone, bad times) is treated as always open.
pub fn window_state(window: &CallingWindow, at: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>) {
    let (Ok(tz), Ok(start), Ok(end)) = (
        window.timezone.parse::<Tz>(),
        NaiveTime::parse_from_str(&window.start, "%H:%M"),
        NaiveTime::parse_from_str(&window.end, "%H:%M"),
    ) else {
        return (true, None);
    };
    let days: HashSet<Weekday> = window.days.iter().filter_map(|d| weekday(d)).collect();
    if days.is_empty() {
        return (true, None);
    }
    let local = at.with_timezone(&tz);
    if days.contains(&local.weekday()) && local.time() >= start && local.time() < end {
        return (true, None);
    }
    for ahead in 0..8 {
        let day = local.date_naive() + Duration::days(ahead);
        if !days.contains(&day.weekday()) {
            continue;
        }
        let opens = tz
            .from_local_datetime(&day.and_time(start))
            .earliest()
            .map(|t| t.with_timezone(&Utc));
        if let Some(opens) = opens
            && opens > at
        {
            return (false, Some(opens));
        }
    }
    (false, None)
}

/// Customers whose overdue balances, largest first, make up the first 80 % of the overdue
/// money of their currency (P6: the few accounts that hold most of the money).
pub fn pareto_top(balances: &[(i64, String, i64)]) -> HashSet<i64> {
    let mut by_currency: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for (customer, currency, amount) in balances {
        if *amount > 0 {
            by_currency
                .entry(currency.as_str())
                .or_default()
                .push((*customer, *amount));
        }
    }
    let mut top = HashSet::new();
    for list in by_currency.values_mut() {
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: i128 = list.iter().map(|(_, a)| i128::from(*a)).sum();
        let mut running: i128 = 0;
        for (customer, amount) in list.iter() {
            if running * 100 >= total * 80 {
                break;
            }
            top.insert(*customer);
            running += i128::from(*amount);
        }
    }
    top
}

/// Priority of a work item: money at stake first (the top-80 % accounts), then broken
/// promises, then how late, then the size of the overdue balance.
pub fn priority(in_top: bool, broken_promise: bool, days_overdue: i64, high_priority_task: bool) -> i64 {
    let mut score = days_overdue.clamp(0, 365);
    if high_priority_task {
        score += 500;
    }
    if broken_promise {
        score += 1_000;
    }
    if in_top {
        score += 10_000;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> CallingWindow {
        CallingWindow {
            days: vec!["mon".into(), "tue".into(), "wed".into(), "thu".into(), "fri".into()],
            start: "09:00".into(),
            end: "13:00".into(),
            timezone: "Europe/Madrid".into(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn calling_window_in_the_contacts_zone() {
        // Monday 23 Nov 2026, 09:30 in Madrid is 08:30 UTC.
        assert_eq!(window_state(&window(), utc("2026-11-23T08:30:00Z")), (true, None));
        // 07:30 UTC is 08:30 in Madrid: the window opens at 08:00 UTC.
        assert_eq!(
            window_state(&window(), utc("2026-11-23T07:30:00Z")),
            (false, Some(utc("2026-11-23T08:00:00Z")))
        );
        // Monday 13:00 Madrid: closed until Tuesday 09:00 Madrid.
        assert_eq!(
            window_state(&window(), utc("2026-11-23T12:00:00Z")),
            (false, Some(utc("2026-11-24T08:00:00Z")))
        );
        // Saturday: next Monday.
        assert_eq!(
            window_state(&window(), utc("2026-11-28T10:00:00Z")),
            (false, Some(utc("2026-11-30T08:00:00Z")))
        );
        let mut broken = window();
        broken.timezone = "Nowhere/City".into();
        assert_eq!(window_state(&broken, utc("2026-11-28T10:00:00Z")), (true, None));
    }

    #[test]
    fn pareto_takes_the_accounts_that_make_most_of_the_money() {
        let balances = vec![
            (1, "EUR".to_string(), 7_000),
            (2, "EUR".to_string(), 2_000),
            (3, "EUR".to_string(), 500),
            (4, "EUR".to_string(), 500),
            (5, "USD".to_string(), 10),
        ];
        let top = pareto_top(&balances);
        assert!(
            top.contains(&1) && top.contains(&2),
            "7 000 + 2 000 reach 80 % of 10 000"
        );
        assert!(!top.contains(&3) && !top.contains(&4));
        assert!(top.contains(&5), "each currency has its own top");
    }

    #[test]
    fn priority_orders_money_then_promises_then_lateness() {
        assert!(priority(true, false, 1, false) > priority(false, true, 365, true));
        assert!(priority(false, true, 1, false) > priority(false, false, 365, true));
        assert!(priority(false, false, 40, false) > priority(false, false, 10, false));
    }
}
