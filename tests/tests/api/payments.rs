use anyhow::{Context, Result};
use api::config::Environment;
use kluis_tests::{
    Backend, Booked, CREATE, DEPOSIT_VENUE, Options, STRIPE_WEBHOOK_SECRET, TestApp, both_backends,
    error_code, new_key, payload, stripe_config, stripe_fixture, tomorrow_at, user_error_code,
    user_errors,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The guest sends the manage token as `Authorization: Bearer kmt_…`.
const START: &str = "mutation P($r: ID!, $g: PaymentGateway!, $t: String!, $k: String!) { startPayment(input: { reservationId: $r, gateway: $g, token: $t, idempotencyKey: $k }) { nextStep redirectUrl clientSecret payment { id kind gateway status amount { amount currency } cardBrand cardLast4 failureReason } userErrors { field code message } } }";
const COMPLETE: &str = "mutation C($p: ID!) { completePayment(input: { paymentId: $p }) { nextStep payment { status } userErrors { field code } } }";
const MINE: &str = "query T($t: String!) { reservationByToken(token: $t) { status holdUntil payments { status amount { amount } refunded { amount } } } }";

struct Paying {
    app: TestApp,
    stripe: MockServer,
}

async fn paying(backend: Backend, timeout_seconds: u64) -> Result<Paying> {
    let stripe = MockServer::start().await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            env: Environment::Production,
            venues: DEPOSIT_VENUE,
            tls: None,
            payments: stripe_config(&stripe.uri(), timeout_seconds)?,
            ..Options::default()
        },
    )
    .await?;
    Ok(Paying { app, stripe })
}

/// Asks a deposit of 10 EUR a guest: its bookings wait for it, pending.
const BISTRO: &str = "deposit-bistro";

fn intent(id: &str, status: &str, extra: Value) -> Result<Value> {
    let mut changes = json!({ "id": id, "status": status, "amount": 2000, "currency": "eur",
        "payment_method": { "id": "pm_x", "object": "payment_method", "card": { "brand": "visa", "last4": "4242" } } });
    if let (Some(target), Some(extra)) = (changes.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    stripe_fixture("payment_intent", changes)
}

/// The one POST kluis may make to start a payment: authenticated,
/// idempotent, in minor units, with the PaymentMethod token only.
fn start_matches(answer: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", "Bearer sk_test_kluis"))
        .and(body_string_contains("amount=2000"))
        .and(body_string_contains("currency=eur"))
        .and(body_string_contains("payment_method=pm_card_visa"))
        .respond_with(answer)
}

fn signed(body: &[u8], at: i64, secret: &str) -> String {
    plugins::stripe::sign_webhook(secret, at, body)
}

async fn post_webhook(app: &TestApp, body: &[u8], signature: &str) -> Result<(u16, Value)> {
    let response = app
        .client
        .post(format!("{}/webhooks/stripe", app.address))
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn a_deposit_paid_without_challenge_confirms_the_booking(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    start_matches(ResponseTemplate::new(200).set_body_json(intent(
        "pi_ok",
        "succeeded",
        json!({}),
    )?))
    .expect(1)
    .mount(&stripe)
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_ok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_ok",
            "succeeded",
            json!({}),
        )?))
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let key = new_key();
    let variables = json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": key });
    let paid = app.gql_as(&token, START, variables.clone()).await?;
    let step = payload(&paid, "startPayment")?;
    assert_eq!(step["nextStep"], "DONE", "{paid}");
    let payment = &step["payment"];
    assert_eq!(payment["status"], "SUCCEEDED", "{paid}");
    assert_eq!(
        (payment["kind"].as_str(), payment["gateway"].as_str()),
        (Some("CHARGE"), Some("STRIPE"))
    );
    assert_eq!(
        payment["amount"],
        json!({ "amount": 2000, "currency": "EUR" }),
        "10 EUR per guest, 2 guests"
    );
    assert_eq!(
        (payment["cardBrand"].as_str(), payment["cardLast4"].as_str()),
        (Some("visa"), Some("4242"))
    );
    // The same request again, with the token in the deprecated input
    // field: the same payment, no second provider call.
    let with_argument = "mutation P($r: ID!, $g: PaymentGateway!, $t: String!, $k: String!, $m: String) { startPayment(input: { reservationId: $r, gateway: $g, token: $t, idempotencyKey: $k, manageToken: $m }) { payment { id reservation { id status guestName } } userErrors { field code } } }";
    let mut old_style = variables.clone();
    old_style["m"] = json!(token);
    let again = app.gql(with_argument, old_style.clone()).await?;
    let again_payment = &payload(&again, "startPayment")?["payment"];
    assert_eq!(again_payment["id"], payment["id"], "{again}");
    // The payment leads to its reservation, seen as the guest's own.
    assert_eq!(again_payment["reservation"]["id"], json!(id), "{again}");
    assert_eq!(again_payment["reservation"]["status"], "CONFIRMED");
    assert!(
        again_payment["reservation"]["guestName"].is_string(),
        "{again}"
    );
    // The token in the header and in the field at once: refused on the
    // field, nothing asked of the provider.
    let twice = app.gql_as(&token, with_argument, old_style).await?;
    assert_eq!(
        user_errors(&twice, "startPayment"),
        [("input.manageToken".to_owned(), "INVALID".to_owned())],
        "{twice}"
    );
    assert!(twice["data"]["startPayment"]["payment"].is_null());
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );
    assert!(mine["data"]["reservationByToken"]["holdUntil"].is_null());

    let staff = app.staff("staff", Some("deposit-bistro")).await?;
    let manager = app.staff("manager", Some("deposit-bistro")).await?;
    let read = "query R($id: ID!) { reservation(id: $id) { partySize payments { status } } }";
    let seen_by_staff = app.gql_as(&staff, read, json!({ "id": id })).await?;
    assert_eq!(
        seen_by_staff["data"]["reservation"]["partySize"], 2,
        "{seen_by_staff}"
    );
    assert_eq!(
        error_code(&seen_by_staff),
        Some("FORBIDDEN"),
        "staff never see payment data: {seen_by_staff}"
    );
    let seen_by_manager = app.gql_as(&manager, read, json!({ "id": id })).await?;
    assert_eq!(
        seen_by_manager["data"]["reservation"]["payments"][0]["status"], "SUCCEEDED",
        "{seen_by_manager}"
    );
    Ok(())
}
both_backends!(
    a_deposit_paid_without_challenge_confirms_the_booking,
    a_deposit_paid_without_challenge_confirms_the_booking
);

