-- Each invoice's place on the dunning ladder moves out of `invoices` into a narrow table of
-- its own, with a row only for invoices the collection run has acted on (no row: level 0).
-- The run updates these three values for most open invoices every time it moves them up a
-- step. In `invoices` each such update wrote a new version of a wide row and, when its
-- page had no room (a freshly loaded table), an entry in each of the seven invoice indexes;
-- and at 1M invoices the table is larger than PostgreSQL's buffer cache, so every chunk of
-- the run read, dirtied and wrote back pages all over it. Here a row is a few dozen bytes
-- with one index.
-- No foreign key to `invoices`: its check would lock the invoice row (a write to the
-- invoice's page) on every update, which is what this table is for avoiding; invoices are
-- never deleted, and rows are written only for invoices the run has just read.
CREATE TABLE invoice_dunning (
    invoice_id BIGINT PRIMARY KEY,
    level INTEGER NOT NULL,
    last_dunned_on DATE,
    clock_start DATE
);
INSERT INTO invoice_dunning (invoice_id, level, last_dunned_on, clock_start)
SELECT id, dunning_level, last_dunned_on, clock_start FROM invoices
WHERE dunning_level <> 0 OR last_dunned_on IS NOT NULL OR clock_start IS NOT NULL;
ALTER TABLE invoices DROP COLUMN dunning_level, DROP COLUMN last_dunned_on, DROP COLUMN clock_start;
