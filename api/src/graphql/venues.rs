//! Venues over GraphQL: looked up by slug for a booking widget, and set up
//! by managers and admins with the settings of `kluis venue import`.
//! Unlike a venue file, which is the whole truth about the venues it lists,
//! `saveVenue` changes only what it is given: a setting left out keeps its
//! stored value.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::Utc;
use domain::ports::VenueRepository;
use domain::venue::{check_display_name, parse_time_zone};
use domain::{
    Country, DomainError, Minutes, OpeningInterval, OptIns, Origin, PartySize, Resource,
    ResourceKind, Slug, VenueId, WeeklySchedule,
};
use store::{ResourceChange, VenueChanges};

use super::context::{blocking, store};
use super::coordinates;
use super::enums::OptInPurpose;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};
use super::payload::{Checks, outcome};
use super::scalars::LocalTime;
use super::venue_types::{FieldRuleValue, PaymentKind, ResourceKindValue, VenueObject, Weekday};

#[derive(InputObject)]
pub struct OpeningHoursInput {
    pub weekday: Weekday,
    pub opens: LocalTime,
    /// `24:00` is the midnight that ends the day.
    pub closes: LocalTime,
}

#[derive(InputObject)]
pub struct ResourceInput {
    /// Matches the resource on later saves.
    pub slug: String,
    pub name: String,
    /// Left out: the resource keeps its kind (a new one is a table).
    pub kind: Option<ResourceKindValue>,
    /// The largest party it takes.
    pub capacity: i32,
    /// Weekly hours of its own, replacing the venue's opening hours for
    /// it (a practitioner who works Tuesday mornings). Left out, the
    /// stored hours stay (a new resource follows the venue's); null makes
    /// it follow the venue's again; an empty list: it works no weekday
    /// (only on exceptions).
    pub hours: MaybeUndefined<Vec<OpeningHoursInput>>,
}

/// One stretch of working time within a day.
#[derive(InputObject)]
pub struct TimeIntervalInput {
    pub opens: LocalTime,
    /// `24:00` is the midnight that ends the day.
    pub closes: LocalTime,
}

/// A date on which the venue, or one resource, works other hours than
/// its weekly ones.
#[derive(InputObject)]
pub struct HoursExceptionInput {
    /// The venue's calendar date, `YYYY-MM-DD`.
    pub date: String,
    /// The hours worked that day instead; an empty list closes all day.
    pub hours: Vec<TimeIntervalInput>,
    /// The slug of one resource of this venue (as saved); left out or
    /// null, the venue itself.
    pub resource_slug: Option<String>,
}

/// One thing a venue offers to book, e.g. lunch for 90 minutes or a
/// 45-minute treatment with one of two practitioners.
#[derive(InputObject)]
pub struct ServiceInput {
    /// Matches the service on later saves.
    pub slug: String,
    pub name: String,
    /// How long a booking of it lasts (at least 1).
    pub duration_minutes: i32,
    /// How long its resource stays blocked afterwards; left out, the
    /// venue's buffer.
    pub buffer_minutes: Option<i32>,
    /// The smallest party it takes (1 when left out).
    pub min_party_size: Option<i32>,
    /// The largest party it takes; left out, the venue's largest.
    pub max_party_size: Option<i32>,
    /// Slugs of the resources that deliver it; left out or empty, every
    /// resource of the venue.
    pub resource_slugs: Option<Vec<String>>,
    /// A payment rule of its own; left out, the venue's.
    pub payment: Option<ServicePaymentInput>,
}

/// A service's own payment rule, whole.
#[derive(InputObject)]
pub struct ServicePaymentInput {
    pub kind: PaymentKind,
    /// In the currency's minor unit (cents); required unless `NONE`.
    pub amount: Option<i32>,
    /// ISO 4217 (EUR when left out).
    pub currency: Option<String>,
    pub per_guest: Option<bool>,
}

/// A period without bookings, on the venue's clock.
#[derive(InputObject)]
pub struct ClosureInput {
    /// The first moment closed, on the venue's wall clock:
    /// `YYYY-MM-DDTHH:MM`, or a date `YYYY-MM-DD` for its 00:00.
    pub from: String,
    /// The first moment open again, likewise: a closure of 25 December
    /// alone is `2026-12-25` to `2026-12-26`. Must come after `from`.
    pub until: String,
    /// One resource of this venue; left out or null, the whole venue.
    pub resource_id: Option<ID>,
    /// Why, for staff only (at most 200 characters).
    pub reason: Option<String>,
}

/// Tables given to one party together.
#[derive(InputObject)]
pub struct CombinationInput {
    /// Slugs of two or more of the venue's resources, the primary one
    /// first.
    pub resources: Vec<String>,
    /// What they seat together.
    pub capacity: i32,
    /// The smallest party given them; left out, one more than the largest
    /// of them seats.
    pub min_party: Option<i32>,
}

