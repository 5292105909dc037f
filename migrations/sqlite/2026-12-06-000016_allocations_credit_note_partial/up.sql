-- Allocations of payments (nearly all of them) have no credit note: the index on
-- `credit_note_id` held a NULL entry for each, which every payment allocation paid for on
-- insert and nothing ever reads (every query on it asks for a credit note's allocations).
DROP INDEX allocations_credit_note;
CREATE INDEX allocations_credit_note ON allocations (credit_note_id) WHERE credit_note_id IS NOT NULL;
