//! One connection type over PostgreSQL and SQLite, pooled with r2d2.

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;

use crate::StoreError;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgresql,
    Sqlite,
}

/// Where the database is, read from a URL: `postgres://…` or
/// `postgresql://…` for PostgreSQL, `sqlite://PATH` for an SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    backend: Backend,
    /// What the backend's own driver is given.
    target: String,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgresql,
                target: raw.to_owned(),
            });
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err("an SQLite URL needs a file path, like sqlite://kluis.db".to_owned());
            }
            return Ok(Self {
                backend: Backend::Sqlite,
                target: path.to_owned(),
            });
        }
        Err("expected a URL starting with sqlite:// or postgres://".to_owned())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens one connection, reporting the driver's own reason on failure
    /// (diesel's generic `establish` tries every backend and hides it).
    pub fn establish(&self) -> Result<DbConnection, StoreError> {
        let connection = match self.backend {
            Backend::Postgresql => {
                PgConnection::establish(&self.target).map(DbConnection::Postgresql)
            }
            Backend::Sqlite => SqliteConnection::establish(&self.target).map(DbConnection::Sqlite),
        };
        let mut connection = connection.map_err(|error| StoreError::Connect(error.to_string()))?;
        prepare(&mut connection).map_err(|error| StoreError::Connect(error.to_string()))?;
        Ok(connection)
    }
}

/// Per-connection settings. SQLite keeps them per connection, so every pooled
/// connection sets them: WAL lets readers run beside the writer, the busy
/// timeout makes writers queue instead of failing, and foreign keys are off
/// unless asked for, and secure_delete overwrites what erasure removes
/// instead of leaving it in free pages.
fn prepare(connection: &mut DbConnection) -> diesel::QueryResult<()> {
    match connection {
        DbConnection::Sqlite(c) => c.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 15000; \
             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA secure_delete = ON;",
        ),
        DbConnection::Postgresql(c) => c.batch_execute("SET TIME ZONE 'UTC'"),
    }
}

pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConnection, StoreError> {
        self.url.establish()
    }

    fn is_valid(&self, connection: &mut DbConnection) -> Result<(), StoreError> {
        connection.ping().map_err(StoreError::from)
    }

    fn has_broken(&self, connection: &mut DbConnection) -> bool {
        connection.is_broken()
    }
}

pub type Pool = r2d2::Pool<ConnectionManager>;

pub fn build_pool(url: &DatabaseUrl, size: u32) -> Result<Pool, StoreError> {
    // Fail with the driver's reason before the pool hides it behind a
    // time-out.
    drop(url.establish()?);
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(30))
        .test_on_check_out(false)
        .build(ConnectionManager { url: url.clone() })
        .map_err(|error| StoreError::Connect(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend_by_scheme() {
        let pg = DatabaseUrl::parse("postgres://u@localhost/db").expect("valid");
        assert_eq!(pg.backend(), Backend::Postgresql);
        let pg = DatabaseUrl::parse("postgresql://u@localhost/db").expect("valid");
        assert_eq!(pg.backend(), Backend::Postgresql);
        let lite = DatabaseUrl::parse("sqlite://./data/kluis.db").expect("valid");
        assert_eq!(
            (lite.backend(), lite.target.as_str()),
            (Backend::Sqlite, "./data/kluis.db")
        );
    }

    #[test]
    fn unknown_schemes_and_memory_databases_are_refused() {
        for raw in ["mysql://x", "kluis.db", "sqlite://", "sqlite://:memory:"] {
            assert!(DatabaseUrl::parse(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys() {
        use diesel::RunQueryDsl;

        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .expect("valid");
        let DbConnection::Sqlite(mut connection) = url.establish().expect("connects") else {
            panic!("expected SQLite");
        };
        let mut read = |pragma: &str, column: &str| -> String {
            diesel::sql_query(format!(
                "SELECT CAST({column} AS TEXT) AS value FROM pragma_{pragma}"
            ))
            .get_result::<Setting>(&mut connection)
            .expect("pragma")
            .value
        };
        assert_eq!(read("journal_mode", "journal_mode"), "wal");
        assert_eq!(read("foreign_keys", "foreign_keys"), "1");
        assert_eq!(read("busy_timeout", "timeout"), "15000");
    }

    #[test]
    fn a_connection_failure_reports_the_drivers_reason() {
        let url = DatabaseUrl::parse("sqlite:///nonexistent-dir/deeper/kluis.db").expect("valid");
        let Err(StoreError::Connect(reason)) = url.establish() else {
            panic!("expected a connection error");
        };
        assert!(reason.contains("unable to open"), "{reason}");
    }
}
