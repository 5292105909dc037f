//! Invoices, credit notes and debit notes: validation of what the ERP sends, the derived
//! status, days overdue, and the rule for changing the amount of a partly paid invoice.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::{self, Currency};
use crate::domain::text;
use crate::error::{FieldError, Violations};

pub const KINDS: [&str; 3] = ["invoice", "credit_note", "debit_note"];

/// Invoice status. `open`, `partially_paid` and `paid` follow from the open amount;
/// `cancelled` and `written_off` are set by a manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "partially_paid")]
pub enum InvoiceStatus {
    Open,
    PartiallyPaid,
    Paid,
    Cancelled,
    WrittenOff,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 5] = [
        InvoiceStatus::Open,
        InvoiceStatus::PartiallyPaid,
        InvoiceStatus::Paid,
        InvoiceStatus::Cancelled,
        InvoiceStatus::WrittenOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::PartiallyPaid => "partially_paid",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Cancelled => "cancelled",
            InvoiceStatus::WrittenOff => "written_off",
        }
    }

    pub fn parse(text: &str) -> Option<InvoiceStatus> {
        InvoiceStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Cancelled and written-off invoices are closed by a decision, not by payments.
    pub fn is_closed_by_decision(self) -> bool {
        matches!(self, InvoiceStatus::Cancelled | InvoiceStatus::WrittenOff)
    }

    /// The status that follows from the amounts of an invoice not closed by decision.
    pub fn from_amounts(amount_minor: i64, open_minor: i64) -> InvoiceStatus {
        if open_minor <= 0 {
            InvoiceStatus::Paid
        } else if open_minor < amount_minor {
            InvoiceStatus::PartiallyPaid
        } else {
            InvoiceStatus::Open
        }
    }
}

/// An invoice as the API accepts it (create, upsert, and the result of a merge patch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "F-2026-0042", "customer_external_id": "C-1001", "kind": "invoice",
    "number": "2026/0042", "currency": "EUR", "amount": "1210.00", "tax_amount": "210.00",
    "issue_date": "2026-10-01", "due_date": "2026-10-31", "purchase_order": "PO-889",
    "delivered_on": "2026-10-02"
}))]
pub struct InvoiceInput {
    /// The ERP's key for this document; unique within the organisation.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Recaudo id of the customer (or give `customer_external_id`).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The ERP's key of the customer.
    #[serde(default)]
    pub customer_external_id: Option<String>,
    /// `invoice` (default), `credit_note` or `debit_note`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    /// ISO 4217; defaults to the customer's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Total including tax, a positive decimal string.
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub tax_amount: Option<String>,
    #[serde(default)]
    pub issue_date: Option<NaiveDate>,
    /// Defaults to `issue_date` + the customer's payment terms.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    #[serde(default)]
    pub purchase_order: Option<String>,
    /// Date the goods or service were confirmed delivered; null = not confirmed (P16).
    #[serde(default)]
    pub delivered_on: Option<NaiveDate>,
}

/// What validation needs to know about the customer an invoice belongs to.
#[derive(Debug, Clone)]
pub struct CustomerTerms {
    pub id: i64,
    pub currency: Currency,
    pub payment_terms_days: i32,
}

/// A checked invoice, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceData {
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub kind: String,
    pub number: String,
    pub currency: Currency,
    pub amount_minor: i64,
    pub tax_minor: i64,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub purchase_order: Option<String>,
    pub delivered_on: Option<NaiveDate>,
}

fn plausible(date: NaiveDate) -> bool {
    (1900..=2200).contains(&date.year())
}

impl InvoiceInput {
    /// Checks every field against the customer found for it (`None` when the reference did
    /// not resolve) and returns the invoice or every violation.
    pub fn validate(&self, customer: Option<&CustomerTerms>) -> Result<InvoiceData, Vec<FieldError>> {
        let mut v = Violations::new();
        let external_id = text::external_id(&mut v, "external_id", self.external_id.as_deref());
        if customer.is_none() {
            match (&self.customer_id, &self.customer_external_id) {
                (None, None) => v.add("customer_id", "is required (or customer_external_id)"),
                (Some(_), _) => v.add("customer_id", "no such customer"),
                (None, Some(_)) => v.add("customer_external_id", "no such customer"),
            }
        }
        let kind = self.kind.as_deref().unwrap_or("invoice").to_string();
        if !KINDS.contains(&kind.as_str()) {
            v.add("kind", format!("must be one of {}", KINDS.join(", ")));
        }
        let number = text::required(&mut v, "number", self.number.as_deref(), 64);
        let currency = match self.currency.as_deref() {
            Some(code) => Currency::parse(code.trim()).or_else(|| {
                v.add("currency", "is not a supported ISO 4217 currency");
                None
            }),
            None => customer.map(|c| c.currency),
        };
        let mut amount_minor = None;
        let mut tax_minor = Some(0);
        if let Some(currency) = currency {
            amount_minor = match &self.amount {
                None => {
                    v.add("amount", "is required");
                    None
                }
                Some(text) => match money::parse_amount(text, currency) {
                    Ok(0) => {
                        v.add("amount", "must be greater than zero");
                        None
                    }
                    other => v.check("amount", other),
                },
            };
            tax_minor = match &self.tax_amount {
                None => Some(0),
                Some(text) => v.check("tax_amount", money::parse_amount(text, currency)),
            };
            if let (Some(a), Some(t)) = (amount_minor, tax_minor)
                && t > a
            {
                v.add("tax_amount", "must not exceed amount");
            }
        }
        let issue_date = self.issue_date.or_else(|| {
            v.add("issue_date", "is required");
            None
        });
        if let Some(d) = issue_date
            && !plausible(d)
        {
            v.add("issue_date", "must be between 1900 and 2200");
        }
        let due_date = match (self.due_date, issue_date, customer) {
            (Some(due), _, _) => Some(due),
            (None, Some(issue), Some(c)) => {
                issue.checked_add_days(chrono::Days::new(c.payment_terms_days.max(0) as u64))
            }
            _ => None,
        };
        if let (Some(issue), Some(due)) = (issue_date, due_date) {
            if due < issue {
                v.add("due_date", "must not be before issue_date");
            } else if !plausible(due) {
                v.add("due_date", "must be between 1900 and 2200");
            }
        }
        if let Some(d) = self.delivered_on
            && !plausible(d)
        {
            v.add("delivered_on", "must be between 1900 and 2200");
        }
        let purchase_order = text::optional(&mut v, "purchase_order", self.purchase_order.as_deref(), 64);
        match (
            customer,
            number,
            currency,
            amount_minor,
            tax_minor,
            issue_date,
            due_date,
        ) {
            (
                Some(c),
                Some(number),
                Some(currency),
                Some(amount_minor),
                Some(tax_minor),
                Some(issue_date),
                Some(due_date),
            ) if v.is_empty() => Ok(InvoiceData {
                external_id,
                customer_id: c.id,
                kind,
                number,
                currency,
                amount_minor,
                tax_minor,
                issue_date,
                due_date,
                purchase_order,
                delivered_on: self.delivered_on,
            }),
            _ => Err(v.into_errors()),
        }
    }
}

