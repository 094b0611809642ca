-- The purge job deletes idempotency records after a day and login
-- throttles an hour after their last failure: by time, through an index.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
CREATE INDEX login_throttle_by_last_failure ON login_throttle (last_failure_at);
