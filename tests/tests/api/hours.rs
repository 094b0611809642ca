//! Working plans: resources with weekly hours of their own, and dated
//! exceptions for the venue or one resource. A slot is offered when some
//! fitting resource works for the whole booking; bookings the saved hours
//! leave outside are listed to the manager, never cancelled.

use anyhow::Result;
use chrono::Datelike;
use kluis_tests::{
    Backend, TestApp, both_backends, data, free_slots, payload, starts, tomorrow, tomorrow_at,
    user_errors,
};
use serde_json::{Value, json};

const SAVE: &str = "mutation S($v: VenueInput!) { saveVenue(input: $v) {
    venue { id }
    reservationsOutsideHours { id startsAt }
    userErrors { field code message } } }";

const PLANS: &str = "query P($id: ID!) { venue(id: $id) {
    resources { slug hours { weekday opens closes } }
    exceptions { date hours { opens closes } resource { slug } } } }";

const AVAILABILITY: &str = "query Free($venue: ID!, $date: Date!, $size: Int!) {
  availability(venueId: $venue, date: $date, partySize: $size) {
    startsAt freeResources { slug } } }";

async fn save(app: &TestApp, token: &str, input: Value) -> Result<Value> {
    app.gql_as(token, SAVE, json!({ "v": input })).await
}

/// Tomorrow's weekday (UTC), as GraphQL names it.
fn tomorrow_weekday() -> &'static str {
    let day = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ][day.weekday().num_days_from_monday() as usize]
}

fn utc(hour: u32) -> String {
    tomorrow_at(hour).replace('Z', "+00:00")
}

/// Free starts on a date for a party, each with its free resources.
async fn free(
    app: &TestApp,
    venue: &str,
    date: &str,
    size: i64,
) -> Result<Vec<(String, Vec<String>)>> {
    let answer = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": date, "size": size }),
        )
        .await?;
    free_slots(&answer)
}

/// `one-table` is open around the clock; a second table that works only
/// tomorrow 09:00-12:00 is offered only then, and cannot be booked
/// outside.
async fn a_resource_with_its_own_hours_is_offered_only_inside_them(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "resources": [
            { "slug": "table", "name": "The table", "capacity": 4 },
            { "slug": "big", "name": "Big table", "capacity": 6, "hours": [
                { "weekday": tomorrow_weekday(), "opens": "09:00", "closes": "12:00" }] }] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;

    let for_six = free(&app, &venue, &tomorrow(), 6).await?;
    assert_eq!(starts(&for_six), [utc(9), utc(10), utc(11)], "{for_six:?}");
    let for_two = free(&app, &venue, &tomorrow(), 2).await?;
    assert_eq!(for_two.len(), 24, "the small table works all day");
    let at_ten = for_two
        .iter()
        .find(|(start, _)| *start == utc(10))
        .map(|(_, slugs)| slugs.clone());
    assert_eq!(at_ten, Some(vec!["table".to_owned(), "big".to_owned()]));

    let refused = app.book("one-table", 13).party(6).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );
    assert!(
        refused.to_string().contains("works then"),
        "the reason says no one works then: {refused}"
    );
    app.book("one-table", 10).party(6).await?;
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 1);

    // Read back: public, null for the table that follows the venue.
    let read = app.gql(PLANS, json!({ "id": venue })).await?;
    let resources = &data(&read, "venue")?["resources"];
    assert_eq!(resources[0]["slug"], "table", "{read}");
    assert!(resources[0]["hours"].is_null(), "{read}");
    assert_eq!(
        resources[1]["hours"],
        json!([{ "weekday": tomorrow_weekday(), "opens": "09:00", "closes": "12:00" }]),
        "{read}"
    );

    // A save that leaves `hours` out keeps them; null drops them.
    let kept = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "resources": [
            { "slug": "table", "name": "The table", "capacity": 4 },
            { "slug": "big", "name": "Bigger name", "capacity": 6 }] }),
    )
    .await?;
    payload(&kept, "saveVenue")?;
    assert_eq!(app.count_rows("resources", "working_hours IS NOT NULL")?, 1);
    let dropped = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "resources": [
            { "slug": "table", "name": "The table", "capacity": 4 },
            { "slug": "big", "name": "Big table", "capacity": 6, "hours": null }] }),
    )
    .await?;
    payload(&dropped, "saveVenue")?;
    assert_eq!(app.count_rows("resources", "working_hours IS NOT NULL")?, 0);
    assert_eq!(free(&app, &venue, &tomorrow(), 6).await?.len(), 23);
    Ok(())
}
both_backends!(
    a_resource_with_its_own_hours_is_offered_only_inside_them,
    a_resource_with_its_own_hours_is_offered_only_inside_them
);

