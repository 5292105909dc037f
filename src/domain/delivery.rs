//! E-mail delivery rules, no I/O: the retry schedule (exponential backoff with a cap and a
//! last attempt), how an SMTP server's answer is classified (try again later, or a
//! rejection that will not change), what becomes of a message after an attempt, whether a
//! queued message can be sent at all, and the Message-ID it carries.

use std::time::Duration;

use chrono::NaiveDateTime;

/// The longest error text kept on an action.
pub const MAX_ERROR_LEN: usize = 500;

/// When failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; after the last one a transient failure fails
    /// the message too.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; it doubles with each further failure.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// Ten attempts over about nine hours: 1, 2, 4, 8, 16, 32 minutes, 1, 2, 4 hours.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(60),
            cap: Duration::from_secs(6 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` attempts (counting from 1):
    /// `base · 2^(attempts − 1)`, never more than `cap`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(31);
        let factor = 1u32 << exponent;
        self.base.checked_mul(factor).unwrap_or(self.cap).min(self.cap)
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The SMTP server answered with an error reply code.
    Reply { code: u16, message: String },
    /// No usable answer: connection refused or lost, timeout, TLS handshake, garbled reply.
    Connection(String),
    /// The message itself cannot be sent (no recipient address, an invalid address, not
    /// rendered); no server was asked.
    Unsendable(String),
}

impl Failure {
    /// The text kept as the action's `last_error`.
    pub fn describe(&self) -> String {
        let text = match self {
            Failure::Reply { code, message } => format!("{code} {}", message.trim()),
            Failure::Connection(m) => format!("connection: {}", m.trim()),
            Failure::Unsendable(m) => m.trim().to_string(),
        };
        truncate(&text, MAX_ERROR_LEN)
    }
}

/// Whether a failure may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again later.
    Transient,
    /// Trying again gives the same answer.
    Permanent,
}

/// Classifies an SMTP reply code (RFC 5321 §4.2.1): 4yz replies are transient, 5yz
/// permanent, except the authentication replies (530, 534, 535, 538), which say the service's
/// own SMTP credentials or TLS settings are wrong, not that the recipient refuses the
/// message: they are retried so that fixing the configuration delivers the queue. A code
/// outside 4yz/5yz is an unexpected answer and is retried.
pub fn classify_reply(code: u16) -> Class {
    match code {
        530 | 534 | 535 | 538 => Class::Transient,
        500..=599 => Class::Permanent,
        _ => Class::Transient,
    }
}

pub fn classify(failure: &Failure) -> Class {
    match failure {
        Failure::Reply { code, .. } => classify_reply(*code),
        Failure::Connection(_) => Class::Transient,
        Failure::Unsendable(_) => Class::Permanent,
    }
}

/// What becomes of a message after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Back to `queued`, not before `at`.
    Retry { at: NaiveDateTime, error: String },
    /// `failed` for good; `bounce` when the SMTP server rejected the message.
    Fail { error: String, bounce: bool },
}

/// Decides after attempt number `attempts` (counting from 1) failed at `now`.
pub fn after_failure(policy: &RetryPolicy, attempts: u32, failure: &Failure, now: NaiveDateTime) -> AfterFailure {
    let error = failure.describe();
    match classify(failure) {
        Class::Permanent => AfterFailure::Fail {
            bounce: matches!(failure, Failure::Reply { .. }),
            error,
        },
        Class::Transient if attempts >= policy.max_attempts => AfterFailure::Fail {
            error: truncate(&format!("gave up after {attempts} attempts: {error}"), MAX_ERROR_LEN),
            bounce: false,
        },
        Class::Transient => {
            let wait = chrono::Duration::from_std(policy.backoff(attempts)).unwrap_or(chrono::Duration::MAX);
            AfterFailure::Retry {
                at: now.checked_add_signed(wait).unwrap_or(NaiveDateTime::MAX),
                error,
            }
        }
    }
}

/// Why a claimed message cannot be sent, if it cannot: no recipient address (the customer
/// has no collections contact with an e-mail), or no rendered subject and body.
pub fn unsendable(recipient: Option<&str>, subject: Option<&str>, body_text: Option<&str>) -> Option<Failure> {
    if recipient.is_none_or(|r| r.trim().is_empty()) {
        return Some(Failure::Unsendable(
            "no e-mail address: the customer has no collections contact with an e-mail".into(),
        ));
    }
    if subject.is_none_or(|s| s.trim().is_empty()) || body_text.is_none() {
        return Some(Failure::Unsendable(
            "the message was not rendered (no template for the step)".into(),
        ));
    }
    None
}

/// A message claimed again after its last allowed attempt was interrupted (the instance
/// sending it stopped and its lease expired) is not sent once more.
pub fn interrupted_too_often(policy: &RetryPolicy, attempts: u32) -> Option<Failure> {
    (attempts > policy.max_attempts).then(|| {
        Failure::Unsendable(format!(
            "gave up after {} attempts: the last one was interrupted",
            policy.max_attempts
        ))
    })
}

/// The Message-ID of an action's e-mail: the same on every attempt, unique per action and
/// database (`act_<id>.<creation time in µs>`), in the domain of the sender's address.
pub fn message_id(action_code: &str, created_at: NaiveDateTime, from_address: &str) -> String {
    let domain = from_address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("recaudo.invalid");
    format!("<{action_code}.{}@{domain}>", created_at.and_utc().timestamp_micros())
}

/// A Message-ID as a bounce report may give it (with or without angle brackets, with
/// spaces around) in the form stored on the action, `<local@domain>`.
pub fn normalize_message_id(input: &str) -> Option<String> {
    let inner = input.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let valid = inner.contains('@') && !inner.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
    valid.then(|| format!("<{inner}>"))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 23)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .unwrap_or_default()
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let p = RetryPolicy::default();
        let minutes: Vec<u64> = (1..=11).map(|n| p.backoff(n).as_secs() / 60).collect();
        assert_eq!(minutes, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
        assert_eq!(p.backoff(0), p.base, "attempt 0 is treated as the first");
        assert_eq!(p.backoff(u32::MAX), p.cap, "no overflow");
        let fast = RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(fast.backoff(4), Duration::from_millis(800));
        assert_eq!(fast.backoff(5), Duration::from_secs(1));
    }

    #[test]
    fn reply_codes_are_classified() {
        for (code, class) in [
            (421, Class::Transient), // service not available
            (450, Class::Transient), // mailbox busy / greylisted
            (451, Class::Transient), // local error
            (452, Class::Transient), // insufficient storage
            (550, Class::Permanent), // mailbox unavailable
            (551, Class::Permanent),
            (552, Class::Permanent),
            (553, Class::Permanent), // mailbox name not allowed
            (554, Class::Permanent), // transaction failed
            (500, Class::Permanent),
            (530, Class::Transient), // authentication required: our configuration
            (535, Class::Transient), // invalid credentials: our configuration
            (250, Class::Transient), // not an error reply: unexpected, retried
            (999, Class::Transient),
        ] {
            assert_eq!(classify_reply(code), class, "{code}");
        }
        assert_eq!(classify(&Failure::Connection("refused".into())), Class::Transient);
        assert_eq!(classify(&Failure::Unsendable("no address".into())), Class::Permanent);
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt() {
        let p = RetryPolicy::default();
        let greylisted = Failure::Reply {
            code: 451,
            message: "4.7.1 greylisted, try later".into(),
        };
        assert_eq!(
            after_failure(&p, 3, &greylisted, at(10, 0)),
            AfterFailure::Retry {
                at: at(10, 4),
                error: "451 4.7.1 greylisted, try later".into()
            }
        );
        match after_failure(&p, 10, &greylisted, at(10, 0)) {
            AfterFailure::Fail { error, bounce } => {
                assert!(!bounce);
                assert_eq!(error, "gave up after 10 attempts: 451 4.7.1 greylisted, try later");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        match after_failure(&p, 1, &Failure::Connection("connection refused".into()), at(10, 0)) {
            AfterFailure::Retry { at: when, error } => {
                assert_eq!(when, at(10, 1));
                assert_eq!(error, "connection: connection refused");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn permanent_rejections_fail_at_once_as_bounces() {
        let p = RetryPolicy::default();
        let rejected = Failure::Reply {
            code: 550,
            message: "5.1.1 user unknown".into(),
        };
        assert_eq!(
            after_failure(&p, 1, &rejected, at(10, 0)),
            AfterFailure::Fail {
                error: "550 5.1.1 user unknown".into(),
                bounce: true
            }
        );
        let nothing = Failure::Unsendable("no e-mail address".into());
        assert_eq!(
            after_failure(&p, 1, &nothing, at(10, 0)),
            AfterFailure::Fail {
                error: "no e-mail address".into(),
                bounce: false
            }
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = Failure::Reply {
            code: 550,
            message: "é".repeat(400),
        };
        let text = long.describe();
        assert!(text.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }

    #[test]
    fn messages_without_address_or_rendering_cannot_be_sent() {
        assert!(unsendable(Some("ap@example.com"), Some("Invoice 1"), Some("Hello")).is_none());
        assert!(unsendable(None, Some("Invoice 1"), Some("Hello")).is_some());
        assert!(unsendable(Some("  "), Some("Invoice 1"), Some("Hello")).is_some());
        assert!(unsendable(Some("ap@example.com"), None, None).is_some());
    }

    #[test]
    fn an_interrupted_last_attempt_is_not_repeated() {
        let p = RetryPolicy::default();
        assert!(interrupted_too_often(&p, 10).is_none());
        assert!(interrupted_too_often(&p, 11).is_some());
    }

    #[test]
    fn message_ids_are_stable_and_in_the_senders_domain() {
        let created = at(9, 30);
        let a = message_id("act_42", created, "Cobros <cobros@acme.example>");
        assert_eq!(a, "<act_42.1795426200000000@acme.example>");
        assert_eq!(a, message_id("act_42", created, "Cobros <cobros@acme.example>"));
        assert_eq!(
            message_id("act_42", created, "no-domain"),
            "<act_42.1795426200000000@recaudo.invalid>"
        );
    }

    #[test]
    fn bounce_reports_may_name_the_message_id_loosely() {
        assert_eq!(
            normalize_message_id(" act_1.5@acme.example "),
            Some("<act_1.5@acme.example>".into())
        );
        assert_eq!(
            normalize_message_id("<act_1.5@acme.example>"),
            Some("<act_1.5@acme.example>".into())
        );
        assert_eq!(normalize_message_id("not an id"), None);
        assert_eq!(normalize_message_id("<>"), None);
    }
}
