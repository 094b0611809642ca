//! Venues, their weekly opening hours and booking rules, and the resources
//! (tables, rooms, practitioners) that guests book.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::{DomainError, Minutes, ResourceId, Slug, TimeOfDay, VenueId};

/// A place that takes bookings. Its times are interpreted in its own IANA
/// time zone, so opening hours stay right across daylight-saving changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Venue {
    pub id: VenueId,
    pub slug: Slug,
    pub name: String,
    pub time_zone: Tz,
    /// Where phone numbers written without a country code are from.
    pub country: Option<crate::Country>,
    pub rules: BookingRules,
    pub schedule: WeeklySchedule,
    pub payments: crate::payments::PaymentPolicy,
    /// Which guest fields this venue collects at all.
    pub guest_fields: crate::privacy::GuestFields,
    /// Days after a guest's last visit until their personal data is
    /// anonymized.
    pub retention_days: u32,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped.
    pub payment_data_days: u32,
}

/// How bookings at a venue work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingRules {
    /// Bookings start every this many minutes after an opening time.
    pub slot_interval: Minutes,
    /// How long one booking holds its resource.
    pub booking_duration: Minutes,
    /// Time after a booking during which the resource stays blocked
    /// (clearing a table, turning a room).
    pub buffer: Minutes,
    /// Bookings close this long before their start.
    pub min_notice: Minutes,
    /// After this local time, no more bookings for the same day.
    pub same_day_cutoff: Option<TimeOfDay>,
    /// Guests may change or cancel until this long before the start.
    pub cancel_deadline: Minutes,
    pub max_party_size: u32,
    /// How far ahead bookings open, in days.
    pub max_advance_days: u32,
}

impl BookingRules {
    pub const MAX_DURATION_MINUTES: u32 = 24 * 60;

    /// The longest a reservation can keep a resource (booking plus
    /// buffer): what lets a search for reservations overlapping a span
    /// look only at those starting shortly before it.
    pub fn longest_block() -> chrono::Duration {
        chrono::Duration::minutes(i64::from(2 * Self::MAX_DURATION_MINUTES))
    }

    /// Defaults that fit a restaurant: two-hour tables every 15 minutes.
    pub fn restaurant_defaults() -> Self {
        Self {
            slot_interval: Minutes::new_unchecked(15),
            booking_duration: Minutes::new_unchecked(120),
            buffer: Minutes::new_unchecked(0),
            min_notice: Minutes::new_unchecked(60),
            same_day_cutoff: None,
            cancel_deadline: Minutes::new_unchecked(120),
            max_party_size: 12,
            max_advance_days: 180,
        }
    }

    /// Checks the rules as a whole; each field was already checked on its own.
    pub fn validate(self) -> Result<Self, DomainError> {
        if self.slot_interval.get() == 0 {
            return Err(DomainError::invalid(
                "slotIntervalMinutes",
                "must be at least 1",
            ));
        }
        if self.booking_duration.get() > Self::MAX_DURATION_MINUTES
            || self.buffer.get() > Self::MAX_DURATION_MINUTES
        {
            return Err(DomainError::invalid(
                "bookingDurationMinutes",
                format!(
                    "booking and buffer must each be at most {} minutes",
                    Self::MAX_DURATION_MINUTES
                ),
            ));
        }
        if self.booking_duration.get() == 0 {
            return Err(DomainError::invalid(
                "bookingDurationMinutes",
                "must be at least 1",
            ));
        }
        if !(1..=crate::PartySize::HARD_MAX).contains(&self.max_party_size) {
            return Err(DomainError::invalid(
                "maxPartySize",
                format!("must be between 1 and {}", crate::PartySize::HARD_MAX),
            ));
        }
        if !(1..=3660).contains(&self.max_advance_days) {
            return Err(DomainError::invalid(
                "maxAdvanceDays",
                "must be between 1 and 3660 days",
            ));
        }
        Ok(self)
    }
}

/// One stretch of opening time within a day, e.g. 12:00–14:30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpeningInterval {
    pub opens: TimeOfDay,
    pub closes: TimeOfDay,
}

