//! `kluis venue import FILE`: venues, opening hours and resources declared
//! in TOML. Every problem is reported with the file, line and key, and the
//! whole file is imported in one transaction or not at all.

use std::path::Path;

use domain::venue::{check_display_name, parse_time_zone};
use domain::{
    BookingRules, Country, Minutes, OpeningInterval, ResourceKind, Slug, TimeOfDay, WeeklySchedule,
};
use serde::Deserialize;
use store::{ResourceDefinition, VenueDefinition};
use toml::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {key}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Syntax { file: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    #[serde(default)]
    venue: Vec<VenueEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueEntry {
    slug: Spanned<String>,
    name: Spanned<String>,
    time_zone: Spanned<String>,
    country: Option<Spanned<String>>,
    slot_interval_minutes: Option<Spanned<i64>>,
    booking_duration_minutes: Option<Spanned<i64>>,
    buffer_minutes: Option<Spanned<i64>>,
    min_notice_minutes: Option<Spanned<i64>>,
    same_day_cutoff: Option<Spanned<String>>,
    cancel_deadline_minutes: Option<Spanned<i64>>,
    max_party_size: Option<Spanned<i64>>,
    max_advance_days: Option<Spanned<i64>>,
    /// `none` (default), `deposit`, `prepayment` or `guarantee`.
    payment: Option<Spanned<String>>,
    /// In the currency's minor unit (cents).
    payment_amount: Option<Spanned<i64>>,
    payment_currency: Option<Spanned<String>>,
    payment_per_guest: Option<bool>,
    payment_hold_minutes: Option<Spanned<i64>>,
    /// `required`, `optional` (default) or `no` (not collected at all).
    collect_email: Option<Spanned<String>>,
    collect_phone: Option<Spanned<String>>,
    collect_notes: Option<Spanned<String>>,
    /// Days after a guest's last visit until they are anonymized (365).
    retention_days: Option<Spanned<i64>>,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped (30).
    payment_data_days: Option<Spanned<i64>>,
    /// Minutes a waitlist offer of a freed table can be claimed (30).
    waitlist_offer_minutes: Option<Spanned<i64>>,
    /// Days after its date until a waitlist entry is deleted (7).
    waitlist_retention_days: Option<Spanned<i64>>,
    /// What the booking form offers to opt in to: `newsletter`,
    /// `marketing` (both when left out; `[]` for none).
    consent_purposes: Option<Spanned<Vec<String>>>,
    /// Web origins (`https://host[:port]`) whose pages may call the API
    /// from a browser for this venue.
    allowed_origins: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    opening_hours: Week,
    #[serde(default)]
    resource: Vec<ResourceEntry>,
    /// Periods without bookings; the file's list replaces the stored one.
    #[serde(default)]
    closure: Vec<ClosureEntry>,
    /// Fixed combinations of tables for larger parties.
    #[serde(default)]
    combination: Vec<CombinationEntry>,
    /// Pairs of tables that stand next to each other: connected runs of
    /// them may be joined.
    adjacent: Option<Vec<Spanned<Vec<Spanned<String>>>>>,
    /// The most adjacent tables one booking joins (3).
    max_joined: Option<Spanned<i64>>,
    /// Caps on the guests whose bookings start in one slot, or in one
    /// hour of the venue's clock.
    max_covers_per_slot: Option<Spanned<i64>>,
    max_covers_per_hour: Option<Spanned<i64>>,
    /// Dated changes to the working plan of the venue or one resource; the
    /// file's list replaces the stored one.
    #[serde(default)]
    exception: Vec<ExceptionEntry>,
    /// What the venue offers to book; the file's list replaces the stored
    /// one (services left out are retired).
    #[serde(default)]
    service: Vec<ServiceEntry>,
}

/// `[[venue.combination]]`: `resources` (two or more slugs of this venue,
/// the primary first), `capacity` (the seats they give together) and
/// optional `min_party` (the smallest party offered them).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CombinationEntry {
    resources: Spanned<Vec<Spanned<String>>>,
    capacity: Spanned<i64>,
    min_party: Option<Spanned<i64>>,
}

/// `[[venue.service]]`: `slug`, `name`, `duration_minutes`, optional
/// `buffer_minutes` (the venue's), `min_party_size` (1), `max_party_size`
/// (the venue's), `resources` (slugs; all when left out) and a payment rule
/// of its own with the venue's keys (`payment`, `payment_amount`,
/// `payment_currency`, `payment_per_guest`; the venue's when left out).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    slug: Spanned<String>,
    name: Spanned<String>,
    duration_minutes: Spanned<i64>,
    buffer_minutes: Option<Spanned<i64>>,
    min_party_size: Option<Spanned<i64>>,
    max_party_size: Option<Spanned<i64>>,
    resources: Option<Spanned<Vec<Spanned<String>>>>,
    payment: Option<Spanned<String>>,
    payment_amount: Option<Spanned<i64>>,
    payment_currency: Option<Spanned<String>>,
    payment_per_guest: Option<bool>,
}

/// `[[venue.exception]]`: on `date` (`2026-12-24`) the venue, or the
/// resource with slug `resource`, works `hours` (`["18:00-23:00"]`)
/// instead of its weekly hours; `hours = []` closes it all day.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionEntry {
    date: Spanned<String>,
    hours: Spanned<Vec<Spanned<String>>>,
    resource: Option<Spanned<String>>,
}

