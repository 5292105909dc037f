//! Credit applications (P11): an applicant — an existing customer or a prospect — asks for
//! a credit limit and payment terms, with trade and bank references and optional
//! financials. Drafts are edited freely; submitting checks completeness (422 listing what
//! is missing) and scores the application; a manager decides, and an approval sets the
//! customer's limit, terms and risk class (creating the customer for a prospect), keeping
//! the history of every change.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConnection;
use crate::db::repo::credit::{self as credit_repo, NewHistory};
use crate::db::repo::credit_applications::{self as repo, ApplicationRow, ApplicationValues, ScoreValues};
use crate::db::repo::customers as customer_repo;
use crate::db::repo::events::{self, NewEvent};
use crate::domain::customer::CustomerData;
use crate::domain::ids::Kind;
use crate::domain::money::{self, Currency};
use crate::domain::scorecard::{
    self, BANK_RATINGS, BankAnswer, FinancialFigures, OwnHistory, REFERENCE_STATUSES, ScoreInput, Scorecard,
    TradeAnswer,
};
use crate::domain::text;
use crate::error::{AppError, Violations};
use crate::service::check_version;
use crate::service::org_settings as settings;

pub const STATUSES: [&str; 6] = [
    "draft",
    "submitted",
    "under_review",
    "approved",
    "rejected",
    "more_information_requested",
];
pub const COMPANY_SIZES: [&str; 4] = ["micro", "small", "medium", "large"];

/// A trade reference: another supplier of the applicant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"company": "Suministros Vila SA", "contact": "Pere Vila", "email": "credit@vila.example",
    "relationship_years": 6, "credit_limit_granted": "15000.00", "average_days_to_pay": 32, "status": "received"}))]
pub struct TradeReference {
    pub company: String,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub relationship_years: Option<u32>,
    /// Decimal string in the application's currency.
    #[serde(default)]
    pub credit_limit_granted: Option<String>,
    /// How many days the applicant takes to pay this supplier, on average.
    #[serde(default)]
    pub average_days_to_pay: Option<u32>,
    #[serde(default)]
    pub comments: Option<String>,
    /// `requested` (default), `received`, `unreachable`.
    #[serde(default)]
    pub status: Option<String>,
}

/// A bank reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bank": "Banc Sabadell", "account_age_years": 9, "average_balance_band": "100k-500k",
    "rating": "good", "status": "received"}))]
pub struct BankReference {
    pub bank: String,
    #[serde(default)]
    pub account_age_years: Option<u32>,
    /// Free text band, e.g. `10k-50k`.
    #[serde(default)]
    pub average_balance_band: Option<String>,
    /// `excellent`, `good`, `satisfactory`, `poor`.
    #[serde(default)]
    pub rating: Option<String>,
    /// `requested` (default), `received`, `unreachable`.
    #[serde(default)]
    pub status: Option<String>,
}

/// The applicant's latest annual figures (decimal strings; net income may be negative).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"annual_revenue": "2400000.00", "equity": "600000.00", "net_income": "96000.00", "currency": "EUR"}))]
pub struct Financials {
    #[serde(default)]
    pub annual_revenue: Option<String>,
    #[serde(default)]
    pub equity: Option<String>,
    #[serde(default)]
    pub net_income: Option<String>,
    /// Default: the application's currency.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A credit application as the API accepts it (create, and the base of a merge patch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "legal_name": "Ferreteria Puig SL", "tax_id": "B12345678", "country": "ES",
    "address": "Carrer Major 1, 08001 Barcelona", "years_in_business": 12, "company_size": "small",
    "requested_limit": "25000.00", "currency": "EUR", "requested_terms_days": 60,
    "trade_references": [
        {"company": "Suministros Vila SA", "email": "credit@vila.example", "average_days_to_pay": 32, "status": "received"},
        {"company": "Pintures Roca SL", "phone": "+34 934 000 222", "average_days_to_pay": 41, "status": "received"}],
    "bank_references": [{"bank": "Banc Sabadell", "account_age_years": 9, "rating": "good", "status": "received"}],
    "financials": {"annual_revenue": "2400000.00", "equity": "600000.00", "net_income": "96000.00"},
    "attachments": ["https://files.example/ferreteria-puig/accounts-2025.pdf"]
}))]
pub struct ApplicationInput {
    /// An existing customer; without it the applicant is a prospect, created on approval.
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub legal_name: Option<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 500)]
    pub years_in_business: Option<i32>,
    /// `micro`, `small`, `medium`, `large`.
    #[serde(default)]
    pub company_size: Option<String>,
    /// Decimal string in `currency`.
    #[serde(default)]
    pub requested_limit: Option<String>,
    /// Default: the customer's currency, else EUR.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3650)]
    pub requested_terms_days: Option<i32>,
    #[serde(default)]
    pub trade_references: Option<Vec<TradeReference>>,
    #[serde(default)]
    pub bank_references: Option<Vec<BankReference>>,
    #[serde(default)]
    pub financials: Option<Financials>,
    /// Links (http or https) to documents: accounts, registry extracts, signed forms.
    #[serde(default)]
    pub attachments: Option<Vec<String>>,
    #[serde(default)]
    pub notes: Option<String>,
}

