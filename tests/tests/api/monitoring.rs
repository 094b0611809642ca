use anyhow::{Context as _, Result};
use kluis_tests::{
    Backend, CREATE, FakeSmtp, Options, TestApp, assert_absent, both_backends, error_code, new_key,
    text, tomorrow, tomorrow_at,
};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ALERTS: &str = "query A($s: AlertStatus) { alerts(status: $s, first: 100) { totalCount edges { node { id rule principal observed triggers status acknowledgedBy venue { id } } } } }";
const WRONG: &str = "mutation L($e: String!) { login(input: { email: $e, password: \"not the password\" }) { token } }";
const LIFT: &str =
    "mutation H($i: LiftHoldInput!) { liftHold(input: $i) { lifted userErrors { field code } } }";

/// `liftHold`'s input for a principal as alerts name it.
fn lift(principal: &str) -> Value {
    let held = match principal.split_once(':') {
        Some(("user", id)) => json!({ "staffId": id }),
        Some(("apikey", id)) => json!({ "apiKeyId": id }),
        _ => json!({}),
    };
    json!({ "i": { "principal": held } })
}

/// The alerts of a page, each as a list shows it.
fn nodes(answer: &Value) -> Option<Vec<Value>> {
    let edges = answer["data"]["alerts"]["edges"].as_array()?;
    let nodes: Vec<Value> = edges.iter().map(|edge| edge["node"].clone()).collect();
    let total = answer["data"]["alerts"]["totalCount"].as_u64()?;
    assert_eq!(usize::try_from(total).ok(), Some(nodes.len()), "{answer}");
    Some(nodes)
}

async fn watched(
    backend: Backend,
    change: impl FnOnce(&mut api::config::Monitoring),
) -> Result<TestApp> {
    let mut monitoring = api::config::Monitoring::default();
    change(&mut monitoring);
    TestApp::spawn_with(
        backend,
        Options {
            monitoring,
            ..Options::default()
        },
    )
    .await
}

async fn alerts(app: &TestApp, admin: &str) -> Result<Vec<Value>> {
    let answer = app.gql_as(admin, ALERTS, json!({})).await?;
    nodes(&answer).with_context(|| format!("{answer}"))
}

fn with_rule<'a>(alerts: &'a [Value], rule: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule"] == rule).collect()
}

/// Failed logins of one account raise one alert however often they go on;
/// the login that finally works raises another. The alert goes out to the
/// configured webhook (signed) and admin e-mail, with ids and counts only;
/// an admin acknowledges it.
async fn a_burst_of_failed_logins_raises_one_alert_and_is_pushed(backend: Backend) -> Result<()> {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let hook_url = receiver.uri();
    let secret: api::config::SecretSetting = serde_json::from_value(json!("whsec_alerts_test"))?;
    let app = watched(backend, |m| {
        m.failed_logins_per_account = 2;
        m.alert_webhook_url = Some(hook_url);
        m.alert_webhook_secret = Some(secret);
        m.alert_emails = vec!["security@venue.example".to_owned()];
    })
    .await?;
    let admin = app.staff("admin", None).await?;
    let (email, password) = app.staff_account("manager", Some("one-table")).await?;
    for _ in 0..2 {
        let refused = app.gql(WRONG, json!({ "e": email })).await?;
        assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
    }
    let all = alerts(&app, &admin).await?;
    let burst = with_rule(&all, "failed_logins_account");
    assert_eq!(burst.len(), 1, "{all:?}");
    let principal = burst[0]["principal"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(principal.starts_with("user:"), "{principal}");
    assert_eq!(burst[0]["observed"], 2);

    app.login(&email, &password).await?;
    let all = alerts(&app, &admin).await?;
    let after = with_rule(&all, "login_after_failures");
    assert_eq!(after.len(), 1, "{all:?}");
    assert_eq!(after[0]["principal"], principal.as_str());

    // Two new alerts: each goes to the webhook and to the admin address.
    let pass = app.deliver_webhooks().await?;
    assert_eq!((pass.sent, pass.failed), (2, 0));
    let requests = receiver.received_requests().await.context("recorded")?;
    let now = app.now().timestamp();
    for request in &requests {
        let signature = request
            .headers
            .get("kluis-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(domain::webhooks::verify(
            b"whsec_alerts_test",
            signature,
            &request.body,
            now
        ));
        let body: Value = serde_json::from_slice(&request.body)?;
        assert_eq!(body["type"], "alert.opened");
        assert_eq!(body["data"]["principal"], principal.as_str());
        assert_absent(&request.body, &email, "the alert webhook");
    }
    let smtp = FakeSmtp::start(0).await?;
    let mailed = app.deliver_mail(&smtp.url).await?;
    assert_eq!(mailed.sent, 2);
    let messages = smtp.messages();
    assert!(
        messages
            .iter()
            .all(|m| m.contains("security@venue.example"))
    );
    assert!(messages.iter().any(|m| m.contains("failed_logins_account")));
    assert!(messages.iter().all(|m| !m.contains(&email)), "{messages:?}");

    let id = burst[0]["id"].clone();
    let acknowledged = app
        .gql_as(
            &admin,
            "mutation K($i: AcknowledgeAlertInput!) { acknowledgeAlert(input: $i) { alert { status acknowledgedBy } } }",
            json!({ "i": { "id": id } }),
        )
        .await?;
    assert_eq!(
        acknowledged["data"]["acknowledgeAlert"]["alert"]["status"], "ACKNOWLEDGED",
        "{acknowledged}"
    );
    let open = app.gql_as(&admin, ALERTS, json!({ "s": "OPEN" })).await?;
    let open = nodes(&open).unwrap_or_default();
    assert!(with_rule(&open, "failed_logins_account").is_empty());

    let manager = app.login(&email, &password).await?;
    let denied = app.gql_as(&manager, ALERTS, json!({})).await?;
    assert_eq!(
        error_code(&denied),
        Some("FORBIDDEN"),
        "admins only: {denied}"
    );
    Ok(())
}
both_backends!(
    a_burst_of_failed_logins_raises_one_alert_and_is_pushed,
    a_burst_of_failed_logins_raises_one_alert_and_is_pushed
);

