//! The waitlist: guests asking for a table when none is free, offers when
//! one frees up, and claims of those offers. The caller has checked who
//! may do it; the store keeps offers exactly-once.

use chrono::{DateTime, NaiveDate, Utc};
use domain::ports::{NewReservation, ReservationRepository, VenueRepository};
use domain::privacy::Locale;
use domain::waitlist::WaitlistWish;
use domain::{
    DomainError, Email, GuestDetails, IdempotencyKey, PartySize, PersonName, Phone, TimeOfDay,
    VenueId, WaitlistToken,
};
use store::{NewWaitlistEntry, Store, WaitlistEntry, WaitlistRun};

use crate::error::{Error, blocking};

/// A claimed offer's booking and the guest's manage token, handed out
/// once.
pub struct Claimed {
    pub reservation: domain::Reservation,
    pub venue: domain::Venue,
    pub manage_token: domain::ManageToken,
}

/// A waitlist request as submitted, before any of it is checked. No
/// `Debug`: personal data.
pub struct JoinForm {
    pub venue_id: VenueId,
    pub date: NaiveDate,
    pub from: String,
    pub until: String,
    pub party_size: i64,
    /// Required at a venue that books by service.
    pub service_id: Option<domain::ServiceId>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub locale: String,
}

/// Checks every field at once, then puts the guest in line: the entry and
/// its token, or every refusal. A table free right now is offered at
/// once (the offer comes by mail, like any other).
pub async fn join(
    store: &Store,
    form: JoinForm,
    now: DateTime<Utc>,
) -> Result<Result<(WaitlistEntry, WaitlistToken), Vec<Error>>, Error> {
    let store = store.clone();
    blocking(move || {
        let Some(view) = store.venue_view(form.venue_id)? else {
            return Ok(Err(vec![Error::Domain(DomainError::not_found("venue"))]));
        };
        let venue = view.venue.clone();
        let mut refused: Vec<Error> = Vec::new();
        let name = keep(&mut refused, PersonName::parse("guest.name", &form.name));
        let email = keep(
            &mut refused,
            match form.email.as_deref().filter(|raw| !raw.trim().is_empty()) {
                Some(raw) => Email::parse("guest.email", raw),
                // The offer goes by mail: without an address there is no way
                // to tell the guest a table is free.
                None => Err(DomainError::invalid(
                    "guest.email",
                    "the waitlist needs an e-mail address to send the offer to",
                )),
            },
        );
        let phone = keep(
            &mut refused,
            form.phone
                .as_deref()
                .filter(|raw| !raw.trim().is_empty())
                .map(|raw| Phone::parse("guest.phone", raw, venue.country))
                .transpose(),
        );
        let time = |field: &'static str, raw: &str| {
            TimeOfDay::parse(raw).map_err(|reason| DomainError::invalid(field, reason))
        };
        let from = keep(&mut refused, time("from", &form.from));
        let until = keep(&mut refused, time("until", &form.until));
        let party = keep(&mut refused, PartySize::parse(form.party_size));
        let locale = keep(&mut refused, Locale::parse(&form.locale));
        if let (Some(from), Some(until), Some(party)) = (from, until, party) {
            let wish = WaitlistWish {
                date: form.date,
                from,
                until,
                party_size: party,
                service: form.service_id,
            };
            keep(
                &mut refused,
                wish.check(&venue, venue.local_date(now)).map(|_| ()),
            );
        }
        if let (Some(name), Some(email), Some(phone)) = (&name, &email, &phone) {
            keep(
                &mut refused,
                venue.guest_fields.check(&GuestDetails {
                    name: name.clone(),
                    email: Some(email.clone()),
                    phone: phone.clone(),
                    notes: None,
                }),
            );
        }
        let (
            Some(name),
            Some(email),
            Some(phone),
            Some(from),
            Some(until),
            Some(party),
            Some(locale),
            true,
        ) = (
            name,
            email,
            phone,
            from,
            until,
            party,
            locale,
            refused.is_empty(),
        )
        else {
            return Ok(Err(refused));
        };
        let request = NewWaitlistEntry {
            venue_id: form.venue_id,
            wish: WaitlistWish {
                date: form.date,
                from,
                until,
                party_size: party,
                service: form.service_id,
            },
            name,
            email,
            phone,
            locale: locale.as_str().to_owned(),
        };
        let joined = store.join_waitlist(&request, now)?;
        store.run_waitlist_of(form.venue_id, now)?;
        Ok(Ok(joined))
    })
    .await
}

