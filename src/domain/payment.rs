//! Payments: validation of what the ERP or bank sends, the derived status, and the checks
//! an explicit allocation request must pass before anything is written.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::allocation::{Allocation, Rule};
use crate::domain::ids::Kind;
use crate::domain::invoice::InvoiceStatus;
use crate::domain::money::{self, Currency};
use crate::domain::text;
use crate::error::{FieldError, Violations};

pub const METHODS: [&str; 6] = ["bank_transfer", "card", "direct_debit", "cheque", "cash", "other"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "partially_applied")]
pub enum PaymentStatus {
    Unapplied,
    PartiallyApplied,
    Applied,
    Reversed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unapplied => "unapplied",
            PaymentStatus::PartiallyApplied => "partially_applied",
            PaymentStatus::Applied => "applied",
            PaymentStatus::Reversed => "reversed",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentStatus> {
        [
            PaymentStatus::Unapplied,
            PaymentStatus::PartiallyApplied,
            PaymentStatus::Applied,
            PaymentStatus::Reversed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn from_amounts(amount_minor: i64, allocated_minor: i64) -> PaymentStatus {
        if allocated_minor <= 0 {
            PaymentStatus::Unapplied
        } else if allocated_minor < amount_minor {
            PaymentStatus::PartiallyApplied
        } else {
            PaymentStatus::Applied
        }
    }
}

/// One requested allocation: which invoice, how much (decimal string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"invoice_id": "inv_1", "amount": "500.00"}))]
pub struct AllocationInput {
    pub invoice_id: String,
    pub amount: String,
}

/// A payment as the API accepts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "BANK-2026-11-23-0007", "customer_external_id": "C-1001", "amount": "1690.00",
    "currency": "EUR", "received_on": "2026-11-23", "method": "bank_transfer",
    "reference": "PAGO FRAS 2026/0042 2026/0057"
}))]
pub struct PaymentInput {
    /// The ERP's or bank's key for this payment; unique within the organisation.
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub customer_external_id: Option<String>,
    /// Positive decimal string.
    #[serde(default)]
    pub amount: Option<String>,
    /// Defaults to the customer's currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// The day the money arrived (default today).
    #[serde(default)]
    pub received_on: Option<NaiveDate>,
    /// `bank_transfer` (default), `card`, `direct_debit`, `cheque`, `cash`, `other`.
    #[serde(default)]
    pub method: Option<String>,
    /// Remittance text as the bank gave it; invoice numbers in it are matched first.
    #[serde(default)]
    pub reference: Option<String>,
    /// Explicit allocations. Without them the organisation's automatic rules apply.
    #[serde(default)]
    pub allocations: Option<Vec<AllocationInput>>,
}

/// What validation needs to know about the payer.
#[derive(Debug, Clone)]
pub struct Payer {
    pub id: i64,
    pub currency: Currency,
}

/// A checked payment, ready to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentData {
    pub external_id: Option<String>,
    pub customer_id: i64,
    pub currency: Currency,
    pub amount_minor: i64,
    pub received_on: NaiveDate,
    pub method: String,
    pub reference: Option<String>,
    /// `None`: allocate automatically.
    pub explicit: Option<Vec<RequestedAllocation>>,
}

/// An explicit allocation with its amount parsed; `invoice_id` is `None` when the id was
/// not an invoice id at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedAllocation {
    pub invoice_id: Option<i64>,
    pub amount_minor: i64,
}

