//! kluis business rules, free of any framework: value types built through a
//! checked `parse`, the venue's booking rules, the reservation state machine,
//! availability (time-zone aware) and the ports the storage layer implements.

pub mod auth;
pub mod availability;
pub mod closure;
pub mod combination;
pub mod crypto;
pub mod error;
pub mod hours;
pub mod ids;
pub mod messages;
pub mod net;
pub mod payments;
pub mod personal;
pub mod ports;
pub mod privacy;
pub mod reservation;
pub mod secret;
pub mod service;
pub mod values;
pub mod venue;
pub mod waitlist;
pub mod webhooks;

pub use availability::{BookingContext, Occupancy, Placement, Shape, Slot};
pub use closure::{Closure, ClosureId};
pub use combination::{CandidateSet, Combination, TablesTogether};
pub use error::DomainError;
pub use hours::HoursException;
pub use ids::{GuestId, ReservationId, ResourceId, StaffId, VenueId};
pub use personal::{
    AccessToken, Country, Email, Guest, GuestDetails, GuestNotes, ManageToken, PersonName,
    Personal, Phone, WaitlistToken,
};
pub use reservation::{Reservation, ReservationStatus};
pub use secret::{Secret, SessionHash};
pub use service::{Service, ServiceId};
pub use values::{IdempotencyKey, Minutes, PartySize, Slug, TimeOfDay};
pub use venue::{
    BookingRules, OpeningInterval, OptIns, Origin, Pacing, Resource, ResourceKind, Venue,
    WeeklySchedule,
};
