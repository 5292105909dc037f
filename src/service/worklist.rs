//! The collector's worklist (P4, P6, P12) and the contact log (P18): what to do now, in
//! order of money at stake, with each item's context and script; and logging a contact
//! with the effects its outcome has (promise, dispute, re-send, find the payment).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::actions::{self as actions_repo, ActionRow, ActivityRow, NewActivity};
use crate::db::repo::tasks::{self, NewTask, TaskRow};
use crate::db::schema::{actions, invoices, tasks as tasks_table};
use crate::domain::ids::Kind;
use crate::domain::money::format_stored;
use crate::domain::user::CollectorContact;
use crate::domain::worklist::{pareto_top, priority, window_state};
use crate::error::{AppError, Violations};
use crate::service::disputes::DisputeInput;
use crate::service::promises::PromiseInput;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "cnt_1", "channel": "phone", "direction": "outbound", "outcome": "promise_made",
    "notes": "Will pay on Friday", "created_by": "marta", "created_at": "2026-11-23T10:00:00Z"
}))]
pub struct ContactSummary {
    pub id: String,
    pub channel: String,
    pub direction: String,
    pub outcome: String,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What a collector needs before acting (P12).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_name": "Ferreteria Puig", "overdue": {"EUR": "3560.00"}, "open_invoices": ["inv_1", "inv_2", "inv_3"],
    "last_contacts": [
        {
            "id": "cnt_1", "channel": "phone", "direction": "outbound", "outcome": "promise_made",
            "notes": "Will pay on Friday", "created_by": "marta", "created_at": "2026-11-23T10:00:00Z"
        }
    ],
    "open_promises": [], "open_disputes": ["dsp_1"],
    "script": "Trucada a Ferreteria Puig: factures 2026/0031 i 2026/0042 vençudes, 3.560,00 € en total. Demaneu una data de pagament.",
    "collector": {"subject": "laura.marti", "name": "Laura Martí", "email": "laura.marti@example.com",
                  "phone": "+34 933 000 222", "source": "directory"}
}))]
pub struct WorkContext {
    pub customer_name: String,
    /// Overdue collectable amount per currency.
    pub overdue: HashMap<String, String>,
    pub open_invoices: Vec<String>,
    pub last_contacts: Vec<ContactSummary>,
    pub open_promises: Vec<String>,
    pub open_disputes: Vec<String>,
    /// The step's script or message, in the customer's language.
    pub script: Option<String>,
    /// The account's collector, from the user directory (`/v1/users`).
    pub collector: CollectorContact,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "kind": "action", "id": "act_7", "customer_id": "cus_1", "what": "call",
    "title": "Call Ferreteria Puig about 2 overdue invoices", "priority": 10071, "in_top_80_percent": true,
    "days_overdue": 71, "due_on": "2026-11-23", "next_window_start": null,
    "context": {
        "customer_name": "Ferreteria Puig", "overdue": {"EUR": "3560.00"},
        "open_invoices": ["inv_1", "inv_2", "inv_3"],
        "last_contacts": [
            {
                "id": "cnt_1", "channel": "phone", "direction": "outbound", "outcome": "promise_made",
                "notes": "Will pay on Friday", "created_by": "marta", "created_at": "2026-11-23T10:00:00Z"
            }
        ],
        "open_promises": [], "open_disputes": ["dsp_1"],
        "script": "Trucada a Ferreteria Puig: factures 2026/0031 i 2026/0042 vençudes, 3.560,00 € en total. Demaneu una data de pagament."
    }
}))]
pub struct WorkItem {
    /// `task` or `action`.
    pub kind: String,
    pub id: String,
    pub customer_id: String,
    /// Task kind or action (`call`, `sales_escalation`, `promise_follow_up`, …).
    pub what: String,
    pub title: String,
    pub priority: i64,
    pub in_top_80_percent: bool,
    pub days_overdue: i64,
    pub due_on: NaiveDate,
    /// For calls outside the contact's calling window: when it next opens.
    pub next_window_start: Option<DateTime<Utc>>,
    pub context: WorkContext,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "collector": "marta", "at": "2026-11-23T08:30:00Z",
    "items": [
        {
            "kind": "action", "id": "act_7", "customer_id": "cus_1", "what": "call",
            "title": "Call Ferreteria Puig about 2 overdue invoices", "priority": 10071, "in_top_80_percent": true,
            "days_overdue": 71, "due_on": "2026-11-23", "next_window_start": null,
            "context": {
                "customer_name": "Ferreteria Puig", "overdue": {"EUR": "3560.00"},
                "open_invoices": ["inv_1", "inv_2", "inv_3"],
                "last_contacts": [
                    {
                        "id": "cnt_1", "channel": "phone", "direction": "outbound", "outcome": "promise_made",
                        "notes": "Will pay on Friday", "created_by": "marta", "created_at": "2026-11-23T10:00:00Z"
                    }
                ],
                "open_promises": [], "open_disputes": ["dsp_1"],
                "script": "Trucada a Ferreteria Puig: factures 2026/0031 i 2026/0042 vençudes, 3.560,00 € en total. Demaneu una data de pagament."
            }
        }
    ],
    "later": [
        {
            "kind": "action", "id": "act_8", "customer_id": "cus_5", "what": "call",
            "title": "Call Suministros Vila about 1 overdue invoice", "priority": 16, "in_top_80_percent": false,
            "days_overdue": 16, "due_on": "2026-11-23", "next_window_start": "2026-11-23T15:00:00Z",
            "context": {
                "customer_name": "Suministros Vila", "overdue": {"EUR": "860.00"}, "open_invoices": ["inv_31"],
                "last_contacts": [], "open_promises": [], "open_disputes": [], "script": null
            }
        }
    ]
}))]
pub struct Worklist {
    pub collector: Option<String>,
    pub at: DateTime<Utc>,
    /// What to do now, highest priority first.
    pub items: Vec<WorkItem>,
    /// Calls whose contact cannot be called now, with the next window.
    pub later: Vec<WorkItem>,
}

