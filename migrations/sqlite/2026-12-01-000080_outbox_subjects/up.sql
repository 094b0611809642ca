-- Which guest a waiting message is about, so that erasing the guest also
-- withdraws what is still waiting to be sent to them (a confirmation
-- with their manage token, a breach notice with their name); and until
-- when a message is worth sending at all (an access code mail is useless
-- once the code has expired, so it is destroyed then instead of retried
-- for a day).
ALTER TABLE outbox ADD COLUMN guest_id TEXT;
ALTER TABLE outbox ADD COLUMN discard_after TEXT;
CREATE INDEX outbox_by_guest ON outbox (guest_id) WHERE guest_id IS NOT NULL;
CREATE INDEX outbox_by_discard ON outbox (discard_after) WHERE discard_after IS NOT NULL;