async fn three_d_secure_is_a_next_action_and_only_the_provider_settles_it(
    backend: Backend,
) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    let challenge = intent(
        "pi_3ds",
        "requires_action",
        json!({ "next_action": { "type": "redirect_to_url",
        "redirect_to_url": { "url": "https://hooks.stripe.com/3d_secure/pi_3ds", "return_url": "https://book.example/done" } } }),
    )?;
    start_matches(ResponseTemplate::new(200).set_body_json(challenge.clone()))
        .expect(1)
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 11).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let step = &started["data"]["startPayment"];
    assert_eq!(
        step["redirectUrl"], "https://hooks.stripe.com/3d_secure/pi_3ds",
        "{started}"
    );
    assert_eq!(step["nextStep"], "CHALLENGE", "{started}");
    assert_eq!(step["payment"]["status"], "REQUIRES_ACTION");
    let payment = step["payment"]["id"].clone();

    // Another booking's manage token reaches neither this reservation nor
    // its payment: not found, and nothing asked of Stripe (one start).
    let other = app.book(BISTRO, 15).expect_status("PENDING").await?;
    let payments_before = app.count_rows("payments", "1 = 1")?;
    let foreign_start = app
        .gql_as(
            &other.token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&foreign_start, "startPayment"),
        [("input.reservationId".to_owned(), "NOT_FOUND".to_owned())],
        "{foreign_start}"
    );
    let foreign_complete = app
        .gql_as(&other.token, COMPLETE, json!({ "p": payment }))
        .await?;
    assert_eq!(
        user_errors(&foreign_complete, "completePayment"),
        [("input.paymentId".to_owned(), "NOT_FOUND".to_owned())],
        "{foreign_complete}"
    );
    assert!(foreign_complete["data"]["completePayment"]["payment"].is_null());
    // The own token twice, in the header and the deprecated field: refused
    // on the field, before anything is looked up.
    let twice = app
        .gql_as(
            &token,
            "mutation C($p: ID!, $m: String) { completePayment(input: { paymentId: $p, manageToken: $m }) { payment { status } userErrors { field code } } }",
            json!({ "p": payment, "m": token }),
        )
        .await?;
    assert_eq!(
        user_errors(&twice, "completePayment"),
        [("input.manageToken".to_owned(), "INVALID".to_owned())],
        "{twice}"
    );
    assert_eq!(app.count_rows("payments", "1 = 1")?, payments_before);

    // The front-end says "done" but Stripe still waits: nothing changes.
    let still = Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_3ds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(challenge))
        .up_to_n_times(1)
        .mount_as_scoped(&stripe)
        .await;
    let claimed = app
        .gql_as(&token, COMPLETE, json!({ "p": payment }))
        .await?;
    assert_eq!(
        claimed["data"]["completePayment"]["payment"]["status"], "REQUIRES_ACTION",
        "{claimed}"
    );
    assert_eq!(claimed["data"]["completePayment"]["nextStep"], "CHALLENGE");
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(mine["data"]["reservationByToken"]["status"], "PENDING");
    drop(still);

    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_3ds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_3ds",
            "succeeded",
            json!({}),
        )?))
        .mount(&stripe)
        .await;
    let done = app
        .gql_as(&token, COMPLETE, json!({ "p": payment }))
        .await?;
    assert_eq!(
        done["data"]["completePayment"]["payment"]["status"], "SUCCEEDED",
        "{done}"
    );
    assert_eq!(done["data"]["completePayment"]["nextStep"], "DONE");
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );
    Ok(())
}
both_backends!(
    three_d_secure_is_a_next_action_and_only_the_provider_settles_it,
    three_d_secure_is_a_next_action_and_only_the_provider_settles_it
);

/// Stripe does not answer in time: the payment stays processing; a verified
/// webhook settles it; forged, stale and repeated webhooks change nothing.
async fn a_timeout_waits_for_the_webhook_and_bad_webhooks_change_nothing(
    backend: Backend,
) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 1).await?;
    let intent_ok = intent("pi_slow", "succeeded", json!({}))?;
    start_matches(
        ResponseTemplate::new(200)
            .set_body_json(intent_ok.clone())
            .set_delay(std::time::Duration::from_secs(3)),
    )
    .mount(&stripe)
    .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_slow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_ok.clone()))
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 12).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let payment = &started["data"]["startPayment"]["payment"];
    assert_eq!(
        payment["status"], "PROCESSING",
        "a timeout leaves the payment processing: {started}"
    );
    let mut object = intent_ok;
    object["metadata"] = json!({ "kluis_payment_id": payment["id"] });
    let event = stripe_fixture(
        "event",
        json!({ "id": "evt_slow", "type": "payment_intent.succeeded", "data": { "object": object } }),
    )?;
    let body = serde_json::to_vec(&event)?;
    let now = chrono::Utc::now().timestamp();

    let (status, _) = post_webhook(&app, &body, &signed(&body, now, "whsec_forged")).await?;
    assert_eq!(status, 400, "a forged webhook");
    let (status, _) = post_webhook(
        &app,
        &body,
        &signed(&body, now - 400, STRIPE_WEBHOOK_SECRET),
    )
    .await?;
    assert_eq!(status, 400, "a stale webhook");
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["payments"][0]["status"], "PROCESSING",
        "{mine}"
    );
    assert_eq!(mine["data"]["reservationByToken"]["status"], "PENDING");

    let oversized = vec![b' '; 257 * 1024];
    let (status, _) = post_webhook(
        &app,
        &oversized,
        &signed(&oversized, now, STRIPE_WEBHOOK_SECRET),
    )
    .await?;
    assert_eq!(status, 413, "an oversized webhook");

    let (status, answer) =
        post_webhook(&app, &body, &signed(&body, now, STRIPE_WEBHOOK_SECRET)).await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["payments"][0]["status"], "SUCCEEDED",
        "{mine}"
    );
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );
    let (status, answer) =
        post_webhook(&app, &body, &signed(&body, now, STRIPE_WEBHOOK_SECRET)).await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    let again = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        again["data"], mine["data"],
        "a duplicate webhook changed something"
    );
    Ok(())
}
both_backends!(
    a_timeout_waits_for_the_webhook_and_bad_webhooks_change_nothing,
    a_timeout_waits_for_the_webhook_and_bad_webhooks_change_nothing
);

async fn a_decline_frees_the_slot_after_the_hold_deadline(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    let intent_declined = stripe_fixture(
        "payment_intent",
        json!({ "id": "pi_no", "status": "requires_payment_method" }),
    )?;
    start_matches(ResponseTemplate::new(402).set_body_json(json!({ "error": { "type": "card_error",
        "code": "card_declined", "decline_code": "insufficient_funds", "payment_intent": intent_declined } })))
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 13).expect_status("PENDING").await?;
    let declined = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let payment = &declined["data"]["startPayment"]["payment"];
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["failureReason"].as_str()
        ),
        (Some("FAILED"), Some("insufficient_funds")),
        "{declined}"
    );

    let venue = app.venue_id("deposit-bistro").await?;
    let other = json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(13), "partySize": 2,
        "guest": { "name": "Next Guest" }, "idempotencyKey": new_key() } });
    let blocked = app.gql(CREATE, other.clone()).await?;
    assert_eq!(
        user_error_code(&blocked, "createReservation"),
        Some("SLOT_TAKEN"),
        "the hold still holds: {blocked}"
    );
    app.advance(chrono::Duration::minutes(16));
    let freed = app.gql(CREATE, other).await?;
    assert_eq!(
        freed["data"]["createReservation"]["reservation"]["status"], "PENDING",
        "{freed}"
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CANCELLED",
        "{mine}"
    );
    let late = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&late, "startPayment"),
        [("input.reservationId".to_owned(), "INVALID".to_owned())],
        "{late}"
    );
    Ok(())
}
both_backends!(
    a_decline_frees_the_slot_after_the_hold_deadline,
    a_decline_frees_the_slot_after_the_hold_deadline
);

