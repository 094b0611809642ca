//! `cargo bench -p api --bench availability`: what services, closures,
//! tables together and pacing cost a booking page. Two venues with the
//! same 50 tables and the same bookings on the measured date (55% of the
//! open table time): "plain" has one weekly schedule and nothing else,
//! "rich" adds fixed combinations, adjacent tables, and, after the
//! bookings, a service most tables deliver, closures on that date and
//! pacing caps. The anonymous `availability` query runs through the
//! GraphQL schema for both (the rich one naming its service), alternating
//! in the same run, for parties of 2 and 7 (7 needs joined tables at the
//! rich venue, whose two large tables are closed that day), with the
//! occupancy cached (a page asking the same date again within a second)
//! and read from the database. Figures are medians; the target is rich at
//! most 1.5 times plain.

#![expect(clippy::print_stdout, reason = "the report is what a benchmark is for")]

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context as _;
use api::config::Environment;
use api::graphql::{self, Services};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use domain::crypto::{KeyRing, SharedKeyRing};
use domain::ports::{NewReservation, ReservationRepository, VenueRepository};
use domain::{GuestDetails, GuestNotes, IdempotencyKey, PartySize, PersonName, ResourceId};
use serde_json::{Value, json};

const RUNS: usize = 61;
const TABLES: usize = 50;
const TABLES_PER_ROW: usize = 10;
const OPENS: u32 = 12;
const CLOSES: u32 = 23;
const SLOT_MINUTES: i64 = 15;
const BOOKING_MINUTES: i64 = 90;
/// A table takes two bookings back to back every 300 minutes: 180 booked,
/// 120 free (long enough for a booking), so about 60% of its time is
/// taken.
const TURN_MINUTES: i64 = 300;
/// Tables whose bookings at the rich venue are parties of 7 on joined
/// tables (where the placement puts them); the plain venue holds the same
/// tables as single bookings.
const JOINED_PARTIES_FROM: [usize; 4] = [21, 25, 31, 35];
/// Arguments an availability document may pass, with their types; a
/// scenario declares those its variables hold.
const ARGUMENTS: [(&str, &str); 4] = [
    ("venueId", "ID!"),
    ("date", "Date!"),
    ("partySize", "Int!"),
    ("serviceId", "ID"),
];
/// What a booking widget asks (the load benchmark's scenario (a)), and
/// what a staff or table-picking page asks on top.
const SELECTIONS: [(&str, &str); 2] = [
    ("times", "startsAt endsAt"),
    (
        "times + tables",
        "startsAt endsAt freeResources { id } freeCombinations { id }",
    ),
];

fn slug(table: usize) -> String {
    format!("t{table:02}")
}

fn capacity(table: usize) -> u32 {
    match (table - 1) / TABLES_PER_ROW {
        0 | 1 => 2,
        2 | 3 => 4,
        _ if table > TABLES - 2 => 8,
        _ => 6,
    }
}

/// The settings and tables both venues share.
fn plain_venue(slug_of_venue: &str) -> String {
    let mut text = format!(
        "[[venue]]\nslug = \"{slug_of_venue}\"\nname = \"{slug_of_venue}\"\ntime_zone = \"UTC\"\n\
         min_notice_minutes = 0\nslot_interval_minutes = {SLOT_MINUTES}\n\
         booking_duration_minutes = {BOOKING_MINUTES}\nmax_party_size = 8\nmax_advance_days = 30\n"
    );
    text.push_str("[venue.opening_hours]\n");
    for day in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        text.push_str(&format!("{day} = [\"{OPENS}:00-{CLOSES}:00\"]\n"));
    }
    for table in 1..=TABLES {
        text.push_str(&format!(
            "[[venue.resource]]\nslug = \"{}\"\nname = \"Table {table}\"\ncapacity = {}\n",
            slug(table),
            capacity(table)
        ));
    }
    text
}

