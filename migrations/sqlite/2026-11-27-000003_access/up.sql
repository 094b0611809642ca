-- Who may do what: staff accounts, their sessions, partner API keys, role
-- assignments (the venue-bound half of the Casbin policy) and login
-- throttling shared by every node.

CREATE TABLE staff_users (
    id TEXT PRIMARY KEY NOT NULL,
    -- Normalized (trimmed, lower-cased): the login name.
    email TEXT NOT NULL UNIQUE,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A subject (`user:<id>` or `apikey:<id>`) holds a role in a venue, or in
-- every venue (`*`). Loaded into the Casbin enforcer as `g` lines.
CREATE TABLE role_assignments (
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    venue TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (subject, role, venue)
);

-- Bumped on every change of role_assignments, so that each node notices
-- and reloads them.
CREATE TABLE authz_version (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 1);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- HMAC-SHA256 of the secret under a key derived from master key
    -- `hash_version`.
    secret_hash BLOB NOT NULL,
    hash_version INTEGER NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
);

-- Failed logins per account (a hash of the e-mail, whether or not an
-- account has it) and per client address.
CREATE TABLE login_throttle (
    scope TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    blocked_until TEXT
);
