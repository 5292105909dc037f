//! Promise use cases: take a promise (checked against the open amount it covers), edit or
//! cancel it, and evaluate open promises — on payment posting for the customers concerned,
//! and daily (or on demand) for the whole organisation. A promise that breaks records a
//! risk fact, creates a high-priority follow-up task and emits an event, once.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::repo::events::{self, NewEvent};
use crate::db::repo::invoices::InvoiceRow;
use crate::db::repo::promises::{self as repo, PromiseRow, PromiseValues};
use crate::db::repo::tasks::{self, NewRiskFact, NewTask};
use crate::db::{DbConnection, repo::customers as customer_repo};
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::promise::{CHANNELS, PromiseStatus, evaluate, window_end};
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::service::check_version;
use crate::service::org_settings as settings;

/// A promise as the API accepts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "customer_id": "cus_1", "invoice_ids": ["inv_1"], "amount": "1210.00", "currency": "EUR",
    "promised_date": "2026-12-05", "channel": "phone", "contact_name": "Marta Puig",
    "notes": "Will pay after their own customer pays on the 3rd"
}))]
pub struct PromiseInput {
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Invoices the promise covers; none means a payment on account.
    #[serde(default)]
    pub invoice_ids: Option<Vec<String>>,
    #[serde(default)]
    pub amount: Option<String>,
    /// Defaults to the covered invoices' (or the customer's) currency.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub promised_date: Option<NaiveDate>,
    /// `phone` (default), `email`, `letter`, `portal`, `in_person`.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub contact_name: Option<String>,
    /// Defaults to the caller's subject.
    #[serde(default)]
    pub taken_by: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Checks a promise against the customer and the invoices it covers.
fn check(
    c: &mut DbConnection,
    org_id: i64,
    input: &PromiseInput,
    actor: &str,
    today: NaiveDate,
    tolerance: u32,
) -> Result<(PromiseValues, Vec<i64>), AppError> {
    let mut v = Violations::new();
    let customer = match input.customer_id.as_deref().and_then(|id| Kind::Customer.decode(id)) {
        Some(id) => customer_repo::find(c, org_id, id).ok(),
        None => None,
    };
    if customer.is_none() {
        v.add(
            "customer_id",
            if input.customer_id.is_some() {
                "no such customer"
            } else {
                "is required"
            },
        );
    }
    let mut invoice_ids = Vec::new();
    let mut invoices: Vec<InvoiceRow> = Vec::new();
    for (i, id) in input.invoice_ids.iter().flatten().enumerate() {
        match Kind::Invoice
            .decode(id)
            .map(|k| crate::db::repo::invoices::find(c, org_id, k))
        {
            Some(Ok(row)) if !invoice_ids.contains(&row.id) => {
                invoice_ids.push(row.id);
                invoices.push(row);
            }
            Some(Ok(_)) => v.add(format!("invoice_ids[{i}]"), "appears more than once"),
            _ => v.add(format!("invoice_ids[{i}]"), "no such invoice"),
        }
    }
    let currency_code = input
        .currency
        .clone()
        .or_else(|| invoices.first().map(|i| i.currency.clone()))
        .or_else(|| customer.as_ref().map(|c| c.currency.clone()))
        .unwrap_or_else(|| "EUR".into());
    let currency = Currency::parse(currency_code.trim());
    if currency.is_none() {
        v.add("currency", "is not a supported ISO 4217 currency");
    }
    for (i, inv) in invoices.iter().enumerate() {
        let field = format!("invoice_ids[{i}]");
        if customer.as_ref().is_some_and(|c| c.id != inv.customer_id) {
            v.add(field, "belongs to another customer");
        } else if inv.currency != currency_code {
            v.add(field, format!("is in {}, not {currency_code}", inv.currency));
        } else if inv.kind == "credit_note" || inv.open_minor == 0 || inv.status().is_closed_by_decision() {
            v.add(field, "has nothing open to promise");
        }
    }
    let amount = match (&input.amount, currency) {
        (None, _) => {
            v.add("amount", "is required");
            None
        }
        (Some(_), None) => None,
        (Some(t), Some(cur)) => match money::parse_amount(t, cur) {
            Ok(0) => {
                v.add("amount", "must be greater than zero");
                None
            }
            other => v.check("amount", other),
        },
    };
    if let (Some(amount), Some(cur)) = (amount, currency) {
        let open: i64 = if invoices.is_empty() {
            match &customer {
                Some(cust) => crate::db::repo::invoices::open_items_of_customer(c, org_id, cust.id)?
                    .iter()
                    .filter(|i| i.currency == cur.code() && i.kind != "credit_note")
                    .map(|i| i.open_minor)
                    .sum(),
                None => i64::MAX,
            }
        } else {
            invoices.iter().map(|i| i.open_minor).sum()
        };
        if amount > open {
            v.add(
                "amount",
                format!(
                    "exceeds the open amount it covers ({})",
                    money::format_amount(open, cur)
                ),
            );
        }
    }
    match input.promised_date {
        None => v.add("promised_date", "is required"),
        Some(d) if d < today => v.add("promised_date", "must not be in the past"),
        Some(_) => {}
    }
    let channel = input.channel.as_deref().unwrap_or("phone").to_string();
    if !CHANNELS.contains(&channel.as_str()) {
        v.add("channel", format!("must be one of {}", CHANNELS.join(", ")));
    }
    let contact_name = text::optional(&mut v, "contact_name", input.contact_name.as_deref(), 200);
    let taken_by =
        text::optional(&mut v, "taken_by", input.taken_by.as_deref(), 128).unwrap_or_else(|| actor.to_string());
    let notes = text::optional(&mut v, "notes", input.notes.as_deref(), 2000);
    v.into_result(())?;
    let (Some(customer), Some(currency), Some(amount), Some(promised_date)) =
        (customer, currency, amount, input.promised_date)
    else {
        return Err(AppError::internal("promise validation passed without values"));
    };
    Ok((
        PromiseValues {
            org_id,
            customer_id: customer.id,
            amount_minor: amount,
            currency: currency.code().to_string(),
            promised_date,
            created_on: today,
            window_end: window_end(promised_date, tolerance),
            channel,
            contact_name,
            taken_by,
            notes,
        },
        invoice_ids,
    ))
}

pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &PromiseInput,
    today: NaiveDate,
) -> Result<PromiseRow, AppError> {
    let tolerance = settings(c, org_id)?.promise_tolerance_days;
    let (values, invoice_ids) = check(c, org_id, input, actor, today, tolerance)?;
    let id = repo::insert(c, &values, &invoice_ids)?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "promise.created",
            Kind::Promise.encode(id),
            Some(values.customer_id),
            serde_json::json!({"amount_minor": values.amount_minor, "currency": values.currency, "promised_date": values.promised_date}),
        )],
    )?;
    // Money received today already counts.
    evaluate_customers(c, org_id, &[values.customer_id], today)?;
    crate::service::hooks::cancel_promised_actions(c, &invoice_ids)?;
    repo::find(c, org_id, id)
}

