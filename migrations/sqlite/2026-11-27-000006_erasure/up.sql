-- Erasure: a guest's personal fields are destroyed; the row stays as a
-- pseudonym so that accounting facts (amounts, dates, provider references)
-- still add up.
ALTER TABLE guests ADD COLUMN erased_at TEXT;
