//! Invoice use cases: create, merge-patch, upsert by external id (one or a batch of up to
//! 1 000, set-based), cancel and write-off, and the customer statement.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::db::repo::customers::CustomerRow;
use crate::db::repo::invoices::{self as repo, InvoiceRow, InvoiceWrite};
use crate::db::{DbConnection, write_transaction};
use crate::domain::ids::Kind;
use crate::domain::invoice::{CustomerTerms, InvoiceData, InvoiceInput, InvoiceStatus, open_after_amount_change};
use crate::domain::money::Currency;
use crate::error::AppError;
use crate::service::directory::{CustomerDirectory, CustomerRef};
use crate::service::{
    BatchItemResult, BatchKeys, UpsertOutcome, check_version, claimed_external_id, merge_patch, parse_item,
};

impl InvoiceRow {
    pub fn data(&self) -> InvoiceData {
        InvoiceData {
            external_id: self.external_id.clone(),
            customer_id: self.customer_id,
            kind: self.kind.clone(),
            number: self.number.clone(),
            currency: Currency::stored(&self.currency),
            amount_minor: self.amount_minor,
            tax_minor: self.tax_minor,
            issue_date: self.issue_date,
            due_date: self.due_date,
            purchase_order: self.purchase_order.clone(),
            delivered_on: self.delivered_on,
        }
    }

    fn to_input(&self) -> InvoiceInput {
        let d = self.data();
        InvoiceInput {
            external_id: d.external_id,
            customer_id: Some(Kind::Customer.encode(d.customer_id)),
            customer_external_id: None,
            kind: Some(d.kind),
            number: Some(d.number),
            currency: Some(d.currency.code().to_string()),
            amount: Some(crate::domain::money::format_amount(d.amount_minor, d.currency)),
            tax_amount: Some(crate::domain::money::format_amount(d.tax_minor, d.currency)),
            issue_date: Some(d.issue_date),
            due_date: Some(d.due_date),
            purchase_order: d.purchase_order,
            delivered_on: d.delivered_on,
        }
    }

    pub fn status(&self) -> InvoiceStatus {
        InvoiceStatus::parse(&self.status).unwrap_or(InvoiceStatus::Open)
    }
}

fn terms(row: &CustomerRow) -> CustomerTerms {
    CustomerTerms {
        id: row.id,
        currency: Currency::stored(&row.currency),
        payment_terms_days: row.payment_terms_days,
    }
}

fn customer_ref(input: &InvoiceInput) -> CustomerRef<'_> {
    CustomerRef {
        customer_id: input.customer_id.as_deref(),
        customer_external_id: input.customer_external_id.as_deref(),
    }
}

fn load_directory(c: &mut DbConnection, org_id: i64, inputs: &[&InvoiceInput]) -> Result<CustomerDirectory, AppError> {
    CustomerDirectory::load(c, org_id, inputs.iter().map(|i| customer_ref(i)))
}

fn validate(dir: &CustomerDirectory, input: &InvoiceInput) -> Result<InvoiceData, AppError> {
    let customer = dir.resolve(customer_ref(input))?.map(terms);
    input.validate(customer.as_ref()).map_err(AppError::Validation)
}

pub fn create(conn: &mut DbConnection, org_id: i64, input: &InvoiceInput) -> Result<InvoiceRow, AppError> {
    write_transaction(conn, |c| {
        let dir = load_directory(c, org_id, &[input])?;
        let data = validate(&dir, input)?;
        if let Some(ext) = &data.external_id
            && !repo::find_by_external_ids(c, org_id, &[ext.as_str()])?.is_empty()
        {
            return Err(AppError::Conflict(format!(
                "an invoice with external_id `{ext}` exists; use PUT /v1/invoices/by-external-id/{ext} to update it"
            )));
        }
        let row = repo::insert(
            c,
            org_id,
            &InvoiceWrite {
                data: &data,
                open_minor: data.amount_minor,
                status: InvoiceStatus::Open.as_str(),
                paid_on: None,
                based_on_version: None,
            },
        )?;
        crate::service::hooks::credit_inputs_changed(c, org_id, &[row.customer_id])?;
        Ok(row)
    })
}

