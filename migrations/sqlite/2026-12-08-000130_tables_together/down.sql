ALTER TABLE venues DROP COLUMN max_covers_per_hour;
ALTER TABLE venues DROP COLUMN max_covers_per_slot;
ALTER TABLE venues DROP COLUMN max_joined_tables;
DROP TABLE resource_combinations;
DROP TRIGGER reservation_holds_no_overlap_update;
DROP TRIGGER reservation_holds_no_overlap_insert;
DROP TRIGGER reservation_holds_on_update;
DROP TRIGGER reservation_holds_on_insert;
DROP TABLE reservation_holds;
