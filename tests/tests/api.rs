//! Black-box tests of the kluis server over HTTP: one binary, one module per
//! capability.

mod api {
    mod access;
    mod admin_scope;
    mod audit;
    mod bad_input;
    mod booking;
    mod closures;
    mod concurrency;
    mod cors;
    mod erasure_copies;
    mod get_requests;
    mod graphiql;
    mod guests;
    mod hours;
    mod idempotency;
    mod keys;
    mod limits;
    mod metrics;
    mod monitoring;
    mod node;
    mod outbox;
    mod payments;
    mod privacy;
    mod rate_limits;
    mod rights;
    mod services;
    mod tables_together;
    mod takeover;
    mod tls;
    mod venue_settings;
    mod waitlist;
    mod walk_ins;
    mod webhooks;
}