impl OpeningInterval {
    pub fn new(opens: TimeOfDay, closes: TimeOfDay) -> Result<Self, String> {
        if opens >= closes {
            return Err(format!(
                "opening time {opens} is not before closing time {closes}"
            ));
        }
        Ok(Self { opens, closes })
    }

    /// Reads `HH:MM-HH:MM`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (opens, closes) = raw
            .split_once('-')
            .ok_or_else(|| format!("`{raw}` is not an opening interval like 12:00-14:30"))?;
        Self::new(TimeOfDay::parse(opens)?, TimeOfDay::parse(closes)?)
    }
}

impl fmt::Display for OpeningInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.opens, self.closes)
    }
}

/// Opening intervals for each day of the week, Monday first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklySchedule {
    days: [Vec<OpeningInterval>; 7],
}

impl WeeklySchedule {
    /// Sorts each day's intervals and refuses overlapping ones.
    pub fn new(days: [Vec<OpeningInterval>; 7]) -> Result<Self, String> {
        let mut days = days;
        for (index, intervals) in days.iter_mut().enumerate() {
            intervals.sort();
            for pair in intervals.windows(2) {
                if pair[0].closes > pair[1].opens {
                    return Err(format!(
                        "opening intervals {} and {} on {} overlap",
                        pair[0],
                        pair[1],
                        weekday_name(index)
                    ));
                }
            }
        }
        Ok(Self { days })
    }

    pub fn on(&self, weekday: Weekday) -> &[OpeningInterval] {
        &self.days[weekday.num_days_from_monday() as usize]
    }

    /// `(weekday, interval)` pairs, Monday first, for storage.
    pub fn iter(&self) -> impl Iterator<Item = (Weekday, OpeningInterval)> + '_ {
        self.days.iter().enumerate().flat_map(|(index, intervals)| {
            intervals
                .iter()
                .map(move |interval| (weekday_from_index(index), *interval))
        })
    }
}

pub fn weekday_from_index(index: usize) -> Weekday {
    match index % 7 {
        0 => Weekday::Mon,
        1 => Weekday::Tue,
        2 => Weekday::Wed,
        3 => Weekday::Thu,
        4 => Weekday::Fri,
        5 => Weekday::Sat,
        _ => Weekday::Sun,
    }
}

fn weekday_name(index: usize) -> &'static str {
    [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ][index % 7]
}

/// Reads an IANA time-zone name such as `Europe/Amsterdam`.
pub fn parse_time_zone(raw: &str) -> Result<Tz, String> {
    Tz::from_str(raw)
        .map_err(|_| format!("`{raw}` is not an IANA time zone (like Europe/Amsterdam)"))
}

impl Venue {
    /// A year: long enough for returning guests and disputes, short enough
    /// that a one-off guest is not kept for ever.
    pub const DEFAULT_RETENTION_DAYS: u32 = 365;
    /// Ten years, the longest bookkeeping duty we know of in the EU.
    pub const MAX_RETENTION_DAYS: u32 = 3650;

    /// How long card brand and last four are kept after the last refund
    /// window of their payment closes.
    pub const DEFAULT_PAYMENT_DATA_DAYS: u32 = 30;
    /// A year and a half: long enough for a late chargeback.
    pub const MAX_PAYMENT_DATA_DAYS: u32 = 540;

    pub fn check_payment_data_days(days: i64) -> Result<u32, String> {
        u32::try_from(days)
            .ok()
            .filter(|d| *d <= Self::MAX_PAYMENT_DATA_DAYS)
            .ok_or_else(|| {
                format!(
                    "card details are kept between 0 and {} days",
                    Self::MAX_PAYMENT_DATA_DAYS
                )
            })
    }

    pub fn check_retention_days(days: i64) -> Result<u32, String> {
        u32::try_from(days)
            .ok()
            .filter(|d| (1..=Self::MAX_RETENTION_DAYS).contains(d))
            .ok_or_else(|| {
                format!(
                    "retention must be between 1 and {} days",
                    Self::MAX_RETENTION_DAYS
                )
            })
    }

