//! Authorization checks used by resolvers: every field that carries
//! personal data and every mutation asks here, naming its GraphQL
//! coordinate. Deny by default: no principal, no authorizer, no answer.

use std::sync::Arc;

use async_graphql::{Context, Result};
use domain::VenueId;

use super::errors::{Code, api_error};
use crate::auth::Principal;
use crate::authz::Authorizer;

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
    object: &str,
    action: &str,
) -> bool {
    let key = (
        subject.to_owned(),
        venue.to_owned(),
        object.to_owned(),
        action.to_owned(),
    );
    let cache = ctx.data_opt::<Decisions>();
    if let Some(known) = cache.and_then(|c| c.0.lock().ok().and_then(|map| map.get(&key).copied()))
    {
        return known;
    }
    let decision = authorizer.allows(subject, venue, object, action);
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
    object: &str,
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

pub fn allowed(ctx: &Context<'_>, venue: Option<VenueId>, object: &str, action: &str) -> bool {
    allowed_as(ctx, &principal(ctx).subject(), venue, object, action)
}

/// The refusal: UNAUTHENTICATED for a caller who gave no credentials (they
/// may be allowed once they do), FORBIDDEN for one who did.
pub fn forbidden(ctx: &Context<'_>, object: &str) -> async_graphql::Error {
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
    object: &str,
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
    object: &str,
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
