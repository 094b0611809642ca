use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, assert_absent, both_backends, captured_logs, error_code, new_key,
    user_error_code, user_errors,
};
use serde_json::{Value, json};

const BY_TOKEN: &str = "query T($t: String!) { reservationByToken(token: $t) { id partySize guestName guestEmail guestPhone notes } }";

fn token_of(answer: &Value) -> String {
    answer["data"]["createReservation"]["manageToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn a_guest_reads_their_data_with_the_token_and_nobody_else_does(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("lunch-room").await?;
    let lunch = kluis_tests::tomorrow_local("Europe/Amsterdam", "12:30")?;
    let booked = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": lunch, "partySize": 2, "guest": {
                "name": "  Grace Hopper ", "email": " Grace@Navy.MIL ", "phone": "06 1234 5678", "notes": "no shellfish" }, "idempotencyKey": new_key() }
                }),
        )
        .await?;
    let token = token_of(&booked);
    assert!(token.starts_with("kmt_"), "{booked}");
    let id = booked["data"]["createReservation"]["reservation"]["id"].clone();

    let mine = app.gql(BY_TOKEN, json!({ "t": token })).await?;
    let reservation = &mine["data"]["reservationByToken"];
    assert_eq!(reservation["id"], id, "{mine}");
    assert_eq!(reservation["guestName"], "Grace Hopper");
    assert_eq!(reservation["guestEmail"], "grace@navy.mil");
    assert_eq!(
        reservation["guestPhone"], "+31612345678",
        "read in the venue's country"
    );
    assert_eq!(reservation["notes"], "no shellfish");

    // Anonymous callers cannot look reservations up by id at all.
    let anonymous = app
        .gql(
            "query R($id: ID!) { reservation(id: $id) { partySize } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    // Venue staff: booking facts, name and notes; e-mail and phone are
    // FORBIDDEN field by field while the rest answers.
    let staff = app.staff("staff", Some("lunch-room")).await?;
    let public = app
        .gql_as(
            &staff,
            "query R($id: ID!) { reservation(id: $id) { partySize guestName notes guestEmail guestPhone } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(public["data"]["reservation"]["partySize"], 2, "{public}");
    assert_eq!(
        public["data"]["reservation"]["guestName"], "Grace Hopper",
        "{public}"
    );
    assert_eq!(
        public["data"]["reservation"]["notes"], "no shellfish",
        "{public}"
    );
    assert!(public["data"]["reservation"]["guestEmail"].is_null());
    let errors = public["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 2, "{public}");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "FORBIDDEN"),
        "{public}"
    );
    assert!(!public.to_string().contains("navy.mil"));

    for wrong in [
        "kmt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "kmt_short",
        "",
        "Grace",
    ] {
        let answer = app.gql(BY_TOKEN, json!({ "t": wrong })).await?;
        assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{wrong}: {answer}");
    }
    let cancel = "mutation C($id: ID!, $t: String!) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: \"cancel-0001\" }) { reservation { status } userErrors { code } } }";
    let other = app
        .book("one-table", 9)
        .guest(json!({ "name": "Someone Else" }))
        .answer()
        .await?;
    let refused = app
        .gql(cancel, json!({ "id": id, "t": token_of(&other) }))
        .await?;
    assert_eq!(
        user_error_code(&refused, "cancelReservation"),
        Some("NOT_FOUND"),
        "another reservation's token: {refused}"
    );
    Ok(())
}
both_backends!(
    a_guest_reads_their_data_with_the_token_and_nobody_else_does,
    a_guest_reads_their_data_with_the_token_and_nobody_else_does
);

/// Each booking keeps the details entered with it in a record of its own;
/// the lookup tokens still tie one address's bookings together, equal and
/// indexed, so staff and the access-code flow find them all.
async fn every_booking_keeps_its_own_guest_record_tied_by_lookup_tokens(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    app.book("one-table", 8)
        .guest(json!({ "name": "Alice", "email": "alice@example.com" }))
        .answer()
        .await?;
    app.book("one-table", 9)
        .guest(json!({ "name": "Alice A.", "email": " Alice@Example.COM " }))
        .answer()
        .await?;
    app.book("one-table", 10)
        .guest(json!({ "name": "Bob", "phone": "+44 20 7946 0958" }))
        .answer()
        .await?;
    app.book("one-table", 11)
        .guest(json!({ "name": "Bob", "phone": "+442079460958", "email": "bob@example.com" }))
        .answer()
        .await?;
    assert_eq!(
        app.count_rows("guests", "1 = 1")?,
        4,
        "one record per booking"
    );
    assert_eq!(app.count_rows("reservations", "guest_id IS NOT NULL")?, 4);
    let distinct = |column: &str| -> Result<usize> {
        Ok(app
            .query_texts(&format!(
                "SELECT DISTINCT {hex} AS value FROM guests WHERE {column} IS NOT NULL",
                hex = match backend {
                    Backend::Sqlite => format!("hex({column})"),
                    Backend::Postgres => format!("encode({column}, 'hex')"),
                }
            ))?
            .len())
    };
    assert_eq!(
        distinct("email_lookup")?,
        2,
        "the same address, however written, has one lookup token"
    );
    assert_eq!(distinct("phone_lookup")?, 1, "likewise the same phone");
    if backend == Backend::Sqlite {
        // The store's lookups (one key version, and several during a
        // rotation), as SQLite plans them: an index search, no scan.
        for tokens in ["= X'00'", "IN (X'00', X'01')"] {
            let plan = app.explain_sqlite(&format!(
                "SELECT id FROM guests WHERE venue_id = 'v' AND email_lookup {tokens}"
            ))?;
            assert!(
                plan.contains("USING INDEX guests_by_email")
                    || plan.contains("USING COVERING INDEX guests_by_email"),
                "lookup is not an index search: {plan}"
            );
        }
    }
    Ok(())
}
both_backends!(
    every_booking_keeps_its_own_guest_record_tied_by_lookup_tokens,
    every_booking_keeps_its_own_guest_record_tied_by_lookup_tokens
);

async fn bad_personal_data_is_refused_without_echoing_it(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let cases = [
        (
            json!({ "name": "Eve", "email": "eve-at-example.com" }),
            "guest.email",
            "eve-at-example",
        ),
        (
            json!({ "name": "Eve", "phone": "call me maybe" }),
            "guest.phone",
            "maybe",
        ),
        (
            json!({ "name": "Eve", "notes": "card 4111 1111 1111 1111 exp 12/29" }),
            "guest.notes",
            "4111",
        ),
        (json!({ "name": "4111111111111111" }), "guest.name", "4111"),
        (
            json!({ "name": "E".repeat(201) }),
            "guest.name",
            "EEEEEEEEEE",
        ),
        (
            json!({ "name": "Eve", "notes": "n".repeat(1001) }),
            "guest.notes",
            "nnnnnnnnnn",
        ),
        (json!({ "name": "   " }), "guest.name", "xxxxxxxx"),
    ];
    for (guest, field, secret) in cases {
        let answer = app
            .book("one-table", 10)
            .guest(guest.clone())
            .answer()
            .await?;
        assert_eq!(
            user_errors(&answer, "createReservation"),
            [(format!("input.{field}"), "INVALID".to_owned())],
            "{guest}: {answer}"
        );
        assert!(!answer.to_string().contains(secret), "echoed: {answer}");
    }
    let card = app
        .book("one-table", 10)
        .guest(json!({ "name": "Eve", "notes": "4111-1111-1111-1111" }))
        .answer()
        .await?;
    assert!(
        card["data"]["createReservation"]["userErrors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("card numbers are never accepted here")
    );
    assert_eq!(app.count_rows("guests", "1 = 1")?, 0);
    Ok(())
}
both_backends!(
    bad_personal_data_is_refused_without_echoing_it,
    bad_personal_data_is_refused_without_echoing_it
);

/// Unique values planted through the API must never appear in the
/// database files or the logs, in any case.
async fn planted_canaries_never_reach_the_disk_or_the_logs(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("lunch-room").await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let name = format!("Canaryname{tag}");
    let email = format!("canary.{tag}@example.org");
    let notes = format!("Canarynote{tag} allergic to peanuts");
    let digits: String = tag
        .bytes()
        .map(|b| char::from(b'0' + b % 10))
        .take(6)
        .collect();
    let phone = format!("+31612{digits}");
    let lunch = kluis_tests::tomorrow_local("Europe/Amsterdam", "13:00")?;
    let booked = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": lunch, "partySize": 2,
            "guest": { "name": name, "email": email, "phone": phone, "notes": notes }, "idempotencyKey": new_key() } }))
        .await?;
    let token = token_of(&booked);
    assert!(!token.is_empty(), "{booked}");
    let read = app.gql(BY_TOKEN, json!({ "t": token })).await?;
    assert_eq!(
        read["data"]["reservationByToken"]["guestEmail"], email,
        "{read}"
    );
    // Failures must not echo them either.
    let refused = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": lunch, "partySize": 0,
            "guest": { "name": name, "email": format!("{email}@@"), "notes": notes }, "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        user_error_code(&refused, "createReservation"),
        Some("INVALID"),
        "{refused}"
    );
    let taken = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": lunch, "partySize": 4,
            "guest": { "name": name, "email": email, "notes": notes }, "idempotencyKey": new_key() } }),
        )
        .await?;
    assert!(!refused.to_string().contains(&tag) && !taken.to_string().contains(&tag));

    let database = app.raw_database()?;
    assert!(database.len() > 1000, "the raw database read looks empty");
    let logs = captured_logs();
    assert!(!logs.is_empty(), "no logs were captured");
    for canary in [
        &name,
        &email,
        &notes,
        &phone,
        &format!("Canarynote{tag}"),
        &tag,
    ] {
        assert_absent(&database, canary, "the database");
        assert_absent(&logs, canary, "the logs");
    }
    assert_absent(&database, token.trim_start_matches("kmt_"), "the database");
    Ok(())
}
both_backends!(
    planted_canaries_never_reach_the_disk_or_the_logs,
    planted_canaries_never_reach_the_disk_or_the_logs
);

