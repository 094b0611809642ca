//! Money and payments: amounts in minor units, the venue's payment rules,
//! and the port every payment provider plugin implements. The server only
//! ever holds provider tokens and references, never card data, and a
//! payment's state changes only on what the provider says.

use std::fmt;

use crate::DomainError;

/// An ISO 4217 currency code, upper-case (`EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let upper = raw.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = upper.as_bytes().try_into().map_err(|_| {
            DomainError::invalid("currency", "must be a three-letter ISO 4217 code")
        })?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::invalid(
                "currency",
                "must be a three-letter ISO 4217 code",
            ));
        }
        Ok(Self(bytes))
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in the currency's minor unit (cents), never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Refuses negative amounts and absurd ones (above 10 million units).
    pub fn new(minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if !(0..=1_000_000_000).contains(&minor) {
            return Err(DomainError::invalid(
                "amount",
                "must be between 0 and 10,000,000.00",
            ));
        }
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// This amount times a count, for per-guest rules.
    pub fn times(&self, count: u32) -> Result<Self, DomainError> {
        Self::new(self.minor.saturating_mul(i64::from(count)), self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor / 100,
            self.minor % 100,
            self.currency
        )
    }
}

/// Where a payment stands, as the provider last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// The guest must complete a challenge (3D Secure, PayPal approval).
    RequiresAction,
    /// The provider has not decided yet (or did not answer in time).
    Processing,
    Succeeded,
    Failed,
    Cancelled,
    Refunded,
    PartiallyRefunded,
}

impl PaymentStatus {
    pub const ALL: [Self; 7] = [
        Self::RequiresAction,
        Self::Processing,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
        Self::Refunded,
        Self::PartiallyRefunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
            Self::PartiallyRefunded => "partially_refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }

    /// Money may still move: erasure and refunds wait for these to settle.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Self::RequiresAction | Self::Processing)
    }
}

/// What the front-end must do for the guest to finish paying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAction {
    /// Send the guest's browser here (3D Secure page, PayPal approval).
    RedirectToUrl(String),
    /// Hand this to the provider's front-end SDK (Stripe.js
    /// `handleNextAction`).
    ClientSecret(String),
}

/// A provider's answer about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStep {
    Succeeded,
    RequiresAction { next_action: NextAction },
    Processing,
    Failed { reason: String },
}

impl PaymentStep {
    pub fn status(&self) -> PaymentStatus {
        match self {
            Self::Succeeded => PaymentStatus::Succeeded,
            Self::RequiresAction { .. } => PaymentStatus::RequiresAction,
            Self::Processing => PaymentStatus::Processing,
            Self::Failed { .. } => PaymentStatus::Failed,
        }
    }
}

/// What a payment does at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Take the amount now.
    Charge,
    /// Save the card for a later no-show fee (the provider's setup flow);
    /// nothing is charged.
    SaveCard,
}

/// A request to take money for one payment.
#[derive(Debug, Clone)]
pub struct StartPayment {
    pub purpose: Purpose,
    /// kluis's payment id, sent along as metadata and used to derive the
    /// provider idempotency key: a retry creates one provider payment.
    pub payment_id: String,
    pub amount: Money,
    /// The provider token the front-end obtained (Stripe PaymentMethod id,
    /// PayPal order id). Never card data.
    pub token: String,
    pub idempotency_key: String,
    /// Where the provider sends the guest back after a challenge.
    pub return_url: Option<String>,
    pub description: String,
}

/// The provider's view of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub reference: String,
    pub step: PaymentStep,
    /// At most brand and last four digits; nothing else of the card.
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub reference: String,
    pub amount: Money,
    pub succeeded: bool,
}

/// A webhook the provider's signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id: a second delivery of it changes nothing.
    pub id: String,
    /// The provider reference of the payment it concerns, if any.
    pub reference: Option<String>,
    /// kluis's own payment id, when the provider echoes it back (metadata):
    /// finds a payment whose start timed out before its reference was known.
    pub payment_id: Option<String>,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer in time: the payment's fate is unknown until a refresh or
    /// webhook tells.
    #[error("the payment provider did not answer in time")]
    Timeout,
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request itself (not a declined card).
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
    #[error("webhook refused: {0}")]
    InvalidWebhook(String),
    #[error("{0}")]
    Unsupported(&'static str),
}

