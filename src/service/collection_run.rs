//! The collection run (P3, P16, P17): for one date, every customer with open invoices is
//! examined in chunks; each open invoice passes the pre-contact checks and gets the step it
//! is due for; each customer gets one combined action per step of the highest level reached
//! (listing all its invoices due for a step), rendered in the customer's language for its
//! primary collections contact. Undelivered invoices are re-sent first. Set-based: a few
//! queries per chunk of customers, never one per invoice.
//!
//! Idempotent (a completed run of the same date is returned, invoices remember their level),
//! guarded by a lease (one running run per organisation, across instances), and refused for
//! a date earlier than the last completed run.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::repo::actions::{self as repo, NewAction, RunRow};
use crate::db::repo::customers::CustomerRow;
use crate::db::{DbConnection, now, write_transaction};
use crate::domain::customer::Contact;
use crate::domain::format;
use crate::domain::letter::{CompiledTemplates, LetterContext, LetterInvoice, Rendered};
use crate::domain::money::Currency;
use crate::domain::strategy::{
    Decision, InvoiceState, SkipReason, Step, StepAction, StrategyDocument, consequence, decide,
};
use crate::error::AppError;
use crate::service::collectable::{CollectableItem, collectable_for_first_customers};
use crate::service::strategies::{StrategyBook, template_index};

/// Customers examined per transaction.
/// Open invoices one chunk (one transaction) aims to hold. The next chunk's number of
/// customers follows from the last chunk's invoices per customer, so memory stays bounded
/// on a Pareto book whose first customers hold thousands of invoices each (a fixed 500
/// customers put 100 000+ invoices, their letters and their bound copies in one chunk:
/// 200 MB peak RSS at 1M invoices).
const CHUNK_INVOICES: usize = 5_000;
const FIRST_CHUNK: usize = 10;
const MAX_CHUNK: usize = 2_000;

/// Customers in the next chunk, from what the last chunk held: as many as make
/// `CHUNK_INVOICES` at the same density, growing at most fourfold per chunk (a run of
/// customers without open invoices says little about the next ones).
fn next_chunk_size(customers: usize, invoices: usize) -> usize {
    let cap = customers.saturating_mul(4).clamp(1, MAX_CHUNK);
    if invoices == 0 {
        return cap;
    }
    (customers.saturating_mul(CHUNK_INVOICES) / invoices).clamp(1, cap)
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customers_examined": 1840, "invoices_examined": 6215, "actions_created": 312,
    "actions_by_step": {"pre_due_reminder": 140, "first_reminder": 96, "first_call": 41, "firm_letter": 35},
    "actions_by_channel": {"email": 236, "call": 41, "letter": 35},
    "skipped": {
        "not_yet_due": 4980, "already_done": 610, "promised": 58, "disputed": 22, "in_payment_plan": 17,
        "customer_paused": 9, "below_minimum": 11
    },
    "invoices_resent": 6, "duration_ms": 2140
}))]
pub struct RunSummary {
    pub customers_examined: i64,
    pub invoices_examined: i64,
    pub actions_created: i64,
    /// Actions per step key.
    pub actions_by_step: BTreeMap<String, i64>,
    /// Actions per channel (`email`, `letter`, `call`, …).
    pub actions_by_channel: BTreeMap<String, i64>,
    /// Invoices skipped per reason.
    pub skipped: BTreeMap<String, i64>,
    /// Invoices re-sent because delivery was not confirmed.
    pub invoices_resent: i64,
    pub duration_ms: u64,
}

impl RunSummary {
    /// Adds another summary's counts (a chunk's) to this one.
    pub fn add(&mut self, other: RunSummary) {
        self.customers_examined += other.customers_examined;
        self.invoices_examined += other.invoices_examined;
        self.actions_created += other.actions_created;
        for (to, from) in [
            (&mut self.actions_by_step, other.actions_by_step),
            (&mut self.actions_by_channel, other.actions_by_channel),
            (&mut self.skipped, other.skipped),
        ] {
            for (key, count) in from {
                *to.entry(key).or_default() += count;
            }
        }
        self.invoices_resent += other.invoices_resent;
        self.duration_ms += other.duration_ms;
    }
}

