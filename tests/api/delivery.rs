//! E-mail delivery against a real SMTP server started inside each test (mailin-embedded on
//! a random port): delivery with the right To, Subject and body, permanent rejections,
//! retries of temporary failures, cancelled messages never sent, several workers never
//! sending one message twice, bounce reports, and the background worker end to end.
//!
//! The server decides by recipient: `bounce…@` is refused with 550, `flaky…@` gets 451 for
//! its first two attempts, anyone else is accepted.

use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Days, Utc};
use mail_parser::MessageParser;
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use recaudo::delivery::SmtpSettings;
use recaudo::domain::delivery::RetryPolicy;
use serde_json::{Value, json};

use crate::helpers::{Engine, Options, TestApp, spawn, spawn_with};

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    data: String,
}

#[derive(Default)]
struct Mailbox {
    received: Vec<Received>,
    /// RCPT commands seen per address.
    tries: HashMap<String, u32>,
}

#[derive(Clone)]
struct Sink {
    mailbox: Arc<Mutex<Mailbox>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        let address = to.trim_matches(|c| c == '<' || c == '>').to_string();
        let tries = {
            let mut mailbox = self.mailbox.lock().expect("mailbox");
            let n = mailbox.tries.entry(address.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if address.starts_with("bounce") {
            return Response::custom(550, "5.1.1 <bounce> user unknown".into());
        }
        if address.starts_with("flaky") && tries <= 2 {
            return Response::custom(451, "4.7.1 greylisted, try again later".into());
        }
        self.to.push(address);
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, _to: &[String]) -> Response {
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = Received {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        };
        self.mailbox.lock().expect("mailbox").received.push(message);
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.to.clear();
        response::OK
    }
}

/// A running SMTP server and what it received.
struct SmtpServer {
    port: u16,
    mailbox: Arc<Mutex<Mailbox>>,
}

impl SmtpServer {
    /// Starts a server on a random local port; it runs until the test process ends.
    fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let mut server = Server::new(Sink {
            mailbox: mailbox.clone(),
            to: Vec::new(),
            data: Vec::new(),
        });
        server
            .with_name("smtp.test")
            .with_ssl(SslConfig::None)
            .expect("no TLS")
            // One thread per open connection, and pooled SMTP connections stay open while
            // idle: enough threads that a new connection never waits for an idle one to close.
            .with_num_threads(32)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, mailbox }
    }

    /// Settings that deliver to this server; retries are due at once.
    fn settings(&self) -> SmtpSettings {
        let mut s = SmtpSettings::new(
            &format!("smtp://127.0.0.1:{}", self.port),
            "Cobros ACME <cobros@acme.example>",
            Some("Marta <marta@acme.example>"),
        )
        .expect("settings");
        s.poll_interval = Duration::from_millis(100);
        s.retry = RetryPolicy {
            max_attempts: 4,
            base: Duration::ZERO,
            cap: Duration::ZERO,
        };
        s
    }

    fn received(&self) -> Vec<Received> {
        self.mailbox.lock().expect("mailbox").received.clone()
    }
}

/// Runs one claim-send-record round as a delivery worker does.
async fn deliver(app: &TestApp, smtp: &SmtpServer) -> usize {
    let settings = smtp.settings();
    let transport = settings.transport().expect("transport");
    recaudo::delivery::deliver_batch(&app.state, &transport, &settings)
        .await
        .expect("delivery round")
}

