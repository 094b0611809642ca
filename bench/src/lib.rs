//! The benchmark's data set: venues in several time zones with their
//! resources, guests sealed and with lookup tokens exactly as bookings
//! write them, and reservations spread over past and coming days without
//! overlaps, all through the server's own settings (database, key file).

pub mod baseline;

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
    #[error("bench accounts: {0}")]
    Accounts(String),
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
    /// Also write every guest's address in the clear into a table of its
    /// own, for the plaintext baseline: benchmark databases only.
    pub plaintext_baseline: bool,
}

impl Plan {
    /// The full size.
    pub const FULL: Self = Self {
        venues: 20,
        resources: 50,
        guests: 1_000_000,
        reservations: 2_000_000,
        days: 730,
        plaintext_baseline: false,
    };
}

/// What was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub venues: usize,
    pub guests: usize,
    pub reservations: usize,
    /// What the load scenarios need to know about the data set.
    pub fixture: Fixture,
}

/// The data set as the load scenarios address it: venue and resource ids,
/// how guests are spread, the bench accounts and the days with bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Each venue's id and its resources' ids, in slug order.
    pub venues: Vec<(String, Vec<String>)>,
    pub guests: usize,
    /// Guest n belongs to venue `n / guests_per_venue % venues`.
    pub guests_per_venue: usize,
    /// A staff account (role `staff` in every venue).
    pub staff_email: String,
    pub staff_password: String,
    /// A partner key bound to every venue.
    pub partner_key: String,
    /// The first and last UTC dates with seeded bookings.
    pub first_date: chrono::NaiveDate,
    pub last_date: chrono::NaiveDate,
    /// From here on (a UTC midnight) no resource has a seeded booking: the
    /// booking scenario books after it.
    pub free_from: DateTime<Utc>,
    /// Per venue, the start times after `free_from` (and within the
    /// venue's booking horizon) that a 90-minute booking fits in local
    /// time: the booking scenario's slots.
    pub booking_starts: Vec<Vec<DateTime<Utc>>>,
}

/// The privacy notice every bench venue publishes (version 1).
const BENCH_NOTICE: &str =
    "Bench venue privacy notice: we keep your name and e-mail address for your booking.";

/// The staff account the scenarios log in with.
pub const STAFF_EMAIL: &str = "staff@bench.example";

