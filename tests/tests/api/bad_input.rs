use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, both_backends, error_code, guest, new_key, tomorrow, tomorrow_at,
    tomorrow_local, user_errors,
};
use serde_json::{Value, json};

fn message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The first user error of a mutation: its code and message.
fn refusal<'a>(answer: &'a Value, mutation: &str) -> (Option<&'a str>, &'a str) {
    let error = &answer["data"][mutation]["userErrors"][0];
    (
        error["code"].as_str(),
        error["message"].as_str().unwrap_or_default(),
    )
}

async fn unknown_things_are_not_found(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let unknown = uuid::Uuid::new_v4().to_string();
    let admin = app.staff("admin", None).await?;
    for id in [unknown.as_str(), "not-an-id", "1"] {
        let venue = app
            .gql(
                "query V($id: ID!) { venue(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await?;
        assert_eq!(error_code(&venue), Some("NOT_FOUND"), "{venue}");
        let reservation = app
            .gql_as(
                &admin,
                "query R($id: ID!) { reservation(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await?;
        assert_eq!(error_code(&reservation), Some("NOT_FOUND"), "{reservation}");
        let booking = app.book_at_venue_id(id, 10).answer().await?;
        let (code, _) = refusal(&booking, "createReservation");
        assert_eq!(code, Some("NOT_FOUND"), "{booking}");
        let free = app
            .gql("query A($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt } }", json!({ "v": id, "d": tomorrow() }))
            .await?;
        assert_eq!(error_code(&free), Some("NOT_FOUND"), "{free}");
    }
    let venue = app.venue_id("one-table").await?;
    let answer = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2, "guest": guest(), "resourceId": unknown, "idempotencyKey": new_key() } }))
        .await?;
    assert_eq!(
        refusal(&answer, "createReservation"),
        (Some("NOT_FOUND"), "resource not found"),
        "{answer}"
    );
    Ok(())
}
both_backends!(unknown_things_are_not_found, unknown_things_are_not_found);

async fn impossible_bookings_are_refused_with_the_reason(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let one_table = app.venue_id("one-table").await?;
    let lunch = app.venue_id("lunch-room").await?;
    let next_day = app.venue_id("next-day-only").await?;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string();
    let far = (chrono::Utc::now() + chrono::Duration::days(40))
        .format("%Y-%m-%dT10:00:00Z")
        .to_string();
    let soon = (chrono::Utc::now() + chrono::Duration::hours(3))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let cases: Vec<(&str, String, i64, &str)> = vec![
        (
            &one_table,
            tomorrow_at(10),
            0,
            "partySize: must be between 1 and 1000",
        ),
        (&one_table, tomorrow_at(10), 5, "more than 4 people"),
        (&one_table, tomorrow_at(10), 7, "at most 6 people"),
        (&one_table, yesterday, 2, "in the past"),
        (&one_table, far, 2, "more than 30 days ahead"),
        (&next_day, soon, 2, "inside the booking cut-off"),
        (
            &lunch,
            tomorrow_local("Europe/Amsterdam", "20:00")?,
            2,
            "outside the venue's opening hours",
        ),
        (
            &lunch,
            tomorrow_local("Europe/Amsterdam", "12:10")?,
            2,
            "not on the venue's 30-minute booking grid",
        ),
        (
            &lunch,
            tomorrow_local("Europe/Amsterdam", "13:30")?,
            2,
            "would end after closing time",
        ),
    ];
    for (venue, starts_at, size, reason) in cases {
        let answer = app
            .book_at_venue_id(venue, 10)
            .starts_at(&starts_at)
            .party(size)
            .answer()
            .await?;
        let (code, text) = refusal(&answer, "createReservation");
        assert_eq!(code, Some("INVALID"), "{starts_at} x{size}: {answer}");
        assert!(text.contains(reason), "{starts_at} x{size}: {answer}");
    }
    assert_eq!(
        app.count_rows("reservations", "1 = 1")?,
        0,
        "a refused booking left a row"
    );
    let fine = app
        .book_at_venue_id(&lunch, 10)
        .starts_at(&tomorrow_local("Europe/Amsterdam", "12:30")?)
        .answer()
        .await?;
    assert!(fine.get("errors").is_none(), "{fine}");
    assert!(
        fine["data"]["createReservation"]["reservation"]["id"].is_string(),
        "{fine}"
    );
    Ok(())
}
both_backends!(
    impossible_bookings_are_refused_with_the_reason,
    impossible_bookings_are_refused_with_the_reason
);

async fn malformed_values_are_bad_user_input(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let bad_time = app
        .book_at_venue_id(&venue, 10)
        .starts_at("tomorrow at ten")
        .answer()
        .await?;
    assert_eq!(error_code(&bad_time), Some("BAD_USER_INPUT"), "{bad_time}");
    let bad_key = app
        .gql(CREATE, json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2 , "guest": guest(), "idempotencyKey": "x" } }))
        .await?;
    assert_eq!(
        user_errors(&bad_key, "createReservation"),
        [("input.idempotencyKey".to_owned(), "INVALID".to_owned())],
        "{bad_key}"
    );
    let nothing = app
        .gql(
            "mutation M($id: ID!) { modifyReservation(input: { id: $id, manageToken: \"kmt_x\", idempotencyKey: \"abcdefgh\" }) { reservation { id } userErrors { code } } }",
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await?;
    assert_eq!(
        refusal(&nothing, "modifyReservation").0,
        Some("INVALID"),
        "{nothing}"
    );
    let unknown_field = app
        .gql("{ venues { edges { node { colour } } } }", json!({}))
        .await?;
    assert_eq!(
        error_code(&unknown_field),
        Some("BAD_USER_INPUT"),
        "{unknown_field}"
    );
    Ok(())
}
both_backends!(
    malformed_values_are_bad_user_input,
    malformed_values_are_bad_user_input
);

async fn malformed_json_gets_a_json_400(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await?;
    assert!(message(&body).contains("not valid JSON"), "{body}");
    Ok(())
}
both_backends!(
    malformed_json_gets_a_json_400,
    malformed_json_gets_a_json_400
);

/// A row broken behind the server's back becomes an opaque INTERNAL error
/// with a reference, never SQL, table names or the stored value.
async fn internal_errors_do_not_leak_details(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    app.execute_sql("UPDATE venues SET time_zone = 'Mars/Olympus_Mons' WHERE slug = 'one-table'")?;
    let answer = app
        .gql(
            "query V($id: ID!) { venue(id: $id) { name } }",
            json!({ "id": venue }),
        )
        .await?;
    assert_eq!(error_code(&answer), Some("INTERNAL"), "{answer}");
    let text = answer.to_string();
    for secret in ["Mars", "venues", "SELECT", "time_zone", "diesel"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(
        message(&answer).starts_with("internal error (reference "),
        "{answer}"
    );
    Ok(())
}
both_backends!(
    internal_errors_do_not_leak_details,
    internal_errors_do_not_leak_details
);
