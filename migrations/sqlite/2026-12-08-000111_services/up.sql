-- Services: what a venue offers to book (lunch, dinner, a consult, a
-- treatment), each with its own length, buffer, party sizes, the resources
-- that deliver it and its own payment rule. Services are matched by slug
-- on later saves and retired rather than deleted, since reservations
-- remember theirs.
CREATE TABLE services (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    buffer_minutes INTEGER NOT NULL CHECK (buffer_minutes >= 0),
    min_party INTEGER NOT NULL CHECK (min_party >= 1),
    max_party INTEGER NOT NULL CHECK (max_party >= min_party),
    -- Space-separated resource ids; empty: every resource of the venue.
    resource_ids TEXT NOT NULL,
    -- NULL: the venue's payment rule.
    payment_rule TEXT
        CHECK (payment_rule IN ('none', 'deposit', 'prepayment', 'guarantee')),
    payment_per_guest BOOLEAN NOT NULL DEFAULT 0,
    payment_amount_minor BIGINT NOT NULL DEFAULT 0 CHECK (payment_amount_minor >= 0),
    payment_currency TEXT NOT NULL DEFAULT 'EUR',
    active BOOLEAN NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (venue_id, slug)
);
ALTER TABLE reservations ADD COLUMN service_id TEXT REFERENCES services (id);
