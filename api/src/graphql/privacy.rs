//! Privacy notices, consent and guests' rights over GraphQL: which secret
//! reaches which guest records, the guards, and the payloads a "my data"
//! page reads. The work itself is in `app::rights` and `app::access`.

use std::sync::{Arc, Mutex};

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ports::ReservationRepository as _;
use domain::privacy::{ConsentPurpose, Locale};
use domain::{DomainError, Email, ManageToken, VenueId};

use super::consent_types::{self, ConsentEntry, ConsentState, OptInPurpose, PurposeValue};
use super::context::{self, blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE};
use super::payload::{Checks, UserError, UserErrorCode, outcome};
use super::types::{Access, ReservationObject};

pub use super::consent_types::PrivacyNoticeObject;

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// The venue's current privacy notice in a locale (a language tag like
    /// `en` or `nl-BE`; anything else is BAD_USER_INPUT), for the booking
    /// form; null (not an error) while the venue has published none, so
    /// that a booking widget's combined query still answers.
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

#[derive(InputObject)]
pub struct PublishPrivacyNoticeInput {
    pub venue_id: ID,
    /// A language tag like `en` or `nl-BE`.
    pub locale: String,
    /// Markdown.
    pub text: String,
}

crate::payload!(PublishPrivacyNoticePayload {
    /// The version just published; bookings must now name it.
    notice: PrivacyNoticeObject,
});

#[derive(InputObject)]
pub struct GiveConsentInput {
    pub purpose: OptInPurpose,
    /// The language of the notice the guest was shown.
    #[graphql(default = "en")]
    pub locale: String,
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
}

#[derive(InputObject)]
pub struct WithdrawConsentInput {
    pub purpose: OptInPurpose,
    #[graphql(default = "en")]
    pub locale: String,
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
}

crate::payload!(GiveConsentPayload {
    /// Where the guest now stands on every opt-in purpose.
    consent_state: Vec<ConsentState>,
    /// The guest's whole consent ledger at the venue, oldest first.
    ledger: Vec<ConsentEntry>,
});

crate::payload!(WithdrawConsentPayload {
    /// Where the guest now stands on every opt-in purpose.
    consent_state: Vec<ConsentState>,
    /// The guest's whole consent ledger at the venue, oldest first.
    ledger: Vec<ConsentEntry>,
});

#[derive(Default)]
pub struct PrivacyMutation;

/// Gives or withdraws a consent as the guest holding the manage token:
/// the state after it and the whole ledger.
async fn consent(
    ctx: &Context<'_>,
    argument: Option<&str>,
    purpose: OptInPurpose,
    locale: &str,
    given: bool,
) -> Result<(Vec<ConsentState>, Vec<ConsentEntry>)> {
    let object = if given {
        coordinates::MUTATION_GIVE_CONSENT
    } else {
        coordinates::MUTATION_WITHDRAW_CONSENT
    };
    let token = required(context::manage_token(ctx, argument)?, "a manage token")?;
    let locale = Locale::parse(locale).or_gql()?;
    let (reservation, _) = as_guest(ctx, token, object).await?;
    let ledger = app::rights::record_consent(
        store(ctx),
        &reservation,
        ConsentPurpose::from(purpose),
        given,
        locale,
        now(ctx),
    )
    .await
    .or_gql()?;
    Ok((
        consent_types::states(&ledger),
        ledger.into_iter().map(ConsentEntry::from).collect(),
    ))
}

