-- Promises to pay, payment plans, disputes, collector tasks and risk facts.
ALTER TABLE invoices ADD COLUMN disputed_minor BIGINT NOT NULL DEFAULT 0;

CREATE TABLE promises (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    promised_date DATE NOT NULL,
    -- Payments received from created_on to window_end (promised date + tolerance) count.
    created_on DATE NOT NULL,
    window_end DATE NOT NULL,
    channel TEXT NOT NULL,
    contact_name TEXT,
    taken_by TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL,
    paid_minor BIGINT NOT NULL DEFAULT 0,
    evaluated_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX promises_org_id ON promises (org_id, id);
CREATE INDEX promises_customer ON promises (customer_id, status);
CREATE INDEX promises_org_open ON promises (org_id, window_end) WHERE status = 'open';

CREATE TABLE promise_invoices (
    promise_id BIGINT NOT NULL REFERENCES promises (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    PRIMARY KEY (promise_id, invoice_id)
);
CREATE INDEX promise_invoices_invoice ON promise_invoices (invoice_id);

CREATE TABLE payment_plans (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    currency TEXT NOT NULL,
    total_minor BIGINT NOT NULL CHECK (total_minor > 0),
    frequency TEXT,
    grace_days INTEGER NOT NULL,
    created_on DATE NOT NULL,
    status TEXT NOT NULL,
    paid_minor BIGINT NOT NULL DEFAULT 0,
    defaulted_on DATE,
    cancel_reason TEXT,
    created_by TEXT NOT NULL,
    evaluated_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_plans_org_id ON payment_plans (org_id, id);
CREATE INDEX payment_plans_customer ON payment_plans (customer_id, status);

CREATE TABLE plan_invoices (
    plan_id BIGINT NOT NULL REFERENCES payment_plans (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    PRIMARY KEY (plan_id, invoice_id)
);
CREATE INDEX plan_invoices_invoice ON plan_invoices (invoice_id);

CREATE TABLE plan_instalments (
    id BIGSERIAL PRIMARY KEY,
    plan_id BIGINT NOT NULL REFERENCES payment_plans (id),
    seq INTEGER NOT NULL,
    due_date DATE NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    paid_minor BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    UNIQUE (plan_id, seq)
);

CREATE TABLE disputes (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    reason TEXT NOT NULL,
    description TEXT,
    raised_via TEXT,
    raised_on DATE NOT NULL,
    owner_department TEXT NOT NULL,
    assignee TEXT,
    due_by DATE,
    status TEXT NOT NULL,
    resolution TEXT,
    resolved_on DATE,
    credit_note_id BIGINT REFERENCES invoices (id),
    created_by TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX disputes_org_id ON disputes (org_id, id);
CREATE INDEX disputes_invoice ON disputes (invoice_id, status);
CREATE INDEX disputes_org_raised ON disputes (org_id, raised_on);

CREATE TABLE dispute_comments (
    id BIGSERIAL PRIMARY KEY,
    dispute_id BIGINT NOT NULL REFERENCES disputes (id),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX dispute_comments_dispute ON dispute_comments (dispute_id, id);

-- Work for collectors: follow-ups after broken promises, check-ins, escalations.
CREATE TABLE tasks (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    priority TEXT NOT NULL,
    assignee TEXT,
    title TEXT NOT NULL,
    due_on DATE NOT NULL,
    status TEXT NOT NULL,
    source_id TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tasks_org_id ON tasks (org_id, id);
CREATE INDEX tasks_assignee ON tasks (org_id, assignee, status);
CREATE UNIQUE INDEX tasks_source ON tasks (org_id, kind, source_id);

-- Facts that feed risk signals: broken promises, reversed payments, defaulted plans.
CREATE TABLE risk_facts (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    occurred_on DATE NOT NULL,
    amount_minor BIGINT,
    currency TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX risk_facts_customer ON risk_facts (customer_id, kind, occurred_on);
CREATE UNIQUE INDEX risk_facts_subject ON risk_facts (org_id, kind, subject_id);
