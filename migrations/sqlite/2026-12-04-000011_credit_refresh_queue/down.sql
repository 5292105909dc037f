DROP TABLE credit_refresh_queue;
