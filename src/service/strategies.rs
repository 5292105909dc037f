//! Strategy and template use cases: the defaults every organisation starts with, versions
//! (published ones are immutable), acknowledgements and the compliance view (P14), which
//! strategy applies to a customer, and template storage, validation and preview.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::customers::CustomerRow;
use crate::db::repo::strategies::{self as repo, NewVersion, TemplateRow, VersionRow};
use crate::domain::customer::LANGUAGES;
use crate::domain::ids::Kind;
use crate::domain::letter::{self, TemplateSource};
use crate::domain::money::{Currency, parse_amount};
use crate::domain::strategy::{AssignmentRules, Step, StrategyDocument, default_strategy};
use crate::error::AppError;

/// Seeds what a new organisation starts with: the default strategy (published) and the
/// default templates in every language. Idempotent.
pub fn ensure_defaults(c: &mut DbConnection, org_id: i64) -> Result<(), AppError> {
    if repo::list(c, org_id, 0, 1)?.is_empty() {
        let id = repo::insert_strategy(c, org_id, "Default collection strategy", true, "system")?;
        let version = create_version(c, org_id, id, &default_strategy(), "system")?;
        repo::publish(c, id, version)?;
    }
    for (key, language) in letter::default_keys() {
        if repo::find_template(c, org_id, key, language)?.is_none()
            && let Some(t) = letter::default_template(key, language)
        {
            repo::upsert_template(c, org_id, key, language, &t.subject, &t.body_text, &t.body_html)?;
        }
    }
    Ok(())
}

fn create_version(
    c: &mut DbConnection,
    org_id: i64,
    strategy_id: i64,
    doc: &StrategyDocument,
    actor: &str,
) -> Result<i64, AppError> {
    doc.validate().map_err(AppError::Validation)?;
    let next = repo::versions(c, &[strategy_id])?
        .iter()
        .map(|v| v.version)
        .max()
        .unwrap_or(0)
        + 1;
    let rules = serde_json::to_string(&doc.rules).map_err(|e| AppError::internal(e.to_string()))?;
    let steps = serde_json::to_string(&doc.steps).map_err(|e| AppError::internal(e.to_string()))?;
    repo::insert_version(
        c,
        &NewVersion {
            org_id,
            strategy_id,
            version: next,
            description: &doc.description,
            rules: &rules,
            steps: &steps,
            created_by: actor,
        },
    )
}

/// A new strategy with its first (draft) version.
pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    name: &str,
    doc: &StrategyDocument,
    actor: &str,
) -> Result<i64, AppError> {
    doc.validate().map_err(AppError::Validation)?;
    let id = repo::insert_strategy(c, org_id, name, false, actor)?;
    create_version(c, org_id, id, doc, actor)?;
    Ok(id)
}

pub fn add_version(
    c: &mut DbConnection,
    org_id: i64,
    strategy_id: i64,
    doc: &StrategyDocument,
    actor: &str,
) -> Result<(), AppError> {
    repo::find(c, org_id, strategy_id)?;
    create_version(c, org_id, strategy_id, doc, actor).map(|_| ())
}

pub fn publish(c: &mut DbConnection, org_id: i64, strategy_id: i64, number: i32) -> Result<(), AppError> {
    repo::find(c, org_id, strategy_id)?;
    let version = repo::versions(c, &[strategy_id])?
        .into_iter()
        .find(|v| v.version == number)
        .ok_or_else(|| AppError::not_found("strategy version"))?;
    match version.status.as_str() {
        "draft" => repo::publish(c, strategy_id, version.id),
        "published" => Ok(()),
        _ => Err(AppError::Conflict(
            "a retired version cannot be published again; create a new version".into(),
        )),
    }
}

pub fn acknowledge(
    c: &mut DbConnection,
    org_id: i64,
    strategy_id: i64,
    number: i32,
    subject: &str,
) -> Result<(), AppError> {
    repo::find(c, org_id, strategy_id)?;
    let version = repo::versions(c, &[strategy_id])?
        .into_iter()
        .find(|v| v.version == number)
        .ok_or_else(|| AppError::not_found("strategy version"))?;
    if version.status != "published" {
        return Err(AppError::Conflict(
            "only the published version can be acknowledged".into(),
        ));
    }
    repo::acknowledge(c, version.id, subject)
}

