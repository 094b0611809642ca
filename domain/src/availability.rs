//! Which times can be booked, and which resources a booking gets.

use chrono::{DateTime, NaiveDate, Utc};

use crate::combination::CandidateSet;
use crate::{DomainError, Minutes, PartySize, Resource, ResourceId, Venue};

/// From when to when, as instants: a working interval of one day.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// How long one booking lasts and how long its resource stays blocked
/// after it: the venue's rules, or those of the service booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub duration: Minutes,
    pub buffer: Minutes,
}

impl Shape {
    /// The venue's own booking duration and buffer.
    pub fn of_venue(venue: &Venue) -> Self {
        Self {
            duration: venue.rules.booking_duration,
            buffer: venue.rules.buffer,
        }
    }
}

/// The working intervals on a local date of the given resources, as
/// instants, sorted and without repeats: where a booking may start at all.
/// Without hours of their own or exceptions, the venue's opening hours.
pub fn working_day(
    venue: &Venue,
    resources: &[&Resource],
    date: NaiveDate,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut intervals: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        if venue.exceptions.is_empty() && resources.iter().all(|r| r.hours.is_none()) {
            venue
                .hours_on(date)
                .iter()
                .map(|i| {
                    (
                        venue.instant_at(date, i.opens),
                        venue.instant_at(date, i.closes),
                    )
                })
                .collect()
        } else {
            resources
                .iter()
                .flat_map(|r| venue.working_intervals(r, date))
                .collect()
        };
    intervals.sort();
    intervals.dedup();
    intervals
}

/// Every instant at which a booking of `shape` may start within the given
/// intervals, with the latest closing instant of an interval that holds
/// it, in time order. The grid is laid in real elapsed time from each
/// opening with the venue's slot interval (see [`Venue::slot_grid`]).
pub fn grid_of(
    venue: &Venue,
    intervals: &[(DateTime<Utc>, DateTime<Utc>)],
    shape: Shape,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let step = venue.rules.slot_interval.duration();
    let length = shape.duration.duration();
    let mut grid: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    if step <= chrono::Duration::zero() {
        return grid;
    }
    for (opens, closes) in intervals {
        let mut start = *opens;
        while start + length <= *closes {
            grid.push((start, *closes));
            start += step;
        }
    }
    grid.sort();
    // The same start from two resources' intervals: keep the later close.
    let mut unique: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(grid.len());
    for (start, closes) in grid {
        match unique.last_mut() {
            Some(last) if last.0 == start => last.1 = last.1.max(closes),
            _ => unique.push((start, closes)),
        }
    }
    unique
}

/// A span during which a resource is taken by an active reservation
/// (its duration plus the venue's buffer). A reservation holding several
/// resources has one per resource; its guests count on the primary one
/// only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    pub resource_id: ResourceId,
    pub starts_at: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    /// The party size on the reservation's primary resource, 0 on the
    /// others: what pacing counts.
    pub covers: u32,
}

impl Occupancy {
    fn overlaps(&self, starts_at: DateTime<Utc>, blocked_until: DateTime<Utc>) -> bool {
        self.starts_at < blocked_until && starts_at < self.blocked_until
    }
}

/// A bookable start time and the resources that are free and large enough
/// for the party, smallest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub free_resources: Vec<ResourceId>,
    /// Free combinations of tables that seat the party together, smallest
    /// first, each with its primary resource first.
    pub free_combinations: Vec<Vec<ResourceId>>,
}

/// Where and when a booking goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The primary resource (`resources[0]`).
    pub resource_id: ResourceId,
    /// Every resource the booking holds, primary first: one, or the
    /// members of a combination.
    pub resources: Vec<ResourceId>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
}

/// The inputs of one booking decision, as read inside the transaction that
/// will write its outcome.
pub struct BookingContext<'a> {
    pub venue: &'a Venue,
    /// The venue's resources; retired ones are ignored.
    pub resources: &'a [Resource],
    /// Active reservations of those resources around the requested time,
    /// without the reservation being changed (when changing one).
    pub occupied: &'a [Occupancy],
    pub now: DateTime<Utc>,
    /// The service booked: its length, buffer, party sizes and resources
    /// replace the venue's. `None` at a venue without services.
    pub service: Option<&'a crate::Service>,
}

