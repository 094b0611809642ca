//! The benchmark's data set: venues in several time zones with their
//! resources, guests sealed and with lookup tokens exactly as bookings
//! write them, and reservations spread over past and coming days without
//! overlaps, all through the server's own settings (database, key file).

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use domain::ports::VenueRepository;
use store::{BulkGuest, BulkReservation, Store};

/// Time zones the venues cycle through.
const TIME_ZONES: [&str; 6] = [
    "Europe/Amsterdam",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "UTC",
];

/// Guests (with their reservations) per transaction.
const GUESTS_PER_BATCH: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Start(#[from] api::StartError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("venue set-up: {0}")]
    Venues(String),
    #[error("invalid generated value: {0}")]
    Domain(#[from] domain::DomainError),
    #[error("a loading task stopped: {0}")]
    Task(String),
}

/// How big a data set to make.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub venues: usize,
    pub resources: usize,
    pub guests: usize,
    pub reservations: usize,
    /// Reservations spread over this many days, half past, half to come.
    pub days: i64,
}

impl Plan {
    /// The full size.
    pub const FULL: Self = Self {
        venues: 20,
        resources: 50,
        guests: 1_000_000,
        reservations: 2_000_000,
        days: 730,
    };
}

/// What was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub venues: usize,
    pub guests: usize,
    pub reservations: usize,
}

/// Venue slugs of the data set: `bench-00`, `bench-01`, ...
pub fn venue_slug(index: usize) -> String {
    format!("bench-{index:02}")
}

/// The e-mail address of the n-th guest, so that scenarios can look
/// guests up without reading them first.
pub fn guest_email(n: usize) -> String {
    format!("guest{n}@bench.example")
}

fn venue_file(plan: &Plan) -> String {
    let mut text = String::new();
    for index in 0..plan.venues {
        let zone = TIME_ZONES[index % TIME_ZONES.len()];
        text.push_str(&format!(
            "[[venue]]\nslug = \"{}\"\nname = \"Bench venue {index}\"\ntime_zone = \"{zone}\"\n\
             slot_interval_minutes = 30\nbooking_duration_minutes = 90\nbuffer_minutes = 0\n\
             min_notice_minutes = 0\ncancel_deadline_minutes = 60\nmax_party_size = 8\n\
             max_advance_days = 400\n\n[venue.opening_hours]\n",
            venue_slug(index)
        ));
        for day in [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ] {
            text.push_str(&format!("{day} = [\"00:00-24:00\"]\n"));
        }
        for resource in 0..plan.resources {
            text.push_str(&format!(
                "\n[[venue.resource]]\nslug = \"table-{resource:02}\"\nname = \"Table {resource}\"\ncapacity = {}\n",
                2 + resource % 7
            ));
        }
        text.push('\n');
    }
    text
}

/// A small, fixed pseudo-random sequence: the same plan gives the same
/// data set every time.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let high = self.0 >> 33;
        usize::try_from(high).unwrap_or(0) % below.max(1)
    }
}