/// `[[venue.closure]]`: `from` and `until` on the venue's clock
/// (`2026-12-24T18:00`, or a date such as `2026-12-25` for its 00:00),
/// optional `resource` (a slug of this venue) and `reason` (staff only).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosureEntry {
    from: Spanned<String>,
    until: Spanned<String>,
    resource: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Week {
    monday: Option<Vec<Spanned<String>>>,
    tuesday: Option<Vec<Spanned<String>>>,
    wednesday: Option<Vec<Spanned<String>>>,
    thursday: Option<Vec<Spanned<String>>>,
    friday: Option<Vec<Spanned<String>>>,
    saturday: Option<Vec<Spanned<String>>>,
    sunday: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    slug: Spanned<String>,
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    capacity: Spanned<i64>,
    /// `[venue.resource.hours]`: weekly hours of its own, with the keys of
    /// `opening_hours`; left out, it follows the venue's.
    hours: Option<Spanned<Week>>,
}

/// Fixed combinations, adjacent pairs and the longest run, checked
/// against the venue's resources; each problem names its entry's line.
type TablesTogether = (
    Vec<domain::combination::CombinationDefinition>,
    Vec<(Slug, Slug)>,
    u32,
);

fn tables_together(
    report: &Reporter<'_>,
    key: &dyn Fn(&str) -> String,
    entry: &VenueEntry,
    resources: &[ResourceDefinition],
) -> Result<TablesTogether, ImportError> {
    // A slug the venue does not know stays as written (checked below), so
    // that the refusal names it.
    let slug = |raw: &Spanned<String>, at: &str| {
        Slug::parse(raw.get_ref()).map_err(|_| {
            report.error(
                raw,
                &key(at),
                format!(
                    "`{}` is no resource of this venue",
                    raw.get_ref().chars().take(40).collect::<String>()
                ),
            )
        })
    };
    let mut combinations = Vec::new();
    for (position, combination) in entry.combination.iter().enumerate() {
        let at = format!("combination[{position}].resources");
        combinations.push(domain::combination::CombinationDefinition {
            resources: combination
                .resources
                .get_ref()
                .iter()
                .map(|raw| slug(raw, &at))
                .collect::<Result<_, _>>()?,
            capacity: domain::Resource::check_capacity(*combination.capacity.get_ref()).map_err(
                |r| {
                    report.error(
                        &combination.capacity,
                        &key(&format!("combination[{position}].capacity")),
                        r,
                    )
                },
            )?,
            min_party: match &combination.min_party {
                None => None,
                Some(raw) => Some(
                    u32::try_from(*raw.get_ref())
                        .ok()
                        .filter(|min| (1..=domain::PartySize::HARD_MAX).contains(min))
                        .ok_or_else(|| {
                            report.error(
                                raw,
                                &key(&format!("combination[{position}].min_party")),
                                "must be between 1 and the combination's capacity",
                            )
                        })?,
                ),
            },
        });
    }
    let mut adjacent = Vec::new();
    for (position, pair) in entry.adjacent.iter().flatten().enumerate() {
        let at = format!("adjacent[{position}]");
        match pair.get_ref().as_slice() {
            [a, b] => adjacent.push((slug(a, &at)?, slug(b, &at)?)),
            _ => {
                return Err(report.error(pair, &key(&at), "a pair names exactly two tables"));
            }
        }
    }
    let max_joined = match &entry.max_joined {
        None => domain::combination::DEFAULT_MAX_JOINED,
        Some(raw) => u32::try_from(*raw.get_ref()).unwrap_or(0),
    };
    let known: Vec<&Slug> = resources.iter().map(|r| &r.slug).collect();
    domain::combination::check(&known, &combinations, &adjacent, max_joined).map_err(
        |refusal| {
            let (span, at) = match (refusal.list, refusal.position) {
                ("combination", Some(i)) => {
                    let entry = &entry.combination[i];
                    let span = match refusal.key {
                        "capacity" => entry.capacity.span(),
                        "min_party" => entry
                            .min_party
                            .as_ref()
                            .map_or(entry.capacity.span(), Spanned::span),
                        _ => entry.resources.span(),
                    };
                    (span, format!("combination[{i}].{}", refusal.key))
                }
                ("adjacent", Some(i)) => (
                    entry
                        .adjacent
                        .iter()
                        .flatten()
                        .nth(i)
                        .map_or(entry.slug.span(), Spanned::span),
                    format!("adjacent[{i}]"),
                ),
                ("max_joined", _) => (
                    entry
                        .max_joined
                        .as_ref()
                        .map_or(entry.slug.span(), Spanned::span),
                    "max_joined".to_owned(),
                ),
                (list, _) => (entry.slug.span(), list.to_owned()),
            };
            report.error_at(span, &key(&at), refusal.reason)
        },
    )?;
    Ok((combinations, adjacent, max_joined))
}

/// Turns spans into `file:line: key: reason` errors.
struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
}

