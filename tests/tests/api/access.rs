use std::collections::BTreeSet;

use anyhow::Result;
use kluis_tests::{
    Backend, DEPOSIT_VENUE, Options, TestApp, both_backends, error_code, new_key, tomorrow_local,
    user_error_code,
};
use serde_json::{Value, json};

const LOGIN: &str = "mutation L($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token expiresAt staff { email } } }";

fn message(answer: &Value) -> String {
    answer["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A guest whose every detail a partner must not see elsewhere.
fn pat() -> Value {
    json!({ "name": "Pat Partner", "email": "pat@example.org", "phone": "+31 6 1234 5678", "notes": "quiet table" })
}

async fn logins_sessions_and_logout(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let me = app
        .gql_as(
            &admin,
            "{ me { email active roles { role everyVenue venue { id } } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        me["data"]["me"]["roles"],
        json!([{ "role": "ADMIN", "everyVenue": true, "venue": null }]),
        "{me}"
    );

    let created = app
        .gql_as(
            &admin,
            "mutation C($i: CreateStaffInput!) { createStaff(input: $i) { staff { id email } } }",
            json!({ "i": { "email": "Sam@Example.org", "password": "a perfectly fine phrase", "role": "STAFF" } }),
        )
        .await?;
    assert_eq!(
        created["data"]["createStaff"]["staff"]["email"], "sam@example.org",
        "{created}"
    );
    let weak = app
        .gql_as(
            &admin,
            "mutation C($i: CreateStaffInput!) { createStaff(input: $i) { staff { id } userErrors { field code } } }",
            json!({ "i": { "email": "weak@example.org", "password": "1q2w3e4r5t6y", "role": "STAFF" } }),
        )
        .await?;
    assert_eq!(
        user_error_code(&weak, "createStaff"),
        Some("INVALID"),
        "a common password was accepted: {weak}"
    );

    let wrong = app
        .gql(
            LOGIN,
            json!({ "e": "sam@example.org", "p": "not the password" }),
        )
        .await?;
    let unknown = app
        .gql(
            LOGIN,
            json!({ "e": "nobody@example.org", "p": "not the password" }),
        )
        .await?;
    assert_eq!(error_code(&wrong), Some("UNAUTHENTICATED"));
    assert_eq!(
        wrong["errors"], unknown["errors"],
        "an unknown e-mail must look like a wrong password"
    );

    let session = app
        .gql(
            LOGIN,
            json!({ "e": " SAM@example.org ", "p": "a perfectly fine phrase" }),
        )
        .await?;
    let token = session["data"]["login"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(token.starts_with("kst_"), "{session}");
    assert_eq!(
        session["data"]["login"]["staff"]["email"], "sam@example.org",
        "{session}"
    );
    let out = app
        .gql_as(&token, "mutation { logout { loggedOut } }", json!({}))
        .await?;
    assert_eq!(out["data"]["logout"]["loggedOut"], true, "{out}");
    let after = app.gql_as(&token, "{ me { email } }", json!({})).await?;
    assert_eq!(error_code(&after), Some("UNAUTHENTICATED"), "{after}");

    for header in [
        "Bearer kst_garbage",
        "Bearer kls_nope",
        "Basic c2FtOnB3",
        "Bearer ",
    ] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("authorization", header)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await?;
        let body: Value = response.json().await?;
        assert_eq!(
            error_code(&body),
            Some("UNAUTHENTICATED"),
            "{header}: {body}"
        );
        assert_eq!(
            message(&body),
            "missing, malformed, expired or revoked credentials"
        );
    }
    Ok(())
}
both_backends!(logins_sessions_and_logout, logins_sessions_and_logout);

/// Twelve wrong passwords in one request (aliases): each counts, the tenth
/// locks the account, and even the right password then waits until an
/// admin unlocks it.
async fn repeated_failed_logins_lock_the_account(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    app.gql_as(
        &admin,
        "mutation C($i: CreateStaffInput!) { createStaff(input: $i) { staff { id } } }",
        json!({ "i": { "email": "target@example.org", "password": "the right passphrase", "role": "STAFF" } }),
    )
    .await?;
    let attempts: Vec<String> = (0..12)
        .map(|i| format!("a{i}: login(input: {{ email: \"target@example.org\", password: \"guess number {i}\" }}) {{ token }}"))
        .collect();
    let burst = app
        .gql(&format!("mutation {{ {} }}", attempts.join(" ")), json!({}))
        .await?;
    let codes: Vec<&str> = burst["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["extensions"]["code"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(codes.len(), 12, "{burst}");
    assert_eq!(&codes[..3], ["UNAUTHENTICATED"; 3], "{burst}");
    assert!(codes[3..].iter().all(|c| *c == "RATE_LIMITED"), "{burst}");
    let retry_after = burst["errors"][11]["extensions"]["retryAfter"]
        .as_i64()
        .unwrap_or_default();
    assert!(
        retry_after > 14 * 60,
        "locked for 15 minutes, not {retry_after} s"
    );

    let right = app
        .gql(
            LOGIN,
            json!({ "e": "target@example.org", "p": "the right passphrase" }),
        )
        .await?;
    assert_eq!(error_code(&right), Some("RATE_LIMITED"), "{right}");
    let unlocked = app
        .gql_as(
            &admin,
            "mutation { unlockLogin(input: { email: \"target@example.org\" }) { unlocked } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        unlocked["data"]["unlockLogin"]["unlocked"], true,
        "{unlocked}"
    );
    let right = app
        .gql(
            LOGIN,
            json!({ "e": "target@example.org", "p": "the right passphrase" }),
        )
        .await?;
    assert!(right["data"]["login"]["token"].is_string(), "{right}");
    Ok(())
}
both_backends!(
    repeated_failed_logins_lock_the_account,
    repeated_failed_logins_lock_the_account
);

async fn partner_keys_see_only_their_venues(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let lunch = app.venue_id("lunch-room").await?;
    let created = app
        .gql_as(
            &admin,
            "mutation K($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id role venues { id } } } }",
            json!({ "i": { "name": "Booking platform", "venueIds": [lunch] } }),
        )
        .await?;
    let key = created["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("kls_"), "{created}");
    assert_eq!(
        created["data"]["createApiKey"]["apiKey"]["venues"],
        json!([{ "id": lunch }])
    );

    let here = app
        .book("lunch-room", 12)
        .starts_at(&tomorrow_local("Europe/Amsterdam", "12:00")?)
        .guest(pat())
        .bearer(&key)
        .answer()
        .await?;
    let here_id = here["data"]["createReservation"]["reservation"]["id"].clone();
    assert!(here_id.is_string(), "{here}");
    let elsewhere = app
        .book("one-table", 10)
        .guest(pat())
        .bearer(&key)
        .answer()
        .await?;
    assert_eq!(
        error_code(&elsewhere),
        Some("NOT_FOUND"),
        "a key for another venue booked: {elsewhere}"
    );
    let theirs = app.book("one-table", 11).guest(pat()).answer().await?;
    let theirs_id = theirs["data"]["createReservation"]["reservation"]["id"].clone();

    let read = "query R($id: ID!) { reservation(id: $id) { partySize guestName guestEmail } }";
    let own = app.gql_as(&key, read, json!({ "id": here_id })).await?;
    assert_eq!(
        own["data"]["reservation"]["guestName"], "Pat Partner",
        "{own}"
    );
    assert_eq!(
        own["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "partners see no e-mail: {own}"
    );
    let other = app.gql_as(&key, read, json!({ "id": theirs_id })).await?;
    assert_eq!(
        error_code(&other),
        Some("NOT_FOUND"),
        "another venue's reservation must not exist: {other}"
    );
    let probe = app
        .gql_as(
            &key,
            read,
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await?;
    assert_eq!(other["errors"][0]["message"], probe["errors"][0]["message"]);

    let listed = app
        .gql_as(
            &admin,
            "{ apiKeys { edges { node { id lastUsedAt revokedAt } } } }",
            json!({}),
        )
        .await?;
    assert!(
        listed["data"]["apiKeys"]["edges"][0]["node"]["lastUsedAt"].is_string(),
        "{listed}"
    );
    let id = created["data"]["createApiKey"]["apiKey"]["id"].clone();
    let revoked = app
        .gql_as(
            &admin,
            "mutation R($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { revoked } }",
            json!({ "i": { "id": id } }),
        )
        .await?;
    assert_eq!(
        revoked["data"]["revokeApiKey"]["revoked"], true,
        "{revoked}"
    );
    let after = app.gql_as(&key, read, json!({ "id": here_id })).await?;
    assert_eq!(error_code(&after), Some("UNAUTHENTICATED"), "{after}");
    Ok(())
}
both_backends!(
    partner_keys_see_only_their_venues,
    partner_keys_see_only_their_venues
);

async fn staff_of_another_venue_find_nothing(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let booked = app.book("one-table", 12).guest(pat()).answer().await?;
    let id = booked["data"]["createReservation"]["reservation"]["id"].clone();
    let outsider = app.staff("manager", Some("lunch-room")).await?;
    let insider = app.staff("staff", Some("one-table")).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { guestName } }";
    let answer = app.gql_as(&outsider, read, json!({ "id": id })).await?;
    assert_eq!(error_code(&answer), Some("NOT_FOUND"), "{answer}");
    let answer = app.gql_as(&insider, read, json!({ "id": id })).await?;
    assert_eq!(
        answer["data"]["reservation"]["guestName"], "Pat Partner",
        "{answer}"
    );
    let venue = app.venue_id("one-table").await?;
    let day = "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d) { edges { node { id guestName notes } } } }";
    let sheet = app
        .gql_as(
            &insider,
            day,
            json!({ "v": venue, "d": kluis_tests::tomorrow() }),
        )
        .await?;
    assert_eq!(
        sheet["data"]["reservations"]["edges"][0]["node"]["notes"], "quiet table",
        "{sheet}"
    );
    let sheet = app
        .gql_as(
            &outsider,
            day,
            json!({ "v": venue, "d": kluis_tests::tomorrow() }),
        )
        .await?;
    assert_eq!(error_code(&sheet), Some("NOT_FOUND"), "{sheet}");
    let checked_in = app
        .gql_as(
            &insider,
            "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: CHECKED_IN }) { reservation { status } userErrors { code } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(
        checked_in["data"]["setReservationStatus"]["reservation"]["status"], "CHECKED_IN",
        "{checked_in}"
    );
    let anonymous = app
        .gql(
            "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: NO_SHOW }) { reservation { status } userErrors { code } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    Ok(())
}
both_backends!(
    staff_of_another_venue_find_nothing,
    staff_of_another_venue_find_nothing
);

/// The role × field matrix, generated from the schema and the shipped
/// policy: every field of `Reservation` beyond the booking facts is
/// personal, and each role must get exactly what `policy.csv` grants, over
/// HTTP. A new field without a guard or a policy line fails here.
#[tokio::test]
async fn every_role_gets_exactly_what_the_policy_grants_on_every_personal_field() -> Result<()> {
    const BOOKING_FACTS: [&str; 11] = [
        "holdUntil",
        "id",
        "venue",
        "resource",
        // Every table of a combination: no more personal than `resource`.
        "resources",
        "partySize",
        "startsAt",
        "endsAt",
        "status",
        "createdAt",
        "updatedAt",
    ];
    let personal: Vec<String> = api::authz::schema_coordinates()
        .into_iter()
        .filter_map(|c| c.strip_prefix("Reservation.").map(str::to_owned))
        .filter(|field| !BOOKING_FACTS.contains(&field.as_str()))
        .collect();
    assert!(personal.len() >= 4, "{personal:?}");
    let policy = api::authz::check(
        include_str!("../../../policies/model.conf"),
        include_str!("../../../policies/policy.csv"),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let grants = |role: &str, field: &str| {
        policy.permissions.iter().any(|p| {
            p.role == role
                && api::authz::key_match(&format!("Reservation.{field}"), &p.object)
                && (p.action == "read" || p.action == "*")
        })
    };

    // Payment data beyond the facts a payer needs to go on (how much, how
    // it stands) is guarded field by field too.
    const PAYMENT_FACTS: [&str; 10] = [
        "id",
        // Guarded as `reservation(id:)` is: not card data.
        "reservation",
        "kind",
        "gateway",
        "amount",
        "refunded",
        "status",
        "failureReason",
        "createdAt",
        "updatedAt",
    ];
    let card: Vec<String> = api::authz::schema_coordinates()
        .into_iter()
        .filter_map(|c| c.strip_prefix("Payment.").map(str::to_owned))
        .filter(|field| !PAYMENT_FACTS.contains(&field.as_str()))
        .collect();
    assert!(
        card.iter().any(|f| f == "cardBrand") && card.iter().any(|f| f == "cardLast4"),
        "{card:?}"
    );
    let grants_object = |role: &str, object: &str| {
        policy.permissions.iter().any(|p| {
            p.role == role
                && api::authz::key_match(object, &p.object)
                && (p.action == "read" || p.action == "*")
        })
    };

    // A venue that takes deposits, so the booking can carry a payment.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            venues: DEPOSIT_VENUE,
            ..Options::default()
        },
    )
    .await?;
    let booked = app.book("deposit-bistro", 13).guest(pat()).answer().await?;
    let id = booked["data"]["createReservation"]["reservation"]["id"].clone();
    // A paid card on file, as the provider reported it.
    let db = app.store().await?;
    let reservation = domain::ReservationId::parse(id.as_str().unwrap_or_default())?;
    let amount = domain::payments::Money::new(2000, domain::payments::Currency::parse("EUR")?)?;
    let payment = match db.begin_payment(
        &store::NewPayment {
            reservation,
            kind: "charge",
            gateway: "stripe",
            amount,
            idempotency_key: &new_key(),
            request_hash: "matrix",
        },
        app.now(),
    )? {
        store::BeginPayment::New(payment) | store::BeginPayment::Existing(payment) => payment,
    };
    db.record_payment_answer(
        &payment.id,
        &store::ProviderAnswer {
            reference: Some("pi_matrix"),
            step: &domain::payments::PaymentStep::Succeeded,
            card_brand: Some("visa"),
            card_last4: Some("4242"),
            source: "start",
        },
        app.now(),
    )?;
    let manage = booked["data"]["createReservation"]["manageToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let admin = app.staff("admin", None).await?;
    let venue = app.venue_id("deposit-bistro").await?;
    let partner = app.partner_key(&admin, &venue, "matrix").await?;
    let callers = [
        ("admin", admin.clone()),
        (
            "manager",
            app.staff("manager", Some("deposit-bistro")).await?,
        ),
        ("staff", app.staff("staff", Some("deposit-bistro")).await?),
        ("partner", partner),
        ("guest", manage),
    ];
    // Object fields need a selection of their own.
    let selection = personal
        .iter()
        .map(|field| {
            if field == "payments" {
                format!("payments {{ id {} }}", card.join(" "))
            } else if field == "consents" || field == "consentState" {
                format!("{field} {{ purpose }}")
            } else {
                field.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut checked = BTreeSet::new();
    for (role, token) in &callers {
        let answer = app
            .gql_as(
                token,
                &format!("query R($id: ID!) {{ reservation(id: $id) {{ id {selection} }} }}"),
                json!({ "id": id }),
            )
            .await?;
        let denied: BTreeSet<String> = answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["extensions"]["code"] == "FORBIDDEN")
            .filter_map(|e| e["path"][1].as_str().map(str::to_owned))
            .collect();
        let whole_query_denied = answer["data"]["reservation"].is_null();
        for field in &personal {
            let expected = grants(role, field) && (*role != "guest");
            let got = !whole_query_denied && !denied.contains(field);
            assert_eq!(
                got, expected,
                "{role} reading Reservation.{field}: {answer}"
            );
            checked.insert((role.to_string(), field.clone()));
        }
        // Card fields, for those who reach the payments at all.
        let payments = &answer["data"]["reservation"]["payments"][0];
        if payments.is_object() {
            for field in &card {
                let expected = grants_object(role, &format!("Payment.{field}"));
                let denied = answer["errors"].as_array().into_iter().flatten().any(|e| {
                    e["extensions"]["code"] == "FORBIDDEN" && e["path"][3].as_str() == Some(field)
                });
                assert_eq!(
                    payments[field].is_string(),
                    expected,
                    "{role} reading Payment.{field}: {answer}"
                );
                assert_eq!(denied, !expected, "{role} Payment.{field}: {answer}");
                checked.insert((role.to_string(), format!("Payment.{field}")));
            }
        }
    }
    // The guest reads through their token, as the policy's guest role.
    let manage = callers[4].1.clone();
    let own = app
        .gql(
            &format!("query T($t: String!) {{ reservationByToken(token: $t) {{ {selection} }} }}"),
            json!({ "t": manage }),
        )
        .await?;
    for field in &personal {
        assert_eq!(
            own["data"]["reservationByToken"][field].is_null(),
            !grants("guest", field),
            "guest {field}: {own}"
        );
    }
    for field in &card {
        assert_eq!(
            own["data"]["reservationByToken"]["payments"][0][field].is_string(),
            grants_object("guest", &format!("Payment.{field}")),
            "guest Payment.{field}: {own}"
        );
    }
    // Every role that reaches payments through a reservation had its card
    // fields checked; the others (staff, partners) never reach them here,
    // and the payment mutations' matrix covers what those get there.
    let reaching = callers
        .iter()
        .filter(|(role, _)| *role != "guest" && grants(role, "payments"))
        .count();
    assert!(reaching >= 2, "admin and manager read payments");
    assert_eq!(
        checked.len(),
        callers.len() * personal.len() + reaching * card.len()
    );
    Ok(())
}

async fn policy_edits_apply_live_and_broken_ones_are_refused(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let booked = app.book("one-table", 14).guest(pat()).answer().await?;
    let id = booked["data"]["createReservation"]["reservation"]["id"].clone();
    let staff = app.staff("staff", Some("one-table")).await?;
    let admin = app.staff("admin", None).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { guestEmail } }";
    let before = app.gql_as(&staff, read, json!({ "id": id })).await?;
    assert_eq!(error_code(&before), Some("FORBIDDEN"), "{before}");

    let policy = app.policy_dir().join("policy.csv");
    let original = std::fs::read_to_string(&policy)?;
    std::fs::write(
        &policy,
        format!("{original}\np, staff, Reservation.guestEmail, read\n"),
    )?;
    let mut granted = Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        granted = app.gql_as(&staff, read, json!({ "id": id })).await?;
        if granted["data"]["reservation"]["guestEmail"] == "pat@example.org" {
            break;
        }
    }
    assert_eq!(
        granted["data"]["reservation"]["guestEmail"], "pat@example.org",
        "not applied within 2 s: {granted}"
    );

    std::fs::write(
        &policy,
        format!("{original}\np, staff, Reservation.creditCard, read\n"),
    )?;
    let mut status = Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = app
            .gql_as(&admin, "{ policyStatus { hash lastError } }", json!({}))
            .await?;
        if status["data"]["policyStatus"]["lastError"].is_string() {
            break;
        }
    }
    let last_error = status["data"]["policyStatus"]["lastError"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last_error.contains("Reservation.creditCard") && last_error.contains("policy.csv:"),
        "{status}"
    );
    // A refused edit is an alert too: someone changed who may see what.
    assert_eq!(
        app.count_rows(
            "alerts",
            "rule = 'policy_rejected' AND principal = 'system' AND status = 'open'"
        )?,
        1
    );
    let still = app.gql_as(&staff, read, json!({ "id": id })).await?;
    assert_eq!(
        still["data"]["reservation"]["guestEmail"], "pat@example.org",
        "the old policy must stay: {still}"
    );
    let model = app.policy_dir().join("model.conf");
    let model_text = std::fs::read_to_string(&model)?;
    std::fs::write(
        &model,
        model_text.replace(
            "some(where (p.eft == allow))",
            "!some(where (p.eft == deny))",
        ),
    )?;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let anonymous = app.gql(read, json!({ "id": id })).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "a broken model widened access: {anonymous}"
    );
    Ok(())
}
both_backends!(
    policy_edits_apply_live_and_broken_ones_are_refused,
    policy_edits_apply_live_and_broken_ones_are_refused
);

/// Waits until `policyStatus.lastError` is set to something containing
/// `needle` (or cleared, for `None`), for at most two seconds.
async fn policy_error_becomes(app: &TestApp, admin: &str, needle: Option<&str>) -> Result<Value> {
    let mut status = Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = app
            .gql_as(admin, "{ policyStatus { hash lastError } }", json!({}))
            .await?;
        let last_error = &status["data"]["policyStatus"]["lastError"];
        let reached = match needle {
            Some(needle) => last_error.as_str().is_some_and(|e| e.contains(needle)),
            None => last_error.is_null(),
        };
        if reached {
            return Ok(status);
        }
    }
    anyhow::bail!("policyStatus did not reach {needle:?} within 2 s: {status}")
}

/// Model edits that Casbin would read as "allow everyone" (a second effect
/// or matcher below the shipped one, a matcher of `true`) are refused by
/// the live reload: the old policy stays, admins see why, an alert is
/// raised, and a stranger still cannot read a guest's e-mail.
async fn model_edits_that_widen_access_are_refused_live(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let booked = app.book("one-table", 15).guest(pat()).answer().await?;
    let id = booked["data"]["createReservation"]["reservation"]["id"].clone();
    let admin = app.staff("admin", None).await?;
    // Loads the admin's role before the model breaks: a refused model
    // holds back role changes too.
    policy_error_becomes(&app, &admin, None).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { guestEmail } }";
    let model = app.policy_dir().join("model.conf");
    let original = std::fs::read_to_string(&model)?;
    let matcher = original
        .lines()
        .find(|line| line.starts_with("m ="))
        .unwrap_or_default()
        .to_owned();
    let edits = [
        (
            format!("{original}\n[policy_effect]\ne = !some(where (p.eft == deny))\n"),
            "duplicate `e` in [policy_effect]",
        ),
        (
            format!("{original}\nm = true\n"),
            "duplicate `m` in [matchers]",
        ),
        (
            original.replace(&matcher, "m = true"),
            "unsupported matcher",
        ),
    ];
    for (edit, reason) in edits {
        std::fs::write(&model, &edit)?;
        let status = policy_error_becomes(&app, &admin, Some(reason)).await?;
        assert!(
            status["data"]["policyStatus"]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("model.conf:")),
            "{status}"
        );
        let anonymous = app.gql(read, json!({ "id": id })).await?;
        assert_eq!(
            error_code(&anonymous),
            Some("UNAUTHENTICATED"),
            "a refused model widened access: {anonymous}"
        );
        assert!(
            app.count_rows(
                "alerts",
                "rule = 'policy_rejected' AND principal = 'system'"
            )? >= 1
        );
        // Back to the shipped model, so the next edit is a change again.
        std::fs::write(&model, &original)?;
        policy_error_becomes(&app, &admin, None).await?;
    }
    Ok(())
}
both_backends!(
    model_edits_that_widen_access_are_refused_live,
    model_edits_that_widen_access_are_refused_live
);

const SAVE_VENUE: &str = "mutation S($v: VenueInput!) {
    saveVenue(input: $v) { venue { id slug name resources { slug capacity } } userErrors { field code } } }";

