//! Dispute use cases (P1): raise a dispute on (part of) an invoice's open amount, move it
//! through review, comment, resolve or withdraw it, and the root-cause report by reason and
//! owner department. The disputed amount is kept on the invoice and out of collection.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::disputes::{self as repo, DisputeRow, DisputeValues, NewDispute};
use crate::db::repo::events::{self, NewEvent};
use crate::domain::dispute::{DEPARTMENTS, DisputeStatus, REASONS, RESOLUTIONS};
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::service::check_version;

/// A dispute as the API accepts it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "invoice_id": "inv_1", "amount": "120.00", "reason": "damaged_goods",
    "description": "Two boxes arrived crushed", "raised_via": "phone",
    "owner_department": "logistics", "assignee": "jordi", "due_by": "2026-12-05"
}))]
pub struct DisputeInput {
    #[serde(default)]
    pub invoice_id: Option<String>,
    /// Default: all of the invoice's open amount not already disputed.
    #[serde(default)]
    pub amount: Option<String>,
    /// `pricing`, `quantity`, `damaged_goods`, `not_delivered`, `not_ordered`,
    /// `duplicate_billing`, `tax_error`, `service_quality`, `other`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// How the customer raised it (phone, email, portal, …).
    #[serde(default)]
    pub raised_via: Option<String>,
    /// `sales`, `logistics`, `billing`, `customer_service`, `quality`; defaults from the reason.
    #[serde(default)]
    pub owner_department: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub due_by: Option<NaiveDate>,
    /// On edit: `open`, `under_review` or `withdrawn` (resolve with `/resolve`).
    #[serde(default)]
    pub status: Option<String>,
}

/// The department that usually owns a reason (P1: the feedback goes to whoever caused it).
pub fn default_department(reason: &str) -> &'static str {
    match reason {
        "pricing" | "not_ordered" => "sales",
        "quantity" | "damaged_goods" | "not_delivered" => "logistics",
        "duplicate_billing" | "tax_error" => "billing",
        "service_quality" => "quality",
        _ => "customer_service",
    }
}

fn values(input: &DisputeInput, currency: Currency, max_amount: i64, v: &mut Violations) -> Option<DisputeValues> {
    let amount = match &input.amount {
        None => Some(max_amount),
        Some(t) => match money::parse_amount(t, currency) {
            Ok(0) => {
                v.add("amount", "must be greater than zero");
                None
            }
            Ok(a) if a > max_amount => {
                v.add(
                    "amount",
                    format!(
                        "exceeds the undisputed open amount ({})",
                        money::format_amount(max_amount, currency)
                    ),
                );
                None
            }
            other => v.check("amount", other),
        },
    };
    if max_amount <= 0 {
        v.add("invoice_id", "has no undisputed open amount");
    }
    let reason = input.reason.clone().unwrap_or_default();
    if !REASONS.contains(&reason.as_str()) {
        v.add("reason", format!("must be one of {}", REASONS.join(", ")));
    }
    let department = input
        .owner_department
        .clone()
        .unwrap_or_else(|| default_department(&reason).to_string());
    if !DEPARTMENTS.contains(&department.as_str()) {
        v.add("owner_department", format!("must be one of {}", DEPARTMENTS.join(", ")));
    }
    let status = input.status.clone().unwrap_or_else(|| "open".into());
    if !matches!(status.as_str(), "open" | "under_review" | "withdrawn") {
        v.add(
            "status",
            "must be open, under_review or withdrawn; resolve with POST /v1/disputes/{id}/resolve",
        );
    }
    let description = text::optional(v, "description", input.description.as_deref(), 4000);
    let raised_via = text::optional(v, "raised_via", input.raised_via.as_deref(), 32);
    let assignee = text::optional(v, "assignee", input.assignee.as_deref(), 128);
    Some(DisputeValues {
        amount_minor: amount?,
        reason,
        description,
        raised_via,
        owner_department: department,
        assignee,
        due_by: input.due_by,
        status,
    })
}

pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &DisputeInput,
    today: NaiveDate,
) -> Result<DisputeRow, AppError> {
    let invoice_key = input.invoice_id.as_deref().and_then(|id| Kind::Invoice.decode(id));
    let invoice = match invoice_key {
        Some(k) => crate::db::repo::invoices::lock_many(c, org_id, &[k])?.pop(),
        None => None,
    };
    let Some(invoice) = invoice else {
        return Err(AppError::invalid(
            "invoice_id",
            if input.invoice_id.is_some() {
                "no such invoice"
            } else {
                "is required"
            },
        ));
    };
    if invoice.kind == "credit_note" || invoice.status().is_closed_by_decision() {
        return Err(AppError::invalid(
            "invoice_id",
            "only an open invoice or debit note can be disputed",
        ));
    }
    if input.status.as_deref().is_some_and(|s| s != "open") {
        return Err(AppError::invalid("status", "a new dispute is open"));
    }
    let currency = Currency::parse(&invoice.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let already = repo::active_total(c, invoice.id, None)?;
    let mut v = Violations::new();
    let values = values(input, currency, invoice.open_minor - already, &mut v);
    v.into_result(())?;
    let values = values.ok_or_else(|| AppError::internal("dispute validation passed without values"))?;
    let id = repo::insert(
        c,
        &NewDispute {
            org_id,
            customer_id: invoice.customer_id,
            invoice_id: invoice.id,
            currency: currency.code(),
            raised_on: today,
            created_by: actor,
            values,
        },
    )?;
    repo::refresh_disputed(c, &[invoice.id])?;
    crate::service::hooks::credit_inputs_changed(c, org_id, &[invoice.customer_id])?;
    let row = repo::find(c, org_id, id)?;
    event(c, &row, "dispute.opened")?;
    Ok(row)
}

fn event(c: &mut DbConnection, d: &DisputeRow, kind: &str) -> Result<(), AppError> {
    events::insert_many(
        c,
        &[NewEvent::new(
            d.org_id,
            kind,
            Kind::Dispute.encode(d.id),
            Some(d.customer_id),
            serde_json::json!({"invoice_id": Kind::Invoice.encode(d.invoice_id), "amount_minor": d.amount_minor,
                               "currency": d.currency, "reason": d.reason, "owner_department": d.owner_department,
                               "status": d.status, "resolution": d.resolution}),
        )],
    )
}

fn to_input(d: &DisputeRow) -> DisputeInput {
    DisputeInput {
        invoice_id: Some(Kind::Invoice.encode(d.invoice_id)),
        amount: Some(money::format_stored(d.amount_minor, &d.currency)),
        reason: Some(d.reason.clone()),
        description: d.description.clone(),
        raised_via: d.raised_via.clone(),
        owner_department: Some(d.owner_department.clone()),
        assignee: d.assignee.clone(),
        due_by: d.due_by,
        status: Some(d.status.clone()),
    }
}

pub fn patch(
    c: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: Option<i64>,
    patch: &serde_json::Value,
) -> Result<DisputeRow, AppError> {
    // Lock the disputed invoice first, then read the dispute: concurrent edits of one
    // dispute queue here instead of failing on its version.
    let invoice_id = repo::find(c, org_id, id)?.invoice_id;
    crate::db::repo::invoices::lock_many(c, org_id, &[invoice_id])?;
    let current = repo::find(c, org_id, id)?;
    check_version(expected_version, current.version)?;
    let from = DisputeStatus::parse(&current.status).unwrap_or(DisputeStatus::Open);
    if !from.is_active() {
        return Err(AppError::Conflict(format!(
            "the dispute is {} and can no longer change",
            current.status
        )));
    }
    if patch.get("invoice_id").is_some() {
        return Err(AppError::invalid(
            "invoice_id",
            "a dispute stays on its invoice; withdraw it and raise a new one",
        ));
    }
    let input: DisputeInput = crate::service::merge_patch(&to_input(&current), patch)?;
    let invoice = crate::db::repo::invoices::lock_many(c, org_id, &[current.invoice_id])?
        .pop()
        .ok_or_else(|| AppError::not_found("invoice"))?;
    let currency = Currency::parse(&current.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let others = repo::active_total(c, invoice.id, Some(current.id))?;
    let mut v = Violations::new();
    let values = values(&input, currency, invoice.open_minor - others, &mut v);
    if let Some(next) = input.status.as_deref().and_then(DisputeStatus::parse)
        && next != from
        && !from.can_become(next)
    {
        v.add(
            "status",
            format!("cannot go from {} to {}", from.as_str(), next.as_str()),
        );
    }
    v.into_result(())?;
    let values = values.ok_or_else(|| AppError::internal("dispute validation passed without values"))?;
    let withdrawn = values.status == "withdrawn";
    if !repo::update(c, current.id, current.version, &values)? {
        return Err(AppError::PreconditionFailed(
            "the dispute changed meanwhile; retry".into(),
        ));
    }
    repo::refresh_disputed(c, &[invoice.id])?;
    crate::service::hooks::credit_inputs_changed(c, org_id, &[invoice.customer_id])?;
    let row = repo::find(c, org_id, id)?;
    if withdrawn {
        event(c, &row, "dispute.withdrawn")?;
    }
    Ok(row)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolution": "credit_note_issued", "credit_note_id": "inv_9", "comment": "Credit for the two damaged boxes"}))]
pub struct ResolveInput {
    /// `credit_note_issued`, `customer_accepted`, `rejected_invoice_valid`, `partial_credit`.
    pub resolution: String,
    /// The credit note issued for the dispute: it is applied to the disputed invoice.
    #[serde(default)]
    pub credit_note_id: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Resolves a dispute. Its amount leaves the disputed total at once: a rejected dispute
/// (`rejected_invoice_valid`) returns to collection; a credit note linked to it is applied
/// to the invoice.
pub fn resolve(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    id: i64,
    input: &ResolveInput,
    today: NaiveDate,
) -> Result<DisputeRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    if !DisputeStatus::parse(&current.status).is_some_and(DisputeStatus::is_active) {
        return Err(AppError::Conflict(format!("the dispute is already {}", current.status)));
    }
    let mut v = Violations::new();
    if !RESOLUTIONS.contains(&input.resolution.as_str()) {
        v.add("resolution", format!("must be one of {}", RESOLUTIONS.join(", ")));
    }
    let comment = text::optional(&mut v, "comment", input.comment.as_deref(), 4000);
    let credit_note = match input.credit_note_id.as_deref() {
        None => None,
        Some(cn) => match Kind::Invoice
            .decode(cn)
            .map(|k| crate::db::repo::invoices::find(c, org_id, k))
        {
            Some(Ok(row))
                if row.kind == "credit_note"
                    && row.customer_id == current.customer_id
                    && row.currency == current.currency =>
            {
                Some(row)
            }
            Some(Ok(_)) => {
                v.add(
                    "credit_note_id",
                    "must be a credit note of the same customer and currency",
                );
                None
            }
            _ => {
                v.add("credit_note_id", "no such credit note");
                None
            }
        },
    };
    v.into_result(())?;
    repo::resolve(
        c,
        current.id,
        "resolved",
        Some(&input.resolution),
        today,
        credit_note.as_ref().map(|r| r.id),
    )?;
    if let Some(text) = &comment {
        repo::add_comment(c, current.id, actor, text)?;
    }
    repo::refresh_disputed(c, &[current.invoice_id])?;
    crate::service::hooks::credit_inputs_changed(c, org_id, &[current.customer_id])?;
    if let Some(note) = credit_note.filter(|n| n.open_minor > 0) {
        let invoice = crate::db::repo::invoices::find(c, org_id, current.invoice_id)?;
        let amount = note.open_minor.min(invoice.open_minor);
        if amount > 0 {
            let allocation = crate::domain::payment::AllocationInput {
                invoice_id: Kind::Invoice.encode(invoice.id),
                amount: money::format_stored(amount, &note.currency),
            };
            crate::service::payments::apply_credit_note(c, org_id, actor, note.id, Some(&[allocation]), today)?;
        }
    }
    let row = repo::find(c, org_id, id)?;
    event(c, &row, "dispute.resolved")?;
    Ok(row)
}

pub fn comment(c: &mut DbConnection, org_id: i64, actor: &str, id: i64, body: &str) -> Result<DisputeRow, AppError> {
    let mut v = Violations::new();
    let body = text::required(&mut v, "body", Some(body), 4000);
    let body = v.into_result(body)?.unwrap_or_default();
    let row = repo::find(c, org_id, id)?;
    repo::add_comment(c, row.id, actor, &body)?;
    Ok(row)
}

/// Counts and amounts of one group of disputes.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"count": 14, "open": 3, "resolved": 10, "withdrawn": 1, "amounts": {"EUR": "8420.50"}}))]
pub struct DisputeGroup {
    pub count: i64,
    pub open: i64,
    pub resolved: i64,
    pub withdrawn: i64,
    /// Disputed amounts per currency (decimal strings).
    pub amounts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "dispute_id": "dsp_1", "invoice_id": "inv_2", "reason": "damaged_goods", "owner_department": "logistics",
    "raised_on": "2026-11-02", "days_open": 21, "amount": "120.00", "currency": "EUR"
}))]
pub struct OldestOpen {
    pub dispute_id: String,
    pub invoice_id: String,
    pub reason: String,
    pub owner_department: String,
    pub raised_on: NaiveDate,
    pub days_open: i64,
    pub amount: String,
    pub currency: String,
}