fn parse_signed(text: &str, currency: Currency) -> Result<i64, money::MoneyError> {
    match text.trim().strip_prefix('-') {
        Some(rest) => money::parse_amount(rest, currency).map(|m| -m),
        None => money::parse_amount(text, currency),
    }
}

fn check_status(v: &mut Violations, field: String, status: &Option<String>) -> String {
    let s = status.clone().unwrap_or_else(|| "requested".into());
    if !REFERENCE_STATUSES.contains(&s.as_str()) {
        v.add(field, format!("must be one of {}", REFERENCE_STATUSES.join(", ")));
    }
    s
}

/// Validates the shape of an application (not its completeness) into stored values.
fn validate(c: &mut DbConnection, org_id: i64, input: &ApplicationInput) -> Result<ApplicationValues, AppError> {
    let mut v = Violations::new();
    let customer = match input.customer_id.as_deref() {
        None => None,
        Some(id) => match Kind::Customer.decode(id).map(|k| customer_repo::find(c, org_id, k)) {
            Some(Ok(row)) => Some(row),
            Some(Err(AppError::NotFound(_))) | None => {
                v.add("customer_id", "no such customer");
                None
            }
            Some(Err(e)) => return Err(e),
        },
    };
    let code = input
        .currency
        .clone()
        .or_else(|| customer.as_ref().map(|c| c.currency.clone()))
        .unwrap_or_else(|| "EUR".into());
    let currency = Currency::parse(code.trim());
    if currency.is_none() {
        v.add("currency", "is not a supported ISO 4217 currency");
    }
    let legal_name = text::optional(&mut v, "legal_name", input.legal_name.as_deref(), 200);
    let tax_id = text::optional(&mut v, "tax_id", input.tax_id.as_deref(), 64);
    let country = text::optional(&mut v, "country", input.country.as_deref(), 2);
    if let Some(cc) = &country
        && (cc.len() != 2 || !cc.bytes().all(|b| b.is_ascii_uppercase()))
    {
        v.add("country", "must be an ISO 3166-1 alpha-2 code in upper case, e.g. ES");
    }
    let address = text::optional(&mut v, "address", input.address.as_deref(), 500);
    if input.years_in_business.is_some_and(|y| !(0..=500).contains(&y)) {
        v.add("years_in_business", "must be between 0 and 500");
    }
    let company_size = text::optional(&mut v, "company_size", input.company_size.as_deref(), 16);
    if company_size.as_deref().is_some_and(|s| !COMPANY_SIZES.contains(&s)) {
        v.add("company_size", format!("must be one of {}", COMPANY_SIZES.join(", ")));
    }
    let requested = match (&input.requested_limit, currency) {
        (Some(t), Some(cur)) => v.check("requested_limit", money::parse_amount(t, cur)),
        _ => None,
    };
    if input.requested_terms_days.is_some_and(|d| !(0..=3650).contains(&d)) {
        v.add("requested_terms_days", "must be between 0 and 3650");
    }
    let mut trade = input.trade_references.clone().unwrap_or_default();
    if trade.len() > 20 {
        v.add("trade_references", "at most 20 references");
    }
    for (i, t) in trade.iter_mut().enumerate() {
        let p = format!("trade_references[{i}].");
        t.company = text::required(&mut v, &format!("{p}company"), Some(&t.company), 200).unwrap_or_default();
        t.contact = text::optional(&mut v, &format!("{p}contact"), t.contact.as_deref(), 200);
        t.email = text::optional(&mut v, &format!("{p}email"), t.email.as_deref(), 254);
        if t.email.as_deref().is_some_and(|e| !e.contains('@')) {
            v.add(format!("{p}email"), "is not an e-mail address");
        }
        t.phone = text::optional(&mut v, &format!("{p}phone"), t.phone.as_deref(), 40);
        t.comments = text::optional(&mut v, &format!("{p}comments"), t.comments.as_deref(), 2000);
        if let (Some(limit), Some(cur)) = (&t.credit_limit_granted, currency) {
            v.check(&format!("{p}credit_limit_granted"), money::parse_amount(limit, cur));
        }
        if t.average_days_to_pay.is_some_and(|d| d > 3650) || t.relationship_years.is_some_and(|y| y > 500) {
            v.add(format!("{p}average_days_to_pay"), "is out of range");
        }
        t.status = Some(check_status(&mut v, format!("{p}status"), &t.status));
    }
    let mut bank = input.bank_references.clone().unwrap_or_default();
    if bank.len() > 10 {
        v.add("bank_references", "at most 10 references");
    }
    for (i, b) in bank.iter_mut().enumerate() {
        let p = format!("bank_references[{i}].");
        b.bank = text::required(&mut v, &format!("{p}bank"), Some(&b.bank), 200).unwrap_or_default();
        b.average_balance_band = text::optional(
            &mut v,
            &format!("{p}average_balance_band"),
            b.average_balance_band.as_deref(),
            64,
        );
        if let Some(r) = &b.rating
            && !BANK_RATINGS.contains(&r.as_str())
        {
            v.add(
                format!("{p}rating"),
                format!("must be one of {}", BANK_RATINGS.join(", ")),
            );
        }
        if b.account_age_years.is_some_and(|y| y > 500) {
            v.add(format!("{p}account_age_years"), "is out of range");
        }
        b.status = Some(check_status(&mut v, format!("{p}status"), &b.status));
    }
    let financials = match &input.financials {
        None => None,
        Some(f) => {
            let fcur = f.currency.clone().unwrap_or_else(|| code.clone());
            match Currency::parse(fcur.trim()) {
                None => v.add("financials.currency", "is not a supported ISO 4217 currency"),
                Some(cur) => {
                    if let Some(t) = &f.annual_revenue {
                        v.check("financials.annual_revenue", money::parse_amount(t, cur));
                    }
                    if let Some(t) = &f.equity {
                        v.check("financials.equity", parse_signed(t, cur));
                    }
                    if let Some(t) = &f.net_income {
                        v.check("financials.net_income", parse_signed(t, cur));
                    }
                }
            }
            let mut f = f.clone();
            f.currency = Some(fcur);
            Some(f)
        }
    };
    let attachments = input.attachments.clone().unwrap_or_default();
    if attachments.len() > 50 {
        v.add("attachments", "at most 50 links");
    }
    for (i, a) in attachments.iter().enumerate() {
        if !(a.starts_with("https://") || a.starts_with("http://"))
            || a.len() > 2000
            || a.chars().any(char::is_whitespace)
        {
            v.add(
                format!("attachments[{i}]"),
                "must be an http(s) URL of at most 2000 characters",
            );
        }
    }
    let notes = text::optional(&mut v, "notes", input.notes.as_deref(), 4000);
    v.into_result(())?;
    Ok(ApplicationValues {
        customer_id: customer.map(|c| c.id),
        legal_name,
        tax_id,
        country,
        address,
        years_in_business: input.years_in_business,
        company_size,
        currency: currency.map(|c| c.code().to_string()).unwrap_or(code),
        requested_limit_minor: requested,
        requested_terms_days: input.requested_terms_days,
        trade_references: json(&trade),
        bank_references: json(&bank),
        financials: financials.as_ref().map(json),
        attachments: json(&attachments),
        notes,
    })
}

