//! Tables together and pacing: a party larger than any table gets a
//! combination of tables, every table it holds is kept from other
//! bookings on both backends, and a venue's caps on guests starting per
//! slot and per hour hold under concurrent bookings.

use anyhow::{Context, Result};
use kluis_tests::{
    Backend, CREATE, Options, TestApp, both_backends, data, guest, new_key, payload, tomorrow,
    tomorrow_at, user_errors,
};
use serde_json::{Value, json};

const VENUES: &str = kluis_tests::fixture!("together.toml");

const RESOURCES: &str = "query R { reservationByToken {
    id status partySize resource { slug } resources { slug } } }";

const MODIFY: &str =
    "mutation M($input: ModifyReservationInput!) { modifyReservation(input: $input) {
    reservation { partySize resource { slug } resources { slug } } userErrors { field code } } }";

const CANCEL: &str =
    "mutation C($input: CancelReservationInput!) { cancelReservation(input: $input) {
    reservation { status } userErrors { field code } } }";

const AVAILABILITY: &str = "query Free($venue: ID!, $date: Date!, $size: Int!) {
  availability(venueId: $venue, date: $date, partySize: $size) {
    startsAt freeResources { slug } freeCombinations { slug } } }";

const SAVE: &str = "mutation S($v: VenueInput!) { saveVenue(input: $v) {
    venue { combinations { resources { slug } capacity minParty }
        adjacentTables { slug } maxJoinedTables maxCoversPerSlot maxCoversPerHour
        partySize { max } }
    userErrors { field code message } } }";

async fn spawn(backend: Backend) -> Result<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            venues: VENUES,
            ..Options::default()
        },
    )
    .await
}

fn slugs(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["slug"].as_str().map(str::to_owned))
        .collect()
}

/// The slugs of every table a reservation holds, as the guest sees them.
async fn held(app: &TestApp, id: &str, token: &str) -> Result<Vec<String>> {
    let answer = app.gql_as(token, RESOURCES, json!({})).await?;
    let reservation = data(&answer, "reservationByToken")?;
    assert_eq!(reservation["id"], id);
    Ok(slugs(&reservation["resources"]))
}

/// Pairs of active holds of one table that overlap in time: what the
/// database must never contain, whatever the API answered.
fn overlapping_holds(app: &TestApp) -> Result<i64> {
    app.count_rows(
        "reservation_holds a JOIN reservation_holds b \
         ON a.resource_id = b.resource_id AND a.reservation_id < b.reservation_id",
        "a.active AND b.active AND a.starts_at < b.blocked_until AND b.starts_at < a.blocked_until",
    )
}

/// Free starts tomorrow for a party, each with its free tables and free
/// combinations (slugs joined by `+`).
async fn free(
    app: &TestApp,
    venue: &str,
    size: i64,
) -> Result<Vec<(String, Vec<String>, Vec<String>)>> {
    let answer = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": size }),
        )
        .await?;
    Ok(data(&answer, "availability")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|slot| {
            (
                slot["startsAt"].as_str().unwrap_or_default().to_owned(),
                slugs(&slot["freeResources"]),
                slot["freeCombinations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| slugs(c).join("+"))
                    .collect(),
            )
        })
        .collect())
}

fn at(hour: u32) -> String {
    tomorrow_at(hour).replace('Z', "+00:00")
}