async fn refunds_never_exceed_what_was_paid(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    start_matches(ResponseTemplate::new(200).set_body_json(intent(
        "pi_paid",
        "succeeded",
        json!({}),
    )?))
    .mount(&stripe)
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(body_string_contains("payment_intent=pi_paid"))
        .and(body_string_contains("amount=500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_fixture(
            "refund",
            json!({ "id": "re_1", "amount": 500, "currency": "eur" }),
        )?))
        .expect(1)
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 14).expect_status("PENDING").await?;
    let paid = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let payment = paid["data"]["startPayment"]["payment"]["id"].clone();
    let manager = app.staff("manager", Some("deposit-bistro")).await?;
    let refund = "mutation R($p: ID!, $a: Int!, $k: String!) { refundPayment(input: { paymentId: $p, amount: $a, idempotencyKey: $k }) { payment { status refunded { amount } } userErrors { field code message } } }";
    let refuse = |answer: &Value, field: &str, code: &str| {
        assert_eq!(
            user_errors(answer, "refundPayment"),
            [(field.to_owned(), code.to_owned())],
            "{answer}"
        );
        assert!(
            answer["data"]["refundPayment"]["payment"].is_null(),
            "{answer}"
        );
    };
    // More than was paid, nothing, less than nothing, more than money
    // kluis counts: each refused on the amount, Stripe never asked.
    for amount in [2001_i64, 0, -500, 9_000_000_000_000] {
        let wrong = app
            .gql_as(
                &manager,
                refund,
                json!({ "p": payment, "a": amount, "k": new_key() }),
            )
            .await?;
        refuse(&wrong, "input.amount", "INVALID");
    }
    // A malformed key and a negative amount at once: both are told.
    let both = app
        .gql_as(&manager, refund, json!({ "p": payment, "a": -1, "k": "x" }))
        .await?;
    assert_eq!(
        user_errors(&both, "refundPayment"),
        [
            ("input.idempotencyKey".to_owned(), "INVALID".to_owned()),
            ("input.amount".to_owned(), "INVALID".to_owned())
        ],
        "{both}"
    );
    let key = new_key();
    let part = app
        .gql_as(
            &manager,
            refund,
            json!({ "p": payment, "a": 500, "k": key }),
        )
        .await?;
    let refunded = &payload(&part, "refundPayment")?["payment"];
    assert_eq!(refunded["status"], "PARTIALLY_REFUNDED", "{part}");
    assert_eq!(refunded["refunded"]["amount"], 500);
    // A retry with the same key is the same refund: counted once, and
    // Stripe is asked once (the mock expects one call).
    let again = app
        .gql_as(
            &manager,
            refund,
            json!({ "p": payment, "a": 500, "k": key }),
        )
        .await?;
    assert_eq!(
        payload(&again, "refundPayment")?["payment"]["refunded"]["amount"],
        500,
        "{again}"
    );
    let other_amount = app
        .gql_as(
            &manager,
            refund,
            json!({ "p": payment, "a": 700, "k": key }),
        )
        .await?;
    refuse(&other_amount, "", "CONFLICT");
    // What is left is 1500: one cent more is refused.
    let over_left = app
        .gql_as(
            &manager,
            refund,
            json!({ "p": payment, "a": 1501, "k": new_key() }),
        )
        .await?;
    refuse(&over_left, "input.amount", "INVALID");
    let staff = app.staff("staff", Some("deposit-bistro")).await?;
    let denied = app
        .gql_as(
            &staff,
            refund,
            json!({ "p": payment, "a": 100, "k": new_key() }),
        )
        .await?;
    assert_eq!(error_code(&denied), Some("FORBIDDEN"), "{denied}");
    assert!(denied["data"]["refundPayment"].is_null(), "{denied}");
    // Staff and managers of another venue do not even learn that the
    // payment exists: the same answer as for an unknown id.
    for role in ["staff", "manager"] {
        let elsewhere = app.staff(role, Some("guarantee-grill")).await?;
        let foreign = app
            .gql_as(
                &elsewhere,
                refund,
                json!({ "p": payment, "a": 100, "k": new_key() }),
            )
            .await?;
        refuse(&foreign, "input.paymentId", "NOT_FOUND");
        let unknown = app
            .gql_as(
                &elsewhere,
                refund,
                json!({ "p": "pay_unknown", "a": 100, "k": new_key() }),
            )
            .await?;
        assert_eq!(
            user_errors(&unknown, "refundPayment"),
            user_errors(&foreign, "refundPayment"),
            "{role}: {unknown}"
        );
    }
    // Anonymous callers are told to log in.
    let anonymous = app
        .gql(refund, json!({ "p": payment, "a": 100, "k": new_key() }))
        .await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    assert_eq!(
        app.count_rows("payment_events", "source = 'refund'")?,
        1,
        "one refund in the history"
    );
    assert_eq!(
        app.count_rows("payment_refunds", "1 = 1")?,
        1,
        "nothing else was even begun"
    );
    Ok(())
}
both_backends!(
    refunds_never_exceed_what_was_paid,
    refunds_never_exceed_what_was_paid
);

#[tokio::test]
async fn unknown_gateways_and_malformed_tokens_are_refused_before_any_provider_call() -> Result<()>
{
    let Paying { app, stripe } = paying(Backend::Sqlite, 5).await?;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 15).expect_status("PENDING").await?;
    // A gateway the schema does not name never reaches a resolver.
    let bitcoin = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "bitcoin", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(error_code(&bitcoin), Some("BAD_USER_INPUT"), "{bitcoin}");
    let message = bitcoin["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("PaymentGateway"), "{message}");
    for (gateway, card, field, reason) in [
        (
            "PAYPAL",
            "pm_card_visa",
            "input.gateway",
            "`paypal` is not configured",
        ),
        (
            "STRIPE",
            "4242424242424242",
            "input.token",
            "PaymentMethod id",
        ),
    ] {
        let answer = app
            .gql_as(
                &token,
                START,
                json!({ "r": id, "g": gateway, "t": card, "k": new_key() }),
            )
            .await?;
        assert_eq!(
            user_errors(&answer, "startPayment"),
            [(field.to_owned(), "INVALID".to_owned())],
            "{answer}"
        );
        let message = answer["data"]["startPayment"]["userErrors"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(reason), "{message}");
        assert!(
            !answer.to_string().contains("4242424242424242"),
            "the card number was echoed"
        );
    }
    let onsite = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "ONSITE", "t": "onsite", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        onsite["data"]["startPayment"]["payment"]["status"], "PROCESSING",
        "{onsite}"
    );
    Ok(())
}

