//! Who is calling, as the use cases and the rules see it.

use domain::ReservationId;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// Holder of a reservation's manage token: that reservation only.
    Guest(ReservationId),
    Staff {
        id: String,
        email: domain::Personal,
        /// Venues (or `*`) where the account holds any role.
        venues: Vec<String>,
        session: domain::SessionHash,
    },
    ApiKey {
        id: String,
        venues: Vec<String>,
    },
}

impl Principal {
    /// The Casbin subject: a role for callers without an account, the
    /// account otherwise.
    pub fn subject(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".to_owned(),
            Self::Guest(_) => "guest".to_owned(),
            Self::Staff { id, .. } => format!("user:{id}"),
            Self::ApiKey { id, .. } => format!("apikey:{id}"),
        }
    }

    /// Venues where this principal holds a role, for checks that concern no
    /// one venue.
    pub fn venues(&self) -> &[String] {
        match self {
            Self::Staff { venues, .. } | Self::ApiKey { venues, .. } => venues,
            Self::Anonymous | Self::Guest(_) => &[],
        }
    }

    /// Whether this principal's reach is bound to venues: then a venue
    /// outside it does not exist for them.
    pub fn is_venue_bound(&self) -> bool {
        matches!(self, Self::Staff { .. } | Self::ApiKey { .. })
    }
}