async fn exceptions_change_a_dates_plan_and_bookings_outside_are_listed(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    let morning = app.book("one-table", 10).await?;
    app.book("one-table", 15).await?;

    // Tomorrow the venue works only 14:00-18:00.
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "exceptions": [
            { "date": tomorrow(), "hours": [{ "opens": "14:00", "closes": "18:00" }] }] }),
    )
    .await?;
    let saved = payload(&saved, "saveVenue")?;
    assert_eq!(
        saved["reservationsOutsideHours"],
        json!([{ "id": morning.id, "startsAt": utc(10) }]),
        "{saved}"
    );
    assert_eq!(
        app.count_rows("reservations", "status = 'confirmed'")?,
        2,
        "kept, not cancelled"
    );
    let offered = free(&app, &venue, &tomorrow(), 2).await?;
    assert_eq!(starts(&offered), [utc(14), utc(16), utc(17)]);
    let refused = app.book("one-table", 11).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );

    // The table's own exception closes it all day: both bookings outside.
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "exceptions": [
            { "date": tomorrow(), "hours": [{ "opens": "14:00", "closes": "18:00" }] },
            { "date": tomorrow(), "hours": [], "resourceSlug": "table" }] }),
    )
    .await?;
    let saved = payload(&saved, "saveVenue")?;
    assert_eq!(
        saved["reservationsOutsideHours"].as_array().map(Vec::len),
        Some(2),
        "{saved}"
    );
    assert!(free(&app, &venue, &tomorrow(), 2).await?.is_empty());

    let read = app.gql(PLANS, json!({ "id": venue })).await?;
    assert_eq!(
        data(&read, "venue")?["exceptions"],
        json!([
            { "date": tomorrow(), "hours": [{ "opens": "14:00", "closes": "18:00" }],
              "resource": null },
            { "date": tomorrow(), "hours": [], "resource": { "slug": "table" } }]),
        "{read}"
    );

    // Removing them all restores the weekly hours.
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "exceptions": [] }),
    )
    .await?;
    let saved = payload(&saved, "saveVenue")?;
    assert_eq!(saved["reservationsOutsideHours"], json!([]), "{saved}");
    assert_eq!(free(&app, &venue, &tomorrow(), 2).await?.len(), 22);
    Ok(())
}
both_backends!(
    exceptions_change_a_dates_plan_and_bookings_outside_are_listed,
    exceptions_change_a_dates_plan_and_bookings_outside_are_listed
);

