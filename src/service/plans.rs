//! Payment-plan use cases (P19): agree a plan over open invoices of one customer and
//! currency (instalments given or generated), cancel it, and evaluate active plans from
//! the payments made to the covered invoices. A plan that defaults returns its invoices to
//! normal collection, records a risk fact and emits an event, once.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::events::{self, NewEvent};
use crate::db::repo::plans::{self as repo, NewPlan, PlanRow};
use crate::db::repo::tasks::{self, NewRiskFact};
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::plan::{Frequency, PlanStatus, fill, generate, plan_status};
use crate::error::{AppError, Violations};
use crate::service::org_settings as settings;
use crate::service::promises::EvaluationSummary;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"due_date": "2026-12-15", "amount": "400.00"}))]
pub struct InstalmentInput {
    pub due_date: NaiveDate,
    pub amount: String,
}

/// A plan as the API accepts it: explicit `instalments`, or `count` + `frequency` +
/// `first_due_date` to split the covered open amount (the last instalment takes the rounding).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"invoice_ids": ["inv_1", "inv_2"], "count": 3, "frequency": "monthly", "first_due_date": "2026-12-15"}))]
pub struct PlanInput {
    /// Optional; must be the invoices' customer when given.
    #[serde(default)]
    pub customer_id: Option<String>,
    pub invoice_ids: Vec<String>,
    #[serde(default)]
    pub instalments: Option<Vec<InstalmentInput>>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub frequency: Option<Frequency>,
    #[serde(default)]
    pub first_due_date: Option<NaiveDate>,
    /// Days an instalment may stay unpaid before the plan defaults (organisation default 5).
    #[serde(default)]
    pub grace_days: Option<u32>,
}

pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &PlanInput,
    today: NaiveDate,
) -> Result<PlanRow, AppError> {
    let mut v = Violations::new();
    if input.invoice_ids.is_empty() {
        v.add("invoice_ids", "must name at least one invoice");
    }
    let keys: Vec<i64> = input
        .invoice_ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let key = Kind::Invoice.decode(id);
            if key.is_none() {
                v.add(format!("invoice_ids[{i}]"), "no such invoice");
            }
            key
        })
        .collect();
    let rows = crate::db::repo::invoices::lock_many(c, org_id, &keys)?;
    let by_id: HashMap<i64, _> = rows.iter().map(|r| (r.id, r)).collect();
    let in_plans: HashSet<i64> = repo::invoices_in_active_plans(c, &keys)?.into_iter().collect();
    let first = keys.first().and_then(|k| by_id.get(k)).copied();
    let mut seen = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let field = format!("invoice_ids[{i}]");
        match (by_id.get(key), first) {
            (None, _) => v.add(field, "no such invoice"),
            (Some(_), _) if !seen.insert(*key) => v.add(field, "appears more than once"),
            (Some(inv), Some(f)) if inv.customer_id != f.customer_id => v.add(field, "belongs to another customer"),
            (Some(inv), Some(f)) if inv.currency != f.currency => v.add(field, "is in another currency"),
            (Some(inv), _)
                if inv.kind == "credit_note" || inv.open_minor == 0 || inv.status().is_closed_by_decision() =>
            {
                v.add(field, "has nothing open to plan")
            }
            (Some(_), _) if in_plans.contains(key) => v.add(field, "is already in an active payment plan"),
            _ => {}
        }
    }
    if let (Some(cid), Some(f)) = (&input.customer_id, first)
        && Kind::Customer.decode(cid) != Some(f.customer_id)
    {
        v.add("customer_id", "is not the invoices' customer");
    }
    v.into_result(())?;
    let mut v = Violations::new();
    let first = first.ok_or_else(|| AppError::invalid("invoice_ids", "must name at least one invoice"))?;
    let currency = Currency::parse(&first.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let total: i64 = rows.iter().map(|r| r.open_minor).sum();
    let instalments = match (&input.instalments, input.count, input.frequency, input.first_due_date) {
        (Some(list), None, None, None) => {
            let mut out = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                match money::parse_amount(&item.amount, currency) {
                    Ok(0) => v.add(format!("instalments[{i}].amount"), "must be greater than zero"),
                    Ok(a) => out.push((item.due_date, a)),
                    Err(e) => v.add(format!("instalments[{i}].amount"), e.to_string()),
                }
                if item.due_date < today {
                    v.add(format!("instalments[{i}].due_date"), "must not be in the past");
                }
                if i > 0 && item.due_date <= list[i - 1].due_date {
                    v.add(
                        format!("instalments[{i}].due_date"),
                        "must be after the previous instalment",
                    );
                }
            }
            if list.is_empty() || list.len() > 120 {
                v.add("instalments", "must hold between 1 and 120 instalments");
            }
            out
        }
        (None, Some(count), Some(frequency), Some(first_due)) => {
            if !(1..=120).contains(&count) {
                v.add("count", "must be between 1 and 120");
            }
            if first_due < today {
                v.add("first_due_date", "must not be in the past");
            }
            generate(total, count, frequency, first_due).unwrap_or_else(|| {
                v.add("count", "the open amount cannot be split into that many instalments");
                Vec::new()
            })
        }
        _ => {
            v.add(
                "instalments",
                "give either instalments, or count, frequency and first_due_date",
            );
            Vec::new()
        }
    };
    let sum: i64 = instalments.iter().map(|(_, a)| a).sum();
    if v.is_empty() && sum != total {
        v.add(
            "instalments",
            format!(
                "add up to {} but the covered invoices have {} open",
                money::format_amount(sum, currency),
                money::format_amount(total, currency)
            ),
        );
    }
    let grace = input.grace_days.unwrap_or(settings(c, org_id)?.plan_grace_days);
    if grace > 90 {
        v.add("grace_days", "must be between 0 and 90");
    }
    v.into_result(())?;
    let id = repo::insert(
        c,
        &NewPlan {
            org_id,
            customer_id: first.customer_id,
            currency: currency.code(),
            frequency: input.frequency.map(Frequency::as_str),
            grace_days: i32::try_from(grace).unwrap_or(5),
            created_on: today,
            created_by: actor,
            invoice_ids: &keys,
            instalments: &instalments,
        },
    )?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "plan.created",
            Kind::Plan.encode(id),
            Some(first.customer_id),
            serde_json::json!({"total_minor": total, "currency": currency.code(), "instalments": instalments.len()}),
        )],
    )?;
    repo::find(c, org_id, id)
}