/// A guarantee venue saves the card (nothing charged) to confirm the
/// booking; after a no-show a manager charges the fee to that card.
async fn a_card_guarantee_confirms_and_a_no_show_fee_charges_it(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(stripe_fixture("customer", json!({ "id": "cus_1" }))?),
        )
        .expect(1)
        .mount(&stripe)
        .await;
    let setup = stripe_fixture(
        "setup_intent",
        json!({ "id": "seti_1", "status": "succeeded", "customer": "cus_1", "payment_method": "pm_saved" }),
    )?;
    Mock::given(method("POST"))
        .and(path("/v1/setup_intents"))
        .and(body_string_contains("usage=off_session"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup.clone()))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/setup_intents/seti_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("off_session=true"))
        .and(body_string_contains("amount=2500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_fee",
            "succeeded",
            json!({ "amount": 2500 }),
        )?))
        .expect(1)
        .mount(&stripe)
        .await;
    let Booked {
        id: reservation,
        token,
    } = app
        .book("guarantee-grill", 20)
        .guest(json!({ "name": "Nora Noshow" }))
        .expect_status("PENDING")
        .await?;
    let saved = app
        .gql_as(
            &token,
            START,
            json!({ "r": reservation, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        saved["data"]["startPayment"]["payment"]["status"], "SUCCEEDED",
        "{saved}"
    );
    assert_eq!(
        saved["data"]["startPayment"]["payment"]["kind"],
        "GUARANTEE"
    );
    assert_eq!(saved["data"]["startPayment"]["nextStep"], "DONE");
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );

    let staff = app.staff("staff", Some("guarantee-grill")).await?;
    let manager = app.staff("manager", Some("guarantee-grill")).await?;
    let charge = "mutation F($r: ID!, $k: String!) { chargeNoShowFee(input: { reservationId: $r, idempotencyKey: $k }) { nextStep payment { id kind status amount { amount } } userErrors { field code } } }";
    let early = app
        .gql_as(
            &manager,
            charge,
            json!({ "r": reservation, "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&early, "chargeNoShowFee"),
        [("input.reservationId".to_owned(), "INVALID".to_owned())],
        "only after a no-show: {early}"
    );
    // Before the booking starts the guest may still come: no no-show yet,
    // and no fee even for a no-show recorded early by other means.
    let mark = "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: NO_SHOW }) { reservation { status } userErrors { code } } }";
    let too_soon = app
        .gql_as(&staff, mark, json!({ "id": reservation }))
        .await?;
    assert_eq!(
        user_error_code(&too_soon, "setReservationStatus"),
        Some("INVALID"),
        "{too_soon}"
    );
    app.execute_sql(&format!(
        "UPDATE reservations SET status = 'no_show' WHERE id = '{reservation}'"
    ))?;
    let fee_too_soon = app
        .gql_as(
            &manager,
            charge,
            json!({ "r": reservation, "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&fee_too_soon, "chargeNoShowFee"),
        [("input.reservationId".to_owned(), "INVALID".to_owned())],
        "{fee_too_soon}"
    );
    app.execute_sql(&format!(
        "UPDATE reservations SET status = 'confirmed' WHERE id = '{reservation}'"
    ))?;
    // The evening comes and the guest does not.
    app.advance(chrono::Duration::days(2));
    let marked = app
        .gql_as(
            &staff,
            "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: NO_SHOW }) { reservation { status } userErrors { code } } }",
            json!({ "id": reservation }),
        )
        .await?;
    assert_eq!(
        marked["data"]["setReservationStatus"]["reservation"]["status"], "NO_SHOW",
        "{marked}"
    );
    let by_staff = app
        .gql_as(&staff, charge, json!({ "r": reservation, "k": new_key() }))
        .await?;
    assert_eq!(error_code(&by_staff), Some("FORBIDDEN"), "{by_staff}");
    let elsewhere = app.staff("manager", Some("deposit-bistro")).await?;
    let foreign = app
        .gql_as(
            &elsewhere,
            charge,
            json!({ "r": reservation, "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&foreign, "chargeNoShowFee"),
        [("input.reservationId".to_owned(), "NOT_FOUND".to_owned())],
        "a manager of another venue: {foreign}"
    );
    let key = new_key();
    let fee = app
        .gql_as(&manager, charge, json!({ "r": reservation, "k": key }))
        .await?;
    let payment = &payload(&fee, "chargeNoShowFee")?["payment"];
    assert_eq!(
        (payment["kind"].as_str(), payment["status"].as_str()),
        (Some("NO_SHOW_FEE"), Some("SUCCEEDED")),
        "{fee}"
    );
    assert_eq!(fee["data"]["chargeNoShowFee"]["nextStep"], "DONE");
    // The same key again: the same fee, Stripe charged once (the mock
    // expects one charge) and only asked how it stands.
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_fee"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_fee",
            "succeeded",
            json!({ "amount": 2500 }),
        )?))
        .mount(&stripe)
        .await;
    let again = app
        .gql_as(&manager, charge, json!({ "r": reservation, "k": key }))
        .await?;
    assert_eq!(
        payload(&again, "chargeNoShowFee")?["payment"]["id"],
        payment["id"],
        "{again}"
    );
    assert_eq!(payment["amount"]["amount"], 2500);

    // A year on, retention anonymizes the guest and asks Stripe to delete
    // the customer that holds the saved card.
    Mock::given(method("DELETE"))
        .and(path("/v1/customers/cus_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_1", "object": "customer", "deleted": true })),
        )
        .expect(1)
        .mount(&stripe)
        .await;
    let run = app.run_retention(400, false).await?;
    assert_eq!(run.anonymized, 1, "{run:?}");
    assert_eq!(
        run.saved_cards,
        vec![("stripe".to_owned(), "seti_1".to_owned())]
    );
    Ok(())
}
both_backends!(
    a_card_guarantee_confirms_and_a_no_show_fee_charges_it,
    a_card_guarantee_confirms_and_a_no_show_fee_charges_it
);

async fn erasure_waits_while_a_payment_is_in_flight(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 1).await?;
    start_matches(
        ResponseTemplate::new(200)
            .set_body_json(intent("pi_slow", "succeeded", json!({}))?)
            .set_delay(std::time::Duration::from_secs(3)),
    )
    .mount(&stripe)
    .await;
    let Booked { id, token } = app.book(BISTRO, 16).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        started["data"]["startPayment"]["payment"]["status"], "PROCESSING",
        "{started}"
    );
    let erase = app
        .gql_as(
            &token,
            "mutation X { eraseMyData { report { alreadyErased } userErrors { code message } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        kluis_tests::user_error_code(&erase, "eraseMyData"),
        Some("CONFLICT"),
        "{erase}"
    );
    let message = erase["data"]["eraseMyData"]["userErrors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("payment is still in flight"), "{message}");
    assert_eq!(
        app.count_rows("guests", "erased_at IS NULL")?,
        1,
        "nothing was erased"
    );
    Ok(())
}
both_backends!(
    erasure_waits_while_a_payment_is_in_flight,
    erasure_waits_while_a_payment_is_in_flight
);