/// How an existing invoice changes to `data`: its new open amount, status and paid date,
/// or a conflict when the change would contradict what was applied or decided.
fn planned_change(
    current: &InvoiceRow,
    data: &InvoiceData,
    today: NaiveDate,
) -> Result<(i64, InvoiceStatus, Option<NaiveDate>), AppError> {
    let status = current.status();
    if status.is_closed_by_decision() {
        return Err(AppError::Conflict(format!(
            "the invoice is {} and cannot be changed",
            status.as_str()
        )));
    }
    let applied = current.amount_minor - current.open_minor;
    if applied > 0 && (data.customer_id != current.customer_id || data.currency.code() != current.currency) {
        return Err(AppError::Conflict(
            "payments or credits are applied to this invoice: its customer and currency cannot change".into(),
        ));
    }
    // Money applied to an invoice would turn into credit the customer can spend (and a
    // credit note's applications into money owed) if the kind changed under it.
    let was_credit = current.kind == "credit_note";
    if applied > 0 && was_credit != (data.kind == "credit_note") {
        return Err(AppError::Conflict(if was_credit {
            "this credit note is applied to invoices: it cannot become an invoice".into()
        } else {
            "payments or credits are applied to this invoice: it cannot become a credit note".into()
        }));
    }
    let open =
        open_after_amount_change(current.amount_minor, current.open_minor, data.amount_minor).ok_or_else(|| {
            AppError::Conflict("the new amount is below what has already been applied to the invoice".into())
        })?;
    let paid_on = if open == 0 {
        current.paid_on.or(Some(today))
    } else {
        None
    };
    Ok((open, InvoiceStatus::from_amounts(data.amount_minor, open), paid_on))
}

pub fn patch(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: Option<i64>,
    patch: &serde_json::Value,
    today: NaiveDate,
) -> Result<InvoiceRow, AppError> {
    write_transaction(conn, |c| {
        let current = repo::lock_many(c, org_id, &[id])?
            .pop()
            .ok_or_else(|| AppError::not_found("invoice"))?;
        check_version(expected_version, current.version)?;
        let mut base = current.to_input();
        if patch.get("customer_external_id").is_some() && patch.get("customer_id").is_none() {
            base.customer_id = None;
        }
        let input = merge_patch(&base, patch)?;
        let dir = load_directory(c, org_id, &[&input])?;
        let data = validate(&dir, &input)?;
        if data == current.data() {
            return Ok(current);
        }
        let (open, status, paid_on) = planned_change(&current, &data, today)?;
        if data.external_id != current.external_id
            && let Some(ext) = &data.external_id
            && !repo::find_by_external_ids(c, org_id, &[ext.as_str()])?.is_empty()
        {
            return Err(AppError::Conflict(format!("another invoice has external_id `{ext}`")));
        }
        let write = InvoiceWrite {
            data: &data,
            open_minor: open,
            status: status.as_str(),
            paid_on,
            based_on_version: Some(current.version),
        };
        if !repo::update(c, org_id, id, current.version, &write)? {
            return Err(AppError::PreconditionFailed(
                "the invoice changed meanwhile; retry".into(),
            ));
        }
        crate::service::hooks::credit_inputs_changed(c, org_id, &[current.customer_id, data.customer_id])?;
        repo::find(c, org_id, id)
    })
}

/// PUT by external id: the body is the whole invoice; `external_id` comes from the path.
pub fn upsert_one(
    conn: &mut DbConnection,
    org_id: i64,
    external_id: &str,
    mut input: InvoiceInput,
    today: NaiveDate,
) -> Result<(UpsertOutcome, InvoiceRow), AppError> {
    if let Some(body_id) = &input.external_id
        && body_id != external_id
    {
        return Err(AppError::invalid(
            "external_id",
            "differs from the external id in the path",
        ));
    }
    input.external_id = Some(external_id.to_string());
    write_transaction(conn, |c| {
        let dir = load_directory(c, org_id, &[&input])?;
        let data = validate(&dir, &input)?;
        let mut written = upsert_valid(c, org_id, &[(0, data)], today)?;
        let (_, _, result) = written.pop().ok_or_else(|| AppError::internal("empty upsert result"))?;
        let (outcome, id) = result?;
        Ok((outcome, repo::find(c, org_id, id)?))
    })
}

