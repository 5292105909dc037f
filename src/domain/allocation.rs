//! Cash application: which open invoices a payment (or credit note) pays, by the
//! organisation's rules in order — invoice numbers named in the remittance reference, an
//! invoice of exactly the remaining amount, then oldest due date first — and the checks on
//! an explicit allocation request. Pure functions over amounts in minor units.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How an allocation was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "reference")]
pub enum Rule {
    /// Named by the client in the request.
    Explicit,
    /// The invoice number appears in the payment's reference.
    Reference,
    /// An open invoice of exactly the remaining amount.
    ExactAmount,
    /// Oldest due date first.
    OldestDue,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Explicit => "explicit",
            Rule::Reference => "reference",
            Rule::ExactAmount => "exact_amount",
            Rule::OldestDue => "oldest_due",
        }
    }

    pub fn parse(text: &str) -> Option<Rule> {
        [Rule::Explicit, Rule::Reference, Rule::ExactAmount, Rule::OldestDue]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// The automatic rules, in the default order.
    pub const DEFAULT_ORDER: [Rule; 3] = [Rule::Reference, Rule::ExactAmount, Rule::OldestDue];
}

/// An open invoice a payment may pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub id: i64,
    pub number: String,
    pub due_date: NaiveDate,
    pub open_minor: i64,
}

/// One decided allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub invoice_id: i64,
    pub amount_minor: i64,
    pub rule: Rule,
}