/// Runs (or returns the completed run of) a date.
pub fn run(
    c: &mut DbConnection,
    org_id: i64,
    as_of: NaiveDate,
    dry_run: bool,
    actor: &str,
) -> Result<RunRow, AppError> {
    if !dry_run {
        if let Some(done) = repo::completed_run_on(c, org_id, as_of)? {
            return Ok(done);
        }
        if let Some(last) = repo::last_completed_date(c, org_id)?
            && last > as_of
        {
            return Err(AppError::Conflict(format!(
                "a collection run for {last} is already completed; runs cannot go back in time"
            )));
        }
    }
    repo::expire_stale(c, org_id)?;
    let run_id = repo::start_run(c, org_id, as_of, dry_run, actor)?;
    let started = Instant::now();
    match execute(c, org_id, run_id, as_of, dry_run) {
        Ok(mut summary) => {
            summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let text = serde_json::to_string(&summary).unwrap_or_default();
            repo::finish_run(
                c,
                run_id,
                "completed",
                summary.customers_examined,
                summary.invoices_examined,
                summary.actions_created,
                &text,
            )?;
        }
        Err(e) => {
            repo::finish_run(
                c,
                run_id,
                "failed",
                0,
                0,
                0,
                &serde_json::json!({"error": e.to_string()}).to_string(),
            )?;
            return Err(e);
        }
    }
    repo::find_run(c, org_id, run_id)
}

/// What the run needs once: strategies, templates (compiled once for the whole run), the
/// organisation's name.
struct Setup {
    strategies: StrategyBook,
    templates: CompiledTemplates,
    organisation: String,
    /// Who letters name as the collector (`/v1/users`, else the collections desk).
    directory: crate::service::users::Directory,
}

fn execute(
    c: &mut DbConnection,
    org_id: i64,
    run_id: i64,
    as_of: NaiveDate,
    dry_run: bool,
) -> Result<RunSummary, AppError> {
    // Strategy assignment reads risk classes and credit flags: recompute what is queued.
    crate::service::credit_queue::settle_org(c, org_id)?;
    let setup = Setup {
        strategies: StrategyBook::load(c, org_id)?,
        templates: CompiledTemplates::new(&template_index(c, org_id)?),
        organisation: crate::db::repo::organizations::find(c, org_id)?.name,
        directory: crate::service::users::Directory::load(c, org_id)?,
    };
    let reminders = crate::service::instalment_reminders::ReminderSetup {
        organisation: &setup.organisation,
        templates: &setup.templates,
        directory: &setup.directory,
        strategies: &setup.strategies,
    };
    let mut summary = RunSummary::default();
    let mut after = 0;
    let mut chunk = FIRST_CHUNK;
    loop {
        // Pages of the organisation's customers by primary key; those without open
        // invoices yield no items. (Paging by `SELECT DISTINCT customer_id FROM invoices`
        // read every invoice's heap page twice per run: 5.4 s of 41 s at 1M invoices.)
        let customers = crate::db::repo::customers::ids_page(c, org_id, after, i64::try_from(chunk).unwrap_or(1))?;
        if customers.is_empty() {
            break;
        }
        // Each chunk counts into its own summary, added to the run's once committed: a
        // chunk that PostgreSQL aborts (a deadlock) runs again from an empty one.
        let (covered, part) = write_transaction(c, |c| {
            let mut part = RunSummary::default();
            let covered = run_chunk(c, org_id, run_id, as_of, dry_run, &setup, &customers, &mut part)?;
            // Invoices in an active plan are skipped above; their overdue instalments are
            // chased here.
            crate::service::instalment_reminders::remind(
                c,
                org_id,
                run_id,
                as_of,
                dry_run,
                &reminders,
                &customers[..covered],
                &mut part,
            )?;
            Ok::<_, AppError>((covered, part))
        })?;
        let examined = usize::try_from(part.invoices_examined).unwrap_or(0);
        summary.add(part);
        let Some(&last) = customers[..covered].last() else {
            break;
        };
        after = last;
        tracing::debug!(
            customers = covered,
            invoices = examined,
            last_customer = last,
            "collection run chunk"
        );
        chunk = next_chunk_size(covered, examined);
    }
    Ok(summary)
}

/// One customer's planned work in this run.
struct Plan<'a> {
    customer: &'a CustomerRow,
    version_id: Option<i64>,
    doc: Option<&'a StrategyDocument>,
    level: usize,
    acting: Vec<(&'a CollectableItem, usize)>,
    resend: Vec<&'a CollectableItem>,
}

