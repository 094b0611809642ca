use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, both_backends, error_code, guest, new_key, tomorrow, tomorrow_at,
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
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2 , "guest": guest()}, "key": new_key() }))
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
            "mutation M($id: ID!, $t: String!, $key: String!, $at: DateTime!) { modifyReservation(id: $id, manageToken: $t, input: { startsAt: $at, partySize: 3 }, idempotencyKey: $key) { startsAt partySize } }",
            json!({ "id": id, "t": token, "key": new_key(), "at": tomorrow_at(14) }),
        )
        .await?;
    assert_eq!(
        modified["data"]["modifyReservation"]["partySize"], 3,
        "{modified}"
    );
    assert_eq!(
        modified["data"]["modifyReservation"]["startsAt"],
        tomorrow_at(14).replace('Z', "+00:00")
    );
    let free = free_starts(&app, &venue, 2).await?;
    assert!(free.contains(&ten), "the old slot was not released");

    let cancelled = app
        .gql("mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(id: $id, manageToken: $t, idempotencyKey: $key) { status } }", json!({ "id": id, "t": token, "key": new_key() }))
        .await?;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["status"], "CANCELLED",
        "{cancelled}"
    );
    assert_eq!(free_starts(&app, &venue, 2).await?.len(), 24);

    let again = app
        .gql("mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(id: $id, manageToken: $t, idempotencyKey: $key) { status } }", json!({ "id": id, "t": token, "key": new_key() }))
        .await?;
    assert_eq!(error_code(&again), Some("CONFLICT"), "{again}");
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
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2, "guest": guest() }, "key": new_key() }))
        .await?;
    assert!(booked["errors"].is_null(), "{booked}");
    assert!(
        !free_starts_at(&app, &app.address, &venue, 2)
            .await?
            .contains(&ten),
        "the booking node offers the slot it just sold"
    );
    let booked = app
        .gql_at(&second, None, CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(11), "partySize": 2, "guest": guest() }, "key": new_key() }))
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
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(11), "partySize": 2, "guest": guest() }, "key": new_key() }))
        .await?;
    assert_eq!(error_code(&late), Some("SLOT_TAKEN"), "{late}");
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
            .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(hour), "partySize": 2 , "guest": guest()}, "key": new_key() }))
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
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 2 , "guest": guest()}, "key": new_key() }))
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
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 1, "guest": guest(), "resourceId": four }, "key": new_key() }))
        .await?;
    assert_eq!(
        named["data"]["createReservation"]["reservation"]["resource"]["slug"], "four",
        "{named}"
    );

    let full = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": starts_at, "partySize": 1 , "guest": guest()}, "key": new_key() }))
        .await?;
    assert_eq!(error_code(&full), Some("SLOT_TAKEN"), "{full}");
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
