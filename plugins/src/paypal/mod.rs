//! PayPal over REST: OAuth client credentials (token cached until it
//! expires), Orders v2 with `PayPal-Request-Id`, card payments verified
//! with `SCA_WHEN_REQUIRED` and captured only when the issuer shifted
//! liability (YES or POSSIBLE), refunds, and webhooks verified by PayPal's
//! own `verify-webhook-signature` with the raw event.

mod wire;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::payments::{
    GatewayError, Money, PaymentGateway, PaymentStep, ProviderPayment, ProviderRefund,
    StartPayment, WebhookEvent,
};
use domain::{DomainError, Secret};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::PluginError;

/// The client secret is a [`Secret`]: `Debug` does not show it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayPalConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// The webhook's id in the PayPal dashboard, for signature checks.
    pub webhook_id: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_base_url() -> String {
    "https://api-m.paypal.com".to_owned()
}

fn default_timeout() -> u64 {
    10
}

pub struct PayPal {
    config: PayPalConfig,
    http: reqwest::Client,
    /// The access token and when it stops being valid.
    token: Mutex<Option<(Secret, DateTime<Utc>)>>,
}

fn transport_error(error: reqwest::Error) -> GatewayError {
    if error.is_timeout() {
        GatewayError::Timeout
    } else {
        GatewayError::Unavailable(error.without_url().to_string())
    }
}

/// Amounts as PayPal writes them: a decimal string.
fn value(amount: Money) -> String {
    format!("{}.{:02}", amount.minor() / 100, amount.minor() % 100)
}

