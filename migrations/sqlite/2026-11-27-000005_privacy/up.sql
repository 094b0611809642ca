-- Privacy notices, the consent ledger and data minimization.

-- A venue's privacy notice, per locale, in versions. A booking names the
-- version it showed; the hash proves which text that was.
CREATE TABLE privacy_notices (
    venue_id TEXT NOT NULL REFERENCES venues (id),
    locale TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (venue_id, locale, version)
);

-- Append-only: consent given or withdrawn, per guest and purpose, with the
-- notice it was given under and who recorded it. Nothing updates a row.
CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    guest_id TEXT NOT NULL REFERENCES guests (id),
    -- Order of entries per guest: several can share a timestamp.
    seq INTEGER NOT NULL,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('booking', 'newsletter', 'marketing')),
    given BOOLEAN NOT NULL,
    at TEXT NOT NULL,
    -- `web`, `partner:<key id>` or `staff:<account id>`.
    channel TEXT NOT NULL,
    notice_version INTEGER,
    notice_sha256 TEXT
);
CREATE UNIQUE INDEX consents_by_guest ON consents (guest_id, seq);

-- Which guest fields a venue asks for: required, optional, or not
-- collected at all (and then refused).
ALTER TABLE venues ADD COLUMN collect_email TEXT NOT NULL DEFAULT 'optional'
    CHECK (collect_email IN ('required', 'optional', 'no'));
ALTER TABLE venues ADD COLUMN collect_phone TEXT NOT NULL DEFAULT 'optional'
    CHECK (collect_phone IN ('required', 'optional', 'no'));
ALTER TABLE venues ADD COLUMN collect_notes TEXT NOT NULL DEFAULT 'optional'
    CHECK (collect_notes IN ('required', 'optional', 'no'));