/// Guessing from one address across many accounts: one alert for the
/// address, named by a pseudonym, never the address itself; repeats are
/// grouped into it.
async fn failed_logins_from_one_address_are_grouped_under_a_pseudonym(
    backend: Backend,
) -> Result<()> {
    let app = watched(backend, |m| m.failed_logins_per_address = 3).await?;
    let admin = app.staff("admin", None).await?;
    for n in 0..5 {
        app.gql(WRONG, json!({ "e": format!("nobody{n}@example.org") }))
            .await?;
    }
    let all = alerts(&app, &admin).await?;
    let from_address = with_rule(&all, "failed_logins_address");
    assert_eq!(from_address.len(), 1, "{all:?}");
    let principal = from_address[0]["principal"].as_str().unwrap_or_default();
    assert!(
        principal.starts_with("address:") && !principal.contains("127.0.0.1"),
        "{principal}"
    );
    assert_eq!(from_address[0]["triggers"], 3, "failures 3, 4 and 5");
    assert_eq!(from_address[0]["observed"], 5);
    Ok(())
}
both_backends!(
    failed_logins_from_one_address_are_grouped_under_a_pseudonym,
    failed_logins_from_one_address_are_grouped_under_a_pseudonym
);

/// Books a guest at `one-table` each hour; answers the reservation ids.
async fn book_guests(app: &TestApp, hours: std::ops::Range<u32>) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for hour in hours {
        ids.push(app.book("one-table", hour).await?.id);
    }
    Ok(ids)
}

const DAY: &str = "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d, first: 50) { edges { node { id guestName } } } }";

