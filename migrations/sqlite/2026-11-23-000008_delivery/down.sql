DROP INDEX actions_message_id;
DROP INDEX actions_outbox;
ALTER TABLE actions DROP COLUMN message_id;
ALTER TABLE actions DROP COLUMN sent_at;
ALTER TABLE actions DROP COLUMN claim_token;
ALTER TABLE actions DROP COLUMN lease_until;
ALTER TABLE actions DROP COLUMN next_attempt_at;
