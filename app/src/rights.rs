//! Guests' rights: the export, correction, consent, and erasure as a whole
//! (the data, the audit entry, the alert count, and the payment providers'
//! saved cards).

use chrono::{DateTime, Utc};
use domain::ports::VenueRepository;
use domain::privacy::{Consent, ConsentPurpose, Locale};
use domain::{DomainError, Email, GuestId, PersonName, Phone, Reservation, VenueId};
use store::Store;

use crate::error::{Error, blocking};
use crate::monitor::Monitor;

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub erased_at: DateTime<Utc>,
    /// True when the data had already been erased: nothing more was done.
    pub already_erased: bool,
    pub reservations: u32,
    /// Payment providers asked to delete their customer object.
    pub providers_asked: u32,
}

/// Asks the payment providers to delete the customer objects behind saved
/// cards; answers how many did. A provider that fails is logged (with the
/// gateway, not the guest) and not retried: the card data is theirs.
pub async fn forget_saved_cards(
    gateways: &plugins::Gateways,
    saved_cards: &[(String, String)],
) -> u32 {
    let mut asked = 0u32;
    for (gateway, reference) in saved_cards {
        if let Some(provider) = gateways.named(gateway) {
            match provider.forget(reference).await {
                Ok(()) => asked += 1,
                Err(error) => {
                    tracing::warn!(%error, %gateway, "the provider could not delete its customer object")
                }
            }
        }
    }
    asked
}

/// Erases the personal data of `guests` (their records at `venue`),
/// audited as an erasure by `who`, and asks payment providers to delete
/// their customer objects. The data itself is destroyed by
/// `Store::erase_guest` (`store/src/erasure.rs`).
pub async fn erase(
    store: &Store,
    monitor: Option<&Monitor>,
    gateways: Option<&plugins::Gateways>,
    who: String,
    venue: VenueId,
    guests: Vec<GuestId>,
    at: DateTime<Utc>,
) -> Result<Erasure, Error> {
    let records = guests.len();
    let monitor = monitor.cloned();
    let store = store.clone();
    let (report, saved_cards) = blocking(move || {
        let mut saved_cards = Vec::new();
        let mut report = Erasure {
            erased_at: at,
            already_erased: true,
            reservations: 0,
            providers_asked: 0,
        };
        let mut events = Vec::new();
        let mut first_erased: Option<DateTime<Utc>> = None;
        for guest in &guests {
            let cards = store.saved_cards_of(*guest)?;
            let erasure = store.erase_guest(*guest, at)?;
            report.reservations = report
                .reservations
                .saturating_add(u32::try_from(erasure.reservations).unwrap_or(u32::MAX));
            if erasure.already {
                first_erased =
                    Some(first_erased.map_or(erasure.erased_at, |t| t.min(erasure.erased_at)));
                continue;
            }
            report.already_erased = false;
            saved_cards.extend(cards);
            events.push(store::AuditEvent {
                principal: who.clone(),
                action: store::AuditAction::Erase,
                object: format!("guest:{guest}"),
                fields: store::audit_fields::ERASED.to_owned(),
                venue_id: Some(venue.to_string()),
            });
        }
        if report.already_erased {
            // Nothing new was destroyed: the first erasure's time stands.
            report.erased_at = first_erased.unwrap_or(at);
        } else {
            store.audit(&events, at)?;
            if let Some(monitor) = &monitor {
                monitor.rights_exercised(
                    &who,
                    store::AuditAction::Erase,
                    Some(&venue.to_string()),
                    at,
                );
            }
        }
        Ok((report, saved_cards))
    })
    .await?;
    let asked = if report.already_erased {
        0
    } else {
        match gateways {
            Some(gateways) => forget_saved_cards(gateways, &saved_cards).await,
            None => 0,
        }
    };
    tracing::info!(
        %venue,
        records,
        reservations = report.reservations,
        "guest data erased"
    );
    Ok(Erasure {
        providers_asked: asked,
        ..report
    })
}

