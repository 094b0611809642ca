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
    /// What the booking form offers guests to opt in to besides the
    /// booking (newsletter, marketing), in that order.
    pub opt_ins: OptIns,
    /// Web origins whose pages may call the API from a browser for this
    /// venue (its booking widget's site).
    pub allowed_origins: Vec<Origin>,
    /// Periods in which the venue or one of its resources takes no
    /// bookings, in time order; the store loads them with the venue.
    pub closures: Vec<crate::Closure>,
    /// How long waitlist offers last and entries are kept.
    pub waitlist: crate::waitlist::WaitlistRules,
    /// Which tables may be joined for larger parties.
    pub tables_together: crate::combination::TablesTogether,
    /// Caps on guests starting together.
    pub pacing: Pacing,
    /// Dated changes to the working plan of the venue or one resource (see
    /// `crate::hours`); the store loads them with the venue.
    pub exceptions: Vec<crate::hours::HoursException>,
    /// What it offers to book, retired ones included (see
    /// `crate::service`); the store loads them with the venue.
    pub services: Vec<crate::Service>,
}

/// A venue's caps on covers (guests) whose bookings start in one slot, and
/// in one hour of the venue's clock (18:00 to 18:59): the kitchen and the
/// door take only so many arrivals at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pacing {
    pub max_covers_per_slot: Option<u32>,
    pub max_covers_per_hour: Option<u32>,
}

impl Pacing {
    pub fn is_capped(self) -> bool {
        self.max_covers_per_slot.is_some() || self.max_covers_per_hour.is_some()
    }

    /// A cap as given: at least 1, at most what a party may be.
    pub fn check_cap(raw: i64) -> Result<u32, String> {
        u32::try_from(raw)
            .ok()
            .filter(|c| (1..=100_000).contains(c))
            .ok_or_else(|| "must be between 1 and 100000 guests".to_owned())
    }
}

/// The opt-ins a venue's booking form offers: a subset of the consent
/// purposes other than the booking itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptIns {
    pub newsletter: bool,
    pub marketing: bool,
}

impl Default for OptIns {
    /// Both: what venues offered before they could choose.
    fn default() -> Self {
        Self {
            newsletter: true,
            marketing: true,
        }
    }
}

impl OptIns {
    /// The purposes offered, newsletter first.
    pub fn purposes(self) -> Vec<crate::privacy::ConsentPurpose> {
        use crate::privacy::ConsentPurpose;
        [
            (self.newsletter, ConsentPurpose::Newsletter),
            (self.marketing, ConsentPurpose::Marketing),
        ]
        .into_iter()
        .filter_map(|(on, purpose)| on.then_some(purpose))
        .collect()
    }

    /// From a list of purposes; the booking itself is no opt-in.
    pub fn from_purposes(
        purposes: impl IntoIterator<Item = crate::privacy::ConsentPurpose>,
    ) -> Result<Self, String> {
        use crate::privacy::ConsentPurpose;
        let mut opt_ins = Self {
            newsletter: false,
            marketing: false,
        };
        for purpose in purposes {
            match purpose {
                ConsentPurpose::Newsletter => opt_ins.newsletter = true,
                ConsentPurpose::Marketing => opt_ins.marketing = true,
                ConsentPurpose::Booking => {
                    return Err(
                        "the booking itself is no opt-in; list newsletter or marketing".to_owned(),
                    );
                }
            }
        }
        Ok(opt_ins)
    }

