-- Messages waiting to leave (e-mails to guests: verification codes,
-- breach notices). Recipient, subject and body are sealed together like
-- any personal data, and destroyed once the message is sent or given up,
-- so the table keeps only what was sent when, not what it said.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    venue_id TEXT REFERENCES venues (id),
    message_sealed BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
