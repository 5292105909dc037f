//! Escalation use cases (P8, P9, P15, issue 6): open escalations from the collection
//! run's actions (set-based, when the step happens: at once, or when a manager approves
//! it), open one by hand, move one through its lifecycle, and release credit holds whose
//! covered items are settled. Every change writes a transition row and an event, and
//! recomputes the customer's credit status and flags (`with_agency`, `legal`, credit hold).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::repo::actions::ActionHead;
use crate::db::repo::escalations::{self as repo, EscalationChanges, EscalationRow, NewEscalation, NewTransition};
use crate::db::repo::events::{self, NewEvent};
use crate::db::schema::invoices;
use crate::db::{DbConnection, now};
use crate::domain::escalation::{self, Current, EscalationKind, TransitionError};
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::service::{check_version, hooks};

/// An invoice as escalation needs it: (id, customer, currency, collectable open amount).
type InvoiceFact = (i64, i64, String, i64);

fn invoice_facts(c: &mut DbConnection, org_id: i64, ids: &[i64]) -> Result<Vec<InvoiceFact>, AppError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        out.extend(
            invoices::table
                .filter(invoices::org_id.eq(org_id))
                .filter(invoices::id.eq_any(chunk))
                .filter(invoices::kind.ne("credit_note"))
                .select((
                    invoices::id,
                    invoices::customer_id,
                    invoices::currency,
                    invoices::open_minor,
                    invoices::disputed_minor,
                ))
                .load::<(i64, i64, String, i64, i64)>(c)?
                .into_iter()
                .map(|(id, cust, cur, open, disputed)| (id, cust, cur, (open - disputed).max(0))),
        );
    }
    Ok(out)
}

fn opened_event(org_id: i64, e: &EscalationRow, invoices: usize, approved_by: Option<&str>) -> NewEvent {
    NewEvent::new(
        org_id,
        "escalation.opened",
        Kind::Escalation.encode(e.id),
        Some(e.customer_id),
        serde_json::json!({
            "kind": e.kind,
            "status": e.status,
            "currency": e.currency,
            "invoices": invoices,
            "action_id": e.action_id.map(|a| Kind::Action.encode(a)),
            "approved_by": approved_by,
            "opened_on": e.opened_on,
        }),
    )
}

