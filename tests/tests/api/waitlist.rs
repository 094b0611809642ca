//! The waitlist over HTTP: joining, offers when a table frees up (by mail,
//! through the outbox), claims once, expiry to the next in line, and the
//! privacy of entries (sealed, exported, erased, purged).

use anyhow::{Context as _, Result};
use kluis_tests::{
    Backend, FakeSmtp, TestApp, assert_absent, both_backends, error_code, new_key, payload,
    tomorrow, tomorrow_at, user_error_code, user_errors,
};
use serde_json::{Value, json};

const JOIN: &str = r#"
mutation J($input: JoinWaitlistInput!) {
  joinWaitlist(input: $input) {
    waitlistToken
    entry { id status date from until partySize guestName offer { startsAt status } }
    userErrors { field code message }
  }
}"#;

const CLAIM: &str = r#"
mutation C($input: ClaimWaitlistOfferInput!) {
  claimWaitlistOffer(input: $input) {
    manageToken
    reservation { id status partySize startsAt resource { slug } }
    userErrors { field code message }
  }
}"#;

const ENTRY: &str = r#"
query E($t: String!) { waitlistEntry(token: $t) { status guestName offer { startsAt expiresAt status } } }"#;

const CANCEL: &str = "mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: $key }) { reservation { status } userErrors { code } } }";

fn join_input(venue: &str, name: &str, email: &str) -> Value {
    json!({ "input": {
        "venueId": venue, "date": tomorrow(), "from": "10:00", "until": "11:00", "partySize": 2,
        "guest": { "name": name, "email": email } } })
}

/// Joins and answers the waitlist token.
async fn join(app: &TestApp, venue: &str, name: &str, email: &str) -> Result<String> {
    let answer = app.gql(JOIN, join_input(venue, name, email)).await?;
    let joined = payload(&answer, "joinWaitlist")?;
    joined["waitlistToken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no token in {answer}"))
}

async fn cancel(app: &TestApp, booked: &kluis_tests::Booked) -> Result<()> {
    let answer = app
        .gql(
            CANCEL,
            json!({ "id": booked.id, "t": booked.token, "key": new_key() }),
        )
        .await?;
    payload(&answer, "cancelReservation")?;
    Ok(())
}

/// The offer tokens in the mail delivered so far, oldest first.
async fn offer_tokens(app: &TestApp, smtp: &FakeSmtp) -> Result<Vec<(String, String)>> {
    app.deliver_mail(&smtp.url).await?;
    Ok(smtp
        .messages()
        .iter()
        .filter(|m| m.contains("A table is free"))
        .filter_map(|m| {
            let token = m
                .split_whitespace()
                .find(|w| w.starts_with("kwo_"))?
                .trim_end_matches(['.', ','])
                .to_owned();
            let to = if m.contains("carla@example.org") {
                "carla"
            } else {
                "bert"
            };
            Some((to.to_owned(), token))
        })
        .collect())
}

async fn entry(app: &TestApp, token: &str) -> Result<Value> {
    let answer = app.gql(ENTRY, json!({ "t": token })).await?;
    Ok(answer["data"]["waitlistEntry"].clone())
}

