//! Payment use cases: posting payments (one, by external id, or a batch) with automatic or
//! explicit allocation, applying unapplied cash later, unapplying, reversing, and applying
//! credit notes. Every change runs in one write transaction that locks the invoices it
//! reads, writes the allocations, re-derives the balances set-based and records events.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::db::repo::events::{self, NewEvent};
use crate::db::repo::invoices::{self as invoice_repo, InvoiceRow};
use crate::db::repo::payments::{self as repo, AllocationRow, NewAllocation, NewPayment, PaymentRow};
use crate::db::{DbConnection, now};
use crate::domain::allocation::{Allocation, OpenInvoice, Rule, auto_allocate};
use crate::domain::ids::Kind;
use crate::domain::money::Currency;
use crate::domain::payment::{
    AllocationInput, Payer, PaymentData, PaymentInput, PaymentStatus, RequestedAllocation, TargetInvoice,
    check_explicit, parse_allocations,
};
use crate::error::{AppError, Violations};
use crate::service::directory::{CustomerDirectory, CustomerRef};
use crate::service::org_settings as settings;
use crate::service::{BatchItemResult, BatchKeys, UpsertOutcome, claimed_external_id, parse_item};

/// The working set of invoices a posting reads: facts and what is still open, updated as
/// allocations are decided so that several payments in one batch share it.
struct Book {
    invoices: HashMap<i64, InvoiceRow>,
    open: HashMap<i64, i64>,
    touched: HashSet<i64>,
}

impl Book {
    fn new(rows: Vec<InvoiceRow>) -> Book {
        let open = rows.iter().map(|r| (r.id, r.open_minor)).collect();
        Book {
            invoices: rows.into_iter().map(|r| (r.id, r)).collect(),
            open,
            touched: HashSet::new(),
        }
    }

    fn targets(&self) -> HashMap<i64, TargetInvoice> {
        self.invoices
            .values()
            .map(|r| {
                (
                    r.id,
                    TargetInvoice {
                        customer_id: r.customer_id,
                        currency: r.currency.clone(),
                        kind: r.kind.clone(),
                        status: r.status(),
                        open_minor: self.open.get(&r.id).copied().unwrap_or(0),
                    },
                )
            })
            .collect()
    }

    fn candidates(&self, customer_id: i64, currency: &str) -> Vec<OpenInvoice> {
        self.invoices
            .values()
            .filter(|r| r.customer_id == customer_id && r.currency == currency && r.kind != "credit_note")
            .filter(|r| !r.status().is_closed_by_decision())
            .filter_map(|r| {
                let open = self.open.get(&r.id).copied().unwrap_or(0);
                (open > 0).then(|| OpenInvoice {
                    id: r.id,
                    number: r.number.clone(),
                    due_date: r.due_date,
                    open_minor: open,
                })
            })
            .collect()
    }

    /// Decides the allocations of `amount` from a source of `customer_id`/`currency`:
    /// explicit ones are checked, otherwise the automatic rules run.
    fn allocate(
        &mut self,
        customer_id: i64,
        currency: &str,
        amount: i64,
        reference: Option<&str>,
        explicit: Option<&[RequestedAllocation]>,
        rules: &[Rule],
    ) -> Result<Vec<Allocation>, AppError> {
        let decided = match explicit {
            Some(requested) => check_explicit(customer_id, currency, amount, requested, &self.targets())
                .map_err(AppError::Validation)?,
            None => {
                let mut open = self.candidates(customer_id, currency);
                auto_allocate(amount, reference, &mut open, rules)
            }
        };
        for a in &decided {
            if let Some(open) = self.open.get_mut(&a.invoice_id) {
                *open -= a.amount_minor;
            }
            self.touched.insert(a.invoice_id);
        }
        Ok(decided)
    }

    /// Invoices this posting brought to zero.
    fn newly_paid(&self) -> Vec<&InvoiceRow> {
        self.touched
            .iter()
            .filter_map(|id| self.invoices.get(id))
            .filter(|r| r.open_minor > 0 && self.open.get(&r.id) == Some(&0))
            .collect()
    }
}

