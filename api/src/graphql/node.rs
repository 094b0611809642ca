//! Every entity a client caches has an `id` and can be fetched again by it
//! alone (`node(id:)`, the Relay convention), under the same rules as the
//! lookup or list it came from: what the caller may not see is not found,
//! whether or not it exists.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::access::{ApiKey, StaffAccount, api_key_by_id, staff_account_by_id};
use super::alerts::{AlertObject, alert_by_id};
use super::breaches::{BreachObject, breach_by_id};
use super::context::{blocking, now, store};
use super::coordinates;
use super::errors::{Code, api_error};
use super::guard::{self, READ};
use super::payments::{PaymentObject, payment_by_id};
use super::query::reservation_by_id;
use super::types::ReservationObject;
use super::venue_types::{ResourceObject, VenueObject};
use super::venues::venue_by_id;

/// Anything with an id a client keeps in its cache. Ids are random UUIDs,
/// unique across every kind, so one id names one thing.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Venue(VenueObject),
    Resource(ResourceObject),
    Reservation(ReservationObject),
    Payment(PaymentObject),
    StaffAccount(StaffAccount),
    ApiKey(ApiKey),
    Breach(BreachObject),
    Alert(AlertObject),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The entity with this id, whatever its kind, for clients that
    /// refetch what they cache. Null with NOT_FOUND when there is none the
    /// caller may see: an id of something out of reach reads as unknown.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(api_error(
                Code::BadUserInput,
                "id: not an id kluis gave out",
            ));
        }
        match find(ctx, &id).await? {
            Some(node) => Ok(Some(node)),
            None => Err(api_error(Code::NotFound, "nothing with this id")),
        }
    }
}

/// Each kind in turn; a kind's own lookup decides whether the caller may
/// see it, and a refusal there reads as "not this kind".
async fn find(ctx: &Context<'_>, id: &ID) -> Result<Option<Node>> {
    if let Some(venue) = venue_by_id(ctx, id).await? {
        return Ok(Some(Node::Venue(venue)));
    }
    if let Some(resource) = resource_by_id(ctx, id).await? {
        return Ok(Some(Node::Resource(resource)));
    }
    if let Some(reservation) = quietly(reservation_by_id(ctx, id).await)? {
        return Ok(Some(Node::Reservation(reservation)));
    }
    if let Some(payment) = quietly(payment_by_id(ctx, id).await)?.flatten() {
        return Ok(Some(Node::Payment(payment)));
    }
    admin_node(ctx, id).await
}

/// Staff accounts, keys, breaches and alerts, within the caller's reach
/// as their lists are.
async fn admin_node(ctx: &Context<'_>, id: &ID) -> Result<Option<Node>> {
    let id = id.to_string();
    let store = store(ctx).clone();
    let at = now(ctx);
    let staff = allowed(ctx, coordinates::QUERY_STAFF_ACCOUNTS);
    let keys = allowed(ctx, coordinates::QUERY_API_KEYS);
    let breaches = allowed(ctx, coordinates::QUERY_BREACHES);
    let alerts = allowed(ctx, coordinates::QUERY_ALERTS);
    blocking(move || {
        if let Some(reach) = &staff
            && let Some(account) = staff_account_by_id(&store, &id, reach)?
        {
            return Ok(Some(Node::StaffAccount(account)));
        }
        if let Some(reach) = &keys
            && let Some(key) = api_key_by_id(&store, &id, reach)?
        {
            return Ok(Some(Node::ApiKey(key)));
        }
        if let Some(reach) = &breaches
            && let Some(breach) = breach_by_id(&store, &id, at)?
            && covers(reach, breach.venue_id.as_deref())
        {
            return Ok(Some(Node::Breach(breach)));
        }
        if let Some(reach) = &alerts
            && let Some(alert) = alert_by_id(&store, &id)?
            && covers(reach, alert.venue_id.as_deref())
        {
            return Ok(Some(Node::Alert(alert)));
        }
        Ok(None)
    })
    .await
}

/// Where the caller may read a list, if anywhere.
fn allowed(ctx: &Context<'_>, list: coordinates::Coordinate) -> Option<guard::Reach> {
    guard::require(ctx, None, list, READ)
        .ok()
        .map(|()| guard::reach(ctx, list, READ))
}

/// Something of no venue belongs to the whole deployment: only a reach of
/// every venue covers it.
fn covers(reach: &guard::Reach, venue: Option<&str>) -> bool {
    reach.covers(venue.unwrap_or(domain::auth::EVERY_VENUE))
}

/// A resource, found through its venue (venues and their resources are
/// public, as on `venue`).
async fn resource_by_id(ctx: &Context<'_>, id: &ID) -> Result<Option<ResourceObject>> {
    let wanted = id.to_string();
    let store = store(ctx).clone();
    blocking(move || {
        let Some(venue) = store.resource_venue(&wanted)? else {
            return Ok(None);
        };
        Ok(store.venue_view(venue)?.and_then(|view| {
            view.resources
                .iter()
                .find(|resource| resource.id.to_string() == wanted)
                .cloned()
                .map(ResourceObject)
        }))
    })
    .await
}

/// A lookup's refusal (not found, not the caller's, not signed in) as
/// "not this kind"; what is not the caller's fault stays an error.
fn quietly<T>(found: Result<T>) -> Result<Option<T>> {
    match found {
        Ok(value) => Ok(Some(value)),
        Err(error) => {
            let code = error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .cloned();
            match code {
                Some(async_graphql::Value::String(code)) if code == Code::Internal.as_str() => {
                    Err(error)
                }
                _ => Ok(None),
            }
        }
    }
}