/// The plain venue's tables with neighbours along each row, ten fixed
/// pairs of four-seat tables, and, once `closed_on` is given (after the
/// bookings are in, as a venue adds them later), closures on that date
/// and pacing caps.
fn rich_venue(closed_on: Option<NaiveDate>) -> String {
    let mut text = plain_venue("rich");
    // Top-level keys of `[[venue]]` must come before its first table.
    let (head, tables) = text
        .split_once("[venue.opening_hours]")
        .map(|(a, b)| (a.to_owned(), format!("[venue.opening_hours]{b}")))
        .unwrap_or_default();
    text = head;
    let pairs: Vec<String> = (1..=TABLES)
        .filter(|t| t % TABLES_PER_ROW != 0)
        .map(|t| format!("[\"{}\", \"{}\"]", slug(t), slug(t + 1)))
        .collect();
    text.push_str(&format!(
        "adjacent = [{}]\nmax_joined = 3\n",
        pairs.join(", ")
    ));
    if closed_on.is_some() {
        text.push_str("max_covers_per_slot = 40\nmax_covers_per_hour = 140\n");
    }
    text.push_str(&tables);
    for first in (21..=39).step_by(2) {
        text.push_str(&format!(
            "[[venue.combination]]\nresources = [\"{}\", \"{}\"]\ncapacity = 7\nmin_party = 5\n",
            slug(first),
            slug(first + 1)
        ));
    }
    if let Some(day) = closed_on {
        // Once the venue books by service, every query names one: dinner,
        // as long as the plain venue's bookings, delivered by every table
        // but the first five.
        let tables: Vec<String> = (TABLES_PER_ROW / 2 + 1..=TABLES)
            .map(|t| format!("\"{}\"", slug(t)))
            .collect();
        text.push_str(&format!(
            "[[venue.service]]\nslug = \"dinner\"\nname = \"Dinner\"\nduration_minutes = 90\n\
             buffer_minutes = 0\nresources = [{}]\n",
            tables.join(", ")
        ));
        let next = day + chrono::Duration::days(1);
        let week = day + chrono::Duration::days(7);
        for (from, until, resource) in [
            // The whole venue closes early, and on a day next week.
            (format!("{day}T22:00"), format!("{next}"), None),
            (format!("{week}"), format!("{week}T18:00"), None),
            // The two large tables are taken for a private room all day.
            (format!("{day}"), format!("{next}"), Some(slug(49))),
            (format!("{day}"), format!("{next}"), Some(slug(50))),
            (format!("{day}"), format!("{next}"), Some(slug(33))),
            (
                format!("{day}T18:00"),
                format!("{day}T20:00"),
                Some(slug(5)),
            ),
        ] {
            text.push_str(&format!(
                "[[venue.closure]]\nfrom = \"{from}\"\nuntil = \"{until}\"\nreason = \"bench\"\n"
            ));
            if let Some(resource) = resource {
                text.push_str(&format!("resource = \"{resource}\"\n"));
            }
        }
    }
    text
}

/// Start times of one table's bookings on the date: staggered by table so
/// that bookings start in every slot of the day.
fn turns(date: NaiveDate, table: usize) -> Vec<DateTime<Utc>> {
    let opens = date.and_time(NaiveTime::MIN).and_utc() + chrono::Duration::hours(i64::from(OPENS));
    let closes = opens + chrono::Duration::hours(i64::from(CLOSES - OPENS));
    let first = opens + chrono::Duration::minutes(SLOT_MINUTES * (table as i64 % 4));
    (0..)
        .map(|k| {
            first + chrono::Duration::minutes(TURN_MINUTES * (k / 2) + BOOKING_MINUTES * (k % 2))
        })
        .take_while(|start| *start + chrono::Duration::minutes(BOOKING_MINUTES) <= closes)
        .collect()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn document(variables: &serde_json::Map<String, Value>, selection: &str) -> String {
    let used: Vec<&(&str, &str)> = ARGUMENTS
        .iter()
        .filter(|(name, _)| variables.contains_key(*name))
        .collect();
    let declared: Vec<String> = used.iter().map(|(n, t)| format!("${n}: {t}")).collect();
    let passed: Vec<String> = used.iter().map(|(n, _)| format!("{n}: ${n}")).collect();
    format!(
        "query Availability({}) {{ availability({}) {{ {selection} }} }}",
        declared.join(", "),
        passed.join(", ")
    )
}

struct Seeder<'a> {
    store: &'a store::Store,
    now: DateTime<Utc>,
    made: usize,
}

impl Seeder<'_> {
    fn book(
        &mut self,
        venue: domain::VenueId,
        starts_at: DateTime<Utc>,
        party: u32,
        resource_id: Option<ResourceId>,
    ) -> anyhow::Result<domain::ports::Booking> {
        self.made += 1;
        let n = self.made;
        let request = NewReservation {
            venue_id: venue,
            starts_at,
            party_size: PartySize::parse(i64::from(party))?,
            resource_id,
            service_id: None,
            guest: GuestDetails {
                name: PersonName::parse("name", &format!("Guest {n}"))?,
                email: Some(domain::Email::parse("email", &format!("g{n}@example.org"))?),
                phone: None,
                notes: GuestNotes::parse("notes", "")?,
            },
            locale: domain::privacy::Locale::parse("en")?,
            notice_version: None,
            opt_ins: Vec::new(),
            channel: "web".to_owned(),
        };
        Ok(self.store.create_reservation(
            &request,
            &IdempotencyKey::parse(&format!("bench-{n:08}"))?,
            self.now,
        )?)
    }
}

