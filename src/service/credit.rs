//! Credit control and risk signals (P3, P13): the set-based recomputation of customers'
//! credit snapshots, exposures, hold status, risk score and flags (run when money moves,
//! when invoices change and daily), the credit check an ERP calls before releasing an
//! order, the credit view, manual release, open orders and the risk view.
//!
//! The recomputation reads up to 1 000 customers (and at most 20 000 of their documents)
//! at a time with one query per kind of fact (open documents together with the recent
//! history of paid, paid-into and issued invoices, unapplied cash, risk facts, plans,
//! disputes), decides in Rust, and writes with one statement per chunk only what changed:
//! snapshots, exposure rows and a customer's derived columns that differ from the stored
//! ones.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::credit::{self as repo, CustomerCreditColumns, ExposureRow, SnapshotRow, SnapshotValues};
use crate::db::repo::customers::{self as customer_repo, CustomerRow};
use crate::db::repo::events::{self, NewEvent};
use crate::db::repo::tasks::{self, NewTask};
use crate::domain::chunks::in_halving_chunks;
use crate::domain::credit::{self, CheckOutcome, CreditFacts, CreditStatus, Exposure, HoldReason};
use crate::domain::escalation::{EscalationKind, Flag as EscalationFlag};
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::risk::{self, OpenInvoice, PaidInvoice, RecentlyPaid, RiskAssessment, RiskHistory, Signal};
use crate::domain::settings::OrgSettings;
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::service::org_settings as settings;

/// What a recomputation changed.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"customers": 1840, "holds_placed": 12, "holds_released": 5, "check_in_tasks": 7}))]
pub struct RefreshSummary {
    pub customers: usize,
    pub holds_placed: usize,
    pub holds_released: usize,
    pub check_in_tasks: usize,
}

/// Everything computed for one customer.
struct Computed {
    customer: CustomerRow,
    facts: CreditFacts,
    reasons: Vec<HoldReason>,
    status: CreditStatus,
    assessment: RiskAssessment,
    columns: CustomerCreditColumns,
    /// The exposure rows whose receivables or unapplied cash changed (`exposure_writes`).
    exposures: Vec<ExposureRow>,
    snapshot: Option<SnapshotRow>,
    broken_dates: Vec<NaiveDate>,
}

fn dates_json(dates: &[NaiveDate]) -> String {
    serde_json::to_string(dates).unwrap_or_else(|_| "[]".into())
}

fn parse_dates(text: &str) -> Vec<NaiveDate> {
    serde_json::from_str(text).unwrap_or_default()
}

fn parse_signals(text: &str) -> Vec<Signal> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The exposure rows a recomputation has to write for one customer: each computed row
/// whose receivables or unapplied cash differ from the stored row (or that has none), and
/// each stored row the computation no longer produces, with both amounts zeroed (its open
/// orders stay). Rows that did not change are not written again.
fn exposure_writes(stored: &[ExposureRow], computed: Vec<ExposureRow>, at: NaiveDateTime) -> Vec<ExposureRow> {
    let same = |a: &ExposureRow, b: &ExposureRow| {
        a.open_receivables_minor == b.open_receivables_minor && a.unapplied_minor == b.unapplied_minor
    };
    let stale = stored
        .iter()
        .filter(|s| s.open_receivables_minor != 0 || s.unapplied_minor != 0)
        .filter(|s| !computed.iter().any(|c| c.currency == s.currency))
        .map(|s| ExposureRow {
            open_receivables_minor: 0,
            unapplied_minor: 0,
            updated_at: at,
            ..s.clone()
        })
        .collect::<Vec<_>>();
    computed
        .into_iter()
        .filter(|c| !stored.iter().any(|s| s.currency == c.currency && same(s, c)))
        .chain(stale)
        .collect()
}

/// Whether a computed snapshot holds the same values as the stored one (its time of
/// writing aside): such a snapshot is not written again.
fn snapshot_unchanged(stored: &SnapshotRow, computed: &SnapshotValues) -> bool {
    stored.oldest_due_date == computed.oldest_due_date
        && stored.broken_promise_dates == computed.broken_promise_dates
        && stored.plan_defaulted_on == computed.plan_defaulted_on
        && stored.hold_reasons == computed.hold_reasons
        && stored.held_since == computed.held_since
        && stored.risk_signals == computed.risk_signals
        && stored.risk_computed_on == computed.risk_computed_on
        && stored.strategy_hold_since == computed.strategy_hold_since
        && stored.risk_baseline_on == computed.risk_baseline_on
}

/// Computes the credit and risk state of customers (any number; read in chunks).
fn compute(
    c: &mut DbConnection,
    org_id: i64,
    s: &OrgSettings,
    ids: &[i64],
    as_of: NaiveDate,
) -> Result<Vec<Computed>, AppError> {
    let mut out = Vec::with_capacity(ids.len());
    let windows = history_windows(as_of);
    in_halving_chunks(ids, CHUNK_CUSTOMERS, |chunk| {
        // One customer is one step whatever its documents (the settle of a single queued
        // customer before a credit check or a customer read).
        let limit = (chunk.len() > 1).then_some(CHUNK_DOCUMENTS);
        match repo::credit_documents(c, chunk, windows, limit)? {
            Some(docs) => compute_chunk(c, org_id, s, chunk, docs, as_of, &mut out).map(|()| true),
            None => Ok(false),
        }
    })?;
    Ok(out)
}

/// The windows of history the risk assessment reads, as of a date.
fn history_windows(as_of: NaiveDate) -> repo::HistoryWindows {
    let days = |n: u64| as_of - chrono::Days::new(n);
    repo::HistoryWindows {
        paid_after: days(risk::RECENT_DAYS + risk::BEFORE_DAYS),
        paid_into_after: days(risk::RECENT_DAYS),
        issued_after: days(risk::BEFORE_DAYS),
    }
}

