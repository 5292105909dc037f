-- Back to the tables as migration 000006/000011 made them (key in a separate index).

CREATE TABLE credit_refresh_queue_keyed (
    customer_id BIGINT PRIMARY KEY,
    org_id BIGINT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 1,
    queued_at TIMESTAMP NOT NULL
);
INSERT INTO credit_refresh_queue_keyed (customer_id, org_id, seq, queued_at)
    SELECT customer_id, org_id, seq, queued_at FROM credit_refresh_queue;
DROP TABLE credit_refresh_queue;
ALTER TABLE credit_refresh_queue_keyed RENAME TO credit_refresh_queue;
CREATE INDEX credit_refresh_queue_org ON credit_refresh_queue (org_id, queued_at);

CREATE TABLE customer_credit_keyed (
    customer_id BIGINT PRIMARY KEY REFERENCES customers (id),
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    -- Oldest due date of an open, not wholly disputed invoice or debit note.
    oldest_due_date DATE,
    -- Dates of broken promises in the last year (JSON array of dates).
    broken_promise_dates TEXT NOT NULL DEFAULT '[]',
    plan_defaulted_on DATE,
    hold_reasons TEXT NOT NULL DEFAULT '[]',
    held_since TIMESTAMP,
    release_until DATE,
    release_reason TEXT,
    released_by TEXT,
    risk_signals TEXT NOT NULL DEFAULT '[]',
    risk_computed_on DATE,
    updated_at TIMESTAMP NOT NULL,
    strategy_hold_since DATE
);
INSERT INTO customer_credit_keyed (customer_id, org_id, oldest_due_date, broken_promise_dates,
        plan_defaulted_on, hold_reasons, held_since, release_until, release_reason, released_by,
        risk_signals, risk_computed_on, updated_at, strategy_hold_since)
    SELECT customer_id, org_id, oldest_due_date, broken_promise_dates, plan_defaulted_on,
        hold_reasons, held_since, release_until, release_reason, released_by, risk_signals,
        risk_computed_on, updated_at, strategy_hold_since
    FROM customer_credit;
DROP TABLE customer_credit;
ALTER TABLE customer_credit_keyed RENAME TO customer_credit;
CREATE INDEX customer_credit_org ON customer_credit (org_id, customer_id);
