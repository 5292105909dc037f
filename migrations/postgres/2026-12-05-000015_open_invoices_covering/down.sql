DROP INDEX invoices_customer_open;
