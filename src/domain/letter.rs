//! Letters and e-mails: the variables a template may use, their rendering with minijinja in
//! strict mode (a template naming an unknown variable is refused when saved), and the
//! default templates shipped in en, es, ca, fr and pl.

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

include!(concat!(env!("OUT_DIR"), "/default_templates.rs"));

/// One invoice as a letter lists it (values already formatted for the language).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "number": "2026/0042", "issue_date": "01/10/2026", "due_date": "31/10/2026", "amount": "1.210,00 €",
    "open_amount": "1.210,00 €", "days_overdue": 23
}))]
pub struct LetterInvoice {
    pub number: String,
    pub issue_date: String,
    pub due_date: String,
    pub amount: String,
    pub open_amount: String,
    pub days_overdue: i64,
}

/// One overdue payment-plan instalment as the instalment reminder lists it (values already
/// formatted for the language).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"number": 2, "count": 4, "due_date": "15/11/2026", "amount": "362,50 €",
    "outstanding": "362,50 €", "days_overdue": 8, "invoices": "2026/0042 y 2026/0057"}))]
pub struct LetterInstalment {
    /// Position in the plan (1-based) and the plan's number of instalments.
    pub number: i64,
    pub count: i64,
    pub due_date: String,
    pub amount: String,
    /// What is still unpaid of the instalment.
    pub outstanding: String,
    pub days_overdue: i64,
    /// The invoices the plan covers, joined for the language (`2026/0042 and 2026/0057`).
    pub invoices: String,
}

/// Every variable a template may use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "customer_name": "Ferreteria Puig SL", "contact_name": "Marta Puig", "organisation_name": "Recaudo Demo SA",
    "collector_name": "Laura Martí", "collector_email": "laura@example.com", "collector_phone": "+34 933 000 222",
    "invoices": [
        {
            "number": "2026/0042", "issue_date": "01/10/2026", "due_date": "31/10/2026", "amount": "1.210,00 €",
            "open_amount": "1.210,00 €", "days_overdue": 23
        }
    ],
    "total_overdue": "1.210,00 €", "total_open": "1.690,00 €", "days_overdue": 23, "due_date": "31/10/2026",
    "last_reminder_date": "01/11/2026",
    "consequence": "haurem d'aturar les noves comandes fins que el compte estigui al corrent",
    "reply_by": "30/11/2026"
}))]
pub struct LetterContext {
    pub customer_name: String,
    pub contact_name: Option<String>,
    pub organisation_name: String,
    pub collector_name: Option<String>,
    pub collector_email: Option<String>,
    pub collector_phone: Option<String>,
    pub invoices: Vec<LetterInvoice>,
    pub total_overdue: String,
    pub total_open: String,
    pub days_overdue: i64,
    pub due_date: String,
    pub last_reminder_date: Option<String>,
    pub consequence: String,
    pub reply_by: String,
    /// Overdue payment-plan instalments (the `plan_instalment_reminder`); empty otherwise.
    #[serde(default)]
    pub instalments: Vec<LetterInstalment>,
}

impl LetterContext {
    /// Sample data for validating and previewing templates.
    pub fn sample(language: &str) -> LetterContext {
        let eur = crate::domain::money::Currency::EUR;
        let money = |m| crate::domain::format::money(m, eur, language);
        let date = |y, mo, d| {
            crate::domain::format::date(chrono::NaiveDate::from_ymd_opt(y, mo, d).unwrap_or_default(), language)
        };
        LetterContext {
            customer_name: "Ferreteria Puig SL".into(),
            contact_name: Some("Marta Puig".into()),
            organisation_name: "Recaudo Demo SA".into(),
            collector_name: Some("Laura Martí".into()),
            collector_email: Some("laura@example.com".into()),
            collector_phone: Some("+34 933 000 222".into()),
            invoices: vec![
                LetterInvoice {
                    number: "2026/0042".into(),
                    issue_date: date(2026, 9, 1),
                    due_date: date(2026, 10, 1),
                    amount: money(121_000),
                    open_amount: money(121_000),
                    days_overdue: 53,
                },
                LetterInvoice {
                    number: "2026/0057".into(),
                    issue_date: date(2026, 10, 1),
                    due_date: date(2026, 10, 31),
                    amount: money(48_000),
                    open_amount: money(24_000),
                    days_overdue: 23,
                },
            ],
            total_overdue: money(145_000),
            total_open: money(145_000),
            days_overdue: 53,
            due_date: date(2026, 10, 1),
            last_reminder_date: Some(date(2026, 11, 8)),
            consequence: crate::domain::strategy::consequence(
                Some(crate::domain::strategy::StepAction::CreditHold),
                language,
            ),
            reply_by: date(2026, 11, 30),
            instalments: vec![LetterInstalment {
                number: 2,
                count: 4,
                due_date: date(2026, 11, 15),
                amount: money(36_250),
                outstanding: money(36_250),
                days_overdue: 8,
                invoices: crate::domain::format::join(&["2026/0042".to_string(), "2026/0057".to_string()], language),
            }],
        }
    }
}

