-- The key store: a database of its own, apart from the data, backed up
-- apart and briefly. Each guest's random data key, wrapped under the
-- master key ring; erasing a guest deletes their key, which makes every
-- copy of their sealed fields (backups, replicas, old WAL frames)
-- unreadable.
CREATE TABLE data_keys (
    guest_id TEXT PRIMARY KEY NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX data_keys_by_version ON data_keys (key_version);

-- Every erasure and retention anonymization (ids and time only), so that a
-- restored data backup can have them applied again.
CREATE TABLE erasures (
    guest_id TEXT PRIMARY KEY NOT NULL,
    erased_at TIMESTAMPTZ NOT NULL,
    reason TEXT NOT NULL
);