impl BookingContext<'_> {
    /// Free, fitting start times on a local date. Times that can no longer be
    /// booked (past, inside the notice period, after the same-day cut-off,
    /// beyond the booking horizon, over the venue's pacing caps) are left
    /// out.
    pub fn availability(
        &self,
        date: NaiveDate,
        party: PartySize,
    ) -> Result<Vec<Slot>, DomainError> {
        self.availability_among(date, party, self.candidate_sets())
    }

    /// [`Self::availability`] with the venue's combinations worked out
    /// beforehand (`TablesTogether::candidates` of these resources): they
    /// change only with the venue's definition, so a cached definition
    /// keeps them rather than every query finding them again.
    pub fn availability_with(
        &self,
        date: NaiveDate,
        party: PartySize,
        venue_candidates: &[CandidateSet],
    ) -> Result<Vec<Slot>, DomainError> {
        let candidates = match self.delivering() {
            None => venue_candidates.to_vec(),
            Some(delivering) => venue_candidates
                .iter()
                .filter(|c| c.resources.iter().all(|id| delivering.contains(id)))
                .cloned()
                .collect(),
        };
        self.availability_among(date, party, candidates)
    }

    fn availability_among(
        &self,
        date: NaiveDate,
        party: PartySize,
        candidates: Vec<CandidateSet>,
    ) -> Result<Vec<Slot>, DomainError> {
        self.check_party(party, &candidates)?;
        let fitting = self.fitting_resources(party);
        let combinations: Vec<&CandidateSet> =
            candidates.iter().filter(|c| c.seats(party.get())).collect();
        // The resources a slot may use: the fitting ones first, then every
        // other member of a combination that seats the party. Combinations
        // refer to them by position, so that each slot decides once per
        // resource whether it is usable, not once per combination member.
        let mut planned: Vec<&Resource> = fitting.clone();
        let mut members: Vec<Vec<usize>> = Vec::with_capacity(combinations.len());
        if !combinations.is_empty() {
            let mut positions: std::collections::HashMap<ResourceId, usize> = planned
                .iter()
                .enumerate()
                .map(|(position, r)| (r.id, position))
                .collect();
            let all: std::collections::HashMap<ResourceId, &Resource> =
                self.resources.iter().map(|r| (r.id, r)).collect();
            for combination in &combinations {
                let mut at = Vec::with_capacity(combination.resources.len());
                for id in &combination.resources {
                    let position = match positions.get(id) {
                        Some(position) => *position,
                        None => match all.get(id) {
                            Some(resource) => {
                                planned.push(resource);
                                positions.insert(*id, planned.len() - 1);
                                planned.len() - 1
                            }
                            // Candidates are built from these resources.
                            None => continue,
                        },
                    };
                    at.push(position);
                }
                members.push(at);
            }
        }
        // Each resource's working intervals once per day, not per slot.
        let plans: Vec<Vec<Span>> = planned
            .iter()
            .map(|r| self.venue.working_intervals(r, date))
            .collect();
        let mut usable = vec![false; planned.len()];
        let slots = grid_of(
            self.venue,
            &working_day(self.venue, &planned, date),
            self.shape(),
        )
        .into_iter()
        .filter(|(starts_at, _)| self.check_booking_window(*starts_at).is_ok())
        .filter(|(starts_at, _)| self.check_pacing(*starts_at, party).is_ok())
        .filter_map(|(starts_at, _)| {
            let (ends_at, blocked_until) = self.span(starts_at);
            // One pass over the day's occupancy per slot, not one per
            // resource: a busy day has hundreds of reservations.
            let taken: Vec<ResourceId> = self
                .occupied
                .iter()
                .filter(|o| o.overlaps(starts_at, blocked_until))
                .map(|o| o.resource_id)
                .collect();
            for ((flag, resource), hours) in usable.iter_mut().zip(&planned).zip(&plans) {
                *flag = !taken.contains(&resource.id)
                    && hours
                        .iter()
                        .any(|(opens, closes)| *opens <= starts_at && ends_at <= *closes)
                    && !self.is_closed(resource.id, starts_at, ends_at);
            }
            let free_resources: Vec<ResourceId> = fitting
                .iter()
                .zip(&usable)
                .filter(|(_, usable)| **usable)
                .map(|(r, _)| r.id)
                .collect();
            let free_combinations: Vec<Vec<ResourceId>> = combinations
                .iter()
                .zip(&members)
                .filter(|(c, positions)| {
                    positions.len() == c.resources.len() && positions.iter().all(|p| usable[*p])
                })
                .map(|(c, _)| c.resources.clone())
                .collect();
            (!free_resources.is_empty() || !free_combinations.is_empty()).then_some(Slot {
                starts_at,
                ends_at,
                free_resources,
                free_combinations,
            })
        })
        .collect();
        Ok(slots)
    }

    /// Chooses where a new booking goes: the requested resource, or else the
    /// smallest free one that seats the party (so large tables stay free for
    /// large parties), or else the smallest free combination of tables.
    pub fn place_new(
        &self,
        starts_at: DateTime<Utc>,
        party: PartySize,
        requested: Option<ResourceId>,
    ) -> Result<Placement, DomainError> {
        let candidates = self.candidate_sets();
        self.check_party(party, &candidates)?;
        self.check_start(starts_at)?;
        self.check_open(starts_at)?;
        self.check_booking_window(starts_at)?;
        self.check_pacing(starts_at, party)?;
        self.place(starts_at, party, requested, &candidates, true)
    }

    /// Chooses where a walk-in goes: it starts at `now` (the current
    /// minute, off the slot grid), so the notice period, the same-day
    /// cut-off and the opening hours do not apply: the guests are already
    /// at the door and staff decide whether to seat them (nor do the
    /// pacing caps, which shape bookings). A closure of the
    /// venue or of the table still refuses it, and so does a table that is
    /// taken. The booking lasts the venue's booking duration, even past
    /// closing time.
    pub fn place_walk_in(
        &self,
        party: PartySize,
        requested: Option<ResourceId>,
    ) -> Result<Placement, DomainError> {
        use chrono::{DurationRound as _, TimeDelta};
        let starts_at = self
            .now
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap_or(self.now);
        let candidates = self.candidate_sets();
        self.check_party(party, &candidates)?;
        self.check_open(starts_at)?;
        self.place(starts_at, party, requested, &candidates, false)
    }

    /// Chooses where a changed booking goes. It keeps its resources when
    /// they still suit the party and are free, except that a combination
    /// gives way to a single free table once the party fits one (the extra
    /// tables go back). `held` is what the booking holds now, primary first
    /// (empty: its primary resource alone). The notice period and horizon
    /// apply only when the time moves: growing a party an hour before
    /// dinner is fine.
    pub fn place_changed(
        &self,
        current: &crate::Reservation,
        held: &[ResourceId],
        starts_at: DateTime<Utc>,
        party: PartySize,
    ) -> Result<Placement, DomainError> {
        current.check_changeable(self.venue, self.now)?;
        let candidates = self.candidate_sets();
        self.check_party(party, &candidates)?;
        let moves = starts_at != current.starts_at;
        if moves {
            self.check_start(starts_at)?;
            self.check_booking_window(starts_at)?;
        }
        // A closure saved after the booking does not cancel it, but the
        // booking cannot be moved into one or grown inside one. Working
        // hours changed after the booking bind it only when it moves, like
        // the opening hours on `check_start`.
        self.check_open(starts_at)?;
        if moves || party.get() > current.party_size.get() {
            self.check_pacing(starts_at, party)?;
        }
        let held: Vec<ResourceId> = if held.is_empty() {
            vec![current.resource_id]
        } else {
            held.to_vec()
        };
        let seats = match held.as_slice() {
            [single] => self.resources.iter().any(|r| {
                r.id == *single
                    && r.active
                    && r.capacity >= party.get()
                    && self.service.is_none_or(|s| s.delivered_by(r.id))
            }),
            _ => candidates.iter().any(|c| {
                c.resources.len() == held.len()
                    && c.resources.iter().all(|id| held.contains(id))
                    && c.seats(party.get())
            }),
        };
        let keep = seats
            .then(|| self.placement_on(&held, starts_at))
            .flatten()
            .filter(|p| !moves || self.all_work(&p.resources, starts_at))
            .filter(|p| self.is_usable(p));
        match keep {
            Some(placement) if held.len() == 1 => Ok(placement),
            Some(placement) => Ok(self
                .place_single(starts_at, party, moves)
                .unwrap_or(placement)),
            None => self.place(starts_at, party, None, &candidates, moves),
        }
    }

    /// The venue's combinations of tables, smallest first; with a service,
    /// only those whose every member delivers it.
    pub fn candidate_sets(&self) -> Vec<CandidateSet> {
        let mut sets = self.venue.tables_together.candidates(self.resources);
        if let Some(delivering) = self.delivering() {
            sets.retain(|c| c.resources.iter().all(|id| delivering.contains(id)));
        }
        sets
    }

    /// The resources that deliver the service booked, when it names some.
    fn delivering(&self) -> Option<std::collections::HashSet<ResourceId>> {
        self.service
            .filter(|service| !service.resources.is_empty())
            .map(|service| service.resources.iter().copied().collect())
    }

    fn place(
        &self,
        starts_at: DateTime<Utc>,
        party: PartySize,
        requested: Option<ResourceId>,
        candidates: &[CandidateSet],
        must_work: bool,
    ) -> Result<Placement, DomainError> {
        if let Some(resource_id) = requested {
            let resource = self
                .resources
                .iter()
                .find(|r| r.id == resource_id && r.active)
                .ok_or(DomainError::not_found("resource"))?;
            if self.service.is_some_and(|s| !s.delivered_by(resource.id)) {
                return Err(DomainError::invalid(
                    "resourceId",
                    "this resource does not deliver the service booked",
                ));
            }
            if resource.capacity < party.get() {
                return Err(DomainError::invalid(
                    "resourceId",
                    format!(
                        "this resource takes at most {} people, the party has {}",
                        resource.capacity,
                        party.get()
                    ),
                ));
            }
            if must_work && !self.works(resource, starts_at) {
                return Err(DomainError::invalid(
                    "startsAt",
                    "this table, room or practitioner does not work then",
                ));
            }
            let (ends_at, blocked_until) = self.span(starts_at);
            let placement = Placement {
                resource_id: resource.id,
                resources: vec![resource.id],
                starts_at,
                ends_at,
                blocked_until,
            };
            if self.is_closed(resource.id, starts_at, placement.ends_at) {
                return Err(DomainError::invalid(
                    "startsAt",
                    "this table, room or practitioner is closed then",
                ));
            }
            return if self.is_free(resource.id, starts_at, placement.blocked_until) {
                Ok(placement)
            } else {
                Err(DomainError::SlotTaken)
            };
        }
        if let Some(placement) = self.place_single(starts_at, party, must_work) {
            return Ok(placement);
        }
        let (ends_at, _) = self.span(starts_at);
        let working_singles: Vec<&Resource> = self
            .fitting_resources(party)
            .into_iter()
            .filter(|r| !must_work || self.works(r, starts_at))
            .collect();
        let working_sets: Vec<&CandidateSet> = candidates
            .iter()
            .filter(|c| c.seats(party.get()))
            .filter(|c| !must_work || self.all_work(&c.resources, starts_at))
            .collect();
        if working_singles.is_empty() && working_sets.is_empty() {
            return Err(DomainError::invalid(
                "startsAt",
                "no table, room or practitioner for this party works then",
            ));
        }
        let open_singles = working_singles
            .iter()
            .any(|r| !self.is_closed(r.id, starts_at, ends_at));
        let open_sets: Vec<&CandidateSet> = working_sets
            .into_iter()
            .filter(|c| {
                c.resources
                    .iter()
                    .all(|id| !self.is_closed(*id, starts_at, ends_at))
            })
            .collect();
        if !open_singles && open_sets.is_empty() {
            return Err(DomainError::invalid(
                "startsAt",
                "every table, room or practitioner for this party is closed then",
            ));
        }
        open_sets
            .into_iter()
            .filter_map(|c| self.placement_on(&c.resources, starts_at))
            .find(|p| self.is_usable(p))
            .ok_or(DomainError::SlotTaken)
    }

    /// The smallest free, open single resource that seats the party (and
    /// works then, unless the booking keeps its time).
    fn place_single(
        &self,
        starts_at: DateTime<Utc>,
        party: PartySize,
        must_work: bool,
    ) -> Option<Placement> {
        self.fitting_resources(party)
            .into_iter()
            .filter(|r| !must_work || self.works(r, starts_at))
            .filter_map(|r| self.placement_on(&[r.id], starts_at))
            .find(|p| self.is_usable(p))
    }

    /// Whether every resource of a placement is open and free then.
    fn is_usable(&self, placement: &Placement) -> bool {
        placement.resources.iter().all(|id| {
            !self.is_closed(*id, placement.starts_at, placement.ends_at)
                && self.is_free(*id, placement.starts_at, placement.blocked_until)
        })
    }

    /// Whether every one of these resources works for the whole of a
    /// booking starting then.
    fn all_work(&self, resources: &[ResourceId], starts_at: DateTime<Utc>) -> bool {
        resources.iter().all(|id| {
            self.resources
                .iter()
                .find(|r| r.id == *id)
                .is_some_and(|r| self.works(r, starts_at))
        })
    }

    /// Refuses a start that would take more guests starting in its slot,
    /// or in its hour of the venue's clock, than the venue's pacing caps.
    fn check_pacing(&self, starts_at: DateTime<Utc>, party: PartySize) -> Result<(), DomainError> {
        let pacing = self.venue.pacing;
        if let Some(cap) = pacing.max_covers_per_slot {
            let covers: u32 = self
                .occupied
                .iter()
                .filter(|o| o.starts_at == starts_at)
                .map(|o| o.covers)
                .sum();
            if covers + party.get() > cap {
                return Err(DomainError::SlotTaken);
            }
        }
        if let Some(cap) = pacing.max_covers_per_hour {
            let hour = self.venue.hour_start(starts_at);
            let next = hour + chrono::Duration::hours(1);
            let covers: u32 = self
                .occupied
                .iter()
                .filter(|o| hour <= o.starts_at && o.starts_at < next)
                .map(|o| o.covers)
                .sum();
            if covers + party.get() > cap {
                return Err(DomainError::SlotTaken);
            }
        }
        Ok(())
    }

    /// Refuses a start whose booking would overlap a closure of the whole
    /// venue.
    fn check_open(&self, starts_at: DateTime<Utc>) -> Result<(), DomainError> {
        let (ends_at, _) = self.span(starts_at);
        if self
            .venue
            .closures
            .iter()
            .any(|c| c.closes_venue(starts_at, ends_at))
        {
            return Err(DomainError::invalid("startsAt", "the venue is closed then"));
        }
        Ok(())
    }

    /// Whether a closure of the venue or of this resource overlaps the
    /// booking's own time (the buffer after it may run into a closure).
    fn is_closed(
        &self,
        resource_id: ResourceId,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> bool {
        self.venue
            .closures
            .iter()
            .any(|c| c.closes(resource_id, starts_at, ends_at))
    }

    /// A placement on these resources (primary first); none for an empty
    /// list.
    fn placement_on(
        &self,
        resources: &[ResourceId],
        starts_at: DateTime<Utc>,
    ) -> Option<Placement> {
        let (&resource_id, _) = resources.split_first()?;
        let (ends_at, blocked_until) = self.span(starts_at);
        Some(Placement {
            resource_id,
            resources: resources.to_vec(),
            starts_at,
            ends_at,
            blocked_until,
        })
    }

    /// The length and buffer of the booking being decided.
    pub fn shape(&self) -> Shape {
        self.service
            .map_or_else(|| Shape::of_venue(self.venue), crate::Service::shape)
    }

    /// End of a booking starting then, and end of the buffer after it.
    fn span(&self, starts_at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let shape = self.shape();
        let ends_at = starts_at + shape.duration.duration();
        (ends_at, ends_at + shape.buffer.duration())
    }

    /// Whether a resource works for the whole of a booking starting then.
    fn works(&self, resource: &Resource, starts_at: DateTime<Utc>) -> bool {
        let (ends_at, _) = self.span(starts_at);
        self.venue.works(resource, starts_at, ends_at)
    }

    fn is_free(
        &self,
        resource_id: ResourceId,
        starts_at: DateTime<Utc>,
        blocked_until: DateTime<Utc>,
    ) -> bool {
        !self
            .occupied
            .iter()
            .any(|o| o.resource_id == resource_id && o.overlaps(starts_at, blocked_until))
    }

    /// Active resources that seat the party, smallest first; ties broken by
    /// slug so the choice is stable.
    fn fitting_resources(&self, party: PartySize) -> Vec<&Resource> {
        let mut fitting: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| r.active && r.capacity >= party.get())
            .filter(|r| self.service.is_none_or(|s| s.delivered_by(r.id)))
            .collect();
        fitting.sort_by(|a, b| {
            a.capacity
                .cmp(&b.capacity)
                .then_with(|| a.slug.cmp(&b.slug))
        });
        fitting
    }

    fn check_party(
        &self,
        party: PartySize,
        candidates: &[CandidateSet],
    ) -> Result<(), DomainError> {
        if let Some(service) = self.service {
            service.check_party(party)?;
        }
        let venue_max = self.venue.rules.max_party_size;
        if party.get() > venue_max {
            return Err(DomainError::invalid(
                "partySize",
                format!("this venue takes bookings for at most {venue_max} people"),
            ));
        }
        let largest = self
            .resources
            .iter()
            .filter(|r| r.active)
            .filter(|r| self.service.is_none_or(|s| s.delivered_by(r.id)))
            .map(|r| r.capacity)
            .chain(candidates.iter().map(|c| c.capacity))
            .max()
            .unwrap_or(0);
        if party.get() > largest {
            return Err(DomainError::invalid(
                "partySize",
                format!("no table, room or practitioner here takes more than {largest} people"),
            ));
        }
        Ok(())
    }

    /// Checks that an instant is one of the slot starts of the day: on the
    /// grid of the hours some active resource works.
    fn check_start(&self, starts_at: DateTime<Utc>) -> Result<(), DomainError> {
        if starts_at <= self.now {
            return Err(DomainError::invalid("startsAt", "is in the past"));
        }
        let venue = self.venue;
        let shape = self.shape();
        let date = venue.local_date(starts_at);
        let active: Vec<&Resource> = self
            .resources
            .iter()
            .filter(|r| r.active)
            .filter(|r| self.service.is_none_or(|s| s.delivered_by(r.id)))
            .collect();
        let day = working_day(venue, &active, date);
        if grid_of(venue, &day, shape)
            .iter()
            .any(|(slot, _)| *slot == starts_at)
        {
            return Ok(());
        }
        let local = starts_at.with_timezone(&venue.time_zone);
        let closes = day
            .iter()
            .filter(|(opens, closes)| (*opens..*closes).contains(&starts_at))
            .map(|(_, closes)| *closes)
            .max();
        let Some(closes) = closes else {
            return Err(DomainError::invalid(
                "startsAt",
                format!(
                    "{} is outside the venue's opening hours",
                    local.format("%A %H:%M")
                ),
            ));
        };
        if starts_at + shape.duration.duration() > closes {
            return Err(DomainError::invalid(
                "startsAt",
                format!(
                    "a {}-minute booking starting at {} would end after closing time",
                    shape.duration.get(),
                    local.format("%H:%M")
                ),
            ));
        }
        Err(DomainError::invalid(
            "startsAt",
            format!(
                "{} is not on the venue's {}-minute booking grid",
                local.format("%H:%M"),
                venue.rules.slot_interval.get()
            ),
        ))
    }

    /// Checks notice period, same-day cut-off and booking horizon.
    fn check_booking_window(&self, starts_at: DateTime<Utc>) -> Result<(), DomainError> {
        let rules = &self.venue.rules;
        if starts_at <= self.now {
            return Err(DomainError::invalid("startsAt", "is in the past"));
        }
        if starts_at < self.now + rules.min_notice.duration() {
            return Err(DomainError::invalid(
                "startsAt",
                format!(
                    "is inside the booking cut-off: bookings close {} minutes before the start",
                    rules.min_notice.get()
                ),
            ));
        }
        if let Some(cutoff) = rules.same_day_cutoff {
            let today = self.venue.local_date(self.now);
            let local_now = self.now.with_timezone(&self.venue.time_zone).time();
            if self.venue.local_date(starts_at) == today
                && crate::TimeOfDay::from_naive(local_now) >= cutoff
            {
                return Err(DomainError::invalid(
                    "startsAt",
                    format!("is inside the booking cut-off: same-day bookings close at {cutoff}"),
                ));
            }
        }
        if starts_at > self.now + chrono::Duration::days(i64::from(rules.max_advance_days)) {
            return Err(DomainError::invalid(
                "startsAt",
                format!("is more than {} days ahead", rules.max_advance_days),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Weekday};

    use super::*;
    use crate::venue::tests::venue_in;
    use crate::{
        BookingRules, Minutes, Reservation, ReservationId, ReservationStatus, ResourceKind, Slug,
        TimeOfDay,
    };

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, h, m, 0)
            .single()
            .expect("valid instant")
    }

    fn now() -> DateTime<Utc> {
        at(8, 0)
    }

    fn monday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 1).expect("valid date")
    }

    fn rules() -> BookingRules {
        BookingRules {
            slot_interval: Minutes::new_unchecked(30),
            booking_duration: Minutes::new_unchecked(60),
            buffer: Minutes::new_unchecked(0),
            min_notice: Minutes::new_unchecked(60),
            same_day_cutoff: None,
            cancel_deadline: Minutes::new_unchecked(120),
            max_party_size: 8,
            max_advance_days: 30,
        }
    }

    fn bistro(rules: BookingRules) -> Venue {
        let days: Vec<(Weekday, &str)> = (0..7)
            .map(|i| (crate::venue::weekday_from_index(i), "12:00-22:00"))
            .collect();
        venue_in("UTC", &days, rules)
    }

    fn table(venue: &Venue, slug: &str, capacity: u32) -> Resource {
        Resource {
            id: ResourceId::new_random(),
            venue_id: venue.id,
            slug: Slug::parse(slug).expect("valid slug"),
            name: slug.to_owned(),
            kind: ResourceKind::Table,
            capacity,
            active: true,
            hours: None,
        }
    }

    fn party(size: i64) -> PartySize {
        PartySize::parse(size).expect("valid party")
    }

    fn booked(resource: &Resource, from: DateTime<Utc>, until: DateTime<Utc>) -> Occupancy {
        Occupancy {
            resource_id: resource.id,
            starts_at: from,
            blocked_until: until,
            covers: 2,
        }
    }

    fn context<'a>(
        venue: &'a Venue,
        resources: &'a [Resource],
        occupied: &'a [Occupancy],
    ) -> BookingContext<'a> {
        BookingContext {
            venue,
            resources,
            occupied,
            now: now(),
            service: None,
        }
    }

    fn reason(result: Result<Placement, DomainError>) -> String {
        match result {
            Err(DomainError::InvalidInput { reason, .. }) => reason,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn a_walk_in_starts_at_the_current_minute_outside_hours_and_inside_the_notice() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 2), table(&venue, "t2", 4)];
        let ctx = BookingContext {
            now: at(8, 0) + chrono::Duration::seconds(42),
            ..context(&venue, &resources, &[])
        };
        let placement = ctx.place_walk_in(party(2), None).expect("free");
        assert_eq!(
            (
                placement.resource_id,
                placement.starts_at,
                placement.ends_at
            ),
            (resources[0].id, at(8, 0), at(9, 0))
        );
        let occupied = [booked(&resources[0], at(7, 30), at(8, 30))];
        let ctx = BookingContext {
            now: at(8, 0),
            ..context(&venue, &resources, &occupied)
        };
        assert_eq!(
            ctx.place_walk_in(party(2), Some(resources[0].id)),
            Err(DomainError::SlotTaken)
        );
        assert_eq!(
            ctx.place_walk_in(party(2), None).map(|p| p.resource_id),
            Ok(resources[1].id)
        );
        assert!(ctx.place_walk_in(party(5), None).is_err());
    }

    #[test]
    fn back_to_back_bookings_on_one_table_both_fit() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let occupied = [booked(&resources[0], at(12, 0), at(13, 0))];
        let placement = context(&venue, &resources, &occupied)
            .place_new(at(13, 0), party(2), None)
            .expect("free");
        assert_eq!(
            (placement.starts_at, placement.ends_at),
            (at(13, 0), at(14, 0))
        );
    }

    #[test]
    fn the_buffer_after_a_booking_keeps_the_table_blocked() {
        let venue = bistro(BookingRules {
            buffer: Minutes::new_unchecked(15),
            ..rules()
        });
        let resources = [table(&venue, "t1", 4)];
        let first = context(&venue, &resources, &[])
            .place_new(at(12, 0), party(2), None)
            .expect("free");
        assert_eq!(first.blocked_until, at(13, 15));
        let occupied = [booked(&resources[0], first.starts_at, first.blocked_until)];
        let ctx = context(&venue, &resources, &occupied);
        assert_eq!(
            ctx.place_new(at(13, 0), party(2), None),
            Err(DomainError::SlotTaken)
        );
        assert!(ctx.place_new(at(13, 30), party(2), None).is_ok());
    }

    #[test]
    fn a_booking_that_would_run_into_the_next_one_is_refused() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let occupied = [booked(&resources[0], at(13, 0), at(14, 0))];
        let ctx = context(&venue, &resources, &occupied);
        assert_eq!(
            ctx.place_new(at(12, 30), party(2), None),
            Err(DomainError::SlotTaken)
        );
    }

    #[test]
    fn the_smallest_table_that_seats_the_party_is_chosen() {
        let venue = bistro(rules());
        let resources = [
            table(&venue, "big", 8),
            table(&venue, "two", 2),
            table(&venue, "four", 4),
        ];
        let ctx = context(&venue, &resources, &[]);
        let placement = ctx.place_new(at(12, 0), party(3), None).expect("free");
        assert_eq!(placement.resource_id, resources[2].id);
        let placement = ctx.place_new(at(12, 0), party(2), None).expect("free");
        assert_eq!(placement.resource_id, resources[1].id);
    }

    #[test]
    fn when_the_smallest_fitting_table_is_taken_the_next_one_is_used() {
        let venue = bistro(rules());
        let resources = [table(&venue, "four", 4), table(&venue, "six", 6)];
        let occupied = [booked(&resources[0], at(12, 0), at(13, 0))];
        let placement = context(&venue, &resources, &occupied)
            .place_new(at(12, 0), party(3), None)
            .expect("free");
        assert_eq!(placement.resource_id, resources[1].id);
    }

    #[test]
    fn a_requested_table_is_used_even_when_a_smaller_one_would_do() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2), table(&venue, "six", 6)];
        let placement = context(&venue, &resources, &[])
            .place_new(at(12, 0), party(2), Some(resources[1].id))
            .expect("free");
        assert_eq!(placement.resource_id, resources[1].id);
    }

    #[test]
    fn a_requested_table_that_is_too_small_taken_or_unknown_is_refused() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2), table(&venue, "six", 6)];
        let occupied = [booked(&resources[1], at(12, 0), at(13, 0))];
        let ctx = context(&venue, &resources, &occupied);
        assert!(
            reason(ctx.place_new(at(12, 0), party(4), Some(resources[0].id))).contains("at most 2")
        );
        assert_eq!(
            ctx.place_new(at(12, 0), party(4), Some(resources[1].id)),
            Err(DomainError::SlotTaken)
        );
        assert_eq!(
            ctx.place_new(at(12, 0), party(2), Some(ResourceId::new_random())),
            Err(DomainError::not_found("resource"))
        );
    }

    #[test]
    fn a_retired_table_takes_no_bookings() {
        let venue = bistro(rules());
        let mut retired = table(&venue, "old", 4);
        retired.active = false;
        let resources = [retired, table(&venue, "two", 2)];
        let ctx = context(&venue, &resources, &[]);
        assert!(reason(ctx.place_new(at(12, 0), party(3), None)).contains("more than 2"));
        assert_eq!(
            ctx.place_new(at(12, 0), party(2), Some(resources[0].id)),
            Err(DomainError::not_found("resource"))
        );
    }

    #[test]
    fn parties_above_the_venue_maximum_or_the_largest_table_are_refused() {
        let venue = bistro(rules());
        let resources = [table(&venue, "six", 6)];
        let ctx = context(&venue, &resources, &[]);
        assert!(reason(ctx.place_new(at(12, 0), party(7), None)).contains("more than 6"));
        assert!(reason(ctx.place_new(at(12, 0), party(9), None)).contains("at most 8 people"));
        assert!(ctx.availability(monday(), party(9)).is_err());
    }

    #[test]
    fn starts_outside_hours_off_grid_or_running_past_closing_are_refused_with_the_reason() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let ctx = context(&venue, &resources, &[]);
        assert!(reason(ctx.place_new(at(7, 0), party(2), None)).contains("in the past"));
        assert!(reason(ctx.place_new(at(23, 0), party(2), None)).contains("opening hours"));
        assert!(
            reason(ctx.place_new(at(12, 10), party(2), None)).contains("30-minute booking grid")
        );
        assert!(reason(ctx.place_new(at(21, 30), party(2), None)).contains("after closing time"));
    }

    #[test]
    fn bookings_inside_the_notice_period_are_refused() {
        let venue = bistro(BookingRules {
            min_notice: Minutes::new_unchecked(300),
            ..rules()
        });
        let resources = [table(&venue, "t1", 4)];
        let ctx = context(&venue, &resources, &[]);
        assert!(reason(ctx.place_new(at(12, 30), party(2), None)).contains("cut-off"));
        assert!(ctx.place_new(at(13, 0), party(2), None).is_ok());
    }

    #[test]
    fn after_the_same_day_cut_off_only_later_days_can_be_booked() {
        let venue = bistro(BookingRules {
            same_day_cutoff: TimeOfDay::parse("07:00").ok(),
            ..rules()
        });
        let resources = [table(&venue, "t1", 4)];
        let ctx = context(&venue, &resources, &[]);
        assert!(reason(ctx.place_new(at(18, 0), party(2), None)).contains("same-day"));
        let tomorrow = at(18, 0) + chrono::Duration::days(1);
        assert!(ctx.place_new(tomorrow, party(2), None).is_ok());
        assert!(
            ctx.availability(monday(), party(2))
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn bookings_beyond_the_horizon_are_refused() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let ctx = context(&venue, &resources, &[]);
        let far = at(12, 0) + chrono::Duration::days(31);
        assert!(reason(ctx.place_new(far, party(2), None)).contains("30 days ahead"));
    }

    #[test]
    fn availability_lists_free_grid_times_after_the_notice_period() {
        let venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let occupied = [booked(&resources[0], at(14, 0), at(15, 0))];
        let slots = context(&venue, &resources, &occupied)
            .availability(monday(), party(2))
            .expect("valid");
        let starts: Vec<String> = slots
            .iter()
            .map(|s| s.starts_at.format("%H:%M").to_string())
            .collect();
        // 12:00..=21:00 every 30 minutes, minus 13:30, 14:00 and 14:30, which
        // would overlap the 14:00-15:00 booking.
        assert_eq!(starts.len(), 19 - 3);
        assert!(!starts.contains(&"13:30".to_owned()));
        assert!(!starts.contains(&"14:30".to_owned()));
        assert!(starts.contains(&"13:00".to_owned()));
        assert!(starts.contains(&"15:00".to_owned()));
    }

    #[test]
    fn availability_lists_the_free_tables_smallest_first() {
        let venue = bistro(rules());
        let resources = [
            table(&venue, "six", 6),
            table(&venue, "two", 2),
            table(&venue, "four", 4),
        ];
        let occupied = [booked(&resources[2], at(12, 0), at(13, 0))];
        let slots = context(&venue, &resources, &occupied)
            .availability(monday(), party(2))
            .expect("valid");
        assert_eq!(
            slots[0].free_resources,
            vec![resources[1].id, resources[0].id]
        );
        assert_eq!(slots[0].ends_at, at(13, 0));
    }

    #[test]
    fn availability_on_the_day_clocks_go_forward_uses_the_summer_offset() {
        let days: Vec<(Weekday, &str)> = (0..7)
            .map(|i| (crate::venue::weekday_from_index(i), "12:00-14:00"))
            .collect();
        let venue = venue_in("Europe/Amsterdam", &days, rules());
        let resources = [table(&venue, "t1", 4)];
        let ctx = BookingContext {
            venue: &venue,
            resources: &resources,
            occupied: &[],
            now: Utc
                .with_ymd_and_hms(2026, 3, 28, 9, 0, 0)
                .single()
                .expect("valid"),
            service: None,
        };
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).expect("valid");
        let slots = ctx.availability(date, party(2)).expect("valid");
        let starts: Vec<String> = slots.iter().map(|s| s.starts_at.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-29T10:00:00+00:00",
                "2026-03-29T10:30:00+00:00",
                "2026-03-29T11:00:00+00:00"
            ]
        );
        assert!(ctx.place_new(slots[0].starts_at, party(2), None).is_ok());
        let winter_noon = Utc
            .with_ymd_and_hms(2026, 3, 29, 11, 0, 0)
            .single()
            .expect("valid");
        assert!(
            ctx.place_new(winter_noon + chrono::Duration::minutes(90), party(2), None)
                .is_err()
        );
    }

    fn reservation_of(resource: &Resource, starts_at: DateTime<Utc>, size: i64) -> Reservation {
        Reservation {
            id: ReservationId::new_random(),
            venue_id: resource.venue_id,
            resource_id: resource.id,
            guest_id: None,
            party_size: party(size),
            starts_at,
            ends_at: starts_at + chrono::Duration::hours(1),
            blocked_until: starts_at + chrono::Duration::hours(1),
            status: ReservationStatus::Confirmed,
            hold_until: None,
            created_at: now(),
            updated_at: now(),
            service_id: None,
        }
    }

    #[test]
    fn a_changed_party_that_still_fits_keeps_its_table() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2), table(&venue, "four", 4)];
        let current = reservation_of(&resources[1], at(18, 0), 2);
        let placement = context(&venue, &resources, &[])
            .place_changed(&current, &[], at(18, 0), party(3))
            .expect("fits");
        assert_eq!(placement.resource_id, resources[1].id);
    }

    #[test]
    fn a_party_that_outgrows_its_table_moves_to_a_larger_one() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2), table(&venue, "six", 6)];
        let current = reservation_of(&resources[0], at(18, 0), 2);
        let placement = context(&venue, &resources, &[])
            .place_changed(&current, &[], at(18, 0), party(5))
            .expect("fits");
        assert_eq!(placement.resource_id, resources[1].id);
    }

    #[test]
    fn a_change_to_a_taken_time_is_refused() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2)];
        let current = reservation_of(&resources[0], at(18, 0), 2);
        let occupied = [booked(&resources[0], at(19, 0), at(20, 0))];
        assert_eq!(
            context(&venue, &resources, &occupied).place_changed(
                &current,
                &[],
                at(19, 30),
                party(2)
            ),
            Err(DomainError::SlotTaken)
        );
    }

    #[test]
    fn changes_and_cancellations_close_at_the_venue_deadline() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2)];
        let mut soon = reservation_of(&resources[0], at(9, 30), 2);
        let ctx = context(&venue, &resources, &[]);
        assert!(
            reason(ctx.place_changed(&soon, &[], at(18, 0), party(2)))
                .contains("deadline has passed")
        );
        assert!(soon.cancel(&venue, now()).is_err());
        let mut later = reservation_of(&resources[0], at(10, 0), 2);
        assert!(later.cancel(&venue, now()).is_ok());
        assert_eq!(later.status, ReservationStatus::Cancelled);
    }

    #[test]
    fn a_cancelled_reservation_cannot_be_cancelled_or_changed_again() {
        let venue = bistro(rules());
        let resources = [table(&venue, "two", 2)];
        let mut reservation = reservation_of(&resources[0], at(18, 0), 2);
        reservation.cancel(&venue, now()).expect("first cancel");
        assert!(matches!(
            reservation.cancel(&venue, now()),
            Err(DomainError::Conflict(_))
        ));
        assert!(matches!(
            context(&venue, &resources, &[]).place_changed(&reservation, &[], at(19, 0), party(2)),
            Err(DomainError::Conflict(_))
        ));
    }

    fn closure(
        venue: &Venue,
        resource: Option<&Resource>,
        from: &str,
        until: &str,
    ) -> crate::Closure {
        let local = |raw| crate::closure::parse_local(raw).expect("valid local time");
        crate::Closure::resolve(
            crate::ClosureId::new_random(),
            venue.time_zone,
            resource.map(|r| r.id),
            local(from),
            local(until),
            None,
        )
    }

    #[test]
    fn a_venue_closure_removes_its_slots_and_refuses_bookings_inside_it() {
        let mut venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        venue.closures = vec![closure(
            &venue,
            None,
            "2026-06-01T14:00",
            "2026-06-01T16:00",
        )];
        let ctx = context(&venue, &resources, &[]);
        let starts: Vec<DateTime<Utc>> = ctx
            .availability(monday(), party(2))
            .expect("valid")
            .iter()
            .map(|s| s.starts_at)
            .collect();
        assert!(starts.contains(&at(13, 0)), "ends as the closure starts");
        assert!(!starts.contains(&at(13, 30)), "runs into the closure");
        assert!(!starts.contains(&at(15, 30)));
        assert!(starts.contains(&at(16, 0)), "starts as the closure ends");
        assert_eq!(
            reason(ctx.place_new(at(14, 0), party(2), None)),
            "the venue is closed then"
        );
        assert!(ctx.place_new(at(16, 0), party(2), None).is_ok());
        assert!(ctx.place_new(at(13, 0), party(2), None).is_ok());
    }

    #[test]
    fn a_resource_closure_removes_only_that_resource() {
        let mut venue = bistro(rules());
        let resources = [table(&venue, "t1", 4), table(&venue, "t2", 4)];
        venue.closures = vec![closure(
            &venue,
            Some(&resources[0]),
            "2026-06-01",
            "2026-06-02",
        )];
        let ctx = context(&venue, &resources, &[]);
        let slots = ctx.availability(monday(), party(2)).expect("valid");
        assert!(!slots.is_empty());
        assert!(
            slots
                .iter()
                .all(|s| s.free_resources == vec![resources[1].id])
        );
        let placed = ctx
            .place_new(at(14, 0), party(2), None)
            .expect("t2 is open");
        assert_eq!(placed.resource_id, resources[1].id);
        assert!(
            reason(ctx.place_new(at(14, 0), party(2), Some(resources[0].id))).contains("closed")
        );
        let occupied = [booked(&resources[1], at(14, 0), at(15, 0))];
        assert!(
            matches!(
                context(&venue, &resources, &occupied).place_new(at(14, 0), party(2), None),
                Err(DomainError::SlotTaken)
            ),
            "t1 closed and t2 taken: nothing to offer"
        );
    }

    #[test]
    fn a_closure_cannot_be_moved_into() {
        let mut venue = bistro(rules());
        let resources = [table(&venue, "t1", 4)];
        let booking = reservation_of(&resources[0], at(18, 0), 2);
        venue.closures = vec![closure(
            &venue,
            None,
            "2026-06-01T14:00",
            "2026-06-01T16:00",
        )];
        assert!(matches!(
            context(&venue, &resources, &[]).place_changed(&booking, &[], at(14, 0), party(2)),
            Err(DomainError::InvalidInput { .. })
        ));
    }

    /// A closure from 22:00 to 04:00 over the nights clocks change in
    /// Amsterdam: the hours it names are closed, on either side of the
    /// change, and the hours just outside stay bookable.
    #[test]
    fn a_closure_over_a_daylight_saving_night_covers_its_wall_clock_hours() {
        let days: Vec<(Weekday, &str)> = (0..7)
            .map(|i| (crate::venue::weekday_from_index(i), "00:00-24:00"))
            .collect();
        let mut venue = venue_in("Europe/Amsterdam", &days, rules());
        let resources = [table(&venue, "t1", 4)];
        venue.closures = vec![
            closure(&venue, None, "2026-03-28T22:00", "2026-03-29T04:00"),
            closure(&venue, None, "2026-10-24T22:00", "2026-10-25T04:00"),
        ];
        let utc = |m, d, h, min| {
            Utc.with_ymd_and_hms(2026, m, d, h, min, 0)
                .single()
                .expect("valid")
        };
        for (now, open, closed) in [
            (
                utc(3, 27, 12, 0),
                // 21:00 CET (ends as it closes), 04:00 CEST.
                [utc(3, 28, 20, 0), utc(3, 29, 2, 0)],
                // 22:00 CET, 01:00 CET, 03:00 CEST, 03:30 CEST.
                vec![
                    utc(3, 28, 21, 0),
                    utc(3, 29, 0, 0),
                    utc(3, 29, 1, 0),
                    utc(3, 29, 1, 30),
                ],
            ),
            (
                utc(10, 23, 12, 0),
                // 21:00 CEST, 04:00 CET.
                [utc(10, 24, 19, 0), utc(10, 25, 3, 0)],
                // 22:00 CEST, both 02:30s, 03:30 CET.
                vec![
                    utc(10, 24, 20, 0),
                    utc(10, 25, 0, 30),
                    utc(10, 25, 1, 30),
                    utc(10, 25, 2, 30),
                ],
            ),
        ] {
            let ctx = BookingContext {
                venue: &venue,
                resources: &resources,
                occupied: &[],
                now,
                service: None,
            };
            for start in open {
                assert!(
                    ctx.place_new(start, party(2), None).is_ok(),
                    "{start} is outside the closure"
                );
            }
            for start in closed {
                assert_eq!(
                    reason(ctx.place_new(start, party(2), None)),
                    "the venue is closed then",
                    "{start} is inside the closure"
                );
            }
        }
    }

    fn line_of_tables(venue: &mut Venue, capacities: &[u32]) -> Vec<Resource> {
        let tables: Vec<Resource> = capacities
            .iter()
            .enumerate()
            .map(|(i, c)| table(venue, &format!("t{}", i + 1), *c))
            .collect();
        venue.tables_together.combinations = tables
            .windows(2)
            .map(|pair| crate::Combination {
                resources: vec![pair[0].id, pair[1].id],
                capacity: pair[0].capacity + pair[1].capacity,
                min_party: None,
            })
            .collect();
        tables
    }

    #[test]
    fn a_party_above_every_table_gets_the_smallest_free_combination() {
        let mut venue = bistro(BookingRules {
            max_party_size: 20,
            ..rules()
        });
        let tables = line_of_tables(&mut venue, &[4, 4, 6, 4]);
        let ctx = context(&venue, &tables, &[]);
        let placed = ctx.place_new(at(18, 0), party(7), None).expect("combined");
        assert_eq!(placed.resources, vec![tables[0].id, tables[1].id]);
        assert_eq!(placed.resource_id, tables[0].id);
        let single = ctx.place_new(at(18, 0), party(5), None).expect("single");
        assert_eq!(single.resources, vec![tables[2].id], "one table first");
        let occupied = [booked(&tables[1], at(18, 0), at(19, 0))];
        let placed = context(&venue, &tables, &occupied)
            .place_new(at(18, 0), party(7), None)
            .expect("next");
        assert_eq!(placed.resources, vec![tables[2].id, tables[3].id]);
        assert!(reason(ctx.place_new(at(18, 0), party(11), None)).contains("more than 10"));
        let slots = context(&venue, &tables, &occupied)
            .availability(monday(), party(7))
            .expect("valid");
        let six = slots
            .iter()
            .find(|s| s.starts_at == at(18, 0))
            .expect("offered");
        assert!(six.free_resources.is_empty());
        assert_eq!(
            six.free_combinations,
            vec![vec![tables[2].id, tables[3].id]]
        );
    }

    #[test]
    fn a_combination_with_a_closed_or_taken_member_is_not_offered() {
        let mut venue = bistro(rules());
        let tables = line_of_tables(&mut venue, &[4, 4]);
        venue.closures = vec![closure(
            &venue,
            Some(&tables[1]),
            "2026-06-01T18:00",
            "2026-06-01T19:00",
        )];
        let ctx = context(&venue, &tables, &[]);
        assert!(reason(ctx.place_new(at(18, 0), party(7), None)).contains("closed"));
        let starts: Vec<DateTime<Utc>> = ctx
            .availability(monday(), party(7))
            .expect("valid")
            .iter()
            .map(|s| s.starts_at)
            .collect();
        assert!(!starts.contains(&at(18, 0)) && starts.contains(&at(19, 0)));
        let occupied = [booked(&tables[0], at(20, 0), at(21, 0))];
        assert_eq!(
            context(&venue, &tables, &occupied).place_new(at(20, 0), party(7), None),
            Err(DomainError::SlotTaken)
        );
    }

    #[test]
    fn a_smaller_party_gives_back_the_extra_table_and_a_larger_one_joins() {
        let mut venue = bistro(rules());
        let tables = line_of_tables(&mut venue, &[4, 4]);
        let mut current = reservation_of(&tables[0], at(18, 0), 7);
        let held = [tables[0].id, tables[1].id];
        let ctx = context(&venue, &tables, &[]);
        let kept = ctx
            .place_changed(&current, &held, at(18, 0), party(6))
            .expect("kept");
        assert_eq!(kept.resources, held.to_vec());
        let smaller = ctx
            .place_changed(&current, &held, at(18, 0), party(3))
            .expect("single");
        assert_eq!(smaller.resources.len(), 1);
        current.party_size = party(3);
        let grown = ctx
            .place_changed(&current, &[tables[0].id], at(18, 0), party(8))
            .expect("joined");
        assert_eq!(grown.resources, held.to_vec());
    }

    #[test]
    fn pacing_caps_the_covers_starting_per_slot_and_per_hour() {
        let mut venue = bistro(rules());
        venue.pacing = crate::Pacing {
            max_covers_per_slot: Some(6),
            max_covers_per_hour: Some(8),
        };
        let tables: Vec<Resource> = (1..=6)
            .map(|i| table(&venue, &format!("t{i}"), 6))
            .collect();
        let occupied = [
            booked(&tables[0], at(18, 0), at(19, 0)),
            booked(&tables[1], at(18, 0), at(19, 0)),
        ];
        let ctx = context(&venue, &tables, &occupied);
        assert!(ctx.place_new(at(18, 0), party(2), None).is_ok());
        assert_eq!(
            ctx.place_new(at(18, 0), party(3), None),
            Err(DomainError::SlotTaken),
            "4 + 3 > 6 in the slot"
        );
        assert!(ctx.place_new(at(18, 30), party(4), None).is_ok());
        assert_eq!(
            ctx.place_new(at(18, 30), party(5), None),
            Err(DomainError::SlotTaken),
            "4 + 5 > 8 in the hour"
        );
        assert!(ctx.place_new(at(19, 0), party(4), None).is_ok());
        let starts: Vec<DateTime<Utc>> = ctx
            .availability(monday(), party(5))
            .expect("valid")
            .iter()
            .map(|s| s.starts_at)
            .collect();
        assert!(!starts.contains(&at(18, 0)) && !starts.contains(&at(18, 30)));
        assert!(starts.contains(&at(19, 0)));
    }

    fn week(day: usize, raw: &str) -> crate::WeeklySchedule {
        let mut days: [Vec<crate::OpeningInterval>; 7] = Default::default();
        days[day] = vec![crate::OpeningInterval::parse(raw).expect("valid interval")];
        crate::WeeklySchedule::new(days).expect("valid week")
    }

    /// Monday 1 June 2026 in UTC, a bistro open 12:00-22:00 with a table
    /// that only works Monday 18:00-20:00.
    #[test]
    fn a_resource_with_its_own_hours_is_offered_only_inside_them() {
        let venue = bistro(rules());
        let mut evening = table(&venue, "evening", 4);
        evening.hours = Some(week(0, "18:00-20:00"));
        let resources = [evening, table(&venue, "all-day", 2)];
        let ctx = context(&venue, &resources, &[]);
        let slots = ctx.availability(monday(), party(4)).expect("valid");
        let starts: Vec<DateTime<Utc>> = slots.iter().map(|s| s.starts_at).collect();
        assert_eq!(starts, vec![at(18, 0), at(18, 30), at(19, 0)]);
        assert_eq!(
            reason(ctx.place_new(at(14, 0), party(4), None)),
            "no table, room or practitioner for this party works then"
        );
        assert_eq!(
            reason(ctx.place_new(at(19, 30), party(4), None)),
            "no table, room or practitioner for this party works then",
            "19:30 is on the venue's grid, but a booking then runs past 20:00"
        );
        assert_eq!(
            reason(ctx.place_new(at(14, 0), party(2), Some(resources[0].id))),
            "this table, room or practitioner does not work then"
        );
        let placed = ctx
            .place_new(at(14, 0), party(2), None)
            .expect("all-day works");
        assert_eq!(placed.resource_id, resources[1].id);
    }

    #[test]
    fn hours_of_its_own_can_reach_outside_the_venues() {
        let venue = bistro(rules());
        let mut early = table(&venue, "early", 4);
        early.hours = Some(week(0, "09:00-11:00"));
        let resources = [early];
        let ctx = context(&venue, &resources, &[]);
        let placed = ctx
            .place_new(at(9, 30), party(2), None)
            .expect("works then");
        assert_eq!(placed.ends_at, at(10, 30));
        assert!(reason(ctx.place_new(at(12, 0), party(2), None)).contains("opening hours"));
    }

    #[test]
    fn exceptions_replace_the_plan_of_their_date() {
        let mut venue = bistro(rules());
        let resources = [table(&venue, "t1", 4), table(&venue, "t2", 4)];
        venue.exceptions = vec![
            crate::HoursException {
                resource_id: None,
                date: monday(),
                hours: vec![crate::OpeningInterval::parse("20:00-23:00").expect("valid")],
            },
            crate::HoursException {
                resource_id: Some(resources[1].id),
                date: monday(),
                hours: Vec::new(),
            },
        ];
        let ctx = context(&venue, &resources, &[]);
        let slots = ctx.availability(monday(), party(2)).expect("valid");
        assert_eq!(slots.first().map(|s| s.starts_at), Some(at(20, 0)));
        assert_eq!(slots.last().map(|s| s.starts_at), Some(at(22, 0)));
        assert!(
            slots
                .iter()
                .all(|s| s.free_resources == vec![resources[0].id])
        );
        assert!(reason(ctx.place_new(at(13, 0), party(2), None)).contains("opening hours"));
        assert!(ctx.place_new(at(22, 0), party(2), None).is_ok());

        venue.exceptions[0].hours = Vec::new();
        let closed = context(&venue, &resources, &[]);
        assert!(
            closed
                .availability(monday(), party(2))
                .expect("valid")
                .is_empty()
        );
    }

    /// A practitioner who works Sunday 01:00-05:00 in Amsterdam: on the
    /// night clocks go forward those are three real hours, on the night
    /// they go back five, and the wall-clock ends stay put.
    #[test]
    fn own_hours_and_exceptions_follow_the_wall_clock_on_daylight_saving_days() {
        let mut venue = venue_in("Europe/Amsterdam", &[], rules());
        let mut night = table(&venue, "night", 2);
        night.hours = Some(week(6, "01:00-05:00"));
        let resources = [night];
        let utc = |m, d, h, min| {
            Utc.with_ymd_and_hms(2026, m, d, h, min, 0)
                .single()
                .expect("valid")
        };
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("valid");
        let starts = |venue: &Venue, now, date| -> Vec<String> {
            BookingContext {
                venue,
                resources: &resources,
                occupied: &[],
                now,
                service: None,
            }
            .availability(date, party(2))
            .expect("valid")
            .iter()
            .map(|s| s.starts_at.format("%H:%M").to_string())
            .collect()
        };
        // Spring: 01:00 CET = 00:00 UTC to 05:00 CEST = 03:00 UTC.
        assert_eq!(
            starts(&venue, utc(3, 27, 12, 0), day(3, 29)),
            ["00:00", "00:30", "01:00", "01:30", "02:00"]
        );
        // Autumn: 01:00 CEST = 23:00 UTC to 05:00 CET = 04:00 UTC.
        assert_eq!(
            starts(&venue, utc(10, 23, 12, 0), day(10, 25)).len(),
            9,
            "five real hours, last start an hour before the end"
        );
        // An exception on the spring night: 03:00-04:00 local, one real
        // hour after the jump (01:00-02:00 UTC).
        venue.exceptions = vec![crate::HoursException {
            resource_id: Some(resources[0].id),
            date: day(3, 29),
            hours: vec![crate::OpeningInterval::parse("03:00-04:00").expect("valid")],
        }];
        assert_eq!(starts(&venue, utc(3, 27, 12, 0), day(3, 29)), ["01:00"]);
        let ctx = BookingContext {
            venue: &venue,
            resources: &resources,
            occupied: &[],
            now: utc(3, 27, 12, 0),
            service: None,
        };
        assert!(ctx.place_new(utc(3, 29, 1, 0), party(2), None).is_ok());
        assert!(reason(ctx.place_new(utc(3, 29, 0, 0), party(2), None)).contains("opening hours"));
    }

    /// A 90-minute service with a 30-minute buffer that only the second
    /// table delivers: its grid ends 90 minutes before closing, and a
    /// booking of it blocks its table for two hours.
    #[test]
    fn a_service_brings_its_length_buffer_and_resources() {
        let mut venue = bistro(rules());
        let resources = [table(&venue, "t1", 4), table(&venue, "t2", 4)];
        let service = crate::Service {
            id: crate::ServiceId::new_random(),
            venue_id: venue.id,
            slug: Slug::parse("lunch").expect("valid"),
            name: "Lunch".to_owned(),
            duration: Minutes::new_unchecked(90),
            buffer: Minutes::new_unchecked(30),
            min_party: 2,
            max_party: 4,
            resources: vec![resources[1].id],
            payment: None,
            active: true,
        };
        venue.services = vec![service.clone()];
        let ctx = BookingContext {
            service: Some(&service),
            ..context(&venue, &resources, &[])
        };
        let slots = ctx.availability(monday(), party(2)).expect("valid");
        assert_eq!(slots.last().map(|s| s.starts_at), Some(at(20, 30)));
        assert!(
            slots
                .iter()
                .all(|s| s.free_resources == vec![resources[1].id])
        );
        let placed = ctx.place_new(at(12, 0), party(2), None).expect("t2");
        assert_eq!(
            (placed.resource_id, placed.ends_at, placed.blocked_until),
            (resources[1].id, at(13, 30), at(14, 0))
        );
        assert!(reason(ctx.place_new(at(12, 0), party(1), None)).contains("2 to 4 people"));
        assert!(
            reason(ctx.place_new(at(12, 0), party(2), Some(resources[0].id)))
                .contains("does not deliver")
        );
        assert_eq!(
            venue.service_for(None).map(|s| s.is_some()).map_err(|_| ()),
            Err(())
        );
        assert_eq!(
            venue.service_for(Some(crate::ServiceId::new_random())),
            Err(DomainError::not_found("service"))
        );
    }
}