/// One payment provider. Implementations live in the `plugins` crate; the
/// server never calls a provider any other way.
#[async_trait::async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The name configuration and the API use (`stripe`, `paypal`, `onsite`).
    fn name(&self) -> &'static str;

    /// Checks the shape of a front-end token before any call is made.
    fn check_token(&self, token: &str) -> Result<(), DomainError>;

    async fn start(&self, request: &StartPayment) -> Result<ProviderPayment, GatewayError>;

    /// Asks the provider for the truth about a payment.
    async fn refresh(&self, reference: &str) -> Result<ProviderPayment, GatewayError>;

    async fn capture(&self, reference: &str) -> Result<ProviderPayment, GatewayError>;

    async fn cancel(&self, reference: &str) -> Result<ProviderPayment, GatewayError>;

    async fn refund(
        &self,
        reference: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<ProviderRefund, GatewayError>;

    /// Asks the provider to delete what it keeps of the guest behind a
    /// payment (a saved card's customer object), for erasure. Providers
    /// that keep nothing answer at once.
    async fn forget(&self, _reference: &str) -> Result<(), GatewayError> {
        Ok(())
    }

    /// Charges a card saved by an earlier `SaveCard` payment (its provider
    /// reference), without the guest present: the no-show fee.
    async fn charge_saved(
        &self,
        saved: &str,
        request: &StartPayment,
    ) -> Result<ProviderPayment, GatewayError>;

    /// Verifies a webhook delivery (signature, freshness) and reads it.
    async fn verify_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<WebhookEvent, GatewayError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("eur").expect("valid")
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert_eq!(eur().code(), "EUR");
        for raw in ["", "EU", "EURO", "E1R", "€€€"] {
            assert!(Currency::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn money_is_never_negative_and_prints_in_units() {
        assert!(Money::new(-1, eur()).is_err());
        let deposit = Money::new(2_500, eur()).expect("valid");
        assert_eq!(deposit.to_string(), "25.00 EUR");
        assert_eq!(deposit.times(4).map(|m| m.minor()), Ok(10_000));
    }

    #[test]
    fn only_unsettled_payments_are_in_flight() {
        let in_flight: Vec<_> = PaymentStatus::ALL
            .into_iter()
            .filter(|s| s.is_in_flight())
            .collect();
        assert_eq!(
            in_flight,
            [PaymentStatus::RequiresAction, PaymentStatus::Processing]
        );
        for status in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
    }
}

/// What a venue asks guests to pay when they book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentRule {
    /// Nothing online.
    None,
    /// A deposit, per booking or per guest.
    Deposit { amount: Money, per_guest: bool },
    /// The full price up front, per booking or per guest.
    Prepayment { amount: Money, per_guest: bool },
    /// A card kept on file; a manager may charge this fee after a no-show.
    Guarantee { fee: Money, per_guest: bool },
}

/// What a booking must do before it is confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub purpose: Purpose,
    /// For a charge, the amount; for a saved card, the fee it may cost.
    pub amount: Money,
}

impl PaymentRule {
    /// What a booking for this party must pay or secure before it is
    /// confirmed.
    pub fn requirement(&self, party: crate::PartySize) -> Result<Option<Requirement>, DomainError> {
        let (purpose, amount, per_guest) = match *self {
            Self::None => return Ok(None),
            Self::Deposit { amount, per_guest } | Self::Prepayment { amount, per_guest } => {
                (Purpose::Charge, amount, per_guest)
            }
            Self::Guarantee { fee, per_guest } => (Purpose::SaveCard, fee, per_guest),
        };
        let amount = if per_guest {
            amount.times(party.get())?
        } else {
            amount
        };
        Ok((!amount.is_zero()).then_some(Requirement { purpose, amount }))
    }

    /// The amount a booking must pay now, if any.
    pub fn due(&self, party: crate::PartySize) -> Result<Option<Money>, DomainError> {
        Ok(self
            .requirement(party)?
            .filter(|r| r.purpose == Purpose::Charge)
            .map(|r| r.amount))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Deposit { .. } => "deposit",
            Self::Prepayment { .. } => "prepayment",
            Self::Guarantee { .. } => "guarantee",
        }
    }
}

/// A venue's payment rule and how long an unpaid booking holds its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentPolicy {
    pub rule: PaymentRule,
    pub hold: crate::Minutes,
}

impl Default for PaymentPolicy {
    fn default() -> Self {
        Self {
            rule: PaymentRule::None,
            hold: crate::Minutes::new_unchecked(15),
        }
    }
}

/// A payment as kluis keeps it: provider, reference, amounts, status, and
/// of the card at most brand and last four digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub reservation_id: crate::ReservationId,
    /// `charge`, `guarantee` (a saved card) or `no_show_fee`.
    pub kind: String,
    pub gateway: String,
    pub reference: Option<String>,
    pub amount: Money,
    pub refunded: Money,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Payment {
    /// What can still be refunded (a saved card moved no money).
    pub fn refundable(&self) -> i64 {
        if self.kind == "guarantee" {
            return 0;
        }
        match self.status {
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded => {
                self.amount.minor() - self.refunded.minor()
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod rule_tests {
    use super::*;

    #[test]
    fn per_guest_rules_multiply_by_the_party() {
        let amount = Money::new(1_000, Currency::parse("EUR").expect("valid")).expect("valid");
        let party = crate::PartySize::parse(4).expect("valid");
        let per_guest = PaymentRule::Deposit {
            amount,
            per_guest: true,
        };
        assert_eq!(
            per_guest.due(party).map(|m| m.map(|m| m.minor())),
            Ok(Some(4_000))
        );
        let per_booking = PaymentRule::Prepayment {
            amount,
            per_guest: false,
        };
        assert_eq!(
            per_booking.due(party).map(|m| m.map(|m| m.minor())),
            Ok(Some(1_000))
        );
        assert_eq!(PaymentRule::None.due(party), Ok(None));
    }
}
