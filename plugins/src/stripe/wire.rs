//! Stripe's JSON, as `specs/stripe/fixtures3.json` (top of the repository) shows it, and
//! its mapping onto kluis's payment steps. Only the fields kluis reads.

use domain::payments::{NextAction, PaymentStep, ProviderPayment};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    pub client_secret: Option<String>,
    pub next_action: Option<WireNextAction>,
    pub last_payment_error: Option<PaymentError>,
    /// Expanded (`expand[]=payment_method`) for brand and last four.
    pub payment_method: Option<PaymentMethodField>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PaymentMethodField {
    Expanded(PaymentMethod),
    /// Not expanded: only an id, nothing to read.
    Id(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
pub struct PaymentMethod {
    pub card: Option<Card>,
}

#[derive(Debug, Deserialize)]
pub struct Card {
    pub brand: Option<String>,
    pub last4: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WireNextAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Debug, Deserialize)]
pub struct RedirectToUrl {
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub payment_intent: Option<Box<PaymentIntent>>,
}

/// Stripe's error envelope (`{"error": {...}}`).
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    pub error: PaymentError,
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: EventObject,
}

#[derive(Debug, Deserialize)]
pub struct EventObject {
    pub id: Option<String>,
    pub object: Option<String>,
    /// Set on charges and refunds: the PaymentIntent they belong to.
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, serde_json::Value>,
}

impl PaymentError {
    /// A reason fit for the guest: the decline code, never card details.
    pub fn reason(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .or_else(|| self.kind.clone())
            .unwrap_or_else(|| "payment_failed".to_owned())
    }
}

impl PaymentIntent {
    pub fn step(&self) -> PaymentStep {
        match self.status.as_str() {
            "succeeded" => PaymentStep::Succeeded,
            "processing" | "requires_capture" | "requires_confirmation" => PaymentStep::Processing,
            "requires_action" => {
                let redirect = self
                    .next_action
                    .as_ref()
                    .filter(|action| action.kind == "redirect_to_url")
                    .and_then(|action| action.redirect_to_url.as_ref())
                    .and_then(|redirect| redirect.url.clone());
                match (redirect, &self.client_secret) {
                    (Some(url), _) => PaymentStep::RequiresAction {
                        next_action: NextAction::RedirectToUrl(url),
                    },
                    (None, Some(secret)) => PaymentStep::RequiresAction {
                        next_action: NextAction::ClientSecret(secret.clone()),
                    },
                    (None, None) => PaymentStep::Processing,
                }
            }
            "canceled" => PaymentStep::Failed {
                reason: "cancelled".to_owned(),
            },
            // `requires_payment_method` after a confirmation: declined.
            _ => PaymentStep::Failed {
                reason: self
                    .last_payment_error
                    .as_ref()
                    .map_or_else(|| "payment_failed".to_owned(), PaymentError::reason),
            },
        }
    }

    pub fn into_provider_payment(self) -> ProviderPayment {
        let step = self.step();
        let card = match self.payment_method {
            Some(PaymentMethodField::Expanded(method)) => method.card,
            _ => None,
        };
        ProviderPayment {
            reference: self.id,
            step,
            card_brand: card.as_ref().and_then(|c| c.brand.clone()),
            card_last4: card.and_then(|c| c.last4),
        }
    }
}

/// A SetupIntent: a card saved for later off-session charges.
#[derive(Debug, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    pub status: String,
    pub client_secret: Option<String>,
    pub next_action: Option<WireNextAction>,
    pub last_setup_error: Option<PaymentError>,
    pub customer: Option<IdOrObject>,
    pub payment_method: Option<IdOrObject>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum IdOrObject {
    Id(String),
    Object { id: String },
}

impl IdOrObject {
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Customer {
    pub id: String,
}

impl SetupIntent {
    pub fn into_provider_payment(self) -> ProviderPayment {
        // A SetupIntent moves through the same statuses as a PaymentIntent.
        let step = PaymentIntent {
            id: self.id.clone(),
            status: self.status,
            client_secret: self.client_secret,
            next_action: self.next_action,
            last_payment_error: self.last_setup_error,
            payment_method: None,
        }
        .step();
        ProviderPayment {
            reference: self.id,
            step,
            card_brand: None,
            card_last4: None,
        }
    }
}