pub fn cancel(c: &mut DbConnection, org_id: i64, id: i64, reason: &str) -> Result<PlanRow, AppError> {
    let plan = repo::find(c, org_id, id)?;
    if plan.status != "active" {
        return Err(AppError::Conflict(format!(
            "the plan is {} and cannot be cancelled",
            plan.status
        )));
    }
    repo::set_status(
        c,
        id,
        PlanStatus::Cancelled.as_str(),
        plan.paid_minor,
        None,
        Some(reason),
    )?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "plan.cancelled",
            Kind::Plan.encode(id),
            Some(plan.customer_id),
            serde_json::json!({"reason": reason}),
        )],
    )?;
    repo::find(c, org_id, id)
}

/// Evaluates active plans (of some customers, or all) as of a date and adds the counts to
/// `summary`.
pub fn evaluate(
    c: &mut DbConnection,
    org_id: i64,
    customers: Option<&[i64]>,
    as_of: NaiveDate,
    summary: &mut EvaluationSummary,
) -> Result<(), AppError> {
    let plans = repo::active(c, org_id, customers)?;
    summary.plans_evaluated += plans.len();
    if plans.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = plans.iter().map(|p| p.id).collect();
    let mut covered: HashMap<i64, Vec<i64>> = HashMap::new();
    for (plan, invoice) in repo::links(c, &ids)? {
        covered.entry(plan).or_default().push(invoice);
    }
    let mut instalments: HashMap<i64, Vec<crate::db::repo::plans::InstalmentRow>> = HashMap::new();
    for row in repo::instalments(c, &ids)? {
        instalments.entry(row.plan_id).or_default().push(row);
    }
    let invoice_ids: Vec<i64> = covered.values().flatten().copied().collect();
    let mut paid_to: HashMap<i64, Vec<(i64, NaiveDate)>> = HashMap::new();
    for (invoice, amount, received) in crate::db::repo::promises::payments_to_invoices(c, &invoice_ids)? {
        paid_to.entry(invoice).or_default().push((amount, received));
    }
    let mut new_events = Vec::new();
    let mut paid_instalments = Vec::new();
    for plan in &plans {
        let paid: i64 = covered
            .get(&plan.id)
            .into_iter()
            .flatten()
            .flat_map(|i| paid_to.get(i).into_iter().flatten())
            .filter(|(_, d)| *d >= plan.created_on)
            .map(|(a, _)| a)
            .sum();
        let rows = instalments.get(&plan.id).cloned().unwrap_or_default();
        let schedule: Vec<(NaiveDate, i64)> = rows.iter().map(|r| (r.due_date, r.amount_minor)).collect();
        let states = fill(&schedule, paid, as_of);
        for (row, state) in rows.iter().zip(&states) {
            if state.status == crate::domain::plan::InstalmentStatus::Paid {
                paid_instalments.push(row.id);
            }
            if row.paid_minor != state.paid || row.status != state.status.as_str() {
                repo::set_instalment(c, row.id, state.paid, state.status.as_str())?;
            }
        }
        let status = plan_status(&schedule, &states, u32::try_from(plan.grace_days).unwrap_or(0), as_of);
        if status == PlanStatus::Active {
            if paid != plan.paid_minor {
                repo::set_status(c, plan.id, "active", paid, None, None)?;
            }
            continue;
        }
        let subject = Kind::Plan.encode(plan.id);
        let defaulted_on = (status == PlanStatus::Defaulted).then_some(as_of);
        repo::set_status(c, plan.id, status.as_str(), paid, defaulted_on, None)?;
        if status == PlanStatus::Defaulted {
            summary.plans_defaulted += 1;
            tasks::record_fact(
                c,
                &NewRiskFact {
                    org_id,
                    customer_id: plan.customer_id,
                    kind: "plan_defaulted",
                    subject_id: &subject,
                    occurred_on: as_of,
                    amount_minor: Some(plan.total_minor - paid),
                    currency: Some(&plan.currency),
                },
            )?;
        } else {
            summary.plans_completed += 1;
        }
        new_events.push(NewEvent::new(
            org_id,
            &format!("plan.{}", status.as_str()),
            subject,
            Some(plan.customer_id),
            serde_json::json!({"total_minor": plan.total_minor, "paid_minor": paid, "currency": plan.currency}),
        ));
    }
    crate::service::instalment_reminders::cancel_paid_reminders(c, &paid_instalments)?;
    events::insert_many(c, &new_events)
}