/// Locks the open invoices of `customer_ids` and any other invoice named explicitly, in id
/// order, and returns them as the working book.
fn lock_book(c: &mut DbConnection, org_id: i64, customer_ids: &[i64], named: &[i64]) -> Result<Book, AppError> {
    let rows = if named.is_empty() {
        // The payment hot path: the statement `invoices_customer_open` serves.
        invoice_repo::lock_open_of_customers(c, org_id, customer_ids)?
    } else {
        invoice_repo::lock_open_of_customers_and(c, org_id, customer_ids, named)?
    };
    Ok(Book::new(rows))
}

/// Refuses a credit note that cannot give credit now.
fn check_credit_note(note: &InvoiceRow) -> Result<(), AppError> {
    if note.kind != "credit_note" {
        return Err(AppError::Conflict(
            "only a credit note can be applied to invoices".into(),
        ));
    }
    if note.status().is_closed_by_decision() {
        return Err(AppError::Conflict(format!(
            "the credit note is {}",
            note.status().as_str()
        )));
    }
    if note.open_minor == 0 {
        return Err(AppError::Conflict("the credit note is fully applied".into()));
    }
    Ok(())
}

/// Where applied money comes from.
struct Source<'a> {
    customer_id: i64,
    currency: &'a str,
    reference: Option<&'a str>,
    origin: Origin,
    applied_on: NaiveDate,
}

/// The document whose money is applied.
enum Origin {
    /// A payment, locked by the caller, with what it has left to apply.
    Payment { id: i64, available: i64 },
    /// A credit note: its open credit is read once it is locked with the invoices.
    CreditNote { id: i64 },
}

impl Origin {
    fn payment_id(&self) -> Option<i64> {
        match self {
            Origin::Payment { id, .. } => Some(*id),
            Origin::CreditNote { .. } => None,
        }
    }

    fn credit_note_id(&self) -> Option<i64> {
        match self {
            Origin::Payment { .. } => None,
            Origin::CreditNote { id } => Some(*id),
        }
    }
}

/// Applies a source's available money to the requested invoices, or by the automatic
/// rules, and writes the allocations. Returns the book with what it touched.
fn apply_source(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    source: &Source<'_>,
    requested: Option<&[AllocationInput]>,
) -> Result<Book, AppError> {
    let currency = Currency::parse(source.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let explicit = match requested {
        Some(list) => {
            let mut v = Violations::new();
            let parsed = parse_allocations(&mut v, list, currency);
            v.into_result(Some(parsed))?
        }
        None => None,
    };
    let mut named: Vec<i64> = explicit.iter().flatten().filter_map(|r| r.invoice_id).collect();
    // A credit note is locked with the invoices, in id order, and its credit read locked.
    named.extend(source.origin.credit_note_id());
    let mut book = lock_book(c, org_id, &[source.customer_id], &named)?;
    let available = match source.origin {
        Origin::CreditNote { id } => {
            let note = book
                .invoices
                .get(&id)
                .ok_or_else(|| AppError::not_found("credit note"))?;
            check_credit_note(note)?;
            if note.customer_id != source.customer_id || note.currency != source.currency {
                return Err(AppError::Conflict(
                    "the credit note changed while it was applied; retry".into(),
                ));
            }
            note.open_minor
        }
        Origin::Payment { available, .. } => available,
    };
    let rules = settings(c, org_id)?.allocation_rules;
    let decided = book.allocate(
        source.customer_id,
        source.currency,
        available,
        source.reference,
        explicit.as_deref(),
        &rules,
    )?;
    if decided.is_empty() {
        return Err(AppError::Conflict(
            "no open invoice of this customer and currency to apply the money to".into(),
        ));
    }
    let at = now();
    let rows: Vec<NewAllocation> = decided
        .iter()
        .map(|a| NewAllocation {
            org_id,
            payment_id: source.origin.payment_id(),
            credit_note_id: source.origin.credit_note_id(),
            invoice_id: a.invoice_id,
            amount_minor: a.amount_minor,
            rule: a.rule.as_str().to_string(),
            applied_on: source.applied_on,
            created_by: actor.to_string(),
            created_at: at,
        })
        .collect();
    repo::insert_allocations(c, &rows)?;
    Ok(book)
}

fn customer_ref(input: &PaymentInput) -> CustomerRef<'_> {
    CustomerRef {
        customer_id: input.customer_id.as_deref(),
        customer_external_id: input.customer_external_id.as_deref(),
    }
}

