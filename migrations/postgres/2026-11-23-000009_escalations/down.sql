DROP TABLE escalation_transitions;
DROP TABLE escalation_invoices;
DROP TABLE escalations;
ALTER TABLE customer_credit DROP COLUMN strategy_hold_since;
ALTER TABLE customers DROP COLUMN flag_legal;
ALTER TABLE customers DROP COLUMN flag_with_agency;
