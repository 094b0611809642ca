//! Walk-ins: staff seat a party now, checked in at once, on a free table;
//! no manage token, no mail; only staff of the venue may.

use anyhow::Result;
use kluis_tests::{Backend, TestApp, both_backends, error_code, user_error_code, user_errors};
use serde_json::{Value, json};

const WALK_IN: &str = r#"
mutation W($input: RecordWalkInInput!) {
  recordWalkIn(input: $input) {
    manageToken
    reservation { id status partySize startsAt endsAt resource { slug } }
    userErrors { field code message }
  }
}"#;

fn walk_in(venue: &str, party: i64) -> Value {
    json!({ "input": { "venueId": venue, "partySize": party } })
}

async fn a_walk_in_is_seated_now_and_checked_in(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let input = json!({ "input": { "venueId": venue, "partySize": 3, "name": "Wanda Walkin", "note": "by the window" } });
    let answer = app.gql_as(&staff, WALK_IN, input).await?;
    let payload = &answer["data"]["recordWalkIn"];
    assert_eq!(payload["userErrors"], json!([]), "{answer}");
    assert_eq!(
        payload["manageToken"],
        Value::Null,
        "a walk-in gets no token"
    );
    let reservation = &payload["reservation"];
    assert_eq!(reservation["status"], "CHECKED_IN", "{answer}");
    assert_eq!(reservation["resource"]["slug"], "table");
    // It starts at the current minute, off the hourly grid.
    let starts =
        chrono::DateTime::parse_from_rfc3339(reservation["startsAt"].as_str().unwrap_or_default())?;
    let now = app.now();
    assert!(
        starts <= now && now - starts.with_timezone(&chrono::Utc) < chrono::Duration::minutes(1),
        "{starts} vs {now}"
    );
    let ends =
        chrono::DateTime::parse_from_rfc3339(reservation["endsAt"].as_str().unwrap_or_default())?;
    assert_eq!(ends - starts, chrono::Duration::minutes(60));
    // No confirmation mail, and the name reads back to staff.
    assert_eq!(app.count_rows("outbox", "kind = 'email'")?, 0);
    let id = reservation["id"].as_str().unwrap_or_default();
    let read = app
        .gql_as(
            &staff,
            "query R($id: ID!) { reservation(id: $id) { guestName notes } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(
        read["data"]["reservation"],
        json!({ "guestName": "Wanda Walkin", "notes": "by the window" }),
        "{read}"
    );
    kluis_tests::assert_absent(&app.raw_database()?, "Wanda Walkin", "the database");

    // The one table is taken now: a second walk-in, or a booking at this
    // hour, does not fit.
    let again = app.gql_as(&staff, WALK_IN, walk_in(&venue, 2)).await?;
    assert_eq!(
        user_error_code(&again, "recordWalkIn"),
        Some("SLOT_TAKEN"),
        "{again}"
    );
    // A nameless walk-in keeps no guest record at all.
    let manager = app.staff("manager", Some("lunch-room")).await?;
    let lunch = app.venue_id("lunch-room").await?;
    let nameless = app.gql_as(&manager, WALK_IN, walk_in(&lunch, 2)).await?;
    let reservation = &nameless["data"]["recordWalkIn"]["reservation"];
    assert_eq!(reservation["status"], "CHECKED_IN", "{nameless}");
    // Outside the lunch room's hours and inside its notice period, on the
    // smallest table that fits.
    assert_eq!(reservation["resource"]["slug"], "two", "{nameless}");
    let id = reservation["id"].as_str().unwrap_or_default();
    assert_eq!(
        app.count_rows("reservations", &format!("id = '{id}' AND guest_id IS NULL"))?,
        1
    );
    Ok(())
}
both_backends!(
    a_walk_in_is_seated_now_and_checked_in,
    a_walk_in_is_seated_now_and_checked_in
);

async fn only_staff_of_the_venue_record_walk_ins(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let anonymous = app.gql(WALK_IN, walk_in(&venue, 2)).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    let booked = app.book("one-table", 10).await?;
    let as_guest = app
        .gql_as(&booked.token, WALK_IN, walk_in(&venue, 2))
        .await?;
    assert_eq!(error_code(&as_guest), Some("FORBIDDEN"), "{as_guest}");
    let admin = app.staff("admin", None).await?;
    let partner = app.partner_key(&admin, &venue, "widget").await?;
    let as_partner = app.gql_as(&partner, WALK_IN, walk_in(&venue, 2)).await?;
    assert_eq!(error_code(&as_partner), Some("FORBIDDEN"), "{as_partner}");
    let elsewhere = app.staff("staff", Some("lunch-room")).await?;
    let other_venue = app.gql_as(&elsewhere, WALK_IN, walk_in(&venue, 2)).await?;
    assert_eq!(error_code(&other_venue), Some("NOT_FOUND"), "{other_venue}");
    assert_eq!(app.count_rows("reservations", "status = 'checked_in'")?, 0);
    Ok(())
}
both_backends!(
    only_staff_of_the_venue_record_walk_ins,
    only_staff_of_the_venue_record_walk_ins
);

async fn bad_walk_ins_are_refused_field_by_field(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let staff = app.staff("manager", Some("one-table")).await?;
    for party in [0, -1, 7, 100_000] {
        let answer = app.gql_as(&staff, WALK_IN, walk_in(&venue, party)).await?;
        assert_eq!(
            user_errors(&answer, "recordWalkIn"),
            vec![("input.partySize".to_owned(), "INVALID".to_owned())],
            "{party}: {answer}"
        );
    }
    let long = "n".repeat(201);
    let answer = app
        .gql_as(
            &staff,
            WALK_IN,
            json!({ "input": { "venueId": venue, "partySize": 2, "name": long, "email": "not an address" } }),
        )
        .await?;
    let mut errors = user_errors(&answer, "recordWalkIn");
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ("input.email".to_owned(), "INVALID".to_owned()),
            ("input.name".to_owned(), "INVALID".to_owned())
        ],
        "{answer}"
    );
    let unknown_table = app
        .gql_as(
            &staff,
            WALK_IN,
            json!({ "input": { "venueId": venue, "partySize": 2, "resourceId": uuid::Uuid::new_v4().to_string() } }),
        )
        .await?;
    assert_eq!(
        user_error_code(&unknown_table, "recordWalkIn"),
        Some("NOT_FOUND"),
        "{unknown_table}"
    );
    // A phone number where the venue collects none is refused, not kept.
    let admin = app.staff("admin", None).await?;
    app.gql_as(
        &admin,
        "mutation S($v: VenueInput!) { saveVenue(input: $v) { userErrors { field } } }",
        json!({ "v": { "slug": "one-table", "guestFields": { "phone": "NOT_COLLECTED" } } }),
    )
    .await?;
    let phone = app
        .gql_as(
            &staff,
            WALK_IN,
            json!({ "input": { "venueId": venue, "partySize": 2, "name": "Pat", "phone": "+31612345678" } }),
        )
        .await?;
    assert_eq!(
        user_errors(&phone, "recordWalkIn"),
        vec![("input.phone".to_owned(), "INVALID".to_owned())],
        "{phone}"
    );
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 0);
    assert_eq!(app.count_rows("guests", "1 = 1")?, 0);
    Ok(())
}
both_backends!(
    bad_walk_ins_are_refused_field_by_field,
    bad_walk_ins_are_refused_field_by_field
);
