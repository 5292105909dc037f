DROP INDEX actions_performed;
ALTER TABLE invoices DROP COLUMN written_off_on;
