//! Test harness: the real kluis server on port 0 with a fresh database per
//! test (an SQLite file in a temporary folder, or a PostgreSQL schema of its
//! own), and a small GraphQL client. Server logs go to the test output only
//! when `TEST_LOG` is set.

use std::sync::Once;

use anyhow::Context as _;
use api::config::{Environment, Settings};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The text of a file under `tests/fixtures/`, such as a venue file.
#[macro_export]
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $name))
    };
}

/// The venues every test server starts with (unless its options say
/// otherwise), among them `one-table`: open around the clock in UTC with
/// one-hour bookings on the hour, no notice period and a single four-seat
/// table, so that every test can book "tomorrow 10:00" and knows exactly
/// what is free.
pub const ONE_TABLE_VENUE: &str = fixture!("one-table.toml");

/// A venue that asks a 10 EUR deposit per guest, held 15 minutes, and one
/// that asks a card guarantee.
pub const DEPOSIT_VENUE: &str = fixture!("deposit.toml");

pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_kluis_tests";

/// Payment settings pointing Stripe at a local fake.
pub fn stripe_config(
    base_url: &str,
    timeout_seconds: u64,
) -> anyhow::Result<plugins::PaymentsConfig> {
    let text = format!(
        "[stripe]\nsecret_key = \"sk_test_kluis\"\nwebhook_secret = \"{STRIPE_WEBHOOK_SECRET}\"\n\
         base_url = \"{base_url}\"\ntimeout_seconds = {timeout_seconds}\n[onsite]\nenabled = true\n"
    );
    toml_config(&text)
}

/// PayPal against a local fake at `base_url`.
pub fn paypal_config(base_url: &str) -> anyhow::Result<plugins::PaymentsConfig> {
    toml_config(&format!(
        "[paypal]\nclient_id = \"client\"\nclient_secret = \"secret\"\nwebhook_id = \"WH-1\"\n\
         base_url = \"{base_url}\"\ntimeout_seconds = 5\n"
    ))
}

fn toml_config(text: &str) -> anyhow::Result<plugins::PaymentsConfig> {
    use figment::providers::Format;
    Ok(figment::Figment::from(figment::providers::Toml::string(text)).extract()?)
}

/// One of Stripe's own sample objects (`specs/stripe`), with fields
/// replaced.
pub fn stripe_fixture(resource: &str, changes: Value) -> anyhow::Result<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/stripe/fixtures3.json"
    );
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut object = all["resources"][resource].clone();
    if let (Some(target), Some(changes)) = (object.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
    anyhow::ensure!(object.is_object(), "no Stripe fixture for {resource}");
    Ok(object)
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of the `metrics_bind` listener, if asked for.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub backend: Backend,
    database_url: String,
    checked: api::config::Checked,
    dir: tempfile::TempDir,
    clock: api::clock::Clock,
    /// On PostgreSQL, the schemas of the data and of the key store. The key
    /// store's is shared with the servers of copies (`serve_copy`): the
    /// last server to go drops it.
    _data_schema: Option<std::sync::Arc<PostgresSchema>>,
    key_store_schema: Option<std::sync::Arc<PostgresSchema>>,
}

/// Everything every server in this test process logged, at debug level for
/// kluis's own crates: canary tests search it for personal data.
static CAPTURED_LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct CaptureWriter {
    echo: bool,
}

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = CAPTURED_LOGS.lock() {
            logs.extend_from_slice(buf);
        }
        if self.echo {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CaptureWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Logs are always captured; `TEST_LOG` also prints them.
        let _ignored = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,api=debug,store=debug,domain=debug,kluis=debug",
            ))
            .with_ansi(false)
            .with_writer(CaptureWriter {
                echo: std::env::var_os("TEST_LOG").is_some(),
            })
            .try_init();
    });
}

/// What the servers of this process have logged so far.
pub fn captured_logs() -> Vec<u8> {
    CAPTURED_LOGS
        .lock()
        .map(|logs| logs.clone())
        .unwrap_or_default()
}

/// Fails when `needle` occurs in `haystack` as written, lower-cased or
/// upper-cased.
pub fn assert_absent(haystack: &[u8], needle: &str, place: &str) {
    for form in [
        needle.to_owned(),
        needle.to_lowercase(),
        needle.to_uppercase(),
    ] {
        let found = haystack
            .windows(form.len())
            .any(|window| window == form.as_bytes());
        assert!(!found, "`{form}` found in {place}");
    }
}

