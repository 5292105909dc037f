-- Credit applications, credit control and risk signals (P3, P11, P13).

-- The customer's credit status, risk class and automatic flags. `risk_score` is 0 (no
-- risk seen) to 100; it is derived data, so changing it does not bump `version`.
ALTER TABLE customers ADD COLUMN credit_status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE customers ADD COLUMN risk_class TEXT;
ALTER TABLE customers ADD COLUMN risk_score INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN flag_broken_promise BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN flag_over_limit BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN flag_at_risk BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN flag_in_dispute BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX customers_org_risk ON customers (org_id, risk_score, id);
CREATE INDEX customers_org_risk_class ON customers (org_id, risk_class, id);

-- The credit snapshot of a customer: what the hold rules need, kept up to date whenever
-- money moves, so a credit check is a few single-row reads.
CREATE TABLE customer_credit (
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
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX customer_credit_org ON customer_credit (org_id, customer_id);

-- Exposure per customer and currency: open receivables, unapplied cash, open orders.
CREATE TABLE credit_exposures (
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    currency TEXT NOT NULL,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    open_receivables_minor BIGINT NOT NULL DEFAULT 0,
    unapplied_minor BIGINT NOT NULL DEFAULT 0,
    open_orders_minor BIGINT NOT NULL DEFAULT 0 CHECK (open_orders_minor >= 0),
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, currency)
);

-- Credit applications (P11). References, financials and attachments are JSON text; the
-- decision (limit, terms, reviewer, reason, time) is JSON text beside `next_review_on`.
CREATE TABLE credit_applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT REFERENCES customers (id),
    status TEXT NOT NULL,
    legal_name TEXT,
    tax_id TEXT,
    country TEXT,
    address TEXT,
    years_in_business INTEGER,
    company_size TEXT,
    currency TEXT NOT NULL,
    requested_limit_minor BIGINT CHECK (requested_limit_minor >= 0),
    requested_terms_days INTEGER,
    trade_references TEXT NOT NULL DEFAULT '[]',
    bank_references TEXT NOT NULL DEFAULT '[]',
    financials TEXT,
    attachments TEXT NOT NULL DEFAULT '[]',
    notes TEXT,
    score INTEGER,
    risk_class TEXT,
    recommended_limit_minor BIGINT,
    recommended_terms_days INTEGER,
    scorecard TEXT,
    submitted_at TIMESTAMP,
    decision TEXT,
    next_review_on DATE,
    created_by TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX credit_applications_org_id ON credit_applications (org_id, id);
CREATE INDEX credit_applications_customer ON credit_applications (customer_id);
CREATE INDEX credit_applications_review ON credit_applications (org_id, next_review_on);

-- Every change of a customer's credit limit, terms or risk class by a decision.
CREATE TABLE credit_limit_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    application_id BIGINT REFERENCES credit_applications (id),
    currency TEXT NOT NULL,
    previous_limit_minor BIGINT,
    new_limit_minor BIGINT,
    previous_terms_days INTEGER NOT NULL,
    new_terms_days INTEGER NOT NULL,
    previous_risk_class TEXT,
    new_risk_class TEXT,
    changed_by TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX credit_limit_history_customer ON credit_limit_history (customer_id, id);

-- Risk signals read disputes per customer and period.
CREATE INDEX disputes_customer_raised ON disputes (customer_id, raised_on);
