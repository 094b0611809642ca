//! A manage token is a key to one reservation, nothing more: whatever
//! e-mail or phone a new booking gives, it never reveals, changes or links
//! into an earlier booking's data. Rights over a guest's whole history need
//! proof of control of the address (the access-code flow), whose answers do
//! not tell which addresses a venue knows.

use anyhow::{Context, Result};
use kluis_tests::{
    Backend, Booked, CREATE, TestApp, both_backends, error_code, new_key, text, user_error_code,
};
use serde_json::{Value, json};

const MINE: &str = "query T($t: String!) { reservationByToken(token: $t) { id guestName guestEmail guestPhone notes consents { purpose given } } }";
const CORRECT: &str = "mutation C($i: CorrectMyDataInput!) { correctMyData(input: $i) { corrected userErrors { field code } } }";
const ERASE: &str = "mutation X { eraseMyData { report { alreadyErased reservations } userErrors { field code } } }";
const REQUEST: &str = "mutation R($v: ID!, $e: String!) { requestAccessCode(input: { venueId: $v, email: $e }) { accepted userErrors { code } } }";
const REDEEM: &str = "mutation D($v: ID!, $e: String!, $c: String!) { redeemAccessCode(input: { venueId: $v, email: $e, code: $c }) { accessToken userErrors { code message } } }";

/// The code and message of a refused redemption, top-level or a user
/// error alike.
fn refusal(answer: &Value) -> (Option<String>, Value) {
    match error_code(answer) {
        Some(code) => (
            Some(code.to_owned()),
            answer["errors"][0]["message"].clone(),
        ),
        None => (
            user_error_code(answer, "redeemAccessCode").map(str::to_owned),
            answer["data"]["redeemAccessCode"]["userErrors"][0]["message"].clone(),
        ),
    }
}
const LOOKUP: &str = "query G($v: ID!, $e: String!) { guestReservations(venueId: $v, email: $e) { nodes { id guestName } } }";

/// None of the victim's values may appear in an answer to the attacker.
fn assert_no_victim_data(answer: &Value, victim: &[&str], what: &str) {
    let text = answer.to_string();
    for value in victim {
        assert!(
            !text.contains(value),
            "{what} reveals the victim's `{value}`: {text}"
        );
    }
}

/// The victim's booking, read with the victim's own token, is as it was.
async fn assert_victim_intact(app: &TestApp, victim: &Booked) -> Result<()> {
    let mine = app.gql(MINE, json!({ "t": victim.token })).await?;
    let own = &mine["data"]["reservationByToken"];
    assert_eq!(own["guestName"], "Alice Victim", "{mine}");
    assert_eq!(own["guestEmail"], "alice.victim@example.org", "{mine}");
    assert_eq!(own["guestPhone"], "+31611112222", "{mine}");
    assert_eq!(own["notes"], "CANARY allergic to nuts", "{mine}");
    let export = super::rights::exported(app, &victim.token).await?;
    let data = &export;
    assert_eq!(data["profile"]["name"], "Alice Victim", "{export}");
    assert_eq!(
        data["reservations"][0]["id"],
        victim.id.as_str(),
        "{export}"
    );
    assert_eq!(
        data["reservations"].as_array().map(Vec::len),
        Some(1),
        "{export}"
    );
    Ok(())
}

const VICTIM_VALUES: [&str; 4] = [
    "Alice Victim",
    "+31611112222",
    "CANARY allergic to nuts",
    "newsletter",
];

async fn victim_books(app: &TestApp) -> Result<Booked> {
    app.book("one-table", 9)
        .guest(json!({ "name": "Alice Victim", "email": "alice.victim@example.org", "phone": "+31 6 1111 2222",
                "notes": "CANARY allergic to nuts" }))
        .input("consents", json!(["NEWSLETTER"]))
        .await
}

