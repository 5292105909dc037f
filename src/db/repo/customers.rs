//! Customers: rows, set-based upsert by external id, lookups and keyset-paginated lists.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::db::schema::customers;
use crate::db::{DbConnection, now};
use crate::domain::customer::{Contact, CustomerData};
use crate::domain::money::Currency;
use crate::error::AppError;
use crate::{dispatch, in_prepared_chunks};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct CustomerRow {
    pub id: i64,
    pub org_id: i64,
    pub external_id: Option<String>,
    pub name: String,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub language: String,
    pub currency: String,
    pub payment_terms_days: i32,
    pub segment: Option<String>,
    pub collector: Option<String>,
    pub sales_rep: Option<String>,
    pub credit_limit_minor: Option<i64>,
    pub dunning_paused_until: Option<NaiveDate>,
    pub dunning_pause_reason: Option<String>,
    pub contacts: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Derived by credit control and risk signals (`service::credit`).
    pub credit_status: String,
    pub risk_class: Option<String>,
    pub risk_score: i32,
    pub flag_broken_promise: bool,
    pub flag_over_limit: bool,
    pub flag_at_risk: bool,
    pub flag_in_dispute: bool,
    /// Derived from open escalations (`service::escalations`).
    pub flag_with_agency: bool,
    pub flag_legal: bool,
}

impl CustomerRow {
    pub fn contacts(&self) -> Vec<Contact> {
        serde_json::from_str(&self.contacts).unwrap_or_default()
    }

    /// The stored customer as domain data (what a merge patch starts from).
    pub fn data(&self) -> CustomerData {
        CustomerData {
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            legal_name: self.legal_name.clone(),
            tax_id: self.tax_id.clone(),
            country: self.country.clone(),
            language: self.language.clone(),
            currency: Currency::stored(&self.currency),
            payment_terms_days: self.payment_terms_days,
            segment: self.segment.clone(),
            collector: self.collector.clone(),
            sales_rep: self.sales_rep.clone(),
            credit_limit_minor: self.credit_limit_minor,
            dunning_paused_until: self.dunning_paused_until,
            dunning_pause_reason: self.dunning_pause_reason.clone(),
            contacts: self.contacts(),
        }
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true, treat_none_as_default_value = false)]
struct CustomerValues<'a> {
    org_id: i64,
    external_id: Option<&'a str>,
    name: &'a str,
    legal_name: Option<&'a str>,
    tax_id: Option<&'a str>,
    country: Option<&'a str>,
    language: &'a str,
    currency: &'a str,
    payment_terms_days: i32,
    segment: Option<&'a str>,
    collector: Option<&'a str>,
    sales_rep: Option<&'a str>,
    credit_limit_minor: Option<i64>,
    dunning_paused_until: Option<NaiveDate>,
    dunning_pause_reason: Option<&'a str>,
    contacts: String,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

