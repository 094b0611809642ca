//! Booking, changing and cancelling. Each runs the domain's rules inside the
//! write transaction that records the outcome; on PostgreSQL the exclusion
//! constraint is the final word on overlaps, on SQLite the immediate
//! transaction makes the check and the write one step.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::{DataKey, Field, KeyRing};
use domain::ports::{
    Booking, GuestRecord, NewReservation, ReservationChange, ReservationRepository,
};
use domain::webhooks::ReservationEvent;
use domain::{
    BookingContext, DomainError, Email, GuestId, IdempotencyKey, ManageToken, Phone, Placement,
    Reservation, ReservationId, ReservationStatus, Venue, VenueId,
};
use sha2::{Digest, Sha256};

use crate::guests::{
    GuestRow, db_version, find_guest_id, open_notes, open_text, seal_guest, tokens,
};
use crate::idempotency::{claim_key, claim_sealed_key, fingerprint, record_answer};
use crate::rows::{
    OpeningHoursRow, ReservationRow, ResourceRow, VenueRow, db_instant, db_int, reservation_columns,
};
use crate::venues::{load_occupancy, load_resources, load_venue};
use crate::{Race, Store, StoreError, Tx, WriteTransaction, on_backend};

/// Keyed the digest of a booking's guest details inside its fingerprint,
/// before fingerprints were sealed; still read for older records.
const LEGACY_REQUEST_DIGEST: Field = Field::new("idempotency_keys", "request");

/// Attempts per request when a concurrent writer got in between the checks
/// and the write; the next attempt sees what that writer committed.
const ATTEMPTS: usize = 4;

pub(crate) enum Outcome<T> {
    Done(T),
    Retry(Race),
}

pub(crate) fn retry_on_overlap<T>(error: diesel::result::Error) -> Result<Outcome<T>, StoreError> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ExclusionViolation,
            _,
        ) => Ok(Outcome::Retry(Race::Overlap)),
        // SQLite's trigger that stands in for the exclusion constraint.
        diesel::result::Error::DatabaseError(_, info)
            if info.message().contains("reservation_holds_no_overlap") =>
        {
            Ok(Outcome::Retry(Race::Overlap))
        }
        other => Err(other.into()),
    }
}