/// A customer (English, collector `marta`) whose collections contact has this address.
async fn customer(app: &TestApp, ext: &str, email: &str) -> String {
    app.post(
        "/v1/customers",
        &json!({"external_id": ext, "name": format!("Client {ext}"), "language": "en", "collector": "marta",
            "contacts": [{"name": "Anna", "email": email, "is_primary_for_collections": true}]}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// An invoice one day overdue today: today's run queues the reminder e-mail for it.
async fn overdue_invoice(app: &TestApp, customer: &str, number: &str) -> String {
    let due = Utc::now().date_naive() - Days::new(1);
    app.post(
        "/v1/invoices",
        &json!({"customer_id": customer, "number": number, "amount": "100.00", "issue_date": "2026-01-01",
            "due_date": due.format("%Y-%m-%d").to_string(), "delivered_on": "2026-01-02"}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn run_today(app: &TestApp) {
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    app.post("/v1/collection-runs", &json!({"as_of": today}))
        .await
        .expect(201);
}

async fn emails(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get(&format!("/v1/actions?channel=email&customer_id={customer}"))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn email(app: &TestApp, customer: &str) -> Value {
    let list = emails(app, customer).await;
    assert_eq!(list.len(), 1, "one e-mail for the customer: {list:?}");
    list[0].clone()
}

crate::both_engines!(
    a_queued_email_is_delivered_to_the_contact_with_its_subject_and_body,
    a_permanent_rejection_fails_the_message_with_the_reason,
    a_temporary_failure_is_retried_and_then_sent,
    transient_failures_fail_the_message_after_the_last_attempt,
    cancelled_messages_are_never_sent,
    concurrent_workers_never_send_a_message_twice,
    bounces_reported_after_delivery_fail_the_message,
);

async fn a_queued_email_is_delivered_to_the_contact_with_its_subject_and_body(app: TestApp) {
    let smtp = SmtpServer::start();
    let c = customer(&app, "C-1", "ap@ferreteria.example").await;
    overdue_invoice(&app, &c, "2026/0042").await;
    run_today(&app).await;
    let queued = email(&app, &c).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["delivery"]["attempts"], 0);
    assert_eq!(queued["delivery"]["sent_at"], Value::Null);

    assert_eq!(deliver(&app, &smtp).await, 1);
    let sent = email(&app, &c).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["delivery"]["attempts"], 1);
    assert!(sent["delivery"]["sent_at"].is_string());
    assert!(sent["completed_at"].is_string());
    let message_id = sent["delivery"]["message_id"].as_str().expect("message id");
    assert!(message_id.ends_with("@acme.example>"), "{message_id}");

    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["ap@ferreteria.example"], "the envelope recipient");
    let m = MessageParser::default()
        .parse(received[0].data.as_bytes())
        .expect("a parseable message");
    let first =
        |a: Option<&mail_parser::Address<'_>>| a.and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_string);
    assert_eq!(first(m.to()).as_deref(), Some("ap@ferreteria.example"));
    assert_eq!(first(m.from()).as_deref(), Some("cobros@acme.example"));
    assert_eq!(first(m.reply_to()).as_deref(), Some("marta@acme.example"));
    assert_eq!(m.message_id().map(|id| format!("<{id}>")).as_deref(), Some(message_id));
    assert_eq!(m.subject(), sent["subject"].as_str());
    let text = m.body_text(0).expect("a text part");
    let html = m.body_html(0).expect("an HTML part");
    assert!(text.contains("2026/0042"), "the text lists the invoice: {text}");
    assert!(html.contains("2026&#x2f;0042"), "the HTML lists the invoice: {html}");
    assert_eq!(
        text.replace("\r\n", "\n").trim(),
        sent["body_text"].as_str().unwrap_or_default().trim(),
        "the text part is the rendered text"
    );
    assert_eq!(
        html.replace("\r\n", "\n").trim(),
        sent["body_html"].as_str().unwrap_or_default().trim(),
        "the HTML part is the rendered HTML"
    );

    // Nothing is due any more: a second round sends nothing.
    assert_eq!(deliver(&app, &smtp).await, 0);
    assert_eq!(smtp.received().len(), 1);
    let metrics = app.get("/metrics").await.body;
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("recaudo_email_deliveries_total{outcome=\"sent\"} 1"),
        "{text}"
    );
}

async fn a_permanent_rejection_fails_the_message_with_the_reason(app: TestApp) {
    let smtp = SmtpServer::start();
    let c = customer(&app, "C-1", "bounce@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    run_today(&app).await;
    deliver(&app, &smtp).await;
    let failed = email(&app, &c).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["outcome"], "bounced");
    assert_eq!(failed["delivery"]["attempts"], 1);
    let error = failed["delivery"]["last_error"].as_str().expect("reason");
    assert!(error.starts_with("550") && error.contains("user unknown"), "{error}");
    assert!(smtp.received().is_empty());

    // Never retried.
    assert_eq!(deliver(&app, &smtp).await, 0);
    let events = app.get("/v1/events?kind=email.bounced").await.expect(200).body;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(1), "{events}");
    let tasks = app.get("/v1/tasks").await.expect(200).body;
    let bounced: Vec<&Value> = tasks["items"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["kind"] == "email_bounced").collect())
        .unwrap_or_default();
    assert_eq!(bounced.len(), 1, "{tasks}");
    assert_eq!(bounced[0]["assignee"], "marta");
}

async fn a_temporary_failure_is_retried_and_then_sent(app: TestApp) {
    let smtp = SmtpServer::start();
    let c = customer(&app, "C-1", "flaky@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    run_today(&app).await;

    deliver(&app, &smtp).await;
    let first = email(&app, &c).await;
    assert_eq!(first["status"], "queued", "back in the queue: {first}");
    assert_eq!(first["delivery"]["attempts"], 1);
    assert!(first["delivery"]["next_attempt_at"].is_string());
    let error = first["delivery"]["last_error"].as_str().expect("error");
    assert!(error.starts_with("451"), "{error}");

    deliver(&app, &smtp).await;
    assert_eq!(email(&app, &c).await["delivery"]["attempts"], 2);
    deliver(&app, &smtp).await;
    let sent = email(&app, &c).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["delivery"]["attempts"], 3);
    assert_eq!(sent["delivery"]["last_error"], Value::Null);
    assert_eq!(sent["delivery"]["next_attempt_at"], Value::Null);
    assert_eq!(smtp.received().len(), 1);
}

async fn transient_failures_fail_the_message_after_the_last_attempt(app: TestApp) {
    // Nothing listens on this port: every attempt is a connection failure.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let dead = SmtpServer {
        port,
        mailbox: Arc::default(),
    };
    let c = customer(&app, "C-1", "ap@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    run_today(&app).await;
    for attempt in 1..=3 {
        deliver(&app, &dead).await;
        let e = email(&app, &c).await;
        assert_eq!(e["status"], "queued", "attempt {attempt}: {e}");
        assert!(
            e["delivery"]["last_error"]
                .as_str()
                .is_some_and(|s| s.starts_with("connection")),
            "{e}"
        );
    }
    deliver(&app, &dead).await;
    let failed = email(&app, &c).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["outcome"], "undeliverable");
    assert_eq!(failed["delivery"]["attempts"], 4);
    assert!(
        failed["delivery"]["last_error"]
            .as_str()
            .is_some_and(|s| s.starts_with("gave up after 4 attempts")),
        "{failed}"
    );
    let events = app.get("/v1/events?kind=email.failed").await.expect(200).body;
    assert_eq!(events["items"].as_array().map(Vec::len), Some(1), "{events}");
}

