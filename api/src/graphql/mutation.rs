use async_graphql::{Context, ErrorExtensions as _, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, FixedOffset, Utc};
use domain::ports::ReservationChange;
use domain::{IdempotencyKey, PartySize, ResourceId, VenueId};

use super::context::{self, now, store};
use super::coordinates;
use super::errors::{OrGraphqlError, app_error};
use super::guard::{self, authorize_change};
use super::payload::{Checks, UserError, UserErrorCode, classify, outcome};
use super::privacy::PrivacyNoticeObject;
use super::types::{Access, OptInPurpose, ReservationObject, Slot, Status};

#[derive(Default)]
pub struct BookingMutation;

/// How many free start times a SLOT_TAKEN answer offers at most.
const ALTERNATIVES: usize = 5;

/// Who is booking. Everything here is personal data: it is stored
/// encrypted and shown only to those allowed to see it.
#[derive(InputObject)]
pub struct GuestInput {
    /// At most 200 characters.
    pub name: String,
    /// Trimmed and lower-cased; finds a returning guest.
    pub email: Option<String>,
    /// Read in the venue's country unless written with a country code;
    /// stored in E.164 form.
    pub phone: Option<String>,
    /// Dietary, accessibility or other remarks, at most 1000 characters.
    /// Never a card number.
    pub notes: Option<String>,
}

#[derive(InputObject)]
pub struct CreateReservationInput {
    pub venue_id: ID,
    /// A start time from `availability`, with any UTC offset.
    pub starts_at: DateTime<FixedOffset>,
    pub party_size: i32,
    /// A specific resource; without it the smallest free one that seats the
    /// party is chosen.
    pub resource_id: Option<ID>,
    /// The service booked (`Venue.services`): required at a venue that
    /// offers services, and refused at one that does not. A service of
    /// another venue is NOT_FOUND.
    pub service_id: Option<ID>,
    pub guest: GuestInput,
    /// The version of the privacy notice the form showed (`privacyNotice`).
    /// Required once the venue has published one in this locale.
    pub notice_version: Option<i32>,
    /// The notice's locale.
    #[graphql(default = "en")]
    pub locale: String,
    /// What the guest opted in to, besides the booking. Nothing unless the
    /// guest ticked it.
    #[graphql(default)]
    pub consents: Vec<OptInPurpose>,
    /// Retrying with the same key answers the first booking; the same key
    /// with a different request is a CONFLICT.
    pub idempotency_key: String,
}

/// The answer to `createReservation`.
#[derive(SimpleObject, Default)]
pub struct CreateReservationPayload {
    /// The booking; null when it was not made.
    pub reservation: Option<ReservationObject>,
    /// The guest's key to this reservation (`reservationByToken`, changes,
    /// cancellation), sent as `Authorization: Bearer kmt_…`. Shown here
    /// only: kluis keeps just a hash of it.
    pub manage_token: Option<String>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
    /// With SLOT_TAKEN: the free start times nearest to the one asked for,
    /// on the same day for the same party, nearest first (at most five).
    pub alternatives: Option<Vec<Slot>>,
    /// With NOTICE_CHANGED: the venue's current privacy notice, to show
    /// before booking again with its version.
    pub current_notice: Option<PrivacyNoticeObject>,
}

/// What to change; leave out what stays.
#[derive(InputObject)]
pub struct ModifyReservationInput {
    pub id: ID,
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    pub starts_at: Option<DateTime<FixedOffset>>,
    pub party_size: Option<i32>,
    /// Retrying with the same key changes once.
    pub idempotency_key: String,
}

#[derive(InputObject)]
pub struct CancelReservationInput {
    pub id: ID,
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    /// Retrying with the same key cancels once.
    pub idempotency_key: String,
}

#[derive(InputObject)]
pub struct SetReservationStatusInput {
    pub id: ID,
    pub status: Status,
}

crate::payload!(
    /// The answer to `modifyReservation`.
    ModifyReservationPayload { reservation: ReservationObject }
);
crate::payload!(
    /// The answer to `cancelReservation`.
    CancelReservationPayload { reservation: ReservationObject }
);
crate::payload!(
    /// The answer to `setReservationStatus`.
    SetReservationStatusPayload { reservation: ReservationObject }
);

/// The answer of a booking use case, as its caller may see it.
fn answer(booked: app::booking::Booked, access: Access) -> ReservationObject {
    ReservationObject::new(booked.reservation, booked.venue, access)
}

/// The idempotency key, checked among the other fields.
fn idempotency_key(checks: &mut Checks, raw: &str) -> Option<IdempotencyKey> {
    checks.take(IdempotencyKey::parse(raw).or_gql().map_err(|error| {
        error.extend_with(|_, extensions| extensions.set("field", "idempotencyKey"))
    }))
}

