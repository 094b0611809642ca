//! Consent as the schema shows it: the purposes a guest opts in to, the
//! append-only ledger, and the state folded from it. Below both the
//! reservation type and the privacy resolvers, so that each can use it
//! without importing the other.

use async_graphql::{Context, Enum, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::privacy::{Consent, ConsentPurpose};

use super::context::{blocking, store};

pub use super::enums::OptInPurpose;

/// Every purpose the ledger records, the booking's legal basis included.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[graphql(name = "ConsentPurpose")]
pub enum PurposeValue {
    /// The booking itself: its legal basis, recorded when booking.
    Booking,
    Newsletter,
    Marketing,
}

impl From<ConsentPurpose> for PurposeValue {
    fn from(value: ConsentPurpose) -> Self {
        match value {
            ConsentPurpose::Booking => Self::Booking,
            ConsentPurpose::Newsletter => Self::Newsletter,
            ConsentPurpose::Marketing => Self::Marketing,
        }
    }
}

/// One entry of the append-only consent ledger.
#[derive(SimpleObject)]
pub struct ConsentEntry {
    pub purpose: PurposeValue,
    pub given: bool,
    pub at: DateTime<Utc>,
    /// `web`, `partner:<key id>` or `staff:<account id>`.
    pub channel: String,
    pub notice_version: Option<u32>,
    pub notice_sha256: Option<String>,
}

impl From<Consent> for ConsentEntry {
    fn from(consent: Consent) -> Self {
        Self {
            purpose: consent.purpose.into(),
            given: consent.given,
            at: consent.at,
            channel: consent.channel,
            notice_version: consent.notice_version,
            notice_sha256: consent.notice_sha256,
        }
    }
}

/// Where a guest stands on one opt-in purpose now, folded from the ledger:
/// what a "my data" page shows as a switch.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct ConsentState {
    pub purpose: OptInPurpose,
    /// Off until the guest opts in.
    pub given: bool,
    /// When the guest last gave or withdrew it; null if they never did.
    pub since: Option<DateTime<Utc>>,
}

/// One state per opt-in purpose, in the order of `OptInPurpose`.
pub fn states(ledger: &[Consent]) -> Vec<ConsentState> {
    app::rights::consent_state(ledger)
        .into_iter()
        .filter_map(|state| {
            Some(ConsentState {
                purpose: OptInPurpose::of(state.purpose)?,
                given: state.given,
                since: state.since,
            })
        })
        .collect()
}

/// The consent ledger of a reservation's guest at its venue, oldest first.
pub async fn ledger_of(
    ctx: &Context<'_>,
    reservation: &domain::Reservation,
) -> Result<Vec<Consent>> {
    let Some(guest) = reservation.guest_id else {
        return Ok(Vec::new());
    };
    let venue = reservation.venue_id;
    let store = store(ctx).clone();
    blocking(move || store.consents_of(guest, venue)).await
}

/// The consent ledger of a reservation's guest, as the schema shows it.
pub async fn consents_of(
    ctx: &Context<'_>,
    reservation: &domain::Reservation,
) -> Result<Vec<ConsentEntry>> {
    Ok(ledger_of(ctx, reservation)
        .await?
        .into_iter()
        .map(ConsentEntry::from)
        .collect())
}

/// The opt-in state of a reservation's guest at its venue.
pub async fn consent_state_of(
    ctx: &Context<'_>,
    reservation: &domain::Reservation,
) -> Result<Vec<ConsentState>> {
    Ok(states(&ledger_of(ctx, reservation).await?))
}

/// One published version of a venue's privacy notice.
#[derive(SimpleObject)]
#[graphql(name = "PrivacyNotice")]
pub struct PrivacyNoticeObject {
    pub locale: String,
    /// Name this in `createReservation(input: { noticeVersion })`.
    pub version: u32,
    /// Markdown.
    pub text: String,
    /// SHA-256 of the text: what the consent ledger records.
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

impl From<domain::privacy::PrivacyNotice> for PrivacyNoticeObject {
    fn from(notice: domain::privacy::PrivacyNotice) -> Self {
        Self {
            locale: notice.locale.as_str().to_owned(),
            version: notice.version,
            text: notice.text,
            sha256: notice.sha256,
            published_at: notice.published_at,
        }
    }
}
