-- PostgreSQL only. The links between a collection action and the invoices it covers lose
-- their two foreign keys. The collection run writes one link per invoice it moves up a
-- step (about 800 000 at 1M invoices), and each foreign-key check is a `SELECT … FOR KEY
-- SHARE` of the referenced row: the invoice's lock is a write to the invoice's heap page,
-- so every chunk of the run dirtied pages all over the invoices table (larger than the
-- buffer cache at 1M), and each check cost about 9 µs of CPU besides.
-- The service is the only writer of these rows and writes them in the transaction that
-- read the invoice and inserted the action; invoices and actions are never deleted.
-- SQLite keeps its foreign keys: there a check is an index probe that writes nothing.
ALTER TABLE action_invoices
    DROP CONSTRAINT action_invoices_action_id_fkey,
    DROP CONSTRAINT action_invoices_invoice_id_fkey;
