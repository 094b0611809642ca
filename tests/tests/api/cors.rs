//! Browsers on other sites: only origins in the settings (`[http]
//! allowed_origins`) or in some venue's list get CORS headers, echoed
//! exactly, with `Vary: Origin` and never credentials; any other origin
//! gets none, and its preflight 403.

use anyhow::Result;
use kluis_tests::{Backend, Options, TestApp, both_backends, payload};
use serde_json::json;

const FULL_VENUE: &str = kluis_tests::fixture!("full-house.toml");
const GLOBAL: &str = "https://widgets.example";

async fn spawn(backend: Backend) -> Result<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            venues: FULL_VENUE,
            http: api::config::Http {
                allowed_origins: vec![GLOBAL.to_owned()],
            },
            ..Options::default()
        },
    )
    .await
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn allowed_origin(&self) -> Option<String> {
        self.header("access-control-allow-origin")
    }
}

async fn post_from(app: &TestApp, origin: &str) -> Result<Answer> {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Origin", origin)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    Ok(Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
    })
}

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> Result<Answer> {
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await?;
    Ok(Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
    })
}

async fn listed_origins_are_answered_and_others_are_not(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;

    for origin in [
        GLOBAL,
        "https://full.example",
        "https://book.full.example:8443",
    ] {
        let answer = post_from(&app, origin).await?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.allowed_origin().as_deref(), Some(origin));
        assert!(
            answer.header("vary").is_some_and(|v| v.contains("Origin")),
            "{origin}"
        );
        assert_eq!(answer.header("access-control-allow-credentials"), None);

        let answer = preflight(&app, origin, "POST", "content-type, authorization").await?;
        assert_eq!(answer.status, 204, "{origin}");
        assert_eq!(answer.allowed_origin().as_deref(), Some(origin));
        let methods = answer
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        let headers = answer
            .header("access-control-allow-headers")
            .unwrap_or_default();
        for header in ["Content-Type", "Authorization", "Idempotency-Key"] {
            assert!(headers.contains(header), "{headers}");
        }
        assert_eq!(
            answer.header("access-control-max-age").as_deref(),
            Some("600")
        );
        assert_eq!(answer.header("access-control-allow-credentials"), None);
        assert!(answer.header("vary").is_some_and(|v| v.contains("Origin")));
    }

    // Unknown, opaque and malformed origins: nothing, and preflights 403.
    for origin in [
        "https://evil.example",
        "null",
        "https://full.example/booking",
        "https://full.example.evil.example",
        "https://FULL.example",
        "https://full.example:443",
        "http://full.example",
        "https://full.example, https://evil.example",
        "garbage",
        "*",
        "",
    ] {
        let answer = post_from(&app, origin).await?;
        assert_eq!(answer.allowed_origin(), None, "{origin:?}");
        let answer = preflight(&app, origin, "POST", "content-type").await?;
        assert_eq!(answer.status, 403, "{origin:?}");
        assert_eq!(answer.allowed_origin(), None, "{origin:?}");
        assert_eq!(answer.header("access-control-allow-methods"), None);
    }

    // An allowed origin asking for more than kluis allows.
    let answer = preflight(&app, GLOBAL, "DELETE", "content-type").await?;
    assert_eq!(answer.status, 403);
    let answer = preflight(&app, GLOBAL, "POST", "content-type, x-forwarded-for").await?;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.allowed_origin(), None);

    // No Origin at all: a server-to-server call, no CORS headers.
    let plain = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    assert!(plain.headers().get("access-control-allow-origin").is_none());
    // Routes other than /graphql are not opened to browsers.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("Origin", GLOBAL)
        .send()
        .await?;
    assert!(
        health
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    Ok(())
}
both_backends!(
    listed_origins_are_answered_and_others_are_not,
    listed_origins_are_answered_and_others_are_not
);

/// An origin a manager adds to a venue is answered on every node within
/// the venue cache's staleness; one removed stops being answered.
async fn venue_origins_follow_edits(backend: Backend) -> Result<()> {
    let app = spawn(backend).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let origin = "https://new-site.example";
    assert_eq!(post_from(&app, origin).await?.allowed_origin(), None);
    let saved = app
        .gql_as(
            &manager,
            "mutation S($v: VenueInput!) { saveVenue(input: $v) { venue { allowedOrigins } userErrors { field code } } }",
            json!({ "v": { "slug": "full", "allowedOrigins": [origin] } }),
        )
        .await?;
    payload(&saved, "saveVenue")?;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        post_from(&app, origin).await?.allowed_origin().as_deref(),
        Some(origin)
    );
    assert_eq!(
        post_from(&app, "https://full.example")
            .await?
            .allowed_origin(),
        None,
        "replaced by the new list"
    );
    Ok(())
}
both_backends!(venue_origins_follow_edits, venue_origins_follow_edits);

/// Plain-http origins are for development servers only, in the settings
/// as in venues.
#[test]
fn a_production_server_refuses_plain_http_origins_in_its_settings() {
    use api::config::{Environment, Http};
    let local = Http {
        allowed_origins: vec!["http://localhost:5173".to_owned()],
    };
    assert!(local.origins(Environment::Production).is_err());
    assert!(local.origins(Environment::Development).is_ok());
    for bad in [
        "https://shop.example/path",
        "null",
        "*",
        "https://*.example",
    ] {
        let http = Http {
            allowed_origins: vec![bad.to_owned()],
        };
        assert!(http.origins(Environment::Development).is_err(), "{bad}");
    }
}
