//! Walk-ins: a party seated by staff now, recorded as a reservation that
//! is checked in at once. It runs in a write transaction of its own, with
//! the same overlap guarantee as a booking: the exclusion constraint on
//! PostgreSQL, the immediate transaction on SQLite.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::{DataKey, Field, KeyRing};
use domain::webhooks::ReservationEvent;
use domain::{
    BookingContext, DomainError, Email, GuestId, GuestNotes, PartySize, PersonName, Phone,
    Reservation, ReservationId, ReservationStatus, ResourceId, VenueId,
};

use crate::guests::{db_version, seal_guest};
use crate::reservations::{Outcome, RetryLater, retry_on_overlap, row_of};
use crate::rows::{OpeningHoursRow, ResourceRow, VenueRow, db_instant};
use crate::venues::{load_occupancy, load_resources, load_venue};
use crate::{Store, StoreError, Tx, WriteTransaction, on_backend};

/// What staff record for a walk-in. Every personal field is optional: a
/// walk-in without any has no guest record at all. No `Debug`: personal.
pub struct NewWalkIn {
    pub venue_id: VenueId,
    pub party_size: PartySize,
    pub resource_id: Option<ResourceId>,
    pub name: Option<PersonName>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub notes: Option<GuestNotes>,
    /// Who recorded it, for the consent ledger (`staff:<id>`).
    pub channel: String,
}

impl NewWalkIn {
    fn has_personal_data(&self) -> bool {
        self.name.is_some() || self.email.is_some() || self.phone.is_some() || self.notes.is_some()
    }
}

/// The name a walk-in's guest record carries when staff gave contact data
/// or a note but no name: the record needs one, and this says nothing
/// about anyone.
const NAMELESS: &str = "walk-in";

impl Store {
    /// Seats a walk-in now: the smallest free table that fits (or the one
    /// asked for), checked in at once. SLOT_TAKEN when the table asked for
    /// (or every fitting one) is taken.
    pub fn record_walk_in(
        &self,
        request: &NewWalkIn,
        now: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        let written = self.opening(|ring| {
            self.with_retries(|| {
                let mut connection = self.connection()?;
                on_backend!(&mut *connection, |c| c.write_transaction(|c| {
                    walk_in_attempt(self, ring, &mut Tx::from(c), request, now)
                }))
                .or_else(RetryLater::recover)
            })
        });
        if let Ok(reservation) = &written {
            self.occupancy_changed(reservation.venue_id);
        }
        written
    }
}

