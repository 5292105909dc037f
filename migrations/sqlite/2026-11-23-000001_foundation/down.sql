DROP TABLE invoices;
DROP TABLE customers;
DROP TABLE api_clients;
DROP TABLE organizations;