/// The root-cause report (P1): which errors, owned by whom, delay cash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-01", "to": "2026-11-30",
    "total": {"count": 14, "open": 3, "resolved": 10, "withdrawn": 1, "amounts": {"EUR": "8420.50"}},
    "by_reason": {
        "damaged_goods": {"count": 9, "open": 2, "resolved": 7, "withdrawn": 0, "amounts": {"EUR": "5120.50"}},
        "price_difference": {"count": 5, "open": 1, "resolved": 3, "withdrawn": 1, "amounts": {"EUR": "3300.00"}}
    },
    "by_owner_department": {
        "logistics": {"count": 9, "open": 2, "resolved": 7, "withdrawn": 0, "amounts": {"EUR": "5120.50"}},
        "sales": {"count": 5, "open": 1, "resolved": 3, "withdrawn": 1, "amounts": {"EUR": "3300.00"}}
    },
    "average_days_to_resolve": 6.4, "p90_days_to_resolve": 12,
    "oldest_open": [
        {
            "dispute_id": "dsp_1", "invoice_id": "inv_2", "reason": "damaged_goods", "owner_department": "logistics",
            "raised_on": "2026-11-02", "days_open": 21, "amount": "120.00", "currency": "EUR"
        }
    ]
}))]
pub struct DisputeReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub total: DisputeGroup,
    pub by_reason: BTreeMap<String, DisputeGroup>,
    pub by_owner_department: BTreeMap<String, DisputeGroup>,
    /// Mean days from raised to resolved, over disputes resolved in the period's set.
    pub average_days_to_resolve: Option<f64>,
    /// 90th percentile (nearest rank) of days to resolve.
    pub p90_days_to_resolve: Option<i64>,
    /// The ten oldest disputes still open or under review.
    pub oldest_open: Vec<OldestOpen>,
}

