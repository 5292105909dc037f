//! Organisations (tenants): creation, lookup by slug, settings.

use diesel::prelude::*;

use crate::db::schema::organizations;
use crate::db::{DbConnection, now};
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub settings: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = organizations)]
struct NewOrganization<'a> {
    slug: &'a str,
    name: &'a str,
    settings: &'a str,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Option<Organization>, AppError> {
    Ok(organizations::table
        .filter(organizations::slug.eq(slug))
        .select(Organization::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Organization, AppError> {
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("organisation"))
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<Organization>, AppError> {
    Ok(organizations::table
        .select(Organization::as_select())
        .order(organizations::id.asc())
        .load(conn)?)
}

pub fn count(conn: &mut DbConnection) -> Result<i64, AppError> {
    Ok(organizations::table.count().get_result(conn)?)
}

pub fn create(conn: &mut DbConnection, slug: &str, name: &str) -> Result<Organization, AppError> {
    let at = now();
    diesel::insert_into(organizations::table)
        .values(NewOrganization {
            slug,
            name,
            settings: "{}",
            created_at: at,
            updated_at: at,
        })
        .execute(conn)?;
    find_by_slug(conn, slug)?.ok_or_else(|| AppError::internal("organisation vanished after insert"))
}

pub fn update_settings(conn: &mut DbConnection, id: i64, settings: &str) -> Result<(), AppError> {
    diesel::update(organizations::table.find(id))
        .set((
            organizations::settings.eq(settings),
            organizations::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// A slug is lower-case ASCII letters, digits and dashes, 2–63 characters.
pub fn valid_slug(slug: &str) -> bool {
    (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}