/// The resources a reservation holds, its primary one first.
macro_rules! load_holds {
    ($c:expr, $s:ident, $id:expr, $primary:expr) => {
        $crate::step(|| {
            Ok({
                use $s::reservation_holds::dsl as h;
                let primary: &str = $primary;
                let mut ids: Vec<String> = h::reservation_holds
                    .filter(h::reservation_id.eq($id))
                    .select(h::resource_id)
                    .order(h::resource_id)
                    .load($c)?;
                ids.sort_by_key(|id| id != primary);
                ids.iter()
                    .map(|id| {
                        domain::ResourceId::parse(id)
                            .map_err(|_| StoreError::Corrupt(format!("held resource id {id}")))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?
            })
        })
    };
}

/// Writes holds of a reservation on these resources (its extra tables; the
/// trigger writes the primary one). An overlap surfaces as the database's
/// error, for `retry_on_overlap`.
macro_rules! insert_holds {
    ($c:expr, $s:ident, $reservation:expr, $resources:expr) => {{
        use $s::reservation_holds::dsl as h;
        let reservation: &Reservation = $reservation;
        let mut result: Result<usize, diesel::result::Error> = Ok(0);
        for resource in $resources {
            result = diesel::insert_into(h::reservation_holds)
                .values((
                    h::reservation_id.eq(reservation.id.to_string()),
                    h::resource_id.eq(resource.to_string()),
                    h::starts_at.eq(db_instant(reservation.starts_at)),
                    h::blocked_until.eq(db_instant(reservation.blocked_until)),
                    h::active.eq(reservation.status.is_active()),
                ))
                .execute($c);
            if result.is_err() {
                break;
            }
        }
        result
    }};
}
pub(crate) use insert_holds;

/// Where the occupancy a booking at `starts_at` must see begins: its own
/// start, or the start of its hour on the venue's clock when the venue caps
/// covers per hour (earlier arrivals in that hour count).
fn occupancy_from(venue: &Venue, starts_at: DateTime<Utc>) -> DateTime<Utc> {
    if venue.pacing.max_covers_per_hour.is_some() {
        venue.hour_start(starts_at).min(starts_at)
    } else {
        starts_at
    }
}

fn to_answer(row: &ReservationRow) -> Result<String, StoreError> {
    serde_json::to_string(row).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_answer(answer: &str) -> Result<Reservation, StoreError> {
    let row: ReservationRow = serde_json::from_str(answer)
        .map_err(|e| StoreError::Corrupt(format!("stored answer: {e}")))?;
    Reservation::try_from(row)
}

pub(crate) fn row_of(reservation: &Reservation, version: i32) -> ReservationRow {
    ReservationRow {
        guest_id: reservation.guest_id.map(|id| id.to_string()),
        hold_until: reservation.hold_until.map(db_instant),
        id: reservation.id.to_string(),
        venue_id: reservation.venue_id.to_string(),
        resource_id: reservation.resource_id.to_string(),
        party_size: db_int(reservation.party_size.get()),
        starts_at: db_instant(reservation.starts_at),
        ends_at: db_instant(reservation.ends_at),
        blocked_until: db_instant(reservation.blocked_until),
        status: reservation.status.as_str().to_owned(),
        version,
        created_at: db_instant(reservation.created_at),
        updated_at: db_instant(reservation.updated_at),
        service_id: reservation.service_id.map(|id| id.to_string()),
    }
}

impl Store {
    pub(crate) fn with_retries<T>(
        &self,
        mut attempt: impl FnMut() -> Result<Outcome<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let mut last = Race::Overlap;
        for _ in 0..ATTEMPTS {
            match attempt()? {
                Outcome::Done(reservation) => return Ok(reservation),
                Outcome::Retry(race) => last = race,
            }
        }
        Err(match last {
            Race::Overlap => DomainError::SlotTaken,
            Race::StaleVersion | Race::AuditSequence => DomainError::Conflict(
                "the reservation was changed by someone else at the same time; try again"
                    .to_owned(),
            ),
        }
        .into())
    }
}

/// Gives back the slots of pending reservations whose payment deadline has
/// passed (of one venue, or all): they become cancelled.
macro_rules! release_expired_holds {
    ($c:expr, $s:ident, $venue:expr, $now:expr) => {
        $crate::step(|| {
            Ok({
                use $s::reservations::dsl as held;
                let venue: Option<&str> = $venue;
                let expired = held::reservations
                    .filter(held::status.eq(ReservationStatus::Pending.as_str()))
                    .filter(held::hold_until.le(db_instant($now)));
                match venue {
                    Some(venue) => diesel::update(expired.filter(held::venue_id.eq(venue)))
                        .set((
                            held::status.eq(ReservationStatus::Cancelled.as_str()),
                            held::hold_until.eq(None::<DateTime<Utc>>),
                            held::version.eq(held::version + 1),
                        ))
                        .execute($c)?,
                    None => diesel::update(expired)
                        .set((
                            held::status.eq(ReservationStatus::Cancelled.as_str()),
                            held::hold_until.eq(None::<DateTime<Utc>>),
                            held::version.eq(held::version + 1),
                        ))
                        .execute($c)?,
                }
            })
        })
    };
}

/// Refuses a new party size the money on record does not cover: a
/// per-guest deposit or prepayment for more guests than were paid for
/// needs a new payment for the difference, which kluis does not take on a
/// change (cancel and book again, or ask the venue). A payment still under
/// way must end first, or it would confirm the booking at the old price.
/// Fewer guests are always allowed; the caller refunds the difference.
macro_rules! check_paid_for {
    ($c:expr, $s:ident, $id:expr, $rule:expr, $party:expr) => {
        $crate::step(|| Ok({
        use $s::payments::dsl as paid;
        let charges: Vec<(String, i64, i64, String)> = paid::payments
            .filter(paid::reservation_id.eq($id))
            .filter(paid::kind.eq("charge"))
            .select((
                paid::status,
                paid::amount_minor,
                paid::refunded_minor,
                paid::currency,
            ))
            .load($c)?;
        let due = $rule.due($party)?;
        for (status, amount, refunded, currency) in charges {
            // What was paid and not given back: a party made smaller (and
            // refunded) and grown again pays again.
            let amount = amount - refunded;
            let status = domain::payments::PaymentStatus::parse(&status);
            if status.is_some_and(domain::payments::PaymentStatus::is_in_flight) {
                return Err(DomainError::Conflict(
                    "a payment for this reservation is under way; change the party size once it has completed"
                        .to_owned(),
                )
                .into());
            }
            let took_money = matches!(
                status,
                Some(
                    domain::payments::PaymentStatus::Succeeded
                        | domain::payments::PaymentStatus::PartiallyRefunded
                        | domain::payments::PaymentStatus::Refunded
                )
            );
            if let Some(due) = due.filter(|_| took_money)
                && due.minor() > amount
            {
                return Err(DomainError::invalid(
                    "partySize",
                    format!(
                        "{} guests cost {due} and {}.{:02} {currency} was paid: the difference needs a new payment, which a change cannot take; cancel and book again, or ask the venue",
                        $party.get(),
                        amount / 100,
                        amount % 100
                    ),
                )
                .into());
            }
        }
    }))
    };
}

/// Loads a reservation's row inside the transaction that will change it,
/// with the version the change must still find.
macro_rules! load_for_change {
    ($c:expr, $s:ident, $id:expr) => {
        $crate::step(|| {
            Ok({
                let row: ReservationRow = $s::reservations::table
                    .find($id)
                    .select(reservation_columns!($s))
                    .first($c)
                    .optional()?
                    .ok_or(DomainError::not_found("reservation"))?;
                (row.version, row)
            })
        })
    };
}

/// Loads the venue a reservation belongs to, or reports corruption: the
/// foreign key makes a missing venue impossible.
fn venue_of(venue: Option<Venue>, reservation: &Reservation) -> Result<Venue, StoreError> {
    venue.ok_or_else(|| StoreError::Corrupt(format!("reservation {} has no venue", reservation.id)))
}

impl ReservationRepository for Store {
    type Error = StoreError;

    fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, StoreError> {
        let mut connection = self.connection()?;
        let id = id.to_string();
        let row: Option<ReservationRow> =
            on_backend!(&mut *connection, |c, s| s::reservations::table
                .find(&id)
                .select(reservation_columns!(s))
                .first::<ReservationRow>(c)
                .optional()?);
        row.map(Reservation::try_from).transpose()
    }

    fn reservation_by_token(&self, token: &ManageToken) -> Result<Option<Reservation>, StoreError> {
        let hash = token.hash();
        let mut connection = self.connection()?;
        let found: Option<(ReservationRow, Option<Vec<u8>>)> =
            on_backend!(&mut *connection, |c, s| {
                s::reservations::table
                    .filter(s::reservations::manage_token_hash.eq(&hash))
                    .select((reservation_columns!(s), s::reservations::manage_token_hash))
                    .first(c)
                    .optional()?
            });
        match found {
            Some((row, Some(stored))) if token.matches(&stored) => {
                Ok(Some(Reservation::try_from(row)?))
            }
            _ => Ok(None),
        }
    }

    fn guest_record(&self, reservation: &Reservation) -> Result<Option<GuestRecord>, StoreError> {
        // A list of one: the same two reads and the same opening.
        Ok(self
            .guest_records(std::slice::from_ref(reservation))?
            .remove(&reservation.id))
    }

    fn find_guest(
        &self,
        venue: VenueId,
        email: Option<&Email>,
        phone: Option<&Phone>,
    ) -> Result<Option<GuestId>, StoreError> {
        let ring = self.keys().current();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, email.map(Email::expose))?;
        let phone_tokens = tokens(&ring, Field::GUEST_PHONE, phone.map(Phone::expose))?;
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let found: Option<String> = on_backend!(&mut *connection, |c, s| find_guest_id!(
            c,
            s,
            &venue,
            &email_tokens,
            &phone_tokens
        )?);
        found
            .map(|id| {
                GuestId::parse(&id).map_err(|_| StoreError::Corrupt(format!("guest id {id}")))
            })
            .transpose()
    }

    fn create_reservation(
        &self,
        request: &NewReservation,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Booking, StoreError> {
        // A retry may meet values another node's rotation sealed with a
        // version this node has not loaded yet: the keys are re-read and
        // the whole attempt (its transaction rolled back) made again.
        self.opening(|ring| create_reservation_with(self, ring, request, key, now))
    }

    fn modify_reservation(
        &self,
        id: ReservationId,
        change: &ReservationChange,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        const OPERATION: &str = "modifyReservation";
        let hash = fingerprint(&[
            &id,
            &change.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            &change
                .party_size
                .map(|p| p.get().to_string())
                .unwrap_or_default(),
        ]);
        let id = id.to_string();
        let now = db_instant(now);
        let written = self.with_retries(|| {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
                if let Some(answer) = claim_key!(c, s, OPERATION, key.as_str(), hash.as_str(), now)?
                {
                    return Ok(Outcome::Done(from_answer(&answer.0)?));
                }
                use s::reservations::dsl as r;
                let (_, row) = load_for_change!(c, s, &id)?;
                let venue_id = row.venue_id.clone();
                // Holds whose payment deadline passed give their slot back
                // before the move looks for a free one: a slot that looks
                // free must be free, or a late payment for the old hold
                // would confirm a second booking on it. The reservation is
                // read again, as the release may have ended it too.
                release_expired_holds!(c, s, Some(&venue_id), now)?;
                let (version, row) = load_for_change!(c, s, &id)?;
                let current = Reservation::try_from(row)?;
                let _venue: Vec<String> =
                    s::load_shared!(s::venues::table.find(&venue_id).select(s::venues::id), c)?;
                let venue = venue_of(load_venue!(c, s, &venue_id)?, &current)?;
                if venue.pacing.is_capped() {
                    s::lock_venue_bookings!(c, venue_id.as_str())?;
                }
                let resources = load_resources!(c, s, &venue_id)?;
                let primary = current.resource_id.to_string();
                let held = load_holds!(c, s, &id, primary.as_str())?;
                let starts_at = change.starts_at.unwrap_or(current.starts_at);
                let party_size = change.party_size.unwrap_or(current.party_size);
                // A booking keeps its service, retired or not: its length,
                // resources and payment rule.
                let service = current
                    .service_id
                    .and_then(|id| venue.services.iter().find(|s| s.id == id));
                let shape =
                    service.map_or_else(|| domain::Shape::of_venue(&venue), domain::Service::shape);
                let blocked_until = starts_at + shape.duration.duration() + shape.buffer.duration();
                if party_size != current.party_size {
                    let rule = domain::Service::payment_rule(service, &venue);
                    check_paid_for!(c, s, &id, rule, party_size)?;
                }
                let from = occupancy_from(&venue, starts_at);
                let occupied = load_occupancy!(c, s, &venue_id, from, blocked_until, &id, now)?;
                let placement = BookingContext {
                    venue: &venue,
                    resources: &resources,
                    occupied: &occupied,
                    now,
                    service,
                }
                .place_changed(&current, &held, starts_at, party_size)?;
                let changed = Reservation {
                    resource_id: placement.resource_id,
                    party_size,
                    starts_at: placement.starts_at,
                    ends_at: placement.ends_at,
                    blocked_until: placement.blocked_until,
                    updated_at: now,
                    ..current
                };
                let row = row_of(&changed, version + 1);
                // The holds are written again after the row: the trigger
                // would otherwise move the old extra tables to the new time
                // first, where they may meet other bookings.
                diesel::delete(
                    s::reservation_holds::table
                        .filter(s::reservation_holds::reservation_id.eq(&id)),
                )
                .execute(c)?;
                let updated =
                    diesel::update(r::reservations.find(&id).filter(r::version.eq(version)))
                        .set((
                            r::resource_id.eq(&row.resource_id),
                            r::party_size.eq(row.party_size),
                            r::starts_at.eq(row.starts_at),
                            r::ends_at.eq(row.ends_at),
                            r::blocked_until.eq(row.blocked_until),
                            r::version.eq(row.version),
                            r::updated_at.eq(row.updated_at),
                        ))
                        .execute(c);
                let updated = updated.and_then(|count| {
                    insert_holds!(c, s, &changed, &placement.resources).map(|_| count)
                });
                match updated {
                    Ok(1) => {}
                    Ok(_) => return Err(RetryLater(Race::StaleVersion).into()),
                    Err(error) => {
                        return match retry_on_overlap(error)? {
                            Outcome::Retry(race) => Err(RetryLater(race).into()),
                            done => Ok(done),
                        };
                    }
                }
                record_answer!(c, s, OPERATION, key.as_str(), to_answer(&row)?)?;
                crate::outbox::queue_reservation_event!(
                    c,
                    s,
                    &self.keys().current(),
                    &changed,
                    ReservationEvent::Changed,
                    now
                )?;
                Ok(Outcome::Done(changed))
            }))
            .or_else(RetryLater::recover)
        });
        if let Ok(reservation) = &written {
            self.occupancy_changed(reservation.venue_id);
        }
        written
    }

    fn cancel_reservation(
        &self,
        id: ReservationId,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        const OPERATION: &str = "cancelReservation";
        let hash = fingerprint(&[&id]);
        let id = id.to_string();
        let now = db_instant(now);
        let written = self.with_retries(|| {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
                if let Some(answer) = claim_key!(c, s, OPERATION, key.as_str(), hash.as_str(), now)?
                {
                    return Ok(Outcome::Done(from_answer(&answer.0)?));
                }
                use s::reservations::dsl as r;
                let (version, row) = load_for_change!(c, s, &id)?;
                let mut reservation = Reservation::try_from(row)?;
                let venue_id = reservation.venue_id.to_string();
                let venue = venue_of(load_venue!(c, s, &venue_id)?, &reservation)?;
                reservation.cancel(&venue, now)?;
                let row = row_of(&reservation, version + 1);
                let updated =
                    diesel::update(r::reservations.find(&id).filter(r::version.eq(version)))
                        .set((
                            r::status.eq(&row.status),
                            r::version.eq(row.version),
                            r::updated_at.eq(row.updated_at),
                        ))
                        .execute(c)?;
                if updated != 1 {
                    return Err(RetryLater(Race::StaleVersion).into());
                }
                record_answer!(c, s, OPERATION, key.as_str(), to_answer(&row)?)?;
                crate::outbox::queue_reservation_event!(
                    c,
                    s,
                    &self.keys().current(),
                    &reservation,
                    ReservationEvent::Cancelled,
                    now
                )?;
                Ok(Outcome::Done(reservation))
            }))
            .or_else(RetryLater::recover)
        });
        if let Ok(reservation) = &written {
            self.occupancy_changed(reservation.venue_id);
        }
        written
    }
}