/// Opens the escalations of collection-run actions that happen now: credit holds, agency
/// placements, law-firm letters, small-claims filings and repossession offers that need no
/// approval (at run time), or that a manager just approved. Set-based: a few queries for
/// any number of actions. An action opens one escalation per currency of its invoices,
/// once; a credit hold for a customer already on an active hold in that currency extends
/// that hold to the new invoices instead.
pub fn open_from_actions(
    c: &mut DbConnection,
    org_id: i64,
    actions: &[ActionHead],
    on: NaiveDate,
    actor: &str,
) -> Result<usize, AppError> {
    let due: Vec<&ActionHead> = actions
        .iter()
        .filter(|a| EscalationKind::of_action(&a.action).is_some())
        .filter(|a| !matches!(a.status.as_str(), "awaiting_approval" | "cancelled" | "skipped"))
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = due.iter().map(|a| a.id).collect();
    let done: HashSet<i64> = repo::actions_with_escalations(c, &ids)?.into_iter().collect();
    let due: Vec<&ActionHead> = due.into_iter().filter(|a| !done.contains(&a.id)).collect();
    let links = crate::db::repo::actions::invoices_of_actions(c, &due.iter().map(|a| a.id).collect::<Vec<_>>())?;
    let invoice_ids: Vec<i64> = links.iter().map(|(_, i, _)| *i).collect();
    let facts: HashMap<i64, InvoiceFact> = invoice_facts(c, org_id, &invoice_ids)?
        .into_iter()
        .map(|f| (f.0, f))
        .collect();
    let hold_customers: Vec<i64> = due
        .iter()
        .filter(|a| a.action == EscalationKind::CreditHold.as_str())
        .map(|a| a.customer_id)
        .collect();
    let active_holds: HashMap<(i64, String), i64> =
        repo::open_of_kind(c, &hold_customers, EscalationKind::CreditHold.as_str())?
            .into_iter()
            .map(|e| ((e.customer_id, e.currency), e.id))
            .collect();

    // (action, currency) → invoices with their amounts.
    let mut groups: BTreeMap<(i64, String), Vec<(i64, i64)>> = BTreeMap::new();
    for (action, invoice, _) in &links {
        if let Some((_, _, cur, amount)) = facts.get(invoice) {
            groups
                .entry((*action, cur.clone()))
                .or_default()
                .push((*invoice, *amount));
        }
    }
    let by_id: HashMap<i64, &ActionHead> = due.iter().map(|a| (a.id, *a)).collect();
    let at = now();
    let mut new_rows = Vec::new();
    let mut extend: Vec<(i64, i64, i64)> = Vec::new();
    for ((action_id, currency), items) in &groups {
        let Some(a) = by_id.get(action_id) else { continue };
        let Some(kind) = EscalationKind::of_action(&a.action) else {
            continue;
        };
        if kind == EscalationKind::CreditHold
            && let Some(hold) = active_holds.get(&(a.customer_id, currency.clone()))
        {
            extend.extend(items.iter().map(|(i, amount)| (*hold, *i, *amount)));
            continue;
        }
        new_rows.push(NewEscalation {
            org_id,
            customer_id: a.customer_id,
            kind: kind.as_str().into(),
            status: kind.initial_status().into(),
            is_open: true,
            currency: currency.clone(),
            action_id: Some(a.id),
            opened_on: on,
            agency: None,
            law_firm: None,
            reason: Some(format!("collection strategy step `{}`", a.step_key)),
            notes: None,
            created_by: a.approved_by.clone().unwrap_or_else(|| actor.to_string()),
            version: 1,
            created_at: at,
            updated_at: at,
        });
    }
    let inserted = repo::insert_many(c, &new_rows)?;
    let mut rows = extend;
    let mut transitions = Vec::with_capacity(inserted.len());
    let mut new_events = Vec::with_capacity(inserted.len());
    for e in &inserted {
        let items = e
            .action_id
            .and_then(|a| groups.get(&(a, e.currency.clone())))
            .cloned()
            .unwrap_or_default();
        rows.extend(items.iter().map(|(i, amount)| (e.id, *i, *amount)));
        transitions.push(NewTransition {
            escalation_id: e.id,
            from_status: None,
            to_status: e.status.clone(),
            on_date: on,
            reason: e.reason.clone(),
            created_by: e.created_by.clone(),
            created_at: at,
        });
        let approver = e
            .action_id
            .and_then(|a| by_id.get(&a))
            .and_then(|a| a.approved_by.as_deref());
        new_events.push(opened_event(org_id, e, items.len(), approver));
    }
    let stopping: HashSet<i64> = inserted
        .iter()
        .filter(|e| EscalationKind::parse(&e.kind).is_some_and(|k| k.dunning_exclusion().is_some()))
        .map(|e| e.id)
        .collect();
    let taken_over: Vec<i64> = rows
        .iter()
        .filter(|(e, _, _)| stopping.contains(e))
        .map(|(_, i, _)| *i)
        .collect();
    repo::insert_invoices(c, &rows)?;
    repo::insert_transitions(c, &transitions)?;
    events::insert_many(c, &new_events)?;
    hooks::cancel_escalated_actions(c, &taken_over, &ids)?;
    let mut customers: Vec<i64> = due.iter().map(|a| a.customer_id).collect();
    customers.sort_unstable();
    customers.dedup();
    hooks::credit_inputs_changed(c, org_id, &customers)?;
    Ok(inserted.len())
}