/// The PostgreSQL server tests run against, without TLS unless the URL
/// asks for it: the server is on loopback, and a test process that ends
/// while pooled TLS connections are still open can crash in libcrypto's
/// exit-time clean-up (Debian's server offers TLS, so libpq's default
/// `prefer` takes it) after every test has passed.
pub fn postgres_url() -> String {
    let url = std::env::var("KLUIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/kluis_test".to_owned());
    if url.contains("sslmode=") {
        return url;
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

/// A PostgreSQL schema made for one test. Dropped with all it holds when
/// the last server of the test that uses it goes, so that test runs do not
/// leave their schemas behind in the shared database.
struct PostgresSchema {
    name: String,
    /// A URL whose connections use this schema (with `public` behind it,
    /// where btree_gist lives).
    url: String,
}

impl PostgresSchema {
    /// Creates an empty schema.
    fn create() -> anyhow::Result<Self> {
        let admin_url = postgres_url();
        let mut admin = PgConnection::establish(&admin_url)
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        // The migration creates btree_gist where it runs; with a schema per
        // test it must already exist in `public`, created once per test
        // process.
        static EXTENSION: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut created = EXTENSION
            .lock()
            .map_err(|_| anyhow::anyhow!("extension lock poisoned"))?;
        if !*created {
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
                .execute(&mut admin)
                .context("cannot create btree_gist in public")?;
            *created = true;
        }
        drop(created);
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE SCHEMA {name}")).execute(&mut admin)?;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{name}%2Cpublic");
        Ok(Self { name, url })
    }

    fn drop_now(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::establish(&postgres_url())?;
        // A connection still busy in the schema must not hang the test's
        // end: give up and leave the schema instead.
        diesel::sql_query("SET lock_timeout = '10s'").execute(&mut admin)?;
        diesel::sql_query(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .execute(&mut admin)?;
        Ok(())
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        // Runs while a failing test unwinds too: report, never panic.
        if let Err(error) = self.drop_now() {
            eprintln!("test schema {} left behind: {error:#}", self.name);
        }
    }
}

/// A copy of a test's data database (see `TestApp::copy_database`).
pub struct DatabaseCopy {
    url: String,
    dir: tempfile::TempDir,
    schema: Option<PostgresSchema>,
}

pub struct Options {
    pub env: Environment,
    pub venues: &'static str,
    pub tls: Option<TlsFiles>,
    pub payments: plugins::PaymentsConfig,
    pub monitoring: api::config::Monitoring,
    pub metrics_bind: Option<String>,
    pub metrics_token: Option<api::config::SecretSetting>,
    pub rate_limits: api::config::RateLimits,
    /// Private targets are allowed by default: the fakes that receive
    /// webhooks, alerts and e-mail listen on 127.0.0.1. Tests of the
    /// refusal turn it off.
    pub outbound: api::config::Outbound,
    /// Origins allowed across sites (`[http]`).
    pub http: api::config::Http,
}

/// PEM files for a server that speaks HTTPS.
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: Environment::Production,
            venues: ONE_TABLE_VENUE,
            tls: None,
            payments: plugins::PaymentsConfig::default(),
            monitoring: api::config::Monitoring::default(),
            metrics_bind: None,
            metrics_token: None,
            rate_limits: api::config::RateLimits::default(),
            outbound: api::config::Outbound {
                allow_private_targets: true,
            },
            http: api::config::Http::default(),
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> anyhow::Result<Self> {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> anyhow::Result<Self> {
        init_logging();
        let dir = tempfile::tempdir()?;
        // The key store: on SQLite the default file next to the data file,
        // on PostgreSQL a schema of its own.
        let (data_schema, key_store_schema) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => (
                Some(std::sync::Arc::new(
                    tokio::task::spawn_blocking(PostgresSchema::create).await??,
                )),
                Some(std::sync::Arc::new(
                    tokio::task::spawn_blocking(PostgresSchema::create).await??,
                )),
            ),
        };
        let database_url = match &data_schema {
            Some(schema) => schema.url.clone(),
            None => format!("sqlite://{}", dir.path().join("kluis.db").display()),
        };
        let key_store_url = key_store_schema.as_ref().map(|schema| schema.url.clone());
        let key_file = dir.path().join("kluis.key");
        api::keys::generate_key_file(&key_file)?;
        // Each test edits its own copy of the shipped policy.
        let policy_dir = dir.path().join("policies");
        std::fs::create_dir_all(&policy_dir)?;
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        for file in ["model.conf", "policy.csv"] {
            std::fs::copy(shipped.join(file), policy_dir.join(file))?;
        }
        let checked = Settings {
            database_url: database_url.clone(),
            key_store_url,
            bind: "127.0.0.1:0".to_owned(),
            env: options.env,
            pool_size: 8,
            log: "info".to_owned(),
            master_key: None,
            key_file: Some(key_file),
            tls_cert: options.tls.as_ref().map(|tls| tls.cert.clone()),
            tls_key: options.tls.as_ref().map(|tls| tls.key.clone()),
            // Tests speak plain HTTP on loopback unless they ask for TLS.
            behind_proxy: true,
            policy_dir,
            session_hours: 12,
            smtp_url: None,
            mail_from: "kluis <noreply@kluis.test>".to_owned(),
            // No worker: tests deliver the outbox themselves, when they
            // choose (`deliver_mail`, `deliver_webhooks`).
            outbox_delivery: false,
            payments: options.payments,
            metrics_bind: options.metrics_bind.clone(),
            metrics_token: options.metrics_token.clone(),
            log_format: api::config::LogFormat::Text,
            monitoring: options.monitoring,
            audit: api::config::Audit::default(),
            rate_limits: options.rate_limits,
            outbound: options.outbound,
            http: options.http,
        }
        .check()?;
        let (store, _) = api::open_store(&checked).await?;
        api::import_venues(
            &store,
            api::import::parse("test-venues.toml", options.venues)?,
        )
        .await?;
        let clock = api::clock::Clock::system();
        let application =
            api::Application::build_with_clock(checked.clone(), clock.clone()).await?;
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics_address = application
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(application.run_until_stopped());
        Ok(Self {
            metrics_address,
            address,
            client: reqwest::Client::new(),
            backend,
            database_url,
            checked,
            dir,
            clock,
            _data_schema: data_schema,
            key_store_schema,
        })
    }

    /// Moves the server's clock forward (hold deadlines, notice periods).
    /// A second `kluis serve` on another port against the same database,
    /// with the same settings and clock: another node of one deployment.
    pub async fn another_node(&self) -> anyhow::Result<String> {
        let application =
            api::Application::build_with_clock(self.checked.clone(), self.clock.clone()).await?;
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Ok(address)
    }

    /// Sends a GraphQL request to another node (see `another_node`).
    pub async fn gql_at(
        &self,
        node: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .post(format!("{node}/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?.json().await?)
    }

    /// A store on this server's database, for setting up history a test
    /// cannot wait for.
    pub async fn store(&self) -> anyhow::Result<store::Store> {
        Ok(api::open_store(&self.checked).await?.0)
    }

    /// The server's clock now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// Recomputes the audit trail's HMAC chain, as `kluis audit verify`.
    pub async fn verify_audit(&self) -> anyhow::Result<(u64, Option<store::BrokenLink>)> {
        self.verify_audit_against(None).await
    }

    /// As `kluis audit verify --head SEQ:HMAC`: the chain must also still
    /// reach the head published earlier.
    pub async fn verify_audit_against(
        &self,
        head: Option<store::AuditHead>,
    ) -> anyhow::Result<(u64, Option<store::BrokenLink>)> {
        let (store, _) = api::open_store(&self.checked).await?;
        let verification =
            tokio::task::spawn_blocking(move || store.verify_audit(head.as_ref())).await??;
        Ok((verification.entries, verification.broken))
    }

    /// Applies the retention limits as of `days` days from now, as the
    /// hourly job and `kluis retention run` do.
    pub async fn run_retention(
        &self,
        days: i64,
        dry_run: bool,
    ) -> anyhow::Result<store::RetentionRun> {
        let (store, _) = api::open_store(&self.checked).await?;
        let at = chrono::Utc::now() + chrono::Duration::days(days);
        let run = tokio::task::spawn_blocking(move || store.run_retention(at, dry_run)).await??;
        let gateways = plugins::build_gateways(&self.checked.settings.payments)?;
        api::forget_saved_cards(&gateways, &run.saved_cards).await;
        Ok(run)
    }

    /// One run of the payment reconciliation job, as every node makes it
    /// every few minutes, at the app clock's now.
    pub async fn reconcile_payments(&self) -> anyhow::Result<api::reconcile::Report> {
        let (store, _) = api::open_store(&self.checked).await?;
        let gateways = plugins::build_gateways(&self.checked.settings.payments)?;
        Ok(api::reconcile::run_once(&store, &gateways, None, self.clock.now()).await?)
    }

    /// Queues an e-mail in this server's outbox.
    pub async fn enqueue_mail(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> anyhow::Result<String> {
        let (store, _) = api::open_store(&self.checked).await?;
        let mail = store::Mail {
            to: domain_email(to)?,
            subject: subject.to_owned(),
            body: body.to_owned(),
        };
        let now = self.clock.now();
        Ok(tokio::task::spawn_blocking(move || {
            store.enqueue("test", None, &store::Outgoing::Email(mail), now)
        })
        .await??)
    }

    /// One delivery pass over the outbox through `smtp_url`, as the
    /// server's worker makes every few seconds, at the app clock's now.
    pub async fn deliver_mail(&self, smtp_url: &str) -> anyhow::Result<api::outbox::Delivery> {
        self.deliver_mail_resolving(smtp_url, &[]).await
    }

    /// `deliver_mail` with host names resolved through a fixed table
    /// (`name`, `address`) instead of the system's resolver: a name that
    /// points inside the network, without touching DNS.
    pub async fn deliver_mail_resolving(
        &self,
        smtp_url: &str,
        names: &[(&str, &str)],
    ) -> anyhow::Result<api::outbox::Delivery> {
        let (store, _) = api::open_store(&self.checked).await?;
        let mut settings = self.checked.settings.clone();
        settings.smtp_url = Some(
            figment::Figment::from(figment::providers::Serialized::default(
                "smtp_url", smtp_url,
            ))
            .extract_inner("smtp_url")?,
        );
        let couriers =
            api::outbox::Couriers::with_lookup(&settings.outbox(), fixed_lookup(names)?)?;
        Ok(api::outbox::deliver_due(&store, &couriers, self.clock.now()).await?)
    }

    /// One webhook delivery pass (as `deliver_webhooks`) with host names
    /// resolved through a fixed table (`name`, `address`).
    pub async fn deliver_webhooks_resolving(
        &self,
        names: &[(&str, &str)],
    ) -> anyhow::Result<api::outbox::Delivery> {
        let (store, _) = api::open_store(&self.checked).await?;
        let mut couriers = api::outbox::Couriers::with_lookup(
            &self.checked.settings.outbox(),
            fixed_lookup(names)?,
        )?;
        couriers.mail = None;
        Ok(api::outbox::deliver_due(&store, &couriers, self.clock.now()).await?)
    }

    /// Queues a webhook to a venue's endpoint, as a booking would.
    pub async fn enqueue_webhook(&self, venue_id: &str) -> anyhow::Result<String> {
        let (store, _) = api::open_store(&self.checked).await?;
        let webhook = store::Webhook {
            target: store::WebhookTarget::Venue {
                venue_id: venue_id.to_owned(),
            },
            event: "reservation.created".to_owned(),
            occurred_at: self.clock.now(),
            data: json!({ "reservation_id": "test" }),
        };
        let venue = domain::VenueId::parse(venue_id)?;
        let now = self.clock.now();
        Ok(tokio::task::spawn_blocking(move || {
            store.enqueue(
                "webhook",
                Some(venue),
                &store::Outgoing::Webhook(webhook),
                now,
            )
        })
        .await??)
    }

    /// One delivery pass as a node without SMTP in production makes it:
    /// webhooks leave, e-mails stay.
    pub async fn deliver_webhooks(&self) -> anyhow::Result<api::outbox::Delivery> {
        let (store, _) = api::open_store(&self.checked).await?;
        let mut couriers = api::outbox::Couriers::from_settings(&self.checked.settings.outbox())?;
        couriers.mail = None;
        Ok(api::outbox::deliver_due(&store, &couriers, self.clock.now()).await?)
    }

    /// Where an outbox message stands.
    pub async fn outbox_status(&self, id: &str) -> anyhow::Result<Option<store::OutboxStatus>> {
        let (store, _) = api::open_store(&self.checked).await?;
        let id = id.to_owned();
        Ok(tokio::task::spawn_blocking(move || store.outbox_status(&id)).await??)
    }

    /// This server's copy of the policy folder, for edit tests.
    pub fn policy_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("policies")
    }

    /// Creates a staff account with a role in one venue (by slug) or every
    /// venue, logs it in and returns its bearer token.
    pub async fn staff(&self, role: &str, venue_slug: Option<&str>) -> anyhow::Result<String> {
        let (email, password) = self.staff_account(role, venue_slug).await?;
        self.login(&email, &password).await
    }

    /// Creates a staff account; answers its e-mail and password.
    pub async fn staff_account(
        &self,
        role: &str,
        venue_slug: Option<&str>,
    ) -> anyhow::Result<(String, String)> {
        let venue = match venue_slug {
            Some(slug) => Some(self.venue_id(slug).await?),
            None => None,
        };
        let email = format!("{role}.{}@staff.example", uuid::Uuid::new_v4().simple());
        let password = "a long enough test password";
        api::add_staff_account(&self.checked, &email, password, role, venue.as_deref()).await?;
        Ok((email, password.to_owned()))
    }

    /// Logs in; answers the session token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .gql(
                "mutation L($i: LoginInput!) { login(input: $i) { token } }",
                json!({ "i": { "email": email, "password": password } }),
            )
            .await?;
        text(&answer, "/data/login/token").context("login failed")
    }

    /// Has an admin create a partner API key bound to one venue; answers
    /// the key to send as bearer token.
    pub async fn partner_key(
        &self,
        admin: &str,
        venue_id: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let answer = self
            .gql_as(
                admin,
                "mutation K($i: CreateApiKeyInput!) { createApiKey(input: $i) { key } }",
                json!({ "i": { "name": name, "venueIds": [venue_id] } }),
            )
            .await?;
        text(&answer, "/data/createApiKey/key").context("no key created")
    }

    /// Sends a GraphQL request with `Authorization: Bearer <token>`.
    pub async fn gql_as(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "HTTP {status}: {body}");
        Ok(body)
    }

    /// This server's key file.
    pub fn key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("kluis.key")
    }

    /// Runs `kluis keys rotate` against this server's database and key
    /// file, as an operator would while the server serves.
    pub async fn rotate_keys(&self) -> anyhow::Result<store::RotationProgress> {
        Ok(api::rotate_keys(&self.checked, |_| {}).await?)
    }

    /// Runs `kluis keys retire VERSION` against this server's database and
    /// key file, at the app clock's now (which decides what has expired).
    pub async fn retire_key(&self, version: u32) -> Result<store::KeyUsage, api::StartError> {
        api::retire_key(&self.checked, version, self.clock.now()).await
    }

    /// Starts a fresh server from the settings and the key file as they are
    /// now, and speaks to it from here on, as after a restart. (The old
    /// server is no longer spoken to; it keeps its port until the test
    /// ends.)
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.address = self.another_node().await?;
        Ok(())
    }

    /// A copy of the data database as it is now (not the key store): what a
    /// backup, a replica or a stolen disk image holds. SQLite through
    /// `VACUUM INTO`; PostgreSQL by copying every table of this test's
    /// schema into a new schema.
    pub async fn copy_database(&self) -> anyhow::Result<DatabaseCopy> {
        let dir = tempfile::tempdir()?;
        let (url, schema) = match self.backend {
            Backend::Sqlite => {
                let target = dir.path().join("kluis.db");
                self.execute_sql(&format!("VACUUM INTO '{}'", target.display()))?;
                (format!("sqlite://{}", target.display()), None)
            }
            Backend::Postgres => {
                let copy = tokio::task::spawn_blocking(PostgresSchema::create).await??;
                let schema = &copy.name;
                let tables = self.query_texts(
                    "SELECT table_name AS value FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
                )?;
                for table in tables {
                    self.execute_sql(&format!(
                        "CREATE TABLE {schema}.{table} (LIKE {table} INCLUDING ALL)"
                    ))?;
                    self.execute_sql(&format!(
                        "INSERT INTO {schema}.{table} SELECT * FROM {table}"
                    ))?;
                }
                (copy.url.clone(), Some(copy))
            }
        };
        Ok(DatabaseCopy { url, dir, schema })
    }

    /// Serves a copy of the data database (a restored backup) with this
    /// server's settings, keys and key store: another deployment's view of
    /// the same key store.
    pub async fn serve_copy(&self, copy: DatabaseCopy) -> anyhow::Result<TestApp> {
        let mut settings = self.checked.settings.clone();
        settings.database_url = copy.url.clone();
        settings.key_store_url = Some(match &self.checked.settings.key_store_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.dir.path().join("kluis-keys.db").display()
            ),
        });
        let checked = settings.check()?;
        let application =
            api::Application::build_with_clock(checked.clone(), self.clock.clone()).await?;
        let address = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        Ok(TestApp {
            address,
            metrics_address: None,
            client: reqwest::Client::new(),
            backend: self.backend,
            database_url: copy.url,
            checked,
            dir: copy.dir,
            clock: self.clock.clone(),
            _data_schema: copy.schema.map(std::sync::Arc::new),
            key_store_schema: self.key_store_schema.clone(),
        })
    }

    /// Runs a statement against this server's key store (a test making a
    /// record from before data keys).
    pub fn execute_key_store_sql(&self, sql: &str) -> anyhow::Result<usize> {
        Ok(match &self.checked.settings.key_store_url {
            Some(url) => diesel::sql_query(sql).execute(&mut PgConnection::establish(url)?)?,
            None => {
                let path = self.dir.path().join("kluis-keys.db");
                diesel::sql_query(sql).execute(&mut SqliteConnection::establish(
                    &path.display().to_string(),
                )?)?
            }
        })
    }

    /// Drops card details past their venue's `payment_data_days`, as of the
    /// server's clock, as the hourly job does.
    pub async fn drop_expired_card_details(&self) -> anyhow::Result<usize> {
        let (store, _) = api::open_store(&self.checked).await?;
        let now = self.clock.now();
        Ok(tokio::task::spawn_blocking(move || store.drop_expired_card_details(now)).await??)
    }

    /// Runs the purge of expired idempotency records and throttles as of
    /// the server's clock, as the server does every 30 seconds.
    pub async fn purge_expired(&self) -> anyhow::Result<store::Purged> {
        let (store, _) = api::open_store(&self.checked).await?;
        let now = self.clock.now();
        Ok(tokio::task::spawn_blocking(move || store.purge_expired(now)).await??)
    }

    /// One waitlist pass (offers past their time expire, the next guests
    /// in line get offers, old entries are purged) as of the server's
    /// clock, as the server does every 30 seconds.
    pub async fn run_waitlist(&self) -> anyhow::Result<store::WaitlistRun> {
        let (store, _) = api::open_store(&self.checked).await?;
        let now = self.clock.now();
        Ok(tokio::task::spawn_blocking(move || store.run_waitlist(now)).await??)
    }

    /// Applies the key store's record of erasures to this server's
    /// database, as `kluis erasures replay` does.
    pub async fn replay_erasures(&self) -> anyhow::Result<store::Replay> {
        Ok(api::replay_erasures(&self.checked).await?)
    }

    /// Every byte the database holds, as an attacker with the disk (or a
    /// database dump) would see it: the SQLite files, or each column of
    /// each table of this test's PostgreSQL schema as text.
    pub fn raw_database(&self) -> anyhow::Result<Vec<u8>> {
        match self.backend {
            Backend::Sqlite => {
                let mut bytes = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let path = self.dir.path().join(format!("kluis.db{suffix}"));
                    if let Ok(content) = std::fs::read(path) {
                        bytes.extend(content);
                    }
                }
                Ok(bytes)
            }
            Backend::Postgres => {
                let columns = self.query_texts(
                    "SELECT table_name || '.' || column_name || '.' || data_type AS value \
                     FROM information_schema.columns WHERE table_schema = current_schema()",
                )?;
                let mut bytes = Vec::new();
                for column in columns {
                    let mut parts = column.splitn(3, '.');
                    let (Some(table), Some(name), Some(kind)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    // Raw bytes of bytea columns, so plaintext would show as
                    // plaintext; everything else as its text form.
                    let expression = if kind == "bytea" {
                        format!("encode({name}, 'escape')")
                    } else {
                        format!("{name}::text")
                    };
                    for value in self.query_texts(&format!(
                        "SELECT COALESCE({expression}, '') AS value FROM {table}"
                    ))? {
                        bytes.extend(value.into_bytes());
                        bytes.push(b'\n');
                    }
                }
                Ok(bytes)
            }
        }
    }

    /// SQLite's query plan for a statement, one step per line.
    pub fn explain_sqlite(&self, sql: &str) -> anyhow::Result<String> {
        #[derive(diesel::QueryableByName)]
        struct Step {
            #[diesel(sql_type = diesel::sql_types::Text)]
            detail: String,
        }
        let path = self.database_url.trim_start_matches("sqlite://");
        let steps: Vec<Step> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(&mut SqliteConnection::establish(path)?)?;
        Ok(steps
            .into_iter()
            .map(|step| step.detail)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Runs a query whose one column is named `value` and reads it as text.
    pub fn query_texts(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        #[derive(diesel::QueryableByName)]
        struct Text {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let rows: Vec<Text> = match self.backend {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                diesel::sql_query(sql).load(&mut SqliteConnection::establish(path)?)?
            }
            Backend::Postgres => {
                diesel::sql_query(sql).load(&mut PgConnection::establish(&self.database_url)?)?
            }
        };
        Ok(rows.into_iter().map(|row| row.value).collect())
    }

    /// Sends a GraphQL request and returns the whole JSON answer.
    pub async fn gql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "HTTP {status}: {body}");
        Ok(body)
    }

    /// The id of an imported venue.
    pub async fn venue_id(&self, slug: &str) -> anyhow::Result<String> {
        let answer = self
            .gql(
                "{ venues(first: 100) { edges { node { id slug } } } }",
                json!({}),
            )
            .await?;
        answer["data"]["venues"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|edge| edge["node"]["slug"] == slug)
            .and_then(|edge| edge["node"]["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no venue {slug} in {answer}"))
    }

    /// Books two people at the venue with this slug tomorrow at `hour`:00
    /// UTC as `guest()`, under a fresh idempotency key; `Booking` says how
    /// to book otherwise.
    pub fn book(&self, venue_slug: &str, hour: u32) -> Booking<'_> {
        self.booking(BookingVenue::Slug(venue_slug.to_owned()), hour)
    }

    /// `book` at a venue id as given: one that may not exist, or not even
    /// be an id.
    pub fn book_at_venue_id(&self, venue_id: &str, hour: u32) -> Booking<'_> {
        self.booking(BookingVenue::Id(venue_id.to_owned()), hour)
    }

    fn booking(&self, venue: BookingVenue, hour: u32) -> Booking<'_> {
        Booking {
            app: self,
            venue,
            starts_at: tomorrow_at(hour),
            party_size: 2,
            guest: guest(),
            key: None,
            more_input: serde_json::Map::new(),
            bearer: None,
            expected_status: None,
        }
    }

    /// Runs one SQL statement directly against this test's database, as an
    /// operator (or an attacker with file access) would.
    pub fn execute_sql(&self, sql: &str) -> anyhow::Result<usize> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                diesel::sql_query(sql).execute(&mut SqliteConnection::establish(path)?)?
            }
            Backend::Postgres => {
                diesel::sql_query(sql).execute(&mut PgConnection::establish(&self.database_url)?)?
            }
        })
    }

    /// Opens a PostgreSQL transaction that runs `sql` (e.g. a `SELECT … FOR
    /// UPDATE`) and stays open, holding its locks, until the connection is
    /// dropped: another API node busy with those rows.
    pub fn hold_postgres_locks(&self, sql: &str) -> anyhow::Result<PgConnection> {
        anyhow::ensure!(self.backend == Backend::Postgres, "PostgreSQL only");
        let mut connection = PgConnection::establish(&self.database_url)?;
        diesel::sql_query("BEGIN").execute(&mut connection)?;
        diesel::sql_query(sql).execute(&mut connection)?;
        Ok(connection)
    }

    /// Counts rows of a table matching an SQL condition.
    pub fn count_rows(&self, table: &str, condition: &str) -> anyhow::Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}");
        let rows: Vec<Count> = match self.backend {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                diesel::sql_query(sql).load(&mut SqliteConnection::establish(path)?)?
            }
            Backend::Postgres => {
                diesel::sql_query(sql).load(&mut PgConnection::establish(&self.database_url)?)?
            }
        };
        rows.first()
            .map(|row| row.n)
            .context("COUNT returned no row")
    }
}

