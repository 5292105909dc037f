//! Money movements racing each other. First every kind at once on one customer's account
//! (new payments, reversals, unapplied allocations, re-applied cash, a credit note, a
//! write-off, a cancellation and an ERP re-sending an invoice): each request either happens
//! whole or is refused with a problem, and afterwards every cent is accounted for. Then
//! one race at a time, each of which lost money or answered 503 on PostgreSQL before its
//! fix: an ERP re-sending invoices while they are paid, concurrent PUTs of one new
//! invoice, a repeated payment racing its reversal, a credit note applied while the ERP
//! re-sends it, and two transactions deadlocking.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;
use crate::payments::cents;

both_engines!(
    every_money_movement_at_once_keeps_the_books_whole,
    an_erp_resending_invoices_while_they_are_paid_loses_no_payment,
    concurrent_puts_of_a_new_invoice_create_it_once,
    a_payment_repeated_while_it_is_reversed_is_never_changed_after,
    a_credit_note_applied_while_the_erp_resends_it,
    a_transaction_aborted_by_a_deadlock_runs_again,
);

/// Sends a request from its own task; its status comes back with what was asked.
fn fire(app: &TestApp, method: Method, path: String, body: Value) -> tokio::task::JoinHandle<(String, u16, Value)> {
    let client = app.client.clone();
    let url = format!("{}{path}", app.address);
    let token = app.admin.clone();
    tokio::spawn(async move {
        let r = client
            .request(method.clone(), url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("sent");
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (format!("{method} {path}"), status, body)
    })
}

async fn every_money_movement_at_once_keeps_the_books_whole(app: TestApp) {
    let c = app.customer("C-1").await;
    let mut invoices = Vec::new();
    for i in 0..6 {
        invoices.push(
            app.invoice(&c, &format!("F-{i}"), "50.00", &format!("2026-0{}-01", i + 1))
                .await,
        );
    }
    let cn = app.credit_note(&c, "CN-1", "30.00").await;
    // Six payments of 20.00, applied oldest first: F-0, F-1 and part of F-2 are paid.
    let mut paid = Vec::new();
    for i in 0..6 {
        let p = app
            .post(
                "/v1/payments",
                &json!({"customer_id": c, "amount": "20.00", "reference": format!("p{i}")}),
            )
            .await
            .expect(201);
        paid.push(p.body);
    }

    let mut handles = Vec::new();
    for i in 0..8 {
        handles.push(fire(
            &app,
            Method::POST,
            "/v1/payments".into(),
            json!({"customer_id": c, "amount": "17.00", "reference": format!("new{i}")}),
        ));
    }
    for p in &paid[..3] {
        let id = p["id"].as_str().expect("id");
        handles.push(fire(
            &app,
            Method::POST,
            format!("/v1/payments/{id}/reverse"),
            json!({"reason": "bounced"}),
        ));
    }
    for p in &paid[3..] {
        let id = p["id"].as_str().expect("id");
        for a in p["allocations"].as_array().expect("allocations") {
            let aid = a["id"].as_str().expect("allocation id");
            handles.push(fire(
                &app,
                Method::DELETE,
                format!("/v1/payments/{id}/allocations/{aid}"),
                Value::Null,
            ));
        }
        handles.push(fire(
            &app,
            Method::POST,
            format!("/v1/payments/{id}/allocations"),
            json!({}),
        ));
    }
    handles.push(fire(
        &app,
        Method::POST,
        format!("/v1/invoices/{cn}/applications"),
        json!({}),
    ));
    handles.push(fire(
        &app,
        Method::POST,
        format!("/v1/invoices/{}/write-off", invoices[5]),
        json!({"reason": "small balance"}),
    ));
    handles.push(fire(
        &app,
        Method::PUT,
        "/v1/invoices/by-external-id/F-4".into(),
        json!({"customer_id": c, "number": "F-4", "amount": "55.00", "issue_date": "2026-01-01", "due_date": "2026-05-01"}),
    ));
    handles.push(fire(
        &app,
        Method::POST,
        format!("/v1/invoices/{}/cancel", invoices[3]),
        json!({"reason": "wrong customer"}),
    ));

    for h in handles {
        let (what, status, body) = h.await.expect("join");
        // Refusals are fine (the money moved elsewhere first); a 5xx is not, and neither is
        // a request the client would have to repeat (503).
        assert!(
            (200..300).contains(&status) || matches!(status, 409 | 412 | 422),
            "{what}: {status} {body}"
        );
    }

    // Every payment: its live allocations are what it says it has allocated.
    let mut applied_by_payments: HashMap<String, i64> = HashMap::new();
    let payments = app.get("/v1/payments?limit=500").await.expect(200).body;
    for p in payments["items"].as_array().expect("items") {
        let live: i64 = p["allocations"]
            .as_array()
            .expect("allocations")
            .iter()
            .filter(|a| a["released_at"].is_null())
            .map(|a| {
                *applied_by_payments
                    .entry(a["invoice_id"].as_str().unwrap_or("").to_string())
                    .or_default() += cents(&a["amount"]);
                cents(&a["amount"])
            })
            .sum();
        assert_eq!(live, cents(&p["allocated_amount"]), "{p}");
        assert!(live <= cents(&p["amount"]), "{p}");
        if p["status"] == "reversed" {
            assert_eq!(live, 0, "{p}");
        }
    }
    // Every invoice: what is neither open nor written off was paid, by payments or by the
    // credit note; and the credit note gave exactly what it no longer holds.
    let credit = app.get(&format!("/v1/invoices/{cn}")).await.expect(200).body;
    let credit_given = cents(&credit["amount"]) - cents(&credit["open_amount"]);
    let mut settled_by_credit = 0;
    for id in &invoices {
        let inv = app.get(&format!("/v1/invoices/{id}")).await.expect(200).body;
        let open = cents(&inv["open_amount"]);
        let by_payments = applied_by_payments.get(id).copied().unwrap_or(0);
        if inv["status"] == "cancelled" {
            // Only an invoice nothing was applied to can be cancelled.
            assert_eq!((open, by_payments), (0, 0), "{inv}");
            continue;
        }
        assert!(open >= 0, "{inv}");
        let settled = cents(&inv["amount"]) - cents(&inv["written_off_amount"]) - open;
        assert!(by_payments <= settled, "{inv}: {by_payments} from payments");
        settled_by_credit += settled - by_payments;
    }
    assert_eq!(settled_by_credit, credit_given, "{credit}");
}

/// The ERP re-sends thirty invoices with a corrected amount (50.00 → 55.00) while each is
/// being paid 50.00: whichever lands first, each invoice ends with 5.00 open. An upsert that
/// decided the new open amount on a row read before the payment committed would leave
/// 55.00 open and lose the payment from the balance.
async fn an_erp_resending_invoices_while_they_are_paid_loses_no_payment(app: TestApp) {
    let c = app.customer("C-1").await;
    let mut invoices = Vec::new();
    for i in 0..30 {
        invoices.push(app.invoice(&c, &format!("F-{i}"), "50.00", "2026-03-01").await);
    }
    let mut handles = Vec::new();
    for (i, id) in invoices.iter().enumerate() {
        handles.push(fire(
            &app,
            Method::PUT,
            format!("/v1/invoices/by-external-id/F-{i}"),
            json!({"customer_id": c, "number": format!("F-{i}"), "amount": "55.00",
                   "issue_date": "2026-01-01", "due_date": "2026-03-01"}),
        ));
        handles.push(fire(
            &app,
            Method::POST,
            "/v1/payments".into(),
            json!({"customer_id": c, "amount": "50.00", "allocations": [{"invoice_id": id, "amount": "50.00"}]}),
        ));
    }
    for h in handles {
        let (what, status, body) = h.await.expect("join");
        assert!((200..300).contains(&status), "{what}: {status} {body}");
    }
    for id in &invoices {
        let inv = app.get(&format!("/v1/invoices/{id}")).await.expect(200).body;
        assert_eq!(
            (
                inv["amount"].as_str(),
                inv["open_amount"].as_str(),
                inv["status"].as_str()
            ),
            (Some("55.00"), Some("5.00"), Some("partially_paid")),
            "{inv}"
        );
    }
}

/// An ERP that repeats a timed-out PUT while the first is still running: every copy
/// succeeds, one creates the invoice and the others find it as sent.
async fn concurrent_puts_of_a_new_invoice_create_it_once(app: TestApp) {
    let c = app.customer("C-1").await;
    for round in 0..5 {
        let key = format!("F-{round}");
        let body = json!({"customer_id": c, "number": key, "amount": "80.00",
                          "issue_date": "2026-01-01", "due_date": "2026-03-01"});
        let handles: Vec<_> = (0..6)
            .map(|_| {
                fire(
                    &app,
                    Method::PUT,
                    format!("/v1/invoices/by-external-id/{key}"),
                    body.clone(),
                )
            })
            .collect();
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for h in handles {
            let (what, status, body) = h.await.expect("join");
            assert!(matches!(status, 200 | 201), "{what}: {status} {body}");
            created += usize::from(status == 201);
            ids.insert(body["id"].as_str().unwrap_or("").to_string());
        }
        assert_eq!((created, ids.len()), (1, 1), "round {round}: {ids:?}");
    }
    let listed = app
        .get(&format!("/v1/invoices?customer_id={c}&limit=100"))
        .await
        .expect(200)
        .body;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(5), "{listed}");
}

