//! Booking: making, changing and cancelling reservations, the staff's day
//! sheet and the front desk's lookup by e-mail. The callers have checked
//! who may do it; the store runs the booking rules inside the transaction
//! that writes their outcome.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use domain::ports::{NewReservation, ReservationChange, ReservationRepository, VenueRepository};
use domain::privacy::{ConsentPurpose, GuestFields, Locale};
use domain::{
    BookingContext, DomainError, Email, GuestDetails, GuestNotes, IdempotencyKey, ManageToken,
    PartySize, PersonName, Phone, Reservation, ReservationId, ReservationStatus, ResourceId, Slot,
    TimeOfDay, Venue, VenueId,
};
use store::{SheetFilter, SheetSummary, Store, StoreError, VenueView};

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
    /// The service booked; required at a venue that offers services.
    pub service_id: Option<domain::ServiceId>,
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
            service_id: request.service_id,
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
        let booking = store
            .create_reservation(&new, &key, at)
            .map_err(notice_changed)?;
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

/// The store refuses a booking naming another notice than the current one
/// on `noticeVersion`: the form showed an outdated notice (or none).
fn notice_changed(error: StoreError) -> Error {
    match error {
        StoreError::Domain(DomainError::InvalidInput { field, reason })
            if field == "noticeVersion" =>
        {
            Error::NoticeChanged(reason)
        }
        other => Error::Store(other),
    }
}

/// The domain refuses a change after the venue's deadline on the
/// reservation itself (`id`): nothing in the input can fix that, so it
/// gets its own kind.
fn deadline_passed(error: Error) -> Error {
    match error {
        Error::Store(StoreError::Domain(DomainError::InvalidInput { field, reason }))
        | Error::Domain(DomainError::InvalidInput { field, reason })
            if field == "id" =>
        {
            Error::DeadlinePassed(reason)
        }
        other => other,
    }
}

/// The value, or the refusal noted among the others.
fn keep<T>(refused: &mut Vec<Error>, result: Result<T, DomainError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            refused.push(Error::Domain(error));
            None
        }
    }
}

/// A booking form as submitted, before any of it is checked.
pub struct BookingForm {
    pub venue_id: VenueId,
    pub starts_at: DateTime<Utc>,
    pub party_size: i64,
    pub resource_id: Option<ResourceId>,
    pub service_id: Option<domain::ServiceId>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub locale: String,
    pub notice_version: Option<i64>,
    pub opt_ins: Vec<ConsentPurpose>,
}

