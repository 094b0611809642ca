-- The waitlist: guests who asked for a table when none was free, in the
-- order they asked, and the offers made to them when one frees up. The
-- entry's personal data lives in a guest record of its own (sealed under
-- the guest's data key, with the e-mail lookup token), so that export,
-- correction, erasure and key rotation reach it as they reach a booking's.
-- Tokens are kept as hashes only.
ALTER TABLE venues ADD COLUMN waitlist_offer_minutes INTEGER NOT NULL DEFAULT 30;
ALTER TABLE venues ADD COLUMN waitlist_retention_days INTEGER NOT NULL DEFAULT 7;

CREATE TABLE waitlist_entries (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    guest_id TEXT NOT NULL REFERENCES guests (id),
    local_date TEXT NOT NULL,
    from_minute INTEGER NOT NULL,
    until_minute INTEGER NOT NULL,
    party_size INTEGER NOT NULL,
    -- The service waited for, at a venue that books by service.
    service_id TEXT REFERENCES services (id),
    locale TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    status TEXT NOT NULL,
    -- The place in the venue's line: first come, first offered, also
    -- for guests who joined within the same instant.
    position INTEGER NOT NULL,
    joined_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (until_minute > from_minute)
);
CREATE INDEX waitlist_entries_queue ON waitlist_entries (venue_id, status, position);
CREATE INDEX waitlist_entries_by_guest ON waitlist_entries (guest_id);

CREATE TABLE waitlist_offers (
    id TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL REFERENCES waitlist_entries (id) ON DELETE CASCADE,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    resource_id TEXT NOT NULL REFERENCES resources (id),
    starts_at TEXT NOT NULL,
    blocked_until TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    status TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    reservation_id TEXT
);
-- Exactly one open offer per entry and per freed slot, whichever node
-- makes it.
CREATE UNIQUE INDEX waitlist_offers_open_per_entry ON waitlist_offers (entry_id) WHERE status = 'open';
CREATE UNIQUE INDEX waitlist_offers_open_per_slot ON waitlist_offers (resource_id, starts_at) WHERE status = 'open';
CREATE INDEX waitlist_offers_by_venue ON waitlist_offers (venue_id, status, expires_at);
