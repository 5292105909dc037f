//! Chasing payment-plan instalments (P19). Invoices in an active plan leave the dunning
//! ladder (`Exclusion::InPaymentPlan`); instead, each chunk of the collection run reminds
//! every instalment that is overdue and unpaid, once, within the plan's grace days: one
//! combined e-mail per customer listing its overdue instalments, naming what happens if the
//! plan defaults and the last day to pay before it does. Set-based: a fixed number of
//! queries per chunk of customers, whatever the number of plans or instalments.
//!
//! Each instalment remembers the day it was reminded, so a later run does not repeat it;
//! the run of a date is idempotent like the rest of the run. A payment that covers the
//! reminded instalments before the message goes out cancels it (`cancel_paid_reminders`).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::db::DbConnection;
use crate::db::repo::actions::{self as actions_repo, NewAction};
use crate::db::repo::customers::CustomerRow;
use crate::db::repo::plans::{self as repo, InstalmentRow, PlanRow};
use crate::domain::format;
use crate::domain::letter::{CompiledTemplates, LetterInstalment, Rendered};
use crate::domain::money::Currency;
use crate::domain::plan::{InstalmentFacts, default_consequence, fill, remind_instalment};
use crate::domain::strategy::{StepAction, Tone};
use crate::error::AppError;
use crate::service::collection_run::{RunSummary, letter_context, primary_contact};
use crate::service::strategies::StrategyBook;
use crate::service::users::Directory;

/// The step key, template key and summary name of the reminder.
pub const STEP_KEY: &str = "plan_instalment_reminder";

/// What the reminders need once per run.
pub struct ReminderSetup<'a> {
    pub organisation: &'a str,
    pub templates: &'a CompiledTemplates,
    pub directory: &'a Directory,
    pub strategies: &'a StrategyBook,
}

/// One instalment due for a reminder.
struct Due<'a> {
    plan: &'a PlanRow,
    row: &'a InstalmentRow,
    count: usize,
    paid: i64,
    /// What payments cover of the whole plan.
    plan_paid: i64,
    reply_by: NaiveDate,
}

