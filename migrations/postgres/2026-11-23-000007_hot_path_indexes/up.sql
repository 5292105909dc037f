-- Indexes for reads on the payment-posting path that filter by customer only (the credit
-- and risk recomputation): unapplied cash, and money applied to a customer's invoices.
CREATE INDEX payments_customer_unapplied ON payments (customer_id) WHERE allocated_minor < amount_minor AND status <> 'reversed';
CREATE INDEX allocations_invoice_applied ON allocations (invoice_id, applied_on) WHERE released_at IS NULL AND payment_id IS NOT NULL;
