-- Collection strategies (versioned), templates, collection runs and the actions they plan,
-- the contact log, and each invoice's place on the dunning ladder.
ALTER TABLE invoices ADD COLUMN dunning_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN last_dunned_on DATE;
-- Set when an invoice is re-sent (not delivered, not received, in spam): offsets count
-- from here when it is later than the due date (P16, P18).
ALTER TABLE invoices ADD COLUMN clock_start DATE;

CREATE TABLE strategies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX strategies_org ON strategies (org_id, id);

CREATE TABLE strategy_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id BIGINT NOT NULL REFERENCES strategies (id),
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    rules TEXT NOT NULL,
    steps TEXT NOT NULL,
    status TEXT NOT NULL,
    published_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (strategy_id, version)
);
CREATE INDEX strategy_versions_org ON strategy_versions (org_id, status);

CREATE TABLE strategy_acknowledgements (
    version_id BIGINT NOT NULL REFERENCES strategy_versions (id),
    subject TEXT NOT NULL,
    acknowledged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (version_id, subject)
);

CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    key TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, key, language)
);

CREATE TABLE collection_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    as_of DATE NOT NULL,
    dry_run BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    customers_examined BIGINT NOT NULL DEFAULT 0,
    invoices_examined BIGINT NOT NULL DEFAULT 0,
    actions_created BIGINT NOT NULL DEFAULT 0,
    summary TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL
);
CREATE INDEX collection_runs_org ON collection_runs (org_id, id);
-- The lease: one running run per organisation, and one completed real run per date.
CREATE UNIQUE INDEX collection_runs_running ON collection_runs (org_id) WHERE status = 'running';
CREATE UNIQUE INDEX collection_runs_date ON collection_runs (org_id, as_of) WHERE dry_run = FALSE AND status = 'completed';

CREATE TABLE actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    run_id BIGINT REFERENCES collection_runs (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    strategy_version_id BIGINT REFERENCES strategy_versions (id),
    step_level INTEGER NOT NULL,
    step_key TEXT NOT NULL,
    action TEXT NOT NULL,
    tone TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    requires_approval BOOLEAN NOT NULL,
    scheduled_on DATE NOT NULL,
    language TEXT NOT NULL,
    recipient TEXT,
    subject TEXT,
    body_text TEXT,
    body_html TEXT,
    approved_by TEXT,
    completed_at TIMESTAMP,
    outcome TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX actions_org ON actions (org_id, id);
CREATE INDEX actions_run ON actions (run_id, customer_id);
CREATE INDEX actions_customer ON actions (customer_id, status);
CREATE INDEX actions_assignee ON actions (org_id, assignee, status);

CREATE TABLE action_invoices (
    action_id BIGINT NOT NULL REFERENCES actions (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    step_level INTEGER NOT NULL,
    PRIMARY KEY (action_id, invoice_id)
);
CREATE INDEX action_invoices_invoice ON action_invoices (invoice_id);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    action_id BIGINT REFERENCES actions (id),
    invoice_ids TEXT NOT NULL DEFAULT '[]',
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    outcome TEXT NOT NULL,
    notes TEXT,
    next_action_on DATE,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX activities_customer ON activities (customer_id, id);