/// Carries a race out of a transaction closure so that the transaction rolls
/// back, then turns back into a retry outside it.
pub(crate) struct RetryLater(pub(crate) Race);

/// A reservation's id and its sealed notes.
type SealedNotes = (String, Option<Vec<u8>>);

impl Store {
    /// The decrypted guests (with their notes) of several reservations, in
    /// two queries: a day sheet's names without a query per row.
    /// Reservations without a guest (erased) are absent from the map.
    pub fn guest_records(
        &self,
        reservations: &[Reservation],
    ) -> Result<std::collections::HashMap<ReservationId, GuestRecord>, StoreError> {
        let guest_ids: Vec<String> = reservations
            .iter()
            .filter_map(|r| r.guest_id.map(|id| id.to_string()))
            .collect();
        if guest_ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let reservation_ids: Vec<String> = reservations.iter().map(|r| r.id.to_string()).collect();
        let mut connection = self.connection()?;
        let (guests, notes): (Vec<GuestRow>, Vec<SealedNotes>) =
            on_backend!(&mut *connection, |c, s| {
                let guests: Vec<GuestRow> = s::guests::table
                    .filter(s::guests::id.eq_any(&guest_ids))
                    .load(c)?;
                let notes = s::reservations::table
                    .filter(s::reservations::id.eq_any(&reservation_ids))
                    .select((s::reservations::id, s::reservations::notes_sealed))
                    .load(c)?;
                (guests, notes)
            });
        let guests: std::collections::HashMap<&str, &GuestRow> =
            guests.iter().map(|row| (row.id.as_str(), row)).collect();
        let notes: std::collections::HashMap<&str, Option<&[u8]>> = notes
            .iter()
            .map(|(id, sealed)| (id.as_str(), sealed.as_deref()))
            .collect();
        let ids: Vec<String> = guests.keys().map(|id| (*id).to_owned()).collect();
        self.opening(|ring| {
            // Every guest's data key with one query, opened once.
            let keys = self.key_store().keys_of(ring, &ids)?;
            let mut records = std::collections::HashMap::with_capacity(reservations.len());
            for reservation in reservations {
                let Some(guest_id) = reservation.guest_id else {
                    continue;
                };
                let id = reservation.id.to_string();
                let row = guests.get(guest_id.to_string().as_str()).ok_or_else(|| {
                    StoreError::Corrupt(format!("reservation {id} points at a missing guest"))
                })?;
                let sealed_notes = notes.get(id.as_str()).copied().flatten();
                let access = keys.access(&row.id, row.data_key)?;
                records.insert(
                    reservation.id,
                    GuestRecord {
                        guest: row.open(ring, access)?,
                        notes: open_notes(ring, access, &id, sealed_notes)?,
                        shared: row.shared,
                    },
                );
            }
            Ok(records)
        })
    }
}

