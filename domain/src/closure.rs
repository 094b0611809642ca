//! Closures: periods in which a venue, or one of its resources, takes no
//! bookings (a holiday, a renovation, a practitioner's day off).
//!
//! A closure is defined on the venue's own clock, as local date-times
//! `[from, until)`; a whole day is `from` at 00:00 of that day and `until`
//! at 00:00 of the day after. The instants are computed from the venue's
//! time zone, so a closure over the night clocks change covers exactly the
//! wall-clock hours it names. A local time skipped by a daylight-saving jump
//! is moved forward by the gap, and a repeated one means its first
//! occurrence, as for opening hours.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::{DomainError, ResourceId};

crate::ids::random_id_pub!(ClosureId, "closure");

/// A closure, with its instants resolved in the venue's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    pub id: ClosureId,
    /// `None` closes the whole venue.
    pub resource_id: Option<ResourceId>,
    /// Local wall-clock start and end, as the venue defined them.
    pub from: NaiveDateTime,
    pub until: NaiveDateTime,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// Why, for staff only.
    pub reason: Option<String>,
}

/// How many closures one venue may have: years of holidays and days off,
/// and a bound on what one save or file may ask the store to write.
pub const MAX_PER_VENUE: usize = 500;

/// The longest reason a closure may give.
pub const MAX_REASON_CHARS: usize = 200;

impl Closure {
    /// Resolves a local definition in a time zone.
    pub fn resolve(
        id: ClosureId,
        tz: Tz,
        resource_id: Option<ResourceId>,
        from: NaiveDateTime,
        until: NaiveDateTime,
        reason: Option<String>,
    ) -> Self {
        Self {
            id,
            resource_id,
            from,
            until,
            starts_at: crate::venue::local_instant(tz, from),
            ends_at: crate::venue::local_instant(tz, until),
            reason,
        }
    }

    /// Whether `[starts_at, ends_at)` on `resource` overlaps this closure.
    pub fn closes(
        &self,
        resource: ResourceId,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> bool {
        self.resource_id.is_none_or(|closed| closed == resource)
            && self.starts_at < ends_at
            && starts_at < self.ends_at
    }

    /// Whether this closure covers the whole venue during any of
    /// `[starts_at, ends_at)`.
    pub fn closes_venue(&self, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> bool {
        self.resource_id.is_none() && self.starts_at < ends_at && starts_at < self.ends_at
    }
}

/// Checks a local period: it must end after it starts, on the venue's
/// clock and once resolved (a period inside one daylight-saving gap would
/// otherwise be empty).
pub fn check_period(tz: Tz, from: NaiveDateTime, until: NaiveDateTime) -> Result<(), String> {
    if until <= from
        || crate::venue::local_instant(tz, until) <= crate::venue::local_instant(tz, from)
    {
        return Err("a closure must end after it starts".to_owned());
    }
    Ok(())
}

/// A reason as staff typed it: trimmed, empty means none, at most
/// [`MAX_REASON_CHARS`] characters.
pub fn check_reason(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "a reason has at most {MAX_REASON_CHARS} characters"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err("a reason is one line of text".to_owned());
    }
    Ok(Some(raw.to_owned()))
}

/// Reads a local date-time as `YYYY-MM-DDTHH:MM` (seconds allowed), or a
/// whole date `YYYY-MM-DD`, meaning 00:00 of that day.
pub fn parse_local(raw: &str) -> Result<NaiveDateTime, String> {
    let raw = raw.trim();
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(raw, format) {
            return Ok(at);
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(at) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(at);
    }
    Err(format!(
        "`{}` is not a local date-time like 2026-12-24T18:00 or a date like 2026-12-25",
        raw.chars().take(40).collect::<String>()
    ))
}

/// The local form stored and shown: `YYYY-MM-DDTHH:MM`.
pub fn local_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_must_end_after_it_starts() {
        let tz = crate::venue::parse_time_zone("Europe/Amsterdam").expect("zone");
        let at = |raw| parse_local(raw).expect("valid");
        assert!(check_period(tz, at("2026-12-24"), at("2026-12-24")).is_err());
        assert!(check_period(tz, at("2026-12-25"), at("2026-12-24")).is_err());
        assert!(check_period(tz, at("2026-12-24"), at("2026-12-25")).is_ok());
        // Both ends inside the hour skipped on 29 March 2026.
        assert!(check_period(tz, at("2026-03-29T02:10"), at("2026-03-29T02:40")).is_ok());
    }

    #[test]
    fn a_reason_is_short_and_optional() {
        assert_eq!(check_reason(Some("  ")), Ok(None));
        assert_eq!(check_reason(Some(" Kerst ")), Ok(Some("Kerst".to_owned())));
        assert!(check_reason(Some(&"x".repeat(201))).is_err());
        assert!(check_reason(Some(&"é".repeat(200))).is_ok());
    }

    #[test]
    fn a_whole_date_means_its_midnight() {
        assert_eq!(
            local_text(parse_local("2026-12-25").expect("valid")),
            "2026-12-25T00:00"
        );
        assert!(parse_local("25-12-2026").is_err());
        assert!(parse_local("2026-12-25T25:00").is_err());
    }
}
