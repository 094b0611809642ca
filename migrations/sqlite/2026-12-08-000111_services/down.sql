ALTER TABLE reservations DROP COLUMN service_id;
DROP TABLE services;
