DROP TABLE waitlist_offers;
DROP TABLE waitlist_entries;
ALTER TABLE venues DROP COLUMN waitlist_retention_days;
ALTER TABLE venues DROP COLUMN waitlist_offer_minutes;
