//! Privacy notices and the consent ledger over GraphQL.

use async_graphql::{Context, Enum, ErrorExtensions, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ports::ReservationRepository;
use domain::privacy::{Consent, ConsentPurpose, Locale};
use domain::{DomainError, Email, ManageToken, VenueId};

use super::context::{blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};

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
    /// The venue's current privacy notice in a locale, for the booking form;
    /// null (not an error) while the venue has published none, so that a
    /// booking widget's combined query still answers.
    async fn privacy_notice(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        #[graphql(default = "en")] locale: String,
    ) -> Result<Option<PrivacyNoticeObject>> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        let locale = Locale::parse(&locale).or_gql()?;
        let store = store(ctx).clone();
        blocking(move || {
            Ok(store
                .current_notice(venue, &locale)?
                .map(PrivacyNoticeObject::from))
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
        coordinates::MUTATION_GIVE_CONSENT
    } else {
        coordinates::MUTATION_WITHDRAW_CONSENT
    };
    let purpose = ConsentPurpose::from(purpose);
    app::rights::consentable(purpose).or_gql()?;
    let token = ManageToken::parse(manage_token).or_gql()?;
    let locale = Locale::parse(locale).or_gql()?;
    let store = store(ctx);
    let reservation = app::rights::reservation_by_token(store, token)
        .await
        .or_gql()?;
    if !guard::allowed_as(ctx, "guest", Some(reservation.venue_id), object, EXECUTE) {
        return Err(guard::forbidden(ctx, object));
    }
    let entries =
        app::rights::record_consent(store, &reservation, purpose, given, locale, now(ctx))
            .await
            .or_gql()?;
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
            coordinates::MUTATION_PUBLISH_PRIVACY_NOTICE,
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

#[derive(async_graphql::InputObject)]
pub struct CorrectionInput {
    pub name: String,
    pub email: Option<String>,
    /// Read in the venue's country unless written with a country code.
    pub phone: Option<String>,
}

#[derive(SimpleObject)]
pub struct ErasureReport {
    pub erased_at: DateTime<Utc>,
    /// True when the data had already been erased: nothing more was done.
    pub already_erased: bool,
    pub reservations: u32,
    /// Payment providers asked to delete their customer object.
    pub providers_asked: u32,
}

/// Wrong manage tokens and access codes, counted per client address: a
/// guesser is held back like a password guesser (from the 20th failure
/// within an hour, doubling, 15 minutes at the 100th).
fn wrong_secret_scope(ctx: &Context<'_>) -> String {
    let address = ctx
        .data_opt::<super::context::ClientAddress>()
        .map_or("unknown", |a| a.0.as_str());
    let keys = super::context::store(ctx).keys().current();
    format!("guest-secret:{}", app::auth::address_scope(&keys, address))
}

fn held_back(until: DateTime<Utc>, at: DateTime<Utc>) -> async_graphql::Error {
    let seconds = (until - at).num_seconds().max(1);
    api_error(
        Code::RateLimited,
        format!("too many wrong tokens or codes from here; try again in {seconds} s"),
    )
    .extend_with(move |_, extensions| extensions.set("retryAfter", seconds))
}

/// The reservation and guest behind a manage token, for a right exercised
/// as the guest; the policy must allow `object` for the guest role.
async fn as_guest(
    ctx: &Context<'_>,
    manage_token: &str,
    object: Coordinate,
) -> Result<(domain::Reservation, domain::GuestId)> {
    let token = ManageToken::parse(manage_token).or_gql()?;
    let store = store(ctx).clone();
    let scope = wrong_secret_scope(ctx);
    let at = now(ctx);
    let reservation = blocking(move || {
        app::access::behind_backoff(
            &store,
            &scope,
            at,
            || store.reservation_by_token(&token),
            Option::is_some,
        )
    })
    .await?
    .map_err(|until| held_back(until, at))?
    .ok_or(DomainError::not_found("reservation"))
    .or_gql()?;
    if !guard::allowed_as(ctx, "guest", Some(reservation.venue_id), object, EXECUTE) {
        return Err(guard::forbidden(ctx, object));
    }
    let guest = reservation
        .guest_id
        .ok_or_else(|| api_error(Code::BadUserInput, "this reservation has no guest record"))?;
    Ok((reservation, guest))
}

/// Whose data a right is exercised on: the guest records in reach of the
/// caller's secret, at one venue.
struct Reach {
    venue: VenueId,
    guests: Vec<domain::GuestId>,
}

/// The guest records a guest's secret reaches, for a right exercised as
/// the guest (the policy must allow `object` for the guest role):
/// - a manage token reaches the record entered with its own booking, and
///   nothing else; a record several bookings were once linked to is
///   refused (it may hold what another booking entered);
/// - an access token, earned by proving control of an e-mail address,
///   reaches every record made with that address at its venue.
async fn reach_as_guest(
    ctx: &Context<'_>,
    manage_token: Option<&str>,
    access_token: Option<&str>,
    object: Coordinate,
) -> Result<Reach> {
    match (manage_token, access_token) {
        (Some(manage_token), None) => {
            let (reservation, guest) = as_guest(ctx, manage_token, object).await?;
            let venue = reservation.venue_id;
            let store = store(ctx).clone();
            let shared = blocking(move || {
                Ok(store
                    .guest_record(&reservation)?
                    .is_some_and(|record| record.shared))
            })
            .await?;
            if shared {
                return Err(api_error(
                    Code::Forbidden,
                    "this booking's guest record is shared with other bookings: prove your e-mail address with requestAccessCode and use the access token",
                ));
            }
            Ok(Reach {
                venue,
                guests: vec![guest],
            })
        }
        (None, Some(access_token)) => as_address_holder(ctx, access_token, object).await,
        _ => Err(api_error(
            Code::BadUserInput,
            "give exactly one of manageToken (this booking) and accessToken (every booking of your address)",
        )),
    }
}

/// The guest records an access token opens; a wrong or expired token is
/// NOT_FOUND and counts like a wrong manage token.
async fn as_address_holder(
    ctx: &Context<'_>,
    access_token: &str,
    object: Coordinate,
) -> Result<Reach> {
    let token = domain::AccessToken::parse(access_token).or_gql()?;
    let store = store(ctx).clone();
    let scope = wrong_secret_scope(ctx);
    let at = now(ctx);
    let reach = blocking(move || {
        app::access::behind_backoff(
            &store,
            &scope,
            at,
            || store.access_scope(&token, at),
            Option::is_some,
        )
    })
    .await?
    .map_err(|until| held_back(until, at))?
    .ok_or(DomainError::not_found("access token"))
    .or_gql()?;
    if !guard::allowed_as(ctx, "guest", Some(reach.venue), object, EXECUTE) {
        return Err(guard::forbidden(ctx, object));
    }
    Ok(Reach {
        venue: reach.venue,
        guests: reach.guests,
    })
}

#[derive(Default)]
pub struct RightsMutation;

#[Object]
impl RightsMutation {
    /// Everything kluis holds about the guest at this venue, decrypted, as
    /// machine-readable JSON: the details entered with each booking,
    /// reservations, consents with notice versions, payment metadata and
    /// who accessed the data (the right of access and to portability).
    /// With `manageToken`: what was entered with that one booking. With
    /// `accessToken` (from `redeemAccessCode`): every booking made with the
    /// proven address at the venue.
    async fn export_my_data(
        &self,
        ctx: &Context<'_>,
        manage_token: Option<String>,
        access_token: Option<String>,
    ) -> Result<async_graphql::Json<serde_json::Value>> {
        let reach = reach_as_guest(
            ctx,
            manage_token.as_deref(),
            access_token.as_deref(),
            coordinates::MUTATION_EXPORT_MY_DATA,
        )
        .await?;
        export(ctx, "guest".to_owned(), reach).await
    }

    /// Corrects the guest's name, e-mail and phone (the right to
    /// rectification); the venue's field rules apply as when booking. With
    /// `manageToken`: the details of that one booking. With `accessToken`:
    /// the address on file for every booking made with it (the token then
    /// stops finding them if the e-mail changes).
    async fn correct_my_data(
        &self,
        ctx: &Context<'_>,
        manage_token: Option<String>,
        access_token: Option<String>,
        input: CorrectionInput,
    ) -> Result<bool> {
        let reach = reach_as_guest(
            ctx,
            manage_token.as_deref(),
            access_token.as_deref(),
            coordinates::MUTATION_CORRECT_MY_DATA,
        )
        .await?;
        correct(ctx, "guest".to_owned(), reach, input).await
    }

    /// Erases the guest's personal data (the right to erasure): name,
    /// contact details and notes are destroyed, payment providers are asked
    /// to delete their customer object; amounts and dates stay for the
    /// books under a pseudonym. With `manageToken`: what was entered with
    /// that one booking. With `accessToken`: everything of every booking
    /// made with the proven address at the venue. Refused while a payment
    /// is in flight; erasing twice is fine.
    async fn erase_my_data(
        &self,
        ctx: &Context<'_>,
        manage_token: Option<String>,
        access_token: Option<String>,
    ) -> Result<ErasureReport> {
        let reach = reach_as_guest(
            ctx,
            manage_token.as_deref(),
            access_token.as_deref(),
            coordinates::MUTATION_ERASE_MY_DATA,
        )
        .await?;
        erase(ctx, "guest".to_owned(), reach).await
    }

    /// Proof of control of an e-mail address, step one: sends a one-time
    /// code to the address if it booked at this venue, valid for 15
    /// minutes. Always answers `true` and does the same work for unknown
    /// addresses, so the answer does not tell whether the address is known;
    /// at most three codes per address and hour.
    async fn request_access_code(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        email: String,
    ) -> Result<bool> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_REQUEST_ACCESS_CODE,
            EXECUTE,
            "venue",
        )?;
        let email = Email::parse("email", &email).or_gql()?;
        app::access::request_access_code(store(ctx), venue, email, now(ctx))
            .await
            .or_gql()?;
        Ok(true)
    }

    /// Proof of control of an e-mail address, step two: redeems a code from
    /// `requestAccessCode` and answers an access token (`kat_…`, valid for
    /// 30 minutes) for every booking made with that address at the venue:
    /// use it with `exportMyData`, `correctMyData`, `eraseMyData` and
    /// `reissueManageToken`. A wrong code is NOT_FOUND, for known and
    /// unknown addresses alike; every code allows five tries in all, then
    /// answers RATE_LIMITED and a new one must be requested.
    async fn redeem_access_code(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        email: String,
        code: String,
    ) -> Result<String> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_REDEEM_ACCESS_CODE,
            EXECUTE,
            "venue",
        )?;
        let email = Email::parse("email", &email).or_gql()?;
        let at = now(ctx);
        let scope = wrong_secret_scope(ctx);
        let redemption = app::access::redeem_access_code(store(ctx), scope, venue, email, code, at)
            .await
            .or_gql()?
            .map_err(|until| held_back(until, at))?;
        match redemption {
            store::Redemption::Token(token) => Ok(token.expose().to_owned()),
            store::Redemption::NotFound => Err(api_error(
                Code::NotFound,
                "no such code for this address; codes work for 15 minutes",
            )),
            store::Redemption::Exhausted => Err(api_error(
                Code::RateLimited,
                "too many tries for this code: request a new one",
            )),
        }
    }

    /// For a guest who lost the manage link of one booking: with an access
    /// token, answers a fresh manage token for one of the bookings it
    /// reaches (the lost one stops working). A booking the token does not
    /// reach is NOT_FOUND.
    async fn reissue_manage_token(
        &self,
        ctx: &Context<'_>,
        access_token: String,
        reservation_id: ID,
    ) -> Result<String> {
        let id = domain::ReservationId::parse(&reservation_id).or_gql()?;
        let reach = as_address_holder(
            ctx,
            &access_token,
            coordinates::MUTATION_REISSUE_MANAGE_TOKEN,
        )
        .await?;
        let token =
            app::access::reissue_manage_token(store(ctx), id, reach.venue, reach.guests, now(ctx))
                .await
                .or_gql()?;
        Ok(token.expose().to_owned())
    }

    /// `exportMyData` run by venue staff for the guest of this reservation,
    /// who asked in person or by letter: every booking made with the same
    /// e-mail address at the venue; audited under the staff account.
    async fn export_guest_data(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<async_graphql::Json<serde_json::Value>> {
        let (who, reach) = as_staff(
            ctx,
            &reservation_id,
            coordinates::MUTATION_EXPORT_GUEST_DATA,
        )
        .await?;
        export(ctx, who, reach).await
    }

    /// `correctMyData` run by venue staff on the guest's request, for every
    /// booking made with the same e-mail address at the venue; audited.
    async fn correct_guest_data(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        input: CorrectionInput,
    ) -> Result<bool> {
        let (who, reach) = as_staff(
            ctx,
            &reservation_id,
            coordinates::MUTATION_CORRECT_GUEST_DATA,
        )
        .await?;
        correct(ctx, who, reach, input).await
    }

    /// `eraseMyData` run by venue staff on the guest's request, for every
    /// booking made with the same e-mail address at the venue; audited.
    async fn erase_guest_data(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> Result<ErasureReport> {
        let (who, reach) =
            as_staff(ctx, &reservation_id, coordinates::MUTATION_ERASE_GUEST_DATA).await?;
        erase(ctx, who, reach).await
    }
}

/// The guest records a staff member acts on for the guest of a
/// reservation (every booking made with the same e-mail address at its
/// venue), with the audit name of that staff member; the policy must allow
/// `object` in its venue.
async fn as_staff(
    ctx: &Context<'_>,
    reservation_id: &str,
    object: Coordinate,
) -> Result<(String, Reach)> {
    let id = domain::ReservationId::parse(reservation_id).or_gql()?;
    let reading = store(ctx).clone();
    let reservation = blocking(move || {
        reading
            .reservation(id)?
            .ok_or_else(|| DomainError::not_found("reservation").into())
    })
    .await?;
    guard::require_in_venue(ctx, reservation.venue_id, object, EXECUTE, "reservation")?;
    let guest = reservation
        .guest_id
        .ok_or_else(|| api_error(Code::BadUserInput, "this reservation has no guest record"))?;
    let store = store(ctx).clone();
    let guests = blocking(move || store.guests_sharing_email(guest)).await?;
    Ok((
        guard::principal(ctx).subject(),
        Reach {
            venue: reservation.venue_id,
            guests,
        },
    ))
}

/// Everything kluis holds in the guest records of `reach`, as JSON,
/// audited as an export by `who` (see [`app::rights::export`]).
async fn export(
    ctx: &Context<'_>,
    who: String,
    reach: Reach,
) -> Result<async_graphql::Json<serde_json::Value>> {
    let export = app::rights::export(
        store(ctx),
        ctx.data_opt::<app::monitor::Monitor>(),
        who,
        reach.venue,
        reach.guests,
        now(ctx),
    )
    .await
    .or_gql()?;
    let export = serde_json::to_value(&export)
        .map_err(|_| api_error(Code::Internal, "the export could not be written"))?;
    Ok(async_graphql::Json(export))
}

/// Replaces the name, e-mail and phone of the guest records of `reach`,
/// audited as a correction by `who`; the venue's field rules apply as when
/// booking. Erased records stay erased.
async fn correct(
    ctx: &Context<'_>,
    who: String,
    reach: Reach,
    input: CorrectionInput,
) -> Result<bool> {
    let name = domain::PersonName::parse("name", &input.name).or_gql()?;
    let email = input
        .email
        .as_deref()
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| Email::parse("email", raw))
        .transpose()
        .or_gql()?;
    let correction = app::rights::Correction {
        name,
        email,
        phone: input.phone,
    };
    app::rights::correct(
        store(ctx),
        who,
        reach.venue,
        reach.guests,
        correction,
        now(ctx),
    )
    .await
    .or_gql()?;
    Ok(true)
}

/// Erases the personal data of the guest records of `reach`, audited as an
/// erasure by `who` (see [`app::rights::erase`]).
async fn erase(ctx: &Context<'_>, who: String, reach: Reach) -> Result<ErasureReport> {
    let erasure = app::rights::erase(
        store(ctx),
        ctx.data_opt::<app::monitor::Monitor>(),
        ctx.data_opt::<plugins::Gateways>(),
        who,
        reach.venue,
        reach.guests,
        now(ctx),
    )
    .await
    .or_gql()?;
    Ok(ErasureReport {
        erased_at: erasure.erased_at,
        already_erased: erasure.already_erased,
        reservations: erasure.reservations,
        providers_asked: erasure.providers_asked,
    })
}
