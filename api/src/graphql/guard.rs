//! Authorization checks used by resolvers: every field that carries
//! personal data and every mutation asks here, naming its GraphQL
//! coordinate. Deny by default: no principal, no authorizer, no answer.

use std::sync::Arc;

use async_graphql::{Context, ID, Result};
use domain::ports::ReservationRepository;
use domain::{DomainError, ManageToken, ReservationId, VenueId};
use store::{Store, StoreError};

use super::context::{blocking, store};
use super::coordinates::Coordinate;
use super::errors::{Code, OrGraphqlError, api_error};
use app::auth::Principal;
use app::authz::Authorizer;

pub const READ: &str = "read";
pub const EXECUTE: &str = "execute";

static ANONYMOUS: Principal = Principal::Anonymous;

/// Decisions already taken in this request: a list of a hundred
/// reservations asks the same few questions a hundred times.
#[derive(Default)]
pub struct Decisions(
    std::sync::Mutex<std::collections::HashMap<(String, String, String, String), bool>>,
);

fn decide(
    ctx: &Context<'_>,
    authorizer: &Authorizer,
    subject: &str,
    venue: &str,
    object: Coordinate,
    action: &str,
) -> bool {
    let key = (
        subject.to_owned(),
        venue.to_owned(),
        object.as_str().to_owned(),
        action.to_owned(),
    );
    let cache = ctx.data_opt::<Decisions>();
    if let Some(known) = cache.and_then(|c| c.0.lock().ok().and_then(|map| map.get(&key).copied()))
    {
        return known;
    }
    let decision = authorizer.allows(subject, venue, object.as_str(), action);
    if let Some(Ok(mut map)) = cache.map(|c| c.0.lock()) {
        map.insert(key, decision);
    }
    decision
}

pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    ctx.data_opt::<Principal>().unwrap_or(&ANONYMOUS)
}

/// Whether `subject` may act on `object`: in one venue, or, for objects of
/// no venue (logging out, admin tools), in any venue it holds a role in.
pub fn allowed_as(
    ctx: &Context<'_>,
    subject: &str,
    venue: Option<VenueId>,
    object: Coordinate,
    action: &str,
) -> bool {
    let Some(authorizer) = ctx.data_opt::<Arc<Authorizer>>() else {
        return false;
    };
    match venue {
        Some(venue) => decide(ctx, authorizer, subject, &venue.to_string(), object, action),
        None => {
            decide(
                ctx,
                authorizer,
                subject,
                domain::auth::EVERY_VENUE,
                object,
                action,
            ) || principal(ctx)
                .venues()
                .iter()
                .any(|venue| decide(ctx, authorizer, subject, venue, object, action))
        }
    }
}

pub fn allowed(
    ctx: &Context<'_>,
    venue: Option<VenueId>,
    object: Coordinate,
    action: &str,
) -> bool {
    allowed_as(ctx, &principal(ctx).subject(), venue, object, action)
}

/// The refusal: UNAUTHENTICATED for a caller who gave no credentials (they
/// may be allowed once they do), FORBIDDEN for one who did.
pub fn forbidden(ctx: &Context<'_>, object: Coordinate) -> async_graphql::Error {
    match principal(ctx) {
        Principal::Anonymous => api_error(
            Code::Unauthenticated,
            format!("not allowed without credentials: {object}"),
        ),
        _ => api_error(Code::Forbidden, format!("not allowed: {object}")),
    }
}

/// Requires a permission; FORBIDDEN on this field or mutation only.
pub fn require(
    ctx: &Context<'_>,
    venue: Option<VenueId>,
    object: Coordinate,
    action: &str,
) -> Result<()> {
    if allowed(ctx, venue, object, action) {
        Ok(())
    } else {
        Err(forbidden(ctx, object))
    }
}

/// Requires a permission on something loaded from a venue. A principal
/// bound to venues that cannot see this one is told it does not exist, so
/// that ids of other venues cannot be probed.
pub fn require_in_venue(
    ctx: &Context<'_>,
    venue: VenueId,
    object: Coordinate,
    action: &str,
    entity: &'static str,
) -> Result<()> {
    if allowed(ctx, Some(venue), object, action) {
        return Ok(());
    }
    let who = principal(ctx);
    let reaches_venue = who
        .venues()
        .iter()
        .any(|v| v == domain::auth::EVERY_VENUE || *v == venue.to_string());
    if who.is_venue_bound() && !reaches_venue {
        Err(super::errors::domain_error(
            &domain::DomainError::not_found(entity),
        ))
    } else {
        Err(forbidden(ctx, object))
    }
}

/// Where a principal holds a permission, for administration that must stay
/// within the caller's venues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// In `*`: every venue, and what belongs to no venue.
    Everywhere,
    /// In these venues only (ids as role assignments name them).
    Venues(Vec<String>),
}

impl Reach {
    /// Whether a domain (a venue id, or `*` for every venue) is within
    /// reach. Only a principal holding the permission in `*` reaches `*`.
    pub fn covers(&self, domain: &str) -> bool {
        match self {
            Self::Everywhere => true,
            Self::Venues(venues) => {
                domain != domain::auth::EVERY_VENUE && venues.iter().any(|v| v == domain)
            }
        }
    }

    /// The venues to filter a list by; none when nothing is filtered.
    pub fn filter(&self) -> Option<Vec<String>> {
        match self {
            Self::Everywhere => None,
            Self::Venues(venues) => Some(venues.clone()),
        }
    }
}