/// Checks every field of a booking form against the venue's rules at
/// `now`, so that the guest sees every mistake at once: the booking ready
/// for `create`, or every refusal. The booking itself checks again inside
/// its transaction (a slot or notice may change in between).
pub async fn check_form(
    store: &Store,
    form: BookingForm,
    now: DateTime<Utc>,
) -> Result<Result<NewBooking, Vec<Error>>, Error> {
    let store = store.clone();
    blocking(move || {
        let Some(view) = store.venue_view(form.venue_id)? else {
            return Ok(Err(vec![Error::Domain(DomainError::not_found("venue"))]));
        };
        let venue = &view.venue;
        let mut refused: Vec<Error> = Vec::new();
        let name = keep(&mut refused, PersonName::parse("guest.name", &form.name));
        let email = keep(
            &mut refused,
            form.email
                .as_deref()
                .filter(|raw| !raw.trim().is_empty())
                .map(|raw| Email::parse("guest.email", raw))
                .transpose(),
        );
        let phone = keep(
            &mut refused,
            form.phone
                .as_deref()
                .filter(|raw| !raw.trim().is_empty())
                .map(|raw| Phone::parse("guest.phone", raw, venue.country))
                .transpose(),
        );
        let notes = keep(
            &mut refused,
            match form.notes.as_deref() {
                Some(raw) => GuestNotes::parse("guest.notes", raw),
                None => Ok(None),
            },
        );
        // Each field the venue requires or does not collect, on its own,
        // so that all of them are reported.
        if let (Some(email), Some(phone), Some(notes)) = (&email, &phone, &notes) {
            let stand_in = name
                .clone()
                .map_or_else(|| PersonName::parse("guest.name", "guest"), Ok);
            if let Ok(stand_in) = stand_in {
                let details = GuestDetails {
                    name: stand_in,
                    email: email.clone(),
                    phone: phone.clone(),
                    notes: notes.clone(),
                };
                let rules = venue.guest_fields;
                for one in [
                    GuestFields {
                        email: rules.email,
                        ..GuestFields::default()
                    },
                    GuestFields {
                        phone: rules.phone,
                        ..GuestFields::default()
                    },
                    GuestFields {
                        notes: rules.notes,
                        ..GuestFields::default()
                    },
                ] {
                    keep(&mut refused, one.check(&details));
                }
            }
        }
        let party = keep(&mut refused, PartySize::parse(form.party_size));
        // A wrong service is one refusal; the rest of the form is still
        // checked, against the venue's own rules.
        let service = keep(&mut refused, venue.service_for(form.service_id));
        let service_known = service.is_some();
        let service = service.flatten();
        let context = BookingContext {
            venue,
            resources: &view.resources,
            occupied: &[],
            now,
            service,
        };
        if let (Some(party), true) = (party, service_known) {
            let date = venue.local_date(form.starts_at);
            keep(&mut refused, context.availability(date, party).map(|_| ()));
        }
        // The start on its own, for the smallest party the service takes:
        // whether it is on the grid and inside the booking window.
        if let (Ok(one), true) = (
            PartySize::parse(i64::from(service.map_or(1, |s| s.min_party))),
            service_known,
        ) {
            let start = context.place_new(form.starts_at, one, None);
            if let Err(DomainError::InvalidInput { field, reason }) = start
                && field == "startsAt"
            {
                refused.push(Error::Domain(DomainError::InvalidInput { field, reason }));
            }
        }
        let locale = match Locale::parse(&form.locale) {
            Ok(locale) => Some(locale),
            Err(error) => {
                refused.push(Error::Domain(error));
                None
            }
        };
        // An opt-in the venue's form does not offer cannot have been
        // ticked there: recording it would put words in the guest's mouth.
        let offered = venue.opt_ins.purposes();
        if let Some(purpose) = form.opt_ins.iter().find(|p| !offered.contains(p)) {
            refused.push(Error::Domain(DomainError::invalid(
                "consents",
                format!("this venue does not offer the {} opt-in", purpose.as_str()),
            )));
        }
        let notice_version = match form.notice_version.map(u32::try_from).transpose() {
            Ok(version) => version,
            Err(_) => {
                refused.push(Error::Domain(DomainError::invalid(
                    "noticeVersion",
                    "must be a version from privacyNotice",
                )));
                None
            }
        };
        if let Some(locale) = &locale {
            let current = store.current_notice(form.venue_id, locale)?;
            match (current, notice_version) {
                (Some(notice), named) if named != Some(notice.version) => {
                    refused.push(Error::NoticeChanged(format!(
                        "the current privacy notice ({}) is version {}; show it and book again",
                        notice.locale.as_str(),
                        notice.version
                    )));
                }
                (None, Some(_)) => refused.push(Error::Domain(DomainError::invalid(
                    "noticeVersion",
                    "this venue has published no privacy notice in this locale",
                ))),
                _ => {}
            }
        }
        let (Some(name), Some(email), Some(notes), Some(party), Some(locale), true) =
            (name, email, notes, party, locale, refused.is_empty())
        else {
            return Ok(Err(refused));
        };
        Ok(Ok(NewBooking {
            venue_id: form.venue_id,
            starts_at: form.starts_at,
            party_size: party,
            resource_id: form.resource_id,
            service_id: form.service_id,
            name,
            email,
            phone: form.phone,
            notes,
            locale,
            notice_version,
            opt_ins: form.opt_ins,
        }))
    })
    .await
}