/// Swapping two guests' sealed e-mails in the database must make both fail
/// to open, never show one guest the other's address.
async fn swapped_ciphertexts_fail_instead_of_showing_someone_elses_data(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let ada = app
        .book("one-table", 10)
        .guest(json!({ "name": "Ada", "email": "ada@example.org" }))
        .answer()
        .await?;
    let bob = app
        .book("one-table", 11)
        .guest(json!({ "name": "Bob", "email": "bob@example.org" }))
        .answer()
        .await?;
    let ids = app.query_texts("SELECT id AS value FROM guests ORDER BY id")?;
    anyhow::ensure!(ids.len() == 2, "expected two guests, found {ids:?}");
    let (a, b) = (&ids[0], &ids[1]);
    let (to_hex, from_hex) = match backend {
        Backend::Sqlite => ("hex(email_sealed)", "X'{}'"),
        Backend::Postgres => ("encode(email_sealed, 'hex')", "decode('{}', 'hex')"),
    };
    let sealed_of = |id: &str| -> Result<String> {
        let values = app.query_texts(&format!(
            "SELECT {to_hex} AS value FROM guests WHERE id = '{id}'"
        ))?;
        values
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no guest {id}"))
    };
    let (sealed_a, sealed_b) = (sealed_of(a)?, sealed_of(b)?);
    for (id, sealed) in [(a, &sealed_b), (b, &sealed_a)] {
        let literal = from_hex.replace("{}", sealed);
        app.execute_sql(&format!(
            "UPDATE guests SET email_sealed = {literal} WHERE id = '{id}'"
        ))?;
    }
    for (booking, own, other) in [(&ada, "ada", "bob"), (&bob, "bob", "ada")] {
        let answer = app.gql(BY_TOKEN, json!({ "t": token_of(booking) })).await?;
        assert_eq!(error_code(&answer), Some("INTERNAL"), "{own}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains(&format!("{other}@example.org")),
            "{own} saw {other}'s e-mail: {text}"
        );
        assert!(!text.contains("@example.org"), "{text}");
        assert!(
            !text.contains("kluisIntegrity"),
            "the mark is internal: {text}"
        );
    }
    // Both failures are one open alert, counted twice.
    let triggers = app.query_texts(
        "SELECT CAST(triggers AS TEXT) AS value FROM alerts \
         WHERE rule = 'integrity_failure' AND principal = 'anonymous' AND status = 'open'",
    )?;
    assert_eq!(triggers, ["2"]);
    let logs = String::from_utf8_lossy(&captured_logs()).into_owned();
    assert!(
        logs.contains("integrity"),
        "the integrity failure was not logged"
    );
    Ok(())
}
both_backends!(
    swapped_ciphertexts_fail_instead_of_showing_someone_elses_data,
    swapped_ciphertexts_fail_instead_of_showing_someone_elses_data
);

