//! The organisation's analytics reports, the figures that tell whether collection works:
//!
//! - receivables over a period, per currency: opening and closing balances rebuilt from
//!   the ledger, sales, write-offs, closing aging, DSO, best possible DSO, average days
//!   delinquent and the collection effectiveness index (glossary);
//! - collection effectiveness (P10): the money applied to an action's invoices within N
//!   days of the action, per collector, strategy step and channel;
//! - promises (P3): kept rate and amounts per collector, for promises due in a period.
//!
//! Balances as of a past day use value dates: a payment counts from the day it was received
//! (`applied_on`), until the day it was reversed or unapplied (`released_at`), and a
//! write-off from its day. Invoice amounts are taken as they are now.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::analytics as repo;
use crate::domain::aging::{self, CurrencyAging, OpenItem};
use crate::domain::analytics::{self, PeriodBalances};
use crate::domain::money::format_stored;
use crate::domain::promise::PromiseStatus;
use crate::error::AppError;

/// Rows read per statement by the paged reads.
const PAGE: i64 = 5_000;

/// The longest period a report covers.
pub const MAX_PERIOD_DAYS: i64 = 731;

/// Aging buckets of one currency (decimal strings).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "current": "131000.00", "days_1_30": "38000.00", "days_31_60": "12000.00",
    "days_61_90": "6000.00", "days_91_120": "2000.00", "over_120": "3000.00"
}))]
pub struct AgingBuckets {
    pub current: String,
    pub days_1_30: String,
    pub days_31_60: String,
    pub days_61_90: String,
    pub days_91_120: String,
    pub over_120: String,
}

/// Receivables of one currency over the period.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "currency": "EUR", "opening": "182000.00", "sales": "415000.00", "collected": "401500.00",
    "written_off": "3500.00", "closing": "192000.00", "closing_current": "131000.00", "closing_overdue": "61000.00",
    "closing_aging": {"current": "131000.00", "days_1_30": "38000.00", "days_31_60": "12000.00",
                      "days_61_90": "6000.00", "days_91_120": "2000.00", "over_120": "3000.00"},
    "dso": 42.1, "best_possible_dso": 28.7, "average_days_delinquent": 13.4, "cei": 87.2
}))]
pub struct CurrencyReceivables {
    pub currency: String,
    /// Open invoices and debit notes at the end of the day before `from`.
    pub opening: String,
    /// Invoices and debit notes issued in the period (cancelled ones left out).
    pub sales: String,
    /// Payments and credit notes applied in the period: opening + sales − closing −
    /// written off.
    pub collected: String,
    /// Written off in the period.
    pub written_off: String,
    /// Open at the end of `to`.
    pub closing: String,
    /// The part of `closing` not yet due at the end of `to`.
    pub closing_current: String,
    pub closing_overdue: String,
    pub closing_aging: AgingBuckets,
    /// Days sales outstanding: closing ÷ sales × days; null without sales.
    pub dso: Option<f64>,
    /// closing current ÷ sales × days: the DSO if nothing were late.
    pub best_possible_dso: Option<f64>,
    /// DSO − best possible DSO: the days late payment adds.
    pub average_days_delinquent: Option<f64>,
    /// Collection effectiveness index, 0–100: (opening + sales − closing) ÷ (opening +
    /// sales − closing current) × 100. Write-offs count as collected, as in the usual
    /// definition.
    pub cei: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-09-01", "to": "2026-11-30", "days": 91,
    "currencies": [{
        "currency": "EUR", "opening": "182000.00", "sales": "415000.00", "collected": "401500.00",
        "written_off": "3500.00", "closing": "192000.00", "closing_current": "131000.00", "closing_overdue": "61000.00",
        "closing_aging": {"current": "131000.00", "days_1_30": "38000.00", "days_31_60": "12000.00",
                          "days_61_90": "6000.00", "days_91_120": "2000.00", "over_120": "3000.00"},
        "dso": 42.1, "best_possible_dso": 28.7, "average_days_delinquent": 13.4, "cei": 87.2
    }]
}))]
pub struct ReceivablesReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days in the period, both ends included.
    pub days: i64,
    /// One entry per currency, by code; currencies are never added together.
    pub currencies: Vec<CurrencyReceivables>,
}

