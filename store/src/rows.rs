//! Rows as stored, and their checked conversion into domain types. A row
//! that no longer satisfies the domain's rules is reported as corrupt rather
//! than passed on.

use chrono::{DateTime, Utc};
use diesel::Queryable;
use domain::{
    BookingRules, Minutes, OpeningInterval, PartySize, Reservation, ReservationId,
    ReservationStatus, Resource, ResourceId, ResourceKind, Slug, TimeOfDay, Venue, VenueId,
    WeeklySchedule,
};

use crate::StoreError;

#[derive(Debug, Clone, Queryable)]
pub struct VenueRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub slot_interval_minutes: i32,
    pub booking_duration_minutes: i32,
    pub buffer_minutes: i32,
    pub min_notice_minutes: i32,
    pub same_day_cutoff_minute: Option<i32>,
    pub cancel_deadline_minutes: i32,
    pub max_party_size: i32,
    pub max_advance_days: i32,
    pub _created_at: DateTime<Utc>,
    pub _updated_at: DateTime<Utc>,
    pub country: Option<String>,
    pub payment_rule: String,
    pub payment_per_guest: bool,
    pub payment_amount_minor: i64,
    pub payment_currency: String,
    pub payment_hold_minutes: i32,
    pub collect_email: String,
    pub collect_phone: String,
    pub collect_notes: String,
    pub retention_days: i32,
    pub payment_data_days: i32,
    pub opt_in_purposes: String,
    pub allowed_origins: String,
    pub waitlist_offer_minutes: i32,
    pub waitlist_retention_days: i32,
    pub max_joined_tables: i32,
    pub max_covers_per_slot: Option<i32>,
    pub max_covers_per_hour: Option<i32>,
}

/// A fixed combination or an adjacent pair of a venue's tables.
#[derive(Debug, Clone, Queryable)]
pub struct CombinationRow {
    pub venue_id: String,
    pub _position: i32,
    pub kind: String,
    /// Resource ids, space-separated, the primary first.
    pub members: String,
    pub capacity: Option<i32>,
    pub min_party: Option<i32>,
}

