//! Closures: a venue, or one of its resources, closed for a period on the
//! venue's clock. No slot inside one is offered or booked; bookings made
//! before a closure was saved stay, and the manager who saved it is told.

use anyhow::Result;
use kluis_tests::{
    Backend, TestApp, both_backends, data, free_slots, payload, starts, text, tomorrow,
    tomorrow_at, user_errors,
};
use serde_json::{Value, json};

const SAVE: &str = "mutation S($v: VenueInput!) { saveVenue(input: $v) {
    venue { id }
    reservationsInClosures { id status startsAt }
    userErrors { field code message } } }";

const CLOSURES: &str = "query C($id: ID!) { venue(id: $id) {
    closures { id from until resource { slug } reason } } }";

/// What anyone may read of a venue's closures.
const PUBLIC_CLOSURES: &str = "query C($id: ID!) { venue(id: $id) {
    closures { id from until resource { slug } } } }";

const AVAILABILITY: &str = "query Free($venue: ID!, $date: Date!, $size: Int!) {
  availability(venueId: $venue, date: $date, partySize: $size) {
    startsAt freeResources { slug } } }";

/// Tomorrow's date (UTC, as `one-table` and `lunch-room` tests use it) at
/// a wall-clock time, as a closure gives it.
fn local(hour: u32) -> String {
    format!("{}T{hour:02}:00", tomorrow())
}

fn utc(hour: u32) -> String {
    tomorrow_at(hour).replace('Z', "+00:00")
}

async fn save(app: &TestApp, token: &str, input: Value) -> Result<Value> {
    app.gql_as(token, SAVE, json!({ "v": input })).await
}

/// Free starts on a date, each with the slugs of its free resources.
async fn free(app: &TestApp, venue: &str, date: &str) -> Result<Vec<(String, Vec<String>)>> {
    let answer = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": date, "size": 2 }),
        )
        .await?;
    free_slots(&answer)
}

async fn a_venue_closure_removes_its_slots_and_refuses_bookings(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "closures": [
            { "from": local(12), "until": local(15), "reason": "Staff training" }] }),
    )
    .await?;
    let saved = payload(&saved, "saveVenue")?;
    assert_eq!(saved["reservationsInClosures"], json!([]), "{saved}");

    let offered = free(&app, &venue, &tomorrow()).await?;
    let offered = starts(&offered);
    assert!(offered.contains(&utc(11).as_str()), "{offered:?}");
    for hour in 12..15 {
        assert!(!offered.contains(&utc(hour).as_str()), "{offered:?}");
    }
    assert!(offered.contains(&utc(15).as_str()), "{offered:?}");

    let refused = app.book("one-table", 13).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );
    assert!(refused["data"]["createReservation"]["reservation"].is_null());
    let eleven = app.book("one-table", 11).await?;
    app.book("one-table", 15).await?;
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 2);

    // Nor can a booking be moved into it.
    let moved = app
        .gql_as(
            &eleven.token,
            "mutation M($input: ModifyReservationInput!) { modifyReservation(input: $input) {
                reservation { startsAt } userErrors { field code } } }",
            json!({ "input": { "id": eleven.id, "startsAt": tomorrow_at(13),
                "idempotencyKey": kluis_tests::new_key() } }),
        )
        .await?;
    assert_eq!(
        user_errors(&moved, "modifyReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{moved}"
    );

    // A manager of another venue saves none.
    let other = app.staff("manager", Some("lunch-room")).await?;
    let refused = save(&app, &other, json!({ "slug": "one-table", "closures": [] })).await?;
    assert_eq!(
        kluis_tests::error_code(&refused),
        Some("FORBIDDEN"),
        "{refused}"
    );
    assert_eq!(app.count_rows("closures", "1 = 1")?, 1);
    Ok(())
}
both_backends!(
    a_venue_closure_removes_its_slots_and_refuses_bookings,
    a_venue_closure_removes_its_slots_and_refuses_bookings
);