pub fn receivables(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<ReceivablesReport, AppError> {
    let opening_day = from.pred_opt().unwrap_or(from);
    let opening = open_as_of(c, org_id, opening_day)?;
    let closing = open_as_of(c, org_id, to)?;
    let sales: HashMap<String, i64> = repo::sales_between(c, org_id, from, to)?.into_iter().collect();
    let written_off: HashMap<String, i64> = repo::written_off_between(c, org_id, from, to)?.into_iter().collect();
    let mut codes: Vec<&String> = opening
        .keys()
        .chain(closing.keys())
        .chain(sales.keys())
        .chain(written_off.keys())
        .collect();
    codes.sort();
    codes.dedup();
    let days = (to - from).num_days() + 1;
    let currencies = codes
        .into_iter()
        .map(|code| {
            let end = closing.get(code).cloned().unwrap_or_default();
            let balances = PeriodBalances {
                opening: opening.get(code).map_or(0, |a| a.balance),
                sales: sales.get(code).copied().unwrap_or(0),
                written_off: written_off.get(code).copied().unwrap_or(0),
                closing: end.balance,
                closing_current: end.current,
            };
            let m = analytics::measures(&balances, days);
            let f = |minor: i64| format_stored(minor, code);
            CurrencyReceivables {
                currency: code.clone(),
                opening: f(balances.opening),
                sales: f(balances.sales),
                collected: f(m.collected),
                written_off: f(balances.written_off),
                closing: f(end.balance),
                closing_current: f(end.current),
                closing_overdue: f(end.overdue),
                closing_aging: AgingBuckets {
                    current: f(end.current),
                    days_1_30: f(end.days_1_30),
                    days_31_60: f(end.days_31_60),
                    days_61_90: f(end.days_61_90),
                    days_91_120: f(end.days_91_120),
                    over_120: f(end.over_120),
                },
                dso: m.dso,
                best_possible_dso: m.best_possible_dso,
                average_days_delinquent: m.average_days_delinquent,
                cei: m.cei,
            }
        })
        .collect();
    Ok(ReceivablesReport {
        from,
        to,
        days,
        currencies,
    })
}

/// The open invoices and debit notes at the end of `as_of`, aged as of that day, per
/// currency; read a page of invoices at a time.
fn open_as_of(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
) -> Result<BTreeMap<String, CurrencyAging>, AppError> {
    let mut totals: BTreeMap<String, CurrencyAging> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = repo::receivables_page(c, org_id, as_of, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<i64> = page.iter().map(|r| r.id).collect();
        let mut applied: HashMap<i64, i64> = HashMap::new();
        for (invoice_id, amount) in repo::applied_as_of(c, &ids, as_of)? {
            *applied.entry(invoice_id).or_default() += amount;
        }
        let items = page.iter().map(|r| OpenItem {
            currency: &r.currency,
            open_minor: analytics::open_as_of(
                r.amount_minor,
                applied.get(&r.id).copied().unwrap_or(0),
                r.written_off_minor,
                r.written_off_on,
                as_of,
            ),
            due_date: r.due_date,
            is_credit: false,
        });
        aging::age_into(&mut totals, items, as_of);
        if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(totals)
}

/// Actions and what was collected after them, for one group.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"actions": 70, "invoices": 160, "collected": {"EUR": "30100.00"}}))]
pub struct EffectivenessGroup {
    /// Actions performed (e-mails sent, calls and letters done).
    pub actions: i64,
    /// Invoices those actions covered (an invoice counts once per action).
    pub invoices: i64,
    /// Per currency: money applied to the covered invoices from the action's day to
    /// `within_days` after it.
    #[schema(value_type = Object, example = json!({"EUR": "1250.00"}))]
    pub collected: BTreeMap<String, String>,
    #[serde(skip)]
    collected_minor: BTreeMap<String, i64>,
}

impl EffectivenessGroup {
    fn finish(&mut self) {
        self.collected = self
            .collected_minor
            .iter()
            .map(|(code, minor)| (code.clone(), format_stored(*minor, code)))
            .collect();
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-01", "to": "2026-11-30", "within_days": 14,
    "total": {"actions": 120, "invoices": 310, "collected": {"EUR": "48200.00"}},
    "by_collector": {"marta": {"actions": 70, "invoices": 160, "collected": {"EUR": "30100.00"}},
                     "unassigned": {"actions": 50, "invoices": 150, "collected": {"EUR": "18100.00"}}},
    "by_step": {"reminder_1": {"actions": 80, "invoices": 220, "collected": {"EUR": "29000.00"}},
                "call": {"actions": 40, "invoices": 90, "collected": {"EUR": "19200.00"}}},
    "by_channel": {"email": {"actions": 80, "invoices": 220, "collected": {"EUR": "29000.00"}},
                   "call": {"actions": 40, "invoices": 90, "collected": {"EUR": "19200.00"}}}
}))]
pub struct EffectivenessReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub within_days: u32,
    pub total: EffectivenessGroup,
    /// By the action's assignee, else the account's collector, else `unassigned`.
    pub by_collector: BTreeMap<String, EffectivenessGroup>,
    /// By strategy step key.
    pub by_step: BTreeMap<String, EffectivenessGroup>,
    /// By channel: `email`, `call`, `letter`, …
    pub by_channel: BTreeMap<String, EffectivenessGroup>,
}

