use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, Object, Result};
use chrono::Utc;
use domain::ports::{ReservationRepository, VenueRepository};
use domain::{DomainError, Email, ManageToken, PartySize, Reservation, ReservationId, VenueId};
use store::{AuditAction, Store, StoreError};

use super::context::{blocking, now, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard;
use super::limits::{page_complexity, page_size};
use super::types::{Access, ReservationObject, Slot, VenueObject, local};

#[derive(Default)]
pub struct BookingQuery;

#[Object]
impl BookingQuery {
    /// One venue, by its id. Null with NOT_FOUND when there is none: the
    /// rest of a combined query still answers.
    async fn venue(&self, ctx: &Context<'_>, id: ID) -> Result<Option<VenueObject>> {
        let id = VenueId::parse(&id).or_gql()?;
        let store = store(ctx).clone();
        blocking(move || store.venue(id))
            .await?
            .map(|venue| Some(VenueObject(venue)))
            .ok_or_else(|| super::errors::domain_error(&DomainError::not_found("venue")))
    }

    /// Venues in a stable order, `first` at a time (at most 100).
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn venues(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, VenueObject, EmptyFields, EmptyFields>> {
        let first = page_size(first)?;
        let after = match after {
            None => None,
            Some(cursor) => Some(VenueId::parse(&cursor).map_err(|_| {
                api_error(Code::BadUserInput, "after: not a cursor from this list")
            })?),
        };
        let store = store(ctx).clone();
        let page = blocking(move || store.venues(after, first)).await?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(
            page.items
                .into_iter()
                .map(|venue| Edge::new(venue.id.to_string(), VenueObject(venue))),
        );
        Ok(connection)
    }

    /// Start times that can still be booked at a venue on a local date for a
    /// party of this size, with the resources free for each.
    // Charged in advance for a usual day; what it returned (start times,
    // and free resources when asked for) is charged on top, so that a large
    // venue's day costs the budget what it took.
    #[graphql(complexity = "super::limits::AVAILABILITY_SLOTS * child_complexity")]
    async fn availability(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        date: super::scalars::Date,
        party_size: i32,
    ) -> Result<Vec<Slot>> {
        let venue_id = VenueId::parse(&venue_id).or_gql()?;
        let party = PartySize::parse(i64::from(party_size)).or_gql()?;
        let store = store(ctx).clone();
        let at = now(ctx);
        let (view, slots) =
            blocking(move || store.availability_view(venue_id, date.0, party, at)).await?;
        let time_zone = view.venue.time_zone;
        let listed = if ctx.look_ahead().field("freeResources").exists() {
            slots.iter().map(|slot| slot.free_resources.len()).sum()
        } else {
            0
        };
        super::limits::charge(ctx, slots.len().saturating_add(listed));
        Ok(slots
            .into_iter()
            .map(|slot| Slot {
                starts_at: local(slot.starts_at, time_zone),
                ends_at: local(slot.ends_at, time_zone),
                free_resources: slot.free_resources,
                venue: std::sync::Arc::clone(&view),
            })
            .collect())
    }

    /// One reservation, by its id, for those allowed to see its venue's
    /// bookings. Which of its guest fields answer is the policy's call.
    /// Null, with the error, when it is not found or not theirs to see.
    async fn reservation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ReservationObject>> {
        const OBJECT: coordinates::Coordinate = coordinates::QUERY_RESERVATION;
        if !guard::principal(ctx).is_venue_bound() {
            guard::require(ctx, None, OBJECT, guard::READ)?;
        }
        let id = ReservationId::parse(&id).or_gql()?;
        let found =
            load_reservation(ctx, Access::Public, move |store| store.reservation(id)).await?;
        guard::require_in_venue(ctx, found.venue.id, OBJECT, guard::READ, "reservation")?;
        Ok(Some(found))
    }

    /// A venue's reservations on a local date, in start order (staff's day
    /// sheet). `first` at most 100.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        date: super::scalars::Date,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ReservationObject, EmptyFields, EmptyFields>> {
        let venue_id = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::QUERY_RESERVATIONS,
            guard::READ,
            "venue",
        )?;
        let first = page_size(first)?;
        let cursor = after.as_deref().map(parse_cursor).transpose()?;
        let has_cursor = cursor.is_some();
        let sheet = app::booking::day_sheet(store(ctx), venue_id, date.0, cursor, first)
            .await
            .or_gql()?;
        let mut connection = Connection::new(has_cursor, sheet.has_next_page);
        let objects = ReservationObject::list(sheet.reservations, &sheet.venue, Access::Public);
        connection.edges.extend(objects.into_iter().map(|object| {
            let reservation = &object.reservation;
            let cursor = format!("{}|{}", reservation.starts_at.to_rfc3339(), reservation.id);
            Edge::new(cursor, object)
        }));
        Ok(connection)
    }

    /// The reservations at a venue of the guest with this e-mail address,
    /// newest start first (the front desk's lookup), `first` at most 100.
    /// Found through the address's lookup token: the address is never
    /// stored, logged or echoed.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn guest_reservations(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        email: String,
        first: Option<i32>,
    ) -> Result<Vec<ReservationObject>> {
        let venue_id = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::QUERY_GUEST_RESERVATIONS,
            guard::READ,
            "venue",
        )?;
        let email = Email::parse("email", &email).or_gql()?;
        let limit = page_size(first)?;
        let found = app::booking::guest_lookup(store(ctx), venue_id, email, limit)
            .await
            .or_gql()?;
        // The lookup is a use of the address: the request's trail names
        // what it found (never the address).
        let principal = guard::principal(ctx).subject();
        for object in found.looked_up {
            let venue = Some(venue_id.to_string());
            super::audit::record(ctx, &principal, AuditAction::Lookup, object, "email", venue);
        }
        Ok(ReservationObject::list(
            found.reservations,
            &found.venue,
            Access::Public,
        ))
    }

    /// The reservation a guest's manage token belongs to, with the guest's
    /// own data. A token that matches nothing is null with NOT_FOUND.
    async fn reservation_by_token(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> Result<Option<ReservationObject>> {
        let token = ManageToken::parse(&token).or_gql()?;
        load_reservation(ctx, Access::Guest, move |store| {
            store.reservation_by_token(&token)
        })
        .await
        .map(Some)
    }
}

fn parse_cursor(raw: &str) -> Result<(chrono::DateTime<Utc>, String)> {
    let invalid = || api_error(Code::BadUserInput, "after: not a cursor from this list");
    let (instant, id) = raw.split_once('|').ok_or_else(invalid)?;
    let instant = chrono::DateTime::parse_from_rfc3339(instant).map_err(|_| invalid())?;
    let id = ReservationId::parse(id).map_err(|_| invalid())?;
    Ok((instant.with_timezone(&Utc), id.to_string()))
}

pub async fn load_reservation(
    ctx: &Context<'_>,
    access: Access,
    find: impl FnOnce(&Store) -> Result<Option<Reservation>, StoreError> + Send + 'static,
) -> Result<ReservationObject> {
    let store = store(ctx).clone();
    let (reservation, venue) = blocking(move || {
        let reservation = find(&store)?.ok_or(DomainError::not_found("reservation"))?;
        let id = reservation.id;
        let venue = store
            .venue_view(reservation.venue_id)?
            .ok_or_else(|| store::StoreError::Corrupt(format!("reservation {id} has no venue")))?
            .venue
            .clone();
        Ok((reservation, venue))
    })
    .await?;
    Ok(ReservationObject::new(reservation, venue, access))
}
