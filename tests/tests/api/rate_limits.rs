use anyhow::Result;
use kluis_tests::{
    Backend, CREATE, Options, TestApp, both_backends, error_code, guest, new_key, tomorrow_at,
};
use serde_json::{Value, json};

const PING: &str = "{ __typename }";

async fn limited(
    backend: Backend,
    change: impl FnOnce(&mut api::config::RateLimits),
) -> Result<TestApp> {
    let mut rate_limits = api::config::RateLimits::default();
    change(&mut rate_limits);
    TestApp::spawn_with(
        backend,
        Options {
            rate_limits,
            ..Options::default()
        },
    )
    .await
}

/// Moves the servers' clock to just after the start of a minute, so that
/// a test's requests fall into one rate-limit window.
fn fresh_window(app: &TestApp) {
    let now = app.now();
    let into_minute = i64::from(chrono::Timelike::second(&now));
    app.advance(chrono::Duration::seconds(61 - into_minute));
}

async fn ping_from(app: &TestApp, forwarded_for: Option<&str>) -> Result<(Value, Option<String>)> {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": PING }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    let response = request.send().await?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.json().await?, retry_after))
}

/// One client address gets its budget per minute, then RATE_LIMITED with
/// a retry-after; a forged `X-Forwarded-For` from a peer that is not a
/// trusted proxy changes nothing.
async fn an_address_over_its_budget_is_told_when_to_come_back(backend: Backend) -> Result<()> {
    let app = limited(backend, |l| l.address_per_minute = 5).await?;
    fresh_window(&app);
    for n in 0..5 {
        let (answer, _) = ping_from(&app, Some(&format!("198.51.100.{n}"))).await?;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let (refused, header) = ping_from(&app, Some("198.51.100.99")).await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"), "{refused}");
    let seconds = refused["errors"][0]["extensions"]["retryAfter"]
        .as_i64()
        .unwrap_or(0);
    assert!((1..=60).contains(&seconds), "{refused}");
    assert_eq!(header, Some(seconds.to_string()));
    Ok(())
}
both_backends!(
    an_address_over_its_budget_is_told_when_to_come_back,
    an_address_over_its_budget_is_told_when_to_come_back
);

/// Behind a trusted proxy, each client behind it has its own budget.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_counts_alone() -> Result<()> {
    let app = limited(Backend::Sqlite, |l| {
        l.address_per_minute = 3;
        l.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await?;
    fresh_window(&app);
    for _ in 0..3 {
        let (answer, _) = ping_from(&app, Some("203.0.113.7")).await?;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    let (refused, _) = ping_from(&app, Some("203.0.113.7")).await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"));
    // The client's own header cannot pick a budget: the proxy appends the
    // real address last, and that one counts.
    let (refused, _) = ping_from(&app, Some("192.0.2.1, 203.0.113.7")).await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"));
    let (other, _) = ping_from(&app, Some("203.0.113.8")).await?;
    assert!(other["errors"].is_null(), "another client: {other}");
    Ok(())
}

/// Complexity counts too: a caller that spent its complexity budget is
/// refused even with requests left.
#[tokio::test]
async fn spending_the_complexity_budget_holds_a_caller_back() -> Result<()> {
    let app = limited(Backend::Sqlite, |l| l.complexity_per_minute = 300).await?;
    fresh_window(&app);
    // A page of 100 venues with two fields each costs about 400.
    let heavy = "{ venues(first: 100) { edges { node { id slug } } } }";
    let first = app.gql(heavy, json!({})).await?;
    assert!(first["errors"].is_null(), "{first}");
    let next = app.gql(PING, json!({})).await?;
    assert_eq!(error_code(&next), Some("RATE_LIMITED"), "{next}");
    Ok(())
}

/// Two `kluis serve` nodes on one database: of two bookings for the same
/// slot, one on each node, exactly one wins; rate limits and login
/// throttling are shared; both answer for the same data.
async fn two_nodes_share_one_database(backend: Backend) -> Result<()> {
    let app = limited(backend, |l| l.address_per_minute = 10).await?;
    let second = app.another_node().await?;
    fresh_window(&app);
    let venue = app.venue_id("one-table").await?;

    let booking = |key: String| json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2, "guest": guest(), "idempotencyKey": key } });
    let (first, other) = tokio::join!(
        app.gql_at(&app.address, None, CREATE, booking(new_key())),
        app.gql_at(&second, None, CREATE, booking(new_key())),
    );
    let answers = [first?, other?];
    let won = answers
        .iter()
        .filter(|a| a["data"]["createReservation"]["reservation"].is_object())
        .count();
    let lost: Vec<_> = answers
        .iter()
        .filter_map(|a| kluis_tests::user_error_code(a, "createReservation"))
        .collect();
    assert_eq!(
        (won, lost.as_slice()),
        (1, ["SLOT_TAKEN"].as_slice()),
        "{answers:?}"
    );

    // Failed logins on one node hold the account back on the other.
    let (email, password) = app.staff_account("manager", Some("one-table")).await?;
    let wrong = "mutation L($e: String!) { login(input: { email: $e, password: \"wrong password\" }) { token } }";
    for _ in 0..4 {
        app.gql_at(&app.address, None, wrong, json!({ "e": email }))
            .await?;
    }
    let right = "mutation L($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }";
    let held = app
        .gql_at(&second, None, right, json!({ "e": email, "p": password }))
        .await?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");

    // 10 requests per minute in all: 2 venue lookups, a booking and 4
    // failed logins on the first node, a booking and a login on the
    // second. The first spends the last one once it knows what the second
    // spent; then both nodes refuse, though the second spent only two.
    // Two sync periods: each node adds its counts, then reads the others'.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let last = app.gql_at(&app.address, None, PING, json!({})).await?;
    assert!(last["errors"].is_null(), "{last}");
    let over = app.gql_at(&app.address, None, PING, json!({})).await?;
    assert_eq!(error_code(&over), Some("RATE_LIMITED"), "{over}");
    // Two sync periods: each node adds its counts, then reads the others'.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let shared = app.gql_at(&second, None, PING, json!({})).await?;
    assert_eq!(
        error_code(&shared),
        Some("RATE_LIMITED"),
        "the budget is one for both nodes: {shared}"
    );
    Ok(())
}
both_backends!(two_nodes_share_one_database, two_nodes_share_one_database);

