use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, both_backends, error_code, guest, new_key, tomorrow, tomorrow_at,
    user_error_code, user_errors,
};
use serde_json::json;

const AVAILABILITY: &str = r#"
query Free($venue: ID!, $date: Date!, $size: Int!) {
  availability(venueId: $venue, date: $date, partySize: $size) { startsAt endsAt freeResources { slug } }
}"#;

async fn free_starts(app: &TestApp, venue: &str, size: i64) -> Result<Vec<String>> {
    free_starts_at(app, &app.address, venue, size).await
}

/// Tomorrow's free start times as one node (see `TestApp::another_node`)
/// answers them.
async fn free_starts_at(app: &TestApp, node: &str, venue: &str, size: i64) -> Result<Vec<String>> {
    let answer = app
        .gql_at(
            node,
            None,
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": size }),
        )
        .await?;
    Ok(answer["data"]["availability"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no availability in {answer}"))?
        .iter()
        .filter_map(|slot| slot["startsAt"].as_str().map(str::to_owned))
        .collect())
}

async fn find_book_change_and_cancel(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;

    let free = free_starts(&app, &venue, 2).await?;
    assert_eq!(
        free.len(),
        24,
        "a 24-hour venue has 24 one-hour slots: {free:?}"
    );
    let ten = tomorrow_at(10).replace('Z', "+00:00");
    assert!(free.contains(&ten), "{free:?}");

    let created = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2 , "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    let reservation = &created["data"]["createReservation"]["reservation"];
    assert_eq!(reservation["status"], "CONFIRMED", "{created}");
    assert_eq!(reservation["startsAt"], ten);
    assert_eq!(
        reservation["endsAt"],
        tomorrow_at(11).replace('Z', "+00:00")
    );
    assert_eq!(reservation["resource"]["slug"], "table");
    let id = reservation["id"].as_str().unwrap_or_default().to_owned();
    let token = created["data"]["createReservation"]["manageToken"].clone();
    assert!(
        token.as_str().is_some_and(|t| t.starts_with("kmt_")),
        "{created}"
    );
    assert_eq!(id.len(), 36, "ids are UUIDs: {id}");

    let free = free_starts(&app, &venue, 2).await?;
    assert!(!free.contains(&ten), "the booked slot is still offered");
    assert_eq!(free.len(), 23);

    let admin = app.staff("admin", None).await?;
    let read = app
        .gql_as(
            &admin,
            "query R($id: ID!) { reservation(id: $id) { id partySize status venue { slug } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(read["data"]["reservation"]["partySize"], 2, "{read}");
    assert_eq!(read["data"]["reservation"]["venue"]["slug"], "one-table");

    let modified = app
        .gql(
            "mutation M($id: ID!, $t: String!, $key: String!, $at: DateTime!) { modifyReservation(input: { id: $id, manageToken: $t, startsAt: $at, partySize: 3, idempotencyKey: $key }) { reservation { startsAt partySize } userErrors { code } } }",
            json!({ "id": id, "t": token, "key": new_key(), "at": tomorrow_at(14) }),
        )
        .await?;
    assert_eq!(
        modified["data"]["modifyReservation"]["reservation"]["partySize"], 3,
        "{modified}"
    );
    assert_eq!(
        modified["data"]["modifyReservation"]["reservation"]["startsAt"],
        tomorrow_at(14).replace('Z', "+00:00")
    );
    let free = free_starts(&app, &venue, 2).await?;
    assert!(free.contains(&ten), "the old slot was not released");

    let cancelled = app
        .gql("mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: $key }) { reservation { status } userErrors { code } } }", json!({ "id": id, "t": token, "key": new_key() }))
        .await?;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{cancelled}"
    );
    assert_eq!(free_starts(&app, &venue, 2).await?.len(), 24);

    let again = app
        .gql("mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: $key }) { reservation { status } userErrors { code } } }", json!({ "id": id, "t": token, "key": new_key() }))
        .await?;
    assert_eq!(
        user_error_code(&again, "cancelReservation"),
        Some("CONFLICT"),
        "{again}"
    );
    Ok(())
}
both_backends!(find_book_change_and_cancel, find_book_change_and_cancel);

/// Availability is kept per node for a second: a booking made through the
/// node shows in its availability at once, and one made through another
/// node within that second, not later.
async fn availability_follows_bookings_on_every_node(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let second = app.another_node().await?;
    let venue = app.venue_id("one-table").await?;
    let ten = tomorrow_at(10).replace('Z', "+00:00");
    let eleven = tomorrow_at(11).replace('Z', "+00:00");
    // Both nodes have looked at the day, so both keep it.
    assert!(
        free_starts_at(&app, &app.address, &venue, 2)
            .await?
            .contains(&ten)
    );
    assert!(
        free_starts_at(&app, &second, &venue, 2)
            .await?
            .contains(&eleven)
    );

    let booked = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2, "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert!(booked["errors"].is_null(), "{booked}");
    assert!(
        !free_starts_at(&app, &app.address, &venue, 2)
            .await?
            .contains(&ten),
        "the booking node offers the slot it just sold"
    );
    let booked = app
        .gql_at(&second, None, CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(11), "partySize": 2, "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert!(booked["errors"].is_null(), "{booked}");
    assert!(
        !free_starts_at(&app, &second, &venue, 2)
            .await?
            .contains(&eleven)
    );

    // The first node learns of the second's booking within its second.
    let asked = std::time::Instant::now();
    loop {
        if !free_starts_at(&app, &app.address, &venue, 2)
            .await?
            .contains(&eleven)
        {
            break;
        }
        assert!(
            asked.elapsed() < std::time::Duration::from_millis(1_500),
            "another node's booking is still offered after {:?}",
            asked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A slot someone else took is refused when booked, cache or not.
    let late = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(11), "partySize": 2, "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        user_error_code(&late, "createReservation"),
        Some("SLOT_TAKEN"),
        "{late}"
    );
    Ok(())
}
both_backends!(
    availability_follows_bookings_on_every_node,
    availability_follows_bookings_on_every_node
);

async fn back_to_back_bookings_both_succeed(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    for hour in [10, 11] {
        let answer = app
            .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(hour), "partySize": 2 , "guest": guest(), "idempotencyKey": new_key() } }))
            .await?;
        assert_eq!(
            answer["data"]["createReservation"]["reservation"]["status"], "CONFIRMED",
            "{hour}:00 {answer}"
        );
    }
    assert_eq!(app.count_rows("reservations", "status = 'confirmed'")?, 2);
    Ok(())
}
both_backends!(
    back_to_back_bookings_both_succeed,
    back_to_back_bookings_both_succeed
);