#[allow(clippy::too_many_arguments)]
fn run_chunk(
    c: &mut DbConnection,
    org_id: i64,
    run_id: i64,
    as_of: NaiveDate,
    dry_run: bool,
    setup: &Setup,
    customer_ids: &[i64],
    summary: &mut RunSummary,
) -> Result<usize, AppError> {
    // Reading stops once a chunk holds `CHUNK_INVOICES`; the customers not reached are the
    // next chunk's.
    let (items, covered) = collectable_for_first_customers(c, org_id, as_of, customer_ids, CHUNK_INVOICES)?;
    let customer_ids = &customer_ids[..covered];
    let customers: HashMap<i64, CustomerRow> = crate::db::repo::customers::find_many(c, org_id, customer_ids)?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let mut by_customer: BTreeMap<i64, Vec<&CollectableItem>> = BTreeMap::new();
    for item in &items {
        by_customer.entry(item.invoice.customer_id).or_default().push(item);
    }
    summary.customers_examined += by_customer.len() as i64;
    summary.invoices_examined += items.len() as i64;
    let mut plans = Vec::new();
    for (customer_id, list) in &by_customer {
        let Some(customer) = customers.get(customer_id) else {
            continue;
        };
        let overdue: i64 = list
            .iter()
            .filter(|i| i.days_past_due > 0)
            .map(|i| i.collectable_minor)
            .sum();
        let chosen = setup
            .strategies
            .for_customer(customer, overdue, customer.risk_class.as_deref());
        let mut plan = Plan {
            customer,
            version_id: chosen.map(|(v, _)| v.id),
            doc: chosen.map(|(_, d)| d),
            level: 0,
            acting: Vec::new(),
            resend: Vec::new(),
        };
        let Some(doc) = plan.doc else { continue };
        for item in list {
            let state = InvoiceState {
                days_past_due: item.days_past_due,
                level_done: usize::try_from(item.dunning.level).unwrap_or(0),
                collectable_minor: item.collectable_minor,
                delivered: item.invoice.delivered_on.is_some() || item.dunning.clock_start.is_some(),
                exclusion: item.exclusion,
            };
            let currency = Currency::parse(&item.invoice.currency);
            let min_of = |level: usize| {
                doc.steps_of_level(level)
                    .iter()
                    .filter_map(|s| s.min_amount.as_ref())
                    .filter_map(|m| currency.and_then(|cur| crate::domain::money::parse_amount(m, cur).ok()))
                    .max()
            };
            match decide(doc, &state, min_of) {
                Decision::Act(level) => {
                    plan.level = plan.level.max(level);
                    plan.acting.push((item, level));
                }
                Decision::Resend => plan.resend.push(item),
                Decision::Skip(reason) => *summary.skipped.entry(skip_name(reason)).or_default() += 1,
            }
        }
        if !plan.acting.is_empty() || !plan.resend.is_empty() {
            plans.push(plan);
        }
    }
    let mut new_actions: Vec<NewAction> = Vec::new();
    let mut links: Vec<(usize, Vec<(i64, i32)>)> = Vec::new();
    let at = now();
    for plan in &plans {
        let Some(doc) = plan.doc else { continue };
        let contact = primary_contact(plan.customer);
        if !plan.resend.is_empty() {
            let step = Step {
                key: "resend_invoice".into(),
                offset_days: 0,
                action: StepAction::Email,
                tone: crate::domain::strategy::Tone::Friendly,
                template: None,
                min_amount: None,
                assignee_role: Some("collector".into()),
                requires_approval: false,
            };
            let invoices: Vec<&CollectableItem> = plan.resend.clone();
            new_actions.push(action_for(
                org_id,
                run_id,
                as_of,
                setup,
                plan,
                &step,
                0,
                &invoices,
                contact.clone(),
                None,
                at,
            ));
            links.push((
                new_actions.len() - 1,
                invoices.iter().map(|i| (i.invoice.id, 0)).collect(),
            ));
            summary.invoices_resent += plan.resend.len() as i64;
        }
        if plan.level == 0 {
            continue;
        }
        let next = doc.steps_of_level(plan.level + 1).first().map(|s| s.action);
        let invoices: Vec<&CollectableItem> = plan.acting.iter().map(|(i, _)| *i).collect();
        for step in doc.steps_of_level(plan.level) {
            new_actions.push(action_for(
                org_id,
                run_id,
                as_of,
                setup,
                plan,
                step,
                plan.level,
                &invoices,
                contact.clone(),
                next,
                at,
            ));
            links.push((
                new_actions.len() - 1,
                plan.acting
                    .iter()
                    .map(|(i, l)| (i.invoice.id, i32::try_from(*l).unwrap_or(0)))
                    .collect(),
            ));
        }
    }
    for a in &new_actions {
        summary.actions_created += 1;
        *summary.actions_by_step.entry(a.step_key.clone()).or_default() += 1;
        *summary.actions_by_channel.entry(a.action.clone()).or_default() += 1;
    }
    if dry_run || new_actions.is_empty() {
        return Ok(covered);
    }
    // The invoices are updated before the action links are inserted: the links' foreign-key
    // checks then lock row versions this transaction already wrote.
    let mut by_level: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for plan in &plans {
        for (item, level) in &plan.acting {
            by_level.entry(*level).or_default().push(item.invoice.id);
        }
    }
    for (level, ids) in by_level {
        repo::set_dunning_level(c, &ids, i32::try_from(level).unwrap_or(0), as_of)?;
    }
    let resent: Vec<i64> = plans
        .iter()
        .flat_map(|p| p.resend.iter().map(|i| i.invoice.id))
        .collect();
    repo::restart_clock(c, &resent, as_of)?;
    let inserted = repo::insert_actions(c, &new_actions)?;
    let mut rows = Vec::new();
    for (index, invoices) in &links {
        if let Some(action) = inserted.get(*index) {
            rows.extend(invoices.iter().map(|(inv, level)| (action.id, *inv, *level)));
        }
    }
    repo::insert_action_invoices(c, &rows)?;
    // Credit holds and escalation steps that need no approval open their escalations now
    // (the others when a manager approves the action).
    crate::service::escalations::open_from_actions(c, org_id, &inserted, as_of, "collection-run")?;
    Ok(covered)
}

