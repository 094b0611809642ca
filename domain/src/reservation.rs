//! Reservations and their life cycle.

use chrono::{DateTime, Utc};

use crate::{DomainError, PartySize, ReservationId, ResourceId, VenueId};

/// Where a reservation is in its life. Only the transitions in
/// [`ReservationStatus::can_become`] exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// Holds its slot while something (payment) is outstanding.
    Pending,
    Confirmed,
    CheckedIn,
    Completed,
    NoShow,
    Cancelled,
}

impl ReservationStatus {
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Confirmed,
        Self::CheckedIn,
        Self::Completed,
        Self::NoShow,
        Self::Cancelled,
    ];

    /// Statuses that keep the resource occupied.
    pub const ACTIVE: [Self; 3] = [Self::Pending, Self::Confirmed, Self::CheckedIn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::CheckedIn => "checked_in",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    /// Whether the guest may still change time or party size.
    pub fn is_modifiable(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }

    pub fn can_become(self, next: Self) -> bool {
        use ReservationStatus::*;
        matches!(
            (self, next),
            (Pending, Confirmed)
                | (Pending, Cancelled)
                | (Confirmed, CheckedIn)
                | (Confirmed, NoShow)
                | (Confirmed, Cancelled)
                | (CheckedIn, Completed)
        )
    }

    pub fn transition(self, next: Self) -> Result<Self, DomainError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(DomainError::Conflict(format!(
                "a {} reservation cannot become {}",
                self.as_str(),
                next.as_str()
            )))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub venue_id: VenueId,
    pub resource_id: ResourceId,
    /// Who booked; absent only for reservations made before guests existed.
    pub guest_id: Option<crate::GuestId>,
    pub party_size: PartySize,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// End of the booking plus the venue's buffer: the resource is taken
    /// until then.
    pub blocked_until: DateTime<Utc>,
    pub status: ReservationStatus,
    /// A pending reservation holds its slot until then, waiting for payment.
    pub hold_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The service booked, at a venue that offers services.
    pub service_id: Option<crate::ServiceId>,
}

impl Reservation {
    /// The last moment at which the guest may change or cancel.
    pub fn change_deadline(&self, venue: &crate::Venue) -> DateTime<Utc> {
        self.starts_at - venue.rules.cancel_deadline.duration()
    }

    /// Checks that the guest may still change this reservation at `now`.
    pub fn check_changeable(
        &self,
        venue: &crate::Venue,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if !self.status.is_modifiable() {
            return Err(DomainError::Conflict(format!(
                "a {} reservation can no longer be changed",
                self.status.as_str()
            )));
        }
        if now > self.change_deadline(venue) {
            return Err(DomainError::invalid(
                "id",
                format!(
                    "changes and cancellations close {} minutes before the start; that deadline has passed",
                    venue.rules.cancel_deadline.get()
                ),
            ));
        }
        Ok(())
    }

    /// Cancels at the guest's request, within the venue's deadline.
    pub fn cancel(&mut self, venue: &crate::Venue, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.status == ReservationStatus::Cancelled {
            return Err(DomainError::Conflict(
                "the reservation is already cancelled".to_owned(),
            ));
        }
        self.check_changeable(venue, now)?;
        self.status = self.status.transition(ReservationStatus::Cancelled)?;
        self.updated_at = now;
        Ok(())
    }

    /// Records what venue staff saw (check-in, no-show, completion). A
    /// guest is a no-show only once the booking has started: before that
    /// they may still come, and marking them early would open the no-show
    /// fee on a card for a visit that has not happened.
    pub fn record_status(
        &mut self,
        next: ReservationStatus,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if next == ReservationStatus::NoShow && now < self.starts_at {
            return Err(DomainError::invalid(
                "status",
                "a guest can be marked no-show only after the booking has started",
            ));
        }
        self.status = self.status.transition(next)?;
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ReservationStatus::{self, *};

    #[test]
    fn a_confirmed_reservation_goes_through_check_in_to_completion() {
        let path = [Confirmed, CheckedIn, Completed];
        for pair in path.windows(2) {
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
        }
    }

    #[test]
    fn a_pending_reservation_can_be_confirmed_or_cancelled() {
        assert!(Pending.can_become(Confirmed));
        assert!(Pending.can_become(Cancelled));
        assert!(!Pending.can_become(CheckedIn));
    }

    #[test]
    fn final_statuses_never_change() {
        for done in [Completed, NoShow, Cancelled] {
            for next in ReservationStatus::ALL {
                assert!(done.transition(next).is_err(), "{done:?} -> {next:?}");
            }
        }
    }

    #[test]
    fn a_guest_who_checked_in_is_no_longer_a_no_show_candidate() {
        assert!(!CheckedIn.can_become(NoShow));
        assert!(!CheckedIn.can_become(Cancelled));
    }

    #[test]
    fn a_guest_is_a_no_show_only_once_the_booking_has_started() {
        use chrono::TimeZone;
        let starts_at = chrono::Utc
            .with_ymd_and_hms(2026, 12, 2, 19, 0, 0)
            .single()
            .expect("valid");
        let mut reservation = super::Reservation {
            id: crate::ReservationId::new_random(),
            venue_id: crate::VenueId::new_random(),
            resource_id: crate::ResourceId::new_random(),
            guest_id: None,
            party_size: crate::PartySize::parse(2).expect("valid"),
            starts_at,
            ends_at: starts_at + chrono::Duration::hours(1),
            blocked_until: starts_at + chrono::Duration::hours(1),
            status: Confirmed,
            hold_until: None,
            service_id: None,
            created_at: starts_at - chrono::Duration::days(1),
            updated_at: starts_at - chrono::Duration::days(1),
        };
        let early = starts_at - chrono::Duration::minutes(1);
        assert!(reservation.record_status(NoShow, early).is_err());
        assert_eq!(reservation.status, Confirmed);
        assert!(reservation.record_status(NoShow, starts_at).is_ok());
        assert_eq!(reservation.status, NoShow);
    }

    #[test]
    fn no_status_becomes_itself() {
        for status in ReservationStatus::ALL {
            assert!(!status.can_become(status));
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ReservationStatus::parse("maybe"), None);
    }

    #[test]
    fn only_pending_confirmed_and_checked_in_hold_the_resource() {
        let active: Vec<_> = ReservationStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, vec![Pending, Confirmed, CheckedIn]);
    }
}
