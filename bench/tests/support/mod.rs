//! What the benchmark's tests share: settings for a fresh database and a
//! PostgreSQL schema of a test's own.

use anyhow::Result;

/// Settings for a server on `database_url` with a fresh key in `dir`, the
/// shipped policy, and budgets and bulk-read response raised as the load
/// benchmark raises them (one client, one account, one key).
pub fn settings(database_url: String, dir: &std::path::Path) -> Result<api::config::Checked> {
    let key_file = dir.join("kluis.key");
    api::keys::generate_key_file(&key_file)?;
    // The key store: next to an SQLite file, or a schema of its own.
    let key_store_url = if database_url.starts_with("postgres") {
        Some(postgres_schema()?)
    } else {
        None
    };
    let mut settings = api::config::Settings {
        database_url,
        key_store_url,
        key_file: Some(key_file),
        bind: "127.0.0.1:0".to_owned(),
        policy_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies"),
        outbox_delivery: false,
        ..api::config::Settings::default()
    };
    settings.rate_limits.address_per_minute = 1_000_000;
    settings.rate_limits.session_per_minute = 1_000_000;
    settings.rate_limits.api_key_per_minute = 1_000_000;
    settings.rate_limits.complexity_per_minute = 1_000_000_000;
    settings.monitoring.bulk_read_response = api::config::BulkReadResponse::Alert;
    Ok(settings.check()?)
}

/// A URL into a new schema of the test database (`KLUIS_TEST_POSTGRES_URL`).
pub fn postgres_schema() -> Result<String> {
    use diesel::{Connection, RunQueryDsl};
    let base = std::env::var("KLUIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/kluis_test".to_owned());
    // Loopback needs no TLS, and open TLS connections can crash the test
    // process in libcrypto's exit-time clean-up (see the api tests'
    // harness, `postgres_url`).
    let base = if base.contains("sslmode=") {
        base
    } else {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}sslmode=disable")
    };
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(&base)?;
    diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut admin)?;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base}{separator}options=-csearch_path%3D{schema}%2Cpublic"
    ))
}
