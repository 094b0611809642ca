//! The PayPal gateway against a local fake that checks each request (OAuth,
//! PayPal-Request-Id, SCA, raw webhook events) and answers in the shapes of
//! PayPal's OpenAPI specifications.

use domain::payments::{
    Currency, GatewayError, Money, NextAction, PaymentGateway, PaymentStep, StartPayment,
};
use serde_json::{Value, json};
use wiremock::matchers::{
    body_partial_json, body_string_contains, header, header_exists, method, path,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{PayPal, PayPalConfig};

async fn fake() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/oauth2/token"))
        .and(header_exists("authorization"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": "A21AA-token", "token_type": "Bearer", "app_id": "APP-1", "expires_in": 32400
        })))
        .expect(1)
        .mount(&server)
        .await;
    server
}

fn gateway(server: &MockServer) -> PayPal {
    let _ = rustls::crypto::ring::default_provider().install_default();
    PayPal::new(PayPalConfig {
        client_id: "client".to_owned(),
        client_secret: "secret".into(),
        webhook_id: "WH-1".to_owned(),
        base_url: server.uri(),
        timeout_seconds: 5,
    })
    .expect("valid config")
}

fn request(token: &str) -> StartPayment {
    StartPayment {
        purpose: domain::payments::Purpose::Charge,
        payment_id: "pay_1".to_owned(),
        amount: Money::new(2_050, Currency::parse("EUR").expect("valid")).expect("valid"),
        token: token.to_owned(),
        idempotency_key: "kluis-pay_1".to_owned(),
        return_url: Some("https://book.example/return".to_owned()),
        description: "Deposit".to_owned(),
    }
}

fn order(id: &str, status: &str, liability: Option<&str>) -> Value {
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
    order
}

#[tokio::test]
async fn card_orders_ask_for_sca_and_return_the_payer_action() {
    let server = fake().await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders"))
        .and(header("authorization", "Bearer A21AA-token"))
        .and(header("paypal-request-id", "kluis-pay_1"))
        .and(body_partial_json(json!({
            "intent": "CAPTURE",
            "purchase_units": [{ "custom_id": "pay_1", "amount": { "currency_code": "EUR", "value": "20.50" } }],
            "payment_source": { "card": { "attributes": { "verification": { "method": "SCA_WHEN_REQUIRED" } } } }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(order("5O190127TN364715T", "PAYER_ACTION_REQUIRED", None)))
        .expect(2)
        .mount(&server)
        .await;
    let paypal = gateway(&server);
    let payment = paypal.start(&request("card")).await.expect("answered");
    assert!(matches!(
        payment.step,
        PaymentStep::RequiresAction { next_action: NextAction::RedirectToUrl(ref url) } if url.contains("flow=3ds")
    ));
    // The OAuth token is cached: a second call does not fetch another.
    paypal.start(&request("card")).await.expect("answered");
}

#[tokio::test]
async fn an_approved_card_order_is_captured_only_with_a_liability_shift() {
    let server = fake().await;
    Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-OK"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(
            "ORDER-OK",
            "APPROVED",
            Some("POSSIBLE"),
        )))
        .mount(&server)
        .await;
    let mut completed = order("ORDER-OK", "COMPLETED", Some("POSSIBLE"));
    completed["purchase_units"] =
        json!([{ "payments": { "captures": [{ "id": "CAP-1", "status": "COMPLETED" }] } }]);
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/ORDER-OK/capture"))
        .and(header_exists("paypal-request-id"))
        .respond_with(ResponseTemplate::new(201).set_body_json(completed))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-NO"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order(
            "ORDER-NO",
            "APPROVED",
            Some("NO"),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/checkout/orders/ORDER-NO/capture"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let paypal = gateway(&server);
    let paid = paypal.refresh("ORDER-OK").await.expect("answered");
    assert_eq!(paid.step, PaymentStep::Succeeded);
    assert_eq!(
        (paid.card_brand.as_deref(), paid.card_last4.as_deref()),
        (Some("visa"), Some("7704"))
    );
    let refused = paypal.refresh("ORDER-NO").await.expect("answered");
    assert!(
        matches!(refused.step, PaymentStep::Failed { ref reason } if reason.contains("liability"))
    );
}

