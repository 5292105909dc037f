-- Foundation: organisations, API clients, customers, invoices.
-- Money is BIGINT minor units next to an ISO 4217 code; instants are UTC TIMESTAMP.
CREATE TABLE organizations (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE api_clients (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX api_clients_org ON api_clients (org_id, id);

CREATE TABLE customers (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    external_id TEXT,
    name TEXT NOT NULL,
    legal_name TEXT,
    tax_id TEXT,
    country TEXT,
    language TEXT NOT NULL,
    currency TEXT NOT NULL,
    payment_terms_days INTEGER NOT NULL,
    segment TEXT,
    collector TEXT,
    sales_rep TEXT,
    credit_limit_minor BIGINT CHECK (credit_limit_minor >= 0),
    dunning_paused_until DATE,
    dunning_pause_reason TEXT,
    contacts TEXT NOT NULL DEFAULT '[]',
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX customers_org_external ON customers (org_id, external_id);
CREATE INDEX customers_org_id ON customers (org_id, id);
CREATE INDEX customers_org_updated ON customers (org_id, updated_at);

CREATE TABLE invoices (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    external_id TEXT,
    kind TEXT NOT NULL,
    number TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    tax_minor BIGINT NOT NULL DEFAULT 0 CHECK (tax_minor >= 0),
    open_minor BIGINT NOT NULL,
    issue_date DATE NOT NULL,
    due_date DATE NOT NULL,
    purchase_order TEXT,
    delivered_on DATE,
    status TEXT NOT NULL,
    status_reason TEXT,
    paid_on DATE,
    written_off_minor BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (open_minor >= 0 AND open_minor <= amount_minor)
);
CREATE UNIQUE INDEX invoices_org_external ON invoices (org_id, external_id);
CREATE INDEX invoices_org_id ON invoices (org_id, id);
CREATE INDEX invoices_customer_due ON invoices (customer_id, due_date);
CREATE INDEX invoices_org_open_due ON invoices (org_id, due_date) WHERE open_minor > 0;
CREATE INDEX invoices_org_updated ON invoices (org_id, updated_at);
CREATE INDEX invoices_org_number ON invoices (org_id, number);
