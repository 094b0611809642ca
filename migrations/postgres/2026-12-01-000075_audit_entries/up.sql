-- One audit entry per request. The objects an entry names (with the
-- fields read or changed of each) move to a side table, indexed by object
-- so that "who saw guest X" stays one indexed query, and by principal and
-- action for the monitoring rules; it repeats the entry's time and
-- principal for them. An entry keeps a venue only when every object it
-- names is of that venue (admins bound to venues see those entries).
--
-- The chain becomes an HMAC under a key derived from the master key
-- (key_version says which one). Entries written before this migration
-- keep their SHA-256 chain: audit_anchor records where it ends, and kluis
-- seals that record with the HMAC key at start-up (mac stays empty until
-- then), so the old part cannot be rewritten unnoticed either.
CREATE TABLE audit_objects (
    seq BIGINT NOT NULL,
    position INTEGER NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    fields TEXT NOT NULL,
    venue_id TEXT,
    PRIMARY KEY (seq, position)
);
INSERT INTO audit_objects (seq, position, at, principal, action, object, fields, venue_id)
SELECT seq, 0, at, principal, action, object, fields, venue_id FROM audit_log;
CREATE INDEX audit_objects_by_object ON audit_objects (object, seq);
CREATE INDEX audit_objects_by_principal_action ON audit_objects (principal, action, at);

DROP INDEX audit_by_object;
DROP INDEX audit_by_principal_action;
ALTER TABLE audit_log DROP COLUMN object;
ALTER TABLE audit_log DROP COLUMN fields;
-- 0: an entry of the SHA-256 chain (before this migration).
ALTER TABLE audit_log ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE audit_anchor (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    until_seq BIGINT NOT NULL,
    until_hash TEXT NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 0,
    mac TEXT NOT NULL DEFAULT ''
);
INSERT INTO audit_anchor (id, until_seq, until_hash)
SELECT 1, COALESCE(MAX(seq), 0),
       COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
                '0000000000000000000000000000000000000000000000000000000000000000')
FROM audit_log;