/// Reminds the overdue instalments of the active plans of some customers (one chunk of a
/// run); counts actions and skips into `summary`. Nothing is written for a dry run.
#[allow(clippy::too_many_arguments)]
pub fn remind(
    c: &mut DbConnection,
    org_id: i64,
    run_id: i64,
    as_of: NaiveDate,
    dry_run: bool,
    setup: &ReminderSetup<'_>,
    customer_ids: &[i64],
    summary: &mut RunSummary,
) -> Result<(), AppError> {
    let plans = repo::active(c, org_id, Some(customer_ids))?;
    if plans.is_empty() {
        return Ok(());
    }
    let plan_ids: Vec<i64> = plans.iter().map(|p| p.id).collect();
    let mut covered: HashMap<i64, Vec<i64>> = HashMap::new();
    for (plan, invoice) in repo::links(c, &plan_ids)? {
        covered.entry(plan).or_default().push(invoice);
    }
    let mut schedules: HashMap<i64, Vec<InstalmentRow>> = HashMap::new();
    for row in repo::instalments(c, &plan_ids)? {
        schedules.entry(row.plan_id).or_default().push(row);
    }
    let invoice_ids: Vec<i64> = covered.values().flatten().copied().collect();
    let mut paid_to: HashMap<i64, Vec<(i64, NaiveDate)>> = HashMap::new();
    for (invoice, amount, received) in crate::db::repo::promises::payments_to_invoices(c, &invoice_ids)? {
        paid_to.entry(invoice).or_default().push((amount, received));
    }
    let customer_of: Vec<i64> = {
        let mut ids: Vec<i64> = plans.iter().map(|p| p.customer_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let customers: HashMap<i64, CustomerRow> = crate::db::repo::customers::find_many(c, org_id, &customer_of)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();

    let mut due_by_customer: BTreeMap<i64, Vec<Due<'_>>> = BTreeMap::new();
    for plan in &plans {
        let Some(customer) = customers.get(&plan.customer_id) else {
            continue;
        };
        let rows = schedules.get(&plan.id).map(Vec::as_slice).unwrap_or_default();
        // Payments to the covered invoices since the plan was agreed fill it in order.
        let paid_total: i64 = covered
            .get(&plan.id)
            .into_iter()
            .flatten()
            .flat_map(|i| paid_to.get(i).into_iter().flatten())
            .filter(|(_, d)| *d >= plan.created_on)
            .map(|(a, _)| a)
            .sum();
        let schedule: Vec<(NaiveDate, i64)> = rows.iter().map(|r| (r.due_date, r.amount_minor)).collect();
        let states = fill(&schedule, paid_total, as_of);
        for (row, state) in rows.iter().zip(&states) {
            let facts = InstalmentFacts {
                due_date: row.due_date,
                amount_minor: row.amount_minor,
                paid_minor: state.paid,
                grace_days: u32::try_from(plan.grace_days).unwrap_or(0),
                reminded_on: row.reminded_on,
                paused_until: customer.dunning_paused_until,
            };
            match remind_instalment(&facts, as_of) {
                Ok(reply_by) => due_by_customer.entry(plan.customer_id).or_default().push(Due {
                    plan,
                    row,
                    count: rows.len(),
                    paid: state.paid,
                    plan_paid: paid_total,
                    reply_by,
                }),
                Err(skip) => *summary.skipped.entry(skip.summary_key().to_string()).or_default() += 1,
            }
        }
    }
    if due_by_customer.is_empty() {
        return Ok(());
    }
    let numbers: HashMap<i64, String> = repo::invoice_numbers(c, &invoice_ids)?.into_iter().collect();
    let at = crate::db::now();
    let mut new_actions = Vec::new();
    for (customer_id, due) in &due_by_customer {
        let Some(customer) = customers.get(customer_id) else {
            continue;
        };
        new_actions.push(action(
            org_id, run_id, as_of, setup, customer, due, &covered, &numbers, at,
        ));
    }
    summary.actions_created += new_actions.len() as i64;
    *summary.actions_by_step.entry(STEP_KEY.to_string()).or_default() += new_actions.len() as i64;
    *summary
        .actions_by_channel
        .entry(StepAction::Email.as_str().to_string())
        .or_default() += new_actions.len() as i64;
    if dry_run {
        return Ok(());
    }
    let inserted = actions_repo::insert_actions(c, &new_actions)?;
    let action_of: HashMap<i64, i64> = inserted.iter().map(|a| (a.customer_id, a.id)).collect();
    let mut invoice_links = Vec::new();
    let mut instalment_links = Vec::new();
    let mut reminded = Vec::new();
    for (customer_id, due) in &due_by_customer {
        let Some(action_id) = action_of.get(customer_id).copied() else {
            continue;
        };
        let mut plans_seen = Vec::new();
        for d in due {
            instalment_links.push((action_id, d.row.id));
            reminded.push(d.row.id);
            if !plans_seen.contains(&d.plan.id) {
                plans_seen.push(d.plan.id);
                for invoice in covered.get(&d.plan.id).into_iter().flatten() {
                    invoice_links.push((action_id, *invoice, 0));
                }
            }
        }
    }
    actions_repo::insert_action_invoices(c, &invoice_links)?;
    repo::link_actions(c, &instalment_links)?;
    repo::mark_reminded(c, &reminded, as_of)
}

/// The combined reminder of one customer's overdue instalments.
#[allow(clippy::too_many_arguments)]
fn action(
    org_id: i64,
    run_id: i64,
    as_of: NaiveDate,
    setup: &ReminderSetup<'_>,
    customer: &CustomerRow,
    due: &[Due<'_>],
    covered: &HashMap<i64, Vec<i64>>,
    numbers: &HashMap<i64, String>,
    at: chrono::NaiveDateTime,
) -> NewAction {
    let lang = customer.language.as_str();
    let contact = primary_contact(customer);
    let mut ctx = letter_context(setup.organisation, customer, contact.as_ref(), &[], as_of, None);
    setup.directory.sign(&mut ctx, customer);
    let mut overdue: BTreeMap<String, i64> = BTreeMap::new();
    let mut balance: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen_plans = Vec::new();
    for d in due {
        *overdue.entry(d.plan.currency.clone()).or_default() += d.row.amount_minor - d.paid;
        if !seen_plans.contains(&d.plan.id) {
            seen_plans.push(d.plan.id);
            *balance.entry(d.plan.currency.clone()).or_default() += (d.plan.total_minor - d.plan_paid).max(0);
        }
    }
    let totals = |m: &BTreeMap<String, i64>| {
        let parts: Vec<String> = m
            .iter()
            .filter_map(|(code, minor)| Currency::parse(code).map(|c| format::money(*minor, c, lang)))
            .collect();
        format::join(&parts, lang)
    };
    ctx.instalments = due
        .iter()
        .filter_map(|d| {
            let cur = Currency::parse(&d.plan.currency)?;
            let invoices: Vec<String> = covered
                .get(&d.plan.id)
                .into_iter()
                .flatten()
                .filter_map(|i| numbers.get(i).cloned())
                .collect();
            Some(LetterInstalment {
                number: i64::from(d.row.seq),
                count: d.count as i64,
                due_date: format::date(d.row.due_date, lang),
                amount: format::money(d.row.amount_minor, cur, lang),
                outstanding: format::money(d.row.amount_minor - d.paid, cur, lang),
                days_overdue: (as_of - d.row.due_date).num_days().max(0),
                invoices: format::join(&invoices, lang),
            })
        })
        .collect();
    ctx.total_overdue = totals(&overdue);
    ctx.total_open = totals(&balance);
    ctx.days_overdue = ctx.instalments.iter().map(|i| i.days_overdue).max().unwrap_or(0);
    if let Some(first) = due.iter().map(|d| d.row.due_date).min() {
        ctx.due_date = format::date(first, lang);
    }
    let reply_by = due.iter().map(|d| d.reply_by).min().unwrap_or(as_of).max(as_of);
    ctx.reply_by = format::date(reply_by, lang);
    ctx.consequence = default_consequence(lang, &ctx.total_open);
    let template_lang = setup.templates.language_for(STEP_KEY, lang);
    let (subject, body_text, body_html) = Rendered::into_parts(setup.templates.render(STEP_KEY, template_lang, &ctx));
    let version = setup
        .strategies
        .for_customer(customer, 0, customer.risk_class.as_deref())
        .map(|(v, _)| v.id);
    NewAction {
        org_id,
        run_id: Some(run_id),
        customer_id: customer.id,
        strategy_version_id: version,
        step_level: 0,
        step_key: STEP_KEY.to_string(),
        action: StepAction::Email.as_str().to_string(),
        tone: Tone::Firm.as_str().to_string(),
        status: "queued".to_string(),
        assignee: customer.collector.clone(),
        requires_approval: false,
        scheduled_on: as_of,
        language: customer.language.clone(),
        recipient: contact.and_then(|c| c.email),
        subject,
        body_text,
        body_html,
        created_at: at,
        updated_at: at,
    }
}

/// Cancels reminders not yet delivered whose instalments are all paid now (P2: nobody is
/// chased for money that has arrived). Called when plan evaluation sees instalments paid.
pub fn cancel_paid_reminders(c: &mut DbConnection, paid_instalments: &[i64]) -> Result<(), AppError> {
    if paid_instalments.is_empty() {
        return Ok(());
    }
    let links = repo::pending_reminders(c, paid_instalments)?;
    let mut chased: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (action, instalment) in links {
        chased.entry(action).or_default().push(instalment);
    }
    for (action, instalments) in chased {
        if instalments.iter().all(|i| paid_instalments.contains(i)) {
            actions_repo::set_action_status(c, action, "cancelled", None, Some("instalment paid before delivery"))?;
        }
    }
    Ok(())
}
