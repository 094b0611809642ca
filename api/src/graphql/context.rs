//! What every resolver reads from the request's context: the store, the
//! time, and a way to run storage work off the async executor. Imports no
//! resolver module, so every resolver can import it.

use async_graphql::Context;
use store::{Store, StoreError};

/// The time the booking rules see.
pub fn now(ctx: &Context<'_>) -> chrono::DateTime<chrono::Utc> {
    ctx.data_opt::<app::clock::Clock>()
        .map_or_else(chrono::Utc::now, app::clock::Clock::now)
}

pub fn store<'a>(ctx: &Context<'a>) -> &'a Store {
    // The server always installs the store; only `sdl()` builds without one,
    // and it executes nothing.
    ctx.data_unchecked::<Store>()
}

/// The client's network address, for login throttling (staff passwords
/// and guests' secrets alike).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

/// Runs synchronous storage work off the async executor.
pub async fn blocking<T, F>(work: F) -> async_graphql::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    use super::errors::OrGraphqlError;
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.or_gql(),
        Err(join_error) => Err(super::errors::internal_error(&join_error)),
    }
}

/// A guest's key sent as `Authorization: Bearer kmt_…` (one booking's
/// manage token) or `Bearer kat_…` (an access token from the access-code
/// flow): headers stay out of URLs, browser history and proxy logs, where
/// query arguments end up.
#[derive(Clone)]
pub struct GuestBearer(String);

impl GuestBearer {
    /// The header's bearer when it is a guest's key; `None` leaves it to
    /// staff sessions and API keys.
    pub fn from_header(header: &str) -> Option<Self> {
        let token = header.strip_prefix("Bearer ")?.trim();
        (token.starts_with("kmt_") || token.starts_with("kat_")).then(|| Self(token.to_owned()))
    }
}

impl GuestBearer {
    pub fn is_access_token(&self) -> bool {
        self.0.starts_with("kat_")
    }
}

impl std::fmt::Debug for GuestBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestBearer(‹secret›)")
    }
}

fn bearer<'a>(ctx: &Context<'a>, prefix: &str) -> Option<&'a str> {
    ctx.data_opt::<GuestBearer>()
        .map(|bearer| bearer.0.as_str())
        .filter(|token| token.starts_with(prefix))
}

/// Picks the one place a guest's token came from: the `Authorization`
/// header, or the deprecated argument. Both at once is refused, so that a
/// client learns to drop the argument rather than send two secrets.
fn one_of<'a>(
    header: Option<&'a str>,
    argument: Option<&'a str>,
    name: &str,
) -> async_graphql::Result<Option<&'a str>> {
    match (header, argument) {
        (Some(_), Some(_)) => Err(super::errors::api_error(
            super::errors::Code::BadUserInput,
            format!("{name}: send the token once, in the Authorization header"),
        )),
        (header, argument) => Ok(header.or(argument)),
    }
}

/// The manage token of the request: `Authorization: Bearer kmt_…`, or the
/// deprecated argument. Malformed is NOT_FOUND, like one that matches
/// nothing.
pub fn manage_token(
    ctx: &Context<'_>,
    argument: Option<&str>,
) -> async_graphql::Result<Option<domain::ManageToken>> {
    use super::errors::OrGraphqlError as _;
    one_of(bearer(ctx, "kmt_"), argument, "manageToken")?
        .map(domain::ManageToken::parse)
        .transpose()
        .or_gql()
}

/// The access token of the request: `Authorization: Bearer kat_…`, or the
/// deprecated argument.
pub fn access_token(
    ctx: &Context<'_>,
    argument: Option<&str>,
) -> async_graphql::Result<Option<domain::AccessToken>> {
    use super::errors::OrGraphqlError as _;
    one_of(bearer(ctx, "kat_"), argument, "accessToken")?
        .map(domain::AccessToken::parse)
        .transpose()
        .or_gql()
}