/// Builds the worklist of a collector (or everyone's, for `None`) at an instant.
pub fn worklist(
    c: &mut DbConnection,
    org_id: i64,
    collector: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Worklist, AppError> {
    let today = at.date_naive();
    let mut task_query = tasks_table::table
        .filter(tasks_table::org_id.eq(org_id))
        .filter(tasks_table::status.eq("open"))
        .select(TaskRow::as_select())
        .into_boxed();
    let mut action_query = actions::table
        .filter(actions::org_id.eq(org_id))
        .filter(actions::status.eq("planned"))
        .select(ActionRow::as_select())
        .into_boxed();
    if let Some(who) = collector {
        task_query = task_query.filter(tasks_table::assignee.eq(who.to_string()));
        action_query = action_query.filter(actions::assignee.eq(who.to_string()));
    }
    let open_tasks: Vec<TaskRow> = task_query.limit(500).load(c)?;
    let open_actions: Vec<ActionRow> = action_query.limit(500).load(c)?;
    let customer_ids: Vec<i64> = open_tasks
        .iter()
        .map(|t| t.customer_id)
        .chain(open_actions.iter().map(|a| a.customer_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // P6: the Pareto split is over the whole organisation's overdue money.
    // Summed here rather than in SQL: SUM over BIGINT is NUMERIC, which SQLite carries as
    // a float.
    let mut sums: HashMap<(i64, String), i64> = HashMap::new();
    for (customer, currency, open, disputed) in invoices::table
        .filter(invoices::org_id.eq(org_id))
        .filter(invoices::open_minor.gt(0))
        .filter(invoices::kind.ne("credit_note"))
        .filter(invoices::due_date.lt(today))
        .select((
            invoices::customer_id,
            invoices::currency,
            invoices::open_minor,
            invoices::disputed_minor,
        ))
        .load::<(i64, String, i64, i64)>(c)?
    {
        *sums.entry((customer, currency)).or_default() += (open - disputed).max(0);
    }
    let balances: Vec<(i64, String, i64)> = sums.into_iter().map(|((cu, cur), m)| (cu, cur, m)).collect();
    let top = pareto_top(&balances);
    let customers: HashMap<i64, crate::db::repo::customers::CustomerRow> =
        crate::db::repo::customers::find_many(c, org_id, &customer_ids)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    let mut subjects: Vec<String> = customers.values().filter_map(|r| r.collector.clone()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let directory = crate::service::users::Directory::load_subjects(c, org_id, &subjects)?;
    let mut contexts: HashMap<i64, (WorkContext, i64)> = HashMap::new();
    for id in &customer_ids {
        let (mut ctx, dpd) = context(c, org_id, *id, customers.get(id), today)?;
        ctx.collector = directory.contact(customers.get(id).and_then(|r| r.collector.as_deref()));
        contexts.insert(*id, (ctx, dpd));
    }
    let mut items = Vec::new();
    let mut later = Vec::new();
    for t in &open_tasks {
        let Some((ctx, dpd)) = contexts.get(&t.customer_id) else {
            continue;
        };
        let broken = t.kind == "promise_follow_up";
        items.push(WorkItem {
            kind: "task".into(),
            id: Kind::Task.encode(t.id),
            customer_id: Kind::Customer.encode(t.customer_id),
            what: t.kind.clone(),
            title: t.title.clone(),
            priority: priority(top.contains(&t.customer_id), broken, *dpd, t.priority == "high"),
            in_top_80_percent: top.contains(&t.customer_id),
            days_overdue: *dpd,
            due_on: t.due_on,
            next_window_start: None,
            context: ctx.clone(),
        });
    }
    for a in &open_actions {
        let Some((ctx, dpd)) = contexts.get(&a.customer_id) else {
            continue;
        };
        let mut ctx = ctx.clone();
        ctx.script = a.body_text.clone();
        let item = WorkItem {
            kind: "action".into(),
            id: Kind::Action.encode(a.id),
            customer_id: Kind::Customer.encode(a.customer_id),
            what: a.action.clone(),
            title: a.subject.clone().unwrap_or_else(|| a.step_key.clone()),
            priority: priority(top.contains(&a.customer_id), false, *dpd, false),
            in_top_80_percent: top.contains(&a.customer_id),
            days_overdue: *dpd,
            due_on: a.scheduled_on,
            next_window_start: None,
            context: ctx,
        };
        let window = customers
            .get(&a.customer_id)
            .and_then(crate::service::collection_run::primary_contact)
            .and_then(|contact| contact.calling_window);
        match (a.action.as_str(), window) {
            ("call", Some(w)) => match window_state(&w, at) {
                (true, _) => items.push(item),
                (false, next) => later.push(WorkItem {
                    next_window_start: next,
                    ..item
                }),
            },
            _ => items.push(item),
        }
    }
    items.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.due_on.cmp(&b.due_on))
            .then(a.id.cmp(&b.id))
    });
    later.sort_by_key(|item| item.next_window_start);
    Ok(Worklist {
        collector: collector.map(str::to_string),
        at,
        items,
        later,
    })
}

fn context(
    c: &mut DbConnection,
    org_id: i64,
    customer_id: i64,
    customer: Option<&crate::db::repo::customers::CustomerRow>,
    today: NaiveDate,
) -> Result<(WorkContext, i64), AppError> {
    let open = crate::db::repo::invoices::open_items_of_customer(c, org_id, customer_id)?;
    let mut overdue: HashMap<String, i64> = HashMap::new();
    let mut max_dpd = 0;
    for i in open.iter().filter(|i| i.kind != "credit_note" && i.due_date < today) {
        *overdue.entry(i.currency.clone()).or_default() += (i.open_minor - i.disputed_minor).max(0);
        max_dpd = max_dpd.max((today - i.due_date).num_days());
    }
    let contacts = actions_repo::recent_activities(c, customer_id, 5)?;
    let promises = crate::db::repo::promises::open_promises(c, org_id, Some(&[customer_id]))?;
    let disputes = crate::db::repo::disputes::list(
        c,
        org_id,
        &crate::db::repo::disputes::DisputeFilter {
            customer_id: Some(customer_id),
            ..Default::default()
        },
        0,
        100,
    )?;
    Ok((
        WorkContext {
            customer_name: customer.map(|c| c.name.clone()).unwrap_or_default(),
            overdue: overdue
                .iter()
                .map(|(cur, m)| (cur.clone(), format_stored(*m, cur)))
                .collect(),
            open_invoices: open.iter().take(50).map(|i| Kind::Invoice.encode(i.id)).collect(),
            last_contacts: contacts.iter().map(contact_summary).collect(),
            open_promises: promises.iter().map(|p| Kind::Promise.encode(p.id)).collect(),
            open_disputes: disputes
                .iter()
                .filter(|d| matches!(d.status.as_str(), "open" | "under_review"))
                .map(|d| Kind::Dispute.encode(d.id))
                .collect(),
            script: None,
            collector: CollectorContact::default(),
        },
        max_dpd,
    ))
}

pub fn contact_summary(a: &ActivityRow) -> ContactSummary {
    ContactSummary {
        id: Kind::Activity.encode(a.id),
        channel: a.channel.clone(),
        direction: a.direction.clone(),
        outcome: a.outcome.clone(),
        notes: a.notes.clone(),
        created_by: a.created_by.clone(),
        created_at: crate::http::utc(a.created_at),
    }
}

pub const OUTCOMES: [&str; 10] = [
    "reached",
    "no_answer",
    "left_message",
    "wrong_contact",
    "promise_made",
    "dispute_raised",
    "refused",
    "not_received",
    "in_spam",
    "paid_already",
];

/// A logged contact (P12, P18).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "cus_1", "invoice_ids": ["inv_1"], "channel": "phone", "direction": "outbound",
    "outcome": "promise_made", "notes": "Will pay on Friday",
    "promise": {"amount": "1210.00", "promised_date": "2026-11-27"}}))]
