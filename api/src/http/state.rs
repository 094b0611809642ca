//! What every request handler shares: the schema, the store, the limits
//! and the writers, built once at start-up.

use store::Store;

use crate::config::Environment;
use crate::graphql::KluisSchema;

pub struct ServerState {
    pub schema: KluisSchema,
    pub store: Store,
    pub env: Environment,
    pub authorizer: std::sync::Arc<app::authz::Authorizer>,
    pub gateways: plugins::Gateways,
    pub clock: app::clock::Clock,
    pub monitor: Option<app::monitor::Monitor>,
    pub metrics: crate::http::metrics::Metrics,
    pub metrics_access: MetricsAccess,
    pub limiter: crate::http::rate_limit::RateLimiter,
    /// Appends requests' audit trails, many per transaction.
    pub audit: crate::http::audit_writer::AuditWriter,
    /// Turns for GraphQL requests (`rate_limits.max_in_flight`).
    pub admission: std::sync::Arc<tokio::sync::Semaphore>,
    /// How long a request waits for a turn (`rate_limits.queue_wait_ms`).
    pub queue_wait: std::time::Duration,
}

/// Who may read `/metrics`.
#[derive(Clone)]
pub struct MetricsAccess {
    /// Asked of every scrape when set.
    pub token: Option<secrecy::SecretString>,
    /// Without a token: served on the main listener (development without
    /// a separate metrics address).
    pub open_on_main: bool,
}