#[Object]
impl PrivacyMutation {
    /// Publishes a new version of a venue's privacy notice (managers,
    /// admins). Bookings must then name this version.
    async fn publish_privacy_notice(
        &self,
        ctx: &Context<'_>,
        input: PublishPrivacyNoticeInput,
    ) -> Result<PublishPrivacyNoticePayload> {
        let venue = VenueId::parse(&input.venue_id).or_gql();
        let venue = match outcome(venue)? {
            (Some(venue), _) => venue,
            (None, user_errors) => {
                return Ok(PublishPrivacyNoticePayload {
                    user_errors: at_field(user_errors, "venueId"),
                    ..Default::default()
                });
            }
        };
        let allowed = guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_PUBLISH_PRIVACY_NOTICE,
            EXECUTE,
            "venue",
        );
        if let (None, user_errors) = outcome(allowed)? {
            return Ok(PublishPrivacyNoticePayload {
                user_errors: at_field(user_errors, "venueId"),
                ..Default::default()
            });
        }
        let mut checks = Checks::default();
        let locale = checks.take(Locale::parse(&input.locale).or_gql());
        let text = checks.take(domain::privacy::notice_text(&input.text).or_gql());
        let user_errors = checks.finish()?;
        let (Some(locale), Some((text, sha256))) = (locale, text) else {
            return Ok(PublishPrivacyNoticePayload {
                user_errors,
                ..Default::default()
            });
        };
        let store = store(ctx).clone();
        let at = now(ctx);
        let notice =
            blocking(move || store.publish_notice(venue, &locale, &text, &sha256, at)).await?;
        Ok(PublishPrivacyNoticePayload {
            notice: Some(notice.into()),
            user_errors: Vec::new(),
        })
    }

    /// Opts in to a purpose (newsletter, marketing), under the current
    /// notice, as the guest of the booking whose manage token is sent as
    /// `Authorization: Bearer kmt_…`. Answers where the guest now stands
    /// and the whole consent ledger at the venue.
    async fn give_consent(
        &self,
        ctx: &Context<'_>,
        input: GiveConsentInput,
    ) -> Result<GiveConsentPayload> {
        let done = consent(
            ctx,
            input.manage_token.as_deref(),
            input.purpose,
            &input.locale,
            true,
        )
        .await;
        let (done, user_errors) = outcome(done)?;
        let (consent_state, ledger) = done.unzip();
        Ok(GiveConsentPayload {
            consent_state,
            ledger,
            user_errors,
        })
    }

    /// Withdraws a consent: one call, as easy as giving it.
    async fn withdraw_consent(
        &self,
        ctx: &Context<'_>,
        input: WithdrawConsentInput,
    ) -> Result<WithdrawConsentPayload> {
        let done = consent(
            ctx,
            input.manage_token.as_deref(),
            input.purpose,
            &input.locale,
            false,
        )
        .await;
        let (done, user_errors) = outcome(done)?;
        let (consent_state, ledger) = done.unzip();
        Ok(WithdrawConsentPayload {
            consent_state,
            ledger,
            user_errors,
        })
    }
}

/// Points user errors that name no field at `field` of the input.
fn at_field(user_errors: Vec<UserError>, field: &str) -> Vec<UserError> {
    user_errors
        .into_iter()
        .map(|mut error| {
            if error.field.is_empty() && error.code != UserErrorCode::NotFound {
                error.field = vec!["input".to_owned(), field.to_owned()];
            }
            error
        })
        .collect()
}

/// A guest's token the request must carry; without one the caller is
/// unknown (UNAUTHENTICATED), which no form field can fix.
fn required<T>(token: Option<T>, what: &str) -> Result<T> {
    token.ok_or_else(|| {
        api_error(
            Code::Unauthenticated,
            format!("send {what} as Authorization: Bearer …"),
        )
    })
}

