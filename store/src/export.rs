//! The guest's copy of their data (the right of access and portability):
//! one typed, serializable document, loaded with one query per table.

use chrono::{DateTime, Utc};
use domain::{Email, GuestId, Phone, Reservation, VenueId};
use serde::Serialize;

use crate::{Store, StoreError};

/// The format's name and version, first in every export.
pub const EXPORT_FORMAT: &str = "kluis-export-2";

/// Everything kluis holds in some guest records at one venue. It holds
/// personal data, so it is never printed; it is only serialized for the
/// guest it belongs to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestExport {
    pub format: &'static str,
    pub exported_at: DateTime<Utc>,
    /// The newest booking's details; each booking's own are in `profiles`.
    pub profile: Option<ExportedProfile>,
    pub profiles: Vec<ExportedProfile>,
    pub reservations: Vec<ExportedReservation>,
    pub consents: Vec<ExportedConsent>,
    pub payments: Vec<ExportedPayment>,
    pub access_log: Vec<ExportedAccess>,
    /// Waitlist entries, their details in `profiles`.
    pub waitlist: Vec<ExportedWaitlistEntry>,
}

impl std::fmt::Debug for GuestExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestExport")
            .field("reservations", &self.reservations.len())
            .field("contents", &"‹withheld›")
            .finish()
    }
}

/// The details entered with one booking.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedProfile {
    pub guest_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedReservation {
    pub id: String,
    pub venue_id: String,
    pub guest_id: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub party_size: u32,
    pub status: &'static str,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedConsent {
    pub guest_id: String,
    pub purpose: &'static str,
    pub given: bool,
    pub at: DateTime<Utc>,
    pub channel: String,
    pub notice_version: Option<u32>,
    pub notice_sha256: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedPayment {
    pub id: String,
    pub reservation_id: String,
    pub kind: String,
    pub gateway: String,
    pub provider_reference: Option<String>,
    pub amount: i64,
    pub refunded: i64,
    pub currency: String,
    pub status: &'static str,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A waitlist entry and its newest offer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedWaitlistEntry {
    pub id: String,
    pub venue_id: String,
    pub guest_id: String,
    pub date: chrono::NaiveDate,
    /// Local times, `HH:MM`.
    pub from: String,
    pub until: String,
    pub party_size: u32,
    pub status: &'static str,
    pub joined_at: DateTime<Utc>,
    pub offered_start: Option<DateTime<Utc>>,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub offer_status: Option<String>,
}

/// One read or change of the guest's records in the audit trail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedAccess {
    pub at: DateTime<Utc>,
    pub who: String,
    pub action: String,
    pub object: String,
    pub fields: Vec<String>,
}

/// Most audit rows an export lists, newest first.
const ACCESS_LOG_LIMIT: i64 = 10_000;