/// Everything kluis holds in the guest records `guests` at `venue` (a
/// typed document, loaded with one query per table), audited as an
/// export by `who`.
pub async fn export(
    store: &Store,
    monitor: Option<&Monitor>,
    who: String,
    venue: VenueId,
    guests: Vec<GuestId>,
    at: DateTime<Utc>,
) -> Result<store::GuestExport, Error> {
    let store = store.clone();
    let monitor = monitor.cloned();
    blocking(move || {
        let reservations = store.reservations_of_guests(&guests, venue)?;
        // One entry for the request (what the export-rate rule counts),
        // naming every record of the history, so that "who saw this
        // guest" finds each of them; written first, so the export's own
        // access log shows it.
        let events: Vec<store::AuditEvent> = guests
            .iter()
            .map(|guest| store::AuditEvent {
                principal: who.clone(),
                action: store::AuditAction::Export,
                object: format!("guest:{guest}"),
                fields: store::audit_fields::EXPORTED.to_owned(),
                venue_id: Some(venue.to_string()),
            })
            .collect();
        store.audit(&events, at)?;
        if let Some(monitor) = &monitor {
            monitor.rights_exercised(
                &who,
                store::AuditAction::Export,
                Some(&venue.to_string()),
                at,
            );
        }
        Ok(store.load_export(&guests, venue, &reservations, Utc::now())?)
    })
    .await
}

/// A guest's corrected details as typed: each is checked in
/// [`correct`], all at once, so a form learns every fault in one submit.
/// The phone number is read by the venue's country.
pub struct Correction {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// What a correction came to.
#[derive(Debug)]
pub enum Corrected {
    /// The guest records changed (erased ones stay erased and are not
    /// counted).
    Done { records: usize },
    /// Nothing changed: every field at fault, named as in [`Correction`].
    Refused(Vec<DomainError>),
}

/// Checks every field of `correction` against its own rule and the venue's
/// field rules, collecting every fault.
fn check_correction(
    venue: &domain::Venue,
    correction: &Correction,
) -> Result<(PersonName, Option<Email>, Option<Phone>), Vec<DomainError>> {
    let mut faults = Vec::new();
    let given = |raw: &Option<String>| raw.clone().filter(|raw| !raw.trim().is_empty());
    let name = PersonName::parse("name", &correction.name)
        .map_err(|fault| faults.push(fault))
        .ok();
    let email = given(&correction.email)
        .map(|raw| Email::parse("email", &raw))
        .transpose()
        .map_err(|fault| faults.push(fault))
        .ok();
    let phone = given(&correction.phone)
        .map(|raw| Phone::parse("phone", &raw, venue.country))
        .transpose()
        .map_err(|fault| faults.push(fault))
        .ok();
    let (Some(name), Some(email), Some(phone)) = (name, email, phone) else {
        return Err(faults);
    };
    let rules = venue.guest_fields.check(&domain::GuestDetails {
        name: name.clone(),
        email: email.clone(),
        phone: phone.clone(),
        notes: None,
    });
    match rules {
        Ok(()) => Ok((name, email, phone)),
        // The rules speak of a booking's `guest.email`; a correction's
        // fields sit at the top.
        Err(DomainError::InvalidInput { field, reason }) => Err(vec![DomainError::invalid(
            field.trim_start_matches("guest.").to_owned(),
            reason,
        )]),
        Err(other) => Err(vec![other]),
    }
}

/// Replaces the name, e-mail and phone of the guest records `guests` at
/// `venue`, audited as a correction by `who`; the venue's field rules
/// apply as when booking. Erased records stay erased.
pub async fn correct(
    store: &Store,
    who: String,
    venue: VenueId,
    guests: Vec<GuestId>,
    correction: Correction,
    at: DateTime<Utc>,
) -> Result<Corrected, Error> {
    let store = store.clone();
    blocking(move || {
        let venue = store.venue(venue)?.ok_or(DomainError::not_found("venue"))?;
        let (name, email, phone) = match check_correction(&venue, &correction) {
            Ok(checked) => checked,
            Err(faults) => return Ok(Corrected::Refused(faults)),
        };
        let corrected = store.correct_guests(&guests, &name, email.as_ref(), phone.as_ref(), at)?;
        let events: Vec<store::AuditEvent> = corrected
            .iter()
            .map(|guest| store::AuditEvent {
                principal: who.clone(),
                action: store::AuditAction::Correct,
                object: format!("guest:{guest}"),
                fields: store::audit_fields::CORRECTED.to_owned(),
                venue_id: Some(venue.id.to_string()),
            })
            .collect();
        store.audit(&events, at)?;
        Ok(Corrected::Done {
            records: corrected.len(),
        })
    })
    .await
}

/// Refuses a consent change for the booking itself: that is the legal
/// basis of the reservation, not a consent.
pub fn consentable(purpose: ConsentPurpose) -> Result<(), Error> {
    if purpose == ConsentPurpose::Booking {
        return Err(Error::Refused(
            "purpose: the booking is the legal basis of the reservation itself; cancel it or erase your data instead".to_owned(),
        ));
    }
    Ok(())
}

/// Gives or withdraws the consent of a reservation's guest to `purpose`
/// at its venue, from the web; answers the guest's whole consent ledger
/// there.
pub async fn record_consent(
    store: &Store,
    reservation: &Reservation,
    purpose: ConsentPurpose,
    given: bool,
    locale: Locale,
    at: DateTime<Utc>,
) -> Result<Vec<Consent>, Error> {
    let guest = reservation
        .guest_id
        .ok_or_else(|| Error::Refused("this reservation has no guest record".to_owned()))?;
    let venue = reservation.venue_id;
    let store = store.clone();
    blocking(move || {
        // Withdrawing is always possible; giving only what the venue
        // offers (a purpose it stopped offering can still be withdrawn).
        let offered = store
            .venue(venue)?
            .map(|venue| venue.opt_ins.purposes())
            .unwrap_or_default();
        if given && !offered.contains(&purpose) {
            return Err(Error::Domain(DomainError::invalid(
                "purpose",
                format!("this venue does not offer the {} opt-in", purpose.as_str()),
            )));
        }
        store.record_consent(
            &store::ConsentChange {
                guest,
                venue,
                purpose,
                given,
                channel: "web",
                locale: &locale,
            },
            at,
        )?;
        Ok(store.consents_of(guest, venue)?)
    })
    .await
}

/// Where a guest stands on one purpose, folded from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentState {
    pub purpose: ConsentPurpose,
    pub given: bool,
    /// When it was last given or withdrawn; `None` if never.
    pub since: Option<DateTime<Utc>>,
}

