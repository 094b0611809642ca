//! The load scenarios in small (what `.ci/run` runs instead of the
//! benchmark): the same GraphQL documents `scripts/bench.sh` sends, a few
//! seconds each from several concurrent clients against a real server on a
//! seeded database, checked for correctness only: no errors, answers that
//! match the data set, bookings that all land, no double booking. Also the
//! baseline server's reads. Speed is the benchmark's business.

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use kluis_bench::Sequence;
use serde_json::{Value, json};

const PLAN: kluis_bench::Plan = kluis_bench::Plan {
    venues: 2,
    resources: 6,
    guests: 200,
    reservations: 600,
    days: 30,
    plaintext_baseline: true,
};

/// Concurrent clients per scenario, and how long each scenario runs.
const CLIENTS: usize = 4;
const RUN_FOR: Duration = Duration::from_millis(1500);

const AVAILABILITY: &str = include_str!("../scenarios/availability.graphql");
const DAY_SHEET: &str = include_str!("../scenarios/day_sheet.graphql");
const BOOK: &str = include_str!("../scenarios/book.graphql");
const LOOKUP: &str = include_str!("../scenarios/lookup.graphql");

struct Bench {
    client: reqwest::Client,
    graphql: String,
    baseline: String,
    fixture: kluis_bench::Fixture,
    staff_token: String,
}

impl Bench {
    async fn post(&self, query: &str, variables: Value, token: Option<&str>) -> Result<Value> {
        let mut request = self
            .client
            .post(&self.graphql)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        ensure!(response.status().is_success(), "HTTP {}", response.status());
        let body: Value = response.json().await?;
        ensure!(body.get("errors").is_none(), "errors: {body}");
        Ok(body["data"].clone())
    }

    fn venue(&self, picks: &mut Sequence) -> &(String, Vec<String>) {
        &self.fixture.venues[picks.next(self.fixture.venues.len())]
    }

    fn coming_date(picks: &mut Sequence) -> String {
        let days = i64::try_from(picks.next(30)).unwrap_or(0);
        (chrono::Utc::now() + chrono::Duration::days(days))
            .date_naive()
            .to_string()
    }

    fn seeded_date(&self, picks: &mut Sequence) -> String {
        let span = (self.fixture.last_date - self.fixture.first_date).num_days();
        let offset =
            1 + i64::try_from(picks.next(usize::try_from(span - 2).unwrap_or(1))).unwrap_or(0);
        (self.fixture.first_date + chrono::Duration::days(offset)).to_string()
    }

    fn seeded_guest(&self, picks: &mut Sequence) -> (&str, String) {
        let n = picks.next(self.fixture.guests);
        let venue = n / self.fixture.guests_per_venue % self.fixture.venues.len();
        (&self.fixture.venues[venue].0, kluis_bench::guest_email(n))
    }

    /// The i-th booking of the run: its own venue, resource and start, as
    /// `scripts/wrk/scenario.lua` spreads them.
    fn booking(&self, i: usize) -> Value {
        let venues = &self.fixture.venues;
        let venue = i % venues.len();
        let (venue_id, resources) = &venues[venue];
        let j = i / venues.len();
        let starts = &self.fixture.booking_starts[venue];
        let start = starts[(j / resources.len()) % starts.len()];
        json!({
            "input": {
                "venueId": venue_id,
                "resourceId": resources[j % resources.len()],
                "startsAt": start.to_rfc3339(),
                "partySize": 2,
                "noticeVersion": 1,
                "locale": "en",
                "guest": {
                    "name": format!("Bench Guest {i}"),
                    "email": format!("booking-{i}@bench.example"),
                },
                "consents": ["NEWSLETTER"],
                "idempotencyKey": format!("smoke-booking-{}-{i}", start.timestamp()),
            },
        })
    }

