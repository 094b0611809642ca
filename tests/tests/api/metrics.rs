use anyhow::Result;
use kluis_tests::{Backend, CREATE, Options, TestApp, both_backends, guest, new_key, tomorrow_at};
use serde_json::json;

async fn scrape(app: &TestApp, base: &str, token: Option<&str>) -> Result<(u16, String)> {
    let mut request = app.client.get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// In production `/metrics` needs its token; it then shows requests per
/// operation, errors by code, alerts by rule, pool usage and the outbox
/// backlog. Every GraphQL answer carries a request id.
async fn metrics_need_their_token_and_count_what_happens(backend: Backend) -> Result<()> {
    let token: api::config::SecretSetting = serde_json::from_value(json!("scrape-secret"))?;
    let monitoring = api::config::Monitoring {
        failed_logins_per_address: 1,
        ..api::config::Monitoring::default()
    };
    let app = TestApp::spawn_with(
        backend,
        Options {
            metrics_token: Some(token),
            monitoring,
            ..Options::default()
        },
    )
    .await?;
    let (status, _) = scrape(&app, &app.address, None).await?;
    assert_eq!(status, 401);
    let (status, _) = scrape(&app, &app.address, Some("wrong")).await?;
    assert_eq!(status, 401);

    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "query Ping { __typename }", "operationName": "Ping" }))
        .send()
        .await?;
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(request_id.len(), 32, "a request id: {request_id:?}");
    app.gql("{ noSuchField }", json!({})).await?;
    app.gql(
        "mutation { login(input: { email: \"nobody@example.org\", password: \"wrong\" }) { token } }",
        json!({}),
    )
    .await?;

    // A booking with an e-mail queues its confirmation: production without
    // SMTP keeps it waiting, and the backlog shows it.
    let venue = app.venue_id("one-table").await?;
    let booked = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2, "guest": guest(), "idempotencyKey": new_key() } }))
        .await?;
    assert!(booked["errors"].is_null(), "{booked}");

    let (status, text) = scrape(&app, &app.address, Some("scrape-secret")).await?;
    assert_eq!(status, 200, "{text}");
    for expected in [
        "kluis_graphql_requests_total{operation=\"Ping\"} 1",
        "kluis_graphql_errors_total{code=\"BAD_USER_INPUT\"}",
        "kluis_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1",
        "kluis_alerts_total{rule=\"failed_logins_address\"} 1",
        "kluis_graphql_request_duration_seconds_bucket{operation=\"Ping\"",
        "kluis_pool_max_connections 8",
        "kluis_outbox_backlog{kind=\"email\"} 1",
        "kluis_outbox_backlog{kind=\"webhook\"} 0",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    Ok(())
}
both_backends!(
    metrics_need_their_token_and_count_what_happens,
    metrics_need_their_token_and_count_what_happens
);

/// With `metrics_bind`, `/metrics` lives on that address only, and that
/// address serves nothing else; production without either is closed.
#[tokio::test]
async fn metrics_can_be_kept_to_their_own_address() -> Result<()> {
    let closed = TestApp::spawn(Backend::Sqlite).await?;
    let (status, _) = scrape(&closed, &closed.address, None).await?;
    assert_eq!(status, 404, "production without a token or address");

    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            metrics_bind: Some("127.0.0.1:0".to_owned()),
            ..Options::default()
        },
    )
    .await?;
    let internal = app
        .metrics_address
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metrics listener"))?;
    let (status, _) = scrape(&app, &app.address, None).await?;
    assert_eq!(status, 404, "not on the public listener");
    let (status, text) = scrape(&app, &internal, None).await?;
    assert_eq!(status, 200);
    assert!(text.contains("kluis_pool_connections"), "{text}");
    let graphql = app
        .client
        .post(format!("{internal}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    assert_eq!(graphql.status().as_u16(), 404, "metrics only");
    Ok(())
}