async fn a_cancellation_offers_the_table_to_the_first_in_line_once(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(0).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    let carla = join(&app, &venue, "Carla First", "carla@example.org").await?;
    assert!(carla.starts_with("kwt_"), "{carla}");
    let bert = join(&app, &venue, "Bert Second", "bert@example.org").await?;
    let waiting = entry(&app, &carla).await?;
    assert_eq!(waiting["status"], "waiting", "{waiting}");
    assert_eq!(
        waiting["guestName"], "Carla First",
        "the token holder sees their own"
    );
    assert!(
        offer_tokens(&app, &smtp).await?.is_empty(),
        "nothing is free yet"
    );

    cancel(&app, &booked).await?;
    let offers = offer_tokens(&app, &smtp).await?;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].0, "carla", "first come, first offered");
    let offer = offers[0].1.clone();
    let offered = entry(&app, &carla).await?;
    assert_eq!(offered["status"], "offered", "{offered}");
    assert_eq!(
        offered["offer"]["startsAt"],
        tomorrow_at(10).replace('Z', "+00:00")
    );
    assert_eq!(entry(&app, &bert).await?["status"], "waiting");
    // A second pass makes no second offer of the same table.
    app.run_waitlist().await?;
    assert_eq!(app.count_rows("waitlist_offers", "1 = 1")?, 1);

    // Someone else's token, an entry token, or a made-up one claim nothing.
    for wrong in [
        bert.clone(),
        carla.clone(),
        format!("kwo_{}", "A".repeat(43)),
        "kwo_".to_owned(),
        "x".repeat(5000),
    ] {
        let answer = app
            .gql(CLAIM, json!({ "input": { "token": wrong } }))
            .await?;
        assert_eq!(
            user_error_code(&answer, "claimWaitlistOffer"),
            Some("NOT_FOUND"),
            "{answer}"
        );
    }
    // Another start than the offered one is refused and leaves the offer
    // open.
    let elsewhen = app
        .gql(
            CLAIM,
            json!({ "input": { "token": offer, "startsAt": tomorrow_at(11) } }),
        )
        .await?;
    assert_eq!(
        user_errors(&elsewhen, "claimWaitlistOffer"),
        vec![("input.startsAt".to_owned(), "INVALID".to_owned())],
        "{elsewhen}"
    );
    let claimed = app
        .gql(
            CLAIM,
            json!({ "input": { "token": offer, "startsAt": tomorrow_at(10) } }),
        )
        .await?;
    let claim = payload(&claimed, "claimWaitlistOffer")?;
    assert_eq!(claim["reservation"]["status"], "CONFIRMED", "{claimed}");
    assert!(
        claim["manageToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("kmt_")),
        "{claimed}"
    );
    assert_eq!(entry(&app, &carla).await?["status"], "booked");
    let replay = app
        .gql(CLAIM, json!({ "input": { "token": offer } }))
        .await?;
    assert_eq!(
        user_error_code(&replay, "claimWaitlistOffer"),
        Some("CONFLICT"),
        "{replay}"
    );
    assert_eq!(app.count_rows("reservations", "status = 'confirmed'")?, 1);
    // The confirmation of the claimed booking went out like any other.
    app.deliver_mail(&smtp.url).await?;
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.contains("carla@example.org") && m.contains("kmt_")),
        "no confirmation"
    );
    Ok(())
}
both_backends!(
    a_cancellation_offers_the_table_to_the_first_in_line_once,
    a_cancellation_offers_the_table_to_the_first_in_line_once
);

async fn an_unclaimed_offer_expires_and_goes_to_the_next_in_line(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(0).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    let carla = join(&app, &venue, "Carla First", "carla@example.org").await?;
    let bert = join(&app, &venue, "Bert Second", "bert@example.org").await?;
    cancel(&app, &booked).await?;
    let offers = offer_tokens(&app, &smtp).await?;
    let first = offers
        .iter()
        .find(|(to, _)| to == "carla")
        .map(|(_, t)| t.clone())
        .context("no offer to carla")?;

    app.advance(chrono::Duration::minutes(31));
    let late = app
        .gql(CLAIM, json!({ "input": { "token": first } }))
        .await?;
    assert_eq!(
        user_error_code(&late, "claimWaitlistOffer"),
        Some("CONFLICT"),
        "{late}"
    );
    app.run_waitlist().await?;
    assert_eq!(entry(&app, &carla).await?["status"], "missed");
    let next = entry(&app, &bert).await?;
    assert_eq!(next["status"], "offered", "{next}");
    let offers = offer_tokens(&app, &smtp).await?;
    let second = offers
        .iter()
        .find(|(to, _)| to == "bert")
        .map(|(_, t)| t.clone())
        .context("no offer to bert")?;
    let claimed = app
        .gql(CLAIM, json!({ "input": { "token": second } }))
        .await?;
    assert_eq!(
        payload(&claimed, "claimWaitlistOffer")?["reservation"]["status"],
        "CONFIRMED"
    );
    // The first offer stays spent.
    let stale = app
        .gql(CLAIM, json!({ "input": { "token": first } }))
        .await?;
    assert_eq!(
        user_error_code(&stale, "claimWaitlistOffer"),
        Some("CONFLICT")
    );
    Ok(())
}
both_backends!(
    an_unclaimed_offer_expires_and_goes_to_the_next_in_line,
    an_unclaimed_offer_expires_and_goes_to_the_next_in_line
);

async fn a_table_taken_before_the_claim_is_slot_taken(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(0).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    let carla = join(&app, &venue, "Carla First", "carla@example.org").await?;
    cancel(&app, &booked).await?;
    let offer = offer_tokens(&app, &smtp).await?.remove(0).1;
    // Someone books the freed table first: the offer does not hold it.
    app.book("one-table", 10).await?;
    let claimed = app
        .gql(CLAIM, json!({ "input": { "token": offer } }))
        .await?;
    assert_eq!(
        user_error_code(&claimed, "claimWaitlistOffer"),
        Some("SLOT_TAKEN"),
        "{claimed}"
    );
    assert_eq!(
        entry(&app, &carla).await?["status"],
        "waiting",
        "back in line"
    );
    Ok(())
}
both_backends!(
    a_table_taken_before_the_claim_is_slot_taken,
    a_table_taken_before_the_claim_is_slot_taken
);

