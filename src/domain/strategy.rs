//! Collection strategies (P5, P14, P17): the written ladder of steps, the default strategy
//! built from the seed documents, which strategy applies to a customer, and which step each
//! open invoice is due for on a date (with every pre-contact check of P16 as a skip reason).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::collectable::Exclusion;
use crate::domain::customer::LANGUAGES;
use crate::domain::text;
use crate::error::{FieldError, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Email,
    Letter,
    Sms,
    Call,
    SalesEscalation,
    CreditHold,
    RepossessionOffer,
    LawFirmLetter,
    SmallClaims,
    AgencyPlacement,
    InternalTask,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Email => "email",
            StepAction::Letter => "letter",
            StepAction::Sms => "sms",
            StepAction::Call => "call",
            StepAction::SalesEscalation => "sales_escalation",
            StepAction::CreditHold => "credit_hold",
            StepAction::RepossessionOffer => "repossession_offer",
            StepAction::LawFirmLetter => "law_firm_letter",
            StepAction::SmallClaims => "small_claims",
            StepAction::AgencyPlacement => "agency_placement",
            StepAction::InternalTask => "internal_task",
        }
    }

    /// Whether the step sends a message to the customer.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            StepAction::Email
                | StepAction::Letter
                | StepAction::Sms
                | StepAction::LawFirmLetter
                | StepAction::RepossessionOffer
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Friendly,
    Firm,
    Final,
    Legal,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Friendly => "friendly",
            Tone::Firm => "firm",
            Tone::Final => "final",
            Tone::Legal => "legal",
        }
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "firm_letter", "offset_days": 15, "action": "letter", "tone": "firm",
    "template": "firm_letter", "min_amount": "50.00", "assignee_role": "collector", "requires_approval": false}))]
pub struct Step {
    /// Name of the step, unique in the strategy (`first_reminder`, …).
    pub key: String,
    /// Days from the due date; negative = before it (P17).
    pub offset_days: i32,
    pub action: StepAction,
    pub tone: Tone,
    /// Template key rendered for this step, per customer language (default: the step key).
    #[serde(default)]
    pub template: Option<String>,
    /// Skip the step for an invoice whose collectable amount is below this (in the
    /// invoice's currency).
    #[serde(default)]
    pub min_amount: Option<String>,
    /// Role that does the step (`collector`, `sales`, `manager`).
    #[serde(default)]
    pub assignee_role: Option<String>,
    /// A manager approves the action before it happens (legal, agency).
    #[serde(default)]
    pub requires_approval: bool,
}

impl Step {
    pub fn template_key(&self) -> &str {
        self.template.as_deref().unwrap_or(&self.key)
    }
}

/// Which customers a strategy is for. Precedence: named customer > rule > default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRules {
    /// Customer ids this strategy is for, whatever the rules.
    #[serde(default)]
    pub customers: Vec<String>,
    /// Customer segments this strategy is for.
    #[serde(default)]
    pub segments: Vec<String>,
    /// Risk classes (A–E) this strategy is for.
    #[serde(default)]
    pub risk_classes: Vec<String>,
    /// Only customers whose overdue balance (any currency, in its own units) reaches this.
    #[serde(default)]
    pub min_overdue_amount: Option<String>,
}

/// The content of one version of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyDocument {
    /// The written policy collectors acknowledge (P14).
    pub description: String,
    #[serde(default)]
    pub rules: AssignmentRules,
    /// The ladder, in offset order.
    pub steps: Vec<Step>,
}

pub const ROLES_FOR_STEPS: [&str; 4] = ["collector", "sales", "manager", "admin"];