fn skip_name(reason: SkipReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The contact reminders go to: the one marked primary for collections, else the first.
pub fn primary_contact(customer: &CustomerRow) -> Option<Contact> {
    let contacts = customer.contacts();
    contacts
        .iter()
        .find(|c| c.is_primary_for_collections)
        .cloned()
        .or_else(|| contacts.first().cloned())
}

/// The letter variables for a customer and the invoices an action covers.
pub fn letter_context(
    organisation: &str,
    customer: &CustomerRow,
    contact: Option<&Contact>,
    invoices: &[&CollectableItem],
    as_of: NaiveDate,
    next: Option<StepAction>,
) -> LetterContext {
    let lang = customer.language.as_str();
    let mut overdue: BTreeMap<&str, i64> = BTreeMap::new();
    let mut open: BTreeMap<&str, i64> = BTreeMap::new();
    let mut lines = Vec::with_capacity(invoices.len());
    for item in invoices {
        let i = &item.invoice;
        let Some(cur) = Currency::parse(&i.currency) else {
            continue;
        };
        *open.entry(cur.code()).or_default() += item.collectable_minor;
        if item.days_past_due > 0 {
            *overdue.entry(cur.code()).or_default() += item.collectable_minor;
        }
        lines.push(LetterInvoice {
            number: i.number.clone(),
            issue_date: format::date(i.issue_date, lang),
            due_date: format::date(i.due_date, lang),
            amount: format::money(i.amount_minor, cur, lang),
            open_amount: format::money(item.collectable_minor, cur, lang),
            days_overdue: item.days_past_due.max(0),
        });
    }
    let totals = |m: &BTreeMap<&str, i64>| {
        let parts: Vec<String> = m
            .iter()
            .filter_map(|(code, minor)| Currency::parse(code).map(|c| format::money(*minor, c, lang)))
            .collect();
        format::join(&parts, lang)
    };
    let earliest = invoices.iter().map(|i| i.invoice.due_date).min().unwrap_or(as_of);
    let last_reminder = invoices.iter().filter_map(|i| i.dunning.last_dunned_on).max();
    LetterContext {
        customer_name: customer.legal_name.clone().unwrap_or_else(|| customer.name.clone()),
        contact_name: contact.map(|c| c.name.clone()),
        organisation_name: organisation.to_string(),
        collector_name: customer.collector.clone(),
        collector_email: None,
        collector_phone: None,
        invoices: lines,
        total_overdue: totals(&overdue),
        total_open: totals(&open),
        days_overdue: invoices.iter().map(|i| i.days_past_due).max().unwrap_or(0).max(0),
        due_date: format::date(earliest, lang),
        last_reminder_date: last_reminder.map(|d| format::date(d, lang)),
        consequence: consequence(next, lang),
        reply_by: format::date(as_of + chrono::Days::new(7), lang),
        instalments: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn action_for(
    org_id: i64,
    run_id: i64,
    as_of: NaiveDate,
    setup: &Setup,
    plan: &Plan<'_>,
    step: &Step,
    level: usize,
    invoices: &[&CollectableItem],
    contact: Option<Contact>,
    next: Option<StepAction>,
    at: chrono::NaiveDateTime,
) -> NewAction {
    let customer = plan.customer;
    let lang = customer.language.clone();
    let key = step.template_key();
    let template_lang = setup.templates.language_for(key, &lang);
    let rendered = setup
        .templates
        .contains(key, template_lang)
        .then(|| {
            let mut ctx = letter_context(&setup.organisation, customer, contact.as_ref(), invoices, as_of, next);
            setup.directory.sign(&mut ctx, customer);
            setup.templates.render(key, template_lang, &ctx)
        })
        .flatten();
    let status = if step.requires_approval {
        "awaiting_approval"
    } else {
        match step.action {
            StepAction::Email | StepAction::Letter | StepAction::Sms => "queued",
            StepAction::CreditHold => "done",
            _ => "planned",
        }
    };
    let assignee = match step.assignee_role.as_deref() {
        Some("sales") => customer.sales_rep.clone().or_else(|| customer.collector.clone()),
        Some("manager") | Some("admin") => None,
        _ => customer.collector.clone(),
    };
    let recipient = contact.as_ref().and_then(|c| match step.action {
        StepAction::Email => c.email.clone(),
        StepAction::Call | StepAction::Sms => c.phone.clone(),
        _ => Some(c.name.clone()),
    });
    let (subject, body_text, body_html) = Rendered::into_parts(rendered);
    NewAction {
        org_id,
        run_id: Some(run_id),
        customer_id: customer.id,
        strategy_version_id: plan.version_id,
        step_level: i32::try_from(level).unwrap_or(0),
        step_key: step.key.clone(),
        action: step.action.as_str().to_string(),
        tone: step.tone.as_str().to_string(),
        status: status.to_string(),
        assignee,
        requires_approval: step.requires_approval,
        scheduled_on: as_of,
        language: lang,
        recipient,
        subject,
        body_text,
        body_html,
        created_at: at,
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_invoices_per_customer_of_the_last_one() {
        // 100 customers holding 50 000 invoices (the head of a Pareto book): 10 next.
        assert_eq!(next_chunk_size(100, 50_000), 10);
        // Ten invoices each: 500 customers make the target.
        assert_eq!(next_chunk_size(200, 2_000), 500);
        // One customer with more invoices than the target still moves forward.
        assert_eq!(next_chunk_size(1, 20_000), 1);
        // Growth is at most fourfold per chunk, even over customers without invoices.
        assert_eq!(next_chunk_size(100, 1_000), 400);
        assert_eq!(next_chunk_size(10, 0), 40);
        // And never beyond the cap.
        assert_eq!(next_chunk_size(2_000, 100), MAX_CHUNK);
        assert_eq!(next_chunk_size(1_000, 0), MAX_CHUNK);
    }

    #[test]
    fn chunk_summaries_add_up_key_by_key() {
        let chunk = |step: &str, skip: &str, n: i64| RunSummary {
            customers_examined: n,
            invoices_examined: 10 * n,
            actions_created: n,
            actions_by_step: BTreeMap::from([(step.to_string(), n)]),
            actions_by_channel: BTreeMap::from([("email".to_string(), n)]),
            skipped: BTreeMap::from([(skip.to_string(), 1)]),
            invoices_resent: 1,
            duration_ms: 0,
        };
        let mut run = RunSummary::default();
        run.add(chunk("reminder", "promised", 2));
        run.add(chunk("call", "promised", 3));
        assert_eq!(run.customers_examined, 5);
        assert_eq!(run.invoices_examined, 50);
        assert_eq!(run.actions_created, 5);
        assert_eq!(
            run.actions_by_step,
            BTreeMap::from([("call".to_string(), 3), ("reminder".to_string(), 2)])
        );
        assert_eq!(run.actions_by_channel, BTreeMap::from([("email".to_string(), 5)]));
        assert_eq!(run.skipped, BTreeMap::from([("promised".to_string(), 2)]));
        assert_eq!(run.invoices_resent, 2);
    }
}
