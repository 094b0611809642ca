//! Closed sets the schema names as enums and several resolver modules
//! share, with their conversions to the names the layers below use.

use async_graphql::Enum;
use domain::privacy::ConsentPurpose;

/// A way of paying kluis knows. Which ones a venue accepts is on
/// `Venue.gateways`; a payment names one, and one not configured on this
/// server is refused.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentGateway {
    /// Cards through Stripe, with 3D Secure, and card guarantees; the
    /// token is a PaymentMethod id (`pm_…`).
    Stripe,
    /// PayPal: the token is `card` (card fields) or `paypal` (wallet); no
    /// card guarantees.
    Paypal,
    /// Paid at the venue and closed at the desk; the token is `onsite`.
    Onsite,
}

impl PaymentGateway {
    pub const ALL: [Self; 3] = [Self::Stripe, Self::Paypal, Self::Onsite];

    /// The name the payment plugins and the settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Paypal => "paypal",
            Self::Onsite => "onsite",
        }
    }

    /// The gateway a plugin name stands for; `None` for a name kluis does
    /// not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Whether it can keep a card for a no-show fee (a guarantee).
    pub fn saves_cards(self) -> bool {
        matches!(self, Self::Stripe)
    }
}

impl std::fmt::Display for PaymentGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a guest may opt in to besides the booking itself, off unless they
/// tick it, and withdraw as easily. The booking itself is no such purpose:
/// it is the legal basis of the reservation, ended by cancelling or
/// erasing.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptInPurpose {
    /// The venue's newsletter.
    Newsletter,
    /// Marketing messages.
    Marketing,
}

impl OptInPurpose {
    /// The opt-in purpose a ledger's purpose is, if it is one.
    pub fn of(purpose: ConsentPurpose) -> Option<Self> {
        Self::try_from(purpose).ok()
    }
}

impl From<OptInPurpose> for ConsentPurpose {
    fn from(value: OptInPurpose) -> Self {
        match value {
            OptInPurpose::Newsletter => Self::Newsletter,
            OptInPurpose::Marketing => Self::Marketing,
        }
    }
}

impl TryFrom<ConsentPurpose> for OptInPurpose {
    /// The booking itself is no opt-in.
    type Error = ConsentPurpose;

    fn try_from(value: ConsentPurpose) -> Result<Self, Self::Error> {
        match value {
            ConsentPurpose::Newsletter => Ok(Self::Newsletter),
            ConsentPurpose::Marketing => Ok(Self::Marketing),
            ConsentPurpose::Booking => Err(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names_round_trip_with_the_plugins() {
        for name in plugins::KNOWN {
            let gateway = PaymentGateway::from_name(name).expect("a known gateway");
            assert_eq!(gateway.as_str(), name);
        }
        assert_eq!(PaymentGateway::from_name("bitcoin"), None);
    }
}
