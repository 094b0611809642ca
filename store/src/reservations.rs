//! Booking, changing and cancelling. Each runs the domain's rules inside the
//! write transaction that records the outcome; on PostgreSQL the exclusion
//! constraint is the final word on overlaps, on SQLite the immediate
//! transaction makes the check and the write one step.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::{Field, KeyRing};
use domain::ports::{
    Booking, GuestRecord, NewReservation, ReservationChange, ReservationRepository,
};
use domain::webhooks::ReservationEvent;
use domain::{
    BookingContext, DomainError, Email, GuestId, IdempotencyKey, ManageToken, Phone, Reservation,
    ReservationId, ReservationStatus, Venue, VenueId,
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
use crate::{Race, Store, StoreError, WriteTransaction, on_backend};

/// Keyed the digest of a booking's guest details inside its fingerprint,
/// before fingerprints were sealed; still read for older records.
const LEGACY_REQUEST_DIGEST: Field = Field::new("idempotency_keys", "request");

/// Attempts per request when a concurrent writer got in between the checks
/// and the write; the next attempt sees what that writer committed.
const ATTEMPTS: usize = 4;

enum Outcome<T> {
    Done(T),
    Retry(Race),
}

fn retry_on_overlap<T>(error: diesel::result::Error) -> Result<Outcome<T>, StoreError> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ExclusionViolation,
            _,
        ) => Ok(Outcome::Retry(Race::Overlap)),
        other => Err(other.into()),
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

fn row_of(reservation: &Reservation, version: i32) -> ReservationRow {
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
    }
}