impl PayPal {
    pub fn new(config: PayPalConfig) -> Result<Self, PluginError> {
        if config.client_id.is_empty()
            || config.client_secret.is_empty()
            || config.webhook_id.is_empty()
        {
            return Err(PluginError::Config {
                gateway: "paypal",
                reason: "client_id, client_secret and webhook_id are all needed".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds.clamp(1, 120)))
            .build()
            .map_err(|e| PluginError::Config {
                gateway: "paypal",
                reason: e.to_string(),
            })?;
        Ok(Self {
            config,
            http,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// A valid access token: the cached one, or a new one a minute before
    /// the old expires.
    async fn access_token(&self) -> Result<Secret, GatewayError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && *until > Utc::now()
        {
            return Ok(token.clone());
        }
        let response = self
            .http
            .post(self.url("/v1/oauth2/token"))
            .basic_auth(
                &self.config.client_id,
                Some(self.config.client_secret.expose()),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(transport_error)?;
        let token: wire::AccessToken = read(response).await?;
        let until = Utc::now() + chrono::Duration::seconds((token.expires_in - 60).max(0));
        *cached = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    async fn order(&self, request: reqwest::RequestBuilder) -> Result<wire::Order, GatewayError> {
        let token = self.access_token().await?;
        let response = request
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(transport_error)?;
        read(response).await
    }

    async fn get_order(&self, id: &str) -> Result<wire::Order, GatewayError> {
        self.order(
            self.http
                .get(self.url(&format!("/v2/checkout/orders/{id}"))),
        )
        .await
    }

    /// Captures an approved order, unless a card's issuer did not shift
    /// liability: then the payment fails without money moving.
    async fn settle(&self, order: wire::Order) -> Result<ProviderPayment, GatewayError> {
        let shifted = order
            .liability_shift()
            .is_some_and(|s| s == "YES" || s == "POSSIBLE");
        let order = if order.status == "APPROVED" {
            if order.is_card() && !shifted {
                let reason = format!(
                    "3-D Secure gave no liability shift ({})",
                    order.liability_shift().unwrap_or("none")
                );
                return Ok(provider_payment(&order, PaymentStep::Failed { reason }));
            }
            self.order(
                self.http
                    .post(self.url(&format!("/v2/checkout/orders/{}/capture", order.id)))
                    .header("PayPal-Request-Id", format!("capture-{}", order.id))
                    .json(&json!({})),
            )
            .await?
        } else {
            order
        };
        let step = order.waiting_step();
        Ok(provider_payment(&order, step))
    }
}

fn provider_payment(order: &wire::Order, step: PaymentStep) -> ProviderPayment {
    let card = order
        .payment_source
        .as_ref()
        .and_then(|source| source.card.as_ref());
    ProviderPayment {
        reference: order.id.clone(),
        step,
        card_brand: card.and_then(|c| c.brand.clone()).map(|b| b.to_lowercase()),
        card_last4: card.and_then(|c| c.last_digits.clone()),
    }
}

async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let status = response.status();
    let body = response.bytes().await.map_err(transport_error)?;
    if status.is_server_error() {
        return Err(GatewayError::Unavailable(format!("HTTP {status}")));
    }
    if !status.is_success() {
        let reason = serde_json::from_slice::<wire::ErrorBody>(&body)
            .ok()
            .and_then(|e| e.message.or(e.name))
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(GatewayError::Rejected(reason));
    }
    serde_json::from_slice(&body)
        .map_err(|e| GatewayError::Unavailable(format!("unreadable answer: {e}")))
}

#[async_trait]
impl PaymentGateway for PayPal {
    fn name(&self) -> &'static str {
        "paypal"
    }

    /// The funding source the front-end offers: PayPal's card fields or the
    /// PayPal wallet. Card data itself goes from the browser to PayPal.
    fn check_token(&self, token: &str) -> Result<(), DomainError> {
        match token {
            "card" | "paypal" => Ok(()),
            _ => Err(DomainError::invalid(
                "token",
                "PayPal takes `card` (card fields) or `paypal` (wallet)",
            )),
        }
    }

    async fn start(&self, request: &StartPayment) -> Result<ProviderPayment, GatewayError> {
        if request.purpose == domain::payments::Purpose::SaveCard {
            return Err(GatewayError::Unsupported(
                "card guarantees are taken with stripe",
            ));
        }
        let return_url = request
            .return_url
            .clone()
            .unwrap_or_else(|| "https://localhost/paid".to_owned());
        let payment_source = if request.token == "card" {
            json!({ "card": {
                "attributes": { "verification": { "method": "SCA_WHEN_REQUIRED" } },
                "experience_context": { "return_url": return_url, "cancel_url": return_url }
            } })
        } else {
            json!({ "paypal": { "experience_context": { "return_url": return_url, "cancel_url": return_url } } })
        };
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": request.payment_id,
                "custom_id": request.payment_id,
                "description": request.description,
                "amount": { "currency_code": request.amount.currency().code(), "value": value(request.amount) }
            }],
            "payment_source": payment_source,
        });
        let order = self
            .order(
                self.http
                    .post(self.url("/v2/checkout/orders"))
                    .header("PayPal-Request-Id", &request.idempotency_key)
                    .json(&body),
            )
            .await?;
        let step = order.waiting_step();
        Ok(provider_payment(&order, step))
    }

    async fn refresh(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        let order = self.get_order(reference).await?;
        self.settle(order).await
    }

    async fn capture(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        self.refresh(reference).await
    }

    async fn cancel(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        // An order that is never captured expires; nothing to call.
        let order = self.get_order(reference).await?;
        Ok(provider_payment(
            &order,
            PaymentStep::Failed {
                reason: "cancelled".to_owned(),
            },
        ))
    }

    async fn refund(
        &self,
        reference: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError> {
        let order = self.get_order(reference).await?;
        let capture = order.capture_id().ok_or_else(|| {
            GatewayError::Rejected("the order has no capture to refund".to_owned())
        })?;
        let token = self.access_token().await?;
        let response = self
            .http
            .post(self.url(&format!("/v2/payments/captures/{capture}/refund")))
            .bearer_auth(token.expose())
            .header("PayPal-Request-Id", idempotency_key)
            .json(&json!({ "amount": { "currency_code": amount.currency().code(), "value": value(amount) } }))
            .send()
            .await
            .map_err(transport_error)?;
        let refund: wire::Refund = read(response).await?;
        Ok(ProviderRefund {
            reference: refund.id,
            amount,
            succeeded: matches!(refund.status.as_deref(), Some("COMPLETED" | "PENDING")),
        })
    }

    async fn charge_saved(
        &self,
        _saved: &str,
        _request: &StartPayment,
    ) -> Result<ProviderPayment, GatewayError> {
        Err(GatewayError::Unsupported(
            "card guarantees are taken with stripe",
        ))
    }

    async fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<WebhookEvent, GatewayError> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
                .ok_or_else(|| GatewayError::InvalidWebhook(format!("no {name} header")))
        };
        let raw = std::str::from_utf8(body)
            .map_err(|_| GatewayError::InvalidWebhook("not UTF-8".to_owned()))?;
        let event: wire::Event = serde_json::from_str(raw)
            .map_err(|e| GatewayError::InvalidWebhook(format!("unreadable event: {e}")))?;
        // PayPal checks the event exactly as it sent it: the raw body goes
        // into the request unchanged.
        let fields = json!({
            "auth_algo": header("paypal-auth-algo")?,
            "cert_url": header("paypal-cert-url")?,
            "transmission_id": header("paypal-transmission-id")?,
            "transmission_sig": header("paypal-transmission-sig")?,
            "transmission_time": header("paypal-transmission-time")?,
            "webhook_id": self.config.webhook_id,
        });
        let mut request_body = fields.to_string();
        request_body.pop();
        request_body.push_str(",\"webhook_event\":");
        request_body.push_str(raw);
        request_body.push('}');
        let token = self.access_token().await?;
        let response = self
            .http
            .post(self.url("/v1/notifications/verify-webhook-signature"))
            .bearer_auth(token.expose())
            .header("content-type", "application/json")
            .body(request_body)
            .send()
            .await
            .map_err(transport_error)?;
        let verified: wire::VerifyResponse = read(response).await?;
        if verified.verification_status != "SUCCESS" {
            return Err(GatewayError::InvalidWebhook(
                "PayPal did not verify the signature".to_owned(),
            ));
        }
        let resource = event.resource;
        let order = resource
            .as_ref()
            .and_then(|r| r.supplementary_data.as_ref())
            .and_then(|s| s.related_ids.as_ref())
            .and_then(|ids| ids.order_id.clone());
        let reference = order.or_else(|| {
            resource
                .as_ref()
                .filter(|_| event.event_type.starts_with("CHECKOUT.ORDER"))
                .and_then(|r| r.id.clone())
        });
        Ok(WebhookEvent {
            id: event.id,
            reference,
            payment_id: resource.and_then(|r| r.custom_id),
            kind: event.event_type,
        })
    }
}

#[cfg(test)]
mod tests;
