-- Whether a guest's personal fields (and their reservations' notes) are
-- sealed under the guest's own data key in the key store. Older records
-- stay under column keys until a key rotation moves them. Notes sealed
-- under a data key carry key_version 0 (master versions start at 1).
ALTER TABLE guests ADD COLUMN data_key BOOLEAN NOT NULL DEFAULT FALSE;
