-- Who may do what: staff accounts, their sessions, partner API keys, role
-- assignments (the venue-bound half of the Casbin policy) and login
-- throttling shared by every node.

CREATE TABLE staff_users (
    id TEXT PRIMARY KEY,
    -- Normalized (trimmed, lower-cased): the login name.
    email TEXT NOT NULL UNIQUE,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- A subject (`user:<id>` or `apikey:<id>`) holds a role in a venue, or in
-- every venue (`*`). Loaded into the Casbin enforcer as `g` lines.
CREATE TABLE role_assignments (
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    venue TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subject, role, venue)
);

-- Bumped on every change of role_assignments, so that each node notices
-- and reloads them.
CREATE TABLE authz_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO authz_version (id, version) VALUES (1, 1);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- HMAC-SHA256 of the secret under a key derived from master key
    -- `hash_version`.
    secret_hash BYTEA NOT NULL,
    hash_version INTEGER NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

-- Failed logins per account (a hash of the e-mail, whether or not an
-- account has it) and per client address.
CREATE TABLE login_throttle (
    scope TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure_at TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ
);