impl StrategyDocument {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Violations::new();
        text::required(&mut v, "description", Some(&self.description), 20_000);
        if self.steps.is_empty() || self.steps.len() > 30 {
            v.add("steps", "must hold between 1 and 30 steps");
        }
        let mut keys = std::collections::HashSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if s.key.is_empty()
                || s.key.len() > 64
                || !s
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                v.add(
                    format!("{at}.key"),
                    "must be 1–64 lower-case letters, digits or underscores",
                );
            }
            if !keys.insert(s.key.clone()) {
                v.add(format!("{at}.key"), "appears more than once");
            }
            if !(-365..=3650).contains(&s.offset_days) {
                v.add(format!("{at}.offset_days"), "must be between -365 and 3650");
            }
            if i > 0 && s.offset_days < self.steps[i - 1].offset_days {
                v.add(format!("{at}.offset_days"), "steps must be in increasing offset order");
            }
            if let Some(role) = &s.assignee_role
                && !ROLES_FOR_STEPS.contains(&role.as_str())
            {
                v.add(
                    format!("{at}.assignee_role"),
                    "must be collector, sales, manager or admin",
                );
            }
            if let Some(m) = &s.min_amount
                && crate::domain::money::parse_amount(
                    m,
                    crate::domain::money::Currency::parse("BHD").expect("BHD is in the table"),
                )
                .is_err()
            {
                v.add(format!("{at}.min_amount"), "must be a non-negative decimal string");
            }
        }
        for (i, c) in self.rules.risk_classes.iter().enumerate() {
            if !["A", "B", "C", "D", "E"].contains(&c.as_str()) {
                v.add(format!("rules.risk_classes[{i}]"), "must be A, B, C, D or E");
            }
        }
        v.finish()
    }

    /// Distinct offsets in order: level n (1-based) is the n-th.
    pub fn levels(&self) -> Vec<i32> {
        let mut offsets: Vec<i32> = self.steps.iter().map(|s| s.offset_days).collect();
        offsets.dedup();
        offsets
    }

    /// The steps of a level (1-based).
    pub fn steps_of_level(&self, level: usize) -> Vec<&Step> {
        match self.levels().get(level.wrapping_sub(1)) {
            Some(offset) => self.steps.iter().filter(|s| s.offset_days == *offset).collect(),
            None => Vec::new(),
        }
    }
}

/// The default strategy, from the seed documents: a friendly reminder five days before
/// the due date (P17), a reminder the day after asking whether the invoice arrived (P18), a
/// call at 7 days (P12), a firm letter naming the consequence at 15 (P5, P19), sales
/// escalation and a credit hold at 30 (P7), a final notice at 45, a law-firm letter at 60
/// that a manager approves first (P9). Agency placement (P15) and a repossession offer (P8)
/// are manual actions.
pub fn default_strategy() -> StrategyDocument {
    let step = |key: &str, offset: i32, action: StepAction, tone: Tone, role: &str, approval: bool| Step {
        key: key.to_string(),
        offset_days: offset,
        action,
        tone,
        template: None,
        min_amount: None,
        assignee_role: Some(role.to_string()),
        requires_approval: approval,
    };
    StrategyDocument {
        description: "Default collection policy. We contact every customer before the due date and keep in \
regular, courteous contact after it: a friendly reminder 5 days before the due date; a reminder the day after \
it that asks whether the invoice arrived; a phone call at 7 days; a firm letter naming the consequence at 15 \
days; at 30 days the sales representative is involved and new orders are put on hold; a final notice at 45 \
days; at 60 days, with a manager's approval, a letter from our law firm. No contact is made about an invoice \
that was not delivered, is disputed, or is covered by a promise or a payment plan. Every call is logged with \
its outcome."
            .into(),
        rules: AssignmentRules::default(),
        steps: vec![
            step(
                "pre_due_reminder",
                -5,
                StepAction::Email,
                Tone::Friendly,
                "collector",
                false,
            ),
            step(
                "first_reminder",
                1,
                StepAction::Email,
                Tone::Friendly,
                "collector",
                false,
            ),
            Step {
                template: Some("call_script".into()),
                ..step("reminder_call", 7, StepAction::Call, Tone::Friendly, "collector", false)
            },
            step("firm_letter", 15, StepAction::Letter, Tone::Firm, "collector", false),
            step(
                "sales_escalation",
                30,
                StepAction::SalesEscalation,
                Tone::Firm,
                "sales",
                false,
            ),
            Step {
                template: Some("credit_hold_notice".into()),
                ..step("credit_hold", 30, StepAction::CreditHold, Tone::Firm, "manager", false)
            },
            step("final_notice", 45, StepAction::Email, Tone::Final, "collector", false),
            Step {
                template: Some("legal_letter".into()),
                ..step(
                    "law_firm_letter",
                    60,
                    StepAction::LawFirmLetter,
                    Tone::Legal,
                    "manager",
                    true,
                )
            },
        ],
    }
}

/// Why an open invoice gets no step in a run (each skip is recorded with its reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    NotYetDue,
    AlreadyDone,
    BelowMinimum,
    CustomerPaused,
    Disputed,
    Promised,
    InPaymentPlan,
    /// Placed with a collection agency (P15).
    WithAgency,
    /// A law-firm letter or small-claims case owns the invoice (P9).
    Legal,
    /// The goods are offered back (P8).
    RepossessionOffered,
}