fn venue_input(slug: &str, name: &str, zone: &str) -> Value {
    json!({ "slug": slug, "name": name, "timeZone": zone, "country": "NL",
        "openingHours": [{ "weekday": "MONDAY", "opens": "12:00", "closes": "14:00" }],
        "resources": [{ "slug": "two", "name": "Table for two", "capacity": 2 },
                      { "slug": "six", "name": "Big table", "kind": "TABLE", "capacity": 6 }] })
}

async fn managers_set_up_their_venue_and_admins_create_venues(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("lunch-room")).await?;
    let staff = app.staff("staff", Some("lunch-room")).await?;
    let admin = app.staff("admin", None).await?;

    let updated = app
        .gql_as(
            &manager,
            SAVE_VENUE,
            json!({ "v": venue_input("lunch-room", "Lunch Room & Bar", "Europe/Amsterdam") }),
        )
        .await?;
    assert_eq!(
        updated["data"]["saveVenue"]["venue"]["name"], "Lunch Room & Bar",
        "{updated}"
    );
    assert_eq!(
        updated["data"]["saveVenue"]["venue"]["resources"],
        json!([{ "slug": "two", "capacity": 2 }, { "slug": "six", "capacity": 6 }]),
        "the old `four` table must be retired, the new one added"
    );
    let denied = app
        .gql_as(
            &staff,
            SAVE_VENUE,
            json!({ "v": venue_input("lunch-room", "Hijacked", "Europe/Amsterdam") }),
        )
        .await?;
    assert_eq!(error_code(&denied), Some("FORBIDDEN"), "{denied}");
    let elsewhere = app
        .gql_as(
            &manager,
            SAVE_VENUE,
            json!({ "v": venue_input("one-table", "Mine now", "UTC") }),
        )
        .await?;
    assert_eq!(error_code(&elsewhere), Some("FORBIDDEN"), "{elsewhere}");
    let new_by_manager = app
        .gql_as(
            &manager,
            SAVE_VENUE,
            json!({ "v": venue_input("second-room", "Second", "UTC") }),
        )
        .await?;
    assert_eq!(
        error_code(&new_by_manager),
        Some("FORBIDDEN"),
        "{new_by_manager}"
    );
    let new_by_admin = app
        .gql_as(
            &admin,
            SAVE_VENUE,
            json!({ "v": venue_input("second-room", "Second", "Europe/Brussels") }),
        )
        .await?;
    assert_eq!(
        new_by_admin["data"]["saveVenue"]["venue"]["slug"], "second-room",
        "{new_by_admin}"
    );
    let broken = app
        .gql_as(
            &admin,
            SAVE_VENUE,
            json!({ "v": venue_input("third", "Third", "Mars/Olympus") }),
        )
        .await?;
    assert_eq!(
        kluis_tests::user_errors(&broken, "saveVenue"),
        [("input.timeZone".to_owned(), "INVALID".to_owned())],
        "{broken}"
    );
    let anonymous = app
        .gql(
            SAVE_VENUE,
            json!({ "v": venue_input("fourth", "Fourth", "UTC") }),
        )
        .await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    Ok(())
}
both_backends!(
    managers_set_up_their_venue_and_admins_create_venues,
    managers_set_up_their_venue_and_admins_create_venues
);

