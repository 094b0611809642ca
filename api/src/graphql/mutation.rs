use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, FixedOffset, Utc};
use domain::ports::ReservationChange;
use domain::{Email, GuestNotes, IdempotencyKey, PartySize, PersonName, ResourceId, VenueId};

use super::context::{now, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, authorize_change};
use super::types::{Access, ReservationObject, Status};

#[derive(Default)]
pub struct BookingMutation;

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
    /// Opt-in to the venue's newsletter. Off unless the guest ticks it.
    #[graphql(default)]
    pub newsletter: bool,
    /// Opt-in to marketing. Off unless the guest ticks it.
    #[graphql(default)]
    pub marketing: bool,
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
    pub guest: GuestInput,
    /// The version of the privacy notice the form showed (`privacyNotice`).
    /// Required once the venue has published one in this locale.
    pub notice_version: Option<i32>,
    /// The notice's locale.
    #[graphql(default = "en")]
    pub locale: String,
}

/// What to change; leave out what stays.
#[derive(InputObject)]
pub struct ModifyReservationInput {
    pub starts_at: Option<DateTime<FixedOffset>>,
    pub party_size: Option<i32>,
}

#[derive(SimpleObject)]
pub struct CreateReservationPayload {
    pub reservation: ReservationObject,
    /// The guest's key to this reservation (`reservationByToken`, changes,
    /// cancellation). Shown here only: kluis keeps just a hash of it.
    pub manage_token: String,
}

/// The answer of a booking use case, as its caller may see it.
fn answer(booked: app::booking::Booked, access: Access) -> ReservationObject {
    ReservationObject::new(booked.reservation, booked.venue, access)
}

/// The guest's name, address and notes, checked.
fn guest_details(input: &GuestInput) -> Result<(PersonName, Option<Email>, Option<GuestNotes>)> {
    let name = PersonName::parse("guest.name", &input.name).or_gql()?;
    let email = input
        .email
        .as_deref()
        .filter(|raw| !raw.trim().is_empty())
        .map(|raw| Email::parse("guest.email", raw))
        .transpose()
        .or_gql()?;
    let notes = match input.notes.as_deref() {
        Some(raw) => GuestNotes::parse("guest.notes", raw).or_gql()?,
        None => None,
    };
    Ok((name, email, notes))
}

/// A booking's input as the use case takes it.
fn new_booking(
    venue_id: VenueId,
    input: CreateReservationInput,
) -> Result<app::booking::NewBooking> {
    let party_size = PartySize::parse(i64::from(input.party_size)).or_gql()?;
    let resource_id = input
        .resource_id
        .map(|id| ResourceId::parse(&id))
        .transpose()
        .or_gql()?;
    let (name, email, notes) = guest_details(&input.guest)?;
    let locale = domain::privacy::Locale::parse(&input.locale).or_gql()?;
    let notice_version = input
        .notice_version
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| api_error(Code::BadUserInput, "noticeVersion: must be positive"))
        })
        .transpose()?;
    let mut opt_ins = Vec::new();
    if input.guest.newsletter {
        opt_ins.push(domain::privacy::ConsentPurpose::Newsletter);
    }
    if input.guest.marketing {
        opt_ins.push(domain::privacy::ConsentPurpose::Marketing);
    }
    Ok(app::booking::NewBooking {
        venue_id,
        starts_at: input.starts_at.with_timezone(&Utc),
        party_size,
        resource_id,
        name,
        email,
        phone: input.guest.phone,
        notes,
        locale,
        notice_version,
        opt_ins,
    })
}

#[Object]
impl BookingMutation {
    /// Books a slot for a guest and returns, once, the guest's manage
    /// token. Retrying with the same `idempotencyKey` returns the first
    /// answer; the same key with a different request is a CONFLICT.
    async fn create_reservation(
        &self,
        ctx: &Context<'_>,
        input: CreateReservationInput,
        idempotency_key: String,
    ) -> Result<CreateReservationPayload> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let venue_id = VenueId::parse(&input.venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::MUTATION_CREATE_RESERVATION,
            guard::EXECUTE,
            "venue",
        )?;
        let request = new_booking(venue_id, input)?;
        let principal = guard::principal(ctx);
        let created = app::booking::create(store(ctx), principal, request, key, now(ctx))
            .await
            .or_gql()?;
        Ok(CreateReservationPayload {
            manage_token: created.manage_token.expose().to_owned(),
            reservation: answer(created.booked, Access::Guest),
        })
    }

    /// Moves a reservation or changes its party size, until the venue's
    /// change deadline: the guest with the manage token, or staff the
    /// policy allows.
    async fn modify_reservation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        manage_token: Option<String>,
        input: ModifyReservationInput,
        idempotency_key: String,
    ) -> Result<ReservationObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        if input.starts_at.is_none() && input.party_size.is_none() {
            return Err(api_error(
                Code::BadUserInput,
                "input: give startsAt, partySize or both",
            ));
        }
        let change = ReservationChange {
            starts_at: input.starts_at.map(|t| t.with_timezone(&Utc)),
            party_size: input
                .party_size
                .map(|size| PartySize::parse(i64::from(size)))
                .transpose()
                .or_gql()?,
        };
        let (id, access) = authorize_change(
            ctx,
            &id,
            manage_token,
            coordinates::MUTATION_MODIFY_RESERVATION,
        )
        .await?;
        let gateways = ctx.data_opt::<plugins::Gateways>();
        let monitor = ctx.data_opt::<app::monitor::Monitor>();
        let clock = || now(ctx);
        let changed = app::booking::modify(store(ctx), gateways, monitor, id, change, key, clock)
            .await
            .or_gql()?;
        Ok(answer(changed, access))
    }

    /// Cancels a reservation, until the venue's cancellation deadline: the
    /// guest with the manage token, or staff and partners the policy allows.
    async fn cancel_reservation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        manage_token: Option<String>,
        idempotency_key: String,
    ) -> Result<ReservationObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let (id, access) = authorize_change(
            ctx,
            &id,
            manage_token,
            coordinates::MUTATION_CANCEL_RESERVATION,
        )
        .await?;
        let cancelled = app::booking::cancel(store(ctx), id, key, now(ctx))
            .await
            .or_gql()?;
        Ok(answer(cancelled, access))
    }

    /// Records check-in, no-show or completion (venue staff).
    async fn set_reservation_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: Status,
    ) -> Result<ReservationObject> {
        let (id, access) =
            authorize_change(ctx, &id, None, coordinates::MUTATION_SET_RESERVATION_STATUS).await?;
        let set = app::booking::set_status(store(ctx), id, status.into(), now(ctx))
            .await
            .or_gql()?;
        Ok(answer(set, access))
    }
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