async fn cancelled_messages_are_never_sent(app: TestApp) {
    let smtp = SmtpServer::start();
    let payer = customer(&app, "C-1", "payer@ferreteria.example").await;
    let promiser = customer(&app, "C-2", "promiser@ferreteria.example").await;
    let cancelled_by_hand = customer(&app, "C-3", "manual@ferreteria.example").await;
    let waiting = customer(&app, "C-4", "waiting@ferreteria.example").await;
    let a = overdue_invoice(&app, &payer, "A").await;
    let b = overdue_invoice(&app, &promiser, "B").await;
    overdue_invoice(&app, &cancelled_by_hand, "C").await;
    overdue_invoice(&app, &waiting, "D").await;
    run_today(&app).await;

    // Without a delivery round (no SMTP configured for this app) messages stay queued.
    for c in [&payer, &promiser, &cancelled_by_hand, &waiting] {
        assert_eq!(email(&app, c).await["status"], "queued");
    }
    app.post(
        "/v1/payments",
        &json!({"customer_id": payer, "amount": "100.00", "allocations": [{"invoice_id": a, "amount": "100.00"}]}),
    )
    .await
    .expect(201);
    let promised = (Utc::now().date_naive() + Days::new(5)).format("%Y-%m-%d").to_string();
    app.post(
        "/v1/promises",
        &json!({"customer_id": promiser, "invoice_ids": [b], "amount": "100.00", "promised_date": promised}),
    )
    .await
    .expect(201);
    let manual = email(&app, &cancelled_by_hand).await;
    app.post(
        &format!("/v1/actions/{}/cancel", manual["id"].as_str().expect("id")),
        &json!({"outcome": "customer called, paying today"}),
    )
    .await
    .expect(200);

    assert_eq!(
        deliver(&app, &smtp).await,
        1,
        "only the message still queued is claimed"
    );
    assert_eq!(deliver(&app, &smtp).await, 0);
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, vec!["waiting@ferreteria.example"]);
    for c in [&payer, &promiser, &cancelled_by_hand] {
        let e = email(&app, c).await;
        assert_eq!(e["status"], "cancelled", "{e}");
        assert_eq!(e["delivery"]["attempts"], 0);
    }
    assert_eq!(email(&app, &waiting).await["status"], "sent");

    // A sent message cannot be cancelled any more.
    let sent = email(&app, &waiting).await;
    app.post(
        &format!("/v1/actions/{}/cancel", sent["id"].as_str().expect("id")),
        &json!({}),
    )
    .await
    .expect_problem(409);
}