/// Upserts up to 1 000 invoices by external id; a bad item gets its problem and writes
/// nothing, the others are written set-based.
pub fn upsert_batch(
    conn: &mut DbConnection,
    org_id: i64,
    items: Vec<serde_json::Value>,
    today: NaiveDate,
) -> Result<Vec<BatchItemResult>, AppError> {
    let mut results: Vec<Option<BatchItemResult>> = vec![None; items.len()];
    let mut parsed: Vec<(usize, Option<String>, InvoiceInput)> = Vec::with_capacity(items.len());
    for (index, value) in items.into_iter().enumerate() {
        let claimed = claimed_external_id(&value);
        match parse_item::<InvoiceInput>(value) {
            Ok(input) => parsed.push((index, claimed, input)),
            Err(e) => results[index] = Some(BatchItemResult::error(index, claimed, &e)),
        }
    }
    // The customers are read and the items checked before the write transaction: on
    // SQLite it holds the database's one writer lock, and what happens outside it runs
    // beside the other writers. Nothing is lost by it: the foreign key still refuses an
    // invoice of a customer that vanished meanwhile, and inside a PostgreSQL transaction
    // (read committed, no row locks) a concurrent change of the customer could interleave
    // just the same.
    let dir = {
        let inputs: Vec<&InvoiceInput> = parsed.iter().map(|(_, _, i)| i).collect();
        load_directory(conn, org_id, &inputs)?
    };
    let mut keys = BatchKeys::new("is required in a batch upsert");
    let mut valid = Vec::with_capacity(parsed.len());
    // Consumed as checked, and the directory dropped after: a batch waiting for the writer
    // holds only the data it will write.
    for (index, claimed, input) in parsed {
        let checked = validate(&dir, &input).and_then(|data| {
            keys.claim(data.external_id.as_deref())?;
            Ok(data)
        });
        match checked {
            Ok(data) => valid.push((index, data)),
            Err(e) => results[index] = Some(BatchItemResult::error(index, claimed, &e)),
        }
    }
    drop((dir, keys));
    let written = write_transaction(conn, |c| upsert_valid(c, org_id, &valid, today))?;
    for (index, key, result) in written {
        results[index] = Some(match result {
            Ok((outcome, id)) => BatchItemResult::written(index, key, outcome, Kind::Invoice.encode(id)),
            Err(e) => BatchItemResult::error(index, Some(key), &e),
        });
    }
    Ok(results.into_iter().flatten().collect())
}

type ItemOutcome = Result<(UpsertOutcome, i64), AppError>;
/// An item's position in the request, its external id and what became of it.
type ItemResult = (usize, String, ItemOutcome);

/// Writes validated invoices with distinct external ids: one locked SELECT of the existing
/// rows, one INSERT … ON CONFLICT … RETURNING per 250 rows (the new ids).
fn upsert_valid(
    c: &mut DbConnection,
    org_id: i64,
    valid: &[(usize, InvoiceData)],
    today: NaiveDate,
) -> Result<Vec<ItemResult>, AppError> {
    let (mut outcomes, raced) = upsert_pass(c, org_id, valid, today)?;
    if raced.is_empty() {
        return Ok(outcomes);
    }
    // Items decided as new whose invoice a concurrent request created meanwhile (PostgreSQL,
    // see `repo::upsert_many`) were not written. That request has committed, so a second
    // pass reads and locks its row and updates it, as if this request had come second.
    let again: Vec<(usize, InvoiceData)> = raced.iter().map(|&at| valid[at].clone()).collect();
    let (second, raced_again) = upsert_pass(c, org_id, &again, today)?;
    for (position, (at, mut outcome)) in raced.into_iter().zip(second).enumerate() {
        if raced_again.contains(&position) {
            outcome.2 = Err(AppError::Conflict(format!(
                "the invoice with external_id `{}` changed while it was written; send it again",
                outcome.1
            )));
        }
        outcomes[at] = outcome;
    }
    Ok(outcomes)
}

