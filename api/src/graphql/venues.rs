//! Venue set-up over GraphQL: the same declarative definition as
//! `kluis venue import`, for managers and admins day to day.

use async_graphql::{Context, InputObject, Object, Result};
use chrono::Utc;
use domain::ports::VenueRepository;
use domain::venue::{check_display_name, parse_time_zone};
use domain::{
    BookingRules, Country, DomainError, Minutes, OpeningInterval, Resource, ResourceKind, Slug,
    TimeOfDay, WeeklySchedule,
};
use store::{ResourceDefinition, VenueDefinition};

use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};
use super::types::{ResourceKindValue, VenueObject, Weekday};
use super::{blocking, store};

#[derive(InputObject)]
pub struct OpeningHoursInput {
    pub weekday: Weekday,
    /// Local time, HH:MM.
    pub opens: String,
    /// Local time, HH:MM; `24:00` is midnight.
    pub closes: String,
}

#[derive(InputObject)]
pub struct ResourceInput {
    /// Matches the resource on later saves.
    pub slug: String,
    pub name: String,
    pub kind: Option<ResourceKindValue>,
    /// The largest party it takes.
    pub capacity: i32,
}

/// A venue as a whole. Saving creates it (admins) or updates the venue
/// with this slug (its managers too): opening hours are replaced, resources
/// matched by slug, and resources left out are retired.
#[derive(InputObject)]
pub struct VenueInput {
    pub slug: String,
    pub name: String,
    /// IANA name, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    /// ISO 3166 code: how phone numbers without a country code are read.
    pub country: Option<String>,
    pub slot_interval_minutes: Option<i32>,
    pub booking_duration_minutes: Option<i32>,
    pub buffer_minutes: Option<i32>,
    pub min_notice_minutes: Option<i32>,
    pub same_day_cutoff: Option<String>,
    pub cancel_deadline_minutes: Option<i32>,
    pub max_party_size: Option<i32>,
    pub max_advance_days: Option<i32>,
    pub opening_hours: Vec<OpeningHoursInput>,
    pub resources: Vec<ResourceInput>,
    /// What guests pay when they book; left out, the venue keeps its rule.
    pub payment: Option<PaymentRuleInput>,
    /// Which guest fields the venue collects; left out, it keeps its rules.
    pub guest_fields: Option<GuestFieldsInput>,
    /// Days after a guest's last visit until their personal data is
    /// anonymized; 365 when left out.
    pub retention_days: Option<i32>,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped; 30 when left out.
    pub payment_data_days: Option<i32>,
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum FieldRuleValue {
    Required,
    Optional,
    /// Not collected: refused when given.
    No,
}

#[derive(InputObject)]
pub struct GuestFieldsInput {
    pub email: FieldRuleValue,
    pub phone: FieldRuleValue,
    pub notes: FieldRuleValue,
}

fn field_rule(value: FieldRuleValue) -> domain::privacy::FieldRule {
    match value {
        FieldRuleValue::Required => domain::privacy::FieldRule::Required,
        FieldRuleValue::Optional => domain::privacy::FieldRule::Optional,
        FieldRuleValue::No => domain::privacy::FieldRule::NotCollected,
    }
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    None,
    Deposit,
    Prepayment,
    /// A card kept on file; `amount` is the no-show fee.
    Guarantee,
}

#[derive(InputObject)]
pub struct PaymentRuleInput {
    pub kind: PaymentKind,
    /// In the currency's minor unit (cents).
    pub amount: i32,
    /// ISO 4217, e.g. EUR.
    pub currency: String,
    #[graphql(default)]
    pub per_guest: bool,
    /// How long an unpaid booking holds its slot (default 15).
    pub hold_minutes: Option<i32>,
}

fn payment_policy(input: &PaymentRuleInput) -> Result<domain::payments::PaymentPolicy> {
    use domain::payments::{Currency, Money, PaymentPolicy, PaymentRule};
    let currency = Currency::parse(&input.currency).or_gql()?;
    let amount = Money::new(i64::from(input.amount), currency).or_gql()?;
    let per_guest = input.per_guest;
    let rule = match input.kind {
        PaymentKind::None => PaymentRule::None,
        PaymentKind::Deposit => PaymentRule::Deposit { amount, per_guest },
        PaymentKind::Prepayment => PaymentRule::Prepayment { amount, per_guest },
        PaymentKind::Guarantee => PaymentRule::Guarantee {
            fee: amount,
            per_guest,
        },
    };
    let hold = match input.hold_minutes {
        None => PaymentPolicy::default().hold,
        Some(minutes) => {
            Minutes::parse("payment.holdMinutes", i64::from(minutes), 1, 24 * 60).or_gql()?
        }
    };
    Ok(PaymentPolicy { rule, hold })
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

fn minutes(value: Option<i32>, field: &'static str, default: Minutes, max: u32) -> Result<Minutes> {
    match value {
        None => Ok(default),
        Some(raw) => Minutes::parse(field, i64::from(raw), 0, max).or_gql(),
    }
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

fn resource_kind(kind: Option<ResourceKindValue>) -> ResourceKind {
    match kind {
        None | Some(ResourceKindValue::Table) => ResourceKind::Table,
        Some(ResourceKindValue::Room) => ResourceKind::Room,
        Some(ResourceKindValue::Practitioner) => ResourceKind::Practitioner,
        Some(ResourceKindValue::Other) => ResourceKind::Other,
    }
}

/// Checks a venue input into a definition, naming the field at fault.
pub fn definition(input: VenueInput) -> Result<VenueDefinition> {
    let guest_fields = input
        .guest_fields
        .as_ref()
        .map(|fields| domain::privacy::GuestFields {
            email: field_rule(fields.email),
            phone: field_rule(fields.phone),
            notes: field_rule(fields.notes),
        })
        .unwrap_or_default();
    let payments = input
        .payment
        .as_ref()
        .map(payment_policy)
        .transpose()?
        .unwrap_or_default();
    let defaults = BookingRules::restaurant_defaults();
    let limit = BookingRules::MAX_DURATION_MINUTES;
    let rules = BookingRules {
        slot_interval: minutes(
            input.slot_interval_minutes,
            "slotIntervalMinutes",
            defaults.slot_interval,
            limit,
        )?,
        booking_duration: minutes(
            input.booking_duration_minutes,
            "bookingDurationMinutes",
            defaults.booking_duration,
            limit,
        )?,
        buffer: minutes(
            input.buffer_minutes,
            "bufferMinutes",
            defaults.buffer,
            limit,
        )?,
        min_notice: minutes(
            input.min_notice_minutes,
            "minNoticeMinutes",
            defaults.min_notice,
            60 * 24 * 60,
        )?,
        same_day_cutoff: input
            .same_day_cutoff
            .as_deref()
            .map(TimeOfDay::parse)
            .transpose()
            .map_err(|reason| invalid("sameDayCutoff", reason))?,
        cancel_deadline: minutes(
            input.cancel_deadline_minutes,
            "cancelDeadlineMinutes",
            defaults.cancel_deadline,
            60 * 24 * 60,
        )?,
        max_party_size: input
            .max_party_size
            .map_or(Ok(defaults.max_party_size), |v| {
                u32::try_from(v).map_err(|_| invalid("maxPartySize", "must be positive"))
            })?,
        max_advance_days: input
            .max_advance_days
            .map_or(Ok(defaults.max_advance_days), |v| {
                u32::try_from(v).map_err(|_| invalid("maxAdvanceDays", "must be positive"))
            })?,
    }
    .validate()
    .or_gql()?;
    let mut days: [Vec<OpeningInterval>; 7] = Default::default();
    for hours in &input.opening_hours {
        let interval = TimeOfDay::parse(&hours.opens)
            .and_then(|opens| Ok((opens, TimeOfDay::parse(&hours.closes)?)))
            .and_then(|(opens, closes)| OpeningInterval::new(opens, closes))
            .map_err(|reason| invalid("openingHours", reason))?;
        if let Some(day) = days.get_mut(weekday_index(hours.weekday)) {
            day.push(interval);
        }
    }
    let mut resources: Vec<ResourceDefinition> = Vec::new();
    for resource in input.resources {
        let slug =
            Slug::parse(&resource.slug).map_err(|reason| invalid("resources.slug", reason))?;
        if resources.iter().any(|r| r.slug == slug) {
            return Err(invalid("resources.slug", format!("`{slug}` appears twice")));
        }
        resources.push(ResourceDefinition {
            slug,
            name: check_display_name(&resource.name)
                .map_err(|reason| invalid("resources.name", reason))?,
            kind: resource_kind(resource.kind),
            capacity: Resource::check_capacity(i64::from(resource.capacity))
                .map_err(|reason| invalid("resources.capacity", reason))?,
        });
    }
    Ok(VenueDefinition {
        slug: Slug::parse(&input.slug).map_err(|reason| invalid("slug", reason))?,
        name: check_display_name(&input.name).map_err(|reason| invalid("name", reason))?,
        time_zone: parse_time_zone(&input.time_zone)
            .map_err(|reason| invalid("timeZone", reason))?,
        payments,
        guest_fields,
        country: input
            .country
            .as_deref()
            .map(Country::parse)
            .transpose()
            .map_err(|reason| invalid("country", reason))?,
        rules,
        schedule: WeeklySchedule::new(days).map_err(|reason| invalid("openingHours", reason))?,
        resources,
        retention_days: input
            .retention_days
            .map_or(Ok(domain::Venue::DEFAULT_RETENTION_DAYS), |days| {
                domain::Venue::check_retention_days(i64::from(days))
            })
            .map_err(|reason| invalid("retentionDays", reason))?,
        payment_data_days: input
            .payment_data_days
            .map_or(Ok(domain::Venue::DEFAULT_PAYMENT_DATA_DAYS), |days| {
                domain::Venue::check_payment_data_days(i64::from(days))
            })
            .map_err(|reason| invalid("paymentDataDays", reason))?,
    })
}

#[derive(Default)]
pub struct VenueMutation;

#[Object]
impl VenueMutation {
    /// Creates a venue (admins) or updates the one with this slug (its
    /// managers and admins), all in one transaction.
    async fn save_venue(&self, ctx: &Context<'_>, input: VenueInput) -> Result<VenueObject> {
        const OBJECT: &str = "Mutation.saveVenue";
        let keeps_payment = input.payment.is_none();
        let keeps_fields = input.guest_fields.is_none();
        let mut definition = definition(input)?;
        let slug = definition.slug.clone();
        let store = store(ctx).clone();
        let existing = {
            let store = store.clone();
            let slug = slug.clone();
            blocking(move || store.venue_by_slug(&slug)).await?
        };
        match existing {
            Some(venue) => {
                guard::require_in_venue(ctx, venue, OBJECT, EXECUTE, "venue")?;
                if keeps_payment || keeps_fields {
                    let store = store.clone();
                    if let Some(current) = blocking(move || store.venue(venue)).await? {
                        if keeps_payment {
                            definition.payments = current.payments;
                        }
                        if keeps_fields {
                            definition.guest_fields = current.guest_fields;
                        }
                    }
                }
            }
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
            store.import_venues(std::slice::from_ref(&definition), Utc::now())?;
            let id = store
                .venue_by_slug(&slug)?
                .ok_or(DomainError::not_found("venue"))?;
            Ok(VenueObject(
                store.venue(id)?.ok_or(DomainError::not_found("venue"))?,
            ))
        })
        .await
    }
}