async fn a_resource_closure_removes_only_that_resource(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("lunch-room")).await?;
    let venue = app.venue_id("lunch-room").await?;
    let resources = app
        .gql(
            "query R($id: ID!) { venue(id: $id) { resources { id slug } } }",
            json!({ "id": venue }),
        )
        .await?;
    let four = data(&resources, "venue")?["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["slug"] == "four")
        .map(|r| r["id"].clone())
        .ok_or_else(|| anyhow::anyhow!("no table for four in {resources}"))?;
    // The whole of tomorrow, Amsterdam time, as whole dates.
    let day_after = (chrono::Utc::now().date_naive() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "lunch-room", "closures": [
            { "from": tomorrow(), "until": day_after, "resourceId": four }] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;
    let offered = free(&app, &venue, &tomorrow()).await?;
    assert!(!offered.is_empty(), "the table for two is still open");
    for (start, slugs) in &offered {
        assert_eq!(slugs, &["two"], "at {start}");
    }
    let listed = app.gql(PUBLIC_CLOSURES, json!({ "id": venue })).await?;
    let closures = &data(&listed, "venue")?["closures"];
    assert_eq!(closures[0]["resource"]["slug"], "four", "{listed}");
    Ok(())
}
both_backends!(
    a_resource_closure_removes_only_that_resource,
    a_resource_closure_removes_only_that_resource
);

async fn bookings_inside_a_new_closure_are_listed_and_kept(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let inside = app.book("one-table", 10).await?;
    app.book("one-table", 14).await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "closures": [{ "from": local(9), "until": local(12) }] }),
    )
    .await?;
    let saved = payload(&saved, "saveVenue")?;
    assert_eq!(
        saved["reservationsInClosures"],
        json!([{ "id": inside.id, "status": "CONFIRMED", "startsAt": utc(10) }]),
        "{saved}"
    );
    let admin = app.staff("admin", None).await?;
    let read = app
        .gql_as(
            &admin,
            "query R($id: ID!) { reservation(id: $id) { status } }",
            json!({ "id": inside.id }),
        )
        .await?;
    assert_eq!(read["data"]["reservation"]["status"], "CONFIRMED", "{read}");

    // Left out, the list stays; an empty list removes it.
    let renamed = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "name": "One" }),
    )
    .await?;
    payload(&renamed, "saveVenue")?;
    let venue = app.venue_id("one-table").await?;
    let listed = app.gql(PUBLIC_CLOSURES, json!({ "id": venue })).await?;
    assert_eq!(
        data(&listed, "venue")?["closures"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let cleared = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "closures": [] }),
    )
    .await?;
    payload(&cleared, "saveVenue")?;
    let listed = app.gql(PUBLIC_CLOSURES, json!({ "id": venue })).await?;
    assert_eq!(data(&listed, "venue")?["closures"], json!([]), "{listed}");
    Ok(())
}
both_backends!(
    bookings_inside_a_new_closure_are_listed_and_kept,
    bookings_inside_a_new_closure_are_listed_and_kept
);

async fn the_reason_is_for_staff_only(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "closures": [
            { "from": local(12), "until": local(15), "reason": "Funeral" }] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;

    let anonymous = app.gql(CLOSURES, json!({ "id": venue })).await?;
    let closure = &anonymous["data"]["venue"]["closures"][0];
    assert_eq!(closure["from"], utc(12), "{anonymous}");
    assert_eq!(closure["until"], utc(15), "{anonymous}");
    assert!(closure["resource"].is_null(), "{anonymous}");
    assert!(closure["reason"].is_null(), "{anonymous}");
    let errors = anonymous["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 1, "{anonymous}");
    assert_eq!(
        errors[0]["path"],
        json!(["venue", "closures", 0, "reason"]),
        "{anonymous}"
    );
    // As every guarded field answers a caller without credentials.
    assert_eq!(
        errors[0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous}"
    );
    assert!(!anonymous.to_string().contains("Funeral"));

    let staff = app.staff("staff", Some("one-table")).await?;
    let read = app.gql_as(&staff, CLOSURES, json!({ "id": venue })).await?;
    assert_eq!(
        data(&read, "venue")?["closures"][0]["reason"],
        "Funeral",
        "{read}"
    );
    // Staff of another venue do not read it.
    let elsewhere = app.staff("staff", Some("lunch-room")).await?;
    let read = app
        .gql_as(&elsewhere, CLOSURES, json!({ "id": venue }))
        .await?;
    assert!(
        read["data"]["venue"]["closures"][0]["reason"].is_null(),
        "{read}"
    );
    assert_eq!(
        read["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{read}"
    );
    Ok(())
}
both_backends!(the_reason_is_for_staff_only, the_reason_is_for_staff_only);

async fn every_wrong_closure_is_reported_and_nothing_written(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let lunch = app.venue_id("lunch-room").await?;
    let other = app
        .gql(
            "query R($id: ID!) { venue(id: $id) { resources { id } } }",
            json!({ "id": lunch }),
        )
        .await?;
    let foreign = text(data(&other, "venue")?, "/resources/0/id")?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "name": "Renamed", "closures": [
            { "from": local(12), "until": local(15) },
            { "from": local(15), "until": local(12) },
            { "from": local(12), "until": local(15), "resourceId": foreign },
            { "from": local(12), "until": local(15), "reason": "x".repeat(201) },
            { "from": "tomorrow", "until": local(12) },
            { "from": local(12), "until": local(12) }] }),
    )
    .await?;
    let mut errors = user_errors(&saved, "saveVenue");
    errors.sort();
    assert_eq!(
        errors,
        [
            ("input.closures.1.until", "INVALID"),
            ("input.closures.2.resourceId", "INVALID"),
            ("input.closures.3.reason", "INVALID"),
            ("input.closures.4.from", "INVALID"),
            ("input.closures.5.until", "INVALID"),
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned())),
        "{saved}"
    );
    assert!(saved["data"]["saveVenue"]["venue"].is_null(), "{saved}");
    assert_eq!(app.count_rows("closures", "1 = 1")?, 0);
    assert_eq!(app.count_rows("venues", "name = 'Renamed'")?, 0);

    // Too many at once is one error on the list.
    let many: Vec<Value> = (0..501)
        .map(|_| json!({ "from": local(12), "until": local(15) }))
        .collect();
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "closures": many }),
    )
    .await?;
    assert_eq!(
        user_errors(&saved, "saveVenue"),
        [("input.closures".to_owned(), "INVALID".to_owned())],
        "{saved}"
    );
    assert_eq!(app.count_rows("closures", "1 = 1")?, 0);
    Ok(())
}
both_backends!(
    every_wrong_closure_is_reported_and_nothing_written,
    every_wrong_closure_is_reported_and_nothing_written
);

