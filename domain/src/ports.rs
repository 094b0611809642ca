//! What the business needs from storage. `store` implements these; the
//! booking methods run the rules in [`crate::availability`] inside the
//! transaction that writes their outcome, so two concurrent bookings can
//! never both see a slot as free.

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    DomainError, Email, Guest, GuestDetails, GuestId, GuestNotes, IdempotencyKey, ManageToken,
    PartySize, Phone, Reservation, ReservationId, Resource, ResourceId, Slot, Venue, VenueId,
};

#[derive(Debug, Clone, PartialEq)]
pub struct NewReservation {
    pub venue_id: VenueId,
    pub starts_at: DateTime<Utc>,
    pub party_size: PartySize,
    pub resource_id: Option<ResourceId>,
    /// The service booked; required at a venue that offers services.
    pub service_id: Option<crate::ServiceId>,
    pub guest: GuestDetails,
    /// The locale of the privacy notice the booking form showed.
    pub locale: crate::privacy::Locale,
    /// The version of that notice; must be the current one when the venue
    /// has published a notice in this locale.
    pub notice_version: Option<u32>,
    /// Purposes beyond the booking the guest opted into (off by default).
    pub opt_ins: Vec<crate::privacy::ConsentPurpose>,
    /// Who booked: `web`, `partner:<key id>` or `staff:<account id>`.
    pub channel: String,
}

/// A new booking and the token that lets its guest manage it. The token is
/// handed out here and, for a retried request, once more from the sealed
/// idempotency record; it is never stored in the clear.
#[derive(Debug, Clone)]
pub struct Booking {
    pub reservation: Reservation,
    pub manage_token: ManageToken,
}

/// The guest behind a reservation, decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestRecord {
    pub guest: Guest,
    pub notes: Option<GuestNotes>,
    /// The guest's record was linked to several bookings (before each
    /// booking kept its own): it may hold what another booking entered, so
    /// one booking's manage token does not open it.
    pub shared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationChange {
    pub starts_at: Option<DateTime<Utc>>,
    pub party_size: Option<PartySize>,
}

/// A page of a list, in a stable order, after an opaque cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

pub trait VenueRepository {
    type Error: From<DomainError>;

    fn venue(&self, id: VenueId) -> Result<Option<Venue>, Self::Error>;
    /// Venues ordered by id, after `after`.
    fn venues(&self, after: Option<VenueId>, first: usize) -> Result<Page<Venue>, Self::Error>;
    fn resources(&self, venue: VenueId) -> Result<Vec<Resource>, Self::Error>;
    fn availability(
        &self,
        venue: VenueId,
        date: NaiveDate,
        party: PartySize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Slot>, Self::Error>;
}

pub trait ReservationRepository {
    type Error: From<DomainError>;

    fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, Self::Error>;
    fn create_reservation(
        &self,
        request: &NewReservation,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Booking, Self::Error>;
    /// The reservation a manage token belongs to.
    fn reservation_by_token(&self, token: &ManageToken)
    -> Result<Option<Reservation>, Self::Error>;
    /// The guest and notes of a reservation, decrypted.
    fn guest_record(&self, reservation: &Reservation) -> Result<Option<GuestRecord>, Self::Error>;
    /// A venue's guest with this e-mail or phone, found by lookup token.
    fn find_guest(
        &self,
        venue: VenueId,
        email: Option<&Email>,
        phone: Option<&Phone>,
    ) -> Result<Option<GuestId>, Self::Error>;
    fn modify_reservation(
        &self,
        id: ReservationId,
        change: &ReservationChange,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Reservation, Self::Error>;
    fn cancel_reservation(
        &self,
        id: ReservationId,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Reservation, Self::Error>;
}
