-- Customers whose credit snapshot, hold status and risk signals must be recomputed because
-- money or invoices moved for them. Writers (payments, invoice batches, disputes, …) add a
-- row in their own transaction, or bump `seq` of the row that is there; a background
-- worker recomputes the queued customers in batches of up to 1 000 and then deletes each
-- row only if its `seq` is still the one it read (a posting that arrived meanwhile keeps
-- its row queued), and every read of one customer's credit recomputes that customer first
-- if it is queued. A work queue, not a record: no foreign keys (they would lock the
-- customer and organisation rows of every writer), and a row exists only while a
-- recomputation is due.
CREATE TABLE credit_refresh_queue (
    customer_id BIGINT PRIMARY KEY,
    org_id BIGINT NOT NULL,
    seq BIGINT NOT NULL DEFAULT 1,
    queued_at TIMESTAMP NOT NULL
);
CREATE INDEX credit_refresh_queue_org ON credit_refresh_queue (org_id, queued_at);