/// 50 parties of seven press "book" for the same hour at once; each needs
/// two of four tables, through three combinations that share tables. At
/// most two can win, and no table is held twice, as the database itself
/// shows.
async fn concurrent_bookings_of_overlapping_combinations_hold_no_table_twice(
    backend: Backend,
) -> Result<()> {
    let app = spawn(backend).await?;
    let venue = app.venue_id("joined").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        // Most at 19:00, one in five at 20:00, which overlaps nothing at
        // 19:00: at most two winners per hour.
        let hour = if i % 5 == 0 { 20 } else { 19 };
        let body = json!({
            "query": CREATE,
            "variables": { "input": { "venueId": venue, "startsAt": tomorrow_at(hour),
                "partySize": 7, "guest": guest(), "idempotencyKey": new_key() } },
        });
        tasks.spawn(async move {
            let response = client.post(url).json(&body).send().await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            anyhow::Ok((status, answer))
        });
    }
    let (mut won, mut taken) = (0_i64, 0);
    while let Some(result) = tasks.join_next().await {
        let (status, answer) = result??;
        assert!(!status.is_server_error(), "HTTP {status}: {answer}");
        assert!(answer.get("errors").is_none(), "{answer}");
        match answer["data"]["createReservation"]["userErrors"][0]["code"].as_str() {
            None => won += 1,
            Some("SLOT_TAKEN") => taken += 1,
            Some(other) => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(won + taken, 50);
    assert!((2..=4).contains(&won), "{won} won");
    assert_eq!(overlapping_holds(&app)?, 0);
    assert_eq!(app.count_rows("reservations", "1 = 1")?, won);
    assert_eq!(
        app.count_rows("reservation_holds", "active")?,
        2 * won,
        "every booking holds two tables"
    );
    Ok(())
}
both_backends!(
    concurrent_bookings_of_overlapping_combinations,
    concurrent_bookings_of_overlapping_combinations_hold_no_table_twice
);

async fn the_smallest_free_combination_is_chosen_and_single_tables_come_first(
    backend: Backend,
) -> Result<()> {
    let app = spawn(backend).await?;
    let seven = app.book("joined", 19).party(7).await?;
    assert_eq!(held(&app, &seven.id, &seven.token).await?, ["t1", "t2"]);
    let answer = app.gql_as(&seven.token, RESOURCES, json!({})).await?;
    assert_eq!(
        data(&answer, "reservationByToken")?["resource"]["slug"],
        "t1",
        "the primary table stays `resource`"
    );
    // A party that fits one table gets one, even with a combination free.
    let three = app.book("joined", 19).party(3).await?;
    assert_eq!(held(&app, &three.id, &three.token).await?, ["t3"]);
    // {t2,t3} and {t3,t4} both need t3 now.
    let refused = app.book("joined", 19).party(7).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation"),
        [(String::new(), "SLOT_TAKEN".to_owned())],
        "{refused}"
    );
    let other = app.book("joined", 20).party(8).await?;
    assert_eq!(held(&app, &other.id, &other.token).await?, ["t1", "t2"]);
    let too_many = app.book("joined", 20).party(9).answer().await?;
    assert_eq!(
        user_errors(&too_many, "createReservation"),
        [("input.partySize".to_owned(), "INVALID".to_owned())],
        "{too_many}"
    );
    assert_eq!(overlapping_holds(&app)?, 0);
    Ok(())
}
both_backends!(
    smallest_free_combination,
    the_smallest_free_combination_is_chosen_and_single_tables_come_first
);

async fn a_combination_is_not_offered_when_a_member_is_closed_or_taken(
    backend: Backend,
) -> Result<()> {
    let app = spawn(backend).await?;
    let venue = app.venue_id("joined").await?;
    let manager = app.staff("manager", Some("joined")).await?;
    let resources = app
        .gql(
            "query V($id: ID!) { venue(id: $id) { resources { id slug } } }",
            json!({ "id": venue }),
        )
        .await?;
    let id_of = |slug: &str| {
        data(&resources, "venue").ok().and_then(|v| {
            v["resources"]
                .as_array()?
                .iter()
                .find(|r| r["slug"] == slug)
                .map(|r| r["id"].clone())
        })
    };
    let closed = app
        .gql_as(
            &manager,
            SAVE,
            json!({ "v": { "slug": "joined", "closures": [{
                "from": format!("{}T19:00", tomorrow()), "until": format!("{}T20:00", tomorrow()),
                "resourceId": id_of("t2") }] } }),
        )
        .await?;
    assert!(user_errors(&closed, "saveVenue").is_empty(), "{closed}");
    let offered = free(&app, &venue, 7).await?;
    let seven = offered
        .iter()
        .find(|(start, _, _)| *start == at(19))
        .context("t3 and t4 are open at 19:00")?;
    assert_eq!(seven.2, ["t3+t4"], "{offered:?}");
    let eighteen = offered
        .iter()
        .find(|(start, _, _)| *start == at(18))
        .context("everything is open at 18:00")?;
    assert_eq!(eighteen.2, ["t1+t2", "t2+t3", "t3+t4"], "{offered:?}");

    // t1 and t3 taken at 19:00 by parties of four: nothing seats seven
    // then.
    app.book("joined", 19).party(4).await?;
    app.book("joined", 19).party(4).await?;
    let offered = free(&app, &venue, 7).await?;
    assert!(
        !offered.iter().any(|(start, _, _)| *start == at(19)),
        "{offered:?}"
    );
    let refused = app.book("joined", 19).party(7).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation")[0].1,
        "SLOT_TAKEN",
        "{refused}"
    );
    Ok(())
}
both_backends!(
    combination_with_closed_or_taken_member,
    a_combination_is_not_offered_when_a_member_is_closed_or_taken
);