/// Rotation re-encrypts everything while readers keep reading; afterwards
/// no row uses the old key version and every value still reads the same.
async fn key_rotation_under_concurrent_reads_leaves_no_old_ciphertext(
    backend: Backend,
) -> Result<()> {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await?);
    let venue = app.venue_id("one-table").await?;
    let mut tokens = Vec::new();
    for day_hour in 0..24 {
        let booked = app.book("one-table", day_hour).guest(json!({ "name": format!("Guest {day_hour}"), "email": format!("g{day_hour}@example.org"),
                    "phone": format!("+3161234{:04}", day_hour), "notes": format!("note {day_hour}") })).answer().await?;
        let token = token_of(&booked);
        anyhow::ensure!(!token.is_empty(), "{booked}");
        tokens.push((day_hour, token));
    }
    assert_eq!(app.count_rows("guests", "key_version = 1")?, 24);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..4 {
        let app = std::sync::Arc::clone(&app);
        let stop = std::sync::Arc::clone(&stop);
        let tokens = tokens.clone();
        readers.spawn(async move {
            let mut reads = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 24 {
                let (hour, token) = &tokens[(reads as usize + reader * 7) % tokens.len()];
                let answer = app.gql(BY_TOKEN, json!({ "t": token })).await?;
                let data = &answer["data"]["reservationByToken"];
                anyhow::ensure!(
                    answer.get("errors").is_none(),
                    "read failed during rotation: {answer}"
                );
                anyhow::ensure!(
                    data["guestEmail"] == format!("g{hour}@example.org"),
                    "{answer}"
                );
                anyhow::ensure!(data["notes"] == format!("note {hour}"), "{answer}");
                reads += 1;
            }
            anyhow::Ok(reads)
        });
    }
    let progress = app.rotate_keys().await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    while let Some(reads) = readers.join_next().await {
        total += reads??;
    }
    assert!(total >= 96, "readers did not run: {total}");
    assert_eq!(progress.target_version, 2);
    assert_eq!(progress.remaining, 0);
    assert_eq!(app.count_rows("guests", "key_version <> 2")?, 0);
    assert_eq!(app.count_rows("reservations", "key_version = 1")?, 0);
    // Notes are sealed under their guests' data keys (version 0), which a
    // master key rotation re-wraps in the key store and leaves alone here.
    assert_eq!(app.count_rows("reservations", "key_version = 0")?, 24);
    // Every lookup token's own version prefix says 2; the sealed values
    // say 0, their data keys'.
    let prefixes = match backend {
        Backend::Sqlite => app.query_texts("SELECT DISTINCT hex(substr(name_sealed, 1, 4)) || hex(substr(email_lookup, 1, 4)) AS value FROM guests")?,
        Backend::Postgres => app.query_texts("SELECT DISTINCT upper(encode(substring(name_sealed from 1 for 4), 'hex') || encode(substring(email_lookup from 1 for 4), 'hex')) AS value FROM guests")?,
    };
    assert_eq!(prefixes, ["0000000000000002"]);
    // Lookups work with the new tokens: the front desk still finds a
    // returning guest's earlier booking next to the new one.
    let later = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT05:00:00Z")
        .to_string();
    let again = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": later, "partySize": 2,
            "guest": { "name": "Guest 5 again", "email": " G5@example.org" }, "idempotencyKey": new_key() } }),
        )
        .await?;
    assert!(again.get("errors").is_none(), "{again}");
    let staff = app.staff("staff", Some("one-table")).await?;
    let found = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": "g5@example.org" }),
        )
        .await?;
    assert_eq!(
        ids_of(&found).len(),
        2,
        "the returning guest was not found after rotation: {found}"
    );
    Ok(())
}
both_backends!(
    key_rotation_under_concurrent_reads_leaves_no_old_ciphertext,
    key_rotation_under_concurrent_reads_leaves_no_old_ciphertext
);