async fn bad_waitlist_requests_are_refused_field_by_field(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let far = (chrono::Utc::now() + chrono::Duration::days(60))
        .format("%Y-%m-%d")
        .to_string();
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({ "from": "25:00" }), vec!["input.from"]),
        (
            json!({ "from": "12:00", "until": "11:00" }),
            vec!["input.until"],
        ),
        (json!({ "date": yesterday }), vec!["input.date"]),
        (json!({ "date": far }), vec!["input.date"]),
        (json!({ "partySize": 0 }), vec!["input.partySize"]),
        (json!({ "partySize": 9 }), vec!["input.partySize"]),
        (
            json!({ "guest": { "name": "n".repeat(201), "email": "a@example.org" } }),
            vec!["input.guest.name"],
        ),
        (
            json!({ "guest": { "name": "No Mail" } }),
            vec!["input.guest.email"],
        ),
        (
            json!({ "guest": { "name": "Bad Mail", "email": "@" } }),
            vec!["input.guest.email"],
        ),
        (json!({ "locale": "english" }), vec!["input.locale"]),
    ];
    for (change, fields) in cases {
        let mut input = join_input(&venue, "Val Id", "val@example.org");
        if let (Some(target), Some(change)) = (input["input"].as_object_mut(), change.as_object()) {
            for (key, value) in change {
                target.insert(key.clone(), value.clone());
            }
        }
        let answer = app.gql(JOIN, input).await?;
        let got: Vec<String> = user_errors(&answer, "joinWaitlist")
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(got, fields, "{change}: {answer}");
    }
    let unknown = app
        .gql(
            JOIN,
            join_input(&uuid::Uuid::new_v4().to_string(), "Val", "val@example.org"),
        )
        .await?;
    assert_eq!(
        user_error_code(&unknown, "joinWaitlist"),
        Some("NOT_FOUND"),
        "{unknown}"
    );
    let not_an_id = app
        .gql(JOIN, join_input("x", "Val", "val@example.org"))
        .await?;
    assert_eq!(
        user_error_code(&not_an_id, "joinWaitlist"),
        Some("NOT_FOUND")
    );
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 0);
    assert_eq!(app.count_rows("guests", "1 = 1")?, 0);
    // A partner key is not a guest: it cannot put people on the list.
    let admin = app.staff("admin", None).await?;
    let partner = app.partner_key(&admin, &venue, "widget").await?;
    let as_partner = app
        .gql_as(&partner, JOIN, join_input(&venue, "Val", "val@example.org"))
        .await?;
    assert_eq!(error_code(&as_partner), Some("FORBIDDEN"), "{as_partner}");
    Ok(())
}
both_backends!(
    bad_waitlist_requests_are_refused_field_by_field,
    bad_waitlist_requests_are_refused_field_by_field
);

const LIST: &str =
    "query L($v: ID!) { waitlist(venueId: $v) { status partySize guestName guestEmail } }";

async fn staff_see_their_venues_line_with_guarded_details(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    join(&app, &venue, "Carla First", "carla@example.org").await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let seen = app.gql_as(&staff, LIST, json!({ "v": venue })).await?;
    assert_eq!(
        seen["data"]["waitlist"][0]["guestName"], "Carla First",
        "{seen}"
    );
    assert_eq!(seen["data"]["waitlist"][0]["guestEmail"], Value::Null);
    assert_eq!(error_code(&seen), Some("FORBIDDEN"), "staff see no e-mail");
    let manager = app.staff("manager", Some("one-table")).await?;
    let managed = app.gql_as(&manager, LIST, json!({ "v": venue })).await?;
    assert_eq!(
        managed["data"]["waitlist"][0]["guestEmail"], "carla@example.org",
        "{managed}"
    );
    let elsewhere = app.staff("manager", Some("lunch-room")).await?;
    let other = app.gql_as(&elsewhere, LIST, json!({ "v": venue })).await?;
    assert_eq!(error_code(&other), Some("NOT_FOUND"), "{other}");
    let anonymous = app.gql(LIST, json!({ "v": venue })).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    Ok(())
}
both_backends!(
    staff_see_their_venues_line_with_guarded_details,
    staff_see_their_venues_line_with_guarded_details
);

const CANARY: &str = "Canary Waitlist Qx7Zp";

