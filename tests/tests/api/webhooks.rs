use anyhow::{Context as _, Result};
use kluis_tests::{
    Backend, Booked, FakeSmtp, Options, TestApp, assert_absent, both_backends, error_code, new_key,
    text, user_errors,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SET: &str = "mutation W($i: SetVenueWebhookInput!) { setVenueWebhook(input: $i) { webhook { url createdAt venue { id } } secret userErrors { field code message } } }";

async fn set_webhook(app: &TestApp, as_token: &str, venue: &str, url: &str) -> Result<Value> {
    app.gql_as(
        as_token,
        SET,
        json!({ "i": { "venueId": venue, "url": url } }),
    )
    .await
}

/// The code and field of `setVenueWebhook`'s first user error.
fn refusal(answer: &Value) -> Option<(String, String)> {
    user_errors(answer, "setVenueWebhook").into_iter().next()
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
    let secret = text(&set, "/data/setVenueWebhook/secret")?;
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

    let Booked { id, token } = app
        .book("one-table", 10)
        .guest(json!({ "name": "Wanda Webhook", "email": "wanda.webhook@example.org" }))
        .await?;
    let modified = app
        .gql(
            "mutation M($id: ID!, $t: String!, $key: String!) { modifyReservation(input: { id: $id, manageToken: $t, partySize: 3, idempotencyKey: $key }) { reservation { partySize } userErrors { code } } }",
            json!({ "id": id, "t": token, "key": new_key() }),
        )
        .await?;
    assert_eq!(
        modified["data"]["modifyReservation"]["reservation"]["partySize"], 3,
        "{modified}"
    );
    let cancelled = app
        .gql(
            "mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(input: { id: $id, manageToken: $t, idempotencyKey: $key }) { reservation { status } userErrors { code } } }",
            json!({ "id": id, "t": token, "key": new_key() }),
        )
        .await?;
    assert_eq!(
        cancelled["data"]["cancelReservation"]["reservation"]["status"],
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
    app.book("one-table", 9).await?;

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
    app.book("one-table", 12).await?;
    let removed = app
        .gql_as(
            &admin,
            "mutation R($i: RemoveVenueWebhookInput!) { removeVenueWebhook(input: $i) { removed userErrors { code } } }",
            json!({ "i": { "venueId": venue } }),
        )
        .await?;
    assert_eq!(
        removed["data"]["removeVenueWebhook"]["removed"], true,
        "{removed}"
    );
    let pass = app.deliver_webhooks().await?;
    assert_eq!((pass.sent, pass.failed), (0, 1));
    assert_eq!(app.count_rows("outbox", "status = 'dead'")?, 1);
    assert_eq!(received(&receiver).await?.len(), 2, "nothing more was sent");

    // Without a webhook, bookings queue no events at all.
    app.book("one-table", 15).await?;
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
            refusal(&answer),
            Some(("input.url".to_owned(), "INVALID".to_owned())),
            "{url}: {answer}"
        );
    }
    let answer = set_webhook(&app, &staff, &venue, "https://hooks.example.com/").await?;
    assert_eq!(error_code(&answer), Some("FORBIDDEN"), "{answer}");
    let elsewhere = app.venue_id("lunch-room").await?;
    let answer = set_webhook(&app, &manager, &elsewhere, "https://hooks.example.com/").await?;
    assert_eq!(
        refusal(&answer),
        Some(("input.venueId".to_owned(), "NOT_FOUND".to_owned())),
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
    assert_eq!(
        refusal(&answer),
        Some(("input.venueId".to_owned(), "NOT_FOUND".to_owned())),
        "{answer}"
    );
    let answer = set_webhook(&app, &manager, &venue, "https://hooks.example.com/k").await?;
    assert!(answer["errors"].is_null(), "{answer}");
    assert_eq!(refusal(&answer), None, "{answer}");
    assert_eq!(
        answer["data"]["setVenueWebhook"]["webhook"]["venue"]["id"],
        json!(venue),
        "{answer}"
    );
    // Both fields wrong at once: both are named; another venue's removal
    // reads as an unknown one.
    let both = set_webhook(&app, &manager, &elsewhere, "ftp://x/").await?;
    assert_eq!(
        user_errors(&both, "setVenueWebhook"),
        [
            ("input.venueId".to_owned(), "NOT_FOUND".to_owned()),
            ("input.url".to_owned(), "INVALID".to_owned())
        ],
        "{both}"
    );
    let oversized = set_webhook(
        &app,
        &manager,
        &venue,
        &format!("https://hooks.example.com/{}", "a".repeat(5_000)),
    )
    .await?;
    assert_eq!(
        refusal(&oversized),
        Some(("input.url".to_owned(), "INVALID".to_owned())),
        "{oversized}"
    );
    let remove = "mutation R($i: RemoveVenueWebhookInput!) { removeVenueWebhook(input: $i) { removed userErrors { field code } } }";
    let removed = app
        .gql_as(&manager, remove, json!({ "i": { "venueId": elsewhere } }))
        .await?;
    assert_eq!(
        user_errors(&removed, "removeVenueWebhook"),
        [("input.venueId".to_owned(), "NOT_FOUND".to_owned())],
        "{removed}"
    );
    Ok(())
}
both_backends!(webhook_settings_are_checked, webhook_settings_are_checked);

const PING: &str = "query Q($v: ID!) { venueWebhook(venueId: $v) { url } }";

/// A server whose operator has not opted in to private targets.
async fn without_private_targets(backend: Backend) -> Result<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            outbound: api::config::Outbound {
                allow_private_targets: false,
            },
            ..Options::default()
        },
    )
    .await
}