/// A venue's settings. Saving updates the venue with this slug (its
/// managers and admins) or creates it (admins of every venue).
///
/// Every field but `slug` may be left out, and a field left out (or null)
/// keeps its stored value: an edit of one setting never resets another.
/// Only `country` and `sameDayCutoff` are cleared by an explicit null. A
/// new venue needs `name` and `timeZone`; what else it leaves out takes the
/// defaults of a venue file (e.g. `retentionDays` 365, no payment, every
/// guest field optional, both opt-ins, no origins, closed, no resources).
/// `openingHours`, when given, replaces every interval (an empty list
/// closes the venue); `resources`, when given, is the venue's whole list:
/// resources are matched by slug and those left out are retired (they keep
/// their past bookings). Every field at fault is reported at once.
#[derive(InputObject)]
pub struct VenueInput {
    pub slug: String,
    pub name: Option<String>,
    /// IANA name, e.g. `Europe/Amsterdam`.
    pub time_zone: Option<String>,
    /// ISO 3166 code: how phone numbers without a country code are read;
    /// null removes it.
    pub country: MaybeUndefined<String>,
    pub slot_interval_minutes: Option<i32>,
    pub booking_duration_minutes: Option<i32>,
    pub buffer_minutes: Option<i32>,
    pub min_notice_minutes: Option<i32>,
    /// Local time after which same-day bookings close; null removes the
    /// cut-off.
    pub same_day_cutoff: MaybeUndefined<LocalTime>,
    pub cancel_deadline_minutes: Option<i32>,
    pub max_party_size: Option<i32>,
    pub max_advance_days: Option<i32>,
    /// Replaces every opening interval; an empty list closes the venue.
    pub opening_hours: Option<Vec<OpeningHoursInput>>,
    /// The venue's whole list of resources: matched by slug, and those
    /// left out retired.
    pub resources: Option<Vec<ResourceInput>>,
    /// Replaces the venue's whole list of closures (an empty list removes
    /// them all); left out, they stay. A closure over existing bookings
    /// does not cancel them: they come back in
    /// `SaveVenuePayload.reservationsInClosures`.
    pub closures: Option<Vec<ClosureInput>>,
    /// Replaces every dated exception to the working plans of the venue and
    /// its resources (an empty list removes them all); left out, they
    /// stay. At most one per date for the venue and for each resource.
    /// Bookings the saved hours leave outside their resource's working
    /// hours are kept, and come back in
    /// `SaveVenuePayload.reservationsOutsideHours`.
    pub exceptions: Option<Vec<HoursExceptionInput>>,
    /// Replaces what the venue offers to book (at most 50): services are
    /// matched by slug (their ids stay) and those left out retired (their
    /// bookings keep them). A venue with services takes bookings for one
    /// of them only; an empty list books as before, without services.
    pub services: Option<Vec<ServiceInput>>,
    /// What guests pay when they book; a part left out keeps its value.
    pub payment: Option<PaymentRuleInput>,
    /// Which guest fields the venue collects; a field left out keeps its
    /// rule.
    pub guest_fields: Option<GuestFieldsInput>,
    /// What the booking form offers to opt in to; replaces the list (an
    /// empty list offers none).
    pub consent_purposes: Option<Vec<OptInPurpose>>,
    /// Web origins (`https://host[:port]`, no path) whose pages may call
    /// kluis from a browser for this venue; replaces the list (at most 20).
    /// `http://localhost…` only on a development server.
    pub allowed_origins: Option<Vec<String>>,
    /// Days after a guest's last visit until their personal data is
    /// anonymized (1 to 3650); left out, the stored limit stays (365 for a
    /// new venue).
    pub retention_days: Option<i32>,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped (0 to 540); left out, the stored
    /// value stays (30 for a new venue).
    pub payment_data_days: Option<i32>,
    /// Minutes a waitlist offer of a freed table can be claimed (5 to
    /// 1440); left out, the stored value stays (30 for a new venue).
    pub waitlist_offer_minutes: Option<i32>,
    /// Days after its date until a waitlist entry is deleted with its
    /// personal data (0 to 90); left out, the stored value stays (7 for a
    /// new venue).
    pub waitlist_retention_days: Option<i32>,
    /// Fixed combinations of tables for larger parties; replaces the
    /// venue's list (an empty list removes them). Checked against the
    /// venue's resources as saved.
    pub combinations: Option<Vec<CombinationInput>>,
    /// Pairs of tables (two slugs each) that stand next to each other;
    /// replaces the venue's list.
    pub adjacent_tables: Option<Vec<Vec<String>>>,
    /// The most adjacent tables one booking joins (2 to 4; 3 for a new
    /// venue).
    pub max_joined_tables: Option<i32>,
    /// The most guests whose bookings may start in one slot; null removes
    /// the cap.
    pub max_covers_per_slot: MaybeUndefined<i32>,
    /// The most guests whose bookings may start in one hour of the venue's
    /// clock; null removes the cap.
    pub max_covers_per_hour: MaybeUndefined<i32>,
}

/// Which guest fields a venue collects; a field left out keeps its rule.
/// The name is always required.
#[derive(InputObject)]
pub struct GuestFieldsInput {
    pub email: Option<FieldRuleValue>,
    pub phone: Option<FieldRuleValue>,
    pub notes: Option<FieldRuleValue>,
}

