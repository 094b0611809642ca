use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, FixedOffset, Utc};
use domain::ports::{NewReservation, ReservationChange, ReservationRepository, VenueRepository};
use domain::{IdempotencyKey, PartySize, Reservation, ReservationId, ResourceId, VenueId};
use store::{Store, StoreError};

use super::errors::{Code, OrGraphqlError, api_error};
use super::types::ReservationObject;
use super::{blocking, store};

pub struct Mutation;

#[derive(InputObject)]
pub struct CreateReservationInput {
    pub venue_id: ID,
    /// A start time from `availability`, with any UTC offset.
    pub starts_at: DateTime<FixedOffset>,
    pub party_size: i32,
    /// A specific resource; without it the smallest free one that seats the
    /// party is chosen.
    pub resource_id: Option<ID>,
}

/// What to change; leave out what stays.
#[derive(InputObject)]
pub struct ModifyReservationInput {
    pub starts_at: Option<DateTime<FixedOffset>>,
    pub party_size: Option<i32>,
}

/// Runs a booking operation and loads the venue the answer needs.
async fn respond(
    ctx: &Context<'_>,
    work: impl FnOnce(&Store) -> Result<Reservation, StoreError> + Send + 'static,
) -> Result<ReservationObject> {
    let store = store(ctx).clone();
    let (reservation, venue) = blocking(move || {
        let reservation = work(&store)?;
        let venue = store.venue(reservation.venue_id)?.ok_or_else(|| {
            StoreError::Corrupt(format!("reservation {} has no venue", reservation.id))
        })?;
        Ok((reservation, venue))
    })
    .await?;
    Ok(ReservationObject { reservation, venue })
}

#[Object]
impl Mutation {
    /// Books a slot. Retrying with the same `idempotencyKey` returns the
    /// first answer; the same key with a different request is a CONFLICT.
    async fn create_reservation(
        &self,
        ctx: &Context<'_>,
        input: CreateReservationInput,
        idempotency_key: String,
    ) -> Result<ReservationObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let request = NewReservation {
            venue_id: VenueId::parse(&input.venue_id).or_gql()?,
            starts_at: input.starts_at.with_timezone(&Utc),
            party_size: PartySize::parse(i64::from(input.party_size)).or_gql()?,
            resource_id: input
                .resource_id
                .map(|id| ResourceId::parse(&id))
                .transpose()
                .or_gql()?,
        };
        respond(ctx, move |store| {
            store.create_reservation(&request, &key, Utc::now())
        })
        .await
    }

    /// Moves a reservation or changes its party size, until the venue's
    /// change deadline.
    async fn modify_reservation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ModifyReservationInput,
        idempotency_key: String,
    ) -> Result<ReservationObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let id = ReservationId::parse(&id).or_gql()?;
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
        respond(ctx, move |store| {
            store.modify_reservation(id, &change, &key, Utc::now())
        })
        .await
    }

    /// Cancels a reservation, until the venue's cancellation deadline.
    async fn cancel_reservation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        idempotency_key: String,
    ) -> Result<ReservationObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let id = ReservationId::parse(&id).or_gql()?;
        respond(ctx, move |store| {
            store.cancel_reservation(id, &key, Utc::now())
        })
        .await
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