impl CombinationRow {
    /// Adds this row to a venue's tables-together definition.
    pub fn add_to(&self, together: &mut domain::TablesTogether) -> Result<(), StoreError> {
        let bad = |what: &str| corrupt("combination", &self.venue_id, what);
        let members = self
            .members
            .split_whitespace()
            .map(|id| ResourceId::parse(id).map_err(|_| bad("member id")))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let count = |value: Option<i32>| value.map(u32::try_from).transpose();
        match (self.kind.as_str(), members.as_slice()) {
            ("adjacent", [a, b]) => together.adjacent.push((*a, *b)),
            ("fixed", _) if members.len() >= 2 => together.combinations.push(domain::Combination {
                resources: members,
                capacity: count(self.capacity)
                    .map_err(|_| bad("capacity"))?
                    .ok_or_else(|| bad("no capacity"))?,
                min_party: count(self.min_party).map_err(|_| bad("smallest party"))?,
            }),
            _ => return Err(bad("kind or members")),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct OpeningHoursRow {
    pub venue_id: String,
    pub weekday: i32,
    pub opens_minute: i32,
    pub closes_minute: i32,
}

#[derive(Debug, Clone, Queryable)]
pub struct ResourceRow {
    pub id: String,
    pub venue_id: String,
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub capacity: i32,
    pub active: bool,
    pub _created_at: DateTime<Utc>,
    pub _updated_at: DateTime<Utc>,
    /// `domain::hours::week_to_text`; `None` follows the venue's hours.
    pub working_hours: Option<String>,
}

/// The non-personal columns of a reservation, selected with
/// [`reservation_columns`]. Also the answer stored for an idempotent replay:
/// the reservation as the first request left it.
#[derive(Debug, Clone, Queryable, serde::Serialize, serde::Deserialize)]
pub struct ReservationRow {
    pub id: String,
    pub venue_id: String,
    pub resource_id: String,
    pub party_size: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    pub status: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub guest_id: Option<String>,
    #[serde(default)]
    pub hold_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub service_id: Option<String>,
}

/// The columns of [`ReservationRow`], in its order.
macro_rules! reservation_columns {
    ($s:ident) => {
        (
            $s::reservations::id,
            $s::reservations::venue_id,
            $s::reservations::resource_id,
            $s::reservations::party_size,
            $s::reservations::starts_at,
            $s::reservations::ends_at,
            $s::reservations::blocked_until,
            $s::reservations::status,
            $s::reservations::version,
            $s::reservations::created_at,
            $s::reservations::updated_at,
            $s::reservations::guest_id,
            $s::reservations::hold_until,
            $s::reservations::service_id,
        )
    };
}
pub(crate) use reservation_columns;

fn corrupt(table: &str, id: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table} {id}: {what}"))
}

fn minutes(table: &str, id: &str, value: i32) -> Result<Minutes, StoreError> {
    u32::try_from(value)
        .map(Minutes::new_unchecked)
        .map_err(|_| corrupt(table, id, "negative minutes"))
}

impl VenueRow {
    pub fn into_domain(self, hours: &[OpeningHoursRow]) -> Result<Venue, StoreError> {
        let id = &self.id;
        let bad = |what: String| corrupt("venue", id, what);
        let mut days: [Vec<OpeningInterval>; 7] = Default::default();
        for row in hours.iter().filter(|row| row.venue_id == self.id) {
            let minute = |value: i32| {
                u32::try_from(value)
                    .ok()
                    .and_then(TimeOfDay::from_minutes)
                    .ok_or_else(|| bad(format!("opening minute {value} out of range")))
            };
            let interval =
                OpeningInterval::new(minute(row.opens_minute)?, minute(row.closes_minute)?)
                    .map_err(&bad)?;
            let day = usize::try_from(row.weekday)
                .ok()
                .and_then(|index| days.get_mut(index))
                .ok_or_else(|| bad(format!("weekday {} out of range", row.weekday)))?;
            day.push(interval);
        }
        let rules = BookingRules {
            slot_interval: minutes("venue", id, self.slot_interval_minutes)?,
            booking_duration: minutes("venue", id, self.booking_duration_minutes)?,
            buffer: minutes("venue", id, self.buffer_minutes)?,
            min_notice: minutes("venue", id, self.min_notice_minutes)?,
            same_day_cutoff: match self.same_day_cutoff_minute {
                None => None,
                Some(value) => Some(
                    u32::try_from(value)
                        .ok()
                        .and_then(TimeOfDay::from_minutes)
                        .ok_or_else(|| bad("same-day cut-off out of range".to_owned()))?,
                ),
            },
            cancel_deadline: minutes("venue", id, self.cancel_deadline_minutes)?,
            max_party_size: u32::try_from(self.max_party_size).map_err(|e| bad(e.to_string()))?,
            max_advance_days: u32::try_from(self.max_advance_days)
                .map_err(|e| bad(e.to_string()))?,
        }
        .validate()
        .map_err(|e| bad(e.to_string()))?;
        let amount = domain::payments::Currency::parse(&self.payment_currency)
            .and_then(|currency| domain::payments::Money::new(self.payment_amount_minor, currency))
            .map_err(|e| bad(e.to_string()))?;
        let per_guest = self.payment_per_guest;
        let payments = domain::payments::PaymentPolicy {
            rule: match self.payment_rule.as_str() {
                "deposit" => domain::payments::PaymentRule::Deposit { amount, per_guest },
                "prepayment" => domain::payments::PaymentRule::Prepayment { amount, per_guest },
                "guarantee" => domain::payments::PaymentRule::Guarantee {
                    fee: amount,
                    per_guest,
                },
                _ => domain::payments::PaymentRule::None,
            },
            hold: minutes("venue", id, self.payment_hold_minutes)?,
        };
        let rule = |raw: &str| domain::privacy::FieldRule::parse(raw).map_err(&bad);
        let guest_fields = domain::privacy::GuestFields {
            email: rule(&self.collect_email)?,
            phone: rule(&self.collect_phone)?,
            notes: rule(&self.collect_notes)?,
        };
        Ok(Venue {
            payments,
            guest_fields,
            opt_ins: domain::OptIns::parse_text(&self.opt_in_purposes).map_err(&bad)?,
            allowed_origins: domain::Origin::list_from_text(&self.allowed_origins).map_err(&bad)?,
            // Loaded next to the venue by `load_venue!`.
            closures: Vec::new(),
            waitlist: domain::waitlist::WaitlistRules {
                offer_minutes: u32::try_from(self.waitlist_offer_minutes)
                    .map_err(|e| bad(e.to_string()))?,
                retention_days: u32::try_from(self.waitlist_retention_days)
                    .map_err(|e| bad(e.to_string()))?,
            },
            tables_together: domain::TablesTogether {
                max_joined: u32::try_from(self.max_joined_tables)
                    .map_err(|e| bad(e.to_string()))?,
                ..domain::TablesTogether::default()
            },
            pacing: domain::Pacing {
                max_covers_per_slot: self
                    .max_covers_per_slot
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| bad(e.to_string()))?,
                max_covers_per_hour: self
                    .max_covers_per_hour
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| bad(e.to_string()))?,
            },
            exceptions: Vec::new(),
            services: Vec::new(),
            retention_days: u32::try_from(self.retention_days).map_err(|e| bad(e.to_string()))?,
            payment_data_days: u32::try_from(self.payment_data_days)
                .map_err(|e| bad(e.to_string()))?,
            id: VenueId::parse(&self.id).map_err(|e| bad(e.to_string()))?,
            slug: Slug::parse(&self.slug).map_err(&bad)?,
            time_zone: domain::venue::parse_time_zone(&self.time_zone).map_err(&bad)?,
            country: self
                .country
                .as_deref()
                .map(domain::Country::parse)
                .transpose()
                .map_err(&bad)?,
            schedule: WeeklySchedule::new(days).map_err(&bad)?,
            rules,
            name: self.name,
        })
    }
}

