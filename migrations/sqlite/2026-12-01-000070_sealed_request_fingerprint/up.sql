-- A booking's idempotency fingerprint covers the guest's details. It was
-- kept as a digest keyed under the key version of the day, which no
-- rotation can re-key (the details are not stored): after a rotation a
-- retry was refused, and the old key could never be retired. The
-- fingerprint is now sealed like any personal value, so a rotation
-- re-seals it and a retry keeps getting its manage token back.
ALTER TABLE idempotency_keys ADD COLUMN request_sealed BLOB;