/// A manager cannot point the venue's webhook into the network the nodes
/// run in (loopback, link-local and metadata, private, carrier NAT, by
/// address or by a name that is internal by definition): each is refused
/// as bad input naming the field, and nothing is stored. A public name is
/// accepted.
async fn webhooks_into_the_internal_network_are_refused_when_set(backend: Backend) -> Result<()> {
    let app = without_private_targets(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    for url in [
        "http://127.0.0.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://[fd00:ec2::254]/",
        "https://100.100.100.200/",
        "https://192.168.0.10/",
        "https://[::ffff:127.0.0.1]/",
        "https://2130706433/",
        "http://localhost:8080/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
    ] {
        let refused = set_webhook(&app, &manager, &venue, url).await?;
        assert_eq!(
            refusal(&refused),
            Some(("input.url".to_owned(), "INVALID".to_owned())),
            "{url}: {refused}"
        );
        let message = refused["data"]["setVenueWebhook"]["userErrors"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.starts_with("url: ") && message.contains("private network"),
            "{url}: {refused}"
        );
    }
    let stored = app.gql_as(&manager, PING, json!({ "v": venue })).await?;
    assert!(stored["data"]["venueWebhook"].is_null(), "{stored}");
    let public = set_webhook(&app, &manager, &venue, "https://hooks.example.com/kluis").await?;
    assert!(
        public["data"]["setVenueWebhook"]["secret"].is_string(),
        "{public}"
    );
    Ok(())
}
both_backends!(
    webhooks_into_the_internal_network_are_refused_when_set,
    webhooks_into_the_internal_network_are_refused_when_set
);

/// With `[outbound] allow_private_targets` (development, and this test
/// harness) the same targets are accepted; `http://` stays limited to
/// this machine.
async fn the_opt_in_lets_webhooks_point_inside(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    for url in [
        "http://127.0.0.1/",
        "http://[::1]/",
        "https://169.254.169.254/",
        "https://10.0.0.1/",
    ] {
        let set = set_webhook(&app, &manager, &venue, url).await?;
        assert_eq!(
            set["data"]["setVenueWebhook"]["webhook"]["url"], url,
            "{set}"
        );
    }
    let plain = set_webhook(&app, &manager, &venue, "http://10.0.0.1/").await?;
    assert_eq!(
        refusal(&plain),
        Some(("input.url".to_owned(), "INVALID".to_owned())),
        "{plain}"
    );
    Ok(())
}
both_backends!(
    the_opt_in_lets_webhooks_point_inside,
    the_opt_in_lets_webhooks_point_inside
);

/// Stores an endpoint as if it had been accepted earlier (a name that
/// resolved outside then, or a URL set while private targets were allowed).
async fn store_endpoint(app: &TestApp, venue: &str, url: &str) -> Result<()> {
    let store = app.store().await?;
    let venue = domain::VenueId::parse(venue)?;
    let url = url.to_owned();
    let now = app.now();
    tokio::task::spawn_blocking(move || store.set_venue_webhook(venue, &url, now)).await??;
    Ok(())
}

/// A message is checked again when it leaves: a name that now resolves to
/// 127.0.0.1 (DNS rebinding) or a stored loopback address is refused at
/// send time, without any connection; the message is given up (dead, not
/// retried) and neither the reason nor the log holds the URL's secret
/// parts. The same delivery with the opt-in on reaches the receiver, so
/// the refusal is the check's doing.
async fn a_webhook_whose_name_resolves_inside_is_refused_when_sent(backend: Backend) -> Result<()> {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let port = receiver.address().port();
    let rebound = format!("http://hooks.rebind.test:{port}/kluis?token=tok-rebind-4417");
    let names = [("hooks.rebind.test", "127.0.0.1")];

    let app = without_private_targets(backend).await?;
    let venue = app.venue_id("one-table").await?;
    for url in [
        rebound.clone(),
        format!("http://127.0.0.1:{port}/kluis?token=tok-rebind-4417"),
    ] {
        store_endpoint(&app, &venue, &url).await?;
        let id = app.enqueue_webhook(&venue).await?;
        let pass = app.deliver_webhooks_resolving(&names).await?;
        assert_eq!((pass.sent, pass.failed), (0, 1), "{url}");
        let status = app
            .outbox_status(&id)
            .await?
            .context("the message is kept as given up")?;
        assert_eq!(status.status, "dead", "{url}: {status:?}");
        assert_eq!(status.attempts, 1);
        let reason = status.last_error.unwrap_or_default();
        assert!(reason.contains("loopback"), "{reason}");
        assert!(
            !reason.contains("tok-rebind") && !reason.contains("rebind.test"),
            "{reason}"
        );
        app.advance(chrono::Duration::hours(7));
        let again = app.deliver_webhooks_resolving(&names).await?;
        assert_eq!((again.sent, again.failed), (0, 0), "not retried");
    }
    assert!(
        receiver
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert_absent(&kluis_tests::captured_logs(), "tok-rebind-4417", "the logs");

    let allowed = TestApp::spawn(backend).await?;
    let venue = allowed.venue_id("one-table").await?;
    store_endpoint(&allowed, &venue, &rebound).await?;
    allowed.enqueue_webhook(&venue).await?;
    let pass = allowed.deliver_webhooks_resolving(&names).await?;
    assert_eq!((pass.sent, pass.failed), (1, 0));
    assert_eq!(
        receiver.received_requests().await.unwrap_or_default().len(),
        1
    );
    Ok(())
}
both_backends!(
    a_webhook_whose_name_resolves_inside_is_refused_when_sent,
    a_webhook_whose_name_resolves_inside_is_refused_when_sent
);

/// The mail server's name is checked when a message leaves, too: one that
/// resolves to loopback gets no connection and the message is given up.
async fn a_mail_server_whose_name_resolves_inside_is_refused_when_sent(
    backend: Backend,
) -> Result<()> {
    let smtp = FakeSmtp::start(1).await?;
    let rebound = smtp.url.replace("127.0.0.1", "mail.rebind.test");
    let names = [("mail.rebind.test", "127.0.0.1")];
    let app = without_private_targets(backend).await?;
    let id = app
        .enqueue_mail("rita.rebind@example.org", "Your code", "Dear Rita, 551234")
        .await?;
    let pass = app.deliver_mail_resolving(&rebound, &names).await?;
    assert_eq!((pass.sent, pass.failed), (0, 1));
    assert_eq!(smtp.refusals_left(), 1, "no connection was made");
    assert!(smtp.messages().is_empty());
    let status = app.outbox_status(&id).await?.context("kept as given up")?;
    assert_eq!(status.status, "dead", "{status:?}");
    assert!(
        status
            .last_error
            .unwrap_or_default()
            .contains("smtp_url: the receiver is a loopback"),
    );

    let allowed = TestApp::spawn(backend).await?;
    allowed
        .enqueue_mail("rita.rebind@example.org", "Your code", "Dear Rita, 551234")
        .await?;
    let refused_once = allowed.deliver_mail_resolving(&rebound, &names).await?;
    assert_eq!(
        (refused_once.sent, refused_once.failed),
        (0, 1),
        "the fake says 451 first"
    );
    allowed.advance(chrono::Duration::seconds(31));
    let pass = allowed.deliver_mail_resolving(&rebound, &names).await?;
    assert_eq!((pass.sent, pass.failed), (1, 0));
    assert_eq!(smtp.messages().len(), 1);
    Ok(())
}
both_backends!(
    a_mail_server_whose_name_resolves_inside_is_refused_when_sent,
    a_mail_server_whose_name_resolves_inside_is_refused_when_sent
);