fn field_rule(value: FieldRuleValue) -> domain::privacy::FieldRule {
    match value {
        FieldRuleValue::Required => domain::privacy::FieldRule::Required,
        FieldRuleValue::Optional => domain::privacy::FieldRule::Optional,
        FieldRuleValue::NotCollected => domain::privacy::FieldRule::NotCollected,
    }
}

/// A venue's payment rule; a part left out keeps its stored value. A
/// deposit, prepayment or guarantee needs an amount and a currency unless
/// the venue already has them.
#[derive(InputObject)]
pub struct PaymentRuleInput {
    pub kind: Option<PaymentKind>,
    /// In the currency's minor unit (cents).
    pub amount: Option<i32>,
    /// ISO 4217, e.g. EUR.
    pub currency: Option<String>,
    pub per_guest: Option<bool>,
    /// How long an unpaid booking holds its slot (15 for a new venue).
    pub hold_minutes: Option<i32>,
}

impl From<PaymentKind> for store::PaymentKind {
    fn from(kind: PaymentKind) -> Self {
        match kind {
            PaymentKind::None => Self::None,
            PaymentKind::Deposit => Self::Deposit,
            PaymentKind::Prepayment => Self::Prepayment,
            PaymentKind::Guarantee => Self::Guarantee,
        }
    }
}

impl From<store::PaymentKind> for PaymentKind {
    fn from(kind: store::PaymentKind) -> Self {
        match kind {
            store::PaymentKind::None => Self::None,
            store::PaymentKind::Deposit => Self::Deposit,
            store::PaymentKind::Prepayment => Self::Prepayment,
            store::PaymentKind::Guarantee => Self::Guarantee,
        }
    }
}

fn invalid(field: &str, reason: impl std::fmt::Display) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    let field = field.to_owned();
    api_error(Code::BadUserInput, format!("{field}: {reason}"))
        .extend_with(move |_, extensions| extensions.set("field", field.as_str()))
}

fn minutes(value: Option<i32>, field: &'static str, min: u32, max: u32) -> Result<Option<Minutes>> {
    value
        .map(|raw| Minutes::parse(field, i64::from(raw), min, max).or_gql())
        .transpose()
}

fn within(value: Option<i32>, field: &str, min: u32, max: u32) -> Result<Option<u32>> {
    value
        .map(|raw| {
            u32::try_from(raw)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| invalid(field, format!("must be between {min} and {max}")))
        })
        .transpose()
}