impl Store {
    /// Loads the export of `guests` at `venue` (whose reservations are
    /// `reservations`, from [`Store::reservations_of_guests`]): one query each for
    /// the guest records, payments, consents and audit rows.
    pub fn load_export(
        &self,
        guests: &[GuestId],
        venue: VenueId,
        reservations: &[Reservation],
        exported_at: DateTime<Utc>,
    ) -> Result<GuestExport, StoreError> {
        let mut objects: Vec<String> = reservations
            .iter()
            .map(|r| format!("reservation:{}", r.id))
            .collect();
        objects.extend(guests.iter().map(|g| format!("guest:{g}")));
        // Only the guest's own objects of each entry: the others a request
        // named (a day sheet's other guests) are not theirs to see.
        let access_log = self
            .audit_accesses(&objects, ACCESS_LOG_LIMIT)?
            .into_iter()
            .map(|access| ExportedAccess {
                at: access.at,
                who: access.principal,
                action: access.action,
                fields: access.fields.split(',').map(str::to_owned).collect(),
                object: access.object,
            })
            .collect();
        let records = self.guest_records(reservations)?;
        let mut bookings = Vec::with_capacity(reservations.len());
        let mut profiles: Vec<ExportedProfile> = Vec::new();
        for booking in reservations {
            let record = records.get(&booking.id);
            bookings.push(ExportedReservation {
                id: booking.id.to_string(),
                venue_id: booking.venue_id.to_string(),
                guest_id: booking.guest_id.map(|g| g.to_string()),
                starts_at: booking.starts_at,
                ends_at: booking.ends_at,
                party_size: booking.party_size.get(),
                status: booking.status.as_str(),
                notes: record
                    .and_then(|r| r.notes.as_ref())
                    .map(|n| n.expose().to_owned()),
                created_at: booking.created_at,
            });
            if let Some(record) = record {
                let id = record.guest.id.to_string();
                if !profiles.iter().any(|p| p.guest_id == id) {
                    profiles.push(ExportedProfile {
                        guest_id: id,
                        name: record.guest.name.expose().to_owned(),
                        email: record
                            .guest
                            .email
                            .as_ref()
                            .map(|e| Email::expose(e).to_owned()),
                        phone: record
                            .guest
                            .phone
                            .as_ref()
                            .map(|p| Phone::expose(p).to_owned()),
                    });
                }
            }
        }
        // The newest booking's details, or a waitlist entry's when there
        // is no booking.
        let booked_profile = profiles.last().cloned();
        let entries = self.waitlist_of_guests(guests)?;
        let waitlist_guests = self.waitlist_guests(&entries)?;
        let mut waitlist = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(guest) = waitlist_guests.get(&entry.guest_id) {
                let id = guest.id.to_string();
                if !profiles.iter().any(|p| p.guest_id == id) {
                    profiles.push(ExportedProfile {
                        guest_id: id,
                        name: guest.name.expose().to_owned(),
                        email: guest.email.as_ref().map(|e| Email::expose(e).to_owned()),
                        phone: guest.phone.as_ref().map(|p| Phone::expose(p).to_owned()),
                    });
                }
            }
            waitlist.push(ExportedWaitlistEntry {
                id: entry.id,
                venue_id: entry.venue_id.to_string(),
                guest_id: entry.guest_id.to_string(),
                date: entry.wish.date,
                from: entry.wish.from.to_string(),
                until: entry.wish.until.to_string(),
                party_size: entry.wish.party_size.get(),
                status: entry.status.as_str(),
                joined_at: entry.joined_at,
                offered_start: entry.offer.as_ref().map(|o| o.starts_at),
                offer_expires_at: entry.offer.as_ref().map(|o| o.expires_at),
                offer_status: entry.offer.map(|o| o.status),
            });
        }
        // Payments in the order of their bookings, each booking's oldest
        // first.
        let ids: Vec<domain::ReservationId> = reservations.iter().map(|r| r.id).collect();
        let mut payments = self.payments_of_many(&ids)?;
        payments.sort_by_key(|p| ids.iter().position(|id| *id == p.reservation_id));
        let payments = payments
            .into_iter()
            .map(|payment| ExportedPayment {
                reservation_id: payment.reservation_id.to_string(),
                amount: payment.amount.minor(),
                refunded: payment.refunded.minor(),
                currency: payment.amount.currency().code().to_owned(),
                status: payment.status.as_str(),
                id: payment.id,
                kind: payment.kind,
                gateway: payment.gateway,
                provider_reference: payment.reference,
                card_brand: payment.card_brand,
                card_last4: payment.card_last4,
                created_at: payment.created_at,
            })
            .collect();
        let mut consents = self.consents_of_many(guests, venue)?;
        consents.sort_by_key(|(_, c)| c.at);
        let consents = consents
            .into_iter()
            .map(|(guest, c)| ExportedConsent {
                guest_id: guest.to_string(),
                purpose: c.purpose.as_str(),
                given: c.given,
                at: c.at,
                channel: c.channel,
                notice_version: c.notice_version,
                notice_sha256: c.notice_sha256,
            })
            .collect();
        Ok(GuestExport {
            format: EXPORT_FORMAT,
            exported_at,
            profile: booked_profile.or_else(|| profiles.last().cloned()),
            profiles,
            reservations: bookings,
            consents,
            payments,
            access_log,
            waitlist,
        })
    }
}
