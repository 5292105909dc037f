ALTER TABLE action_invoices
    ADD CONSTRAINT action_invoices_action_id_fkey FOREIGN KEY (action_id) REFERENCES actions (id),
    ADD CONSTRAINT action_invoices_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES invoices (id);
