use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, TestApp, both_backends, error_code, guest, new_key, tomorrow_at,
};
use serde_json::{Value, json};

async fn a_replay_returns_the_first_answer_and_a_changed_request_conflicts(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let key = new_key();
    let input =
        json!({ "venueId": venue, "startsAt": tomorrow_at(12), "partySize": 2 , "guest": guest()});
    let first = app
        .gql(CREATE, json!({ "input": input, "key": key }))
        .await?;
    let replay = app
        .gql(CREATE, json!({ "input": input, "key": key }))
        .await?;
    assert_eq!(first["data"], replay["data"], "{first} vs {replay}");
    assert!(
        first["data"]["createReservation"]["reservation"]["id"].is_string(),
        "{first}"
    );

    let changed =
        json!({ "venueId": venue, "startsAt": tomorrow_at(13), "partySize": 2 , "guest": guest()});
    let conflict = app
        .gql(CREATE, json!({ "input": changed, "key": key }))
        .await?;
    assert_eq!(error_code(&conflict), Some("CONFLICT"), "{conflict}");
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 1);

    assert_eq!(
        first["data"]["createReservation"]["manageToken"],
        replay["data"]["createReservation"]["manageToken"],
        "a retried booking must get its manage token back"
    );
    let id = first["data"]["createReservation"]["reservation"]["id"].clone();
    let token = first["data"]["createReservation"]["manageToken"].clone();
    let cancel = "mutation C($id: ID!, $t: String!, $key: String!) { cancelReservation(id: $id, manageToken: $t, idempotencyKey: $key) { status } }";
    let cancel_key = new_key();
    let once = app
        .gql(cancel, json!({ "id": id, "t": token, "key": cancel_key }))
        .await?;
    let twice = app
        .gql(cancel, json!({ "id": id, "t": token, "key": cancel_key }))
        .await?;
    assert_eq!(once["data"], twice["data"], "{twice}");
    assert_eq!(twice["data"]["cancelReservation"]["status"], "CANCELLED");

    let modify = "mutation M($id: ID!, $t: String!, $key: String!) { modifyReservation(id: $id, manageToken: $t, input: { partySize: 3 }, idempotencyKey: $key) { partySize } }";
    let reused = app
        .gql(modify, json!({ "id": id, "t": token, "key": cancel_key }))
        .await?;
    assert_eq!(
        error_code(&reused),
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
        "variables": { "input": { "venueId": venue, "startsAt": tomorrow_at(15), "partySize": 2 , "guest": guest()}, "key": key },
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
