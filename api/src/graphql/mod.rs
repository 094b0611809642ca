//! The GraphQL schema: queries, mutations, their limits and errors. The
//! schema is assembled in `schema`; what resolvers share sits below them
//! (`context`, `errors`, `guard`, `limits`), so no resolver imports this
//! module or the schema.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod audit_log;
pub mod breaches;
pub mod consent_types;
pub mod context;
pub mod coordinates;
pub mod depth;
pub mod enums;
pub mod errors;
pub mod guard;
pub mod limits;
mod mutation;
mod node;
pub mod pages;
pub mod payload;
mod payment_object;
pub mod payments;
pub mod privacy;
mod query;
pub mod scalars;
pub mod schema;
pub mod types;
pub mod venue_types;
pub mod venues;
mod waitlist;
mod walk_ins;
mod webhooks;

pub use errors::{Code, ensure_codes};
pub use limits::{DEFAULT_PAGE, MAX_ALIASES, MAX_DIRECTIVES, MAX_PAGE};
pub use schema::{
    KluisSchema, MAX_COMPLEXITY, MAX_DEPTH, MAX_INTROSPECTION_DEPTH, Mutation, Query, Services,
    build, depth_limits, sdl,
};
