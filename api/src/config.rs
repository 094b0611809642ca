//! Settings: built-in defaults, then `kluis.toml`, then `KLUIS_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use store::DatabaseUrl;

pub use app::settings::{
    Audit, BulkReadResponse, Environment, Monitoring, Outbound, SecretSetting,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    /// The key store (guests' data keys, record of erasures): a database
    /// apart from the data, `sqlite://PATH` or `postgres://…` (a database
    /// or a schema of its own). Default with SQLite data: a file next to
    /// the data file (`kluis.db` → `kluis-keys.db`); required with
    /// PostgreSQL.
    pub key_store_url: Option<String>,
    pub bind: String,
    pub env: Environment,
    /// Database connections per server process.
    pub pool_size: u32,
    /// `tracing` filter, e.g. `info` or `kluis=debug,info`.
    pub log: String,
    /// Base64 master key(s); see `keys.rs` for the format.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretSetting>,
    /// A key file (mode 0600) instead of `master_key`.
    pub key_file: Option<PathBuf>,
    /// PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Set when a reverse proxy terminates TLS in front of kluis; production
    /// refuses plain HTTP otherwise.
    pub behind_proxy: bool,
    /// The folder with `model.conf` and `policy.csv`, watched for edits.
    pub policy_dir: PathBuf,
    /// How long a staff session lasts, in hours.
    pub session_hours: u32,
    /// Where e-mail leaves: `smtp://host:25`, `smtps://user:pass@host` or
    /// `smtp://user:pass@host:587?tls=required`. Unset in development,
    /// messages go to the log (recipient masked, body withheld).
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretSetting>,
    /// The `From` of every e-mail.
    pub mail_from: String,
    /// Whether this node runs the outbox worker (e-mails, webhooks). Every
    /// node may: they claim different messages.
    pub outbox_delivery: bool,
    /// Payment gateways (`[payments.stripe]`, `[payments.onsite]`, ...).
    #[serde(skip_serializing, default)]
    pub payments: plugins::PaymentsConfig,
    /// A separate plain-HTTP address that serves only `/metrics` (an
    /// internal network), e.g. `10.0.0.5:9090`.
    pub metrics_bind: Option<String>,
    /// A bearer token `/metrics` asks for. Without it and without
    /// `metrics_bind`, `/metrics` is served in development only.
    #[serde(skip_serializing)]
    pub metrics_token: Option<SecretSetting>,
    /// `text` (default) or `json`: one JSON object per line, with the
    /// request id of each request's lines.
    pub log_format: LogFormat,
    /// Suspicious-activity rules, their thresholds and where alerts go
    /// (`[monitoring]`).
    #[serde(default)]
    pub monitoring: Monitoring,
    /// The audit trail (`[audit]`).
    #[serde(default)]
    pub audit: Audit,
    /// Requests and complexity per minute (`[rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Where outgoing messages may go (`[outbound]`).
    #[serde(default)]
    pub outbound: Outbound,
    /// Browsers on other sites (`[http]`).
    #[serde(default)]
    pub http: Http,
}

/// How the HTTP layer answers browsers on other sites.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Origins (`https://host[:port]`) whose pages may call `/graphql`
    /// from a browser, for every venue; each venue adds its own
    /// (`allowed_origins` in its venue file). `http://localhost…` only in
    /// development.
    pub allowed_origins: Vec<String>,
}

impl Http {
    /// The origins, checked; plain-http ones only in development.
    pub fn origins(&self, env: Environment) -> Result<Vec<domain::Origin>, ConfigError> {
        let origins = domain::Origin::check_list(self.allowed_origins.iter().map(String::as_str))
            .map_err(|reason| ConfigError::new("http.allowed_origins", reason))?;
        if env == Environment::Production
            && let Some(local) = origins.iter().find(|o| o.is_plain_http())
        {
            return Err(ConfigError::new(
                "http.allowed_origins",
                format!("`{local}` is plain http, which only a development server accepts"),
            ));
        }
        Ok(origins)
    }
}