/// Serialises a stored JSON column (values built by this module always serialise).
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The input that reproduces a stored application (the base of a merge patch).
pub fn to_input(r: &ApplicationRow) -> ApplicationInput {
    ApplicationInput {
        customer_id: r.customer_id.map(|id| Kind::Customer.encode(id)),
        legal_name: r.legal_name.clone(),
        tax_id: r.tax_id.clone(),
        country: r.country.clone(),
        address: r.address.clone(),
        years_in_business: r.years_in_business,
        company_size: r.company_size.clone(),
        requested_limit: r.requested_limit_minor.map(|m| money::format_stored(m, &r.currency)),
        currency: Some(r.currency.clone()),
        requested_terms_days: r.requested_terms_days,
        trade_references: Some(trade_references(r)),
        bank_references: Some(bank_references(r)),
        financials: financials(r),
        attachments: Some(attachments(r)),
        notes: r.notes.clone(),
    }
}

pub fn trade_references(r: &ApplicationRow) -> Vec<TradeReference> {
    serde_json::from_str(&r.trade_references).unwrap_or_default()
}

pub fn bank_references(r: &ApplicationRow) -> Vec<BankReference> {
    serde_json::from_str(&r.bank_references).unwrap_or_default()
}

pub fn attachments(r: &ApplicationRow) -> Vec<String> {
    serde_json::from_str(&r.attachments).unwrap_or_default()
}

