-- Escalations (P8, P9, P15, issue 6): credit holds placed by a strategy step, agency
-- placements, law-firm letters, small-claims filings and repossession offers, each with
-- its own status, the invoices it covers, and its history of transitions. While an agency
-- placement, a legal case or a repossession offer is open, its invoices leave normal
-- dunning; an active credit hold puts the customer's credit on hold.

-- Flags derived from open escalations (P3), like the other flags of migration 000006.
ALTER TABLE customers ADD COLUMN flag_with_agency BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE customers ADD COLUMN flag_legal BOOLEAN NOT NULL DEFAULT FALSE;
-- The opening date of the customer's oldest active credit-hold escalation, so a credit
-- check reads it from the snapshot instead of querying escalations.
ALTER TABLE customer_credit ADD COLUMN strategy_hold_since DATE;

CREATE TABLE escalations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id BIGINT NOT NULL REFERENCES organizations (id),
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    -- credit_hold, agency_placement, law_firm_letter, small_claims, repossession_offer
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    -- Derived from kind and status (domain::escalation): open escalations exclude their
    -- invoices from dunning and set the customer's flags.
    is_open BOOLEAN NOT NULL,
    currency TEXT NOT NULL,
    -- Money recovered through the agency or the legal case, and the agency's commission.
    recovered_minor BIGINT NOT NULL DEFAULT 0 CHECK (recovered_minor >= 0),
    commission_minor BIGINT NOT NULL DEFAULT 0 CHECK (commission_minor >= 0),
    -- The collection-run action that opened it (none when opened by hand).
    action_id BIGINT REFERENCES actions (id),
    opened_on DATE NOT NULL,
    agency TEXT,
    agency_reference TEXT,
    placed_on DATE,
    law_firm TEXT,
    court TEXT,
    filing_reference TEXT,
    filed_on DATE,
    judgment_on DATE,
    closed_on DATE,
    reason TEXT,
    notes TEXT,
    created_by TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX escalations_org ON escalations (org_id, id);
CREATE INDEX escalations_org_updated ON escalations (org_id, updated_at);
CREATE INDEX escalations_customer_open ON escalations (customer_id, kind) WHERE is_open = TRUE;
-- One escalation per run action and currency: approving twice creates nothing new.
CREATE UNIQUE INDEX escalations_action ON escalations (action_id, currency) WHERE action_id IS NOT NULL;

CREATE TABLE escalation_invoices (
    escalation_id BIGINT NOT NULL REFERENCES escalations (id),
    invoice_id BIGINT NOT NULL REFERENCES invoices (id),
    -- The invoice's collectable amount when it was escalated; the escalation's amount is
    -- the sum over its invoices.
    amount_minor BIGINT NOT NULL,
    PRIMARY KEY (escalation_id, invoice_id)
);
-- The collection engine's exclusions for a page of invoices.
CREATE INDEX escalation_invoices_invoice ON escalation_invoices (invoice_id);

CREATE TABLE escalation_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    escalation_id BIGINT NOT NULL REFERENCES escalations (id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    on_date DATE NOT NULL,
    reason TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX escalation_transitions_escalation ON escalation_transitions (escalation_id, id);