/// The guest's manage token as a string for `authorize_change`: from the
/// header, or the deprecated input field, never both.
fn token_of(ctx: &Context<'_>, argument: Option<&str>) -> Result<Option<String>> {
    Ok(context::manage_token(ctx, argument)
        .map_err(|error| error.extend_with(|_, extensions| extensions.set("field", "manageToken")))?
        .map(|token| token.expose().to_owned()))
}

/// The current notice for a NOTICE_CHANGED answer.
async fn current_notice(
    ctx: &Context<'_>,
    venue: VenueId,
    locale: &str,
) -> Result<Option<PrivacyNoticeObject>> {
    let Ok(locale) = domain::privacy::Locale::parse(locale) else {
        return Ok(None);
    };
    let store = store(ctx).clone();
    super::context::blocking(move || store.current_notice(venue, &locale))
        .await
        .map(|notice| notice.map(PrivacyNoticeObject::from))
}

#[Object]
impl BookingMutation {
    /// Books a slot for a guest and returns, once, the guest's manage
    /// token. Every field at fault is reported at once. Retrying with the
    /// same `idempotencyKey` returns the first answer; the same key with a
    /// different request is a CONFLICT.
    async fn create_reservation(
        &self,
        ctx: &Context<'_>,
        input: CreateReservationInput,
    ) -> Result<CreateReservationPayload> {
        let mut checks = Checks::default();
        let key = idempotency_key(&mut checks, &input.idempotency_key);
        let Some(venue_id) = checks.take(VenueId::parse(&input.venue_id).or_gql()) else {
            return Ok(CreateReservationPayload {
                user_errors: checks.finish()?,
                ..CreateReservationPayload::default()
            });
        };
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::MUTATION_CREATE_RESERVATION,
            guard::EXECUTE,
            "venue",
        )?;
        let resource_id = input
            .resource_id
            .as_ref()
            .and_then(|id| checks.take(ResourceId::parse(id).or_gql()));
        let service_id = input
            .service_id
            .as_ref()
            .and_then(|id| checks.take(domain::ServiceId::parse(id).or_gql()));
        let starts_at = input.starts_at.with_timezone(&Utc);
        let party_size = i64::from(input.party_size);
        let locale = input.locale.clone();
        let form = app::booking::BookingForm {
            venue_id,
            starts_at,
            party_size,
            resource_id,
            service_id,
            name: input.guest.name,
            email: input.guest.email,
            phone: input.guest.phone,
            notes: input.guest.notes,
            locale: input.locale,
            notice_version: input.notice_version.map(i64::from),
            opt_ins: input.consents.into_iter().map(Into::into).collect(),
        };
        let request = match app::booking::check_form(store(ctx), form, now(ctx))
            .await
            .or_gql()?
        {
            Ok(request) => Some(request),
            Err(refusals) => {
                for refusal in refusals {
                    checks.take::<()>(Err(app_error(refusal)));
                }
                None
            }
        };
        let user_errors = checks.finish()?;
        let (Some(request), Some(key), true) = (request, key, user_errors.is_empty()) else {
            return refused(ctx, user_errors, venue_id, &locale).await;
        };
        let principal = guard::principal(ctx);
        let created = app::booking::create(store(ctx), principal, request, key, now(ctx))
            .await
            .map_err(app_error);
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                let user_error = classify(error)?;
                if user_error.code == UserErrorCode::SlotTaken
                    && let Ok(party) = PartySize::parse(party_size)
                {
                    let (view, slots) = app::booking::nearest_free(
                        store(ctx),
                        venue_id,
                        starts_at,
                        party,
                        service_id,
                        ALTERNATIVES,
                        now(ctx),
                    )
                    .await
                    .or_gql()?;
                    let alternatives = slots.into_iter().map(|s| Slot::of(s, &view)).collect();
                    return Ok(CreateReservationPayload {
                        user_errors: vec![user_error],
                        alternatives: Some(alternatives),
                        ..CreateReservationPayload::default()
                    });
                }
                return refused(ctx, vec![user_error], venue_id, &locale).await;
            }
        };
        Ok(CreateReservationPayload {
            manage_token: Some(created.manage_token.expose().to_owned()),
            reservation: Some(answer(created.booked, Access::Guest)),
            ..CreateReservationPayload::default()
        })
    }

    /// Moves a reservation or changes its party size, until the venue's
    /// change deadline (DEADLINE_PASSED after it): the guest with the
    /// manage token (`Authorization: Bearer kmt_…`), or staff the policy
    /// allows. A reservation that is not the caller's reads as NOT_FOUND.
    async fn modify_reservation(
        &self,
        ctx: &Context<'_>,
        input: ModifyReservationInput,
    ) -> Result<ModifyReservationPayload> {
        let mut checks = Checks::default();
        let key = idempotency_key(&mut checks, &input.idempotency_key);
        if input.starts_at.is_none() && input.party_size.is_none() {
            checks.push(UserError::new(
                &["input"],
                UserErrorCode::Invalid,
                "give startsAt, partySize or both",
            ));
        }
        let party_size = input
            .party_size
            .map(|size| checks.take(PartySize::parse(i64::from(size)).or_gql()));
        let token = checks.take(token_of(ctx, input.manage_token.as_deref()));
        let user_errors = checks.finish()?;
        let (Some(key), Some(token), true) = (key, token, user_errors.is_empty()) else {
            return Ok(ModifyReservationPayload {
                user_errors,
                ..ModifyReservationPayload::default()
            });
        };
        let change = ReservationChange {
            starts_at: input.starts_at.map(|t| t.with_timezone(&Utc)),
            party_size: party_size.flatten(),
        };
        let (reservation, user_errors) = outcome(
            async {
                let (id, access) = authorize_change(
                    ctx,
                    &input.id,
                    token,
                    coordinates::MUTATION_MODIFY_RESERVATION,
                )
                .await?;
                let gateways = ctx.data_opt::<plugins::Gateways>();
                let monitor = ctx.data_opt::<app::monitor::Monitor>();
                let clock = || now(ctx);
                let changed =
                    app::booking::modify(store(ctx), gateways, monitor, id, change, key, clock)
                        .await
                        .or_gql()?;
                Ok(answer(changed, access))
            }
            .await,
        )?;
        Ok(ModifyReservationPayload {
            reservation,
            user_errors,
        })
    }

    /// Cancels a reservation, until the venue's cancellation deadline
    /// (DEADLINE_PASSED after it): the guest with the manage token
    /// (`Authorization: Bearer kmt_…`), or staff and partners the policy
    /// allows. A reservation that is not the caller's reads as NOT_FOUND.
    async fn cancel_reservation(
        &self,
        ctx: &Context<'_>,
        input: CancelReservationInput,
    ) -> Result<CancelReservationPayload> {
        let mut checks = Checks::default();
        let key = idempotency_key(&mut checks, &input.idempotency_key);
        let token = checks.take(token_of(ctx, input.manage_token.as_deref()));
        let user_errors = checks.finish()?;
        let (Some(key), Some(token), true) = (key, token, user_errors.is_empty()) else {
            return Ok(CancelReservationPayload {
                user_errors,
                ..CancelReservationPayload::default()
            });
        };
        let (reservation, user_errors) = outcome(
            async {
                let (id, access) = authorize_change(
                    ctx,
                    &input.id,
                    token,
                    coordinates::MUTATION_CANCEL_RESERVATION,
                )
                .await?;
                let cancelled = app::booking::cancel(store(ctx), id, key, now(ctx))
                    .await
                    .or_gql()?;
                Ok(answer(cancelled, access))
            }
            .await,
        )?;
        Ok(CancelReservationPayload {
            reservation,
            user_errors,
        })
    }

    /// Records check-in, no-show or completion (venue staff).
    async fn set_reservation_status(
        &self,
        ctx: &Context<'_>,
        input: SetReservationStatusInput,
    ) -> Result<SetReservationStatusPayload> {
        let (reservation, user_errors) = outcome(
            async {
                let (id, access) = authorize_change(
                    ctx,
                    &input.id,
                    None,
                    coordinates::MUTATION_SET_RESERVATION_STATUS,
                )
                .await?;
                let set = app::booking::set_status(store(ctx), id, input.status.into(), now(ctx))
                    .await
                    .or_gql()?;
                Ok(answer(set, access))
            }
            .await,
        )?;
        Ok(SetReservationStatusPayload {
            reservation,
            user_errors,
        })
    }
}

/// A booking not made: its user errors, and the current notice when the
/// notice changed.
async fn refused(
    ctx: &Context<'_>,
    user_errors: Vec<UserError>,
    venue: VenueId,
    locale: &str,
) -> Result<CreateReservationPayload> {
    let notice_changed = user_errors
        .iter()
        .any(|error| error.code == UserErrorCode::NoticeChanged);
    let current_notice = if notice_changed {
        current_notice(ctx, venue, locale).await?
    } else {
        None
    };
    Ok(CreateReservationPayload {
        user_errors,
        current_notice,
        ..CreateReservationPayload::default()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn domain_errors_keep_their_codes() {
        let error = super::super::errors::domain_error(&domain::DomainError::SlotTaken);
        let code = error
            .extensions
            .and_then(|e| e.get("code").cloned())
            .map(|v| v.to_string());
        assert_eq!(code.as_deref(), Some("\"SLOT_TAKEN\""));
    }
}