/// A manager reading the names of more guests than the threshold in the
/// window raises `bulk_read` and is throttled at once: the next request is
/// RATE_LIMITED with a retry-after, until an admin lifts the hold.
async fn bulk_reads_throttle_the_reader_until_an_admin_lifts_it(backend: Backend) -> Result<()> {
    // Tomorrow's sheet is the day's work by default: every record counts here.
    let app = watched(backend, |m| {
        m.bulk_read_records = 3;
        m.bulk_read_operational_days = 0;
    })
    .await?;
    let venue = app.venue_id("one-table").await?;
    book_guests(&app, 8..13).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let admin = app.staff("admin", None).await?;

    let read = app
        .gql_as(&manager, DAY, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    let edges = read["data"]["reservations"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(edges.len(), 5, "the read itself is answered: {read}");
    let all = alerts(&app, &admin).await?;
    let bulk = with_rule(&all, "bulk_read");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["observed"], 5);
    assert_eq!(bulk[0]["venue"]["id"], venue.as_str());

    let held = app
        .gql_as(&manager, DAY, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");
    let retry = held["errors"][0]["extensions"]["retryAfter"]
        .as_i64()
        .unwrap_or(0);
    assert!(retry > 59 * 60, "throttled for the configured hour: {held}");

    let principal = bulk[0]["principal"].as_str().unwrap_or_default();
    let lifted = app.gql_as(&admin, LIFT, lift(principal)).await?;
    assert_eq!(lifted["data"]["liftHold"]["lifted"], true, "{lifted}");
    let again = app.gql_as(&manager, "{ me { id } }", json!({})).await?;
    assert!(again["errors"].is_null(), "{again}");
    Ok(())
}
both_backends!(
    bulk_reads_throttle_the_reader_until_an_admin_lifts_it,
    bulk_reads_throttle_the_reader_until_an_admin_lifts_it
);

/// With `bulk_read_response = "alert"` the reader is only reported; a
/// reader under the threshold is not reported at all.
async fn bulk_reads_can_be_only_reported(backend: Backend) -> Result<()> {
    let app = watched(backend, |m| {
        m.bulk_read_records = 3;
        m.bulk_read_operational_days = 0;
        m.bulk_read_response = api::config::BulkReadResponse::Alert;
    })
    .await?;
    let venue = app.venue_id("one-table").await?;
    let ids = book_guests(&app, 8..13).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let admin = app.staff("admin", None).await?;
    let one = "query R($id: ID!) { reservation(id: $id) { guestName } }";
    for id in &ids[..3] {
        app.gql_as(&staff, one, json!({ "id": id })).await?;
    }
    assert!(
        with_rule(&alerts(&app, &admin).await?, "bulk_read").is_empty(),
        "three is not more than three"
    );
    let read = app
        .gql_as(&staff, DAY, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    assert!(read["errors"].is_null(), "{read}");
    assert_eq!(
        with_rule(&alerts(&app, &admin).await?, "bulk_read").len(),
        1
    );
    let still = app
        .gql_as(&staff, DAY, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    assert!(still["errors"].is_null(), "not held back: {still}");
    Ok(())
}
both_backends!(
    bulk_reads_can_be_only_reported,
    bulk_reads_can_be_only_reported
);

/// Finding guests by address at the front desk counts toward the bulk-read
/// rule, even when no personal field is read: enumerating addresses is a
/// bulk read too.
async fn front_desk_lookups_count_as_bulk_reads(backend: Backend) -> Result<()> {
    let app = watched(backend, |m| {
        m.bulk_read_records = 3;
        m.bulk_read_response = api::config::BulkReadResponse::Alert;
    })
    .await?;
    let venue = app.venue_id("one-table").await?;
    for hour in 8..12 {
        let created = app
            .gql(
                CREATE,
                json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(hour), "partySize": 2, "guest": { "name": "Walk In", "email": format!("walk-in-{hour}@example.org") }, "idempotencyKey": new_key() } }),
            )
            .await?;
        assert!(created["errors"].is_null(), "{created}");
    }
    let staff = app.staff("staff", Some("one-table")).await?;
    let admin = app.staff("admin", None).await?;
    let lookup = "query G($v: ID!, $e: String!) { guestReservations(venueId: $v, email: $e) { nodes { id } } }";
    for hour in 8..11 {
        let found = app
            .gql_as(
                &staff,
                lookup,
                json!({ "v": venue, "e": format!("walk-in-{hour}@example.org") }),
            )
            .await?;
        assert_eq!(
            found["data"]["guestReservations"]["nodes"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "{found}"
        );
    }
    assert!(
        with_rule(&alerts(&app, &admin).await?, "bulk_read").is_empty(),
        "three guests are not more than three"
    );
    app.gql_as(
        &staff,
        lookup,
        json!({ "v": venue, "e": "walk-in-11@example.org" }),
    )
    .await?;
    let all = alerts(&app, &admin).await?;
    let bulk = with_rule(&all, "bulk_read");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["observed"], 4);
    Ok(())
}
both_backends!(
    front_desk_lookups_count_as_bulk_reads,
    front_desk_lookups_count_as_bulk_reads
);

// The busy venue files' numbers, which the seeding below counts on.
/// Far from UTC, so that a venue's "today" is not the server's.
const BUSY_ZONE: &str = "Pacific/Auckland";
/// Quarter-hour bookings on four tables, around the clock.
const TABLES: usize = 4;
const SLOT_MINUTES: i64 = 15;

/// `busy-bistro`, open around the clock in `BUSY_ZONE` with room for 384
/// bookings a day (`TABLES` tables, a start every `SLOT_MINUTES`).
const BUSY_BISTRO: &str = kluis_tests::fixture!("busy-bistro.toml");
/// Four venues like `busy-bistro`: `north`, `south`, `east` and `west`.
const BUSY_COMPASS: &str = kluis_tests::fixture!("busy-compass.toml");

async fn busy_app(backend: Backend, venues: &'static str) -> Result<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            venues,
            ..Options::default()
        },
    )
    .await
}

