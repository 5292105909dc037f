//! Escalations (P8, P9, P15): what happens to an account when reminders are not enough —
//! a credit hold placed by the strategy, a placement with a collection agency, a letter on
//! a law firm's letterhead, a small-claims filing, an offer to take the goods back. Each
//! kind has its own status lifecycle; `transition` is the one rule that says which moves
//! are legal and what each needs (agency, court and filing reference, recovered amount).
//!
//! While an agency placement, a legal case (law-firm letter, small claims) or a
//! repossession offer is open, the invoices it covers leave normal dunning (P9, P15:
//! "dunning stops while legal owns the case"). A credit hold does not: it stops new orders
//! (credit control), and the ladder goes on to the final notice and the legal step.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::collectable::Exclusion;
use crate::domain::strategy::StepAction;
use crate::error::{FieldError, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("agency_placement"))]
pub enum EscalationKind {
    CreditHold,
    AgencyPlacement,
    LawFirmLetter,
    SmallClaims,
    RepossessionOffer,
}

/// (from, to) moves of a kind's lifecycle.
type Edges = &'static [(&'static str, &'static str)];

const CREDIT_HOLD: Edges = &[("active", "released")];
const AGENCY: Edges = &[
    ("proposed", "placed"),
    ("proposed", "withdrawn"),
    ("placed", "recovered"),
    ("placed", "partially_recovered"),
    ("placed", "returned"),
    ("placed", "withdrawn"),
];
const LAW_FIRM_LETTER: Edges = &[
    ("letter_sent", "filed"),
    ("letter_sent", "settled"),
    ("letter_sent", "withdrawn"),
    ("filed", "judgment"),
    ("filed", "settled"),
    ("filed", "withdrawn"),
    ("judgment", "settled"),
    ("judgment", "withdrawn"),
];
const SMALL_CLAIMS: Edges = &[
    ("preparing", "filed"),
    ("preparing", "settled"),
    ("preparing", "withdrawn"),
    ("filed", "judgment"),
    ("filed", "settled"),
    ("filed", "withdrawn"),
    ("judgment", "settled"),
    ("judgment", "withdrawn"),
];
const REPOSSESSION: Edges = &[
    ("offered", "accepted"),
    ("offered", "declined"),
    ("offered", "withdrawn"),
    ("accepted", "goods_returned"),
    ("accepted", "withdrawn"),
];

