//! The kluis server: configuration, start-up, HTTP routes and the GraphQL
//! schema. The `kluis` binary in `main.rs` is a thin command line over this.

pub mod config;
pub mod graphql;
pub mod http;
pub mod import;

use std::net::TcpListener;

use actix_web::{App, HttpServer, web};
use config::{Checked, Environment};
use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Import(#[from] import::ImportError),
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// Connects to the database and brings its schema up to date.
pub async fn open_store(checked: &Checked) -> Result<Store, StartError> {
    let url = checked.database.clone();
    let pool_size = checked.settings.pool_size;
    run_blocking(move || {
        let store = Store::connect(&url, pool_size)?;
        let applied = store.migrate()?;
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "applied database migrations");
        }
        Ok(store)
    })
    .await
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StartError> + Send + 'static,
) -> Result<T, StartError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StartError::Task(e.to_string()))?
}

/// Imports venue definitions (the `venue import` command, and the demo seed).
pub async fn import_venues(
    store: &Store,
    definitions: Vec<store::VenueDefinition>,
) -> Result<store::ImportReport, StartError> {
    let store = store.clone();
    run_blocking(move || Ok(store.import_venues(&definitions, chrono::Utc::now())?)).await
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
}

impl Application {
    pub async fn build(checked: Checked) -> Result<Self, StartError> {
        let store = open_store(&checked).await?;
        let env = checked.settings.env;
        if env == Environment::Development {
            let empty = {
                let store = store.clone();
                run_blocking(move || Ok(store.has_no_venues()?)).await?
            };
            if empty {
                import_venues(&store, import::demo_venue()?).await?;
                tracing::warn!(
                    "the database was empty: seeded the demo venue `demo-bistro` (development mode only)"
                );
            }
        }
        let listener = TcpListener::bind(checked.bind).map_err(|source| StartError::Listen {
            address: checked.bind.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                address: checked.bind.to_string(),
                source,
            })?
            .port();
        let state = web::Data::new(http::ServerState {
            schema: graphql::build(Some(store.clone()), env),
            store,
            env,
        });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(http::routes))
                .listen(listener)
                .map_err(|source| StartError::Listen {
                    address: checked.bind.to_string(),
                    source,
                })?
                // In-flight requests get this long to finish after SIGTERM.
                .shutdown_timeout(30)
                .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
