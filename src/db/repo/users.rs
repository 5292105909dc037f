//! The user directory: one row per person of an organisation, keyed by token subject.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::users;
use crate::db::{DbConnection, now};
use crate::dispatch;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub org_id: i64,
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// JSON array of role names.
    pub roles: String,
    pub team: Option<String>,
    pub language: Option<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl UserRow {
    pub fn role_names(&self) -> Vec<String> {
        serde_json::from_str(&self.roles).unwrap_or_default()
    }
}

/// The stored columns of a user.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserValues<'a> {
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub roles: &'a str,
    pub team: Option<&'a str>,
    pub language: Option<&'a str>,
    pub active: bool,
}

/// Inserts a user; a subject already in the directory is a conflict (409).
pub fn insert(c: &mut DbConnection, org_id: i64, subject: &str, v: &UserValues<'_>) -> Result<i64, AppError> {
    let at = now();
    let id: Result<i64, AppError> = dispatch!(c, |c| diesel::insert_into(users::table)
        .values((
            users::org_id.eq(org_id),
            users::subject.eq(subject),
            users::display_name.eq(v.display_name),
            users::email.eq(v.email),
            users::phone.eq(v.phone),
            users::roles.eq(v.roles),
            users::team.eq(v.team),
            users::language.eq(v.language),
            users::active.eq(v.active),
            users::version.eq(1_i64),
            users::created_at.eq(at),
            users::updated_at.eq(at),
        ))
        .returning(users::id)
        .get_result(c))
    .map_err(AppError::from);
    id.map_err(|e| match e {
        AppError::Conflict(_) => {
            AppError::Conflict(format!("the directory already has a user with subject `{subject}`"))
        }
        other => other,
    })
}

pub fn find(c: &mut DbConnection, org_id: i64, id: i64) -> Result<UserRow, AppError> {
    users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(c)
        .optional()?
        .ok_or_else(|| AppError::not_found("user"))
}

/// Reads a user and, on PostgreSQL, locks its row until the transaction ends: concurrent
/// edits queue instead of failing on the version.
pub fn lock(c: &mut DbConnection, org_id: i64, id: i64) -> Result<UserRow, AppError> {
    crate::locked!(
        c,
        users::table
            .filter(users::org_id.eq(org_id))
            .filter(users::id.eq(id))
            .select(UserRow::as_select()),
        |q, c| q.first(c).optional()
    )?
    .ok_or_else(|| AppError::not_found("user"))
}

/// Updates a user if it is still at `expected_version`; false when it moved meanwhile.
pub fn update(c: &mut DbConnection, id: i64, expected_version: i64, v: &UserValues<'_>) -> Result<bool, AppError> {
    let n = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::version.eq(expected_version)),
    )
    .set((v, users::version.eq(expected_version + 1), users::updated_at.eq(now())))
    .execute(c)?;
    Ok(n == 1)
}

/// The directory entries of some subjects (one query per 1 000 subjects).
pub fn by_subjects(c: &mut DbConnection, org_id: i64, subjects: &[String]) -> Result<Vec<UserRow>, AppError> {
    let mut out = Vec::new();
    for chunk in subjects.chunks(1000) {
        out.extend(
            users::table
                .filter(users::org_id.eq(org_id))
                .filter(users::subject.eq_any(chunk))
                .select(UserRow::as_select())
                .load(c)?,
        );
    }
    Ok(out)
}

/// Every user of an organisation (directories are small: people, not customers).
pub fn all(c: &mut DbConnection, org_id: i64) -> Result<Vec<UserRow>, AppError> {
    Ok(users::table
        .filter(users::org_id.eq(org_id))
        .select(UserRow::as_select())
        .order(users::id.asc())
        .load(c)?)
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub active: Option<bool>,
    pub team: Option<String>,
    pub subject: Option<String>,
    pub updated_since: Option<NaiveDateTime>,
}

pub fn list(
    c: &mut DbConnection,
    org_id: i64,
    f: &UserFilter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<UserRow>, AppError> {
    let mut q = users::table
        .filter(users::org_id.eq(org_id))
        .filter(users::id.gt(after_id))
        .select(UserRow::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(v) = f.active {
        q = q.filter(users::active.eq(v));
    }
    if let Some(v) = &f.team {
        q = q.filter(users::team.eq(v.clone()));
    }
    if let Some(v) = &f.subject {
        q = q.filter(users::subject.eq(v.clone()));
    }
    if let Some(t) = f.updated_since {
        q = q.filter(users::updated_at.ge(t));
    }
    Ok(q.load(c)?)
}