/// Collections credited to the actions performed in `[from, to]` (P10): a page of actions
/// at a time, with their invoices and what was applied to those in the window.
pub fn effectiveness(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    within_days: u32,
) -> Result<EffectivenessReport, AppError> {
    let mut report = EffectivenessReport {
        from,
        to,
        within_days,
        total: EffectivenessGroup::default(),
        by_collector: BTreeMap::new(),
        by_step: BTreeMap::new(),
        by_channel: BTreeMap::new(),
    };
    let window_end = to + chrono::Days::new(u64::from(within_days));
    let mut after = 0;
    loop {
        let page = repo::performed_page(c, org_id, from, to, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let action_ids: Vec<i64> = page.iter().map(|a| a.id).collect();
        let covered = repo::invoices_of_actions(c, &action_ids)?;
        let mut invoice_ids: Vec<i64> = covered.iter().map(|(_, invoice, _)| *invoice).collect();
        invoice_ids.sort_unstable();
        invoice_ids.dedup();
        let mut applied: HashMap<i64, Vec<(NaiveDate, i64)>> = HashMap::new();
        for (invoice, on, amount) in repo::applied_between(c, &invoice_ids, from, window_end)? {
            applied.entry(invoice).or_default().push((on, amount));
        }
        let mut customer_ids: Vec<i64> = page.iter().map(|a| a.customer_id).collect();
        customer_ids.sort_unstable();
        customer_ids.dedup();
        let collectors: HashMap<i64, Option<String>> = repo::collectors_of(c, &customer_ids)?.into_iter().collect();
        let mut by_action: HashMap<i64, Vec<(i64, &str)>> = HashMap::new();
        for (action, invoice, currency) in &covered {
            by_action.entry(*action).or_default().push((*invoice, currency));
        }
        for action in &page {
            let Some(performed_on) = action.completed_at.map(|at| at.date()) else {
                continue;
            };
            let invoices = by_action.get(&action.id).map(Vec::as_slice).unwrap_or_default();
            let mut collected: BTreeMap<&str, i64> = BTreeMap::new();
            for (invoice, currency) in invoices {
                let amounts = applied.get(invoice).map(Vec::as_slice).unwrap_or_default();
                *collected.entry(currency).or_default() +=
                    analytics::collected_within(performed_on, within_days, amounts);
            }
            let collector = action
                .assignee
                .clone()
                .or_else(|| collectors.get(&action.customer_id).cloned().flatten())
                .unwrap_or_else(|| "unassigned".to_string());
            for group in [
                &mut report.total,
                report.by_collector.entry(collector).or_default(),
                report.by_step.entry(action.step_key.clone()).or_default(),
                report.by_channel.entry(action.action.clone()).or_default(),
            ] {
                group.actions += 1;
                group.invoices += invoices.len() as i64;
                for (code, minor) in &collected {
                    *group.collected_minor.entry((*code).to_string()).or_default() += minor;
                }
            }
        }
        if page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    report.total.finish();
    for groups in [&mut report.by_collector, &mut report.by_step, &mut report.by_channel] {
        groups.values_mut().for_each(EffectivenessGroup::finish);
    }
    Ok(report)
}

/// Promises of one collector (or of the whole organisation) due in the period.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "open": 1, "kept": 9, "partially_kept": 1, "broken": 1, "kept_rate": 0.82,
    "amounts": {"EUR": {"promised": "30000.00", "paid": "27500.00"}}
}))]
pub struct PromiseGroup {
    /// Not evaluated yet (their window has not closed).
    pub open: i64,
    pub kept: i64,
    pub partially_kept: i64,
    pub broken: i64,
    /// kept ÷ (kept + partially kept + broken), 0–1; null before any is decided.
    pub kept_rate: Option<f64>,
    /// Per currency: promised and paid (decimal strings).
    #[schema(value_type = Object, example = json!({"EUR": {"promised": "5000.00", "paid": "4200.00"}}))]
    pub amounts: BTreeMap<String, PromiseAmounts>,
    #[serde(skip)]
    minor: BTreeMap<String, (i64, i64)>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"promised": "30000.00", "paid": "27500.00"}))]
