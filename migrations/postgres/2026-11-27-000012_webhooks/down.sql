DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN kind;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
DROP TABLE venue_webhooks;
