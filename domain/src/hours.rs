//! Working plans: which hours the venue and each of its resources work on a
//! given date.
//!
//! A venue has weekly opening hours. A resource (a practitioner, a room)
//! may have weekly hours of its own, which replace the venue's for it. A
//! dated exception replaces the plan of one date, for the venue or for one
//! resource: other hours (an extra evening) or none (a holiday). Closures
//! stay separate: they block a period inside whatever the plan says.
//!
//! On a date, a resource works, from the first rule that applies:
//! 1. its own exception for that date;
//! 2. the venue's exception for that date when it closes the whole day (a
//!    holiday closes every resource without an exception of its own);
//! 3. its own weekly hours;
//! 4. the venue's exception for that date (other hours);
//! 5. the venue's weekly hours.
//!
//! All hours are wall-clock times on the venue's clock; instants come from
//! the venue's time zone on that date, so a 09:00 start stays 09:00 across
//! a daylight-saving change.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::{OpeningInterval, Resource, ResourceId, Venue};

/// A dated change to the working plan of the venue or one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoursException {
    /// `None`: the venue's own hours.
    pub resource_id: Option<ResourceId>,
    pub date: NaiveDate,
    /// Sorted, not overlapping; empty: closed all day.
    pub hours: Vec<OpeningInterval>,
}

/// How many exceptions one venue may have (venue and resources together):
/// years of holidays and extra evenings, and a bound on one save or file.
pub const MAX_PER_VENUE: usize = 1000;

/// How many intervals one day may list.
pub const MAX_INTERVALS_PER_DAY: usize = 12;

/// Sorts a day's intervals and refuses overlapping ones or too many.
pub fn check_day(mut hours: Vec<OpeningInterval>) -> Result<Vec<OpeningInterval>, String> {
    if hours.len() > MAX_INTERVALS_PER_DAY {
        return Err(format!(
            "a day has at most {MAX_INTERVALS_PER_DAY} intervals"
        ));
    }
    hours.sort();
    for pair in hours.windows(2) {
        if pair[0].closes > pair[1].opens {
            return Err(format!("intervals {} and {} overlap", pair[0], pair[1]));
        }
    }
    Ok(hours)
}

/// Reads a calendar date `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        format!(
            "`{}` is not a date like 2026-12-24",
            raw.chars().take(40).collect::<String>()
        )
    })
}

/// Refuses two exceptions for the same date and the same venue or
/// resource: which one would count is not clear. Answers the position of
/// the second one.
pub fn find_duplicate<'a>(
    exceptions: impl IntoIterator<Item = (Option<&'a str>, NaiveDate)>,
) -> Option<usize> {
    let mut seen: Vec<(Option<&str>, NaiveDate)> = Vec::new();
    for (index, key) in exceptions.into_iter().enumerate() {
        if seen.contains(&key) {
            return Some(index);
        }
        seen.push(key);
    }
    None
}