    /// The instant at which a local wall-clock time happens at this venue.
    /// A time skipped by a daylight-saving jump is moved forward by the
    /// length of the gap, as the clocks were; a repeated one maps to its
    /// first occurrence.
    pub fn instant_at(&self, date: NaiveDate, time: TimeOfDay) -> DateTime<Utc> {
        let local = date.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MIN)
            + chrono::Duration::minutes(i64::from(time.minutes()));
        resolve_local(self.time_zone, local)
    }

    /// The venue's calendar date at an instant.
    pub fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.time_zone).date_naive()
    }

    /// Every instant at which a booking may start on a local date, with the
    /// closing instant of its opening interval, in time order. The grid is
    /// laid in real elapsed time from each opening, so on the day clocks go
    /// forward there is one hour fewer of slots and on the day they go back
    /// one hour more.
    pub fn slot_grid(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let step = self.rules.slot_interval.duration();
        let length = self.rules.booking_duration.duration();
        let mut grid = Vec::new();
        if step <= chrono::Duration::zero() {
            return grid;
        }
        for interval in self.schedule.on(chrono::Datelike::weekday(&date)) {
            let opens = self.instant_at(date, interval.opens);
            let closes = self.instant_at(date, interval.closes);
            let mut start = opens;
            while start + length <= closes {
                grid.push((start, closes));
                start += step;
            }
        }
        grid
    }
}

/// The instant a local calendar date begins in a time zone (the first
/// instant after a daylight-saving gap where midnight is skipped).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    resolve_local(tz, date.and_hms_opt(0, 0, 0).unwrap_or(NaiveDateTime::MIN))
}

fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a gap: reading the time with the offset in force before the
            // gap lands after the gap, shifted by its length, like the clocks.
            let before = local - chrono::Duration::hours(3);
            let offset = chrono::Offset::fix(&tz.offset_from_utc_datetime(&before));
            let utc = local - chrono::Duration::seconds(i64::from(offset.local_minus_utc()));
            Utc.from_utc_datetime(&utc)
        }
    }
}

/// What kind of thing a resource is; it changes wording, not rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Table,
    Room,
    Practitioner,
    Other,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Room => "room",
            Self::Practitioner => "practitioner",
            Self::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "table" => Ok(Self::Table),
            "room" => Ok(Self::Room),
            "practitioner" => Ok(Self::Practitioner),
            "other" => Ok(Self::Other),
            _ => Err(format!(
                "`{raw}` is not a resource kind (table, room, practitioner or other)"
            )),
        }
    }
}

/// Something one booking occupies for its duration; `capacity` is the largest
/// party it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: ResourceId,
    pub venue_id: VenueId,
    pub slug: Slug,
    pub name: String,
    pub kind: ResourceKind,
    pub capacity: u32,
    /// Retired resources keep their past bookings but take no new ones.
    pub active: bool,
}

impl Resource {
    pub const MAX_CAPACITY: u32 = crate::PartySize::HARD_MAX;

    pub fn check_capacity(capacity: i64) -> Result<u32, String> {
        u32::try_from(capacity)
            .ok()
            .filter(|c| (1..=Self::MAX_CAPACITY).contains(c))
            .ok_or_else(|| format!("capacity must be between 1 and {}", Self::MAX_CAPACITY))
    }
}

