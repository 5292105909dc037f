//! The credit application scorecard (P11): a transparent, weighted score over years in
//! business, trade reference payment behaviour, bank rating, financial ratios and — for an
//! existing customer — its own payment history with us. Each factor rates 0–100; the score
//! is the weighted mean of the factors that have data (a factor without data is shown as
//! unavailable and its weight is left out), so the contributions add up to the score.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{FieldError, Violations};

/// Weights of the scorecard factors (any non-negative integers; they are normalised over
/// the factors that have data). Default 20/25/15/20/20.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"years_in_business": 20, "trade_references": 25, "bank_references": 15, "financials": 20, "payment_history": 20}))]
pub struct ScorecardWeights {
    #[serde(default = "w20")]
    #[schema(minimum = 0, maximum = 100)]
    pub years_in_business: u32,
    #[serde(default = "w25")]
    #[schema(minimum = 0, maximum = 100)]
    pub trade_references: u32,
    #[serde(default = "w15")]
    #[schema(minimum = 0, maximum = 100)]
    pub bank_references: u32,
    #[serde(default = "w20")]
    #[schema(minimum = 0, maximum = 100)]
    pub financials: u32,
    #[serde(default = "w20")]
    #[schema(minimum = 0, maximum = 100)]
    pub payment_history: u32,
}

fn w20() -> u32 {
    20
}
fn w25() -> u32 {
    25
}
fn w15() -> u32 {
    15
}

impl Default for ScorecardWeights {
    fn default() -> Self {
        ScorecardWeights {
            years_in_business: 20,
            trade_references: 25,
            bank_references: 15,
            financials: 20,
            payment_history: 20,
        }
    }
}

impl ScorecardWeights {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Violations::new();
        for (name, w) in self.pairs() {
            if w > 100 {
                v.add(name, "must be between 0 and 100");
            }
        }
        if self.pairs().iter().all(|(_, w)| *w == 0) {
            v.add("years_in_business", "at least one weight must be above 0");
        }
        v.finish()
    }

    fn pairs(&self) -> [(&'static str, u32); 5] {
        [
            ("years_in_business", self.years_in_business),
            ("trade_references", self.trade_references),
            ("bank_references", self.bank_references),
            ("financials", self.financials),
            ("payment_history", self.payment_history),
        ]
    }
}

/// A trade reference's answer, as far as the score reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeAnswer {
    /// `requested`, `received` or `unreachable`.
    pub status: String,
    pub average_days_to_pay: Option<u32>,
}

/// A bank reference's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BankAnswer {
    pub status: String,
    /// `excellent`, `good`, `satisfactory`, `poor`.
    pub rating: Option<String>,
    pub account_age_years: Option<u32>,
}

pub const BANK_RATINGS: [&str; 4] = ["excellent", "good", "satisfactory", "poor"];
pub const REFERENCE_STATUSES: [&str; 3] = ["requested", "received", "unreachable"];

/// Financial figures in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinancialFigures {
    pub annual_revenue_minor: Option<i64>,
    pub equity_minor: Option<i64>,
    /// May be negative (a loss).
    pub net_income_minor: Option<i64>,
    /// Whether the figures are in the application's currency (then equity caps the limit).
    pub same_currency: bool,
}

/// An existing customer's own payment history with us.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OwnHistory {
    pub paid_invoices: u32,
    /// Share of them paid after the due date, 0–1.
    pub share_late: f64,
    /// Amount-weighted days paid after the due date (negative: early).
    pub weighted_days_late: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreInput {
    pub years_in_business: Option<i32>,
    pub trade: Vec<TradeAnswer>,
    pub bank: Vec<BankAnswer>,
    pub financials: Option<FinancialFigures>,
    pub history: Option<OwnHistory>,
    pub requested_limit_minor: i64,
    pub requested_terms_days: i32,
}

/// One factor of the scorecard as shown to the reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "factor": "trade_references", "weight": 25, "available": true, "rating": 80, "contribution": 20.0,
    "explanation": "2 answered (average days to pay: 32, 41), 0 unreachable"
}))]
pub struct Factor {
    /// `years_in_business`, `trade_references`, `bank_references`, `financials`,
    /// `payment_history`.
    pub factor: String,
    pub weight: u32,
    /// Whether the application has data for this factor; without, it does not count.
    pub available: bool,
    /// The factor's rating, 0–100.
    pub rating: u32,
    /// Points this factor adds to the score (weight share × rating); they sum to the score.
    pub contribution: f64,
    pub explanation: String,
}