fn validate(dir: &CustomerDirectory, input: &PaymentInput, today: NaiveDate) -> Result<PaymentData, AppError> {
    let payer = dir.resolve(customer_ref(input))?.map(|r| Payer {
        id: r.id,
        currency: Currency::stored(&r.currency),
    });
    input.validate(payer.as_ref(), today).map_err(AppError::Validation)
}

/// A payment as stored, with the allocations made from it (live and released).
#[derive(Debug, Clone)]
pub struct PostedPayment {
    pub payment: PaymentRow,
    pub allocations: Vec<AllocationRow>,
}

impl PostedPayment {
    pub fn load(c: &mut DbConnection, org_id: i64, id: i64) -> Result<PostedPayment, AppError> {
        let payment = repo::find(c, org_id, id)?;
        let allocations = repo::allocations_of_payments(c, &[id])?;
        Ok(PostedPayment { payment, allocations })
    }
}

/// Posts one payment alone, in a transaction of its own: a payment of a group that could
/// not be posted with it (see `payment_groups`).
pub fn post(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &PaymentInput,
    today: NaiveDate,
) -> Result<PostedPayment, AppError> {
    match post_group(c, org_id, actor, &[input], today)?.pop() {
        Some(GroupOutcome::Posted(posted)) => Ok(*posted),
        Some(GroupOutcome::Refused(e)) => Err(e),
        _ => Err(AppError::internal("a single payment got no outcome")),
    }
}

/// The answer to a POST of an external id that is already posted.
fn already_posted(ext: &str) -> AppError {
    AppError::Conflict(format!(
        "a payment with external_id `{ext}` exists; use PUT /v1/payments/by-external-id/{ext} to repeat it safely"
    ))
}

/// What became of one payment of a group posting ([`post_group`]).
#[derive(Debug)]
pub enum GroupOutcome {
    /// Posted with the group.
    Posted(Box<PostedPayment>),
    /// Refused with the answer it would have had alone; nothing of it was written.
    Refused(AppError),
    /// Not posted: it names the same external id as an earlier payment of the group, so
    /// its answer depends on that one's. It is to be posted alone after the group commits.
    PostAlone,
}

/// Posts several separate single-payment requests of one organisation and actor together
/// (one locked read of their customers' open invoices, one insert per table, one balance
/// update), each with the answer it would have had posted alone in the given order: the
/// automatic allocation of a later payment sees what the earlier ones took. The caller
/// runs this in one write transaction; if it fails, nothing is written and the payments
/// can be posted one by one with [`post`].
pub fn post_group(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    inputs: &[&PaymentInput],
    today: NaiveDate,
) -> Result<Vec<GroupOutcome>, AppError> {
    // Key and index lookups only (see `prefer_generic_plans`).
    crate::db::prefer_generic_plans(c)?;
    let dir = CustomerDirectory::load(c, org_id, inputs.iter().map(|i| customer_ref(i)))?;
    let mut outcomes: Vec<Option<GroupOutcome>> = (0..inputs.len()).map(|_| None).collect();
    let mut claimed: HashSet<String> = HashSet::new();
    let mut drafts = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        match validate(&dir, input, today) {
            Ok(data) => match &data.external_id {
                Some(key) if !claimed.insert(key.clone()) => outcomes[index] = Some(GroupOutcome::PostAlone),
                _ => drafts.push((index, data)),
            },
            Err(e) => outcomes[index] = Some(GroupOutcome::Refused(e)),
        }
    }
    let existing = existing_payments(c, org_id, &drafts)?;
    drafts.retain(
        |(index, d)| match d.external_id.as_deref().filter(|k| existing.contains_key(*k)) {
            Some(ext) => {
                outcomes[*index] = Some(GroupOutcome::Refused(already_posted(ext)));
                false
            }
            None => true,
        },
    );
    let mut posting = post_valid(c, org_id, actor, drafts, HashMap::new())?;
    for (index, result) in std::mem::take(&mut posting.results) {
        outcomes[index] = Some(match result {
            Ok((_, id)) => GroupOutcome::Posted(Box::new(posting.take(c, org_id, id)?)),
            Err(e) => GroupOutcome::Refused(e),
        });
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| AppError::internal("a grouped payment got no outcome")))
        .collect()
}

