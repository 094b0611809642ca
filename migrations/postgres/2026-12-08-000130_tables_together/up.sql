-- Tables together and pacing. A booking may hold several resources (a
-- combination of tables for a large party): every resource it holds is a
-- row in reservation_holds, and the exclusion constraint moves there, so
-- that no two active bookings hold one table at overlapping times whichever
-- of them holds it as its primary resource. reservations.resource_id stays
-- the primary resource, and its own constraint stays as it was.
--
-- Triggers keep the holds in step with their reservation: a new
-- reservation gets the hold of its primary resource, and a change of
-- status, time or primary resource is copied to its holds, whoever makes
-- it (booking, cancellation, no-show, completion, expiry of pending holds,
-- payments, staff, or a node still running the previous version during a
-- rolling upgrade). Only the extra members of a combination are written by
-- the application.

CREATE TABLE reservation_holds (
    reservation_id TEXT NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL REFERENCES resources (id),
    starts_at TIMESTAMPTZ NOT NULL,
    blocked_until TIMESTAMPTZ NOT NULL,
    active BOOLEAN NOT NULL,
    PRIMARY KEY (reservation_id, resource_id),
    CHECK (starts_at < blocked_until),
    CONSTRAINT reservation_holds_no_overlap EXCLUDE USING gist (
        resource_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (active)
);

INSERT INTO reservation_holds (reservation_id, resource_id, starts_at, blocked_until, active)
SELECT id, resource_id, starts_at, blocked_until,
       status IN ('pending', 'confirmed', 'checked_in')
FROM reservations;

CREATE FUNCTION reservation_holds_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO reservation_holds (reservation_id, resource_id, starts_at, blocked_until, active)
        VALUES (NEW.id, NEW.resource_id, NEW.starts_at, NEW.blocked_until,
                NEW.status IN ('pending', 'confirmed', 'checked_in'));
    ELSE
        -- One statement, so that a move in time and table at once is never
        -- checked half done against other bookings.
        UPDATE reservation_holds
        SET resource_id = CASE WHEN resource_id = OLD.resource_id
                               THEN NEW.resource_id ELSE resource_id END,
            starts_at = NEW.starts_at,
            blocked_until = NEW.blocked_until,
            active = NEW.status IN ('pending', 'confirmed', 'checked_in')
        WHERE reservation_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER reservation_holds_follow
AFTER INSERT OR UPDATE OF resource_id, starts_at, blocked_until, status ON reservations
FOR EACH ROW EXECUTE FUNCTION reservation_holds_follow();

-- Fixed combinations and adjacent pairs, by resource id (space-separated,
-- the primary first); a venue's list is replaced as a whole when saved.
CREATE TABLE resource_combinations (
    venue_id TEXT NOT NULL REFERENCES venues (id),
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('fixed', 'adjacent')),
    members TEXT NOT NULL,
    capacity INTEGER CHECK (capacity > 0),
    min_party INTEGER CHECK (min_party > 0),
    PRIMARY KEY (venue_id, position)
);

ALTER TABLE venues ADD COLUMN max_joined_tables INTEGER NOT NULL DEFAULT 3
    CHECK (max_joined_tables BETWEEN 2 AND 4);
ALTER TABLE venues ADD COLUMN max_covers_per_slot INTEGER CHECK (max_covers_per_slot > 0);
ALTER TABLE venues ADD COLUMN max_covers_per_hour INTEGER CHECK (max_covers_per_hour > 0);