pub fn financials(r: &ApplicationRow) -> Option<Financials> {
    r.financials.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

pub fn scorecard(r: &ApplicationRow) -> Option<Scorecard> {
    r.scorecard.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

/// The decision recorded on an application.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// `approved`, `rejected`, `more_information_requested` or `under_review`.
    pub decision: String,
    pub approved_limit_minor: Option<i64>,
    pub payment_terms_days: Option<i32>,
    pub risk_class: Option<String>,
    pub reviewer: String,
    pub reason: Option<String>,
    pub decided_on: NaiveDate,
}

pub fn decision(r: &ApplicationRow) -> Option<Decision> {
    r.decision.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

pub fn create(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    input: &ApplicationInput,
) -> Result<ApplicationRow, AppError> {
    let values = validate(c, org_id, input)?;
    let id = repo::insert(c, org_id, actor, &values)?;
    repo::find(c, org_id, id)
}

fn editable(status: &str) -> bool {
    matches!(status, "draft" | "more_information_requested")
}

pub fn patch(
    c: &mut DbConnection,
    org_id: i64,
    id: i64,
    expected: Option<i64>,
    patch: &serde_json::Value,
) -> Result<ApplicationRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    check_version(expected, current.version)?;
    if !editable(&current.status) {
        return Err(AppError::Conflict(format!(
            "the application is {} and can no longer be edited",
            current.status
        )));
    }
    let input: ApplicationInput = crate::service::merge_patch(&to_input(&current), patch)?;
    let values = validate(c, org_id, &input)?;
    if !repo::update(c, org_id, id, current.version, &values)? {
        return Err(AppError::PreconditionFailed(
            "the application changed meanwhile; retry".into(),
        ));
    }
    repo::find(c, org_id, id)
}

/// A reference counts towards completeness when it names a way to reach it.
fn reachable(t: &TradeReference) -> bool {
    t.email.is_some() || t.phone.is_some() || t.contact.is_some()
}

/// What an application lacks before it can be submitted; empty when complete.
fn missing(r: &ApplicationRow, customer_name: Option<&str>, min_trade: u32, min_bank: u32) -> Violations {
    let mut v = Violations::new();
    if r.legal_name.is_none() && customer_name.is_none() {
        v.add("legal_name", "is required");
    }
    if r.requested_limit_minor.is_none() {
        v.add("requested_limit", "is required");
    }
    let trade = trade_references(r).iter().filter(|t| reachable(t)).count();
    if trade < min_trade as usize {
        v.add(
            "trade_references",
            format!(
                "at least {min_trade} trade references with a contact, e-mail or phone are required; {trade} given"
            ),
        );
    }
    let bank = bank_references(r).len();
    if bank < min_bank as usize {
        v.add(
            "bank_references",
            format!("at least {min_bank} bank references are required; {bank} given"),
        );
    }
    v
}

/// The applicant's own payment history with us (existing customers).
fn own_history(
    c: &mut DbConnection,
    customer_id: i64,
    currency: &str,
    as_of: NaiveDate,
) -> Result<OwnHistory, AppError> {
    let paid = credit_repo::paid_since(c, &[customer_id], as_of - chrono::Days::new(730))?;
    let paid: Vec<_> = paid
        .into_iter()
        .filter(|p| p.1 == currency)
        .filter_map(|(_, _, amount, _, due, paid_on)| paid_on.map(|d| (amount, (d - due).num_days())))
        .collect();
    let total: f64 = paid.iter().map(|(a, _)| *a as f64).sum();
    let late = paid.iter().filter(|(_, d)| *d > 0).count();
    Ok(OwnHistory {
        paid_invoices: paid.len() as u32,
        share_late: if paid.is_empty() {
            0.0
        } else {
            late as f64 / paid.len() as f64
        },
        weighted_days_late: if total > 0.0 {
            paid.iter().map(|(a, d)| *a as f64 * *d as f64).sum::<f64>() / total
        } else {
            0.0
        },
    })
}

/// Scores an application with the organisation's weights.
fn score(
    c: &mut DbConnection,
    r: &ApplicationRow,
    weights: &scorecard::ScorecardWeights,
    as_of: NaiveDate,
) -> Result<Scorecard, AppError> {
    let currency = Currency::parse(&r.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let financials = financials(r).and_then(|f| {
        let code = f.currency.clone().unwrap_or_else(|| r.currency.clone());
        let cur = Currency::parse(&code)?;
        let parse = |t: &Option<String>| t.as_deref().and_then(|t| parse_signed(t, cur).ok());
        Some(FinancialFigures {
            annual_revenue_minor: parse(&f.annual_revenue),
            equity_minor: parse(&f.equity),
            net_income_minor: parse(&f.net_income),
            same_currency: cur == currency,
        })
    });
    let history = match r.customer_id {
        Some(id) => Some(own_history(c, id, &r.currency, as_of)?),
        None => None,
    };
    let input = ScoreInput {
        years_in_business: r.years_in_business,
        trade: trade_references(r)
            .into_iter()
            .map(|t| TradeAnswer {
                status: t.status.unwrap_or_else(|| "requested".into()),
                average_days_to_pay: t.average_days_to_pay,
            })
            .collect(),
        bank: bank_references(r)
            .into_iter()
            .map(|b| BankAnswer {
                status: b.status.unwrap_or_else(|| "requested".into()),
                rating: b.rating,
                account_age_years: b.account_age_years,
            })
            .collect(),
        financials,
        history,
        requested_limit_minor: r.requested_limit_minor.unwrap_or(0),
        requested_terms_days: r.requested_terms_days.unwrap_or(30),
    };
    Ok(scorecard::score(&input, weights))
}

fn score_values(s: &Scorecard) -> ScoreValues {
    ScoreValues {
        score: Some(s.score as i32),
        risk_class: Some(s.risk_class.clone()),
        recommended_limit_minor: Some(s.recommended_limit_minor),
        recommended_terms_days: Some(s.recommended_terms_days),
        scorecard: serde_json::to_string(s).ok(),
    }
}

fn event(c: &mut DbConnection, r: &ApplicationRow, kind: &str) -> Result<(), AppError> {
    events::insert_many(
        c,
        &[NewEvent::new(
            r.org_id,
            kind,
            Kind::CreditApplication.encode(r.id),
            r.customer_id,
            serde_json::json!({"status": r.status, "score": r.score, "risk_class": r.risk_class}),
        )],
    )
}

/// Submits a complete application and scores it; an incomplete one is a 422 listing what
/// is missing.
pub fn submit(c: &mut DbConnection, org_id: i64, id: i64, as_of: NaiveDate) -> Result<ApplicationRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    if !editable(&current.status) {
        return Err(AppError::Conflict(format!(
            "the application is {} and cannot be submitted",
            current.status
        )));
    }
    let s = settings(c, org_id)?;
    let customer_name = match current.customer_id {
        Some(cid) => Some(customer_repo::find(c, org_id, cid)?.name),
        None => None,
    };
    missing(
        &current,
        customer_name.as_deref(),
        s.credit.min_trade_references,
        s.credit.min_bank_references,
    )
    .into_result(())?;
    let card = score(c, &current, &s.credit.scorecard_weights, as_of)?;
    if !repo::transition(
        c,
        org_id,
        id,
        current.version,
        "submitted",
        Some(&score_values(&card)),
        Some(crate::db::now()),
    )? {
        return Err(AppError::PreconditionFailed(
            "the application changed meanwhile; retry".into(),
        ));
    }
    let row = repo::find(c, org_id, id)?;
    event(c, &row, "credit_application.submitted")?;
    Ok(row)
}

/// A reviewer's decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "approved", "approved_limit": "20000.00", "payment_terms_days": 45,
    "reason": "Good references, solid equity; limit below the request until a year of history", "next_review_on": "2027-11-23"}))]
