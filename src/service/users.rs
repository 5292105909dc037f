//! The user directory's use cases: create and patch users (admins), and the directory as
//! letters, worklists and the compliance view read it — the assigned collector's name,
//! e-mail and phone, with the organisation's collections desk when a customer has none.

use std::collections::HashMap;

use crate::db::DbConnection;
use crate::db::repo::customers::CustomerRow;
use crate::db::repo::users::{self as repo, UserRow, UserValues};
use crate::domain::letter::LetterContext;
use crate::domain::user::{
    CollectionsContact, CollectorContact, DirectoryEntry, UserData, UserInput, collector_contact,
};
use crate::error::AppError;
use crate::service::check_version;

fn values<'a>(d: &'a UserData, roles: &'a str) -> UserValues<'a> {
    UserValues {
        display_name: &d.display_name,
        email: d.email.as_deref(),
        phone: d.phone.as_deref(),
        roles,
        team: d.team.as_deref(),
        language: d.language.as_deref(),
        active: d.active,
    }
}

fn roles_text(d: &UserData) -> Result<String, AppError> {
    let names: Vec<&str> = d.roles.iter().map(|r| r.as_str()).collect();
    serde_json::to_string(&names).map_err(|e| AppError::internal(e.to_string()))
}

pub fn create(c: &mut DbConnection, org_id: i64, input: &UserInput) -> Result<UserRow, AppError> {
    let data = input.validate().map_err(AppError::Validation)?;
    let roles = roles_text(&data)?;
    let id = repo::insert(c, org_id, &data.subject, &values(&data, &roles))?;
    repo::find(c, org_id, id)
}

/// The stored user in its input form (what a merge patch starts from).
pub fn to_input(row: &UserRow) -> UserInput {
    UserInput {
        subject: row.subject.clone(),
        display_name: row.display_name.clone(),
        email: row.email.clone(),
        phone: row.phone.clone(),
        roles: row
            .role_names()
            .iter()
            .filter_map(|r| crate::auth::roles::Role::parse(r))
            .collect(),
        team: row.team.clone(),
        language: row.language.clone(),
        active: row.active,
    }
}

/// JSON merge patch of a user; the subject never changes (it is the token's `sub`).
pub fn patch(
    c: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected_version: Option<i64>,
    patch: &serde_json::Value,
) -> Result<UserRow, AppError> {
    let current = repo::lock(c, org_id, id)?;
    check_version(expected_version, current.version)?;
    let input: UserInput = crate::service::merge_patch(&to_input(&current), patch)?;
    if input.subject != current.subject {
        return Err(AppError::invalid(
            "subject",
            "cannot change: it is the subject of the user's tokens; create another user",
        ));
    }
    let data = input.validate().map_err(AppError::Validation)?;
    let roles = roles_text(&data)?;
    if !repo::update(c, id, current.version, &values(&data, &roles))? {
        return Err(AppError::PreconditionFailed("the user changed meanwhile; retry".into()));
    }
    repo::find(c, org_id, id)
}

/// The directory as the engine reads it: entries by subject and the organisation's
/// collections desk.
pub struct Directory {
    by_subject: HashMap<String, UserRow>,
    desk: Option<CollectionsContact>,
}

impl Directory {
    /// The whole directory of an organisation (one query) and its settings.
    pub fn load(c: &mut DbConnection, org_id: i64) -> Result<Directory, AppError> {
        Ok(Directory {
            by_subject: repo::all(c, org_id)?
                .into_iter()
                .map(|u| (u.subject.clone(), u))
                .collect(),
            desk: crate::service::org_settings(c, org_id)?.collections_contact,
        })
    }

    /// Only the entries of some subjects (one query per 1 000 subjects).
    pub fn load_subjects(c: &mut DbConnection, org_id: i64, subjects: &[String]) -> Result<Directory, AppError> {
        Ok(Directory {
            by_subject: repo::by_subjects(c, org_id, subjects)?
                .into_iter()
                .map(|u| (u.subject.clone(), u))
                .collect(),
            desk: crate::service::org_settings(c, org_id)?.collections_contact,
        })
    }

    pub fn entry(&self, subject: &str) -> Option<&UserRow> {
        self.by_subject.get(subject)
    }

    /// The collector a letter or worklist names for a customer's `collector` subject.
    pub fn contact(&self, subject: Option<&str>) -> CollectorContact {
        let entry = subject.and_then(|s| self.by_subject.get(s)).map(|u| DirectoryEntry {
            display_name: &u.display_name,
            email: u.email.as_deref(),
            phone: u.phone.as_deref(),
            active: u.active,
        });
        collector_contact(subject, entry, self.desk.as_ref())
    }

    /// Puts the customer's collector into a letter's variables.
    pub fn sign(&self, ctx: &mut LetterContext, customer: &CustomerRow) {
        let who = self.contact(customer.collector.as_deref());
        ctx.collector_name = who.name;
        ctx.collector_email = who.email;
        ctx.collector_phone = who.phone;
    }
}