fn tables_of(
    store: &store::Store,
    venue: domain::VenueId,
) -> anyhow::Result<HashMap<String, ResourceId>> {
    Ok(store
        .resources(venue)?
        .into_iter()
        .map(|r| (r.slug.to_string(), r.id))
        .collect())
}

/// Books the rich venue (its large tables, joined parties, then a party per table and
/// turn wherever its table is still free), then the same tables and times
/// at the plain venue as single bookings. Answers the share of the open
/// table time booked.
fn seed(
    store: &store::Store,
    plain: domain::VenueId,
    rich: domain::VenueId,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<f64> {
    let mut seeder = Seeder {
        store,
        now,
        made: 0,
    };
    let rich_tables = tables_of(store, rich)?;
    let plain_tables = tables_of(store, plain)?;
    let slug_of: HashMap<ResourceId, String> =
        rich_tables.iter().map(|(s, id)| (*id, s.clone())).collect();
    let length = chrono::Duration::minutes(BOOKING_MINUTES);
    // (start, tables, party) of every rich booking.
    let mut booked: Vec<(DateTime<Utc>, Vec<String>, u32)> = Vec::new();
    // The large tables first: a party of 7 takes one when it is free (the
    // closures that keep them free come later).
    for table in TABLES - 1..=TABLES {
        let id = rich_tables
            .get(&slug(table))
            .copied()
            .context("unknown table")?;
        for start in turns(date, table) {
            seeder.book(rich, start, capacity(table), Some(id))?;
            booked.push((start, vec![slug(table)], capacity(table)));
        }
    }
    for table in JOINED_PARTIES_FROM {
        for start in turns(date, table) {
            let booking = seeder.book(rich, start, 7, None)?;
            let held = store.held_resources(booking.reservation.id)?;
            anyhow::ensure!(held.len() > 1, "a party of 7 got {held:?}");
            let slugs = held
                .iter()
                .map(|id| slug_of.get(id).cloned().context("unknown table"))
                .collect::<anyhow::Result<Vec<_>>>()?;
            booked.push((start, slugs, 7));
        }
    }
    for table in 1..TABLES - 1 {
        let name = slug(table);
        for (turn, start) in turns(date, table).into_iter().enumerate() {
            let taken = booked.iter().any(|(other, tables, _)| {
                tables.contains(&name) && *other < start + length && start < *other + length
            });
            if taken {
                continue;
            }
            let seats = capacity(table);
            let party = if turn % 2 == 1 && seats > 2 {
                seats - 1
            } else {
                seats
            };
            let id = rich_tables.get(&name).copied().context("unknown table")?;
            seeder.book(rich, start, party, Some(id))?;
            booked.push((start, vec![name.clone()], party));
        }
    }
    let mut minutes = 0;
    for (start, tables, party) in &booked {
        for name in tables {
            let id = plain_tables.get(name).copied().context("unknown table")?;
            let party = (*party).min(capacity(name[1..].parse()?));
            seeder.book(plain, *start, party, Some(id))?;
            minutes += BOOKING_MINUTES;
        }
    }
    let open = TABLES as i64 * i64::from(CLOSES - OPENS) * 60;
    Ok(minutes as f64 / open as f64)
}

#[derive(Clone, Copy, PartialEq)]
enum Occupancy {
    Cached,
    Read,
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = store::DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .map_err(anyhow::Error::msg)?;
    let key_store = store::DatabaseUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("bench-keys.db").display()
    ))
    .map_err(anyhow::Error::msg)?;
    let store = store::Store::connect(
        &url,
        &key_store,
        4,
        SharedKeyRing::new(KeyRing::for_testing(1)),
    )?;
    store.migrate()?;
    let now = Utc::now();
    store.verify_keys(now)?;
    let date = now.date_naive() + chrono::Duration::days(2);
    let before = format!("{}{}", plain_venue("plain"), rich_venue(None));
    store.import_venues(&api::import::parse("bench.toml", &before)?, now)?;
    let id_of = |slug: &str| -> anyhow::Result<domain::VenueId> {
        store
            .venue_by_slug(&domain::Slug::parse(slug).map_err(anyhow::Error::msg)?)?
            .context("no venue")
    };
    let (plain, rich) = (id_of("plain")?, id_of("rich")?);
    let booked = seed(&store, plain, rich, date, now)?;
    store.import_venues(
        &api::import::parse("bench.toml", &rich_venue(Some(date)))?,
        now,
    )?;

    let policy_dir = dir.path().join("policies");
    std::fs::create_dir_all(&policy_dir)?;
    std::fs::write(
        policy_dir.join("model.conf"),
        include_str!("../../policies/model.conf"),
    )?;
    std::fs::write(
        policy_dir.join("policy.csv"),
        include_str!("../../policies/policy.csv"),
    )?;
    let clock = api::clock::Clock::system();
    let schema = graphql::build(
        Some(Services {
            store: store.clone(),
            clock: clock.clone(),
            gateways: plugins::Gateways::default(),
            authorizer: api::authz::load(&policy_dir, store.clone()).await?,
            session_length: chrono::Duration::hours(1),
            monitor: None,
            outbound: api::config::Outbound::default(),
        }),
        Environment::Production,
    );
    let dinner = store
        .venue(rich)?
        .and_then(|venue| venue.services.first().map(|s| s.id))
        .context("the rich venue offers no service")?;
    let variables = |venue: domain::VenueId, party: u32| {
        let mut map = serde_json::Map::new();
        if venue == rich {
            map.insert("serviceId".to_owned(), json!(dinner.to_string()));
        }
        map.insert("venueId".to_owned(), json!(venue.to_string()));
        map.insert("date".to_owned(), json!(date.to_string()));
        map.insert("partySize".to_owned(), json!(party));
        map
    };
    let execute = |variables: serde_json::Map<String, Value>, selection: &str, occupancy| {
        let query = document(&variables, selection);
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(Value::Object(
                variables,
            )))
            .data(api::auth::Principal::Anonymous)
            .data(graphql::guard::Decisions::default());
        if occupancy == Occupancy::Read {
            // Past the occupancy cache's second, so the query reads it.
            clock.advance(chrono::Duration::seconds(2));
        }
        let schema = schema.clone();
        async move {
            let started = Instant::now();
            let response = schema.execute(request).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(response.errors.is_empty(), "{:?}", response.errors);
            let json = serde_json::to_value(&response.data)?;
            let slots = json["availability"]
                .as_array()
                .context("no availability")?
                .clone();
            Ok::<_, anyhow::Error>((elapsed, slots))
        }
    };

    // What each venue answers, checked before anything is timed.
    let mut answered = HashMap::new();
    for party in [2, 7] {
        for (name, venue) in [("plain", plain), ("rich", rich)] {
            let (_, slots) =
                execute(variables(venue, party), SELECTIONS[1].1, Occupancy::Read).await?;
            anyhow::ensure!(!slots.is_empty(), "{name} offers no time for {party}");
            let combinations: usize = slots
                .iter()
                .map(|s| s["freeCombinations"].as_array().map_or(0, Vec::len))
                .sum();
            let tables: usize = slots
                .iter()
                .map(|s| s["freeResources"].as_array().map_or(0, Vec::len))
                .sum();
            if name == "rich" && party == 7 {
                anyhow::ensure!(tables == 0 && combinations > 0, "{slots:?}");
            }
            answered.insert((name, party), (slots.len(), tables, combinations));
        }
    }

    println!(
        "availability of one date, 50 tables, {:.0}% of the table time booked, \
         median of {RUNS} runs each, alternating",
        booked * 100.0
    );
    for party in [2, 7] {
        for name in ["plain", "rich"] {
            let (slots, tables, combinations) = answered[&(name, party)];
            println!(
                "  {name:<5} party {party}: {slots} start times, {tables} free tables, \
                 {combinations} free combinations"
            );
        }
    }
    println!(
        "{:<8} {:<16} {:<10} {:>10} {:>10} {:>7}",
        "party", "selection", "occupancy", "plain ms", "rich ms", "ratio"
    );
    let mut worst: f64 = 0.0;
    for party in [2, 7] {
        for (label, selection) in SELECTIONS {
            for occupancy in [Occupancy::Cached, Occupancy::Read] {
                let (mut plain_ms, mut rich_ms) = (Vec::new(), Vec::new());
                for _ in 0..RUNS {
                    plain_ms.push(
                        execute(variables(plain, party), selection, occupancy)
                            .await?
                            .0,
                    );
                    rich_ms.push(
                        execute(variables(rich, party), selection, occupancy)
                            .await?
                            .0,
                    );
                }
                let (plain_ms, rich_ms) = (median(plain_ms), median(rich_ms));
                let ratio = rich_ms / plain_ms;
                if label == SELECTIONS[0].0 {
                    worst = worst.max(ratio);
                }
                println!(
                    "{party:<8} {label:<16} {:<10} {plain_ms:>10.3} {rich_ms:>10.3} {ratio:>6.2}x",
                    if occupancy == Occupancy::Cached {
                        "cached"
                    } else {
                        "read"
                    },
                );
            }
        }
    }
    println!(
        "largest ratio for the widget's times: {worst:.2}x (target: at most 1.5x): {}",
        if worst <= 1.5 {
            "target met"
        } else {
            "target MISSED"
        }
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
