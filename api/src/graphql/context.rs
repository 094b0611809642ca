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