/// A booking a test made: the reservation's id and the guest's manage
/// token.
#[derive(Debug, Clone)]
pub struct Booked {
    pub id: String,
    pub token: String,
}

/// A booking about to be made (see `TestApp::book`). Awaiting it books and
/// answers the `Booked`, failing with the whole answer when there is none;
/// `answer` books and answers the whole answer, errors and all.
#[must_use = "nothing is booked until it is awaited"]
pub struct Booking<'a> {
    app: &'a TestApp,
    venue: BookingVenue,
    starts_at: String,
    party_size: i64,
    guest: Value,
    key: Option<String>,
    more_input: serde_json::Map<String, Value>,
    bearer: Option<String>,
    expected_status: Option<&'static str>,
}

enum BookingVenue {
    Slug(String),
    /// Sent as given, known or not.
    Id(String),
}

impl Booking<'_> {
    /// Starts at this time, RFC 3339 (or not, for tests of bad input),
    /// instead of tomorrow at the hour given.
    pub fn starts_at(mut self, starts_at: &str) -> Self {
        starts_at.clone_into(&mut self.starts_at);
        self
    }

    /// This many people instead of two.
    pub fn party(mut self, size: i64) -> Self {
        self.party_size = size;
        self
    }

    /// This guest instead of `guest()`.
    pub fn guest(mut self, guest: Value) -> Self {
        self.guest = guest;
        self
    }

    /// This idempotency key instead of a fresh one.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// One more field of the input, such as `noticeVersion`.
    pub fn input(mut self, field: &str, value: Value) -> Self {
        self.more_input.insert(field.to_owned(), value);
        self
    }

    /// Books as the holder of this bearer token (a partner key, a staff
    /// session) instead of anonymously.
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// Fails unless the reservation comes back with this status.
    pub fn expect_status(mut self, status: &'static str) -> Self {
        self.expected_status = Some(status);
        self
    }

    /// Books; answers the whole answer to `createReservation` (`CREATE`).
    pub async fn answer(self) -> anyhow::Result<Value> {
        let venue = match self.venue {
            BookingVenue::Slug(slug) => self.app.venue_id(&slug).await?,
            BookingVenue::Id(id) => id,
        };
        let mut input = json!({ "venueId": venue, "startsAt": self.starts_at,
            "partySize": self.party_size, "guest": self.guest,
            "idempotencyKey": self.key.unwrap_or_else(new_key) });
        if let Some(fields) = input.as_object_mut() {
            fields.extend(self.more_input);
        }
        let variables = json!({ "input": input });
        match self.bearer {
            Some(token) => self.app.gql_as(&token, CREATE, variables).await,
            None => self.app.gql(CREATE, variables).await,
        }
    }

    async fn booked(self) -> anyhow::Result<Booked> {
        let expected_status = self.expected_status;
        let answer = self.answer().await?;
        let created = payload(&answer, "createReservation")?;
        if let Some(status) = expected_status {
            anyhow::ensure!(
                created["reservation"]["status"] == status,
                "not {status}: {answer}"
            );
        }
        Ok(Booked {
            id: text(created, "/reservation/id")?,
            token: text(created, "/manageToken")?,
        })
    }
}