async fn the_smallest_fitting_table_is_chosen_and_a_named_one_is_honoured(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("lunch-room").await?;
    let slots = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": 2 }),
        )
        .await?;
    let first = &slots["data"]["availability"][0];
    assert_eq!(
        first["freeResources"],
        json!([{ "slug": "two" }, { "slug": "four" }]),
        "{slots}"
    );
    let starts_at = first["startsAt"].clone();

    let auto = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 2 , "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        auto["data"]["createReservation"]["reservation"]["resource"]["slug"], "two",
        "{auto}"
    );

    let venue_answer = app
        .gql(
            "query V($id: ID!) { venue(id: $id) { resources { id slug } } }",
            json!({ "id": venue }),
        )
        .await?;
    let four = venue_answer["data"]["venue"]["resources"][1]["id"].clone();
    let named = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 1, "guest": guest(), "resourceId": four, "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        named["data"]["createReservation"]["reservation"]["resource"]["slug"], "four",
        "{named}"
    );

    let full = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 1 , "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        user_error_code(&full, "createReservation"),
        Some("SLOT_TAKEN"),
        "{full}"
    );
    Ok(())
}
both_backends!(
    the_smallest_fitting_table_is_chosen_and_a_named_one_is_honoured,
    the_smallest_fitting_table_is_chosen_and_a_named_one_is_honoured
);