impl EscalationKind {
    pub const ALL: [EscalationKind; 5] = [
        EscalationKind::CreditHold,
        EscalationKind::AgencyPlacement,
        EscalationKind::LawFirmLetter,
        EscalationKind::SmallClaims,
        EscalationKind::RepossessionOffer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EscalationKind::CreditHold => "credit_hold",
            EscalationKind::AgencyPlacement => "agency_placement",
            EscalationKind::LawFirmLetter => "law_firm_letter",
            EscalationKind::SmallClaims => "small_claims",
            EscalationKind::RepossessionOffer => "repossession_offer",
        }
    }

    pub fn parse(text: &str) -> Option<EscalationKind> {
        EscalationKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The escalation a strategy step opens, if any.
    pub fn of_step(action: StepAction) -> Option<EscalationKind> {
        match action {
            StepAction::CreditHold => Some(EscalationKind::CreditHold),
            StepAction::AgencyPlacement => Some(EscalationKind::AgencyPlacement),
            StepAction::LawFirmLetter => Some(EscalationKind::LawFirmLetter),
            StepAction::SmallClaims => Some(EscalationKind::SmallClaims),
            StepAction::RepossessionOffer => Some(EscalationKind::RepossessionOffer),
            _ => None,
        }
    }

    /// The escalation a stored action name opens, if any.
    pub fn of_action(action: &str) -> Option<EscalationKind> {
        EscalationKind::parse(action)
    }

    /// The status an escalation starts in. A law-firm letter starts as sent: the run's
    /// action is the letter itself.
    pub fn initial_status(self) -> &'static str {
        match self {
            EscalationKind::CreditHold => "active",
            EscalationKind::AgencyPlacement => "proposed",
            EscalationKind::LawFirmLetter => "letter_sent",
            EscalationKind::SmallClaims => "preparing",
            EscalationKind::RepossessionOffer => "offered",
        }
    }

    fn edges(self) -> Edges {
        match self {
            EscalationKind::CreditHold => CREDIT_HOLD,
            EscalationKind::AgencyPlacement => AGENCY,
            EscalationKind::LawFirmLetter => LAW_FIRM_LETTER,
            EscalationKind::SmallClaims => SMALL_CLAIMS,
            EscalationKind::RepossessionOffer => REPOSSESSION,
        }
    }

    /// Every status of the kind, initial first.
    pub fn statuses(self) -> Vec<&'static str> {
        let mut out = vec![self.initial_status()];
        for (from, to) in self.edges() {
            for s in [*from, *to] {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// Open = not in a final status: the escalation still owns the account.
    pub fn is_open(self, status: &str) -> bool {
        self.edges().iter().any(|(from, _)| *from == status)
    }

    /// The statuses an escalation may move to from `status`.
    pub fn next_statuses(self, status: &str) -> Vec<&'static str> {
        self.edges()
            .iter()
            .filter(|(from, _)| *from == status)
            .map(|(_, to)| *to)
            .collect()
    }

    /// Why an open escalation of this kind keeps its invoices out of normal dunning.
    pub fn dunning_exclusion(self) -> Option<Exclusion> {
        match self {
            EscalationKind::CreditHold => None,
            EscalationKind::AgencyPlacement => Some(Exclusion::WithAgency),
            EscalationKind::LawFirmLetter | EscalationKind::SmallClaims => Some(Exclusion::Legal),
            EscalationKind::RepossessionOffer => Some(Exclusion::RepossessionOffered),
        }
    }

    /// The customer flag (P3) an open escalation of this kind raises.
    pub fn flag(self) -> Option<Flag> {
        match self {
            EscalationKind::AgencyPlacement => Some(Flag::WithAgency),
            EscalationKind::LawFirmLetter | EscalationKind::SmallClaims => Some(Flag::Legal),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    WithAgency,
    Legal,
}

/// Of several exclusions on one invoice, the one recorded: legal first, then the agency,
/// then a repossession offer.
pub fn strongest(a: Option<Exclusion>, b: Option<Exclusion>) -> Option<Exclusion> {
    let rank = |e: &Option<Exclusion>| match e {
        Some(Exclusion::Legal) => 3,
        Some(Exclusion::WithAgency) => 2,
        Some(Exclusion::RepossessionOffered) => 1,
        _ => 0,
    };
    if rank(&b) > rank(&a) { b } else { a }
}

/// An escalation as the rule sees it.
#[derive(Debug, Clone)]
pub struct Current {
    pub kind: EscalationKind,
    pub status: String,
    pub opened_on: NaiveDate,
    pub amount_minor: i64,
    pub agency: Option<String>,
}

/// What a transition request says, already trimmed and parsed (money in minor units).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub on: Option<NaiveDate>,
    pub reason: Option<String>,
    pub agency: Option<String>,
    pub agency_reference: Option<String>,
    pub law_firm: Option<String>,
    pub court: Option<String>,
    pub filing_reference: Option<String>,
    pub recovered_minor: Option<i64>,
    pub commission_minor: Option<i64>,
}

/// What a legal transition writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: &'static str,
    pub is_open: bool,
    pub on: NaiveDate,
    pub agency: Option<String>,
    pub agency_reference: Option<String>,
    pub placed_on: Option<NaiveDate>,
    pub law_firm: Option<String>,
    pub court: Option<String>,
    pub filing_reference: Option<String>,
    pub filed_on: Option<NaiveDate>,
    pub judgment_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub recovered_minor: Option<i64>,
    pub commission_minor: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The move is not in the kind's lifecycle (409).
    Illegal(String),
    /// The move is legal but the request is incomplete or inconsistent (422).
    Invalid(Vec<FieldError>),
}