/// Two nodes: a policy edit reaches both, and two delivery passes running
/// at once (one per node) send each outbox message exactly once.
async fn two_nodes_share_policy_edits_and_outbox_work(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let second = app.another_node().await?;
    let venue = app.venue_id("one-table").await?;
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let admin = app.staff("admin", None).await?;
    app.gql_as(
        &admin,
        "mutation W($i: SetVenueWebhookInput!) { setVenueWebhook(input: $i) { secret } }",
        json!({ "i": { "venueId": venue, "url": receiver.uri() } }),
    )
    .await?;
    let mut ids = Vec::new();
    for hour in 8..14 {
        let guest = json!({ "name": "Nel Node", "email": "nel@example.org" });
        ids.push(app.book("one-table", hour).guest(guest).await?.id);
    }
    let (a, b) = tokio::join!(app.deliver_webhooks(), app.deliver_webhooks());
    let (a, b) = (a?, b?);
    assert_eq!(a.sent + b.sent, 6, "{a:?} {b:?}");
    let requests = receiver.received_requests().await.unwrap_or_default();
    let mut events: Vec<String> = requests
        .iter()
        .filter_map(|r| {
            r.headers
                .get("kluis-event-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .collect();
    events.sort();
    events.dedup();
    assert_eq!((requests.len(), events.len()), (6, 6), "each event once");

    let staff = app.staff("staff", Some("one-table")).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { guestEmail } }";
    for node in [&app.address, &second] {
        let denied = app
            .gql_at(node, Some(&staff), read, json!({ "id": ids[0] }))
            .await?;
        assert_eq!(error_code(&denied), Some("FORBIDDEN"), "{denied}");
    }
    let policy = app.policy_dir().join("policy.csv");
    let original = std::fs::read_to_string(&policy)?;
    std::fs::write(
        &policy,
        format!("{original}\np, staff, Reservation.guestEmail, read\n"),
    )?;
    for node in [&app.address, &second] {
        let mut answer = Value::Null;
        for _ in 0..40 {
            answer = app
                .gql_at(node, Some(&staff), read, json!({ "id": ids[0] }))
                .await?;
            if answer["data"]["reservation"]["guestEmail"] == "nel@example.org" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            answer["data"]["reservation"]["guestEmail"], "nel@example.org",
            "{node} did not apply the edit within 4 s: {answer}"
        );
    }
    // Retention on both nodes at once, five years on: each guest record
    // (one per booking) is anonymized once (one `retention` entry each in
    // the audit trail).
    let (x, y) = tokio::join!(
        app.run_retention(5 * 365, false),
        app.run_retention(5 * 365, false)
    );
    let (x, y) = (x?, y?);
    let records = app.count_rows("guests", "1 = 1")?;
    assert_eq!(
        i64::try_from(x.anonymized + y.anonymized)?,
        records,
        "{x:?} {y:?}"
    );
    assert_eq!(
        app.count_rows("audit_log", "principal = 'retention'")?,
        records
    );
    Ok(())
}
both_backends!(
    two_nodes_share_policy_edits_and_outbox_work,
    two_nodes_share_policy_edits_and_outbox_work
);

/// With `KLUIS_REDIS_URL`, nodes share their counts through Redis instead
/// of the database; the budget still holds across them.
#[tokio::test]
#[ignore = "needs Redis"]
async fn two_nodes_share_rate_limits_through_redis() -> Result<()> {
    let url = std::env::var("KLUIS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let namespace = format!("kluis-test-{}", uuid::Uuid::new_v4().simple());
    let app = limited(Backend::Sqlite, |l| {
        l.address_per_minute = 4;
        l.redis_url = serde_json::from_value(json!(url)).ok();
        l.redis_namespace = namespace.clone();
    })
    .await?;
    let second = app.another_node().await?;
    fresh_window(&app);
    for node in [&app.address, &second, &app.address, &second] {
        let answer = app.gql_at(node, None, PING, json!({})).await?;
        assert!(answer["errors"].is_null(), "{answer}");
    }
    // Two sync periods: each node adds its counts, then reads the others'.
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    for node in [&app.address, &second] {
        let answer = app.gql_at(node, None, PING, json!({})).await?;
        assert_eq!(error_code(&answer), Some("RATE_LIMITED"), "{answer}");
    }
    assert_eq!(
        app.count_rows("rate_windows", "scope LIKE 'address:%'")?,
        0,
        "the counts went to Redis, not the database"
    );
    Ok(())
}

/// More requests at once than a node takes: those without a turn within
/// the wait are turned away at once (503, RATE_LIMITED, Retry-After)
/// instead of queueing; the rest are answered, and the node answers
/// normally as soon as the burst is over.
async fn an_overloaded_node_sheds_load_and_recovers(backend: Backend) -> Result<()> {
    let app = limited(backend, |l| {
        l.max_in_flight = 1;
        l.queue_wait_ms = 0;
    })
    .await?;
    let venue = app.venue_id("one-table").await?;
    let availability = "query($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt } }";
    let variables = json!({ "v": venue, "d": tomorrow_at(12)[..10].to_owned() });
    let query = json!({ "query": availability, "variables": variables });
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&query)
            .send();
        burst.spawn(async move {
            let response = request.await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await?;
            Ok::<_, anyhow::Error>((status, retry_after, body))
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = burst.join_next().await {
        answers.push(answer??);
    }
    let mut shed = 0;
    for (status, retry_after, body) in &answers {
        match status {
            200 => assert!(body["data"]["availability"].is_array(), "{body}"),
            503 => {
                shed += 1;
                assert_eq!(error_code(body), Some("RATE_LIMITED"), "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(
        shed > 0,
        "48 requests at once on one turn: some must be turned away"
    );
    assert!(shed < answers.len(), "some requests must be answered");
    let after = app.gql(availability, variables).await?;
    assert!(after["errors"].is_null(), "{after}");
    Ok(())
}

both_backends!(
    an_overloaded_node_sheds_load_and_recovers,
    an_overloaded_node_sheds_load_and_recovers
);

const LOGIN: &str =
    "mutation L($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }";

/// One GraphQL request, standalone so that many can run at once; from
/// `forwarded_for` when the test trusts the loopback proxy.
async fn post(
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    body: Value,
    forwarded_for: Option<String>,
) -> Result<(Value, Option<String>)> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    let response = request.send().await?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.json().await?, retry_after))
}

fn login_body(email: &str, password: &str) -> Value {
    json!({ "query": LOGIN, "variables": { "e": email, "p": password } })
}

/// Starts wrong-password logins for one account, all at once.
fn wrong_logins(
    app: &TestApp,
    email: &str,
    count: usize,
) -> tokio::task::JoinSet<Result<(Value, Option<String>)>> {
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..count {
        burst.spawn(post(
            app.client.clone(),
            format!("{}/graphql", app.address),
            None,
            login_body(email, &format!("wrong guess {n}")),
            None,
        ));
    }
    burst
}

async fn codes_of(
    mut burst: tokio::task::JoinSet<Result<(Value, Option<String>)>>,
) -> Result<Vec<String>> {
    let mut codes = Vec::new();
    while let Some(answer) = burst.join_next().await {
        let (answer, _) = answer??;
        codes.push(error_code(&answer).unwrap_or("none").to_owned());
    }
    Ok(codes)
}

/// Thirty wrong passwords at once: none fails inside (concurrent counts of
/// one scope used to collide on PostgreSQL), at most the three the backoff
/// allows before its first wait are checked and refused, the rest are held
/// back, and the lock then holds the right password too.
async fn parallel_wrong_passwords_get_no_more_checks_than_the_backoff_allows(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (email, password) = app.staff_account("staff", Some("one-table")).await?;
    let codes = codes_of(wrong_logins(&app, &email, 30)).await?;
    assert_eq!(codes.len(), 30);
    assert!(
        codes
            .iter()
            .all(|code| code == "UNAUTHENTICATED" || code == "RATE_LIMITED"),
        "{codes:?}"
    );
    let checked = codes.iter().filter(|code| *code != "RATE_LIMITED").count();
    assert!(
        (1..=3).contains(&checked),
        "{checked} attempts were checked: {codes:?}"
    );
    let right = app.gql(LOGIN, json!({ "e": email, "p": password })).await?;
    assert_eq!(error_code(&right), Some("RATE_LIMITED"), "{right}");
    Ok(())
}
both_backends!(
    parallel_wrong_passwords_get_no_more_checks_than_the_backoff_allows,
    parallel_wrong_passwords_get_no_more_checks_than_the_backoff_allows
);

/// The right password sent while a burst of wrong ones is still being
/// checked is held back: each attempt is counted the moment it arrives,
/// not once its (slow) password check is over, so a guesser cannot slip
/// guesses past the lock by sending them all at once.
async fn the_right_password_amid_a_burst_of_wrong_ones_is_held_back(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (email, password) = app.staff_account("staff", Some("one-table")).await?;
    let burst = wrong_logins(&app, &email, 29);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let right = app.gql(LOGIN, json!({ "e": email, "p": password })).await?;
    let codes = codes_of(burst).await?;
    assert!(!codes.iter().any(|code| code == "INTERNAL"), "{codes:?}");
    assert_eq!(error_code(&right), Some("RATE_LIMITED"), "{right}");
    Ok(())
}
both_backends!(
    the_right_password_amid_a_burst_of_wrong_ones_is_held_back,
    the_right_password_amid_a_burst_of_wrong_ones_is_held_back
);

/// Behind a trusted proxy, IPv6 clients count per /64 network: a client
/// holding a /64 cannot reset its budget by changing addresses. IPv4
/// clients still count per address.
#[tokio::test]
async fn ipv6_clients_share_one_budget_per_64_network() -> Result<()> {
    let app = limited(Backend::Sqlite, |l| {
        l.address_per_minute = 3;
        l.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await?;
    fresh_window(&app);
    for client in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"] {
        let (answer, _) = ping_from(&app, Some(client)).await?;
        assert!(answer["errors"].is_null(), "{client}: {answer}");
    }
    let (refused, _) = ping_from(&app, Some("2001:db8:5:6:1234::4")).await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"), "{refused}");
    for other in ["2001:db8:5:7::1", "198.51.100.1", "198.51.100.2"] {
        let (answer, _) = ping_from(&app, Some(other)).await?;
        assert!(answer["errors"].is_null(), "{other}: {answer}");
    }
    Ok(())
}

/// Failed logins from one IPv6 /64 count as from one address: twenty-one
/// addresses of it, each trying another account once, meet the address
/// backoff; a neighbouring /64 does not.
async fn failed_logins_from_one_ipv6_64_network_meet_the_address_backoff(
    backend: Backend,
) -> Result<()> {
    let app = limited(backend, |l| {
        l.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await?;
    let url = format!("{}/graphql", app.address);
    let mut codes = Vec::new();
    for n in 1..=21 {
        let (answer, _) = post(
            app.client.clone(),
            url.clone(),
            None,
            login_body(&format!("nobody{n}@example.org"), "wrong guess"),
            Some(format!("2001:db8:9:9::{n:x}")),
        )
        .await?;
        codes.push(error_code(&answer).unwrap_or("none").to_owned());
    }
    assert!(
        codes[..20].iter().all(|code| code == "UNAUTHENTICATED"),
        "{codes:?}"
    );
    assert_eq!(codes[20], "RATE_LIMITED", "{codes:?}");
    let (neighbour, _) = post(
        app.client.clone(),
        url,
        None,
        login_body("nobody@example.org", "wrong guess"),
        Some("2001:db8:9:a::1".to_owned()),
    )
    .await?;
    assert_eq!(
        error_code(&neighbour),
        Some("UNAUTHENTICATED"),
        "{neighbour}"
    );
    Ok(())
}
both_backends!(
    failed_logins_from_one_ipv6_64_network_meet_the_address_backoff,
    failed_logins_from_one_ipv6_64_network_meet_the_address_backoff
);

/// Credentials that do not hold count per client address: past the budget
/// every request with credentials from there is RATE_LIMITED (with
/// `Retry-After`) before they are looked at, good ones included, until the
/// minute ends. Good credentials cost nothing; anonymous requests and
/// other clients go on; IPv6 clients count per /64.
async fn bad_credentials_are_held_back_per_client(backend: Backend) -> Result<()> {
    let app = limited(backend, |l| {
        l.bad_credentials_per_minute = 3;
        l.trusted_proxies = vec!["127.0.0.0/8".to_owned()];
    })
    .await?;
    let admin = app.staff("admin", None).await?;
    fresh_window(&app);
    let url = format!("{}/graphql", app.address);
    let ping = json!({ "query": PING });
    let send = |token: &str, from: &str| {
        post(
            app.client.clone(),
            url.clone(),
            Some(token.to_owned()),
            ping.clone(),
            Some(from.to_owned()),
        )
    };
    let guess = "kls_0000000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..6 {
        let (answer, _) = send(&admin, "203.0.113.1").await?;
        assert!(answer["errors"].is_null(), "good credentials: {answer}");
    }
    for bad in [guess, "kst_forged", "Basic nonsense"] {
        let (answer, _) = send(bad, "203.0.113.1").await?;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    }
    let (refused, header) = send(guess, "203.0.113.1").await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"), "{refused}");
    let seconds = refused["errors"][0]["extensions"]["retryAfter"]
        .as_i64()
        .unwrap_or(0);
    assert!((1..=60).contains(&seconds), "{refused}");
    assert_eq!(header, Some(seconds.to_string()));
    let (held, _) = send(&admin, "203.0.113.1").await?;
    assert_eq!(error_code(&held), Some("RATE_LIMITED"), "{held}");
    let (anonymous, _) = ping_from(&app, Some("203.0.113.1")).await?;
    assert!(anonymous["errors"].is_null(), "{anonymous}");
    let (other, _) = send(guess, "203.0.113.2").await?;
    assert_eq!(error_code(&other), Some("UNAUTHENTICATED"), "{other}");

    for n in 1..=3 {
        let (answer, _) = send(guess, &format!("2001:db8:4:4::{n}")).await?;
        assert_eq!(error_code(&answer), Some("UNAUTHENTICATED"), "{answer}");
    }
    let (same_network, _) = send(guess, "2001:db8:4:4:ffff::1").await?;
    assert_eq!(
        error_code(&same_network),
        Some("RATE_LIMITED"),
        "{same_network}"
    );
    Ok(())
}
both_backends!(
    bad_credentials_are_held_back_per_client,
    bad_credentials_are_held_back_per_client
);

/// A burst of bad credentials at once gets no more answers than the
/// budget: each is counted before it is looked at.
async fn a_burst_of_bad_credentials_gets_no_more_tries_than_the_budget(
    backend: Backend,
) -> Result<()> {
    let app = limited(backend, |l| l.bad_credentials_per_minute = 5).await?;
    fresh_window(&app);
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..30 {
        burst.spawn(post(
            app.client.clone(),
            format!("{}/graphql", app.address),
            Some(format!("kst_guess{n}")),
            json!({ "query": PING }),
            None,
        ));
    }
    let codes = codes_of(burst).await?;
    let tried = codes.iter().filter(|c| *c == "UNAUTHENTICATED").count();
    let held = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert_eq!((tried, held), (5, 25), "{codes:?}");
    Ok(())
}
both_backends!(
    a_burst_of_bad_credentials_gets_no_more_tries_than_the_budget,
    a_burst_of_bad_credentials_gets_no_more_tries_than_the_budget
);

const PAYPAL_EVENT: &str =
    r#"{"id":"WH-EVT-1","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"CAP-1"}}"#;

fn paypal_headers(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/json")
        .header("paypal-auth-algo", "SHA256withRSA")
        .header("paypal-cert-url", "https://api.paypal.com/cert.pem")
        .header("paypal-transmission-id", "T-1")
        .header("paypal-transmission-sig", "c2ln")
        .header("paypal-transmission-time", "2026-12-01T10:00:00Z")
}

/// How often kluis asked the fake PayPal to verify a webhook.
async fn verifications(paypal: &wiremock::MockServer) -> usize {
    paypal
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/notifications/verify-webhook-signature")
        .count()
}

/// Anyone may post to `/webhooks/paypal`, and each delivery used to cost a
/// call to PayPal: deliveries are limited per client (429 with
/// `Retry-After`), and what cannot be an event (no body, missing
/// signature headers, oversized) is turned away without asking PayPal.
async fn webhook_deliveries_are_limited_per_client_before_the_provider_is_asked(
    backend: Backend,
) -> Result<()> {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};
    let paypal = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "A21AA-token", "token_type": "Bearer", "expires_in": 32400
        })))
        .mount(&paypal)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/notifications/verify-webhook-signature"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "verification_status": "FAILURE" })),
        )
        .mount(&paypal)
        .await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            payments: kluis_tests::paypal_config(&paypal.uri())?,
            rate_limits: api::config::RateLimits {
                webhook_per_minute: 3,
                trusted_proxies: vec!["127.0.0.0/8".to_owned()],
                ..api::config::RateLimits::default()
            },
            ..Options::default()
        },
    )
    .await?;
    fresh_window(&app);
    let url = format!("{}/webhooks/paypal", app.address);

    let empty = paypal_headers(app.client.post(&url))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await?;
    assert_eq!(empty.status().as_u16(), 400);
    let unsigned = app
        .client
        .post(&url)
        .header("x-forwarded-for", "198.51.100.2")
        .body(PAYPAL_EVENT)
        .send()
        .await?;
    assert_eq!(unsigned.status().as_u16(), 400);
    let oversized = paypal_headers(app.client.post(&url))
        .header("x-forwarded-for", "198.51.100.3")
        .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024)))
        .send()
        .await?;
    assert_eq!(oversized.status().as_u16(), 413);
    assert_eq!(verifications(&paypal).await, 0, "PayPal was asked");

    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = paypal_headers(app.client.post(&url))
            .header("x-forwarded-for", "2001:db8:3:3::1")
            .body(PAYPAL_EVENT)
            .send()
            .await?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        statuses.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(
        statuses.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [400, 400, 400, 429, 429, 429],
        "{statuses:?}"
    );
    assert!(
        statuses[3..]
            .iter()
            .all(|(_, after)| after.is_some_and(|s| (1..=60).contains(&s))),
        "{statuses:?}"
    );
    // Another address of the same /64 shares the budget.
    let same_network = paypal_headers(app.client.post(&url))
        .header("x-forwarded-for", "2001:db8:3:3:ffff::2")
        .body(PAYPAL_EVENT)
        .send()
        .await?;
    assert_eq!(same_network.status().as_u16(), 429);
    assert_eq!(
        verifications(&paypal).await,
        3,
        "one call per admitted delivery"
    );
    Ok(())
}
both_backends!(
    webhook_deliveries_are_limited_per_client_before_the_provider_is_asked,
    webhook_deliveries_are_limited_per_client_before_the_provider_is_asked
);