/// The venue-local date `offset` days from today.
fn venue_day(app: &TestApp, offset: i64) -> chrono::NaiveDate {
    let zone: chrono_tz::Tz = BUSY_ZONE.parse().unwrap_or(chrono_tz::UTC);
    app.now().with_timezone(&zone).date_naive() + chrono::Duration::days(offset)
}

fn guest_address(slug: &str, date: chrono::NaiveDate, n: usize) -> String {
    format!("guest-{n}-{date}@{slug}.example")
}

/// `per_day` bookings, each of its own guest, on each of `days` at a busy
/// venue, loaded straight into the store (booking them over HTTP one by
/// one would take most of the test). Answers the venue's id.
async fn seed_days(
    app: &TestApp,
    slug: &str,
    days: &[chrono::NaiveDate],
    per_day: usize,
) -> Result<String> {
    let venue = app.venue_id(slug).await?;
    let store = app.store().await?;
    let id = domain::VenueId::parse(&venue)?;
    let view = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.venue_view(id))
            .await??
            .context("the venue was imported")?
    };
    let tables: Vec<String> = view.resources.iter().map(|r| r.id.to_string()).collect();
    let now = app.now();
    let mut guests = Vec::new();
    let mut bookings = Vec::new();
    for date in days {
        let midnight = domain::venue::start_of_day(view.venue.time_zone, *date);
        for n in 0..per_day {
            let guest = uuid::Uuid::new_v4().to_string();
            guests.push(store::BulkGuest {
                id: guest.clone(),
                venue_id: venue.clone(),
                name: domain::PersonName::parse("name", &format!("Guest {n}"))?,
                email: Some(domain::Email::parse(
                    "email",
                    &guest_address(slug, *date, n),
                )?),
                phone: None,
            });
            let round = i64::try_from(n / TABLES)?;
            let starts_at = midnight + chrono::Duration::minutes(SLOT_MINUTES * round);
            let ends_at = starts_at + chrono::Duration::minutes(SLOT_MINUTES);
            bookings.push(store::BulkReservation {
                id: uuid::Uuid::new_v4().to_string(),
                venue_id: venue.clone(),
                resource_id: tables[n % TABLES].clone(),
                guest_id: guest,
                party_size: 2,
                starts_at,
                ends_at,
                blocked_until: ends_at,
                status: if ends_at < now {
                    "completed"
                } else {
                    "confirmed"
                },
                created_at: now - chrono::Duration::days(40),
            });
        }
    }
    tokio::task::spawn_blocking(move || store.bulk_load(&guests, &bookings, now)).await??;
    Ok(venue)
}

const SHEET: &str = "query S($v: ID!, $d: Date!, $a: String) { reservations(venueId: $v, date: $d, first: 100, after: $a) { edges { node { id guestName } } pageInfo { hasNextPage endCursor } } }";

/// Pages through a venue's day sheet through `node`, reading every guest's
/// name: the number of reservations read, or the answer that refused.
async fn read_sheet(
    app: &TestApp,
    node: &str,
    token: &str,
    venue: &str,
    date: chrono::NaiveDate,
) -> Result<std::result::Result<usize, Value>> {
    let mut read = 0;
    let mut after = Value::Null;
    loop {
        let page = app
            .gql_at(
                node,
                Some(token),
                SHEET,
                json!({ "v": venue, "d": date.to_string(), "a": after }),
            )
            .await?;
        if !page["errors"].is_null() {
            return Ok(Err(page));
        }
        let sheet = &page["data"]["reservations"];
        read += sheet["edges"].as_array().map_or(0, Vec::len);
        if sheet["pageInfo"]["hasNextPage"] != true {
            return Ok(Ok(read));
        }
        after = sheet["pageInfo"]["endCursor"].clone();
    }
}

