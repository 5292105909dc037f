//! The e-mail delivery worker: when `RECAUDO_SMTP_URL` is set, a background thread claims
//! queued e-mail actions in the database (several instances take different messages), sends
//! each by SMTP with `lettre` (multipart text + HTML, to the collections contact the action
//! was addressed to) and records the outcome: `sent` with its time and Message-ID, a retry
//! with exponential backoff after a transient failure, `failed` with the reason after a
//! permanent rejection or the last attempt. Without SMTP configured nothing starts and
//! messages stay `queued`, readable through the API.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::db::repo::actions::ActionRow;
use crate::domain::delivery::{Failure, RetryPolicy};
use crate::domain::ids::Kind;
use crate::error::AppError;
use crate::service::delivery::{self as service, Attempt, Recorded};
use crate::state::AppState;

/// How long one SMTP conversation may take before it counts as a transient failure.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The SMTP delivery settings (`RECAUDO_SMTP_*`).
#[derive(Clone)]
pub struct SmtpSettings {
    /// lettre's connection URL: `smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:pass@host`. May carry a password: never logged.
    pub url: String,
    /// The sender, e.g. `Cobros ACME <cobros@acme.example>`.
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// How often the worker looks for due messages when the outbox was empty.
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    /// Messages claimed at a time.
    pub batch_size: i64,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &redact(&self.url))
            .field("from", &self.from.to_string())
            .field("reply_to", &self.reply_to.as_ref().map(Mailbox::to_string))
            .field("poll_interval", &self.poll_interval)
            .field("retry", &self.retry)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The URL without credentials, for logs: `smtps://user:secret@host:465` → `smtps://host:465`.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "(invalid URL)".into(),
    }
}

impl SmtpSettings {
    /// Checks and assembles the settings; errors name the variable at fault.
    pub fn new(url: &str, from: &str, reply_to: Option<&str>) -> Result<SmtpSettings, String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("RECAUDO_SMTP_URL `{}` is not a usable SMTP URL: {e}", redact(url)))?;
        let from = Mailbox::from_str(from).map_err(|e| format!("RECAUDO_SMTP_FROM `{from}`: {e}"))?;
        let reply_to = reply_to
            .map(|r| Mailbox::from_str(r).map_err(|e| format!("RECAUDO_SMTP_REPLY_TO `{r}`: {e}")))
            .transpose()?;
        Ok(SmtpSettings {
            url: url.to_string(),
            from,
            reply_to,
            poll_interval: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            batch_size: 20,
        })
    }

    pub fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| e.to_string())?
            .timeout(Some(SEND_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(4))
            .build())
    }
}

/// Starts the delivery thread. It stops when the returned flag is set or when the
/// application state is gone (the server stopped).
pub fn start(state: Weak<AppState>, settings: SmtpSettings) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("recaudo-delivery".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the e-mail delivery runtime");
                    return;
                }
            };
            runtime.block_on(run(state, settings, flag));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the e-mail delivery thread");
    }
    stop
}