impl Store {
    fn with_retries<T>(
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
    ($c:expr, $s:ident, $id:expr, $venue:expr, $party:expr) => {
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
        let due = $venue.payments.rule.due($party)?;
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
                let venue = venue_of(load_venue!(c, s, &venue_id)?, &current)?;
                let resources = load_resources!(c, s, &venue_id)?;
                let starts_at = change.starts_at.unwrap_or(current.starts_at);
                let party_size = change.party_size.unwrap_or(current.party_size);
                let blocked_until = starts_at
                    + venue.rules.booking_duration.duration()
                    + venue.rules.buffer.duration();
                if party_size != current.party_size {
                    check_paid_for!(c, s, &id, &venue, party_size)?;
                }
                let occupied =
                    load_occupancy!(c, s, &venue_id, starts_at, blocked_until, &id, now)?;
                let placement = BookingContext {
                    venue: &venue,
                    resources: &resources,
                    occupied: &occupied,
                    now,
                }
                .place_changed(&current, starts_at, party_size)?;
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
struct RetryLater(Race);

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
    fn recover<T>(error: StoreError) -> Result<Outcome<T>, StoreError> {
        match error {
            StoreError::Race(Race::Overlap) => Ok(Outcome::Retry(Race::Overlap)),
            StoreError::Race(_) => Ok(Outcome::Retry(Race::StaleVersion)),
            other => Err(other),
        }
    }
}

impl Store {
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
    const OPERATION: &str = "createReservation";
    let guest = &request.guest;
    let email = guest.email.as_ref().map(Email::expose);
    let phone = guest.phone.as_ref().map(Phone::expose);
    let details = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        guest.name.expose(),
        email.unwrap_or_default(),
        phone.unwrap_or_default(),
        guest.notes.as_ref().map(|n| n.expose()).unwrap_or_default()
    );
    let fingerprint_with = |guest_digest: &str| {
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
            &request
                .opt_ins
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ])
    };
    // The guest's details take part in the fingerprint only inside a
    // sealed value: a plain hash of an e-mail address can be guessed,
    // and a keyed digest could not be re-keyed by a rotation (the
    // details are not kept). The stored `request_hash` covers the
    // other parts.
    let hash = fingerprint_with("");
    let full = fingerprint_with(&hex::encode(Sha256::digest(details.as_bytes())));
    // Records from before sealed fingerprints hold a digest keyed under
    // the version of their day.
    let legacy_matches = |stored: &str| -> Result<bool, StoreError> {
        for version in ring.versions() {
            let digest = hex::encode(ring.lookup_token_with(
                version,
                LEGACY_REQUEST_DIGEST,
                details.as_bytes(),
            )?);
            if fingerprint_with(&digest) == stored {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let version = ring.current_version();
    let answer_row = format!("{OPERATION}|{}", key.as_str());
    let request_sealed = ring.seal_with(
        version,
        Field::IDEMPOTENT_REQUEST,
        &answer_row,
        full.as_bytes(),
    )?;
    let matches = |stored_hash: &str, stored_sealed: Option<&[u8]>| match stored_sealed {
        Some(sealed) => Ok(stored_hash == hash
            && open_text(ring, Field::IDEMPOTENT_REQUEST, &answer_row, sealed)? == full),
        None => legacy_matches(stored_hash),
    };
    let venue_id = request.venue_id.to_string();
    let now = db_instant(now);
    let written = store.with_retries(|| {
        let mut connection = store.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            if let Some((answer, token_sealed)) = claim_sealed_key!(
                c,
                s,
                OPERATION,
                key.as_str(),
                hash.as_str(),
                &request_sealed,
                now,
                matches
            )? {
                let sealed = token_sealed.ok_or_else(|| {
                    StoreError::Corrupt("stored booking answer has no manage token".to_owned())
                })?;
                let token = ManageToken::parse(&open_text(
                    ring,
                    Field::IDEMPOTENT_TOKEN,
                    &answer_row,
                    &sealed,
                )?)
                .map_err(|_| StoreError::Corrupt("stored manage token is malformed".to_owned()))?;
                return Ok(Outcome::Done(Booking {
                    reservation: from_answer(&answer)?,
                    manage_token: token,
                }));
            }
            let venue: Venue =
                load_venue!(c, s, &venue_id)?.ok_or(DomainError::not_found("venue"))?;
            // Only the fields this venue collects, under its current
            // privacy notice.
            venue.guest_fields.check(guest)?;
            let notice: Option<domain::privacy::PrivacyNotice> =
                crate::privacy::current_notice!(c, s, &venue_id, request.locale.as_str())?;
            crate::privacy::check_notice(notice.as_ref(), request.notice_version)?;
            // Holds whose payment deadline passed give their slot back
            // before anyone looks for a free one.
            release_expired_holds!(c, s, Some(&venue_id), now)?;
            let resources = load_resources!(c, s, &venue_id)?;
            let blocked_until = request.starts_at
                + venue.rules.booking_duration.duration()
                + venue.rules.buffer.duration();
            let occupied =
                load_occupancy!(c, s, &venue_id, request.starts_at, blocked_until, "", now)?;
            let placement = BookingContext {
                venue: &venue,
                resources: &resources,
                occupied: &occupied,
                now,
            }
            .place_new(request.starts_at, request.party_size, request.resource_id)?;

            // The details entered with this booking get a guest record
            // of their own: a booking never links into, reveals or
            // overwrites an earlier booking's data, whatever e-mail or
            // phone it gives. The lookup tokens still let staff and the
            // access-code flow find every booking of an address.
            let guest_id = GuestId::new_random().to_string();
            // The guest's own key, in the key store: destroying it
            // there erases every copy of what is sealed under it.
            let data_key = store.key_store().create_key(ring, &guest_id, now)?;
            let sealed = seal_guest(
                ring,
                version,
                Some(&data_key),
                &guest_id,
                &guest.name,
                guest.email.as_ref(),
                guest.phone.as_ref(),
            )?;
            {
                use s::guests::dsl as g;
                diesel::insert_into(g::guests)
                    .values((
                        g::id.eq(&guest_id),
                        g::venue_id.eq(&venue_id),
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
                    .execute(c)?;
            }

            let reservation = Reservation {
                id: ReservationId::new_random(),
                venue_id: venue.id,
                resource_id: placement.resource_id,
                guest_id: Some(
                    GuestId::parse(&guest_id)
                        .map_err(|_| StoreError::Corrupt(format!("guest id {guest_id}")))?,
                ),
                party_size: request.party_size,
                starts_at: placement.starts_at,
                ends_at: placement.ends_at,
                blocked_until: placement.blocked_until,
                status: ReservationStatus::Confirmed,
                hold_until: None,
                created_at: now,
                updated_at: now,
            };
            // A venue that wants money up front gets a pending booking
            // that holds its slot until the payment deadline.
            let reservation = match venue.payments.rule.requirement(request.party_size)? {
                Some(_) => Reservation {
                    status: ReservationStatus::Pending,
                    hold_until: Some(now + venue.payments.hold.duration()),
                    ..reservation
                },
                None => reservation,
            };
            let row = row_of(&reservation, 1);
            let notes_sealed = guest
                .notes
                .as_ref()
                .map(|notes| {
                    data_key.seal(Field::RESERVATION_NOTES, &row.id, notes.expose().as_bytes())
                })
                .transpose()?;
            let token = ManageToken::generate()?;
            use s::reservations::dsl as r;
            let inserted = diesel::insert_into(r::reservations)
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
                        r::notes_sealed.eq(notes_sealed),
                        r::manage_token_hash.eq(token.hash()),
                        r::hold_until.eq(row.hold_until),
                    ),
                ))
                .execute(c);
            if let Err(error) = inserted {
                // The transaction is aborted on PostgreSQL: give it up and
                // let the next attempt read what the other writer did.
                return match retry_on_overlap::<Booking>(error)? {
                    Outcome::Retry(race) => Err(RetryLater(race).into()),
                    done => Ok(done),
                };
            }
            let purposes = std::iter::once(domain::privacy::ConsentPurpose::Booking)
                .chain(request.opt_ins.iter().copied());
            crate::privacy::append_consents!(
                c,
                s,
                &guest_id,
                &venue_id,
                purposes,
                true,
                request.channel.as_str(),
                notice.as_ref(),
                now
            )?;
            let token_sealed = ring.seal_with(
                version,
                Field::IDEMPOTENT_TOKEN,
                &answer_row,
                token.expose().as_bytes(),
            )?;
            record_answer!(
                c,
                s,
                OPERATION,
                key.as_str(),
                to_answer(&row)?,
                Some(token_sealed)
            )?;
            // In the booking's own transaction: a confirmation is
            // queued exactly when the booking exists.
            if let Some(email) = guest.email.clone() {
                let mail = crate::outbox::booking_confirmation(&venue, &reservation, &token, email);
                let (mail_id, sealed) = crate::outbox::seal_mail(ring, &mail)?;
                crate::outbox::insert_mail!(
                    c,
                    s,
                    &mail_id,
                    "booking_confirmation",
                    Some(&venue_id),
                    Some(&guest_id),
                    &sealed,
                    now
                )?;
            }
            crate::outbox::queue_reservation_event!(
                c,
                s,
                &ring,
                &reservation,
                ReservationEvent::Created,
                now
            )?;
            Ok(Outcome::Done(Booking {
                reservation,
                manage_token: token,
            }))
        }))
        .or_else(RetryLater::recover)
    });
    if let Ok(booking) = &written {
        store.occupancy_changed(booking.reservation.venue_id);
    }
    written
}