impl From<Exclusion> for SkipReason {
    fn from(e: Exclusion) -> SkipReason {
        match e {
            Exclusion::CustomerPaused => SkipReason::CustomerPaused,
            Exclusion::Disputed => SkipReason::Disputed,
            Exclusion::Promised => SkipReason::Promised,
            Exclusion::InPaymentPlan => SkipReason::InPaymentPlan,
            Exclusion::WithAgency => SkipReason::WithAgency,
            Exclusion::Legal => SkipReason::Legal,
            Exclusion::RepossessionOffered => SkipReason::RepossessionOffered,
        }
    }
}

/// What a run does with one open invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Take the steps of this level (1-based).
    Act(usize),
    /// The step is due but delivery is not confirmed: re-send the invoice first (P16).
    Resend,
    Skip(SkipReason),
}

/// Facts about one open invoice for step selection.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceState {
    /// Days past the due date (or past the re-send date when later).
    pub days_past_due: i64,
    /// Level already done (0 = none).
    pub level_done: usize,
    pub collectable_minor: i64,
    pub delivered: bool,
    pub exclusion: Option<Exclusion>,
}

/// The pre-contact checks (P16) and step choice: commitments and exclusions first, then
/// delivery, then the highest level whose offset is reached and not yet done.
pub fn decide(doc: &StrategyDocument, state: &InvoiceState, min_amount_of: impl Fn(usize) -> Option<i64>) -> Decision {
    if let Some(e) = state.exclusion {
        return Decision::Skip(e.into());
    }
    let levels = doc.levels();
    let reached = levels
        .iter()
        .take_while(|offset| i64::from(**offset) <= state.days_past_due)
        .count();
    if reached == 0 {
        return Decision::Skip(SkipReason::NotYetDue);
    }
    if reached <= state.level_done {
        return Decision::Skip(SkipReason::AlreadyDone);
    }
    if !state.delivered {
        return Decision::Resend;
    }
    if min_amount_of(reached).is_some_and(|min| state.collectable_minor < min) {
        return Decision::Skip(SkipReason::BelowMinimum);
    }
    Decision::Act(reached)
}

