//! Strategies, their versions and acknowledgements, and message templates.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{strategies, strategy_acknowledgements, strategy_versions, templates};
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = strategies)]
pub struct StrategyRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub is_default: bool,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = strategy_versions)]
pub struct VersionRow {
    pub id: i64,
    pub strategy_id: i64,
    pub org_id: i64,
    pub version: i32,
    pub description: String,
    pub rules: String,
    pub steps: String,
    pub status: String,
    pub published_at: Option<NaiveDateTime>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = templates)]
pub struct TemplateRow {
    pub id: i64,
    pub org_id: i64,
    pub key: String,
    pub language: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_strategy(
    c: &mut DbConnection,
    org_id: i64,
    name: &str,
    is_default: bool,
    actor: &str,
) -> Result<i64, AppError> {
    let at = now();
    Ok(dispatch!(c, |c| diesel::insert_into(strategies::table)
        .values((
            strategies::org_id.eq(org_id),
            strategies::name.eq(name),
            strategies::is_default.eq(is_default),
            strategies::created_by.eq(actor),
            strategies::created_at.eq(at),
            strategies::updated_at.eq(at),
        ))
        .returning(strategies::id)
        .get_result(c))?)
}

/// A new draft version: the document's parts as JSON text.
pub struct NewVersion<'a> {
    pub org_id: i64,
    pub strategy_id: i64,
    pub version: i32,
    pub description: &'a str,
    pub rules: &'a str,
    pub steps: &'a str,
    pub created_by: &'a str,
}

pub fn insert_version(c: &mut DbConnection, v: &NewVersion<'_>) -> Result<i64, AppError> {
    Ok(dispatch!(c, |c| diesel::insert_into(strategy_versions::table)
        .values((
            strategy_versions::strategy_id.eq(v.strategy_id),
            strategy_versions::org_id.eq(v.org_id),
            strategy_versions::version.eq(v.version),
            strategy_versions::description.eq(v.description),
            strategy_versions::rules.eq(v.rules),
            strategy_versions::steps.eq(v.steps),
            strategy_versions::status.eq("draft"),
            strategy_versions::created_by.eq(v.created_by),
            strategy_versions::created_at.eq(now()),
        ))
        .returning(strategy_versions::id)
        .get_result(c))?)
}

