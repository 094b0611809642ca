-- Requests and query complexity spent per rate-limit scope (API key,
-- session, client address) and minute, summed over every node: each node
-- adds what it counted about once a second.
CREATE TABLE rate_windows (
    scope TEXT NOT NULL,
    window_start TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    complexity BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, window_start)
);
CREATE INDEX rate_windows_by_start ON rate_windows (window_start);