/// An ordinary evening at a venue with 300 bookings a day: staff page
/// through today's and tomorrow's sheets (600 guests) again and again, on
/// two nodes. Re-reads count once and the venue's own sheets for today
/// and tomorrow not at all: no alert, no throttle, with the shipped
/// thresholds.
async fn staff_working_their_day_sheets_all_evening_are_not_bulk_reading(
    backend: Backend,
) -> Result<()> {
    let app = busy_app(backend, BUSY_BISTRO).await?;
    let (today, tomorrow) = (venue_day(&app, 0), venue_day(&app, 1));
    let venue = seed_days(&app, "busy-bistro", &[today, tomorrow], 300).await?;
    let staff = app.staff("staff", Some("busy-bistro")).await?;
    let admin = app.staff("admin", None).await?;
    let here = app.address.clone();
    for _ in 0..3 {
        for date in [today, tomorrow] {
            let read = read_sheet(&app, &here, &staff, &venue, date).await?;
            assert_eq!(read.as_ref().ok(), Some(&300), "{read:?}");
        }
    }
    // A node that has not seen this account yet counts its whole window
    // of the trail before answering on: 600 distinct records.
    let other = app.another_node().await?;
    for date in [today, tomorrow] {
        let read = read_sheet(&app, &other, &staff, &venue, date).await?;
        assert_eq!(read.as_ref().ok(), Some(&300), "{read:?}");
    }
    let all = alerts(&app, &admin).await?;
    assert!(with_rule(&all, "bulk_read").is_empty(), "{all:?}");
    let still = app.gql_as(&staff, "{ me { id } }", json!({})).await?;
    assert!(still["errors"].is_null(), "not held back: {still}");
    Ok(())
}
both_backends!(
    staff_working_their_day_sheets_all_evening_are_not_bulk_reading,
    staff_working_their_day_sheets_all_evening_are_not_bulk_reading
);

/// The same account paging back through a month of history is reading in
/// bulk: `bulk_read` trips within the first days and the account is
/// throttled before it gets far, today's sheet read alongside or not.
async fn paging_through_a_month_of_history_is_a_bulk_read(backend: Backend) -> Result<()> {
    let app = busy_app(backend, BUSY_BISTRO).await?;
    let history: Vec<chrono::NaiveDate> = (1..=30).map(|ago| venue_day(&app, -ago)).collect();
    let venue = seed_days(&app, "busy-bistro", &history, 20).await?;
    seed_days(&app, "busy-bistro", &[venue_day(&app, 0)], 300).await?;
    let staff = app.staff("staff", Some("busy-bistro")).await?;
    let admin = app.staff("admin", None).await?;
    let here = app.address.clone();
    let today = read_sheet(&app, &here, &staff, &venue, venue_day(&app, 0)).await?;
    assert_eq!(today.as_ref().ok(), Some(&300), "{today:?}");

    let mut days_read = 0;
    let mut refused = None;
    for date in &history {
        match read_sheet(&app, &here, &staff, &venue, *date).await? {
            Ok(read) => {
                assert_eq!(read, 20);
                days_read += 1;
            }
            Err(answer) => {
                refused = Some(answer);
                break;
            }
        }
    }
    let refused = refused.context("a month of history was read without a stop")?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"), "{refused}");
    // More than 50 records of history: the third day's sheet.
    assert_eq!(days_read, 3, "held back right after crossing");
    let all = alerts(&app, &admin).await?;
    let bulk = with_rule(&all, "bulk_read");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["observed"], 60, "history only: {all:?}");
    assert_eq!(bulk[0]["venue"]["id"], venue.as_str());
    let held = app.gql_as(&staff, "{ me { id } }", json!({})).await?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");
    Ok(())
}
both_backends!(
    paging_through_a_month_of_history_is_a_bulk_read,
    paging_through_a_month_of_history_is_a_bulk_read
);

