//! Organisation settings: per-tenant choices of the business rules, stored as JSON with a
//! default for every field, so older rows keep working when settings are added.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::allocation::Rule;
use crate::error::{FieldError, Violations};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"allocation_rules": ["reference", "exact_amount", "oldest_due"]}))]
pub struct OrgSettings {
    /// Automatic cash-application rules, in the order they are tried. Any subset of
    /// `reference`, `exact_amount`, `oldest_due`; an empty list leaves payments unapplied.
    #[serde(default = "default_rules")]
    pub allocation_rules: Vec<Rule>,
}

fn default_rules() -> Vec<Rule> {
    Rule::DEFAULT_ORDER.to_vec()
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            allocation_rules: default_rules(),
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
        };
        assert_eq!(s.validate().expect_err("invalid").len(), 2);
    }
}
