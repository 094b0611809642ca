-- How long a venue keeps a guest's personal data after their last visit;
-- the retention job anonymizes guests past it.
ALTER TABLE venues ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 365 CHECK (retention_days > 0);