/// Whether `number` occurs in `reference` as a whole token: not preceded or followed by a
/// letter or digit, case-insensitive (`F-12` does not match `F-123`).
pub fn reference_names(reference: &str, number: &str) -> bool {
    let number = number.trim();
    if number.is_empty() {
        return false;
    }
    let hay = reference.to_lowercase();
    let needle = number.to_lowercase();
    let mut from = 0;
    while let Some(pos) = hay[from..].find(&needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn take(inv: &mut OpenInvoice, amount: i64, rule: Rule, out: &mut Vec<Allocation>) {
    inv.open_minor -= amount;
    match out.iter_mut().find(|a| a.invoice_id == inv.id) {
        Some(existing) => existing.amount_minor += amount,
        None => out.push(Allocation {
            invoice_id: inv.id,
            amount_minor: amount,
            rule,
        }),
    }
}

/// Decides how `amount` is applied to `open` invoices by `rules` in order. `open` is
/// updated with what remains open, so several payments can be allocated in sequence
/// against the same invoices. Returns the allocations; the rest is unapplied cash.
pub fn auto_allocate(
    amount: i64,
    reference: Option<&str>,
    open: &mut [OpenInvoice],
    rules: &[Rule],
) -> Vec<Allocation> {
    // Oldest due first, then creation order: the order every rule walks in.
    open.sort_by_key(|i| (i.due_date, i.id));
    let mut left = amount;
    let mut out: Vec<Allocation> = Vec::new();
    for rule in rules {
        if left == 0 {
            break;
        }
        match rule {
            Rule::Reference => {
                let Some(reference) = reference else { continue };
                for inv in open.iter_mut() {
                    if left == 0 {
                        break;
                    }
                    if inv.open_minor > 0 && reference_names(reference, &inv.number) {
                        let amount = inv.open_minor.min(left);
                        take(inv, amount, Rule::Reference, &mut out);
                        left -= amount;
                    }
                }
            }
            Rule::ExactAmount => {
                if let Some(inv) = open.iter_mut().find(|i| i.open_minor == left) {
                    take(inv, left, Rule::ExactAmount, &mut out);
                    left = 0;
                }
            }
            Rule::OldestDue => {
                for inv in open.iter_mut() {
                    if left == 0 {
                        break;
                    }
                    if inv.open_minor > 0 {
                        let amount = inv.open_minor.min(left);
                        take(inv, amount, Rule::OldestDue, &mut out);
                        left -= amount;
                    }
                }
            }
            Rule::Explicit => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn book() -> Vec<OpenInvoice> {
        vec![
            OpenInvoice {
                id: 1,
                number: "F-100".into(),
                due_date: date("2026-01-31"),
                open_minor: 10_000,
            },
            OpenInvoice {
                id: 2,
                number: "F-101".into(),
                due_date: date("2026-02-28"),
                open_minor: 25_000,
            },
            OpenInvoice {
                id: 3,
                number: "F-1012".into(),
                due_date: date("2026-03-31"),
                open_minor: 7_500,
            },
            OpenInvoice {
                id: 4,
                number: "F-102".into(),
                due_date: date("2026-04-30"),
                open_minor: 12_000,
            },
        ]
    }

    #[test]
    fn reference_matches_whole_numbers_only() {
        assert!(reference_names("Pago facturas F-101 y F-102", "F-101"));
        assert!(reference_names("pago f-101.", "F-101"));
        assert!(!reference_names("Pago F-1012", "F-101"));
        assert!(!reference_names("XF-101", "F-101"));
        assert!(reference_names("F-101/F-102", "F-102"));
        assert!(!reference_names("anything", " "));
    }

    #[test]
    fn reference_first_then_exact_then_oldest() {
        let mut open = book();
        // 25 000 + 2 000 across: the referenced F-102 (12 000) first, then F-100 is not exact
        // (10 000 ≠ 15 000), so oldest first takes F-100 then 5 000 of F-101.
        let got = auto_allocate(27_000, Some("Remesa F-102"), &mut open, &Rule::DEFAULT_ORDER);
        assert_eq!(
            got,
            vec![
                Allocation {
                    invoice_id: 4,
                    amount_minor: 12_000,
                    rule: Rule::Reference
                },
                Allocation {
                    invoice_id: 1,
                    amount_minor: 10_000,
                    rule: Rule::OldestDue
                },
                Allocation {
                    invoice_id: 2,
                    amount_minor: 5_000,
                    rule: Rule::OldestDue
                },
            ]
        );
        assert_eq!(
            open.iter().map(|i| i.open_minor).collect::<Vec<_>>(),
            vec![0, 20_000, 7_500, 0]
        );
    }

    #[test]
    fn exact_amount_beats_oldest() {
        let mut open = book();
        let got = auto_allocate(7_500, None, &mut open, &Rule::DEFAULT_ORDER);
        assert_eq!(
            got,
            vec![Allocation {
                invoice_id: 3,
                amount_minor: 7_500,
                rule: Rule::ExactAmount
            }]
        );
    }

    #[test]
    fn leftover_stays_unapplied_and_rules_can_be_reordered() {
        let mut open = book();
        let got = auto_allocate(100_000, None, &mut open, &[Rule::OldestDue]);
        assert_eq!(got.iter().map(|a| a.amount_minor).sum::<i64>(), 54_500);
        assert!(open.iter().all(|i| i.open_minor == 0));
        let mut open = book();
        assert!(auto_allocate(5_000, Some("F-100"), &mut open, &[]).is_empty());
        let mut open = book();
        let only_reference = auto_allocate(5_000, Some("nothing"), &mut open, &[Rule::Reference]);
        assert!(only_reference.is_empty());
    }

    #[test]
    fn sequential_payments_share_the_remaining_open_amounts() {
        let mut open = book();
        let first = auto_allocate(10_000, Some("F-100"), &mut open, &Rule::DEFAULT_ORDER);
        let second = auto_allocate(10_000, Some("F-100"), &mut open, &Rule::DEFAULT_ORDER);
        assert_eq!(
            first,
            vec![Allocation {
                invoice_id: 1,
                amount_minor: 10_000,
                rule: Rule::Reference
            }]
        );
        // F-100 is paid: the second payment falls through to oldest due (F-101).
        assert_eq!(
            second,
            vec![Allocation {
                invoice_id: 2,
                amount_minor: 10_000,
                rule: Rule::OldestDue
            }]
        );
    }
}