impl From<RetryLater> for StoreError {
    fn from(retry: RetryLater) -> Self {
        StoreError::Race(retry.0)
    }
}

impl RetryLater {
    pub(crate) fn recover<T>(error: StoreError) -> Result<Outcome<T>, StoreError> {
        match error {
            StoreError::Race(Race::Overlap) => Ok(Outcome::Retry(Race::Overlap)),
            StoreError::Race(_) => Ok(Outcome::Retry(Race::StaleVersion)),
            other => Err(other),
        }
    }
}

impl Store {
    /// The resources a reservation holds, its primary one first (none for
    /// an unknown reservation).
    pub fn held_resources(&self, id: ReservationId) -> Result<Vec<domain::ResourceId>, StoreError> {
        let id = id.to_string();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let primary: Option<String> = s::reservations::table
                .find(&id)
                .select(s::reservations::resource_id)
                .first(c)
                .optional()?;
            match primary {
                None => Vec::new(),
                Some(primary) => load_holds!(c, s, &id, primary.as_str())?,
            }
        }))
    }

    /// A venue's reservations starting in `[from, until)`, in start order,
    /// after a `(starts_at, id)` cursor, at most `limit`.
    pub fn reservations_in(
        &self,
        venue: VenueId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<Reservation>, StoreError> {
        let venue = venue.to_string();
        let (from, until) = (db_instant(from), db_instant(until));
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> = on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            let mut query = r::reservations
                .filter(r::venue_id.eq(&venue))
                .filter(r::starts_at.ge(from))
                .filter(r::starts_at.lt(until))
                .select(reservation_columns!(s))
                .order((r::starts_at, r::id))
                .limit(limit)
                .into_boxed();
            if let Some((starts_at, id)) = &after {
                let starts_at = db_instant(*starts_at);
                query = query.filter(
                    r::starts_at
                        .gt(starts_at)
                        .or(r::starts_at.eq(starts_at).and(r::id.gt(id.clone()))),
                );
            }
            query.load::<ReservationRow>(c)?
        });
        rows.into_iter().map(Reservation::try_from).collect()
    }

    /// Every guest record a venue holds for this e-mail address (one per
    /// booking made with it), with their reservations there, newest start
    /// first, at most `limit`; no records for an address the venue does not
    /// know. Found through the lookup tokens of every key version, so
    /// nothing is decrypted and guests not yet re-encrypted by a rotation
    /// are found too.
    pub fn reservations_of_guest_by_email(
        &self,
        venue: VenueId,
        email: &Email,
        limit: i64,
    ) -> Result<(Vec<GuestId>, Vec<Reservation>), StoreError> {
        let ring = self.keys().current();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let (guests, rows): (Vec<String>, Vec<ReservationRow>) =
            on_backend!(&mut *connection, |c, s| {
                let guests = crate::guests::guest_ids_by_email!(c, s, &venue, &email_tokens)?;
                use s::reservations::dsl as r;
                // By guest only, so that the guest index is the one used
                // (SQLite otherwise walks the venue's whole history for the
                // order); the venue is checked on the rows below, so a
                // corrupt row cannot leak a booking across venues.
                let rows = if guests.is_empty() {
                    Vec::new()
                } else {
                    r::reservations
                        .filter(r::guest_id.eq_any(&guests))
                        .order((r::starts_at.desc(), r::id.desc()))
                        .limit(limit)
                        .select(reservation_columns!(s))
                        .load::<ReservationRow>(c)?
                };
                (guests, rows)
            });
        let reservations = rows
            .into_iter()
            .filter(|row| row.venue_id == venue)
            .map(Reservation::try_from)
            .collect::<Result<_, _>>()?;
        Ok((crate::guests::parse_guest_ids(guests)?, reservations))
    }

    /// Moves a reservation through its life cycle (check-in, no-show,
    /// completion) as venue staff record it.
    pub fn set_reservation_status(
        &self,
        id: ReservationId,
        next: ReservationStatus,
        now: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        let id = id.to_string();
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let written = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::reservations::dsl as r;
            let (version, row) = load_for_change!(c, s, &id)?;
            let mut reservation = Reservation::try_from(row)?;
            reservation.record_status(next, now)?;
            let updated = diesel::update(r::reservations.find(&id).filter(r::version.eq(version)))
                .set((
                    r::status.eq(reservation.status.as_str()),
                    r::version.eq(version + 1),
                    r::updated_at.eq(now),
                ))
                .execute(c)?;
            if updated != 1 {
                return Err(StoreError::Domain(DomainError::Conflict(
                    "the reservation was changed by someone else at the same time; try again"
                        .to_owned(),
                )));
            }
            crate::outbox::queue_reservation_event!(
                c,
                s,
                &self.keys().current(),
                &reservation,
                ReservationEvent::StatusChanged,
                now
            )?;
            Ok(reservation)
        }));
        if let Ok(reservation) = &written {
            self.occupancy_changed(reservation.venue_id);
        }
        written
    }
}

