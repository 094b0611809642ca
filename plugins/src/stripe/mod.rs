//! Stripe over its REST API (PaymentIntents), without an SDK (a small,
//! audited surface and no transitive dependencies of its own). The
//! front-end collects the card with Stripe.js and sends only the
//! PaymentMethod id; 3D Secure comes back as a `next_action`.

mod wire;

use std::time::Duration;

use async_trait::async_trait;
use domain::payments::{
    GatewayError, Money, PaymentGateway, ProviderPayment, ProviderRefund, StartPayment,
    WebhookEvent,
};
use domain::{DomainError, Secret};
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::PluginError;

/// Webhooks older (or newer) than this are refused as replays.
const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;

/// The secrets are [`Secret`]s: `Debug` shows the base URL and timeout
/// only.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// `sk_live_…` or `sk_test_…`.
    pub secret_key: Secret,
    /// `whsec_…`, from the webhook endpoint's settings.
    pub webhook_secret: Secret,
    /// Stripe's API; tests point it at a local fake.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_base_url() -> String {
    "https://api.stripe.com".to_owned()
}

fn default_timeout() -> u64 {
    10
}

pub struct Stripe {
    config: StripeConfig,
    http: reqwest::Client,
}

impl Stripe {
    pub fn new(config: StripeConfig) -> Result<Self, PluginError> {
        let config_error = |reason: String| PluginError::Config {
            gateway: "stripe",
            reason,
        };
        if !config.secret_key.expose().starts_with("sk_")
            && !config.secret_key.expose().starts_with("rk_")
        {
            return Err(config_error(
                "secret_key must be a Stripe secret key (sk_…)".to_owned(),
            ));
        }
        if !config.webhook_secret.expose().starts_with("whsec_") {
            return Err(config_error(
                "webhook_secret must be a webhook signing secret (whsec_…)".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds.clamp(1, 120)))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// Sends a request and reads a PaymentIntent. A card decline (HTTP 402)
    /// is an answer, not an error: the intent comes back inside it.
    async fn intent(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<ProviderPayment, GatewayError> {
        let response = request
            .bearer_auth(self.config.secret_key.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            let intent: wire::PaymentIntent = serde_json::from_slice(&body)
                .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")))?;
            return Ok(intent.into_provider_payment());
        }
        match error_answer(status, &body) {
            Declined(Some(intent), reason) => {
                let mut payment = intent.into_provider_payment();
                payment.step = domain::payments::PaymentStep::Failed { reason };
                Ok(payment)
            }
            Declined(None, reason) => Err(GatewayError::Rejected(format!(
                "the card was declined ({reason})"
            ))),
            Other(error) => Err(error),
        }
    }
}

enum Failure {
    /// A card error: the intent (if Stripe sent it) and the decline reason.
    Declined(Option<Box<wire::PaymentIntent>>, String),
    Other(GatewayError),
}
use Failure::{Declined, Other};

fn transport_error(error: reqwest::Error) -> GatewayError {
    if error.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Unavailable(error.without_url().to_string())
    }
}

fn error_answer(status: reqwest::StatusCode, body: &[u8]) -> Failure {
    if status.is_server_error() {
        return Other(GatewayError::Unavailable(format!("HTTP {status}")));
    }
    match serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        Ok(envelope) if envelope.error.kind.as_deref() == Some("card_error") => {
            let reason = envelope.error.reason();
            Declined(envelope.error.payment_intent, reason)
        }
        Ok(envelope) => Other(GatewayError::Rejected(
            envelope
                .error
                .message
                .unwrap_or_else(|| format!("HTTP {status}")),
        )),
        Err(_) => Other(GatewayError::Rejected(format!("HTTP {status}"))),
    }
}

async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    let body = response.bytes().await.map_err(transport_error)?;
    if !status.is_success() {
        return Err(match error_answer(status, &body) {
            Other(error) => error,
            Declined(_, reason) => GatewayError::Rejected(reason),
        });
    }
    serde_json::from_slice(&body)
        .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")))
}

