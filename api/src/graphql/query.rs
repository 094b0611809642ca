use async_graphql::connection::{Connection, ConnectionNameType, Edge, EmptyFields};
use async_graphql::{Context, ID, Object, OutputType, Result, SimpleObject};
use chrono::{DateTime, FixedOffset, Utc};
use domain::ports::{ReservationRepository, VenueRepository};
use domain::{DomainError, Email, PartySize, Reservation, ReservationId, ResourceId, VenueId};
use store::{AuditAction, Store, StoreError};

use super::context::{blocking, now, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard;
use super::limits::{page_complexity, page_size};
use super::pages::{Cursor, Page, page, position};
use super::scalars::LocalTime;
use super::types::{Access, ReservationObject, Slot, Status, VenueObject};

/// The reservations a day sheet's filters match, across pages.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct SheetSummary {
    /// How many reservations.
    pub reservations: i64,
    /// How many guests they seat (the sum of their party sizes).
    pub covers: i64,
}

/// What a day sheet says about the whole sheet under its filters.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct SheetFields {
    /// How many reservations the whole sheet holds under the arguments
    /// given, across every page.
    pub total_count: i64,
    pub summary: SheetSummary,
}

/// The day sheet's connection type name: its fields differ from a plain
/// page of reservations.
pub struct DaySheetName;

impl ConnectionNameType for DaySheetName {
    fn type_name<T: OutputType>() -> String {
        "DaySheetConnection".to_owned()
    }
}

/// A page of a venue's day sheet, with its counts.
pub type DaySheet = Connection<Cursor, ReservationObject, SheetFields, EmptyFields, DaySheetName>;

/// A reservation's position in a list ordered by start: `starts_at|id`.
fn reservation_position(reservation: &Reservation) -> Cursor {
    Cursor(format!(
        "{}|{}",
        reservation.starts_at.to_rfc3339(),
        reservation.id
    ))
}

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

    /// Venues in a stable order, `first` at a time (at most 100), with
    /// `totalCount`.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn venues(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<VenueObject>> {
        let first = page_size(first)?;
        let after = match position("after", after.as_deref())? {
            None => None,
            Some(text) => Some(VenueId::parse(&text).map_err(|_| {
                api_error(Code::BadUserInput, "after: not a cursor from this list")
            })?),
        };
        let store = store(ctx).clone();
        let (found, total) =
            blocking(move || Ok((store.venues(after, first)?, store.count_venues()?))).await?;
        let mut connection = page(after.is_some(), found.has_next_page, total);
        connection.edges.extend(
            found
                .items
                .into_iter()
                .map(|venue| Edge::new(Cursor(venue.id.to_string()), VenueObject(venue))),
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
        #[graphql(
            desc = "The service to book (`Venue.services`): its length, buffer, party sizes and resources decide. Required at a venue that offers services; a service of another venue is NOT_FOUND."
        )]
        service_id: Option<ID>,
    ) -> Result<Vec<Slot>> {
        let venue_id = VenueId::parse(&venue_id).or_gql()?;
        let party = PartySize::parse(i64::from(party_size)).or_gql()?;
        let service = service_id
            .map(|id| domain::ServiceId::parse(&id))
            .transpose()
            .or_gql()?;
        let store = store(ctx).clone();
        let at = now(ctx);
        let (view, slots) =
            blocking(move || store.availability_view(venue_id, date.0, party, service, at)).await?;
        let listed = if ctx.look_ahead().field("freeResources").exists() {
            slots.iter().map(|slot| slot.free_resources.len()).sum()
        } else {
            0
        };
        super::limits::charge(ctx, slots.len().saturating_add(listed));
        Ok(slots
            .into_iter()
            .map(|slot| Slot::of(slot, &view))
            .collect())
    }

    /// One reservation, by its id, for those allowed to see its venue's
    /// bookings. Which of its guest fields answer is the policy's call.
    /// Null, with the error, when it is not found or not theirs to see.
    async fn reservation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ReservationObject>> {
        reservation_by_id(ctx, &id).await.map(Some)
    }

    /// A venue's reservations on a local date, in start order (staff's day
    /// sheet), `first` at most 100, with `totalCount` and a `summary`
    /// under the same filters. Filters: any of `status`, one `resourceId`,
    /// starting in `[from, until)` on the venue's clock, and
    /// `updatedSince` for a refresh (what was booked, moved, cancelled or
    /// checked in after that instant).
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per filter of the sheet"
    )]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        date: super::scalars::Date,
        first: Option<i32>,
        after: Option<String>,
        status: Option<Vec<Status>>,
        resource_id: Option<ID>,
        from: Option<LocalTime>,
        until: Option<LocalTime>,
        updated_since: Option<DateTime<FixedOffset>>,
    ) -> Result<Option<DaySheet>> {
        let venue_id = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::QUERY_RESERVATIONS,
            guard::READ,
            "venue",
        )?;
        let first = page_size(first)?;
        let cursor = start_position(after.as_deref())?;
        let has_cursor = cursor.is_some();
        let query = app::booking::SheetQuery {
            statuses: status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            // An id that is no resource matches nothing, like another
            // venue's resource.
            resource: match resource_id {
                None => None,
                Some(id) => match ResourceId::parse(&id) {
                    Ok(id) => Some(id),
                    Err(_) => return Ok(Some(empty_sheet())),
                },
            },
            from: from.map(|t| t.0),
            until: until.map(|t| t.0),
            updated_since: updated_since.map(|at| at.with_timezone(&Utc)),
        };
        let sheet = app::booking::day_sheet(store(ctx), venue_id, date.0, query, cursor, first)
            .await
            .or_gql()?;
        let fields = SheetFields {
            total_count: sheet.summary.reservations,
            summary: SheetSummary {
                reservations: sheet.summary.reservations,
                covers: sheet.summary.covers,
            },
        };
        let mut connection =
            Connection::with_additional_fields(has_cursor, sheet.has_next_page, fields);
        let objects = ReservationObject::list(sheet.reservations, &sheet.venue, Access::Public);
        connection.edges.extend(objects.into_iter().map(|object| {
            let cursor = reservation_position(&object.reservation);
            Edge::new(cursor, object)
        }));
        Ok(Some(connection))
    }

    /// The reservations at a venue of the guest with this e-mail address,
    /// newest start first (the front desk's lookup), `first` at most 100,
    /// with `totalCount`. Found through the address's lookup token: the
    /// address is never stored, logged or echoed.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn guest_reservations(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        email: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Page<ReservationObject>>> {
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
        let cursor = start_position(after.as_deref())?;
        let has_cursor = cursor.is_some();
        let found = app::booking::guest_lookup(store(ctx), venue_id, email, cursor, limit)
            .await
            .or_gql()?;
        // The lookup is a use of the address: the request's trail names
        // what it found (never the address).
        let principal = guard::principal(ctx).subject();
        for object in found.looked_up {
            let venue = Some(venue_id.to_string());
            super::audit::record(ctx, &principal, AuditAction::Lookup, object, "email", venue);
        }
        let mut connection = page(has_cursor, found.has_next_page, found.total);
        let objects = ReservationObject::list(found.reservations, &found.venue, Access::Public);
        connection.edges.extend(objects.into_iter().map(|object| {
            let cursor = reservation_position(&object.reservation);
            Edge::new(cursor, object)
        }));
        Ok(Some(connection))
    }

    /// The reservation a guest's manage token belongs to, with the guest's
    /// own data; the token is sent as `Authorization: Bearer kmt_…`. A
    /// token that matches nothing (or none sent) is null with NOT_FOUND.
    async fn reservation_by_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")] token: Option<String>,
    ) -> Result<Option<ReservationObject>> {
        let token = super::context::manage_token(ctx, token.as_deref())?
            .ok_or_else(|| super::errors::domain_error(&DomainError::not_found("reservation")))?;
        load_reservation(ctx, Access::Guest, move |store| {
            store.reservation_by_token(&token)
        })
        .await
        .map(Some)
    }
}