fn walk_in_attempt(
    store: &Store,
    ring: &KeyRing,
    tx: &mut Tx<'_>,
    request: &NewWalkIn,
    now: DateTime<Utc>,
) -> Result<Outcome<Reservation>, StoreError> {
    let now = db_instant(now);
    let venue_id = request.venue_id.to_string();
    let (venue, resources, occupied) = on_backend!(tx tx, |c, s| {
        // Shared lock on the venue, as a booking takes: an edit of its
        // closures committed meanwhile is read here, or waits.
        let _venue: Vec<String> =
            s::load_shared!(s::venues::table.find(&venue_id).select(s::venues::id), c)?;
        let venue: domain::Venue =
            load_venue!(c, s, &venue_id)?.ok_or(DomainError::not_found("venue"))?;
        let resources = load_resources!(c, s, &venue_id)?;
        let until =
            now + venue.rules.booking_duration.duration() + venue.rules.buffer.duration();
        let occupied = load_occupancy!(c, s, &venue_id, now, until, "", now)?;
        (venue, resources, occupied)
    });
    check_collected(&venue.guest_fields, request)?;
    let placement = BookingContext {
        venue: &venue,
        resources: &resources,
        occupied: &occupied,
        now,
        // A walk-in is seated for the venue's own booking length, whatever
        // the guests end up ordering.
        service: None,
    }
    .place_walk_in(request.party_size, request.resource_id)?;
    let guest = if request.has_personal_data() {
        Some(write_guest(store, ring, tx, request, now)?)
    } else {
        None
    };
    let reservation = Reservation {
        id: ReservationId::new_random(),
        venue_id: venue.id,
        resource_id: placement.resource_id,
        guest_id: guest.as_ref().map(|(id, _)| *id),
        party_size: request.party_size,
        starts_at: placement.starts_at,
        ends_at: placement.ends_at,
        blocked_until: placement.blocked_until,
        status: ReservationStatus::CheckedIn,
        hold_until: None,
        service_id: None,
        created_at: now,
        updated_at: now,
    };
    let row = row_of(&reservation, 1);
    let notes_sealed = match (&request.notes, &guest) {
        (Some(notes), Some((_, key))) => {
            Some(key.seal(Field::RESERVATION_NOTES, &row.id, notes.expose().as_bytes())?)
        }
        _ => None,
    };
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
                    r::key_version.eq(notes_sealed
                        .as_ref()
                        .map(|_| db_version(domain::crypto::DATA_KEY_VERSION))),
                    r::notes_sealed.eq(&notes_sealed),
                    // No manage token: the guest is at the table, and staff
                    // change or end the reservation.
                    r::manage_token_hash.eq(None::<Vec<u8>>),
                    r::hold_until.eq(row.hold_until),
                ),
            ))
            .execute(c)
    });
    // A party seated at joined tables holds the other tables too (the
    // primary one's hold comes with the reservation).
    let inserted = inserted.and_then(|_| {
        let extra = placement.resources.iter().skip(1);
        on_backend!(tx tx, |c, s| crate::reservations::insert_holds!(
            c,
            s,
            &reservation,
            extra.clone()
        ))
    });
    if let Err(error) = inserted {
        return match retry_on_overlap::<()>(error)? {
            Outcome::Retry(race) => Err(RetryLater(race).into()),
            Outcome::Done(()) => Err(StoreError::Corrupt("walk-in not written".to_owned())),
        };
    }
    on_backend!(tx tx, |c, s| {
        if let Some((guest_id, _)) = &guest {
            let guest_id = guest_id.to_string();
            crate::privacy::append_consents!(
                c,
                s,
                &guest_id,
                &venue_id,
                std::iter::once(domain::privacy::ConsentPurpose::Booking),
                true,
                request.channel.as_str(),
                None::<&domain::privacy::PrivacyNotice>,
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
    });
    Ok(Outcome::Done(reservation))
}

/// A walk-in needs no contact data, but gives none the venue does not
/// collect.
fn check_collected(
    rules: &domain::privacy::GuestFields,
    request: &NewWalkIn,
) -> Result<(), DomainError> {
    use domain::privacy::FieldRule;
    let given = [
        (
            rules.email,
            request.email.is_some(),
            "email",
            "an e-mail address",
        ),
        (
            rules.phone,
            request.phone.is_some(),
            "phone",
            "a phone number",
        ),
        (rules.notes, request.notes.is_some(), "note", "notes"),
    ];
    for (rule, is_given, field, what) in given {
        if rule == FieldRule::NotCollected && is_given {
            return Err(DomainError::invalid(
                field,
                format!("this venue does not collect {what}; leave it out"),
            ));
        }
    }
    Ok(())
}

/// A guest record of its own, under a new data key, like a booking's.
fn write_guest(
    store: &Store,
    ring: &KeyRing,
    tx: &mut Tx<'_>,
    request: &NewWalkIn,
    now: DateTime<Utc>,
) -> Result<(GuestId, DataKey), StoreError> {
    let guest_id = GuestId::new_random();
    let id = guest_id.to_string();
    let data_key = store.key_store().create_key(ring, &id, now)?;
    let stand_in;
    let name = match &request.name {
        Some(name) => name,
        None => {
            stand_in = PersonName::parse("name", NAMELESS)?;
            &stand_in
        }
    };
    let sealed = seal_guest(
        ring,
        ring.current_version(),
        Some(&data_key),
        &id,
        name,
        request.email.as_ref(),
        request.phone.as_ref(),
    )?;
    let venue_id = request.venue_id.to_string();
    on_backend!(tx tx, |c, s| {
        use s::guests::dsl as g;
        diesel::insert_into(g::guests)
            .values((
                g::id.eq(&id),
                g::venue_id.eq(&venue_id),
                g::key_version.eq(sealed.key_version),
                g::name_sealed.eq(&sealed.name_sealed),
                g::email_sealed.eq(&sealed.email_sealed),
                g::email_lookup.eq(&sealed.email_lookup),
                g::phone_sealed.eq(&sealed.phone_sealed),
                g::phone_lookup.eq(&sealed.phone_lookup),
                g::created_at.eq(now),
                g::updated_at.eq(now),
                g::data_key.eq(true),
            ))
            .execute(c)?
    });
    Ok((guest_id, data_key))
}