async fn waitlist_entries_are_sealed_exported_erased_and_purged(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app
        .book("one-table", 10)
        .guest(json!({ "name": "Carla Booked", "email": "carla@example.org" }))
        .await?;
    let token = join(&app, &venue, CANARY, "carla@example.org").await?;
    let database = app.raw_database()?;
    assert_absent(&database, CANARY, "the database");
    assert_absent(&database, &token, "the database");

    // The export of the address (staff, on request) holds the entry.
    let manager = app.staff("manager", Some("one-table")).await?;
    let exported = app
        .gql_as(
            &manager,
            "mutation E($r: ID!) { exportGuestData(input: { reservationId: $r }) { export { profiles { name } waitlist { date from until partySize status } } userErrors { code } } }",
            json!({ "r": booked.id }),
        )
        .await?;
    let export = &payload(&exported, "exportGuestData")?["export"];
    assert_eq!(
        export["waitlist"],
        json!([{ "date": tomorrow(), "from": "10:00", "until": "11:00", "partySize": 2, "status": "waiting" }]),
        "{exported}"
    );
    assert!(
        export["profiles"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == CANARY)),
        "{exported}"
    );

    // Erasing the guest's data takes the entry with it.
    let erased = app
        .gql_as(
            &manager,
            "mutation X($r: ID!) { eraseGuestData(input: { reservationId: $r }) { userErrors { code } } }",
            json!({ "r": booked.id }),
        )
        .await?;
    payload(&erased, "eraseGuestData")?;
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 0);
    assert_eq!(entry(&app, &token).await?, Value::Null);
    assert_absent(&app.raw_database()?, CANARY, "the database");

    // Leaving deletes the entry and erases its details.
    let leaving = join(&app, &venue, "Lea Leaving", "lea@example.org").await?;
    let left = app
        .gql(
            "mutation L($t: String!) { leaveWaitlist(input: { token: $t }) { entry { status } userErrors { code } } }",
            json!({ "t": leaving }),
        )
        .await?;
    payload(&left, "leaveWaitlist")?;
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 0);
    let again = app
        .gql(
            "mutation L($t: String!) { leaveWaitlist(input: { token: $t }) { userErrors { code } } }",
            json!({ "t": leaving }),
        )
        .await?;
    assert_eq!(user_error_code(&again, "leaveWaitlist"), Some("NOT_FOUND"));

    // An entry is kept the venue's waitlist_retention_days after its date.
    let kept = join(&app, &venue, "Pam Purge", "pam@example.org").await?;
    app.advance(chrono::Duration::days(1 + 7));
    app.run_waitlist().await?;
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 1, "not yet");
    app.advance(chrono::Duration::days(1));
    app.run_waitlist().await?;
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 0);
    assert_eq!(entry(&app, &kept).await?, Value::Null);
    assert_eq!(
        app.count_rows("guests", "erased_at IS NULL")?,
        0,
        "every waitlist guest record is erased"
    );
    Ok(())
}
both_backends!(
    waitlist_entries_are_sealed_exported_erased_and_purged,
    waitlist_entries_are_sealed_exported_erased_and_purged
);

/// Someone who only waited (no booking) proves their address with an
/// access code: the export shows the entry, and erasure takes it.
async fn an_access_token_exports_and_erases_a_waitlist_entry(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(0).await?;
    let venue = app.venue_id("one-table").await?;
    app.book("one-table", 10).await?;
    let address = "wendy.waiting@example.org";
    join(&app, &venue, "Wendy Waiting", address).await?;
    let asked = app
        .gql(
            "mutation R($v: ID!, $e: String!) { requestAccessCode(input: { venueId: $v, email: $e }) { accepted } }",
            json!({ "v": venue, "e": address }),
        )
        .await?;
    assert_eq!(
        asked["data"]["requestAccessCode"]["accepted"], true,
        "{asked}"
    );
    app.deliver_mail(&smtp.url).await?;
    let mail = smtp
        .messages()
        .into_iter()
        .find(|m| m.contains(address) && m.contains("access code"))
        .context("no access code mail")?;
    let code = mail
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .context("no code")?
        .to_owned();
    let redeemed = app
        .gql(
            "mutation D($v: ID!, $e: String!, $c: String!) { redeemAccessCode(input: { venueId: $v, email: $e, code: $c }) { accessToken } }",
            json!({ "v": venue, "e": address, "c": code }),
        )
        .await?;
    let access = kluis_tests::text(&redeemed, "/data/redeemAccessCode/accessToken")?;
    let exported = app
        .gql_as(
            &access,
            "mutation E { exportMyData { export { profile { name } waitlist { status partySize } } userErrors { code } } }",
            json!({}),
        )
        .await?;
    let export = &payload(&exported, "exportMyData")?["export"];
    assert_eq!(export["profile"]["name"], "Wendy Waiting", "{exported}");
    assert_eq!(
        export["waitlist"],
        json!([{ "status": "waiting", "partySize": 2 }])
    );
    let erased = app
        .gql_as(
            &access,
            "mutation X { eraseMyData { report { alreadyErased } userErrors { code } } }",
            json!({}),
        )
        .await?;
    payload(&erased, "eraseMyData")?;
    assert_eq!(app.count_rows("waitlist_entries", "1 = 1")?, 0);
    assert_absent(&app.raw_database()?, "Wendy Waiting", "the database");
    Ok(())
}
both_backends!(
    an_access_token_exports_and_erases_a_waitlist_entry,
    an_access_token_exports_and_erases_a_waitlist_entry
);

