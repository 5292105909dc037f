//! Customers: the validated shape of a customer (the debtor) and its collection contacts,
//! built from the API's input with every field checked.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::{self, Currency};
use crate::domain::text;
use crate::error::{FieldError, Violations};

/// Languages Recaudo writes letters in.
pub const LANGUAGES: [&str; 5] = ["en", "es", "ca", "fr", "pl"];

pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub const CONTACT_ROLES: [&str; 7] = [
    "accounts_payable",
    "purchasing",
    "owner",
    "finance",
    "management",
    "sales",
    "other",
];

pub const CHANNELS: [&str; 5] = ["email", "phone", "sms", "letter", "portal"];

/// When a contact may be called (P4): days of the week and local hours in its time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "13:00", "timezone": "Europe/Madrid"}))]
pub struct CallingWindow {
    /// Days of the week: `mon` … `sun`.
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    pub start: String,
    /// Local end time, `HH:MM`, after `start`.
    pub end: String,
    /// IANA time zone, e.g. `Europe/Warsaw`.
    pub timezone: String,
}

/// A person at the customer; the one marked `is_primary_for_collections` receives reminders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Marta Puig", "email": "ap@example.com", "phone": "+34 933 000 111",
    "role": "accounts_payable", "is_primary_for_collections": true, "preferred_channel": "email",
    "calling_window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "13:00", "timezone": "Europe/Madrid"}
}))]
pub struct Contact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// `accounts_payable`, `purchasing`, `owner`, `finance`, `management`, `sales`, `other`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_primary_for_collections: bool,
    /// `email`, `phone`, `sms`, `letter`, `portal`.
    #[serde(default)]
    pub preferred_channel: Option<String>,
    #[serde(default)]
    pub calling_window: Option<CallingWindow>,
}

/// A customer as the API accepts it (create, upsert, and the result of a merge patch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "C-1001", "name": "Ferreteria Puig", "legal_name": "Ferreteria Puig SL",
    "tax_id": "B12345678", "country": "ES", "language": "ca", "currency": "EUR",
    "payment_terms_days": 30, "segment": "wholesale", "collector": "marta", "sales_rep": "joan",
    "credit_limit": "25000.00",
    "contacts": [{"name": "Marta Puig", "email": "ap@example.com", "is_primary_for_collections": true}]
}))]
pub struct CustomerInput {
    /// The ERP's key for this customer; unique within the organisation.
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub legal_name: Option<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub country: Option<String>,
    /// Language of letters and e-mails: en, es, ca, fr, pl (default en).
    #[serde(default)]
    pub language: Option<String>,
    /// Default currency of the account and of `credit_limit` (default EUR).
    #[serde(default)]
    pub currency: Option<String>,
    /// Days from issue to due date used when an invoice has no due date (default 30).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3650)]
    pub payment_terms_days: Option<i32>,
    #[serde(default)]
    pub segment: Option<String>,
    /// Subject (user) of the collector who owns the account.
    #[serde(default)]
    pub collector: Option<String>,
    /// Subject (user) of the sales representative.
    #[serde(default)]
    pub sales_rep: Option<String>,
    /// Decimal string in the customer's currency.
    #[serde(default)]
    pub credit_limit: Option<String>,
    #[serde(default)]
    pub dunning_paused_until: Option<NaiveDate>,
    #[serde(default)]
    pub dunning_pause_reason: Option<String>,
    #[serde(default)]
    pub contacts: Option<Vec<Contact>>,
}

/// A customer with every field checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerData {
    pub external_id: Option<String>,
    pub name: String,
    pub legal_name: Option<String>,
    pub tax_id: Option<String>,
    pub country: Option<String>,
    pub language: String,
    pub currency: Currency,
    pub payment_terms_days: i32,
    pub segment: Option<String>,
    pub collector: Option<String>,
    pub sales_rep: Option<String>,
    pub credit_limit_minor: Option<i64>,
    pub dunning_paused_until: Option<NaiveDate>,
    pub dunning_pause_reason: Option<String>,
    pub contacts: Vec<Contact>,
}