impl PaymentInput {
    pub fn validate(&self, payer: Option<&Payer>, today: NaiveDate) -> Result<PaymentData, Vec<FieldError>> {
        let mut v = Violations::new();
        let external_id = text::external_id(&mut v, "external_id", self.external_id.as_deref());
        if payer.is_none() {
            match (&self.customer_id, &self.customer_external_id) {
                (None, None) => v.add("customer_id", "is required (or customer_external_id)"),
                (Some(_), _) => v.add("customer_id", "no such customer"),
                (None, Some(_)) => v.add("customer_external_id", "no such customer"),
            }
        }
        let currency = match self.currency.as_deref() {
            Some(code) => Currency::parse(code.trim()).or_else(|| {
                v.add("currency", "is not a supported ISO 4217 currency");
                None
            }),
            None => payer.map(|p| p.currency),
        };
        let amount_minor = match (&self.amount, currency) {
            (None, _) => {
                v.add("amount", "is required");
                None
            }
            (Some(_), None) => None,
            (Some(text), Some(c)) => match money::parse_amount(text, c) {
                Ok(0) => {
                    v.add("amount", "must be greater than zero");
                    None
                }
                other => v.check("amount", other),
            },
        };
        let received_on = self.received_on.unwrap_or(today);
        if !(1900..=2200).contains(&received_on.year()) {
            v.add("received_on", "must be between 1900 and 2200");
        }
        let method = self
            .method
            .as_deref()
            .map(str::trim)
            .unwrap_or("bank_transfer")
            .to_string();
        if !METHODS.contains(&method.as_str()) {
            v.add("method", format!("must be one of {}", METHODS.join(", ")));
        }
        let reference = text::optional(&mut v, "reference", self.reference.as_deref(), 500);
        let explicit = match (&self.allocations, currency) {
            (Some(list), Some(c)) => Some(parse_allocations(&mut v, list, c)),
            _ => None,
        };
        match (payer, currency, amount_minor) {
            (Some(p), Some(currency), Some(amount_minor)) if v.is_empty() => Ok(PaymentData {
                external_id,
                customer_id: p.id,
                currency,
                amount_minor,
                received_on,
                method,
                reference,
                explicit,
            }),
            _ => Err(v.into_errors()),
        }
    }
}

/// Parses requested allocations in `currency`; an empty list is refused.
pub fn parse_allocations(v: &mut Violations, list: &[AllocationInput], currency: Currency) -> Vec<RequestedAllocation> {
    if list.is_empty() {
        v.add(
            "allocations",
            "must not be empty; leave it out to allocate automatically",
        );
    }
    if list.len() > 1000 {
        v.add("allocations", "at most 1000 allocations");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let invoice_id = Kind::Invoice.decode(a.invoice_id.trim());
        if !seen.insert(a.invoice_id.trim().to_string()) {
            v.add(format!("allocations[{i}].invoice_id"), "appears more than once");
        }
        let amount = match money::parse_amount(&a.amount, currency) {
            Ok(0) => {
                v.add(format!("allocations[{i}].amount"), "must be greater than zero");
                0
            }
            Ok(m) => m,
            Err(e) => {
                v.add(format!("allocations[{i}].amount"), e.to_string());
                0
            }
        };
        out.push(RequestedAllocation {
            invoice_id,
            amount_minor: amount,
        });
    }
    out
}

/// What an allocation check needs to know about a target invoice.
#[derive(Debug, Clone)]
pub struct TargetInvoice {
    pub customer_id: i64,
    pub currency: String,
    pub kind: String,
    pub status: InvoiceStatus,
    pub open_minor: i64,
}