/// Two passes at once (two nodes) make one offer and one mail.
async fn concurrent_passes_make_one_offer(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    join(&app, &venue, "Carla First", "carla@example.org").await?;
    join(&app, &venue, "Bert Second", "bert@example.org").await?;
    // The cancellation frees the table without this server's own pass
    // racing the two below: the row is written as another node would.
    app.execute_sql(&format!(
        "UPDATE reservations SET status = 'cancelled' WHERE id = '{}'",
        booked.id
    ))?;
    let (first, second) = tokio::join!(app.run_waitlist(), app.run_waitlist());
    assert!(first?.offered + second?.offered <= 1);
    assert_eq!(app.count_rows("waitlist_offers", "status = 'open'")?, 1);
    assert_eq!(app.count_rows("outbox", "purpose = 'waitlist_offer'")?, 1);
    Ok(())
}
both_backends!(
    concurrent_passes_make_one_offer,
    concurrent_passes_make_one_offer
);

/// A key rotation reaches waitlist entries (their guest records and the
/// sealed offer mail): the old version retires, and the entry and its
/// offer still read and claim.
async fn waitlist_entries_survive_a_key_rotation_and_retirement(backend: Backend) -> Result<()> {
    let mut app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(0).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    let carla = join(&app, &venue, "Carla First", "carla@example.org").await?;
    cancel(&app, &booked).await?;
    let progress = app.rotate_keys().await?;
    assert_eq!((progress.target_version, progress.remaining), (2, 0));
    // The booking's confirmation and the offer leave, sealed under 1.
    let offer = offer_tokens(&app, &smtp).await?.remove(0).1;
    // Idempotency records of the booking keep version 1 for a day.
    app.advance(chrono::Duration::hours(25));
    app.purge_expired().await?;
    let retired = app.retire_key(1).await?;
    assert!(!retired.blocks_retirement(), "{retired:?}");
    app.restart().await?;
    assert_eq!(entry(&app, &carla).await?["guestName"], "Carla First");
    // The offer lapsed meanwhile (25 hours): the claim is refused, yet
    // the entry's data opened under the new key.
    let claimed = app
        .gql(CLAIM, json!({ "input": { "token": offer } }))
        .await?;
    assert_eq!(
        user_error_code(&claimed, "claimWaitlistOffer"),
        Some("CONFLICT"),
        "{claimed}"
    );
    Ok(())
}
both_backends!(
    waitlist_entries_survive_a_key_rotation_and_retirement,
    waitlist_entries_survive_a_key_rotation_and_retirement
);

/// A booking moved to another time frees its old one for the line.
async fn a_moved_booking_offers_its_old_time(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app.book("one-table", 10).await?;
    let carla = join(&app, &venue, "Carla First", "carla@example.org").await?;
    assert_eq!(entry(&app, &carla).await?["status"], "waiting");
    let moved = app
        .gql(
            "mutation M($id: ID!, $t: String!, $key: String!, $at: DateTime!) { modifyReservation(input: { id: $id, manageToken: $t, startsAt: $at, idempotencyKey: $key }) { reservation { startsAt } userErrors { code } } }",
            json!({ "id": booked.id, "t": booked.token, "key": new_key(), "at": tomorrow_at(15) }),
        )
        .await?;
    payload(&moved, "modifyReservation")?;
    let offered = entry(&app, &carla).await?;
    assert_eq!(offered["status"], "offered", "{offered}");
    assert_eq!(
        offered["offer"]["startsAt"],
        tomorrow_at(10).replace('Z', "+00:00")
    );
    Ok(())
}
both_backends!(
    a_moved_booking_offers_its_old_time,
    a_moved_booking_offers_its_old_time
);