/// Checks a display name of a venue or resource: not personal data, but still
/// bounded and free of control characters.
pub fn check_display_name(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        return Err("name must be 1 to 200 printable characters".to_owned());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn venue_in(tz: &str, hours: &[(Weekday, &str)], rules: BookingRules) -> Venue {
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        for (weekday, raw) in hours {
            days[weekday.num_days_from_monday() as usize]
                .push(OpeningInterval::parse(raw).expect("valid interval"));
        }
        Venue {
            id: VenueId::new_random(),
            slug: Slug::parse("test-venue").expect("valid slug"),
            name: "Test venue".to_owned(),
            time_zone: parse_time_zone(tz).expect("valid zone"),
            country: None,
            payments: crate::payments::PaymentPolicy::default(),
            guest_fields: crate::privacy::GuestFields::default(),
            retention_days: 365,
            payment_data_days: Venue::DEFAULT_PAYMENT_DATA_DAYS,
            rules,
            schedule: WeeklySchedule::new(days).expect("valid schedule"),
        }
    }

    fn every_day(raw: &str) -> Vec<(Weekday, &str)> {
        (0..7).map(|i| (weekday_from_index(i), raw)).collect()
    }

    fn rules(interval: u32, duration: u32) -> BookingRules {
        BookingRules {
            slot_interval: Minutes::new_unchecked(interval),
            booking_duration: Minutes::new_unchecked(duration),
            ..BookingRules::restaurant_defaults()
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn a_twenty_four_hour_venue_has_one_hour_fewer_of_slots_when_clocks_go_forward() {
        let venue = venue_in("Europe/Amsterdam", &every_day("00:00-24:00"), rules(30, 30));
        assert_eq!(venue.slot_grid(date(2026, 3, 28)).len(), 48);
        assert_eq!(venue.slot_grid(date(2026, 3, 29)).len(), 46);
        assert_eq!(venue.slot_grid(date(2026, 10, 25)).len(), 50);
    }

    #[test]
    fn a_noon_opening_stays_at_noon_local_time_across_the_change() {
        let venue = venue_in("Europe/Amsterdam", &every_day("12:00-14:00"), rules(30, 60));
        let winter = venue.slot_grid(date(2026, 3, 28));
        let summer = venue.slot_grid(date(2026, 3, 29));
        assert_eq!(winter[0].0.to_rfc3339(), "2026-03-28T11:00:00+00:00");
        assert_eq!(summer[0].0.to_rfc3339(), "2026-03-29T10:00:00+00:00");
    }

    #[test]
    fn an_opening_time_inside_the_gap_moves_forward_with_the_clocks() {
        let venue = venue_in("Europe/Amsterdam", &every_day("02:30-05:00"), rules(30, 30));
        let grid = venue.slot_grid(date(2026, 3, 29));
        // 02:30 does not exist that night; it becomes 03:30 CEST, 01:30 UTC,
        // and 05:00 CEST is 03:00 UTC.
        assert_eq!(grid[0].0.to_rfc3339(), "2026-03-29T01:30:00+00:00");
        assert_eq!(grid.len(), 3);
    }

    #[test]
    fn a_booking_must_end_by_closing_time() {
        let venue = venue_in("UTC", &every_day("18:00-22:00"), rules(30, 120));
        let grid = venue.slot_grid(date(2026, 6, 1));
        let last = grid.last().expect("some slots");
        assert_eq!(last.0.to_rfc3339(), "2026-06-01T20:00:00+00:00");
        assert_eq!(grid.len(), 5);
    }

    #[test]
    fn a_closed_day_has_no_slots() {
        let venue = venue_in("UTC", &[(Weekday::Mon, "12:00-14:00")], rules(30, 60));
        assert!(venue.slot_grid(date(2026, 6, 2)).is_empty());
        assert_eq!(venue.slot_grid(date(2026, 6, 1)).len(), 3);
    }

    #[test]
    fn overlapping_opening_intervals_are_refused() {
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        days[0] = vec![
            OpeningInterval::parse("12:00-15:00").expect("valid"),
            OpeningInterval::parse("14:00-18:00").expect("valid"),
        ];
        assert!(WeeklySchedule::new(days).is_err());
    }

    #[test]
    fn an_interval_that_closes_before_it_opens_is_refused() {
        assert!(OpeningInterval::parse("14:00-12:00").is_err());
        assert!(OpeningInterval::parse("12:00-12:00").is_err());
        assert!(OpeningInterval::parse("noon").is_err());
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        assert!(parse_time_zone("Europe/Atlantis").is_err());
        assert!(parse_time_zone("Europe/Amsterdam").is_ok());
    }
}
