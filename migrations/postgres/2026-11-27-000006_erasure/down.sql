ALTER TABLE guests DROP COLUMN erased_at;