/// Customers read together by one recomputation step.
const CHUNK_CUSTOMERS: usize = 1000;
/// Documents (open ones and recent history) read together: a step holds its customers'
/// documents in memory, and on a skewed book the first 1 000 customers of 100 000 held
/// 159 000 invoices (the SQLite load of the 1M-invoice benchmark peaked at 74 MB resident
/// while its worker recomputed them). A step whose customers hold more is halved
/// (`in_halving_chunks`). On the benchmark book 1 000 random customers hold about 11 000.
const CHUNK_DOCUMENTS: i64 = 20_000;

fn compute_chunk(
    c: &mut DbConnection,
    org_id: i64,
    s: &OrgSettings,
    ids: &[i64],
    docs: Vec<repo::CreditDoc>,
    as_of: NaiveDate,
    out: &mut Vec<Computed>,
) -> Result<(), AppError> {
    let customers = customer_repo::find_many(c, org_id, ids)?;
    let ids: Vec<i64> = customers.iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let days = |n: u64| as_of - chrono::Days::new(n);
    let windows = history_windows(as_of);
    let recent_from = windows.paid_into_after;
    let mut hold_since: HashMap<i64, NaiveDate> = HashMap::new();
    let mut flags: HashMap<i64, (bool, bool)> = HashMap::new();
    for (cust, kind, opened_on) in crate::db::repo::escalations::open_of_customers(c, &ids)? {
        let Some(kind) = EscalationKind::parse(&kind) else {
            continue;
        };
        if kind == EscalationKind::CreditHold {
            let since = hold_since.entry(cust).or_insert(opened_on);
            *since = (*since).min(opened_on);
        }
        let f = flags.entry(cust).or_default();
        match kind.flag() {
            Some(EscalationFlag::WithAgency) => f.0 = true,
            Some(EscalationFlag::Legal) => f.1 = true,
            None => {}
        }
    }
    let unapplied = repo::unapplied(c, &ids)?;
    let broken = repo::facts_since(c, &ids, "promise_broken", days(365))?;
    let reversed = repo::facts_since(c, &ids, "payment_reversed", days(risk::BEFORE_DAYS))?;
    let defaults = repo::plan_defaults(c, &ids)?;
    let disputes = repo::disputes_since(c, &ids, days(risk::BEFORE_DAYS))?;
    let mut snapshots: HashMap<i64, SnapshotRow> = repo::snapshots(c, &ids)?
        .into_iter()
        .map(|r| (r.customer_id, r))
        .collect();
    let mut stored_exposures: HashMap<i64, Vec<ExposureRow>> = HashMap::new();
    for e in repo::exposures_of_many(c, &ids)? {
        stored_exposures.entry(e.customer_id).or_default().push(e);
    }
    let orders: HashMap<(i64, String), i64> = stored_exposures
        .values()
        .flatten()
        .filter(|e| e.open_orders_minor > 0)
        .map(|e| ((e.customer_id, e.currency.clone()), e.open_orders_minor))
        .collect();

    let mut exposure: HashMap<(i64, String), Exposure> = HashMap::new();
    let mut oldest: HashMap<i64, NaiveDate> = HashMap::new();
    let mut in_dispute: HashMap<i64, bool> = HashMap::new();
    let mut open: HashMap<(i64, String), Vec<OpenInvoice>> = HashMap::new();
    for doc in docs.iter().filter(|d| d.open_minor > 0) {
        let cust = doc.customer_id;
        let e = exposure.entry((cust, doc.currency.clone())).or_default();
        if doc.kind == "credit_note" {
            e.open_receivables_minor -= doc.open_minor;
            continue;
        }
        e.open_receivables_minor += doc.open_minor;
        if doc.disputed_minor > 0 {
            in_dispute.insert(cust, true);
        }
        if doc.open_minor > doc.disputed_minor {
            let o = oldest.entry(cust).or_insert(doc.due_date);
            if doc.due_date < *o {
                *o = doc.due_date;
            }
        }
        open.entry((cust, doc.currency.clone())).or_default().push(OpenInvoice {
            amount_minor: doc.amount_minor,
            open_minor: doc.open_minor,
            due_date: doc.due_date,
        });
    }
    for (cust, cur, amount) in unapplied {
        exposure.entry((cust, cur)).or_default().unapplied_minor += amount;
    }
    for ((cust, cur), amount) in &orders {
        exposure.entry((*cust, cur.clone())).or_default().open_orders_minor = *amount;
    }
    let mut broken_by: HashMap<i64, Vec<NaiveDate>> = HashMap::new();
    for (cust, d) in broken {
        broken_by.entry(cust).or_default().push(d);
    }
    let mut reversed_by: HashMap<i64, u32> = HashMap::new();
    for (cust, _) in reversed {
        *reversed_by.entry(cust).or_default() += 1;
    }
    let mut default_by: HashMap<i64, NaiveDate> = HashMap::new();
    for (cust, on) in defaults {
        if let Some(on) = on {
            let e = default_by.entry(cust).or_insert(on);
            if on > *e {
                *e = on;
            }
        }
    }
    let mut paid_by: HashMap<(i64, String), Vec<PaidInvoice>> = HashMap::new();
    let mut recent_by: HashMap<(i64, String), Vec<RecentlyPaid>> = HashMap::new();
    let mut issued: Vec<i64> = Vec::new();
    // Open invoices outside every window come back from the read too; each condition
    // below is checked again, as in the query.
    for doc in docs.into_iter().filter(|d| d.kind != "credit_note") {
        if doc.issue_date > windows.issued_after {
            issued.push(doc.customer_id);
        }
        let key = (doc.customer_id, doc.currency);
        if doc.paid_into {
            recent_by.entry(key.clone()).or_default().push(RecentlyPaid {
                amount_minor: doc.amount_minor,
                due_date: doc.due_date,
                still_open: doc.open_minor > 0,
            });
        }
        if let Some(paid_on) = doc
            .paid_on
            .filter(|on| doc.status == "paid" && *on > windows.paid_after)
        {
            paid_by.entry(key).or_default().push(PaidInvoice {
                amount_minor: doc.amount_minor,
                issue_date: doc.issue_date,
                due_date: doc.due_date,
                paid_on,
            });
        }
    }
    let count = |v: Vec<i64>| {
        let mut m: HashMap<i64, u32> = HashMap::new();
        for id in v {
            *m.entry(id).or_default() += 1;
        }
        m
    };
    let (disputes_by, issued_by) = (count(disputes), count(issued));
    let window = u64::from(s.credit.broken_promise_window_days);

    // Each customer's exposures in every currency, looked up once per customer below.
    let mut exposures_of: HashMap<i64, Vec<(String, Exposure)>> = HashMap::new();
    for ((cust, currency), e) in &exposure {
        exposures_of.entry(*cust).or_default().push((currency.clone(), *e));
    }
    for customer in customers {
        let id = customer.id;
        let cur = customer.currency.clone();
        let snapshot = snapshots.remove(&id);
        let mut broken_dates = broken_by.remove(&id).unwrap_or_default();
        broken_dates.sort_unstable();
        let key = (id, cur.clone());
        let facts = CreditFacts {
            currency: cur.clone(),
            limit_minor: customer.credit_limit_minor,
            exposure: exposure.get(&key).copied().unwrap_or_default(),
            oldest_due_date: oldest.get(&id).copied(),
            broken_promise_dates: broken_dates.clone(),
            plan_defaulted_on: default_by.get(&id).copied(),
            release_until: snapshot.as_ref().and_then(|s| s.release_until),
            strategy_hold_since: hold_since.get(&id).copied(),
        };
        let reasons = credit::hold_reasons(&facts, &s.credit, as_of);
        let status = credit::status(&reasons, facts.release_until, as_of);
        let history = RiskHistory {
            paid: paid_by.remove(&key).unwrap_or_default(),
            open: open.remove(&key).unwrap_or_default(),
            recently_paid: recent_by.remove(&key).unwrap_or_default(),
            reversed_payments: reversed_by.get(&id).copied().unwrap_or(0),
            broken_promises: broken_dates.iter().filter(|d| **d > recent_from).count() as u32,
            disputes: disputes_by.get(&id).copied().unwrap_or(0),
            invoices_issued: issued_by.get(&id).copied().unwrap_or(0),
            exposure_minor: facts.exposure.total(),
            limit_minor: facts.limit_minor,
        };
        let assessment = risk::assess(&history, as_of);
        let columns = CustomerCreditColumns {
            credit_status: status.as_str().to_string(),
            risk_class: if assessment.has_history {
                Some(assessment.risk_class.clone())
            } else {
                customer.risk_class.clone()
            },
            risk_score: assessment.score as i32,
            flag_broken_promise: broken_dates.iter().any(|d| *d > as_of - chrono::Days::new(window)),
            flag_over_limit: facts.over_limit(),
            flag_at_risk: assessment.has_history && risk::at_risk(&assessment),
            flag_in_dispute: in_dispute.get(&id).copied().unwrap_or(false),
            flag_with_agency: flags.get(&id).is_some_and(|f| f.0),
            flag_legal: flags.get(&id).is_some_and(|f| f.1),
        };
        let at = crate::db::now();
        let computed_exposures: Vec<ExposureRow> = exposures_of
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|(currency, e)| ExposureRow {
                customer_id: id,
                currency,
                org_id,
                open_receivables_minor: e.open_receivables_minor,
                unapplied_minor: e.unapplied_minor,
                open_orders_minor: e.open_orders_minor,
                updated_at: at,
            })
            .collect();
        let stored = stored_exposures.remove(&id).unwrap_or_default();
        let exposures = exposure_writes(&stored, computed_exposures, at);
        out.push(Computed {
            customer,
            facts,
            reasons,
            status,
            assessment,
            columns,
            exposures,
            snapshot,
            broken_dates,
        });
    }
    Ok(())
}

