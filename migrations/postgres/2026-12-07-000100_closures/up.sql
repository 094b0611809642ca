-- Closures: periods in which a venue, or one of its resources, takes no
-- bookings. The local definition (the venue's wall clock, as the manager
-- wrote it) is kept for display and for resolving again when the venue's
-- time zone changes; the instants are what availability compares.
CREATE TABLE closures (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    resource_id TEXT REFERENCES resources (id),
    local_from TEXT NOT NULL,
    local_until TEXT NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    reason TEXT,
    CHECK (ends_at > starts_at)
);
CREATE INDEX closures_by_venue ON closures (venue_id, ends_at);
