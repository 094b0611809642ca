//! Persistence for kluis: Diesel over SQLite (embedded default) and
//! PostgreSQL (production), behind the ports declared in `domain`.

mod access;
mod access_codes;
mod alerts;
pub use alerts::BULK_READ_ACTIONS;
mod audit;
#[cfg(feature = "bench")]
mod baseline;
mod breaches;
#[cfg(feature = "bench")]
mod bulk;
mod connection;
mod erasure;
mod export;
mod guests;
mod idempotency;
mod keys;
mod keystore;
mod lock;
mod outbox;
mod payments;
mod privacy;
mod rate_limits;
mod reservations;
mod rows;
mod schema;
mod sheets;
mod venues;
mod waitlist;
mod walk_ins;
mod webhooks;

use diesel::Connection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::DomainError;
use domain::crypto::{CryptoError, SharedKeyRing};

pub use access::{ApiKeyRow, Backoff, LoginAttempt, NewApiKey, RoleAssignment, StaffRow};
pub use access_codes::{
    ACCESS_MINUTES, AccessScope, CODE_ATTEMPTS, CODE_MINUTES, IssuedCode, Redemption,
};
pub use alerts::{Alert, AlertNotices, Hold, NewAlert, OperationalWindow, Raised};
pub use audit::{
    AuditAccess, AuditAction, AuditEntry, AuditEvent, AuditFilter, AuditHead, AuditObject,
    BrokenLink, Checkpointed, GENESIS as AUDIT_GENESIS, Verification, fields as audit_fields,
    legacy_hash as legacy_audit_hash,
};
#[cfg(feature = "bench")]
pub use baseline::{AvailabilityRows, DaySheetRow, GuestReservationRow};
pub use breaches::{AUTHORITY_DEADLINE_HOURS, Breach, NewBreach};
#[cfg(feature = "bench")]
pub use bulk::{BulkGuest, BulkReservation};
pub use connection::{Backend, DatabaseUrl, DbConnection, Pool};
pub use erasure::{Erasure, Replay, RetentionRun};
pub use export::{
    EXPORT_FORMAT, ExportedAccess, ExportedConsent, ExportedPayment, ExportedProfile,
    ExportedReservation, ExportedWaitlistEntry, GuestExport,
};
pub use idempotency::{IDEMPOTENCY_HOURS, Purged, THROTTLE_HOURS};
pub use keys::{KeyUsage, RotationProgress, SEALED, SealedColumn, SealedTable, SealedUsage};
pub use keystore::{ErasureReason, GuestAccess, GuestKeys, KeyStore};
pub use outbox::{
    DueMessage, MAX_ATTEMPTS, Mail, OutboxKind, OutboxStatus, Outgoing, Webhook, WebhookTarget,
    retry_delay,
};
pub use payments::{ACTION_GRACE, BeginPayment, BeginRefund, NewPayment, ProviderAnswer, Recorded};
pub use privacy::ConsentChange;
pub use rate_limits::RateDelta;
pub use sheets::{SheetFilter, SheetSummary};
pub use venues::{
    ClosureDefinition, ExceptionDefinition, ImportReport, PaymentKind, ResourceChange,
    ResourceDefinition, ServiceDefinition, VenueChanges, VenueDefinition, VenueView,
};
pub use waitlist::{
    ClaimedOffer, EntryStatus, NewWaitlistEntry, WaitlistEntry, WaitlistOffer, WaitlistRun,
};
pub use walk_ins::NewWalkIn;
pub use webhooks::VenueWebhook;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Errors of the storage layer. Only `Domain` is meant for the caller's eyes;
/// the others are logged in full and answered with an opaque error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection available")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database query failed")]
    Query(#[source] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A sealed value failed to open: tampering, or a ciphertext moved
    /// between rows or columns. Never answered with someone else's data.
    #[error("integrity failure")]
    Integrity(#[source] CryptoError),
    #[error("encryption failed")]
    Crypto(#[source] CryptoError),
    /// The key ring does not fit the data: wrong master key, or a version the
    /// database uses is missing.
    #[error("{0}")]
    KeyMismatch(String),
    /// A concurrent writer won a race inside a transaction. The operation
    /// tries again; only when every attempt lost (the audit append under
    /// sustained contention) does it reach the caller, as INTERNAL.
    #[error("concurrent change ({0})")]
    Race(Race),
}

/// The races a write transaction can lose to a concurrent writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// The exclusion constraint refused an overlap the checks did not see.
    Overlap,
    /// The reservation changed since it was read.
    StaleVersion,
    /// Another writer took the audit sequence number this one computed.
    AuditSequence,
}

impl std::fmt::Display for Race {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Overlap => "overlap",
            Self::StaleVersion => "stale version",
            Self::AuditSequence => "audit sequence",
        })
    }
}

