-- Every booking and the front-desk lookup find a guest by lookup token and
-- want only the id: with the id in the index the lookup never reads the
-- table, whose rows carry the wide sealed columns (index-only scan).
DROP INDEX guests_by_email;
CREATE UNIQUE INDEX guests_by_email ON guests (venue_id, email_lookup) INCLUDE (id)
    WHERE email_lookup IS NOT NULL;
DROP INDEX guests_by_phone;
CREATE UNIQUE INDEX guests_by_phone ON guests (venue_id, phone_lookup) INCLUDE (id)
    WHERE phone_lookup IS NOT NULL;