    /// One request of a scenario, checked; how many bookings it made.
    async fn one(&self, scenario: &str, picks: &mut Sequence, i: usize) -> Result<usize> {
        let scenario = if scenario == "mixed" {
            match picks.next(100) {
                0..80 => "availability",
                80..95 => "day_sheet",
                _ => "book",
            }
        } else {
            scenario
        };
        match scenario {
            "availability" => {
                let (venue, _) = self.venue(picks);
                let date = Self::coming_date(picks);
                let data = self
                    .post(AVAILABILITY, json!({ "venue": venue, "date": date }), None)
                    .await?;
                let slots = data["availability"].as_array().context("slots")?;
                ensure!(
                    slots.iter().all(|s| s["startsAt"].is_string()),
                    "slot without a start: {data}"
                );
            }
            "day_sheet" => {
                let (venue, _) = self.venue(picks);
                let date = self.seeded_date(picks);
                let data = self
                    .post(
                        DAY_SHEET,
                        json!({ "venue": venue, "date": date }),
                        Some(&self.staff_token),
                    )
                    .await?;
                let edges = data["reservations"]["edges"].as_array().context("edges")?;
                ensure!(edges.len() <= 20, "more than a page");
                for edge in edges {
                    let name = edge["node"]["guestName"].as_str().context("guest name")?;
                    ensure!(name.starts_with("Guest "), "not a seeded name: {name}");
                }
            }
            "lookup" => {
                let (venue, email) = self.seeded_guest(picks);
                let data = self
                    .post(
                        LOOKUP,
                        json!({ "venue": venue, "email": email }),
                        Some(&self.staff_token),
                    )
                    .await?;
                let found = data["guestReservations"]["nodes"]
                    .as_array()
                    .context("list")?;
                let wanted = email
                    .trim_end_matches("@bench.example")
                    .trim_start_matches("guest");
                for reservation in found {
                    ensure!(
                        reservation["guestName"].as_str() == Some(&format!("Guest {wanted}")),
                        "another guest's booking: {reservation}"
                    );
                }
            }
            "book" => {
                let data = self
                    .post(BOOK, self.booking(i), Some(&self.fixture.partner_key))
                    .await?;
                ensure!(
                    data["createReservation"]["reservation"]["status"] == "CONFIRMED",
                    "not confirmed: {data}"
                );
                return Ok(1);
            }
            base => {
                let (venue, _) = self.venue(picks);
                let path = match base {
                    "base_availability" => format!(
                        "availability?venue={venue}&date={}",
                        Self::coming_date(picks)
                    ),
                    "base_day_sheet" => {
                        format!("day-sheet?venue={venue}&date={}", self.seeded_date(picks))
                    }
                    _ => {
                        let (venue, email) = self.seeded_guest(picks);
                        let kind = base.trim_start_matches("base_lookup_");
                        format!("lookup/{kind}?venue={venue}&email={email}")
                    }
                };
                let response = self
                    .client
                    .get(format!("{}/{path}", self.baseline))
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "{path}: {}",
                    response.status()
                );
                let _rows: Value = response.json().await?;
            }
        }
        Ok(0)
    }

    /// Runs a scenario from several clients for a while; requests and
    /// bookings made.
    async fn run(self: &std::sync::Arc<Self>, scenario: &'static str) -> Result<(usize, usize)> {
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let bench = std::sync::Arc::clone(self);
            clients.push(tokio::spawn(async move {
                let mut picks = Sequence(0x006b_6c75_6973 + u64::try_from(client).unwrap_or(0));
                let (mut requests, mut booked) = (0, 0);
                let started = Instant::now();
                while started.elapsed() < RUN_FOR {
                    // Booking lanes: client c takes c, c + CLIENTS, ...
                    let i = client + requests * CLIENTS;
                    booked += bench
                        .one(scenario, &mut picks, i)
                        .await
                        .with_context(|| format!("{scenario}, request {requests}"))?;
                    requests += 1;
                }
                Ok::<_, anyhow::Error>((requests, booked))
            }));
        }
        let (mut requests, mut booked) = (0, 0);
        for client in clients {
            let (r, b) = client.await??;
            requests += r;
            booked += b;
        }
        Ok((requests, booked))
    }
}

async fn scenarios_answer_correctly(database_url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let checked = support::settings(database_url, dir.path())?;
    let report = kluis_bench::seed(&checked, PLAN).await?;
    let (store, _) = api::open_store(&checked).await?;

    let application =
        api::Application::build_with_clock(checked.clone(), api::clock::Clock::system()).await?;
    let graphql = format!("http://127.0.0.1:{}/graphql", application.port());
    tokio::spawn(application.run_until_stopped());
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let baseline = format!("http://{}", listener.local_addr()?);
    tokio::spawn(kluis_bench::baseline::server(store.clone(), listener, 1)?);

    let client = reqwest::Client::new();
    let login: Value = client
        .post(&graphql)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }",
            "variables": { "e": report.fixture.staff_email, "p": report.fixture.staff_password },
        }))
        .send()
        .await?
        .json()
        .await?;
    let staff_token = login["data"]["login"]["token"]
        .as_str()
        .with_context(|| format!("login: {login}"))?
        .to_owned();
    let bench = std::sync::Arc::new(Bench {
        client,
        graphql,
        baseline,
        fixture: report.fixture,
        staff_token,
    });

    let started = chrono::Utc::now();
    for scenario in [
        "availability",
        "day_sheet",
        "lookup",
        "base_availability",
        "base_day_sheet",
        "base_lookup_token",
        "base_lookup_plaintext",
    ] {
        let (requests, _) = bench.run(scenario).await?;
        ensure!(requests > 0, "{scenario} made no request");
    }
    // Bookings: lanes of the booking run, then of the mixed run after them.
    let (_, booked) = bench.run("book").await?;
    ensure!(booked > 0, "no booking made");
    let mixed = std::sync::Arc::new(Bench {
        client: bench.client.clone(),
        graphql: bench.graphql.clone(),
        baseline: bench.baseline.clone(),
        fixture: shifted(&bench.fixture, booked + CLIENTS * 2),
        staff_token: bench.staff_token.clone(),
    });
    let (_, booked_mixed) = mixed.run("mixed").await?;

    let checker = store.clone();
    let overlapping =
        tokio::task::spawn_blocking(move || checker.double_bookings_since(started)).await??;
    assert_eq!(overlapping, 0, "double bookings");
    let counted =
        tokio::task::spawn_blocking(move || store.reservations_made_since(started)).await??;
    assert_eq!(
        counted,
        i64::try_from(booked + booked_mixed)?,
        "every confirmed booking is stored, once"
    );
    Ok(())
}

/// The fixture with each venue's booking starts moved past those the
/// booking run can have used, so that the mixed run books free slots.
fn shifted(fixture: &kluis_bench::Fixture, used: usize) -> kluis_bench::Fixture {
    let mut fixture = fixture.clone();
    let per_start = fixture.venues.len() * fixture.venues[0].1.len();
    let skip = used.div_ceil(per_start) + 1;
    for starts in &mut fixture.booking_starts {
        starts.drain(..skip.min(starts.len().saturating_sub(1)));
    }
    fixture
}

#[tokio::test]
async fn the_load_scenarios_answer_correctly_on_sqlite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    scenarios_answer_correctly(url).await
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn the_load_scenarios_answer_correctly_on_postgres() -> Result<()> {
    let url = tokio::task::spawn_blocking(support::postgres_schema).await??;
    scenarios_answer_correctly(url).await
}
