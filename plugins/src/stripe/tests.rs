//! The Stripe gateway against a local fake that checks each request and
//! answers with Stripe's own sample objects (`specs/stripe`).

use std::time::Duration;

use domain::payments::{
    Currency, GatewayError, Money, NextAction, PaymentGateway, PaymentStep, StartPayment,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Stripe, StripeConfig, sign_webhook};

const SECRET: &str = "sk_test_kluis";
const WEBHOOK_SECRET: &str = "whsec_kluis_test";

/// Stripe's sample object for a resource, with fields replaced.
fn fixture(resource: &str, changes: Value) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/stripe/fixtures3.json"
    );
    let text = std::fs::read_to_string(path).expect("the Stripe fixtures are in specs/stripe");
    let all: Value = serde_json::from_str(&text).expect("fixtures are JSON");
    let mut object = all["resources"][resource].clone();
    assert!(object.is_object(), "no fixture for {resource}");
    if let (Some(target), Some(changes)) = (object.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
    object
}

fn gateway(server: &MockServer, timeout_seconds: u64) -> Stripe {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Stripe::new(StripeConfig {
        secret_key: SECRET.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        base_url: server.uri(),
        timeout_seconds,
    })
    .expect("valid config")
}

fn request() -> StartPayment {
    StartPayment {
        purpose: domain::payments::Purpose::Charge,
        payment_id: "pay_1".to_owned(),
        amount: Money::new(2_500, Currency::parse("EUR").expect("valid")).expect("valid"),
        token: "pm_card_visa".to_owned(),
        idempotency_key: "start-pay_1".to_owned(),
        return_url: Some("https://book.example/return".to_owned()),
        description: "Deposit".to_owned(),
    }
}

/// The request every start must be: authenticated, idempotent, confirming
/// a PaymentMethod token in minor units.
fn start_mock(answer: ResponseTemplate) -> Mock {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", format!("Bearer {SECRET}").as_str()))
        .and(header("idempotency-key", "start-pay_1"))
        .and(body_string_contains("amount=2500"))
        .and(body_string_contains("currency=eur"))
        .and(body_string_contains("payment_method=pm_card_visa"))
        .and(body_string_contains("confirm=true"))
        .respond_with(answer)
}

#[tokio::test]
async fn a_card_without_challenge_succeeds_with_brand_and_last4_only() {
    let server = MockServer::start().await;
    let intent = fixture(
        "payment_intent",
        json!({
            "id": "pi_ok", "status": "succeeded", "amount": 2500, "currency": "eur",
            "payment_method": { "id": "pm_1", "object": "payment_method", "card": { "brand": "visa", "last4": "4242", "exp_month": 12 } }
        }),
    );
    start_mock(ResponseTemplate::new(200).set_body_json(intent))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server, 5)
        .start(&request())
        .await
        .expect("answered");
    assert_eq!(payment.step, PaymentStep::Succeeded);
    assert_eq!(payment.reference, "pi_ok");
    assert_eq!(
        (payment.card_brand.as_deref(), payment.card_last4.as_deref()),
        (Some("visa"), Some("4242"))
    );
}

#[tokio::test]
async fn a_3d_secure_card_comes_back_as_a_redirect_or_a_client_secret() {
    let server = MockServer::start().await;
    let redirect = fixture(
        "payment_intent",
        json!({
            "id": "pi_3ds", "status": "requires_action", "amount": 2500, "currency": "eur",
            "next_action": { "type": "redirect_to_url", "redirect_to_url": { "url": "https://hooks.stripe.com/3ds", "return_url": "https://book.example/return" } }
        }),
    );
    start_mock(ResponseTemplate::new(200).set_body_json(redirect))
        .mount(&server)
        .await;
    let payment = gateway(&server, 5)
        .start(&request())
        .await
        .expect("answered");
    assert_eq!(
        payment.step,
        PaymentStep::RequiresAction {
            next_action: NextAction::RedirectToUrl("https://hooks.stripe.com/3ds".to_owned())
        }
    );

    let server = MockServer::start().await;
    let sdk = fixture(
        "payment_intent",
        json!({
            "id": "pi_sdk", "status": "requires_action", "next_action": { "type": "use_stripe_sdk", "use_stripe_sdk": {} }
        }),
    );
    start_mock(ResponseTemplate::new(200).set_body_json(sdk))
        .mount(&server)
        .await;
    let payment = gateway(&server, 5)
        .start(&request())
        .await
        .expect("answered");
    assert!(matches!(
        payment.step,
        PaymentStep::RequiresAction { next_action: NextAction::ClientSecret(ref secret) } if secret.starts_with("pi_")
    ));
}

