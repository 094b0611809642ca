DROP INDEX guests_by_email;
CREATE UNIQUE INDEX guests_by_email ON guests (venue_id, email_lookup) WHERE email_lookup IS NOT NULL;
DROP INDEX guests_by_phone;
CREATE UNIQUE INDEX guests_by_phone ON guests (venue_id, phone_lookup) WHERE phone_lookup IS NOT NULL;