/// Wrong manage tokens and access codes, counted per client address: a
/// guesser is held back like a password guesser (from the 20th failure
/// within an hour, doubling, 15 minutes at the 100th).
fn wrong_secret_scope(ctx: &Context<'_>) -> String {
    let address = ctx
        .data_opt::<super::context::ClientAddress>()
        .map_or("unknown", |a| a.0.as_str());
    let keys = store(ctx).keys().current();
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
    token: ManageToken,
    object: Coordinate,
) -> Result<(domain::Reservation, domain::GuestId)> {
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
pub struct Reach {
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
///
/// The token comes from `Authorization: Bearer …` or a deprecated input
/// field; none at all is UNAUTHENTICATED, two are BAD_USER_INPUT.
async fn reach_as_guest(
    ctx: &Context<'_>,
    manage_token: Option<&str>,
    access_token: Option<&str>,
    object: Coordinate,
) -> Result<Reach> {
    let manage_token = context::manage_token(ctx, manage_token)?;
    let access_token = context::access_token(ctx, access_token)?;
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
        (None, None) => Err(api_error(
            Code::Unauthenticated,
            "send a manage token (this booking) or an access token (every booking of your address) as Authorization: Bearer …",
        )),
        (Some(_), Some(_)) => Err(api_error(
            Code::BadUserInput,
            "send exactly one of a manage token (this booking) and an access token (every booking of your address)",
        )),
    }
}

/// The guest records an access token opens; a wrong or expired token is
/// NOT_FOUND and counts like a wrong manage token.
async fn as_address_holder(
    ctx: &Context<'_>,
    token: domain::AccessToken,
    object: Coordinate,
) -> Result<Reach> {
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

/// The guest's own token, for the rights a guest exercises: both fields
/// are deprecated, the token belongs in `Authorization: Bearer …`.
#[derive(InputObject, Default)]
pub struct ExportMyDataInput {
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    #[graphql(deprecation = "Send it as Authorization: Bearer kat_…")]
    pub access_token: Option<String>,
}

#[derive(InputObject, Default)]
pub struct EraseMyDataInput {
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    #[graphql(deprecation = "Send it as Authorization: Bearer kat_…")]
    pub access_token: Option<String>,
}

/// The corrected details; each field is checked as when booking, all at
/// once. An empty e-mail or phone removes it (where the venue allows).
#[derive(InputObject)]
pub struct CorrectMyDataInput {
    pub name: String,
    pub email: Option<String>,
    /// Read in the venue's country unless written with a country code.
    pub phone: Option<String>,
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    #[graphql(deprecation = "Send it as Authorization: Bearer kat_…")]
    pub access_token: Option<String>,
}

#[derive(InputObject)]
pub struct ExportGuestDataInput {
    /// Any booking of the guest at the venue.
    pub reservation_id: ID,
}

#[derive(InputObject)]
pub struct EraseGuestDataInput {
    /// Any booking of the guest at the venue.
    pub reservation_id: ID,
}

#[derive(InputObject)]
pub struct CorrectGuestDataInput {
    /// Any booking of the guest at the venue.
    pub reservation_id: ID,
    pub name: String,
    pub email: Option<String>,
    /// Read in the venue's country unless written with a country code.
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct RequestAccessCodeInput {
    pub venue_id: ID,
    pub email: String,
}

#[derive(InputObject)]
pub struct RedeemAccessCodeInput {
    pub venue_id: ID,
    pub email: String,
    /// The six digits from the e-mail.
    pub code: String,
}

#[derive(InputObject)]
pub struct ReissueManageTokenInput {
    /// The booking whose manage link was lost.
    pub reservation_id: ID,
    #[graphql(deprecation = "Send it as Authorization: Bearer kat_…")]
    pub access_token: Option<String>,
}

crate::payload!(ExportMyDataPayload {
    export: GuestExport
});
crate::payload!(ExportGuestDataPayload {
    export: GuestExport
});
crate::payload!(CorrectMyDataPayload {
    /// How many guest records were changed (erased ones stay erased and
    /// are not counted).
    corrected: u32,
});
crate::payload!(CorrectGuestDataPayload {
    /// How many guest records were changed (erased ones stay erased and
    /// are not counted).
    corrected: u32,
});
crate::payload!(EraseMyDataPayload {
    report: ErasureReport
});
crate::payload!(EraseGuestDataPayload {
    report: ErasureReport
});
crate::payload!(
    /// The same answer, after the same work, whether or not the address
    /// booked at the venue: it does not tell who is a guest.
    RequestAccessCodePayload {
        /// True once the request is taken: if the address booked here, a
        /// code is on its way to it (at most three per address and hour).
        accepted: bool,
        /// Until when a code sent now works.
        valid_until: DateTime<Utc>,
    }
);
crate::payload!(RedeemAccessCodePayload {
    /// `kat_…`: send it as `Authorization: Bearer kat_…` to `exportMyData`,
    /// `correctMyData`, `eraseMyData` and `reissueManageToken`.
    access_token: String,
    expires_at: DateTime<Utc>,
});
crate::payload!(ReissueManageTokenPayload {
    /// `kmt_…`, replacing the lost one, which stops working.
    manage_token: String,
    reservation: ReservationObject,
});

#[derive(Default)]
pub struct RightsMutation;

#[Object]
impl RightsMutation {
    /// Everything kluis holds about the guest at this venue, decrypted:
    /// the details entered with each booking, reservations, consents with
    /// notice versions, payment metadata and who accessed the data (the
    /// right of access). With a manage token (`Authorization: Bearer
    /// kmt_…`): what was entered with that one booking. With an access
    /// token (`Bearer kat_…`, from `redeemAccessCode`): every booking made
    /// with the proven address at the venue. The same document as a file,
    /// for portability: `POST /export.json` with the same header.
    async fn export_my_data(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] input: ExportMyDataInput,
    ) -> Result<ExportMyDataPayload> {
        let done = async {
            let reach = reach_as_guest(
                ctx,
                input.manage_token.as_deref(),
                input.access_token.as_deref(),
                coordinates::MUTATION_EXPORT_MY_DATA,
            )
            .await?;
            export(ctx, "guest".to_owned(), reach).await
        }
        .await;
        let (export, user_errors) = outcome(done)?;
        Ok(ExportMyDataPayload {
            export,
            user_errors,
        })
    }

    /// Corrects the guest's name, e-mail and phone (the right to
    /// rectification); the venue's field rules apply as when booking, and
    /// every field at fault is named at once. With a manage token: the
    /// details of that one booking. With an access token: the address on
    /// file for every booking made with it (the token then stops finding
    /// them if the e-mail changes).
    async fn correct_my_data(
        &self,
        ctx: &Context<'_>,
        input: CorrectMyDataInput,
    ) -> Result<CorrectMyDataPayload> {
        let reach = reach_as_guest(
            ctx,
            input.manage_token.as_deref(),
            input.access_token.as_deref(),
            coordinates::MUTATION_CORRECT_MY_DATA,
        )
        .await;
        let correction = app::rights::Correction {
            name: input.name,
            email: input.email,
            phone: input.phone,
        };
        let (corrected, user_errors) = match outcome(reach)? {
            (Some(reach), _) => correct(ctx, "guest".to_owned(), reach, correction).await?,
            (None, user_errors) => (None, user_errors),
        };
        Ok(CorrectMyDataPayload {
            corrected,
            user_errors,
        })
    }

    /// Erases the guest's personal data (the right to erasure): name,
    /// contact details and notes are destroyed, payment providers are asked
    /// to delete their customer object; amounts and dates stay for the
    /// books under a pseudonym. With a manage token: what was entered with
    /// that one booking. With an access token: everything of every booking
    /// made with the proven address at the venue. Refused while a payment
    /// is in flight; erasing twice is fine.
    async fn erase_my_data(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] input: EraseMyDataInput,
    ) -> Result<EraseMyDataPayload> {
        let done = async {
            let reach = reach_as_guest(
                ctx,
                input.manage_token.as_deref(),
                input.access_token.as_deref(),
                coordinates::MUTATION_ERASE_MY_DATA,
            )
            .await?;
            erase(ctx, "guest".to_owned(), reach).await
        }
        .await;
        let (report, user_errors) = outcome(done)?;
        Ok(EraseMyDataPayload {
            report,
            user_errors,
        })
    }

    /// Proof of control of an e-mail address, step one: sends a one-time
    /// code to the address if it booked at this venue, valid for 15
    /// minutes. Answers the same and does the same work for unknown
    /// addresses, so the answer does not tell whether the address is known;
    /// at most three codes per address and hour.
    async fn request_access_code(
        &self,
        ctx: &Context<'_>,
        input: RequestAccessCodeInput,
    ) -> Result<RequestAccessCodePayload> {
        let at = now(ctx);
        let done = async {
            let venue = open_venue(
                ctx,
                &input.venue_id,
                coordinates::MUTATION_REQUEST_ACCESS_CODE,
            )?;
            let email = Email::parse("email", &input.email).or_gql()?;
            app::access::request_access_code(store(ctx), venue, email, at)
                .await
                .or_gql()
        }
        .await;
        let (done, user_errors) = outcome(done)?;
        Ok(RequestAccessCodePayload {
            accepted: done.map(|()| true),
            valid_until: done.map(|()| at + chrono::Duration::minutes(store::CODE_MINUTES)),
            user_errors,
        })
    }

    /// Proof of control of an e-mail address, step two: redeems a code from
    /// `requestAccessCode` and answers an access token (`kat_…`, valid for
    /// 30 minutes) for every booking made with that address at the venue.
    /// A wrong code is a NOT_FOUND user error, for known and unknown
    /// addresses alike; every code allows five tries in all, then answers
    /// RATE_LIMITED and a new one must be requested.
    async fn redeem_access_code(
        &self,
        ctx: &Context<'_>,
        input: RedeemAccessCodeInput,
    ) -> Result<RedeemAccessCodePayload> {
        let at = now(ctx);
        let done = async {
            let venue = open_venue(
                ctx,
                &input.venue_id,
                coordinates::MUTATION_REDEEM_ACCESS_CODE,
            )?;
            let email = Email::parse("email", &input.email).or_gql()?;
            let scope = wrong_secret_scope(ctx);
            let redemption =
                app::access::redeem_access_code(store(ctx), scope, venue, email, input.code, at)
                    .await
                    .or_gql()?
                    .map_err(|until| held_back(until, at))?;
            match redemption {
                store::Redemption::Token(token) => Ok(token.expose().to_owned()),
                store::Redemption::NotFound => Err(api_error(
                    Code::NotFound,
                    "no such code for this address; codes work for 15 minutes",
                )
                .extend_with(|_, extensions| extensions.set("field", "code"))),
                store::Redemption::Exhausted => Err(api_error(
                    Code::RateLimited,
                    "too many tries for this code: request a new one",
                )),
            }
        }
        .await;
        let (token, user_errors) = outcome(done)?;
        let expires_at = token
            .as_ref()
            .map(|_| at + chrono::Duration::minutes(store::ACCESS_MINUTES));
        Ok(RedeemAccessCodePayload {
            access_token: token,
            expires_at,
            user_errors,
        })
    }

    /// For a guest who lost the manage link of one booking: with an access
    /// token (`Authorization: Bearer kat_…`), answers a fresh manage token
    /// for one of the bookings it reaches (the lost one stops working). A
    /// booking the token does not reach is a NOT_FOUND user error.
    async fn reissue_manage_token(
        &self,
        ctx: &Context<'_>,
        input: ReissueManageTokenInput,
    ) -> Result<ReissueManageTokenPayload> {
        let done = async {
            let id = domain::ReservationId::parse(&input.reservation_id)
                .map_err(|_| DomainError::not_found("reservation"))
                .or_gql()?;
            let token = required(
                context::access_token(ctx, input.access_token.as_deref())?,
                "an access token",
            )?;
            let reach =
                as_address_holder(ctx, token, coordinates::MUTATION_REISSUE_MANAGE_TOKEN).await?;
            let token = app::access::reissue_manage_token(
                store(ctx),
                id,
                reach.venue,
                reach.guests,
                now(ctx),
            )
            .await
            .or_gql()?;
            let reservation = reservation_object(ctx, id).await?;
            Ok((token.expose().to_owned(), reservation))
        }
        .await;
        let (done, user_errors) = outcome(done)?;
        let (manage_token, reservation) = done.unzip();
        Ok(ReissueManageTokenPayload {
            manage_token,
            reservation,
            user_errors,
        })
    }

    /// `exportMyData` run by venue staff for the guest of this reservation,
    /// who asked in person or by letter: every booking made with the same
    /// e-mail address at the venue; audited under the staff account. As a
    /// file: `POST /export.json?reservation=<id>`.
    async fn export_guest_data(
        &self,
        ctx: &Context<'_>,
        input: ExportGuestDataInput,
    ) -> Result<ExportGuestDataPayload> {
        let done = async {
            let (who, reach) = as_staff(
                ctx,
                &input.reservation_id,
                coordinates::MUTATION_EXPORT_GUEST_DATA,
            )
            .await?;
            export(ctx, who, reach).await
        }
        .await;
        let (export, user_errors) = outcome(done)?;
        Ok(ExportGuestDataPayload {
            export,
            user_errors,
        })
    }

    /// `correctMyData` run by venue staff on the guest's request, for every
    /// booking made with the same e-mail address at the venue; audited.
    async fn correct_guest_data(
        &self,
        ctx: &Context<'_>,
        input: CorrectGuestDataInput,
    ) -> Result<CorrectGuestDataPayload> {
        let reach = as_staff(
            ctx,
            &input.reservation_id,
            coordinates::MUTATION_CORRECT_GUEST_DATA,
        )
        .await;
        let correction = app::rights::Correction {
            name: input.name,
            email: input.email,
            phone: input.phone,
        };
        let (corrected, user_errors) = match outcome(reach)? {
            (Some((who, reach)), _) => correct(ctx, who, reach, correction).await?,
            (None, user_errors) => (None, user_errors),
        };
        Ok(CorrectGuestDataPayload {
            corrected,
            user_errors,
        })
    }

    /// `eraseMyData` run by venue staff on the guest's request, for every
    /// booking made with the same e-mail address at the venue; audited.
    async fn erase_guest_data(
        &self,
        ctx: &Context<'_>,
        input: EraseGuestDataInput,
    ) -> Result<EraseGuestDataPayload> {
        let done = async {
            let (who, reach) = as_staff(
                ctx,
                &input.reservation_id,
                coordinates::MUTATION_ERASE_GUEST_DATA,
            )
            .await?;
            erase(ctx, who, reach).await
        }
        .await;
        let (report, user_errors) = outcome(done)?;
        Ok(EraseGuestDataPayload {
            report,
            user_errors,
        })
    }
}

/// A venue the caller may run `object` in; one it cannot see is NOT_FOUND.
fn open_venue(ctx: &Context<'_>, venue_id: &ID, object: Coordinate) -> Result<VenueId> {
    let venue = VenueId::parse(venue_id)
        .map_err(|_| DomainError::not_found("venue"))
        .or_gql()?;
    guard::require_in_venue(ctx, venue, object, EXECUTE, "venue")?;
    Ok(venue)
}

/// A reservation as the holder of its manage token sees it.
async fn reservation_object(
    ctx: &Context<'_>,
    id: domain::ReservationId,
) -> Result<ReservationObject> {
    let store = store(ctx).clone();
    let (reservation, venue) = blocking(move || {
        let reservation = store
            .reservation(id)?
            .ok_or(DomainError::not_found("reservation"))?;
        let venue = store
            .venue_view(reservation.venue_id)?
            .ok_or_else(|| store::StoreError::Corrupt(format!("reservation {id} has no venue")))?
            .venue
            .clone();
        Ok((reservation, venue))
    })
    .await?;
    Ok(ReservationObject::new(reservation, venue, Access::Guest))
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
    let id = domain::ReservationId::parse(reservation_id)
        .map_err(|_| DomainError::not_found("reservation"))
        .or_gql()?;
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

/// Where `/export.json` collects the export a request produced, to answer
/// it as a file (the GraphQL answer then carries none of it).
#[derive(Clone, Default)]
pub struct ExportDownload(Arc<Mutex<Option<(store::GuestExport, VenueId)>>>);

impl ExportDownload {
    /// The export the request produced, and its venue, if it produced one.
    pub fn take(&self) -> Option<(store::GuestExport, VenueId)> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }

    fn keep(&self, export: store::GuestExport, venue: VenueId) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((export, venue));
        }
    }
}