pub struct PromiseAmounts {
    pub promised: String,
    pub paid: String,
}

impl PromiseGroup {
    fn add(&mut self, t: &repo::PromiseTally) {
        match PromiseStatus::parse(&t.status) {
            Some(PromiseStatus::Open) => self.open += t.count,
            Some(PromiseStatus::Kept) => self.kept += t.count,
            Some(PromiseStatus::PartiallyKept) => self.partially_kept += t.count,
            Some(PromiseStatus::Broken) => self.broken += t.count,
            Some(PromiseStatus::Cancelled) | None => return,
        }
        let m = self.minor.entry(t.currency.clone()).or_default();
        m.0 += t.promised_minor;
        m.1 += t.paid_minor;
    }

    fn finish(&mut self) {
        let decided = self.kept + self.partially_kept + self.broken;
        self.kept_rate = (decided > 0).then(|| self.kept as f64 / decided as f64);
        self.amounts = self
            .minor
            .iter()
            .map(|(code, (promised, paid))| {
                (
                    code.clone(),
                    PromiseAmounts {
                        promised: format_stored(*promised, code),
                        paid: format_stored(*paid, code),
                    },
                )
            })
            .collect();
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-01", "to": "2026-11-30",
    "total": {"open": 2, "kept": 14, "partially_kept": 3, "broken": 3, "kept_rate": 0.7,
              "amounts": {"EUR": {"promised": "52000.00", "paid": "43100.00"}}},
    "by_collector": {"marta": {"open": 1, "kept": 9, "partially_kept": 1, "broken": 1, "kept_rate": 0.82,
                               "amounts": {"EUR": {"promised": "30000.00", "paid": "27500.00"}}}}
}))]
pub struct PromiseReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: PromiseGroup,
    /// By who took the promise.
    pub by_collector: BTreeMap<String, PromiseGroup>,
}

/// Promises whose promised date falls in `[from, to]` (cancelled ones left out).
pub fn promises(c: &mut DbConnection, org_id: i64, from: NaiveDate, to: NaiveDate) -> Result<PromiseReport, AppError> {
    let mut report = PromiseReport {
        from,
        to,
        total: PromiseGroup::default(),
        by_collector: BTreeMap::new(),
    };
    for tally in repo::promises_due_between(c, org_id, from, to)? {
        report.total.add(&tally);
        report
            .by_collector
            .entry(tally.taken_by.clone())
            .or_default()
            .add(&tally);
    }
    report.total.finish();
    report.by_collector.values_mut().for_each(PromiseGroup::finish);
    Ok(report)
}
