//! Venues, opening hours and resources: reading them, and the declarative
//! import that creates or updates them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use domain::ports::{Page, VenueRepository};
use domain::{
    BookingContext, BookingRules, DomainError, Minutes, Occupancy, PartySize, ReservationStatus,
    Resource, ResourceId, ResourceKind, Slot, Slug, TimeOfDay, Venue, VenueId, WeeklySchedule,
};

use crate::lock::ForUpdate;
use crate::rows::{OpeningHoursRow, ResourceRow, VenueRow, db_instant, db_int};
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Loads one venue with its opening hours, inside whatever transaction the
/// caller holds.
macro_rules! load_venue {
    ($c:expr, $s:ident, $id:expr) => {
        $crate::step(|| {
            Ok({
                let row: Option<VenueRow> = $s::venues::table
                    .find($id)
                    .first::<VenueRow>($c)
                    .optional()?;
                match row {
                    None => None,
                    Some(row) => {
                        let venue_id_text = row.id.clone();
                        let hours: Vec<OpeningHoursRow> = $s::opening_hours::table
                            .filter($s::opening_hours::venue_id.eq(&row.id))
                            .load($c)?;
                        let mut venue = row.into_domain(&hours)?;
                        let closures: Vec<crate::rows::ClosureRow> = $s::closures::table
                            .filter($s::closures::venue_id.eq(&venue_id_text))
                            .order($s::closures::starts_at)
                            .load($c)?;
                        venue.closures = closures
                            .into_iter()
                            .map(domain::Closure::try_from)
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        let combinations: Vec<crate::rows::CombinationRow> =
                            $s::resource_combinations::table
                                .filter($s::resource_combinations::venue_id.eq(&venue_id_text))
                                .order($s::resource_combinations::position)
                                .load($c)?;
                        for row in &combinations {
                            row.add_to(&mut venue.tables_together)?;
                        }
                        let exceptions: Vec<crate::rows::HoursExceptionRow> =
                            $s::hours_exceptions::table
                                .filter($s::hours_exceptions::venue_id.eq(&venue_id_text))
                                .order($s::hours_exceptions::local_date)
                                .load($c)?;
                        venue.exceptions = exceptions
                            .into_iter()
                            .map(domain::HoursException::try_from)
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        let services: Vec<crate::rows::ServiceRow> = $s::services::table
                            .filter($s::services::venue_id.eq(&venue_id_text))
                            .order($s::services::position)
                            .load($c)?;
                        venue.services = services
                            .into_iter()
                            .map(domain::Service::try_from)
                            .collect::<Result<Vec<_>, StoreError>>()?;
                        Some(venue)
                    }
                }
            })
        })
    };
}
pub(crate) use load_venue;

/// Loads every resource of a venue, retired ones included.
macro_rules! load_resources {
    ($c:expr, $s:ident, $venue_id:expr) => {
        $crate::step(|| {
            Ok({
                let rows: Vec<ResourceRow> = $s::resources::table
                    .filter($s::resources::venue_id.eq($venue_id))
                    .order($s::resources::slug)
                    .load($c)?;
                rows.into_iter()
                    .map(domain::Resource::try_from)
                    .collect::<Result<Vec<_>, StoreError>>()?
            })
        })
    };
}
pub(crate) use load_resources;

