//! The settings the use cases read, as plain values. Reading them from
//! files and the environment, and checking them, is the server's start-up
//! work (`api::config`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// GraphiQL, introspection and a demo venue on an empty database.
    Development,
    /// None of those.
    Production,
}

/// Where webhooks, alerts and e-mail may be sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    /// Lets outgoing messages reach loopback, private, link-local, carrier
    /// NAT and cloud metadata addresses. Off by default: a venue manager's
    /// webhook URL must not become a way into the network the nodes run
    /// in. For development and tests, whose receivers run on this machine.
    pub allow_private_targets: bool,
}

/// What a principal that trips the bulk-read rule gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkReadResponse {
    /// Every request refused (RATE_LIMITED) for `throttle_minutes`, or
    /// until an admin lifts it.
    Throttle,
    /// Refused until an admin lifts it.
    Suspend,
    /// An alert, nothing more.
    Alert,
}

/// The audit trail's published head (README, "Audit trail").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Every this many minutes each node publishes the chain head (newest
    /// entry's sequence number and HMAC) to the alert webhook, when one is
    /// configured, and to the log: `kluis audit verify --head SEQ:HMAC`
    /// then detects removal of the entries up to it. The newest entries
    /// since the last publication are what an intruder can remove
    /// unnoticed.
    pub publish_head_minutes: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            publish_head_minutes: 15,
        }
    }
}

/// Thresholds of the detection rules (README, "Security monitoring").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitoring {
    /// Failed logins of one account within the window that raise an alert.
    pub failed_logins_per_account: u32,
    /// Failed logins from one client address within the window.
    pub failed_logins_per_address: u32,
    pub failed_login_window_minutes: u32,
    /// Records one principal may read within `bulk_read_minutes` before
    /// `bulk_read` trips: distinct reservations whose personal fields it
    /// read and distinct guests it found by address, each once however
    /// often re-read, plus every lookup that found nobody...
    pub bulk_read_records: u32,
    pub bulk_read_minutes: u32,
    /// ...but not the reservations starting within this many venue-local
    /// days from today (today and tomorrow by default; 0 counts every
    /// day) at the venues it reads: the day sheets staff work from...
    pub bulk_read_operational_days: u32,
    /// ...at the first this many venues it read in the window; reservations
    /// of further venues count whatever their day.
    pub bulk_read_operational_venues: u32,
    pub bulk_read_response: BulkReadResponse,
    pub throttle_minutes: u32,
    /// Exports (and erasures) by one account or key within an hour.
    pub exports_per_hour: u32,
    pub erasures_per_hour: u32,
    /// An API key's requests in a minute above this many times its average
    /// per active minute over the last day...
    pub api_key_rate_factor: u32,
    /// ...and above this floor (a quiet key doing a little more is fine).
    pub api_key_rate_floor: u32,
    /// Where new alerts are posted (signed like venue webhooks).
    pub alert_webhook_url: Option<String>,
    #[serde(skip_serializing)]
    pub alert_webhook_secret: Option<SecretSetting>,
    /// Who gets an e-mail for each new alert.
    pub alert_emails: Vec<String>,
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            failed_logins_per_account: 5,
            failed_logins_per_address: 20,
            failed_login_window_minutes: 15,
            bulk_read_records: 50,
            bulk_read_minutes: 10,
            bulk_read_operational_days: 2,
            bulk_read_operational_venues: 2,
            bulk_read_response: BulkReadResponse::Throttle,
            throttle_minutes: 60,
            exports_per_hour: 20,
            erasures_per_hour: 20,
            api_key_rate_factor: 10,
            api_key_rate_floor: 60,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            alert_emails: Vec::new(),
        }
    }
}

/// A setting whose value must never be printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(pub secrecy::SecretString);

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("‹secret›")
    }
}

/// What delivering the outbox needs: the mail relay, the sender, and the
/// alert webhook.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub env: Environment,
    pub smtp_url: Option<SecretSetting>,
    pub mail_from: String,
    pub outbound: Outbound,
    pub alert_webhook_url: Option<String>,
    pub alert_webhook_secret: Option<SecretSetting>,
}

/// Where the master keys come from (README, "Keys").
#[derive(Debug, Clone)]
pub struct KeySettings {
    pub env: Environment,
    pub master_key: Option<SecretSetting>,
    pub key_file: Option<std::path::PathBuf>,
}