/// Everything kluis holds in the guest records of `reach`, audited as an
/// export by `who` (see [`app::rights::export`]).
async fn export(ctx: &Context<'_>, who: String, reach: Reach) -> Result<GuestExport> {
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
    let typed = GuestExport::try_from(&export)?;
    if let Some(download) = ctx.data_opt::<ExportDownload>() {
        download.keep(export, reach.venue);
    }
    Ok(typed)
}

/// Replaces the name, e-mail and phone of the guest records of `reach`,
/// audited as a correction by `who`; every field at fault becomes a user
/// error of its own.
async fn correct(
    ctx: &Context<'_>,
    who: String,
    reach: Reach,
    correction: app::rights::Correction,
) -> Result<(Option<u32>, Vec<UserError>)> {
    let corrected = app::rights::correct(
        store(ctx),
        who,
        reach.venue,
        reach.guests,
        correction,
        now(ctx),
    )
    .await
    .or_gql();
    match outcome(corrected)? {
        (Some(app::rights::Corrected::Done { records }), _) => {
            Ok((Some(u32::try_from(records).unwrap_or(u32::MAX)), Vec::new()))
        }
        (Some(app::rights::Corrected::Refused(faults)), _) => {
            let mut checks = Checks::default();
            for fault in faults {
                let _: Option<()> = checks.take(Err(super::errors::domain_error(&fault)));
            }
            Ok((None, checks.finish()?))
        }
        (None, user_errors) => Ok((None, user_errors)),
    }
}