/// Recomputes and stores the credit and risk state of some customers: exposures,
/// snapshots, hold status (with `credit.hold_placed` / `credit.hold_released` events),
/// risk score, class and flags, and a check-in task when a signal starts firing after the
/// customer's baseline day (`risk::check_in_signals`).
pub fn refresh_customers(
    c: &mut DbConnection,
    org_id: i64,
    customer_ids: &[i64],
    as_of: NaiveDate,
) -> Result<RefreshSummary, AppError> {
    let mut ids = customer_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    // Every caller holds a write transaction, which `SET LOCAL` needs.
    crate::db::without_jit(c)?;
    let s = settings(c, org_id)?;
    let mut summary = RefreshSummary::default();
    for chunk in ids.chunks(1000) {
        lock_customers(c, org_id, chunk)?;
        crate::service::escalations::release_settled_holds(c, org_id, chunk, as_of)?;
        let computed = compute(c, org_id, &s, chunk, as_of)?;
        persist(c, org_id, computed, as_of, &mut summary)?;
    }
    Ok(summary)
}

/// On PostgreSQL, takes the customers' rows in id order before their snapshots are
/// rewritten, so concurrent postings for overlapping customers queue instead of
/// deadlocking. `FOR NO KEY UPDATE` does not conflict with the key-share locks the
/// transaction's own foreign-key checks already hold. (SQLite write transactions are
/// exclusive already.)
pub fn lock_customers(c: &mut DbConnection, org_id: i64, ids: &[i64]) -> Result<(), AppError> {
    use diesel::prelude::*;

    use crate::db::schema::customers;
    if let DbConnection::Pg(pg) = c {
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq_any(ids))
            .order(customers::id.asc())
            .select(customers::id)
            .for_no_key_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}

/// The daily recomputation of every customer of the organisation, 1 000 at a time.
pub fn refresh_all(c: &mut DbConnection, org_id: i64, as_of: NaiveDate) -> Result<RefreshSummary, AppError> {
    crate::db::without_jit(c)?;
    let s = settings(c, org_id)?;
    let mut summary = RefreshSummary::default();
    let mut after = 0;
    loop {
        let ids = customer_repo::ids_page(c, org_id, after, 1000)?;
        let Some(last) = ids.last().copied() else { break };
        crate::service::escalations::release_settled_holds(c, org_id, &ids, as_of)?;
        let computed = compute(c, org_id, &s, &ids, as_of)?;
        persist(c, org_id, computed, as_of, &mut summary)?;
        after = last;
    }
    Ok(summary)
}