/// PUT by external id: posts the payment if new; if it exists, updates its descriptive
/// fields (and amount, never below what is allocated) and leaves allocations alone.
pub fn upsert_one(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    external_id: &str,
    mut input: PaymentInput,
    today: NaiveDate,
) -> Result<(UpsertOutcome, PostedPayment), AppError> {
    crate::db::prefer_generic_plans(c)?;
    if let Some(body_id) = &input.external_id
        && body_id != external_id
    {
        return Err(AppError::invalid(
            "external_id",
            "differs from the external id in the path",
        ));
    }
    input.external_id = Some(external_id.to_string());
    let dir = CustomerDirectory::load(c, org_id, [customer_ref(&input)])?;
    let data = validate(&dir, &input, today)?;
    let drafts = vec![(0, data)];
    let existing = existing_payments(c, org_id, &drafts)?;
    let mut posting = post_valid(c, org_id, actor, drafts, existing)?;
    let (_, result) = posting
        .results
        .pop()
        .ok_or_else(|| AppError::internal("empty posting result"))?;
    let (outcome, id) = result?;
    Ok((outcome, posting.take(c, org_id, id)?))
}

/// Posts up to 1 000 payments (a bank statement or an ERP sync); each item needs an
/// external id, so re-sending the batch is safe. A bad item gets its problem and writes
/// nothing; the rest are posted together.
pub fn post_batch(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    items: &[serde_json::Value],
    today: NaiveDate,
) -> Result<Vec<BatchItemResult>, AppError> {
    let mut results: Vec<Option<BatchItemResult>> = vec![None; items.len()];
    let mut parsed = Vec::with_capacity(items.len());
    for (index, value) in items.iter().enumerate() {
        match parse_item::<PaymentInput>(value.clone()) {
            Ok(input) => parsed.push((index, input)),
            Err(e) => results[index] = Some(BatchItemResult::error(index, claimed_external_id(value), &e)),
        }
    }
    let dir = CustomerDirectory::load(c, org_id, parsed.iter().map(|(_, i)| customer_ref(i)))?;
    let mut keys = BatchKeys::new("is required in a batch");
    let mut valid = Vec::with_capacity(parsed.len());
    for (index, input) in &parsed {
        let checked = validate(&dir, input, today).and_then(|d| {
            keys.claim(d.external_id.as_deref())?;
            Ok(d)
        });
        match checked {
            Ok(d) => valid.push((*index, d)),
            Err(e) => results[*index] = Some(BatchItemResult::error(*index, input.external_id.clone(), &e)),
        }
    }
    let keys: HashMap<usize, String> = valid
        .iter()
        .filter_map(|(i, d)| d.external_id.clone().map(|k| (*i, k)))
        .collect();
    let existing = existing_payments(c, org_id, &valid)?;
    for (index, result) in post_valid(c, org_id, actor, valid, existing)?.results {
        let key = keys.get(&index).cloned();
        results[index] = Some(match result {
            Ok((outcome, id)) => {
                BatchItemResult::written(index, key.unwrap_or_default(), outcome, Kind::Payment.encode(id))
            }
            Err(e) => BatchItemResult::error(index, key, &e),
        });
    }
    Ok(results.into_iter().flatten().collect())
}

type ItemResult = Result<(UpsertOutcome, i64), AppError>;

/// What [`post_valid`] did: one result per draft, and the payments it created as written
/// (so a single posting answers without reading them back).
struct Posting {
    results: Vec<(usize, ItemResult)>,
    created: Vec<PostedPayment>,
}

impl Posting {
    /// The payment `id` as written here, or read if this posting did not create it.
    fn take(&mut self, c: &mut DbConnection, org_id: i64, id: i64) -> Result<PostedPayment, AppError> {
        match self.created.iter().position(|p| p.payment.id == id) {
            Some(i) => Ok(self.created.swap_remove(i)),
            None => PostedPayment::load(c, org_id, id),
        }
    }
}

/// The stored payments the drafts name by external id, by that id, locked until the end of
/// the transaction.
fn existing_payments(
    c: &mut DbConnection,
    org_id: i64,
    drafts: &[(usize, PaymentData)],
) -> Result<HashMap<String, PaymentRow>, AppError> {
    let keys: Vec<&str> = drafts.iter().filter_map(|(_, d)| d.external_id.as_deref()).collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(repo::lock_by_external_ids(c, org_id, &keys)?
        .into_iter()
        .filter_map(|p| p.external_id.clone().map(|k| (k, p)))
        .collect())
}