/// A rotation stopped after its new key was added (the process killed, the
/// machine restarted) is finished by the next run, not started over with a
/// third key.
async fn an_interrupted_rotation_resumes_where_it_stopped(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    for hour in [8, 9, 10] {
        app.book("one-table", hour)
            .guest(
                json!({ "name": "Resumed", "email": format!("r{hour}@example.org"), "notes": "x" }),
            )
            .answer()
            .await?;
    }
    api::keys::add_key_version(&app.key_file())?;
    assert_eq!(
        app.count_rows("guests", "key_version = 1")?,
        3,
        "nothing was re-encrypted yet"
    );
    let progress = app.rotate_keys().await?;
    // Three guests (their lookup tokens rewritten), three reservations
    // with notes (under the guests' data keys), three idempotency records
    // and three confirmation mails.
    assert_eq!(
        (progress.target_version, progress.remaining, progress.done),
        (2, 0, 12)
    );
    assert_eq!(app.count_rows("guests", "key_version = 2")?, 3);
    // Rotation opened every sealed field: the trail says so, once.
    assert_eq!(
        app.count_rows(
            "audit_objects",
            "principal = 'cli' AND action = 'rotate' AND object = 'keys:v2'"
        )?,
        1
    );
    assert_eq!(app.verify_audit().await?.1, None);
    Ok(())
}
both_backends!(
    an_interrupted_rotation_resumes_where_it_stopped,
    an_interrupted_rotation_resumes_where_it_stopped
);

