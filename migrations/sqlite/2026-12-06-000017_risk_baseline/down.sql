ALTER TABLE customer_credit DROP COLUMN risk_baseline_on;