/// The input that reproduces a stored promise (the base a merge patch applies to).
pub fn to_input(p: &PromiseRow, invoice_ids: &[i64]) -> PromiseInput {
    PromiseInput {
        customer_id: Some(Kind::Customer.encode(p.customer_id)),
        invoice_ids: (!invoice_ids.is_empty()).then(|| invoice_ids.iter().map(|i| Kind::Invoice.encode(*i)).collect()),
        amount: Some(money::format_stored(p.amount_minor, &p.currency)),
        currency: Some(p.currency.clone()),
        promised_date: Some(p.promised_date),
        channel: Some(p.channel.clone()),
        contact_name: p.contact_name.clone(),
        taken_by: Some(p.taken_by.clone()),
        notes: p.notes.clone(),
    }
}

/// Edits an open promise (amount, date, channel, contact, notes); the customer and the
/// covered invoices are fixed once taken.
pub fn patch(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    id: i64,
    expected_version: Option<i64>,
    patch: &serde_json::Value,
    today: NaiveDate,
) -> Result<PromiseRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    check_version(expected_version, current.version)?;
    if current.status != "open" {
        return Err(AppError::Conflict(format!(
            "the promise is {} and can no longer change",
            current.status
        )));
    }
    if patch.get("customer_id").is_some() || patch.get("invoice_ids").is_some() || patch.get("currency").is_some() {
        return Err(AppError::invalid(
            "customer_id",
            "the customer, invoices and currency of a promise cannot change; cancel it and take a new one",
        ));
    }
    let links: Vec<i64> = repo::links(c, &[id])?.into_iter().map(|(_, i)| i).collect();
    let input: PromiseInput = crate::service::merge_patch(&to_input(&current, &links), patch)?;
    let tolerance = settings(c, org_id)?.promise_tolerance_days;
    let (mut values, _) = check(c, org_id, &input, actor, today, tolerance)?;
    values.created_on = current.created_on;
    repo::update(c, org_id, id, &values)?;
    evaluate_customers(c, org_id, &[current.customer_id], today)?;
    repo::find(c, org_id, id)
}

