//! Webhooks kluis sends: what a message says and how it is signed, so
//! that a receiver can check it came from us and is fresh.
//!
//! The signature header reads `t=<unix seconds>,v1=<hex>` where the hex is
//! HMAC-SHA256 over `"<t>.<body>"` with the endpoint's secret: the same
//! scheme as Stripe's, which most receivers already know how to check.

use hmac::{KeyInit as _, Mac};
use sha2::Sha256;

use crate::Reservation;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Kluis-Signature";
/// The header that carries the message id; receivers use it to drop a
/// message they already handled (delivery is at least once).
pub const EVENT_ID_HEADER: &str = "Kluis-Event-Id";
/// How old a signature a receiver should accept.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// A fresh signing secret for an endpoint, shown to its owner once.
pub fn new_secret() -> Result<String, crate::crypto::CryptoError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| crate::crypto::CryptoError::Randomness)?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// The `Kluis-Signature` value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Whether `header` is a valid, fresh signature of `body` at `now`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return false;
    }
    signatures.iter().any(|candidate| {
        let mut check = keyed(secret);
        check.update(signed_text(timestamp, body).as_slice());
        check.verify_slice(candidate).is_ok()
    })
}

fn keyed(secret: &[u8]) -> hmac::Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    match hmac::Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

fn signed_text(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut text = format!("{timestamp}.").into_bytes();
    text.extend_from_slice(body);
    text
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = keyed(secret);
    mac.update(&signed_text(timestamp, body));
    mac.finalize().into_bytes().to_vec()
}

/// What happened to a reservation, as a venue's webhook hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationEvent {
    Created,
    Changed,
    Cancelled,
    /// Staff recorded a check-in, a no-show or a completion.
    StatusChanged,
}

impl ReservationEvent {
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "reservation.created",
            Self::Changed => "reservation.changed",
            Self::Cancelled => "reservation.cancelled",
            Self::StatusChanged => "reservation.status_changed",
        }
    }
}

/// A reservation event's data: ids, times, party size and status. Never
/// the guest's name, contact data or notes: a receiver that needs them asks
/// over GraphQL with its own rights, and that read is audited.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReservationEventData {
    pub reservation_id: String,
    pub venue_id: String,
    pub resource_id: String,
    pub status: String,
    pub party_size: u32,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Reservation> for ReservationEventData {
    fn from(reservation: &Reservation) -> Self {
        Self {
            reservation_id: reservation.id.to_string(),
            venue_id: reservation.venue_id.to_string(),
            resource_id: reservation.resource_id.to_string(),
            status: reservation.status.as_str().to_owned(),
            party_size: reservation.party_size.get(),
            starts_at: reservation.starts_at,
            ends_at: reservation.ends_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_signature_verifies_with_the_same_secret_body_and_a_fresh_time() {
        let body = br#"{"type":"reservation.created"}"#;
        let header = signature(SECRET, 1_000, body);
        assert!(verify(SECRET, &header, body, 1_000));
        assert!(verify(SECRET, &header, body, 1_000 + TOLERANCE_SECONDS));
    }

    #[test]
    fn a_signature_fails_with_another_secret_body_or_a_stale_time() {
        let body = br#"{"type":"reservation.created"}"#;
        let header = signature(SECRET, 1_000, body);
        assert!(!verify(b"whsec_other", &header, body, 1_000));
        assert!(!verify(SECRET, &header, br#"{"type":"x"}"#, 1_000));
        assert!(!verify(SECRET, &header, body, 1_001 + TOLERANCE_SECONDS));
        assert!(!verify(SECRET, "v1=00", body, 1_000));
        assert!(!verify(SECRET, "", body, 1_000));
    }

    #[test]
    fn the_timestamp_is_part_of_what_is_signed() {
        let body = b"{}";
        let header = signature(SECRET, 1_000, body);
        let replayed = header.replace("t=1000", "t=2000");
        assert!(!verify(SECRET, &replayed, body, 2_000));
    }
}