/// The scorecard's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Scorecard {
    /// 0–100, higher is better.
    pub score: u32,
    /// `A` (best) to `E`.
    pub risk_class: String,
    pub recommended_limit_minor: i64,
    pub recommended_terms_days: i32,
    pub factors: Vec<Factor>,
}

/// The class of a score: A ≥ 80, B ≥ 65, C ≥ 50, D ≥ 35, else E.
pub fn class_of(score: u32) -> &'static str {
    match score {
        80.. => "A",
        65..=79 => "B",
        50..=64 => "C",
        35..=49 => "D",
        _ => "E",
    }
}

/// The share of the requested limit recommended per class, in percent, and the longest
/// payment terms recommended per class, in days.
fn class_policy(class: &str) -> (u32, i32) {
    match class {
        "A" => (100, 60),
        "B" => (75, 45),
        "C" => (50, 30),
        "D" => (25, 15),
        _ => (0, 0),
    }
}

/// `pct` percent of `minor`, rounded half to even to minor units.
pub fn percent_of(minor: i64, pct: u32) -> i64 {
    let n = i128::from(minor) * i128::from(pct);
    let (q, r) = (n.div_euclid(100), n.rem_euclid(100));
    let q = if r > 50 || (r == 50 && q % 2 != 0) { q + 1 } else { q };
    i64::try_from(q).unwrap_or(i64::MAX)
}

fn years_rating(years: i32) -> u32 {
    match years {
        i32::MIN..=0 => 10,
        1 => 30,
        2..=4 => 55,
        5..=9 => 75,
        _ => 100,
    }
}

fn days_to_pay_rating(days: u32) -> u32 {
    match days {
        0..=30 => 100,
        31..=45 => 80,
        46..=60 => 55,
        61..=90 => 30,
        _ => 10,
    }
}

fn bank_rating(b: &BankAnswer) -> Option<u32> {
    let base: i64 = match b.rating.as_deref()? {
        "excellent" => 100,
        "good" => 80,
        "satisfactory" => 55,
        "poor" => 20,
        _ => return None,
    };
    let age = match b.account_age_years {
        Some(0) => -20,
        Some(1) => -10,
        _ => 0,
    };
    Some((base + age).clamp(0, 100) as u32)
}

fn mean(values: &[u32]) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let sum: u64 = values.iter().map(|v| u64::from(*v)).sum();
    Some(((sum as f64) / (values.len() as f64)).round() as u32)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Scores an application.
