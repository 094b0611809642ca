//! The schema assembled from the resolver modules: every query and
//! mutation, the limits the executor enforces, and the services it hands
//! the resolvers.

use async_graphql::{EmptySubscription, Schema};
use store::Store;

use super::{
    access, alerts, audit_log, breaches, depth, limits, mutation, node, payments, privacy, query,
    scalars, venues, waitlist, walk_ins, webhooks,
};
use app::settings::Environment;

/// All queries: bookings and access control.
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    query::BookingQuery,
    venues::VenueQuery,
    access::AccessQuery,
    privacy::PrivacyQuery,
    audit_log::AuditQuery,
    breaches::BreachQuery,
    webhooks::WebhookQuery,
    alerts::AlertQuery,
    node::NodeQuery,
    waitlist::WaitlistQuery,
);

/// All mutations: bookings and access control.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    mutation::BookingMutation,
    walk_ins::WalkInMutation,
    waitlist::WaitlistMutation,
    access::AccessMutation,
    venues::VenueMutation,
    payments::PaymentMutation,
    payments::NoShowMutation,
    payments::OnsiteMutation,
    privacy::PrivacyMutation,
    privacy::RightsMutation,
    breaches::BreachMutation,
    webhooks::WebhookMutation,
    alerts::AlertMutation,
);

pub type KluisSchema = Schema<Query, Mutation, EmptySubscription>;

pub const MAX_DEPTH: usize = 10;
/// The standard introspection query nests 13 deep; this leaves room for
/// tools that follow `ofType` a few levels further.
pub const MAX_INTROSPECTION_DEPTH: usize = 16;
/// Each field costs 1; a list costs its `first` (or its fixed bound) times
/// its children. 100 venues with a dozen fields each fit; 100 venues with all
/// their resources do not.
pub const MAX_COMPLEXITY: usize = 2_000;

/// What the schema's resolvers need at run time.
pub struct Services {
    pub store: Store,
    pub clock: app::clock::Clock,
    pub gateways: plugins::Gateways,
    pub authorizer: std::sync::Arc<app::authz::Authorizer>,
    pub session_length: chrono::Duration,
    /// The detection rules; `None` runs without them (benchmarks).
    pub monitor: Option<app::monitor::Monitor>,
    /// Where webhooks may point.
    pub outbound: app::settings::Outbound,
}

/// Introspection may nest deeper only where it is on.
pub fn depth_limits(env: Environment) -> depth::DepthLimits {
    depth::DepthLimits {
        ordinary: MAX_DEPTH,
        introspection: match env {
            Environment::Development => MAX_INTROSPECTION_DEPTH,
            Environment::Production => MAX_DEPTH,
        },
    }
}

pub fn build(services: Option<Services>, env: Environment) -> KluisSchema {
    let depth = depth_limits(env);
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        // async-graphql's own count, blind to introspection, bounds every
        // request as a second line behind `RequestLimits`' finer one.
        .limit_depth(depth.overall())
        .limit_complexity(MAX_COMPLEXITY)
        .extension(limits::RequestLimits::new(depth))
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(scalars::DATE_TIME);
    if env == Environment::Production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(services) = services {
        builder = builder
            .data(services.store)
            .data(services.clock)
            .data(services.gateways)
            .data(services.authorizer)
            .data(access::SessionLength(services.session_length))
            .data(services.outbound)
            .data(env);
        if let Some(monitor) = services.monitor {
            builder = builder.data(monitor);
        }
    }
    builder.finish()
}

/// The schema in SDL, as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    build(None, Environment::Development)
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_sdl_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let current = super::sdl();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &current).expect("write schema.graphql");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "api/schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test -p api` and commit it"
        );
    }
}