impl StoreError {
    /// A unique index refused a row another writer inserted first: worth
    /// another try, which then finds that row.
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

impl From<CryptoError> for StoreError {
    fn from(error: CryptoError) -> Self {
        match error {
            CryptoError::Integrity { .. } => Self::Integrity(error),
            other => Self::Crypto(other),
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            // Only the exclusion constraint on reservations can raise this.
            Error::DatabaseError(DatabaseErrorKind::ExclusionViolation, _) => {
                Self::Domain(DomainError::SlotTaken)
            }
            other => Self::Query(other),
        }
    }
}

/// Runs the same Diesel code against whichever backend the connection is,
/// with `$schema` naming that backend's table declarations.
macro_rules! on_backend {
    // Inside a transaction the caller opened, through a `Tx`.
    (tx $tx:expr, |$c:ident, $schema:ident| $body:expr) => {
        match $tx {
            $crate::Tx::Postgresql($c) => {
                let $c: &mut diesel::PgConnection = $c;
                use $crate::schema::pg as $schema;
                $body
            }
            $crate::Tx::Sqlite($c) => {
                let $c: &mut diesel::SqliteConnection = $c;
                use $crate::schema::sqlite as $schema;
                $body
            }
        }
    };
    // For hand-written SQL, which needs no schema module.
    ($connection:expr, |$c:ident| $body:expr) => {
        match $connection {
            $crate::DbConnection::Postgresql($c) => $body,
            $crate::DbConnection::Sqlite($c) => $body,
        }
    };
    ($connection:expr, |$c:ident, $schema:ident| $body:expr) => {
        match $connection {
            $crate::DbConnection::Postgresql($c) => {
                use $crate::schema::pg as $schema;
                $body
            }
            $crate::DbConnection::Sqlite($c) => {
                use $crate::schema::sqlite as $schema;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// A connection of either backend inside a transaction its caller opened:
/// the steps of one transaction can then be functions, each running its
/// queries with `on_backend!(tx tx, |c, s| …)`.
pub(crate) enum Tx<'a> {
    Postgresql(&'a mut diesel::PgConnection),
    Sqlite(&'a mut diesel::SqliteConnection),
}

impl<'a> From<&'a mut diesel::PgConnection> for Tx<'a> {
    fn from(connection: &'a mut diesel::PgConnection) -> Self {
        Self::Postgresql(connection)
    }
}

impl<'a> From<&'a mut diesel::SqliteConnection> for Tx<'a> {
    fn from(connection: &'a mut diesel::SqliteConnection) -> Self {
        Self::Sqlite(connection)
    }
}

/// The body of a store macro that reads or writes: run as a closure, so
/// that its `?` and early `return`s end the step, not the caller, and the
/// macro evaluates to a `Result` the caller handles with its own `?`.
pub(crate) fn step<T>(body: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    body()
}

/// A transaction that will write. On SQLite it starts with `BEGIN IMMEDIATE`
/// so that writers queue at the start instead of failing at commit, and the
/// checks made inside it stay true until it commits.
pub(crate) trait WriteTransaction: Connection {
    fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>;
}

impl WriteTransaction for diesel::PgConnection {
    fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.build_transaction().read_write().run(f)
    }
}

impl WriteTransaction for diesel::SqliteConnection {
    fn write_transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.immediate_transaction(f)
    }
}

/// A read of several statements that must agree with each other (a page
/// and its total): one snapshot for all of them. PostgreSQL takes it at the
/// first statement of a repeatable-read transaction; SQLite's write-ahead
/// log keeps a read transaction on the state of its first read.
pub(crate) trait SnapshotRead: Connection {
    fn snapshot<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>;
}

impl SnapshotRead for diesel::PgConnection {
    fn snapshot<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.build_transaction()
            .repeatable_read()
            .read_only()
            .run(f)
    }
}

impl SnapshotRead for diesel::SqliteConnection {
    fn snapshot<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Self) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        self.transaction(f)
    }
}

/// The handle the server keeps: a connection pool and the backend it is for.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    keys: SharedKeyRing,
    key_store: keystore::KeyStore,
    venue_cache: std::sync::Arc<venues::VenueCache>,
    occupancy_cache: std::sync::Arc<venues::OccupancyCache>,
}