/// Fills the database the settings name. Reservations of one resource never
/// overlap: each resource's bookings follow each other in time.
pub async fn seed(checked: &api::config::Checked, plan: Plan) -> Result<SeedReport, SeedError> {
    if plan.reservations > 0 && (plan.guests == 0 || plan.venues == 0 || plan.resources == 0) {
        return Err(SeedError::Venues(
            "reservations need at least one venue, resource and guest".to_owned(),
        ));
    }
    let (store, _) = api::open_store(checked).await?;
    let definitions = api::import::parse("bench venues", &venue_file(&plan))
        .map_err(|e| SeedError::Venues(e.to_string()))?;
    api::import_venues(&store, definitions).await?;
    let lookup = store.clone();
    let venues = tokio::task::spawn_blocking(move || venue_resources(&lookup, plan.venues))
        .await
        .map_err(|e| SeedError::Task(e.to_string()))??;

    let now = Utc::now()
        .duration_trunc(TimeDelta::hours(1))
        .unwrap_or_else(|_| Utc::now());
    let start = now - Duration::days(plan.days / 2);
    // One booking every `step` on each resource, so that they fit the days.
    let per_resource = plan
        .reservations
        .div_ceil((plan.venues * plan.resources).max(1));
    let span_minutes = plan.days * 24 * 60;
    let step =
        Duration::minutes((span_minutes / i64::try_from(per_resource.max(1)).unwrap_or(1)).max(90));
    let mut sequence = Sequence(0x006b_6c75_6973);
    let mut made = 0;
    let mut next_slot = vec![0usize; venues.len()];
    let mut guest_number = 0;
    let guests_per_venue = plan.guests / plan.venues.max(1);
    while guest_number < plan.guests || made < plan.reservations {
        let mut guests = Vec::new();
        // Each guest's venue, by index into `venues`.
        let mut guest_venues = Vec::new();
        let mut bookings = Vec::new();
        while guests.len() < GUESTS_PER_BATCH && guest_number < plan.guests {
            let venue = guest_number / guests_per_venue.max(1) % plan.venues.max(1);
            let (venue_id, _) = &venues[venue];
            guests.push(BulkGuest {
                id: uuid::Uuid::new_v4().to_string(),
                venue_id: venue_id.clone(),
                name: domain::PersonName::parse("name", &format!("Guest {guest_number}"))?,
                email: Some(domain::Email::parse("email", &guest_email(guest_number))?),
                phone: None,
            });
            guest_venues.push(venue);
            guest_number += 1;
        }
        // Each batch books its share of reservations for its own guests.
        let share = if guest_number >= plan.guests {
            plan.reservations - made
        } else {
            (plan.reservations * guests.len()).div_ceil(plan.guests.max(1))
        };
        for _ in 0..share.min(plan.reservations - made) {
            let pick = sequence.next(guests.len());
            let (guest, venue) = (&guests[pick], guest_venues[pick]);
            let (venue_id, resources) = &venues[venue];
            // The n-th booking of a venue goes to resource n % count, at
            // that resource's next free step.
            let slot = next_slot[venue];
            next_slot[venue] += 1;
            let resource = slot % resources.len().max(1);
            let round = i32::try_from(slot / resources.len().max(1)).unwrap_or(i32::MAX);
            let starts_at: DateTime<Utc> = start + step * round;
            let ends_at = starts_at + Duration::minutes(90);
            bookings.push(BulkReservation {
                id: uuid::Uuid::new_v4().to_string(),
                venue_id: venue_id.clone(),
                resource_id: resources[resource].clone(),
                guest_id: guest.id.clone(),
                party_size: i32::try_from(2 + sequence.next(5)).unwrap_or(2),
                starts_at,
                ends_at,
                blocked_until: ends_at,
                status: if starts_at < now {
                    "completed"
                } else {
                    "confirmed"
                },
                created_at: starts_at - Duration::days(3),
            });
            made += 1;
        }
        let loader = store.clone();
        tokio::task::spawn_blocking(move || loader.bulk_load(&guests, &bookings, Utc::now()))
            .await
            .map_err(|e| SeedError::Task(e.to_string()))??;
    }
    Ok(SeedReport {
        venues: venues.len(),
        guests: guest_number,
        reservations: made,
    })
}

/// Each bench venue's id and its resources' ids, in slug order.
fn venue_resources(store: &Store, count: usize) -> Result<Vec<(String, Vec<String>)>, SeedError> {
    let mut venues = Vec::with_capacity(count);
    for index in 0..count {
        let slug = domain::Slug::parse(&venue_slug(index)).map_err(SeedError::Venues)?;
        let id = store
            .venue_by_slug(&slug)?
            .ok_or_else(|| SeedError::Venues(format!("{} was not imported", venue_slug(index))))?;
        let mut resources = store.resources(id)?;
        resources.sort_by(|a, b| a.slug.as_str().cmp(b.slug.as_str()));
        venues.push((
            id.to_string(),
            resources.iter().map(|r| r.id.to_string()).collect(),
        ));
    }
    Ok(venues)
}