/// The opt-in purposes' current state, one each (newsletter, marketing):
/// the newest entry of each purpose wins, and a purpose never recorded is
/// off, as opting in must be asked for. The booking's legal basis is no
/// opt-in and is left out.
pub fn consent_state(ledger: &[Consent]) -> Vec<ConsentState> {
    ConsentPurpose::ALL
        .into_iter()
        .filter(|purpose| *purpose != ConsentPurpose::Booking)
        .map(|purpose| {
            let newest = ledger
                .iter()
                .filter(|entry| entry.purpose == purpose)
                .max_by_key(|entry| entry.at);
            ConsentState {
                purpose,
                given: newest.is_some_and(|entry| entry.given),
                since: newest.map(|entry| entry.at),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(purpose: ConsentPurpose, given: bool, minute: u32) -> Consent {
        Consent {
            purpose,
            given,
            at: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 12, minute, 0)
                .single()
                .expect("a valid time"),
            channel: "web".to_owned(),
            notice_version: None,
            notice_sha256: None,
        }
    }

    #[test]
    fn the_newest_entry_of_each_opt_in_wins_and_the_booking_is_left_out() {
        let ledger = [
            entry(ConsentPurpose::Booking, true, 0),
            entry(ConsentPurpose::Newsletter, true, 1),
            entry(ConsentPurpose::Newsletter, false, 5),
            entry(ConsentPurpose::Newsletter, true, 3),
        ];
        let state = consent_state(&ledger);
        assert_eq!(
            state,
            [
                ConsentState {
                    purpose: ConsentPurpose::Newsletter,
                    given: false,
                    since: Some(ledger[2].at),
                },
                ConsentState {
                    purpose: ConsentPurpose::Marketing,
                    given: false,
                    since: None,
                },
            ]
        );
    }
}