/// One pass of [`upsert_valid`]: an outcome per item, in order, and the positions of the
/// items decided as new that were not written because their invoice appeared meanwhile.
fn upsert_pass(
    c: &mut DbConnection,
    org_id: i64,
    valid: &[(usize, InvoiceData)],
    today: NaiveDate,
) -> Result<(Vec<ItemResult>, Vec<usize>), AppError> {
    let keys: Vec<&str> = valid.iter().filter_map(|(_, d)| d.external_id.as_deref()).collect();
    // Locked: a payment applied meanwhile would otherwise be overwritten by a balance
    // decided on the row as read here.
    let existing: HashMap<String, InvoiceRow> = repo::lock_by_external_ids(c, org_id, &keys)?
        .into_iter()
        .filter_map(|row| row.external_id.clone().map(|k| (k, row)))
        .collect();
    let mut writes = Vec::with_capacity(valid.len());
    let mut outcomes: Vec<ItemResult> = Vec::with_capacity(valid.len());
    for (index, data) in valid {
        let key = data.external_id.clone().unwrap_or_default();
        let write = |open_minor, status: InvoiceStatus, paid_on, based_on_version| InvoiceWrite {
            data,
            open_minor,
            status: status.as_str(),
            paid_on,
            based_on_version,
        };
        match existing.get(&key) {
            None => {
                writes.push(write(data.amount_minor, InvoiceStatus::Open, None, None));
                outcomes.push((*index, key, Ok((UpsertOutcome::Created, 0))));
            }
            Some(row) if row.data() == *data => outcomes.push((*index, key, Ok((UpsertOutcome::Unchanged, row.id)))),
            Some(row) => match planned_change(row, data, today) {
                Ok((open, status, paid_on)) => {
                    writes.push(write(open, status, paid_on, Some(row.version)));
                    outcomes.push((*index, key, Ok((UpsertOutcome::Updated, row.id))));
                }
                Err(e) => outcomes.push((*index, key, Err(e))),
            },
        }
    }
    let written: HashMap<String, i64> = repo::upsert_many(c, org_id, &writes)?
        .into_iter()
        .filter_map(|(id, key)| key.map(|k| (k, id)))
        .collect();
    let touched: Vec<i64> = (writes.iter().map(|w| w.data.customer_id))
        .chain(existing.values().map(|r| r.customer_id))
        .collect();
    crate::service::hooks::credit_inputs_changed(c, org_id, &touched)?;
    let mut raced = Vec::new();
    for (position, (_, key, outcome)) in outcomes.iter_mut().enumerate() {
        if let Ok((UpsertOutcome::Created, id)) = outcome {
            match written.get(key.as_str()) {
                Some(written_id) => *id = *written_id,
                None => raced.push(position),
            }
        }
    }
    Ok((outcomes, raced))
}

/// Cancels (`cancelled`) or writes off (`written_off`) an invoice with a reason.
pub fn close(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    target: InvoiceStatus,
    reason: &str,
) -> Result<InvoiceRow, AppError> {
    write_transaction(conn, |c| {
        let current = repo::lock_many(c, org_id, &[id])?
            .pop()
            .ok_or_else(|| AppError::not_found("invoice"))?;
        let status = current.status();
        if status == target {
            return Ok(current);
        }
        if status.is_closed_by_decision() {
            return Err(AppError::Conflict(format!(
                "the invoice is already {}",
                status.as_str()
            )));
        }
        if target == InvoiceStatus::Cancelled && current.open_minor < current.amount_minor {
            return Err(AppError::Conflict(
                "payments or credits are applied to this invoice: unapply them before cancelling, or write off the rest".into(),
            ));
        }
        if target == InvoiceStatus::WrittenOff && current.open_minor == 0 {
            return Err(AppError::Conflict(
                "the invoice is fully paid; nothing to write off".into(),
            ));
        }
        let written_off = if target == InvoiceStatus::WrittenOff {
            current.open_minor
        } else {
            0
        };
        if !repo::close(c, org_id, id, current.version, target.as_str(), reason, written_off)? {
            return Err(AppError::PreconditionFailed(
                "the invoice changed meanwhile; retry".into(),
            ));
        }
        crate::service::hooks::credit_inputs_changed(c, org_id, &[current.customer_id])?;
        repo::find(c, org_id, id)
    })
}