const GUEST_RESERVATIONS: &str = "query G($v: ID!, $e: String!, $f: Int) { guestReservations(venueId: $v, email: $e, first: $f) { nodes { id guestName } } }";

fn ids_of(answer: &Value) -> Vec<String> {
    answer["data"]["guestReservations"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

fn booked_id(answer: &Value) -> Result<String> {
    answer["data"]["createReservation"]["reservation"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("not booked: {answer}"))
}

/// The front desk types in the address the guest gives, in whatever case
/// and spacing: the guest's bookings at this venue answer, newest first,
/// nobody else's and none elsewhere, and the trail names the guest but
/// never the address.
async fn the_front_desk_finds_a_guests_bookings_by_email(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let email = format!("ada.{tag}@example.org");
    let mut ada = Vec::new();
    for (hour, written) in [
        (9, email.clone()),
        (11, format!("  {}  ", email.to_uppercase())),
        (10, format!(" Ada.{tag}@Example.ORG")),
    ] {
        let booked = app
            .book("one-table", hour)
            .guest(json!({ "name": "Ada Lovelace", "email": written }))
            .answer()
            .await?;
        ada.push(booked_id(&booked)?);
    }
    let (nine, eleven, ten) = (ada[0].clone(), ada[1].clone(), ada[2].clone());
    let bob = booked_id(
        &app.book("one-table", 12)
            .guest(json!({ "name": "Bob", "email": format!("bob.{tag}@example.org") }))
            .answer()
            .await?,
    )?;
    let lunch = kluis_tests::tomorrow_local("Europe/Amsterdam", "12:30")?;
    let elsewhere = app
        .gql(CREATE, json!({ "input": { "venueId": app.venue_id("lunch-room").await?, "startsAt": lunch,
            "partySize": 2, "guest": { "name": "Ada Lovelace", "email": email }, "idempotencyKey": new_key() } }))
        .await?;
    let elsewhere = booked_id(&elsewhere)?;

    let staff = app.staff("staff", Some("one-table")).await?;
    let typed = format!(" ADA.{tag}@example.ORG ");
    let found = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": typed }),
        )
        .await?;
    assert!(found.get("errors").is_none(), "{found}");
    assert_eq!(
        ids_of(&found),
        [eleven.as_str(), ten.as_str(), nine.as_str()],
        "{found}"
    );
    assert_eq!(
        found["data"]["guestReservations"]["nodes"][0]["guestName"], "Ada Lovelace",
        "{found}"
    );
    assert!(!ids_of(&found).contains(&bob) && !ids_of(&found).contains(&elsewhere));
    let limited = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": email, "f": 2 }),
        )
        .await?;
    assert_eq!(
        ids_of(&limited),
        [eleven.as_str(), ten.as_str()],
        "{limited}"
    );

    // A manager may read the address back through the guarded field; the
    // lookup itself answers no more than staff get.
    let manager = app.staff("manager", Some("one-table")).await?;
    let managed = app
        .gql_as(
            &manager,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": email, "f": 1 }),
        )
        .await?;
    assert_eq!(ids_of(&managed), [eleven.as_str()], "{managed}");

    let guest_of = |id: &str| -> Result<String> {
        app.query_texts(&format!(
            "SELECT guest_id AS value FROM reservations WHERE id = '{id}'"
        ))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no guest for {id}"))
    };
    let (nine_guest, ten_guest, eleven_guest) =
        (guest_of(&nine)?, guest_of(&ten)?, guest_of(&eleven)?);
    // The whole trail, so that the canaries below are looked for in every
    // column of every entry.
    let trail = app.query_texts(
        "SELECT principal || ' ' || action || ' ' || object || ' ' || fields || ' ' || COALESCE(venue_id, '') AS value \
         FROM audit_objects ORDER BY seq, position",
    )?;
    let lookups: Vec<&String> = trail
        .iter()
        .filter(|entry| entry.split(' ').nth(1) == Some("lookup"))
        .collect();
    // One entry per guest record answered: three, then the two on the
    // first page of two, then the one on a page of one.
    let named = |entry: &str, guest: &str| {
        entry.starts_with("user:")
            && entry.ends_with(&format!(" lookup guest:{guest} email {venue}"))
    };
    assert_eq!(lookups.len(), 6, "one per record answered: {trail:?}");
    for entry in &lookups {
        assert!(
            [&nine_guest, &ten_guest, &eleven_guest]
                .iter()
                .any(|guest| named(entry, guest)),
            "{entry}"
        );
    }
    assert!(
        lookups[5].ends_with(&format!(" lookup guest:{eleven_guest} email {venue}")),
        "a page of one names only the newest booking's record: {lookups:?}"
    );
    assert_eq!(app.verify_audit().await?.1, None);
    let trail = trail.join("\n");
    assert!(
        trail.contains("guestName"),
        "the reads are on the record: {trail}"
    );
    for canary in [&email, &typed, &tag] {
        assert_absent(trail.as_bytes(), canary, "the audit log");
        assert_absent(&captured_logs(), canary, "the logs");
        assert_absent(found.to_string().as_bytes(), canary, "the answer");
    }
    Ok(())
}
both_backends!(
    the_front_desk_finds_a_guests_bookings_by_email,
    the_front_desk_finds_a_guests_bookings_by_email
);

