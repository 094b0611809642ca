//! Erasure reaches copies: each guest's fields are sealed under a data key
//! of their own, kept in the key store; erasing a guest destroys the key,
//! so a copy of the data database taken before (a backup, a replica) opens
//! nothing of theirs, and the key store's record of erasures lets a
//! restored copy be erased again.

use anyhow::{Context, Result};
use kluis_tests::{Backend, FakeSmtp, TestApp, both_backends, error_code, text, tomorrow};
use serde_json::{Value, json};

const ERASE: &str =
    "mutation X($t: String!) { eraseMyData(manageToken: $t) { alreadyErased reservations } }";
const MINE: &str =
    "query T($t: String!) { reservationByToken(token: $t) { guestName guestEmail notes } }";
const DAY: &str = "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d) { edges { node { guestName notes } } } }";

async fn day_sheet(app: &TestApp) -> Result<Value> {
    let admin = app.staff("admin", None).await?;
    let venue = app.venue_id("one-table").await?;
    let sheet = app
        .gql_as(&admin, DAY, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    let nodes: Vec<Value> = sheet["data"]["reservations"]["edges"]
        .as_array()
        .with_context(|| format!("{sheet}"))?
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    Ok(Value::Array(nodes))
}

/// A copy of the data taken before an erasure, served with the same key
/// ring and key store, shows nothing of the erased guest (the rows there
/// still hold the ciphertext: only the destroyed key keeps it shut), while
/// the other guest still opens. Replaying the recorded erasures then
/// erases the guest's rows in the copy too, once.
async fn a_copy_taken_before_an_erasure_opens_nothing_of_the_guest(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let erik = app.book("one-table", 10).guest(json!({ "name": "Erik Copy", "email": "erik.copy@example.org", "phone": "+31 6 8765 4321", "notes": "window seat" })).await?.token;
    let anna = app
        .book("one-table", 11)
        .guest(json!({ "name": "Anna Stays", "email": "anna.stays@example.org", "notes": "aisle" }))
        .await?
        .token;
    // The guests' fields are sealed under data keys (version bytes 0).
    let prefix = match backend {
        Backend::Sqlite => "hex(substr(name_sealed, 1, 4))",
        Backend::Postgres => "upper(encode(substring(name_sealed from 1 for 4), 'hex'))",
    };
    assert_eq!(
        app.query_texts(&format!("SELECT DISTINCT {prefix} AS value FROM guests"))?,
        vec!["00000000".to_owned()]
    );

    let copy = app.copy_database().await?;
    let erased = app.gql(ERASE, json!({ "t": erik })).await?;
    assert_eq!(
        erased["data"]["eraseMyData"]["alreadyErased"], false,
        "{erased}"
    );

    let restored = app.serve_copy(copy).await?;
    // The copy still holds the erased guest's ciphertexts...
    assert_eq!(
        restored.count_rows("guests", "erased_at IS NULL AND email_sealed IS NOT NULL")?,
        2
    );
    assert_eq!(
        restored.count_rows("reservations", "notes_sealed IS NOT NULL")?,
        2
    );
    // ...and none of them opens: the guest reads as erased.
    let mine = restored.gql(MINE, json!({ "t": erik })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"],
        json!({ "guestName": "‹erased›", "guestEmail": null, "notes": null }),
        "{mine}"
    );
    let hers = restored.gql(MINE, json!({ "t": anna })).await?;
    assert_eq!(
        hers["data"]["reservationByToken"],
        json!({ "guestName": "Anna Stays", "guestEmail": "anna.stays@example.org", "notes": "aisle" }),
        "{hers}"
    );
    // The day sheet, which opens its guests' keys in one batch, too.
    let sheet = day_sheet(&restored).await?;
    assert_eq!(
        sheet,
        json!([
            { "guestName": "‹erased›", "notes": null },
            { "guestName": "Anna Stays", "notes": "aisle" }
        ])
    );

    // A restore is followed by a replay: the rows are erased again.
    let replay = restored.replay_erasures().await?;
    assert_eq!((replay.recorded, replay.applied), (1, 1), "{replay:?}");
    assert_eq!(restored.count_rows("guests", "erased_at IS NULL")?, 1);
    assert_eq!(
        restored.count_rows("guests", "email_lookup IS NULL AND email_sealed IS NULL")?,
        1
    );
    assert_eq!(
        restored.count_rows("reservations", "notes_sealed IS NOT NULL")?,
        1
    );
    let again = restored.replay_erasures().await?;
    assert_eq!((again.applied, again.already), (0, 1), "{again:?}");
    // Replaying on the live database changes nothing either.
    let live = app.replay_erasures().await?;
    assert_eq!((live.applied, live.already), (0, 1), "{live:?}");
    let hers = app.gql(MINE, json!({ "t": anna })).await?;
    assert_eq!(
        hers["data"]["reservationByToken"]["guestName"], "Anna Stays",
        "{hers}"
    );
    Ok(())
}
both_backends!(
    a_copy_taken_before_an_erasure_opens_nothing_of_the_guest,
    a_copy_taken_before_an_erasure_opens_nothing_of_the_guest
);

/// Retention anonymizations are recorded in the key store too, and their
/// keys destroyed: a copy from before the run reads the guest as erased.
async fn retention_destroys_keys_and_is_recorded_for_replay(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app
        .book("one-table", 10)
        .guest(json!({ "name": "Rita Retained", "email": "rita@example.org" }))
        .await?
        .token;
    let copy = app.copy_database().await?;
    let run = app.run_retention(2000, false).await?;
    assert_eq!(run.anonymized, 1, "{run:?}");
    let restored = app.serve_copy(copy).await?;
    let mine = restored.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["guestName"], "‹erased›",
        "{mine}"
    );
    let replay = restored.replay_erasures().await?;
    assert_eq!(replay.applied, 1, "{replay:?}");
    assert_eq!(restored.count_rows("guests", "erased_at IS NULL")?, 0);
    Ok(())
}
both_backends!(
    retention_destroys_keys_and_is_recorded_for_replay,
    retention_destroys_keys_and_is_recorded_for_replay
);

