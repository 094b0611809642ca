ALTER TABLE venues DROP COLUMN allowed_origins;
ALTER TABLE venues DROP COLUMN opt_in_purposes;
