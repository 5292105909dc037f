-- The collection run reads the open invoices of a chunk of customers, customer by
-- customer. Through `invoices_customer_due` that read visited one heap page per invoice,
-- in customer order, so at a million invoices (a heap larger than the buffer cache) every
-- chunk fetched pages from all over the table again. This partial index holds every column
-- the run reads (service::collectable, `OpenInvoiceRow`): a chunk is one stretch of the
-- index, read without visiting the heap while the pages are all-visible. PostgreSQL only:
-- see docs/architecture.md.
CREATE INDEX invoices_customer_open ON invoices (customer_id, due_date, id)
    INCLUDE (org_id, kind, status, number, currency, amount_minor, open_minor, disputed_minor,
             issue_date, delivered_on)
    WHERE open_minor > 0;