/// Refuses the alert webhook and mail server when they point inside.
/// Names the setting and the kind of address, never the URL (the mail
/// server's may hold a password).
fn check_outbound(outbound: &Outbound, settings: &Settings) -> Result<(), ConfigError> {
    if outbound.allow_private_targets {
        return Ok(());
    }
    let refuse = |key: &str, why: app::outbound::RefusedTarget| {
        ConfigError::new(
            key,
            format!(
                "points at {}, which outgoing messages may not reach; set \
                 [outbound] allow_private_targets = true to allow it (development only)",
                why.0
            ),
        )
    };
    if let Some(url) = &settings.monitoring.alert_webhook_url
        && let Ok(parsed) = reqwest::Url::parse(url)
    {
        app::outbound::check_url(&parsed, false)
            .map_err(|why| refuse("monitoring.alert_webhook_url", why))?;
    }
    if let Some(url) = &settings.smtp_url {
        use secrecy::ExposeSecret;
        let parsed = reqwest::Url::parse(url.0.expose_secret())
            .map_err(|_| ConfigError::new("smtp_url", "not a valid smtp:// or smtps:// URL"))?;
        app::outbound::check_url(&parsed, false).map_err(|why| refuse("smtp_url", why))?;
    }
    Ok(())
}

/// Per-minute budgets, shared by all nodes through the database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Anonymous callers and guests, per client address.
    pub address_per_minute: u32,
    /// Per staff session.
    pub session_per_minute: u32,
    /// Per partner API key.
    pub api_key_per_minute: u32,
    /// Query complexity (fields, lists times their size) per scope.
    pub complexity_per_minute: u32,
    /// Provider webhook deliveries (`/webhooks/…`), per client address:
    /// each one may cost calls to the provider before it is known to be
    /// genuine.
    pub webhook_per_minute: u32,
    /// Requests with credentials that do not hold (unknown or revoked
    /// bearer tokens and API keys), per client address; past it, every
    /// request with credentials from there is refused until the minute
    /// ends, before they are looked at.
    pub bad_credentials_per_minute: u32,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is
    /// believed; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Share the counters through Redis instead of the database
    /// (`redis://host:6379/0`; also `KLUIS_REDIS_URL`).
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretSetting>,
    /// Prefix of the Redis keys, so that deployments can share a server.
    pub redis_namespace: String,
    /// GraphQL requests one node works on at once; more wait for a turn.
    pub max_in_flight: u32,
    /// How long a request waits for a turn before it is turned away (503,
    /// `RATE_LIMITED`, `Retry-After`): under overload a node sheds load
    /// instead of queueing without bound.
    pub queue_wait_ms: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            address_per_minute: 600,
            session_per_minute: 1_200,
            api_key_per_minute: 3_000,
            complexity_per_minute: 200_000,
            webhook_per_minute: 120,
            bad_credentials_per_minute: 20,
            trusted_proxies: Vec::new(),
            redis_url: None,
            redis_namespace: "kluis".to_owned(),
            max_in_flight: 64,
            queue_wait_ms: 100,
        }
    }
}