/// Checks explicit allocations of money from a source (payment or credit note) of
/// `customer_id` and `currency` with `available` unapplied, against the target invoices
/// found (others are unknown). Returns the allocations or every violation.
pub fn check_explicit(
    customer_id: i64,
    currency: &str,
    available: i64,
    requested: &[RequestedAllocation],
    targets: &HashMap<i64, TargetInvoice>,
) -> Result<Vec<Allocation>, Vec<FieldError>> {
    let mut v = Violations::new();
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(requested.len());
    for (i, r) in requested.iter().enumerate() {
        let field = format!("allocations[{i}].invoice_id");
        let Some(target) = r.invoice_id.and_then(|id| targets.get(&id).map(|t| (id, t))) else {
            v.add(field, "no such invoice");
            continue;
        };
        let (id, t) = target;
        if t.customer_id != customer_id {
            v.add(field, "belongs to another customer");
        } else if t.currency != currency {
            v.add(field, format!("is in {}, not {currency}", t.currency));
        } else if t.kind == "credit_note" {
            v.add(field, "is a credit note; money is applied to invoices and debit notes");
        } else if t.status.is_closed_by_decision() {
            v.add(field, format!("is {}", t.status.as_str()));
        } else if r.amount_minor > t.open_minor {
            v.add(
                format!("allocations[{i}].amount"),
                format!(
                    "exceeds the invoice's open amount ({})",
                    money::format_stored(t.open_minor, &t.currency)
                ),
            );
        } else {
            total = total.saturating_add(r.amount_minor);
            out.push(Allocation {
                invoice_id: id,
                amount_minor: r.amount_minor,
                rule: Rule::Explicit,
            });
        }
    }
    if total > available {
        v.add(
            "allocations",
            format!(
                "the total exceeds the unapplied amount ({})",
                money::format_stored(available, currency)
            ),
        );
    }
    v.finish().map(|_| out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(customer_id: i64, currency: &str, open: i64) -> TargetInvoice {
        TargetInvoice {
            customer_id,
            currency: currency.into(),
            kind: "invoice".into(),
            status: InvoiceStatus::Open,
            open_minor: open,
        }
    }

    fn req(id: i64, amount: i64) -> RequestedAllocation {
        RequestedAllocation {
            invoice_id: Some(id),
            amount_minor: amount,
        }
    }

    #[test]
    fn explicit_allocations_within_limits_pass() {
        let targets = HashMap::from([(1, target(7, "EUR", 1000)), (2, target(7, "EUR", 500))]);
        let got = check_explicit(7, "EUR", 1500, &[req(1, 1000), req(2, 500)], &targets).expect("valid");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|a| a.rule == Rule::Explicit));
    }

    #[test]
    fn every_kind_of_bad_allocation_is_named() {
        let mut cancelled = target(7, "EUR", 0);
        cancelled.status = InvoiceStatus::Cancelled;
        let mut credit = target(7, "EUR", 100);
        credit.kind = "credit_note".into();
        let targets = HashMap::from([
            (1, target(7, "EUR", 1000)),
            (2, target(8, "EUR", 500)),
            (3, target(7, "USD", 500)),
            (4, cancelled),
            (5, credit),
        ]);
        let requested = [
            req(1, 1001),
            req(2, 1),
            req(3, 1),
            req(4, 1),
            req(5, 1),
            req(99, 1),
            RequestedAllocation {
                invoice_id: None,
                amount_minor: 1,
            },
        ];
        let errors = check_explicit(7, "EUR", 10_000, &requested, &targets).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "allocations[0].amount",
                "allocations[1].invoice_id",
                "allocations[2].invoice_id",
                "allocations[3].invoice_id",
                "allocations[4].invoice_id",
                "allocations[5].invoice_id",
                "allocations[6].invoice_id",
            ]
        );
    }

    #[test]
    fn total_above_the_unapplied_amount_is_refused() {
        let targets = HashMap::from([(1, target(7, "EUR", 1000)), (2, target(7, "EUR", 1000))]);
        let errors = check_explicit(7, "EUR", 1500, &[req(1, 1000), req(2, 600)], &targets).expect_err("over");
        assert_eq!(errors[0].field, "allocations");
    }

    #[test]
    fn status_follows_allocation() {
        assert_eq!(PaymentStatus::from_amounts(100, 0), PaymentStatus::Unapplied);
        assert_eq!(PaymentStatus::from_amounts(100, 40), PaymentStatus::PartiallyApplied);
        assert_eq!(PaymentStatus::from_amounts(100, 100), PaymentStatus::Applied);
    }

    #[test]
    fn payment_input_validation() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        let payer = Payer {
            id: 3,
            currency: Currency::parse("EUR").expect("eur"),
        };
        let ok = PaymentInput {
            amount: Some("10.00".into()),
            ..Default::default()
        }
        .validate(Some(&payer), today)
        .expect("valid");
        assert_eq!(ok.received_on, today);
        assert_eq!(ok.method, "bank_transfer");
        assert_eq!(ok.explicit, None);
        let bad = PaymentInput {
            amount: Some("0".into()),
            method: Some("barter".into()),
            allocations: Some(vec![]),
            ..Default::default()
        }
        .validate(Some(&payer), today)
        .expect_err("invalid");
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["amount", "method", "allocations"]);
    }
}