async fn run(state: Weak<AppState>, settings: SmtpSettings, stop: Arc<AtomicBool>) {
    let transport = match settings.transport() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "e-mail delivery disabled: cannot set up the SMTP transport");
            return;
        }
    };
    tracing::info!(smtp = %redact(&settings.url), from = %settings.from, "e-mail delivery started");
    while !stop.load(Ordering::Relaxed) {
        let Some(state) = state.upgrade() else { break };
        let claimed = deliver_batch(&state, &transport, &settings).await;
        drop(state);
        match claimed {
            // A full batch: there may be more due at once.
            Ok(n) if i64::try_from(n).unwrap_or(i64::MAX) >= settings.batch_size => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "e-mail delivery: cannot claim messages"),
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

/// Claims one batch of due messages, sends each and records its outcome; returns how many
/// were claimed.
pub async fn deliver_batch(
    state: &AppState,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    settings: &SmtpSettings,
) -> Result<usize, AppError> {
    let mut conn = state.pool.get().map_err(AppError::from_pool)?;
    let claim = service::claim(&mut conn, crate::db::now(), settings.batch_size)?;
    for message in &claim.messages {
        let attempt = attempt(transport, settings, message).await;
        let code = Kind::Action.encode(message.id);
        match service::record(&mut conn, message, &claim.token, &settings.retry, &attempt) {
            Ok(recorded) => {
                state.metrics.email_delivery(recorded.label());
                log(&code, message, &recorded);
            }
            Err(e) => tracing::error!(action = %code, error = %e, "e-mail delivery: cannot record the outcome"),
        }
    }
    Ok(claim.messages.len())
}

fn log(code: &str, message: &ActionRow, recorded: &Recorded) {
    let attempt = message.attempts;
    match recorded {
        Recorded::Sent => tracing::info!(action = %code, org = message.org_id, attempt, "e-mail sent"),
        Recorded::Retry { at, error } => {
            tracing::warn!(action = %code, org = message.org_id, attempt, next_attempt_at = %at, %error, "e-mail delivery failed, will retry")
        }
        Recorded::Failed { error, bounce } => {
            tracing::warn!(action = %code, org = message.org_id, attempt, bounce, %error, "e-mail delivery failed")
        }
        Recorded::ClaimLost => {
            tracing::warn!(action = %code, org = message.org_id, "e-mail delivery: the claim expired and was taken over")
        }
    }
}

/// One attempt at one message.
async fn attempt(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    settings: &SmtpSettings,
    message: &ActionRow,
) -> Attempt {
    let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX);
    if let Some(f) = crate::domain::delivery::interrupted_too_often(&settings.retry, attempts) {
        return Attempt::Failed(f);
    }
    if let Some(f) = crate::domain::delivery::unsendable(
        message.recipient.as_deref(),
        message.subject.as_deref(),
        message.body_text.as_deref(),
    ) {
        return Attempt::Failed(f);
    }
    let message_id = crate::domain::delivery::message_id(
        &Kind::Action.encode(message.id),
        message.created_at,
        settings.from.email.as_ref(),
    );
    let email = match build(settings, message, &message_id) {
        Ok(e) => e,
        Err(f) => return Attempt::Failed(f),
    };
    match transport.send(email).await {
        Ok(_) => Attempt::Sent { message_id },
        Err(e) => Attempt::Failed(failure(&e)),
    }
}

/// The e-mail of an action: multipart/alternative text and HTML (text only when the
/// template has no HTML), from the configured sender to the action's recipient.
fn build(settings: &SmtpSettings, message: &ActionRow, message_id: &str) -> Result<Message, Failure> {
    let recipient = message.recipient.as_deref().unwrap_or_default();
    let to = Mailbox::from_str(recipient)
        .map_err(|e| Failure::Unsendable(format!("the recipient address `{recipient}` is invalid: {e}")))?;
    let mut builder = Message::builder()
        .from(settings.from.clone())
        .to(to)
        .subject(message.subject.clone().unwrap_or_default())
        .message_id(Some(message_id.to_string()));
    if let Some(reply_to) = &settings.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let text = message.body_text.clone().unwrap_or_default();
    let built = match message.body_html.as_deref().filter(|h| !h.trim().is_empty()) {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(text, html.to_string())),
        None => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text)),
    };
    built.map_err(|e| Failure::Unsendable(format!("the message cannot be built: {e}")))
}

/// An SMTP error as the delivery rules see it: the reply code and text when the server
/// answered, a connection failure otherwise.
fn failure(e: &lettre::transport::smtp::Error) -> Failure {
    use std::error::Error as _;
    match e.status() {
        Some(code) => Failure::Reply {
            code: u16::from(code),
            message: e.source().map(ToString::to_string).unwrap_or_default(),
        },
        None => Failure::Connection(e.to_string()),
    }
}