pub fn cancel(c: &mut DbConnection, org_id: i64, id: i64) -> Result<PromiseRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    if current.status != "open" {
        return Err(AppError::Conflict(format!(
            "the promise is {} and cannot be cancelled",
            current.status
        )));
    }
    repo::set_status(c, id, PromiseStatus::Cancelled.as_str(), current.paid_minor)?;
    repo::find(c, org_id, id)
}

/// What an evaluation changed.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "promises_evaluated": 42, "promises_kept": 30, "promises_partially_kept": 4, "promises_broken": 8,
    "plans_evaluated": 6, "plans_completed": 1, "plans_defaulted": 1
}))]
pub struct EvaluationSummary {
    pub promises_evaluated: usize,
    pub promises_kept: usize,
    pub promises_partially_kept: usize,
    pub promises_broken: usize,
    pub plans_evaluated: usize,
    pub plans_completed: usize,
    pub plans_defaulted: usize,
}

/// Evaluates the open promises of some customers (after payments) as of a date.
pub fn evaluate_customers(
    c: &mut DbConnection,
    org_id: i64,
    customers: &[i64],
    as_of: NaiveDate,
) -> Result<EvaluationSummary, AppError> {
    let open = repo::open_promises(c, org_id, Some(customers))?;
    evaluate_promises(c, org_id, open, as_of)
}

/// Evaluates every open promise of the organisation as of a date.
pub fn evaluate_all(c: &mut DbConnection, org_id: i64, as_of: NaiveDate) -> Result<EvaluationSummary, AppError> {
    let open = repo::open_promises(c, org_id, None)?;
    evaluate_promises(c, org_id, open, as_of)
}

/// Counts what each promise was paid (in its window) and moves it on: one query for the
/// links, one for the payments to the covered invoices, one for on-account payments.
fn evaluate_promises(
    c: &mut DbConnection,
    org_id: i64,
    open: Vec<PromiseRow>,
    as_of: NaiveDate,
) -> Result<EvaluationSummary, AppError> {
    let mut summary = EvaluationSummary {
        promises_evaluated: open.len(),
        ..Default::default()
    };
    if open.is_empty() {
        return Ok(summary);
    }
    let settings = settings(c, org_id)?;
    let ids: Vec<i64> = open.iter().map(|p| p.id).collect();
    let mut covered: HashMap<i64, Vec<i64>> = HashMap::new();
    for (promise, invoice) in repo::links(c, &ids)? {
        covered.entry(promise).or_default().push(invoice);
    }
    let invoice_ids: Vec<i64> = covered.values().flatten().copied().collect();
    let mut to_invoice: HashMap<i64, Vec<(i64, NaiveDate)>> = HashMap::new();
    for (invoice, amount, received) in repo::payments_to_invoices(c, &invoice_ids)? {
        to_invoice.entry(invoice).or_default().push((amount, received));
    }
    let on_account: Vec<&PromiseRow> = open.iter().filter(|p| !covered.contains_key(&p.id)).collect();
    let mut of_customer: HashMap<i64, Vec<(String, i64, NaiveDate)>> = HashMap::new();
    if let Some(since) = on_account.iter().map(|p| p.created_on).min() {
        let customers: Vec<i64> = on_account.iter().map(|p| p.customer_id).collect();
        for (customer, currency, amount, received) in repo::payments_of_customers(c, &customers, since)? {
            of_customer
                .entry(customer)
                .or_default()
                .push((currency, amount, received));
        }
    }
    let customer_rows: HashMap<i64, String> =
        customer_repo::find_many(c, org_id, &open.iter().map(|p| p.customer_id).collect::<Vec<_>>())?
            .into_iter()
            .filter_map(|r| r.collector.map(|col| (r.id, col)))
            .collect();
    let mut new_events = Vec::new();
    let mut broke_for: Vec<i64> = Vec::new();
    for p in &open {
        let in_window = |d: &NaiveDate| *d >= p.created_on && *d <= p.window_end;
        let paid: i64 = match covered.get(&p.id) {
            Some(invoices) => invoices
                .iter()
                .flat_map(|i| to_invoice.get(i).into_iter().flatten())
                .filter(|(_, d)| in_window(d))
                .map(|(a, _)| a)
                .sum(),
            None => of_customer
                .get(&p.customer_id)
                .into_iter()
                .flatten()
                .filter(|(cur, _, d)| *cur == p.currency && in_window(d))
                .map(|(_, a, _)| a)
                .sum(),
        };
        let status = evaluate(
            p.amount_minor,
            paid,
            p.window_end,
            settings.promise_min_share_percent,
            as_of,
        );
        if status == PromiseStatus::Open {
            if paid != p.paid_minor {
                repo::set_status(c, p.id, "open", paid)?;
            }
            continue;
        }
        repo::set_status(c, p.id, status.as_str(), paid)?;
        let subject = Kind::Promise.encode(p.id);
        match status {
            PromiseStatus::Kept => summary.promises_kept += 1,
            PromiseStatus::PartiallyKept => summary.promises_partially_kept += 1,
            PromiseStatus::Broken => {
                summary.promises_broken += 1;
                broke_for.push(p.customer_id);
                tasks::record_fact(
                    c,
                    &NewRiskFact {
                        org_id,
                        customer_id: p.customer_id,
                        kind: "promise_broken",
                        subject_id: &subject,
                        occurred_on: as_of,
                        amount_minor: Some(p.amount_minor - paid),
                        currency: Some(&p.currency),
                    },
                )?;
                let title = format!(
                    "Broken promise: {} {} promised for {} was not paid",
                    money::format_stored(p.amount_minor - paid, &p.currency),
                    p.currency,
                    p.promised_date
                );
                tasks::create_once(
                    c,
                    &NewTask {
                        org_id,
                        customer_id: p.customer_id,
                        kind: "promise_follow_up",
                        priority: "high",
                        assignee: Some(
                            customer_rows
                                .get(&p.customer_id)
                                .map(String::as_str)
                                .unwrap_or(&p.taken_by),
                        ),
                        title: &title,
                        due_on: as_of,
                        source_id: &subject,
                    },
                )?;
            }
            PromiseStatus::Open | PromiseStatus::Cancelled => {}
        }
        new_events.push(NewEvent::new(
            org_id,
            &format!("promise.{}", status.as_str()),
            subject,
            Some(p.customer_id),
            serde_json::json!({"amount_minor": p.amount_minor, "paid_minor": paid, "currency": p.currency, "promised_date": p.promised_date}),
        ));
    }
    events::insert_many(c, &new_events)?;
    // A broken promise is a credit-hold rule input and a risk signal.
    crate::service::credit_queue::enqueue(c, org_id, &broke_for)?;
    Ok(summary)
}

