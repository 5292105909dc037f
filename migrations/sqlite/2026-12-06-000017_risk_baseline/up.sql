-- The day a customer's risk was first assessed with some history. Signals that already
-- fire on that day are the baseline, not a change: a book imported into Recaudo (or a new
-- customer's first invoices) creates no proactive check-in tasks; a signal that starts
-- firing on a later day does (service::credit, `risk::check_in_signals`). Customers
-- assessed before this column existed keep comparing from their last assessment.
ALTER TABLE customer_credit ADD COLUMN risk_baseline_on DATE;
UPDATE customer_credit SET risk_baseline_on = risk_computed_on WHERE risk_computed_on IS NOT NULL;
