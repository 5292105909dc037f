DROP TABLE users;
DROP TABLE action_instalments;
ALTER TABLE plan_instalments DROP COLUMN reminded_on;