async fn every_wrong_hours_input_is_reported_and_nothing_written(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "name": "Renamed",
            "resources": [{ "slug": "table", "name": "The table", "capacity": 4, "hours": [
                { "weekday": "MONDAY", "opens": "12:00", "closes": "09:00" }] }],
            "exceptions": [
                { "date": "2027-02-30", "hours": [] },
                { "date": "2027-01-04", "hours": [
                    { "opens": "09:00", "closes": "12:00" },
                    { "opens": "11:00", "closes": "13:00" }] },
                { "date": "2027-01-05", "hours": [], "resourceSlug": "Not a slug!" },
                { "date": "2027-01-06", "hours": [{ "opens": "18:00", "closes": "17:00" }] },
                { "date": "2027-01-06", "hours": [] }] }),
    )
    .await?;
    let mut errors = user_errors(&saved, "saveVenue");
    errors.sort();
    assert_eq!(
        errors,
        [
            ("input.exceptions.0.date", "INVALID"),
            ("input.exceptions.1.hours", "INVALID"),
            ("input.exceptions.2.resourceSlug", "INVALID"),
            ("input.exceptions.3.hours.0.closes", "INVALID"),
            ("input.resources.0.hours.0.closes", "INVALID"),
        ]
        .map(|(f, c)| (f.to_owned(), c.to_owned())),
        "{saved}"
    );
    assert!(saved["data"]["saveVenue"]["venue"].is_null(), "{saved}");

    // The same date twice for the venue, and a resource the venue lacks.
    for (exceptions, field) in [
        (
            json!([{ "date": "2027-01-06", "hours": [] }, { "date": "2027-01-06", "hours": [] }]),
            "input.exceptions.1.date",
        ),
        (
            json!([{ "date": "2027-01-06", "hours": [], "resourceSlug": "two" }]),
            "input.exceptions.0.resourceSlug",
        ),
    ] {
        let saved = save(
            &app,
            &manager,
            json!({ "slug": "one-table", "name": "Renamed", "exceptions": exceptions }),
        )
        .await?;
        assert_eq!(
            user_errors(&saved, "saveVenue"),
            [(field.to_owned(), "INVALID".to_owned())],
            "{saved}"
        );
    }

    // Too many at once is one error on the list.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({ "date": "2027-01-06", "hours": [] }))
        .collect();
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "exceptions": many }),
    )
    .await?;
    assert_eq!(
        user_errors(&saved, "saveVenue"),
        [("input.exceptions".to_owned(), "INVALID".to_owned())],
        "{saved}"
    );

    // So is a week of more intervals than any week needs.
    let crowded: Vec<Value> = (0..85)
        .map(|_| json!({ "weekday": "MONDAY", "opens": "09:00", "closes": "10:00" }))
        .collect();
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "resources": [
            { "slug": "table", "name": "The table", "capacity": 4, "hours": crowded }] }),
    )
    .await?;
    assert_eq!(
        user_errors(&saved, "saveVenue"),
        [("input.resources.0.hours".to_owned(), "INVALID".to_owned())],
        "{saved}"
    );

    // A manager of another venue saves none.
    let other = app.staff("manager", Some("lunch-room")).await?;
    let refused = save(
        &app,
        &other,
        json!({ "slug": "one-table", "exceptions": [{ "date": "2027-01-06", "hours": [] }] }),
    )
    .await?;
    assert_eq!(
        kluis_tests::error_code(&refused),
        Some("FORBIDDEN"),
        "{refused}"
    );

    assert_eq!(app.count_rows("hours_exceptions", "1 = 1")?, 0);
    assert_eq!(app.count_rows("resources", "working_hours IS NOT NULL")?, 0);
    assert_eq!(app.count_rows("venues", "name = 'Renamed'")?, 0);
    Ok(())
}
both_backends!(
    every_wrong_hours_input_is_reported_and_nothing_written,
    every_wrong_hours_input_is_reported_and_nothing_written
);

async fn a_venue_file_names_the_line_and_key_of_wrong_hours(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let head = "[[venue]]\nslug = \"one-table\"\nname = \"One\"\ntime_zone = \"UTC\"\n\
                [[venue.resource]]\nslug = \"table\"\nname = \"T\"\ncapacity = 4\n";
    for (tail, line, key) in [
        (
            "[venue.resource.hours]\nmonday = [\"09:00-12:00\", \"11:00-13:00\"]\n",
            10,
            "venue[0].resource[0].hours.monday",
        ),
        (
            "[venue.resource.hours]\ntuesday = [\"09:00-25:00\"]\n",
            10,
            "venue[0].resource[0].hours.tuesday",
        ),
        (
            "[[venue.exception]]\ndate = \"2027-13-01\"\nhours = []\n",
            10,
            "venue[0].exception[0].date",
        ),
        (
            "[[venue.exception]]\ndate = \"2027-01-04\"\nhours = [\"18:00-17:00\"]\n",
            11,
            "venue[0].exception[0].hours",
        ),
        (
            "[[venue.exception]]\ndate = \"2027-01-04\"\nhours = []\nresource = \"bar\"\n",
            12,
            "venue[0].exception[0].resource",
        ),
        (
            "[[venue.exception]]\ndate = \"2027-01-04\"\nhours = []\n\
             [[venue.exception]]\ndate = \"2027-01-04\"\nhours = []\n",
            13,
            "venue[0].exception[1].date",
        ),
    ] {
        let file = format!("{head}{tail}");
        let error = api::import::parse("venues.toml", &file)
            .err()
            .ok_or_else(|| anyhow::anyhow!("accepted: {file}"))?
            .to_string();
        assert!(
            error.starts_with(&format!("venues.toml:{line}: {key}: ")),
            "{error}"
        );
    }
    // A good one imports and reads back.
    let file = format!(
        "{head}[venue.resource.hours]\nmonday = [\"09:00-12:00\"]\n\
         [[venue.exception]]\ndate = \"2027-01-04\"\nhours = [\"18:00-23:00\"]\n\
         [[venue.exception]]\ndate = \"2027-01-05\"\nhours = []\nresource = \"table\"\n"
    );
    let store = app.store().await?;
    api::import_venues(&store, api::import::parse("venues.toml", &file)?).await?;
    let venue = app.venue_id("one-table").await?;
    let read = app.gql(PLANS, json!({ "id": venue })).await?;
    let venue = data(&read, "venue")?;
    assert_eq!(
        venue["resources"][0]["hours"],
        json!([{ "weekday": "MONDAY", "opens": "09:00", "closes": "12:00" }]),
        "{read}"
    );
    assert_eq!(
        venue["exceptions"],
        json!([
            { "date": "2027-01-04", "hours": [{ "opens": "18:00", "closes": "23:00" }],
              "resource": null },
            { "date": "2027-01-05", "hours": [], "resource": { "slug": "table" } }]),
        "{read}"
    );
    Ok(())
}
both_backends!(
    a_venue_file_names_the_line_and_key_of_wrong_hours,
    a_venue_file_names_the_line_and_key_of_wrong_hours
);