/// Who may not look up, and what a lookup of nothing or of something that
/// is not an address answers: the same refusals as the day sheet, an empty
/// list, BAD_USER_INPUT without the value.
async fn a_guest_lookup_is_refused_outside_the_venue_and_never_echoes_the_address(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let email = format!("grace.{tag}@example.org");
    let booked = app
        .book("one-table", 9)
        .guest(json!({ "name": "Grace Hopper", "email": email }))
        .answer()
        .await?;
    let token = token_of(&booked);
    let lookup = json!({ "v": venue, "e": email });
    let day = "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d) { edges { node { id } } } }";
    let day_sheet = json!({ "v": venue, "d": kluis_tests::tomorrow() });

    // The same code as the day sheet gives each caller.
    let anonymous = app.gql(GUEST_RESERVATIONS, lookup.clone()).await?;
    let anonymous_day = app.gql(day, day_sheet.clone()).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    assert_eq!(error_code(&anonymous), error_code(&anonymous_day));
    let outsider = app.staff("manager", Some("lunch-room")).await?;
    let refused = app
        .gql_as(&outsider, GUEST_RESERVATIONS, lookup.clone())
        .await?;
    let refused_day = app.gql_as(&outsider, day, day_sheet.clone()).await?;
    assert_eq!(
        error_code(&refused),
        Some("NOT_FOUND"),
        "another venue's staff cannot tell it exists: {refused}"
    );
    assert_eq!(error_code(&refused), error_code(&refused_day));
    let admin = app.staff("admin", None).await?;
    let partner = app.partner_key(&admin, &venue, "lookup").await?;
    // A guest's manage token is no staff credential: its holder is the
    // guest of one booking, whom the policy grants no lookup.
    for (who, credential, code) in [
        ("a partner of the venue", partner, "FORBIDDEN"),
        ("the guest", token, "FORBIDDEN"),
    ] {
        let denied = app
            .gql_as(&credential, GUEST_RESERVATIONS, lookup.clone())
            .await?;
        assert_eq!(error_code(&denied), Some(code), "{who}: {denied}");
        assert!(denied["data"]["guestReservations"].is_null(), "{denied}");
    }
    for answer in [&anonymous, &refused] {
        assert!(answer["data"]["guestReservations"].is_null(), "{answer}");
    }

    let staff = app.staff("staff", Some("one-table")).await?;
    let invalid = format!("grace.{tag}-at-example.org");
    let bad = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": invalid }),
        )
        .await?;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"), "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "email", "{bad}");
    let too_many = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": email, "f": 101 }),
        )
        .await?;
    assert_eq!(error_code(&too_many), Some("BAD_USER_INPUT"), "{too_many}");
    let unknown = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": format!("nobody.{tag}@example.org") }),
        )
        .await?;
    assert!(unknown.get("errors").is_none(), "{unknown}");
    assert_eq!(
        unknown["data"]["guestReservations"]["nodes"],
        json!([]),
        "{unknown}"
    );
    // A probe that finds nobody is on the trail as a search of the venue,
    // with no address in it.
    assert_eq!(
        app.count_rows(
            "audit_objects",
            "action = 'lookup' AND object LIKE 'guest:%'"
        )?,
        0,
        "no guest was found, so none was looked up"
    );
    assert_eq!(
        app.count_rows(
            "audit_objects",
            &format!("action = 'lookup' AND object = 'venue:{venue}' AND fields = 'email'")
        )?,
        1,
        "the unanswered probe left no trace"
    );
    for answer in [&anonymous, &refused, &bad, &too_many, &unknown] {
        assert_absent(answer.to_string().as_bytes(), &tag, "an answer");
    }
    assert_absent(&captured_logs(), &tag, "the logs");
    Ok(())
}
both_backends!(
    a_guest_lookup_is_refused_outside_the_venue_and_never_echoes_the_address,
    a_guest_lookup_is_refused_outside_the_venue_and_never_echoes_the_address
);

