DROP INDEX outbox_by_discard;
DROP INDEX outbox_by_guest;
ALTER TABLE outbox DROP COLUMN discard_after;
ALTER TABLE outbox DROP COLUMN guest_id;