/// A guest written before data keys (fields under the key ring's column
/// keys, no key in the key store) still reads; a key rotation moves them
/// onto a data key of their own, notes included, and they read the same.
async fn guests_from_before_data_keys_read_and_are_moved_onto_data_keys_by_rotation(
    backend: Backend,
) -> Result<()> {
    use domain::crypto::Field;
    let app = TestApp::spawn(backend).await?;
    let token = app
        .book("one-table", 10)
        .guest(json!({ "name": "Lena Legacy", "email": "lena@example.org", "notes": "old note" }))
        .await?
        .token;
    let guest = app
        .query_texts("SELECT id AS value FROM guests")?
        .pop()
        .context("guest")?;
    let reservation = app
        .query_texts("SELECT id AS value FROM reservations")?
        .pop()
        .context("reservation")?;
    // Re-seal the record as kluis did before data keys.
    let ring = api::keys::read_key_file(&app.key_file())?;
    let bytes = |sealed: Vec<u8>| match backend {
        Backend::Sqlite => format!("X'{}'", hex::encode(sealed)),
        Backend::Postgres => format!("decode('{}', 'hex')", hex::encode(sealed)),
    };
    let name = bytes(ring.seal_with(1, Field::GUEST_NAME, &guest, b"Lena Legacy")?);
    let email = bytes(ring.seal_with(1, Field::GUEST_EMAIL, &guest, b"lena@example.org")?);
    let notes = bytes(ring.seal_with(1, Field::RESERVATION_NOTES, &reservation, b"old note")?);
    app.execute_sql(&format!(
        "UPDATE guests SET name_sealed = {name}, email_sealed = {email}, data_key = FALSE"
    ))?;
    app.execute_sql(&format!(
        "UPDATE reservations SET notes_sealed = {notes}, key_version = 1"
    ))?;
    app.execute_key_store_sql("DELETE FROM data_keys")?;

    let expected = json!({ "guestName": "Lena Legacy", "guestEmail": "lena@example.org", "notes": "old note" });
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(mine["data"]["reservationByToken"], expected, "{mine}");

    let progress = app.rotate_keys().await?;
    assert_eq!(progress.remaining, 0, "{progress:?}");
    assert_eq!(app.count_rows("guests", "data_key")?, 1);
    assert_eq!(app.count_rows("reservations", "key_version = 0")?, 1);
    let prefix = match backend {
        Backend::Sqlite => "hex(substr(name_sealed, 1, 4))",
        Backend::Postgres => "upper(encode(substring(name_sealed from 1 for 4), 'hex'))",
    };
    assert_eq!(
        app.query_texts(&format!("SELECT {prefix} AS value FROM guests"))?,
        vec!["00000000".to_owned()]
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(mine["data"]["reservationByToken"], expected, "{mine}");

    // From now on an erasure reaches copies of this guest too.
    let copy = app.copy_database().await?;
    app.gql(ERASE, json!({ "t": token })).await?;
    let restored = app.serve_copy(copy).await?;
    let mine = restored.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"],
        json!({ "guestName": "‹erased›", "guestEmail": null, "notes": null }),
        "{mine}"
    );
    Ok(())
}
both_backends!(
    guests_from_before_data_keys_read_and_are_moved_onto_data_keys_by_rotation,
    guests_from_before_data_keys_read_and_are_moved_onto_data_keys_by_rotation
);

