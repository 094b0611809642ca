ALTER TABLE venues DROP COLUMN payment_data_days;