/// Front-desk lookups count fully, even of guests booked for today: one
/// per guest found however often looked up again, and one per address
/// that found nobody (the trail cannot tell those addresses apart, so
/// each probe counts). Past 50, `bulk_read` trips and the desk account is
/// throttled.
async fn front_desk_lookups_of_many_addresses_are_a_bulk_read(backend: Backend) -> Result<()> {
    let app = busy_app(backend, BUSY_BISTRO).await?;
    let today = venue_day(&app, 0);
    let venue = seed_days(&app, "busy-bistro", &[today], 30).await?;
    let desk = app.staff("staff", Some("busy-bistro")).await?;
    let admin = app.staff("admin", None).await?;
    let lookup = "query G($v: ID!, $e: String!) { guestReservations(venueId: $v, email: $e) { nodes { id startsAt } } }";
    let mut addresses: Vec<String> =
        std::iter::repeat_n(guest_address("busy-bistro", today, 0), 10).collect();
    addresses.extend((0..30).map(|n| guest_address("busy-bistro", today, n)));
    addresses.extend((0..20).map(|n| format!("not-a-guest-{n}@elsewhere.example")));
    for (n, address) in addresses.iter().enumerate() {
        let found = app
            .gql_as(&desk, lookup, json!({ "v": venue, "e": address }))
            .await?;
        assert!(found["errors"].is_null(), "lookup {n}: {found}");
    }
    assert!(
        with_rule(&alerts(&app, &admin).await?, "bulk_read").is_empty(),
        "30 guests and 20 misses are not more than 50"
    );
    let last = app
        .gql_as(
            &desk,
            lookup,
            json!({ "v": venue, "e": "not-a-guest-20@elsewhere.example" }),
        )
        .await?;
    assert!(
        last["errors"].is_null(),
        "the crossing lookup answers: {last}"
    );
    let all = alerts(&app, &admin).await?;
    let bulk = with_rule(&all, "bulk_read");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["observed"], 51);
    let held = app
        .gql_as(&desk, lookup, json!({ "v": venue, "e": addresses[0] }))
        .await?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");
    Ok(())
}
both_backends!(
    front_desk_lookups_of_many_addresses_are_a_bulk_read,
    front_desk_lookups_of_many_addresses_are_a_bulk_read
);

/// An account with a role at every venue reads today's sheets of one
/// venue after another: the first two venues' sheets are the day's work,
/// further venues' guests count, and past 50 `bulk_read` trips.
async fn reading_day_sheets_across_many_venues_is_a_bulk_read(backend: Backend) -> Result<()> {
    let slugs = ["north", "south", "east", "west"];
    let app = busy_app(backend, BUSY_COMPASS).await?;
    let today = venue_day(&app, 0);
    let mut venues = Vec::new();
    for slug in slugs {
        venues.push(seed_days(&app, slug, &[today], 30).await?);
    }
    let manager = app.staff("manager", None).await?;
    let admin = app.staff("admin", None).await?;
    let here = app.address.clone();
    for (n, venue) in venues.iter().enumerate().take(3) {
        let read = read_sheet(&app, &here, &manager, venue, today).await?;
        assert_eq!(read.as_ref().ok(), Some(&30), "venue {n}: {read:?}");
        // Re-reading a sheet already read costs nothing more.
        let again = read_sheet(&app, &here, &manager, venue, today).await?;
        assert_eq!(again.as_ref().ok(), Some(&30), "venue {n}: {again:?}");
    }
    assert!(
        with_rule(&alerts(&app, &admin).await?, "bulk_read").is_empty(),
        "two venues' sheets and 30 guests of a third are not a bulk read"
    );
    let fourth = read_sheet(&app, &here, &manager, &venues[3], today).await?;
    assert_eq!(fourth.as_ref().ok(), Some(&30), "{fourth:?}");
    let all = alerts(&app, &admin).await?;
    let bulk = with_rule(&all, "bulk_read");
    assert_eq!(bulk.len(), 1, "{all:?}");
    assert_eq!(bulk[0]["observed"], 60, "the third and fourth venues");
    let held = read_sheet(&app, &here, &manager, &venues[0], today).await?;
    let held = held.err().context("held back")?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");
    Ok(())
}
both_backends!(
    reading_day_sheets_across_many_venues_is_a_bulk_read,
    reading_day_sheets_across_many_venues_is_a_bulk_read
);