/// An address (`10.0.0.1`) or network (`10.0.0.0/8`).
pub fn parse_network(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{raw}` is not an address or network like 10.0.0.0/8"))
}

impl RateLimits {
    fn check(&self) -> Result<(), ConfigError> {
        if !(1..=100_000).contains(&self.max_in_flight) {
            return Err(ConfigError::new(
                "rate_limits.max_in_flight",
                "must be between 1 and 100000",
            ));
        }
        if self.queue_wait_ms > 60_000 {
            return Err(ConfigError::new(
                "rate_limits.queue_wait_ms",
                "must be at most 60000 (a minute)",
            ));
        }
        let ranges = [
            ("address_per_minute", self.address_per_minute),
            ("session_per_minute", self.session_per_minute),
            ("api_key_per_minute", self.api_key_per_minute),
            ("complexity_per_minute", self.complexity_per_minute),
            ("webhook_per_minute", self.webhook_per_minute),
            (
                "bad_credentials_per_minute",
                self.bad_credentials_per_minute,
            ),
        ];
        for (key, value) in ranges {
            if value == 0 {
                return Err(ConfigError::new(
                    &format!("rate_limits.{key}"),
                    "must be at least 1",
                ));
            }
        }
        for proxy in &self.trusted_proxies {
            parse_network(proxy)
                .map_err(|reason| ConfigError::new("rate_limits.trusted_proxies", reason))?;
        }
        if let Some(url) = &self.redis_url {
            use secrecy::ExposeSecret;
            // The URL may hold a password: name the problem only.
            redis::Client::open(url.0.expose_secret()).map_err(|_| {
                ConfigError::new("rate_limits.redis_url", "not a redis:// or rediss:// URL")
            })?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

fn check_audit(audit: &Audit) -> Result<(), ConfigError> {
    if !(1..=1440).contains(&audit.publish_head_minutes) {
        return Err(ConfigError::new(
            "audit.publish_head_minutes",
            "must be between 1 and 1440",
        ));
    }
    Ok(())
}

fn check_monitoring(monitoring: &Monitoring) -> Result<(), ConfigError> {
    let ranges = [
        (
            "failed_logins_per_account",
            monitoring.failed_logins_per_account,
            1,
            10_000,
        ),
        (
            "failed_logins_per_address",
            monitoring.failed_logins_per_address,
            1,
            100_000,
        ),
        (
            "failed_login_window_minutes",
            monitoring.failed_login_window_minutes,
            1,
            1_440,
        ),
        (
            "bulk_read_records",
            monitoring.bulk_read_records,
            1,
            1_000_000,
        ),
        ("bulk_read_minutes", monitoring.bulk_read_minutes, 1, 1_440),
        (
            "bulk_read_operational_days",
            monitoring.bulk_read_operational_days,
            0,
            31,
        ),
        (
            "bulk_read_operational_venues",
            monitoring.bulk_read_operational_venues,
            0,
            100,
        ),
        ("throttle_minutes", monitoring.throttle_minutes, 1, 10_080),
        ("exports_per_hour", monitoring.exports_per_hour, 1, 100_000),
        (
            "erasures_per_hour",
            monitoring.erasures_per_hour,
            1,
            100_000,
        ),
        (
            "api_key_rate_factor",
            monitoring.api_key_rate_factor,
            2,
            1_000,
        ),
        (
            "api_key_rate_floor",
            monitoring.api_key_rate_floor,
            1,
            1_000_000,
        ),
    ];
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            return Err(ConfigError::new(
                &format!("monitoring.{key}"),
                format!("must be between {min} and {max}, not {value}"),
            ));
        }
    }
    match (
        &monitoring.alert_webhook_url,
        &monitoring.alert_webhook_secret,
    ) {
        (Some(url), Some(_)) => {
            let parsed = reqwest::Url::parse(url)
                .map_err(|_| ConfigError::new("monitoring.alert_webhook_url", "not a URL"))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(ConfigError::new(
                    "monitoring.alert_webhook_url",
                    "must be an https:// URL",
                ));
            }
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "monitoring.alert_webhook_secret",
                "is needed with alert_webhook_url (receivers check signatures with it)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "monitoring.alert_webhook_url",
                "is needed with alert_webhook_secret",
            ));
        }
        (None, None) => {}
    }
    for email in &monitoring.alert_emails {
        domain::Email::parse("alert_emails", email).map_err(|_| {
            ConfigError::new("monitoring.alert_emails", "holds an invalid e-mail address")
        })?;
    }
    Ok(())
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://kluis.db".to_owned(),
            key_store_url: None,
            bind: "127.0.0.1:8080".to_owned(),
            env: Environment::Development,
            pool_size: 16,
            log: "info".to_owned(),
            master_key: None,
            key_file: None,
            tls_cert: None,
            tls_key: None,
            behind_proxy: false,
            policy_dir: PathBuf::from("policies"),
            session_hours: 12,
            smtp_url: None,
            mail_from: "kluis <noreply@localhost>".to_owned(),
            outbox_delivery: true,
            payments: plugins::PaymentsConfig::default(),
            metrics_bind: None,
            metrics_token: None,
            log_format: LogFormat::Text,
            monitoring: Monitoring::default(),
            audit: Audit::default(),
            rate_limits: RateLimits::default(),
            outbound: Outbound::default(),
            http: Http::default(),
        }
    }
}

/// A setting that cannot be used, with the key that holds it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{key}`{source_hint}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub source_hint: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            source_hint: String::new(),
            reason: reason.into(),
        }
    }
}

