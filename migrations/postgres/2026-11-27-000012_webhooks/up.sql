-- Where a venue wants to hear about its bookings: an HTTPS endpoint and
-- the secret its messages are signed with (sealed to the venue's row; the
-- venue saw it once, when it was made).
CREATE TABLE venue_webhooks (
    venue_id TEXT PRIMARY KEY NOT NULL REFERENCES venues (id),
    url TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
-- The outbox now carries webhooks beside e-mails; a node without SMTP
-- still delivers the webhooks.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'email';
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, kind, next_attempt_at);
