-- The networks (IPv4 /24, IPv6 /48) each API key was used from, so that
-- use from a new one stands out.
CREATE TABLE api_key_networks (
    key_id TEXT NOT NULL REFERENCES api_keys (id),
    network TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, network)
);