impl Reporter<'_> {
    fn error<T>(&self, span: &Spanned<T>, key: &str, reason: impl Into<String>) -> ImportError {
        self.error_at(span.span(), key, reason)
    }

    fn error_at(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        reason: impl Into<String>,
    ) -> ImportError {
        let offset = span.start.min(self.text.len());
        ImportError::Invalid {
            file: self.file.to_owned(),
            line: self.text[..offset].matches('\n').count() + 1,
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn minutes(
        &self,
        value: &Option<Spanned<i64>>,
        key: &str,
        default: Minutes,
        min: u32,
        max: u32,
    ) -> Result<Minutes, ImportError> {
        match value {
            None => Ok(default),
            Some(spanned) => Minutes::parse("value", *spanned.get_ref(), min, max).map_err(|_| {
                self.error(
                    spanned,
                    key,
                    format!("must be between {min} and {max} minutes"),
                )
            }),
        }
    }
}

pub fn read_file(path: &Path) -> Result<Vec<VenueDefinition>, ImportError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text)
}

pub fn parse(file: &str, text: &str) -> Result<Vec<VenueDefinition>, ImportError> {
    let parsed: ImportFile = toml::from_str(text).map_err(|error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ImportError::Syntax {
            file: line.map_or_else(|| file.to_owned(), |line| format!("{file}:{line}")),
            reason: error.message().to_owned(),
        }
    })?;
    let report = Reporter { file, text };
    let mut definitions: Vec<VenueDefinition> = Vec::new();
    for (index, entry) in parsed.venue.iter().enumerate() {
        let definition = venue(&report, index, entry)?;
        if definitions.iter().any(|d| d.slug == definition.slug) {
            return Err(report.error(
                &entry.slug,
                &format!("venue[{index}].slug"),
                format!("`{}` appears twice in this file", definition.slug),
            ));
        }
        definitions.push(definition);
    }
    Ok(definitions)
}