pub struct ActivityInput {
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub invoice_ids: Option<Vec<String>>,
    /// The planned action this contact carries out (it is marked done).
    #[serde(default)]
    pub action_id: Option<String>,
    /// `phone`, `email`, `letter`, `sms`, `in_person`, `portal`.
    pub channel: String,
    /// `outbound` or `inbound`.
    pub direction: String,
    /// `reached`, `no_answer`, `left_message`, `wrong_contact`, `promise_made`,
    /// `dispute_raised`, `refused`, `not_received`, `in_spam`, `paid_already`.
    pub outcome: String,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub next_action_on: Option<NaiveDate>,
    /// With `promise_made`: the promise (customer and invoices default to the contact's).
    #[serde(default)]
    pub promise: Option<PromiseInput>,
    /// With `dispute_raised`: the dispute (the invoice defaults to the first one named).
    #[serde(default)]
    pub dispute: Option<DisputeInput>,
}

/// What logging the contact did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "activity": {
        "id": "cnt_1", "channel": "phone", "direction": "outbound", "outcome": "promise_made",
        "notes": "Will pay on Friday", "created_by": "marta", "created_at": "2026-11-23T10:00:00Z"
    },
    "customer_id": "cus_1", "invoice_ids": ["inv_3"], "promise_id": "ptp_1", "dispute_id": null,
    "resent_invoice_ids": [], "task_id": null
}))]
pub struct ActivityResult {
    pub activity: ContactSummary,
    pub customer_id: String,
    pub invoice_ids: Vec<String>,
    pub promise_id: Option<String>,
    pub dispute_id: Option<String>,
    /// Invoices re-sent, their collection clock restarted (`not_received`, `in_spam`).
    pub resent_invoice_ids: Vec<String>,
    pub task_id: Option<String>,
}