fn persist(
    c: &mut DbConnection,
    org_id: i64,
    computed: Vec<Computed>,
    as_of: NaiveDate,
    summary: &mut RefreshSummary,
) -> Result<(), AppError> {
    let at = crate::db::now();
    let mut snapshots = Vec::with_capacity(computed.len());
    let mut exposures = Vec::new();
    let mut new_events = Vec::new();
    // (customer, assignee, title, source) of each check-in task, and the changed columns:
    // both written once for the whole batch after the loop.
    let mut check_ins: Vec<(i64, Option<String>, String, String)> = Vec::new();
    let mut changed_columns = Vec::new();
    for x in computed {
        summary.customers += 1;
        let id = x.customer.id;
        let subject = Kind::Customer.encode(id);
        let was_held = x.customer.credit_status == CreditStatus::OnHold.as_str();
        let held = x.status == CreditStatus::OnHold;
        let previous_signals = x
            .snapshot
            .as_ref()
            .map(|s| parse_signals(&s.risk_signals))
            .unwrap_or_default();
        if held && !was_held {
            summary.holds_placed += 1;
            new_events.push(NewEvent::new(
                org_id,
                "credit.hold_placed",
                subject.clone(),
                Some(id),
                serde_json::json!({"reasons": x.reasons, "as_of": as_of}),
            ));
        } else if was_held && !held {
            summary.holds_released += 1;
            let manual = x.status == CreditStatus::ManualRelease;
            new_events.push(NewEvent::new(
                org_id,
                "credit.hold_released",
                subject.clone(),
                Some(id),
                serde_json::json!({
                    "manual": manual,
                    "status": x.status.as_str(),
                    "reason": if manual { x.snapshot.as_ref().and_then(|s| s.release_reason.clone()) } else { None },
                    "released_by": if manual { x.snapshot.as_ref().and_then(|s| s.released_by.clone()) } else { None },
                    "release_until": if manual { x.facts.release_until } else { None },
                    "as_of": as_of,
                }),
            ));
        }
        let stored_baseline = x.snapshot.as_ref().and_then(|s| s.risk_baseline_on);
        if x.assessment.has_history {
            let worse = risk::check_in_signals(stored_baseline, as_of, &previous_signals, &x.assessment.signals);
            if !worse.is_empty() {
                let names: Vec<&str> = worse.iter().map(|s| s.signal.as_str()).collect();
                let title = format!(
                    "Proactive check-in with {}: {}",
                    x.customer.name,
                    worse
                        .iter()
                        .map(|s| s.explanation.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                let title: String = title.chars().take(500).collect();
                check_ins.push((
                    id,
                    x.customer.collector.clone(),
                    title,
                    format!("{subject}:{as_of}:{}", names.join(",")),
                ));
                summary.check_in_tasks += 1;
            }
        }
        if columns_of(&x.customer) != x.columns {
            changed_columns.push((id, x.columns));
        }
        let snapshot = SnapshotValues {
            customer_id: id,
            org_id,
            oldest_due_date: x.facts.oldest_due_date,
            broken_promise_dates: dates_json(&x.broken_dates),
            plan_defaulted_on: x.facts.plan_defaulted_on,
            hold_reasons: serde_json::to_string(&x.reasons).unwrap_or_else(|_| "[]".into()),
            held_since: if held {
                x.snapshot.as_ref().and_then(|s| s.held_since).or(Some(at))
            } else {
                None
            },
            risk_signals: serde_json::to_string(&x.assessment.signals).unwrap_or_else(|_| "[]".into()),
            risk_computed_on: Some(as_of),
            updated_at: at,
            strategy_hold_since: x.facts.strategy_hold_since,
            risk_baseline_on: risk::baseline_after(stored_baseline, x.assessment.has_history, as_of),
        };
        if !x
            .snapshot
            .as_ref()
            .is_some_and(|stored| snapshot_unchanged(stored, &snapshot))
        {
            snapshots.push(snapshot);
        }
        exposures.extend(x.exposures);
    }
    let check_in_tasks: Vec<NewTask<'_>> = check_ins
        .iter()
        .map(|(customer_id, assignee, title, source_id)| NewTask {
            org_id,
            customer_id: *customer_id,
            kind: "risk_check_in",
            priority: "normal",
            assignee: assignee.as_deref(),
            title,
            due_on: as_of,
            source_id,
        })
        .collect();
    tasks::create_many_once(c, &check_in_tasks)?;
    if changed_columns.len() > 1 {
        // The grouped updates below take row locks out of id order; taking them in id
        // order first keeps concurrent writers to the same customers from deadlocking.
        let ids: Vec<i64> = changed_columns.iter().map(|(id, _)| *id).collect();
        lock_customers(c, org_id, &ids)?;
    }
    repo::set_customer_columns(c, org_id, &changed_columns)?;
    repo::write_exposures(c, &exposures)?;
    repo::upsert_snapshots(c, &snapshots)?;
    events::insert_many(c, &new_events)
}

// ---- credit check --------------------------------------------------------------------

/// The call an ERP makes before releasing an order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_external_id": "C-1001", "order_amount": "2500.00", "currency": "EUR"}))]
pub struct CreditCheckRequest {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_external_id: Option<String>,
    pub order_amount: String,
    /// The customer's credit currency (its `currency`).
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "decision": "hold", "customer_id": "cus_1", "currency": "EUR", "order_amount": "2500.00",
    "credit_limit": "25000.00", "exposure": "7250.00", "available_credit": "17750.00", "credit_status": "on_hold",
    "reasons": [{"code": "overdue", "message": "an invoice due on 2026-09-13 is 71 days overdue (more than 60)"}]
}))]
pub struct CreditCheckResult {
    /// `approved` or `hold`.
    pub decision: String,
    pub customer_id: String,
    pub currency: String,
    pub order_amount: String,
    pub credit_limit: Option<String>,
    pub exposure: String,
    /// Available credit before the order; null without a limit.
    pub available_credit: Option<String>,
    pub credit_status: CreditStatus,
    /// Why the order is held; empty when approved.
    pub reasons: Vec<HoldReason>,
}

