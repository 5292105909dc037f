-- E-mail delivery: the outbox is the `actions` table itself (email actions in status
-- `queued`). A delivery worker claims due messages (`sending`, with a lease and a claim
-- token so that several instances never send one message at once), sends them by SMTP and
-- records the outcome: `sent` with the time and Message-ID, back to `queued` with the next
-- attempt's time after a transient failure, or `failed` with the reason.
ALTER TABLE actions ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE actions ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE actions ADD COLUMN claim_token TEXT;
ALTER TABLE actions ADD COLUMN sent_at TIMESTAMP;
ALTER TABLE actions ADD COLUMN message_id TEXT;
-- The worker's scan: only e-mails waiting for delivery or in flight are indexed.
CREATE INDEX actions_outbox ON actions (status, id) WHERE action = 'email' AND status IN ('queued', 'sending');
-- Bounce reports name the message by its Message-ID.
CREATE INDEX actions_message_id ON actions (org_id, message_id) WHERE message_id IS NOT NULL;
