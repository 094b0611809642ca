//! Guests' rights: the export, and erasure as a whole (the data, the audit entry, the
//! alert count, and the payment providers' saved cards).

use chrono::{DateTime, Utc};
use domain::privacy::Consent;
use domain::{Email, GuestId, Phone, VenueId};
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
                action: "erase".to_owned(),
                object: format!("guest:{guest}"),
                fields: "name,email,phone,notes,card".to_owned(),
                venue_id: Some(venue.to_string()),
            });
        }
        if report.already_erased {
            // Nothing new was destroyed: the first erasure's time stands.
            report.erased_at = first_erased.unwrap_or(at);
        } else {
            store.audit(&events, at)?;
            if let Some(monitor) = &monitor {
                monitor.rights_exercised(&who, "erase", Some(&venue.to_string()), at);
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

/// Everything kluis holds in the guest records `guests` at `venue`, as
/// JSON, audited as an export by `who`.
pub async fn export(
    store: &Store,
    monitor: Option<&Monitor>,
    who: String,
    venue: VenueId,
    guests: Vec<GuestId>,
    at: DateTime<Utc>,
) -> Result<serde_json::Value, Error> {
    let store = store.clone();
    let monitor = monitor.cloned();
    blocking(move || {
        let mut reservations = Vec::new();
        for guest in &guests {
            reservations.extend(
                store
                    .reservations_of_guest(*guest)?
                    .into_iter()
                    .filter(|r| r.venue_id == venue),
            );
        }
        reservations.sort_by_key(|r| (r.starts_at, r.id.to_string()));
        let mut objects: Vec<String> = reservations
            .iter()
            .map(|r| format!("reservation:{}", r.id))
            .collect();
        objects.extend(guests.iter().map(|g| format!("guest:{g}")));
        // One entry for the request (what the export-rate rule counts),
        // naming every record of the history, so that "who saw this
        // guest" finds each of them.
        let events: Vec<store::AuditEvent> = guests
            .iter()
            .map(|guest| store::AuditEvent {
                principal: who.clone(),
                action: "export".to_owned(),
                object: format!("guest:{guest}"),
                fields: "profile,reservations,consents,payments".to_owned(),
                venue_id: Some(venue.to_string()),
            })
            .collect();
        store.audit(&events, at)?;
        if let Some(monitor) = &monitor {
            monitor.rights_exercised(&who, "export", Some(&venue.to_string()), at);
        }
        // Only the guest's own objects of each entry: the others a request
        // named (a day sheet's other guests) are not theirs to see.
        let access_log: Vec<serde_json::Value> = store
            .audit_accesses(&objects, 10_000)?
            .into_iter()
            .map(|access| {
                serde_json::json!({
                    "at": access.at,
                    "who": access.principal,
                    "action": access.action,
                    "object": access.object,
                    "fields": access.fields.split(',').collect::<Vec<_>>(),
                })
            })
            .collect();
        let records = store.guest_records(&reservations)?;
        let mut bookings = Vec::new();
        let mut payments = Vec::new();
        let mut profiles: Vec<serde_json::Value> = Vec::new();
        for booking in &reservations {
            let record = records.get(&booking.id);
            bookings.push(serde_json::json!({
                "id": booking.id.to_string(),
                "venueId": booking.venue_id.to_string(),
                "guestId": booking.guest_id.map(|g| g.to_string()),
                "startsAt": booking.starts_at,
                "endsAt": booking.ends_at,
                "partySize": booking.party_size.get(),
                "status": booking.status.as_str(),
                "notes": record.and_then(|r| r.notes.as_ref()).map(|n| n.expose().to_owned()),
                "createdAt": booking.created_at,
            }));
            if let Some(record) = record {
                let id = record.guest.id.to_string();
                if !profiles.iter().any(|p| p["guestId"] == id.as_str()) {
                    profiles.push(serde_json::json!({
                        "guestId": id,
                        "name": record.guest.name.expose(),
                        "email": record.guest.email.as_ref().map(Email::expose),
                        "phone": record.guest.phone.as_ref().map(Phone::expose),
                    }));
                }
            }
            for payment in store.payments_of(booking.id)? {
                payments.push(serde_json::json!({
                    "id": payment.id,
                    "reservationId": booking.id.to_string(),
                    "kind": payment.kind,
                    "gateway": payment.gateway,
                    "providerReference": payment.reference,
                    "amount": payment.amount.minor(),
                    "refunded": payment.refunded.minor(),
                    "currency": payment.amount.currency().code(),
                    "status": payment.status.as_str(),
                    "cardBrand": payment.card_brand,
                    "cardLast4": payment.card_last4,
                    "createdAt": payment.created_at,
                }));
            }
        }
        let mut consents: Vec<(domain::GuestId, Consent)> = Vec::new();
        for guest in &guests {
            consents.extend(
                store
                    .consents_of(*guest, venue)?
                    .into_iter()
                    .map(|c| (*guest, c)),
            );
        }
        consents.sort_by_key(|(_, c)| c.at);
        let consents: Vec<serde_json::Value> = consents
            .into_iter()
            .map(|(guest, c)| {
                serde_json::json!({
                    "guestId": guest.to_string(),
                    "purpose": c.purpose.as_str(),
                    "given": c.given,
                    "at": c.at,
                    "channel": c.channel,
                    "noticeVersion": c.notice_version,
                    "noticeSha256": c.notice_sha256,
                })
            })
            .collect();
        // The newest booking's details are the profile; each booking's own
        // details are under `profiles`.
        let profile = profiles.last().cloned();
        Ok(serde_json::json!({
            "format": "kluis-export-2",
            "exportedAt": chrono::Utc::now(),
            "profile": profile,
            "profiles": profiles,
            "reservations": bookings,
            "consents": consents,
            "payments": payments,
            "accessLog": access_log,
        }))
    })
    .await
}