/// Where the caller holds `object`/`action`: `*`, or the venues it holds a
/// role in that grants it.
pub fn reach(ctx: &Context<'_>, object: Coordinate, action: &str) -> Reach {
    let Some(authorizer) = ctx.data_opt::<Arc<Authorizer>>() else {
        return Reach::Venues(Vec::new());
    };
    let subject = principal(ctx).subject();
    if decide(
        ctx,
        authorizer,
        &subject,
        domain::auth::EVERY_VENUE,
        object,
        action,
    ) {
        return Reach::Everywhere;
    }
    Reach::Venues(
        principal(ctx)
            .venues()
            .iter()
            .filter(|venue| venue.as_str() != domain::auth::EVERY_VENUE)
            .filter(|venue| decide(ctx, authorizer, &subject, venue, object, action))
            .cloned()
            .collect(),
    )
}

/// Requires a permission over an existing object that belongs to `domains`
/// (venue ids, `*` for every venue; an empty list is an object of no venue,
/// which only a principal holding the permission in `*` reaches). An
/// object wholly out of the caller's venues is NOT_FOUND, as for
/// `require_in_venue`, unless the caller has some role in one of its venues
/// (then FORBIDDEN); one partly in them (also of venues the caller lacks
/// the permission in) is FORBIDDEN: acting on it would reach past them.
pub fn require_over(
    ctx: &Context<'_>,
    domains: &[String],
    object: Coordinate,
    action: &str,
    entity: &'static str,
) -> Result<()> {
    let reach = reach(ctx, object, action);
    let covered = domains.iter().filter(|d| reach.covers(d)).count();
    if reach == Reach::Everywhere || (covered > 0 && covered == domains.len()) {
        return Ok(());
    }
    let who = principal(ctx);
    let known = domains.iter().any(|d| who.venues().iter().any(|v| v == d));
    if covered == 0 && !known {
        Err(super::errors::domain_error(
            &domain::DomainError::not_found(entity),
        ))
    } else {
        Err(forbidden(ctx, object))
    }
}

/// Requires a permission in `*`: for what belongs to every venue or none
/// (a role in every venue, a staff account or breach of no venue).
pub fn require_everywhere(ctx: &Context<'_>, object: Coordinate, action: &str) -> Result<()> {
    if reach(ctx, object, action) == Reach::Everywhere {
        Ok(())
    } else {
        Err(forbidden(ctx, object))
    }
}

/// Requires a permission in the domain a grant or a new object will hold:
/// `*` needs the permission in `*`; a venue, the permission there (a venue
/// the caller has no role in is NOT_FOUND, as elsewhere).
pub fn require_for_domain(
    ctx: &Context<'_>,
    domain: &str,
    object: Coordinate,
    action: &str,
) -> Result<()> {
    if domain == domain::auth::EVERY_VENUE {
        require_everywhere(ctx, object, action)
    } else {
        require_over(ctx, &[domain.to_owned()], object, action, "venue")
    }
}

/// How the caller reached a reservation, which decides whether its
/// personal fields are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// By id: the booking facts only.
    Public,
    /// With its manage token (or by booking it): the guest's own data too.
    Guest,
}

fn authorize(store: &Store, id: ReservationId, token: &ManageToken) -> Result<(), StoreError> {
    match store.reservation_by_token(token)? {
        Some(reservation) if reservation.id == id => Ok(()),
        _ => Err(DomainError::not_found("reservation").into()),
    }
}

/// Decides who changes a reservation: with a manage token (argument or
/// bearer) it is the guest, for their own reservation only; otherwise the
/// caller, in the reservation's venue. A token that fits nothing, and a
/// venue the caller cannot see, read as NOT_FOUND.
pub async fn authorize_change(
    ctx: &Context<'_>,
    id: &ID,
    manage_token: Option<String>,
    object: Coordinate,
) -> Result<(ReservationId, Access)> {
    let (id, access, _) = authorize_change_in(ctx, id, manage_token, object).await?;
    Ok((id, access))
}

/// `authorize_change`, also answering the reservation's venue.
pub async fn authorize_change_in(
    ctx: &Context<'_>,
    id: &ID,
    manage_token: Option<String>,
    object: Coordinate,
) -> Result<(ReservationId, Access, VenueId)> {
    let id = ReservationId::parse(id).or_gql()?;
    let bearer_guest = matches!(principal(ctx), app::auth::Principal::Guest(own) if *own == id);
    let token = manage_token
        .map(|raw| ManageToken::parse(&raw))
        .transpose()
        .or_gql()?;
    let store = store(ctx).clone();
    if token.is_some() || bearer_guest {
        let venue = blocking(move || {
            if let Some(token) = &token {
                authorize(&store, id, token)?;
            }
            let reservation = store
                .reservation(id)?
                .ok_or(DomainError::not_found("reservation"))?;
            Ok(reservation.venue_id)
        })
        .await?;
        if !allowed_as(ctx, "guest", Some(venue), object, EXECUTE) {
            return Err(forbidden(ctx, object));
        }
        return Ok((id, Access::Guest, venue));
    }
    let venue = blocking(move || {
        Ok(store
            .reservation(id)?
            .ok_or(DomainError::not_found("reservation"))?
            .venue_id)
    })
    .await?;
    require_in_venue(ctx, venue, object, EXECUTE, "reservation")?;
    Ok((id, Access::Public, venue))
}