/// A field the policy denies answers null with its own FORBIDDEN error and
/// leaves the rest of the answer standing: a staff day sheet that selects
/// payments (never granted to staff) still lists every reservation.
async fn a_denied_field_does_not_wipe_the_day_sheet(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    app.book("one-table", 10).await?;
    app.book("one-table", 13).await?;
    let staff = app.staff("staff", Some("one-table")).await?;
    let sheet = app
        .gql_as(
            &staff,
            "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d) { edges { node { id guestName payments { status } } } } }",
            json!({ "v": venue, "d": kluis_tests::tomorrow() }),
        )
        .await?;
    let rows = sheet["data"]["reservations"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows.len(), 2, "{sheet}");
    for row in &rows {
        assert!(row["node"]["id"].is_string(), "{sheet}");
        assert!(row["node"]["guestName"].is_string(), "{sheet}");
        assert_eq!(row["node"]["payments"], Value::Null, "{sheet}");
    }
    let denied: Vec<&Value> = sheet["errors"]
        .as_array()
        .map(|errors| errors.iter().collect())
        .unwrap_or_default();
    assert_eq!(denied.len(), 2, "one error per denied field: {sheet}");
    for error in denied {
        assert_eq!(error["extensions"]["code"], "FORBIDDEN", "{sheet}");
        assert_eq!(
            error["path"].as_array().and_then(|p| p.last()),
            Some(&json!("payments")),
            "{sheet}"
        );
    }
    Ok(())
}
both_backends!(
    a_denied_field_does_not_wipe_the_day_sheet,
    a_denied_field_does_not_wipe_the_day_sheet
);

