use anyhow::{Context as _, Result};
use kluis_tests::{
    Backend, CREATE, TestApp, assert_absent, both_backends, error_code, guest, new_key, tomorrow_at,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SET: &str = "mutation W($v: ID!, $url: String!) { setVenueWebhook(venueId: $v, url: $url) { url secret createdAt } }";

async fn set_webhook(app: &TestApp, as_token: &str, venue: &str, url: &str) -> Result<Value> {
    app.gql_as(as_token, SET, json!({ "v": venue, "url": url }))
        .await
}

/// The bodies and signature headers the receiver got, in order.
async fn received(server: &MockServer) -> Result<Vec<(Value, String, String)>> {
    let requests = server
        .received_requests()
        .await
        .context("recording is on")?;
    requests
        .iter()
        .map(|request| {
            let header = |name: &str| {
                request
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            Ok((
                serde_json::from_slice(&request.body)?,
                header("kluis-signature"),
                header("kluis-event-id"),
            ))
        })
        .collect()
}

/// A manager points the venue's webhook at a receiver and gets the secret
/// once; bookings made, changed and cancelled reach it as signed JSON with
/// ids and times only, and the guest's name and e-mail appear neither in
/// the messages nor in the database.
async fn booking_events_reach_the_venue_signed_and_without_personal_data(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/kluis"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let url = format!("{}/kluis", receiver.uri());
    let set = set_webhook(&app, &manager, &venue, &url).await?;
    let secret = set["data"]["setVenueWebhook"]["secret"]
        .as_str()
        .context("a secret")?
        .to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{set}");
    let shown = app
        .gql_as(
            &manager,
            "query Q($v: ID!) { venueWebhook(venueId: $v) { url createdAt } }",
            json!({ "v": venue }),
        )
        .await?;
    assert_eq!(
        shown["data"]["venueWebhook"]["url"],
        url.as_str(),
        "{shown}"
    );
    assert_absent(&app.raw_database()?, &secret, "the database");

    let created = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2,
                "guest": { "name": "Wanda Webhook", "email": "wanda.webhook@example.org" } },
                "key": new_key() }),
        )
        .await?;
    let id = created["data"]["createReservation"]["reservation"]["id"]
        .as_str()
        .with_context(|| format!("{created}"))?
        .to_owned();
    let token = created["data"]["createReservation"]["manageToken"].clone();
    let modified = app
        .gql(
            "mutation M($id: ID!, $t: String!, $key: String!) { modifyReservation(id: $id, manageToken: $t, input: { partySize: 3 }, idempotencyKey: $key) { partySize } }",
            json!({ "id": id, "t": token, "key": new_key() }),
        )
        .await?;
    assert_eq!(
        modified["data"]["modifyReservation"]["partySize"], 3,
        "{modified}"
    );
    let cancelled = app
        .gql(
            "mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(id: $id, manageToken: $t, idempotencyKey: $key) { status } }",
            json!({ "id": id, "t": token, "key": new_key() }),
        )
        .await?;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["status"],
        "CANCELLED"
    );

    let pass = app.deliver_webhooks().await?;
    assert_eq!((pass.sent, pass.failed), (3, 0));
    let messages = received(&receiver).await?;
    let types: Vec<&str> = messages
        .iter()
        .filter_map(|(body, _, _)| body["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "reservation.created",
            "reservation.changed",
            "reservation.cancelled"
        ]
    );
    let now = app.now().timestamp();
    for (body, signature, event_id) in &messages {
        let raw = serde_json::to_vec(body)?;
        assert!(
            domain::webhooks::verify(secret.as_bytes(), signature, &raw, now),
            "{signature} does not sign {body}"
        );
        assert!(!domain::webhooks::verify(
            b"whsec_other",
            signature,
            &raw,
            now
        ));
        assert_eq!(body["id"].as_str(), Some(event_id.as_str()));
        assert_eq!(body["data"]["reservation_id"], id.as_str());
        assert_eq!(body["data"]["venue_id"], venue.as_str());
        let text = body.to_string();
        assert!(!text.contains("Wanda") && !text.contains("wanda"), "{text}");
    }
    assert_eq!(messages[1].0["data"]["party_size"], 3);
    assert_eq!(messages[2].0["data"]["status"], "cancelled");
    let database = app.raw_database()?;
    assert_absent(&database, "Wanda Webhook", "the database");
    assert_absent(&database, "wanda.webhook@example.org", "the database");

    let again = app.deliver_webhooks().await?;
    assert_eq!((again.sent, again.failed), (0, 0), "each event leaves once");
    Ok(())
}
both_backends!(
    booking_events_reach_the_venue_signed_and_without_personal_data,
    booking_events_reach_the_venue_signed_and_without_personal_data
);

