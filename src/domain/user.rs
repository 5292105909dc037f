//! The user directory: the people of an organisation (collectors, sales representatives,
//! managers), keyed by the subject (`sub`) of their tokens, with the name, e-mail and phone
//! that letters and worklists show. A customer's `collector` is such a subject; which
//! contact a letter signs with is decided here, without I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::roles::Role;
use crate::domain::customer::{LANGUAGES, valid_phone};
use crate::domain::text;
use crate::error::{FieldError, Violations};

fn yes() -> bool {
    true
}

/// A user as the API accepts it (create, and the base a merge patch applies to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"subject": "laura.marti", "display_name": "Laura Martí",
    "email": "laura.marti@example.com", "phone": "+34 933 000 222", "roles": ["collector"],
    "team": "Iberia", "language": "ca", "active": true}))]
pub struct UserInput {
    /// The `sub` claim of the user's tokens; what customers' `collector` and `sales_rep`,
    /// task and action assignees name. Unique per organisation, never changes.
    pub subject: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// International form (E.164), e.g. `+34 933 000 222`.
    #[serde(default)]
    pub phone: Option<String>,
    /// What the person does (informative: the roles a request may use are in its token).
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub team: Option<String>,
    /// Preferred language (`en`, `es`, `ca`, `fr`, `pl`).
    #[serde(default)]
    pub language: Option<String>,
    /// Inactive users keep their history but are left out of letters and the compliance view.
    #[serde(default = "yes")]
    pub active: bool,
}

/// A validated user, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData {
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub roles: Vec<Role>,
    pub team: Option<String>,
    pub language: Option<String>,
    pub active: bool,
}

impl UserInput {
    /// Every violation at once.
    pub fn validate(&self) -> Result<UserData, Vec<FieldError>> {
        let mut v = Violations::new();
        let subject = text::required(&mut v, "subject", Some(&self.subject), 200);
        if let Some(s) = &subject
            && s.chars().any(char::is_whitespace)
        {
            v.add("subject", "must not contain spaces");
        }
        let display_name = text::required(&mut v, "display_name", Some(&self.display_name), 200);
        let email = text::optional(&mut v, "email", self.email.as_deref(), 254);
        if let Some(e) = &email
            && !email_address::EmailAddress::is_valid(e)
        {
            v.add("email", "is not a valid e-mail address");
        }
        let phone = text::optional(&mut v, "phone", self.phone.as_deref(), 40);
        if let Some(p) = &phone
            && !valid_phone(p)
        {
            v.add(
                "phone",
                "is not a valid international phone number (E.164, e.g. +34 933 000 222)",
            );
        }
        let mut roles = Vec::new();
        for (i, r) in self.roles.iter().enumerate() {
            if roles.contains(r) {
                v.add(format!("roles[{i}]"), "appears more than once");
            } else {
                roles.push(*r);
            }
        }
        let team = text::optional(&mut v, "team", self.team.as_deref(), 100);
        let language = text::optional(&mut v, "language", self.language.as_deref(), 5);
        if let Some(l) = &language
            && !LANGUAGES.contains(&l.as_str())
        {
            v.add("language", format!("must be one of {}", LANGUAGES.join(", ")));
        }
        v.finish().map(|()| UserData {
            subject: subject.unwrap_or_default(),
            display_name: display_name.unwrap_or_default(),
            email,
            phone,
            roles,
            team,
            language,
            active: self.active,
        })
    }
}

/// The organisation's collections desk, used in letters when a customer has no collector
/// in the directory (setting `collections_contact`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Accounts Receivable", "email": "cobros@example.com", "phone": "+34 933 000 100"}))]
pub struct CollectionsContact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl CollectionsContact {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Violations::new();
        text::required(&mut v, "name", Some(&self.name), 200);
        if let Some(e) = text::optional(&mut v, "email", self.email.as_deref(), 254)
            && !email_address::EmailAddress::is_valid(&e)
        {
            v.add("email", "is not a valid e-mail address");
        }
        if let Some(p) = text::optional(&mut v, "phone", self.phone.as_deref(), 40)
            && !valid_phone(&p)
        {
            v.add("phone", "is not a valid international phone number");
        }
        v.finish()
    }
}