pub fn document(v: &VersionRow) -> StrategyDocument {
    StrategyDocument {
        description: v.description.clone(),
        rules: serde_json::from_str(&v.rules).unwrap_or_default(),
        steps: serde_json::from_str::<Vec<Step>>(&v.steps).unwrap_or_default(),
    }
}

/// The published strategies of an organisation and how customers are matched to them.
pub struct StrategyBook {
    pub versions: Vec<(VersionRow, StrategyDocument, bool)>,
}

impl StrategyBook {
    pub fn load(c: &mut DbConnection, org_id: i64) -> Result<StrategyBook, AppError> {
        Ok(StrategyBook {
            versions: repo::published(c, org_id)?
                .into_iter()
                .map(|(v, is_default)| {
                    let doc = document(&v);
                    (v, doc, is_default)
                })
                .collect(),
        })
    }

    /// Precedence: a strategy naming the customer > one whose rules match > the default.
    pub fn for_customer(
        &self,
        customer: &CustomerRow,
        overdue_minor: i64,
        risk_class: Option<&str>,
    ) -> Option<(&VersionRow, &StrategyDocument)> {
        let id = Kind::Customer.encode(customer.id);
        let named = self.versions.iter().find(|(_, d, _)| d.rules.customers.contains(&id));
        let by_rule = || {
            self.versions
                .iter()
                .find(|(_, d, is_default)| !is_default && rules_match(&d.rules, customer, overdue_minor, risk_class))
        };
        let default = || self.versions.iter().find(|(_, _, is_default)| *is_default);
        named.or_else(by_rule).or_else(default).map(|(v, d, _)| (v, d))
    }
}

fn rules_match(rules: &AssignmentRules, customer: &CustomerRow, overdue_minor: i64, risk_class: Option<&str>) -> bool {
    let has_rule = !rules.segments.is_empty() || !rules.risk_classes.is_empty() || rules.min_overdue_amount.is_some();
    has_rule
        && (rules.segments.is_empty() || customer.segment.as_ref().is_some_and(|s| rules.segments.contains(s)))
        && (rules.risk_classes.is_empty() || risk_class.is_some_and(|r| rules.risk_classes.iter().any(|x| x == r)))
        && rules.min_overdue_amount.as_ref().is_none_or(|m| {
            let currency = Currency::stored(&customer.currency);
            parse_amount(m, currency).is_ok_and(|min| overdue_minor >= min)
        })
}

/// Per collector: whether they acknowledged the published versions, and their overdue work.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"collector": "laura.marti", "display_name": "Laura Martí", "in_directory": true,
    "unacknowledged": ["stg_1 v2"], "overdue_tasks": 1, "overdue_actions": 0}))]
pub struct CollectorCompliance {
    pub collector: String,
    /// The collector's name in the user directory, when listed there.
    pub display_name: Option<String>,
    /// Whether the collector is an active user of the directory (`/v1/users`).
    pub in_directory: bool,
    /// Published strategy versions (`strategy_id` v`version`) not yet acknowledged.
    pub unacknowledged: Vec<String>,
    pub overdue_tasks: i64,
    pub overdue_actions: i64,
}