impl CustomerInput {
    /// Checks every field and returns the normalised customer, or every violation found.
    pub fn validate(&self) -> Result<CustomerData, Vec<FieldError>> {
        let mut v = Violations::new();
        let external_id = text::external_id(&mut v, "external_id", self.external_id.as_deref());
        let name = text::required(&mut v, "name", self.name.as_deref(), 200);
        let legal_name = text::optional(&mut v, "legal_name", self.legal_name.as_deref(), 200);
        let tax_id = text::optional(&mut v, "tax_id", self.tax_id.as_deref(), 64);
        let country = text::optional(&mut v, "country", self.country.as_deref(), 2).map(|c| c.to_ascii_uppercase());
        if let Some(c) = &country
            && (c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            v.add("country", "must be an ISO 3166-1 alpha-2 code such as ES");
        }
        let language = self.language.as_deref().map(str::trim).unwrap_or("en").to_string();
        if !LANGUAGES.contains(&language.as_str()) {
            v.add("language", format!("must be one of {}", LANGUAGES.join(", ")));
        }
        let currency_code = self.currency.as_deref().map(str::trim).unwrap_or("EUR");
        let currency = Currency::parse(currency_code);
        if currency.is_none() {
            v.add("currency", "is not a supported ISO 4217 currency");
        }
        let payment_terms_days = self.payment_terms_days.unwrap_or(30);
        if !(0..=3650).contains(&payment_terms_days) {
            v.add("payment_terms_days", "must be between 0 and 3650");
        }
        let segment = text::optional(&mut v, "segment", self.segment.as_deref(), 64);
        let collector = text::optional(&mut v, "collector", self.collector.as_deref(), 128);
        let sales_rep = text::optional(&mut v, "sales_rep", self.sales_rep.as_deref(), 128);
        let credit_limit_minor = match (&self.credit_limit, currency) {
            (Some(text), Some(currency)) => v.check("credit_limit", money::parse_amount(text, currency)),
            _ => None,
        };
        let dunning_pause_reason = text::optional(
            &mut v,
            "dunning_pause_reason",
            self.dunning_pause_reason.as_deref(),
            500,
        );
        let contacts = self.contacts.clone().unwrap_or_default();
        if contacts.len() > 50 {
            v.add("contacts", "at most 50 contacts");
        }
        let mut normalised = Vec::with_capacity(contacts.len());
        for (i, contact) in contacts.iter().enumerate() {
            normalised.push(validate_contact(&mut v, &format!("contacts[{i}]"), contact));
        }
        if normalised.iter().filter(|c| c.is_primary_for_collections).count() > 1 {
            v.add("contacts", "at most one contact can be primary for collections");
        }
        match (name, currency) {
            (Some(name), Some(currency)) if v.is_empty() => Ok(CustomerData {
                external_id,
                name,
                legal_name,
                tax_id,
                country,
                language,
                currency,
                payment_terms_days,
                segment,
                collector,
                sales_rep,
                credit_limit_minor,
                dunning_paused_until: self.dunning_paused_until,
                dunning_pause_reason,
                contacts: normalised,
            }),
            _ => Err(v.into_errors()),
        }
    }
}

impl CustomerData {
    /// The input that would produce this customer again (the base a merge patch applies to).
    pub fn to_input(&self) -> CustomerInput {
        CustomerInput {
            external_id: self.external_id.clone(),
            name: Some(self.name.clone()),
            legal_name: self.legal_name.clone(),
            tax_id: self.tax_id.clone(),
            country: self.country.clone(),
            language: Some(self.language.clone()),
            currency: Some(self.currency.code().to_string()),
            payment_terms_days: Some(self.payment_terms_days),
            segment: self.segment.clone(),
            collector: self.collector.clone(),
            sales_rep: self.sales_rep.clone(),
            credit_limit: self.credit_limit_minor.map(|m| money::format_amount(m, self.currency)),
            dunning_paused_until: self.dunning_paused_until,
            dunning_pause_reason: self.dunning_pause_reason.clone(),
            contacts: Some(self.contacts.clone()),
        }
    }
}

fn validate_contact(v: &mut Violations, at: &str, contact: &Contact) -> Contact {
    let name = text::required(v, &format!("{at}.name"), Some(&contact.name), 200).unwrap_or_default();
    let email = text::optional(v, &format!("{at}.email"), contact.email.as_deref(), 254);
    if let Some(e) = &email
        && !email_address::EmailAddress::is_valid(e)
    {
        v.add(format!("{at}.email"), "is not a valid e-mail address");
    }
    let phone = text::optional(v, &format!("{at}.phone"), contact.phone.as_deref(), 40);
    if let Some(p) = &phone
        && !valid_phone(p)
    {
        v.add(
            format!("{at}.phone"),
            "is not a valid international phone number (E.164, e.g. +34 933 000 111)",
        );
    }
    let role = text::optional(v, &format!("{at}.role"), contact.role.as_deref(), 32);
    if let Some(r) = &role
        && !CONTACT_ROLES.contains(&r.as_str())
    {
        v.add(
            format!("{at}.role"),
            format!("must be one of {}", CONTACT_ROLES.join(", ")),
        );
    }
    let preferred_channel = text::optional(
        v,
        &format!("{at}.preferred_channel"),
        contact.preferred_channel.as_deref(),
        16,
    );
    if let Some(c) = &preferred_channel
        && !CHANNELS.contains(&c.as_str())
    {
        v.add(
            format!("{at}.preferred_channel"),
            format!("must be one of {}", CHANNELS.join(", ")),
        );
    }
    if let Some(window) = &contact.calling_window {
        validate_window(v, &format!("{at}.calling_window"), window);
    }
    Contact {
        name,
        email,
        phone,
        role,
        is_primary_for_collections: contact.is_primary_for_collections,
        preferred_channel,
        calling_window: contact.calling_window.clone(),
    }
}

