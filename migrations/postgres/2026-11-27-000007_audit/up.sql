-- The audit trail: every read or change of personal data, by whom, of
-- what. Entries hold ids and field names, never personal values, and are
-- hash-chained: each hash covers the previous one, so a modified or
-- deleted entry breaks the chain (`kluis audit verify`).
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    fields TEXT NOT NULL,
    venue_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_object ON audit_log (object, seq);
CREATE INDEX audit_by_principal ON audit_log (principal, seq);