fn weekday_index(day: Weekday) -> usize {
    match day {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

fn resource_kind(kind: ResourceKindValue) -> ResourceKind {
    match kind {
        ResourceKindValue::Table => ResourceKind::Table,
        ResourceKindValue::Room => ResourceKind::Room,
        ResourceKindValue::Practitioner => ResourceKind::Practitioner,
        ResourceKindValue::Other => ResourceKind::Other,
    }
}

/// How far a venue input may go: a production server takes no plain-http
/// origins.
#[derive(Clone, Copy)]
pub struct Strictness {
    pub plain_http_origins: bool,
}

/// Checks each field a venue input gives, noting every field at fault in
/// `checks`; what it leaves out stays `None` and keeps its stored value.
pub fn changes(input: VenueInput, strictness: Strictness, checks: &mut Checks) -> VenueChanges {
    let limit = domain::BookingRules::MAX_DURATION_MINUTES;
    let long = 60 * 24 * 60;
    let payment = input.payment.as_ref();
    let fields = input.guest_fields.as_ref();
    let mut changes = VenueChanges {
        name: checks
            .take(
                input
                    .name
                    .as_deref()
                    .map(check_display_name)
                    .transpose()
                    .map_err(|reason| invalid("name", reason)),
            )
            .flatten(),
        time_zone: checks
            .take(
                input
                    .time_zone
                    .as_deref()
                    .map(parse_time_zone)
                    .transpose()
                    .map_err(|reason| invalid("timeZone", reason)),
            )
            .flatten(),
        country: match &input.country {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(raw) => checks
                .take(Country::parse(raw).map_err(|reason| invalid("country", reason)))
                .map(Some),
        },
        slot_interval: checks
            .take(minutes(
                input.slot_interval_minutes,
                "slotIntervalMinutes",
                1,
                limit,
            ))
            .flatten(),
        booking_duration: checks
            .take(minutes(
                input.booking_duration_minutes,
                "bookingDurationMinutes",
                1,
                limit,
            ))
            .flatten(),
        buffer: checks
            .take(minutes(input.buffer_minutes, "bufferMinutes", 0, limit))
            .flatten(),
        min_notice: checks
            .take(minutes(
                input.min_notice_minutes,
                "minNoticeMinutes",
                0,
                long,
            ))
            .flatten(),
        same_day_cutoff: match &input.same_day_cutoff {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(time) => Some(Some(time.0)),
        },
        cancel_deadline: checks
            .take(minutes(
                input.cancel_deadline_minutes,
                "cancelDeadlineMinutes",
                0,
                long,
            ))
            .flatten(),
        max_party_size: checks
            .take(within(
                input.max_party_size,
                "maxPartySize",
                1,
                PartySize::HARD_MAX,
            ))
            .flatten(),
        max_advance_days: checks
            .take(within(input.max_advance_days, "maxAdvanceDays", 1, 3660))
            .flatten(),
        payment_kind: payment.and_then(|p| p.kind).map(Into::into),
        payment_amount: checks
            .take(
                payment
                    .and_then(|p| p.amount)
                    .map(|amount| {
                        domain::payments::Money::new(
                            i64::from(amount),
                            domain::payments::Currency::parse("EUR").or_gql()?,
                        )
                        .map(|_| i64::from(amount))
                        .map_err(|_| {
                            invalid("payment.amount", "must be between 0 and 10,000,000.00")
                        })
                    })
                    .transpose(),
            )
            .flatten(),
        payment_currency: checks
            .take(
                payment
                    .and_then(|p| p.currency.as_deref())
                    .map(domain::payments::Currency::parse)
                    .transpose()
                    .map_err(|_| {
                        invalid("payment.currency", "must be a three-letter ISO 4217 code")
                    }),
            )
            .flatten(),
        payment_per_guest: payment.and_then(|p| p.per_guest),
        payment_hold: checks
            .take(minutes(
                payment.and_then(|p| p.hold_minutes),
                "payment.holdMinutes",
                1,
                24 * 60,
            ))
            .flatten(),
        collect_email: fields.and_then(|f| f.email).map(field_rule),
        collect_phone: fields.and_then(|f| f.phone).map(field_rule),
        collect_notes: fields.and_then(|f| f.notes).map(field_rule),
        retention_days: checks
            .take(
                input
                    .retention_days
                    .map(|days| domain::Venue::check_retention_days(i64::from(days)))
                    .transpose()
                    .map_err(|reason| invalid("retentionDays", reason)),
            )
            .flatten(),
        payment_data_days: checks
            .take(
                input
                    .payment_data_days
                    .map(|days| domain::Venue::check_payment_data_days(i64::from(days)))
                    .transpose()
                    .map_err(|reason| invalid("paymentDataDays", reason)),
            )
            .flatten(),
        opt_ins: input.consent_purposes.as_ref().and_then(|listed| {
            checks.take(
                OptIns::from_purposes(listed.iter().map(|p| (*p).into()))
                    .map_err(|reason| invalid("consentPurposes", reason)),
            )
        }),
        allowed_origins: input
            .allowed_origins
            .as_ref()
            .and_then(|listed| origins(listed, strictness, checks)),
        schedule: None,
        resources: None,
        closures: None,
        waitlist_offer_minutes: checks
            .take(
                input
                    .waitlist_offer_minutes
                    .map(|minutes| {
                        domain::waitlist::WaitlistRules::check_offer_minutes(i64::from(minutes))
                    })
                    .transpose()
                    .map_err(|reason| invalid("waitlistOfferMinutes", reason)),
            )
            .flatten(),
        waitlist_retention_days: checks
            .take(
                input
                    .waitlist_retention_days
                    .map(|days| {
                        domain::waitlist::WaitlistRules::check_retention_days(i64::from(days))
                    })
                    .transpose()
                    .map_err(|reason| invalid("waitlistRetentionDays", reason)),
            )
            .flatten(),
        combinations: input
            .combinations
            .as_ref()
            .and_then(|listed| combinations(listed, checks)),
        adjacent: input
            .adjacent_tables
            .as_ref()
            .and_then(|listed| adjacent(listed, checks)),
        max_joined: checks
            .take(within(
                input.max_joined_tables,
                "maxJoinedTables",
                2,
                domain::combination::MAX_JOINED,
            ))
            .flatten(),
        max_covers_per_slot: cap(&input.max_covers_per_slot, "maxCoversPerSlot", checks),
        max_covers_per_hour: cap(&input.max_covers_per_hour, "maxCoversPerHour", checks),
        exceptions: input
            .exceptions
            .as_ref()
            .and_then(|listed| exceptions(listed, checks)),
        services: input
            .services
            .as_ref()
            .and_then(|listed| services(listed, checks)),
    };
    if let Some(opening_hours) = &input.opening_hours {
        changes.schedule = schedule(opening_hours, "openingHours", checks);
    }
    if let Some(listed) = &input.resources {
        changes.resources = resources(listed, checks);
    }
    changes
}

/// A pacing cap: left out keeps it, null removes it.
fn cap(value: &MaybeUndefined<i32>, field: &str, checks: &mut Checks) -> Option<Option<u32>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(raw) => checks
            .take(
                domain::Pacing::check_cap(i64::from(*raw)).map_err(|reason| invalid(field, reason)),
            )
            .map(Some),
    }
}