impl Stripe {
    /// The no-show guarantee: a Customer holding the guest's card through a
    /// SetupIntent, nothing charged. The Customer carries no personal data,
    /// only kluis's payment id.
    async fn save_card(&self, request: &StartPayment) -> Result<ProviderPayment, GatewayError> {
        let response = self
            .http
            .post(self.url("/v1/customers"))
            .bearer_auth(self.config.secret_key.expose())
            .header(
                "Idempotency-Key",
                format!("{}-customer", request.idempotency_key),
            )
            .form(&[("metadata[kluis_payment_id]", request.payment_id.as_str())])
            .send()
            .await
            .map_err(transport_error)?;
        let customer: wire::Customer = read(response).await?;
        let mut form: Vec<(&str, &str)> = vec![
            ("customer", &customer.id),
            ("payment_method", &request.token),
            ("payment_method_types[]", "card"),
            ("usage", "off_session"),
            ("confirm", "true"),
            ("metadata[kluis_payment_id]", &request.payment_id),
        ];
        if let Some(url) = &request.return_url {
            form.push(("return_url", url));
        }
        let response = self
            .http
            .post(self.url("/v1/setup_intents"))
            .bearer_auth(self.config.secret_key.expose())
            .header("Idempotency-Key", &request.idempotency_key)
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        read::<wire::SetupIntent>(response)
            .await
            .map(wire::SetupIntent::into_provider_payment)
    }
}

/// Checks `Stripe-Signature: t=…,v1=…` over `"{t}.{body}"` with HMAC-SHA256,
/// in constant time, within the tolerance.
fn verify_signature(secret: &str, header: &str, body: &[u8], now: i64) -> Result<(), GatewayError> {
    let invalid = |why: &str| GatewayError::InvalidWebhook(why.to_owned());
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value.to_owned()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid("no timestamp in Stripe-Signature"))?;
    if (now - timestamp).abs() > WEBHOOK_TOLERANCE_SECONDS {
        return Err(invalid("stale timestamp"));
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| invalid("unusable webhook secret"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    let matches = signatures.iter().any(|candidate| {
        subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), expected.as_bytes()).into()
    });
    if matches {
        Ok(())
    } else {
        Err(invalid("signature does not match"))
    }
}