    /// Space-separated purpose names, for storage.
    pub fn to_text(self) -> String {
        self.purposes()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn parse_text(raw: &str) -> Result<Self, String> {
        let purposes = raw
            .split_whitespace()
            .map(|name| {
                crate::privacy::ConsentPurpose::parse(name)
                    .map_err(|_| format!("`{name}` is not newsletter or marketing"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::from_purposes(purposes)
    }
}

/// A web origin (`https://host[:port]`) as browsers send it in `Origin`:
/// lower-case, no path, no default port. Plain `http` only for the
/// machine itself (`localhost`, `127.0.0.1`, `[::1]`), which only a
/// development server accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    /// Longer than any origin a browser sends for a real site.
    pub const MAX_LEN: usize = 253 + "https://:65535".len();
    /// How many origins one venue may list.
    pub const MAX_PER_VENUE: usize = 20;

    /// Reads an origin and writes it the way a browser's `Origin` header
    /// does, so that comparing strings compares origins. Refuses a path,
    /// query, user name, wildcard or anything but `http`/`https`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "`{}` is not an origin like https://example.com or https://example.com:8443",
                raw.chars().take(80).collect::<String>()
            )
        };
        if raw.len() > Self::MAX_LEN || !raw.is_ascii() {
            return Err(refuse());
        }
        let lower = raw.to_ascii_lowercase();
        let (secure, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(refuse());
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            // Only the loopback address: kluis has no use for other IPv6
            // literals as a site's origin.
            let (inside, after) = bracketed.split_once(']').ok_or_else(refuse)?;
            if inside != "::1" {
                return Err(refuse());
            }
            ("[::1]", after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host != "[::1]" && !is_host_name(host) {
            return Err(refuse());
        }
        let port = match port {
            None => None,
            Some(digits) => {
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(refuse());
                }
                let number: u32 = digits.parse().map_err(|_| refuse())?;
                if number == 0 || number > 65535 {
                    return Err(refuse());
                }
                let default = if secure { 443 } else { 80 };
                (number != default).then_some(number)
            }
        };
        let origin = Self(match port {
            Some(port) => format!("{}://{host}:{port}", if secure { "https" } else { "http" }),
            None => format!("{}://{host}", if secure { "https" } else { "http" }),
        });
        if !secure && !origin.is_local() {
            return Err(format!(
                "`{}`: an origin must use https (plain http only for localhost)",
                origin.0
            ));
        }
        Ok(origin)
    }

    /// Whether it names this machine (development front-ends).
    pub fn is_local(&self) -> bool {
        let rest = self
            .0
            .strip_prefix("http://")
            .or_else(|| self.0.strip_prefix("https://"))
            .unwrap_or_default();
        let host = if rest.starts_with("[::1]") {
            "[::1]"
        } else {
            rest.split(':').next().unwrap_or_default()
        };
        matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost")
    }

    /// Plain `http`: accepted by a development server only.
    pub fn is_plain_http(&self) -> bool {
        self.0.starts_with("http://")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Space-separated, for storage.
    pub fn list_to_text(origins: &[Self]) -> String {
        origins
            .iter()
            .map(Self::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn list_from_text(raw: &str) -> Result<Vec<Self>, String> {
        raw.split_whitespace().map(Self::parse).collect()
    }

    /// Checks a venue's whole list: each origin, no more than
    /// [`Self::MAX_PER_VENUE`], duplicates dropped, sorted.
    pub fn check_list<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Vec<Self>, String> {
        let mut origins = raw
            .into_iter()
            .map(Self::parse)
            .collect::<Result<Vec<_>, String>>()?;
        origins.sort();
        origins.dedup();
        if origins.len() > Self::MAX_PER_VENUE {
            return Err(format!("list at most {} origins", Self::MAX_PER_VENUE));
        }
        Ok(origins)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS name or IPv4 address: labels of letters, digits and inner
/// hyphens, no empty label, no wildcard.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
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

    /// The start of the hour of the venue's clock that an instant falls in
    /// (18:00 for 18:45): what a cap on covers per hour counts by.
    pub fn hour_start(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::Timelike;
        let local = instant.with_timezone(&self.time_zone);
        instant
            - chrono::Duration::minutes(i64::from(local.minute()))
            - chrono::Duration::seconds(i64::from(local.second()))
            - chrono::Duration::nanoseconds(i64::from(local.nanosecond()))
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
        for interval in self.hours_on(date) {
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

/// The instant a local wall-clock date-time happens in a time zone (see
/// [`Venue::instant_at`] for gaps and repeats).
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    resolve_local(tz, local)
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
    /// Weekly hours of its own, replacing the venue's opening hours for
    /// it; `None` follows the venue (see `crate::hours`).
    pub hours: Option<WeeklySchedule>,
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
            opt_ins: OptIns::default(),
            allowed_origins: Vec::new(),
            closures: Vec::new(),
            waitlist: crate::waitlist::WaitlistRules::default(),
            tables_together: crate::combination::TablesTogether::default(),
            pacing: Pacing::default(),
            exceptions: Vec::new(),
            services: Vec::new(),
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
    fn origins_are_written_as_browsers_send_them() {
        let read = |raw: &str| Origin::parse(raw).map(|o| o.as_str().to_owned());
        assert_eq!(
            read("HTTPS://Shop.Example.com"),
            Ok("https://shop.example.com".to_owned())
        );
        assert_eq!(
            read("https://example.com:443"),
            Ok("https://example.com".to_owned())
        );
        assert_eq!(
            read("https://example.com:8443"),
            Ok("https://example.com:8443".to_owned())
        );
        assert_eq!(
            read("http://localhost:3000"),
            Ok("http://localhost:3000".to_owned())
        );
        assert_eq!(
            read("http://[::1]:5173"),
            Ok("http://[::1]:5173".to_owned())
        );
        for bad in [
            "null",
            "",
            "example.com",
            "http://example.com",
            "https://example.com/",
            "https://example.com/path",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://*.example.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://example.com:",
            "https://exa mple.com",
            "https://-bad.example",
            "https://example..com",
            "https://[2001:db8::1]",
            "ftp://example.com",
            "https://exämple.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        assert!(Origin::parse("http://localhost:3000").is_ok_and(|o| o.is_plain_http()));
    }

    #[test]
    fn a_venue_lists_a_bounded_number_of_origins() {
        let many: Vec<String> = (0..=Origin::MAX_PER_VENUE)
            .map(|i| format!("https://site{i}.example"))
            .collect();
        assert!(Origin::check_list(many.iter().map(String::as_str)).is_err());
        let twice = Origin::check_list(["https://a.example", "https://A.example:443"]);
        assert_eq!(twice.map(|list| list.len()), Ok(1));
    }

    #[test]
    fn opt_ins_round_trip_and_refuse_the_booking() {
        for raw in ["", "newsletter", "marketing", "newsletter marketing"] {
            let parsed = OptIns::parse_text(raw).expect("valid");
            assert_eq!(parsed.to_text(), raw);
        }
        assert!(OptIns::parse_text("booking").is_err());
        assert!(OptIns::parse_text("spam").is_err());
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        assert!(parse_time_zone("Europe/Atlantis").is_err());
        assert!(parse_time_zone("Europe/Amsterdam").is_ok());
    }
}