/// Releases the active credit holds of these customers whose covered invoices are all
/// settled now (called by the credit recomputation, before it reads the holds). Returns
/// the customers whose holds ended.
pub fn release_settled_holds(
    c: &mut DbConnection,
    org_id: i64,
    customer_ids: &[i64],
    on: NaiveDate,
) -> Result<Vec<i64>, AppError> {
    let holds = repo::open_of_kind(c, customer_ids, EscalationKind::CreditHold.as_str())?;
    if holds.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = holds.iter().map(|h| h.id).collect();
    let mut open: HashMap<i64, Vec<i64>> = HashMap::new();
    for (e, amount) in repo::covered_open_amounts(c, &ids)? {
        open.entry(e).or_default().push(amount);
    }
    let settled: Vec<&EscalationRow> = holds
        .iter()
        .filter(|h| escalation::hold_settled(open.get(&h.id).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    if settled.is_empty() {
        return Ok(Vec::new());
    }
    let at = now();
    let reason = "every overdue item the hold covered is settled";
    repo::close_many(c, &settled.iter().map(|h| h.id).collect::<Vec<_>>(), "released", on)?;
    repo::insert_transitions(
        c,
        &settled
            .iter()
            .map(|h| NewTransition {
                escalation_id: h.id,
                from_status: Some(h.status.clone()),
                to_status: "released".into(),
                on_date: on,
                reason: Some(reason.into()),
                created_by: "system".into(),
                created_at: at,
            })
            .collect::<Vec<_>>(),
    )?;
    events::insert_many(
        c,
        &settled
            .iter()
            .map(|h| {
                NewEvent::new(
                    org_id,
                    "escalation.released",
                    Kind::Escalation.encode(h.id),
                    Some(h.customer_id),
                    serde_json::json!({"kind": h.kind, "from": h.status, "to": "released", "automatic": true,
                        "reason": reason, "on": on}),
                )
            })
            .collect::<Vec<_>>(),
    )?;
    Ok(settled.iter().map(|h| h.customer_id).collect())
}

/// An escalation opened by hand (a repossession offer is always a manual action).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "cus_1", "kind": "repossession_offer", "invoice_ids": ["inv_7"],
    "reason": "The customer cannot pay; the pallets are unused and can be taken back",
    "notes": "Offered by phone to the owner, letter to follow"}))]
pub struct EscalationInput {
    pub customer_id: String,
    /// `credit_hold`, `agency_placement`, `law_firm_letter`, `small_claims`,
    /// `repossession_offer`.
    pub kind: String,
    /// Open invoices of the customer, in one currency; required except for a credit hold,
    /// which without invoices holds the whole account until a manager releases it.
    #[serde(default)]
    pub invoice_ids: Vec<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// The agency (agency placement) or the law firm (legal kinds), when already known.
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub law_firm: Option<String>,
}

pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &EscalationInput,
    as_of: NaiveDate,
) -> Result<EscalationRow, AppError> {
    let mut v = Violations::new();
    let kind = EscalationKind::parse(input.kind.trim());
    if kind.is_none() {
        v.add(
            "kind",
            "must be credit_hold, agency_placement, law_firm_letter, small_claims or repossession_offer",
        );
    }
    let customer_id = Kind::Customer.decode(input.customer_id.trim());
    let customer = match customer_id {
        Some(id) => match crate::db::repo::customers::find(c, org_id, id) {
            Ok(row) => Some(row),
            Err(AppError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    if customer.is_none() {
        v.add("customer_id", "no such customer");
    }
    let reason = text::optional(&mut v, "reason", input.reason.as_deref(), 1000);
    let notes = text::optional(&mut v, "notes", input.notes.as_deref(), 4000);
    let agency = text::optional(&mut v, "agency", input.agency.as_deref(), 200);
    let law_firm = text::optional(&mut v, "law_firm", input.law_firm.as_deref(), 200);
    if agency.is_some() && kind != Some(EscalationKind::AgencyPlacement) {
        v.add("agency", "applies to an agency placement only");
    }
    if law_firm.is_some() && !matches!(kind, Some(EscalationKind::LawFirmLetter | EscalationKind::SmallClaims)) {
        v.add("law_firm", "applies to a law-firm letter or a small-claims filing only");
    }
    if input.invoice_ids.len() > 1000 {
        v.add("invoice_ids", "must hold at most 1000 invoices");
    }
    let mut keys = Vec::new();
    for (i, id) in input.invoice_ids.iter().enumerate() {
        match Kind::Invoice.decode(id) {
            Some(k) if !keys.contains(&k) => keys.push(k),
            Some(_) => v.add(format!("invoice_ids[{i}]"), "appears more than once"),
            None => v.add(format!("invoice_ids[{i}]"), "no such invoice"),
        }
    }
    if keys.is_empty() && kind.is_some_and(|k| k != EscalationKind::CreditHold) && input.invoice_ids.is_empty() {
        v.add("invoice_ids", "name at least one open invoice of the customer");
    }
    let facts: HashMap<i64, InvoiceFact> = invoice_facts(c, org_id, &keys)?.into_iter().map(|f| (f.0, f)).collect();
    let open_kinds: HashMap<i64, String> = repo::open_kinds_of_invoices(c, &keys)?
        .into_iter()
        .filter(|(_, k)| k != EscalationKind::CreditHold.as_str())
        .collect();
    let mut currencies: Vec<String> = Vec::new();
    for (i, id) in input.invoice_ids.iter().enumerate() {
        let Some(k) = Kind::Invoice.decode(id) else { continue };
        match facts.get(&k) {
            Some((_, cust, cur, amount)) if Some(*cust) == customer_id && *amount > 0 => {
                if let Some(open) = open_kinds.get(&k) {
                    v.add(format!("invoice_ids[{i}]"), format!("is already in an open {open}"));
                }
                if !currencies.contains(cur) {
                    currencies.push(cur.clone());
                }
            }
            Some((_, cust, _, _)) if Some(*cust) == customer_id => {
                v.add(format!("invoice_ids[{i}]"), "has no open amount to collect")
            }
            _ => v.add(format!("invoice_ids[{i}]"), "is not an invoice of this customer"),
        }
    }
    if currencies.len() > 1 {
        v.add(
            "invoice_ids",
            "must all be in one currency (open one escalation per currency)",
        );
    }
    v.into_result(())?;
    let (Some(kind), Some(customer)) = (kind, customer) else {
        return Err(AppError::internal("escalation validation passed without values"));
    };
    let currency = currencies.pop().unwrap_or_else(|| customer.currency.clone());
    if kind == EscalationKind::CreditHold
        && let Some(hold) = repo::open_of_kind(c, &[customer.id], kind.as_str())?
            .into_iter()
            .find(|h| h.currency == currency)
    {
        return Err(AppError::Conflict(format!(
            "the customer is already on an active credit hold ({})",
            Kind::Escalation.encode(hold.id)
        )));
    }
    let at = now();
    let row = repo::insert_many(
        c,
        &[NewEscalation {
            org_id,
            customer_id: customer.id,
            kind: kind.as_str().into(),
            status: kind.initial_status().into(),
            is_open: true,
            currency,
            action_id: None,
            opened_on: as_of,
            agency,
            law_firm,
            reason: reason.clone(),
            notes,
            created_by: actor.into(),
            version: 1,
            created_at: at,
            updated_at: at,
        }],
    )?
    .pop()
    .ok_or_else(|| AppError::internal("escalation not inserted"))?;
    let links: Vec<(i64, i64, i64)> = keys
        .iter()
        .filter_map(|k| facts.get(k).map(|(_, _, _, amount)| (row.id, *k, *amount)))
        .collect();
    repo::insert_invoices(c, &links)?;
    repo::insert_transitions(
        c,
        &[NewTransition {
            escalation_id: row.id,
            from_status: None,
            to_status: row.status.clone(),
            on_date: as_of,
            reason,
            created_by: actor.into(),
            created_at: at,
        }],
    )?;
    events::insert_many(c, &[opened_event(org_id, &row, links.len(), None)])?;
    if kind.dunning_exclusion().is_some() {
        let taken_over: Vec<i64> = links.iter().map(|(_, i, _)| *i).collect();
        hooks::cancel_escalated_actions(c, &taken_over, &[])?;
    }
    hooks::credit_inputs_changed(c, org_id, &[customer.id])?;
    Ok(row)
}

/// A move of an escalation to its next status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"to": "placed", "agency": "Cobros Levante SL", "agency_reference": "CL-2026-778",
    "on": "2026-11-23", "reason": "Two final notices unanswered; approved by the credit committee"}))]
pub struct TransitionInput {
    /// The new status. Credit hold: `active` → `released`. Agency placement: `proposed` →
    /// `placed` → `recovered` / `partially_recovered` / `returned` (or `withdrawn`).
    /// Law-firm letter: `letter_sent` → `filed` → `judgment` → `settled` (or `withdrawn`).
    /// Small claims: `preparing` → `filed` → `judgment` → `settled` (or `withdrawn`).
    /// Repossession offer: `offered` → `accepted` → `goods_returned`, or `declined` /
    /// `withdrawn`.
    pub to: String,
    /// The date it happened (default today; not before the escalation opened, not later
    /// than today).
    #[serde(default)]
    pub on: Option<NaiveDate>,
    /// Required to release a hold, withdraw or decline.
    #[serde(default)]
    pub reason: Option<String>,
    /// `placed`: the agency (required unless given when the placement was opened).
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub agency_reference: Option<String>,
    /// Legal kinds: the law firm handling the case.
    #[serde(default)]
    pub law_firm: Option<String>,
    /// `filed`: the court and its reference for the claim (both required).
    #[serde(default)]
    pub court: Option<String>,
    #[serde(default)]
    pub filing_reference: Option<String>,
    /// Money recovered through the agency or the case, in the escalation's currency:
    /// required for `recovered` and `partially_recovered`; allowed for `returned`,
    /// `judgment` and `settled`.
    #[serde(default)]
    pub recovered_amount: Option<String>,
    /// The agency's commission on what it recovered.
    #[serde(default)]
    pub commission: Option<String>,
}