/// What an erasure did.
#[derive(SimpleObject)]
pub struct ErasureReport {
    pub erased_at: DateTime<Utc>,
    /// True when the data had already been erased: nothing more was done.
    pub already_erased: bool,
    pub reservations: u32,
    /// Payment providers asked to delete their customer object.
    pub providers_asked: u32,
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

/// Everything kluis holds about a guest at one venue: the same document
/// `/export.json` answers as a file, field for field.
#[derive(SimpleObject)]
pub struct GuestExport {
    /// The document's format and version (`kluis-export-2`).
    pub format: String,
    pub exported_at: DateTime<Utc>,
    /// The newest booking's details; each booking's own are in `profiles`.
    pub profile: Option<ExportedProfile>,
    pub profiles: Vec<ExportedProfile>,
    pub reservations: Vec<ExportedReservation>,
    /// The consent ledger, oldest first, with the notice each was given
    /// under.
    pub consents: Vec<ExportedConsent>,
    /// Payment metadata: amounts, status, provider, card brand and last
    /// four; never card numbers (kluis never has them).
    pub payments: Vec<ExportedPayment>,
    /// Who read or changed the guest's data, newest first.
    pub access_log: Vec<ExportedAccess>,
    /// Waitlist entries, oldest first; their details are in `profiles`.
    pub waitlist: Vec<ExportedWaitlistEntry>,
}

/// A waitlist entry and its newest offer.
#[derive(SimpleObject)]
pub struct ExportedWaitlistEntry {
    pub id: ID,
    pub venue_id: ID,
    pub guest_id: ID,
    pub date: super::scalars::Date,
    /// Local time, `HH:MM`.
    pub from: String,
    /// Local time, `HH:MM`.
    pub until: String,
    pub party_size: u32,
    /// `waiting`, `offered`, `booked` or `missed`.
    pub status: String,
    pub joined_at: DateTime<Utc>,
    pub offered_start: Option<DateTime<Utc>>,
    pub offer_expires_at: Option<DateTime<Utc>>,
    /// `open`, `claimed`, `expired` or `failed`.
    pub offer_status: Option<String>,
}

/// The details entered with one booking.
#[derive(SimpleObject, Clone)]
pub struct ExportedProfile {
    pub guest_id: ID,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(SimpleObject)]
pub struct ExportedReservation {
    pub id: ID,
    pub venue_id: ID,
    pub guest_id: Option<ID>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub party_size: u32,
    pub status: super::types::Status,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct ExportedConsent {
    pub guest_id: ID,
    pub purpose: PurposeValue,
    pub given: bool,
    pub at: DateTime<Utc>,
    /// `web`, `partner:<key id>` or `staff:<account id>`.
    pub channel: String,
    pub notice_version: Option<u32>,
    pub notice_sha256: Option<String>,
}

#[derive(SimpleObject)]
pub struct ExportedPayment {
    pub id: ID,
    pub reservation_id: ID,
    /// `deposit`, `prepayment`, `guarantee`, … as the venue asked.
    pub kind: String,
    /// The payment provider (`stripe`, `paypal`, `onsite`).
    pub gateway: String,
    pub provider_reference: Option<String>,
    /// In minor units (cents) of `currency`.
    pub amount: i64,
    pub refunded: i64,
    /// ISO 4217.
    pub currency: String,
    pub status: super::payments::PaymentStatusValue,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One read or change of the guest's records in the audit trail.
#[derive(SimpleObject)]
pub struct ExportedAccess {
    pub at: DateTime<Utc>,
    /// `guest`, `user:<account id>`, `apikey:<key id>`, `retention`, …
    pub who: String,
    /// `read`, `export`, `correct`, `erase`, …
    pub action: String,
    /// `guest:<id>` or `reservation:<id>`.
    pub object: String,
    pub fields: Vec<String>,
}

/// A value kluis itself wrote into the export that does not read back:
/// a fault of kluis, not of the request.
fn unreadable(what: &str) -> async_graphql::Error {
    api_error(
        Code::Internal,
        format!("the export could not be written ({what})"),
    )
}

impl From<&store::ExportedProfile> for ExportedProfile {
    fn from(profile: &store::ExportedProfile) -> Self {
        Self {
            guest_id: ID(profile.guest_id.clone()),
            name: profile.name.clone(),
            email: profile.email.clone(),
            phone: profile.phone.clone(),
        }
    }
}

impl TryFrom<&store::GuestExport> for GuestExport {
    type Error = async_graphql::Error;

