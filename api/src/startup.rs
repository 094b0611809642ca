//! Start-up: opening the store with its keys, building the server with
//! its background jobs, and the one-shot work the command line asks of an
//! opened store.

use std::net::TcpListener;

use actix_web::{App, HttpServer, web};
use app::{clock, import, keys, mail, monitor, outbox, reconcile};

use crate::config::{Checked, Environment};
use crate::http::{audit_writer, metrics, rate_limit};
use crate::{authz, graphql, http};
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
    #[error("cannot start the audit writer: {0}")]
    AuditWriter(std::io::Error),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("access policy refused: {0}")]
    Policy(String),
    #[error(transparent)]
    Payments(#[from] plugins::PluginError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error("start-up task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    App(app::Error),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// `kluis keys retire` found data that still needs the version.
    #[error("key version {version} is still needed:\n  - {}", .needs.join("\n  - "))]
    KeyStillNeeded { version: u32, needs: Vec<String> },
    /// `kluis keys retire` found the audit trail broken: retiring a key
    /// now would leave the tampering unprovable, so it waits.
    #[error(
        "the audit trail is broken ({0}); key versions are not retired until it is investigated (`kluis audit verify`)"
    )]
    AuditBroken(store::BrokenLink),
}

impl From<app::Error> for StartError {
    fn from(error: app::Error) -> Self {
        match error {
            app::Error::Store(error) => Self::Store(error),
            app::Error::Keys(error) => Self::Keys(error),
            app::Error::KeyStillNeeded { version, needs } => {
                Self::KeyStillNeeded { version, needs }
            }
            app::Error::AuditBroken(broken) => Self::AuditBroken(broken),
            app::Error::Task(reason) => Self::Task(reason),
            app::Error::Policy(reason) => Self::Policy(reason),
            other => Self::App(other),
        }
    }
}

impl StartError {
    /// Whether the fault is in the settings or keys given (exit status 2)
    /// rather than in the environment.
    pub fn is_bad_setting(&self) -> bool {
        matches!(
            self,
            Self::Keys(_) | Self::Store(StoreError::KeyMismatch(_))
        )
    }
}

/// Loads the key ring, connects to the database, brings its schema up to
/// date and checks that the keys fit the data.
pub async fn open_store(checked: &Checked) -> Result<(Store, keys::KeySource), StartError> {
    let checked = checked.clone();
    run_blocking(move || {
        let (ring, source) = keys::load(&checked.settings.keys())?;
        let shared = match source.file() {
            Some(path) => {
                let path = path.to_path_buf();
                domain::crypto::SharedKeyRing::with_reloader(
                    ring,
                    std::sync::Arc::new(move || {
                        keys::read_key_file(&path).map_err(|e| e.to_string())
                    }),
                )
            }
            None => domain::crypto::SharedKeyRing::new(ring),
        };
        let store = Store::connect(
            &checked.database,
            &checked.key_store,
            checked.settings.pool_size,
            shared,
        )?;
        let applied = store.migrate()?;
        if !applied.is_empty() {
            tracing::info!(count = applied.len(), "applied database migrations");
        }
        store.verify_keys(chrono::Utc::now())?;
        Ok((store, source))
    })
    .await
}