/// Twenty payments, each repeated by the ERP with a corrected reference while a user
/// reverses it. A reversed payment cannot change: the repeat either lands first (and the
/// reversal follows) or is refused with 409; it never answers 200 with a payment that is
/// already reversed.
async fn a_payment_repeated_while_it_is_reversed_is_never_changed_after(app: TestApp) {
    let c = app.customer("C-1").await;
    app.invoice(&c, "F-1", "10000.00", "2026-03-01").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let p = app
            .put(
                &format!("/v1/payments/by-external-id/P-{i}"),
                &json!({"customer_id": c, "amount": "10.00", "reference": "first"}),
            )
            .await
            .expect(201);
        ids.push(p.body["id"].as_str().expect("id").to_string());
    }
    let mut handles = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        handles.push(fire(
            &app,
            Method::PUT,
            format!("/v1/payments/by-external-id/P-{i}"),
            json!({"customer_id": c, "amount": "10.00", "reference": "corrected"}),
        ));
        handles.push(fire(
            &app,
            Method::POST,
            format!("/v1/payments/{id}/reverse"),
            json!({"reason": "bounced"}),
        ));
    }
    for h in handles {
        let (what, status, body) = h.await.expect("join");
        if what.starts_with("PUT") {
            assert!(matches!(status, 200 | 409), "{what}: {status} {body}");
            if status == 200 {
                assert_eq!(body["status"], "applied", "{what} changed a reversed payment: {body}");
            }
        } else {
            assert_eq!(status, 200, "{what}: {body}");
        }
    }
}