/// Settings after checking: what the server runs with.
#[derive(Debug, Clone)]
pub struct Checked {
    pub settings: Settings,
    pub database: DatabaseUrl,
    pub key_store: DatabaseUrl,
    pub bind: SocketAddr,
    pub metrics_bind: Option<SocketAddr>,
}

impl Settings {
    /// Reads defaults < `file` (when it exists) < `KLUIS_*` environment.
    pub fn load(file: &Path) -> Result<Checked, ConfigError> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("KLUIS_").only(&[
                "database_url",
                "key_store_url",
                "bind",
                "env",
                "pool_size",
                "log",
                "master_key",
                "key_file",
                "tls_cert",
                "tls_key",
                "behind_proxy",
                "policy_dir",
                "session_hours",
                "smtp_url",
                "mail_from",
                "outbox_delivery",
                "metrics_bind",
                "metrics_token",
                "log_format",
            ]))
            // Sections: KLUIS_PAYMENTS__STRIPE__SECRET_KEY,
            // KLUIS_MONITORING__BULK_READ_RECORDS, ...
            .merge(section_env("payments"))
            .merge(section_env("monitoring"))
            // The conventional top-level name for the Redis setting; the section's own
            // variable below wins over it.
            .merge(
                Env::raw()
                    .only(&["KLUIS_REDIS_URL"])
                    .map(|_| "rate_limits.redis_url".into()),
            )
            .merge(section_env("rate_limits"))
            .merge(section_env("outbound"))
            // KLUIS_HTTP__ALLOWED_ORIGINS='["https://shop.example"]'
            .merge(section_env("http"))
            .extract::<Settings>()
            .map_err(describe)?
            .check()
    }

    pub fn check(self) -> Result<Checked, ConfigError> {
        let database = DatabaseUrl::parse(&self.database_url)
            .map_err(|reason| ConfigError::new("database_url", reason))?;
        let key_store = self.key_store_database()?;
        let bind = self.bind.parse().map_err(|_| {
            ConfigError::new(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8080", self.bind),
            )
        })?;
        if !(1..=720).contains(&self.session_hours) {
            return Err(ConfigError::new(
                "session_hours",
                "must be between 1 and 720",
            ));
        }
        if !(1..=512).contains(&self.pool_size) {
            return Err(ConfigError::new("pool_size", "must be between 1 and 512"));
        }
        check_monitoring(&self.monitoring)?;
        check_audit(&self.audit)?;
        self.rate_limits.check()?;
        check_outbound(&self.outbound, &self)?;
        self.http.origins(self.env)?;
        let metrics_bind = match &self.metrics_bind {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| {
                ConfigError::new(
                    "metrics_bind",
                    format!("`{raw}` is not an address like 127.0.0.1:9090"),
                )
            })?),
        };
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| ConfigError::new("log", format!("not a log filter: {e}")))?;
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err(ConfigError::new("tls_key", "is needed with tls_cert")),
            (None, Some(_)) => return Err(ConfigError::new("tls_cert", "is needed with tls_key")),
            (None, None) if self.env == Environment::Production && !self.behind_proxy => {
                return Err(ConfigError::new(
                    "tls_cert",
                    "production serves HTTPS only: set tls_cert and tls_key, or behind_proxy = true \
                     (KLUIS_BEHIND_PROXY=true) when a reverse proxy terminates TLS",
                ));
            }
            _ => {}
        }
        Ok(Checked {
            settings: self,
            database,
            key_store,
            bind,
            metrics_bind,
        })
    }
}

