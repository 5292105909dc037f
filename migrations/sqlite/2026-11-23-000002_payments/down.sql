DROP TABLE events;
DROP TABLE idempotency_keys;
DROP TABLE allocations;
DROP TABLE payments;