/// A credit note applied while the ERP re-sends it together with the invoices it pays.
async fn a_credit_note_applied_while_the_erp_resends_it(app: TestApp) {
    let c = app.customer("C-1").await;
    let mut handles = Vec::new();
    for round in 0..10 {
        let f = app.invoice(&c, &format!("F-{round}"), "50.00", "2026-03-01").await;
        let cn = app
            .post(
                "/v1/invoices",
                &json!({"customer_id": c, "external_id": format!("CN-{round}"), "kind": "credit_note",
                        "number": format!("CN-{round}"), "amount": "20.00", "issue_date": "2026-02-01"}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("id")
            .to_string();
        handles.push(fire(
            &app,
            Method::POST,
            format!("/v1/invoices/{cn}/applications"),
            json!({"allocations": [{"invoice_id": f, "amount": "20.00"}]}),
        ));
        handles.push(fire(
            &app,
            Method::POST,
            "/v1/invoices/batch".into(),
            json!({"items": [
                {"external_id": format!("F-{round}"), "customer_id": c, "number": format!("F-{round}"), "amount": "50.00",
                 "issue_date": "2026-01-01", "due_date": "2026-03-02"},
                {"external_id": format!("CN-{round}"), "customer_id": c, "kind": "credit_note", "number": format!("CN-{round}"),
                 "amount": "20.00", "issue_date": "2026-02-02"}]}),
        ));
    }
    for h in handles {
        let (what, status, body) = h.await.expect("join");
        assert!((200..300).contains(&status), "{what}: {status} {body}");
        if what.contains("batch") {
            let results = body["results"].as_array().cloned().unwrap_or_default();
            assert!(
                results.len() == 2
                    && results
                        .iter()
                        .all(|r| matches!(r["status"].as_str(), Some("updated" | "unchanged"))),
                "{what}: {body}"
            );
        }
    }
}

/// Two transactions that lock the same two rows in opposite orders: PostgreSQL aborts one
/// to break the deadlock, and `write_transaction` runs it again, so both succeed. (On
/// SQLite write transactions take turns and never deadlock.)
async fn a_transaction_aborted_by_a_deadlock_runs_again(app: TestApp) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Barrier};

    use diesel::RunQueryDsl;
    use recaudo::db::DbConnection;

    app.customer("C-1").await;
    app.customer("C-2").await;
    let is_pg = matches!(app.engine, crate::helpers::Engine::Postgres);
    let barrier = Arc::new(Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let lock = |c: &mut DbConnection, key: &str| -> Result<(), diesel::result::Error> {
        if let DbConnection::Pg(pg) = c {
            diesel::sql_query(format!(
                "SELECT id FROM customers WHERE external_id = '{key}' FOR UPDATE"
            ))
            .execute(pg)?;
        }
        Ok(())
    };
    let workers: Vec<_> = [("C-1", "C-2"), ("C-2", "C-1")]
        .into_iter()
        .map(|(first, second)| {
            let (pool, barrier, attempts) = (app.state.pool.clone(), barrier.clone(), attempts.clone());
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().expect("connection");
                let mut mine = 0;
                recaudo::db::write_transaction(&mut conn, |c| {
                    mine += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    lock(c, first)?;
                    if is_pg && mine == 1 {
                        barrier.wait();
                    }
                    lock(c, second)
                })
            })
        })
        .collect();
    for w in workers {
        w.await.expect("join").expect("both transactions commit");
    }
    let attempts = attempts.load(Ordering::SeqCst);
    if is_pg {
        assert!(attempts >= 3, "one of the two ran again: {attempts} attempts");
    } else {
        assert_eq!(attempts, 2);
    }
}
