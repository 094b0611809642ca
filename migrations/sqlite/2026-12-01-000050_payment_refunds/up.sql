-- Refunds by payment and idempotency key (`<payment id>|<key>`): the same request again finds the one
-- already made and neither asks the provider again nor counts it twice.
CREATE TABLE payment_refunds (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    request_hash TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    -- 'requested' until the provider accepted it, then 'succeeded'.
    status TEXT NOT NULL CHECK (status IN ('requested', 'succeeded')),
    provider_reference TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payment_refunds_by_payment ON payment_refunds (payment_id);