async fn cancelling_frees_every_table_and_a_smaller_party_gives_one_back(
    backend: Backend,
) -> Result<()> {
    let app = spawn(backend).await?;
    let first = app.book("joined", 19).party(7).await?;
    let cancelled = app
        .gql_as(
            &first.token,
            CANCEL,
            json!({ "input": { "id": first.id, "idempotencyKey": new_key() } }),
        )
        .await?;
    assert_eq!(
        payload(&cancelled, "cancelReservation")?["reservation"]["status"],
        "CANCELLED"
    );
    assert_eq!(app.count_rows("reservation_holds", "active")?, 0);
    let again = app.book("joined", 19).party(7).await?;
    assert_eq!(held(&app, &again.id, &again.token).await?, ["t1", "t2"]);

    let smaller = app
        .gql_as(
            &again.token,
            MODIFY,
            json!({ "input": { "id": again.id, "partySize": 3, "idempotencyKey": new_key() } }),
        )
        .await?;
    let changed = &payload(&smaller, "modifyReservation")?["reservation"];
    assert_eq!(slugs(&changed["resources"]).len(), 1, "{smaller}");
    assert_eq!(
        app.count_rows(
            "reservation_holds",
            &format!("reservation_id = '{}'", again.id)
        )?,
        1
    );
    // The table given back takes another party of four.
    app.book("joined", 19).party(4).await?;
    // And growing again joins two tables, wherever two are free.
    let grown = app
        .gql_as(
            &again.token,
            MODIFY,
            json!({ "input": { "id": again.id, "partySize": 8, "idempotencyKey": new_key() } }),
        )
        .await?;
    let grown = &payload(&grown, "modifyReservation")?["reservation"];
    assert_eq!(slugs(&grown["resources"]).len(), 2, "{grown}");
    assert_eq!(overlapping_holds(&app)?, 0);
    Ok(())
}
both_backends!(
    cancel_and_modify_release_tables,
    cancelling_frees_every_table_and_a_smaller_party_gives_one_back
);