/// A template's three parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateSource {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": "Recordatori: factura 2026/0042 vençuda",
    "body_text": "Benvolguts Ferreteria Puig SL:\n\nLa factura 2026/0042 de 1.210,00 € va vèncer el 31/10/2026.",
    "body_html": "<p>Benvolguts Ferreteria Puig SL:</p><p>La factura 2026/0042 va vèncer el 31/10/2026.</p>"
}))]
pub struct Rendered {
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
}

impl Rendered {
    /// Subject, text and HTML of a letter that may not have been rendered, as an action
    /// stores them (moved, not copied: a letter can list thousands of invoices).
    pub fn into_parts(letter: Option<Rendered>) -> (Option<String>, Option<String>, Option<String>) {
        match letter {
            Some(r) => (Some(r.subject), Some(r.body_text), Some(r.body_html)),
            None => (None, None, None),
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn render_one(env: &Environment<'_>, name: &str, source: &str, ctx: &LetterContext) -> Result<String, String> {
    env.render_named_str(name, source, ctx).map_err(|e| {
        let mut message = e.to_string();
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        message
    })
}

/// Renders the three parts; the HTML part is auto-escaped.
pub fn render(source: &TemplateSource, ctx: &LetterContext) -> Result<Rendered, Vec<FieldError>> {
    let env = environment();
    let mut errors = Vec::new();
    let mut part = |field: &str, name: &str, src: &str| match render_one(&env, name, src, ctx) {
        Ok(out) => out,
        Err(message) => {
            errors.push(FieldError::new(field, message));
            String::new()
        }
    };
    let subject = part("subject", "subject.txt", &source.subject);
    let body_text = part("body_text", "body.txt", &source.body_text);
    let body_html = part("body_html", "body.html", &source.body_html);
    if errors.is_empty() {
        Ok(Rendered {
            subject: subject.trim().to_string(),
            body_text,
            body_html,
        })
    } else {
        Err(errors)
    }
}

/// A set of templates compiled once and rendered many times: the collection run renders
/// thousands of messages from a handful of templates, and compiling a template costs more
/// than rendering it. Keyed by (template key, language).
pub struct CompiledTemplates {
    env: Environment<'static>,
}

impl CompiledTemplates {
    /// Compiles every source; one that does not compile is left out, so rendering it
    /// answers `None` like a missing template (templates are validated when saved).
    pub fn new<'a>(sources: impl IntoIterator<Item = (&'a (String, String), &'a TemplateSource)>) -> CompiledTemplates {
        let mut env = environment();
        for ((key, language), source) in sources {
            let parts = [
                (part_name(key, language, "subject.txt"), source.subject.clone()),
                (part_name(key, language, "body.txt"), source.body_text.clone()),
                (part_name(key, language, "body.html"), source.body_html.clone()),
            ];
            let names: Vec<String> = parts.iter().map(|(n, _)| n.clone()).collect();
            let mut compiled = true;
            for (name, text) in parts {
                compiled &= env.add_template_owned(name, text).is_ok();
            }
            if !compiled {
                for name in names {
                    env.remove_template(&name);
                }
            }
        }
        CompiledTemplates { env }
    }

    /// Renders the three parts of (key, language); `None` when there is no such template,
    /// or when it fails to render for this context.
    pub fn render(&self, key: &str, language: &str, ctx: &LetterContext) -> Option<Rendered> {
        let part = |name: &str| {
            self.env
                .get_template(&part_name(key, language, name))
                .ok()?
                .render(ctx)
                .ok()
        };
        Some(Rendered {
            subject: part("subject.txt")?.trim().to_string(),
            body_text: part("body.txt")?,
            body_html: part("body.html")?,
        })
    }

    /// The language to render `key` in: the one asked for when that template exists, else
    /// English.
    pub fn language_for<'a>(&self, key: &str, language: &'a str) -> &'a str {
        if self.contains(key, language) { language } else { "en" }
    }

    pub fn contains(&self, key: &str, language: &str) -> bool {
        self.env.get_template(&part_name(key, language, "subject.txt")).is_ok()
    }
}

/// The HTML part's name ends in `.html`, which turns on auto-escaping for it.
fn part_name(key: &str, language: &str, part: &str) -> String {
    format!("{key}/{language}/{part}")
}