pub fn log_contact(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &ActivityInput,
    today: NaiveDate,
) -> Result<ActivityResult, AppError> {
    let mut v = Violations::new();
    let customer = input.customer_id.as_deref().and_then(|id| Kind::Customer.decode(id));
    let customer = match customer {
        Some(id) => crate::db::repo::customers::find(c, org_id, id).ok(),
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
    if !["phone", "email", "letter", "sms", "in_person", "portal"].contains(&input.channel.as_str()) {
        v.add("channel", "must be phone, email, letter, sms, in_person or portal");
    }
    if !["outbound", "inbound"].contains(&input.direction.as_str()) {
        v.add("direction", "must be outbound or inbound");
    }
    if !OUTCOMES.contains(&input.outcome.as_str()) {
        v.add("outcome", format!("must be one of {}", OUTCOMES.join(", ")));
    }
    let notes = crate::domain::text::optional(&mut v, "notes", input.notes.as_deref(), 4000);
    let mut invoice_rows = Vec::new();
    for (i, id) in input.invoice_ids.iter().flatten().enumerate() {
        match Kind::Invoice
            .decode(id)
            .map(|k| crate::db::repo::invoices::find(c, org_id, k))
        {
            Some(Ok(row)) if customer.as_ref().is_some_and(|cu| cu.id == row.customer_id) => invoice_rows.push(row),
            _ => v.add(format!("invoice_ids[{i}]"), "no such invoice of this customer"),
        }
    }
    if input.outcome == "promise_made" && input.promise.is_none() {
        v.add("promise", "is required with outcome promise_made");
    }
    if input.outcome == "dispute_raised" && input.dispute.is_none() {
        v.add("dispute", "is required with outcome dispute_raised");
    }
    let action = match input.action_id.as_deref() {
        None => None,
        Some(id) => match Kind::Action.decode(id).map(|k| actions_repo::find_action(c, org_id, k)) {
            Some(Ok(a)) if customer.as_ref().is_some_and(|cu| cu.id == a.customer_id) => Some(a),
            _ => {
                v.add("action_id", "no such action of this customer");
                None
            }
        },
    };
    v.into_result(())?;
    let customer = customer.ok_or_else(|| AppError::internal("customer vanished"))?;
    let invoice_keys: Vec<i64> = invoice_rows.iter().map(|r| r.id).collect();
    let invoice_ids: Vec<String> = invoice_keys.iter().map(|i| Kind::Invoice.encode(*i)).collect();
    let id = actions_repo::insert_activity(
        c,
        &NewActivity {
            org_id,
            customer_id: customer.id,
            action_id: action.as_ref().map(|a| a.id),
            invoice_ids: &serde_json::to_string(&invoice_ids).unwrap_or_else(|_| "[]".into()),
            channel: &input.channel,
            direction: &input.direction,
            outcome: &input.outcome,
            notes: notes.as_deref(),
            next_action_on: input.next_action_on,
            created_by: actor,
        },
    )?;
    if let Some(a) = &action
        && matches!(a.status.as_str(), "planned" | "queued")
    {
        actions_repo::set_action_status(c, a.id, "done", None, Some(&input.outcome))?;
    }
    let mut result = ActivityResult {
        activity: contact_summary(&actions_repo::find_activity(c, org_id, id)?),
        customer_id: Kind::Customer.encode(customer.id),
        invoice_ids: invoice_ids.clone(),
        promise_id: None,
        dispute_id: None,
        resent_invoice_ids: Vec::new(),
        task_id: None,
    };
    match input.outcome.as_str() {
        "promise_made" => {
            let mut p = input.promise.clone().unwrap_or_default();
            p.customer_id.get_or_insert(Kind::Customer.encode(customer.id));
            if p.invoice_ids.is_none() && !invoice_ids.is_empty() {
                p.invoice_ids = Some(invoice_ids.clone());
            }
            p.channel.get_or_insert_with(|| {
                if input.channel == "in_person" {
                    "in_person".into()
                } else {
                    "phone".into()
                }
            });
            let row =
                crate::service::promises::create(c, org_id, actor, &p, today).map_err(|e| prefix(e, "promise."))?;
            result.promise_id = Some(Kind::Promise.encode(row.id));
        }
        "dispute_raised" => {
            let mut d = input.dispute.clone().unwrap_or_default();
            if d.invoice_id.is_none() {
                d.invoice_id = invoice_ids.first().cloned();
            }
            d.raised_via.get_or_insert_with(|| input.channel.clone());
            let row =
                crate::service::disputes::create(c, org_id, actor, &d, today).map_err(|e| prefix(e, "dispute."))?;
            result.dispute_id = Some(Kind::Dispute.encode(row.id));
        }
        "not_received" | "in_spam" => {
            // P18: re-send and restart the clock, so the customer is not chased for an
            // invoice they never saw.
            let targets: Vec<i64> = if invoice_keys.is_empty() {
                crate::db::repo::invoices::open_items_of_customer(c, org_id, customer.id)?
                    .iter()
                    .filter(|i| i.kind != "credit_note")
                    .map(|i| i.id)
                    .collect()
            } else {
                invoice_keys.clone()
            };
            actions_repo::restart_clock(c, &targets, today)?;
            result.resent_invoice_ids = targets.iter().map(|i| Kind::Invoice.encode(*i)).collect();
        }
        "paid_already" => {
            let source = Kind::Activity.encode(id);
            let title = format!("Find the payment {} says was already made", customer.name);
            tasks::create_once(
                c,
                &NewTask {
                    org_id,
                    customer_id: customer.id,
                    kind: "find_payment",
                    priority: "high",
                    assignee: None,
                    title: &title,
                    due_on: today,
                    source_id: &source,
                },
            )?;
            let task: Option<i64> = tasks_table::table
                .filter(tasks_table::org_id.eq(org_id))
                .filter(tasks_table::source_id.eq(&source))
                .select(tasks_table::id)
                .first(c)
                .optional()?;
            result.task_id = task.map(|t| Kind::Task.encode(t));
        }
        _ => {}
    }
    Ok(result)
}

/// Puts nested validation errors under the field they came from.
fn prefix(e: AppError, at: &str) -> AppError {
    match e {
        AppError::Validation(list) => AppError::Validation(
            list.into_iter()
                .map(|f| crate::error::FieldError::new(format!("{at}{}", f.field), f.message))
                .collect(),
        ),
        other => other,
    }
}