    fn try_from(export: &store::GuestExport) -> Result<Self> {
        let reservations = export
            .reservations
            .iter()
            .map(|r| {
                let status = domain::ReservationStatus::parse(r.status)
                    .ok_or_else(|| unreadable("reservation status"))?;
                Ok(ExportedReservation {
                    id: ID(r.id.clone()),
                    venue_id: ID(r.venue_id.clone()),
                    guest_id: r.guest_id.clone().map(ID),
                    starts_at: r.starts_at,
                    ends_at: r.ends_at,
                    party_size: r.party_size,
                    status: status.into(),
                    notes: r.notes.clone(),
                    created_at: r.created_at,
                })
            })
            .collect::<Result<_>>()?;
        let consents = export
            .consents
            .iter()
            .map(|c| {
                let purpose =
                    ConsentPurpose::parse(c.purpose).map_err(|_| unreadable("consent purpose"))?;
                Ok(ExportedConsent {
                    guest_id: ID(c.guest_id.clone()),
                    purpose: purpose.into(),
                    given: c.given,
                    at: c.at,
                    channel: c.channel.clone(),
                    notice_version: c.notice_version,
                    notice_sha256: c.notice_sha256.clone(),
                })
            })
            .collect::<Result<_>>()?;
        let payments = export
            .payments
            .iter()
            .map(|p| {
                let status = domain::payments::PaymentStatus::parse(p.status)
                    .ok_or_else(|| unreadable("payment status"))?;
                Ok(ExportedPayment {
                    id: ID(p.id.clone()),
                    reservation_id: ID(p.reservation_id.clone()),
                    kind: p.kind.clone(),
                    gateway: p.gateway.clone(),
                    provider_reference: p.provider_reference.clone(),
                    amount: p.amount,
                    refunded: p.refunded,
                    currency: p.currency.clone(),
                    status: status.into(),
                    card_brand: p.card_brand.clone(),
                    card_last4: p.card_last4.clone(),
                    created_at: p.created_at,
                })
            })
            .collect::<Result<_>>()?;
        let access_log = export
            .access_log
            .iter()
            .map(|a| ExportedAccess {
                at: a.at,
                who: a.who.clone(),
                action: a.action.clone(),
                object: a.object.clone(),
                fields: a.fields.clone(),
            })
            .collect();
        Ok(Self {
            format: export.format.to_owned(),
            exported_at: export.exported_at,
            profile: export.profile.as_ref().map(ExportedProfile::from),
            profiles: export.profiles.iter().map(ExportedProfile::from).collect(),
            reservations,
            consents,
            payments,
            access_log,
            waitlist: export
                .waitlist
                .iter()
                .map(|w| ExportedWaitlistEntry {
                    id: ID(w.id.clone()),
                    venue_id: ID(w.venue_id.clone()),
                    guest_id: ID(w.guest_id.clone()),
                    date: super::scalars::Date(w.date),
                    from: w.from.clone(),
                    until: w.until.clone(),
                    party_size: w.party_size,
                    status: w.status.to_owned(),
                    joined_at: w.joined_at,
                    offered_start: w.offered_start,
                    offer_expires_at: w.offer_expires_at,
                    offer_status: w.offer_status.clone(),
                })
                .collect(),
        })
    }
}