pub struct DecisionRequest {
    /// `under_review` (take it for review), `approved`, `rejected`,
    /// `more_information_requested`.
    pub decision: String,
    /// On approval; default the recommended limit.
    #[serde(default)]
    pub approved_limit: Option<String>,
    /// On approval; default the recommended terms.
    #[serde(default)]
    pub payment_terms_days: Option<i32>,
    /// Required to reject or to ask for more information.
    #[serde(default)]
    pub reason: Option<String>,
    /// On approval; default a year from today.
    #[serde(default)]
    pub next_review_on: Option<NaiveDate>,
}

pub fn decide(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    id: i64,
    req: &DecisionRequest,
    as_of: NaiveDate,
) -> Result<ApplicationRow, AppError> {
    let current = repo::find(c, org_id, id)?;
    let mut v = Violations::new();
    let target = req.decision.as_str();
    if !matches!(
        target,
        "under_review" | "approved" | "rejected" | "more_information_requested"
    ) {
        v.add(
            "decision",
            "must be under_review, approved, rejected or more_information_requested",
        );
        return v.into_result(current);
    }
    let allowed = match target {
        "under_review" => current.status == "submitted",
        _ => matches!(current.status.as_str(), "submitted" | "under_review"),
    };
    if !allowed {
        return Err(AppError::Conflict(format!(
            "an application that is {} cannot become {target}; submit it first",
            current.status
        )));
    }
    let reason = text::optional(&mut v, "reason", req.reason.as_deref(), 2000);
    if matches!(target, "rejected" | "more_information_requested") && reason.is_none() {
        v.add("reason", "is required to reject or to ask for more information");
    }
    let currency = Currency::parse(&current.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let limit = match &req.approved_limit {
        Some(t) => v.check("approved_limit", money::parse_amount(t, currency)),
        None => current.recommended_limit_minor,
    };
    let terms = req.payment_terms_days.or(current.recommended_terms_days).unwrap_or(30);
    if !(0..=3650).contains(&terms) {
        v.add("payment_terms_days", "must be between 0 and 3650");
    }
    let next_review = match target {
        "approved" => Some(req.next_review_on.unwrap_or(as_of + chrono::Days::new(365))),
        _ => None,
    };
    if next_review.is_some_and(|d| d <= as_of) {
        v.add("next_review_on", "must be after today");
    }
    v.into_result(())?;
    if target == "under_review" {
        if !repo::transition(c, org_id, id, current.version, "under_review", None, None)? {
            return Err(AppError::PreconditionFailed(
                "the application changed meanwhile; retry".into(),
            ));
        }
        return repo::find(c, org_id, id);
    }
    let class = current.risk_class.clone().unwrap_or_else(|| "E".into());
    let mut customer_id = current.customer_id;
    if target == "approved" {
        customer_id = Some(apply_approval(
            c,
            org_id,
            actor,
            &current,
            limit,
            terms,
            &class,
            reason.as_deref(),
        )?);
    }
    let record = Decision {
        decision: target.to_string(),
        approved_limit_minor: (target == "approved").then_some(limit).flatten(),
        payment_terms_days: (target == "approved").then_some(terms),
        risk_class: (target == "approved").then(|| class.clone()),
        reviewer: actor.to_string(),
        reason,
        decided_on: as_of,
    };
    let text = serde_json::to_string(&record).map_err(|e| AppError::internal(e.to_string()))?;
    if !repo::decide(c, id, current.version, target, customer_id, &text, next_review)? {
        return Err(AppError::PreconditionFailed(
            "the application changed meanwhile; retry".into(),
        ));
    }
    let row = repo::find(c, org_id, id)?;
    event(c, &row, &format!("credit_application.{target}"))?;
    if let Some(cid) = customer_id.filter(|_| target == "approved") {
        crate::service::credit::refresh_customers(c, org_id, &[cid], as_of)?;
    }
    Ok(row)
}

/// Sets the customer's limit, terms and class (creating the customer for a prospect) and
/// records the change in the credit history.
#[expect(clippy::too_many_arguments)]
fn apply_approval(
    c: &mut DbConnection,
    org_id: i64,
    actor: &str,
    app: &ApplicationRow,
    limit: Option<i64>,
    terms: i32,
    class: &str,
    reason: Option<&str>,
) -> Result<i64, AppError> {
    let currency = Currency::parse(&app.currency).ok_or_else(|| AppError::internal("stored currency unknown"))?;
    let (customer, previous) = match app.customer_id {
        Some(id) => {
            let row = customer_repo::find(c, org_id, id)?;
            if row.currency != app.currency {
                return Err(AppError::Conflict(format!(
                    "the application is in {} but the customer's credit currency is {}",
                    app.currency, row.currency
                )));
            }
            let prev = (row.credit_limit_minor, row.payment_terms_days, row.risk_class.clone());
            (row.id, Some(prev))
        }
        None => {
            let name = app.legal_name.clone().unwrap_or_else(|| "Unnamed applicant".into());
            let data = CustomerData {
                external_id: None,
                name: name.clone(),
                legal_name: Some(name),
                tax_id: app.tax_id.clone(),
                country: app.country.clone(),
                language: "en".into(),
                currency,
                payment_terms_days: terms,
                segment: None,
                collector: None,
                sales_rep: None,
                credit_limit_minor: limit,
                dunning_paused_until: None,
                dunning_pause_reason: None,
                contacts: vec![],
            };
            (customer_repo::insert(c, org_id, &data)?.id, None)
        }
    };
    credit_repo::set_customer_terms(c, org_id, customer, limit, terms, class)?;
    let (prev_limit, prev_terms, prev_class) = previous.unwrap_or((None, terms, None));
    credit_repo::add_history(
        c,
        &NewHistory {
            org_id,
            customer_id: customer,
            application_id: Some(app.id),
            currency: app.currency.clone(),
            previous_limit_minor: prev_limit,
            new_limit_minor: limit,
            previous_terms_days: prev_terms,
            new_terms_days: terms,
            previous_risk_class: prev_class,
            new_risk_class: Some(class.to_string()),
            changed_by: actor.to_string(),
            reason: reason.map(str::to_string),
            created_at: crate::db::now(),
        },
    )?;
    events::insert_many(
        c,
        &[NewEvent::new(
            org_id,
            "credit.limit_changed",
            Kind::Customer.encode(customer),
            Some(customer),
            serde_json::json!({"application_id": Kind::CreditApplication.encode(app.id), "previous_limit_minor": prev_limit,
                               "new_limit_minor": limit, "currency": app.currency, "payment_terms_days": terms, "risk_class": class}),
        )],
    )?;
    Ok(customer)
}