/// The fields of `Payment` that carry card data: all but the facts a payer
/// needs to go on, from the schema itself (a new one is guarded or fails
/// here).
fn card_fields() -> Vec<String> {
    const FACTS: [&str; 10] = [
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
    api::authz::schema_coordinates()
        .into_iter()
        .filter_map(|c| c.strip_prefix("Payment.").map(str::to_owned))
        .filter(|field| !FACTS.contains(&field.as_str()))
        .collect()
}

/// Whether the shipped policy lets `role` read `object`.
fn policy_grants(role: &str, object: &str) -> Result<bool> {
    let policy = api::authz::check(
        include_str!("../../../policies/model.conf"),
        include_str!("../../../policies/policy.csv"),
    )
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(policy.permissions.iter().any(|p| {
        p.role == role
            && api::authz::key_match(object, &p.object)
            && (p.action == "read" || p.action == "*")
    }))
}

/// Checks the card fields of the payment at `path` in a mutation's answer:
/// each answers exactly when the policy grants it to `role` (with a value
/// when the provider `told` the card); a denied one is null with FORBIDDEN
/// on that field, and the payment still answers.
fn assert_card_fields(answer: &Value, path: &[&str], role: &str, told: bool) -> Result<()> {
    let mut payment = &answer["data"];
    for step in path {
        payment = &payment[*step];
    }
    assert!(
        payment["status"].is_string(),
        "{role}: the payment itself answers at {path:?}: {answer}"
    );
    let fields = card_fields();
    assert!(fields.len() >= 2, "{fields:?}");
    for field in &fields {
        let granted = policy_grants(role, &format!("Payment.{field}"))?;
        let denied = answer["errors"].as_array().into_iter().flatten().any(|e| {
            e["extensions"]["code"] == "FORBIDDEN"
                && e["path"].as_array().and_then(|p| p.last()) == Some(&json!(field))
        });
        assert_eq!(
            payment[field].is_string(),
            granted && told,
            "{role} reading Payment.{field} at {path:?}: {answer}"
        );
        assert_eq!(denied, !granted, "{role} Payment.{field}: {answer}");
    }
    Ok(())
}

/// Card brand and last four come back from every payment mutation only to
/// those the policy lets read them: the guest paying with their manage
/// token, managers and admins; never a partner key or staff.
async fn card_details_answer_only_to_roles_the_policy_grants(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    let card = card_fields().join(" ");
    let start = format!(
        "mutation P($r: ID!, $k: String!, $m: String) {{ startPayment(input: {{ reservationId: $r, gateway: STRIPE, token: \"pm_card_visa\", idempotencyKey: $k, manageToken: $m }}) {{ payment {{ id status {card} }} }} }}"
    );
    let complete = format!(
        "mutation C($p: ID!, $m: String) {{ completePayment(input: {{ paymentId: $p, manageToken: $m }}) {{ payment {{ id status {card} }} }} }}"
    );
    let refund = format!(
        "mutation R($p: ID!, $k: String!) {{ refundPayment(input: {{ paymentId: $p, amount: 100, idempotencyKey: $k }}) {{ payment {{ id status {card} }} }} }}"
    );
    let charge = format!(
        "mutation F($r: ID!, $k: String!) {{ chargeNoShowFee(input: {{ reservationId: $r, idempotencyKey: $k }}) {{ payment {{ id status {card} }} }} }}"
    );
    let admin = app.staff("admin", None).await?;
    let manager = app.staff("manager", Some("deposit-bistro")).await?;
    let staff = app.staff("staff", Some("deposit-bistro")).await?;
    let venue = app.venue_id("deposit-bistro").await?;
    let partner = app.partner_key(&admin, &venue, "card check").await?;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_fixture(
            "refund",
            json!({ "id": "re_card", "amount": 100, "currency": "eur" }),
        )?))
        .mount(&stripe)
        .await;

    // (policy role, bearer token, whether the manage token goes as argument)
    let callers: [(&str, Option<&str>, bool); 5] = [
        ("guest", None, true),
        ("guest", Some("bearer"), false),
        ("partner", Some(&partner), false),
        ("manager", Some(&manager), false),
        ("admin", Some(&admin), false),
    ];
    for (n, (role, bearer, token_argument)) in callers.into_iter().enumerate() {
        let reference = format!("pi_card_{n}");
        let answer =
            ResponseTemplate::new(200).set_body_json(intent(&reference, "succeeded", json!({}))?);
        Mock::given(method("POST"))
            .and(path("/v1/payment_intents"))
            .respond_with(answer.clone())
            .up_to_n_times(1)
            .mount(&stripe)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v1/payment_intents/{reference}")))
            .respond_with(answer)
            .mount(&stripe)
            .await;
        let hour = 8 + u32::try_from(n)?;
        let Booked {
            id: reservation,
            token: manage,
        } = app.book(BISTRO, hour).expect_status("PENDING").await?;
        let bearer = match bearer {
            Some("bearer") => Some(manage.clone()),
            other => other.map(str::to_owned),
        };
        let argument = token_argument.then(|| manage.clone());
        let send = |query: String, variables: Value| {
            let bearer = bearer.clone();
            let app = &app;
            async move {
                match bearer {
                    Some(token) => app.gql_as(&token, &query, variables).await,
                    None => app.gql(&query, variables).await,
                }
            }
        };
        let started = send(
            start.clone(),
            json!({ "r": reservation, "k": new_key(), "m": argument }),
        )
        .await?;
        assert_card_fields(&started, &["startPayment", "payment"], role, true)?;
        let payment = started["data"]["startPayment"]["payment"]["id"].clone();
        let completed = send(complete.clone(), json!({ "p": payment, "m": argument })).await?;
        assert_card_fields(&completed, &["completePayment", "payment"], role, true)?;
        if role == "manager" || role == "admin" {
            let refunded = send(refund.clone(), json!({ "p": payment, "k": new_key() })).await?;
            assert_card_fields(&refunded, &["refundPayment", "payment"], role, true)?;
        }
        // Staff never get that far: the mutations are not theirs.
        let by_staff = app
            .gql_as(&staff, &complete, json!({ "p": payment }))
            .await?;
        assert_eq!(error_code(&by_staff), Some("FORBIDDEN"), "{by_staff}");
    }

    // A card saved as guarantee, charged after a no-show by a manager.
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(stripe_fixture("customer", json!({ "id": "cus_card" }))?),
        )
        .mount(&stripe)
        .await;
    let setup = stripe_fixture(
        "setup_intent",
        json!({ "id": "seti_card", "status": "succeeded", "customer": "cus_card", "payment_method": "pm_saved" }),
    )?;
    Mock::given(method("POST"))
        .and(path("/v1/setup_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup.clone()))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/setup_intents/seti_card"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("off_session=true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_card_fee",
            "succeeded",
            json!({ "amount": 2500 }),
        )?))
        .mount(&stripe)
        .await;
    let Booked {
        id: reservation,
        token: manage,
    } = app
        .book("guarantee-grill", 21)
        .guest(json!({ "name": "Nora Noshow" }))
        .await?;
    let saved = app
        .gql_as(&manage, &start, json!({ "r": reservation, "k": new_key() }))
        .await?;
    // The saved card's details come later; the guest may read them.
    assert_card_fields(&saved, &["startPayment", "payment"], "guest", false)?;
    let grill_manager = app.staff("manager", Some("guarantee-grill")).await?;
    // A no-show only once the booking has started.
    app.advance(chrono::Duration::days(2));
    let marked = app
        .gql_as(
            &grill_manager,
            "mutation S($id: ID!) { setReservationStatus(input: { id: $id, status: NO_SHOW }) { reservation { status } userErrors { code } } }",
            json!({ "id": reservation }),
        )
        .await?;
    assert_eq!(
        marked["data"]["setReservationStatus"]["reservation"]["status"], "NO_SHOW",
        "{marked}"
    );
    let fee = app
        .gql_as(
            &grill_manager,
            &charge,
            json!({ "r": reservation, "k": new_key() }),
        )
        .await?;
    assert_card_fields(&fee, &["chargeNoShowFee", "payment"], "manager", true)?;
    Ok(())
}
both_backends!(
    card_details_answer_only_to_roles_the_policy_grants,
    card_details_answer_only_to_roles_the_policy_grants
);

const MODIFY: &str = "mutation M($id: ID!, $t: String!, $k: String!, $s: DateTime, $p: Int) { modifyReservation(input: { id: $id, manageToken: $t, startsAt: $s, partySize: $p, idempotencyKey: $k }) { reservation { status startsAt partySize } userErrors { code message } } }";

/// A paid booking moves onto the slot of a hold whose deadline has passed:
/// the move gives that hold's slot back first, so the old hold's late
/// payment cannot confirm a second booking on the table.
async fn a_move_onto_an_expired_hold_releases_it_first(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    let challenge = intent(
        "pi_late",
        "requires_action",
        json!({ "next_action": { "type": "redirect_to_url",
        "redirect_to_url": { "url": "https://hooks.stripe.com/3d_secure/pi_late", "return_url": "https://book.example/done" } } }),
    )?;
    start_matches(ResponseTemplate::new(200).set_body_json(challenge))
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    start_matches(ResponseTemplate::new(200).set_body_json(intent(
        "pi_moved",
        "succeeded",
        json!({}),
    )?))
    .mount(&stripe)
    .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_fixture(
            "refund",
            json!({ "id": "re_late", "amount": 2000, "currency": "eur", "status": "succeeded" }),
        )?))
        .mount(&stripe)
        .await;
    let held = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &held.token,
            START,
            json!({ "r": held.id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        started["data"]["startPayment"]["payment"]["status"], "REQUIRES_ACTION",
        "{started}"
    );
    let late_payment = started["data"]["startPayment"]["payment"]["id"].clone();
    let mover = app.book(BISTRO, 11).expect_status("PENDING").await?;
    let paid = app
        .gql_as(
            &mover.token,
            START,
            json!({ "r": mover.id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        paid["data"]["startPayment"]["payment"]["status"], "SUCCEEDED",
        "{paid}"
    );

    // Long past the hold's deadline (and any grace for a challenge).
    app.advance(chrono::Duration::hours(2));
    let moved = app
        .gql(
            MODIFY,
            json!({ "id": mover.id, "t": mover.token, "k": new_key(), "s": tomorrow_at(10) }),
        )
        .await?;
    assert_eq!(
        moved["data"]["modifyReservation"]["reservation"]["status"], "CONFIRMED",
        "the expired hold's slot is free: {moved}"
    );

    // The guest of the old hold finishes the challenge after all.
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_late"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_late",
            "succeeded",
            json!({}),
        )?))
        .mount(&stripe)
        .await;
    app.gql_as(&held.token, COMPLETE, json!({ "p": late_payment }))
        .await?;
    let held_now = app.gql(MINE, json!({ "t": held.token })).await?;
    assert_eq!(
        held_now["data"]["reservationByToken"]["status"], "CANCELLED",
        "a late payment confirms no second booking on the table: {held_now}"
    );
    let mover_now = app.gql(MINE, json!({ "t": mover.token })).await?;
    assert_eq!(
        mover_now["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mover_now}"
    );
    Ok(())
}
both_backends!(
    a_move_onto_an_expired_hold_releases_it_first,
    a_move_onto_an_expired_hold_releases_it_first
);

