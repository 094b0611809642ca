-- A venue says which opt-ins its booking form offers (space-separated
-- consent purposes; both unless it opts out) and which web origins may call
-- the API from a browser on its behalf (space-separated `https://host[:port]`
-- origins; none by default). Defaults keep what existing venues did.
ALTER TABLE venues ADD COLUMN opt_in_purposes TEXT NOT NULL DEFAULT 'newsletter marketing';
ALTER TABLE venues ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
