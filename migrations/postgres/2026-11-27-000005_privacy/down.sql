ALTER TABLE venues DROP COLUMN collect_notes;
ALTER TABLE venues DROP COLUMN collect_phone;
ALTER TABLE venues DROP COLUMN collect_email;
DROP TABLE consents;
DROP TABLE privacy_notices;