pub fn score(input: &ScoreInput, weights: &ScorecardWeights) -> Scorecard {
    let mut rated: Vec<(&'static str, u32, Option<u32>, String)> = Vec::new();

    match input.years_in_business {
        Some(y) => rated.push((
            "years_in_business",
            weights.years_in_business,
            Some(years_rating(y)),
            format!("{y} years in business"),
        )),
        None => rated.push((
            "years_in_business",
            weights.years_in_business,
            None,
            "years in business not given".into(),
        )),
    }

    let trade: Vec<u32> = input
        .trade
        .iter()
        .filter_map(|t| match t.status.as_str() {
            "received" => t.average_days_to_pay.map(days_to_pay_rating),
            "unreachable" => Some(20),
            _ => None,
        })
        .collect();
    let answered: Vec<u32> = input
        .trade
        .iter()
        .filter(|t| t.status == "received")
        .filter_map(|t| t.average_days_to_pay)
        .collect();
    let unreachable = input.trade.iter().filter(|t| t.status == "unreachable").count();
    rated.push((
        "trade_references",
        weights.trade_references,
        mean(&trade),
        if trade.is_empty() {
            "no trade reference has answered yet".into()
        } else {
            format!(
                "{} answered (average days to pay: {}), {} unreachable",
                answered.len(),
                answered.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                unreachable
            )
        },
    ));

    let bank: Vec<u32> = input
        .bank
        .iter()
        .filter(|b| b.status == "received")
        .filter_map(bank_rating)
        .collect();
    rated.push((
        "bank_references",
        weights.bank_references,
        mean(&bank),
        if bank.is_empty() {
            "no bank reference with a rating has answered yet".into()
        } else {
            format!(
                "bank ratings: {}",
                input
                    .bank
                    .iter()
                    .filter(|b| b.status == "received")
                    .filter_map(|b| b.rating.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    ));

    let (fin_rating, fin_text) = financials_rating(input.financials.as_ref(), input.requested_limit_minor);
    rated.push(("financials", weights.financials, fin_rating, fin_text));

    match input.history {
        Some(h) if h.paid_invoices >= 3 => {
            let r = 100.0 - h.share_late * 60.0 - h.weighted_days_late.clamp(0.0, 40.0);
            rated.push((
                "payment_history",
                weights.payment_history,
                Some(r.clamp(0.0, 100.0).round() as u32),
                format!(
                    "{} invoices paid with us, {:.0} % late, {:.1} days late on average (amount-weighted)",
                    h.paid_invoices,
                    h.share_late * 100.0,
                    h.weighted_days_late
                ),
            ));
        }
        Some(h) => rated.push((
            "payment_history",
            weights.payment_history,
            None,
            format!("only {} invoices paid with us: too few to rate", h.paid_invoices),
        )),
        None => rated.push((
            "payment_history",
            weights.payment_history,
            None,
            "a prospect: no payment history with us".into(),
        )),
    }

    let total_weight: u32 = rated
        .iter()
        .filter(|(_, w, r, _)| r.is_some() && *w > 0)
        .map(|(_, w, _, _)| *w)
        .sum();
    let factors: Vec<Factor> = rated
        .into_iter()
        .map(|(name, weight, rating, explanation)| {
            let available = rating.is_some() && weight > 0;
            let contribution = match rating {
                Some(r) if available && total_weight > 0 => f64::from(weight) * f64::from(r) / f64::from(total_weight),
                _ => 0.0,
            };
            Factor {
                factor: name.to_string(),
                weight,
                available,
                rating: rating.unwrap_or(0),
                contribution: round1(contribution),
                explanation,
            }
        })
        .collect();
    let raw: f64 = factors
        .iter()
        .filter(|f| f.available)
        .map(|f| f64::from(f.weight) * f64::from(f.rating))
        .sum::<f64>();
    let score = if total_weight == 0 {
        0
    } else {
        (raw / f64::from(total_weight)).round().clamp(0.0, 100.0) as u32
    };
    let class = class_of(score);
    let (pct, max_terms) = class_policy(class);
    let mut limit = percent_of(input.requested_limit_minor, pct);
    if let Some(f) = input.financials
        && f.same_currency
        && let Some(equity) = f.equity_minor
    {
        // Never recommend more than a tenth of the applicant's equity.
        limit = limit.min(percent_of(equity.max(0), 10));
    }
    Scorecard {
        score,
        risk_class: class.to_string(),
        recommended_limit_minor: limit,
        recommended_terms_days: input.requested_terms_days.clamp(0, max_terms),
        factors,
    }
}

fn financials_rating(f: Option<&FinancialFigures>, requested: i64) -> (Option<u32>, String) {
    let Some(f) = f else {
        return (None, "no financial statements given".into());
    };
    let mut parts = Vec::new();
    let mut rating: Option<i64> = None;
    if let (Some(rev), Some(ni)) = (f.annual_revenue_minor, f.net_income_minor)
        && rev > 0
    {
        let margin = ni as f64 / rev as f64 * 100.0;
        rating = Some(match margin {
            m if m < 0.0 => 10,
            m if m < 2.0 => 40,
            m if m < 5.0 => 65,
            m if m < 10.0 => 85,
            _ => 100,
        });
        parts.push(format!("net margin {margin:.1} %"));
    }
    if let Some(eq) = f.equity_minor {
        if eq <= 0 {
            rating = Some(0);
            parts.push("negative or zero equity".into());
        } else if f.same_currency && requested > 0 {
            let cover = eq as f64 / requested as f64;
            let adjust = match cover {
                c if c >= 10.0 => 15,
                c if c >= 3.0 => 5,
                c if c >= 1.0 => 0,
                _ => -20,
            };
            rating = Some(rating.unwrap_or(60) + adjust);
            parts.push(format!("equity covers the requested limit {cover:.1} times"));
        }
    }
    match rating {
        None => (None, "financials too incomplete to rate".into()),
        Some(r) => (Some(r.clamp(0, 100) as u32), parts.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(days: u32) -> TradeAnswer {
        TradeAnswer {
            status: "received".into(),
            average_days_to_pay: Some(days),
        }
    }

    fn bank(rating: &str) -> BankAnswer {
        BankAnswer {
            status: "received".into(),
            rating: Some(rating.into()),
            account_age_years: Some(8),
        }
    }

    fn strong() -> ScoreInput {
        ScoreInput {
            years_in_business: Some(15),
            trade: vec![received(28), received(30)],
            bank: vec![bank("excellent")],
            financials: Some(FinancialFigures {
                annual_revenue_minor: Some(100_000_000),
                equity_minor: Some(40_000_000),
                net_income_minor: Some(8_000_000),
                same_currency: true,
            }),
            history: None,
            requested_limit_minor: 2_000_000,
            requested_terms_days: 60,
        }
    }

    #[test]
    fn a_strong_prospect_gets_class_a_and_what_it_asked_for() {
        let s = score(&strong(), &ScorecardWeights::default());
        assert_eq!(s.risk_class, "A", "{s:?}");
        assert!(s.score >= 90, "{}", s.score);
        assert_eq!(s.recommended_limit_minor, 2_000_000);
        assert_eq!(s.recommended_terms_days, 60);
        let history = s
            .factors
            .iter()
            .find(|f| f.factor == "payment_history")
            .expect("factor");
        assert!(!history.available, "a prospect has no history");
        let sum: f64 = s.factors.iter().map(|f| f.contribution).sum();
        assert!((sum - f64::from(s.score)).abs() < 1.0, "contributions add up: {sum}");
    }

    #[test]
    fn a_weak_applicant_gets_a_low_class_and_a_cut_limit() {
        let input = ScoreInput {
            years_in_business: Some(1),
            trade: vec![
                received(95),
                TradeAnswer {
                    status: "unreachable".into(),
                    average_days_to_pay: None,
                },
            ],
            bank: vec![bank("poor")],
            financials: Some(FinancialFigures {
                annual_revenue_minor: Some(50_000_000),
                equity_minor: Some(1_000_000),
                net_income_minor: Some(-2_000_000),
                same_currency: true,
            }),
            history: None,
            requested_limit_minor: 5_000_000,
            requested_terms_days: 90,
        };
        let s = score(&input, &ScorecardWeights::default());
        assert_eq!(s.risk_class, "E", "{s:?}");
        assert_eq!(s.recommended_limit_minor, 0);
        assert_eq!(s.recommended_terms_days, 0);
    }

    #[test]
    fn own_history_counts_for_an_existing_customer_and_weights_matter() {
        let mut input = strong();
        input.history = Some(OwnHistory {
            paid_invoices: 12,
            share_late: 1.0,
            weighted_days_late: 45.0,
        });
        let with_history = score(&input, &ScorecardWeights::default());
        let history = with_history
            .factors
            .iter()
            .find(|f| f.factor == "payment_history")
            .expect("factor");
        assert!(history.available);
        assert_eq!(history.rating, 0);
        assert!(with_history.score < score(&strong(), &ScorecardWeights::default()).score);
        // Only history counts: the score is the history's rating.
        let only_history = ScorecardWeights {
            years_in_business: 0,
            trade_references: 0,
            bank_references: 0,
            financials: 0,
            payment_history: 10,
        };
        let s = score(&input, &only_history);
        assert_eq!(s.score, 0);
        assert_eq!(s.risk_class, "E");
    }

    #[test]
    fn equity_caps_the_recommended_limit() {
        let mut input = strong();
        input.financials = Some(FinancialFigures {
            annual_revenue_minor: Some(100_000_000),
            equity_minor: Some(5_000_000),
            net_income_minor: Some(10_000_000),
            same_currency: true,
        });
        let s = score(&input, &ScorecardWeights::default());
        assert_eq!(s.recommended_limit_minor, 500_000, "a tenth of equity: {s:?}");
    }

    #[test]
    fn nothing_known_scores_zero() {
        let input = ScoreInput {
            years_in_business: None,
            trade: vec![],
            bank: vec![],
            financials: None,
            history: None,
            requested_limit_minor: 1000,
            requested_terms_days: 30,
        };
        let s = score(&input, &ScorecardWeights::default());
        assert_eq!((s.score, s.risk_class.as_str()), (0, "E"));
        assert!(s.factors.iter().all(|f| !f.available));
    }

    #[test]
    fn classes_and_rounding() {
        assert_eq!(
            [100, 80, 79, 65, 64, 50, 49, 35, 34, 0].map(class_of),
            ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]
        );
        assert_eq!(percent_of(250, 75), 188); // 187.5 → 188 (even)
        assert_eq!(percent_of(10, 25), 2); // 2.5 → 2 (even)
        assert_eq!(percent_of(30, 25), 8); // 7.5 → 8
        assert_eq!(percent_of(1_000, 0), 0);
        assert!(ScorecardWeights::default().validate().is_ok());
        let zero = ScorecardWeights {
            years_in_business: 0,
            trade_references: 0,
            bank_references: 0,
            financials: 0,
            payment_history: 0,
        };
        assert!(zero.validate().is_err());
    }
}