impl<'a> std::future::IntoFuture for Booking<'a> {
    type Output = anyhow::Result<Booked>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.booked())
    }
}

/// The field of an answer's `data` a test asked for; fails with the whole
/// answer when the answer has errors or lacks the field.
pub fn data<'a>(answer: &'a Value, field: &str) -> anyhow::Result<&'a Value> {
    anyhow::ensure!(answer.get("errors").is_none(), "errors in {answer}");
    let value = &answer["data"][field];
    anyhow::ensure!(!value.is_null(), "no {field} in {answer}");
    Ok(value)
}

/// The string at a JSON pointer (`"/data/login/token"`); fails with the
/// whole value when there is none.
pub fn text(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no text at {pointer} in {value}"))
}

/// The `extensions.code` of the first error of an answer, if any.
pub fn error_code(answer: &Value) -> Option<&str> {
    answer["errors"][0]["extensions"]["code"].as_str()
}

/// The payload of a mutation that went through: fails with the whole
/// answer when there are top-level errors or user errors.
pub fn payload<'a>(answer: &'a Value, mutation: &str) -> anyhow::Result<&'a Value> {
    let payload = data(answer, mutation)?;
    let user_errors = payload["userErrors"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(user_errors == 0, "user errors in {answer}");
    Ok(payload)
}