/// A data database served with a key store that is not its own (an empty
/// one here) fails loudly instead of showing every guest as erased.
async fn a_wrong_key_store_is_an_error_not_an_erasure(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let token = app
        .book("one-table", 10)
        .guest(json!({ "name": "Kai Keys", "email": "kai@example.org" }))
        .await?
        .token;
    app.execute_key_store_sql("DELETE FROM data_keys")?;
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(kluis_tests::error_code(&mine), Some("INTERNAL"), "{mine}");
    assert!(!mine.to_string().contains("‹erased›"), "{mine}");
    Ok(())
}
both_backends!(
    a_wrong_key_store_is_an_error_not_an_erasure,
    a_wrong_key_store_is_an_error_not_an_erasure
);

/// Card brand and last four go `payment_data_days` (30 by default) after
/// the payment's last refund window closes (the later of the booking's end
/// and the payment's last event), not before; amounts and provider
/// references stay.
async fn card_details_are_dropped_after_the_payment_data_period(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    app.book("one-table", 10)
        .guest(json!({ "name": "Carl Card", "email": "carl@example.org" }))
        .await?;
    app.execute_sql(
        "INSERT INTO payments (id, reservation_id, kind, gateway, provider_reference, \
         amount_minor, currency, refunded_minor, status, failure_reason, card_brand, card_last4, \
         idempotency_key, request_hash, created_at, updated_at) \
         SELECT 'pay-1', id, 'charge', 'stripe', 'pi_canary', 2500, 'EUR', 0, 'succeeded', NULL, \
         'visa', '4242', 'key-1', 'hash-1', created_at, updated_at FROM reservations",
    )?;
    let with_card = "card_brand IS NOT NULL AND card_last4 IS NOT NULL";
    assert_eq!(app.drop_expired_card_details().await?, 0);
    // The booking ends tomorrow: 30 days from now its window has not yet
    // been closed for 30 days.
    app.advance(chrono::Duration::days(30));
    assert_eq!(app.drop_expired_card_details().await?, 0);
    assert_eq!(app.count_rows("payments", with_card)?, 1);
    app.advance(chrono::Duration::days(2));
    assert_eq!(app.drop_expired_card_details().await?, 1);
    assert_eq!(
        app.count_rows("payments", "card_brand IS NULL AND card_last4 IS NULL")?,
        1
    );
    assert_eq!(
        app.count_rows(
            "payments",
            "amount_minor = 2500 AND provider_reference = 'pi_canary' AND status = 'succeeded'"
        )?,
        1
    );
    assert_eq!(app.drop_expired_card_details().await?, 0);
    Ok(())
}
both_backends!(
    card_details_are_dropped_after_the_payment_data_period,
    card_details_are_dropped_after_the_payment_data_period
);

const REQUEST_CODE: &str =
    "mutation R($v: ID!, $e: String!) { requestAccessCode(venueId: $v, email: $e) }";
const REDEEM_CODE: &str = "mutation D($v: ID!, $e: String!, $c: String!) { redeemAccessCode(venueId: $v, email: $e, code: $c) }";
const EXPORT: &str = "mutation E($a: String!) { exportMyData(accessToken: $a) }";

/// The six-digit code in the newest mail.
fn last_code(smtp: &FakeSmtp) -> Result<String> {
    let message = smtp.messages().last().cloned().unwrap_or_default();
    Ok(message
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .context("no six-digit code in the mail")?
        .to_owned())
}

