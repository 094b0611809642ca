//! PayPal's JSON, from the Orders v2, Payments v2 and Webhooks v1 OpenAPI
//! specifications in `specs/paypal/` at the top of the repository. Only the fields kluis reads.

use domain::payments::{NextAction, PaymentStep};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct AccessToken {
    pub access_token: domain::Secret,
    /// Seconds.
    pub expires_in: i64,
}

#[derive(Debug, Deserialize)]
pub struct Order {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub links: Vec<Link>,
    pub payment_source: Option<PaymentSource>,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

#[derive(Debug, Deserialize)]
pub struct PaymentSource {
    pub card: Option<CardResponse>,
}

#[derive(Debug, Deserialize)]
pub struct CardResponse {
    pub brand: Option<String>,
    pub last_digits: Option<String>,
    pub authentication_result: Option<AuthenticationResult>,
}

#[derive(Debug, Deserialize)]
pub struct AuthenticationResult {
    pub liability_shift: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PurchaseUnit {
    pub payments: Option<Payments>,
}

#[derive(Debug, Deserialize)]
pub struct Payments {
    #[serde(default)]
    pub captures: Vec<Capture>,
}

#[derive(Debug, Deserialize)]
pub struct Capture {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VerifyResponse {
    pub verification_status: String,
}

#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub resource: Option<EventResource>,
}

#[derive(Debug, Deserialize)]
pub struct EventResource {
    pub id: Option<String>,
    pub custom_id: Option<String>,
    pub supplementary_data: Option<SupplementaryData>,
}

#[derive(Debug, Deserialize)]
pub struct SupplementaryData {
    pub related_ids: Option<RelatedIds>,
}

#[derive(Debug, Deserialize)]
pub struct RelatedIds {
    pub order_id: Option<String>,
}

/// What PayPal's error body says, for a refusal message.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub name: Option<String>,
    pub message: Option<String>,
}

impl Order {
    pub fn payer_action(&self) -> Option<String> {
        self.links
            .iter()
            .find(|link| link.rel == "payer-action" || link.rel == "approve")
            .map(|link| link.href.clone())
    }

    /// The issuer's 3D Secure outcome for a card payment.
    pub fn liability_shift(&self) -> Option<&str> {
        self.payment_source
            .as_ref()?
            .card
            .as_ref()?
            .authentication_result
            .as_ref()?
            .liability_shift
            .as_deref()
    }

    pub fn is_card(&self) -> bool {
        self.payment_source
            .as_ref()
            .is_some_and(|source| source.card.is_some())
    }

    pub fn capture_id(&self) -> Option<String> {
        self.purchase_units
            .iter()
            .filter_map(|unit| unit.payments.as_ref())
            .flat_map(|payments| payments.captures.iter())
            .next()
            .map(|capture| capture.id.clone())
    }

    /// The step for an order that is not (yet) to be captured.
    pub fn waiting_step(&self) -> PaymentStep {
        match self.status.as_str() {
            "COMPLETED" => PaymentStep::Succeeded,
            "VOIDED" => PaymentStep::Failed {
                reason: "voided".to_owned(),
            },
            "PAYER_ACTION_REQUIRED" => match self.payer_action() {
                Some(url) => PaymentStep::RequiresAction {
                    next_action: NextAction::RedirectToUrl(url),
                },
                None => PaymentStep::Processing,
            },
            // Card fields in the front-end confirm the order by its id.
            _ => PaymentStep::RequiresAction {
                next_action: match self.payer_action() {
                    Some(url) => NextAction::RedirectToUrl(url),
                    None => NextAction::ClientSecret(self.id.clone()),
                },
            },
        }
    }
}
