//! Booking: making, changing and cancelling reservations, the staff's day
//! sheet and the front desk's lookup by e-mail. The callers have checked
//! who may do it; the store runs the booking rules inside the transaction
//! that writes their outcome.

use chrono::{DateTime, NaiveDate, Utc};
use domain::ports::{NewReservation, ReservationChange, ReservationRepository, VenueRepository};
use domain::privacy::{ConsentPurpose, Locale};
use domain::{
    DomainError, Email, GuestDetails, GuestNotes, IdempotencyKey, ManageToken, PartySize,
    PersonName, Phone, Reservation, ReservationId, ReservationStatus, ResourceId, Venue, VenueId,
};
use store::{Store, StoreError};

use crate::error::{Error, blocking};
use crate::monitor::Monitor;
use crate::principal::Principal;

/// A reservation with the venue it is at, which every answer about it
/// needs (its time zone, its rules).
pub struct Booked {
    pub reservation: Reservation,
    pub venue: Venue,
}

/// A new booking and the guest's manage token, handed out once.
pub struct Created {
    pub booked: Booked,
    pub manage_token: ManageToken,
}

/// What a booking asks for. The phone stays as written until the venue's
/// country, which reads it, is known. No `Debug`: it is personal data.
pub struct NewBooking {
    pub venue_id: VenueId,
    pub starts_at: DateTime<Utc>,
    pub party_size: PartySize,
    /// A specific resource; without it the smallest free one that seats the
    /// party is chosen.
    pub resource_id: Option<ResourceId>,
    pub name: PersonName,
    pub email: Option<Email>,
    /// As the guest wrote it; blank is no phone.
    pub phone: Option<String>,
    pub notes: Option<GuestNotes>,
    pub locale: Locale,
    pub notice_version: Option<u32>,
    pub opt_ins: Vec<ConsentPurpose>,
}

/// How a consent reached kluis, for the ledger.
fn channel_of(principal: &Principal) -> String {
    match principal {
        Principal::ApiKey { id, .. } => format!("partner:{id}"),
        Principal::Staff { id, .. } => format!("staff:{id}"),
        Principal::Anonymous | Principal::Guest(_) => "web".to_owned(),
    }
}

/// Books a slot for a guest, by `by`. Retrying with the same key answers
/// the first booking; the same key with a different request is a conflict.
pub async fn create(
    store: &Store,
    by: &Principal,
    request: NewBooking,
    key: IdempotencyKey,
    at: DateTime<Utc>,
) -> Result<Created, Error> {
    let channel = channel_of(by);
    let store = store.clone();
    blocking(move || {
        let venue = store
            .venue(request.venue_id)?
            .ok_or(DomainError::not_found("venue"))?;
        let phone = request
            .phone
            .as_deref()
            .filter(|raw| !raw.trim().is_empty())
            .map(|raw| Phone::parse("guest.phone", raw, venue.country))
            .transpose()?;
        let new = NewReservation {
            venue_id: request.venue_id,
            starts_at: request.starts_at,
            party_size: request.party_size,
            resource_id: request.resource_id,
            guest: GuestDetails {
                name: request.name,
                email: request.email,
                phone,
                notes: request.notes,
            },
            locale: request.locale,
            notice_version: request.notice_version,
            opt_ins: request.opt_ins,
            channel,
        };
        let booking = store.create_reservation(&new, &key, at)?;
        Ok(Created {
            booked: Booked {
                reservation: booking.reservation,
                venue,
            },
            manage_token: booking.manage_token,
        })
    })
    .await
}

/// Moves a reservation or changes its party size. A smaller party under a
/// per-guest payment rule gets its share back through the provider, keyed
/// by the change's key so that a retried change refunds once (a larger
/// party than was paid for is refused inside the change). `now` is read
/// for the change and again for the refund, which follows it.
pub async fn modify(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    id: ReservationId,
    change: ReservationChange,
    key: IdempotencyKey,
    now: impl Fn() -> DateTime<Utc> + Sync,
) -> Result<Booked, Error> {
    let smaller_party_key = change.party_size.map(|_| key.as_str().to_owned());
    let at = now();
    let changed = with_venue(store, move |store| {
        store.modify_reservation(id, &change, &key, at)
    })
    .await?;
    if let Some(key) = smaller_party_key {
        crate::payments::refund_smaller_party(store, gateways, monitor, id, &key, now()).await?;
    }
    Ok(changed)
}

