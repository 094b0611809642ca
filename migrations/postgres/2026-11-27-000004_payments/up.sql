-- Payments. kluis keeps provider, provider reference, amounts, status
-- history and of the card at most brand and last four digits: there is no
-- column for a card number, CVC or expiry, and there never will be.

-- What a venue asks guests to pay, and how long an unpaid booking holds
-- its slot.
ALTER TABLE venues ADD COLUMN payment_rule TEXT NOT NULL DEFAULT 'none'
    CHECK (payment_rule IN ('none', 'deposit', 'prepayment', 'guarantee'));
ALTER TABLE venues ADD COLUMN payment_per_guest BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE venues ADD COLUMN payment_amount_minor BIGINT NOT NULL DEFAULT 0 CHECK (payment_amount_minor >= 0);
ALTER TABLE venues ADD COLUMN payment_currency TEXT NOT NULL DEFAULT 'EUR';
ALTER TABLE venues ADD COLUMN payment_hold_minutes INTEGER NOT NULL DEFAULT 15 CHECK (payment_hold_minutes > 0);

-- A pending reservation holds its slot until then.
ALTER TABLE reservations ADD COLUMN hold_until TIMESTAMPTZ;
CREATE INDEX reservations_by_hold ON reservations (status, hold_until);

CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    reservation_id TEXT NOT NULL REFERENCES reservations (id),
    -- A charge, a card saved as a no-show guarantee (no money moved), or a
    -- no-show fee charged to that card.
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'guarantee', 'no_show_fee')),
    gateway TEXT NOT NULL,
    provider_reference TEXT,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    refunded_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    status TEXT NOT NULL CHECK (status IN ('requires_action', 'processing', 'succeeded', 'failed', 'cancelled', 'refunded', 'partially_refunded')),
    failure_reason TEXT,
    card_brand TEXT,
    card_last4 TEXT CHECK (card_last4 IS NULL OR length(card_last4) = 4),
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (refunded_minor <= amount_minor)
);
CREATE INDEX payments_by_reservation ON payments (reservation_id);
CREATE UNIQUE INDEX payments_by_reference ON payments (gateway, provider_reference) WHERE provider_reference IS NOT NULL;

-- Every status a payment went through, and what said so.
CREATE TABLE payment_events (
    payment_id TEXT NOT NULL REFERENCES payments (id),
    at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX payment_events_by_payment ON payment_events (payment_id, at);

-- Webhook event ids already handled: a second delivery changes nothing.
CREATE TABLE webhook_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id)
);