/// The entry a waitlist token opens, with its newest offer; NOT_FOUND for
/// any other token.
pub async fn entry(store: &Store, token: WaitlistToken) -> Result<WaitlistEntry, Error> {
    let store = store.clone();
    blocking(move || {
        Ok(store
            .waitlist_entry_by_token(&token)?
            .ok_or(DomainError::not_found("waitlist entry"))?)
    })
    .await
}

/// Leaves the waitlist: the entry goes, with its guest record.
pub async fn leave(
    store: &Store,
    token: WaitlistToken,
    now: DateTime<Utc>,
) -> Result<WaitlistEntry, Error> {
    let store = store.clone();
    blocking(move || Ok(store.leave_waitlist(&token, now)?)).await
}

/// A venue's waitlist on a date (or every date), in line order, with the
/// guests' details opened for the fields the caller may see.
pub async fn of_venue(
    store: &Store,
    venue: VenueId,
    date: Option<NaiveDate>,
) -> Result<
    (
        Vec<WaitlistEntry>,
        std::collections::HashMap<domain::GuestId, domain::Guest>,
    ),
    Error,
> {
    let store = store.clone();
    blocking(move || {
        let entries = store.waitlist_of_venue(venue, date)?;
        let guests = store.waitlist_guests(&entries)?;
        Ok((entries, guests))
    })
    .await
}

/// Claims an offer: books the offered table as an ordinary reservation
/// (with a manage token and a confirmation mail) if it is still free. The
/// offer is spent by the first claim, whatever its outcome: a replay is a
/// CONFLICT, and a table taken meanwhile (SLOT_TAKEN) puts the entry back
/// in line at its old place. `starts_at`, when given, must be the offered
/// start.
pub async fn claim(
    store: &Store,
    token: WaitlistToken,
    starts_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Claimed, Error> {
    let store = store.clone();
    blocking(move || {
        let claimed = store.claim_waitlist_offer(&token, starts_at, now)?;
        let entry = &claimed.entry;
        let venue_id = entry.venue_id;
        let locale = Locale::parse(&entry.locale)?;
        // The booking is recorded under the venue's current notice: the
        // guest gave their details for exactly this booking.
        let notice = store.current_notice(venue_id, &locale)?;
        let request = NewReservation {
            venue_id,
            starts_at: claimed.offer.starts_at,
            party_size: entry.wish.party_size,
            resource_id: Some(claimed.offer.resource_id),
            service_id: entry.wish.service,
            guest: GuestDetails {
                name: claimed.guest.name.clone(),
                email: claimed.guest.email.clone(),
                phone: claimed.guest.phone.clone(),
                notes: None,
            },
            locale,
            notice_version: notice.map(|n| n.version),
            opt_ins: Vec::new(),
            channel: "waitlist".to_owned(),
        };
        let key = IdempotencyKey::parse(&format!("waitlist:{}", claimed.offer.id))?;
        match store.create_reservation(&request, &key, now) {
            Ok(booking) => {
                store.settle_waitlist_claim(&claimed, Some(booking.reservation.id), now)?;
                let venue = store
                    .venue(venue_id)?
                    .ok_or(DomainError::not_found("venue"))?;
                Ok(Claimed {
                    reservation: booking.reservation,
                    venue,
                    manage_token: booking.manage_token,
                })
            }
            Err(error) => {
                store.settle_waitlist_claim(&claimed, None, now)?;
                store.run_waitlist_of(venue_id, now)?;
                Err(error.into())
            }
        }
    })
    .await
}

/// Runs the waitlist pass of a venue whose tables just changed (a
/// cancellation, a no-show, a moved or shrunk booking), so that the next
/// guest in line hears of a freed table at once rather than at the next
/// periodic pass. A failure is logged: the periodic pass makes up for it.
pub async fn table_freed(store: &Store, venue: VenueId, now: DateTime<Utc>) {
    let store = store.clone();
    match blocking(move || Ok(store.run_waitlist_of(venue, now)?)).await {
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, %venue, "the waitlist pass after a change failed"),
    }
}

/// Every venue's pass: expiries, offers, purges.
pub async fn run(store: &Store, now: DateTime<Utc>) -> Result<WaitlistRun, Error> {
    let store = store.clone();
    blocking(move || Ok(store.run_waitlist(now)?)).await
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