/// Cancels a reservation, until the venue's cancellation deadline.
pub async fn cancel(
    store: &Store,
    id: ReservationId,
    key: IdempotencyKey,
    at: DateTime<Utc>,
) -> Result<Booked, Error> {
    with_venue(store, move |store| store.cancel_reservation(id, &key, at)).await
}

/// Records check-in, no-show or completion.
pub async fn set_status(
    store: &Store,
    id: ReservationId,
    next: ReservationStatus,
    at: DateTime<Utc>,
) -> Result<Booked, Error> {
    with_venue(store, move |store| {
        store.set_reservation_status(id, next, at)
    })
    .await
}

/// Runs a booking operation and loads the venue the answer needs.
async fn with_venue(
    store: &Store,
    work: impl FnOnce(&Store) -> Result<Reservation, StoreError> + Send + 'static,
) -> Result<Booked, Error> {
    let store = store.clone();
    blocking(move || {
        let reservation = work(&store)?;
        let venue = store.venue(reservation.venue_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!("reservation {} has no venue", reservation.id))
        })?;
        Ok(Booked { reservation, venue })
    })
    .await
}

/// One page of a venue's day sheet.
pub struct DaySheet {
    pub venue: Venue,
    /// In start order.
    pub reservations: Vec<Reservation>,
    pub has_next_page: bool,
}

/// A venue's reservations starting on a local date, in start order, after
/// a `(starts_at, id)` cursor, `first` at a time.
pub async fn day_sheet(
    store: &Store,
    venue_id: VenueId,
    date: NaiveDate,
    after: Option<(DateTime<Utc>, String)>,
    first: usize,
) -> Result<DaySheet, Error> {
    let store = store.clone();
    let limit = i64::try_from(first).unwrap_or(0) + 1;
    let (venue, mut reservations) = blocking(move || {
        let venue = cached_venue(&store, venue_id)?;
        let from = venue.instant_at(date, domain::TimeOfDay::MIDNIGHT);
        let until = venue.instant_at(date, domain::TimeOfDay::END_OF_DAY);
        let list = store.reservations_in(venue_id, from, until, after, limit)?;
        Ok((venue, list))
    })
    .await?;
    let has_next_page = reservations.len() > first;
    reservations.truncate(first);
    Ok(DaySheet {
        venue,
        reservations,
        has_next_page,
    })
}

/// What the front desk's lookup found.
pub struct GuestLookup {
    pub venue: Venue,
    /// Newest start first.
    pub reservations: Vec<Reservation>,
    /// The objects the audit trail names as looked up by the address: the
    /// guest records of the bookings answered, or the venue searched in
    /// vain.
    pub looked_up: Vec<String>,
}

/// The reservations at a venue of the guest with this e-mail address,
/// newest start first, at most `limit`. Found through the address's lookup
/// token; the address is never stored, logged or echoed.
pub async fn guest_lookup(
    store: &Store,
    venue_id: VenueId,
    email: Email,
    limit: usize,
) -> Result<GuestLookup, Error> {
    let limit = i64::try_from(limit).unwrap_or(0);
    let store = store.clone();
    let (venue, (_, reservations)) = blocking(move || {
        let venue = cached_venue(&store, venue_id)?;
        let found = store.reservations_of_guest_by_email(venue_id, &email, limit)?;
        Ok((venue, found))
    })
    .await?;
    // Finding someone by their address is itself a use of it, and so is
    // learning that someone is not a guest: the trail names the guest
    // records found, or the venue searched in vain, never the address.
    // The records named are those of the bookings answered (a page may
    // hold fewer than the address has).
    let mut looked_up: Vec<String> = reservations
        .iter()
        .filter_map(|r| r.guest_id.map(|g| format!("guest:{g}")))
        .collect();
    looked_up.sort();
    looked_up.dedup();
    if looked_up.is_empty() {
        looked_up.push(format!("venue:{venue_id}"));
    }
    Ok(GuestLookup {
        venue,
        reservations,
        looked_up,
    })
}

/// A venue's definition from the per-node cache; not found when it does
/// not exist.
fn cached_venue(store: &Store, id: VenueId) -> Result<Venue, Error> {
    Ok(store
        .venue_view(id)?
        .ok_or(DomainError::not_found("venue"))?
        .venue
        .clone())
}