/// The `code` of the first of a mutation payload's `userErrors`, if any.
pub fn user_error_code<'a>(answer: &'a Value, mutation: &str) -> Option<&'a str> {
    answer["data"][mutation]["userErrors"][0]["code"].as_str()
}

/// Every user error of a mutation payload as (`field` joined with dots,
/// `code`), in the order the server gave them.
pub fn user_errors(answer: &Value, mutation: &str) -> Vec<(String, String)> {
    answer["data"][mutation]["userErrors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    let field = error["field"]
                        .as_array()
                        .map(|parts| {
                            parts
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    (field, error["code"].as_str().unwrap_or_default().to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tomorrow at `hour`:00 UTC, RFC 3339.
pub fn tomorrow_at(hour: u32) -> String {
    let date = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
    format!("{}T{hour:02}:00:00Z", date.format("%Y-%m-%d"))
}

/// Tomorrow at a local wall-clock time in a time zone, RFC 3339 with that
/// zone's offset.
pub fn tomorrow_local(zone: &str, time: &str) -> anyhow::Result<String> {
    use chrono::TimeZone;
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| anyhow::anyhow!("bad zone {zone}"))?;
    let date = chrono::Utc::now().with_timezone(&tz).date_naive() + chrono::Duration::days(1);
    let naive = chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M")?;
    let local = tz
        .from_local_datetime(&naive)
        .earliest()
        .context("no such local time")?;
    Ok(local.to_rfc3339())
}

pub fn tomorrow() -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub const CREATE: &str = r#"
mutation Create($input: CreateReservationInput!) {
  createReservation(input: $input) {
    manageToken
    reservation { id status partySize startsAt endsAt resource { id slug } }
    userErrors { field code message }
    alternatives { startsAt }
    currentNotice { version }
  }
}"#;

/// An `availability` answer as pairs of start and the slugs of its free
/// resources (the query must select `startsAt` and `freeResources { slug }`).
pub fn free_slots(answer: &Value) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    Ok(data(answer, "availability")?
        .as_array()
        .into_iter()
        .flatten()
        .map(|slot| {
            (
                slot["startsAt"].as_str().unwrap_or_default().to_owned(),
                slot["freeResources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["slug"].as_str().map(str::to_owned))
                    .collect(),
            )
        })
        .collect())
}

/// The starts of `free_slots`.
pub fn starts(free: &[(String, Vec<String>)]) -> Vec<&str> {
    free.iter().map(|(start, _)| start.as_str()).collect()
}

/// A guest for bookings whose guest does not matter to the test.
pub fn guest() -> Value {
    json!({ "name": "Test Guest", "email": "guest@example.org" })
}

/// Runs a test body against SQLite, and (ignored unless asked for) against
/// PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                super::$body($crate::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL"]
            async fn postgres() -> anyhow::Result<()> {
                super::$body($crate::Backend::Postgres).await
            }
        }
    };
}

/// A resolver that knows only `names`.
fn fixed_lookup(
    names: &[(&str, &str)],
) -> anyhow::Result<std::sync::Arc<dyn api::outbound::HostLookup>> {
    let mut table: std::collections::HashMap<String, Vec<std::net::IpAddr>> =
        std::collections::HashMap::new();
    for (name, address) in names {
        table
            .entry((*name).to_ascii_lowercase())
            .or_default()
            .push(address.parse()?);
    }
    if names.is_empty() {
        return Ok(std::sync::Arc::new(api::outbound::SystemLookup));
    }
    Ok(std::sync::Arc::new(api::outbound::FixedLookup(table)))
}

fn domain_email(raw: &str) -> anyhow::Result<domain::Email> {
    Ok(domain::Email::parse("email", raw)?)
}

/// A mail server on loopback that speaks just enough SMTP for lettre,
/// keeps what it receives, and can refuse the first messages for now
/// (`451`) to exercise retries.
pub struct FakeSmtp {
    pub url: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    refusals_left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeSmtp {
    pub async fn start(refuse_first: usize) -> anyhow::Result<Self> {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr()?.port());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let refusals_left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(refuse_first));
        let (inbox, refusals) = (received.clone(), refusals_left.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (inbox, refusals) = (inbox.clone(), refusals.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                if let Ok(mut inbox) = inbox.lock() {
                                    inbox.push(std::mem::take(body));
                                }
                                data = None;
                                let _ = write.write_all(b"250 queued\r\n").await;
                            } else {
                                body.push_str(&line);
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-fake\r\n250 8BITMIME\r\n",
                            "MAIL" => {
                                let refuse = refusals
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                        n.checked_sub(1)
                                    })
                                    .is_ok();
                                if refuse {
                                    b"451 try again later\r\n"
                                } else {
                                    b"250 ok\r\n"
                                }
                            }
                            "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"502 not implemented\r\n",
                        };
                        let _ = write.write_all(answer).await;
                    }
                });
            }
        });
        Ok(Self {
            url,
            received,
            refusals_left,
        })
    }

    pub fn messages(&self) -> Vec<String> {
        self.received.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn refusals_left(&self) -> usize {
        self.refusals_left.load(std::sync::atomic::Ordering::SeqCst)
    }
}
