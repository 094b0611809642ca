//! Venue set-up over GraphQL: the settings of `kluis venue import`, for
//! managers and admins day to day. Unlike a venue file, which is the whole
//! truth about the venues it lists, `saveVenue` changes only what it is
//! given: a setting left out keeps its stored value.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, Result};
use chrono::Utc;
use domain::ports::VenueRepository;
use domain::venue::{check_display_name, parse_time_zone};
use domain::{
    Country, DomainError, Minutes, OpeningInterval, Resource, ResourceKind, Slug, TimeOfDay,
    WeeklySchedule,
};
use store::{ResourceChange, VenueChanges};

use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};
use super::types::{FieldRuleValue, PaymentKind, ResourceKindValue, VenueObject, Weekday};

#[derive(InputObject)]
pub struct OpeningHoursInput {
    pub weekday: Weekday,
    pub opens: super::scalars::LocalTime,
    /// `24:00` is the midnight that ends the day.
    pub closes: super::scalars::LocalTime,
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
}

/// A venue's settings. Saving updates the venue with this slug (its
/// managers and admins) or creates it (admins of every venue).
///
/// Every field but `slug` may be left out, and a field left out (or null)
/// keeps its stored value: an edit of one setting never resets another.
/// Only `country` and `sameDayCutoff` are cleared by an explicit null. A
/// new venue needs `name` and `timeZone`; what else it leaves out takes the
/// defaults of a venue file (e.g. `retentionDays` 365, no payment, every
/// guest field optional, closed, no resources). `openingHours`, when given,
/// replaces every interval (an empty list closes the venue); `resources`,
/// when given, is the venue's whole list: resources are matched by slug and
/// those left out are retired (they keep their past bookings).
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
    /// Local time (HH:MM) after which same-day bookings close; null
    /// removes the cut-off.
    pub same_day_cutoff: MaybeUndefined<String>,
    pub cancel_deadline_minutes: Option<i32>,
    pub max_party_size: Option<i32>,
    pub max_advance_days: Option<i32>,
    /// Replaces every opening interval; an empty list closes the venue.
    pub opening_hours: Option<Vec<OpeningHoursInput>>,
    /// The venue's whole list of resources: matched by slug, and those
    /// left out retired.
    pub resources: Option<Vec<ResourceInput>>,
    /// What guests pay when they book; a part left out keeps its value.
    pub payment: Option<PaymentRuleInput>,
    /// Which guest fields the venue collects; a field left out keeps its
    /// rule.
    pub guest_fields: Option<GuestFieldsInput>,
    /// Days after a guest's last visit until their personal data is
    /// anonymized (1 to 3650); left out, the stored limit stays (365 for a
    /// new venue).
    pub retention_days: Option<i32>,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped (0 to 540); left out, the stored
    /// value stays (30 for a new venue).
    pub payment_data_days: Option<i32>,
}

/// Which guest fields a venue collects; a field left out keeps its rule.
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
        FieldRuleValue::No => domain::privacy::FieldRule::NotCollected,
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
    api_error(Code::BadUserInput, format!("{field}: {reason}")).extend_with_field(field)
}

trait WithField {
    fn extend_with_field(self, field: &str) -> async_graphql::Error;
}

impl WithField for async_graphql::Error {
    fn extend_with_field(self, field: &str) -> async_graphql::Error {
        use async_graphql::ErrorExtensions;
        let field = field.to_owned();
        self.extend_with(move |_, extensions| extensions.set("field", field.as_str()))
    }
}

fn minutes(value: Option<i32>, field: &'static str, min: u32, max: u32) -> Result<Option<Minutes>> {
    value
        .map(|raw| Minutes::parse(field, i64::from(raw), min, max).or_gql())
        .transpose()
}