/// A venue with forty resources and a start every quarter hour, all day.
const LARGE_VENUE: &str = kluis_tests::fixture!("large.toml");

/// `availability` is charged what it returned: start times, and the free
/// resources of each when asked for. A large venue's day with its free
/// resources (some 90 start times of 40 tables) spends a budget that its
/// start times alone do not.
async fn availability_is_charged_what_it_returned(backend: Backend) -> Result<()> {
    let app = TestApp::spawn_with(
        backend,
        Options {
            venues: LARGE_VENUE,
            rate_limits: api::config::RateLimits {
                complexity_per_minute: 3_000,
                ..api::config::RateLimits::default()
            },
            ..Options::default()
        },
    )
    .await?;
    let venue = app.venue_id("large").await?;
    fresh_window(&app);
    let variables = json!({ "v": venue, "d": kluis_tests::tomorrow() });
    let starts = "query($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt } }";
    let light = app.gql(starts, variables.clone()).await?;
    let slots = light["data"]["availability"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(slots > 80, "{light}");
    let next = app.gql(PING, json!({})).await?;
    assert!(
        next["errors"].is_null(),
        "start times alone are cheap: {next}"
    );

    let with_tables = "query($v: ID!, $d: Date!) { availability(venueId: $v, date: $d, partySize: 2) { startsAt freeResources { slug } } }";
    let heavy = app.gql(with_tables, variables).await?;
    assert!(heavy["errors"].is_null(), "{heavy}");
    let refused = app.gql(PING, json!({})).await?;
    assert_eq!(error_code(&refused), Some("RATE_LIMITED"), "{refused}");
    Ok(())
}
both_backends!(
    availability_is_charged_what_it_returned,
    availability_is_charged_what_it_returned
);

/// Login throttles, guess counters and rate-limit windows are keyed by
/// pseudonyms (HMAC under a key derived from the master key): neither the
/// e-mail address tried, nor a plain hash of it, nor the client address
/// reaches the database.
async fn throttle_and_limit_keys_hold_no_addresses(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let canary = "canary.throttle@example.org";
    for _ in 0..3 {
        app.gql(LOGIN, json!({ "e": canary, "p": "wrong password" }))
            .await?;
    }
    let wrong = app
        .gql(
            "query T($t: String!) { reservationByToken(token: $t) { id } }",
            json!({ "t": "kmt_wrongwrongwrongwrongwrongwrongwrongwrong" }),
        )
        .await?;
    assert!(wrong["errors"].is_array() || wrong["data"]["reservationByToken"].is_null());
    // Rate-limit counters reach the database within a sync period.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert!(app.count_rows("login_throttle", "1 = 1")? >= 2);
    assert!(app.count_rows("rate_windows", "1 = 1")? >= 1);
    let raw = app.raw_database()?;
    kluis_tests::assert_absent(&raw, canary, "the database");
    use sha2::Digest;
    let plain = hex::encode(sha2::Sha256::digest(canary.as_bytes()));
    kluis_tests::assert_absent(&raw, &plain, "the database");
    for scope in [
        "address:127.0.0.1",
        "badauth:127.0.0.1",
        "webhook:127.0.0.1",
    ] {
        kluis_tests::assert_absent(&raw, scope, "the database");
    }
    Ok(())
}
both_backends!(
    throttle_and_limit_keys_hold_no_addresses,
    throttle_and_limit_keys_hold_no_addresses
);

/// Idempotency records (which keep a booking's sealed manage token) and
/// login throttles end: the purge deletes them a day, respectively an hour
/// after their last failure, and not before.
async fn idempotency_records_and_throttles_are_purged_on_schedule(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let booked = app
        .gql(
            CREATE,
            json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(10), "partySize": 2,
                "guest": { "name": "Ida Idem", "email": "ida@example.org" }, "idempotencyKey": new_key() } }),
        )
        .await?;
    assert!(booked["errors"].is_null(), "{booked}");
    for _ in 0..3 {
        app.gql(
            LOGIN,
            json!({ "e": "someone@example.org", "p": "wrong password" }),
        )
        .await?;
    }
    let records = app.count_rows("idempotency_keys", "1 = 1")?;
    let throttles = app.count_rows("login_throttle", "1 = 1")?;
    assert!(records >= 1 && throttles >= 2, "{records} {throttles}");
    assert_eq!(app.purge_expired().await?, store::Purged::default());
    app.advance(chrono::Duration::minutes(61));
    let purged = app.purge_expired().await?;
    assert_eq!(purged.idempotency_records, 0, "{purged:?}");
    assert_eq!(i64::try_from(purged.throttles)?, throttles, "{purged:?}");
    app.advance(chrono::Duration::hours(24));
    let purged = app.purge_expired().await?;
    assert_eq!(
        i64::try_from(purged.idempotency_records)?,
        records,
        "{purged:?}"
    );
    assert_eq!(app.count_rows("idempotency_keys", "1 = 1")?, 0);
    assert_eq!(app.count_rows("login_throttle", "1 = 1")?, 0);
    Ok(())
}
both_backends!(
    idempotency_records_and_throttles_are_purged_on_schedule,
    idempotency_records_and_throttles_are_purged_on_schedule
);