/// The attacker's token, after booking with the victim's address (or
/// phone): reads, exports, corrects and erases only the attacker's own
/// booking; the victim's record is untouched and the victim's token keeps
/// working; staff still find both bookings of the address.
/// `typed` are values the attacker typed in themselves (the victim's
/// phone, in one test): their own booking shows them back, nothing else.
async fn attack(app: &TestApp, victim: &Booked, attacker: &Booked, typed: &[&str]) -> Result<()> {
    let victim_values: Vec<&str> = VICTIM_VALUES
        .into_iter()
        .filter(|value| !typed.contains(value))
        .collect();
    let mine = app.gql(MINE, json!({ "t": attacker.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["guestName"], "Mallory",
        "{mine}"
    );
    assert_no_victim_data(&mine, &victim_values, "reservationByToken");

    let export = app
        .gql_as(&attacker.token, &super::rights::export_mine(), json!({}))
        .await?;
    assert!(export.get("errors").is_none(), "{export}");
    assert_eq!(
        export["data"]["exportMyData"]["export"]["reservations"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{export}"
    );
    assert_no_victim_data(&export, &victim_values, "exportMyData");
    assert_no_victim_data(&export, &[victim.id.as_str()], "exportMyData");

    let corrected = app
        .gql_as(
            &attacker.token,
            CORRECT,
            json!({ "i": { "name": "Mallory M.", "email": "mallory@example.net" } }),
        )
        .await?;
    assert_eq!(
        corrected["data"]["correctMyData"]["corrected"], 1,
        "{corrected}"
    );
    assert_victim_intact(app, victim).await?;

    let erased = app.gql_as(&attacker.token, ERASE, json!({})).await?;
    assert_eq!(
        erased["data"]["eraseMyData"]["report"]["reservations"], 1,
        "only the attacker's booking: {erased}"
    );
    assert_victim_intact(app, victim).await?;
    Ok(())
}

async fn a_second_booker_with_someones_email_reaches_nothing_of_theirs(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let victim = victim_books(&app).await?;
    let attacker = app
        .book("one-table", 11)
        .guest(json!({ "name": "Mallory", "email": " Alice.Victim@Example.ORG " }))
        .await?;
    // Before anything is changed, the front desk finds both bookings of
    // the address, each with its own name.
    let staff = app.staff("staff", Some("one-table")).await?;
    let found = app
        .gql_as(
            &staff,
            LOOKUP,
            json!({ "v": venue, "e": "alice.victim@example.org" }),
        )
        .await?;
    let names: Vec<&str> = found["data"]["guestReservations"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["guestName"].as_str())
        .collect();
    assert_eq!(names, ["Mallory", "Alice Victim"], "{found}");
    attack(&app, &victim, &attacker, &[]).await
}
both_backends!(
    a_second_booker_with_someones_email_reaches_nothing_of_theirs,
    a_second_booker_with_someones_email_reaches_nothing_of_theirs
);

async fn a_booker_with_someones_phone_and_their_own_email_reaches_nothing_of_theirs(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let victim = victim_books(&app).await?;
    let attacker = app.book("one-table", 11).guest(json!({ "name": "Mallory", "email": "mallory@example.net", "phone": "+31 6 1111 2222" })).await?;
    attack(&app, &victim, &attacker, &["+31611112222"]).await
}
both_backends!(
    a_booker_with_someones_phone_and_their_own_email_reaches_nothing_of_theirs,
    a_booker_with_someones_phone_and_their_own_email_reaches_nothing_of_theirs
);

/// A record that several bookings were linked to before each booking kept
/// its own may hold another booking's details: a single booking's manage
/// token does not open it, the access-code flow does.
async fn a_record_shared_from_before_opens_only_with_proof_of_the_address(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let victim = victim_books(&app).await?;
    let linked = app
        .book("one-table", 11)
        .guest(json!({ "name": "Mallory", "email": "alice.victim@example.org" }))
        .await?;
    // What the old code did: the second booking pointed at the first
    // booking's guest record (the migration marks such records shared).
    app.execute_sql(&format!(
        "UPDATE reservations SET guest_id = (SELECT guest_id FROM reservations WHERE id = '{}') WHERE id = '{}'",
        victim.id, linked.id
    ))?;
    app.execute_sql(&format!(
        "UPDATE guests SET shared = TRUE WHERE id = (SELECT guest_id FROM reservations WHERE id = '{}')",
        victim.id
    ))?;
    let mine = app.gql(MINE, json!({ "t": linked.token })).await?;
    assert_eq!(mine["data"]["reservationByToken"]["id"], linked.id.as_str());
    assert_no_victim_data(&mine, &VICTIM_VALUES, "reservationByToken");
    assert_eq!(error_code(&mine), Some("FORBIDDEN"), "{mine}");
    let export = super::rights::export_mine();
    for (query, variables) in [
        (export.as_str(), json!({})),
        (ERASE, json!({})),
        (CORRECT, json!({ "i": { "name": "Mallory" } })),
    ] {
        let refused = app.gql_as(&linked.token, query, variables).await?;
        assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
        assert_no_victim_data(&refused, &VICTIM_VALUES, query);
    }
    assert_victim_intact_after_link(&app, &victim).await
}
both_backends!(
    a_record_shared_from_before_opens_only_with_proof_of_the_address,
    a_record_shared_from_before_opens_only_with_proof_of_the_address
);

/// The victim's own token on a shared record is refused the profile too
/// (it cannot tell whose it is), and nothing was changed.
async fn assert_victim_intact_after_link(app: &TestApp, victim: &Booked) -> Result<()> {
    let names = app.query_texts("SELECT name_sealed IS NOT NULL AS value FROM guests")?;
    assert!(!names.is_empty());
    assert_eq!(
        app.count_rows("guests", "erased_at IS NULL")?,
        2,
        "nothing was erased"
    );
    let mine = app.gql(MINE, json!({ "t": victim.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["notes"], "CANARY allergic to nuts",
        "the booking's own notes still read: {mine}"
    );
    Ok(())
}

/// The code for the address, read from the mail the fake server received.
async fn code_from_mail(smtp: &kluis_tests::FakeSmtp, app: &TestApp) -> Result<String> {
    app.deliver_mail(&smtp.url).await?;
    let message = smtp.messages().last().cloned().unwrap_or_default();
    Ok(message
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .context("no six-digit code in the mail")?
        .to_owned())
}

/// After a code was requested, wrong codes answer alike for a known and
/// an unknown address: NOT_FOUND four times, then RATE_LIMITED.
async fn wrong_codes_answer_alike_for_known_and_unknown_addresses(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    victim_books(&app).await?;
    let mut answers = Vec::new();
    for email in ["alice.victim@example.org", "nobody.here@example.org"] {
        let asked = app.gql(REQUEST, json!({ "v": venue, "e": email })).await?;
        assert_eq!(
            asked["data"]["requestAccessCode"]["accepted"], true,
            "{asked}"
        );
        let mut codes = Vec::new();
        for _ in 0..store::CODE_ATTEMPTS + 1 {
            let wrong = app
                .gql(REDEEM, json!({ "v": venue, "e": email, "c": "99999x" }))
                .await?;
            let (code, message) = refusal(&wrong);
            codes.push(code);
            answers.push(message);
        }
        assert_eq!(
            codes,
            [
                Some("NOT_FOUND"),
                Some("NOT_FOUND"),
                Some("NOT_FOUND"),
                Some("NOT_FOUND"),
                Some("RATE_LIMITED"),
                Some("RATE_LIMITED"),
            ]
            .map(|c| c.map(str::to_owned)),
            "{email}"
        );
    }
    let (known, unknown) = answers.split_at(answers.len() / 2);
    assert_eq!(known, unknown, "the messages differ too");
    Ok(())
}
both_backends!(
    wrong_codes_answer_alike_for_known_and_unknown_addresses,
    wrong_codes_answer_alike_for_known_and_unknown_addresses
);

/// Parallel guesses get no more tries than sequential ones: of a burst of
/// wrong codes at once, at most four are answered NOT_FOUND, none fails,
/// and the right code afterwards finds the code dead.
async fn a_burst_of_parallel_guesses_spends_the_codes_tries_once(backend: Backend) -> Result<()> {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await?);
    let venue = app.venue_id("one-table").await?;
    victim_books(&app).await?;
    let smtp = kluis_tests::FakeSmtp::start(0).await?;
    app.deliver_mail(&smtp.url).await?;
    app.gql(
        REQUEST,
        json!({ "v": venue, "e": "alice.victim@example.org" }),
    )
    .await?;
    let code = code_from_mail(&smtp, &app).await?;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (app, venue) = (app.clone(), venue.clone());
        burst.spawn(async move {
            app.gql(
                REDEEM,
                json!({ "v": venue, "e": "alice.victim@example.org", "c": wrong }),
            )
            .await
        });
    }
    let mut not_found = 0;
    while let Some(answer) = burst.join_next().await {
        let answer = answer??;
        match refusal(&answer).0.as_deref() {
            Some("NOT_FOUND") => not_found += 1,
            Some("RATE_LIMITED") => {}
            _ => anyhow::bail!("unexpected answer to a wrong code: {answer}"),
        }
    }
    assert!(not_found <= 4, "{not_found} wrong codes were checked");
    let right = app
        .gql(
            REDEEM,
            json!({ "v": venue, "e": "alice.victim@example.org", "c": code }),
        )
        .await?;
    assert_eq!(
        error_code(&right),
        Some("RATE_LIMITED"),
        "the code's tries are spent: {right}"
    );
    Ok(())
}
both_backends!(
    a_burst_of_parallel_guesses_spends_the_codes_tries_once,
    a_burst_of_parallel_guesses_spends_the_codes_tries_once
);

/// The access token reaches every booking of the proven address at its
/// venue, no other address and no other venue, and expires.
async fn an_access_token_reaches_one_address_at_one_venue_for_a_while(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let victim = victim_books(&app).await?;
    app.book("one-table", 12)
        .guest(json!({ "name": "Otto Other", "email": "otto@example.org" }))
        .await?;
    let lunch = kluis_tests::tomorrow_local("Europe/Amsterdam", "12:30")?;
    let elsewhere = app
        .gql(CREATE, json!({ "input": { "venueId": app.venue_id("lunch-room").await?, "startsAt": lunch,
            "partySize": 2, "guest": { "name": "Alice Elsewhere", "email": "alice.victim@example.org" }, "idempotencyKey": new_key() } }))
        .await?;
    assert!(elsewhere.get("errors").is_none(), "{elsewhere}");
    let smtp = kluis_tests::FakeSmtp::start(0).await?;
    app.deliver_mail(&smtp.url).await?;
    app.gql(
        REQUEST,
        json!({ "v": venue, "e": "alice.victim@example.org" }),
    )
    .await?;
    let code = code_from_mail(&smtp, &app).await?;
    let redeemed = app
        .gql(
            REDEEM,
            json!({ "v": venue, "e": "alice.victim@example.org", "c": code }),
        )
        .await?;
    let access = text(&redeemed, "/data/redeemAccessCode/accessToken")?;
    let history = super::rights::export_mine();
    let export = super::rights::exported(&app, &access).await?;
    let ids: Vec<&str> = export["reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [victim.id.as_str()], "{export}");
    let text = export.to_string();
    assert!(
        !text.contains("Otto") && !text.contains("Elsewhere"),
        "{text}"
    );
    app.advance(chrono::Duration::minutes(store::ACCESS_MINUTES + 1));
    let expired = app.gql_as(&access, &history, json!({})).await?;
    assert_eq!(
        user_error_code(&expired, "exportMyData"),
        Some("NOT_FOUND"),
        "{expired}"
    );
    Ok(())
}
both_backends!(
    an_access_token_reaches_one_address_at_one_venue_for_a_while,
    an_access_token_reaches_one_address_at_one_venue_for_a_while
);
