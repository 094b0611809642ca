use anyhow::Result;
use kluis_tests::{Backend, FakeSmtp, TestApp, assert_absent, both_backends};

/// A message waits sealed, survives a refusal by the mail server, is
/// retried after the backoff (not before), leaves once, and its content
/// is destroyed when it has left.
async fn the_outbox_retries_with_backoff_and_forgets_what_it_sent(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let smtp = FakeSmtp::start(1).await?;
    let id = app
        .enqueue_mail(
            "olga.outbox@example.org",
            "Your verification code",
            "Dear Olga Outbox, your code is 493817.",
        )
        .await?;
    let database = app.raw_database()?;
    assert_absent(&database, "olga.outbox@example.org", "the database");
    assert_absent(&database, "Olga Outbox", "the database");

    let first = app.deliver_mail(&smtp.url).await?;
    assert_eq!((first.sent, first.failed), (0, 1), "the server said 451");
    assert_eq!(smtp.refusals_left(), 0);
    let status = app.outbox_status(&id).await?;
    let status = status
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no message"))?;
    assert_eq!((status.status.as_str(), status.attempts), ("pending", 1));
    let reason = status.last_error.clone().unwrap_or_default();
    assert!(!reason.is_empty() && !reason.contains("olga"), "{reason}");

    let too_soon = app.deliver_mail(&smtp.url).await?;
    assert_eq!((too_soon.sent, too_soon.failed), (0, 0), "backoff first");
    app.advance(chrono::Duration::seconds(31));
    let second = app.deliver_mail(&smtp.url).await?;
    assert_eq!((second.sent, second.failed), (1, 0));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].contains("olga.outbox@example.org") && messages[0].contains("493817"),
        "{messages:?}"
    );
    let status = app.outbox_status(&id).await?;
    assert_eq!(
        status.map(|s| (s.status, s.has_content)),
        Some(("sent".to_owned(), false))
    );
    app.advance(chrono::Duration::hours(1));
    let again = app.deliver_mail(&smtp.url).await?;
    assert_eq!((again.sent, again.failed), (0, 0), "sent once only");
    assert_eq!(smtp.messages().len(), 1);
    Ok(())
}
both_backends!(
    the_outbox_retries_with_backoff_and_forgets_what_it_sent,
    the_outbox_retries_with_backoff_and_forgets_what_it_sent
);

/// A mail server that never answers: the message is given up after
/// `MAX_ATTEMPTS` and its content destroyed, not kept for ever.
async fn undeliverable_mail_is_given_up_and_destroyed(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("smtp://127.0.0.1:{}", closed.local_addr()?.port());
    drop(closed);
    let id = app
        .enqueue_mail("nobody@example.org", "Breach notice", "Dear Nora Nobody")
        .await?;
    for attempt in 1..=store::MAX_ATTEMPTS {
        let pass = app.deliver_mail(&url).await?;
        assert_eq!(pass.failed, 1, "attempt {attempt}");
        app.advance(chrono::Duration::hours(7));
    }
    let status = app.outbox_status(&id).await?;
    assert_eq!(
        status.map(|s| (s.status, s.attempts, s.has_content)),
        Some(("dead".to_owned(), store::MAX_ATTEMPTS, false))
    );
    let after = app.deliver_mail(&url).await?;
    assert_eq!((after.sent, after.failed), (0, 0));
    Ok(())
}
both_backends!(
    undeliverable_mail_is_given_up_and_destroyed,
    undeliverable_mail_is_given_up_and_destroyed
);

/// A guest with an e-mail address gets a confirmation with their manage
/// token, queued in the booking's own transaction: once per booking, not
/// again when the request is retried with the same idempotency key.
async fn a_booking_with_an_email_is_confirmed_once(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let key = kluis_tests::new_key();
    let input = serde_json::json!({ "input": { "venueId": venue, "startsAt": kluis_tests::tomorrow_at(10), "partySize": 2,
        "guest": { "name": "Connie Confirm", "email": "connie@example.org" }, "idempotencyKey": key } });
    let booked = app.gql(kluis_tests::CREATE, input.clone()).await?;
    let token = booked["data"]["createReservation"]["manageToken"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{booked}"))?
        .to_owned();
    app.gql(kluis_tests::CREATE, input).await?;
    app.gql(kluis_tests::CREATE, serde_json::json!({ "input": { "venueId": venue, "startsAt": kluis_tests::tomorrow_at(12), "partySize": 2,
        "guest": { "name": "Ned Nomail" }, "idempotencyKey": kluis_tests::new_key() } })).await?;
    assert_eq!(
        app.count_rows("outbox", "purpose = 'booking_confirmation'")?,
        1
    );
    assert_absent(&app.raw_database()?, &token, "the database");

    let smtp = FakeSmtp::start(0).await?;
    assert_eq!(app.deliver_mail(&smtp.url).await?.sent, 1);
    let mail = smtp.messages().join("\n");
    assert!(
        mail.contains("connie@example.org") && mail.contains(&token) && mail.contains("2 people"),
        "{mail}"
    );
    Ok(())
}
both_backends!(
    a_booking_with_an_email_is_confirmed_once,
    a_booking_with_an_email_is_confirmed_once
);