/// Promise figures of a customer (P3): made, kept, broken, kept rate.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "made": 6, "open": 1, "kept": 3, "partially_kept": 1, "broken": 1, "cancelled": 0,
    "amounts": {"EUR": {"open": "2350.00", "kept": "4120.00", "partially_kept": "800.00", "broken": "1210.00"}},
    "kept_rate": 0.6
}))]
pub struct PromiseStats {
    pub made: i64,
    pub open: i64,
    pub kept: i64,
    pub partially_kept: i64,
    pub broken: i64,
    pub cancelled: i64,
    /// Promised amounts by status, per currency (decimal strings).
    #[schema(value_type = Object)]
    pub amounts: serde_json::Value,
    /// kept / (kept + partially kept + broken), 0–1; null before any promise is decided.
    pub kept_rate: Option<f64>,
}

pub fn stats(c: &mut DbConnection, org_id: i64, customer_id: i64) -> Result<PromiseStats, AppError> {
    let rows = repo::of_customer(c, org_id, customer_id)?;
    let mut s = PromiseStats {
        made: rows.len() as i64,
        ..Default::default()
    };
    let mut amounts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>> = Default::default();
    for r in &rows {
        match PromiseStatus::parse(&r.status) {
            Some(PromiseStatus::Open) => s.open += 1,
            Some(PromiseStatus::Kept) => s.kept += 1,
            Some(PromiseStatus::PartiallyKept) => s.partially_kept += 1,
            Some(PromiseStatus::Broken) => s.broken += 1,
            Some(PromiseStatus::Cancelled) => s.cancelled += 1,
            None => {}
        }
        *amounts
            .entry(r.currency.clone())
            .or_default()
            .entry(r.status.clone())
            .or_default() += r.amount_minor;
    }
    let decided = s.kept + s.partially_kept + s.broken;
    s.kept_rate = (decided > 0).then(|| s.kept as f64 / decided as f64);
    s.amounts = serde_json::Value::Object(
        amounts
            .into_iter()
            .map(|(cur, by)| {
                let inner = by
                    .into_iter()
                    .map(|(st, m)| (st, serde_json::Value::String(money::format_stored(m, &cur))))
                    .collect();
                (cur, serde_json::Value::Object(inner))
            })
            .collect(),
    );
    Ok(s)
}