/// Validates a move of an escalation to `to` on a date (`as_of` unless the request gives
/// one) and says what it writes. Pure: nothing is written when it fails.
pub fn transition(cur: &Current, to: &str, req: &Request, as_of: NaiveDate) -> Result<Change, TransitionError> {
    let kind = cur.kind;
    let Some(status) = kind
        .edges()
        .iter()
        .find(|(from, t)| *from == cur.status && *t == to)
        .map(|(_, t)| *t)
    else {
        let next = kind.next_statuses(&cur.status);
        return Err(TransitionError::Illegal(if next.is_empty() {
            format!("the {} is {} and cannot change any more", kind.as_str(), cur.status)
        } else if !kind.statuses().contains(&to) {
            format!(
                "`{to}` is not a status of a {}; from {} it may become {}",
                kind.as_str(),
                cur.status,
                next.join(", ")
            )
        } else {
            format!(
                "a {} that is {} cannot become {to}; it may become {}",
                kind.as_str(),
                cur.status,
                next.join(", ")
            )
        }));
    };
    let mut v = Violations::new();
    // A run for a later date may open an escalation "in the future"; its moves then date
    // from its opening at the earliest.
    let latest = as_of.max(cur.opened_on);
    let on = req.on.unwrap_or(latest);
    if on < cur.opened_on {
        v.add(
            "on",
            format!("must not be before the escalation was opened ({})", cur.opened_on),
        );
    }
    if on > latest {
        v.add("on", "must not be in the future");
    }
    // Which fields each target takes; anything else given is a mistake worth telling.
    let takes_recovered = matches!(
        status,
        "recovered" | "partially_recovered" | "returned" | "settled" | "judgment"
    );
    let takes_commission = kind == EscalationKind::AgencyPlacement && takes_recovered;
    let takes_agency = status == "placed";
    let takes_filing = status == "filed";
    let takes_law_firm = matches!(kind, EscalationKind::LawFirmLetter | EscalationKind::SmallClaims);
    let misplaced = [
        ("agency", req.agency.is_some() && !takes_agency),
        ("agency_reference", req.agency_reference.is_some() && !takes_agency),
        ("court", req.court.is_some() && !takes_filing),
        ("filing_reference", req.filing_reference.is_some() && !takes_filing),
        ("law_firm", req.law_firm.is_some() && !takes_law_firm),
        ("recovered_amount", req.recovered_minor.is_some() && !takes_recovered),
        ("commission", req.commission_minor.is_some() && !takes_commission),
    ];
    for (field, wrong) in misplaced {
        if wrong {
            v.add(
                field,
                format!("does not apply when a {} becomes {status}", kind.as_str()),
            );
        }
    }
    if takes_agency && req.agency.is_none() && cur.agency.is_none() {
        v.add("agency", "is required: the agency the account is placed with");
    }
    if takes_filing {
        if req.court.is_none() {
            v.add("court", "is required when the claim is filed");
        }
        if req.filing_reference.is_none() {
            v.add("filing_reference", "is required when the claim is filed");
        }
    }
    if matches!(status, "recovered" | "partially_recovered") {
        match req.recovered_minor {
            None | Some(0) => v.add("recovered_amount", "must be greater than zero"),
            Some(r) if status == "partially_recovered" && r >= cur.amount_minor => v.add(
                "recovered_amount",
                "is the whole placed amount or more: the status is `recovered`",
            ),
            _ => {}
        }
    }
    if takes_commission
        && let (Some(c), r) = (req.commission_minor, req.recovered_minor.unwrap_or(0))
        && c > r
    {
        v.add("commission", "must not exceed the recovered amount");
    }
    if matches!(status, "released" | "withdrawn" | "declined") && req.reason.is_none() {
        v.add("reason", format!("is required to mark a {} {status}", kind.as_str()));
    }
    v.finish().map_err(TransitionError::Invalid)?;
    let is_open = kind.is_open(status);
    Ok(Change {
        status,
        is_open,
        on,
        agency: req.agency.clone(),
        agency_reference: req.agency_reference.clone(),
        placed_on: takes_agency.then_some(on),
        law_firm: req.law_firm.clone(),
        court: req.court.clone(),
        filing_reference: req.filing_reference.clone(),
        filed_on: takes_filing.then_some(on),
        judgment_on: (status == "judgment").then_some(on),
        closed_on: (!is_open).then_some(on),
        recovered_minor: req.recovered_minor,
        commission_minor: req.commission_minor,
    })
}