/// A receiver that is down: the event waits and is retried after the
/// backoff, then delivered; nothing is lost. A venue that removed its
/// webhook has its waiting events given up, not sent elsewhere.
async fn a_receiver_that_is_down_gets_the_event_later(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let admin = app.staff("admin", None).await?;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    set_webhook(&app, &admin, &venue, &receiver.uri()).await?;
    let created = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(9), "partySize": 2, "guest": guest() }, "key": new_key() }))
        .await?;
    assert!(created["errors"].is_null(), "{created}");

    let first = app.deliver_webhooks().await?;
    assert_eq!((first.sent, first.failed), (0, 1), "the receiver said 503");
    let too_soon = app.deliver_webhooks().await?;
    assert_eq!((too_soon.sent, too_soon.failed), (0, 0), "backoff first");
    app.advance(chrono::Duration::seconds(31));
    let second = app.deliver_webhooks().await?;
    assert_eq!((second.sent, second.failed), (1, 0));
    let messages = received(&receiver).await?;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].2, messages[1].2, "the same event id, retried");
    let reason = app
        .query_texts("SELECT last_error AS value FROM outbox WHERE kind = 'webhook'")?
        .join(" ");
    assert!(reason.contains("503"), "{reason}");

    // Removed while an event waits: the event is given up.
    app.gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(12), "partySize": 2, "guest": guest() }, "key": new_key() }))
        .await?;
    let removed = app
        .gql_as(
            &admin,
            "mutation R($v: ID!) { removeVenueWebhook(venueId: $v) }",
            json!({ "v": venue }),
        )
        .await?;
    assert_eq!(removed["data"]["removeVenueWebhook"], true, "{removed}");
    let pass = app.deliver_webhooks().await?;
    assert_eq!((pass.sent, pass.failed), (0, 1));
    assert_eq!(app.count_rows("outbox", "status = 'dead'")?, 1);
    assert_eq!(received(&receiver).await?.len(), 2, "nothing more was sent");

    // Without a webhook, bookings queue no events at all.
    app.gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(15), "partySize": 2, "guest": guest() }, "key": new_key() }))
        .await?;
    assert_eq!(app.count_rows("outbox", "kind = 'webhook'")?, 2);
    Ok(())
}
both_backends!(
    a_receiver_that_is_down_gets_the_event_later,
    a_receiver_that_is_down_gets_the_event_later
);

/// Plain http to another machine, credentials in the URL, an unknown
/// venue, and staff below manager are all refused.
async fn webhook_settings_are_checked(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    for url in [
        "http://hooks.example.com/kluis",
        "https://user:secret@hooks.example.com/",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let answer = set_webhook(&app, &manager, &venue, url).await?;
        assert_eq!(
            error_code(&answer),
            Some("BAD_USER_INPUT"),
            "{url}: {answer}"
        );
    }
    let answer = set_webhook(&app, &staff, &venue, "https://hooks.example.com/").await?;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    let elsewhere = app.venue_id("lunch-room").await?;
    let answer = set_webhook(&app, &manager, &elsewhere, "https://hooks.example.com/").await?;
    assert_eq!(
        error_code(&answer),
        Some("NOT_FOUND"),
        "another venue is not probed: {answer}"
    );
    let admin = app.staff("admin", None).await?;
    let answer = set_webhook(
        &app,
        &admin,
        "00000000-0000-4000-8000-000000000000",
        "https://hooks.example.com/",
    )
    .await?;
    assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    let answer = set_webhook(&app, &manager, &venue, "https://hooks.example.com/k").await?;
    assert!(answer["errors"].is_null(), "{answer}");
    Ok(())
}
both_backends!(webhook_settings_are_checked, webhook_settings_are_checked);
