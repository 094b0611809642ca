//! Privacy notices and the consent ledger over GraphQL.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ports::ReservationRepository;
use domain::privacy::{Consent, ConsentPurpose, Locale};
use domain::{DomainError, ManageToken, VenueId};

use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};
use super::{blocking, now, store};

#[derive(SimpleObject)]
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

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ConsentPurpose")]
pub enum PurposeValue {
    /// The booking itself: its legal basis, recorded when booking.
    Booking,
    Newsletter,
    Marketing,
}

impl From<PurposeValue> for ConsentPurpose {
    fn from(value: PurposeValue) -> Self {
        match value {
            PurposeValue::Booking => Self::Booking,
            PurposeValue::Newsletter => Self::Newsletter,
            PurposeValue::Marketing => Self::Marketing,
        }
    }
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

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// The venue's current privacy notice in a locale, for the booking form.
    async fn privacy_notice(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        #[graphql(default = "en")] locale: String,
    ) -> Result<PrivacyNoticeObject> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        let locale = Locale::parse(&locale).or_gql()?;
        let store = store(ctx).clone();
        blocking(move || {
            store
                .current_notice(venue, &locale)?
                .map(PrivacyNoticeObject::from)
                .ok_or_else(|| DomainError::not_found("privacy notice").into())
        })
        .await
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

/// Gives or withdraws a consent as the guest holding the manage token.
async fn consent(
    ctx: &Context<'_>,
    manage_token: &str,
    purpose: PurposeValue,
    locale: &str,
    given: bool,
) -> Result<Vec<ConsentEntry>> {
    let object = if given {
        "Mutation.giveConsent"
    } else {
        "Mutation.withdrawConsent"
    };
    let purpose = ConsentPurpose::from(purpose);
    if purpose == ConsentPurpose::Booking {
        return Err(api_error(
            Code::BadUserInput,
            "purpose: the booking is the legal basis of the reservation itself; cancel it or erase your data instead",
        ));
    }
    let token = ManageToken::parse(manage_token).or_gql()?;
    let locale = Locale::parse(locale).or_gql()?;
    let store = store(ctx).clone();
    let reservation = {
        let store = store.clone();
        blocking(move || {
            store
                .reservation_by_token(&token)?
                .ok_or_else(|| DomainError::not_found("reservation").into())
        })
        .await?
    };
    if !guard::allowed_as(ctx, "guest", Some(reservation.venue_id), object, EXECUTE) {
        return Err(guard::forbidden(ctx, object));
    }
    let guest = reservation
        .guest_id
        .ok_or_else(|| api_error(Code::BadUserInput, "this reservation has no guest record"))?;
    let at = now(ctx);
    let venue = reservation.venue_id;
    let entries = blocking(move || {
        store.record_consent(
            &store::ConsentChange {
                guest,
                venue,
                purpose,
                given,
                channel: "web",
                locale: &locale,
            },
            at,
        )?;
        store.consents_of(guest, venue)
    })
    .await?;
    Ok(entries.into_iter().map(ConsentEntry::from).collect())
}

#[Object]
impl PrivacyMutation {
    /// Publishes a new version of a venue's privacy notice (managers,
    /// admins). Bookings must then name this version.
    async fn publish_privacy_notice(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        locale: String,
        text: String,
    ) -> Result<PrivacyNoticeObject> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            "Mutation.publishPrivacyNotice",
            EXECUTE,
            "venue",
        )?;
        let locale = Locale::parse(&locale).or_gql()?;
        let (text, sha256) = domain::privacy::notice_text(&text).or_gql()?;
        let store = store(ctx).clone();
        let at = now(ctx);
        let notice =
            blocking(move || store.publish_notice(venue, &locale, &text, &sha256, at)).await?;
        Ok(notice.into())
    }

    /// Opts in to a purpose (newsletter, marketing), under the current
    /// notice. Returns the guest's whole consent ledger at the venue.
    async fn give_consent(
        &self,
        ctx: &Context<'_>,
        manage_token: String,
        purpose: PurposeValue,
        #[graphql(default = "en")] locale: String,
    ) -> Result<Vec<ConsentEntry>> {
        consent(ctx, &manage_token, purpose, &locale, true).await
    }

    /// Withdraws a consent: one call, as easy as giving it.
    async fn withdraw_consent(
        &self,
        ctx: &Context<'_>,
        manage_token: String,
        purpose: PurposeValue,
        #[graphql(default = "en")] locale: String,
    ) -> Result<Vec<ConsentEntry>> {
        consent(ctx, &manage_token, purpose, &locale, false).await
    }
}

/// The consent ledger of a reservation's guest at its venue.
pub async fn consents_of(
    ctx: &Context<'_>,
    reservation: &domain::Reservation,
) -> Result<Vec<ConsentEntry>> {
    let Some(guest) = reservation.guest_id else {
        return Ok(Vec::new());
    };
    let venue = reservation.venue_id;
    let store = store(ctx).clone();
    let entries = blocking(move || store.consents_of(guest, venue)).await?;
    Ok(entries.into_iter().map(ConsentEntry::from).collect())
}