#[tokio::test]
async fn a_declined_card_fails_with_the_decline_code() {
    let server = MockServer::start().await;
    let intent = fixture(
        "payment_intent",
        json!({ "id": "pi_declined", "status": "requires_payment_method" }),
    );
    let declined = json!({ "error": { "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "payment_intent": intent } });
    start_mock(ResponseTemplate::new(402).set_body_json(declined))
        .mount(&server)
        .await;
    let payment = gateway(&server, 5)
        .start(&request())
        .await
        .expect("a decline is an answer");
    assert_eq!(
        payment.step,
        PaymentStep::Failed {
            reason: "insufficient_funds".to_owned()
        }
    );
    assert_eq!(payment.reference, "pi_declined");
}

#[tokio::test]
async fn outages_and_silence_are_told_apart() {
    let server = MockServer::start().await;
    start_mock(ResponseTemplate::new(500)).mount(&server).await;
    assert!(matches!(
        gateway(&server, 5).start(&request()).await,
        Err(GatewayError::Unavailable(_))
    ));

    let server = MockServer::start().await;
    start_mock(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    assert_eq!(
        gateway(&server, 1).start(&request()).await,
        Err(GatewayError::Timeout)
    );
}

#[tokio::test]
async fn refresh_asks_stripe_for_the_intent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_later"))
        .and(header("authorization", format!("Bearer {SECRET}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(
            "payment_intent",
            json!({ "id": "pi_later", "status": "succeeded" }),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let payment = gateway(&server, 5)
        .refresh("pi_later")
        .await
        .expect("answered");
    assert_eq!(payment.step, PaymentStep::Succeeded);
}

#[tokio::test]
async fn refunds_name_the_intent_and_amount_idempotently() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("idempotency-key", "refund-1"))
        .and(body_string_contains("payment_intent=pi_ok"))
        .and(body_string_contains("amount=1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(
            "refund",
            json!({ "id": "re_1", "amount": 1000, "currency": "eur" }),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let amount = Money::new(1_000, Currency::parse("EUR").expect("valid")).expect("valid");
    let refund = gateway(&server, 5)
        .refund("pi_ok", amount, "refund-1")
        .await
        .expect("refunded");
    assert_eq!(
        (
            refund.reference.as_str(),
            refund.amount.minor(),
            refund.succeeded
        ),
        ("re_1", 1000, true)
    );
}

#[tokio::test]
async fn webhooks_need_a_fresh_valid_signature() {
    let server = MockServer::start().await;
    let stripe = gateway(&server, 5);
    let event = fixture(
        "event",
        json!({
            "id": "evt_1", "type": "payment_intent.succeeded",
            "data": { "object": fixture("payment_intent", json!({ "id": "pi_ok", "status": "succeeded" })) }
        }),
    );
    let body = serde_json::to_vec(&event).expect("json");
    let now = chrono::Utc::now();
    let signed = |secret: &str, at: i64| {
        vec![(
            "Stripe-Signature".to_owned(),
            sign_webhook(secret, at, &body),
        )]
    };

    let verified = stripe
        .verify_webhook(&signed(WEBHOOK_SECRET, now.timestamp()), &body, now)
        .await
        .expect("valid");
    assert_eq!(
        (verified.id.as_str(), verified.reference.as_deref()),
        ("evt_1", Some("pi_ok"))
    );
    let forged = stripe
        .verify_webhook(&signed("whsec_other", now.timestamp()), &body, now)
        .await;
    assert!(matches!(forged, Err(GatewayError::InvalidWebhook(_))));
    let stale = stripe
        .verify_webhook(&signed(WEBHOOK_SECRET, now.timestamp() - 301), &body, now)
        .await;
    assert!(matches!(stale, Err(GatewayError::InvalidWebhook(reason)) if reason.contains("stale")));
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let altered = stripe
        .verify_webhook(&signed(WEBHOOK_SECRET, now.timestamp()), &tampered, now)
        .await;
    assert!(altered.is_err());
    assert!(stripe.verify_webhook(&[], &body, now).await.is_err());
}

#[tokio::test]
async fn only_payment_method_ids_are_accepted_as_tokens() {
    let server = MockServer::start().await;
    let stripe = gateway(&server, 5);
    assert!(stripe.check_token("pm_1Nxyz").is_ok());
    for bad in ["4242424242424242", "tok_visa", "pm_", "pm_bad token", ""] {
        assert!(stripe.check_token(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_guarantee_saves_the_card_and_a_no_show_fee_charges_it_off_session() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("idempotency-key", "start-pay_1-customer"))
        .and(body_string_contains("metadata%5Bkluis_payment_id%5D=pay_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(
            "customer",
            json!({ "id": "cus_1", "email": null, "name": null }),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let setup = fixture(
        "setup_intent",
        json!({ "id": "seti_1", "status": "succeeded", "customer": "cus_1", "payment_method": "pm_saved" }),
    );
    Mock::given(method("POST"))
        .and(path("/v1/setup_intents"))
        .and(header("idempotency-key", "start-pay_1"))
        .and(body_string_contains("customer=cus_1"))
        .and(body_string_contains("payment_method=pm_card_visa"))
        .and(body_string_contains("usage=off_session"))
        .and(body_string_contains("confirm=true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup.clone()))
        .expect(1)
        .mount(&server)
        .await;
    let stripe = gateway(&server, 5);
    let mut save = request();
    save.purpose = domain::payments::Purpose::SaveCard;
    let saved = stripe.start(&save).await.expect("answered");
    assert_eq!(
        (saved.reference.as_str(), &saved.step),
        ("seti_1", &PaymentStep::Succeeded)
    );

    Mock::given(method("GET"))
        .and(path("/v1/setup_intents/seti_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(setup))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "fee-1"))
        .and(body_string_contains("customer=cus_1"))
        .and(body_string_contains("payment_method=pm_saved"))
        .and(body_string_contains("off_session=true"))
        .and(body_string_contains("amount=2500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(
            "payment_intent",
            json!({ "id": "pi_fee", "status": "succeeded" }),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let mut fee = request();
    fee.idempotency_key = "fee-1".to_owned();
    let charged = stripe.charge_saved("seti_1", &fee).await.expect("charged");
    assert_eq!(
        (charged.reference.as_str(), &charged.step),
        ("pi_fee", &PaymentStep::Succeeded)
    );
}

#[test]
fn the_config_never_shows_its_secrets() {
    let config = StripeConfig {
        secret_key: SECRET.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        base_url: "https://api.stripe.com".to_owned(),
        timeout_seconds: 10,
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(WEBHOOK_SECRET), "{shown}");
}
