//! The kluis server: configuration and start-up, the HTTP pipeline, the
//! GraphQL schema and telemetry. The use cases they call live in the `app`
//! crate; the `kluis` binary (`main.rs`, `cli/`) is a thin command line
//! over both.

pub mod authz;
pub mod config;
pub mod graphql;
pub mod http;
pub mod startup;
pub mod telemetry;

pub use startup::{
    AddStaffError, Application, StartError, add_staff_account, import_venues, open_store,
    replay_erasures, retire_key, rotate_keys,
};

// The use cases live in `app`; these paths stay for the tests, the
// benchmark and older callers.
pub use app::jobs::publish_audit_head;
pub use app::rights::forget_saved_cards;
pub use app::{auth, clock, import, keys, mail, monitor, outbound, outbox, reconcile};
pub use http::{audit_writer, metrics, rate_limit};