async fn venues_are_listed_in_pages(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let query = "query P($after: String) { venues(first: 1, after: $after) { edges { cursor node { slug timeZone openingHours { weekday opens closes } } } pageInfo { hasNextPage endCursor } } }";
    let mut after = serde_json::Value::Null;
    let mut slugs = Vec::new();
    loop {
        let page = app.gql(query, json!({ "after": after })).await?;
        let venues = &page["data"]["venues"];
        assert_eq!(venues["edges"].as_array().map(Vec::len), Some(1), "{page}");
        slugs.push(
            venues["edges"][0]["node"]["slug"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        if venues["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = venues["pageInfo"]["endCursor"].clone();
        assert!(slugs.len() < 10, "paging does not end: {slugs:?}");
    }
    slugs.sort();
    assert_eq!(slugs, ["lunch-room", "next-day-only", "one-table"]);
    Ok(())
}
both_backends!(venues_are_listed_in_pages, venues_are_listed_in_pages);

const SHEET: &str = "query S($v: ID!, $d: Date!, $first: Int, $after: String, $status: [ReservationStatus!], $resource: ID, $from: LocalTime, $until: LocalTime, $since: DateTime) { reservations(venueId: $v, date: $d, first: $first, after: $after, status: $status, resourceId: $resource, from: $from, until: $until, updatedSince: $since) { totalCount summary { reservations covers } edges { cursor node { id partySize status } } pageInfo { hasNextPage endCursor } } }";

fn ids(answer: &serde_json::Value) -> Vec<String> {
    answer["data"]["reservations"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|edge| edge["node"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// The day sheet's filters run in the store, its counts follow them, and
/// its cursors are opaque: a forged one is refused.
async fn the_day_sheet_filters_counts_and_pages(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let admin = app.staff("admin", None).await?;
    let nine = app.book("one-table", 9).party(2).await?;
    let ten = app.book("one-table", 10).party(1).await?;
    let eleven = app.book("one-table", 11).party(2).await?;
    let day = tomorrow();
    let all = app
        .gql_as(&admin, SHEET, json!({ "v": venue, "d": day, "first": 2 }))
        .await?;
    let sheet = &all["data"]["reservations"];
    assert_eq!(sheet["totalCount"], 3, "{all}");
    assert_eq!(sheet["summary"], json!({ "reservations": 3, "covers": 5 }));
    assert_eq!(ids(&all), [nine.id.clone(), ten.id.clone()]);
    let cursor = sheet["pageInfo"]["endCursor"].as_str().unwrap_or_default();
    assert!(
        !cursor.contains('|') && !cursor.contains(':'),
        "opaque: {cursor}"
    );
    let next = app
        .gql_as(
            &admin,
            SHEET,
            json!({ "v": venue, "d": day, "first": 2, "after": cursor }),
        )
        .await?;
    assert_eq!(ids(&next), [eleven.id.as_str()], "{next}");
    assert_eq!(next["data"]["reservations"]["totalCount"], 3);

    // From 10:00 until 11:00 on the venue's clock (UTC here).
    let window = app
        .gql_as(
            &admin,
            SHEET,
            json!({ "v": venue, "d": day, "from": "10:00", "until": "11:00" }),
        )
        .await?;
    assert_eq!(ids(&window), [ten.id.as_str()], "{window}");
    assert_eq!(window["data"]["reservations"]["summary"]["covers"], 1);

    // A refresh: only what changed since, cancellations included.
    let since = chrono::Utc::now() + chrono::Duration::seconds(1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let cancelled = app
        .gql_as(
            &ten.token,
            "mutation C($id: ID!, $k: String!) { cancelReservation(input: { id: $id, idempotencyKey: $k }) { reservation { status } userErrors { code } } }",
            json!({ "id": ten.id, "k": new_key() }),
        )
        .await?;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{cancelled}"
    );
    let changed = app
        .gql_as(
            &admin,
            SHEET,
            json!({ "v": venue, "d": day, "since": since.to_rfc3339() }),
        )
        .await?;
    assert_eq!(ids(&changed), [ten.id.as_str()], "{changed}");

    let confirmed = app
        .gql_as(
            &admin,
            SHEET,
            json!({ "v": venue, "d": day, "status": ["CONFIRMED"] }),
        )
        .await?;
    assert_eq!(
        ids(&confirmed),
        [nine.id.clone(), eleven.id.clone()],
        "{confirmed}"
    );
    assert_eq!(
        confirmed["data"]["reservations"]["summary"],
        json!({ "reservations": 2, "covers": 4 })
    );

    // Another venue's resource matches nothing here.
    let lunch = app.venue_id("lunch-room").await?;
    let resources = app
        .gql(
            "query V($v: ID!) { venue(id: $v) { resources { id } } }",
            json!({ "v": lunch }),
        )
        .await?;
    let foreign = resources["data"]["venue"]["resources"][0]["id"].clone();
    let leak = app
        .gql_as(
            &admin,
            SHEET,
            json!({ "v": venue, "d": day, "resource": foreign }),
        )
        .await?;
    assert_eq!(leak["data"]["reservations"]["totalCount"], 0, "{leak}");
    assert!(ids(&leak).is_empty());

    for forged in ["not a cursor", "MjAyNnww", "eyJpZCI6MX0"] {
        let answer = app
            .gql_as(
                &admin,
                SHEET,
                json!({ "v": venue, "d": day, "after": forged }),
            )
            .await?;
        assert_eq!(
            error_code(&answer),
            Some("BAD_USER_INPUT"),
            "{forged}: {answer}"
        );
    }
    Ok(())
}
both_backends!(
    the_day_sheet_filters_counts_and_pages,
    the_day_sheet_filters_counts_and_pages
);

/// A taken slot comes back with the nearest free times of the day for the
/// same party, nearest first.
async fn a_taken_slot_offers_the_nearest_free_times(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    app.book("one-table", 12).await?;
    app.book("one-table", 13).await?;
    let taken = app.book("one-table", 12).answer().await?;
    assert_eq!(
        user_error_code(&taken, "createReservation"),
        Some("SLOT_TAKEN"),
        "{taken}"
    );
    let offered: Vec<String> = taken["data"]["createReservation"]["alternatives"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|slot| slot["startsAt"].as_str().map(str::to_owned))
        .collect();
    let at = |hour| tomorrow_at(hour).replace('Z', "+00:00");
    assert_eq!(offered.len(), 5, "{taken}");
    assert_eq!(offered[0], at(11), "{offered:?}");
    assert!(
        offered.contains(&at(14)) && offered.contains(&at(10)),
        "{offered:?}"
    );
    assert!(!offered.contains(&at(13)), "{offered:?}");
    assert!(taken["data"]["createReservation"]["reservation"].is_null());
    Ok(())
}
both_backends!(
    a_taken_slot_offers_the_nearest_free_times,
    a_taken_slot_offers_the_nearest_free_times
);

/// A form with many wrong fields gets every one of them back at once, and
/// nothing is stored.
async fn every_wrong_field_is_reported_at_once(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let long = "x".repeat(5000);
    let answer = app
        .book("one-table", 10)
        .starts_at(&tomorrow_at(10).replace(":00:00Z", ":17:00Z"))
        .party(0)
        .guest(json!({ "name": "", "email": "not-an-address", "phone": "call me", "notes": long }))
        .input("noticeVersion", json!(-1))
        .answer()
        .await?;
    let mut fields: Vec<String> = user_errors(&answer, "createReservation")
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "input.guest.email",
            "input.guest.name",
            "input.guest.notes",
            "input.guest.phone",
            "input.noticeVersion",
            "input.partySize",
            "input.startsAt",
        ],
        "{answer}"
    );
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 0);
    assert_eq!(app.count_rows("guests", "1 = 1")?, 0);
    Ok(())
}
both_backends!(
    every_wrong_field_is_reported_at_once,
    every_wrong_field_is_reported_at_once
);

const MODIFY: &str = "mutation M($id: ID!, $k: String!, $t: String) { modifyReservation(input: { id: $id, manageToken: $t, partySize: 1, idempotencyKey: $k }) { reservation { partySize } userErrors { field code } } }";
const CANCEL: &str = "mutation C($id: ID!, $k: String!, $t: String) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: $k }) { reservation { status } userErrors { field code } } }";
const MINE: &str = "query T($t: String) { reservationByToken(token: $t) { id partySize status } }";

/// The guest's key travels in the header; someone else's key reaches
/// nothing, two keys at once are refused, the old argument still works.
async fn manage_tokens_travel_in_the_header(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let mine = app.book("one-table", 9).await?;
    let theirs = app.book("one-table", 10).await?;

    let read = app.gql_as(&mine.token, MINE, json!({})).await?;
    assert_eq!(
        read["data"]["reservationByToken"]["id"],
        mine.id.as_str(),
        "{read}"
    );
    let old_way = app.gql(MINE, json!({ "t": mine.token })).await?;
    assert_eq!(
        old_way["data"]["reservationByToken"]["id"],
        mine.id.as_str()
    );
    let both = app
        .gql_as(&mine.token, MINE, json!({ "t": mine.token }))
        .await?;
    assert_eq!(error_code(&both), Some("BAD_USER_INPUT"), "{both}");
    assert!(both["data"]["reservationByToken"].is_null());
    let none = app.gql(MINE, json!({})).await?;
    assert_eq!(error_code(&none), Some("NOT_FOUND"), "{none}");

    // My key on their reservation: NOT_FOUND, and nothing changes.
    for mutation in [MODIFY, CANCEL] {
        let name = if mutation == MODIFY {
            "modifyReservation"
        } else {
            "cancelReservation"
        };
        let answer = app
            .gql_as(
                &mine.token,
                mutation,
                json!({ "id": theirs.id, "k": new_key() }),
            )
            .await?;
        assert_eq!(
            user_error_code(&answer, name),
            Some("NOT_FOUND"),
            "{answer}"
        );
        assert!(answer["data"][name]["reservation"].is_null());
        let twice = app
            .gql_as(
                &mine.token,
                mutation,
                json!({ "id": mine.id, "k": new_key(), "t": mine.token }),
            )
            .await?;
        assert_eq!(user_error_code(&twice, name), Some("INVALID"), "{twice}");
    }
    let after = app.gql_as(&theirs.token, MINE, json!({})).await?;
    assert_eq!(
        after["data"]["reservationByToken"]["partySize"], 2,
        "{after}"
    );
    assert_eq!(after["data"]["reservationByToken"]["status"], "CONFIRMED");

    let moved = app
        .gql_as(
            &mine.token,
            MODIFY,
            json!({ "id": mine.id, "k": new_key() }),
        )
        .await?;
    assert_eq!(
        moved["data"]["modifyReservation"]["reservation"]["partySize"], 1,
        "{moved}"
    );
    let deprecated = app
        .gql(
            CANCEL,
            json!({ "id": mine.id, "k": new_key(), "t": mine.token }),
        )
        .await?;
    assert_eq!(
        deprecated["data"]["cancelReservation"]["reservation"]["status"], "CANCELLED",
        "{deprecated}"
    );
    Ok(())
}
both_backends!(
    manage_tokens_travel_in_the_header,
    manage_tokens_travel_in_the_header
);

/// Changes after the venue's deadline are refused as DEADLINE_PASSED.
async fn changes_after_the_deadline_are_refused(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let booked = app.book("one-table", 10).await?;
    // Half an hour before the start, inside the venue's hour-long deadline,
    // whatever the time of day the test runs at.
    let starts_at = chrono::DateTime::parse_from_rfc3339(&tomorrow_at(10))?;
    app.advance(starts_at.with_timezone(&chrono::Utc) - app.now() - chrono::Duration::minutes(30));
    for (mutation, name) in [(MODIFY, "modifyReservation"), (CANCEL, "cancelReservation")] {
        let answer = app
            .gql_as(
                &booked.token,
                mutation,
                json!({ "id": booked.id, "k": new_key() }),
            )
            .await?;
        assert_eq!(
            user_error_code(&answer, name),
            Some("DEADLINE_PASSED"),
            "{answer}"
        );
    }
    Ok(())
}
both_backends!(
    changes_after_the_deadline_are_refused,
    changes_after_the_deadline_are_refused
);

/// A staff member of one venue gets no day sheet of another.
async fn another_venues_day_sheet_is_forbidden(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let host = app.staff("staff", Some("lunch-room")).await?;
    let venue = app.venue_id("one-table").await?;
    app.book("one-table", 10).await?;
    let answer = app
        .gql_as(&host, SHEET, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    assert!(answer["data"]["reservations"].is_null(), "{answer}");
    assert!(
        matches!(error_code(&answer), Some("FORBIDDEN" | "NOT_FOUND")),
        "{answer}"
    );
    Ok(())
}
both_backends!(
    another_venues_day_sheet_is_forbidden,
    another_venues_day_sheet_is_forbidden
);

/// A staff day sheet asking for every field of a reservation answers every
/// row: what the policy denies staff is null with exactly one error per
/// field and row, the rest answers.
async fn a_day_sheet_of_every_field_answers_every_row(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    for hour in [9, 10, 11] {
        app.book("one-table", hour)
            .guest(
                json!({ "name": "Every Field", "email": "every@example.org", "notes": "window" }),
            )
            .await?;
    }
    let answer = app
        .gql_as(
            &staff,
            "query S($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d) { totalCount edges { node { id venue { id } resource { id } partySize startsAt endsAt status createdAt updatedAt guestName guestEmail guestPhone holdUntil consents { purpose given } payments { status } notes } } } }",
            json!({ "v": venue, "d": tomorrow() }),
        )
        .await?;
    let edges = answer["data"]["reservations"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(edges.len(), 3, "{answer}");
    let denied = ["guestEmail", "guestPhone", "consents", "payments"];
    for (row, edge) in edges.iter().enumerate() {
        let node = &edge["node"];
        assert_eq!(node["guestName"], "Every Field", "{answer}");
        assert_eq!(node["notes"], "window", "{answer}");
        assert!(node["id"].is_string() && node["venue"]["id"].is_string());
        for field in denied {
            assert!(node[field].is_null(), "{field}: {answer}");
            let errors = answer["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|error| {
                    error["path"] == json!(["reservations", "edges", row, "node", field])
                })
                .count();
            assert_eq!(errors, 1, "{field} of row {row}: {answer}");
        }
    }
    let errors = answer["errors"].as_array().map_or(0, Vec::len);
    assert_eq!(errors, denied.len() * 3, "{answer}");
    Ok(())
}
both_backends!(
    a_day_sheet_of_every_field_answers_every_row,
    a_day_sheet_of_every_field_answers_every_row
);

/// Publishes a privacy notice in English for a venue, as its manager would.
async fn publish_notice(app: &TestApp, venue: &str, text: &str) -> Result<u32> {
    use sha2::Digest as _;
    let store = app.store().await?;
    let venue = domain::VenueId::parse(venue).map_err(|e| anyhow::anyhow!("{e}"))?;
    let locale = domain::privacy::Locale::parse("en").map_err(|e| anyhow::anyhow!("{e}"))?;
    let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let notice = store.publish_notice(venue, &locale, text, &sha, app.now())?;
    Ok(notice.version)
}

/// A booking naming an outdated notice (or none, once there is one) is
/// NOTICE_CHANGED with the current notice in the answer; one naming the
/// current notice books, with the opt-ins the guest ticked on the ledger.
async fn a_changed_notice_comes_back_with_the_booking_refused(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let first = publish_notice(&app, &venue, "We keep your name.").await?;
    let current = publish_notice(&app, &venue, "We keep your name and e-mail.").await?;
    for named in [json!(first), serde_json::Value::Null] {
        let stale = app
            .book("one-table", 10)
            .input("noticeVersion", named.clone())
            .answer()
            .await?;
        assert_eq!(
            user_errors(&stale, "createReservation"),
            [(
                "input.noticeVersion".to_owned(),
                "NOTICE_CHANGED".to_owned()
            )],
            "{named}: {stale}"
        );
        assert_eq!(
            stale["data"]["createReservation"]["currentNotice"]["version"], current,
            "{stale}"
        );
    }
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 0);
    let booked = app
        .book("one-table", 10)
        .input("noticeVersion", json!(current))
        .input("consents", json!(["NEWSLETTER"]))
        .await?;
    let ledger = app
        .gql_as(
            &booked.token,
            "{ reservationByToken { consents { purpose given } } }",
            json!({}),
        )
        .await?;
    let entries = ledger["data"]["reservationByToken"]["consents"].clone();
    let purposes: Vec<(&str, bool)> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["purpose"].as_str()?, e["given"].as_bool()?)))
        .collect();
    assert!(purposes.contains(&("NEWSLETTER", true)), "{ledger}");
    assert!(!purposes.iter().any(|(p, _)| *p == "MARKETING"), "{ledger}");
    Ok(())
}
both_backends!(
    a_changed_notice_comes_back_with_the_booking_refused,
    a_changed_notice_comes_back_with_the_booking_refused
);

