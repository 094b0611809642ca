//! What the business needs from storage. `store` implements these; the
//! booking methods run the rules in [`crate::availability`] inside the
//! transaction that writes their outcome, so two concurrent bookings can
//! never both see a slot as free.

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    DomainError, IdempotencyKey, PartySize, Reservation, ReservationId, Resource, ResourceId, Slot,
    Venue, VenueId,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub venue_id: VenueId,
    pub starts_at: DateTime<Utc>,
    pub party_size: PartySize,
    pub resource_id: Option<ResourceId>,
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
    ) -> Result<Reservation, Self::Error>;
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
