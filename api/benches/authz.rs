//! `cargo bench -p api --bench authz`: what the field guards cost. A staff
//! member lists 100 reservations with personal fields, once through the
//! guards (a policy of 50 permission lines and 10,000 role assignments) and
//! once with every check answered "allowed" without Casbin, alternating in
//! the same run. Figures are medians; the target is at most 10% slower.

#![expect(clippy::print_stdout, reason = "the report is what a benchmark is for")]

use std::time::Instant;

use api::auth::Principal;
use api::config::Environment;
use api::graphql::{self, Services};
use domain::crypto::{KeyRing, SharedKeyRing};
use domain::ports::{NewReservation, ReservationRepository};
use domain::{GuestDetails, GuestNotes, IdempotencyKey, PartySize, PersonName};

const RESERVATIONS: usize = 100;
const PERMISSION_LINES: usize = 50;
const ROLE_ASSIGNMENTS: usize = 10_000;
const RUNS: usize = 61;

fn venue_file() -> String {
    let mut text = String::from(
        "[[venue]]\nslug = \"bench\"\nname = \"Bench\"\ntime_zone = \"UTC\"\nmin_notice_minutes = 0\n\
         slot_interval_minutes = 60\nbooking_duration_minutes = 60\nmax_party_size = 4\n\
         [venue.opening_hours]\n",
    );
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
    for table in 0..RESERVATIONS {
        text.push_str(&format!(
            "[[venue.resource]]\nslug = \"t{table}\"\nname = \"Table {table}\"\ncapacity = 4\n"
        ));
    }
    text
}

fn policy(venue: &str) -> String {
    let shipped = include_str!("../../policies/policy.csv");
    let mut lines: Vec<String> = shipped
        .lines()
        .filter(|l| l.starts_with("p,"))
        .map(str::to_owned)
        .collect();
    for coordinate in api::authz::schema_coordinates() {
        if lines.len() >= PERMISSION_LINES {
            break;
        }
        lines.push(format!("p, partner, {coordinate}, read"));
    }
    for n in 0..ROLE_ASSIGNMENTS - 1 {
        lines.push(format!("g, user:filler{n}, staff, venue-{}", n % 500));
    }
    lines.push(format!("g, user:bench, staff, {venue}"));
    lines.join("\n")
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
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
    let now = chrono::Utc::now();
    store.verify_keys(now)?;
    store.import_venues(&api::import::parse("bench.toml", &venue_file())?, now)?;
    let venue = store
        .venue_by_slug(&domain::Slug::parse("bench").map_err(anyhow::Error::msg)?)?
        .ok_or_else(|| anyhow::anyhow!("no venue"))?;
    let date = now.date_naive() + chrono::Duration::days(1);
    let starts_at = date
        .and_hms_opt(10, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| anyhow::anyhow!("time"))?;
    for n in 0..RESERVATIONS {
        let request = NewReservation {
            venue_id: venue,
            starts_at,
            party_size: PartySize::parse(2)?,
            resource_id: None,
            service_id: None,
            guest: GuestDetails {
                name: PersonName::parse("name", &format!("Guest {n}"))?,
                email: Some(domain::Email::parse("email", &format!("g{n}@example.org"))?),
                phone: None,
                notes: GuestNotes::parse("notes", "window, please")?,
            },
            locale: domain::privacy::Locale::parse("en")?,
            notice_version: None,
            opt_ins: Vec::new(),
            channel: "web".to_owned(),
        };
        store.create_reservation(
            &request,
            &IdempotencyKey::parse(&format!("bench-{n:08}"))?,
            now,
        )?;
    }

    let policy_dir = dir.path().join("policies");
    std::fs::create_dir_all(&policy_dir)?;
    std::fs::write(
        policy_dir.join("model.conf"),
        include_str!("../../policies/model.conf"),
    )?;
    std::fs::write(policy_dir.join("policy.csv"), policy(&venue.to_string()))?;
    let guarded = api::authz::load(&policy_dir, store.clone()).await?;
    let open = guarded.unrestricted_for_benchmarks();
    let schema = |authorizer| {
        graphql::build(
            Some(Services {
                store: store.clone(),
                clock: api::clock::Clock::system(),
                gateways: plugins::Gateways::default(),
                authorizer,
                session_length: chrono::Duration::hours(1),
                monitor: None,
                outbound: api::config::Outbound::default(),
            }),
            Environment::Production,
        )
    };
    let (guarded_schema, open_schema) = (schema(guarded), schema(open));
    let query = format!(
        "{{ reservations(venueId: \"{venue}\", date: \"{date}\", first: {RESERVATIONS}) \
         {{ edges {{ node {{ id partySize startsAt status guestName notes }} }} }} }}"
    );
    let principal = Principal::Staff {
        id: "bench".to_owned(),
        email: domain::Personal::new("bench@example.org".to_owned()),
        venues: vec![venue.to_string()],
        session: domain::SessionHash::new(Vec::new()),
    };
    let execute = |schema: &graphql::KluisSchema| {
        let request = async_graphql::Request::new(query.clone())
            .data(principal.clone())
            .data(graphql::guard::Decisions::default());
        let schema = schema.clone();
        async move {
            let started = Instant::now();
            let response = schema.execute(request).await;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            (elapsed, response)
        }
    };
    for schema in [&guarded_schema, &open_schema] {
        let (_, response) = execute(schema).await;
        anyhow::ensure!(response.errors.is_empty(), "{:?}", response.errors);
        let json = serde_json::to_value(&response.data)?;
        let edges = json["reservations"]["edges"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(edges == RESERVATIONS, "listed {edges} reservations");
        anyhow::ensure!(
            json["reservations"]["edges"][0]["node"]["guestName"].is_string(),
            "{json}"
        );
    }
    let (mut with_guards, mut without) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        with_guards.push(execute(&guarded_schema).await.0);
        without.push(execute(&open_schema).await.0);
    }
    let (guarded_ms, open_ms) = (median(with_guards), median(without));
    let ratio = guarded_ms / open_ms;
    println!(
        "listing {RESERVATIONS} reservations with guestName and notes, {PERMISSION_LINES} permission lines, \
         {ROLE_ASSIGNMENTS} role assignments, median of {RUNS} runs each"
    );
    println!("{:<28} {:>10}", "", "ms/list");
    println!("{:<28} {:>10.2}", "guards off (baseline)", open_ms);
    println!("{:<28} {:>10.2}", "guards on", guarded_ms);
    println!(
        "overhead: {:+.1}% (target: at most +10%)",
        (ratio - 1.0) * 100.0
    );
    println!(
        "{}",
        if ratio <= 1.10 {
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