/// Erasing a guest withdraws what the outbox still holds for them (their
/// booking confirmation, with the manage token) and forgets the access
/// codes and access tokens of their address at the venue; another
/// guest's waiting mail is untouched and still leaves.
async fn erasure_withdraws_waiting_mail_and_forgets_access_secrets(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let smtp = FakeSmtp::start(0).await?;
    let address = "wanda.withdrawn@example.org";
    app.book("one-table", 9)
        .guest(json!({ "name": "Wanda Withdrawn", "email": address }))
        .await?;
    let asked = app
        .gql(REQUEST_CODE, json!({ "v": venue, "e": address }))
        .await?;
    assert_eq!(asked["data"]["requestAccessCode"], true, "{asked}");
    assert_eq!(app.deliver_mail(&smtp.url).await?.sent, 2);
    let redeemed = app
        .gql(
            REDEEM_CODE,
            json!({ "v": venue, "e": address, "c": last_code(&smtp)? }),
        )
        .await?;
    let access = text(&redeemed, "/data/redeemAccessCode")?;
    // A second code, live when the guest is erased.
    app.gql(REQUEST_CODE, json!({ "v": venue, "e": address }))
        .await?;
    assert_eq!(app.count_rows("access_codes", "used_at IS NULL")?, 1);

    // A second booking of hers and one of someone else, both confirmations
    // still waiting when she asks to be erased.
    let hers = app
        .book("one-table", 11)
        .guest(json!({ "name": "Wanda Withdrawn", "email": address }))
        .await?
        .token;
    app.book("one-table", 13)
        .guest(json!({ "name": "Otto Other", "email": "otto.other@example.org" }))
        .await?;
    assert_eq!(
        app.count_rows(
            "outbox",
            "purpose = 'booking_confirmation' AND status = 'pending'"
        )?,
        2
    );
    let erased = app.gql(ERASE, json!({ "t": hers })).await?;
    assert_eq!(
        erased["data"]["eraseMyData"]["alreadyErased"], false,
        "{erased}"
    );

    // Her confirmation is withdrawn, its content gone; Otto's waits.
    assert_eq!(
        app.count_rows(
            "outbox",
            "purpose = 'booking_confirmation' AND status = 'withdrawn'"
        )?,
        1
    );
    let empty = match backend {
        Backend::Sqlite => "length(message_sealed) = 0",
        Backend::Postgres => "octet_length(message_sealed) = 0",
    };
    assert_eq!(
        app.count_rows("outbox", &format!("status = 'withdrawn' AND {empty}"))?,
        1
    );
    assert_eq!(
        app.count_rows(
            "outbox",
            "purpose = 'booking_confirmation' AND status = 'pending'"
        )?,
        1
    );
    // The address's codes and its access token are gone.
    assert_eq!(app.count_rows("access_codes", "1 = 1")?, 0);
    assert_eq!(app.count_rows("guest_access_grants", "1 = 1")?, 0);
    let export = app.gql(EXPORT, json!({ "a": access })).await?;
    assert_eq!(error_code(&export), Some("NOT_FOUND"), "{export}");

    // What still leaves: Otto's confirmation and the second code's mail
    // (it names no guest, and goes when its code expires); never her
    // withdrawn confirmation.
    let delivered = app.deliver_mail(&smtp.url).await?;
    assert_eq!((delivered.sent, delivered.failed), (2, 0));
    assert!(
        !smtp.messages().iter().any(|m| m.contains(&hers)),
        "the withdrawn confirmation was sent"
    );
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.contains("Otto") || m.contains("otto.other@example.org")),
        "the other guest's confirmation did not leave"
    );
    Ok(())
}
both_backends!(
    erasure_withdraws_waiting_mail_and_forgets_access_secrets,
    erasure_withdraws_waiting_mail_and_forgets_access_secrets
);

/// An access code mail that has not left by the time its code expires is
/// destroyed unsent by the purge, instead of being retried for a day with
/// the address in it; a worker never sends it late even before the purge.
async fn an_access_code_mail_is_destroyed_once_its_code_expires(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let address = "late.code@example.org";
    app.book("one-table", 9)
        .guest(json!({ "name": "Late Code", "email": address }))
        .await?;
    let smtp = FakeSmtp::start(0).await?;
    assert_eq!(app.deliver_mail(&smtp.url).await?.sent, 1);
    app.gql(REQUEST_CODE, json!({ "v": venue, "e": address }))
        .await?;
    assert_eq!(
        app.count_rows("outbox", "purpose = 'access_code' AND status = 'pending'")?,
        1
    );
    app.advance(chrono::Duration::minutes(16));
    // Due, but past its use: not claimed.
    let late = app.deliver_mail(&smtp.url).await?;
    assert_eq!((late.sent, late.failed), (0, 0));
    assert_eq!(smtp.messages().len(), 1);
    let purged = app.purge_expired().await?;
    assert_eq!(purged.stale_messages, 1, "{purged:?}");
    let empty = match backend {
        Backend::Sqlite => "length(message_sealed) = 0",
        Backend::Postgres => "octet_length(message_sealed) = 0",
    };
    assert_eq!(
        app.count_rows(
            "outbox",
            &format!("purpose = 'access_code' AND status = 'discarded' AND {empty}")
        )?,
        1
    );
    // Booking confirmations have no such limit.
    assert_eq!(
        app.count_rows(
            "outbox",
            "discard_after IS NOT NULL AND purpose <> 'access_code'"
        )?,
        0
    );
    Ok(())
}
both_backends!(
    an_access_code_mail_is_destroyed_once_its_code_expires,
    an_access_code_mail_is_destroyed_once_its_code_expires
);
