//! What a use case answers when it does not do what was asked. Each kind
//! is one answer a caller can give its client; the GraphQL layer turns
//! them into its `extensions.code` values.

use domain::DomainError;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a rule (bad input, not found, slot taken,
    /// conflict).
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be served as asked; the message says why.
    #[error("{0}")]
    Refused(String),
    /// The venue's deadline for changing or cancelling has passed.
    #[error("{0}")]
    DeadlinePassed(String),
    /// The privacy notice the booking names is not the venue's current one.
    #[error("{0}")]
    NoticeChanged(String),
    /// Credentials are missing or do not hold.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The caller asked too often.
    #[error("{0}")]
    RateLimited(String),
    /// A key file could not be read, written or used.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    /// Retiring a key version found data that still needs it.
    #[error("key version {version} is still needed")]
    KeyStillNeeded { version: u32, needs: Vec<String> },
    /// The audit trail is broken: key versions are kept until it is
    /// investigated.
    #[error("the audit trail is broken ({0})")]
    AuditBroken(store::BrokenLink),
    /// The payment provider failed (not a refusal: those are `Refused`).
    #[error(transparent)]
    Provider(domain::payments::GatewayError),
    /// The access policy was refused (file and line say why).
    #[error("{0}")]
    Policy(String),
    /// Work on the blocking pool did not finish.
    #[error("a blocking task failed: {0}")]
    Task(String),
}

/// Runs synchronous storage work off the async executor.
pub async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => Err(Error::Task(join_error.to_string())),
    }
}
