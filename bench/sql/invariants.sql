-- Money invariants after the payment workload; each query counts violations.
-- 1. open amount within 0..amount
SELECT 'open_out_of_range', count(*) FROM invoices WHERE open_minor < 0 OR open_minor > amount_minor;
-- 2. a payment's allocated amount is the sum of its live allocations, and at most its amount
SELECT 'payment_allocated_mismatch', count(*)
  FROM payments p
  LEFT JOIN (SELECT payment_id, SUM(amount_minor) AS s FROM allocations
              WHERE released_at IS NULL AND payment_id IS NOT NULL GROUP BY payment_id) a
         ON a.payment_id = p.id
 WHERE p.allocated_minor <> COALESCE(a.s, 0) OR p.allocated_minor > p.amount_minor;
-- 3. an invoice's open amount is amount - written off - live allocations
SELECT 'invoice_open_mismatch', count(*)
  FROM invoices i
  LEFT JOIN (SELECT invoice_id, SUM(amount_minor) AS s FROM allocations
              WHERE released_at IS NULL GROUP BY invoice_id) a
         ON a.invoice_id = i.id
 WHERE i.kind <> 'credit_note' AND i.amount_minor - i.written_off_minor - COALESCE(a.s, 0) <> i.open_minor;
