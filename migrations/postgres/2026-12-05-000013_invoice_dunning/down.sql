ALTER TABLE invoices ADD COLUMN dunning_level INTEGER NOT NULL DEFAULT 0, ADD COLUMN last_dunned_on DATE, ADD COLUMN clock_start DATE;
UPDATE invoices SET dunning_level = d.level, last_dunned_on = d.last_dunned_on, clock_start = d.clock_start
FROM invoice_dunning d WHERE d.invoice_id = invoices.id;
DROP TABLE invoice_dunning;
