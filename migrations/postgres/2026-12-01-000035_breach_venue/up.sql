-- The venue a breach concerns, so that administration stays within the
-- venues an admin is bound to; none for a breach of the whole deployment,
-- which only an admin of every venue records and sees.
ALTER TABLE breaches ADD COLUMN venue_id TEXT;
CREATE INDEX breaches_venue ON breaches (venue_id);
