-- A checkpoint vouches for the audit trail up to an entry: it holds a
-- SHA-256 digest of every entry (content, objects, HMAC, key version) up
-- to and including that one, and an HMAC over it under the key version
-- that was current when it was written. kluis writes one after a key
-- rotation and before a key version is retired: entries whose HMAC key
-- has been retired are then checked against the digest, so retiring a
-- key never makes the older part of the trail unverifiable, and editing
-- it is still detected. The newest checkpoint is the one that counts.
CREATE TABLE audit_checkpoints (
    until_seq BIGINT PRIMARY KEY NOT NULL,
    until_hash TEXT NOT NULL,
    digest TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    mac TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