/// Loads the spans during which a venue's resources are taken by active
/// reservations that overlap `[from, until)`.
macro_rules! load_occupancy {
    ($c:expr, $s:ident, $venue_id:expr, $from:expr, $until:expr, $except:expr, $now:expr) => {
        $crate::step(|| {
            Ok({
                use $s::reservation_holds::dsl as h;
                use $s::reservations::dsl as r;
                let active: Vec<&str> = ReservationStatus::ACTIVE
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                // One span per resource held: a combination takes each of
                // its tables.
                let spans: Vec<(String, String, DateTime<Utc>, DateTime<Utc>, i32)> =
                    r::reservations
                        .inner_join(h::reservation_holds)
                        .filter(r::venue_id.eq($venue_id))
                        .filter(r::status.eq_any(active))
                        .filter(r::starts_at.lt(db_instant($until)))
                        // No reservation blocks longer than this, so the index
                        // on (venue, start) bounds the search on both sides.
                        .filter(
                            r::starts_at
                                .gt(db_instant($from - domain::BookingRules::longest_block())),
                        )
                        .filter(r::blocked_until.gt(db_instant($from)))
                        .filter(r::id.ne($except))
                        // A hold whose payment deadline passed no longer holds.
                        .filter(
                            r::hold_until
                                .is_null()
                                .or(r::hold_until.gt(db_instant($now))),
                        )
                        .select((
                            h::resource_id,
                            r::resource_id,
                            r::starts_at,
                            r::blocked_until,
                            r::party_size,
                        ))
                        .load($c)?;
                spans
                    .into_iter()
                    .map(|(resource_id, primary, starts_at, blocked_until, party)| {
                        Ok(domain::Occupancy {
                            resource_id: domain::ResourceId::parse(&resource_id).map_err(|_| {
                                StoreError::Corrupt(format!(
                                    "reservation resource id {resource_id}"
                                ))
                            })?,
                            starts_at,
                            blocked_until,
                            covers: if resource_id == primary {
                                u32::try_from(party).unwrap_or(0)
                            } else {
                                0
                            },
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?
            })
        })
    };
}
pub(crate) use load_occupancy;

/// A venue as an import file describes it.
#[derive(Debug, Clone)]
pub struct VenueDefinition {
    pub slug: Slug,
    pub name: String,
    pub time_zone: Tz,
    pub country: Option<domain::Country>,
    pub payments: domain::payments::PaymentPolicy,
    pub guest_fields: domain::privacy::GuestFields,
    pub retention_days: u32,
    /// Days after a payment's last refund window closes until its card
    /// brand and last four are dropped.
    pub payment_data_days: u32,
    /// The opt-ins its booking form offers.
    pub opt_ins: domain::OptIns,
    /// Web origins that may call the API from a browser for it.
    pub allowed_origins: Vec<domain::Origin>,
    pub rules: BookingRules,
    pub schedule: WeeklySchedule,
    pub resources: Vec<ResourceDefinition>,
    /// Replaces the venue's closures.
    pub closures: Vec<ClosureDefinition>,
    /// How long waitlist offers last and entries are kept.
    pub waitlist: domain::waitlist::WaitlistRules,
    /// Fixed combinations of its resources, by slug; replaces the stored
    /// ones.
    pub combinations: Vec<domain::combination::CombinationDefinition>,
    /// Tables that stand next to each other, by slug.
    pub adjacent: Vec<(Slug, Slug)>,
    /// The most adjacent tables one booking may join.
    pub max_joined: u32,
    pub pacing: domain::Pacing,
    /// Replaces the exceptions to the working plans of the venue and its
    /// resources.
    pub exceptions: Vec<ExceptionDefinition>,
    /// Replaces what the venue offers to book: services are matched by
    /// slug (their ids stay) and those left out retired.
    pub services: Vec<ServiceDefinition>,
}

/// A service as a venue file or `saveVenue` gives it; resources by slug
/// (none: every resource). The store checks it against the venue as saved
/// (`domain::service::check`) and names the part at fault
/// `services.N.<field>`.
#[derive(Debug, Clone)]
pub struct ServiceDefinition {
    pub slug: Slug,
    pub name: String,
    pub duration: u32,
    /// `None`: the venue's buffer as saved.
    pub buffer: Option<u32>,
    pub min_party: u32,
    /// `None`: the venue's largest party as saved.
    pub max_party: Option<u32>,
    pub resources: Vec<Slug>,
    /// `None`: the venue's payment rule.
    pub payment: Option<domain::payments::PaymentRule>,
}

/// A dated exception as a venue file or `saveVenue` gives it, for the venue
/// or one resource (by slug); checked by the caller (`domain::hours`).
#[derive(Debug, Clone)]
pub struct ExceptionDefinition {
    pub resource: Option<Slug>,
    pub date: NaiveDate,
    /// Empty: closed all day.
    pub hours: Vec<domain::OpeningInterval>,
}

/// A closure as a venue file or `saveVenue` gives it: on the venue's
/// clock, for the whole venue or one resource (by slug). Checked by the
/// caller (`domain::closure`), which can name the file line or input field.
#[derive(Debug, Clone)]
pub struct ClosureDefinition {
    /// The stored closure this one keeps (its id stays), if any.
    pub id: Option<domain::ClosureId>,
    pub resource: Option<Slug>,
    pub from: chrono::NaiveDateTime,
    pub until: chrono::NaiveDateTime,
    pub reason: Option<String>,
}

/// Changes to one venue's settings, as `saveVenue` sends them: `None`
/// keeps the stored value, so an edit of one setting never resets another
/// (a retention limit reset to its default would anonymize guests the venue
/// means to keep). A venue that does not exist yet takes the defaults of a
/// venue file for what is left out, and needs a name and a time zone.
#[derive(Debug, Clone, Default)]
pub struct VenueChanges {
    pub name: Option<String>,
    pub time_zone: Option<Tz>,
    /// `Some(None)` removes the country.
    pub country: Option<Option<domain::Country>>,
    pub slot_interval: Option<Minutes>,
    pub booking_duration: Option<Minutes>,
    pub buffer: Option<Minutes>,
    pub min_notice: Option<Minutes>,
    /// `Some(None)` removes the cut-off.
    pub same_day_cutoff: Option<Option<TimeOfDay>>,
    pub cancel_deadline: Option<Minutes>,
    pub max_party_size: Option<u32>,
    pub max_advance_days: Option<u32>,
    /// The payment rule, part by part: a part left out keeps the stored
    /// one (a new deposit, prepayment or guarantee needs an amount and a
    /// currency when the venue had none).
    pub payment_kind: Option<PaymentKind>,
    /// In the currency's minor unit.
    pub payment_amount: Option<i64>,
    pub payment_currency: Option<domain::payments::Currency>,
    pub payment_per_guest: Option<bool>,
    pub payment_hold: Option<Minutes>,
    pub collect_email: Option<domain::privacy::FieldRule>,
    pub collect_phone: Option<domain::privacy::FieldRule>,
    pub collect_notes: Option<domain::privacy::FieldRule>,
    pub retention_days: Option<u32>,
    pub payment_data_days: Option<u32>,
    pub opt_ins: Option<domain::OptIns>,
    /// Replaces the venue's whole list.
    pub allowed_origins: Option<Vec<domain::Origin>>,
    /// Replaces every opening interval; an empty week closes the venue.
    pub schedule: Option<WeeklySchedule>,
    /// The venue's resources: matched by slug, and those left out retired.
    pub resources: Option<Vec<ResourceChange>>,
    /// Replaces the venue's whole list of closures.
    pub closures: Option<Vec<ClosureDefinition>>,
    pub waitlist_offer_minutes: Option<u32>,
    pub waitlist_retention_days: Option<u32>,
    /// Replaces the venue's fixed combinations.
    pub combinations: Option<Vec<domain::combination::CombinationDefinition>>,
    /// Replaces the venue's adjacent pairs.
    pub adjacent: Option<Vec<(Slug, Slug)>>,
    pub max_joined: Option<u32>,
    /// `Some(None)` removes the cap.
    pub max_covers_per_slot: Option<Option<u32>>,
    pub max_covers_per_hour: Option<Option<u32>>,
    /// Replaces every exception of the venue and its resources.
    pub exceptions: Option<Vec<ExceptionDefinition>>,
    /// Replaces the venue's services.
    pub services: Option<Vec<ServiceDefinition>>,
}

/// Which payment rule a venue has, without its amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    None,
    Deposit,
    Prepayment,
    Guarantee,
}

impl PaymentKind {
    pub fn of(rule: &domain::payments::PaymentRule) -> Self {
        use domain::payments::PaymentRule;
        match rule {
            PaymentRule::None => Self::None,
            PaymentRule::Deposit { .. } => Self::Deposit,
            PaymentRule::Prepayment { .. } => Self::Prepayment,
            PaymentRule::Guarantee { .. } => Self::Guarantee,
        }
    }
}

/// The payment rule `current` becomes with these parts changed.
fn changed_rule(
    current: domain::payments::PaymentRule,
    kind: Option<PaymentKind>,
    amount: Option<i64>,
    currency: Option<domain::payments::Currency>,
    per_guest: Option<bool>,
) -> Result<domain::payments::PaymentRule, DomainError> {
    use domain::payments::{Money, PaymentRule};
    let (stored, stored_per_guest) = match current {
        PaymentRule::None => (None, false),
        PaymentRule::Deposit { amount, per_guest }
        | PaymentRule::Prepayment { amount, per_guest } => (Some(amount), per_guest),
        PaymentRule::Guarantee { fee, per_guest } => (Some(fee), per_guest),
    };
    let kind = kind.unwrap_or(PaymentKind::of(&current));
    if kind == PaymentKind::None {
        return Ok(PaymentRule::None);
    }
    let minor = amount
        .or(stored.map(|money| money.minor()))
        .ok_or_else(|| DomainError::invalid("payment.amount", "a payment rule needs an amount"))?;
    let currency = currency
        .or(stored.map(|money| money.currency()))
        .ok_or_else(|| {
            DomainError::invalid("payment.currency", "a payment rule needs a currency")
        })?;
    let amount = Money::new(minor, currency).map_err(|_| {
        DomainError::invalid("payment.amount", "must be between 0 and 10,000,000.00")
    })?;
    let per_guest = per_guest.unwrap_or(stored_per_guest);
    Ok(match kind {
        PaymentKind::None => PaymentRule::None,
        PaymentKind::Deposit => PaymentRule::Deposit { amount, per_guest },
        PaymentKind::Prepayment => PaymentRule::Prepayment { amount, per_guest },
        PaymentKind::Guarantee => PaymentRule::Guarantee {
            fee: amount,
            per_guest,
        },
    })
}

/// A resource as `saveVenue` lists it; a kind left out keeps the stored one
/// (a table for a new resource).
#[derive(Debug, Clone)]
pub struct ResourceChange {
    pub slug: Slug,
    pub name: String,
    pub kind: Option<ResourceKind>,
    pub capacity: u32,
    /// Its own weekly hours: `None` keeps the stored ones (none for a new
    /// resource), `Some(None)` makes it follow the venue's.
    pub hours: Option<Option<WeeklySchedule>>,
}

impl VenueChanges {
    /// The whole definition these changes make of `current` (the stored
    /// venue with all its resources), or of a new venue.
    pub fn apply(
        self,
        slug: Slug,
        current: Option<(&Venue, &[Resource])>,
    ) -> Result<VenueDefinition, DomainError> {
        let mut definition = match current {
            Some((venue, resources)) => VenueDefinition {
                slug,
                name: venue.name.clone(),
                time_zone: venue.time_zone,
                country: venue.country,
                payments: venue.payments,
                guest_fields: venue.guest_fields,
                retention_days: venue.retention_days,
                payment_data_days: venue.payment_data_days,
                opt_ins: venue.opt_ins,
                allowed_origins: venue.allowed_origins.clone(),
                rules: venue.rules,
                schedule: venue.schedule.clone(),
                resources: resources
                    .iter()
                    .filter(|r| r.active)
                    .map(|r| ResourceDefinition {
                        slug: r.slug.clone(),
                        name: r.name.clone(),
                        kind: r.kind,
                        capacity: r.capacity,
                        hours: r.hours.clone(),
                    })
                    .collect(),
                services: venue
                    .services
                    .iter()
                    .filter(|s| s.active)
                    .map(|s| ServiceDefinition {
                        slug: s.slug.clone(),
                        name: s.name.clone(),
                        duration: s.duration.get(),
                        buffer: Some(s.buffer.get()),
                        min_party: s.min_party,
                        max_party: Some(s.max_party),
                        resources: s
                            .resources
                            .iter()
                            .filter_map(|id| {
                                resources
                                    .iter()
                                    .find(|r| r.id == *id)
                                    .map(|r| r.slug.clone())
                            })
                            .collect(),
                        payment: s.payment,
                    })
                    .collect(),
                exceptions: venue
                    .exceptions
                    .iter()
                    .map(|e| ExceptionDefinition {
                        resource: e.resource_id.and_then(|id| {
                            resources
                                .iter()
                                .find(|r| r.id == id)
                                .map(|r| r.slug.clone())
                        }),
                        date: e.date,
                        hours: e.hours.clone(),
                    })
                    .collect(),
                closures: venue
                    .closures
                    .iter()
                    .map(|c| ClosureDefinition {
                        id: Some(c.id),
                        resource: c.resource_id.and_then(|id| {
                            resources
                                .iter()
                                .find(|r| r.id == id)
                                .map(|r| r.slug.clone())
                        }),
                        from: c.from,
                        until: c.until,
                        reason: c.reason.clone(),
                    })
                    .collect(),
                waitlist: venue.waitlist,
                combinations: venue
                    .tables_together
                    .combinations
                    .iter()
                    .filter_map(|c| {
                        Some(domain::combination::CombinationDefinition {
                            resources: c
                                .resources
                                .iter()
                                .map(|id| slug_of(resources, *id))
                                .collect::<Option<Vec<_>>>()?,
                            capacity: c.capacity,
                            min_party: c.min_party,
                        })
                    })
                    .collect(),
                adjacent: venue
                    .tables_together
                    .adjacent
                    .iter()
                    .filter_map(|(a, b)| Some((slug_of(resources, *a)?, slug_of(resources, *b)?)))
                    .collect(),
                max_joined: venue.tables_together.max_joined,
                pacing: venue.pacing,
            },
            None => VenueDefinition {
                slug,
                name: self
                    .name
                    .clone()
                    .ok_or_else(|| DomainError::invalid("name", "a new venue needs a name"))?,
                time_zone: self.time_zone.ok_or_else(|| {
                    DomainError::invalid("timeZone", "a new venue needs a time zone")
                })?,
                country: None,
                payments: domain::payments::PaymentPolicy::default(),
                guest_fields: domain::privacy::GuestFields::default(),
                retention_days: Venue::DEFAULT_RETENTION_DAYS,
                payment_data_days: Venue::DEFAULT_PAYMENT_DATA_DAYS,
                opt_ins: domain::OptIns::default(),
                allowed_origins: Vec::new(),
                rules: BookingRules::restaurant_defaults(),
                schedule: WeeklySchedule::default(),
                resources: Vec::new(),
                closures: Vec::new(),
                waitlist: domain::waitlist::WaitlistRules::default(),
                combinations: Vec::new(),
                adjacent: Vec::new(),
                max_joined: domain::combination::DEFAULT_MAX_JOINED,
                pacing: domain::Pacing::default(),
                exceptions: Vec::new(),
                services: Vec::new(),
            },
        };
        let Self {
            name,
            time_zone,
            country,
            slot_interval,
            booking_duration,
            buffer,
            min_notice,
            same_day_cutoff,
            cancel_deadline,
            max_party_size,
            max_advance_days,
            payment_kind,
            payment_amount,
            payment_currency,
            payment_per_guest,
            payment_hold,
            collect_email,
            collect_phone,
            collect_notes,
            retention_days,
            payment_data_days,
            opt_ins,
            allowed_origins,
            schedule,
            resources,
            closures,
            waitlist_offer_minutes,
            waitlist_retention_days,
            combinations,
            adjacent,
            max_joined,
            max_covers_per_slot,
            max_covers_per_hour,
            exceptions,
            services,
        } = self;
        fn keep_or<T>(slot: &mut T, change: Option<T>) {
            if let Some(value) = change {
                *slot = value;
            }
        }
        keep_or(&mut definition.name, name);
        keep_or(&mut definition.time_zone, time_zone);
        keep_or(&mut definition.country, country);
        let rules = &mut definition.rules;
        keep_or(&mut rules.slot_interval, slot_interval);
        keep_or(&mut rules.booking_duration, booking_duration);
        keep_or(&mut rules.buffer, buffer);
        keep_or(&mut rules.min_notice, min_notice);
        keep_or(&mut rules.same_day_cutoff, same_day_cutoff);
        keep_or(&mut rules.cancel_deadline, cancel_deadline);
        keep_or(&mut rules.max_party_size, max_party_size);
        keep_or(&mut rules.max_advance_days, max_advance_days);
        definition.rules = definition.rules.validate()?;
        if payment_kind.is_some()
            || payment_amount.is_some()
            || payment_currency.is_some()
            || payment_per_guest.is_some()
        {
            definition.payments.rule = changed_rule(
                definition.payments.rule,
                payment_kind,
                payment_amount,
                payment_currency,
                payment_per_guest,
            )?;
        }
        keep_or(&mut definition.payments.hold, payment_hold);
        keep_or(&mut definition.guest_fields.email, collect_email);
        keep_or(&mut definition.guest_fields.phone, collect_phone);
        keep_or(&mut definition.guest_fields.notes, collect_notes);
        keep_or(&mut definition.retention_days, retention_days);
        keep_or(&mut definition.payment_data_days, payment_data_days);
        keep_or(&mut definition.opt_ins, opt_ins);
        keep_or(&mut definition.allowed_origins, allowed_origins);
        keep_or(&mut definition.schedule, schedule);
        keep_or(&mut definition.closures, closures);
        keep_or(
            &mut definition.waitlist.offer_minutes,
            waitlist_offer_minutes,
        );
        keep_or(
            &mut definition.waitlist.retention_days,
            waitlist_retention_days,
        );
        keep_or(&mut definition.combinations, combinations);
        keep_or(&mut definition.adjacent, adjacent);
        keep_or(&mut definition.max_joined, max_joined);
        keep_or(
            &mut definition.pacing.max_covers_per_slot,
            max_covers_per_slot,
        );
        keep_or(
            &mut definition.pacing.max_covers_per_hour,
            max_covers_per_hour,
        );
        keep_or(&mut definition.exceptions, exceptions);
        keep_or(&mut definition.services, services);
        if let Some(listed) = resources {
            let stored = current.map_or(&[][..], |(_, resources)| resources);
            definition.resources = listed
                .into_iter()
                .map(|change| ResourceDefinition {
                    kind: change.kind.unwrap_or_else(|| {
                        stored
                            .iter()
                            .find(|r| r.slug == change.slug)
                            .map_or(ResourceKind::Table, |r| r.kind)
                    }),
                    hours: change.hours.unwrap_or_else(|| {
                        stored
                            .iter()
                            .find(|r| r.slug == change.slug)
                            .and_then(|r| r.hours.clone())
                    }),
                    slug: change.slug,
                    name: change.name,
                    capacity: change.capacity,
                })
                .collect();
        }
        Ok(definition)
    }
}

/// The slug of one of these resources.
fn slug_of(resources: &[Resource], id: ResourceId) -> Option<Slug> {
    resources
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.slug.clone())
}

#[derive(Debug, Clone)]
pub struct ResourceDefinition {
    pub slug: Slug,
    pub name: String,
    pub kind: ResourceKind,
    pub capacity: u32,
    /// Weekly hours of its own; `None` follows the venue's.
    pub hours: Option<WeeklySchedule>,
}

/// What an import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub venues_created: usize,
    pub venues_updated: usize,
    pub resources_created: usize,
    pub resources_updated: usize,
    /// Resources no longer in the file: kept for their past bookings, but
    /// they take no new ones.
    pub resources_retired: usize,
    /// Active bookings (pending or confirmed) that fall inside one of the
    /// saved closures: kept, for the manager to deal with.
    pub reservations_in_closures: Vec<domain::ReservationId>,
    /// Active bookings from now on that the saved hours and exceptions
    /// leave outside the working hours of their resource: kept, for the
    /// manager to deal with.
    pub reservations_outside_hours: Vec<domain::ReservationId>,
}

/// Replaces a venue's combinations and adjacent pairs inside the caller's
/// write transaction, after checking them against its active resources
/// (`slugs`: every resource of the venue, id and slug). Evaluates to `Ok`.
macro_rules! write_combinations {
    ($c:expr, $s:ident, $definition:expr, $venue_id:expr, $slugs:expr) => {
        $crate::step(|| {
            Ok({
                let definition: &VenueDefinition = $definition;
                let known: Vec<&Slug> = definition.resources.iter().map(|r| &r.slug).collect();
                domain::combination::check(
                    &known,
                    &definition.combinations,
                    &definition.adjacent,
                    definition.max_joined,
                )
                .map_err(|refusal| {
                    let field = match (refusal.list, refusal.position) {
                        ("combination", Some(i)) => {
                            format!("combinations.{i}.{}", camel(refusal.key))
                        }
                        ("adjacent", Some(i)) => format!("adjacentTables.{i}"),
                        ("combination", None) => "combinations".to_owned(),
                        ("adjacent", None) => "adjacentTables".to_owned(),
                        _ => "maxJoinedTables".to_owned(),
                    };
                    DomainError::invalid(field, refusal.reason)
                })?;
                let slugs: &[(String, String)] = $slugs;
                let id_of = |slug: &Slug| {
                    slugs
                        .iter()
                        .find(|(_, known)| known == slug.as_str())
                        .map(|(id, _)| id.clone())
                        .ok_or_else(|| StoreError::Corrupt(format!("resource {slug} vanished")))
                };
                use $s::resource_combinations::dsl as rc;
                diesel::delete(rc::resource_combinations.filter(rc::venue_id.eq($venue_id)))
                    .execute($c)?;
                let mut position = 0;
                for combination in &definition.combinations {
                    let members = combination
                        .resources
                        .iter()
                        .map(id_of)
                        .collect::<Result<Vec<_>, StoreError>>()?
                        .join(" ");
                    diesel::insert_into(rc::resource_combinations)
                        .values((
                            rc::venue_id.eq($venue_id),
                            rc::position.eq(position),
                            rc::kind.eq("fixed"),
                            rc::members.eq(members),
                            rc::capacity.eq(Some(db_int(combination.capacity))),
                            rc::min_party.eq(combination.min_party.map(db_int)),
                        ))
                        .execute($c)?;
                    position += 1;
                }
                for (a, b) in &definition.adjacent {
                    diesel::insert_into(rc::resource_combinations)
                        .values((
                            rc::venue_id.eq($venue_id),
                            rc::position.eq(position),
                            rc::kind.eq("adjacent"),
                            rc::members.eq(format!("{} {}", id_of(a)?, id_of(b)?)),
                            rc::capacity.eq(None::<i32>),
                            rc::min_party.eq(None::<i32>),
                        ))
                        .execute($c)?;
                    position += 1;
                }
            })
        })
    };
}

/// A key of a venue file (`min_party`) as GraphQL names it (`minParty`).
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes one venue definition inside the caller's write transaction:
/// creates the venue or updates the one with its slug, replaces its opening
/// hours, matches resources by slug and retires those it does not list.
/// Evaluates to `Ok` with the venue's id.
macro_rules! write_venue {
    ($c:expr, $s:ident, $definition:expr, $now:expr, $report:expr) => {
        $crate::step(|| {
            Ok({
                use $s::venues::dsl as v;
                let existing: Option<String> = v::venues
                    .filter(v::slug.eq($definition.slug.as_str()))
                    .select(v::id)
                    .first($c)
                    .optional()?;
                let rules = &$definition.rules;
                let values = (
                    v::name.eq(&$definition.name),
                    v::time_zone.eq($definition.time_zone.name()),
                    v::country.eq($definition.country.map(domain::Country::code)),
                    v::slot_interval_minutes.eq(db_int(rules.slot_interval.get())),
                    v::booking_duration_minutes.eq(db_int(rules.booking_duration.get())),
                    v::buffer_minutes.eq(db_int(rules.buffer.get())),
                    v::min_notice_minutes.eq(db_int(rules.min_notice.get())),
                    v::same_day_cutoff_minute
                        .eq(rules.same_day_cutoff.map(|t| db_int(t.minutes()))),
                    v::cancel_deadline_minutes.eq(db_int(rules.cancel_deadline.get())),
                    v::max_party_size.eq(db_int(rules.max_party_size)),
                    v::max_advance_days.eq(db_int(rules.max_advance_days)),
                    v::updated_at.eq($now),
                );
                let (rule, per_guest, amount) = match $definition.payments.rule {
                    domain::payments::PaymentRule::None => ("none", false, None),
                    domain::payments::PaymentRule::Deposit { amount, per_guest } => {
                        ("deposit", per_guest, Some(amount))
                    }
                    domain::payments::PaymentRule::Prepayment { amount, per_guest } => {
                        ("prepayment", per_guest, Some(amount))
                    }
                    domain::payments::PaymentRule::Guarantee { fee, per_guest } => {
                        ("guarantee", per_guest, Some(fee))
                    }
                };
                let field_values = (
                    v::retention_days.eq(db_int($definition.retention_days)),
                    v::payment_data_days.eq(db_int($definition.payment_data_days)),
                    v::collect_email.eq($definition.guest_fields.email.as_str()),
                    v::collect_phone.eq($definition.guest_fields.phone.as_str()),
                    v::collect_notes.eq($definition.guest_fields.notes.as_str()),
                    v::opt_in_purposes.eq($definition.opt_ins.to_text()),
                    v::allowed_origins
                        .eq(domain::Origin::list_to_text(&$definition.allowed_origins)),
                    v::max_joined_tables.eq(db_int($definition.max_joined)),
                    v::max_covers_per_slot.eq($definition.pacing.max_covers_per_slot.map(db_int)),
                    v::max_covers_per_hour.eq($definition.pacing.max_covers_per_hour.map(db_int)),
                );
                let payment_values = (
                    v::payment_rule.eq(rule),
                    v::payment_per_guest.eq(per_guest),
                    v::payment_amount_minor.eq(amount.map_or(0, |a| a.minor())),
                    v::payment_currency
                        .eq(amount
                            .map_or_else(|| "EUR".to_owned(), |a| a.currency().code().to_owned())),
                    v::payment_hold_minutes.eq(db_int($definition.payments.hold.get())),
                );
                let waitlist_values = (
                    v::waitlist_offer_minutes.eq(db_int($definition.waitlist.offer_minutes)),
                    v::waitlist_retention_days.eq(db_int($definition.waitlist.retention_days)),
                );
                let venue_id = match existing {
                    Some(id) => {
                        diesel::update(v::venues.find(&id))
                            .set(values)
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(payment_values)
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(field_values)
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(waitlist_values)
                            .execute($c)?;
                        $report.venues_updated += 1;
                        id
                    }
                    None => {
                        let id = VenueId::new_random().to_string();
                        diesel::insert_into(v::venues)
                            .values((
                                v::id.eq(&id),
                                v::slug.eq($definition.slug.as_str()),
                                v::created_at.eq($now),
                                values,
                            ))
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(payment_values)
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(field_values)
                            .execute($c)?;
                        diesel::update(v::venues.find(&id))
                            .set(waitlist_values)
                            .execute($c)?;
                        $report.venues_created += 1;
                        id
                    }
                };

                use $s::opening_hours::dsl as h;
                diesel::delete(h::opening_hours.filter(h::venue_id.eq(&venue_id))).execute($c)?;
                for (weekday, interval) in $definition.schedule.iter() {
                    diesel::insert_into(h::opening_hours)
                        .values((
                            h::venue_id.eq(&venue_id),
                            h::weekday.eq(db_int(weekday.num_days_from_monday())),
                            h::opens_minute.eq(db_int(interval.opens.minutes())),
                            h::closes_minute.eq(db_int(interval.closes.minutes())),
                        ))
                        .execute($c)?;
                }

                use $s::resources::dsl as r;
                let known: Vec<(String, String)> = r::resources
                    .filter(r::venue_id.eq(&venue_id))
                    .select((r::id, r::slug))
                    .load($c)?;
                for resource in &$definition.resources {
                    let values = (
                        r::name.eq(&resource.name),
                        r::kind.eq(resource.kind.as_str()),
                        r::capacity.eq(db_int(resource.capacity)),
                        r::working_hours
                            .eq(resource.hours.as_ref().map(domain::hours::week_to_text)),
                        r::active.eq(true),
                        r::updated_at.eq($now),
                    );
                    match known
                        .iter()
                        .find(|(_, slug)| slug == resource.slug.as_str())
                    {
                        Some((id, _)) => {
                            diesel::update(r::resources.find(id))
                                .set(values)
                                .execute($c)?;
                            $report.resources_updated += 1;
                        }
                        None => {
                            diesel::insert_into(r::resources)
                                .values((
                                    r::id.eq(ResourceId::new_random().to_string()),
                                    r::venue_id.eq(&venue_id),
                                    r::slug.eq(resource.slug.as_str()),
                                    r::created_at.eq($now),
                                    values,
                                ))
                                .execute($c)?;
                            $report.resources_created += 1;
                        }
                    }
                }
                let kept: Vec<&str> = $definition
                    .resources
                    .iter()
                    .map(|r| r.slug.as_str())
                    .collect();
                $report.resources_retired += diesel::update(
                    r::resources
                        .filter(r::venue_id.eq(&venue_id))
                        .filter(r::active.eq(true))
                        .filter(r::slug.ne_all(kept)),
                )
                .set((r::active.eq(false), r::updated_at.eq($now)))
                .execute($c)?;

                use $s::closures::dsl as cl;
                let slugs: Vec<(String, String)> = r::resources
                    .filter(r::venue_id.eq(&venue_id))
                    .select((r::id, r::slug))
                    .load($c)?;
                diesel::delete(cl::closures.filter(cl::venue_id.eq(&venue_id))).execute($c)?;
                let mut in_closures: Vec<(DateTime<Utc>, DateTime<Utc>, Option<String>)> =
                    Vec::new();
                for (index, closure) in $definition.closures.iter().enumerate() {
                    domain::closure::check_period(
                        $definition.time_zone,
                        closure.from,
                        closure.until,
                    )
                    .map_err(|reason| {
                        DomainError::invalid(format!("closures.{index}.until"), reason)
                    })?;
                    let resource_id = closure
                        .resource
                        .as_ref()
                        .map(|slug| {
                            resource_named(&slugs, slug, format!("closures.{index}.resource"))
                        })
                        .transpose()?;
                    let starts_at = db_instant(domain::venue::local_instant(
                        $definition.time_zone,
                        closure.from,
                    ));
                    let ends_at = db_instant(domain::venue::local_instant(
                        $definition.time_zone,
                        closure.until,
                    ));
                    diesel::insert_into(cl::closures)
                        .values((
                            cl::id.eq(closure
                                .id
                                .unwrap_or_else(domain::ClosureId::new_random)
                                .to_string()),
                            cl::venue_id.eq(&venue_id),
                            cl::resource_id.eq(&resource_id),
                            cl::local_from.eq(domain::closure::local_text(closure.from)),
                            cl::local_until.eq(domain::closure::local_text(closure.until)),
                            cl::starts_at.eq(starts_at),
                            cl::ends_at.eq(ends_at),
                            cl::reason.eq(&closure.reason),
                        ))
                        .execute($c)?;
                    in_closures.push((starts_at, ends_at, resource_id));
                }
                write_combinations!($c, $s, $definition, &venue_id, &slugs)?;
                {
                    use $s::reservations::dsl as b;
                    for (starts_at, ends_at, resource_id) in &in_closures {
                        let mut query = b::reservations
                            .filter(b::venue_id.eq(&venue_id))
                            .filter(b::status.eq_any([
                                ReservationStatus::Pending.as_str(),
                                ReservationStatus::Confirmed.as_str(),
                            ]))
                            .filter(b::starts_at.lt(*ends_at))
                            .filter(b::ends_at.gt(*starts_at))
                            .select(b::id)
                            .into_boxed();
                        if let Some(resource_id) = resource_id {
                            // Any booking holding it, as its primary resource
                            // or in a combination.
                            use $s::reservation_holds::dsl as held;
                            query = query.filter(
                                b::id.eq_any(
                                    held::reservation_holds
                                        .filter(held::resource_id.eq(resource_id.clone()))
                                        .select(held::reservation_id),
                                ),
                            );
                        }
                        for id in query.load::<String>($c)? {
                            let id = domain::ReservationId::parse(&id)
                                .map_err(|_| StoreError::Corrupt(format!("reservation id {id}")))?;
                            if !$report.reservations_in_closures.contains(&id) {
                                $report.reservations_in_closures.push(id);
                            }
                        }
                    }
                }

                use $s::hours_exceptions::dsl as hx;
                diesel::delete(hx::hours_exceptions.filter(hx::venue_id.eq(&venue_id)))
                    .execute($c)?;
                if let Some(index) = domain::hours::find_duplicate(
                    $definition
                        .exceptions
                        .iter()
                        .map(|e| (e.resource.as_ref().map(Slug::as_str), e.date)),
                ) {
                    return Err(DomainError::invalid(
                        format!("exceptions.{index}.date"),
                        "this date already has an exception for the same venue or resource",
                    )
                    .into());
                }
                for (index, exception) in $definition.exceptions.iter().enumerate() {
                    let hours =
                        domain::hours::check_day(exception.hours.clone()).map_err(|reason| {
                            DomainError::invalid(format!("exceptions.{index}.hours"), reason)
                        })?;
                    let resource_id = exception
                        .resource
                        .as_ref()
                        .map(|slug| {
                            resource_named(&slugs, slug, format!("exceptions.{index}.resourceSlug"))
                        })
                        .transpose()?;
                    diesel::insert_into(hx::hours_exceptions)
                        .values((
                            hx::id.eq(uuid::Uuid::new_v4().to_string()),
                            hx::venue_id.eq(&venue_id),
                            hx::resource_id.eq(&resource_id),
                            hx::local_date.eq(exception.date.format("%Y-%m-%d").to_string()),
                            hx::hours.eq(domain::hours::day_to_text(&hours)),
                        ))
                        .execute($c)?;
                }

                {
                    use $s::services::dsl as sv;
                    let saved_resources: Vec<Resource> = load_resources!($c, $s, &venue_id)?;
                    let known: Vec<(String, String)> = sv::services
                        .filter(sv::venue_id.eq(&venue_id))
                        .select((sv::id, sv::slug))
                        .load($c)?;
                    for (index, service) in $definition.services.iter().enumerate() {
                        let field = |name: &str| format!("services.{index}.{name}");
                        if $definition.services[..index]
                            .iter()
                            .any(|s| s.slug == service.slug)
                        {
                            return Err(DomainError::invalid(
                                field("slug"),
                                format!("`{}` appears twice", service.slug),
                            )
                            .into());
                        }
                        let mut ids: Vec<String> = Vec::new();
                        let mut deliverers: Vec<u32> = Vec::new();
                        for slug in &service.resources {
                            let resource = saved_resources
                                .iter()
                                .find(|r| r.slug == *slug && r.active)
                                .ok_or_else(|| {
                                    DomainError::invalid(
                                        field("resourceSlugs"),
                                        format!("this venue has no resource `{slug}`"),
                                    )
                                })?;
                            ids.push(resource.id.to_string());
                            deliverers.push(resource.capacity);
                        }
                        if service.resources.is_empty() {
                            deliverers = saved_resources
                                .iter()
                                .filter(|r| r.active)
                                .map(|r| r.capacity)
                                .collect();
                        }
                        let buffer = service.buffer.unwrap_or($definition.rules.buffer.get());
                        let max_party = service
                            .max_party
                            .unwrap_or($definition.rules.max_party_size);
                        domain::service::check(
                            service.duration,
                            buffer,
                            service.min_party,
                            max_party,
                            $definition.rules.max_party_size,
                            &deliverers,
                        )
                        .map_err(|(part, reason)| {
                            let name = match part {
                                "duration" => "durationMinutes",
                                "buffer" => "bufferMinutes",
                                "min_party" => "minPartySize",
                                "max_party" => "maxPartySize",
                                _ => "resourceSlugs",
                            };
                            DomainError::invalid(field(name), reason)
                        })?;
                        let (rule, per_guest, amount) = match service.payment {
                            None => (None, false, None),
                            Some(domain::payments::PaymentRule::None) => {
                                (Some("none"), false, None)
                            }
                            Some(domain::payments::PaymentRule::Deposit { amount, per_guest }) => {
                                (Some("deposit"), per_guest, Some(amount))
                            }
                            Some(domain::payments::PaymentRule::Prepayment {
                                amount,
                                per_guest,
                            }) => (Some("prepayment"), per_guest, Some(amount)),
                            Some(domain::payments::PaymentRule::Guarantee { fee, per_guest }) => {
                                (Some("guarantee"), per_guest, Some(fee))
                            }
                        };
                        let values = (
                            sv::name.eq(&service.name),
                            sv::duration_minutes.eq(db_int(service.duration)),
                            sv::buffer_minutes.eq(db_int(buffer)),
                            sv::min_party.eq(db_int(service.min_party)),
                            sv::max_party.eq(db_int(max_party)),
                            sv::resource_ids.eq(ids.join(" ")),
                            sv::payment_rule.eq(rule),
                            sv::payment_per_guest.eq(per_guest),
                            sv::payment_amount_minor.eq(amount.map_or(0, |a| a.minor())),
                            sv::payment_currency.eq(amount.map_or_else(
                                || "EUR".to_owned(),
                                |a| a.currency().code().to_owned(),
                            )),
                            sv::active.eq(true),
                            sv::position.eq(db_int(u32::try_from(index).unwrap_or(u32::MAX))),
                        );
                        match known.iter().find(|(_, slug)| slug == service.slug.as_str()) {
                            Some((id, _)) => {
                                diesel::update(sv::services.find(id))
                                    .set(values)
                                    .execute($c)?;
                            }
                            None => {
                                diesel::insert_into(sv::services)
                                    .values((
                                        sv::id.eq(domain::ServiceId::new_random().to_string()),
                                        sv::venue_id.eq(&venue_id),
                                        sv::slug.eq(service.slug.as_str()),
                                        values,
                                    ))
                                    .execute($c)?;
                            }
                        }
                    }
                    let listed: Vec<&str> = $definition
                        .services
                        .iter()
                        .map(|s| s.slug.as_str())
                        .collect();
                    diesel::update(
                        sv::services
                            .filter(sv::venue_id.eq(&venue_id))
                            .filter(sv::slug.ne_all(listed)),
                    )
                    .set(sv::active.eq(false))
                    .execute($c)?;
                }

                // The plan as saved, against the bookings still to come.
                if let Some(saved) = load_venue!($c, $s, &venue_id)? {
                    let resources: Vec<Resource> = load_resources!($c, $s, &venue_id)?;
                    use $s::reservations::dsl as b;
                    let upcoming: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> =
                        b::reservations
                            .filter(b::venue_id.eq(&venue_id))
                            .filter(b::status.eq_any([
                                ReservationStatus::Pending.as_str(),
                                ReservationStatus::Confirmed.as_str(),
                            ]))
                            .filter(b::starts_at.ge(db_instant($now)))
                            .order(b::starts_at)
                            .select((b::id, b::resource_id, b::starts_at, b::ends_at))
                            .load($c)?;
                    for (id, resource_id, starts_at, ends_at) in upcoming {
                        let works = resources
                            .iter()
                            .find(|r| r.id.to_string() == resource_id)
                            .is_some_and(|r| saved.works(r, starts_at, ends_at));
                        if !works {
                            let id = domain::ReservationId::parse(&id)
                                .map_err(|_| StoreError::Corrupt(format!("reservation id {id}")))?;
                            $report.reservations_outside_hours.push(id);
                        }
                    }
                }
                venue_id
            })
        })
    };
}

/// A page of venues and what is loaded with them, as stored.
type VenueRows = (
    Vec<VenueRow>,
    Vec<OpeningHoursRow>,
    Vec<crate::rows::ClosureRow>,
    Vec<crate::rows::CombinationRow>,
    Vec<crate::rows::HoursExceptionRow>,
    Vec<crate::rows::ServiceRow>,
);

impl Store {
    /// Creates or updates venues by slug, all or nothing. Each definition is
    /// the whole truth about its venue: a setting it leaves at its default
    /// is set to that default. Opening hours are replaced; resources are
    /// matched by slug within their venue, and those missing from the
    /// definition are retired, not deleted.
    pub fn import_venues(
        &self,
        definitions: &[VenueDefinition],
        now: DateTime<Utc>,
    ) -> Result<ImportReport, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let imported = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let mut report = ImportReport::default();
            for definition in definitions {
                write_venue!(c, s, definition, now, report)?;
            }
            Ok::<_, StoreError>(report)
        }));
        self.venue_cache.clear();
        self.occupancy_cache.everything_changed();
        imported
    }

    /// Changes the venue with this slug, or creates it, in one transaction:
    /// what `changes` leaves out keeps its stored value (a new venue takes
    /// the defaults). The stored venue is read inside the transaction, so
    /// two concurrent edits of different settings both stay.
    pub fn save_venue(
        &self,
        slug: &Slug,
        changes: VenueChanges,
        now: DateTime<Utc>,
    ) -> Result<(VenueId, ImportReport), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let saved = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            // The venue's id, locked until the transaction ends, so that
            // concurrent edits of one venue take turns and each starts
            // from what the other saved.
            let existing: Option<String> = s::load_locked!(
                s::venues::table
                    .filter(s::venues::slug.eq(slug.as_str()))
                    .select(s::venues::id)
                    .limit(1),
                c,
                ForUpdate::Wait
            )?
            .pop();
            let definition = match existing {
                None => changes.apply(slug.clone(), None)?,
                Some(id) => {
                    let current: Venue = load_venue!(c, s, &id)?
                        .ok_or_else(|| StoreError::Corrupt(format!("venue {id} vanished")))?;
                    let resources: Vec<Resource> = load_resources!(c, s, &id)?;
                    changes.apply(slug.clone(), Some((&current, &resources)))?
                }
            };
            let mut report = ImportReport::default();
            let id = write_venue!(c, s, &definition, now, report)?;
            let id =
                VenueId::parse(&id).map_err(|_| StoreError::Corrupt(format!("venue id {id}")))?;
            Ok::<_, StoreError>((id, report))
        }));
        self.venue_cache.clear();
        self.occupancy_cache.everything_changed();
        saved
    }

    /// Every origin some venue lists, each once: what the HTTP layer
    /// answers cross-origin requests for (with its own short cache).
    pub fn venue_origins(&self) -> Result<Vec<domain::Origin>, StoreError> {
        let mut connection = self.connection()?;
        let lists: Vec<String> = on_backend!(&mut *connection, |c, s| s::venues::table
            .filter(s::venues::allowed_origins.ne(""))
            .select(s::venues::allowed_origins)
            .load(c)?);
        let mut origins = Vec::new();
        for list in lists {
            origins.extend(
                domain::Origin::list_from_text(&list)
                    .map_err(|reason| StoreError::Corrupt(format!("venue origins: {reason}")))?,
            );
        }
        origins.sort();
        origins.dedup();
        Ok(origins)
    }

    /// The locales in which a venue has published a privacy notice, in
    /// order: the languages its booking form can show the notice in.
    pub fn notice_locales(&self, venue: VenueId) -> Result<Vec<String>, StoreError> {
        let venue_id = venue.to_string();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            s::privacy_notices::table
                .filter(s::privacy_notices::venue_id.eq(&venue_id))
                .select(s::privacy_notices::locale)
                .distinct()
                .order(s::privacy_notices::locale)
                .load::<String>(c)?
        }))
    }

    /// The id of the venue with this slug.
    pub fn venue_by_slug(&self, slug: &Slug) -> Result<Option<VenueId>, StoreError> {
        let mut connection = self.connection()?;
        let id: Option<String> = on_backend!(&mut *connection, |c, s| s::venues::table
            .filter(s::venues::slug.eq(slug.as_str()))
            .select(s::venues::id)
            .first(c)
            .optional()?);
        id.map(|id| VenueId::parse(&id).map_err(|_| StoreError::Corrupt(format!("venue id {id}"))))
            .transpose()
    }

    /// The venue a resource belongs to, for finding a resource by its id
    /// alone.
    pub fn resource_venue(&self, resource: &str) -> Result<Option<VenueId>, StoreError> {
        let mut connection = self.connection()?;
        let id: Option<String> = on_backend!(&mut *connection, |c, s| s::resources::table
            .filter(s::resources::id.eq(resource))
            .select(s::resources::venue_id)
            .first(c)
            .optional()?);
        id.map(|id| VenueId::parse(&id).map_err(|_| StoreError::Corrupt(format!("venue id {id}"))))
            .transpose()
    }

    /// A venue's closures that overlap `[from, until)` (either end open
    /// when left out), in time order.
    pub fn closures_between(
        &self,
        venue: VenueId,
        from: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<domain::Closure>, StoreError> {
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<crate::rows::ClosureRow> = on_backend!(&mut *connection, |c, s| {
            use s::closures::dsl as cl;
            let mut query = cl::closures
                .filter(cl::venue_id.eq(&venue))
                .order((cl::starts_at, cl::id))
                .into_boxed();
            if let Some(from) = from {
                query = query.filter(cl::ends_at.gt(db_instant(from)));
            }
            if let Some(until) = until {
                query = query.filter(cl::starts_at.lt(db_instant(until)));
            }
            query.load(c)?
        });
        rows.into_iter().map(domain::Closure::try_from).collect()
    }

    /// Whether no venue exists yet (a fresh database).
    pub fn has_no_venues(&self) -> Result<bool, StoreError> {
        let mut connection = self.connection()?;
        let count: i64 = on_backend!(&mut *connection, |c, s| s::venues::table
            .count()
            .get_result(c)?);
        Ok(count == 0)
    }
}

