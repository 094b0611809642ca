-- Suspicious activity: one open alert per rule and principal, however
-- often it trips (triggers counts the trips, observed the largest count
-- seen). Ids and counts only, never personal values.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY NOT NULL,
    rule TEXT NOT NULL,
    principal TEXT NOT NULL,
    venue_id TEXT,
    observed INTEGER NOT NULL,
    triggers INTEGER NOT NULL DEFAULT 1,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    acknowledged_by TEXT,
    acknowledged_at TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule, principal) WHERE status = 'open';
CREATE INDEX alerts_by_time ON alerts (last_at);

-- Principals held back by an automatic response: throttled until a time,
-- or suspended until an admin lifts it (until is NULL).
CREATE TABLE principal_holds (
    principal TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    until TEXT,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    created_at TEXT NOT NULL
);

-- Rules count a principal's reads, exports and erasures in a time window.
CREATE INDEX audit_by_principal_action ON audit_log (principal, action, at);