/// The front desk's lookup is a page with `totalCount` and cursors.
async fn the_front_desk_lookup_pages_with_a_total(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    for hour in [9, 10, 11] {
        app.book("one-table", hour)
            .guest(json!({ "name": "Paged Guest", "email": "paged@example.org" }))
            .await?;
    }
    let staff = app.staff("staff", Some("one-table")).await?;
    let query = "query G($v: ID!, $e: String!, $a: String) { guestReservations(venueId: $v, email: $e, first: 2, after: $a) { totalCount edges { node { id startsAt } } pageInfo { hasNextPage endCursor } } }";
    let first = app
        .gql_as(
            &staff,
            query,
            json!({ "v": venue, "e": "paged@example.org" }),
        )
        .await?;
    let page = &first["data"]["guestReservations"];
    assert_eq!(page["totalCount"], 3, "{first}");
    assert_eq!(page["edges"].as_array().map(Vec::len), Some(2), "{first}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["pageInfo"]["endCursor"].clone();
    let second = app
        .gql_as(
            &staff,
            query,
            json!({ "v": venue, "e": "paged@example.org", "a": cursor }),
        )
        .await?;
    let rest = &second["data"]["guestReservations"];
    assert_eq!(rest["edges"].as_array().map(Vec::len), Some(1), "{second}");
    assert_eq!(rest["totalCount"], 3);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let newest_first = |answer: &Value| -> Vec<String> {
        answer["data"]["guestReservations"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|edge| edge["node"]["startsAt"].as_str().map(str::to_owned))
            .collect()
    };
    let mut all = newest_first(&first);
    all.extend(newest_first(&second));
    let mut sorted = all.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(all, sorted, "newest first across pages");
    let forged = app
        .gql_as(
            &staff,
            query,
            json!({ "v": venue, "e": "paged@example.org", "a": "bm9wZQ" }),
        )
        .await?;
    assert_eq!(error_code(&forged), Some("BAD_USER_INPUT"), "{forged}");
    Ok(())
}
both_backends!(
    the_front_desk_lookup_pages_with_a_total,
    the_front_desk_lookup_pages_with_a_total
);