/// An empty day sheet (a filter that can match nothing).
fn empty_sheet() -> DaySheet {
    Connection::with_additional_fields(
        false,
        false,
        SheetFields {
            total_count: 0,
            summary: SheetSummary {
                reservations: 0,
                covers: 0,
            },
        },
    )
}

/// Reads an `after` cursor of a list ordered by start back into its
/// `(starts_at, id)` position; anything this list did not hand out is
/// BAD_USER_INPUT.
fn start_position(after: Option<&str>) -> Result<Option<(DateTime<Utc>, String)>> {
    position("after", after)?
        .as_deref()
        .map(parse_cursor)
        .transpose()
}

fn parse_cursor(raw: &str) -> Result<(chrono::DateTime<Utc>, String)> {
    let invalid = || api_error(Code::BadUserInput, "after: not a cursor from this list");
    let (instant, id) = raw.split_once('|').ok_or_else(invalid)?;
    let instant = chrono::DateTime::parse_from_rfc3339(instant).map_err(|_| invalid())?;
    let id = ReservationId::parse(id).map_err(|_| invalid())?;
    Ok((instant.with_timezone(&Utc), id.to_string()))
}

/// One reservation for those allowed to see its venue's bookings (also
/// `node(id:)`); NOT_FOUND when it is not there or not theirs to see.
pub async fn reservation_by_id(ctx: &Context<'_>, id: &ID) -> Result<ReservationObject> {
    const OBJECT: coordinates::Coordinate = coordinates::QUERY_RESERVATION;
    if !guard::principal(ctx).is_venue_bound() {
        guard::require(ctx, None, OBJECT, guard::READ)?;
    }
    let id = ReservationId::parse(id).or_gql()?;
    let found = load_reservation(ctx, Access::Public, move |store| store.reservation(id)).await?;
    guard::require_in_venue(ctx, found.venue.id, OBJECT, guard::READ, "reservation")?;
    Ok(found)
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
