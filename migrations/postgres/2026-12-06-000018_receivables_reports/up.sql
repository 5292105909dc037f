-- Analytics (reports::receivables, reports::collection_effectiveness).
--
-- The day an invoice was written off, so that receivables can be rebuilt as of a past
-- date: the ledger dates payments and credit notes (allocations' applied_on and
-- released_at), and this dates the write-off. Invoices written off before this column
-- existed take the day of their last change, which for a written-off invoice is the
-- write-off itself unless an ERP re-sent it since.
ALTER TABLE invoices ADD COLUMN written_off_on DATE;
UPDATE invoices SET written_off_on = CAST(updated_at AS DATE) WHERE written_off_minor > 0;

-- Performed actions by day, for the effectiveness report. Partial: the actions a run
-- creates are not performed yet and add no entry.
CREATE INDEX actions_performed ON actions (org_id, completed_at) WHERE completed_at IS NOT NULL;
