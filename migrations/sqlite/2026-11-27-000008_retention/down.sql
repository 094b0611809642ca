ALTER TABLE venues DROP COLUMN retention_days;