/// A credit hold opened by the strategy ends by itself once every overdue item it covered
/// is settled (`open_minor` of each covered invoice). A hold that covers no invoice (opened
/// by hand for the whole account) is released only by a manager.
pub fn hold_settled(covered_open_minor: &[i64]) -> bool {
    !covered_open_minor.is_empty() && covered_open_minor.iter().all(|open| *open <= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn cur(kind: EscalationKind, status: &str) -> Current {
        Current {
            kind,
            status: status.into(),
            opened_on: d("2026-11-01"),
            amount_minor: 10_000,
            agency: None,
        }
    }

    fn code(r: &Result<Change, TransitionError>) -> String {
        match r {
            Ok(c) => format!("ok:{}", c.status),
            Err(TransitionError::Illegal(_)) => "409".into(),
            Err(TransitionError::Invalid(errors)) => format!(
                "422:{}",
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(",")
            ),
        }
    }

    #[test]
    fn lifecycles_table() {
        use EscalationKind::*;
        let today = d("2026-11-23");
        let agency = Request {
            agency: Some("Cobros Levante SL".into()),
            ..Request::default()
        };
        let reason = Request {
            reason: Some("paid in full".into()),
            ..Request::default()
        };
        let filing = Request {
            court: Some("Juzgado de Primera Instancia n.º 3 de Valencia".into()),
            filing_reference: Some("MON-2026-0042".into()),
            ..Request::default()
        };
        let recovered = |minor| Request {
            recovered_minor: Some(minor),
            ..Request::default()
        };
        let none = Request::default();
        let cases: Vec<(EscalationKind, &str, &str, Request, &str)> = vec![
            (CreditHold, "active", "released", reason.clone(), "ok:released"),
            (CreditHold, "active", "released", none.clone(), "422:reason"),
            (CreditHold, "released", "active", none.clone(), "409"),
            (CreditHold, "released", "released", reason.clone(), "409"),
            (AgencyPlacement, "proposed", "placed", agency.clone(), "ok:placed"),
            (AgencyPlacement, "proposed", "placed", none.clone(), "422:agency"),
            (AgencyPlacement, "proposed", "recovered", recovered(100), "409"),
            (
                AgencyPlacement,
                "placed",
                "recovered",
                recovered(10_000),
                "ok:recovered",
            ),
            (
                AgencyPlacement,
                "placed",
                "recovered",
                none.clone(),
                "422:recovered_amount",
            ),
            (
                AgencyPlacement,
                "placed",
                "partially_recovered",
                recovered(4_000),
                "ok:partially_recovered",
            ),
            (
                AgencyPlacement,
                "placed",
                "partially_recovered",
                recovered(10_000),
                "422:recovered_amount",
            ),
            (AgencyPlacement, "placed", "returned", none.clone(), "ok:returned"),
            (AgencyPlacement, "returned", "placed", agency.clone(), "409"),
            (AgencyPlacement, "placed", "filed", filing.clone(), "409"),
            (LawFirmLetter, "letter_sent", "filed", filing.clone(), "ok:filed"),
            (
                LawFirmLetter,
                "letter_sent",
                "filed",
                none.clone(),
                "422:court,filing_reference",
            ),
            (LawFirmLetter, "letter_sent", "placed", agency.clone(), "409"),
            (LawFirmLetter, "filed", "judgment", none.clone(), "ok:judgment"),
            (LawFirmLetter, "judgment", "settled", recovered(10_000), "ok:settled"),
            (LawFirmLetter, "settled", "withdrawn", reason.clone(), "409"),
            (SmallClaims, "preparing", "filed", filing.clone(), "ok:filed"),
            (SmallClaims, "preparing", "judgment", none.clone(), "409"),
            (SmallClaims, "filed", "withdrawn", none.clone(), "422:reason"),
            (RepossessionOffer, "offered", "accepted", none.clone(), "ok:accepted"),
            (RepossessionOffer, "offered", "declined", reason.clone(), "ok:declined"),
            (
                RepossessionOffer,
                "accepted",
                "goods_returned",
                none.clone(),
                "ok:goods_returned",
            ),
            (RepossessionOffer, "declined", "accepted", none.clone(), "409"),
            (RepossessionOffer, "offered", "placed", agency.clone(), "409"),
            (CreditHold, "active", "nonsense", none.clone(), "409"),
        ];
        for (kind, from, to, req, expected) in cases {
            let got = code(&transition(&cur(kind, from), to, &req, today));
            assert_eq!(got, expected, "{kind:?} {from} → {to}");
        }
    }

    #[test]
    fn fields_that_do_not_apply_are_refused() {
        let today = d("2026-11-23");
        let req = Request {
            agency: Some("Cobros Levante SL".into()),
            court: Some("Juzgado".into()),
            commission_minor: Some(5),
            ..Request::default()
        };
        let r = transition(&cur(EscalationKind::AgencyPlacement, "proposed"), "placed", &req, today);
        assert_eq!(code(&r), "422:court,commission");
        let r = transition(
            &cur(EscalationKind::AgencyPlacement, "placed"),
            "recovered",
            &Request {
                recovered_minor: Some(1_000),
                commission_minor: Some(2_000),
                ..Request::default()
            },
            today,
        );
        assert_eq!(code(&r), "422:commission", "commission above the recovered amount");
    }

    #[test]
    fn dates_and_what_a_transition_writes() {
        let today = d("2026-11-23");
        let placed = transition(
            &cur(EscalationKind::AgencyPlacement, "proposed"),
            "placed",
            &Request {
                agency: Some("Cobros Levante SL".into()),
                agency_reference: Some("CL-778".into()),
                on: Some(d("2026-11-20")),
                ..Request::default()
            },
            today,
        )
        .expect("legal");
        assert!(placed.is_open);
        assert_eq!(placed.placed_on, Some(d("2026-11-20")));
        assert_eq!(placed.closed_on, None);
        let closed = transition(
            &cur(EscalationKind::AgencyPlacement, "placed"),
            "partially_recovered",
            &Request {
                recovered_minor: Some(6_000),
                commission_minor: Some(900),
                ..Request::default()
            },
            today,
        )
        .expect("legal");
        assert!(!closed.is_open);
        assert_eq!(closed.closed_on, Some(today));
        assert_eq!(closed.recovered_minor, Some(6_000));
        for on in [d("2026-10-31"), d("2026-11-24")] {
            let r = transition(
                &cur(EscalationKind::RepossessionOffer, "offered"),
                "accepted",
                &Request {
                    on: Some(on),
                    ..Request::default()
                },
                today,
            );
            assert_eq!(code(&r), "422:on", "{on}");
        }
        let mut future = cur(EscalationKind::CreditHold, "active");
        future.opened_on = d("2026-12-01");
        let released = transition(
            &future,
            "released",
            &Request {
                reason: Some("paid".into()),
                ..Request::default()
            },
            today,
        )
        .expect("legal");
        assert_eq!(released.closed_on, Some(d("2026-12-01")));
    }

    #[test]
    fn open_statuses_exclusions_and_flags() {
        use EscalationKind::*;
        for kind in EscalationKind::ALL {
            assert!(kind.is_open(kind.initial_status()), "{kind:?} starts open");
            assert_eq!(EscalationKind::parse(kind.as_str()), Some(kind));
        }
        assert!(AgencyPlacement.is_open("placed"));
        assert!(!AgencyPlacement.is_open("returned"));
        assert!(LawFirmLetter.is_open("judgment"));
        assert!(!CreditHold.is_open("released"));
        assert_eq!(CreditHold.dunning_exclusion(), None, "a hold stops orders, not dunning");
        assert_eq!(AgencyPlacement.dunning_exclusion(), Some(Exclusion::WithAgency));
        assert_eq!(SmallClaims.dunning_exclusion(), Some(Exclusion::Legal));
        assert_eq!(
            RepossessionOffer.dunning_exclusion(),
            Some(Exclusion::RepossessionOffered)
        );
        assert_eq!(AgencyPlacement.flag(), Some(Flag::WithAgency));
        assert_eq!(LawFirmLetter.flag(), Some(Flag::Legal));
        assert_eq!(RepossessionOffer.flag(), None);
        assert_eq!(EscalationKind::of_step(StepAction::Email), None);
        assert_eq!(EscalationKind::of_step(StepAction::SmallClaims), Some(SmallClaims));
        assert_eq!(
            strongest(Some(Exclusion::WithAgency), Some(Exclusion::Legal)),
            Some(Exclusion::Legal)
        );
        assert_eq!(
            strongest(Some(Exclusion::WithAgency), Some(Exclusion::RepossessionOffered)),
            Some(Exclusion::WithAgency)
        );
        assert_eq!(strongest(None, None), None);
    }

    #[test]
    fn holds_end_when_what_they_covered_is_settled() {
        assert!(hold_settled(&[0, 0]));
        assert!(!hold_settled(&[0, 1]));
        assert!(!hold_settled(&[]), "an account-wide hold is released by a manager");
    }
}