/// Reads the snapshot of one customer into credit facts: two primary-key reads.
fn facts_of(c: &mut DbConnection, customer: &CustomerRow) -> Result<(CreditFacts, Option<SnapshotRow>), AppError> {
    let snapshot = repo::snapshot(c, customer.id)?;
    let exposure = repo::exposure(c, customer.id, &customer.currency)?;
    Ok((facts_from(customer, snapshot.as_ref(), exposure.as_ref()), snapshot))
}

/// The credit facts of a customer, its snapshot and its exposure in its own currency.
fn facts_from(customer: &CustomerRow, snapshot: Option<&SnapshotRow>, exposure: Option<&ExposureRow>) -> CreditFacts {
    CreditFacts {
        currency: customer.currency.clone(),
        limit_minor: customer.credit_limit_minor,
        exposure: exposure.map(|e| e.exposure()).unwrap_or_default(),
        oldest_due_date: snapshot.and_then(|s| s.oldest_due_date),
        broken_promise_dates: snapshot
            .map(|s| parse_dates(&s.broken_promise_dates))
            .unwrap_or_default(),
        plan_defaulted_on: snapshot.and_then(|s| s.plan_defaulted_on),
        release_until: snapshot.and_then(|s| s.release_until),
        strategy_hold_since: snapshot.and_then(|s| s.strategy_hold_since),
    }
}

/// Answers a credit check from the customer row and its snapshot (a few single-row reads,
/// nothing written).
pub fn check(
    c: &mut DbConnection,
    org_id: i64,
    req: &CreditCheckRequest,
    as_of: NaiveDate,
) -> Result<CreditCheckResult, AppError> {
    if req.customer_id.is_some() && req.customer_external_id.is_some() {
        return Err(AppError::invalid(
            "customer_id",
            "give customer_id or customer_external_id, not both",
        ));
    }
    let mut v = Violations::new();
    let key = match (&req.customer_id, &req.customer_external_id) {
        (Some(id), _) => Kind::Customer.decode(id).map(repo::CustomerKey::Id),
        (None, Some(ext)) => Some(repo::CustomerKey::ExternalId(ext)),
        (None, None) => None,
    };
    let mut inputs = match key {
        Some(key) => repo::check_inputs(c, org_id, key)?,
        None => None,
    };
    // A customer whose postings are still queued for recomputation is recomputed first, so
    // the answer reflects every payment and invoice committed before this request.
    if let (Some(key), Some(found)) = (key, &inputs)
        && found.queued
    {
        crate::service::credit_queue::settle_customer(c, org_id, found.customer.id)?;
        inputs = repo::check_inputs(c, org_id, key)?;
    }
    let customer = inputs.as_ref().map(|i| &i.customer);
    if customer.is_none() {
        match (&req.customer_id, &req.customer_external_id) {
            (None, None) => v.add("customer_id", "customer_id or customer_external_id is required"),
            (Some(_), _) => v.add("customer_id", "no such customer"),
            (None, Some(_)) => v.add("customer_external_id", "no such customer"),
        }
    }
    let currency = Currency::parse(req.currency.trim());
    if currency.is_none() {
        v.add("currency", "is not a supported ISO 4217 currency");
    }
    if let (Some(cust), Some(cur)) = (customer, currency)
        && cust.currency != cur.code()
    {
        v.add(
            "currency",
            format!(
                "credit is checked in the customer's currency {}; amounts in other currencies are never added to it",
                cust.currency
            ),
        );
    }
    let amount = currency.and_then(|cur| v.check("order_amount", money::parse_amount(&req.order_amount, cur)));
    v.into_result(())?;
    let (Some(inputs), Some(amount)) = (inputs, amount) else {
        return Err(AppError::internal("credit check validation passed without values"));
    };
    let customer = &inputs.customer;
    let s = OrgSettings::from_stored(&inputs.settings);
    let facts = facts_from(customer, inputs.snapshot.as_ref(), inputs.exposure.as_ref());
    let CheckOutcome {
        approved,
        status,
        reasons,
        available_minor,
    } = credit::check_order(&facts, &s.credit, amount, as_of);
    let f = |m: i64| money::format_stored(m, &customer.currency);
    Ok(CreditCheckResult {
        decision: if approved { "approved" } else { "hold" }.into(),
        customer_id: Kind::Customer.encode(customer.id),
        currency: customer.currency.clone(),
        order_amount: f(amount),
        credit_limit: facts.limit_minor.map(f),
        exposure: f(facts.exposure.total()),
        available_credit: available_minor.map(f),
        credit_status: status,
        reasons,
    })
}

// ---- credit view, release, open orders -----------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "currency": "EUR", "open_receivables": "4050.00", "unapplied_cash": "0.00", "open_orders": "3200.00",
    "exposure": "7250.00"
}))]
pub struct ExposureView {
    pub currency: String,
    /// Open invoices and debit notes minus open credit notes.
    pub open_receivables: String,
    pub unapplied_cash: String,
    pub open_orders: String,
    /// open_receivables − unapplied_cash + open_orders.
    pub exposure: String,
}

impl ExposureView {
    fn new(currency: &str, e: &Exposure) -> ExposureView {
        let f = |m: i64| money::format_stored(m, currency);
        ExposureView {
            currency: currency.to_string(),
            open_receivables: f(e.open_receivables_minor),
            unapplied_cash: f(e.unapplied_minor),
            open_orders: f(e.open_orders_minor),
            exposure: f(e.total()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"until": "2026-12-01", "reason": "Paid by wire today, remittance on its way", "released_by": "laura"}))]