impl Store {
    /// Cancels every pending reservation whose payment deadline passed, so
    /// its slot is free again; returns how many.
    pub fn release_expired_holds(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut connection = self.connection()?;
        let released = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let released = release_expired_holds!(c, s, None, now)?;
            Ok::<_, StoreError>(released)
        }));
        if matches!(released, Ok(count) if count > 0) {
            self.occupancy_cache.everything_changed();
        }
        released
    }

    /// Drops what this node keeps of the venue's occupancy: called after a
    /// write to one of its reservations has committed.
    pub(crate) fn occupancy_changed(&self, venue: VenueId) {
        self.occupancy_cache.venue_changed(&venue.to_string());
    }
}

/// Books under one key ring (see `ReservationRepository::create_reservation`).
fn create_reservation_with(
    store: &Store,
    ring: &KeyRing,
    request: &NewReservation,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<Booking, StoreError> {
    let booking = NewBooking::prepare(store, ring, request, key, now)?;
    let written = store.with_retries(|| {
        let mut connection = store.connection()?;
        on_backend!(&mut *connection, |c| c
            .write_transaction(|c| booking.attempt(&mut Tx::from(c))))
        .or_else(RetryLater::recover)
    });
    if let Ok(booking) = &written {
        store.occupancy_changed(booking.reservation.venue_id);
    }
    written
}

/// What a booking request needs inside its transaction, computed once for
/// all its attempts.
struct NewBooking<'a> {
    store: &'a Store,
    ring: &'a KeyRing,
    request: &'a NewReservation,
    key: &'a IdempotencyKey,
    now: DateTime<Utc>,
    venue_id: String,
    /// The key version everything new is sealed with.
    version: u32,
    /// The id the idempotency record's sealed values are bound to.
    answer_row: String,
    /// The fingerprint of the request without the guest's details.
    hash: String,
    /// The fingerprint of the whole request, including the guest's details.
    full: String,
    /// `full`, sealed for the idempotency record.
    request_sealed: Vec<u8>,
    /// The guest's details as one string, for the legacy digest.
    details: String,
}

