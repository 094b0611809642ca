//! Walk-ins: staff seat a party that came in without a booking. The
//! caller has checked that the principal may do it at this venue.

use chrono::{DateTime, Utc};
use domain::{DomainError, Email, GuestNotes, PartySize, PersonName, Phone, ResourceId, VenueId};
use store::{NewWalkIn, Store};

use crate::booking::Booked;
use crate::error::{Error, blocking};
use crate::principal::Principal;

/// A walk-in as staff entered it, before any of it is checked. Blank
/// fields are absent. No `Debug`: personal data.
pub struct WalkInForm {
    pub venue_id: VenueId,
    pub party_size: i64,
    pub resource_id: Option<ResourceId>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
}

fn given(raw: Option<&str>) -> Option<&str> {
    raw.filter(|raw| !raw.trim().is_empty())
}

/// Checks every field, so that staff see every mistake at once, then
/// seats the party now: the reservation checked in, or every refusal.
pub async fn record(
    store: &Store,
    by: &Principal,
    form: WalkInForm,
    at: DateTime<Utc>,
) -> Result<Result<Booked, Vec<Error>>, Error> {
    let channel = match by {
        Principal::Staff { id, .. } => format!("staff:{id}"),
        Principal::ApiKey { id, .. } => format!("partner:{id}"),
        Principal::Anonymous | Principal::Guest(_) => "web".to_owned(),
    };
    let store = store.clone();
    blocking(move || {
        let Some(view) = store.venue_view(form.venue_id)? else {
            return Ok(Err(vec![Error::Domain(DomainError::not_found("venue"))]));
        };
        let venue = view.venue.clone();
        let mut refused = Vec::new();
        let party = keep(&mut refused, PartySize::parse(form.party_size));
        let name = keep(
            &mut refused,
            given(form.name.as_deref())
                .map(|raw| PersonName::parse("name", raw))
                .transpose(),
        );
        let email = keep(
            &mut refused,
            given(form.email.as_deref())
                .map(|raw| Email::parse("email", raw))
                .transpose(),
        );
        let phone = keep(
            &mut refused,
            given(form.phone.as_deref())
                .map(|raw| Phone::parse("phone", raw, venue.country))
                .transpose(),
        );
        let notes = keep(
            &mut refused,
            match form.note.as_deref() {
                Some(raw) => GuestNotes::parse("note", raw),
                None => Ok(None),
            },
        );
        let (Some(party), Some(name), Some(email), Some(phone), Some(notes), true) =
            (party, name, email, phone, notes, refused.is_empty())
        else {
            return Ok(Err(refused));
        };
        let request = NewWalkIn {
            venue_id: form.venue_id,
            party_size: party,
            resource_id: form.resource_id,
            name,
            email,
            phone,
            notes,
            channel,
        };
        let reservation = store.record_walk_in(&request, at)?;
        Ok(Ok(Booked { reservation, venue }))
    })
    .await
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
