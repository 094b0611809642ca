-- Working plans: a resource (a practitioner, a room) may work weekly hours
-- of its own instead of the venue's opening hours, and a date may have
-- other hours, or none, for the venue or one resource. Hours are the
-- venue's wall-clock times; they become instants with the venue's zone on
-- each date, so they are stored as written.
ALTER TABLE resources ADD COLUMN working_hours TEXT;
CREATE TABLE hours_exceptions (
    id TEXT PRIMARY KEY,
    venue_id TEXT NOT NULL REFERENCES venues (id),
    resource_id TEXT REFERENCES resources (id),
    local_date TEXT NOT NULL,
    hours TEXT NOT NULL
);
CREATE INDEX hours_exceptions_by_venue ON hours_exceptions (venue_id, local_date);
