DROP TABLE idempotency_keys;
DROP TABLE reservations;
DROP TABLE resources;
DROP TABLE opening_hours;
DROP TABLE venues;