fn venue(
    report: &Reporter<'_>,
    index: usize,
    entry: &VenueEntry,
) -> Result<VenueDefinition, ImportError> {
    let key = |name: &str| format!("venue[{index}].{name}");
    let defaults = BookingRules::restaurant_defaults();
    let slug = Slug::parse(entry.slug.get_ref())
        .map_err(|r| report.error(&entry.slug, &key("slug"), r))?;
    let name = check_display_name(entry.name.get_ref())
        .map_err(|r| report.error(&entry.name, &key("name"), r))?;
    let time_zone = parse_time_zone(entry.time_zone.get_ref())
        .map_err(|r| report.error(&entry.time_zone, &key("time_zone"), r))?;
    let country = match &entry.country {
        None => None,
        Some(raw) => {
            Some(Country::parse(raw.get_ref()).map_err(|r| report.error(raw, &key("country"), r))?)
        }
    };
    let limit = BookingRules::MAX_DURATION_MINUTES;
    let rules = BookingRules {
        slot_interval: report.minutes(
            &entry.slot_interval_minutes,
            &key("slot_interval_minutes"),
            defaults.slot_interval,
            1,
            limit,
        )?,
        booking_duration: report.minutes(
            &entry.booking_duration_minutes,
            &key("booking_duration_minutes"),
            defaults.booking_duration,
            1,
            limit,
        )?,
        buffer: report.minutes(
            &entry.buffer_minutes,
            &key("buffer_minutes"),
            defaults.buffer,
            0,
            limit,
        )?,
        min_notice: report.minutes(
            &entry.min_notice_minutes,
            &key("min_notice_minutes"),
            defaults.min_notice,
            0,
            60 * 24 * 60,
        )?,
        same_day_cutoff: match &entry.same_day_cutoff {
            None => None,
            Some(raw) => Some(
                TimeOfDay::parse(raw.get_ref())
                    .map_err(|r| report.error(raw, &key("same_day_cutoff"), r))?,
            ),
        },
        cancel_deadline: report.minutes(
            &entry.cancel_deadline_minutes,
            &key("cancel_deadline_minutes"),
            defaults.cancel_deadline,
            0,
            60 * 24 * 60,
        )?,
        max_party_size: match &entry.max_party_size {
            None => defaults.max_party_size,
            Some(raw) => u32::try_from(*raw.get_ref())
                .ok()
                .filter(|size| (1..=domain::PartySize::HARD_MAX).contains(size))
                .ok_or_else(|| {
                    report.error(
                        raw,
                        &key("max_party_size"),
                        format!("must be between 1 and {}", domain::PartySize::HARD_MAX),
                    )
                })?,
        },
        max_advance_days: match &entry.max_advance_days {
            None => defaults.max_advance_days,
            Some(raw) => u32::try_from(*raw.get_ref())
                .ok()
                .filter(|days| (1..=3660).contains(days))
                .ok_or_else(|| {
                    report.error(
                        raw,
                        &key("max_advance_days"),
                        "must be between 1 and 3660 days",
                    )
                })?,
        },
    };

    let payments = payment_policy(report, &key, entry)?;
    let field_rule = |raw: &Option<Spanned<String>>, name: &str| match raw {
        None => Ok(domain::privacy::FieldRule::Optional),
        Some(value) => domain::privacy::FieldRule::parse(value.get_ref())
            .map_err(|r| report.error(value, &key(name), r)),
    };
    let guest_fields = domain::privacy::GuestFields {
        email: field_rule(&entry.collect_email, "collect_email")?,
        phone: field_rule(&entry.collect_phone, "collect_phone")?,
        notes: field_rule(&entry.collect_notes, "collect_notes")?,
    };

    let schedule = week(&entry.opening_hours, &key("opening_hours"))
        .map_err(|(span, key, r)| report.error(span.unwrap_or(&entry.name), &key, r))?;

    let mut resources: Vec<ResourceDefinition> = Vec::new();
    for (position, resource) in entry.resource.iter().enumerate() {
        let rkey = |name: &str| key(&format!("resource[{position}].{name}"));
        let slug = Slug::parse(resource.slug.get_ref())
            .map_err(|r| report.error(&resource.slug, &rkey("slug"), r))?;
        if resources.iter().any(|r| r.slug == slug) {
            return Err(report.error(
                &resource.slug,
                &rkey("slug"),
                format!("`{slug}` appears twice in this venue"),
            ));
        }
        resources.push(ResourceDefinition {
            slug,
            name: check_display_name(resource.name.get_ref())
                .map_err(|r| report.error(&resource.name, &rkey("name"), r))?,
            kind: match &resource.kind {
                None => ResourceKind::Table,
                Some(raw) => ResourceKind::parse(raw.get_ref())
                    .map_err(|r| report.error(raw, &rkey("kind"), r))?,
            },
            capacity: domain::Resource::check_capacity(*resource.capacity.get_ref())
                .map_err(|r| report.error(&resource.capacity, &rkey("capacity"), r))?,
            hours: match &resource.hours {
                None => None,
                Some(hours) => Some(week(hours.get_ref(), &rkey("hours")).map_err(
                    |(span, key, r)| match span {
                        Some(span) => report.error(span, &key, r),
                        None => report.error(hours, &key, r),
                    },
                )?),
            },
        });
    }

    if entry.closure.len() > domain::closure::MAX_PER_VENUE {
        return Err(report.error(
            &entry.slug,
            &key("closure"),
            format!(
                "a venue has at most {} closures",
                domain::closure::MAX_PER_VENUE
            ),
        ));
    }
    let mut closures: Vec<store::ClosureDefinition> = Vec::new();
    for (position, closure) in entry.closure.iter().enumerate() {
        let ckey = |name: &str| key(&format!("closure[{position}].{name}"));
        let from = domain::closure::parse_local(closure.from.get_ref())
            .map_err(|r| report.error(&closure.from, &ckey("from"), r))?;
        let until = domain::closure::parse_local(closure.until.get_ref())
            .map_err(|r| report.error(&closure.until, &ckey("until"), r))?;
        domain::closure::check_period(time_zone, from, until)
            .map_err(|r| report.error(&closure.until, &ckey("until"), r))?;
        let resource = match &closure.resource {
            None => None,
            Some(raw) => {
                let slug = Slug::parse(raw.get_ref())
                    .ok()
                    .filter(|slug| resources.iter().any(|r| &r.slug == slug))
                    .ok_or_else(|| {
                        report.error(
                            raw,
                            &ckey("resource"),
                            format!(
                                "`{}` is no resource of this venue",
                                raw.get_ref().chars().take(40).collect::<String>()
                            ),
                        )
                    })?;
                Some(slug)
            }
        };
        let reason = match &closure.reason {
            None => None,
            Some(raw) => domain::closure::check_reason(Some(raw.get_ref()))
                .map_err(|r| report.error(raw, &ckey("reason"), r))?,
        };
        closures.push(store::ClosureDefinition {
            id: None,
            resource,
            from,
            until,
            reason,
        });
    }

    let (combinations, adjacent, max_joined) = tables_together(report, &key, entry, &resources)?;
    let cap = |raw: &Option<Spanned<i64>>, name: &str| match raw {
        None => Ok(None),
        Some(value) => domain::Pacing::check_cap(*value.get_ref())
            .map(Some)
            .map_err(|r| report.error(value, &key(name), r)),
    };
    let pacing = domain::Pacing {
        max_covers_per_slot: cap(&entry.max_covers_per_slot, "max_covers_per_slot")?,
        max_covers_per_hour: cap(&entry.max_covers_per_hour, "max_covers_per_hour")?,
    };
    let exceptions = exceptions(report, &key, entry, &resources)?;
    let services = services(report, &key, entry, &rules, &resources)?;

    let opt_ins = match &entry.consent_purposes {
        None => domain::OptIns::default(),
        Some(listed) => domain::OptIns::parse_text(&listed.get_ref().join(" "))
            .map_err(|r| report.error(listed, &key("consent_purposes"), r))?,
    };
    let allowed_origins = match &entry.allowed_origins {
        None => Vec::new(),
        Some(listed) => domain::Origin::check_list(listed.get_ref().iter().map(String::as_str))
            .map_err(|r| report.error(listed, &key("allowed_origins"), r))?,
    };

    Ok(VenueDefinition {
        slug,
        name,
        opt_ins,
        allowed_origins,
        time_zone,
        country,
        payments,
        guest_fields,
        rules,
        schedule,
        resources,
        closures,
        combinations,
        adjacent,
        max_joined,
        pacing,
        exceptions,
        services,
        retention_days: match &entry.retention_days {
            None => domain::Venue::DEFAULT_RETENTION_DAYS,
            Some(days) => domain::Venue::check_retention_days(*days.get_ref())
                .map_err(|r| report.error(days, &key("retention_days"), r))?,
        },
        payment_data_days: match &entry.payment_data_days {
            None => domain::Venue::DEFAULT_PAYMENT_DATA_DAYS,
            Some(days) => domain::Venue::check_payment_data_days(*days.get_ref())
                .map_err(|r| report.error(days, &key("payment_data_days"), r))?,
        },
        waitlist: domain::waitlist::WaitlistRules {
            offer_minutes: match &entry.waitlist_offer_minutes {
                None => domain::waitlist::WaitlistRules::DEFAULT_OFFER_MINUTES,
                Some(minutes) => {
                    domain::waitlist::WaitlistRules::check_offer_minutes(*minutes.get_ref())
                        .map_err(|r| report.error(minutes, &key("waitlist_offer_minutes"), r))?
                }
            },
            retention_days: match &entry.waitlist_retention_days {
                None => domain::waitlist::WaitlistRules::DEFAULT_RETENTION_DAYS,
                Some(days) => {
                    domain::waitlist::WaitlistRules::check_retention_days(*days.get_ref())
                        .map_err(|r| report.error(days, &key("waitlist_retention_days"), r))?
                }
            },
        },
    })
}

