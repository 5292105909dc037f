//! Organisation settings: per-tenant choices of the business rules, stored as JSON with a
//! default for every field, so older rows keep working when settings are added.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::allocation::Rule;
use crate::domain::credit::CreditSettings;
use crate::domain::user::CollectionsContact;
use crate::error::{FieldError, Violations};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"allocation_rules": ["reference", "exact_amount", "oldest_due"],
    "promise_tolerance_days": 2, "promise_min_share_percent": 0, "plan_grace_days": 5}))]
pub struct OrgSettings {
    /// Automatic cash-application rules, in the order they are tried. Any subset of
    /// `reference`, `exact_amount`, `oldest_due`; an empty list leaves payments unapplied.
    #[serde(default = "default_rules")]
    pub allocation_rules: Vec<Rule>,
    /// Days after the promised date during which a payment still keeps a promise.
    #[serde(default = "default_tolerance")]
    #[schema(minimum = 0, maximum = 60)]
    pub promise_tolerance_days: u32,
    /// Share of the promised amount (percent) that makes a late promise partially kept
    /// rather than broken; 0 means any payment.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub promise_min_share_percent: u32,
    /// Days an instalment may stay unpaid after its date before its plan defaults.
    #[serde(default = "default_grace")]
    #[schema(minimum = 0, maximum = 90)]
    pub plan_grace_days: u32,
    /// Credit control: application completeness, scorecard weights, hold rules.
    #[serde(default)]
    pub credit: CreditSettings,
    /// The collections desk letters name when a customer has no collector in the user
    /// directory (`/v1/users`).
    #[serde(default)]
    pub collections_contact: Option<CollectionsContact>,
}

fn default_tolerance() -> u32 {
    2
}

fn default_grace() -> u32 {
    5
}

fn default_rules() -> Vec<Rule> {
    Rule::DEFAULT_ORDER.to_vec()
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            allocation_rules: default_rules(),
            promise_tolerance_days: default_tolerance(),
            promise_min_share_percent: 0,
            plan_grace_days: default_grace(),
            credit: CreditSettings::default(),
            collections_contact: None,
        }
    }
}

impl OrgSettings {
    /// Reads stored settings; anything unreadable falls back to the defaults field by field.
    pub fn from_stored(text: &str) -> OrgSettings {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Violations::new();
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in self.allocation_rules.iter().enumerate() {
            if *rule == Rule::Explicit {
                v.add(format!("allocation_rules[{i}]"), "explicit is not an automatic rule");
            }
            if !seen.insert(*rule) {
                v.add(format!("allocation_rules[{i}]"), "appears more than once");
            }
        }
        if self.promise_tolerance_days > 60 {
            v.add("promise_tolerance_days", "must be between 0 and 60");
        }
        if self.promise_min_share_percent > 100 {
            v.add("promise_min_share_percent", "must be between 0 and 100");
        }
        if self.plan_grace_days > 90 {
            v.add("plan_grace_days", "must be between 0 and 90");
        }
        if let Err(errors) = self.credit.validate() {
            v.extend_prefixed("credit.", errors);
        }
        if let Some(Err(errors)) = self.collections_contact.as_ref().map(CollectionsContact::validate) {
            v.extend_prefixed("collections_contact.", errors);
        }
        v.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        assert_eq!(OrgSettings::from_stored("{}"), OrgSettings::default());
        assert_eq!(OrgSettings::from_stored("garbage"), OrgSettings::default());
        let s = OrgSettings {
            allocation_rules: vec![Rule::OldestDue, Rule::OldestDue, Rule::Explicit],
            promise_tolerance_days: 61,
            ..OrgSettings::default()
        };
        assert_eq!(s.validate().expect_err("invalid").len(), 3);
        assert_eq!(OrgSettings::default().promise_tolerance_days, 2);
        assert_eq!(OrgSettings::default().plan_grace_days, 5);
    }
}