/// Publishes a version: the strategy's previously published version is retired.
pub fn publish(c: &mut DbConnection, strategy_id: i64, version_id: i64) -> Result<(), AppError> {
    diesel::update(
        strategy_versions::table
            .filter(strategy_versions::strategy_id.eq(strategy_id))
            .filter(strategy_versions::status.eq("published")),
    )
    .set(strategy_versions::status.eq("retired"))
    .execute(c)?;
    diesel::update(strategy_versions::table.find(version_id))
        .set((
            strategy_versions::status.eq("published"),
            strategy_versions::published_at.eq(now()),
        ))
        .execute(c)?;
    diesel::update(strategies::table.find(strategy_id))
        .set(strategies::updated_at.eq(now()))
        .execute(c)?;
    Ok(())
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<StrategyRow, AppError> {
    strategies::table
        .filter(strategies::org_id.eq(org_id))
        .filter(strategies::id.eq(id))
        .select(StrategyRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("strategy"))
}

pub fn list(c: &mut DbConnection, org_id: i64, after_id: i64, limit: i64) -> Result<Vec<StrategyRow>, AppError> {
    Ok(strategies::table
        .filter(strategies::org_id.eq(org_id))
        .filter(strategies::id.gt(after_id))
        .select(StrategyRow::as_select())
        .order(strategies::id.asc())
        .limit(limit)
        .load(c)?)
}

pub fn versions(c: &mut DbConnection, strategy_ids: &[i64]) -> Result<Vec<VersionRow>, AppError> {
    Ok(strategy_versions::table
        .filter(strategy_versions::strategy_id.eq_any(strategy_ids))
        .select(VersionRow::as_select())
        .order((strategy_versions::strategy_id.asc(), strategy_versions::version.asc()))
        .load(c)?)
}

/// Published versions of the organisation with their strategy's default flag.
pub fn published(c: &mut DbConnection, org_id: i64) -> Result<Vec<(VersionRow, bool)>, AppError> {
    Ok(strategy_versions::table
        .inner_join(strategies::table)
        .filter(strategy_versions::org_id.eq(org_id))
        .filter(strategy_versions::status.eq("published"))
        .select((VersionRow::as_select(), strategies::is_default))
        .order(strategy_versions::id.asc())
        .load(c)?)
}

pub fn acknowledge(c: &mut DbConnection, version_id: i64, subject: &str) -> Result<(), AppError> {
    let exists = strategy_acknowledgements::table
        .filter(strategy_acknowledgements::version_id.eq(version_id))
        .filter(strategy_acknowledgements::subject.eq(subject))
        .count()
        .get_result::<i64>(c)?
        > 0;
    if !exists {
        diesel::insert_into(strategy_acknowledgements::table)
            .values((
                strategy_acknowledgements::version_id.eq(version_id),
                strategy_acknowledgements::subject.eq(subject),
                strategy_acknowledgements::acknowledged_at.eq(now()),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// (version id, subject) acknowledgements of these versions.
pub fn acknowledgements(
    c: &mut DbConnection,
    version_ids: &[i64],
) -> Result<Vec<(i64, String, NaiveDateTime)>, AppError> {
    Ok(strategy_acknowledgements::table
        .filter(strategy_acknowledgements::version_id.eq_any(version_ids))
        .select((
            strategy_acknowledgements::version_id,
            strategy_acknowledgements::subject,
            strategy_acknowledgements::acknowledged_at,
        ))
        .load(c)?)
}

pub fn upsert_template(
    c: &mut DbConnection,
    org_id: i64,
    key: &str,
    language: &str,
    subject: &str,
    body_text: &str,
    body_html: &str,
) -> Result<TemplateRow, AppError> {
    let at = now();
    let existing = find_template(c, org_id, key, language)?;
    match existing {
        Some(row) => {
            diesel::update(templates::table.find(row.id))
                .set((
                    templates::subject.eq(subject),
                    templates::body_text.eq(body_text),
                    templates::body_html.eq(body_html),
                    templates::version.eq(templates::version + 1),
                    templates::updated_at.eq(at),
                ))
                .execute(c)?;
        }
        None => {
            diesel::insert_into(templates::table)
                .values((
                    templates::org_id.eq(org_id),
                    templates::key.eq(key),
                    templates::language.eq(language),
                    templates::subject.eq(subject),
                    templates::body_text.eq(body_text),
                    templates::body_html.eq(body_html),
                    templates::version.eq(1_i64),
                    templates::created_at.eq(at),
                    templates::updated_at.eq(at),
                ))
                .execute(c)?;
        }
    }
    find_template(c, org_id, key, language)?.ok_or_else(|| AppError::internal("template vanished"))
}

pub fn find_template(
    c: &mut DbConnection,
    org_id: i64,
    key: &str,
    language: &str,
) -> Result<Option<TemplateRow>, AppError> {
    Ok(templates::table
        .filter(templates::org_id.eq(org_id))
        .filter(templates::key.eq(key))
        .filter(templates::language.eq(language))
        .select(TemplateRow::as_select())
        .first(c)
        .optional()?)
}

pub fn template_by_id(c: &mut DbConnection, org_id: i64, id: i64) -> Result<TemplateRow, AppError> {
    templates::table
        .filter(templates::org_id.eq(org_id))
        .filter(templates::id.eq(id))
        .select(TemplateRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("template"))
}

pub fn list_templates(
    c: &mut DbConnection,
    org_id: i64,
    key: Option<&str>,
    language: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<TemplateRow>, AppError> {
    let mut q = templates::table
        .filter(templates::org_id.eq(org_id))
        .filter(templates::id.gt(after_id))
        .select(TemplateRow::as_select())
        .order(templates::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(k) = key {
        q = q.filter(templates::key.eq(k.to_string()));
    }
    if let Some(l) = language {
        q = q.filter(templates::language.eq(l.to_string()));
    }
    Ok(q.load(c)?)
}

/// Every template of the organisation (a collection run renders from these).
pub fn all_templates(c: &mut DbConnection, org_id: i64) -> Result<Vec<TemplateRow>, AppError> {
    Ok(templates::table
        .filter(templates::org_id.eq(org_id))
        .select(TemplateRow::as_select())
        .load(c)?)
}