/// Writes a day's intervals for storage: `09:00-12:00 13:00-17:00`; empty
/// for none.
pub fn day_to_text(hours: &[OpeningInterval]) -> String {
    hours
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads [`day_to_text`] back.
pub fn day_from_text(raw: &str) -> Result<Vec<OpeningInterval>, String> {
    check_day(
        raw.split_whitespace()
            .map(OpeningInterval::parse)
            .collect::<Result<Vec<_>, _>>()?,
    )
}

/// Writes a week for storage: seven days, Monday first, separated by `;`.
pub fn week_to_text(week: &crate::WeeklySchedule) -> String {
    (0..7)
        .map(|index| day_to_text(week.on(crate::venue::weekday_from_index(index))))
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads [`week_to_text`] back.
pub fn week_from_text(raw: &str) -> Result<crate::WeeklySchedule, String> {
    let days: Vec<&str> = raw.split(';').collect();
    if days.len() != 7 {
        return Err("a week has seven days".to_owned());
    }
    let mut week: [Vec<OpeningInterval>; 7] = Default::default();
    for (slot, day) in week.iter_mut().zip(days) {
        *slot = day_from_text(day)?;
    }
    crate::WeeklySchedule::new(week)
}

impl Venue {
    /// The venue's own exception for a date, if any.
    fn venue_exception(&self, date: NaiveDate) -> Option<&HoursException> {
        self.exceptions
            .iter()
            .find(|e| e.resource_id.is_none() && e.date == date)
    }

    /// The venue's own opening hours on a date: its exception for that
    /// date, else its weekly hours.
    pub fn hours_on(&self, date: NaiveDate) -> &[OpeningInterval] {
        match self.venue_exception(date) {
            Some(exception) => &exception.hours,
            None => self.schedule.on(date.weekday()),
        }
    }

    /// The hours a resource works on a date (see the module's rules).
    pub fn working_hours<'a>(
        &'a self,
        resource: &'a Resource,
        date: NaiveDate,
    ) -> &'a [OpeningInterval] {
        if let Some(own) = self
            .exceptions
            .iter()
            .find(|e| e.resource_id == Some(resource.id) && e.date == date)
        {
            return &own.hours;
        }
        let venue = self.venue_exception(date);
        if let Some(holiday) = venue.filter(|e| e.hours.is_empty()) {
            return &holiday.hours;
        }
        if let Some(weekly) = &resource.hours {
            return weekly.on(date.weekday());
        }
        self.hours_on(date)
    }

    /// [`Self::working_hours`] as instants, in time order.
    pub fn working_intervals(
        &self,
        resource: &Resource,
        date: NaiveDate,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.working_hours(resource, date)
            .iter()
            .map(|i| {
                (
                    self.instant_at(date, i.opens),
                    self.instant_at(date, i.closes),
                )
            })
            .collect()
    }

    /// Whether a resource works for the whole of `[starts_at, ends_at)`:
    /// one of its intervals on the local date of the start holds it.
    pub fn works(
        &self,
        resource: &Resource,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> bool {
        self.working_intervals(resource, self.local_date(starts_at))
            .iter()
            .any(|(opens, closes)| *opens <= starts_at && ends_at <= *closes)
    }

    /// Whether any resource has hours of its own or any exception exists:
    /// without them the venue's weekly hours decide alone.
    pub fn has_own_plans(&self, resources: &[Resource]) -> bool {
        !self.exceptions.is_empty() || resources.iter().any(|r| r.hours.is_some())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;
    use crate::venue::tests::venue_in;
    use crate::{BookingRules, ResourceKind, Slug, WeeklySchedule};

    fn interval(raw: &str) -> OpeningInterval {
        OpeningInterval::parse(raw).expect("valid interval")
    }

    fn date(raw: &str) -> NaiveDate {
        parse_date(raw).expect("valid date")
    }

    pub(crate) fn practitioner(
        venue: &Venue,
        slug: &str,
        hours: Option<WeeklySchedule>,
    ) -> Resource {
        Resource {
            id: ResourceId::new_random(),
            venue_id: venue.id,
            slug: Slug::parse(slug).expect("valid slug"),
            name: slug.to_owned(),
            kind: ResourceKind::Practitioner,
            capacity: 1,
            active: true,
            hours,
        }
    }

    fn tuesday_mornings() -> WeeklySchedule {
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        days[1] = vec![interval("09:00-12:00")];
        WeeklySchedule::new(days).expect("valid week")
    }

    #[test]
    fn the_first_rule_that_applies_decides_a_resources_hours() {
        let days: Vec<(Weekday, &str)> = (0..7)
            .map(|i| (crate::venue::weekday_from_index(i), "08:00-18:00"))
            .collect();
        let mut venue = venue_in("UTC", &days, BookingRules::restaurant_defaults());
        let own = practitioner(&venue, "a", Some(tuesday_mornings()));
        let follows = practitioner(&venue, "b", None);
        // 2026-06-02 is a Tuesday, 06-03 a Wednesday.
        assert_eq!(
            venue.working_hours(&own, date("2026-06-02")),
            [interval("09:00-12:00")]
        );
        assert!(venue.working_hours(&own, date("2026-06-03")).is_empty());
        assert_eq!(
            venue.working_hours(&follows, date("2026-06-03")),
            [interval("08:00-18:00")]
        );

        venue.exceptions = vec![
            HoursException {
                resource_id: None,
                date: date("2026-06-03"),
                hours: vec![interval("18:00-21:00")],
            },
            HoursException {
                resource_id: None,
                date: date("2026-06-09"),
                hours: Vec::new(),
            },
            HoursException {
                resource_id: Some(own.id),
                date: date("2026-06-10"),
                hours: vec![interval("13:00-15:00")],
            },
        ];
        // An extra evening of the venue: for those who follow its hours.
        assert_eq!(
            venue.working_hours(&follows, date("2026-06-03")),
            [interval("18:00-21:00")]
        );
        assert!(venue.working_hours(&own, date("2026-06-03")).is_empty());
        // A holiday closes everyone.
        assert!(venue.working_hours(&own, date("2026-06-09")).is_empty());
        assert!(venue.working_hours(&follows, date("2026-06-09")).is_empty());
        // A resource's own exception wins.
        assert_eq!(
            venue.working_hours(&own, date("2026-06-10")),
            [interval("13:00-15:00")]
        );
    }

    #[test]
    fn a_day_refuses_overlaps_and_round_trips_as_text() {
        assert!(check_day(vec![interval("09:00-12:00"), interval("11:00-13:00")]).is_err());
        let week = tuesday_mornings();
        let text = week_to_text(&week);
        assert_eq!(text, ";09:00-12:00;;;;;");
        assert_eq!(week_from_text(&text), Ok(week));
        assert!(week_from_text("09:00-12:00").is_err());
        assert_eq!(day_from_text(""), Ok(Vec::new()));
    }

    #[test]
    fn dates_are_calendar_dates_and_twice_is_refused() {
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("24-12-2026").is_err());
        let day = date("2026-12-24");
        assert_eq!(find_duplicate([(None, day), (Some("a"), day)]), None);
        assert_eq!(
            find_duplicate([(None, day), (Some("a"), day), (None, day)]),
            Some(2)
        );
    }

    #[test]
    fn a_nine_oclock_start_stays_nine_oclock_across_daylight_saving_changes() {
        let venue = venue_in("Europe/Amsterdam", &[], BookingRules::restaurant_defaults());
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        days[6] = vec![interval("01:00-04:00")];
        let own = practitioner(&venue, "a", Some(WeeklySchedule::new(days).expect("valid")));
        let spring = venue.working_intervals(&own, date("2026-03-29"));
        // 01:00 CET is 00:00 UTC; 04:00 CEST is 02:00 UTC: two hours of work.
        assert_eq!(spring[0].0.to_rfc3339(), "2026-03-29T00:00:00+00:00");
        assert_eq!(spring[0].1.to_rfc3339(), "2026-03-29T02:00:00+00:00");
        let autumn = venue.working_intervals(&own, date("2026-10-25"));
        // 01:00 CEST is 23:00 UTC the day before; 04:00 CET is 03:00 UTC.
        assert_eq!(autumn[0].0.to_rfc3339(), "2026-10-24T23:00:00+00:00");
        assert_eq!(autumn[0].1.to_rfc3339(), "2026-10-25T03:00:00+00:00");
    }
}