/// Amsterdam's clocks go forward on 28 March 2027 and back on 31 October
/// 2027. A practitioner who works Sundays 01:00-05:00 works three real
/// hours on the first and, with an exception of 01:00-04:00 on the second,
/// four: the wall-clock ends stay where they were written.
async fn own_hours_and_exceptions_on_daylight_saving_days(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let saved = save(
        &app,
        &admin,
        json!({ "slug": "night-clinic", "name": "Night clinic", "timeZone": "Europe/Amsterdam",
            "slotIntervalMinutes": 60, "bookingDurationMinutes": 60, "minNoticeMinutes": 0,
            "maxAdvanceDays": 30,
            "resources": [{ "slug": "doctor", "name": "Doctor", "kind": "PRACTITIONER",
                "capacity": 1, "hours": [
                    { "weekday": "SUNDAY", "opens": "01:00", "closes": "05:00" }] }],
            "exceptions": [{ "date": "2027-10-31", "resourceSlug": "doctor",
                "hours": [{ "opens": "01:00", "closes": "04:00" }] }] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;
    let venue = app.venue_id("night-clinic").await?;

    let to = |at: &str| -> Result<()> {
        let target: chrono::DateTime<chrono::Utc> = at.parse()?;
        let now = app.now();
        if target > now {
            app.advance(target - now);
        }
        Ok(())
    };
    to("2027-03-26T12:00:00Z")?;
    let spring = free(&app, &venue, "2027-03-28", 1).await?;
    assert_eq!(
        starts(&spring),
        [
            "2027-03-28T01:00:00+01:00",
            "2027-03-28T03:00:00+02:00",
            "2027-03-28T04:00:00+02:00"
        ],
        "{spring:?}"
    );
    app.book("night-clinic", 0)
        .party(1)
        .starts_at("2027-03-28T04:00:00+02:00")
        .await?;
    let late = app
        .book("night-clinic", 0)
        .party(1)
        .starts_at("2027-03-28T05:00:00+02:00")
        .answer()
        .await?;
    assert_eq!(
        user_errors(&late, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{late}"
    );

    to("2027-10-29T12:00:00Z")?;
    let autumn = free(&app, &venue, "2027-10-31", 1).await?;
    assert_eq!(
        starts(&autumn),
        [
            "2027-10-31T01:00:00+02:00",
            "2027-10-31T02:00:00+02:00",
            "2027-10-31T02:00:00+01:00",
            "2027-10-31T03:00:00+01:00"
        ],
        "{autumn:?}"
    );
    app.book("night-clinic", 0)
        .party(1)
        .starts_at("2027-10-31T02:00:00+01:00")
        .await?;
    let after = app
        .book("night-clinic", 0)
        .party(1)
        .starts_at("2027-10-31T04:00:00+01:00")
        .answer()
        .await?;
    assert_eq!(
        user_errors(&after, "createReservation"),
        [("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{after}"
    );
    Ok(())
}
both_backends!(
    own_hours_and_exceptions_on_daylight_saving_days,
    own_hours_and_exceptions_on_daylight_saving_days
);

/// A day off committed while a booking waits for the venue (another node
/// saving the venue holds its row) is seen by that booking: it is refused,
/// not written on a day nobody works. PostgreSQL only: SQLite has one
/// writer at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn an_exception_saved_during_a_booking_is_seen_by_it() -> Result<()> {
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
                "INSERT INTO hours_exceptions (id, venue_id, local_date, hours) \
                 VALUES ('{}', '{venue}', '{}', '')",
                uuid::Uuid::new_v4(),
                tomorrow()
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
