DROP INDEX allocations_credit_note;
CREATE INDEX allocations_credit_note ON allocations (credit_note_id);
