-- Guests and their personal data, encrypted at rest. Every personal value
-- is an AES-SIV ciphertext bound to its table, column and row; e-mail and
-- phone also have a deterministic lookup token so a returning guest is
-- found by one indexed equality query, without decrypting anything.
-- `key_version` is the master-key version of the row's ciphertexts, so a
-- key rotation finds the rows it still has to re-encrypt.

-- The country in which phone numbers without a country code are read.
ALTER TABLE venues ADD COLUMN country TEXT;

CREATE TABLE guests (
    id TEXT PRIMARY KEY NOT NULL,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    key_version INTEGER NOT NULL,
    name_sealed BLOB NOT NULL,
    email_sealed BLOB,
    email_lookup BLOB,
    phone_sealed BLOB,
    phone_lookup BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE UNIQUE INDEX guests_by_email ON guests (venue_id, email_lookup) WHERE email_lookup IS NOT NULL;
CREATE UNIQUE INDEX guests_by_phone ON guests (venue_id, phone_lookup) WHERE phone_lookup IS NOT NULL;
CREATE INDEX guests_by_key_version ON guests (key_version);

ALTER TABLE reservations ADD COLUMN guest_id TEXT REFERENCES guests (id);
ALTER TABLE reservations ADD COLUMN notes_sealed BLOB;
-- SHA-256 of the guest's manage token; the token itself is never stored.
ALTER TABLE reservations ADD COLUMN manage_token_hash BLOB;
ALTER TABLE reservations ADD COLUMN key_version INTEGER;

CREATE UNIQUE INDEX reservations_by_manage_token ON reservations (manage_token_hash);
CREATE INDEX reservations_by_key_version ON reservations (key_version);
CREATE INDEX reservations_by_guest ON reservations (guest_id);

-- A retried booking gets its manage token back: sealed here, bound to the
-- idempotency key, and dropped with it.
ALTER TABLE idempotency_keys ADD COLUMN token_sealed BLOB;

-- One known value per key version, sealed at first use: a server started
-- with the wrong master key finds out before it writes anything.
CREATE TABLE key_checks (
    version INTEGER PRIMARY KEY NOT NULL,
    check_sealed BLOB NOT NULL,
    created_at TEXT NOT NULL
);