/// Exports of guest data by one account above the hourly rate.
async fn exports_above_the_rate_raise_an_alert(backend: Backend) -> Result<()> {
    let app = watched(backend, |m| m.exports_per_hour = 1).await?;
    let ids = book_guests(&app, 8..10).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let admin = app.staff("admin", None).await?;
    let export = "mutation E($r: ID!) { exportGuestData(input: { reservationId: $r }) { export { format } userErrors { code } } }";
    let first = app.gql_as(&manager, export, json!({ "r": ids[0] })).await?;
    assert!(first["errors"].is_null(), "{first}");
    assert!(with_rule(&alerts(&app, &admin).await?, "export_rate").is_empty());
    app.gql_as(&manager, export, json!({ "r": ids[1] })).await?;
    let all = alerts(&app, &admin).await?;
    let rate = with_rule(&all, "export_rate");
    assert_eq!(rate.len(), 1, "{all:?}");
    assert_eq!(rate[0]["observed"], 2);
    Ok(())
}
both_backends!(
    exports_above_the_rate_raise_an_alert,
    exports_above_the_rate_raise_an_alert
);

async fn partner_key(app: &TestApp, admin: &str) -> Result<(String, String)> {
    let venue = app.venue_id("one-table").await?;
    let created = app
        .gql_as(
            admin,
            "mutation K($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id } } }",
            json!({ "i": { "name": "Booking platform", "venueIds": [venue] } }),
        )
        .await?;
    let key = text(&created, "/data/createApiKey/key")?;
    let id = text(&created, "/data/createApiKey/apiKey/id")?;
    Ok((key, id))
}

async fn as_key_from(app: &TestApp, key: &str, client: &str) -> Result<Value> {
    Ok(app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(key)
        .header("x-forwarded-for", client)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?
        .json()
        .await?)
}

/// An API key used from a network it never used before (a leaked key at
/// work elsewhere) raises `api_key_new_network`; its first network and
/// later calls from known ones do not.
async fn an_api_key_from_a_new_network_raises_an_alert(backend: Backend) -> Result<()> {
    let app = TestApp::spawn_with(
        backend,
        Options {
            rate_limits: api::config::RateLimits {
                trusted_proxies: vec!["127.0.0.0/8".to_owned()],
                ..api::config::RateLimits::default()
            },
            ..Options::default()
        },
    )
    .await?;
    let admin = app.staff("admin", None).await?;
    let (key, id) = partner_key(&app, &admin).await?;
    for client in ["203.0.113.5", "203.0.113.77", "203.0.113.5"] {
        let answer = as_key_from(&app, &key, client).await?;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    assert!(with_rule(&alerts(&app, &admin).await?, "api_key_new_network").is_empty());
    as_key_from(&app, &key, "198.51.100.20").await?;
    let all = alerts(&app, &admin).await?;
    let new = with_rule(&all, "api_key_new_network");
    assert_eq!(new.len(), 1, "{all:?}");
    assert_eq!(new[0]["principal"], format!("apikey:{id}"));
    assert_eq!(new[0]["observed"], 2, "the second network");
    Ok(())
}
both_backends!(
    an_api_key_from_a_new_network_raises_an_alert,
    an_api_key_from_a_new_network_raises_an_alert
);

/// A key that made about 2 requests a minute for a day and now makes 30
/// in one minute raises `api_key_rate` (above 10 times its usual rate and
/// above the floor) once the nodes shared their counts.
async fn an_api_key_far_above_its_usual_rate_raises_an_alert(backend: Backend) -> Result<()> {
    let app = watched(backend, |m| {
        m.api_key_rate_factor = 10;
        m.api_key_rate_floor = 20;
    })
    .await?;
    let admin = app.staff("admin", None).await?;
    let (key, id) = partner_key(&app, &admin).await?;
    let scope = format!("apikey:{id}");
    let store = app.store().await?;
    // Just after a minute starts, so that the burst below falls in one
    // minute however slowly a loaded machine sends it.
    let into_minute = i64::from(chrono::Timelike::second(&app.now()));
    app.advance(chrono::Duration::seconds(61 - into_minute));
    let minute = chrono::DurationRound::duration_trunc(app.now(), chrono::TimeDelta::minutes(1))?;
    let history: Vec<store::RateDelta> = (1..=30)
        .map(|ago| store::RateDelta {
            scope: scope.clone(),
            window_start: minute - chrono::TimeDelta::minutes(ago * 20),
            requests: 2,
            complexity: 2,
        })
        .collect();
    tokio::task::spawn_blocking(move || store.add_rate_counts(&history)).await??;

    for _ in 0..30 {
        app.gql_as(&key, "{ __typename }", json!({})).await?;
    }
    let mut found = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let all = alerts(&app, &admin).await?;
        found = with_rule(&all, "api_key_rate")
            .into_iter()
            .cloned()
            .collect();
        if !found.is_empty() {
            break;
        }
    }
    assert_eq!(found.len(), 1, "no alert within 10 s");
    assert_eq!(found[0]["principal"], scope.as_str());
    assert!(
        found[0]["observed"].as_i64().unwrap_or(0) >= 20,
        "{found:?}"
    );
    Ok(())
}
both_backends!(
    an_api_key_far_above_its_usual_rate_raises_an_alert,
    an_api_key_far_above_its_usual_rate_raises_an_alert
);

