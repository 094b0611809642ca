//! The kluis server: configuration, start-up, HTTP routes and the GraphQL
//! schema. The `kluis` binary in `main.rs` is a thin command line over this.

pub mod audit_writer;
pub mod auth;
pub mod authz;
pub mod clock;
pub mod config;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod import;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod monitor;
pub mod outbound;
pub mod outbox;
pub mod rate_limit;
pub mod reconcile;

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
        let (ring, source) = keys::load(&checked)?;
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

/// Gives back the slots of unpaid bookings whose deadline passed, every 30
/// seconds, so availability shows them free again (bookings also release
/// expired holds themselves before looking for a free slot), and deletes
/// the guests' access codes and access tokens whose time is over.
fn release_holds_periodically(store: Store, clock: clock::Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            let releasing = store.clone();
            let now = clock.now();
            match tokio::task::spawn_blocking(move || releasing.release_expired_holds(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(released)) => {
                    tracing::info!(released, "released unpaid holds past their deadline")
                }
                Ok(Err(error)) => tracing::warn!(%error, "releasing expired holds failed"),
                Err(error) => tracing::warn!(%error, "releasing expired holds failed"),
            }
            let purging = store.clone();
            match tokio::task::spawn_blocking(move || purging.purge_access_secrets(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "purging expired access codes failed"),
                Err(error) => tracing::warn!(%error, "purging expired access codes failed"),
            }
            let purging = store.clone();
            match tokio::task::spawn_blocking(move || purging.purge_expired(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "purging expired records failed"),
                Err(error) => tracing::warn!(%error, "purging expired records failed"),
            }
        }
    });
}

/// Asks the payment providers to delete the customer objects behind saved
/// cards; answers how many did. A provider that fails is logged (with the
/// gateway, not the guest) and not retried: the card data is theirs.
pub async fn forget_saved_cards(
    gateways: &plugins::Gateways,
    saved_cards: &[(String, String)],
) -> u32 {
    let mut asked = 0u32;
    for (gateway, reference) in saved_cards {
        if let Some(provider) = gateways.named(gateway) {
            match provider.forget(reference).await {
                Ok(()) => asked += 1,
                Err(error) => {
                    tracing::warn!(%error, %gateway, "the provider could not delete its customer object")
                }
            }
        }
    }
    asked
}

/// How long after start-up the first retention pass runs. Finding who is
/// due reads every guest of every venue (about 8 s of database time for a
/// million guests): not while a node is starting and warming its caches,
/// and not on every node of a rolling restart at once. A node that lives
/// this long has run it once.
const RETENTION_FIRST_RUN: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Drops card details past their venue's `payment_data_days` and
/// anonymizes guests past their venue's retention limit once an hour (the
/// first time ten minutes after start-up), so no one has to remember to
/// run it.
fn apply_retention_periodically(store: Store, clock: clock::Clock, gateways: plugins::Gateways) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + RETENTION_FIRST_RUN,
            std::time::Duration::from_secs(60 * 60),
        );
        loop {
            tick.tick().await;
            let now = clock.now();
            let dropping = store.clone();
            match tokio::task::spawn_blocking(move || dropping.drop_expired_card_details(now)).await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "dropping card details failed"),
                Err(error) => tracing::warn!(%error, "dropping card details failed"),
            }
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.run_retention(now, false)).await {
                Ok(Ok(run)) => {
                    forget_saved_cards(&gateways, &run.saved_cards).await;
                }
                Ok(Err(error)) => tracing::warn!(%error, "retention run failed"),
                Err(error) => tracing::warn!(%error, "retention run failed"),
            }
        }
    });
}

/// Publishes the audit chain's head every `minutes` (see
/// `publish_audit_head`), the first time at start-up.
fn publish_audit_head_periodically(store: Store, clock: clock::Clock, minutes: u32, webhook: bool) {
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(u64::from(minutes.max(1)) * 60);
        let mut tick = tokio::time::interval(every);
        let mut published: Option<store::AuditHead> = None;
        loop {
            tick.tick().await;
            if let Some(head) =
                publish_audit_head(&store, clock.now(), webhook, published.as_ref()).await
            {
                published = Some(head);
            }
        }
    });
}

