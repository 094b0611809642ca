//! Telling guests about a personal-data breach: finding whom it touched
//! and queueing one notice per guest, audited.

use chrono::{DateTime, Utc};
use domain::ports::ReservationRepository;
use domain::{DomainError, Reservation, ReservationId, VenueId};
use store::Store;

use crate::error::{Error, blocking};

/// A free text of the register or a notice: trimmed, 1 to `limit`
/// characters.
pub fn text(field: &'static str, raw: &str, limit: usize) -> Result<String, Error> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > limit {
        return Err(DomainError::invalid(field, format!("must be 1 to {limit} characters")).into());
    }
    Ok(trimmed.to_owned())
}

/// A venue and the window of bookings a breach touched there.
pub type Window = (VenueId, DateTime<Utc>, DateTime<Utc>);

/// The affected window as given: a venue, from and until together (from
/// before until), or none of them.
pub fn window(
    venue: Option<&str>,
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Option<Window>, Error> {
    match (venue, from, until) {
        (Some(venue), Some(from), Some(until)) if from < until => {
            Ok(Some((VenueId::parse(venue)?, from, until)))
        }
        (None, None, None) => Ok(None),
        _ => Err(DomainError::invalid(
            "affected",
            "venueId, from and until go together, with from before until",
        )
        .into()),
    }
}

/// The reservations named as affected; with no window, at least one must
/// be.
pub fn listed<S: AsRef<str>>(
    window: Option<&Window>,
    raw: &[S],
) -> Result<Vec<ReservationId>, Error> {
    if window.is_none() && raw.is_empty() {
        return Err(
            DomainError::invalid("affected", "name a venue and window or reservations").into(),
        );
    }
    Ok(raw
        .iter()
        .map(|raw| ReservationId::parse(raw.as_ref()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// The reservations a breach touched: those starting in a venue's window,
/// and those named. Loaded before the caller's permission in each
/// reservation's venue is checked.
pub async fn affected_reservations(
    store: &Store,
    window: Option<Window>,
    listed: Vec<ReservationId>,
) -> Result<Vec<Reservation>, Error> {
    let lookup = store.clone();
    blocking(move || {
        let mut found = Vec::new();
        if let Some((venue, from, until)) = window {
            let mut after = None;
            loop {
                let page = lookup.reservations_in(venue, from, until, after, 500)?;
                let Some(last) = page.last() else { break };
                after = Some((last.starts_at, last.id.to_string()));
                found.extend(page);
            }
        }
        for id in listed {
            found.push(
                lookup
                    .reservation(id)?
                    .ok_or(DomainError::not_found("reservation"))?,
            );
        }
        Ok(found)
    })
    .await
}

/// The notice's text; `{name}` in the message becomes the guest's name.
pub struct Notice {
    pub subject: String,
    pub message: String,
}

impl Notice {
    /// A subject of 1 to 200 characters and a message of 1 to 20 000.
    pub fn parse(subject: &str, message: &str) -> Result<Self, Error> {
        Ok(Self {
            subject: text("subject", subject, 200)?,
            message: text("message", message, 20_000)?,
        })
    }
}

/// Queues the breach notice once per guest with an e-mail address among
/// `reservations`, audited as a notification by `who`; answers how many
/// were queued now (a guest already told is not told again).
pub async fn notify(
    store: &Store,
    breach_id: String,
    reservations: Vec<Reservation>,
    notice: Notice,
    who: String,
    at: DateTime<Utc>,
) -> Result<i32, Error> {
    let Notice { subject, message } = notice;
    let store = store.clone();
    blocking(move || {
        if store.breach(&breach_id)?.is_none() {
            return Err(DomainError::not_found("breach").into());
        }
        let mut notified = 0i32;
        let mut seen = std::collections::HashSet::new();
        let mut events = Vec::new();
        for reservation in reservations {
            let Some(guest) = reservation.guest_id else {
                continue;
            };
            if !seen.insert(guest) {
                continue;
            }
            let Some(record) = store.guest_record(&reservation)? else {
                continue;
            };
            let Some(email) = record.guest.email.clone() else {
                continue;
            };
            let mail = store::Mail::new(
                email,
                domain::messages::breach_notice(&subject, &message, record.guest.name.expose()),
            );
            let venue = reservation.venue_id.to_string();
            if store.queue_breach_notice(&breach_id, &guest.to_string(), &venue, &mail, at)? {
                notified += 1;
                events.push(store::AuditEvent {
                    principal: who.clone(),
                    action: store::AuditAction::Notify,
                    object: format!("guest:{guest}"),
                    fields: store::audit_fields::NOTIFIED.to_owned(),
                    venue_id: Some(venue),
                });
            }
        }
        store.audit(&events, at)?;
        Ok(notified)
    })
    .await
}