fn count(value: Option<i32>, field: &'static str) -> Result<Option<u32>> {
    value
        .map(|raw| u32::try_from(raw).map_err(|_| invalid(field, "must be positive")))
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

/// Checks each field a venue input gives, naming the field at fault; what
/// it leaves out stays `None` and keeps its stored value.
pub fn changes(input: VenueInput) -> Result<(Slug, VenueChanges)> {
    let limit = domain::BookingRules::MAX_DURATION_MINUTES;
    let payment = input.payment.as_ref();
    let fields = input.guest_fields.as_ref();
    let mut changes = VenueChanges {
        name: input
            .name
            .as_deref()
            .map(check_display_name)
            .transpose()
            .map_err(|reason| invalid("name", reason))?,
        time_zone: input
            .time_zone
            .as_deref()
            .map(parse_time_zone)
            .transpose()
            .map_err(|reason| invalid("timeZone", reason))?,
        country: match &input.country {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(raw) => Some(Some(
                Country::parse(raw).map_err(|reason| invalid("country", reason))?,
            )),
        },
        slot_interval: minutes(input.slot_interval_minutes, "slotIntervalMinutes", 0, limit)?,
        booking_duration: minutes(
            input.booking_duration_minutes,
            "bookingDurationMinutes",
            0,
            limit,
        )?,
        buffer: minutes(input.buffer_minutes, "bufferMinutes", 0, limit)?,
        min_notice: minutes(
            input.min_notice_minutes,
            "minNoticeMinutes",
            0,
            60 * 24 * 60,
        )?,
        same_day_cutoff: match &input.same_day_cutoff {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(raw) => Some(Some(
                TimeOfDay::parse(raw).map_err(|reason| invalid("sameDayCutoff", reason))?,
            )),
        },
        cancel_deadline: minutes(
            input.cancel_deadline_minutes,
            "cancelDeadlineMinutes",
            0,
            60 * 24 * 60,
        )?,
        max_party_size: count(input.max_party_size, "maxPartySize")?,
        max_advance_days: count(input.max_advance_days, "maxAdvanceDays")?,
        payment_kind: payment.and_then(|p| p.kind).map(Into::into),
        payment_amount: payment.and_then(|p| p.amount).map(i64::from),
        payment_currency: payment
            .and_then(|p| p.currency.as_deref())
            .map(domain::payments::Currency::parse)
            .transpose()
            .map_err(|_| invalid("payment.currency", "must be a three-letter ISO 4217 code"))?,
        payment_per_guest: payment.and_then(|p| p.per_guest),
        payment_hold: minutes(
            payment.and_then(|p| p.hold_minutes),
            "payment.holdMinutes",
            1,
            24 * 60,
        )?,
        collect_email: fields.and_then(|f| f.email).map(field_rule),
        collect_phone: fields.and_then(|f| f.phone).map(field_rule),
        collect_notes: fields.and_then(|f| f.notes).map(field_rule),
        retention_days: input
            .retention_days
            .map(|days| domain::Venue::check_retention_days(i64::from(days)))
            .transpose()
            .map_err(|reason| invalid("retentionDays", reason))?,
        payment_data_days: input
            .payment_data_days
            .map(|days| domain::Venue::check_payment_data_days(i64::from(days)))
            .transpose()
            .map_err(|reason| invalid("paymentDataDays", reason))?,
        schedule: None,
        resources: None,
    };
    if let Some(opening_hours) = &input.opening_hours {
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        for hours in opening_hours {
            let interval = OpeningInterval::new(hours.opens.0, hours.closes.0)
                .map_err(|reason| invalid("openingHours", reason))?;
            if let Some(day) = days.get_mut(weekday_index(hours.weekday)) {
                day.push(interval);
            }
        }
        changes.schedule =
            Some(WeeklySchedule::new(days).map_err(|reason| invalid("openingHours", reason))?);
    }
    if let Some(listed) = input.resources {
        let mut resources: Vec<ResourceChange> = Vec::new();
        for resource in listed {
            let slug =
                Slug::parse(&resource.slug).map_err(|reason| invalid("resources.slug", reason))?;
            if resources.iter().any(|r| r.slug == slug) {
                return Err(invalid("resources.slug", format!("`{slug}` appears twice")));
            }
            resources.push(ResourceChange {
                slug,
                name: check_display_name(&resource.name)
                    .map_err(|reason| invalid("resources.name", reason))?,
                kind: resource.kind.map(resource_kind),
                capacity: Resource::check_capacity(i64::from(resource.capacity))
                    .map_err(|reason| invalid("resources.capacity", reason))?,
            });
        }
        changes.resources = Some(resources);
    }
    let slug = Slug::parse(&input.slug).map_err(|reason| invalid("slug", reason))?;
    Ok((slug, changes))
}

#[derive(Default)]
pub struct VenueMutation;

#[Object]
impl VenueMutation {
    /// Changes the venue with this slug (its managers and admins) or
    /// creates it (admins of every venue), all in one transaction. Settings
    /// the input leaves out keep their stored values (see `VenueInput`).
    async fn save_venue(&self, ctx: &Context<'_>, input: VenueInput) -> Result<VenueObject> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_SAVE_VENUE;
        let (slug, changes) = changes(input)?;
        let store = store(ctx).clone();
        let existing = {
            let store = store.clone();
            let slug = slug.clone();
            blocking(move || store.venue_by_slug(&slug)).await?
        };
        match existing {
            Some(venue) => guard::require_in_venue(ctx, venue, OBJECT, EXECUTE, "venue")?,
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
        blocking(move || {
            let (id, _) = store.save_venue(&slug, changes, Utc::now())?;
            Ok(VenueObject(
                store.venue(id)?.ok_or(DomainError::not_found("venue"))?,
            ))
        })
        .await
    }
}
