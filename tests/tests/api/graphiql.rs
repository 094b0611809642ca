//! GraphiQL in development: a page that loads everything from the server
//! itself, and the introspection it needs, without loosening the depth
//! limit for anything else.

use anyhow::Result;
use api::config::Environment;
use kluis_tests::{Backend, Options, TestApp};
use serde_json::{Value, json};

/// The query GraphiQL, Apollo and graphql-codegen send, as graphql-js 16's
/// `getIntrospectionQuery` writes it with every option on.
const INTROSPECTION_QUERY: &str = include_str!("introspection.graphql");

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

fn first_message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The values of every `src` and `href` attribute in the page.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=", "href="] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            if let Some(value) = rest[1..].split(quote).next() {
                found.push(value.to_owned());
            }
        }
    }
    found
}

#[tokio::test]
async fn the_graphiql_page_loads_everything_from_the_server() -> Result<()> {
    let app = development().await?;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let page = response.text().await?;
    assert!(page.contains("graphiql"), "{page}");
    // No address of another host, with or without a scheme.
    for other_host in ["http://", "https://", "\"//", "'//"] {
        assert!(!page.contains(other_host), "{other_host} in {page}");
    }
    let references = references(&page);
    assert!(
        references.iter().any(|path| path.ends_with(".js"))
            && references.iter().any(|path| path.ends_with(".css")),
        "{references:?}"
    );
    for path in &references {
        assert!(
            path.starts_with("/graphiql/assets/"),
            "{path} is not one of the server's assets"
        );
        let asset = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await?;
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        let content_type = asset
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
        let nosniff = asset
            .headers()
            .get("x-content-type-options")
            .and_then(|value| value.to_str().ok());
        assert_eq!(nosniff, Some("nosniff"), "{path}");
        let cache = asset
            .headers()
            .get("cache-control")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(!cache.is_empty(), "{path} has no Cache-Control");
        let body = asset.text().await?;
        assert!(!body.is_empty(), "{path}");
        if path.ends_with(".css") {
            // Fonts and icons travel inside the stylesheet.
            for (at, _) in body.match_indices("url(") {
                let target = body[at + 4..].trim_start_matches(['"', '\'']);
                assert!(target.starts_with("data:"), "{path}: url({target:.40}");
            }
        }
    }
    let vendored = references
        .iter()
        .find(|path| path.contains("graphiql-") && path.ends_with(".js"))
        .map_or("", String::as_str);
    let cache = app
        .client
        .get(format!("{}{vendored}", app.address))
        .send()
        .await?
        .headers()
        .get("cache-control")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cache.contains("max-age=31536000"), "{vendored}: {cache}");
    let missing = app
        .client
        .get(format!("{}/graphiql/assets/nothing.js", app.address))
        .send()
        .await?;
    assert_eq!(missing.status().as_u16(), 404);
    Ok(())
}

#[tokio::test]
async fn production_serves_no_graphiql_assets() -> Result<()> {
    let app = production().await?;
    let response = app
        .client
        .get(format!("{}/graphiql/assets/start.js", app.address))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 404);
    Ok(())
}

#[tokio::test]
async fn the_standard_introspection_query_runs_in_development_only() -> Result<()> {
    let development = development().await?;
    let answer = development.gql(INTROSPECTION_QUERY, json!({})).await?;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "Query");
    let types = answer["data"]["__schema"]["types"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(types > 20, "{types} types");

    let production = production().await?;
    let refused = production.gql(INTROSPECTION_QUERY, json!({})).await?;
    assert!(refused["data"]["__schema"].is_null(), "{refused}");
    assert!(!first_message(&refused).is_empty(), "{refused}");
    Ok(())
}

#[tokio::test]
async fn introspection_does_not_lift_the_depth_limit_of_ordinary_fields() -> Result<()> {
    let app = development().await?;
    // Eleven levels of ordinary fields (no schema type nests that deep, so
    // the fields are made up: depth is judged before the fields are).
    let deep = "venues { edges { node { resources { a { b { c { d { e { f { g } } } } } } } } } }";
    let alone = app.gql(&format!("{{ {deep} }}"), json!({})).await?;
    assert!(first_message(&alone).contains("nested too deep"), "{alone}");
    let beside_introspection = app
        .gql(
            &format!("{{ __schema {{ queryType {{ name }} }} {deep} }}"),
            json!({}),
        )
        .await?;
    assert!(
        first_message(&beside_introspection).contains("nested too deep"),
        "{beside_introspection}"
    );
    let through_a_fragment = app
        .gql(
            &format!(
                "{{ ...Deep __type(name: \"Venue\") {{ name }} }} fragment Deep on Query {{ {deep} }}"
            ),
            json!({}),
        )
        .await?;
    assert!(
        first_message(&through_a_fragment).contains("nested too deep"),
        "{through_a_fragment}"
    );
    // Beside ordinary fields within the limit, introspection runs.
    let mixed = app
        .gql(
            "{ venues(first: 1) { edges { node { id } } } __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } }",
            json!({}),
        )
        .await?;
    assert!(mixed.get("errors").is_none(), "{mixed}");
    // Introspection itself has a limit too.
    let endless = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(20),
        " }".repeat(20)
    );
    let refused = app.gql(&endless, json!({})).await?;
    assert!(
        first_message(&refused).contains("nested too deep"),
        "{refused}"
    );
    Ok(())
}