/// Posts validated payments: those in `existing` (from [`existing_payments`]) are compared
/// (unchanged, or their details updated), new ones are allocated against one locked read of
/// their customers' open invoices and written with their allocations, then balances are
/// re-derived.
fn post_valid(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    drafts: Vec<(usize, PaymentData)>,
    existing: HashMap<String, PaymentRow>,
) -> Result<Posting, AppError> {
    let rules = settings(c, org_id)?.allocation_rules;
    let new_customers: Vec<i64> = drafts
        .iter()
        .filter(|(_, d)| d.external_id.as_ref().is_none_or(|k| !existing.contains_key(k)))
        .map(|(_, d)| d.customer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let explicit_ids: Vec<i64> = drafts
        .iter()
        .flat_map(|(_, d)| d.explicit.iter().flatten().filter_map(|r| r.invoice_id))
        .collect();
    let mut book = lock_book(c, org_id, &new_customers, &explicit_ids)?;

    let mut results: Vec<(usize, ItemResult)> = Vec::with_capacity(drafts.len());
    let mut new_payments: Vec<(usize, NewPayment, Vec<Allocation>)> = Vec::new();
    let mut updated_payments = Vec::new();
    let at = now();
    for (index, d) in drafts {
        if let Some(current) = d.external_id.as_ref().and_then(|k| existing.get(k)) {
            results.push((
                index,
                update_existing(c, org_id, current, &d).map(|o| {
                    if o == UpsertOutcome::Updated {
                        updated_payments.push(current.id);
                    }
                    (o, current.id)
                }),
            ));
            continue;
        }
        match book.allocate(
            d.customer_id,
            d.currency.code(),
            d.amount_minor,
            d.reference.as_deref(),
            d.explicit.as_deref(),
            &rules,
        ) {
            Ok(allocations) => {
                let allocated: i64 = allocations.iter().map(|a| a.amount_minor).sum();
                new_payments.push((
                    index,
                    NewPayment {
                        org_id,
                        customer_id: d.customer_id,
                        external_id: d.external_id.clone(),
                        amount_minor: d.amount_minor,
                        currency: d.currency.code().to_string(),
                        received_on: d.received_on,
                        method: d.method.clone(),
                        reference: d.reference.clone(),
                        allocated_minor: allocated,
                        status: PaymentStatus::from_amounts(d.amount_minor, allocated)
                            .as_str()
                            .to_string(),
                        version: 1,
                        created_at: at,
                        updated_at: at,
                    },
                    allocations,
                ));
            }
            Err(e) => results.push((index, Err(e))),
        }
    }
    let payment_rows: Vec<NewPayment> = new_payments.iter().map(|(_, p, _)| p.clone()).collect();
    let inserted = repo::insert_many(c, &payment_rows)?;
    let ids: Vec<i64> = inserted.iter().map(|p| p.id).collect();
    let mut allocation_rows = Vec::new();
    let mut event_rows = Vec::new();
    for ((index, payment, allocations), id) in new_payments.iter().zip(&ids) {
        results.push((*index, Ok((UpsertOutcome::Created, *id))));
        for a in allocations {
            allocation_rows.push(NewAllocation {
                org_id,
                payment_id: Some(*id),
                credit_note_id: None,
                invoice_id: a.invoice_id,
                amount_minor: a.amount_minor,
                rule: a.rule.as_str().to_string(),
                applied_on: payment.received_on,
                created_by: actor.to_string(),
                created_at: at,
            });
        }
        event_rows.push(NewEvent::new(
            org_id,
            "payment.received",
            Kind::Payment.encode(*id),
            Some(payment.customer_id),
            serde_json::json!({"amount_minor": payment.amount_minor, "currency": payment.currency, "received_on": payment.received_on}),
        ));
    }
    let mut allocated: HashMap<i64, Vec<AllocationRow>> = HashMap::new();
    for a in repo::insert_allocations(c, &allocation_rows)? {
        allocated.entry(a.payment_id.unwrap_or_default()).or_default().push(a);
    }
    let created = inserted
        .into_iter()
        .map(|payment| PostedPayment {
            allocations: allocated.remove(&payment.id).unwrap_or_default(),
            payment,
        })
        .collect();
    let touched: Vec<i64> = book.touched.iter().copied().collect();
    // Existing payments never gain allocations here: their balances are already current.
    repo::refresh_balances(c, &touched, &[])?;
    for paid in book.newly_paid() {
        event_rows.push(NewEvent::new(
            org_id,
            "invoice.paid",
            Kind::Invoice.encode(paid.id),
            Some(paid.customer_id),
            serde_json::json!({"number": paid.number, "due_date": paid.due_date}),
        ));
    }
    events::insert_many(c, &event_rows)?;
    let payers: Vec<i64> = new_payments
        .iter()
        .map(|(_, p, _)| p.customer_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    crate::service::hooks::payment_received(c, org_id, &payers)?;
    crate::service::hooks::cancel_settled_actions(c, &touched)?;
    results.sort_by_key(|(i, _)| *i);
    Ok(Posting { results, created })
}

/// A repeated payment (same external id): unchanged if the same, else its details change;
/// money that is already applied constrains what may change.
fn update_existing(
    c: &mut DbConnection,
    org_id: i64,
    current: &PaymentRow,
    d: &PaymentData,
) -> Result<UpsertOutcome, AppError> {
    let same = current.customer_id == d.customer_id
        && current.currency == d.currency.code()
        && current.amount_minor == d.amount_minor
        && current.received_on == d.received_on
        && current.method == d.method
        && current.reference == d.reference;
    if same {
        return Ok(UpsertOutcome::Unchanged);
    }
    if current.status == "reversed" {
        return Err(AppError::Conflict("the payment is reversed and cannot change".into()));
    }
    if current.customer_id != d.customer_id || current.currency != d.currency.code() {
        return Err(AppError::Conflict(
            "the customer and currency of a posted payment cannot change".into(),
        ));
    }
    if d.amount_minor < current.allocated_minor {
        return Err(AppError::Conflict(
            "the new amount is below what is already allocated from this payment".into(),
        ));
    }
    repo::update_details(
        c,
        org_id,
        current.id,
        d.received_on,
        &d.method,
        d.reference.as_deref(),
        d.amount_minor,
    )?;
    repo::refresh_balances(c, &[], &[current.id])?;
    Ok(UpsertOutcome::Updated)
}

/// Applies a payment's unapplied cash: to the requested invoices, or by the automatic
/// rules when none are given.
pub fn allocate(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    payment_id: i64,
    requested: Option<&[AllocationInput]>,
    today: NaiveDate,
) -> Result<PaymentRow, AppError> {
    let payment = repo::lock(c, org_id, payment_id)?;
    if payment.status == "reversed" {
        return Err(AppError::Conflict("the payment is reversed".into()));
    }
    let available = payment.amount_minor - payment.allocated_minor;
    if available == 0 {
        return Err(AppError::Conflict("the payment is fully applied".into()));
    }
    let source = Source {
        customer_id: payment.customer_id,
        currency: &payment.currency,
        reference: payment.reference.as_deref(),
        origin: Origin::Payment {
            id: payment.id,
            available,
        },
        applied_on: today.max(payment.received_on),
    };
    let book = apply_source(c, org_id, actor, &source, requested)?;
    finish(c, org_id, &book, &[payment.id])?;
    repo::find(c, org_id, payment.id)
}

/// Re-derives balances, records `invoice.paid` events and runs the hooks.
fn finish(c: &mut DbConnection, org_id: i64, book: &Book, payment_ids: &[i64]) -> Result<(), AppError> {
    let touched: Vec<i64> = book.touched.iter().copied().collect();
    repo::refresh_balances(c, &touched, payment_ids)?;
    let paid: Vec<NewEvent> = book
        .newly_paid()
        .into_iter()
        .map(|r| {
            NewEvent::new(
                org_id,
                "invoice.paid",
                Kind::Invoice.encode(r.id),
                Some(r.customer_id),
                serde_json::json!({"number": r.number, "due_date": r.due_date}),
            )
        })
        .collect();
    events::insert_many(c, &paid)?;
    crate::service::hooks::cash_applied(c, org_id, &touched)
}

/// Unapplies one allocation of a payment; it stays in the history as released.
pub fn unallocate(
    c: &mut DbConnection,
    org_id: i64,
    payment_id: i64,
    allocation_id: i64,
) -> Result<PaymentRow, AppError> {
    let payment = repo::lock(c, org_id, payment_id)?;
    let allocation = repo::allocations_of_payments(c, &[payment.id])?
        .into_iter()
        .find(|a| a.id == allocation_id)
        .ok_or_else(|| AppError::not_found("allocation"))?;
    if allocation.released_at.is_some() {
        return Err(AppError::Conflict("the allocation is already released".into()));
    }
    invoice_repo::lock_many(c, org_id, &[allocation.invoice_id])?;
    repo::release(c, org_id, &[allocation.id], "unapplied")?;
    repo::refresh_balances(c, &[allocation.invoice_id], &[payment.id])?;
    crate::service::hooks::cash_applied(c, org_id, &[allocation.invoice_id])?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "allocation.released",
            Kind::Payment.encode(payment.id),
            Some(payment.customer_id),
            serde_json::json!({"allocation_id": allocation.id, "invoice_id": Kind::Invoice.encode(allocation.invoice_id), "amount_minor": allocation.amount_minor}),
        )],
    )?;
    repo::find(c, org_id, payment.id)
}

