use anyhow::Result;
use kluis_tests::{Backend, CREATE, TestApp, both_backends, guest, new_key, tomorrow_at};
use serde_json::{Value, json};

/// 50 guests press "book" for the one table at the same moment.
async fn fifty_concurrent_bookings_of_one_slot_give_one_winner(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.address);
        let body = json!({
            "query": CREATE,
            "variables": { "input": { "venueId": venue, "startsAt": tomorrow_at(19), "partySize": 2,
                "guest": guest(), "idempotencyKey": new_key() } },
        });
        tasks.spawn(async move {
            let response = client.post(url).json(&body).send().await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            anyhow::Ok((status, answer))
        });
    }
    let (mut won, mut taken) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (status, answer) = result??;
        assert!(!status.is_server_error(), "HTTP {status}: {answer}");
        assert!(answer.get("errors").is_none(), "{answer}");
        match answer["data"]["createReservation"]["userErrors"][0]["code"].as_str() {
            None => won += 1,
            Some("SLOT_TAKEN") => taken += 1,
            Some(other) => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!((won, taken), (1, 49));
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 1);
    Ok(())
}
both_backends!(
    fifty_concurrent_bookings_of_one_slot_give_one_winner,
    fifty_concurrent_bookings_of_one_slot_give_one_winner
);

/// Whatever the application believes, PostgreSQL itself refuses two active
/// reservations of one resource that overlap, and accepts touching ones.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn postgres_refuses_overlaps_written_behind_the_applications_back() -> Result<()> {
    let app = TestApp::spawn(Backend::Postgres).await?;
    let insert = |id: &str, from: &str, until: &str, status: &str| {
        format!(
            "INSERT INTO reservations (id, venue_id, resource_id, party_size, starts_at, ends_at, blocked_until, status, created_at, updated_at) \
             SELECT '{id}', v.id, r.id, 2, '{from}', '{until}', '{until}', '{status}', now(), now() \
             FROM venues v JOIN resources r ON r.venue_id = v.id WHERE v.slug = 'one-table'"
        )
    };
    app.execute_sql(&insert(
        "a",
        "2030-01-01 10:00Z",
        "2030-01-01 11:00Z",
        "confirmed",
    ))?;
    app.execute_sql(&insert(
        "b",
        "2030-01-01 11:00Z",
        "2030-01-01 12:00Z",
        "confirmed",
    ))?;
    app.execute_sql(&insert(
        "c",
        "2030-01-01 10:30Z",
        "2030-01-01 11:30Z",
        "cancelled",
    ))?;
    let overlap = app.execute_sql(&insert(
        "d",
        "2030-01-01 10:30Z",
        "2030-01-01 11:30Z",
        "pending",
    ));
    let error = overlap
        .expect_err("an overlapping active reservation was stored")
        .to_string();
    assert!(error.contains("reservations_no_overlap"), "{error}");
    Ok(())
}