fn add(group: &mut DisputeGroup, d: &DisputeRow, minor: &mut BTreeMap<String, i64>) {
    group.count += 1;
    match d.status.as_str() {
        "resolved" => group.resolved += 1,
        "withdrawn" => group.withdrawn += 1,
        _ => group.open += 1,
    }
    *minor.entry(d.currency.clone()).or_default() += d.amount_minor;
}

fn amounts(minor: &BTreeMap<String, i64>) -> BTreeMap<String, String> {
    minor
        .iter()
        .map(|(c, m)| (c.clone(), money::format_stored(*m, c)))
        .collect()
}

/// Builds the report over disputes raised between `from` and `to` (inclusive), as of `today`.
pub fn report(
    c: &mut DbConnection,
    org_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<DisputeReport, AppError> {
    let rows = repo::raised_between(c, org_id, from, to)?;
    let mut total = DisputeGroup::default();
    let mut total_minor = BTreeMap::new();
    let mut by_reason: BTreeMap<String, (DisputeGroup, BTreeMap<String, i64>)> = BTreeMap::new();
    let mut by_dept: BTreeMap<String, (DisputeGroup, BTreeMap<String, i64>)> = BTreeMap::new();
    let mut days: Vec<i64> = Vec::new();
    for d in &rows {
        add(&mut total, d, &mut total_minor);
        let (g, m) = by_reason.entry(d.reason.clone()).or_default();
        add(g, d, m);
        let (g, m) = by_dept.entry(d.owner_department.clone()).or_default();
        add(g, d, m);
        if let Some(resolved) = d.resolved_on.filter(|_| d.status == "resolved") {
            days.push((resolved - d.raised_on).num_days());
        }
    }
    total.amounts = amounts(&total_minor);
    let finish = |groups: BTreeMap<String, (DisputeGroup, BTreeMap<String, i64>)>| {
        groups
            .into_iter()
            .map(|(k, (mut g, m))| {
                g.amounts = amounts(&m);
                (k, g)
            })
            .collect()
    };
    days.sort_unstable();
    let p90 = (!days.is_empty()).then(|| {
        let rank = ((days.len() as f64) * 0.9).ceil() as usize;
        days[rank.clamp(1, days.len()) - 1]
    });
    let average = (!days.is_empty()).then(|| days.iter().sum::<i64>() as f64 / days.len() as f64);
    let mut open: Vec<&DisputeRow> = rows
        .iter()
        .filter(|d| DisputeStatus::parse(&d.status).is_some_and(DisputeStatus::is_active))
        .collect();
    open.sort_by_key(|d| (d.raised_on, d.id));
    let oldest_open = open
        .into_iter()
        .take(10)
        .map(|d| OldestOpen {
            dispute_id: Kind::Dispute.encode(d.id),
            invoice_id: Kind::Invoice.encode(d.invoice_id),
            reason: d.reason.clone(),
            owner_department: d.owner_department.clone(),
            raised_on: d.raised_on,
            days_open: (today - d.raised_on).num_days(),
            amount: money::format_stored(d.amount_minor, &d.currency),
            currency: d.currency.clone(),
        })
        .collect();
    Ok(DisputeReport {
        from,
        to,
        total,
        by_reason: finish(by_reason),
        by_owner_department: finish(by_dept),
        average_days_to_resolve: average,
        p90_days_to_resolve: p90,
        oldest_open,
    })
}
