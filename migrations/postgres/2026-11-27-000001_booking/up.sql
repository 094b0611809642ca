-- Venues, opening hours, resources and reservations: the booking engine.
-- Ids are random UUIDs in text form (the same type on both backends).

-- btree_gist lets one exclusion constraint combine equality on the resource
-- with overlap of time ranges. It is a trusted extension: a database owner
-- may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE venues (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    slot_interval_minutes INTEGER NOT NULL CHECK (slot_interval_minutes > 0),
    booking_duration_minutes INTEGER NOT NULL CHECK (booking_duration_minutes > 0),
    buffer_minutes INTEGER NOT NULL CHECK (buffer_minutes >= 0),
    min_notice_minutes INTEGER NOT NULL CHECK (min_notice_minutes >= 0),
    same_day_cutoff_minute INTEGER CHECK (same_day_cutoff_minute BETWEEN 0 AND 1440),
    cancel_deadline_minutes INTEGER NOT NULL CHECK (cancel_deadline_minutes >= 0),
    max_party_size INTEGER NOT NULL CHECK (max_party_size > 0),
    max_advance_days INTEGER NOT NULL CHECK (max_advance_days > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE opening_hours (
    venue_id TEXT NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens_minute INTEGER NOT NULL CHECK (opens_minute BETWEEN 0 AND 1440),
    closes_minute INTEGER NOT NULL CHECK (closes_minute BETWEEN 0 AND 1440),
    PRIMARY KEY (venue_id, weekday, opens_minute),
    CHECK (opens_minute < closes_minute)
);

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('table', 'room', 'practitioner', 'other')),
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (venue_id, slug)
);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    resource_id TEXT NOT NULL REFERENCES resources (id),
    party_size INTEGER NOT NULL CHECK (party_size > 0),
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'checked_in', 'completed', 'no_show', 'cancelled')),
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (starts_at < ends_at AND ends_at <= blocked_until),
    -- The last line of defence against double booking: whatever the
    -- application believes, two active reservations of one resource never
    -- overlap in time. Violations (SQLSTATE 23P01) surface as SLOT_TAKEN.
    CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        resource_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (status IN ('pending', 'confirmed', 'checked_in'))
);

CREATE INDEX reservations_by_venue_time ON reservations (venue_id, starts_at);

CREATE TABLE idempotency_keys (
    operation TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (operation, key)
);
