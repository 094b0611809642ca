//! Walk-ins: staff seat a party that came in without a booking.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use domain::{ResourceId, VenueId};

use super::context::{now, store};
use super::coordinates;
use super::errors::{OrGraphqlError, app_error};
use super::guard;
use super::payload::{Checks, UserError, classify};
use super::types::{Access, ReservationObject};

#[derive(Default)]
pub struct WalkInMutation;

/// A party seated now. Everything but the party size is optional; the
/// personal fields are stored encrypted like any guest's.
#[derive(InputObject)]
pub struct RecordWalkInInput {
    pub venue_id: ID,
    pub party_size: i32,
    /// A specific table; without it the smallest free one that seats the
    /// party is chosen.
    pub resource_id: Option<ID>,
    /// At most 200 characters.
    pub name: Option<String>,
    /// Only where the venue collects e-mail addresses.
    pub email: Option<String>,
    /// Only where the venue collects phone numbers.
    pub phone: Option<String>,
    /// At most 1000 characters; only where the venue collects notes.
    pub note: Option<String>,
}

/// The answer to `recordWalkIn`.
#[derive(SimpleObject, Default)]
pub struct RecordWalkInPayload {
    /// The reservation, checked in; null when it was not made.
    pub reservation: Option<ReservationObject>,
    /// Always null: a walk-in gets no manage token (staff change and end
    /// it) and no confirmation mail.
    pub manage_token: Option<String>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[Object]
impl WalkInMutation {
    /// Seats a walk-in now (venue staff): a reservation starting at the
    /// current minute, off the slot grid and inside any notice period,
    /// checked in at once, for the venue's booking duration. SLOT_TAKEN
    /// when the table (or every table that fits) is taken.
    async fn record_walk_in(
        &self,
        ctx: &Context<'_>,
        input: RecordWalkInInput,
    ) -> Result<RecordWalkInPayload> {
        let mut checks = Checks::default();
        let Some(venue_id) = checks.take(VenueId::parse(&input.venue_id).or_gql()) else {
            return Ok(RecordWalkInPayload {
                user_errors: checks.finish()?,
                ..RecordWalkInPayload::default()
            });
        };
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::MUTATION_RECORD_WALK_IN,
            guard::EXECUTE,
            "venue",
        )?;
        let resource_id = input
            .resource_id
            .as_ref()
            .and_then(|id| checks.take(ResourceId::parse(id).or_gql()));
        let form = app::walk_ins::WalkInForm {
            venue_id,
            party_size: i64::from(input.party_size),
            resource_id,
            name: input.name,
            email: input.email,
            phone: input.phone,
            note: input.note,
        };
        let principal = guard::principal(ctx);
        let recorded = if checks.is_clean() {
            Some(app::walk_ins::record(store(ctx), principal, form, now(ctx)).await)
        } else {
            None
        };
        let mut user_errors = checks.finish()?;
        let booked = match recorded {
            None => None,
            Some(Err(error)) => {
                user_errors.push(classify(app_error(error))?);
                None
            }
            Some(Ok(Err(refusals))) => {
                for refusal in refusals {
                    user_errors.push(classify(app_error(refusal))?);
                }
                None
            }
            Some(Ok(Ok(booked))) => Some(booked),
        };
        Ok(RecordWalkInPayload {
            reservation: booked
                .map(|b| ReservationObject::new(b.reservation, b.venue, Access::Public)),
            manage_token: None,
            user_errors,
        })
    }
}
