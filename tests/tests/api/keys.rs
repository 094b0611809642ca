use anyhow::{Context as _, Result};
use kluis_tests::{
    Backend, CREATE, FakeSmtp, TestApp, both_backends, error_code, new_key, text, tomorrow_at,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SET_WEBHOOK: &str =
    "mutation W($i: SetVenueWebhookInput!) { setVenueWebhook(input: $i) { secret } }";
const BY_TOKEN: &str = "query T($t: String!) { reservationByToken(token: $t) { guestName guestEmail guestPhone notes } }";
const REQUEST_CODE: &str = "mutation R($v: ID!, $e: String!) { requestAccessCode(input: { venueId: $v, email: $e }) { accepted } }";
const REDEEM_CODE: &str = "mutation D($v: ID!, $e: String!, $c: String!) { redeemAccessCode(input: { venueId: $v, email: $e, code: $c }) { accessToken } }";
const EXPORT: &str = "mutation E { exportMyData { export { profile { name email } } } }";
const GUEST_RESERVATIONS: &str = "query G($v: ID!, $e: String!) { guestReservations(venueId: $v, email: $e) { nodes { guestName } } }";
const PARTNER_READ: &str = "query R($id: ID!) { reservation(id: $id) { partySize } }";

/// Whether a partner key is still accepted (whatever the key may read).
async fn authenticates(app: &TestApp, key: &str) -> Result<bool> {
    let answer = app
        .gql_as(
            key,
            PARTNER_READ,
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await?;
    Ok(error_code(&answer) != Some("UNAUTHENTICATED"))
}

fn key_id(key: &str) -> Result<String> {
    Ok(domain::auth::ApiKeyToken::parse(key)
        .context("a partner key")?
        .id)
}

async fn usage_of(app: &TestApp, version: u32) -> Result<store::KeyUsage> {
    let store = app.store().await?;
    let now = app.now();
    Ok(tokio::task::spawn_blocking(move || store.key_usage(version, now)).await??)
}

/// A key rotation reaches every sealed column; the old key cannot be
/// retired while a live API key is hashed under it or an access code made
/// with it can still be redeemed (and says so, by id and expiry); once
/// those are gone it is retired, and a server started with the new key
/// alone still serves every feature that had data sealed under the old one.
async fn an_old_key_is_retired_only_when_nothing_needs_it_and_everything_still_works(
    backend: Backend,
) -> Result<()> {
    let mut app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let admin = app.staff("admin", None).await?;
    let manager = app.staff("manager", Some("one-table")).await?;

    // An idempotent booking with every personal field: a guest record,
    // notes, a sealed manage token and fingerprint, a confirmation mail.
    let idempotency_key = new_key();
    let booking = json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(9), "partySize": 2,
    "guest": { "name": "Ada Rotation", "email": "ada.rotation@example.org",
               "phone": "+31612345678", "notes": "window seat" }, "idempotencyKey": idempotency_key }
    });
    let booked = app.gql(CREATE, booking.clone()).await?;
    let manage = text(&booked, "/data/createReservation/manageToken")?;

    // An access code asked for and redeemed: a grant with the sealed
    // address. A second code asked for and left: it waits to expire.
    let smtp = FakeSmtp::start(0).await?;
    let asked = app
        .gql(
            REQUEST_CODE,
            json!({ "v": venue, "e": "ada.rotation@example.org" }),
        )
        .await?;
    assert_eq!(
        asked["data"]["requestAccessCode"]["accepted"], true,
        "{asked}"
    );
    assert_eq!(app.deliver_mail(&smtp.url).await?.sent, 2);
    let message = smtp.messages().last().cloned().unwrap_or_default();
    let code = message
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .context("no six-digit code in the mail")?
        .to_owned();
    let redeemed = app
        .gql(
            REDEEM_CODE,
            json!({ "v": venue, "e": "ada.rotation@example.org", "c": code }),
        )
        .await?;
    let access = text(&redeemed, "/data/redeemAccessCode/accessToken")?;
    app.gql(
        REQUEST_CODE,
        json!({ "v": venue, "e": "ada.rotation@example.org" }),
    )
    .await?;
    // A venue webhook (its secret is sealed) and a booking it is told
    // about, waiting in the outbox.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/kluis"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let set = app
        .gql_as(
            &manager,
            SET_WEBHOOK,
            json!({ "i": { "venueId": venue, "url": format!("{}/kluis", receiver.uri()) } }),
        )
        .await?;
    let secret = text(&set, "/data/setVenueWebhook/secret")?;

    let other = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(11), "partySize": 2,
                "guest": { "name": "Bob Later", "email": "bob.later@example.org" }, "idempotencyKey": new_key() }
                }),
        )
        .await?;
    assert!(other.get("errors").is_none(), "{other}");
    // A mail that waits in the outbox across the whole rotation.
    app.enqueue_mail(
        "queued@example.org",
        "Still here",
        "queued across a key retirement",
    )
    .await?;

    // Partner keys: one idle, one that will be used after the rotation.
    let idle = app.partner_key(&admin, &venue, "idle").await?;
    let busy = app.partner_key(&admin, &venue, "busy").await?;

    // Every column the registry lists holds a value under version 1,
    // except the guests' fields and notes: they are sealed under the
    // guests' data keys (version 0), whose wrapping in the key store and
    // the guests' lookup tokens are what need version 1 instead.
    let before = usage_of(&app, 1).await?;
    for (table, column) in [
        ("guests", "email_lookup, phone_lookup"),
        ("data_keys", "wrapped"),
    ] {
        assert!(
            before
                .sealed
                .iter()
                .any(|u| u.table == table && u.column == column),
            "no {table}.{column} under version 1: {before:?}"
        );
    }
    for table in store::SEALED {
        if matches!(table.table, "guests" | "reservations") {
            assert!(
                !before.sealed.iter().any(|u| u.table == table.table
                    && table.columns.iter().any(|c| c.column == u.column)),
                "values under a data key counted as version 1: {before:?}"
            );
            continue;
        }
        for column in table.columns {
            assert!(
                before
                    .sealed
                    .iter()
                    .any(|u| u.table == table.table && u.column == column.column),
                "no data in {}.{}: {before:?}",
                table.table,
                column.column
            );
        }
    }

    let progress = app.rotate_keys().await?;
    assert_eq!((progress.target_version, progress.remaining), (2, 0));
    // A retried booking still gets its token back after the rotation (and
    // the server, meeting version 2 in its answer, loads the new key file
    // at once instead of within the watcher's two seconds).
    let replayed = app.gql(CREATE, booking.clone()).await?;
    assert_eq!(
        replayed["data"]["createReservation"]["manageToken"], manage,
        "{replayed}"
    );
    // A partner's request moves its key to the version the server seals
    // with now.
    assert!(authenticates(&app, &busy).await?);

    // Retiring the current version is refused outright.
    assert!(
        matches!(
            app.retire_key(2).await,
            Err(api::StartError::Keys(api::keys::KeyError::RetireCurrent(2)))
        ),
        "the current key version was retired"
    );
    // Version 1 is still needed by the idle API key and the live code.
    let needs = match app.retire_key(1).await {
        Err(api::StartError::KeyStillNeeded { version: 1, needs }) => needs,
        other => anyhow::bail!("retirement was not refused: {other:?}"),
    };
    #[expect(
        clippy::print_stdout,
        reason = "the listing an operator sees, shown with --nocapture"
    )]
    {
        println!(
            "key version 1 is still needed:\n  - {}",
            needs.join("\n  - ")
        );
    }
    assert_eq!(needs.len(), 2, "{needs:?}");
    assert!(
        needs[0].starts_with("api_keys: 1 live API keys") && needs[0].contains(&key_id(&idle)?),
        "{needs:?}"
    );
    assert!(!needs[0].contains(&key_id(&busy)?), "{needs:?}");
    assert!(
        needs[1].starts_with("access_codes: 1 codes") && needs[1].contains("valid until"),
        "{needs:?}"
    );
    let versions = api::keys::read_key_file(&app.key_file())?
        .versions()
        .collect::<Vec<_>>();
    assert_eq!(
        versions,
        [1, 2],
        "a refused retirement changed the key file"
    );

    // The idle key is replaced, the code expires: nothing needs 1 now.
    let revoked = app
        .gql_as(
            &admin,
            "mutation R($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { revoked } }",
            json!({ "i": { "id": key_id(&idle)? } }),
        )
        .await?;
    assert_eq!(
        revoked["data"]["revokeApiKey"]["revoked"], true,
        "{revoked}"
    );
    let replacement = app.partner_key(&admin, &venue, "replacement").await?;
    app.advance(chrono::Duration::minutes(16));
    let retired = app.retire_key(1).await?;
    assert!(!retired.blocks_retirement(), "{retired:?}");
    let ring = api::keys::read_key_file(&app.key_file())?;
    assert_eq!(ring.versions().collect::<Vec<_>>(), [2]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.key_file())?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A server started with the new key file alone.
    app.restart().await?;
    let mine = app.gql(BY_TOKEN, json!({ "t": manage })).await?;
    let data = &mine["data"]["reservationByToken"];
    assert_eq!(data["guestName"], "Ada Rotation", "{mine}");
    assert_eq!(data["guestEmail"], "ada.rotation@example.org", "{mine}");
    assert_eq!(data["guestPhone"], "+31612345678", "{mine}");
    assert_eq!(data["notes"], "window seat", "{mine}");
    let replayed = app.gql(CREATE, booking).await?;
    assert_eq!(
        replayed["data"]["createReservation"]["manageToken"], manage,
        "{replayed}"
    );
    let export = app.gql_as(&access, EXPORT, json!({})).await?;
    assert_eq!(
        export["data"]["exportMyData"]["export"]["profile"]["name"], "Ada Rotation",
        "{export}"
    );
    let staff = app.staff("staff", Some("one-table")).await?;
    let found = app
        .gql_as(
            &staff,
            GUEST_RESERVATIONS,
            json!({ "v": venue, "e": "ada.rotation@example.org" }),
        )
        .await?;
    assert_eq!(
        found["data"]["guestReservations"]["nodes"][0]["guestName"], "Ada Rotation",
        "{found}"
    );
    assert!(authenticates(&app, &replacement).await?);
    assert!(authenticates(&app, &busy).await?);
    assert!(!authenticates(&app, &idle).await?);

    let webhooks = app.deliver_webhooks().await?;
    assert_eq!((webhooks.sent, webhooks.failed), (1, 0));
    let requests = receiver.received_requests().await.context("recording")?;
    let now = app.now().timestamp();
    assert_eq!(requests.len(), 1);
    for request in &requests {
        let signature = request
            .headers
            .get("kluis-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&request.body)?;
        assert_eq!(body["type"], "reservation.created", "{body}");
        assert!(
            domain::webhooks::verify(secret.as_bytes(), signature, &request.body, now),
            "not signed with the venue's secret"
        );
    }
    // Bob's confirmation and the queued mail; the second code's mail is
    // past its code's expiry and never leaves.
    let mail = app.deliver_mail(&smtp.url).await?;
    assert_eq!((mail.sent, mail.failed), (2, 0));
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.contains("queued across a key retirement")),
        "the queued mail did not arrive"
    );

    // Nothing in the database is sealed under version 1 any more.
    let after = usage_of(&app, 1).await?;
    assert!(after.sealed.is_empty(), "{after:?}");
    // The audit trail still verifies with the new key alone (its entries
    // under version 1 are vouched for by the checkpoint the retirement
    // sealed; see the audit tests).
    assert_eq!(app.verify_audit().await?.1, None);
    Ok(())
}
both_backends!(
    an_old_key_is_retired_only_when_nothing_needs_it_and_everything_still_works,
    an_old_key_is_retired_only_when_nothing_needs_it_and_everything_still_works
);

