-- One-time codes by e-mail for guests who lost their manage token. Only a
-- keyed hash of the code is kept; a code dies after use, expiry or five
-- wrong tries.
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