/// A week of intervals under `key` (`opening_hours` or a resource's
/// `hours`). An error names the key of the day and the span of its first
/// interval when there is one.
fn week<'a>(
    week: &'a Week,
    key: &str,
) -> Result<WeeklySchedule, (Option<&'a Spanned<String>>, String, String)> {
    let days = [
        (&week.monday, "monday"),
        (&week.tuesday, "tuesday"),
        (&week.wednesday, "wednesday"),
        (&week.thursday, "thursday"),
        (&week.friday, "friday"),
        (&week.saturday, "saturday"),
        (&week.sunday, "sunday"),
    ];
    let mut intervals: [Vec<OpeningInterval>; 7] = Default::default();
    for (slot, (day, day_name)) in intervals.iter_mut().zip(days) {
        let day_key = format!("{key}.{day_name}");
        let listed = day.as_deref().unwrap_or_default();
        for raw in listed {
            let interval = OpeningInterval::parse(raw.get_ref())
                .map_err(|r| (Some(raw), day_key.clone(), r))?;
            slot.push(interval);
        }
        *slot = domain::hours::check_day(std::mem::take(slot))
            .map_err(|r| (listed.first(), day_key.clone(), r))?;
    }
    WeeklySchedule::new(intervals).map_err(|r| (None, key.to_owned(), r))
}

/// `[[venue.exception]]` entries: each date at most once per venue or
/// resource, resources named by a slug of this venue.
fn exceptions(
    report: &Reporter<'_>,
    key: &dyn Fn(&str) -> String,
    entry: &VenueEntry,
    resources: &[ResourceDefinition],
) -> Result<Vec<store::ExceptionDefinition>, ImportError> {
    if entry.exception.len() > domain::hours::MAX_PER_VENUE {
        return Err(report.error(
            &entry.slug,
            &key("exception"),
            format!(
                "a venue has at most {} exceptions",
                domain::hours::MAX_PER_VENUE
            ),
        ));
    }
    let mut exceptions: Vec<store::ExceptionDefinition> = Vec::new();
    for (position, exception) in entry.exception.iter().enumerate() {
        let ekey = |name: &str| key(&format!("exception[{position}].{name}"));
        let date = domain::hours::parse_date(exception.date.get_ref())
            .map_err(|r| report.error(&exception.date, &ekey("date"), r))?;
        let mut hours = Vec::new();
        for raw in exception.hours.get_ref() {
            hours.push(
                OpeningInterval::parse(raw.get_ref())
                    .map_err(|r| report.error(raw, &ekey("hours"), r))?,
            );
        }
        let hours = domain::hours::check_day(hours)
            .map_err(|r| report.error(&exception.hours, &ekey("hours"), r))?;
        let resource = match &exception.resource {
            None => None,
            Some(raw) => Some(
                Slug::parse(raw.get_ref())
                    .ok()
                    .filter(|slug| resources.iter().any(|r| &r.slug == slug))
                    .ok_or_else(|| {
                        report.error(
                            raw,
                            &ekey("resource"),
                            format!(
                                "`{}` is no resource of this venue",
                                raw.get_ref().chars().take(40).collect::<String>()
                            ),
                        )
                    })?,
            ),
        };
        if exceptions
            .iter()
            .any(|e| e.date == date && e.resource == resource)
        {
            return Err(report.error(
                &exception.date,
                &ekey("date"),
                "this date already has an exception for the same venue or resource",
            ));
        }
        exceptions.push(store::ExceptionDefinition {
            resource,
            date,
            hours,
        });
    }
    Ok(exceptions)
}