/// The collector a letter or a worklist names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"subject": "laura.marti", "name": "Laura Martí", "email": "laura.marti@example.com",
    "phone": "+34 933 000 222", "source": "directory"}))]
pub struct CollectorContact {
    /// The customer's `collector` subject, when it has one.
    pub subject: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `directory` (the assigned collector's entry), `organisation` (the collections desk
    /// of the settings), `subject` (a collector missing from the directory: only the
    /// subject is known) or `none`.
    pub source: String,
}

/// A directory entry as the choice below needs it.
#[derive(Debug, Clone, Copy)]
pub struct DirectoryEntry<'a> {
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub active: bool,
}

/// Who a letter names as the collector: the customer's collector from the directory when
/// the entry is active; else the organisation's collections contact; else, for a collector
/// who is not in the directory, just the subject; else nobody.
pub fn collector_contact(
    subject: Option<&str>,
    entry: Option<DirectoryEntry<'_>>,
    organisation: Option<&CollectionsContact>,
) -> CollectorContact {
    let subject_owned = subject.map(str::to_string);
    if let Some(e) = entry.filter(|e| e.active) {
        return CollectorContact {
            subject: subject_owned,
            name: Some(e.display_name.to_string()),
            email: e.email.map(str::to_string),
            phone: e.phone.map(str::to_string),
            source: "directory".into(),
        };
    }
    if let Some(o) = organisation {
        return CollectorContact {
            subject: subject_owned,
            name: Some(o.name.clone()),
            email: o.email.clone(),
            phone: o.phone.clone(),
            source: "organisation".into(),
        };
    }
    match subject {
        // Unknown to the directory (not inactive): the subject is all there is.
        Some(s) if entry.is_none() => CollectorContact {
            subject: subject_owned,
            name: Some(s.to_string()),
            email: None,
            phone: None,
            source: "subject".into(),
        },
        _ => CollectorContact {
            subject: subject_owned,
            name: None,
            email: None,
            phone: None,
            source: "none".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> UserInput {
        UserInput {
            subject: "laura.marti".into(),
            display_name: " Laura Martí ".into(),
            email: Some("laura@example.com".into()),
            phone: Some("+34 933 000 222".into()),
            roles: vec![Role::Collector],
            team: None,
            language: Some("ca".into()),
            active: true,
        }
    }

    #[test]
    fn validation_trims_and_lists_every_violation() {
        let ok = input().validate().expect("valid");
        assert_eq!(ok.display_name, "Laura Martí");
        let bad = UserInput {
            subject: "two words".into(),
            display_name: " ".into(),
            email: Some("nope".into()),
            phone: Some("12".into()),
            roles: vec![Role::Collector, Role::Collector],
            language: Some("de".into()),
            ..input()
        };
        let fields: Vec<String> = bad
            .validate()
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec!["subject", "display_name", "email", "phone", "roles[1]", "language"]
        );
    }

    #[test]
    fn collector_choice_table() {
        let desk = CollectionsContact {
            name: "Cobros".into(),
            email: Some("cobros@example.com".into()),
            phone: None,
        };
        let entry = |active| DirectoryEntry {
            display_name: "Laura Martí",
            email: Some("laura@example.com"),
            phone: Some("+34 933 000 222"),
            active,
        };
        let cases = [
            (
                Some("laura"),
                Some(entry(true)),
                Some(&desk),
                "directory",
                Some("Laura Martí"),
            ),
            (
                Some("laura"),
                Some(entry(false)),
                Some(&desk),
                "organisation",
                Some("Cobros"),
            ),
            (None, None, Some(&desk), "organisation", Some("Cobros")),
            (Some("laura"), None, Some(&desk), "organisation", Some("Cobros")),
            (Some("laura"), None, None, "subject", Some("laura")),
            (Some("laura"), Some(entry(false)), None, "none", None),
            (None, None, None, "none", None),
        ];
        for (subject, e, org, source, name) in cases {
            let got = collector_contact(subject, e, org);
            assert_eq!(got.source, source, "{subject:?} {e:?}");
            assert_eq!(got.name.as_deref(), name, "{subject:?} {e:?}");
            assert_eq!(got.subject.as_deref(), subject);
        }
        assert_eq!(
            collector_contact(Some("laura"), Some(entry(true)), None)
                .phone
                .as_deref(),
            Some("+34 933 000 222")
        );
    }
}