/// A webhook whose payment cannot be settled now (Stripe does not answer
/// the refresh in time) gets a 5xx, so that Stripe retries; the retry is
/// settled, not dropped as a duplicate.
async fn a_webhook_that_cannot_be_settled_is_retried_not_dropped(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 1).await?;
    let intent_ok = intent("pi_retry", "succeeded", json!({}))?;
    start_matches(
        ResponseTemplate::new(200)
            .set_body_json(intent_ok.clone())
            .set_delay(std::time::Duration::from_secs(3)),
    )
    .mount(&stripe)
    .await;
    let silent = Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_retry"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(intent_ok.clone())
                .set_delay(std::time::Duration::from_secs(3)),
        )
        .mount_as_scoped(&stripe)
        .await;
    let Booked { id, token } = app.book(BISTRO, 17).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &token,
            START,
            json!({ "r": id, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let payment = &started["data"]["startPayment"]["payment"];
    assert_eq!(payment["status"], "PROCESSING", "{started}");
    let mut object = intent_ok.clone();
    object["metadata"] = json!({ "kluis_payment_id": payment["id"] });
    let event = stripe_fixture(
        "event",
        json!({ "id": "evt_retry", "type": "payment_intent.succeeded", "data": { "object": object } }),
    )?;
    let body = serde_json::to_vec(&event)?;
    let now = chrono::Utc::now().timestamp();
    let signature = signed(&body, now, STRIPE_WEBHOOK_SECRET);

    let (status, answer) = post_webhook(&app, &body, &signature).await?;
    assert_eq!(
        status, 503,
        "an unsettled event is not answered as processed: {answer}"
    );
    drop(silent);
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_retry"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_ok))
        .mount(&stripe)
        .await;
    let (status, answer) = post_webhook(&app, &body, &signature).await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("processed")),
        "the retry is settled: {answer}"
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );
    let (status, answer) = post_webhook(&app, &body, &signature).await?;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    Ok(())
}
both_backends!(
    a_webhook_that_cannot_be_settled_is_retried_not_dropped,
    a_webhook_that_cannot_be_settled_is_retried_not_dropped
);

fn challenge(id: &str) -> Result<Value> {
    intent(
        id,
        "requires_action",
        json!({ "next_action": { "type": "redirect_to_url",
        "redirect_to_url": { "url": format!("https://hooks.stripe.com/3d_secure/{id}"), "return_url": "https://book.example/done" } } }),
    )
}