pub struct ReleaseView {
    pub until: NaiveDate,
    pub reason: Option<String>,
    pub released_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "application_id": "cap_1", "currency": "EUR", "previous_limit": "25000.00", "new_limit": "30000.00",
    "previous_terms_days": 30, "new_terms_days": 45, "previous_risk_class": "C", "new_risk_class": "B",
    "changed_by": "laura", "reason": "Good references, solid equity; limit below the request until a year of history",
    "changed_at": "2026-11-23T10:00:00Z"
}))]
pub struct CreditChange {
    pub application_id: Option<String>,
    pub currency: String,
    pub previous_limit: Option<String>,
    pub new_limit: Option<String>,
    pub previous_terms_days: i32,
    pub new_terms_days: i32,
    pub previous_risk_class: Option<String>,
    pub new_risk_class: Option<String>,
    pub changed_by: String,
    pub reason: Option<String>,
    pub changed_at: chrono::DateTime<chrono::Utc>,
}

/// A customer's credit position.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_id": "cus_1", "as_of": "2026-11-23", "currency": "EUR", "credit_limit": "30000.00",
    "payment_terms_days": 45, "risk_class": "B",
    "exposure": {
        "currency": "EUR", "open_receivables": "4050.00", "unapplied_cash": "0.00", "open_orders": "3200.00",
        "exposure": "7250.00"
    },
    "available": "22750.00", "status": "manual_release",
    "reasons": [{"code": "overdue", "message": "an invoice due on 2026-09-13 is 71 days overdue (more than 60)"}],
    "manual_release": {
        "until": "2026-12-01", "reason": "Paid by wire today, remittance on its way", "released_by": "laura"
    },
    "other_currencies": [
        {
            "currency": "USD", "open_receivables": "980.00", "unapplied_cash": "0.00", "open_orders": "0.00",
            "exposure": "980.00"
        }
    ],
    "history": [
        {
            "application_id": "cap_1", "currency": "EUR", "previous_limit": "25000.00", "new_limit": "30000.00",
            "previous_terms_days": 30, "new_terms_days": 45, "previous_risk_class": "C", "new_risk_class": "B",
            "changed_by": "laura",
            "reason": "Good references, solid equity; limit below the request until a year of history",
            "changed_at": "2026-11-23T10:00:00Z"
        }
    ]
}))]
pub struct CreditView {
    pub customer_id: String,
    pub as_of: NaiveDate,
    /// The credit currency: the customer's currency, which the limit is in.
    pub currency: String,
    pub credit_limit: Option<String>,
    pub payment_terms_days: i32,
    pub risk_class: Option<String>,
    /// Exposure in the credit currency.
    pub exposure: ExposureView,
    /// Limit − exposure (negative when over the limit); null without a limit.
    pub available: Option<String>,
    pub status: CreditStatus,
    /// The hold rules that apply now.
    pub reasons: Vec<HoldReason>,
    pub manual_release: Option<ReleaseView>,
    /// Exposure in other currencies: shown, never added to the limit's currency.
    pub other_currencies: Vec<ExposureView>,
    /// Credit decisions, newest first (up to 20).
    pub history: Vec<CreditChange>,
}

pub fn view(c: &mut DbConnection, org_id: i64, customer_id: i64, as_of: NaiveDate) -> Result<CreditView, AppError> {
    crate::service::credit_queue::settle_customer(c, org_id, customer_id)?;
    let customer = customer_repo::find(c, org_id, customer_id)?;
    let s = settings(c, org_id)?;
    let (facts, snapshot) = facts_of(c, &customer)?;
    let reasons = credit::hold_reasons(&facts, &s.credit, as_of);
    let status = credit::status(&reasons, facts.release_until, as_of);
    let others = repo::exposures_of(c, customer.id)?
        .into_iter()
        .filter(|e| e.currency != customer.currency)
        .filter(|e| e.open_receivables_minor != 0 || e.unapplied_minor != 0 || e.open_orders_minor != 0)
        .map(|e| ExposureView::new(&e.currency, &e.exposure()))
        .collect();
    let history = repo::history(c, org_id, customer.id, 20)?
        .into_iter()
        .map(|h| {
            let f = |m: i64| money::format_stored(m, &h.currency);
            CreditChange {
                application_id: h.application_id.map(|a| Kind::CreditApplication.encode(a)),
                previous_limit: h.previous_limit_minor.map(f),
                new_limit: h.new_limit_minor.map(f),
                currency: h.currency.clone(),
                previous_terms_days: h.previous_terms_days,
                new_terms_days: h.new_terms_days,
                previous_risk_class: h.previous_risk_class,
                new_risk_class: h.new_risk_class,
                changed_by: h.changed_by,
                reason: h.reason,
                changed_at: chrono::DateTime::from_naive_utc_and_offset(h.created_at, chrono::Utc),
            }
        })
        .collect();
    let f = |m: i64| money::format_stored(m, &customer.currency);
    Ok(CreditView {
        customer_id: Kind::Customer.encode(customer.id),
        as_of,
        currency: customer.currency.clone(),
        credit_limit: customer.credit_limit_minor.map(f),
        payment_terms_days: customer.payment_terms_days,
        risk_class: customer.risk_class.clone(),
        exposure: ExposureView::new(&customer.currency, &facts.exposure),
        available: facts.available_minor().map(f),
        status,
        manual_release: match (status, &snapshot) {
            (CreditStatus::ManualRelease, Some(sn)) => sn.release_until.map(|until| ReleaseView {
                until,
                reason: sn.release_reason.clone(),
                released_by: sn.released_by.clone(),
            }),
            _ => None,
        },
        reasons,
        other_currencies: others,
        history,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Paid by wire today, remittance on its way", "until": "2026-12-01"}))]
pub struct ReleaseRequest {
    pub reason: String,
    /// Last day of the release (default: today + `credit.manual_release_days`).
    #[serde(default)]
    pub until: Option<NaiveDate>,
}

/// A manager releases a held account until a date, with a reason.
pub fn release(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    customer_id: i64,
    req: &ReleaseRequest,
    as_of: NaiveDate,
) -> Result<CreditView, AppError> {
    let customer = customer_repo::find(c, org_id, customer_id)?;
    let s = settings(c, org_id)?;
    let mut v = Violations::new();
    let reason = text::required(&mut v, "reason", Some(&req.reason), 1000);
    let until = req
        .until
        .unwrap_or(as_of + chrono::Days::new(u64::from(s.credit.manual_release_days)));
    if until < as_of || until > as_of + chrono::Days::new(365) {
        v.add("until", "must be between today and a year from today");
    }
    v.into_result(())?;
    // The customer's row before its snapshot, in the order every recomputation takes them
    // (see `set_open_orders`).
    lock_customers(c, org_id, &[customer.id])?;
    // The hold is judged on every posting committed so far, not on a queued snapshot.
    crate::service::credit_queue::settle_customer(c, org_id, customer.id)?;
    let (facts, _) = facts_of(c, &customer)?;
    if credit::hold_reasons(&facts, &s.credit, as_of).is_empty() {
        return Err(AppError::Conflict("the customer is not on credit hold".into()));
    }
    repo::set_release(c, org_id, customer.id, Some(until), reason.as_deref(), Some(actor))?;
    refresh_customers(c, org_id, &[customer.id], as_of)?;
    view(c, org_id, customer.id, as_of)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "3200.00", "currency": "EUR"}))]