#[tokio::test]
async fn refunds_go_to_the_capture_of_the_order() {
    let server = fake().await;
    let mut completed = order("ORDER-OK", "COMPLETED", Some("YES"));
    completed["purchase_units"] =
        json!([{ "payments": { "captures": [{ "id": "CAP-1", "status": "COMPLETED" }] } }]);
    Mock::given(method("GET"))
        .and(path("/v2/checkout/orders/ORDER-OK"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completed))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/payments/captures/CAP-1/refund"))
        .and(header("paypal-request-id", "refund-1"))
        .and(body_partial_json(
            json!({ "amount": { "currency_code": "EUR", "value": "5.00" } }),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "1JU08902781691411", "status": "COMPLETED" })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let amount = Money::new(500, Currency::parse("EUR").expect("valid")).expect("valid");
    let refund = gateway(&server)
        .refund("ORDER-OK", amount, "refund-1")
        .await
        .expect("refunded");
    assert!(refund.succeeded);
}

#[tokio::test]
async fn webhooks_are_verified_by_paypal_with_the_raw_event() {
    let server = fake().await;
    let raw = r#"{"id":"WH-EVT-1","event_version":"1.0","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"CAP-1","custom_id":"pay_1","status":"COMPLETED","supplementary_data":{"related_ids":{"order_id":"ORDER-OK"}}}}"#;
    Mock::given(method("POST"))
        .and(path("/v1/notifications/verify-webhook-signature"))
        .and(body_string_contains(format!("\"webhook_event\":{raw}")))
        .and(body_string_contains("\"transmission_sig\":\"good\""))
        .and(body_string_contains("\"webhook_id\":\"WH-1\""))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "verification_status": "SUCCESS" })),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/notifications/verify-webhook-signature"))
        .and(body_string_contains("\"transmission_sig\":\"forged\""))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "verification_status": "FAILURE" })),
        )
        .mount(&server)
        .await;
    let headers = |signature: &str| -> Vec<(String, String)> {
        [
            ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
            (
                "PAYPAL-CERT-URL",
                "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            ),
            (
                "PAYPAL-TRANSMISSION-ID",
                "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
            ),
            ("PAYPAL-TRANSMISSION-SIG", signature),
            ("PAYPAL-TRANSMISSION-TIME", "2026-11-27T10:00:00Z"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let paypal = gateway(&server);
    let now = chrono::Utc::now();
    let event = paypal
        .verify_webhook(&headers("good"), raw.as_bytes(), now)
        .await
        .expect("verified");
    assert_eq!(
        (
            event.id.as_str(),
            event.reference.as_deref(),
            event.payment_id.as_deref()
        ),
        ("WH-EVT-1", Some("ORDER-OK"), Some("pay_1"))
    );
    let forged = paypal
        .verify_webhook(&headers("forged"), raw.as_bytes(), now)
        .await;
    assert!(matches!(forged, Err(GatewayError::InvalidWebhook(_))));
    assert!(
        paypal
            .verify_webhook(&[], raw.as_bytes(), now)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn only_card_or_wallet_are_tokens() {
    let server = MockServer::start().await;
    let paypal = gateway(&server);
    assert!(paypal.check_token("card").is_ok());
    assert!(paypal.check_token("4111111111111111").is_err());
}

#[test]
fn the_config_and_access_token_never_show_their_secrets() {
    let config = PayPalConfig {
        client_id: "client".to_owned(),
        client_secret: "paypal-client-secret".into(),
        webhook_id: "WH-1".to_owned(),
        base_url: "https://api-m.paypal.com".to_owned(),
        timeout_seconds: 5,
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("paypal-client-secret"), "{shown}");
    let token: super::wire::AccessToken =
        serde_json::from_str(r#"{"access_token": "A21AA-token", "expires_in": 32400}"#)
            .expect("an access token");
    let shown = format!("{token:?}");
    assert!(!shown.contains("A21AA-token"), "{shown}");
}