impl VenueRepository for Store {
    type Error = StoreError;

    fn venue(&self, id: VenueId) -> Result<Option<Venue>, StoreError> {
        let mut connection = self.connection()?;
        let id = id.to_string();
        Ok(on_backend!(&mut *connection, |c, s| load_venue!(
            c, s, &id
        )?))
    }

    fn venues(&self, after: Option<VenueId>, first: usize) -> Result<Page<Venue>, StoreError> {
        let mut connection = self.connection()?;
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let limit = i64::try_from(first).unwrap_or(i64::MAX).saturating_add(1);
        let (rows, hours, closures, combinations, exceptions, services): VenueRows =
            on_backend!(&mut *connection, |c, s| {
                let rows: Vec<VenueRow> = s::venues::table
                    .filter(s::venues::id.gt(&after))
                    .order(s::venues::id)
                    .limit(limit)
                    .load(c)?;
                let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
                let hours = s::opening_hours::table
                    .filter(s::opening_hours::venue_id.eq_any(&ids))
                    .load(c)?;
                let closures = s::closures::table
                    .filter(s::closures::venue_id.eq_any(&ids))
                    .order(s::closures::starts_at)
                    .load(c)?;
                let combinations = s::resource_combinations::table
                    .filter(s::resource_combinations::venue_id.eq_any(&ids))
                    .order(s::resource_combinations::position)
                    .load(c)?;
                let exceptions = s::hours_exceptions::table
                    .filter(s::hours_exceptions::venue_id.eq_any(&ids))
                    .order(s::hours_exceptions::local_date)
                    .load(c)?;
                let services = s::services::table
                    .filter(s::services::venue_id.eq_any(&ids))
                    .order(s::services::position)
                    .load(c)?;
                (rows, hours, closures, combinations, exceptions, services)
            });
        let has_next_page = rows.len() > first;
        let items = rows
            .into_iter()
            .take(first)
            .map(|row| {
                let id = row.id.clone();
                let mut venue = row.into_domain(&hours)?;
                venue.closures = closures
                    .iter()
                    .filter(|closure| closure.venue_id == id)
                    .cloned()
                    .map(domain::Closure::try_from)
                    .collect::<Result<Vec<_>, StoreError>>()?;
                for row in combinations.iter().filter(|row| row.venue_id == id) {
                    row.add_to(&mut venue.tables_together)?;
                }
                venue.exceptions = exceptions
                    .iter()
                    .filter(|exception| exception.venue_id == id)
                    .cloned()
                    .map(domain::HoursException::try_from)
                    .collect::<Result<Vec<_>, StoreError>>()?;
                venue.services = services
                    .iter()
                    .filter(|service| service.venue_id == id)
                    .cloned()
                    .map(domain::Service::try_from)
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(venue)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page {
            items,
            has_next_page,
        })
    }

    fn resources(&self, venue: VenueId) -> Result<Vec<Resource>, StoreError> {
        let mut connection = self.connection()?;
        let venue = venue.to_string();
        Ok(on_backend!(&mut *connection, |c, s| load_resources!(
            c, s, &venue
        )?))
    }

    fn availability(
        &self,
        venue_id: VenueId,
        date: NaiveDate,
        party: PartySize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Slot>, StoreError> {
        Ok(self.availability_view(venue_id, date, party, None, now)?.1)
    }
}

/// The id of the venue's resource with this slug (`slugs`: id and slug of
/// each), or an input error at `field`: closures and exceptions name
/// resources the same way.
fn resource_named(
    slugs: &[(String, String)],
    slug: &Slug,
    field: String,
) -> Result<String, DomainError> {
    slugs
        .iter()
        .find(|(_, known)| known == slug.as_str())
        .map(|(id, _)| id.clone())
        .ok_or_else(|| DomainError::invalid(field, format!("this venue has no resource `{slug}`")))
}

/// A venue's definition as the hot reads use it: rules, hours, resources.
#[derive(Debug)]
pub struct VenueView {
    pub venue: Venue,
    /// Retired ones included, in slug order.
    pub resources: Vec<Resource>,
    /// The venue's combinations of tables (`TablesTogether::candidates`),
    /// found once per definition rather than on every availability query.
    pub candidates: Vec<domain::combination::CandidateSet>,
}

/// How long a cached venue definition serves reads. Edits made through
/// this node drop it at once; edits made through another node (or the
/// CLI) reach this node's availability within this time.
const VENUE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Venue definitions change rarely and are read by every availability
/// request and day sheet; caching them briefly leaves one query (the
/// occupancy) on the hottest path. Bookings never use it: they check
/// their rules inside their own transaction.
#[derive(Default)]
pub(crate) struct VenueCache(
    std::sync::Mutex<HashMap<String, (std::time::Instant, Arc<VenueView>)>>,
);

impl VenueCache {
    fn fresh(&self, id: &str) -> Option<Arc<VenueView>> {
        let entries = self.0.lock().ok()?;
        let (loaded, view) = entries.get(id)?;
        (loaded.elapsed() < VENUE_CACHE_TTL).then(|| Arc::clone(view))
    }

    fn keep(&self, id: String, view: &Arc<VenueView>) {
        if let Ok(mut entries) = self.0.lock() {
            entries.insert(id, (std::time::Instant::now(), Arc::clone(view)));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.0.lock() {
            entries.clear();
        }
    }
}

/// How long a day's occupancy serves availability on this node. Bookings
/// through this node drop it at once; bookings through another node show
/// here within this time. Availability is advice: the booking itself
/// decides in its transaction, and answers SLOT_TAKEN when the slot went.
const OCCUPANCY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Past this many cached windows, expired ones are swept before another is
/// kept, and if none expired the cache starts over: anonymous callers
/// choose the dates, so they must not choose how much memory it holds.
const OCCUPANCY_CACHE_ENTRIES: usize = 4096;

/// Which spans of a venue are taken, keyed by venue and window.
type OccupancyKey = (String, DateTime<Utc>, DateTime<Utc>);

/// The occupancy of the days people are looking at, kept for a second:
/// a booking page asks the same few dates of a venue many times a second,
/// and the occupancy query is then the only database work availability
/// does. Each venue has a generation that this node's reservation writes
/// bump after they commit; a window loaded under an older generation is
/// not served, so a reader that raced a booking cannot keep what it saw
/// before the booking.
#[derive(Default)]
pub(crate) struct OccupancyCache(std::sync::Mutex<OccupancyState>);

#[derive(Default)]
struct OccupancyState {
    /// Bumped by writes whose venue is not known (hold expiry, payments).
    everything: u64,
    venues: HashMap<String, u64>,
    windows: HashMap<OccupancyKey, CachedOccupancy>,
}

struct CachedOccupancy {
    loaded: std::time::Instant,
    /// The time the holds were judged at: a clock that jumped (tests, a
    /// corrected system clock) makes the window stale as well.
    judged_at: DateTime<Utc>,
    generation: (u64, u64),
    spans: Arc<Vec<Occupancy>>,
}

impl OccupancyState {
    fn generation(&self, venue: &str) -> (u64, u64) {
        (
            self.everything,
            self.venues.get(venue).copied().unwrap_or(0),
        )
    }
}

impl OccupancyCache {
    /// The generation a load must remember, read before it queries.
    pub(crate) fn generation(&self, venue: &str) -> Option<(u64, u64)> {
        Some(self.0.lock().ok()?.generation(venue))
    }

    pub(crate) fn fresh(
        &self,
        key: &OccupancyKey,
        now: DateTime<Utc>,
    ) -> Option<Arc<Vec<Occupancy>>> {
        let state = self.0.lock().ok()?;
        let cached = state.windows.get(key)?;
        let judged_ago = (now - cached.judged_at).to_std().ok()?;
        (cached.loaded.elapsed() < OCCUPANCY_CACHE_TTL
            && judged_ago < OCCUPANCY_CACHE_TTL
            && cached.generation == state.generation(&key.0))
        .then(|| Arc::clone(&cached.spans))
    }

    pub(crate) fn keep(
        &self,
        key: OccupancyKey,
        generation: (u64, u64),
        judged_at: DateTime<Utc>,
        spans: &Arc<Vec<Occupancy>>,
    ) {
        let Ok(mut state) = self.0.lock() else {
            return;
        };
        if state.generation(&key.0) != generation {
            return;
        }
        if state.windows.len() >= OCCUPANCY_CACHE_ENTRIES {
            state
                .windows
                .retain(|_, cached| cached.loaded.elapsed() < OCCUPANCY_CACHE_TTL);
            if state.windows.len() >= OCCUPANCY_CACHE_ENTRIES {
                state.windows.clear();
            }
        }
        state.windows.insert(
            key,
            CachedOccupancy {
                loaded: std::time::Instant::now(),
                judged_at,
                generation,
                spans: Arc::clone(spans),
            },
        );
    }

    /// A reservation of this venue changed (after its commit).
    pub(crate) fn venue_changed(&self, venue: &str) {
        if let Ok(mut state) = self.0.lock() {
            *state.venues.entry(venue.to_owned()).or_default() += 1;
            state.windows.retain(|key, _| key.0 != venue);
        }
    }

    /// Reservations of venues not known here changed (after the commit).
    pub(crate) fn everything_changed(&self) {
        if let Ok(mut state) = self.0.lock() {
            state.everything += 1;
            state.windows.clear();
        }
    }
}

/// The cached definition, or loads it on the caller's connection.
macro_rules! venue_view {
    ($store:expr, $c:expr, $s:ident, $id:expr) => {
        $crate::step(|| {
            Ok({
                match $store.venue_cache.fresh($id) {
                    Some(view) => Some(view),
                    None => match load_venue!($c, $s, $id)? {
                        None => None,
                        Some(venue) => {
                            let resources = load_resources!($c, $s, $id)?;
                            let candidates = venue.tables_together.candidates(&resources);
                            let view = Arc::new(VenueView {
                                venue,
                                resources,
                                candidates,
                            });
                            $store.venue_cache.keep($id.to_owned(), &view);
                            Some(view)
                        }
                    },
                }
            })
        })
    };
}

impl Store {
    /// A venue with its resources, from the cache when fresh.
    pub fn venue_view(&self, id: VenueId) -> Result<Option<Arc<VenueView>>, StoreError> {
        let id = id.to_string();
        if let Some(view) = self.venue_cache.fresh(&id) {
            return Ok(Some(view));
        }
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| venue_view!(
            self, c, s, &id
        )?))
    }

    /// Start times on a local date with the resources free for each, and
    /// the venue they belong to: one connection, and only the occupancy
    /// query when the venue's definition is cached.
    pub fn availability_view(
        &self,
        venue_id: VenueId,
        date: NaiveDate,
        party: PartySize,
        service: Option<domain::ServiceId>,
        now: DateTime<Utc>,
    ) -> Result<(Arc<VenueView>, Vec<Slot>), StoreError> {
        let mut connection = self.connection()?;
        let id = venue_id.to_string();
        let (view, occupied): (Arc<VenueView>, Arc<Vec<Occupancy>>) =
            on_backend!(&mut *connection, |c, s| {
                let view = venue_view!(self, c, s, &id)?.ok_or(DomainError::not_found("venue"))?;
                let offered = view.venue.service_for(service)?;
                // The hours any active resource works that day bound the
                // bookings that can touch its slots.
                let active: Vec<&Resource> = view.resources.iter().filter(|r| r.active).collect();
                let day = domain::availability::working_day(&view.venue, &active, date);
                let shape = offered.map_or_else(
                    || domain::Shape::of_venue(&view.venue),
                    domain::Service::shape,
                );
                let grid = domain::availability::grid_of(&view.venue, &day, shape);
                let occupied = match (grid.first(), grid.last()) {
                    (Some((from, _)), Some((last, _))) => {
                        let until = *last + shape.duration.duration() + shape.buffer.duration();
                        let key = (id.clone(), *from, until);
                        match self.occupancy_cache.fresh(&key, now) {
                            Some(spans) => spans,
                            None => {
                                let generation = self.occupancy_cache.generation(&id);
                                let spans =
                                    Arc::new(load_occupancy!(c, s, &id, *from, until, "", now)?);
                                if let Some(generation) = generation {
                                    self.occupancy_cache.keep(key, generation, now, &spans);
                                }
                                spans
                            }
                        }
                    }
                    _ => Arc::default(),
                };
                (view, occupied)
            });
        let context = BookingContext {
            venue: &view.venue,
            resources: &view.resources,
            occupied: &occupied,
            now,
            service: view.venue.service_for(service)?,
        };
        let slots = context.availability_with(date, party, &view.candidates)?;
        Ok((view, slots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(venue: &str, day: u32) -> OccupancyKey {
        let from = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, day, 9, 0, 0).unwrap();
        (venue.to_owned(), from, from + chrono::Duration::hours(14))
    }

    fn spans() -> Arc<Vec<Occupancy>> {
        Arc::new(Vec::new())
    }

    #[test]
    fn a_window_is_served_until_its_venue_changes() {
        let cache = OccupancyCache::default();
        let now = Utc::now();
        let generation = cache.generation("a").unwrap();
        cache.keep(key("a", 1), generation, now, &spans());
        cache.keep(key("b", 1), cache.generation("b").unwrap(), now, &spans());
        assert!(cache.fresh(&key("a", 1), now).is_some());
        assert!(cache.fresh(&key("a", 2), now).is_none(), "another day");

        cache.venue_changed("a");
        assert!(cache.fresh(&key("a", 1), now).is_none());
        assert!(
            cache.fresh(&key("b", 1), now).is_some(),
            "other venues stay"
        );
        cache.everything_changed();
        assert!(cache.fresh(&key("b", 1), now).is_none());
    }

    #[test]
    fn a_load_that_raced_a_booking_is_not_kept() {
        let cache = OccupancyCache::default();
        let now = Utc::now();
        // Read before the query; the booking commits while it runs.
        let before = cache.generation("a").unwrap();
        cache.venue_changed("a");
        cache.keep(key("a", 1), before, now, &spans());
        assert!(cache.fresh(&key("a", 1), now).is_none());

        let before = cache.generation("a").unwrap();
        cache.everything_changed();
        cache.keep(key("a", 1), before, now, &spans());
        assert!(cache.fresh(&key("a", 1), now).is_none());
    }

    #[test]
    fn a_window_judged_at_another_time_is_stale() {
        let cache = OccupancyCache::default();
        let now = Utc::now();
        cache.keep(key("a", 1), cache.generation("a").unwrap(), now, &spans());
        let later = now + chrono::Duration::seconds(5);
        assert!(
            cache.fresh(&key("a", 1), later).is_none(),
            "holds may have ended"
        );
        let earlier = now - chrono::Duration::seconds(5);
        assert!(cache.fresh(&key("a", 1), earlier).is_none());
    }

    #[test]
    fn callers_cannot_grow_the_cache_without_bound() {
        let cache = OccupancyCache::default();
        let now = Utc::now();
        let from = key("a", 1).1;
        for minute in 0..(OCCUPANCY_CACHE_ENTRIES as i64 * 2) {
            let start = from + chrono::Duration::minutes(minute);
            let generation = cache.generation("a").unwrap();
            cache.keep(("a".to_owned(), start, start), generation, now, &spans());
        }
        let held = cache.0.lock().unwrap().windows.len();
        assert!(held <= OCCUPANCY_CACHE_ENTRIES, "{held} windows kept");
    }
}