/// With `bulk_read_response = "suspend"`, an API key that reads too many
/// guests is refused (FORBIDDEN, naming the alert) until an admin lifts it.
async fn a_bulk_reading_api_key_is_suspended_until_lifted(backend: Backend) -> Result<()> {
    let app = watched(backend, |m| {
        m.bulk_read_records = 3;
        m.bulk_read_operational_days = 0;
        m.bulk_read_response = api::config::BulkReadResponse::Suspend;
    })
    .await?;
    let admin = app.staff("admin", None).await?;
    let (key, id) = partner_key(&app, &admin).await?;
    let ids = book_guests(&app, 8..12).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { guestName } }";
    for reservation in &ids {
        let answer = app.gql_as(&key, read, json!({ "id": reservation })).await?;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let refused = app.gql_as(&key, read, json!({ "id": ids[0] })).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    assert!(refused["errors"][0]["extensions"]["alertId"].is_string());
    let lifted = app
        .gql_as(&admin, LIFT, lift(&format!("apikey:{id}")))
        .await?;
    assert_eq!(lifted["data"]["liftHold"]["lifted"], true, "{lifted}");
    let back = app.gql_as(&key, "{ __typename }", json!({})).await?;
    assert!(back["errors"].is_null(), "{back}");
    Ok(())
}
both_backends!(
    a_bulk_reading_api_key_is_suspended_until_lifted,
    a_bulk_reading_api_key_is_suspended_until_lifted
);

/// The alert webhook's receiver is down: the alert is stored at once, the
/// message waits and is retried with backoff, and arrives when the
/// receiver is back. Nothing is lost.
async fn alerts_survive_a_receiver_that_is_down(backend: Backend) -> Result<()> {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let hook_url = receiver.uri();
    let secret: api::config::SecretSetting = serde_json::from_value(json!("whsec_down"))?;
    let app = watched(backend, |m| {
        m.failed_logins_per_address = 1;
        m.alert_webhook_url = Some(hook_url);
        m.alert_webhook_secret = Some(secret);
    })
    .await?;
    let admin = app.staff("admin", None).await?;
    app.gql(WRONG, json!({ "e": "nobody@example.org" })).await?;
    assert_eq!(
        with_rule(&alerts(&app, &admin).await?, "failed_logins_address").len(),
        1,
        "stored at once, whatever the receiver does"
    );
    let first = app.deliver_webhooks().await?;
    assert_eq!((first.sent, first.failed), (0, 1));
    app.advance(chrono::Duration::seconds(31));
    let second = app.deliver_webhooks().await?;
    assert_eq!((second.sent, second.failed), (0, 1));
    app.advance(chrono::Duration::seconds(30));
    assert_eq!(app.deliver_webhooks().await?.sent, 0, "backoff doubled");
    app.advance(chrono::Duration::seconds(31));
    let third = app.deliver_webhooks().await?;
    assert_eq!((third.sent, third.failed), (1, 0));
    let requests = receiver.received_requests().await.context("recorded")?;
    assert_eq!(requests.len(), 3);
    let body: Value = serde_json::from_slice(&requests[2].body)?;
    assert_eq!(body["data"]["rule"], "failed_logins_address");
    Ok(())
}
both_backends!(
    alerts_survive_a_receiver_that_is_down,
    alerts_survive_a_receiver_that_is_down
);