impl<'a> NewBooking<'a> {
    const OPERATION: &'static str = "createReservation";

    fn prepare(
        store: &'a Store,
        ring: &'a KeyRing,
        request: &'a NewReservation,
        key: &'a IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let guest = &request.guest;
        let details = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            guest.name.expose(),
            guest.email.as_ref().map(Email::expose).unwrap_or_default(),
            guest.phone.as_ref().map(Phone::expose).unwrap_or_default(),
            guest.notes.as_ref().map(|n| n.expose()).unwrap_or_default()
        );
        // The guest's details take part in the fingerprint only inside a
        // sealed value: a plain hash of an e-mail address can be guessed,
        // and a keyed digest could not be re-keyed by a rotation (the
        // details are not kept). The stored `request_hash` covers the
        // other parts.
        let hash = Self::fingerprint_with(request, "");
        let full =
            Self::fingerprint_with(request, &hex::encode(Sha256::digest(details.as_bytes())));
        let version = ring.current_version();
        let answer_row = format!("{}|{}", Self::OPERATION, key.as_str());
        let request_sealed = ring.seal_with(
            version,
            Field::IDEMPOTENT_REQUEST,
            &answer_row,
            full.as_bytes(),
        )?;
        Ok(Self {
            store,
            ring,
            request,
            key,
            now: db_instant(now),
            venue_id: request.venue_id.to_string(),
            version,
            answer_row,
            hash,
            full,
            request_sealed,
            details,
        })
    }

    fn fingerprint_with(request: &NewReservation, guest_digest: &str) -> String {
        // The service joins the fingerprint only when one is booked, so
        // the fingerprints of bookings without one stay as they were.
        let service = request
            .service_id
            .map(|id| format!("service:{id}"))
            .unwrap_or_default();
        fingerprint(&[
            &request.venue_id,
            &request.starts_at.to_rfc3339(),
            &request.party_size.get(),
            &request
                .resource_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            &guest_digest,
            &request.locale.as_str(),
            &request
                .notice_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
            &(request
                .opt_ins
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(",")
                + &service),
        ])
    }

    /// Whether a stored idempotency record is this request.
    fn matches(&self, stored_hash: &str, stored_sealed: Option<&[u8]>) -> Result<bool, StoreError> {
        match stored_sealed {
            Some(sealed) => Ok(stored_hash == self.hash
                && open_text(
                    self.ring,
                    Field::IDEMPOTENT_REQUEST,
                    &self.answer_row,
                    sealed,
                )? == self.full),
            None => self.legacy_matches(stored_hash),
        }
    }

    /// Records from before sealed fingerprints hold a digest keyed under
    /// the version of their day.
    fn legacy_matches(&self, stored: &str) -> Result<bool, StoreError> {
        for version in self.ring.versions() {
            let digest = hex::encode(self.ring.lookup_token_with(
                version,
                LEGACY_REQUEST_DIGEST,
                self.details.as_bytes(),
            )?);
            if Self::fingerprint_with(self.request, &digest) == stored {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One attempt, inside its write transaction.
    fn attempt(&self, tx: &mut Tx<'_>) -> Result<Outcome<Booking>, StoreError> {
        if let Some(booking) = self.replay(tx)? {
            return Ok(Outcome::Done(booking));
        }
        let (venue, notice) = self.venue_and_notice(tx)?;
        let service = venue.service_for(self.request.service_id)?;
        let placement = self.find_slot(tx, &venue, service)?;
        let (guest_id, data_key) = self.write_guest(tx)?;
        let reservation = self.reservation(&venue, service, &placement, guest_id)?;
        let token = ManageToken::generate()?;
        // The transaction is aborted on PostgreSQL after an overlap: the
        // race gives it up and the next attempt reads what the other
        // writer did.
        self.write_reservation(tx, &reservation, &data_key, &token)?;
        self.write_extra_holds(tx, &reservation, &placement)?;
        self.record_consents(tx, guest_id, notice.as_ref())?;
        self.record_answer(tx, &reservation, &token)?;
        self.queue_messages(tx, &venue, &reservation, guest_id, &token)?;
        Ok(Outcome::Done(Booking {
            reservation,
            manage_token: token,
        }))
    }

    /// Claims the idempotency key; the booking made under it before, when
    /// this is a retry.
    fn replay(&self, tx: &mut Tx<'_>) -> Result<Option<Booking>, StoreError> {
        let claimed = on_backend!(tx tx, |c, s| claim_sealed_key!(
            c,
            s,
            Self::OPERATION,
            self.key.as_str(),
            self.hash.as_str(),
            &self.request_sealed,
            self.now,
            |hash: &str, sealed: Option<&[u8]>| self.matches(hash, sealed)
        )?);
        let Some((answer, token_sealed)) = claimed else {
            return Ok(None);
        };
        let sealed = token_sealed.ok_or_else(|| {
            StoreError::Corrupt("stored booking answer has no manage token".to_owned())
        })?;
        let token = ManageToken::parse(&open_text(
            self.ring,
            Field::IDEMPOTENT_TOKEN,
            &self.answer_row,
            &sealed,
        )?)
        .map_err(|_| StoreError::Corrupt("stored manage token is malformed".to_owned()))?;
        Ok(Some(Booking {
            reservation: from_answer(&answer)?,
            manage_token: token,
        }))
    }

    /// The venue, and its current privacy notice in the request's locale:
    /// only the fields this venue collects, under that notice.
    fn venue_and_notice(
        &self,
        tx: &mut Tx<'_>,
    ) -> Result<(Venue, Option<domain::privacy::PrivacyNotice>), StoreError> {
        let venue_id = self.venue_id.as_str();
        let locale = self.request.locale.as_str();
        let (venue, notice) = on_backend!(tx tx, |c, s| {
            // Shared lock on the venue: an edit of its hours or closures
            // committed meanwhile is read below, or waits for this booking.
            let _venue: Vec<String> = s::load_shared!(
                s::venues::table.find(venue_id).select(s::venues::id),
                c
            )?;
            let venue: Venue = load_venue!(c, s, venue_id)?.ok_or(DomainError::not_found("venue"))?;
            if venue.pacing.is_capped() {
                s::lock_venue_bookings!(c, venue_id)?;
            }
            venue.guest_fields.check(&self.request.guest)?;
            let notice: Option<domain::privacy::PrivacyNotice> =
                crate::privacy::current_notice!(c, s, venue_id, locale)?;
            (venue, notice)
        });
        crate::privacy::check_notice(notice.as_ref(), self.request.notice_version)?;
        Ok((venue, notice))
    }

    /// A free place for the party at the requested time.
    fn find_slot(
        &self,
        tx: &mut Tx<'_>,
        venue: &Venue,
        service: Option<&domain::Service>,
    ) -> Result<Placement, StoreError> {
        let (venue_id, now, request) = (self.venue_id.as_str(), self.now, self.request);
        let shape = service.map_or_else(|| domain::Shape::of_venue(venue), domain::Service::shape);
        let blocked_until = request.starts_at + shape.duration.duration() + shape.buffer.duration();
        let (resources, occupied) = on_backend!(tx tx, |c, s| {
            // Holds whose payment deadline passed give their slot back
            // before anyone looks for a free one.
            release_expired_holds!(c, s, Some(venue_id), now)?;
            let resources = load_resources!(c, s, venue_id)?;
            let from = occupancy_from(venue, request.starts_at);
            let occupied = load_occupancy!(c, s, venue_id, from, blocked_until, "", now)?;
            (resources, occupied)
        });
        Ok(BookingContext {
            venue,
            resources: &resources,
            occupied: &occupied,
            now,
            service,
        }
        .place_new(request.starts_at, request.party_size, request.resource_id)?)
    }

    /// The details entered with this booking get a guest record of their
    /// own: a booking never links into, reveals or overwrites an earlier
    /// booking's data, whatever e-mail or phone it gives. The lookup tokens
    /// still let staff and the access-code flow find every booking of an
    /// address.
    fn write_guest(&self, tx: &mut Tx<'_>) -> Result<(GuestId, DataKey), StoreError> {
        let guest = &self.request.guest;
        let guest_id = GuestId::new_random();
        let id = guest_id.to_string();
        // The guest's own key, in the key store: destroying it there
        // erases every copy of what is sealed under it.
        let data_key = self
            .store
            .key_store()
            .create_key(self.ring, &id, self.now)?;
        let sealed = seal_guest(
            self.ring,
            self.version,
            Some(&data_key),
            &id,
            &guest.name,
            guest.email.as_ref(),
            guest.phone.as_ref(),
        )?;
        let now = self.now;
        on_backend!(tx tx, |c, s| {
            use s::guests::dsl as g;
            diesel::insert_into(g::guests)
                .values((
                    g::id.eq(&id),
                    g::venue_id.eq(&self.venue_id),
                    g::key_version.eq(sealed.key_version),
                    g::name_sealed.eq(sealed.name_sealed),
                    g::email_sealed.eq(sealed.email_sealed),
                    g::email_lookup.eq(sealed.email_lookup),
                    g::phone_sealed.eq(sealed.phone_sealed),
                    g::phone_lookup.eq(sealed.phone_lookup),
                    g::created_at.eq(now),
                    g::updated_at.eq(now),
                    g::data_key.eq(true),
                ))
                .execute(c)?
        });
        Ok((guest_id, data_key))
    }

    /// The new reservation at its place: confirmed, or pending until the
    /// payment deadline when the venue wants money up front.
    fn reservation(
        &self,
        venue: &Venue,
        service: Option<&domain::Service>,
        placement: &Placement,
        guest_id: GuestId,
    ) -> Result<Reservation, StoreError> {
        let (request, now) = (self.request, self.now);
        let reservation = Reservation {
            id: ReservationId::new_random(),
            venue_id: venue.id,
            resource_id: placement.resource_id,
            guest_id: Some(guest_id),
            party_size: request.party_size,
            starts_at: placement.starts_at,
            ends_at: placement.ends_at,
            blocked_until: placement.blocked_until,
            status: ReservationStatus::Confirmed,
            hold_until: None,
            created_at: now,
            updated_at: now,
            service_id: service.map(|s| s.id),
        };
        let rule = domain::Service::payment_rule(service, venue);
        Ok(match rule.requirement(request.party_size)? {
            Some(_) => Reservation {
                status: ReservationStatus::Pending,
                hold_until: Some(now + venue.payments.hold.duration()),
                ..reservation
            },
            None => reservation,
        })
    }

    /// Inserts the reservation with its notes (under the guest's data key)
    /// and its manage token's hash. An overlap the exclusion constraint
    /// refuses is a [`Race::Overlap`].
    fn write_reservation(
        &self,
        tx: &mut Tx<'_>,
        reservation: &Reservation,
        data_key: &DataKey,
        token: &ManageToken,
    ) -> Result<(), StoreError> {
        let row = row_of(reservation, 1);
        let notes_sealed = self
            .request
            .guest
            .notes
            .as_ref()
            .map(|notes| {
                data_key.seal(Field::RESERVATION_NOTES, &row.id, notes.expose().as_bytes())
            })
            .transpose()?;
        let inserted = on_backend!(tx tx, |c, s| {
            use s::reservations::dsl as r;
            diesel::insert_into(r::reservations)
                .values((
                    (
                        r::id.eq(&row.id),
                        r::venue_id.eq(&row.venue_id),
                        r::resource_id.eq(&row.resource_id),
                        r::party_size.eq(row.party_size),
                        r::starts_at.eq(row.starts_at),
                        r::ends_at.eq(row.ends_at),
                        r::blocked_until.eq(row.blocked_until),
                        r::status.eq(&row.status),
                        r::version.eq(row.version),
                        r::created_at.eq(row.created_at),
                        r::updated_at.eq(row.updated_at),
                    ),
                    (
                        r::guest_id.eq(&row.guest_id),
                        // Notes under the guest's data key carry key version 0:
                        // a master key rotation has nothing to do for them.
                        r::key_version.eq(notes_sealed
                            .as_ref()
                            .map(|_| db_version(domain::crypto::DATA_KEY_VERSION))),
                        r::notes_sealed.eq(&notes_sealed),
                        r::manage_token_hash.eq(token.hash()),
                        r::hold_until.eq(row.hold_until),
                        r::service_id.eq(&row.service_id),
                    ),
                ))
                .execute(c)
        });
        match inserted {
            Ok(_) => Ok(()),
            Err(error) => match retry_on_overlap::<()>(error)? {
                Outcome::Retry(race) => Err(RetryLater(race).into()),
                Outcome::Done(()) => Ok(()),
            },
        }
    }

    /// The holds of a combination's other tables (the primary one's hold
    /// comes with the reservation). An overlap is a [`Race::Overlap`].
    fn write_extra_holds(
        &self,
        tx: &mut Tx<'_>,
        reservation: &Reservation,
        placement: &Placement,
    ) -> Result<(), StoreError> {
        let extra = placement.resources.iter().skip(1);
        let inserted = on_backend!(tx tx, |c, s| insert_holds!(c, s, reservation, extra.clone()));
        match inserted {
            Ok(_) => Ok(()),
            Err(error) => match retry_on_overlap::<()>(error)? {
                Outcome::Retry(race) => Err(RetryLater(race).into()),
                Outcome::Done(()) => Ok(()),
            },
        }
    }

    /// The consent to the booking and to each purpose opted into, under
    /// the notice the guest was shown.
    fn record_consents(
        &self,
        tx: &mut Tx<'_>,
        guest_id: GuestId,
        notice: Option<&domain::privacy::PrivacyNotice>,
    ) -> Result<(), StoreError> {
        let guest_id = guest_id.to_string();
        let purposes = std::iter::once(domain::privacy::ConsentPurpose::Booking)
            .chain(self.request.opt_ins.iter().copied());
        on_backend!(tx tx, |c, s| crate::privacy::append_consents!(
            c,
            s,
            &guest_id,
            &self.venue_id,
            purposes,
            true,
            self.request.channel.as_str(),
            notice,
            self.now
        )?);
        Ok(())
    }

    /// The answer a retry under the same key gets, with the manage token
    /// sealed.
    fn record_answer(
        &self,
        tx: &mut Tx<'_>,
        reservation: &Reservation,
        token: &ManageToken,
    ) -> Result<(), StoreError> {
        let token_sealed = self.ring.seal_with(
            self.version,
            Field::IDEMPOTENT_TOKEN,
            &self.answer_row,
            token.expose().as_bytes(),
        )?;
        let answer = to_answer(&row_of(reservation, 1))?;
        on_backend!(tx tx, |c, s| record_answer!(
            c,
            s,
            Self::OPERATION,
            self.key.as_str(),
            &answer,
            Some(&token_sealed)
        )?);
        Ok(())
    }

    /// In the booking's own transaction: a confirmation is queued exactly
    /// when the booking exists, and so is the venue's webhook event.
    fn queue_messages(
        &self,
        tx: &mut Tx<'_>,
        venue: &Venue,
        reservation: &Reservation,
        guest_id: GuestId,
        token: &ManageToken,
    ) -> Result<(), StoreError> {
        let (ring, now, venue_id) = (self.ring, self.now, self.venue_id.as_str());
        let guest_id = guest_id.to_string();
        let mail = match self.request.guest.email.clone() {
            Some(email) => {
                let mail = crate::outbox::booking_confirmation(venue, reservation, token, email);
                Some(crate::outbox::seal_mail(ring, &mail)?)
            }
            None => None,
        };
        on_backend!(tx tx, |c, s| {
            if let Some((mail_id, sealed)) = &mail {
                crate::outbox::insert_mail!(
                    c,
                    s,
                    mail_id,
                    "booking_confirmation",
                    Some(venue_id),
                    Some(&guest_id),
                    sealed,
                    now
                )?;
            }
            crate::outbox::queue_reservation_event!(
                c,
                s,
                &ring,
                reservation,
                ReservationEvent::Created,
                now
            )?;
        });
        Ok(())
    }
}