/// The compliance view (P14) over the active collectors of the user directory and the
/// collectors named on customers, tasks and actions (users marked inactive are left out).
pub fn compliance(
    c: &mut DbConnection,
    org_id: i64,
    today: chrono::NaiveDate,
) -> Result<Vec<CollectorCompliance>, AppError> {
    use diesel::prelude::*;

    use crate::db::schema::{actions, customers, tasks};
    let mut collectors: Vec<String> = customers::table
        .filter(customers::org_id.eq(org_id))
        .filter(customers::collector.is_not_null())
        .select(customers::collector.assume_not_null())
        .distinct()
        .load(c)?;
    let overdue_tasks: Vec<(Option<String>, i64)> = tasks::table
        .filter(tasks::org_id.eq(org_id))
        .filter(tasks::status.eq("open"))
        .filter(tasks::due_on.lt(today))
        .group_by(tasks::assignee)
        .select((tasks::assignee, diesel::dsl::count_star()))
        .load(c)?;
    let overdue_actions: Vec<(Option<String>, i64)> = actions::table
        .filter(actions::org_id.eq(org_id))
        .filter(actions::status.eq_any(["planned", "awaiting_approval"]))
        .filter(actions::scheduled_on.lt(today))
        .group_by(actions::assignee)
        .select((actions::assignee, diesel::dsl::count_star()))
        .load(c)?;
    for (a, _) in overdue_tasks.iter().chain(&overdue_actions) {
        if let Some(a) = a
            && !collectors.contains(a)
        {
            collectors.push(a.clone());
        }
    }
    let directory = crate::db::repo::users::all(c, org_id)?;
    for u in &directory {
        if u.active && u.role_names().iter().any(|r| r == "collector") && !collectors.contains(&u.subject) {
            collectors.push(u.subject.clone());
        }
    }
    collectors.retain(|s| !directory.iter().any(|u| !u.active && u.subject == *s));
    collectors.sort();
    let names: HashMap<&str, &str> = directory
        .iter()
        .filter(|u| u.active)
        .map(|u| (u.subject.as_str(), u.display_name.as_str()))
        .collect();
    let published = repo::published(c, org_id)?;
    let ids: Vec<i64> = published.iter().map(|(v, _)| v.id).collect();
    let acks = repo::acknowledgements(c, &ids)?;
    let tasks_by: HashMap<String, i64> = overdue_tasks
        .into_iter()
        .filter_map(|(a, n)| a.map(|a| (a, n)))
        .collect();
    let actions_by: HashMap<String, i64> = overdue_actions
        .into_iter()
        .filter_map(|(a, n)| a.map(|a| (a, n)))
        .collect();
    Ok(collectors
        .into_iter()
        .map(|collector| CollectorCompliance {
            unacknowledged: published
                .iter()
                .filter(|(v, _)| !acks.iter().any(|(vid, s, _)| *vid == v.id && *s == collector))
                .map(|(v, _)| format!("{} v{}", Kind::Strategy.encode(v.strategy_id), v.version))
                .collect(),
            overdue_tasks: tasks_by.get(&collector).copied().unwrap_or(0),
            overdue_actions: actions_by.get(&collector).copied().unwrap_or(0),
            display_name: names.get(collector.as_str()).map(|n| n.to_string()),
            in_directory: names.contains_key(collector.as_str()),
            collector,
        })
        .collect())
}

/// Saves (creates or replaces) a template after checking it renders in strict mode.
pub fn save_template(
    c: &mut DbConnection,
    org_id: i64,
    key: &str,
    language: &str,
    source: &TemplateSource,
) -> Result<TemplateRow, AppError> {
    let mut v = crate::error::Violations::new();
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        v.add("key", "must be 1–64 lower-case letters, digits or underscores");
    }
    if !LANGUAGES.contains(&language) {
        v.add("language", format!("must be one of {}", LANGUAGES.join(", ")));
    }
    v.into_result(())?;
    letter::validate(source, language).map_err(AppError::Validation)?;
    repo::upsert_template(
        c,
        org_id,
        key,
        language,
        &source.subject,
        &source.body_text,
        &source.body_html,
    )
}

/// Templates of an organisation by (key, language).
pub fn template_index(
    c: &mut DbConnection,
    org_id: i64,
) -> Result<BTreeMap<(String, String), TemplateSource>, AppError> {
    Ok(repo::all_templates(c, org_id)?
        .into_iter()
        .map(|t| {
            (
                (t.key, t.language),
                TemplateSource {
                    subject: t.subject,
                    body_text: t.body_text,
                    body_html: t.body_html,
                },
            )
        })
        .collect())
}