impl Fixture {
    /// The fixture as a Lua table, for `dofile` in wrk scripts.
    pub fn to_lua(&self) -> String {
        let mut text = String::from(
            "-- Written by `kluis-bench seed`: the data set the scenarios use.\nreturn {\n  venues = {\n",
        );
        for (id, resources) in &self.venues {
            text.push_str(&format!("    {{ id = \"{id}\", resources = {{"));
            let quoted: Vec<String> = resources.iter().map(|r| format!("\"{r}\"")).collect();
            text.push_str(&quoted.join(", "));
            text.push_str("} },\n");
        }
        text.push_str(&format!(
            "  }},\n  guests = {},\n  guests_per_venue = {},\n  staff_email = \"{}\",\n  \
             staff_password = \"{}\",\n  partner_key = \"{}\",\n  first_date = \"{}\",\n  \
             last_date = \"{}\",\n  first_epoch = {},\n  last_epoch = {},\n  free_from = {},\n",
            self.guests,
            self.guests_per_venue,
            self.staff_email,
            self.staff_password,
            self.partner_key,
            self.first_date,
            self.last_date,
            self.first_date
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp(),
            self.last_date
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp(),
            self.free_from.timestamp(),
        ));
        text.push_str("  booking_starts = {\n");
        for starts in &self.booking_starts {
            let epochs: Vec<String> = starts.iter().map(|s| s.timestamp().to_string()).collect();
            text.push_str(&format!("    {{{}}},\n", epochs.join(",")));
        }
        text.push_str("  },\n}\n");
        text
    }
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
/// data set every time (and the smoke test the same requests).
pub struct Sequence(pub u64);

impl Sequence {
    /// The next number in `0..below`.
    pub fn next(&mut self, below: usize) -> usize {
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
    // Venues get unequal shares of the random picks, so the last booking
    // can end past the planned span; the booking scenario starts after it.
    let mut latest = start;
    let mut guest_number = 0;
    let guests_per_venue = plan.guests / plan.venues.max(1);
    while guest_number < plan.guests || made < plan.reservations {
        let mut guests = Vec::new();
        // Each guest's venue, by index into `venues`.
        let mut guest_venues = Vec::new();
        let mut bookings = Vec::new();
        let mut plaintext = Vec::new();
        while guests.len() < GUESTS_PER_BATCH && guest_number < plan.guests {
            let venue = guest_number / guests_per_venue.max(1) % plan.venues.max(1);
            let (venue_id, _) = &venues[venue];
            let id = uuid::Uuid::new_v4().to_string();
            let email = domain::Email::parse("email", &guest_email(guest_number))?;
            plaintext.push((venue_id.clone(), email.clone(), id.clone()));
            guests.push(BulkGuest {
                id,
                venue_id: venue_id.clone(),
                name: domain::PersonName::parse("name", &format!("Guest {guest_number}"))?,
                email: Some(email),
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
            latest = latest.max(ends_at);
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
                // Booked three days ahead, and never in the future.
                created_at: (starts_at - Duration::days(3)).min(now),
            });
            made += 1;
        }
        let loader = store.clone();
        tokio::task::spawn_blocking(move || {
            loader.bulk_load(&guests, &bookings, Utc::now())?;
            if plan.plaintext_baseline {
                loader.bulk_plaintext_emails(&plaintext)?;
            }
            Ok::<_, store::StoreError>(())
        })
        .await
        .map_err(|e| SeedError::Task(e.to_string()))??;
    }
    let (staff_password, partner_key) = bench_accounts(checked, &store, &venues).await?;
    let end = start + Duration::days(plan.days);
    let free_from = (latest.max(end) + Duration::days(1))
        .duration_trunc(TimeDelta::days(1))
        .unwrap_or(end);
    let booking_starts = booking_starts(&store, &venues, free_from, now).await?;
    Ok(SeedReport {
        venues: venues.len(),
        guests: guest_number,
        reservations: made,
        fixture: Fixture {
            booking_starts,
            guests: plan.guests,
            guests_per_venue: guests_per_venue.max(1),
            venues,
            staff_email: STAFF_EMAIL.to_owned(),
            staff_password,
            partner_key,
            first_date: start.date_naive(),
            last_date: end.date_naive(),
            free_from,
        },
    })
}

/// Start times of 90-minute bookings on each venue's local days from
/// `free_from` to its booking horizon, never across local midnight.
async fn booking_starts(
    store: &Store,
    venues: &[(String, Vec<String>)],
    free_from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Vec<DateTime<Utc>>>, SeedError> {
    let store = store.clone();
    let ids: Vec<String> = venues.iter().map(|(id, _)| id.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            let venue = store
                .venue(domain::VenueId::parse(&id)?)?
                .ok_or_else(|| SeedError::Venues(format!("venue {id} vanished")))?;
            let horizon = now + Duration::days(i64::from(venue.rules.max_advance_days) - 1);
            let mut starts = Vec::new();
            let mut date = venue.local_date(free_from);
            while venue.instant_at(date, domain::TimeOfDay::MIDNIGHT) < horizon {
                for slot in 0..16 {
                    let start = domain::TimeOfDay::from_minutes(slot * 90)
                        .map(|time| venue.instant_at(date, time));
                    if let Some(start) = start.filter(|s| *s >= free_from && *s < horizon) {
                        starts.push(start);
                    }
                }
                let Some(next) = date.succ_opt() else { break };
                date = next;
            }
            starts.dedup();
            all.push(starts);
        }
        Ok(all)
    })
    .await
    .map_err(|e| SeedError::Task(e.to_string()))?
}

/// A staff account for every venue and a partner key bound to all of them,
/// as an operator would make them (`kluis user add`, `kluis apikey create`).
async fn bench_accounts(
    checked: &api::config::Checked,
    store: &Store,
    venues: &[(String, Vec<String>)],
) -> Result<(String, String), SeedError> {
    let password = format!("bench-{}", uuid::Uuid::new_v4().simple());
    api::add_staff_account(checked, STAFF_EMAIL, &password, "staff", None)
        .await
        .map_err(|e| SeedError::Accounts(e.to_string()))?;
    let venue_ids: Vec<String> = venues.iter().map(|(id, _)| id.clone()).collect();
    let store = store.clone();
    let created = tokio::task::spawn_blocking(move || {
        // Bookings then record consent against a real notice version, as
        // they do in a venue that has published one.
        let (text, sha256) = domain::privacy::notice_text(BENCH_NOTICE)?;
        let locale = domain::privacy::Locale::parse("en")?;
        for id in &venue_ids {
            let venue = domain::VenueId::parse(id)?;
            store.publish_notice(venue, &locale, &text, &sha256, Utc::now())?;
        }
        api::graphql::access::create_api_key(
            &store,
            "bench partner",
            domain::auth::Role::Partner,
            &venue_ids,
            None,
            None,
        )
    })
    .await
    .map_err(|e| SeedError::Task(e.to_string()))??;
    Ok((password, created.key))
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
