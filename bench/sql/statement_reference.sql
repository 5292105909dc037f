-- The statement's data by hand: the customer's open items oldest due first, and the aging
-- per currency (current, 1-30, 31-60, 61-90, 91-120, over 120 days past due). Credit notes
-- reduce the current bucket. psql variables: cust (row id), as_of (date).
SELECT * FROM invoices
 WHERE org_id = 1 AND customer_id = :cust AND open_minor > 0
 ORDER BY due_date, id;
SELECT currency,
       SUM(CASE WHEN kind = 'credit_note' THEN -open_minor ELSE open_minor END) AS balance,
       SUM(CASE WHEN kind <> 'credit_note' AND due_date < DATE :'as_of' THEN open_minor ELSE 0 END) AS overdue,
       SUM(CASE WHEN kind = 'credit_note' THEN -open_minor WHEN due_date >= DATE :'as_of' THEN open_minor ELSE 0 END) AS current,
       SUM(CASE WHEN kind <> 'credit_note' AND DATE :'as_of' - due_date BETWEEN 1 AND 30 THEN open_minor ELSE 0 END) AS d1_30,
       SUM(CASE WHEN kind <> 'credit_note' AND DATE :'as_of' - due_date BETWEEN 31 AND 60 THEN open_minor ELSE 0 END) AS d31_60,
       SUM(CASE WHEN kind <> 'credit_note' AND DATE :'as_of' - due_date BETWEEN 61 AND 90 THEN open_minor ELSE 0 END) AS d61_90,
       SUM(CASE WHEN kind <> 'credit_note' AND DATE :'as_of' - due_date BETWEEN 91 AND 120 THEN open_minor ELSE 0 END) AS d91_120,
       SUM(CASE WHEN kind <> 'credit_note' AND DATE :'as_of' - due_date > 120 THEN open_minor ELSE 0 END) AS over_120
  FROM invoices
 WHERE org_id = 1 AND customer_id = :cust AND open_minor > 0
 GROUP BY currency ORDER BY currency;
