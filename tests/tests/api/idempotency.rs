use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, both_backends, guest, new_key, tomorrow_at, user_error_code,
};
use serde_json::{Value, json};

async fn a_replay_returns_the_first_answer_and_a_changed_request_conflicts(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let key = new_key();
    let input = json!({ "venueId": venue, "startsAt": tomorrow_at(12), "partySize": 2,
        "guest": guest(), "idempotencyKey": key });
    let first = app.gql(CREATE, json!({ "input": input })).await?;
    let replay = app.gql(CREATE, json!({ "input": input })).await?;
    assert_eq!(first["data"], replay["data"], "{first} vs {replay}");
    assert!(
        first["data"]["createReservation"]["reservation"]["id"].is_string(),
        "{first}"
    );

    let changed = json!({ "venueId": venue, "startsAt": tomorrow_at(13), "partySize": 2,
        "guest": guest(), "idempotencyKey": key });
    let conflict = app.gql(CREATE, json!({ "input": changed })).await?;
    assert_eq!(
        user_error_code(&conflict, "createReservation"),
        Some("CONFLICT"),
        "{conflict}"
    );
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 1);

    assert_eq!(
        first["data"]["createReservation"]["manageToken"],
        replay["data"]["createReservation"]["manageToken"],
        "a retried booking must get its manage token back"
    );
    let id = first["data"]["createReservation"]["reservation"]["id"].clone();
    let token = first["data"]["createReservation"]["manageToken"].clone();
    let token = token.as_str().unwrap_or_default();
    let cancel = "mutation C($id: ID!, $key: String!) { cancelReservation(input: { id: $id, idempotencyKey: $key }) { reservation { status } userErrors { code } } }";
    let cancel_key = new_key();
    let once = app
        .gql_as(token, cancel, json!({ "id": id, "key": cancel_key }))
        .await?;
    let twice = app
        .gql_as(token, cancel, json!({ "id": id, "key": cancel_key }))
        .await?;
    assert_eq!(once["data"], twice["data"], "{twice}");
    assert_eq!(
        twice["data"]["cancelReservation"]["reservation"]["status"],
        "CANCELLED"
    );

    let modify = "mutation M($id: ID!, $key: String!) { modifyReservation(input: { id: $id, partySize: 3, idempotencyKey: $key }) { reservation { partySize } userErrors { code } } }";
    let reused = app
        .gql_as(token, modify, json!({ "id": id, "key": cancel_key }))
        .await?;
    assert_eq!(
        user_error_code(&reused, "modifyReservation"),
        Some("CONFLICT"),
        "a cancelled reservation cannot change: {reused}"
    );
    Ok(())
}
both_backends!(
    a_replay_returns_the_first_answer_and_a_changed_request_conflicts,
    a_replay_returns_the_first_answer_and_a_changed_request_conflicts
);

async fn concurrent_replays_create_one_reservation(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let key = new_key();
    let body = json!({
        "query": CREATE,
        "variables": { "input": { "venueId": venue, "startsAt": tomorrow_at(15), "partySize": 2,
            "guest": guest(), "idempotencyKey": key } },
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&body);
        tasks.spawn(async move { anyhow::Ok(request.send().await?.json::<Value>().await?) });
    }
    let mut ids = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let answer = result??;
        assert!(answer.get("errors").is_none(), "{answer}");
        ids.push(answer["data"]["createReservation"]["reservation"]["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 1);
    Ok(())
}
both_backends!(
    concurrent_replays_create_one_reservation,
    concurrent_replays_create_one_reservation
);