/// Applies every erasure the key store records to the data database
/// (`kluis erasures replay`, after restoring a data backup).
pub async fn replay_erasures(checked: &Checked) -> Result<store::Replay, StartError> {
    let (store, _) = open_store(checked).await?;
    run_blocking(move || Ok(store.replay_erasures()?)).await
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

/// Reads a PEM certificate chain and private key into a rustls server
/// configuration (ring provider, TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Tls(format!("cannot read certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("cannot read private key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StartError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, private_key)
    .map_err(|e| StartError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    metrics_server: Option<actix_web::dev::Server>,
    metrics_port: Option<u16>,
}

impl Application {
    pub async fn build(checked: Checked) -> Result<Self, StartError> {
        Self::build_with_clock(checked, clock::Clock::system()).await
    }

    /// Builds with a given clock (tests move it to cross deadlines).
    pub async fn build_with_clock(
        checked: Checked,
        clock: clock::Clock,
    ) -> Result<Self, StartError> {
        let (store, key_source) = open_store(&checked).await?;
        keys::watch(&key_source, store.keys().clone());
        let env = checked.settings.env;
        if env == Environment::Development {
            let empty = {
                let store = store.clone();
                run_blocking(move || Ok(store.has_no_venues()?)).await?
            };
            if empty {
                import_venues(&store, import::demo_venue()?).await?;
                tracing::warn!(
                    "the database was empty: seeded the demo venues `demo-bistro` and `demo-clinic` (development mode only)"
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
        let tls = match (&checked.settings.tls_cert, &checked.settings.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        };
        let https = tls.is_some();
        let metrics = metrics::Metrics::new()?;
        let monitor = monitor::Monitor::new(
            store.clone(),
            &checked.settings.monitoring,
            Some(std::sync::Arc::new(metrics.clone())),
        );
        let limiter = rate_limit::RateLimiter::new(
            store.clone(),
            &checked.settings.rate_limits,
            Some(monitor.clone()),
        );
        limiter.clone().sync_periodically(clock.clone());
        let authorizer = authz::load(&checked.settings.policy_dir, store.clone()).await?;
        authorizer.set_monitor(monitor.clone());
        authorizer.watch();
        let gateways = plugins::build_gateways(&checked.settings.payments)?;
        if !gateways.names().is_empty() {
            tracing::info!(gateways = ?gateways.names(), "payment gateways configured");
        }
        app::jobs::release_holds_periodically(store.clone(), clock.clone());
        reconcile::run_periodically(
            store.clone(),
            clock.clone(),
            gateways.clone(),
            Some(monitor.clone()),
        );
        app::jobs::apply_retention_periodically(store.clone(), clock.clone(), gateways.clone());
        app::jobs::publish_audit_head_periodically(
            store.clone(),
            clock.clone(),
            checked.settings.audit.publish_head_minutes,
            checked.settings.monitoring.alert_webhook_url.is_some(),
        );
        let couriers = outbox::Couriers::from_settings(&checked.settings.outbox())?;
        if couriers.mail.is_none() {
            tracing::warn!("no smtp_url: e-mails wait in the outbox until one is configured");
        }
        if checked.settings.outbox_delivery {
            outbox::deliver_periodically(store.clone(), couriers, clock.clone());
        }
        let audit =
            audit_writer::AuditWriter::start(store.clone()).map_err(StartError::AuditWriter)?;
        let origins = web::Data::new(http::cors::AllowedOrigins::new(
            checked.settings.http.origins(env)?,
            env,
            store.clone(),
        ));
        let state = web::Data::new(http::ServerState {
            schema: graphql::build(
                Some(graphql::Services {
                    store: store.clone(),
                    clock: clock.clone(),
                    gateways: gateways.clone(),
                    authorizer: authorizer.clone(),
                    session_length: chrono::Duration::hours(i64::from(
                        checked.settings.session_hours,
                    )),
                    monitor: Some(monitor.clone()),
                    outbound: checked.settings.outbound,
                }),
                env,
            ),
            store,
            env,
            authorizer,
            gateways,
            clock,
            monitor: Some(monitor),
            metrics,
            limiter: limiter.clone(),
            audit,
            admission: std::sync::Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(checked.settings.rate_limits.max_in_flight).unwrap_or(64),
            )),
            queue_wait: std::time::Duration::from_millis(u64::from(
                checked.settings.rate_limits.queue_wait_ms,
            )),
            metrics_access: http::MetricsAccess {
                token: checked
                    .settings
                    .metrics_token
                    .as_ref()
                    .map(|token| token.0.clone()),
                open_on_main: env == Environment::Development && checked.metrics_bind.is_none(),
            },
        });
        let metrics_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(origins.clone())
                // Browsers that once saw kluis over HTTPS never try plain HTTP.
                .wrap(actix_web::middleware::Condition::new(
                    https,
                    actix_web::middleware::DefaultHeaders::new().add((
                        "Strict-Transport-Security",
                        "max-age=63072000; includeSubDomains",
                    )),
                ))
                .wrap(actix_web::middleware::from_fn(http::cors::cors))
                .configure(http::routes)
        });
        let listening = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        };
        let server = listening
            .map_err(|source| StartError::Listen {
                address: checked.bind.to_string(),
                source,
            })?
            // In-flight requests get this long to finish after SIGTERM.
            .shutdown_timeout(30)
            .run();
        let (metrics_server, metrics_port) = match checked.metrics_bind {
            None => (None, None),
            Some(address) => {
                let listen_error = |source| StartError::Listen {
                    address: address.to_string(),
                    source,
                };
                let listener = TcpListener::bind(address).map_err(listen_error)?;
                let port = listener.local_addr().map_err(listen_error)?.port();
                let state = metrics_state;
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .app_data(http::MetricsListener)
                        .configure(http::metrics_routes)
                })
                .workers(1)
                .listen(listener)
                .map_err(listen_error)?
                .run();
                (Some(server), Some(port))
            }
        };
        Ok(Self {
            port,
            server,
            metrics_server,
            metrics_port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `metrics_bind` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until SIGTERM or SIGINT, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some(metrics) = self.metrics_server {
            tokio::spawn(metrics);
        }
        self.server.await
    }
}

/// `kluis keys rotate`: finishes an interrupted rotation, or adds a key
/// version to the key file and re-encrypts every sealed value and lookup
/// token with it (see [`app::rotation::rotate`]). Calls `report` after
/// every batch.
pub async fn rotate_keys(
    checked: &Checked,
    report: impl Fn(store::RotationProgress),
) -> Result<store::RotationProgress, StartError> {
    let (store, source) = open_store(checked).await?;
    Ok(app::rotation::rotate(&store, &source, report).await?)
}

/// `kluis keys retire VERSION`: removes an old key version from the key
/// file once nothing in the database needs it (see
/// [`app::rotation::retire`]).
pub async fn retire_key(
    checked: &Checked,
    version: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<store::KeyUsage, StartError> {
    let (store, source) = open_store(checked).await?;
    Ok(app::rotation::retire(&store, &source, version, now).await?)
}

/// `kluis user add`: creates a staff account (the first admin, usually).
pub async fn add_staff_account(
    checked: &Checked,
    email: &str,
    password: &str,
    role: &str,
    venue: Option<&str>,
) -> Result<String, AddStaffError> {
    let email = domain::Email::parse("email", email)?;
    let password = domain::auth::Password::parse(password)?;
    let role = domain::auth::Role::parse(role)?;
    if !role.is_assignable() {
        return Err(AddStaffError::Domain(domain::DomainError::invalid(
            "role",
            "guest and anonymous cannot be assigned",
        )));
    }
    let venue = match venue {
        None | Some("*") => domain::auth::EVERY_VENUE.to_owned(),
        Some(raw) => domain::VenueId::parse(raw)?.to_string(),
    };
    let (store, _) = open_store(checked).await?;
    let id = run_blocking(move || {
        let hash = password.hash().map_err(StoreError::Domain)?;
        Ok(store.create_staff(&email, &hash, role.as_str(), &venue, chrono::Utc::now())?)
    })
    .await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum AddStaffError {
    #[error(transparent)]
    Domain(#[from] domain::DomainError),
    #[error(transparent)]
    Start(#[from] StartError),
}