impl TryFrom<ResourceRow> for Resource {
    type Error = StoreError;

    fn try_from(row: ResourceRow) -> Result<Self, StoreError> {
        let bad = |what: String| corrupt("resource", &row.id, what);
        Ok(Resource {
            id: ResourceId::parse(&row.id).map_err(|e| bad(e.to_string()))?,
            venue_id: VenueId::parse(&row.venue_id).map_err(|e| bad(e.to_string()))?,
            slug: Slug::parse(&row.slug).map_err(&bad)?,
            kind: ResourceKind::parse(&row.kind).map_err(&bad)?,
            capacity: Resource::check_capacity(i64::from(row.capacity)).map_err(&bad)?,
            active: row.active,
            hours: row
                .working_hours
                .as_deref()
                .map(domain::hours::week_from_text)
                .transpose()
                .map_err(&bad)?,
            name: row.name,
        })
    }
}

impl TryFrom<ReservationRow> for Reservation {
    type Error = StoreError;

    fn try_from(row: ReservationRow) -> Result<Self, StoreError> {
        let bad = |what: String| corrupt("reservation", &row.id, what);
        Ok(Reservation {
            id: ReservationId::parse(&row.id).map_err(|e| bad(e.to_string()))?,
            venue_id: VenueId::parse(&row.venue_id).map_err(|e| bad(e.to_string()))?,
            resource_id: ResourceId::parse(&row.resource_id).map_err(|e| bad(e.to_string()))?,
            guest_id: row
                .guest_id
                .as_deref()
                .map(domain::GuestId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            party_size: PartySize::parse(i64::from(row.party_size))
                .map_err(|e| bad(e.to_string()))?,
            status: ReservationStatus::parse(&row.status)
                .ok_or_else(|| bad(format!("unknown status {}", row.status)))?,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            blocked_until: row.blocked_until,
            hold_until: row.hold_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
            service_id: row
                .service_id
                .as_deref()
                .map(domain::ServiceId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
        })
    }
}

/// A stored service.
#[derive(Debug, Clone, Queryable)]
pub struct ServiceRow {
    pub id: String,
    pub venue_id: String,
    pub slug: String,
    pub name: String,
    pub duration_minutes: i32,
    pub buffer_minutes: i32,
    pub min_party: i32,
    pub max_party: i32,
    pub resource_ids: String,
    pub payment_rule: Option<String>,
    pub payment_per_guest: bool,
    pub payment_amount_minor: i64,
    pub payment_currency: String,
    pub active: bool,
    pub position: i32,
}

impl TryFrom<ServiceRow> for domain::Service {
    type Error = StoreError;

    fn try_from(row: ServiceRow) -> Result<Self, StoreError> {
        let id = row.id.as_str();
        let bad = |what: String| corrupt("service", id, what);
        let payment = match row.payment_rule.as_deref() {
            None => None,
            Some(kind) => {
                let amount = domain::payments::Currency::parse(&row.payment_currency)
                    .and_then(|c| domain::payments::Money::new(row.payment_amount_minor, c))
                    .map_err(|e| bad(e.to_string()))?;
                let per_guest = row.payment_per_guest;
                Some(match kind {
                    "deposit" => domain::payments::PaymentRule::Deposit { amount, per_guest },
                    "prepayment" => domain::payments::PaymentRule::Prepayment { amount, per_guest },
                    "guarantee" => domain::payments::PaymentRule::Guarantee {
                        fee: amount,
                        per_guest,
                    },
                    _ => domain::payments::PaymentRule::None,
                })
            }
        };
        Ok(domain::Service {
            id: domain::ServiceId::parse(id).map_err(|e| bad(e.to_string()))?,
            venue_id: VenueId::parse(&row.venue_id).map_err(|e| bad(e.to_string()))?,
            slug: Slug::parse(&row.slug).map_err(&bad)?,
            duration: minutes("service", id, row.duration_minutes)?,
            buffer: minutes("service", id, row.buffer_minutes)?,
            min_party: u32::try_from(row.min_party).map_err(|e| bad(e.to_string()))?,
            max_party: u32::try_from(row.max_party).map_err(|e| bad(e.to_string()))?,
            resources: row
                .resource_ids
                .split_whitespace()
                .map(ResourceId::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?,
            payment,
            active: row.active,
            name: row.name.clone(),
        })
    }
}

/// A stored exception to a working plan.
#[derive(Debug, Clone, Queryable)]
pub struct HoursExceptionRow {
    pub id: String,
    pub venue_id: String,
    pub resource_id: Option<String>,
    pub local_date: String,
    pub hours: String,
}

impl TryFrom<HoursExceptionRow> for domain::HoursException {
    type Error = StoreError;

    fn try_from(row: HoursExceptionRow) -> Result<Self, StoreError> {
        let bad = |what: String| corrupt("hours exception", &row.id, what);
        Ok(domain::HoursException {
            resource_id: row
                .resource_id
                .as_deref()
                .map(ResourceId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            date: domain::hours::parse_date(&row.local_date).map_err(&bad)?,
            hours: domain::hours::day_from_text(&row.hours).map_err(&bad)?,
        })
    }
}

/// A stored closure.
#[derive(Debug, Clone, Queryable)]
pub struct ClosureRow {
    pub id: String,
    pub venue_id: String,
    pub resource_id: Option<String>,
    pub local_from: String,
    pub local_until: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<String>,
}

impl TryFrom<ClosureRow> for domain::Closure {
    type Error = StoreError;

    fn try_from(row: ClosureRow) -> Result<Self, StoreError> {
        let bad = |what: String| corrupt("closure", &row.id, what);
        Ok(domain::Closure {
            id: domain::ClosureId::parse(&row.id).map_err(|e| bad(e.to_string()))?,
            resource_id: row
                .resource_id
                .as_deref()
                .map(ResourceId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            from: domain::closure::parse_local(&row.local_from).map_err(&bad)?,
            until: domain::closure::parse_local(&row.local_until).map_err(&bad)?,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            reason: row.reason,
        })
    }
}

/// Values as the database stores them; ranges were checked by the domain.
pub fn db_int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Stored instants have whole seconds, so that SQLite's text form sorts in
/// time order and both backends round-trip the same value.
pub fn db_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    instant
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or(instant)
}