/// Signs a payload the way Stripe does; for tests and local replays.
pub fn sign_webhook(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[async_trait]
impl PaymentGateway for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn check_token(&self, token: &str) -> Result<(), DomainError> {
        let valid = token.len() <= 255
            && token.strip_prefix("pm_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if valid {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "token",
                "must be a Stripe PaymentMethod id (pm_…) from Stripe.js",
            ))
        }
    }

    async fn start(&self, request: &StartPayment) -> Result<ProviderPayment, GatewayError> {
        if request.purpose == domain::payments::Purpose::SaveCard {
            return self.save_card(request).await;
        }
        let amount = request.amount.minor().to_string();
        let currency = request.amount.currency().code().to_ascii_lowercase();
        let mut form: Vec<(&str, &str)> = vec![
            ("amount", &amount),
            ("currency", &currency),
            ("payment_method", &request.token),
            ("payment_method_types[]", "card"),
            ("confirm", "true"),
            ("description", &request.description),
            ("metadata[kluis_payment_id]", &request.payment_id),
            ("expand[]", "payment_method"),
        ];
        if let Some(url) = &request.return_url {
            form.push(("return_url", url));
        }
        self.intent(
            self.http
                .post(self.url("/v1/payment_intents"))
                .header("Idempotency-Key", &request.idempotency_key)
                .form(&form),
        )
        .await
    }

    async fn refresh(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        if reference.starts_with("seti_") {
            let response = self
                .http
                .get(self.url(&format!("/v1/setup_intents/{reference}")))
                .bearer_auth(self.config.secret_key.expose())
                .send()
                .await
                .map_err(transport_error)?;
            return read::<wire::SetupIntent>(response)
                .await
                .map(wire::SetupIntent::into_provider_payment);
        }
        self.intent(
            self.http
                .get(self.url(&format!("/v1/payment_intents/{reference}")))
                .query(&[("expand[]", "payment_method")]),
        )
        .await
    }

    async fn capture(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        self.intent(
            self.http
                .post(self.url(&format!("/v1/payment_intents/{reference}/capture")))
                .header("Idempotency-Key", format!("capture-{reference}"))
                .form(&[("expand[]", "payment_method")]),
        )
        .await
    }

    async fn cancel(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        self.intent(
            self.http
                .post(self.url(&format!("/v1/payment_intents/{reference}/cancel")))
                .header("Idempotency-Key", format!("cancel-{reference}"))
                .form(&[("expand[]", "payment_method")]),
        )
        .await
    }

    async fn refund(
        &self,
        reference: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError> {
        let minor = amount.minor().to_string();
        let response = self
            .http
            .post(self.url("/v1/refunds"))
            .bearer_auth(self.config.secret_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .form(&[("payment_intent", reference), ("amount", &minor)])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(match error_answer(status, &body) {
                Other(error) => error,
                Declined(_, reason) => GatewayError::Rejected(format!("refund refused ({reason})")),
            });
        }
        let refund: wire::Refund = serde_json::from_slice(&body)
            .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")))?;
        let currency = domain::payments::Currency::parse(&refund.currency)
            .map_err(|_| GatewayError::Unavailable("unknown refund currency".to_owned()))?;
        Ok(ProviderRefund {
            reference: refund.id,
            amount: Money::new(refund.amount, currency)
                .map_err(|_| GatewayError::Unavailable("unreadable refund amount".to_owned()))?,
            succeeded: matches!(refund.status.as_deref(), Some("succeeded" | "pending")),
        })
    }

    /// Deletes the Customer a saved card hangs on (erasure): Stripe then
    /// keeps no way to charge or identify the guest through kluis.
    async fn forget(&self, reference: &str) -> Result<(), GatewayError> {
        if !reference.starts_with("seti_") {
            return Ok(());
        }
        let response = self
            .http
            .get(self.url(&format!("/v1/setup_intents/{reference}")))
            .bearer_auth(self.config.secret_key.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let setup: wire::SetupIntent = read(response).await?;
        let Some(customer) = setup.customer else {
            return Ok(());
        };
        let response = self
            .http
            .delete(self.url(&format!("/v1/customers/{}", customer.id())))
            .bearer_auth(self.config.secret_key.expose())
            .send()
            .await
            .map_err(transport_error)?;
        if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(GatewayError::Unavailable(format!(
                "customer deletion: HTTP {}",
                response.status()
            )))
        }
    }

    /// Charges the card a SetupIntent saved, off-session.
    async fn charge_saved(
        &self,
        saved: &str,
        request: &StartPayment,
    ) -> Result<ProviderPayment, GatewayError> {
        let response = self
            .http
            .get(self.url(&format!("/v1/setup_intents/{saved}")))
            .bearer_auth(self.config.secret_key.expose())
            .send()
            .await
            .map_err(transport_error)?;
        let setup: wire::SetupIntent = read(response).await?;
        let (Some(customer), Some(method)) = (&setup.customer, &setup.payment_method) else {
            return Err(GatewayError::Rejected("the saved card is gone".to_owned()));
        };
        let amount = request.amount.minor().to_string();
        let currency = request.amount.currency().code().to_ascii_lowercase();
        self.intent(
            self.http
                .post(self.url("/v1/payment_intents"))
                .header("Idempotency-Key", &request.idempotency_key)
                .form(&[
                    ("amount", amount.as_str()),
                    ("currency", currency.as_str()),
                    ("customer", customer.id()),
                    ("payment_method", method.id()),
                    ("off_session", "true"),
                    ("confirm", "true"),
                    ("description", request.description.as_str()),
                    ("metadata[kluis_payment_id]", request.payment_id.as_str()),
                    ("expand[]", "payment_method"),
                ]),
        )
        .await
    }

    async fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<WebhookEvent, GatewayError> {
        let signature = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| GatewayError::InvalidWebhook("no Stripe-Signature header".to_owned()))?;
        verify_signature(
            self.config.webhook_secret.expose(),
            signature,
            body,
            now.timestamp(),
        )?;
        let event: wire::Event = serde_json::from_slice(body)
            .map_err(|e| GatewayError::InvalidWebhook(format!("unreadable event: {e}")))?;
        let object = event.data.object;
        let payment_id = object
            .metadata
            .get("kluis_payment_id")
            .and_then(|value| value.as_str())
            .map(str::to_owned);
        let reference = match object.object.as_deref() {
            Some("payment_intent" | "setup_intent") => object.id,
            _ => object.payment_intent,
        };
        Ok(WebhookEvent {
            id: event.id,
            reference,
            payment_id,
            kind: event.kind,
        })
    }
}

#[cfg(test)]
mod tests;
