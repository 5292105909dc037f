-- SQLite only. A column declared `BIGINT PRIMARY KEY` is not the table's rowid (only
-- `INTEGER PRIMARY KEY` is): SQLite keeps the rows in a rowid B-tree and the key in a
-- separate unique index, so every write by customer touched two B-trees at two unrelated
-- places. Both tables below are written once per customer in every invoice batch (the
-- queue) and every credit recomputation (the snapshot); keyed by their rowid they are one
-- B-tree each. Same columns, same rows; PostgreSQL has no rowid and is unchanged.

CREATE TABLE credit_refresh_queue_rowid (
    customer_id INTEGER PRIMARY KEY,
    org_id BIGINT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 1,
    queued_at TIMESTAMP NOT NULL
);
INSERT INTO credit_refresh_queue_rowid (customer_id, org_id, seq, queued_at)
    SELECT customer_id, org_id, seq, queued_at FROM credit_refresh_queue;
DROP TABLE credit_refresh_queue;
ALTER TABLE credit_refresh_queue_rowid RENAME TO credit_refresh_queue;
CREATE INDEX credit_refresh_queue_org ON credit_refresh_queue (org_id, queued_at);

CREATE TABLE customer_credit_rowid (
    customer_id INTEGER PRIMARY KEY REFERENCES customers (id),
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
INSERT INTO customer_credit_rowid (customer_id, org_id, oldest_due_date, broken_promise_dates,
        plan_defaulted_on, hold_reasons, held_since, release_until, release_reason, released_by,
        risk_signals, risk_computed_on, updated_at, strategy_hold_since)
    SELECT customer_id, org_id, oldest_due_date, broken_promise_dates, plan_defaulted_on,
        hold_reasons, held_since, release_until, release_reason, released_by, risk_signals,
        risk_computed_on, updated_at, strategy_hold_since
    FROM customer_credit;
DROP TABLE customer_credit;
ALTER TABLE customer_credit_rowid RENAME TO customer_credit;
CREATE INDEX customer_credit_org ON customer_credit (org_id, customer_id);