async fn save_venue_takes_combinations_and_refuses_bad_ones(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;
    let manager = app.staff("manager", Some("joined")).await?;
    let saved = app
        .gql_as(
            &manager,
            SAVE,
            json!({ "v": { "slug": "joined",
                "combinations": [
                    { "resources": ["t1", "t2", "t3"], "capacity": 11, "minParty": 9 }],
                "adjacentTables": [["t3", "t4"]],
                "maxJoinedTables": 2,
                "maxCoversPerSlot": 20, "maxPartySize": 12 } }),
        )
        .await?;
    assert!(user_errors(&saved, "saveVenue").is_empty(), "{saved}");
    let venue = &payload(&saved, "saveVenue")?["venue"];
    assert_eq!(
        venue["combinations"],
        json!([{ "resources": [{ "slug": "t1" }, { "slug": "t2" }, { "slug": "t3" }],
            "capacity": 11, "minParty": 9 }])
    );
    assert_eq!(
        venue["adjacentTables"],
        json!([[{ "slug": "t3" }, { "slug": "t4" }]])
    );
    assert_eq!(venue["maxJoinedTables"], 2);
    assert_eq!(venue["maxCoversPerSlot"], 20);
    assert_eq!(venue["maxCoversPerHour"], Value::Null);
    assert_eq!(venue["partySize"]["max"], 11);
    let nine = app.book("joined", 12).party(9).await?;
    assert_eq!(held(&app, &nine.id, &nine.token).await?, ["t1", "t2", "t3"]);
    let eight = app.book("joined", 13).party(8).await?;
    assert_eq!(held(&app, &eight.id, &eight.token).await?, ["t3", "t4"]);

    for (combinations, field) in [
        (
            json!([{ "resources": ["t1", "t9"], "capacity": 8 }]),
            "input.combinations.0.resources",
        ),
        (
            json!([{ "resources": ["t1"], "capacity": 8 }]),
            "input.combinations.0.resources",
        ),
        (
            json!([{ "resources": ["t1", "t1"], "capacity": 8 }]),
            "input.combinations.0.resources",
        ),
        (
            json!([{ "resources": ["t1", "t2"], "capacity": 8 },
                { "resources": ["t2", "t1"], "capacity": 7 }]),
            "input.combinations.1.resources",
        ),
        (
            json!([{ "resources": ["t1", "t2"], "capacity": 0 }]),
            "input.combinations.0.capacity",
        ),
        (
            json!([{ "resources": ["t1", "t2"], "capacity": 8, "minParty": 9 }]),
            "input.combinations.0.minParty",
        ),
        (
            json!([{ "resources": ["../x", "t2"], "capacity": 8 }]),
            "input.combinations.0.resources",
        ),
    ] {
        let refused = app
            .gql_as(
                &manager,
                SAVE,
                json!({ "v": { "slug": "joined", "combinations": combinations } }),
            )
            .await?;
        assert_eq!(
            user_errors(&refused, "saveVenue"),
            [(field.to_owned(), "INVALID".to_owned())],
            "{refused}"
        );
    }
    let refused = app
        .gql_as(
            &manager,
            SAVE,
            json!({ "v": { "slug": "joined", "maxCoversPerHour": 0, "maxJoinedTables": 7,
                "adjacentTables": [["t1"]] } }),
        )
        .await?;
    let mut fields = user_errors(&refused, "saveVenue");
    fields.sort();
    assert_eq!(
        fields,
        [
            ("input.adjacentTables.0".to_owned(), "INVALID".to_owned()),
            ("input.maxCoversPerHour".to_owned(), "INVALID".to_owned()),
            ("input.maxJoinedTables".to_owned(), "INVALID".to_owned()),
        ],
        "{refused}"
    );
    // More combinations than a venue may have are refused unread.
    let many: Vec<Value> = (0..201)
        .map(|_| json!({ "resources": ["t1", "t2"], "capacity": 8 }))
        .collect();
    let refused = app
        .gql_as(
            &manager,
            SAVE,
            json!({ "v": { "slug": "joined", "combinations": many } }),
        )
        .await?;
    assert_eq!(
        user_errors(&refused, "saveVenue"),
        [("input.combinations".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );
    // Nothing of the refused saves was written.
    let answer = app
        .gql_as(&manager, SAVE, json!({ "v": { "slug": "joined" } }))
        .await?;
    let venue = &payload(&answer, "saveVenue")?["venue"];
    assert_eq!(venue["combinations"][0]["capacity"], 11);
    assert_eq!(venue["maxJoinedTables"], 2);

    // A manager of another venue changes nothing here.
    let other = app.staff("manager", Some("paced")).await?;
    let answer = app
        .gql_as(
            &other,
            SAVE,
            json!({ "v": { "slug": "joined", "combinations": [] } }),
        )
        .await?;
    assert_eq!(
        kluis_tests::error_code(&answer),
        Some("FORBIDDEN"),
        "{answer}"
    );
    Ok(())
}
both_backends!(
    save_venue_combinations,
    save_venue_takes_combinations_and_refuses_bad_ones
);

/// Thirty guests book the same slot at once at a venue that lets six
/// guests start per slot: three parties of two get in, never more.
async fn concurrent_bookings_cannot_pass_the_pacing_cap(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;
    let venue = app.venue_id("paced").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        let body = json!({
            "query": CREATE,
            "variables": { "input": { "venueId": venue, "startsAt": tomorrow_at(19),
                "partySize": 2, "guest": guest(), "idempotencyKey": new_key() } },
        });
        tasks.spawn(async move {
            let response = client.post(url).json(&body).send().await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            anyhow::Ok((status, answer))
        });
    }
    let (mut won, mut taken) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (status, answer) = result??;
        assert!(!status.is_server_error(), "HTTP {status}: {answer}");
        match answer["data"]["createReservation"]["userErrors"][0]["code"].as_str() {
            None => won += 1,
            Some("SLOT_TAKEN") => taken += 1,
            Some(other) => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!((won, taken), (3, 27));
    assert_eq!(
        app.count_rows("reservations", "status = 'confirmed'")?,
        3,
        "the database holds no more than the cap"
    );
    // The full slot is not offered; half an hour later only two more
    // guests fit in the hour (ten per hour), so a party of two still does.
    let offered = free(&app, &venue, 2).await?;
    let starts: Vec<&str> = offered.iter().map(|(s, _, _)| s.as_str()).collect();
    assert!(!starts.contains(&at(19).as_str()), "{starts:?}");
    let half_past = tomorrow_at(19).replace("19:00:00", "19:30:00");
    assert!(
        starts.contains(&half_past.replace('Z', "+00:00").as_str()),
        "{starts:?}"
    );
    app.book("paced", 19).starts_at(&half_past).await?;
    app.book("paced", 19).starts_at(&half_past).await?;
    let refused = app.book("paced", 19).starts_at(&half_past).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation")[0].1,
        "SLOT_TAKEN",
        "ten guests start in the hour: {refused}"
    );
    let offered = free(&app, &venue, 2).await?;
    assert!(
        !offered
            .iter()
            .any(|(s, _, _)| *s == half_past.replace('Z', "+00:00")),
        "{offered:?}"
    );
    Ok(())
}
both_backends!(
    pacing_under_concurrency,
    concurrent_bookings_cannot_pass_the_pacing_cap
);

/// An unpaid booking of two adjacent tables holds both until its payment
/// deadline, and gives both back when it passes.
async fn an_expired_hold_frees_every_table(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;
    let held_pair = app.book("joined-deposit", 19).party(6).await?;
    assert_eq!(
        held(&app, &held_pair.id, &held_pair.token).await?,
        ["a", "b"]
    );
    let answer = app.gql_as(&held_pair.token, RESOURCES, json!({})).await?;
    assert_eq!(data(&answer, "reservationByToken")?["status"], "PENDING");
    let refused = app.book("joined-deposit", 19).party(2).answer().await?;
    assert_eq!(
        user_errors(&refused, "createReservation")[0].1,
        "SLOT_TAKEN",
        "both tables are held: {refused}"
    );
    app.advance(chrono::Duration::minutes(16));
    let again = app.book("joined-deposit", 19).party(5).await?;
    assert_eq!(held(&app, &again.id, &again.token).await?, ["a", "b"]);
    assert_eq!(
        app.count_rows(
            "reservation_holds",
            &format!("reservation_id = '{}' AND active", held_pair.id)
        )?,
        0
    );
    assert_eq!(overlapping_holds(&app)?, 0);
    Ok(())
}
both_backends!(expired_hold, an_expired_hold_frees_every_table);

/// A booking moved into a full slot, or grown past the cap, is refused.
async fn changes_count_against_the_pacing_cap(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;
    for _ in 0..3 {
        app.book("paced", 19).await?;
    }
    let early = app.book("paced", 17).await?;
    let moved = app
        .gql_as(
            &early.token,
            MODIFY,
            json!({ "input": { "id": early.id, "startsAt": tomorrow_at(19),
                "idempotencyKey": new_key() } }),
        )
        .await?;
    assert_eq!(
        user_errors(&moved, "modifyReservation")[0].1,
        "SLOT_TAKEN",
        "{moved}"
    );
    Ok(())
}
both_backends!(pacing_and_changes, changes_count_against_the_pacing_cap);

/// Whatever the application believes, PostgreSQL refuses a second active
/// hold of one table at an overlapping time, and so does SQLite's trigger.
async fn the_database_refuses_overlapping_holds_written_behind_the_application(
    backend: Backend,
) -> Result<()> {
    let app = spawn(backend).await?;
    let seven = app.book("joined", 19).party(7).await?;
    let other = app.book("joined", 21).party(2).await?;
    let written = app.execute_sql(&format!(
        "UPDATE reservation_holds SET starts_at = (SELECT starts_at FROM reservation_holds \
             WHERE reservation_id = '{}' LIMIT 1), blocked_until = (SELECT blocked_until \
             FROM reservation_holds WHERE reservation_id = '{}' LIMIT 1), \
             resource_id = (SELECT resource_id FROM reservation_holds \
             WHERE reservation_id = '{}' ORDER BY resource_id DESC LIMIT 1) \
             WHERE reservation_id = '{}'",
        seven.id, seven.id, seven.id, other.id
    ));
    let Err(error) = written else {
        anyhow::bail!("an overlapping hold was stored");
    };
    let error = error.to_string();
    assert!(error.contains("reservation_holds_no_overlap"), "{error}");
    Ok(())
}
both_backends!(
    overlapping_holds_refused_by_the_database,
    the_database_refuses_overlapping_holds_written_behind_the_application
);
