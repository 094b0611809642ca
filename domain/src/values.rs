//! Small value types. Each is built through a checked `parse`, so a value that
//! exists is a valid one.

use std::fmt;

use crate::DomainError;

/// Number of people in one booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartySize(u32);

impl PartySize {
    /// No single booking seats more people than this, whatever a venue says.
    pub const HARD_MAX: u32 = 1000;

    pub fn parse(raw: i64) -> Result<Self, DomainError> {
        match u32::try_from(raw) {
            Ok(size) if (1..=Self::HARD_MAX).contains(&size) => Ok(Self(size)),
            _ => Err(DomainError::invalid(
                "partySize",
                format!("must be between 1 and {}", Self::HARD_MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A non-negative span of whole minutes, used for every venue rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Minutes(u32);

impl Minutes {
    pub fn parse(field: &'static str, raw: i64, min: u32, max: u32) -> Result<Self, DomainError> {
        match u32::try_from(raw) {
            Ok(value) if (min..=max).contains(&value) => Ok(Self(value)),
            _ => Err(DomainError::invalid(
                field,
                format!("must be between {min} and {max} minutes"),
            )),
        }
    }

    pub const fn new_unchecked(value: u32) -> Self {
        Self(value)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.0))
    }
}

/// A wall-clock time within a day, in minutes after midnight. `24:00` is
/// allowed so that a venue can stay open until midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    pub const MIDNIGHT: Self = Self(0);
    pub const END_OF_DAY: Self = Self(24 * 60);

    pub fn from_minutes(minutes: u32) -> Option<Self> {
        u16::try_from(minutes)
            .ok()
            .filter(|m| *m <= 24 * 60)
            .map(Self)
    }

    /// Reads `HH:MM` (24-hour clock).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || format!("`{raw}` is not a time of day in HH:MM form (00:00 to 24:00)");
        let (hours, minutes) = raw.trim().split_once(':').ok_or_else(invalid)?;
        if hours.len() != 2 || minutes.len() != 2 {
            return Err(invalid());
        }
        let hours: u32 = hours.parse().map_err(|_| invalid())?;
        let minutes: u32 = minutes.parse().map_err(|_| invalid())?;
        if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
            return Err(invalid());
        }
        Self::from_minutes(hours * 60 + minutes).ok_or_else(invalid)
    }

    pub fn minutes(self) -> u32 {
        u32::from(self.0)
    }

    pub fn from_naive(time: chrono::NaiveTime) -> Self {
        use chrono::Timelike;
        Self((time.hour() * 60 + time.minute()) as u16)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// A short, human-chosen, URL-safe name (`bistro-zuid`, `table-4`) by which
/// declarative imports recognise a venue or resource they saw before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if raw.is_empty() || raw.len() > 64 || !valid_chars || raw.starts_with('-') {
            return Err(format!(
                "`{raw}` is not a slug (1 to 64 characters: a-z, 0-9 and -, not starting with -)"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's name for one attempt at a mutation. Retrying with the same
/// key returns the first answer instead of doing the work twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !(8..=128).contains(&raw.len()) || !valid_chars {
            return Err(DomainError::invalid(
                "idempotencyKey",
                "must be 8 to 128 characters of A-Z, a-z, 0-9, '-', '_', '.' or ':' (a UUID works)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_party_of_zero_is_refused() {
        assert!(PartySize::parse(0).is_err());
    }

    #[test]
    fn a_negative_or_huge_party_is_refused() {
        assert!(PartySize::parse(-2).is_err());
        assert!(PartySize::parse(1001).is_err());
        assert!(PartySize::parse(i64::MAX).is_err());
    }

    #[test]
    fn a_party_of_one_is_fine() {
        assert_eq!(PartySize::parse(1).map(PartySize::get), Ok(1));
    }

    #[test]
    fn times_of_day_read_hours_and_minutes() {
        assert_eq!(TimeOfDay::parse("09:30").map(TimeOfDay::minutes), Ok(570));
        assert_eq!(TimeOfDay::parse("24:00"), Ok(TimeOfDay::END_OF_DAY));
        assert_eq!(TimeOfDay::parse("00:00"), Ok(TimeOfDay::MIDNIGHT));
    }

    #[test]
    fn impossible_times_of_day_are_refused() {
        for raw in ["24:01", "12:60", "9:30", "0930", "", "ab:cd", "25:00"] {
            assert!(TimeOfDay::parse(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn a_time_of_day_prints_as_it_was_written() {
        assert_eq!(
            TimeOfDay::parse("07:05").map(|t| t.to_string()),
            Ok("07:05".to_owned())
        );
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert!(Slug::parse("bistro-zuid-2").is_ok());
        for raw in ["", "Bistro", "bistro zuid", "-x", "é", &"a".repeat(65)] {
            assert!(Slug::parse(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn idempotency_keys_are_bounded_and_plain() {
        assert!(IdempotencyKey::parse("3f2a1c9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b").is_ok());
        assert!(IdempotencyKey::parse("short").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
        assert!(IdempotencyKey::parse("has spaces in it").is_err());
    }
}