async fn a_venue_file_names_the_line_and_key_of_a_wrong_closure(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let head = "[[venue]]\nslug = \"one-table\"\nname = \"One\"\ntime_zone = \"UTC\"\n\
                [[venue.resource]]\nslug = \"table\"\nname = \"T\"\ncapacity = 4\n";
    for (closure, key) in [
        (
            "from = \"2027-01-02\"\nuntil = \"2027-01-02\"\n",
            "venue[0].closure[0].until",
        ),
        (
            "from = \"2027-01-02\"\nuntil = \"2027-01-03\"\nresource = \"bar\"\n",
            "venue[0].closure[0].resource",
        ),
        (
            "from = \"2027-01-02 at noon\"\nuntil = \"2027-01-03\"\n",
            "venue[0].closure[0].from",
        ),
        (
            &format!(
                "from = \"2027-01-02\"\nuntil = \"2027-01-03\"\nreason = \"{}\"\n",
                "x".repeat(201)
            ),
            "venue[0].closure[0].reason",
        ),
    ] {
        let file = format!("{head}[[venue.closure]]\n{closure}");
        let error = api::import::parse("venues.toml", &file)
            .err()
            .ok_or_else(|| anyhow::anyhow!("accepted: {file}"))?
            .to_string();
        // The wrong value's line: after the head's eight and the table's.
        let line = 10
            + closure
                .lines()
                .position(|l| l.starts_with(key.rsplit('.').next().unwrap_or_default()))
                .unwrap_or_default();
        assert!(
            error.starts_with(&format!("venues.toml:{line}: {key}: ")),
            "{error}"
        );
    }
    // A good one imports, and its times are on the venue's clock.
    let file = format!(
        "{head}[[venue.closure]]\nfrom = \"2027-01-02T18:00\"\nuntil = \"2027-01-03\"\n\
         resource = \"table\"\nreason = \"Inventory\"\n"
    );
    let store = app.store().await?;
    api::import_venues(&store, api::import::parse("venues.toml", &file)?).await?;
    let admin = app.staff("admin", None).await?;
    let venue = app.venue_id("one-table").await?;
    let listed = app.gql_as(&admin, CLOSURES, json!({ "id": venue })).await?;
    assert_eq!(
        data(&listed, "venue")?["closures"][0],
        json!({ "id": listed["data"]["venue"]["closures"][0]["id"],
            "from": "2027-01-02T18:00:00+00:00", "until": "2027-01-03T00:00:00+00:00",
            "resource": { "slug": "table" }, "reason": "Inventory" }),
        "{listed}"
    );
    Ok(())
}
both_backends!(
    a_venue_file_names_the_line_and_key_of_a_wrong_closure,
    a_venue_file_names_the_line_and_key_of_a_wrong_closure
);

