ALTER TABLE guests DROP COLUMN data_key;