/// A booking's idempotency record whose fingerprint cannot be checked (one
/// from before fingerprints were sealed, keyed under a version since
/// retired) never hands out the stored manage token: the retry is refused
/// with CONFLICT. Retirement counts such records without waiting for them.
async fn an_unverifiable_idempotency_record_is_refused_not_answered(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let booking = json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(9), "partySize": 2,
    "guest": { "name": "Old Record", "email": "old.record@example.org" }, "idempotencyKey": new_key() }
    });
    let booked = app.gql(CREATE, booking.clone()).await?;
    assert!(booked.get("errors").is_none(), "{booked}");
    app.execute_sql(
        "UPDATE idempotency_keys SET request_sealed = NULL, request_hash = 'from an older kluis'",
    )?;
    let replayed = app.gql(CREATE, booking).await?;
    assert_eq!(
        kluis_tests::user_error_code(&replayed, "createReservation"),
        Some("CONFLICT"),
        "{replayed}"
    );
    assert!(
        !replayed.to_string().contains("kmt_"),
        "a manage token was handed out: {replayed}"
    );
    assert_eq!(usage_of(&app, 1).await?.unsealed_fingerprints, 1);
    Ok(())
}
both_backends!(
    an_unverifiable_idempotency_record_is_refused_not_answered,
    an_unverifiable_idempotency_record_is_refused_not_answered
);