/// Staff of another venue cannot set a status there; a wrong role cannot
/// at all. Both leave the reservation as it was.
async fn statuses_are_set_by_the_venues_staff_only(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let booked = app.book("one-table", 10).await?;
    let set = "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: CHECKED_IN }) { reservation { status } userErrors { code } } }";
    let outsider = app.staff("staff", Some("lunch-room")).await?;
    let elsewhere = app
        .gql_as(&outsider, set, json!({ "id": booked.id }))
        .await?;
    assert!(
        elsewhere["data"]["setReservationStatus"]["reservation"].is_null(),
        "{elsewhere}"
    );
    assert!(
        user_error_code(&elsewhere, "setReservationStatus") == Some("NOT_FOUND")
            || error_code(&elsewhere) == Some("FORBIDDEN"),
        "{elsewhere}"
    );
    let guest = app
        .gql_as(&booked.token, set, json!({ "id": booked.id }))
        .await?;
    assert!(
        matches!(error_code(&guest), Some("UNAUTHENTICATED" | "FORBIDDEN")),
        "{guest}"
    );
    let insider = app.staff("staff", Some("one-table")).await?;
    let done = app
        .gql_as(&insider, set, json!({ "id": booked.id }))
        .await?;
    assert_eq!(
        done["data"]["setReservationStatus"]["reservation"]["status"], "CHECKED_IN",
        "{done}"
    );
    Ok(())
}
both_backends!(
    statuses_are_set_by_the_venues_staff_only,
    statuses_are_set_by_the_venues_staff_only
);
