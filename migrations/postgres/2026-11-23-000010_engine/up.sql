-- The collection engine, continued: overdue payment-plan instalments are reminded once
-- (the day is kept on the instalment, and the action remembers which instalments it
-- chases), and a directory of the organisation's users (collectors and their colleagues),
-- keyed by the subject of their tokens, gives letters and worklists a name, e-mail and phone.
ALTER TABLE plan_instalments ADD COLUMN reminded_on DATE;

CREATE TABLE action_instalments (
    action_id BIGINT NOT NULL REFERENCES actions (id),
    instalment_id BIGINT NOT NULL REFERENCES plan_instalments (id),
    PRIMARY KEY (action_id, instalment_id)
);
CREATE INDEX action_instalments_instalment ON action_instalments (instalment_id);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    subject TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    team TEXT,
    language TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, subject)
);
CREATE INDEX users_org ON users (org_id, id);
CREATE INDEX users_org_updated ON users (org_id, updated_at);