impl Store {
    /// Connects to the data database and the key store (failing with the
    /// driver's own reason) and builds their pools.
    pub fn connect(
        url: &DatabaseUrl,
        key_store: &DatabaseUrl,
        pool_size: u32,
        keys: SharedKeyRing,
    ) -> Result<Self, StoreError> {
        if url == key_store {
            return Err(StoreError::Connect(
                "the key store must be a database apart from the data".to_owned(),
            ));
        }
        Ok(Self {
            pool: connection::build_pool(url, pool_size)?,
            backend: url.backend(),
            keys,
            // Key-store queries are short (one per request or batch): a
            // quarter of the data pool, so that each node's connections to
            // a shared PostgreSQL grow by little.
            key_store: keystore::KeyStore::connect(key_store, pool_size.div_ceil(4).max(2))?,
            venue_cache: std::sync::Arc::default(),
            occupancy_cache: std::sync::Arc::default(),
        })
    }

    /// Where the guests' data keys and the record of erasures are kept.
    pub fn key_store(&self) -> &keystore::KeyStore {
        &self.key_store
    }

    /// The key ring this store seals and opens with.
    pub fn keys(&self) -> &SharedKeyRing {
        &self.keys
    }

    /// Opens with the current ring; when a value is sealed with a version
    /// the ring lacks (another node's rotation added it moments ago), the
    /// keys are re-read once and the open retried.
    pub(crate) fn opening<T>(
        &self,
        open: impl Fn(&domain::crypto::KeyRing) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match open(&self.keys.current()) {
            Err(StoreError::Crypto(CryptoError::UnknownVersion(_))) if self.keys.reload() => {
                open(&self.keys.current())
            }
            other => other,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn connection(
        &self,
    ) -> Result<diesel::r2d2::PooledConnection<connection::ConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Applies pending migrations (of the data database, then of the key
    /// store) and returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection()?;
        let applied = match &mut *connection {
            DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(|error| StoreError::Migration(error.to_string()))?;
        let mut applied: Vec<String> = applied.iter().map(ToString::to_string).collect();
        drop(connection);
        // The audit entries written before the chain was keyed get their
        // anchor sealed right after the migration that records it, before
        // anything is appended after them; never later, so that someone
        // who empties the seal cannot have a restart seal their version.
        if applied.iter().any(|v| v == audit::ANCHOR_MIGRATION) && self.seal_audit_anchor()? {
            tracing::warn!("audit anchor sealed: the entries before it keep their SHA-256 links");
        }
        applied.extend(self.key_store.migrate()?);
        Ok(applied)
    }

    /// Connections open, of them idle, and the most the pool opens.
    pub fn pool_usage(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// Messages waiting in the outbox, per kind.
    pub fn outbox_backlog(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use diesel::prelude::*;
            use s::outbox::dsl as o;
            o::outbox
                .filter(o::status.eq("pending"))
                .group_by(o::kind)
                .select((o::kind, diesel::dsl::count_star()))
                .load::<(String, i64)>(c)?
        }))
    }

    /// Whether the database answers a trivial query.
    pub fn ping(&self) -> Result<(), StoreError> {
        use diesel::r2d2::R2D2Connection;
        let mut connection = self.connection()?;
        Ok(connection.ping()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Migrations that exist in one tree only, each for a reason given in
    /// `migrations/README.md`.
    const ONE_BACKEND_ONLY: &[&str] = &["2026-11-27-000016_covering_guest_lookup"];

    fn migrations_in(tree: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(tree);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect()
    }

    /// Each schema change is one migration per backend, under the same
    /// name, unless it is listed as belonging to one backend.
    #[test]
    fn migration_trees_stay_in_step() {
        for (one, other) in [
            ("sqlite", "postgres"),
            ("keystore-sqlite", "keystore-postgres"),
        ] {
            let (a, b) = (migrations_in(one), migrations_in(other));
            let lonely: Vec<&String> = a
                .symmetric_difference(&b)
                .filter(|name| !ONE_BACKEND_ONLY.contains(&name.as_str()))
                .collect();
            assert!(
                lonely.is_empty(),
                "migrations in only one of {one}/ and {other}/ (add the other, or list it in migrations/README.md and ONE_BACKEND_ONLY): {lonely:?}"
            );
        }
        for name in ONE_BACKEND_ONLY {
            let readme = include_str!("../../migrations/README.md");
            assert!(
                readme.contains(name),
                "{name} is not explained in migrations/README.md"
            );
        }
    }
}
