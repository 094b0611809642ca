DROP TABLE guest_access_grants;
DROP TABLE access_codes;
CREATE TABLE access_codes (
    id TEXT PRIMARY KEY NOT NULL,
    guest_id TEXT NOT NULL REFERENCES guests (id),
    code_hash BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX access_codes_by_guest ON access_codes (guest_id, created_at);
ALTER TABLE guests DROP COLUMN shared;
DROP INDEX guests_by_email;
CREATE UNIQUE INDEX guests_by_email ON guests (venue_id, email_lookup) WHERE email_lookup IS NOT NULL;
DROP INDEX guests_by_phone;
CREATE UNIQUE INDEX guests_by_phone ON guests (venue_id, phone_lookup) WHERE phone_lookup IS NOT NULL;