/// `[[venue.service]]` entries, checked against the venue's rules and
/// resources in the file.
fn services(
    report: &Reporter<'_>,
    key: &dyn Fn(&str) -> String,
    entry: &VenueEntry,
    rules: &BookingRules,
    resources: &[ResourceDefinition],
) -> Result<Vec<store::ServiceDefinition>, ImportError> {
    if entry.service.len() > domain::service::MAX_PER_VENUE {
        return Err(report.error(
            &entry.slug,
            &key("service"),
            format!(
                "a venue offers at most {} services",
                domain::service::MAX_PER_VENUE
            ),
        ));
    }
    let mut services: Vec<store::ServiceDefinition> = Vec::new();
    for (position, service) in entry.service.iter().enumerate() {
        let skey = |name: &str| key(&format!("service[{position}].{name}"));
        let slug = Slug::parse(service.slug.get_ref())
            .map_err(|r| report.error(&service.slug, &skey("slug"), r))?;
        if services.iter().any(|s| s.slug == slug) {
            return Err(report.error(
                &service.slug,
                &skey("slug"),
                format!("`{slug}` appears twice in this venue"),
            ));
        }
        let name = check_display_name(service.name.get_ref())
            .map_err(|r| report.error(&service.name, &skey("name"), r))?;
        let number = |value: &Spanned<i64>, name: &str| {
            u32::try_from(*value.get_ref())
                .map_err(|_| report.error(value, &skey(name), "must be a whole number from 0"))
        };
        let duration = number(&service.duration_minutes, "duration_minutes")?;
        let buffer = match &service.buffer_minutes {
            None => rules.buffer.get(),
            Some(raw) => number(raw, "buffer_minutes")?,
        };
        let min_party = match &service.min_party_size {
            None => 1,
            Some(raw) => number(raw, "min_party_size")?,
        };
        let max_party = match &service.max_party_size {
            None => rules.max_party_size,
            Some(raw) => number(raw, "max_party_size")?,
        };
        let mut named = Vec::new();
        let mut capacities = Vec::new();
        for raw in service.resources.iter().flat_map(|listed| listed.get_ref()) {
            let resource = Slug::parse(raw.get_ref())
                .ok()
                .and_then(|slug| resources.iter().find(|r| r.slug == slug))
                .ok_or_else(|| {
                    report.error(
                        raw,
                        &skey("resources"),
                        format!(
                            "`{}` is no resource of this venue",
                            raw.get_ref().chars().take(40).collect::<String>()
                        ),
                    )
                })?;
            named.push(resource.slug.clone());
            capacities.push(resource.capacity);
        }
        if named.is_empty() {
            capacities = resources.iter().map(|r| r.capacity).collect();
        }
        domain::service::check(
            duration,
            buffer,
            min_party,
            max_party,
            rules.max_party_size,
            &capacities,
        )
        .map_err(|(part, reason)| {
            let (span, name): (Option<&Spanned<i64>>, &str) = match part {
                "duration" => (Some(&service.duration_minutes), "duration_minutes"),
                "buffer" => (service.buffer_minutes.as_ref(), "buffer_minutes"),
                "min_party" => (service.min_party_size.as_ref(), "min_party_size"),
                "max_party" => (service.max_party_size.as_ref(), "max_party_size"),
                _ => (None, "resources"),
            };
            match (span, &service.resources) {
                (Some(span), _) => report.error(span, &skey(name), reason),
                (None, Some(listed)) => report.error(listed, &skey(name), reason),
                (None, None) => report.error(&service.slug, &skey(name), reason),
            }
        })?;
        let payment = match &service.payment {
            None => None,
            Some(kind) => Some(payment_rule(
                report,
                &skey,
                kind,
                service.payment_amount.as_ref(),
                service.payment_currency.as_ref(),
                service.payment_per_guest,
            )?),
        };
        services.push(store::ServiceDefinition {
            slug,
            name,
            duration,
            buffer: Some(buffer),
            min_party,
            max_party: Some(max_party),
            resources: named,
            payment,
        });
    }
    Ok(services)
}

fn payment_policy(
    report: &Reporter<'_>,
    key: &dyn Fn(&str) -> String,
    entry: &VenueEntry,
) -> Result<domain::payments::PaymentPolicy, ImportError> {
    use domain::payments::PaymentPolicy;
    let defaults = PaymentPolicy::default();
    let hold = report.minutes(
        &entry.payment_hold_minutes,
        &key("payment_hold_minutes"),
        defaults.hold,
        1,
        24 * 60,
    )?;
    let Some(kind) = &entry.payment else {
        return Ok(PaymentPolicy { hold, ..defaults });
    };
    let rule = payment_rule(
        report,
        key,
        kind,
        entry.payment_amount.as_ref(),
        entry.payment_currency.as_ref(),
        entry.payment_per_guest,
    )?;
    Ok(PaymentPolicy { rule, hold })
}

/// A payment rule from the keys `payment`, `payment_amount`,
/// `payment_currency` and `payment_per_guest` (of a venue or a service).
fn payment_rule(
    report: &Reporter<'_>,
    key: &dyn Fn(&str) -> String,
    kind: &Spanned<String>,
    payment_amount: Option<&Spanned<i64>>,
    payment_currency: Option<&Spanned<String>>,
    payment_per_guest: Option<bool>,
) -> Result<domain::payments::PaymentRule, ImportError> {
    use domain::payments::{Currency, Money, PaymentRule};
    let currency = match payment_currency {
        None => Currency::parse("EUR")
            .map_err(|e| report.error(kind, &key("payment_currency"), e.to_string()))?,
        Some(raw) => Currency::parse(raw.get_ref())
            .map_err(|e| report.error(raw, &key("payment_currency"), e.to_string()))?,
    };
    let amount = match payment_amount {
        None => {
            return Err(report.error(
                kind,
                &key("payment_amount"),
                "a payment rule needs payment_amount (in cents)",
            ));
        }
        Some(raw) => Money::new(*raw.get_ref(), currency)
            .map_err(|e| report.error(raw, &key("payment_amount"), e.to_string()))?,
    };
    let per_guest = payment_per_guest.unwrap_or(false);
    let rule = match kind.get_ref().as_str() {
        "none" => PaymentRule::None,
        "deposit" => PaymentRule::Deposit { amount, per_guest },
        "prepayment" => PaymentRule::Prepayment { amount, per_guest },
        "guarantee" => PaymentRule::Guarantee {
            fee: amount,
            per_guest,
        },
        other => {
            return Err(report.error(
                kind,
                &key("payment"),
                format!("`{other}` is not none, deposit, prepayment or guarantee"),
            ));
        }
    };
    Ok(rule)
}

