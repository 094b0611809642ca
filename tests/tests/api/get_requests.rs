//! GET `/graphql` runs public lookups only; anything that could put a
//! token or a personal value into a URL (and so into browser history,
//! proxy logs and `Referer`) is refused with 405 and told to use POST. And
//! kluis's own logs never hold a query string, a token or an address,
//! however they were sent.

use anyhow::Result;
use kluis_tests::{Backend, TestApp, assert_absent, both_backends, captured_logs};
use serde_json::{Value, json};

async fn get(app: &TestApp, query: &str, variables: Option<Value>) -> Result<(u16, String, Value)> {
    let mut params = vec![("query", query.to_owned())];
    if let Some(variables) = variables {
        params.push(("variables", variables.to_string()));
    }
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&params)
        .send()
        .await?;
    let status = response.status().as_u16();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, allow, response.json().await?))
}

/// Refused with 405, `Allow: POST` and a GraphQL error that says so.
async fn assert_refused(app: &TestApp, query: &str, variables: Option<Value>) -> Result<()> {
    let (status, allow, answer) = get(app, query, variables).await?;
    assert_eq!(status, 405, "{query}: {answer}");
    assert_eq!(allow, "POST", "{query}");
    let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("POST"), "{query}: {answer}");
    assert!(answer.get("data").is_none_or(Value::is_null), "{answer}");
    Ok(())
}

async fn public_lookups_run_and_everything_else_is_refused(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;

    let (status, _, answer) = get(
        &app,
        "query V($s: String!) { venueBySlug(slug: $s) { id name } __typename }",
        Some(json!({ "s": "one-table" })),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["venueBySlug"]["id"], venue, "{answer}");
    let (status, _, answer) = get(&app, "{ venues(first: 1) { totalCount } }", None).await?;
    assert_eq!(status, 200, "{answer}");

    let booked = app.book("one-table", 10).await?;
    for (query, variables) in [
        ("mutation { logout }", None),
        (
            "query R($id: ID!) { reservation(id: $id) { id } }",
            Some(json!({ "id": booked.id })),
        ),
        (
            "{ venues { totalCount } reservation(id: \"x\") { id } }",
            None,
        ),
        (
            "query A { ...F } fragment F on Query { reservation(id: \"x\") { id } }",
            None,
        ),
        (
            "{ venueBySlug(slug: \"one-table\", manageToken: \"x\") { id } }",
            None,
        ),
        (
            "query V($manageToken: String) { venueBySlug(slug: \"one-table\") { id } }",
            None,
        ),
        (
            "query V($s: String!) { venueBySlug(slug: $s) { id } }",
            Some(json!({ "s": booked.token })),
        ),
        (
            "query V($s: String!) { venueBySlug(slug: $s) { id } }",
            Some(json!({ "s": "someone@example.org" })),
        ),
        (
            "query V($s: String!) { venueBySlug(slug: $s) { id } }",
            Some(json!({ "s": "one-table", "email": "x" })),
        ),
        ("{ venues { totalCount } ", None),
        ("", None),
    ] {
        assert_refused(&app, query, variables).await?;
    }
    // Variables that are not JSON, and a query string that is not one.
    let (status, _, _) = get(
        &app,
        "query V($s: String!) { venueBySlug(slug: $s) { id } }",
        None,
    )
    .await?;
    assert_eq!(status, 200, "a missing variable is the schema's to report");
    let garbage = app
        .client
        .get(format!("{}/graphql?query=%ZZ&variables=%7B", app.address))
        .send()
        .await?;
    assert_eq!(garbage.status().as_u16(), 405);
    // An oversized slug is the schema's to refuse, not a crash.
    let huge = format!("{{ venueBySlug(slug: \"{}\") {{ id }} }}", "a".repeat(6000));
    let (status, _, answer) = get(&app, &huge, None).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        kluis_tests::error_code(&answer),
        Some("BAD_USER_INPUT"),
        "{answer}"
    );
    Ok(())
}
both_backends!(
    public_lookups_run_and_everything_else_is_refused,
    public_lookups_run_and_everything_else_is_refused
);

/// A manage token and an e-mail address sent over GET (refused) and over
/// POST (in the header, the variables, even as an operation name) never
/// reach kluis's logs.
async fn tokens_and_addresses_never_reach_the_logs(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let tag = uuid_like();
    let email = format!("canary-{tag}@example.org");
    let booked = app
        .book("one-table", 11)
        .guest(json!({ "name": format!("Canary {tag}"), "email": email }))
        .await?;
    let token = booked.token.clone();

    let lookup = "query V($s: String!) { venueBySlug(slug: $s) { id } }";
    assert_refused(&app, lookup, Some(json!({ "s": token }))).await?;
    assert_refused(&app, lookup, Some(json!({ "s": email }))).await?;
    assert_refused(
        &app,
        &format!("{{ venueBySlug(slug: \"{email}\") {{ id }} }}"),
        None,
    )
    .await?;
    let _answer = app
        .client
        .get(format!(
            "{}/graphql?query=%7B%20venues%20%7B%20totalCount%20%7D%20%7D&token={token}&email={email}",
            app.address
        ))
        .send()
        .await?;

    let _answer = app
        .gql_as(&token, "{ venues(first: 1) { totalCount } }", json!({}))
        .await?;
    let _answer = app.gql(lookup, json!({ "s": email })).await?;
    let _answer = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(
            &json!({ "query": format!("query {token} {{ __typename }}"), "operationName": token }),
        )
        .send()
        .await?;
    let _answer = app
        .client
        .post(format!(
            "{}/graphql?token={token}&email={email}",
            app.address
        ))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;

    let logs = captured_logs();
    assert!(!logs.is_empty(), "no logs were captured");
    assert_absent(&logs, &token, "the logs");
    assert_absent(&logs, token.trim_start_matches("kmt_"), "the logs");
    assert_absent(&logs, &email, "the logs");
    assert_absent(&logs, &tag, "the logs");
    assert_absent(&logs, "query=", "the logs");
    Ok(())
}
both_backends!(
    tokens_and_addresses_never_reach_the_logs,
    tokens_and_addresses_never_reach_the_logs
);

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}{:x}", std::process::id())
}