impl Settings {
    /// The part of the settings that delivering the outbox reads.
    pub fn outbox(&self) -> app::settings::OutboxSettings {
        app::settings::OutboxSettings {
            env: self.env,
            smtp_url: self.smtp_url.clone(),
            mail_from: self.mail_from.clone(),
            outbound: self.outbound,
            alert_webhook_url: self.monitoring.alert_webhook_url.clone(),
            alert_webhook_secret: self.monitoring.alert_webhook_secret.clone(),
        }
    }

    /// The part of the settings that says where the master keys are.
    pub fn keys(&self) -> app::settings::KeySettings {
        app::settings::KeySettings {
            env: self.env,
            master_key: self.master_key.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

impl Settings {
    /// Where the key store is: `key_store_url`, or next to an SQLite data
    /// file. Never the data database itself: a backup of one must not hold
    /// the other.
    fn key_store_database(&self) -> Result<DatabaseUrl, ConfigError> {
        let raw = match (
            &self.key_store_url,
            self.database_url.strip_prefix("sqlite://"),
        ) {
            (Some(raw), _) => raw.clone(),
            (None, Some(path)) => {
                let path = Path::new(path);
                let stem = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "kluis".to_owned());
                format!(
                    "sqlite://{}",
                    path.with_file_name(format!("{stem}-keys.db")).display()
                )
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "key_store_url",
                    "is required with a PostgreSQL database_url: a database or schema of its \
                     own, e.g. postgres://…/kluis_keys",
                ));
            }
        };
        let key_store =
            DatabaseUrl::parse(&raw).map_err(|reason| ConfigError::new("key_store_url", reason))?;
        if raw == self.database_url {
            return Err(ConfigError::new(
                "key_store_url",
                "must not be the data database: keys and data are kept (and backed up) apart",
            ));
        }
        Ok(key_store)
    }
}

/// `KLUIS_<SECTION>__<KEY>__<KEY>` as `section.key.key`.
fn section_env(section: &'static str) -> Env {
    Env::prefixed(&format!("KLUIS_{}__", section.to_uppercase()))
        .map(move |key| format!("{section}.{}", key.as_str().replace("__", ".")).into())
}