/// Amsterdam moves its clocks from 02:00 to 03:00 on 28 March 2027. A
/// closure from 22:00 to 04:00 over that night closes 21:00 to 02:00 UTC:
/// the hour before and the hour after stay bookable.
async fn a_closure_over_the_night_clocks_change(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let days = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ];
    let hours: Vec<Value> = days
        .iter()
        .map(|day| json!({ "weekday": day, "opens": "00:00", "closes": "24:00" }))
        .collect();
    let saved = save(
        &app,
        &admin,
        json!({ "slug": "night", "name": "Night", "timeZone": "Europe/Amsterdam",
            "slotIntervalMinutes": 60, "bookingDurationMinutes": 60, "minNoticeMinutes": 0,
            "maxAdvanceDays": 30, "openingHours": hours,
            "resources": [{ "slug": "table", "name": "The table", "capacity": 4 }],
            "closures": [{ "from": "2027-03-27T22:00", "until": "2027-03-28T04:00" }] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;
    let target: chrono::DateTime<chrono::Utc> = "2027-03-26T12:00:00Z".parse()?;
    let now = app.now();
    if target > now {
        app.advance(target - now);
    }
    let venue = app.venue_id("night").await?;
    let saturday = free(&app, &venue, "2027-03-27").await?;
    let sunday = free(&app, &venue, "2027-03-28").await?;
    let offered: Vec<&str> = starts(&saturday)
        .into_iter()
        .chain(starts(&sunday))
        .collect();
    assert!(
        offered.contains(&"2027-03-27T21:00:00+01:00"),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"2027-03-27T22:00:00+01:00"),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"2027-03-28T01:00:00+01:00"),
        "{offered:?}"
    );
    assert!(
        !offered.contains(&"2027-03-28T03:00:00+02:00"),
        "{offered:?}"
    );
    assert!(
        offered.contains(&"2027-03-28T04:00:00+02:00"),
        "{offered:?}"
    );

    let inside = app
        .book("night", 0)
        .starts_at("2027-03-28T03:00:00+02:00")
        .answer()
        .await?;
    assert_eq!(
        user_errors(&inside, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{inside}"
    );
    app.book("night", 0)
        .starts_at("2027-03-28T04:00:00+02:00")
        .await?;
    app.book("night", 0)
        .starts_at("2027-03-27T21:00:00+01:00")
        .await?;

    let listed = app.gql(PUBLIC_CLOSURES, json!({ "id": venue })).await?;
    let closure = &data(&listed, "venue")?["closures"][0];
    assert_eq!(closure["from"], "2027-03-27T22:00:00+01:00", "{listed}");
    assert_eq!(closure["until"], "2027-03-28T04:00:00+02:00", "{listed}");
    Ok(())
}
both_backends!(
    a_closure_over_the_night_clocks_change,
    a_closure_over_the_night_clocks_change
);

/// A closure committed while a booking waits for the venue (another node
/// saving the venue holds its row) is seen by that booking: it is
/// refused, not written next to the closure. PostgreSQL only: SQLite has
/// one writer at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_closure_saved_during_a_booking_is_seen_by_it() -> Result<()> {
    use diesel::RunQueryDsl;
    let app = TestApp::spawn(Backend::Postgres).await?;
    let venue = app.venue_id("one-table").await?;
    let mut saving = app.hold_postgres_locks(&format!(
        "SELECT id FROM venues WHERE id = '{venue}' FOR UPDATE"
    ))?;
    let booking = {
        let app = &app;
        async move { app.book("one-table", 13).answer().await }
    };
    let commit = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| -> Result<()> {
            diesel::sql_query(format!(
                "INSERT INTO closures (id, venue_id, local_from, local_until, starts_at, ends_at) \
                 VALUES ('{}', '{venue}', '{}', '{}', '{}', '{}')",
                uuid::Uuid::new_v4(),
                local(12),
                local(15),
                tomorrow_at(12),
                tomorrow_at(15)
            ))
            .execute(&mut saving)?;
            diesel::sql_query("COMMIT").execute(&mut saving)?;
            Ok(())
        })
    };
    let (answer, committed) = tokio::join!(booking, commit);
    committed?;
    let answer = answer?;
    assert_eq!(
        user_errors(&answer, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{answer}"
    );
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 0);
    Ok(())
}