fn values(org_id: i64, d: &CustomerData, at: NaiveDateTime) -> CustomerValues<'_> {
    CustomerValues {
        org_id,
        external_id: d.external_id.as_deref(),
        name: &d.name,
        legal_name: d.legal_name.as_deref(),
        tax_id: d.tax_id.as_deref(),
        country: d.country.as_deref(),
        language: &d.language,
        currency: d.currency.code(),
        payment_terms_days: d.payment_terms_days,
        segment: d.segment.as_deref(),
        collector: d.collector.as_deref(),
        sales_rep: d.sales_rep.as_deref(),
        credit_limit_minor: d.credit_limit_minor,
        dunning_paused_until: d.dunning_paused_until,
        dunning_pause_reason: d.dunning_pause_reason.as_deref(),
        contacts: serde_json::to_string(&d.contacts).unwrap_or_else(|_| "[]".into()),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

pub fn insert(conn: &mut DbConnection, org_id: i64, data: &CustomerData) -> Result<CustomerRow, AppError> {
    let row = values(org_id, data, now());
    let id: i64 = dispatch!(conn, |c| diesel::insert_into(customers::table)
        .values(&row)
        .returning(customers::id)
        .get_result(c))?;
    find(conn, org_id, id)
}

/// Inserts new customers and updates existing ones (matched on external id) set-based, in
/// statements of [`crate::db::PREPARED_CHUNK_ROWS`] rows. Every item must carry an external id.
pub fn upsert_many(conn: &mut DbConnection, org_id: i64, items: &[&CustomerData]) -> Result<(), AppError> {
    if items.is_empty() {
        return Ok(());
    }
    let at = now();
    let rows: Vec<CustomerValues<'_>> = items.iter().map(|d| values(org_id, d, at)).collect();
    in_prepared_chunks!(rows, |chunk| {
        dispatch!(conn, |c| diesel::insert_into(customers::table)
            .values(chunk)
            .on_conflict((customers::org_id, customers::external_id))
            .do_update()
            .set((
                customers::name.eq(excluded(customers::name)),
                customers::legal_name.eq(excluded(customers::legal_name)),
                customers::tax_id.eq(excluded(customers::tax_id)),
                customers::country.eq(excluded(customers::country)),
                customers::language.eq(excluded(customers::language)),
                customers::currency.eq(excluded(customers::currency)),
                customers::payment_terms_days.eq(excluded(customers::payment_terms_days)),
                customers::segment.eq(excluded(customers::segment)),
                customers::collector.eq(excluded(customers::collector)),
                customers::sales_rep.eq(excluded(customers::sales_rep)),
                customers::credit_limit_minor.eq(excluded(customers::credit_limit_minor)),
                customers::dunning_paused_until.eq(excluded(customers::dunning_paused_until)),
                customers::dunning_pause_reason.eq(excluded(customers::dunning_pause_reason)),
                customers::contacts.eq(excluded(customers::contacts)),
                customers::version.eq(customers::version + 1),
                customers::updated_at.eq(excluded(customers::updated_at)),
            ))
            .execute(c))?
    });
    Ok(())
}

/// Replaces a customer's fields if its version is still `expected_version`; returns
/// whether the row was updated.
pub fn update(
    conn: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: i64,
    data: &CustomerData,
) -> Result<bool, AppError> {
    let mut row = values(org_id, data, now());
    row.version = expected_version + 1;
    let changed = diesel::update(
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq(id))
            .filter(customers::version.eq(expected_version)),
    )
    .set((
        customers::external_id.eq(row.external_id),
        customers::name.eq(row.name),
        customers::legal_name.eq(row.legal_name),
        customers::tax_id.eq(row.tax_id),
        customers::country.eq(row.country),
        customers::language.eq(row.language),
        customers::currency.eq(row.currency),
        customers::payment_terms_days.eq(row.payment_terms_days),
        customers::segment.eq(row.segment),
        customers::collector.eq(row.collector),
        customers::sales_rep.eq(row.sales_rep),
        customers::credit_limit_minor.eq(row.credit_limit_minor),
        customers::dunning_paused_until.eq(row.dunning_paused_until),
        customers::dunning_pause_reason.eq(row.dunning_pause_reason),
        customers::contacts.eq(&row.contacts),
        customers::version.eq(row.version),
        customers::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn find(conn: &mut DbConnection, org_id: i64, id: i64) -> Result<CustomerRow, AppError> {
    customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::id.eq(id))
        .select(CustomerRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("customer"))
}

/// Reads a customer and, on PostgreSQL, locks its row until the transaction ends.
pub fn lock(conn: &mut DbConnection, org_id: i64, id: i64) -> Result<CustomerRow, AppError> {
    crate::locked!(
        conn,
        customers::table
            .filter(customers::org_id.eq(org_id))
            .filter(customers::id.eq(id))
            .select(CustomerRow::as_select()),
        |q, c| q.first(c).optional()
    )?
    .ok_or_else(|| AppError::not_found("customer"))
}

pub fn find_by_external_ids(conn: &mut DbConnection, org_id: i64, ids: &[&str]) -> Result<Vec<CustomerRow>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        found.extend(
            customers::table
                .filter(customers::org_id.eq(org_id))
                .filter(customers::external_id.eq_any(chunk))
                .select(CustomerRow::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

pub fn find_many(conn: &mut DbConnection, org_id: i64, ids: &[i64]) -> Result<Vec<CustomerRow>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        found.extend(
            customers::table
                .filter(customers::org_id.eq(org_id))
                .filter(customers::id.eq_any(chunk))
                .select(CustomerRow::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

#[derive(Debug, Default, Clone)]
pub struct CustomerFilter {
    pub updated_since: Option<NaiveDateTime>,
    pub external_id: Option<String>,
    pub segment: Option<String>,
    pub collector: Option<String>,
    pub sales_rep: Option<String>,
    pub country: Option<String>,
    /// Only customers in one of these risk classes (`A`–`E`).
    pub risk_classes: Option<Vec<String>>,
    /// Riskiest first (risk score descending, then id) instead of id order.
    pub by_risk: bool,
}

/// Keyset position of a page sorted by risk: (risk score, id) of the last row.
pub type RiskKey = (i32, i64);

/// One page in id order, after `after_id` (or by risk, after `after_risk`).
pub fn list(
    conn: &mut DbConnection,
    org_id: i64,
    filter: &CustomerFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<CustomerRow>, AppError> {
    list_sorted(conn, org_id, filter, after_id, None, limit)
}

/// Like `list`; with `filter.by_risk` the order is risk score descending then id, and
/// `after_risk` is the keyset position of the previous page.
pub fn list_sorted(
    conn: &mut DbConnection,
    org_id: i64,
    filter: &CustomerFilter,
    after_id: i64,
    after_risk: Option<RiskKey>,
    limit: i64,
) -> Result<Vec<CustomerRow>, AppError> {
    let mut query = customers::table
        .filter(customers::org_id.eq(org_id))
        .select(CustomerRow::as_select())
        .limit(limit)
        .into_boxed();
    if filter.by_risk {
        query = query.order((customers::risk_score.desc(), customers::id.asc()));
        if let Some((score, id)) = after_risk {
            query = query.filter(
                customers::risk_score
                    .lt(score)
                    .or(customers::risk_score.eq(score).and(customers::id.gt(id))),
            );
        }
    } else {
        query = query.filter(customers::id.gt(after_id)).order(customers::id.asc());
    }
    if let Some(classes) = &filter.risk_classes {
        query = query.filter(customers::risk_class.eq_any(classes.clone()));
    }
    if let Some(t) = filter.updated_since {
        query = query.filter(customers::updated_at.ge(t));
    }
    if let Some(v) = &filter.external_id {
        query = query.filter(customers::external_id.eq(v.clone()));
    }
    if let Some(v) = &filter.segment {
        query = query.filter(customers::segment.eq(v.clone()));
    }
    if let Some(v) = &filter.collector {
        query = query.filter(customers::collector.eq(v.clone()));
    }
    if let Some(v) = &filter.sales_rep {
        query = query.filter(customers::sales_rep.eq(v.clone()));
    }
    if let Some(v) = &filter.country {
        query = query.filter(customers::country.eq(v.clone()));
    }
    Ok(query.load(conn)?)
}

/// Customer ids of an organisation after `after_id`, in id order (the daily jobs page
/// through them).
pub fn ids_page(c: &mut DbConnection, org_id: i64, after_id: i64, limit: i64) -> Result<Vec<i64>, AppError> {
    Ok(customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::id.gt(after_id))
        .select(customers::id)
        .order(customers::id.asc())
        .limit(limit)
        .load(c)?)
}
