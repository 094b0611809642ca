DROP INDEX breaches_venue;
ALTER TABLE breaches DROP COLUMN venue_id;