/// The free start times nearest to `starts_at` on its local day for this
/// party, nearest first, at most `count`: what to offer when the time asked
/// for was just taken.
pub async fn nearest_free(
    store: &Store,
    venue_id: VenueId,
    starts_at: DateTime<Utc>,
    party: PartySize,
    service: Option<domain::ServiceId>,
    count: usize,
    now: DateTime<Utc>,
) -> Result<(Arc<VenueView>, Vec<Slot>), Error> {
    let store = store.clone();
    blocking(move || {
        let Some(view) = store.venue_view(venue_id)? else {
            return Err(DomainError::not_found("venue").into());
        };
        let date = view.venue.local_date(starts_at);
        let (view, mut slots) = store.availability_view(venue_id, date, party, service, now)?;
        slots.retain(|slot| slot.starts_at != starts_at);
        slots.sort_by_key(|slot| ((slot.starts_at - starts_at).abs(), slot.starts_at));
        slots.truncate(count);
        Ok((view, slots))
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
    .await
    .map_err(deadline_passed)?;
    // A moved or smaller booking may leave a table free for the waitlist.
    crate::waitlist::table_freed(store, changed.venue.id, at).await;
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
    let cancelled = with_venue(store, move |store| store.cancel_reservation(id, &key, at))
        .await
        .map_err(deadline_passed)?;
    crate::waitlist::table_freed(store, cancelled.venue.id, at).await;
    Ok(cancelled)
}

/// Records check-in, no-show or completion.
pub async fn set_status(
    store: &Store,
    id: ReservationId,
    next: ReservationStatus,
    at: DateTime<Utc>,
) -> Result<Booked, Error> {
    let set = with_venue(store, move |store| {
        store.set_reservation_status(id, next, at)
    })
    .await?;
    // A no-show or an early completion gives the table back.
    if matches!(
        next,
        ReservationStatus::NoShow | ReservationStatus::Completed
    ) {
        crate::waitlist::table_freed(store, set.venue.id, at).await;
    }
    Ok(set)
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

/// One page of a venue's day sheet, with the counts of the whole sheet.
pub struct DaySheet {
    pub venue: Venue,
    /// In start order.
    pub reservations: Vec<Reservation>,
    pub has_next_page: bool,
    /// Every reservation under the filter, across pages.
    pub summary: SheetSummary,
}

/// Which part of a local date's sheet to show.
#[derive(Debug, Clone, Default)]
pub struct SheetQuery {
    pub statuses: Vec<ReservationStatus>,
    pub resource: Option<ResourceId>,
    /// Starting at or after this time of day.
    pub from: Option<TimeOfDay>,
    /// Starting before this time of day.
    pub until: Option<TimeOfDay>,
    /// Changed after this instant (a sheet's refresh), cancellations too.
    pub updated_since: Option<DateTime<Utc>>,
}

/// A venue's reservations starting on a local date under `query`, in
/// start order, after a `(starts_at, id)` position, `first` at a time,
/// with the sheet's counts.
pub async fn day_sheet(
    store: &Store,
    venue_id: VenueId,
    date: NaiveDate,
    query: SheetQuery,
    after: Option<(DateTime<Utc>, String)>,
    first: usize,
) -> Result<DaySheet, Error> {
    let store = store.clone();
    let limit = i64::try_from(first).unwrap_or(0) + 1;
    let (venue, mut reservations, summary) = blocking(move || {
        let venue = cached_venue(&store, venue_id)?;
        let filter = SheetFilter {
            venue: venue_id,
            from: venue.instant_at(date, query.from.unwrap_or(TimeOfDay::MIDNIGHT)),
            until: venue.instant_at(date, query.until.unwrap_or(TimeOfDay::END_OF_DAY)),
            statuses: query.statuses,
            resource: query.resource,
            updated_since: query.updated_since,
        };
        let list = store.sheet_page(&filter, after, limit)?;
        let summary = store.sheet_summary(&filter)?;
        Ok((venue, list, summary))
    })
    .await?;
    let has_next_page = reservations.len() > first;
    reservations.truncate(first);
    Ok(DaySheet {
        venue,
        reservations,
        has_next_page,
        summary,
    })
}

/// What the front desk's lookup found.
pub struct GuestLookup {
    pub venue: Venue,
    /// Newest start first.
    pub reservations: Vec<Reservation>,
    pub has_next_page: bool,
    /// Every reservation of the address at the venue, across pages.
    pub total: i64,
    /// The objects the audit trail names as looked up by the address: the
    /// guest records of the bookings answered, or the venue searched in
    /// vain.
    pub looked_up: Vec<String>,
}

/// The reservations at a venue of the guest with this e-mail address,
/// newest start first, after a `(starts_at, id)` position, at most
/// `limit`. Found through the address's lookup token; the address is never
/// stored, logged or echoed.
pub async fn guest_lookup(
    store: &Store,
    venue_id: VenueId,
    email: Email,
    after: Option<(DateTime<Utc>, String)>,
    limit: usize,
) -> Result<GuestLookup, Error> {
    let first = limit;
    let limit = i64::try_from(limit).unwrap_or(0) + 1;
    let store = store.clone();
    let (venue, mut reservations, total) = blocking(move || {
        let venue = cached_venue(&store, venue_id)?;
        let found = store.guest_reservations_page(venue_id, &email, after, limit)?;
        let total = store.count_reservations_of_guest_by_email(venue_id, &email)?;
        Ok((venue, found, total))
    })
    .await?;
    let has_next_page = reservations.len() > first;
    reservations.truncate(first);
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
        has_next_page,
        total,
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
