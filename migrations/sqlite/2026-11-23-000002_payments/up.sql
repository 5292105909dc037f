-- Payments, allocations (cash and credit notes applied to invoices), idempotency keys,
-- and the event log later features and webhooks read.
CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    external_id TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    received_on DATE NOT NULL,
    method TEXT NOT NULL,
    reference TEXT,
    allocated_minor BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    reversed_at TIMESTAMP,
    reversal_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (allocated_minor >= 0 AND allocated_minor <= amount_minor)
);
CREATE UNIQUE INDEX payments_org_external ON payments (org_id, external_id);
CREATE INDEX payments_org_id ON payments (org_id, id);
CREATE INDEX payments_customer_received ON payments (customer_id, received_on);
CREATE INDEX payments_org_updated ON payments (org_id, updated_at);
CREATE INDEX payments_org_unapplied ON payments (org_id, customer_id) WHERE allocated_minor < amount_minor AND status <> 'reversed';

-- One application of money to an invoice: from a payment or from a credit note. Released
-- allocations (unapplied, or their payment reversed) are kept with the release time.
CREATE TABLE allocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    payment_id BIGINT REFERENCES payments (id),
    credit_note_id BIGINT REFERENCES invoices (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    rule TEXT NOT NULL,
    applied_on DATE NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    release_reason TEXT,
    CHECK ((payment_id IS NULL) <> (credit_note_id IS NULL))
);
CREATE INDEX allocations_payment ON allocations (payment_id);
CREATE INDEX allocations_credit_note ON allocations (credit_note_id);
CREATE INDEX allocations_invoice ON allocations (invoice_id);

CREATE TABLE idempotency_keys (
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    customer_id BIGINT REFERENCES customers (id),
    payload TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_org_id ON events (org_id, id);
CREATE INDEX events_customer ON events (customer_id, kind);
