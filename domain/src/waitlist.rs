//! The waitlist: a guest asks for a table on a date inside a window of
//! local time; when a matching one is free, the first guest in line gets
//! an offer valid for the venue's number of minutes.

use chrono::NaiveDate;

use crate::availability::Slot;
use crate::{DomainError, PartySize, ResourceId, TimeOfDay, Venue};

/// A venue's waitlist settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitlistRules {
    /// How long an offer of a freed table can be claimed.
    pub offer_minutes: u32,
    /// Days after an entry's date until it is deleted, with its guest
    /// record.
    pub retention_days: u32,
}

impl WaitlistRules {
    pub const DEFAULT_OFFER_MINUTES: u32 = 30;
    /// A day at most: an offer that long blocks nobody else in line.
    pub const MAX_OFFER_MINUTES: u32 = 24 * 60;
    pub const DEFAULT_RETENTION_DAYS: u32 = 7;
    /// A waitlist entry is about one evening; a season is plenty.
    pub const MAX_RETENTION_DAYS: u32 = 90;

    pub fn check_offer_minutes(minutes: i64) -> Result<u32, String> {
        u32::try_from(minutes)
            .ok()
            .filter(|m| (5..=Self::MAX_OFFER_MINUTES).contains(m))
            .ok_or_else(|| {
                format!(
                    "an offer is held between 5 and {} minutes",
                    Self::MAX_OFFER_MINUTES
                )
            })
    }

    pub fn check_retention_days(days: i64) -> Result<u32, String> {
        u32::try_from(days)
            .ok()
            .filter(|d| *d <= Self::MAX_RETENTION_DAYS)
            .ok_or_else(|| {
                format!(
                    "waitlist entries are kept between 0 and {} days after their date",
                    Self::MAX_RETENTION_DAYS
                )
            })
    }
}

impl Default for WaitlistRules {
    fn default() -> Self {
        Self {
            offer_minutes: Self::DEFAULT_OFFER_MINUTES,
            retention_days: Self::DEFAULT_RETENTION_DAYS,
        }
    }
}

/// What a waitlist entry waits for: a table for the party starting on the
/// local date at or after `from` and before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitlistWish {
    pub date: NaiveDate,
    pub from: TimeOfDay,
    pub until: TimeOfDay,
    pub party_size: PartySize,
    /// The service waited for; required at a venue that books by service.
    pub service: Option<crate::ServiceId>,
}

impl WaitlistWish {
    /// Checks the window against the venue: a later end than start, a
    /// party the venue takes, and a date from today (the venue's) up to its
    /// booking horizon.
    pub fn check(self, venue: &Venue, today: NaiveDate) -> Result<Self, DomainError> {
        if self.until <= self.from {
            return Err(DomainError::invalid("until", "must be later than from"));
        }
        if let Some(service) = venue.service_for(self.service)? {
            service.check_party(self.party_size)?;
        }
        if self.party_size.get() > venue.rules.max_party_size {
            return Err(DomainError::invalid(
                "partySize",
                format!(
                    "this venue takes bookings for at most {} people",
                    venue.rules.max_party_size
                ),
            ));
        }
        if self.date < today {
            return Err(DomainError::invalid("date", "is in the past"));
        }
        let horizon = today + chrono::Duration::days(i64::from(venue.rules.max_advance_days));
        if self.date > horizon {
            return Err(DomainError::invalid(
                "date",
                format!("is more than {} days ahead", venue.rules.max_advance_days),
            ));
        }
        Ok(self)
    }

    /// The first free start inside the window among `slots` (the
    /// availability of the date for the party, in time order), skipping
    /// resources `held` by open offers that overlap it: the table to offer.
    pub fn first_match(
        &self,
        venue: &Venue,
        slots: &[Slot],
        held: impl Fn(ResourceId, &Slot) -> bool,
    ) -> Option<(ResourceId, chrono::DateTime<chrono::Utc>)> {
        slots
            .iter()
            .filter(|slot| {
                let local =
                    TimeOfDay::from_naive(slot.starts_at.with_timezone(&venue.time_zone).time());
                venue.local_date(slot.starts_at) == self.date
                    && local >= self.from
                    && local < self.until
            })
            .find_map(|slot| {
                slot.free_resources
                    .iter()
                    .find(|resource| !held(**resource, slot))
                    .map(|resource| (*resource, slot.starts_at))
            })
    }
}
