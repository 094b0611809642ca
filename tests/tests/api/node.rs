//! `node(id:)`: every cached entity fetched again by its id alone, under
//! the rules of the lookup or list it came from. What the caller may not
//! see reads as unknown, never as "exists but forbidden".

use anyhow::{Context as _, Result};
use kluis_tests::{Backend, Booked, TestApp, both_backends, error_code, text};
use serde_json::{Value, json};

const NODE: &str = "query N($id: ID!) { node(id: $id) { __typename id ... on Reservation { guestName partySize } ... on Venue { slug } ... on Resource { slug } ... on StaffAccount { email } ... on Breach { nature } } }";

async fn node(app: &TestApp, bearer: Option<&str>, id: &str) -> Result<Value> {
    match bearer {
        Some(token) => app.gql_as(token, NODE, json!({ "id": id })).await,
        None => app.gql(NODE, json!({ "id": id })).await,
    }
}

fn typename(answer: &Value) -> Option<&str> {
    answer["data"]["node"]["__typename"].as_str()
}

async fn public_things_answer_to_anyone(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let found = node(&app, None, &venue).await?;
    assert_eq!(typename(&found), Some("Venue"), "{found}");
    assert_eq!(found["data"]["node"]["slug"], "one-table", "{found}");
    assert_eq!(found["data"]["node"]["id"], json!(venue), "{found}");

    let venue_answer = app
        .gql(
            "query V($id: ID!) { venue(id: $id) { resources { id slug } } }",
            json!({ "id": venue }),
        )
        .await?;
    let resource = text(&venue_answer, "/data/venue/resources/0/id")?;
    let found = node(&app, None, &resource).await?;
    assert_eq!(typename(&found), Some("Resource"), "{found}");
    assert_eq!(found["data"]["node"]["id"], json!(resource), "{found}");
    Ok(())
}
both_backends!(
    public_things_answer_to_anyone,
    public_things_answer_to_anyone
);

async fn a_reservation_answers_as_its_lookup_does(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let Booked { id, token } = app.book("one-table", 10).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let found = node(&app, Some(&staff), &id).await?;
    assert_eq!(typename(&found), Some("Reservation"), "{found}");
    assert!(found["data"]["node"]["guestName"].is_string(), "{found}");

    // Staff of another venue, an anonymous caller and the guest of another
    // booking all get the same answer as for an id that does not exist.
    let elsewhere = app.staff("staff", Some("lunch-room")).await?;
    let Booked {
        token: other_guest, ..
    } = app.book("one-table", 11).await?;
    let unknown = node(&app, Some(&staff), &uuid::Uuid::new_v4().to_string()).await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    for (who, bearer) in [
        ("another venue's staff", Some(elsewhere.as_str())),
        ("anonymous", None),
        ("another booking's guest", Some(other_guest.as_str())),
    ] {
        let refused = node(&app, bearer, &id).await?;
        assert!(refused["data"]["node"].is_null(), "{who}: {refused}");
        assert_eq!(
            error_code(&refused),
            error_code(&unknown),
            "{who} learns nothing an unknown id would not tell: {refused}"
        );
    }
    // The booking's own guest reaches it through the manage token's own
    // lookup, not through node(): the token opens one booking, by token.
    let own = node(&app, Some(&token), &id).await?;
    assert!(own["data"]["node"].is_null(), "{own}");
    Ok(())
}
both_backends!(
    a_reservation_answers_as_its_lookup_does,
    a_reservation_answers_as_its_lookup_does
);

async fn administration_stays_within_the_callers_venues(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let bound_admin = app.staff("admin", Some("lunch-room")).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let me = app.gql_as(&staff, "{ me { id } }", json!({})).await?;
    let staff_id = text(&me, "/data/me/id")?;

    let found = node(&app, Some(&admin), &staff_id).await?;
    assert_eq!(typename(&found), Some("StaffAccount"), "{found}");
    for (who, bearer) in [
        ("an admin of another venue", bound_admin.as_str()),
        ("staff", staff.as_str()),
    ] {
        let refused = node(&app, Some(bearer), &staff_id).await?;
        assert!(refused["data"]["node"].is_null(), "{who}: {refused}");
        assert_eq!(error_code(&refused), Some("NOT_FOUND"), "{who}: {refused}");
    }

    // A breach of no venue belongs to the whole deployment.
    let recorded = app
        .gql_as(
            &admin,
            "mutation B($i: RecordBreachInput!) { recordBreach(input: $i) { breach { id } userErrors { code } } }",
            json!({ "i": {
                "discoveredAt": chrono::Utc::now().to_rfc3339(),
                "nature": "A laptop was stolen",
                "dataCategories": "names",
                "approxPeople": 1,
                "approxRecords": 1,
                "likelyConsequences": "little",
                "measuresTaken": "remote wipe",
                "contact": "privacy@example.org",
            } }),
        )
        .await?;
    let breach =
        text(&recorded, "/data/recordBreach/breach/id").with_context(|| format!("{recorded}"))?;
    let found = node(&app, Some(&admin), &breach).await?;
    assert_eq!(typename(&found), Some("Breach"), "{found}");
    let refused = node(&app, Some(&bound_admin), &breach).await?;
    assert_eq!(error_code(&refused), Some("NOT_FOUND"), "{refused}");
    Ok(())
}
both_backends!(
    administration_stays_within_the_callers_venues,
    administration_stays_within_the_callers_venues
);

async fn malformed_ids_are_bad_input(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    for id in ["", "reservation:1", "' OR 1=1 --", &"f".repeat(5000)] {
        let answer = node(&app, None, id).await?;
        assert!(answer["data"]["node"].is_null(), "{answer}");
        assert_eq!(
            error_code(&answer),
            Some("BAD_USER_INPUT"),
            "{id}: {answer}"
        );
    }
    Ok(())
}
both_backends!(malformed_ids_are_bad_input, malformed_ids_are_bad_input);