/// The open amount after the invoice total changes from `old_amount` to `new_amount`,
/// keeping what was already applied. `None` when the new total is below what was applied.
pub fn open_after_amount_change(old_amount: i64, old_open: i64, new_amount: i64) -> Option<i64> {
    let applied = old_amount - old_open;
    let open = new_amount - applied;
    (open >= 0).then_some(open)
}

/// Days past due as of a date: positive when late, zero or negative before the due date.
pub fn days_past_due(due_date: NaiveDate, as_of: NaiveDate) -> i64 {
    (as_of - due_date).num_days()
}

/// Days overdue as shown on an invoice: days past due for an unpaid invoice, never below 0.
pub fn days_overdue(due_date: NaiveDate, as_of: NaiveDate, open_minor: i64) -> i64 {
    if open_minor > 0 {
        days_past_due(due_date, as_of).max(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur_customer() -> CustomerTerms {
        CustomerTerms {
            id: 7,
            currency: Currency::parse("EUR").expect("known"),
            payment_terms_days: 30,
        }
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn input() -> InvoiceInput {
        InvoiceInput {
            customer_id: Some("cus_7".into()),
            number: Some("F-1".into()),
            amount: Some("1210.00".into()),
            tax_amount: Some("210.00".into()),
            issue_date: Some(date("2026-10-01")),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_come_from_the_customer() {
        let data = input().validate(Some(&eur_customer())).expect("valid");
        assert_eq!(data.currency.code(), "EUR");
        assert_eq!(data.due_date, date("2026-10-31"));
        assert_eq!(data.amount_minor, 121_000);
        assert_eq!(data.tax_minor, 21_000);
        assert_eq!(data.kind, "invoice");
    }

    #[test]
    fn rejects_bad_money_and_dates() {
        let bad = InvoiceInput {
            currency: Some("JPY".into()),
            amount: Some("10.5".into()),
            due_date: Some(date("2026-09-01")),
            kind: Some("receipt".into()),
            ..input()
        };
        let errors: Vec<String> = bad
            .validate(Some(&eur_customer()))
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert!(errors.contains(&"amount".to_string()), "{errors:?}");
        assert!(errors.contains(&"due_date".to_string()), "{errors:?}");
        assert!(errors.contains(&"kind".to_string()), "{errors:?}");
        let unknown = InvoiceInput {
            currency: Some("ABC".into()),
            ..input()
        };
        let errors = unknown.validate(Some(&eur_customer())).expect_err("invalid");
        assert_eq!(errors[0].field, "currency");
        let zero = InvoiceInput {
            amount: Some("0".into()),
            tax_amount: None,
            ..input()
        };
        assert_eq!(
            zero.validate(Some(&eur_customer())).expect_err("zero")[0].field,
            "amount"
        );
        let negative = InvoiceInput {
            amount: Some("-5.00".into()),
            tax_amount: None,
            ..input()
        };
        assert_eq!(
            negative.validate(Some(&eur_customer())).expect_err("negative")[0].field,
            "amount"
        );
        let no_customer = input().validate(None).expect_err("no customer");
        assert_eq!(no_customer[0].field, "customer_id");
    }

    #[test]
    fn status_follows_the_open_amount() {
        assert_eq!(InvoiceStatus::from_amounts(100, 100), InvoiceStatus::Open);
        assert_eq!(InvoiceStatus::from_amounts(100, 40), InvoiceStatus::PartiallyPaid);
        assert_eq!(InvoiceStatus::from_amounts(100, 0), InvoiceStatus::Paid);
    }

    #[test]
    fn amount_change_keeps_what_was_applied() {
        assert_eq!(open_after_amount_change(100, 100, 150), Some(150));
        assert_eq!(open_after_amount_change(100, 40, 150), Some(90));
        assert_eq!(open_after_amount_change(100, 40, 60), Some(0));
        assert_eq!(open_after_amount_change(100, 40, 50), None);
    }

    #[test]
    fn days_overdue_counts_only_unpaid_late_invoices() {
        let due = date("2026-10-31");
        assert_eq!(days_past_due(due, date("2026-10-26")), -5);
        assert_eq!(days_overdue(due, date("2026-10-26"), 100), 0);
        assert_eq!(days_overdue(due, date("2026-11-15"), 100), 15);
        assert_eq!(days_overdue(due, date("2026-11-15"), 0), 0);
    }
}