/// Reverses a payment (bounced cheque, chargeback, returned direct debit): releases all its
/// allocations, reopening the invoices, and records the fact for risk signals.
pub fn reverse(c: &mut DbConnection, org_id: i64, payment_id: i64, reason: &str) -> Result<PaymentRow, AppError> {
    let payment = repo::lock(c, org_id, payment_id)?;
    if payment.status == "reversed" {
        return Err(AppError::Conflict("the payment is already reversed".into()));
    }
    let live: Vec<_> = repo::allocations_of_payments(c, &[payment.id])?
        .into_iter()
        .filter(|a| a.released_at.is_none())
        .collect();
    let invoice_ids: Vec<i64> = live
        .iter()
        .map(|a| a.invoice_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    invoice_repo::lock_many(c, org_id, &invoice_ids)?;
    let ids: Vec<i64> = live.iter().map(|a| a.id).collect();
    repo::release(c, org_id, &ids, &format!("payment reversed: {reason}"))?;
    repo::mark_reversed(c, org_id, payment.id, reason)?;
    repo::refresh_balances(c, &invoice_ids, &[payment.id])?;
    crate::db::repo::tasks::record_fact(
        c,
        &crate::db::repo::tasks::NewRiskFact {
            org_id,
            customer_id: payment.customer_id,
            kind: "payment_reversed",
            subject_id: &Kind::Payment.encode(payment.id),
            occurred_on: now().date(),
            amount_minor: Some(payment.amount_minor),
            currency: Some(&payment.currency),
        },
    )?;
    crate::service::hooks::payment_received(c, org_id, &[payment.customer_id])?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "payment.reversed",
            Kind::Payment.encode(payment.id),
            Some(payment.customer_id),
            serde_json::json!({"reason": reason, "amount_minor": payment.amount_minor, "currency": payment.currency,
                               "reopened_invoices": invoice_ids.iter().map(|i| Kind::Invoice.encode(*i)).collect::<Vec<_>>()}),
        )],
    )?;
    repo::find(c, org_id, payment.id)
}

/// Applies a credit note's open credit to invoices of the same customer and currency.
pub fn apply_credit_note(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    credit_note_id: i64,
    requested: Option<&[AllocationInput]>,
    today: NaiveDate,
) -> Result<InvoiceRow, AppError> {
    // Read first for its customer; `apply_source` locks it with that customer's invoices
    // and checks it again.
    let note = invoice_repo::find(c, org_id, credit_note_id).map_err(|e| match e {
        AppError::NotFound(_) => AppError::not_found("credit note"),
        other => other,
    })?;
    check_credit_note(&note)?;
    let source = Source {
        customer_id: note.customer_id,
        currency: &note.currency,
        reference: None,
        origin: Origin::CreditNote { id: note.id },
        applied_on: today,
    };
    let mut book = apply_source(c, org_id, actor, &source, requested)?;
    book.touched.insert(note.id);
    finish(c, org_id, &book, &[])?;
    invoice_repo::find(c, org_id, note.id)
}