/// Checks a template against the sample data: an unknown variable or a syntax error is
/// refused before it can reach a customer.
pub fn validate(source: &TemplateSource, language: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (field, text, max) in [
        ("subject", &source.subject, 500),
        ("body_text", &source.body_text, 50_000),
        ("body_html", &source.body_html, 100_000),
    ] {
        if text.trim().is_empty() {
            errors.push(FieldError::new(field, "is required"));
        } else if text.len() > max {
            errors.push(FieldError::new(field, format!("must be at most {max} bytes")));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    render(source, &LetterContext::sample(language)).map(|_| ())
}

/// The shipped default template of a key in a language.
pub fn default_template(key: &str, language: &str) -> Option<TemplateSource> {
    let part = |p: &str| {
        DEFAULT_TEMPLATES
            .iter()
            .find(|(l, k, pp, _)| *l == language && *k == key && *pp == p)
            .map(|(_, _, _, src)| src.to_string())
    };
    Some(TemplateSource {
        subject: part("subject")?,
        body_text: part("txt")?,
        body_html: part("html")?,
    })
}

/// Every (key, language) with a shipped default.
pub fn default_keys() -> Vec<(&'static str, &'static str)> {
    let mut keys: Vec<(&str, &str)> = DEFAULT_TEMPLATES.iter().map(|(l, k, _, _)| (*k, *l)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    #[test]
    fn compiled_templates_render_like_one_off_rendering() {
        let sources: std::collections::BTreeMap<(String, String), TemplateSource> = default_keys()
            .into_iter()
            .filter_map(|(key, lang)| Some(((key.to_string(), lang.to_string()), default_template(key, lang)?)))
            .collect();
        let compiled = CompiledTemplates::new(&sources);
        for ((key, lang), source) in &sources {
            let mut ctx = LetterContext::sample(lang);
            ctx.customer_name = "Puig & <Fills>".into();
            assert_eq!(
                compiled.render(key, lang, &ctx),
                render(source, &ctx).ok(),
                "{lang}/{key}"
            );
        }
        assert!(
            compiled
                .render("no_such_template", "en", &LetterContext::sample("en"))
                .is_none()
        );
        assert!(!compiled.contains("no_such_template", "en"));
    }

    use super::*;

    fn source(subject: &str, text: &str, html: &str) -> TemplateSource {
        TemplateSource {
            subject: subject.into(),
            body_text: text.into(),
            body_html: html.into(),
        }
    }

    #[test]
    fn renders_and_escapes_html() {
        let mut ctx = LetterContext::sample("es");
        ctx.customer_name = "Puig & Fills <SL>".into();
        let out = render(
            &source(
                "Factura {{ invoices[0].number }}",
                "Hola {{ customer_name }}: {{ total_overdue }}",
                "<p>{{ customer_name }}</p>",
            ),
            &ctx,
        )
        .expect("renders");
        assert_eq!(out.subject, "Factura 2026/0042");
        assert!(out.body_text.contains("Puig & Fills <SL>"));
        assert!(out.body_text.contains("1.450,00 €"));
        assert_eq!(out.body_html, "<p>Puig &amp; Fills &lt;SL&gt;</p>");
    }

    #[test]
    fn unknown_variables_and_syntax_errors_are_refused() {
        let errors = validate(&source("{{ customr_name }}", "ok", "ok"), "en").expect_err("unknown variable");
        assert_eq!(errors[0].field, "subject");
        let errors = validate(&source("ok", "{% if %}", "ok"), "en").expect_err("syntax");
        assert_eq!(errors[0].field, "body_text");
        let errors = validate(&source("", "ok", "ok"), "en").expect_err("empty");
        assert_eq!(errors[0].field, "subject");
        assert_eq!(
            validate(
                &source("{{ reply_by }}", "{% if last_reminder_date %}x{% endif %}", "ok"),
                "fr"
            ),
            Ok(())
        );
    }

    #[test]
    fn every_shipped_default_renders_in_strict_mode() {
        for (key, lang) in default_keys() {
            let t = default_template(key, lang).unwrap_or_else(|| panic!("{lang}/{key} is missing a part"));
            let mut ctx = LetterContext::sample(lang);
            assert_eq!(render(&t, &ctx).map(|_| ()), Ok(()), "{lang}/{key}");
            ctx.contact_name = None;
            ctx.last_reminder_date = None;
            ctx.collector_name = None;
            ctx.collector_email = None;
            ctx.collector_phone = None;
            assert_eq!(render(&t, &ctx).map(|_| ()), Ok(()), "{lang}/{key} with nulls");
        }
    }
}
