use anyhow::Result;
use api::config::Environment;
use kluis_tests::{Backend, Options, TestApp, error_code};
use serde_json::{Value, json};

async fn production() -> Result<TestApp> {
    TestApp::spawn(Backend::Sqlite).await
}

async fn development() -> Result<TestApp> {
    TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            env: Environment::Development,
            ..Options::default()
        },
    )
    .await
}

fn first_message(answer: &Value) -> String {
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn health_and_readiness_answer() -> Result<()> {
    let app = production().await?;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    Ok(())
}

#[tokio::test]
async fn more_than_fifteen_aliases_are_refused() -> Result<()> {
    let app = production().await?;
    let fields = |n: usize| {
        (0..n)
            .map(|i| format!("a{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ok = app.gql(&format!("{{ {} }}", fields(14)), json!({})).await?;
    assert!(ok.get("errors").is_none(), "{ok}");
    let refused = app.gql(&format!("{{ {} }}", fields(16)), json!({})).await?;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    assert!(
        first_message(&refused).contains("too many aliases"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn more_than_fifty_directives_are_refused() -> Result<()> {
    let app = production().await?;
    let directives = " @include(if: true)".repeat(51);
    let refused = app
        .gql(&format!("{{ __typename{directives} }}"), json!({}))
        .await?;
    assert!(
        first_message(&refused).contains("too many directives"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn deep_queries_are_refused() -> Result<()> {
    // Introspection, off in production, is held to the ordinary limit
    // there; in development it has one of its own (`graphiql::`).
    let app = production().await?;
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    let refused = app.gql(deep, json!({})).await?;
    assert!(
        first_message(&refused).contains("nested too deep"),
        "{refused}"
    );
    // No schema type nests eleven deep, so these fields are made up: depth
    // is judged before the fields are.
    for app in [app, development().await?] {
        let deep =
            "{ venues { edges { node { resources { a { b { c { d { e { f { g } } } } } } } } } } }";
        let refused = app.gql(deep, json!({})).await?;
        assert!(
            first_message(&refused).contains("nested too deep"),
            "{refused}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn expensive_queries_exceed_the_complexity_budget() -> Result<()> {
    let app = production().await?;
    let cheap = app
        .gql(
            "{ venues(first: 100) { edges { node { id name } } } }",
            json!({}),
        )
        .await?;
    assert!(cheap.get("errors").is_none(), "{cheap}");
    let costly = app
        .gql("{ venues(first: 100) { edges { node { id name resources { id name slug kind capacity } } } } }", json!({}))
        .await?;
    assert!(first_message(&costly).contains("too complex"), "{costly}");
    let too_many = app
        .gql(
            "{ venues(first: 101) { edges { node { id } } } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&too_many), Some("BAD_USER_INPUT"), "{too_many}");
    Ok(())
}

#[tokio::test]
async fn oversized_bodies_get_413() -> Result<()> {
    let app = production().await?;
    let padding = " ".repeat(65 * 1024);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ __typename {padding} }}\"}}"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 413);
    Ok(())
}

#[tokio::test]
async fn batched_requests_are_refused() -> Result<()> {
    let app = production().await?;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await?;
    assert!(first_message(&body).contains("batched"), "{body}");
    Ok(())
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() -> Result<()> {
    let app = production().await?;
    let url = format!("{}/graphql", app.address);
    let query = app
        .client
        .get(&url)
        .query(&[("query", "{ __typename }")])
        .send()
        .await?;
    assert_eq!(query.status().as_u16(), 200);
    let body: Value = query.json().await?;
    assert_eq!(body["data"]["__typename"], "Query");
    let mutation = "mutation { cancelReservation(input: { id: \"x\", manageToken: \"kmt_x\", idempotencyKey: \"abcdefgh\" }) { reservation { id } userErrors { code } } }";
    let refused = app
        .client
        .get(&url)
        .query(&[("query", mutation)])
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 405);
    Ok(())
}

#[tokio::test]
async fn production_hides_introspection_suggestions_and_graphiql() -> Result<()> {
    let app = production().await?;
    let introspection = app
        .gql("{ __schema { types { name } } }", json!({}))
        .await?;
    assert!(
        introspection["data"]["__schema"].is_null(),
        "{introspection}"
    );
    let typo = app
        .gql("{ venuez { edges { node { id } } } }", json!({}))
        .await?;
    assert!(!first_message(&typo).contains("Did you mean"), "{typo}");
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await?;
    assert_eq!(page.status().as_u16(), 404);
    Ok(())
}

#[tokio::test]
async fn development_offers_graphiql_and_introspection() -> Result<()> {
    let app = development().await?;
    let introspection = app
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await?;
    assert_eq!(
        introspection["data"]["__schema"]["queryType"]["name"], "Query",
        "{introspection}"
    );
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await?;
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await?.contains("graphiql"));
    Ok(())
}

/// `availability` and the lists in it are charged in advance for what they
/// can return: asking every field of every free resource of every start
/// time is refused before anything is read.
#[tokio::test]
async fn availability_with_every_resource_field_exceeds_the_complexity_budget() -> Result<()> {
    let app = production().await?;
    let venue = app.venue_id("one-table").await?;
    let variables = json!({ "v": venue, "d": kluis_tests::tomorrow() });
    let usual = app
        .gql(
            "query($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt endsAt freeResources { name capacity } } }",
            variables.clone(),
        )
        .await?;
    assert!(usual.get("errors").is_none(), "{usual}");
    let costly = app
        .gql(
            "query($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt endsAt freeResources { id slug name kind capacity } } }",
            variables,
        )
        .await?;
    assert!(first_message(&costly).contains("too complex"), "{costly}");
    Ok(())
}
