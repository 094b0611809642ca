ALTER TABLE venues DROP COLUMN max_covers_per_hour;
ALTER TABLE venues DROP COLUMN max_covers_per_slot;
ALTER TABLE venues DROP COLUMN max_joined_tables;
DROP TABLE resource_combinations;
DROP TRIGGER reservation_holds_follow ON reservations;
DROP FUNCTION reservation_holds_follow();
DROP TABLE reservation_holds;