pub struct OpenOrdersRequest {
    /// Total of the customer's open (not yet invoiced) orders in this currency.
    pub amount: String,
    pub currency: String,
}

/// The ERP reports the customer's open orders in a currency (replacing the last figure).
pub fn set_open_orders(
    c: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    req: &OpenOrdersRequest,
    as_of: NaiveDate,
) -> Result<CreditView, AppError> {
    let customer = customer_repo::find(c, org_id, customer_id)?;
    let mut v = Violations::new();
    let currency = Currency::parse(req.currency.trim());
    if currency.is_none() {
        v.add("currency", "is not a supported ISO 4217 currency");
    }
    let amount = currency.and_then(|cur| v.check("amount", money::parse_amount(&req.amount, cur)));
    v.into_result(())?;
    let (Some(currency), Some(amount)) = (currency, amount) else {
        return Err(AppError::internal("open orders validation passed without values"));
    };
    // The customer's row first, as every recomputation takes it before its snapshot and
    // exposures: writing the exposure first and then waiting for the customer can deadlock
    // with the credit worker recomputing the same customer (the likely cause of a 503 on
    // PostgreSQL that schemathesis saw once; its server log was not kept).
    lock_customers(c, org_id, &[customer.id])?;
    repo::set_open_orders(c, org_id, customer.id, currency.code(), amount)?;
    refresh_customers(c, org_id, &[customer.id], as_of)?;
    view(c, org_id, customer.id, as_of)
}

// ---- risk view -----------------------------------------------------------------------

/// The automatic flags of a customer (P3).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "broken_promise": false, "credit_hold": true, "over_limit": false, "at_risk": true, "in_dispute": true,
    "with_agency": false, "legal": false
}))]
pub struct CustomerFlags {
    pub broken_promise: bool,
    pub credit_hold: bool,
    pub over_limit: bool,
    pub at_risk: bool,
    pub in_dispute: bool,
    /// An agency placement of the customer is open (`/v1/escalations`).
    pub with_agency: bool,
    /// A law-firm letter or small-claims case of the customer is open.
    pub legal: bool,
}

impl CustomerFlags {
    pub fn of(r: &CustomerRow) -> CustomerFlags {
        CustomerFlags::from_columns(&columns_of(r))
    }

    fn from_columns(c: &CustomerCreditColumns) -> CustomerFlags {
        CustomerFlags {
            broken_promise: c.flag_broken_promise,
            credit_hold: c.credit_status == CreditStatus::OnHold.as_str(),
            over_limit: c.flag_over_limit,
            at_risk: c.flag_at_risk,
            in_dispute: c.flag_in_dispute,
            with_agency: c.flag_with_agency,
            legal: c.flag_legal,
        }
    }
}

/// The derived columns as stored on a customer row.
fn columns_of(r: &CustomerRow) -> CustomerCreditColumns {
    CustomerCreditColumns {
        credit_status: r.credit_status.clone(),
        risk_class: r.risk_class.clone(),
        risk_score: r.risk_score,
        flag_broken_promise: r.flag_broken_promise,
        flag_over_limit: r.flag_over_limit,
        flag_at_risk: r.flag_at_risk,
        flag_in_dispute: r.flag_in_dispute,
        flag_with_agency: r.flag_with_agency,
        flag_legal: r.flag_legal,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_id": "cus_1", "as_of": "2026-11-23", "score": 35, "risk_class": "C", "class_source": "payment_history",
    "flags": {
        "broken_promise": false, "credit_hold": true, "over_limit": false, "at_risk": true, "in_dispute": true,
        "with_agency": false, "legal": false
    },
    "signals": [
        {
            "signal": "average_days_to_pay", "value": 41.5, "fires": false, "points": 0,
            "explanation": "41.5 days from issue to payment over 12 invoices paid in 270 days"
        },
        {
            "signal": "share_paid_late", "value": 0.58, "fires": true, "points": 10,
            "explanation": "58 % of 12 invoices paid in 270 days were paid after their due date"
        },
        {
            "signal": "oldest_overdue_days", "value": 71.0, "fires": true, "points": 10,
            "explanation": "the oldest open invoice is 71 days overdue"
        }
    ]
}))]
pub struct RiskView {
    pub customer_id: String,
    pub as_of: NaiveDate,
    /// 0 (nothing seen) to 100.
    pub score: u32,
    /// `A` (low risk) to `E`; from payment history, or from the last credit decision while
    /// there is no history.
    pub risk_class: Option<String>,
    /// `payment_history`, `credit_decision` or `none`.
    pub class_source: String,
    pub flags: CustomerFlags,
    pub signals: Vec<Signal>,
}

