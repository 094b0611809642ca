//! kluis's use cases: what the server and the `kluis` command do, free of
//! HTTP and GraphQL. Callers check who may do what (the GraphQL guards,
//! the command line's operator) and then call one function here; these
//! call the store, the payment plugins, the mail relay and webhooks.

pub mod access;
pub mod auth;
pub mod authz;
pub mod booking;
pub mod breaches;
pub mod clock;
pub mod error;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod monitor;
pub mod outbound;
pub mod outbox;
pub mod payments;
pub mod principal;
pub mod reconcile;
pub mod rights;
pub mod rotation;
pub mod settings;
pub mod waitlist;
pub mod walk_ins;

pub use error::Error;