/// A booking widget's combined query survives what is missing: no privacy
/// notice published yet is null without an error, and a lookup that finds
/// nothing is null with its own NOT_FOUND while the rest answers.
async fn missing_things_do_not_wipe_a_combined_query(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let answer = app
        .gql(
            "query W($v: ID!, $r: ID!, $t: String!) { venue(id: $v) { name } privacyNotice(venueId: $v) { version } reservation(id: $r) { id } reservationByToken(token: $t) { id } }",
            json!({ "v": venue, "r": uuid::Uuid::new_v4().to_string(),
                    "t": format!("kmt_{}", "A".repeat(43)) }),
        )
        .await?;
    assert!(answer["data"]["venue"]["name"].is_string(), "{answer}");
    assert_eq!(answer["data"]["privacyNotice"], Value::Null, "{answer}");
    assert_eq!(answer["data"]["reservation"], Value::Null, "{answer}");
    assert_eq!(
        answer["data"]["reservationByToken"],
        Value::Null,
        "{answer}"
    );
    let paths: BTreeSet<String> = answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["path"][0].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(!paths.contains("privacyNotice"), "{answer}");
    assert!(!paths.contains("venue"), "{answer}");
    Ok(())
}
both_backends!(
    missing_things_do_not_wipe_a_combined_query,
    missing_things_do_not_wipe_a_combined_query
);