pub fn transition(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    id: i64,
    expected_version: Option<i64>,
    input: &TransitionInput,
    as_of: NaiveDate,
) -> Result<EscalationRow, AppError> {
    let row = repo::find(c, org_id, id)?;
    check_version(expected_version, row.version)?;
    let kind = EscalationKind::parse(&row.kind).ok_or_else(|| AppError::internal("unknown escalation kind"))?;
    let currency = Currency::parse(&row.currency).ok_or_else(|| AppError::internal("unknown currency"))?;
    let mut v = Violations::new();
    let amount = |field: &str, text: Option<&str>, v: &mut Violations| {
        text.and_then(|t| v.check(field, money::parse_amount(t, currency)))
    };
    let recovered = amount("recovered_amount", input.recovered_amount.as_deref(), &mut v);
    let commission = amount("commission", input.commission.as_deref(), &mut v);
    let req = escalation::Request {
        on: input.on,
        reason: text::optional(&mut v, "reason", input.reason.as_deref(), 1000),
        agency: text::optional(&mut v, "agency", input.agency.as_deref(), 200),
        agency_reference: text::optional(&mut v, "agency_reference", input.agency_reference.as_deref(), 200),
        law_firm: text::optional(&mut v, "law_firm", input.law_firm.as_deref(), 200),
        court: text::optional(&mut v, "court", input.court.as_deref(), 200),
        filing_reference: text::optional(&mut v, "filing_reference", input.filing_reference.as_deref(), 200),
        recovered_minor: recovered,
        commission_minor: commission,
    };
    let amount_minor: i64 = repo::invoices_of(c, &[row.id])?.iter().map(|(_, _, a)| a).sum();
    let current = Current {
        kind,
        status: row.status.clone(),
        opened_on: row.opened_on,
        amount_minor,
        agency: row.agency.clone(),
    };
    // The lifecycle is checked first: an illegal move is a 409 whatever else is wrong.
    let change = match escalation::transition(&current, input.to.trim(), &req, as_of) {
        Err(TransitionError::Illegal(message)) => return Err(AppError::Conflict(message)),
        Err(TransitionError::Invalid(errors)) => {
            v.extend_prefixed("", errors);
            v.into_result(())?;
            return Err(AppError::internal("transition refused without a reason"));
        }
        Ok(change) => {
            v.into_result(())?;
            change
        }
    };
    let changes = EscalationChanges {
        status: Some(change.status.into()),
        is_open: Some(change.is_open),
        agency: change.agency,
        agency_reference: change.agency_reference,
        placed_on: change.placed_on,
        law_firm: change.law_firm,
        court: change.court,
        filing_reference: change.filing_reference,
        filed_on: change.filed_on,
        judgment_on: change.judgment_on,
        closed_on: change.closed_on,
        recovered_minor: change.recovered_minor,
        commission_minor: change.commission_minor,
    };
    if !repo::update(c, row.id, row.version, &changes)? {
        return Err(AppError::PreconditionFailed(
            "the escalation changed meanwhile; reload it and retry".into(),
        ));
    }
    repo::insert_transitions(
        c,
        &[NewTransition {
            escalation_id: row.id,
            from_status: Some(row.status.clone()),
            to_status: change.status.into(),
            on_date: change.on,
            reason: req.reason.clone(),
            created_by: actor.into(),
            created_at: now(),
        }],
    )?;
    let f = |m: i64| money::format_amount(m, currency);
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            &format!("escalation.{}", change.status),
            Kind::Escalation.encode(row.id),
            Some(row.customer_id),
            serde_json::json!({
                "kind": row.kind, "from": row.status, "to": change.status, "on": change.on,
                "reason": req.reason, "by": actor, "currency": row.currency,
                "recovered_amount": change.recovered_minor.map(f),
                "commission": change.commission_minor.map(f),
                "agency": changes.agency.as_ref().or(row.agency.as_ref()),
            }),
        )],
    )?;
    hooks::credit_inputs_changed(c, org_id, &[row.customer_id])?;
    repo::find(c, org_id, row.id)
}