/// Publishes the audit chain's head: to the log (INFO `audit head seq=…
/// hmac=…`) and, with an alert webhook, through the outbox as an
/// `audit.head` event. Whoever keeps the published heads can prove with
/// `kluis audit verify --head` that no entry up to them was removed: the
/// chain alone cannot show that its newest entries are gone. A head equal
/// to `last` (the one published before) is not sent again. Returns the
/// head, if the trail has one.
pub async fn publish_audit_head(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    webhook: bool,
    last: Option<&store::AuditHead>,
) -> Option<store::AuditHead> {
    let reading = store.clone();
    let head = match tokio::task::spawn_blocking(move || reading.audit_head()).await {
        Ok(Ok(head)) => head?,
        Ok(Err(error)) => {
            tracing::warn!(%error, "the audit head could not be read");
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "the audit head could not be read");
            return None;
        }
    };
    if last == Some(&head) {
        return Some(head);
    }
    tracing::info!(
        seq = head.seq,
        hmac = %head.hash,
        "audit head seq={} hmac={}",
        head.seq,
        head.hash
    );
    if webhook {
        let message = store::Outgoing::Webhook(store::Webhook {
            target: store::WebhookTarget::Alerts,
            event: "audit.head".to_owned(),
            occurred_at: now,
            data: serde_json::json!({
                "seq": head.seq,
                "hmac": head.hash,
                "head": head.to_string(),
            }),
        });
        let queueing = store.clone();
        match tokio::task::spawn_blocking(move || {
            queueing.enqueue("audit_head", None, &message, now)
        })
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the audit head could not be queued"),
            Err(error) => tracing::warn!(%error, "the audit head could not be queued"),
        }
    }
    Some(head)
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
        let tls = match (&checked.settings.tls_cert, &checked.settings.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        };
        let https = tls.is_some();
        let metrics = metrics::Metrics::new()?;
        let monitor = monitor::Monitor::new(
            store.clone(),
            &checked.settings.monitoring,
            Some(metrics.clone()),
        );
        let limiter = rate_limit::RateLimiter::new(
            store.clone(),
            &checked.settings.rate_limits,
            Some(monitor.clone()),
        );
        limiter.clone().sync_periodically(clock.clone());
        let authorizer =
            authz::Authorizer::load(&checked.settings.policy_dir, store.clone()).await?;
        authorizer.set_monitor(monitor.clone());
        authorizer.watch();
        let gateways = plugins::build_gateways(&checked.settings.payments)?;
        if !gateways.names().is_empty() {
            tracing::info!(gateways = ?gateways.names(), "payment gateways configured");
        }
        release_holds_periodically(store.clone(), clock.clone());
        reconcile::run_periodically(
            store.clone(),
            clock.clone(),
            gateways.clone(),
            Some(monitor.clone()),
        );
        apply_retention_periodically(store.clone(), clock.clone(), gateways.clone());
        publish_audit_head_periodically(
            store.clone(),
            clock.clone(),
            checked.settings.audit.publish_head_minutes,
            checked.settings.monitoring.alert_webhook_url.is_some(),
        );
        let couriers = outbox::Couriers::from_settings(&checked.settings)?;
        if couriers.mail.is_none() {
            tracing::warn!("no smtp_url: e-mails wait in the outbox until one is configured");
        }
        if checked.settings.outbox_delivery {
            outbox::deliver_periodically(store.clone(), couriers, clock.clone());
        }
        let audit =
            audit_writer::AuditWriter::start(store.clone()).map_err(StartError::AuditWriter)?;
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
                // Browsers that once saw kluis over HTTPS never try plain HTTP.
                .wrap(actix_web::middleware::Condition::new(
                    https,
                    actix_web::middleware::DefaultHeaders::new().add((
                        "Strict-Transport-Security",
                        "max-age=63072000; includeSubDomains",
                    )),
                ))
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
/// token with it. Serving nodes pick up the new version from the key file
/// within seconds; rows they write meanwhile are re-encrypted in a later
/// batch. Calls `report` after every batch.
pub async fn rotate_keys(
    checked: &Checked,
    report: impl Fn(store::RotationProgress),
) -> Result<store::RotationProgress, StartError> {
    let (store, source) = open_store(checked).await?;
    let path = source
        .file()
        .ok_or(keys::KeyError::RotationNeedsFile)?
        .to_path_buf();
    let before = {
        let store = store.clone();
        run_blocking(move || Ok(store.rotation_progress()?)).await?
    };
    if before.remaining == 0 {
        let store = store.clone();
        run_blocking(move || {
            let ring = keys::add_key_version(&path)?;
            tracing::info!(version = ring.current_version(), "added a key version");
            store.keys().replace(ring);
            store.verify_keys(chrono::Utc::now())?;
            Ok(())
        })
        .await?;
    } else {
        tracing::info!(
            remaining = before.remaining,
            version = before.target_version,
            "resuming an unfinished rotation"
        );
    }
    let mut resealed: u64 = 0;
    loop {
        let batch = store.clone();
        let (moved, progress) =
            run_blocking(move || Ok((batch.rotate_batch()?, batch.rotation_progress()?))).await?;
        resealed += moved;
        report(progress);
        if progress.remaining == 0 {
            // Rotation opens every sealed value: one entry in the trail
            // says who did it and when (the rows are all of them).
            let columns = store::SEALED
                .iter()
                .flat_map(|t| {
                    t.columns
                        .iter()
                        .map(move |c| format!("{}.{}", t.table, c.column))
                })
                .collect::<Vec<_>>()
                .join(",");
            let auditing = store.clone();
            run_blocking(move || {
                Ok(auditing.audit(
                    &[store::AuditEvent {
                        principal: "cli".to_owned(),
                        action: "rotate".to_owned(),
                        object: format!("keys:v{}", progress.target_version),
                        fields: format!("{columns};rows={resealed}"),
                        venue_id: None,
                    }],
                    chrono::Utc::now(),
                )?)
            })
            .await?;
            // The trail so far, its rotation entry included, is vouched
            // for under the new version: the old one can be retired
            // without leaving older entries unverifiable.
            let checkpointing = store.clone();
            let checkpoint =
                run_blocking(move || Ok(checkpointing.checkpoint_audit(chrono::Utc::now())?))
                    .await?;
            match checkpoint {
                store::Checkpointed::Written {
                    until_seq,
                    key_version,
                } => tracing::info!(until_seq, key_version, "audit trail checkpoint written"),
                store::Checkpointed::Broken(broken) => tracing::error!(
                    %broken,
                    "the audit trail is broken: no checkpoint written, and older key versions cannot be retired until it is investigated"
                ),
            }
            report_unmovable(&store).await?;
            return Ok(progress);
        }
        if moved == 0 {
            // Rows held by another rotation, or written by a node that has
            // not reloaded the key file yet: give them a moment.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Says what a rotation cannot move: keyed hashes of live API keys (the
/// secret is needed to re-key them; a partner's next request does it) and
/// unexpired access codes (they are waited for). Neither is left silently:
/// `kluis keys retire` refuses until they are gone.
async fn report_unmovable(store: &Store) -> Result<(), StartError> {
    let store = store.clone();
    run_blocking(move || {
        let now = chrono::Utc::now();
        for (id, version) in store.api_keys_on_older_versions(now)? {
            tracing::warn!(
                api_key = %id,
                version,
                "API key still hashed under an older key version: it moves when next used; otherwise revoke it and issue a new one before retiring that version"
            );
        }
        let current = store.keys().current();
        for version in current.versions().filter(|v| *v != current.current_version()) {
            let usage = store.key_usage(version, now)?;
            if usage.access_codes > 0 {
                tracing::info!(
                    version,
                    codes = usage.access_codes,
                    valid_until = ?usage.codes_valid_until,
                    "access codes hashed under an older key version are waiting to expire"
                );
            }
        }
        Ok(())
    })
    .await
}

/// `kluis keys retire VERSION`: removes an old key version from the key
/// file once nothing in the database needs it; otherwise refuses and
/// lists what still does (sealed values per table and column, live API
/// keys by id, access codes and when they expire). `now` decides which
/// access codes and API keys are still alive.
pub async fn retire_key(
    checked: &Checked,
    version: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<store::KeyUsage, StartError> {
    let (store, source) = open_store(checked).await?;
    let path = source
        .file()
        .ok_or(keys::KeyError::RetireNeedsFile)?
        .to_path_buf();
    let ring = store.keys().current();
    if version == ring.current_version() {
        return Err(keys::KeyError::RetireCurrent(version).into());
    }
    if !ring.versions().any(|v| v == version) {
        return Err(keys::KeyError::NoSuchVersion(version).into());
    }
    run_blocking(move || {
        // The audit entries whose HMACs use the version are vouched for by
        // a checkpoint under the current one first; a broken trail stops
        // here, while every key that can prove what was changed is held.
        if let store::Checkpointed::Broken(broken) = store.checkpoint_audit(now)? {
            return Err(StartError::AuditBroken(broken));
        }
        // The database forgets the version first: were the key file
        // rewritten first and the command stopped in between, servers
        // would refuse to start (the database would name a version the
        // file lacks).
        let usage = store.retire_key_version(version, now)?;
        if usage.blocks_retirement() {
            return Err(StartError::KeyStillNeeded {
                version,
                needs: usage.describe(),
            });
        }
        let ring = keys::remove_key_version(&path, version)?;
        store.keys().replace(ring);
        // A node that started in between recorded the version's check
        // value again; it is gone from the file now, so forget it again.
        store.retire_key_version(version, now)?;
        store.audit(
            &[store::AuditEvent {
                principal: "cli".to_owned(),
                action: "retire".to_owned(),
                object: format!("keys:v{version}"),
                fields: String::new(),
                venue_id: None,
            }],
            chrono::Utc::now(),
        )?;
        Ok(usage)
    })
    .await
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
