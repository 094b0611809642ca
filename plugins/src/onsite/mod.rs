//! Pay at the venue: no money moves online. The payment stays `processing`
//! until staff record it as paid (`capture`) or it is cancelled; refunds
//! happen at the counter.

use async_trait::async_trait;
use domain::DomainError;
use domain::payments::{
    GatewayError, Money, PaymentGateway, PaymentStep, ProviderPayment, ProviderRefund,
    StartPayment, WebhookEvent,
};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnsiteConfig {
    pub enabled: bool,
}

pub struct Onsite;

fn payment(reference: &str, step: PaymentStep) -> ProviderPayment {
    ProviderPayment {
        reference: reference.to_owned(),
        step,
        card_brand: None,
        card_last4: None,
    }
}

#[async_trait]
impl PaymentGateway for Onsite {
    fn name(&self) -> &'static str {
        "onsite"
    }

    /// There is nothing to tokenize; the front-end sends `onsite`.
    fn check_token(&self, token: &str) -> Result<(), DomainError> {
        if token == "onsite" {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "token",
                "on-site payment takes the token `onsite`",
            ))
        }
    }

    async fn start(&self, request: &StartPayment) -> Result<ProviderPayment, GatewayError> {
        if request.purpose == domain::payments::Purpose::SaveCard {
            return Err(GatewayError::Unsupported(
                "a card guarantee needs an online gateway (stripe)",
            ));
        }
        Ok(payment(
            &format!("onsite_{}", request.payment_id),
            PaymentStep::Processing,
        ))
    }

    async fn refresh(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        Ok(payment(reference, PaymentStep::Processing))
    }

    async fn capture(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        Ok(payment(reference, PaymentStep::Succeeded))
    }

    async fn cancel(&self, reference: &str) -> Result<ProviderPayment, GatewayError> {
        Ok(payment(
            reference,
            PaymentStep::Failed {
                reason: "cancelled".to_owned(),
            },
        ))
    }

    async fn refund(
        &self,
        _reference: &str,
        _amount: Money,
        _key: &str,
    ) -> Result<ProviderRefund, GatewayError> {
        Err(GatewayError::Unsupported(
            "on-site payments are refunded at the venue",
        ))
    }

    async fn charge_saved(
        &self,
        _saved: &str,
        _request: &StartPayment,
    ) -> Result<ProviderPayment, GatewayError> {
        Err(GatewayError::Unsupported("on-site payment keeps no card"))
    }

    async fn verify_webhook(
        &self,
        _headers: &[(String, String)],
        _body: &[u8],
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<WebhookEvent, GatewayError> {
        Err(GatewayError::Unsupported(
            "on-site payments send no webhooks",
        ))
    }
}