/// Starts a payment that Stripe answers with a 3D Secure challenge;
/// answers the payment id.
async fn start_challenged(app: &TestApp, reservation: &str, token: &str) -> Result<Value> {
    let started = app
        .gql_as(
            token,
            START,
            json!({ "r": reservation, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    let payment = &started["data"]["startPayment"]["payment"];
    anyhow::ensure!(payment["status"] == "REQUIRES_ACTION", "{started}");
    Ok(payment["id"].clone())
}

/// Stripe says the challenged intent `id` has now succeeded.
async fn challenge_passed(stripe: &MockServer, id: &str) -> Result<()> {
    Mock::given(method("GET"))
        .and(path(format!("/v1/payment_intents/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(id, "succeeded", json!({}))?))
        .mount(stripe)
        .await;
    Ok(())
}

/// A guest still in 3D Secure when the hold's deadline passes keeps the
/// slot for a while; a success after that confirms the booking when its
/// slot is still free, and otherwise is refunded through Stripe with an
/// alert: never a charge for a booking that was given away.
async fn a_payment_that_outlives_its_hold_is_confirmed_or_refunded(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    for id in ["pi_kept", "pi_free", "pi_taken"] {
        start_matches(ResponseTemplate::new(200).set_body_json(challenge(id)?))
            .up_to_n_times(1)
            .mount(&stripe)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(body_string_contains("payment_intent=pi_taken"))
        .and(body_string_contains("amount=2000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_fixture(
            "refund",
            json!({ "id": "re_taken", "amount": 2000, "currency": "eur", "status": "succeeded" }),
        )?))
        .expect(1)
        .mount(&stripe)
        .await;
    let kept = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let kept_payment = start_challenged(&app, &kept.id, &kept.token).await?;
    let free = app.book(BISTRO, 12).expect_status("PENDING").await?;
    let free_payment = start_challenged(&app, &free.id, &free.token).await?;
    let taken = app.book(BISTRO, 13).expect_status("PENDING").await?;
    let taken_payment = start_challenged(&app, &taken.id, &taken.token).await?;
    let venue = app.venue_id("deposit-bistro").await?;
    let another_guest = |hour: u32| {
        json!({ "input": { "venueId": venue, "startsAt": tomorrow_at(hour), "partySize": 2,
            "guest": { "name": "Other Guest" }, "idempotencyKey": new_key() } })
    };

    // Past the venue's 15 minutes, within the grace for a challenge: the
    // slot is still held.
    app.advance(chrono::Duration::minutes(20));
    let blocked = app.gql(CREATE, another_guest(10)).await?;
    assert_eq!(
        user_error_code(&blocked, "createReservation"),
        Some("SLOT_TAKEN"),
        "the guest in 3D Secure keeps the slot: {blocked}"
    );
    challenge_passed(&stripe, "pi_kept").await?;
    let done = app
        .gql_as(&kept.token, COMPLETE, json!({ "p": kept_payment }))
        .await?;
    assert_eq!(
        done["data"]["completePayment"]["payment"]["status"], "SUCCEEDED",
        "{done}"
    );
    let mine = app.gql(MINE, json!({ "t": kept.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );

    // Past the grace too: the holds end, and another guest takes 13:00.
    app.advance(chrono::Duration::minutes(20));
    let other = app.gql(CREATE, another_guest(13)).await?;
    assert_eq!(
        other["data"]["createReservation"]["reservation"]["status"], "PENDING",
        "{other}"
    );
    // 12:00 went to nobody: the late success confirms it after all.
    challenge_passed(&stripe, "pi_free").await?;
    app.gql_as(&free.token, COMPLETE, json!({ "p": free_payment }))
        .await?;
    let mine = app.gql(MINE, json!({ "t": free.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "a late payment for a slot still free confirms it: {mine}"
    );
    // 13:00 went to someone else: the money goes back, and staff hear of it.
    challenge_passed(&stripe, "pi_taken").await?;
    app.gql_as(&taken.token, COMPLETE, json!({ "p": taken_payment }))
        .await?;
    let mine = app.gql(MINE, json!({ "t": taken.token })).await?;
    let reservation = &mine["data"]["reservationByToken"];
    assert_eq!(reservation["status"], "CANCELLED", "{mine}");
    assert_eq!(
        (
            reservation["payments"][0]["status"].as_str(),
            reservation["payments"][0]["refunded"]["amount"].as_i64()
        ),
        (Some("REFUNDED"), Some(2000)),
        "{mine}"
    );
    assert_eq!(
        app.count_rows(
            "alerts",
            &format!(
                "rule = 'late_payment_refunded' AND principal = 'payment:{}'",
                taken_payment.as_str().context("id")?
            )
        )?,
        1,
        "an alert tells of the refund"
    );
    // Completing again changes nothing and refunds nothing more.
    app.gql_as(&taken.token, COMPLETE, json!({ "p": taken_payment }))
        .await?;
    assert_eq!(app.count_rows("payment_refunds", "1 = 1")?, 1);
    Ok(())
}
both_backends!(
    a_payment_that_outlives_its_hold_is_confirmed_or_refunded,
    a_payment_that_outlives_its_hold_is_confirmed_or_refunded
);

/// A PayPal order as Orders v2 answers it (`specs/paypal`), for a card
/// with 3D Secure: `PAYER_ACTION_REQUIRED` with the `payer-action` link,
/// later `APPROVED` with the issuer's liability shift, then `COMPLETED`
/// with its capture.
fn paypal_order(id: &str, status: &str, liability: Option<&str>) -> Value {
    let mut order = json!({
        "id": id, "status": status,
        "links": [
            { "href": format!("https://api-m.paypal.com/v2/checkout/orders/{id}"), "rel": "self", "method": "GET" },
            { "href": format!("https://www.paypal.com/webapps/helios?action=verify&flow=3ds&cart_id={id}"), "rel": "payer-action", "method": "GET" }
        ],
        "payment_source": { "card": { "name": "A Guest", "last_digits": "7704", "brand": "VISA", "type": "CREDIT" } }
    });
    if let Some(shift) = liability {
        order["payment_source"]["card"]["authentication_result"] = json!({ "liability_shift": shift,
            "three_d_secure": { "enrollment_status": "Y", "authentication_status": "Y" } });
    }
    if status == "COMPLETED" {
        order["purchase_units"] = json!([{ "reference_id": "default",
            "payments": { "captures": [{ "id": format!("CAP-{id}"), "status": "COMPLETED" }] } }]);
    }
    order
}

/// PayPal's card path through GraphQL: the order asks for SCA, the guest
/// gets PayPal's 3D Secure page, and the booking is confirmed only once
/// PayPal says the issuer shifted liability and the capture completed; an
/// issuer that shifts nothing fails the payment without a capture.
async fn a_paypal_card_payment_with_three_d_secure_confirms_through_graphql(
    backend: Backend,
) -> Result<()> {
    let paypal = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": "A21AA-token", "token_type": "Bearer", "app_id": "APP-1", "expires_in": 32400
        })))
        .mount(&paypal)
        .await;
    let app = TestApp::spawn_with(
        backend,
        Options {
            venues: DEPOSIT_VENUE,
            payments: kluis_tests::paypal_config(&paypal.uri())?,
            ..Options::default()
        },
    )
    .await?;
    for (id, kluis_amount) in [("ORDER-3DS", "20.00"), ("ORDER-NOSHIFT", "20.00")] {
        Mock::given(method("POST"))
            .and(path("/v2/checkout/orders"))
            .and(header("authorization", "Bearer A21AA-token"))
            .and(wiremock::matchers::header_exists("paypal-request-id"))
            .and(wiremock::matchers::body_partial_json(json!({
                "intent": "CAPTURE",
                "purchase_units": [{ "amount": { "currency_code": "EUR", "value": kluis_amount } }],
                "payment_source": { "card": { "attributes": { "verification": { "method": "SCA_WHEN_REQUIRED" } } } }
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(paypal_order(
                id,
                "PAYER_ACTION_REQUIRED",
                None,
            )))
            .up_to_n_times(1)
            .mount(&paypal)
            .await;
    }
    let Booked {
        id: reservation,
        token,
    } = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &token,
            START,
            json!({ "r": reservation, "g": "PAYPAL", "t": "card", "k": new_key() }),
        )
        .await?;
    let step = &started["data"]["startPayment"];
    assert_eq!(step["payment"]["status"], "REQUIRES_ACTION", "{started}");
    assert!(
        step["redirectUrl"]
            .as_str()
            .is_some_and(|url| url.contains("flow=3ds")),
        "{started}"
    );
    let payment = step["payment"]["id"].clone();

    // The guest says "done" while PayPal still waits: nothing changes.
    let waiting = Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-3DS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(paypal_order(
            "ORDER-3DS",
            "PAYER_ACTION_REQUIRED",
            None,
        )))
        .mount_as_scoped(&paypal)
        .await;
    let early = app
        .gql_as(&token, COMPLETE, json!({ "p": payment }))
        .await?;
    assert_eq!(
        early["data"]["completePayment"]["payment"]["status"], "REQUIRES_ACTION",
        "{early}"
    );
    drop(waiting);

    Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-3DS"))
        .respond_with(ResponseTemplate::new(200).set_body_json(paypal_order(
            "ORDER-3DS",
            "APPROVED",
            Some("POSSIBLE"),
        )))
        .mount(&paypal)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/ORDER-3DS/capture"))
        .and(wiremock::matchers::header_exists("paypal-request-id"))
        .respond_with(ResponseTemplate::new(201).set_body_json(paypal_order(
            "ORDER-3DS",
            "COMPLETED",
            Some("POSSIBLE"),
        )))
        .expect(1)
        .mount(&paypal)
        .await;
    let done = app
        .gql_as(&token, COMPLETE, json!({ "p": payment }))
        .await?;
    assert_eq!(
        done["data"]["completePayment"]["payment"]["status"], "SUCCEEDED",
        "{done}"
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );

    // An issuer that shifts no liability: failed, never captured.
    Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-NOSHIFT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(paypal_order(
            "ORDER-NOSHIFT",
            "APPROVED",
            Some("NO"),
        )))
        .mount(&paypal)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/ORDER-NOSHIFT/capture"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&paypal)
        .await;
    let other = app.book(BISTRO, 11).expect_status("PENDING").await?;
    let started = app
        .gql_as(
            &other.token,
            START,
            json!({ "r": other.id, "g": "PAYPAL", "t": "card", "k": new_key() }),
        )
        .await?;
    let other_payment = started["data"]["startPayment"]["payment"]["id"].clone();
    let refused = app
        .gql_as(&other.token, COMPLETE, json!({ "p": other_payment }))
        .await?;
    assert_eq!(
        refused["data"]["completePayment"]["payment"]["status"], "FAILED",
        "{refused}"
    );
    let mine = app.gql(MINE, json!({ "t": other.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "PENDING",
        "{mine}"
    );
    Ok(())
}
both_backends!(
    a_paypal_card_payment_with_three_d_secure_confirms_through_graphql,
    a_paypal_card_payment_with_three_d_secure_confirms_through_graphql
);

/// A paid per-guest deposit follows the party: more guests than were paid
/// for are refused with a clear error (a new payment is needed), fewer get
/// their share back through Stripe, once per change; a change while a
/// payment is under way waits for it.
async fn a_party_change_is_priced_by_the_per_guest_rule(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    start_matches(ResponseTemplate::new(200).set_body_json(intent(
        "pi_party",
        "succeeded",
        json!({}),
    )?))
    .up_to_n_times(1)
    .mount(&stripe)
    .await;
    start_matches(ResponseTemplate::new(200).set_body_json(challenge("pi_party_3ds")?))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(body_string_contains("payment_intent=pi_party"))
        .and(body_string_contains("amount=1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(stripe_fixture(
            "refund",
            json!({ "id": "re_party", "amount": 1000, "currency": "eur", "status": "succeeded" }),
        )?))
        .expect(1)
        .mount(&stripe)
        .await;
    let Booked {
        id: reservation,
        token,
    } = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let paid = app
        .gql_as(
            &token,
            START,
            json!({ "r": reservation, "g": "STRIPE", "t": "pm_card_visa", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        paid["data"]["startPayment"]["payment"]["status"], "SUCCEEDED",
        "{paid}"
    );
    let more = app
        .gql(
            MODIFY,
            json!({ "id": reservation, "t": token, "k": new_key(), "p": 3 }),
        )
        .await?;
    assert_eq!(
        user_error_code(&more, "modifyReservation"),
        Some("INVALID"),
        "{more}"
    );
    let message = more["data"]["modifyReservation"]["userErrors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("new payment"), "{message}");

    let key = new_key();
    let fewer = json!({ "id": reservation, "t": token, "k": key, "p": 1 });
    let changed = app.gql(MODIFY, fewer.clone()).await?;
    assert_eq!(
        changed["data"]["modifyReservation"]["reservation"]["partySize"], 1,
        "{changed}"
    );
    let again = app.gql(MODIFY, fewer).await?;
    assert_eq!(
        again["data"]["modifyReservation"]["reservation"]["partySize"], 1,
        "{again}"
    );
    let mine = app.gql(MINE, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["payments"][0]["refunded"]["amount"], 1000,
        "one guest's share back, once: {mine}"
    );
    // Back up to two: that guest's share was given back, so it is due again.
    let back = app
        .gql(
            MODIFY,
            json!({ "id": reservation, "t": token, "k": new_key(), "p": 2 }),
        )
        .await?;
    assert_eq!(
        user_error_code(&back, "modifyReservation"),
        Some("INVALID"),
        "{back}"
    );

    let other = app.book(BISTRO, 11).expect_status("PENDING").await?;
    start_challenged(&app, &other.id, &other.token).await?;
    let during = app
        .gql(
            MODIFY,
            json!({ "id": other.id, "t": other.token, "k": new_key(), "p": 4 }),
        )
        .await?;
    assert_eq!(
        user_error_code(&during, "modifyReservation"),
        Some("CONFLICT"),
        "{during}"
    );
    Ok(())
}
both_backends!(
    a_party_change_is_priced_by_the_per_guest_rule,
    a_party_change_is_priced_by_the_per_guest_rule
);

const CLOSE: &str = "mutation O($p: ID!, $paid: Boolean!) { closeOnsitePayment(input: { paymentId: $p, paid: $paid }) { payment { status failureReason kind gateway reservation { id status } } userErrors { field code } } }";

async fn start_onsite(app: &TestApp, reservation: &str, token: &str) -> Result<Value> {
    let started = app
        .gql_as(
            token,
            START,
            json!({ "r": reservation, "g": "ONSITE", "t": "onsite", "k": new_key() }),
        )
        .await?;
    let payment = &started["data"]["startPayment"]["payment"];
    anyhow::ensure!(payment["status"] == "PROCESSING", "{started}");
    Ok(payment["id"].clone())
}

/// Open payments end: staff close an on-site payment at the desk (paid,
/// or cancelled), others of the venue and outsiders cannot; the
/// reconciliation job cancels an abandoned 3D Secure at Stripe after an
/// hour and an on-site payment whose booking went, and erasure is no
/// longer held up by them.
async fn open_payments_reach_an_end(backend: Backend) -> Result<()> {
    let Paying { app, stripe } = paying(backend, 5).await?;
    start_matches(ResponseTemplate::new(200).set_body_json(challenge("pi_gone")?))
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_gone"))
        .respond_with(ResponseTemplate::new(200).set_body_json(challenge("pi_gone")?))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_gone/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent(
            "pi_gone",
            "canceled",
            json!({}),
        )?))
        .expect(1)
        .mount(&stripe)
        .await;
    let staff = app.staff("staff", Some("deposit-bistro")).await?;
    let manager = app.staff("manager", Some("deposit-bistro")).await?;
    let elsewhere = app.staff("manager", Some("guarantee-grill")).await?;

    let paid_at_desk = app.book(BISTRO, 10).expect_status("PENDING").await?;
    let desk_payment = start_onsite(&app, &paid_at_desk.id, &paid_at_desk.token).await?;
    // Another venue's manager does not learn the payment exists; the
    // guest's manage token is no desk's credential.
    let foreign = app
        .gql_as(
            &elsewhere,
            CLOSE,
            json!({ "p": desk_payment, "paid": true }),
        )
        .await?;
    assert_eq!(
        user_errors(&foreign, "closeOnsitePayment"),
        [("input.paymentId".to_owned(), "NOT_FOUND".to_owned())],
        "another venue's manager: {foreign}"
    );
    let by_guest = app
        .gql_as(
            &paid_at_desk.token,
            CLOSE,
            json!({ "p": desk_payment, "paid": true }),
        )
        .await?;
    assert_eq!(
        error_code(&by_guest),
        Some("FORBIDDEN"),
        "the guest: {by_guest}"
    );
    // A second payment while the first is open: refused as a conflict.
    let second = app
        .gql_as(
            &paid_at_desk.token,
            START,
            json!({ "r": paid_at_desk.id, "g": "ONSITE", "t": "onsite", "k": new_key() }),
        )
        .await?;
    assert_eq!(
        user_errors(&second, "startPayment"),
        [(String::new(), "CONFLICT".to_owned())],
        "{second}"
    );
    let closed = app
        .gql_as(&staff, CLOSE, json!({ "p": desk_payment, "paid": true }))
        .await?;
    let closed_payment = &payload(&closed, "closeOnsitePayment")?["payment"];
    assert_eq!(closed_payment["status"], "SUCCEEDED", "{closed}");
    assert_eq!(
        (
            closed_payment["kind"].as_str(),
            closed_payment["gateway"].as_str()
        ),
        (Some("CHARGE"), Some("ONSITE"))
    );
    // The desk sees the booking it just confirmed, as staff see bookings.
    assert_eq!(
        closed_payment["reservation"],
        json!({ "id": paid_at_desk.id, "status": "CONFIRMED" }),
        "{closed}"
    );
    let mine = app.gql(MINE, json!({ "t": paid_at_desk.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["status"], "CONFIRMED",
        "{mine}"
    );
    let twice = app
        .gql_as(&staff, CLOSE, json!({ "p": desk_payment, "paid": false }))
        .await?;
    assert_eq!(
        user_errors(&twice, "closeOnsitePayment"),
        [(String::new(), "CONFLICT".to_owned())],
        "{twice}"
    );
    assert!(twice["data"]["closeOnsitePayment"]["payment"].is_null());

    let not_paid = app.book(BISTRO, 11).expect_status("PENDING").await?;
    let cancelled_payment = start_onsite(&app, &not_paid.id, &not_paid.token).await?;
    let closed = app
        .gql_as(
            &manager,
            CLOSE,
            json!({ "p": cancelled_payment, "paid": false }),
        )
        .await?;
    assert_eq!(
        payload(&closed, "closeOnsitePayment")?["payment"]["status"],
        "CANCELLED",
        "{closed}"
    );

    let abandoned = app.book(BISTRO, 12).expect_status("PENDING").await?;
    let card_payment = start_challenged(&app, &abandoned.id, &abandoned.token).await?;
    let not_onsite = app
        .gql_as(&staff, CLOSE, json!({ "p": card_payment, "paid": true }))
        .await?;
    assert_eq!(
        user_errors(&not_onsite, "closeOnsitePayment"),
        [("input.paymentId".to_owned(), "INVALID".to_owned())],
        "a card payment is not closed at the desk: {not_onsite}"
    );
    let forgotten = app.book(BISTRO, 13).expect_status("PENDING").await?;
    start_onsite(&app, &forgotten.id, &forgotten.token).await?;
    let erase = "mutation X { eraseMyData { report { alreadyErased } userErrors { code } } }";
    let blocked = app.gql_as(&abandoned.token, erase, json!({})).await?;
    assert_eq!(
        kluis_tests::user_error_code(&blocked, "eraseMyData"),
        Some("CONFLICT"),
        "{blocked}"
    );

    // Within the hour nothing is cancelled; after it, both end.
    app.advance(chrono::Duration::minutes(30));
    app.reconcile_payments().await?;
    let mine = app.gql(MINE, json!({ "t": abandoned.token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["payments"][0]["status"], "REQUIRES_ACTION",
        "{mine}"
    );
    app.advance(chrono::Duration::minutes(40));
    app.reconcile_payments().await?;
    for token in [&abandoned.token, &forgotten.token] {
        let mine = app.gql(MINE, json!({ "t": token })).await?;
        assert_eq!(
            mine["data"]["reservationByToken"]["payments"][0]["status"], "CANCELLED",
            "{mine}"
        );
    }
    let erased = app.gql_as(&abandoned.token, erase, json!({})).await?;
    assert_eq!(error_code(&erased), None, "erasure goes ahead: {erased}");
    assert_eq!(
        kluis_tests::user_error_code(&erased, "eraseMyData"),
        None,
        "erasure goes ahead: {erased}"
    );
    Ok(())
}
both_backends!(open_payments_reach_an_end, open_payments_reach_an_end);