/// Refuses plain-http origins (`http://localhost…`, for front-ends in
/// development) in a file meant for a production server.
pub fn refuse_plain_http_origins(
    file: &str,
    definitions: &[VenueDefinition],
) -> Result<(), ImportError> {
    for definition in definitions {
        if let Some(origin) = definition
            .allowed_origins
            .iter()
            .find(|o| o.is_plain_http())
        {
            return Err(ImportError::Syntax {
                file: file.to_owned(),
                reason: format!(
                    "venue `{}`: allowed_origins: `{origin}` is plain http, which only a development server accepts",
                    definition.slug
                ),
            });
        }
    }
    Ok(())
}

/// The venue seeded into an empty development database.
pub const DEMO_VENUE: &str = include_str!("demo_venue.toml");

pub fn demo_venue() -> Result<Vec<VenueDefinition>, ImportError> {
    parse("demo_venue.toml", DEMO_VENUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_venue_file_is_valid() {
        let venues = demo_venue().expect("valid demo");
        assert_eq!(venues.len(), 2);
        let (bistro, clinic) = (&venues[0], &venues[1]);
        assert!(bistro.resources.len() >= 3);
        let slugs = |v: &VenueDefinition| -> Vec<String> {
            v.services.iter().map(|s| s.slug.to_string()).collect()
        };
        assert_eq!(slugs(bistro), ["lunch", "dinner"]);
        assert_eq!(slugs(clinic), ["consult", "treatment"]);
        assert!(
            clinic.resources.iter().all(|r| r.hours.is_some()),
            "each practitioner works hours of their own"
        );
        assert_eq!(clinic.exceptions.len(), 1);
        assert_eq!(bistro.combinations.len(), 1, "tables 3 and 4 together");
        assert_eq!(bistro.adjacent.len(), 1, "tables 1 and 2 side by side");
    }

    #[test]
    fn an_unknown_time_zone_names_file_line_and_key() {
        let text = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"Mars/Olympus\"\n";
        let error = parse("venues.toml", text).expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "venues.toml:4: venue[0].time_zone: `Mars/Olympus` is not an IANA time zone (like Europe/Amsterdam)"
        );
    }

    #[test]
    fn a_bad_opening_interval_names_its_day() {
        let text = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\n[venue.opening_hours]\nfriday = [\"18:00-17:00\"]\n";
        let error = parse("v.toml", text).expect_err("invalid").to_string();
        assert!(
            error.starts_with("v.toml:6: venue[0].opening_hours.friday:"),
            "{error}"
        );
    }

    #[test]
    fn a_too_large_resource_and_unknown_keys_are_refused() {
        let text = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\n[[venue.resource]]\nslug = \"t1\"\nname = \"T1\"\ncapacity = 0\n";
        let error = parse("v.toml", text).expect_err("invalid").to_string();
        assert!(
            error.starts_with("v.toml:8: venue[0].resource[0].capacity"),
            "{error}"
        );
        let text = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\ncolour = \"red\"\n";
        let error = parse("v.toml", text).expect_err("invalid").to_string();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn waitlist_settings_are_read_and_checked_with_their_key() {
        let venue = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\n";
        let venues = parse("v.toml", venue).expect("valid");
        assert_eq!(
            venues[0].waitlist,
            domain::waitlist::WaitlistRules::default()
        );
        let text = format!("{venue}waitlist_offer_minutes = 15\nwaitlist_retention_days = 0\n");
        let venues = parse("v.toml", &text).expect("valid");
        assert_eq!(
            (
                venues[0].waitlist.offer_minutes,
                venues[0].waitlist.retention_days
            ),
            (15, 0)
        );
        let text = format!("{venue}waitlist_offer_minutes = 2\n");
        let error = parse("v.toml", &text).expect_err("too short").to_string();
        assert!(
            error.starts_with("v.toml:5: venue[0].waitlist_offer_minutes"),
            "{error}"
        );
        let text = format!("{venue}waitlist_retention_days = 91\n");
        let error = parse("v.toml", &text).expect_err("too long").to_string();
        assert!(
            error.starts_with("v.toml:5: venue[0].waitlist_retention_days"),
            "{error}"
        );
    }

    #[test]
    fn origins_and_opt_ins_are_checked_with_their_key() {
        let venue = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\n";
        let text = format!(
            "{venue}allowed_origins = [\"https://Shop.example\", \"http://localhost:5173\"]\nconsent_purposes = [\"newsletter\"]\n"
        );
        let venues = parse("v.toml", &text).expect("valid");
        let origins: Vec<&str> = venues[0]
            .allowed_origins
            .iter()
            .map(domain::Origin::as_str)
            .collect();
        assert_eq!(origins, ["http://localhost:5173", "https://shop.example"]);
        assert_eq!(venues[0].opt_ins.to_text(), "newsletter");
        assert!(refuse_plain_http_origins("v.toml", &venues).is_err());

        let text = format!("{venue}allowed_origins = [\"https://shop.example/book\"]\n");
        let error = parse("v.toml", &text).expect_err("a path").to_string();
        assert!(
            error.starts_with("v.toml:5: venue[0].allowed_origins"),
            "{error}"
        );
        let text = format!("{venue}consent_purposes = [\"booking\"]\n");
        let error = parse("v.toml", &text).expect_err("no opt-in").to_string();
        assert!(error.contains("venue[0].consent_purposes"), "{error}");
        let defaults = parse("v.toml", venue).expect("valid");
        assert_eq!(defaults[0].opt_ins.to_text(), "newsletter marketing");
    }

    #[test]
    fn duplicate_slugs_are_refused() {
        let text = "[[venue]]\nslug = \"a\"\nname = \"A\"\ntime_zone = \"UTC\"\n[[venue]]\nslug = \"a\"\nname = \"B\"\ntime_zone = \"UTC\"\n";
        let error = parse("v.toml", text).expect_err("invalid").to_string();
        assert!(error.starts_with("v.toml:6: venue[1].slug"), "{error}");
    }

    #[test]
    fn closures_are_read_on_the_venue_clock_and_checked_against_the_file() {
        let head = "[[venue]]\nslug = \"v\"\nname = \"V\"\ntime_zone = \"Europe/Amsterdam\"\n\
                    [[venue.resource]]\nslug = \"t1\"\nname = \"T\"\ncapacity = 2\n";
        let good = format!(
            "{head}[[venue.closure]]\nfrom = \"2026-12-24T18:00\"\nuntil = \"2026-12-27\"\n\
             resource = \"t1\"\nreason = \" Kerst \"\n"
        );
        let venues = parse("v.toml", &good).expect("valid file");
        let closure = &venues[0].closures[0];
        assert_eq!(
            domain::closure::local_text(closure.from),
            "2026-12-24T18:00"
        );
        assert_eq!(
            domain::closure::local_text(closure.until),
            "2026-12-27T00:00"
        );
        assert_eq!(closure.resource.as_ref().map(Slug::as_str), Some("t1"));
        assert_eq!(closure.reason.as_deref(), Some("Kerst"));

        let unknown = format!(
            "{head}[[venue.closure]]\nfrom = \"2026-12-24\"\nuntil = \"2026-12-25\"\nresource = \"t9\"\n"
        );
        let error = parse("v.toml", &unknown).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("v.toml:12: venue[0].closure[0].resource: `t9` is no resource of this venue")
        );
    }

    #[test]
    fn combinations_and_pacing_are_read_and_bad_ones_named_by_line_and_key() {
        let head = "[[venue]]\nslug = \"v\"\nname = \"V\"\ntime_zone = \"UTC\"\n\
                    adjacent = [[\"t1\", \"t2\"]]\nmax_covers_per_hour = 40\n\
                    [[venue.resource]]\nslug = \"t1\"\nname = \"T\"\ncapacity = 2\n\
                    [[venue.resource]]\nslug = \"t2\"\nname = \"T\"\ncapacity = 2\n";
        let good = format!(
            "{head}[[venue.combination]]\nresources = [\"t2\", \"t1\"]\ncapacity = 5\nmin_party = 4\n"
        );
        let venues = parse("v.toml", &good).expect("valid file");
        let venue = &venues[0];
        assert_eq!(venue.combinations.len(), 1);
        assert_eq!(venue.combinations[0].resources[0].as_str(), "t2");
        assert_eq!(venue.combinations[0].min_party, Some(4));
        assert_eq!(venue.adjacent.len(), 1);
        assert_eq!(venue.max_joined, 3);
        assert_eq!(venue.pacing.max_covers_per_hour, Some(40));
        assert_eq!(venue.pacing.max_covers_per_slot, None);

        for (combination, expected) in [
            (
                "resources = [\"t1\", \"t9\"]\ncapacity = 4\n",
                "v.toml:16: venue[0].combination[0].resources: `t9` is no resource of this venue",
            ),
            (
                "resources = [\"t1\"]\ncapacity = 4\n",
                "v.toml:16: venue[0].combination[0].resources: a combination joins at least two tables",
            ),
            (
                "resources = [\"t1\", \"t1\"]\ncapacity = 4\n",
                "v.toml:16: venue[0].combination[0].resources: `t1` appears twice in one combination",
            ),
            (
                "resources = [\"t1\", \"t2\"]\ncapacity = 4\nmin_party = 5\n",
                "v.toml:18: venue[0].combination[0].min_party: must be between 1 and the combination's capacity",
            ),
        ] {
            let file = format!("{head}[[venue.combination]]\n{combination}");
            let error = parse("v.toml", &file).err().map(|e| e.to_string());
            assert_eq!(error.as_deref(), Some(expected));
        }
        let twice = format!(
            "{head}[[venue.combination]]\nresources = [\"t1\", \"t2\"]\ncapacity = 4\n\
             [[venue.combination]]\nresources = [\"t2\", \"t1\"]\ncapacity = 4\n"
        );
        let error = parse("v.toml", &twice).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "v.toml:19: venue[0].combination[1].resources: the same tables are combined twice"
            )
        );
        let capped = head.replace("max_covers_per_hour = 40", "max_covers_per_hour = 0");
        let error = parse("v.toml", &capped).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("v.toml:6: venue[0].max_covers_per_hour: must be between 1 and 100000 guests")
        );
    }
}