/// Each combination's own fields; how they fit the venue's resources is
/// checked when saving, against the resources as saved.
fn combinations(
    listed: &[CombinationInput],
    checks: &mut Checks,
) -> Option<Vec<domain::combination::CombinationDefinition>> {
    if listed.len() > domain::combination::MAX_COMBINATIONS {
        checks.take::<()>(Err(invalid(
            "combinations",
            format!(
                "a venue has at most {} combinations",
                domain::combination::MAX_COMBINATIONS
            ),
        )));
        return None;
    }
    let mut fine = true;
    let mut combinations = Vec::new();
    for (index, input) in listed.iter().enumerate() {
        let field = |name: &str| format!("combinations.{index}.{name}");
        let resources = checks.take(
            input
                .resources
                .iter()
                .map(|raw| {
                    Slug::parse(raw).map_err(|_| {
                        invalid(
                            &field("resources"),
                            format!(
                                "`{}` is no resource of this venue",
                                raw.chars().take(40).collect::<String>()
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>(),
        );
        let capacity = checks.take(
            Resource::check_capacity(i64::from(input.capacity))
                .map_err(|reason| invalid(&field("capacity"), reason)),
        );
        let min_party = checks.take(within(
            input.min_party,
            &field("minParty"),
            1,
            PartySize::HARD_MAX,
        ));
        match (resources, capacity, min_party) {
            (Some(resources), Some(capacity), Some(min_party)) => {
                combinations.push(domain::combination::CombinationDefinition {
                    resources,
                    capacity,
                    min_party,
                });
            }
            _ => fine = false,
        }
    }
    fine.then_some(combinations)
}

fn adjacent(listed: &[Vec<String>], checks: &mut Checks) -> Option<Vec<(Slug, Slug)>> {
    let mut fine = true;
    let mut pairs = Vec::new();
    for (index, pair) in listed.iter().enumerate() {
        let field = format!("adjacentTables.{index}");
        let checked = match pair.as_slice() {
            [a, b] => Slug::parse(a)
                .and_then(|a| Ok((a, Slug::parse(b)?)))
                .map_err(|_| invalid(&field, "names a table this venue does not have")),
            _ => Err(invalid(&field, "a pair names exactly two tables")),
        };
        match checks.take(checked) {
            Some(pair) => pairs.push(pair),
            None => fine = false,
        }
    }
    fine.then_some(pairs)
}

fn origins(listed: &[String], strictness: Strictness, checks: &mut Checks) -> Option<Vec<Origin>> {
    let mut fine = true;
    for (index, raw) in listed.iter().enumerate() {
        let field = format!("allowedOrigins.{index}");
        let checked = Origin::parse(raw).and_then(|origin| {
            if origin.is_plain_http() && !strictness.plain_http_origins {
                Err(format!(
                    "`{origin}` is plain http, which only a development server accepts"
                ))
            } else {
                Ok(origin)
            }
        });
        fine &= checks
            .take(checked.map_err(|reason| invalid(&field, reason)))
            .is_some();
    }
    if !fine {
        return None;
    }
    checks.take(
        Origin::check_list(listed.iter().map(String::as_str))
            .map_err(|reason| invalid("allowedOrigins", reason)),
    )
}

fn schedule(
    opening_hours: &[OpeningHoursInput],
    prefix: &str,
    checks: &mut Checks,
) -> Option<WeeklySchedule> {
    let most = 7 * domain::hours::MAX_INTERVALS_PER_DAY;
    if opening_hours.len() > most {
        checks.take::<()>(Err(invalid(
            prefix,
            format!("list at most {most} intervals"),
        )));
        return None;
    }
    let mut days: [Vec<OpeningInterval>; 7] = Default::default();
    let mut fine = true;
    for (index, hours) in opening_hours.iter().enumerate() {
        let field = format!("{prefix}.{index}.closes");
        match checks.take(
            OpeningInterval::new(hours.opens.0, hours.closes.0)
                .map_err(|reason| invalid(&field, reason)),
        ) {
            Some(interval) => {
                if let Some(day) = days.get_mut(weekday_index(hours.weekday)) {
                    day.push(interval);
                }
            }
            None => fine = false,
        }
    }
    if !fine {
        return None;
    }
    checks.take(WeeklySchedule::new(days).map_err(|reason| invalid(prefix, reason)))
}

/// Checks each service's own fields, noting every one at fault; the store
/// checks them against the venue as saved (party sizes, resources).
fn services(listed: &[ServiceInput], checks: &mut Checks) -> Option<Vec<store::ServiceDefinition>> {
    use domain::payments::{Currency, Money, PaymentRule};
    if listed.len() > domain::service::MAX_PER_VENUE {
        checks.take::<()>(Err(invalid(
            "services",
            format!(
                "a venue offers at most {} services",
                domain::service::MAX_PER_VENUE
            ),
        )));
        return None;
    }
    let mut services: Vec<store::ServiceDefinition> = Vec::new();
    let mut fine = true;
    for (index, input) in listed.iter().enumerate() {
        let field = |name: &str| format!("services.{index}.{name}");
        let count = |value: i32, name: &str| {
            u32::try_from(value).map_err(|_| invalid(&field(name), "must not be negative"))
        };
        let slug = checks.take(Slug::parse(&input.slug).map_err(|r| invalid(&field("slug"), r)));
        let name =
            checks.take(check_display_name(&input.name).map_err(|r| invalid(&field("name"), r)));
        let duration = checks.take(count(input.duration_minutes, "durationMinutes"));
        let buffer = checks.take(
            input
                .buffer_minutes
                .map(|b| count(b, "bufferMinutes"))
                .transpose(),
        );
        let min_party = checks.take(count(input.min_party_size.unwrap_or(1), "minPartySize"));
        let max_party = checks.take(
            input
                .max_party_size
                .map(|m| count(m, "maxPartySize"))
                .transpose(),
        );
        let listed_resources = input.resource_slugs.as_deref().unwrap_or_default();
        let resources = if listed_resources.len() > MAX_SERVICE_RESOURCES {
            checks.take::<()>(Err(invalid(&field("resourceSlugs"), "too many resources")));
            None
        } else {
            checks.take(
                listed_resources
                    .iter()
                    .map(|raw| Slug::parse(raw))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|r| invalid(&field("resourceSlugs"), r)),
            )
        };
        let payment = match &input.payment {
            None => Some(None),
            Some(rule) => {
                let kind: store::PaymentKind = rule.kind.into();
                let money = || -> Result<Money, async_graphql::Error> {
                    let currency = Currency::parse(rule.currency.as_deref().unwrap_or("EUR"))
                        .map_err(|e| invalid(&field("payment.currency"), e))?;
                    let amount = rule.amount.ok_or_else(|| {
                        invalid(&field("payment.amount"), "a payment rule needs an amount")
                    })?;
                    Money::new(i64::from(amount), currency)
                        .map_err(|e| invalid(&field("payment.amount"), e))
                };
                let per_guest = rule.per_guest.unwrap_or(false);
                match kind {
                    store::PaymentKind::None => Some(Some(PaymentRule::None)),
                    store::PaymentKind::Deposit => checks
                        .take(money())
                        .map(|amount| Some(PaymentRule::Deposit { amount, per_guest })),
                    store::PaymentKind::Prepayment => checks
                        .take(money())
                        .map(|amount| Some(PaymentRule::Prepayment { amount, per_guest })),
                    store::PaymentKind::Guarantee => checks
                        .take(money())
                        .map(|fee| Some(PaymentRule::Guarantee { fee, per_guest })),
                }
            }
        };
        match (
            slug, name, duration, buffer, min_party, max_party, resources, payment,
        ) {
            (
                Some(slug),
                Some(name),
                Some(duration),
                Some(buffer),
                Some(min_party),
                Some(max_party),
                Some(resources),
                Some(payment),
            ) => services.push(store::ServiceDefinition {
                slug,
                name,
                duration,
                buffer,
                min_party,
                max_party,
                resources,
                payment,
            }),
            _ => fine = false,
        }
    }
    fine.then_some(services)
}

/// How many resources one service may name: more than any venue has.
const MAX_SERVICE_RESOURCES: usize = 500;

/// Checks each exception, noting every field at fault. Resources are named
/// by slug and matched by the store against the venue's resources as
/// saved, so one save can add a practitioner and their day off.
fn exceptions(
    listed: &[HoursExceptionInput],
    checks: &mut Checks,
) -> Option<Vec<store::ExceptionDefinition>> {
    use domain::hours;
    if listed.len() > hours::MAX_PER_VENUE {
        checks.take::<()>(Err(invalid(
            "exceptions",
            format!("a venue has at most {} exceptions", hours::MAX_PER_VENUE),
        )));
        return None;
    }
    let mut exceptions: Vec<store::ExceptionDefinition> = Vec::new();
    let mut fine = true;
    for (index, input) in listed.iter().enumerate() {
        let field = |name: &str| format!("exceptions.{index}.{name}");
        let date = checks
            .take(hours::parse_date(&input.date).map_err(|reason| invalid(&field("date"), reason)));
        let intervals = if input.hours.len() > hours::MAX_INTERVALS_PER_DAY {
            checks.take::<()>(Err(invalid(
                &field("hours"),
                format!(
                    "a day has at most {} intervals",
                    hours::MAX_INTERVALS_PER_DAY
                ),
            )));
            None
        } else {
            let mut intervals = Vec::new();
            let mut each = true;
            for (position, interval) in input.hours.iter().enumerate() {
                match checks.take(
                    OpeningInterval::new(interval.opens.0, interval.closes.0).map_err(|reason| {
                        invalid(
                            &format!("exceptions.{index}.hours.{position}.closes"),
                            reason,
                        )
                    }),
                ) {
                    Some(interval) => intervals.push(interval),
                    None => each = false,
                }
            }
            if each {
                checks.take(
                    hours::check_day(intervals).map_err(|reason| invalid(&field("hours"), reason)),
                )
            } else {
                None
            }
        };
        let resource = match &input.resource_slug {
            None => Some(None),
            Some(raw) => checks
                .take(Slug::parse(raw).map_err(|reason| invalid(&field("resourceSlug"), reason)))
                .map(Some),
        };
        match (date, intervals, resource) {
            (Some(date), Some(intervals), Some(resource)) => {
                if exceptions
                    .iter()
                    .any(|e| e.date == date && e.resource == resource)
                {
                    checks.take::<()>(Err(invalid(
                        &field("date"),
                        "this date already has an exception for the same venue or resource",
                    )));
                    fine = false;
                } else {
                    exceptions.push(store::ExceptionDefinition {
                        resource,
                        date,
                        hours: intervals,
                    });
                }
            }
            _ => fine = false,
        }
    }
    fine.then_some(exceptions)
}

fn resources(listed: &[ResourceInput], checks: &mut Checks) -> Option<Vec<ResourceChange>> {
    let mut resources: Vec<ResourceChange> = Vec::new();
    let mut fine = true;
    for (index, resource) in listed.iter().enumerate() {
        let field = |name: &str| format!("resources.{index}.{name}");
        let slug = checks.take(
            Slug::parse(&resource.slug)
                .map_err(|reason| invalid(&field("slug"), reason))
                .and_then(|slug| {
                    if resources.iter().any(|r| r.slug == slug) {
                        Err(invalid(&field("slug"), format!("`{slug}` appears twice")))
                    } else {
                        Ok(slug)
                    }
                }),
        );
        let name = checks.take(
            check_display_name(&resource.name).map_err(|reason| invalid(&field("name"), reason)),
        );
        let capacity = checks.take(
            Resource::check_capacity(i64::from(resource.capacity))
                .map_err(|reason| invalid(&field("capacity"), reason)),
        );
        let hours = match &resource.hours {
            MaybeUndefined::Undefined => Some(None),
            MaybeUndefined::Null => Some(Some(None)),
            MaybeUndefined::Value(listed) => {
                schedule(listed, &field("hours"), checks).map(|week| Some(Some(week)))
            }
        };
        match (slug, name, capacity, hours) {
            (Some(slug), Some(name), Some(capacity), Some(hours)) => {
                resources.push(ResourceChange {
                    slug,
                    name,
                    kind: resource.kind.map(resource_kind),
                    capacity,
                    hours,
                })
            }
            _ => fine = false,
        }
    }
    fine.then_some(resources)
}

/// Checks each closure, noting every field at fault: `tz` is the venue's
/// time zone as saved, `resources` every resource of the venue.
fn closures(
    listed: &[ClosureInput],
    tz: chrono_tz::Tz,
    resources: &[Resource],
    checks: &mut Checks,
) -> Option<Vec<store::ClosureDefinition>> {
    use domain::closure;
    if listed.len() > closure::MAX_PER_VENUE {
        checks.take::<()>(Err(invalid(
            "closures",
            format!("a venue has at most {} closures", closure::MAX_PER_VENUE),
        )));
        return None;
    }
    let mut closures = Vec::new();
    let mut fine = true;
    for (index, input) in listed.iter().enumerate() {
        let field = |name: &str| format!("closures.{index}.{name}");
        let from = checks.take(
            closure::parse_local(&input.from).map_err(|reason| invalid(&field("from"), reason)),
        );
        let until = checks.take(
            closure::parse_local(&input.until).map_err(|reason| invalid(&field("until"), reason)),
        );
        let period = match (from, until) {
            (Some(from), Some(until)) => checks
                .take(
                    closure::check_period(tz, from, until)
                        .map_err(|reason| invalid(&field("until"), reason)),
                )
                .map(|()| (from, until)),
            _ => None,
        };
        let resource = match &input.resource_id {
            None => Some(None),
            Some(id) => checks.take(
                domain::ResourceId::parse(id)
                    .ok()
                    .and_then(|id| resources.iter().find(|r| r.id == id))
                    .map(|r| Some(r.slug.clone()))
                    .ok_or_else(|| {
                        invalid(&field("resourceId"), "this venue has no such resource")
                    }),
            ),
        };
        let reason = checks.take(
            closure::check_reason(input.reason.as_deref())
                .map_err(|reason| invalid(&field("reason"), reason)),
        );
        match (period, resource, reason) {
            (Some((from, until)), Some(resource), Some(reason)) => {
                closures.push(store::ClosureDefinition {
                    id: None,
                    resource,
                    from,
                    until,
                    reason,
                });
            }
            _ => fine = false,
        }
    }
    fine.then_some(closures)
}

/// What `saveVenue` answers: the venue as saved, or what to fix.
#[derive(async_graphql::SimpleObject, Default)]
pub struct SaveVenuePayload {
    pub venue: Option<VenueObject>,
    /// The venue's pending and confirmed bookings that fall inside one of
    /// the saved closures. They are not cancelled: the manager who saved
    /// decides what to tell those guests.
    pub reservations_in_closures: Option<Vec<super::types::ReservationObject>>,
    /// The venue's pending and confirmed bookings still to come that the
    /// saved opening hours, resource hours and exceptions leave outside the
    /// working hours of their resource. They are not cancelled either.
    pub reservations_outside_hours: Option<Vec<super::types::ReservationObject>>,
    /// What to fix before submitting again; empty when it went
    /// through.
    pub user_errors: Vec<super::payload::UserError>,
}

#[derive(Default)]
pub struct VenueQuery;

#[Object]
impl VenueQuery {
    /// One venue, by the slug of its venue file: where a booking widget
    /// starts. Null with NOT_FOUND when there is none.
    async fn venue_by_slug(&self, ctx: &Context<'_>, slug: String) -> Result<Option<VenueObject>> {
        let slug = Slug::parse(&slug).map_err(|reason| invalid("slug", reason))?;
        let store = store(ctx).clone();
        let venue = blocking(move || {
            Ok(match store.venue_by_slug(&slug)? {
                Some(id) => store.venue(id)?,
                None => None,
            })
        })
        .await?;
        venue
            .map(|venue| Some(VenueObject(venue)))
            .ok_or_else(|| super::errors::domain_error(&DomainError::not_found("venue")))
    }
}

/// One venue by its id, or `None`: public, like `venue(id:)`.
pub async fn venue_by_id(ctx: &Context<'_>, id: &ID) -> Result<Option<VenueObject>> {
    let id = VenueId::parse(id).or_gql()?;
    let store = store(ctx).clone();
    Ok(blocking(move || store.venue(id)).await?.map(VenueObject))
}

#[derive(Default)]
pub struct VenueMutation;

#[Object]
impl VenueMutation {
    /// Changes the venue with this slug (its managers and admins) or
    /// creates it (admins of every venue), all in one transaction. Settings
    /// the input leaves out keep their stored values (see `VenueInput`);
    /// every field at fault comes back in `userErrors` and nothing is saved.
    async fn save_venue(
        &self,
        ctx: &Context<'_>,
        mut input: VenueInput,
    ) -> Result<SaveVenuePayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_SAVE_VENUE;
        let mut checks = Checks::default();
        let Some(slug) =
            checks.take(Slug::parse(&input.slug).map_err(|reason| invalid("slug", reason)))
        else {
            // No venue to judge the caller by: only the slug is wrong.
            guard::require(ctx, None, OBJECT, EXECUTE)?;
            return Ok(SaveVenuePayload {
                user_errors: checks.finish()?,
                ..SaveVenuePayload::default()
            });
        };
        let store = store(ctx).clone();
        let existing = {
            let store = store.clone();
            let slug = slug.clone();
            blocking(move || store.venue_by_slug(&slug)).await?
        };
        match existing {
            // Managers of other venues are refused outright: venues are
            // public, so there is nothing to hide by answering NOT_FOUND.
            Some(venue) => guard::require(ctx, Some(venue), OBJECT, EXECUTE)?,
            // A new venue belongs to no one yet: only a role in every venue
            // may create one.
            None => {
                if !guard::allowed_as(ctx, &guard::principal(ctx).subject(), None, OBJECT, EXECUTE)
                    || !guard::principal(ctx)
                        .venues()
                        .iter()
                        .any(|v| v == domain::auth::EVERY_VENUE)
                {
                    return Err(guard::forbidden(ctx, OBJECT));
                }
            }
        }
        let strictness = Strictness {
            plain_http_origins: ctx.data_opt::<app::settings::Environment>()
                == Some(&app::settings::Environment::Development),
        };
        let listed_closures = input.closures.take();
        let mut changes = changes(input, strictness, &mut checks);
        if let Some(listed) = listed_closures {
            // Resources are named by id, and local times need the zone the
            // venue will have: both come from the stored venue.
            let (stored, resources) = match existing {
                None => (None, Vec::new()),
                Some(id) => {
                    let store = store.clone();
                    blocking(move || Ok((store.venue(id)?, store.resources(id)?))).await?
                }
            };
            let tz = changes
                .time_zone
                .or(stored.map(|venue| venue.time_zone))
                .unwrap_or(chrono_tz::UTC);
            changes.closures = closures(&listed, tz, &resources, &mut checks);
        }
        let user_errors = checks.finish()?;
        if !user_errors.is_empty() {
            return Ok(SaveVenuePayload {
                user_errors,
                ..SaveVenuePayload::default()
            });
        }
        let (saved, user_errors) = outcome(
            blocking(move || {
                use domain::ports::ReservationRepository;
                let (id, report) = store.save_venue(&slug, changes, Utc::now())?;
                let venue = store.venue(id)?.ok_or(DomainError::not_found("venue"))?;
                let mut inside = Vec::new();
                for reservation in &report.reservations_in_closures {
                    inside.extend(store.reservation(*reservation)?);
                }
                inside.sort_by_key(|r| r.starts_at);
                let mut outside = Vec::new();
                for reservation in &report.reservations_outside_hours {
                    outside.extend(store.reservation(*reservation)?);
                }
                Ok((venue, inside, outside))
            })
            .await,
        )?;
        let Some((venue, inside, outside)) = saved else {
            return Ok(SaveVenuePayload {
                user_errors,
                ..SaveVenuePayload::default()
            });
        };
        Ok(SaveVenuePayload {
            reservations_in_closures: Some(super::types::ReservationObject::list(
                inside,
                &venue,
                super::types::Access::Public,
            )),
            reservations_outside_hours: Some(super::types::ReservationObject::list(
                outside,
                &venue,
                super::types::Access::Public,
            )),
            venue: Some(VenueObject(venue)),
            user_errors,
        })
    }
}