async fn concurrent_workers_never_send_a_message_twice(app: TestApp) {
    let smtp = SmtpServer::start();
    let mut customers = Vec::new();
    for n in 0..6 {
        let c = customer(&app, &format!("C-{n}"), &format!("ap{n}@ferreteria.example")).await;
        overdue_invoice(&app, &c, &format!("F-{n}")).await;
        customers.push(c);
    }
    run_today(&app).await;
    let mut settings = smtp.settings();
    settings.batch_size = 2;
    let transport = settings.transport().expect("transport");
    // Three workers claim two messages at a time, in parallel, until the outbox is empty.
    let mut workers = Vec::new();
    for _ in 0..3 {
        let (state, settings, transport) = (app.state.clone(), settings.clone(), transport.clone());
        workers.push(tokio::spawn(async move {
            let mut total = 0;
            loop {
                let n = recaudo::delivery::deliver_batch(&state, &transport, &settings)
                    .await
                    .expect("round");
                if n == 0 {
                    return total;
                }
                total += n;
            }
        }));
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.push(w.await.expect("worker"));
    }
    let (a, b, c) = (claimed[0], claimed[1], claimed[2]);
    assert_eq!(a + b + c, 6, "every message claimed exactly once");
    let received = smtp.received();
    let mut to: Vec<String> = received.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(received.len(), 6);
    assert_eq!(to.len(), 6, "no address received two messages");
    for c in &customers {
        let e = email(&app, c).await;
        assert_eq!(e["status"], "sent");
        assert_eq!(e["delivery"]["attempts"], 1);
    }
}

async fn bounces_reported_after_delivery_fail_the_message(app: TestApp) {
    let smtp = SmtpServer::start();
    let c = customer(&app, "C-1", "ap@ferreteria.example").await;
    let other = customer(&app, "C-2", "other@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    overdue_invoice(&app, &other, "F-2").await;
    run_today(&app).await;
    let queued = email(&app, &other).await;
    // A queued message has not been sent: it cannot bounce.
    app.post(
        "/v1/email-bounces",
        &json!({"action_id": queued["id"], "reason": "550 user unknown"}),
    )
    .await
    .expect_problem(409);
    deliver(&app, &smtp).await;
    let sent = email(&app, &c).await;
    let message_id = sent["delivery"]["message_id"].as_str().expect("message id");
    let bare = message_id.trim_matches(|ch| ch == '<' || ch == '>');

    let viewer = app.token("viewer");
    let report = json!({"message_id": bare, "reason": "550 5.1.1 mailbox does not exist"});
    let r = app
        .send(reqwest::Method::POST, "/v1/email-bounces", Some(&viewer), Some(&report))
        .await;
    assert_eq!(r.status, 403);
    let bad = app
        .post(
            "/v1/email-bounces",
            &json!({"action_id": sent["id"], "message_id": message_id, "reason": "x"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(bad.error_fields(), vec!["action_id"]);
    app.post(
        "/v1/email-bounces",
        &json!({"message_id": "<nobody@acme.example>", "reason": "x"}),
    )
    .await
    .expect_problem(404);

    let integration = app.token("integration");
    let r = app
        .send(
            reqwest::Method::POST,
            "/v1/email-bounces",
            Some(&integration),
            Some(&report),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], sent["id"]);
    assert_eq!(r.body["status"], "failed");
    assert_eq!(r.body["outcome"], "bounced");
    assert_eq!(
        r.body["delivery"]["last_error"],
        "bounced: 550 5.1.1 mailbox does not exist"
    );
    assert_eq!(r.body["delivery"]["message_id"], message_id);

    // The provider repeats its notification: nothing changes, no second event.
    let again = app
        .send(
            reqwest::Method::POST,
            "/v1/email-bounces",
            Some(&integration),
            Some(&report),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "failed");
    let events = app.get("/v1/events?kind=email.bounced").await.expect(200).body;
    let items = events["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["payload"]["source"], "report");
}

/// The background worker of an app configured with SMTP delivers by itself.
async fn the_background_worker_delivers(engine: Engine) {
    let smtp = SmtpServer::start();
    let Some(app) = spawn_with(
        engine,
        Options {
            smtp: Some(smtp.settings()),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let c = customer(&app, "C-1", "ap@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    run_today(&app).await;
    let mut status = Value::Null;
    for _ in 0..200 {
        status = email(&app, &c).await["status"].clone();
        if status == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "sent");
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_delivers_on_sqlite() {
    the_background_worker_delivers(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_worker_delivers_on_postgres() {
    the_background_worker_delivers(Engine::Postgres).await;
}

/// Without SMTP configured, no worker runs: the message stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_messages_stay_queued() {
    let app = spawn(Engine::Sqlite).await.expect("app");
    let c = customer(&app, "C-1", "ap@ferreteria.example").await;
    overdue_invoice(&app, &c, "F-1").await;
    run_today(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let e = email(&app, &c).await;
    assert_eq!(e["status"], "queued");
    assert!(e["body_text"].as_str().is_some_and(|b| b.contains("F-1")));
}