/// A phone number in international form that libphonenumber considers valid.
pub fn valid_phone(text: &str) -> bool {
    text.starts_with('+')
        && phonenumber::parse(None, text)
            .map(|n| phonenumber::is_valid(&n))
            .unwrap_or(false)
}

fn validate_window(v: &mut Violations, at: &str, window: &CallingWindow) {
    if window.days.is_empty() || window.days.iter().any(|d| !DAYS.contains(&d.as_str())) {
        v.add(
            format!("{at}.days"),
            "must list days among mon, tue, wed, thu, fri, sat, sun",
        );
    }
    let start = NaiveTime::parse_from_str(&window.start, "%H:%M");
    let end = NaiveTime::parse_from_str(&window.end, "%H:%M");
    match (start, end) {
        (Ok(s), Ok(e)) if s < e => {}
        (Ok(_), Ok(_)) => v.add(format!("{at}.end"), "must be after start"),
        (Err(_), _) => v.add(format!("{at}.start"), "must be a time HH:MM"),
        (_, Err(_)) => v.add(format!("{at}.end"), "must be a time HH:MM"),
    }
    if window.timezone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            format!("{at}.timezone"),
            "is not an IANA time zone such as Europe/Madrid",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn minimal_customer_gets_defaults() {
        let input = CustomerInput {
            name: Some("  Acme  ".into()),
            ..Default::default()
        };
        let data = input.validate().expect("valid");
        assert_eq!(data.name, "Acme");
        assert_eq!(data.language, "en");
        assert_eq!(data.currency.code(), "EUR");
        assert_eq!(data.payment_terms_days, 30);
        assert_eq!(data.to_input().validate(), Ok(data));
    }

    #[test]
    fn reports_every_bad_field() {
        let input = CustomerInput {
            name: None,
            country: Some("Spain".into()),
            language: Some("de".into()),
            currency: Some("EUR".into()),
            payment_terms_days: Some(-1),
            credit_limit: Some("10.001".into()),
            contacts: Some(vec![Contact {
                name: "".into(),
                email: Some("not-an-email".into()),
                phone: Some("12345".into()),
                role: Some("boss".into()),
                is_primary_for_collections: false,
                preferred_channel: Some("pigeon".into()),
                calling_window: Some(CallingWindow {
                    days: vec!["monday".into()],
                    start: "17:00".into(),
                    end: "09:00".into(),
                    timezone: "Mars/Olympus".into(),
                }),
            }]),
            ..Default::default()
        };
        let errors = fields(input.validate().expect_err("invalid"));
        for field in [
            "name",
            "country",
            "language",
            "payment_terms_days",
            "credit_limit",
            "contacts[0].name",
            "contacts[0].email",
            "contacts[0].phone",
            "contacts[0].role",
            "contacts[0].preferred_channel",
            "contacts[0].calling_window.days",
            "contacts[0].calling_window.end",
            "contacts[0].calling_window.timezone",
        ] {
            assert!(errors.contains(&field.to_string()), "{field} missing from {errors:?}");
        }
    }

    #[test]
    fn phone_numbers_must_be_international_and_real() {
        assert!(valid_phone("+34 933 000 111"));
        assert!(valid_phone("+48 22 123 45 67"));
        assert!(!valid_phone("933 000 111"));
        assert!(!valid_phone("+1 000"));
    }

    #[test]
    fn only_one_primary_contact() {
        let contact = Contact {
            name: "A".into(),
            email: None,
            phone: None,
            role: None,
            is_primary_for_collections: true,
            preferred_channel: None,
            calling_window: None,
        };
        let input = CustomerInput {
            name: Some("Acme".into()),
            contacts: Some(vec![contact.clone(), contact]),
            ..Default::default()
        };
        assert_eq!(fields(input.validate().expect_err("two primaries")), vec!["contacts"]);
    }
}
