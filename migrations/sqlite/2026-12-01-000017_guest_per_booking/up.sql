-- A booking keeps the personal data entered with it in a guest record of
-- its own: nothing a new booking submits may reveal, change or link into
-- an earlier booking's data, whatever e-mail or phone it gives. Lookup
-- tokens still tie a person's bookings together for staff and for the
-- access-code flow, so they are indexed but no longer unique.
DROP INDEX guests_by_email;
CREATE INDEX guests_by_email ON guests (venue_id, email_lookup) WHERE email_lookup IS NOT NULL;
DROP INDEX guests_by_phone;
CREATE INDEX guests_by_phone ON guests (venue_id, phone_lookup) WHERE phone_lookup IS NOT NULL;

-- Records that several bookings were linked to before: they may hold the
-- details another booking entered, so a single booking's manage token does
-- not open them; the access-code flow does.
ALTER TABLE guests ADD COLUMN shared BOOLEAN NOT NULL DEFAULT 0;
UPDATE guests SET shared = 1 WHERE id IN (
    SELECT guest_id FROM reservations WHERE guest_id IS NOT NULL
    GROUP BY guest_id HAVING COUNT(*) > 1
);

-- Access codes belong to an address at a venue, not to a guest record:
-- a code is issued (and counted) for any address, known or not, so that
-- its answers do not tell which addresses the venue knows. Codes live
-- fifteen minutes; none outlives the change.
DROP TABLE access_codes;
CREATE TABLE access_codes (
    id TEXT PRIMARY KEY NOT NULL,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    email_lookup BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX access_codes_by_address ON access_codes (venue_id, email_lookup, created_at);
CREATE INDEX access_codes_by_expiry ON access_codes (expires_at);

-- What a redeemed code yields: a short-lived token (only its SHA-256 here)
-- for every booking made with the proven address at one venue.
CREATE TABLE guest_access_grants (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    email_sealed BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX guest_access_grants_by_token ON guest_access_grants (token_hash);
CREATE INDEX guest_access_grants_by_expiry ON guest_access_grants (expires_at);