/// The risk of one customer, computed now from its history (nothing written).
pub fn risk_view(c: &mut DbConnection, org_id: i64, customer_id: i64, as_of: NaiveDate) -> Result<RiskView, AppError> {
    crate::service::credit_queue::settle_customer(c, org_id, customer_id)?;
    let s = settings(c, org_id)?;
    let x = compute(c, org_id, &s, &[customer_id], as_of)?
        .pop()
        .ok_or_else(|| AppError::not_found("customer"))?;
    let source = if x.assessment.has_history {
        "payment_history"
    } else if x.customer.risk_class.is_some() {
        "credit_decision"
    } else {
        "none"
    };
    Ok(RiskView {
        customer_id: Kind::Customer.encode(customer_id),
        as_of,
        score: x.assessment.score,
        risk_class: x.columns.risk_class.clone(),
        class_source: source.into(),
        flags: CustomerFlags::from_columns(&x.columns),
        signals: x.assessment.signals,
    })
}

/// Recomputation on demand (the daily job through the API): every customer as of a date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"as_of": "2026-11-23"}))]
pub struct RecomputeRequest {
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 6)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("a valid time")
    }

    fn row(currency: &str, receivables: i64, unapplied: i64, orders: i64) -> ExposureRow {
        ExposureRow {
            customer_id: 7,
            currency: currency.into(),
            org_id: 1,
            open_receivables_minor: receivables,
            unapplied_minor: unapplied,
            open_orders_minor: orders,
            updated_at: at() - chrono::Days::new(1),
        }
    }

    fn amounts(rows: &[ExposureRow]) -> Vec<(String, i64, i64)> {
        let mut v: Vec<_> = rows
            .iter()
            .map(|r| (r.currency.clone(), r.open_receivables_minor, r.unapplied_minor))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn unchanged_exposures_are_not_written() {
        let stored = [row("EUR", 5_000, 0, 100), row("USD", 0, 300, 0)];
        let computed = vec![row("EUR", 5_000, 0, 100), row("USD", 0, 300, 0)];
        assert!(exposure_writes(&stored, computed, at()).is_empty());
    }

    #[test]
    fn changed_and_new_exposures_are_written() {
        let stored = [row("EUR", 5_000, 0, 0)];
        let computed = vec![row("EUR", 4_000, 0, 0), row("GBP", 900, 0, 0)];
        let writes = exposure_writes(&stored, computed, at());
        assert_eq!(amounts(&writes), vec![("EUR".into(), 4_000, 0), ("GBP".into(), 900, 0)]);
    }

    #[test]
    fn a_currency_no_longer_computed_is_zeroed_and_keeps_its_orders() {
        let stored = [
            row("EUR", 5_000, 0, 0),
            row("USD", 2_000, 50, 700),
            row("GBP", 0, 0, 10),
        ];
        let computed = vec![row("EUR", 5_000, 0, 0)];
        let writes = exposure_writes(&stored, computed, at());
        assert_eq!(amounts(&writes), vec![("USD".into(), 0, 0)]);
        assert_eq!(writes[0].open_orders_minor, 700);
        assert_eq!(writes[0].updated_at, at());
    }

    fn snapshot_row() -> SnapshotRow {
        SnapshotRow {
            customer_id: 7,
            org_id: 1,
            oldest_due_date: NaiveDate::from_ymd_opt(2026, 10, 1),
            broken_promise_dates: "[]".into(),
            plan_defaulted_on: None,
            hold_reasons: "[]".into(),
            held_since: None,
            release_until: None,
            release_reason: None,
            released_by: None,
            risk_signals: "[]".into(),
            risk_computed_on: NaiveDate::from_ymd_opt(2026, 12, 6),
            updated_at: at() - chrono::Days::new(1),
            strategy_hold_since: None,
            risk_baseline_on: NaiveDate::from_ymd_opt(2026, 11, 30),
        }
    }

    fn values_of(r: &SnapshotRow) -> SnapshotValues {
        SnapshotValues {
            customer_id: r.customer_id,
            org_id: r.org_id,
            oldest_due_date: r.oldest_due_date,
            broken_promise_dates: r.broken_promise_dates.clone(),
            plan_defaulted_on: r.plan_defaulted_on,
            hold_reasons: r.hold_reasons.clone(),
            held_since: r.held_since,
            risk_signals: r.risk_signals.clone(),
            risk_computed_on: r.risk_computed_on,
            updated_at: at(),
            strategy_hold_since: r.strategy_hold_since,
            risk_baseline_on: r.risk_baseline_on,
        }
    }

    #[test]
    fn a_snapshot_differing_only_in_its_time_is_unchanged() {
        let stored = snapshot_row();
        assert!(snapshot_unchanged(&stored, &values_of(&stored)));
    }

    #[test]
    fn any_changed_value_makes_a_snapshot_changed() {
        let stored = snapshot_row();
        let changes: Vec<fn(&mut SnapshotValues)> = vec![
            |v| v.oldest_due_date = None,
            |v| v.broken_promise_dates = "[\"2026-11-30\"]".into(),
            |v| v.plan_defaulted_on = NaiveDate::from_ymd_opt(2026, 11, 2),
            |v| v.hold_reasons = "[{\"code\":\"overdue\"}]".into(),
            |v| v.held_since = Some(at()),
            |v| v.risk_signals = "[{\"signal\":\"slower_payment\"}]".into(),
            |v| v.risk_computed_on = NaiveDate::from_ymd_opt(2026, 12, 7),
            |v| v.strategy_hold_since = NaiveDate::from_ymd_opt(2026, 12, 1),
            |v| v.risk_baseline_on = None,
        ];
        for change in changes {
            let mut v = values_of(&stored);
            change(&mut v);
            assert!(!snapshot_unchanged(&stored, &v));
        }
    }
}