fn describe(error: figment::Error) -> ConfigError {
    let key = if error.path.is_empty() {
        match &error.kind {
            figment::error::Kind::UnknownField(field, _) => field.clone(),
            _ => "(file)".to_owned(),
        }
    } else {
        error.path.join(".")
    };
    let source_hint = match &error.metadata {
        // figment names environment keys without their prefix.
        Some(metadata) if metadata.name.contains("environment") => {
            format!(" (from KLUIS_{})", key.to_uppercase())
        }
        Some(metadata) => match &metadata.source {
            Some(source) => format!(" (from {source})"),
            None => format!(" (from {})", metadata.name),
        },
        None => String::new(),
    };
    ConfigError {
        key,
        source_hint,
        reason: error.kind.to_string(),
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment's test jail returns figment::Error, which is large"
)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_sqlite_on_localhost_in_development() {
        let checked = Settings::default().check().expect("defaults are valid");
        assert_eq!(checked.database.backend(), store::Backend::Sqlite);
        assert_eq!(checked.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(checked.settings.env, Environment::Development);
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "kluis.toml",
                "bind = \"127.0.0.1:9000\"\nenv = \"production\"\nbehind_proxy = true",
            )?;
            jail.set_env("KLUIS_BIND", "127.0.0.1:9100");
            let checked = Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            assert_eq!(checked.bind.to_string(), "127.0.0.1:9100");
            assert_eq!(checked.settings.env, Environment::Production);
            assert_eq!(checked.settings.database_url, "sqlite://kluis.db");
            Ok(())
        });
    }

    #[test]
    fn an_invalid_environment_names_the_key_and_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KLUIS_ENV", "staging");
            let error = Settings::load(Path::new("missing.toml")).expect_err("invalid");
            let line = error.to_string();
            assert_eq!(error.key, "env");
            assert!(line.contains("KLUIS_ENV"), "{line}");
            assert!(!line.contains('\n'), "{line}");
            Ok(())
        });
    }

    #[test]
    fn the_key_store_defaults_to_a_file_next_to_sqlite_data_and_is_required_with_postgres() {
        let settings = Settings {
            database_url: "sqlite://./data/kluis.db".to_owned(),
            ..Settings::default()
        };
        let checked = settings.check().expect("valid");
        assert_eq!(
            checked.key_store,
            DatabaseUrl::parse("sqlite://./data/kluis-keys.db").expect("url")
        );
        let postgres = Settings {
            database_url: "postgres://u@localhost/kluis".to_owned(),
            ..Settings::default()
        };
        assert_eq!(
            postgres.check().expect_err("needs a key store").key,
            "key_store_url"
        );
        let same = Settings {
            database_url: "postgres://u@localhost/kluis".to_owned(),
            key_store_url: Some("postgres://u@localhost/kluis".to_owned()),
            ..Settings::default()
        };
        assert_eq!(same.check().expect_err("apart").key, "key_store_url");
    }

    #[test]
    fn a_bad_database_url_or_address_names_its_key() {
        let settings = Settings {
            database_url: "mysql://x".to_owned(),
            ..Settings::default()
        };
        assert_eq!(settings.check().expect_err("invalid").key, "database_url");
        let settings = Settings {
            bind: "localhost".to_owned(),
            ..Settings::default()
        };
        assert_eq!(settings.check().expect_err("invalid").key, "bind");
    }

    #[test]
    fn production_refuses_plain_http_unless_behind_a_proxy() {
        let plain = Settings {
            env: Environment::Production,
            ..Settings::default()
        };
        assert_eq!(plain.clone().check().expect_err("refused").key, "tls_cert");
        let proxied = Settings {
            behind_proxy: true,
            ..plain.clone()
        };
        assert!(proxied.check().is_ok());
        let half = Settings {
            tls_cert: Some(PathBuf::from("cert.pem")),
            ..plain
        };
        assert_eq!(half.check().expect_err("refused").key, "tls_key");
    }

    #[test]
    fn payment_gateways_come_from_the_file_or_nested_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kluis.toml", "[payments.onsite]\nenabled = true\n")?;
            jail.set_env("KLUIS_PAYMENTS__STRIPE__SECRET_KEY", "sk_test_x");
            jail.set_env("KLUIS_PAYMENTS__STRIPE__WEBHOOK_SECRET", "whsec_x");
            let checked = Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            let payments = &checked.settings.payments;
            assert!(payments.onsite.as_ref().is_some_and(|o| o.enabled));
            assert_eq!(
                payments.stripe.as_ref().map(|s| s.secret_key.expose()),
                Some("sk_test_x")
            );
            assert!(
                !format!("{payments:?}").contains("sk_test_x"),
                "secrets in Debug"
            );
            Ok(())
        });
    }

    #[test]
    fn malformed_monitoring_thresholds_are_named_at_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kluis.toml", "[monitoring]\nbulk_read_records = 0\n")?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "monitoring.bulk_read_records");
            jail.create_file(
                "kluis.toml",
                "[monitoring]\nbulk_read_operational_days = 32\n",
            )?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "monitoring.bulk_read_operational_days");
            jail.create_file("kluis.toml", "[monitoring]\nbulk_read_records = \"many\"\n")?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert!(error.key.contains("bulk_read_records"), "{error}");
            jail.create_file(
                "kluis.toml",
                "[monitoring]\nalert_webhook_url = \"https://alerts.example\"\n",
            )?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "monitoring.alert_webhook_secret");
            jail.create_file(
                "kluis.toml",
                "[rate_limits]\ntrusted_proxies = [\"proxy\"]\n",
            )?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "rate_limits.trusted_proxies");
            jail.create_file("kluis.toml", "")?;
            jail.set_env("KLUIS_REDIS_URL", "http://not-redis");
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "rate_limits.redis_url");
            jail.set_env("KLUIS_REDIS_URL", "redis://127.0.0.1:6379/0");
            Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            jail.set_env("KLUIS_MONITORING__FAILED_LOGINS_PER_ACCOUNT", "0");
            jail.create_file("kluis.toml", "")?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "monitoring.failed_logins_per_account");
            Ok(())
        });
    }

    #[test]
    fn alert_webhooks_and_mail_servers_inside_the_network_are_refused_at_start() {
        figment::Jail::expect_with(|jail| {
            for (host, why) in [
                ("127.0.0.1", "loopback"),
                ("169.254.169.254", "metadata"),
                ("[::1]", "loopback"),
                ("10.0.0.1", "private"),
                ("[fd00:ec2::254]", "metadata"),
                ("100.100.100.200", "metadata"),
                ("localhost", "loopback"),
            ] {
                jail.create_file(
                    "kluis.toml",
                    &format!(
                        "[monitoring]\nalert_webhook_url = \"https://{host}/alerts\"\n\
                         alert_webhook_secret = \"whsec_x\"\n"
                    ),
                )?;
                let error = Settings::load(Path::new("kluis.toml")).expect_err("refused");
                assert_eq!(error.key, "monitoring.alert_webhook_url", "{host}");
                assert!(error.reason.contains(why), "{host}: {error}");
                assert!(error.reason.contains("allow_private_targets"), "{error}");

                jail.create_file("kluis.toml", "")?;
                jail.set_env(
                    "KLUIS_SMTP_URL",
                    format!("smtps://mailer:hunter2secret@{host}:465"),
                );
                let error = Settings::load(Path::new("kluis.toml")).expect_err("refused");
                assert_eq!(error.key, "smtp_url", "{host}");
                assert!(error.reason.contains(why), "{host}: {error}");
                assert!(!error.to_string().contains("hunter2secret"), "{error}");
                jail.clear_env();
            }
            Ok(())
        });
    }

    #[test]
    fn the_opt_in_lets_internal_targets_through_and_public_ones_always_pass() {
        figment::Jail::expect_with(|jail| {
            let text = "[monitoring]\nalert_webhook_url = \"http://127.0.0.1:9/alerts\"\n\
                        alert_webhook_secret = \"whsec_x\"\n";
            jail.create_file("kluis.toml", text)?;
            jail.set_env("KLUIS_SMTP_URL", "smtp://127.0.0.1:2525");
            assert!(Settings::load(Path::new("kluis.toml")).is_err());
            jail.create_file(
                "kluis.toml",
                &format!("{text}[outbound]\nallow_private_targets = true\n"),
            )?;
            let checked = Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            assert!(checked.settings.outbound.allow_private_targets);
            jail.create_file("kluis.toml", text)?;
            jail.set_env("KLUIS_OUTBOUND__ALLOW_PRIVATE_TARGETS", "true");
            Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            jail.clear_env();
            jail.create_file(
                "kluis.toml",
                "smtp_url = \"smtps://mail.example.com\"\n[monitoring]\n\
                 alert_webhook_url = \"https://alerts.example.com/kluis\"\n\
                 alert_webhook_secret = \"whsec_x\"\n",
            )?;
            let checked = Settings::load(Path::new("kluis.toml")).map_err(|e| e.to_string())?;
            assert!(!checked.settings.outbound.allow_private_targets);
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("kluis.toml", "databse_url = \"sqlite://x.db\"")?;
            let error = Settings::load(Path::new("kluis.toml")).expect_err("invalid");
            assert_eq!(error.key, "databse_url");
            Ok(())
        });
    }
}