/// The text naming what happens next, for the `consequence` template variable, per language.
pub fn consequence(next: Option<StepAction>, language: &str) -> String {
    let texts: BTreeMap<&str, [&str; 4]> = BTreeMap::from([
        // [hold, legal, agency, next notice]
        (
            "en",
            [
                "we will have to put new orders on hold until the account is settled",
                "the matter will be passed to our legal advisers",
                "the account will be placed with a collection agency",
                "we will send you a final notice",
            ],
        ),
        (
            "es",
            [
                "nos veremos obligados a suspender los nuevos pedidos hasta que se regularice la cuenta",
                "el asunto se trasladará a nuestros asesores legales",
                "la cuenta se encomendará a una agencia de recobro",
                "le enviaremos un último aviso",
            ],
        ),
        (
            "ca",
            [
                "ens veurem obligats a suspendre les noves comandes fins que es regularitzi el compte",
                "l'assumpte es traslladarà als nostres assessors legals",
                "el compte s'encarregarà a una agència de recobrament",
                "li enviarem un darrer avís",
            ],
        ),
        (
            "fr",
            [
                "nous serons contraints de suspendre les nouvelles commandes jusqu'à la régularisation du compte",
                "le dossier sera transmis à notre conseil juridique",
                "le dossier sera confié à une société de recouvrement",
                "nous vous adresserons une dernière relance",
            ],
        ),
        (
            "pl",
            [
                "będziemy zmuszeni wstrzymać realizację nowych zamówień do czasu uregulowania należności",
                "sprawa zostanie przekazana naszym doradcom prawnym",
                "sprawa zostanie przekazana firmie windykacyjnej",
                "prześlemy Państwu ostateczne wezwanie do zapłaty",
            ],
        ),
    ]);
    let lang = if LANGUAGES.contains(&language) { language } else { "en" };
    let row = texts
        .get(lang)
        .or_else(|| texts.get("en"))
        .copied()
        .unwrap_or(["", "", "", ""]);
    match next {
        Some(StepAction::CreditHold) | Some(StepAction::SalesEscalation) => row[0],
        Some(StepAction::AgencyPlacement) => row[2],
        Some(StepAction::Email) | Some(StepAction::Letter) | Some(StepAction::Sms) | Some(StepAction::Call) => row[3],
        _ => row[1],
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(dpd: i64, done: usize) -> InvoiceState {
        InvoiceState {
            days_past_due: dpd,
            level_done: done,
            collectable_minor: 10_000,
            delivered: true,
            exclusion: None,
        }
    }

    #[test]
    fn default_strategy_is_valid_and_has_seven_levels() {
        let doc = default_strategy();
        assert_eq!(doc.validate(), Ok(()));
        assert_eq!(doc.levels(), vec![-5, 1, 7, 15, 30, 45, 60]);
        let at_30: Vec<&str> = doc.steps_of_level(5).iter().map(|s| s.key.as_str()).collect();
        assert_eq!(at_30, vec!["sales_escalation", "credit_hold"]);
        assert!(doc.steps_of_level(7)[0].requires_approval);
        assert!(doc.steps_of_level(8).is_empty());
    }

    #[test]
    fn step_choice_table() {
        let doc = default_strategy();
        let none = |_: usize| None;
        let cases = [
            (state(-6, 0), Decision::Skip(SkipReason::NotYetDue)),
            (state(-5, 0), Decision::Act(1)),
            (state(0, 1), Decision::Skip(SkipReason::AlreadyDone)),
            (state(1, 1), Decision::Act(2)),
            (state(7, 2), Decision::Act(3)),
            (state(20, 0), Decision::Act(4)),
            (state(30, 4), Decision::Act(5)),
            (state(100, 7), Decision::Skip(SkipReason::AlreadyDone)),
            (state(100, 5), Decision::Act(7)),
            (
                InvoiceState {
                    delivered: false,
                    ..state(1, 0)
                },
                Decision::Resend,
            ),
            (
                InvoiceState {
                    delivered: false,
                    ..state(-6, 0)
                },
                Decision::Skip(SkipReason::NotYetDue),
            ),
            (
                InvoiceState {
                    exclusion: Some(Exclusion::Promised),
                    ..state(20, 0)
                },
                Decision::Skip(SkipReason::Promised),
            ),
            (
                InvoiceState {
                    exclusion: Some(Exclusion::Disputed),
                    delivered: false,
                    ..state(20, 0)
                },
                Decision::Skip(SkipReason::Disputed),
            ),
            (
                InvoiceState {
                    exclusion: Some(Exclusion::WithAgency),
                    ..state(100, 5)
                },
                Decision::Skip(SkipReason::WithAgency),
            ),
            (
                InvoiceState {
                    exclusion: Some(Exclusion::Legal),
                    delivered: false,
                    ..state(100, 0)
                },
                Decision::Skip(SkipReason::Legal),
            ),
            (
                InvoiceState {
                    exclusion: Some(Exclusion::RepossessionOffered),
                    ..state(1, 0)
                },
                Decision::Skip(SkipReason::RepossessionOffered),
            ),
        ];
        for (s, expected) in cases {
            assert_eq!(decide(&doc, &s, none), expected, "{s:?}");
        }
        assert_eq!(
            decide(&doc, &state(20, 0), |_| Some(20_000)),
            Decision::Skip(SkipReason::BelowMinimum)
        );
    }

    #[test]
    fn escalation_skip_reasons_have_their_names() {
        for (e, name) in [
            (Exclusion::WithAgency, "with_agency"),
            (Exclusion::Legal, "legal"),
            (Exclusion::RepossessionOffered, "repossession_offered"),
        ] {
            assert_eq!(serde_json::to_value(SkipReason::from(e)).expect("json"), name);
        }
    }

    #[test]
    fn validation_names_the_bad_step() {
        let mut doc = default_strategy();
        doc.steps[1].offset_days = -10;
        doc.steps[2].key = "Bad Key".into();
        doc.steps[3].assignee_role = Some("janitor".into());
        let fields: Vec<String> = doc
            .validate()
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            vec!["steps[1].offset_days", "steps[2].key", "steps[3].assignee_role"]
        );
    }

    #[test]
    fn consequences_exist_in_every_language() {
        for lang in LANGUAGES {
            for next in [
                Some(StepAction::CreditHold),
                Some(StepAction::LawFirmLetter),
                Some(StepAction::AgencyPlacement),
                None,
            ] {
                assert!(!consequence(next, lang).is_empty());
            }
        }
        assert!(consequence(Some(StepAction::CreditHold), "es").contains("pedidos"));
    }
}
