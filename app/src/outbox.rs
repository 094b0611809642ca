//! Delivering the outbox: e-mails through [`crate::mail`], webhooks as
//! signed HTTPS POSTs. One pass claims what is due, sends it and records
//! the outcome; the server runs a pass every few seconds on every node
//! (claims keep nodes from sending the same message).

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use store::{DueMessage, OutboxKind, Outgoing, Store, StoreError, Webhook, WebhookTarget};

use crate::mail::{MailError, MailFailure, Transport};
use crate::outbound::{CheckedResolver, HostLookup, SystemLookup};

/// How long a receiver may take to answer before the attempt counts as
/// failed (and is retried later).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What carries messages out of this node.
#[derive(Clone)]
pub struct Couriers {
    /// `None` in production without SMTP: e-mails wait for a node with it.
    pub mail: Option<Transport>,
    pub webhooks: WebhookClient,
}

impl Couriers {
    pub fn from_settings(settings: &crate::settings::OutboxSettings) -> Result<Self, MailError> {
        Self::with_lookup(settings, Arc::new(SystemLookup))
    }

    /// Like `from_settings`, resolving receivers' names through `lookup`
    /// (tests stand in names that point inside the network).
    pub fn with_lookup(
        settings: &crate::settings::OutboxSettings,
        lookup: Arc<dyn HostLookup>,
    ) -> Result<Self, MailError> {
        let allow_private = settings.outbound.allow_private_targets;
        let alerts = match (&settings.alert_webhook_url, &settings.alert_webhook_secret) {
            (Some(url), Some(secret)) => Some(Endpoint {
                url: url.clone(),
                secret: secret.0.clone(),
            }),
            _ => None,
        };
        Ok(Self {
            mail: Transport::from_settings(settings, Arc::clone(&lookup))?,
            webhooks: WebhookClient::new(allow_private, lookup)?.with_alert_endpoint(alerts),
        })
    }

    fn kinds(&self) -> Vec<OutboxKind> {
        let mut kinds = vec![OutboxKind::Webhook];
        if self.mail.is_some() {
            kinds.push(OutboxKind::Email);
        }
        kinds
    }
}

/// Posts webhooks. Redirects are not followed: the endpoint is the one
/// its owner registered, nowhere else. Nor is it reached through a proxy
/// or any address that was not checked: every name is resolved by
/// [`CheckedResolver`], which refuses internal addresses (unless
/// `[outbound] allow_private_targets`), and the connection goes to one of
/// the addresses it checked.
#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    /// Where alerts go, from the settings.
    alerts: Option<Endpoint>,
    allow_private: bool,
}

/// A URL and the secret messages to it are signed with.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    pub secret: secrecy::SecretString,
}

impl WebhookClient {
    pub fn new(allow_private: bool, lookup: Arc<dyn HostLookup>) -> Result<Self, MailError> {
        // reqwest's rustls needs a crypto provider; installing twice is
        // harmless.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on its own, past the check.
            .no_proxy()
            .dns_resolver(CheckedResolver {
                lookup,
                allow_private,
            })
            .user_agent(concat!("kluis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| MailError::Http)?;
        Ok(Self {
            http,
            alerts: None,
            allow_private,
        })
    }

    pub fn with_alert_endpoint(mut self, alerts: Option<Endpoint>) -> Self {
        self.alerts = alerts;
        self
    }

    async fn endpoint(&self, store: &Store, target: &WebhookTarget) -> Result<Endpoint, Failure> {
        match target {
            WebhookTarget::Alerts => self
                .alerts
                .clone()
                .ok_or_else(|| Failure::GiveUp("no alert webhook is configured".to_owned())),
            WebhookTarget::Venue { venue_id } => {
                let lookup = store.clone();
                let venue = venue_id.clone();
                let endpoint = tokio::task::spawn_blocking(move || lookup.venue_webhook(&venue))
                    .await
                    .map_err(|_| Failure::Retry("the delivery task stopped".to_owned()))?
                    .map_err(|_| Failure::Retry("the endpoint could not be read".to_owned()))?
                    .ok_or_else(|| {
                        Failure::GiveUp("the venue no longer has a webhook".to_owned())
                    })?;
                Ok(Endpoint {
                    url: endpoint.url,
                    secret: endpoint.secret,
                })
            }
        }
    }

    async fn post(
        &self,
        store: &Store,
        id: &str,
        webhook: &Webhook,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let endpoint = self.endpoint(store, &webhook.target).await?;
        // Checked again here, not only when set: the rules may have been
        // off then, and alert URLs come from settings. Names are checked
        // after resolution, by the client's resolver.
        let url = reqwest::Url::parse(&endpoint.url)
            .map_err(|_| Failure::GiveUp("the receiver's URL is not valid".to_owned()))?;
        crate::outbound::check_url(&url, self.allow_private)
            .map_err(|refused| Failure::GiveUp(refused.to_string()))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "id": id,
            "type": webhook.event,
            "created_at": webhook.occurred_at.to_rfc3339(),
            "data": webhook.data,
        }))
        .map_err(|_| Failure::GiveUp("the message could not be encoded".to_owned()))?;
        let signature = domain::webhooks::signature(
            endpoint.secret.expose_secret().as_bytes(),
            now.timestamp(),
            &body,
        );
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(domain::webhooks::SIGNATURE_HEADER, signature)
            .header(domain::webhooks::EVENT_ID_HEADER, id)
            .body(body)
            .send()
            .await
            .map_err(|error| {
                if let Some(refused) = crate::outbound::refusal_in(&error) {
                    // Its name resolves inside the network: it will not
                    // get better by trying again.
                    return Failure::GiveUp(refused.to_string());
                }
                Failure::Retry(if error.is_timeout() {
                    "the receiver did not answer in time".to_owned()
                } else {
                    "could not reach the receiver".to_owned()
                })
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Failure::Retry(format!(
                "the receiver answered with status {}",
                response.status().as_u16()
            )))
        }
    }
}

enum Failure {
    /// Worth another try later.
    Retry(String),
    /// Never going to work: recorded and destroyed now.
    GiveUp(String),
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

async fn send(
    store: &Store,
    couriers: &Couriers,
    due: &DueMessage,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Failure> {
    match &due.message {
        Outgoing::Email(mail) => match &couriers.mail {
            Some(transport) => {
                transport
                    .send(&due.id, &due.purpose, mail)
                    .await
                    .map_err(|failure| match failure {
                        MailFailure::Later(reason) => Failure::Retry(reason),
                        MailFailure::Never(reason) => Failure::GiveUp(reason),
                    })
            }
            None => Err(Failure::Retry("no mail transport on this node".to_owned())),
        },
        Outgoing::Webhook(webhook) => couriers.webhooks.post(store, &due.id, webhook, now).await,
    }
}

/// Sends every message that is due now, once.
pub async fn deliver_due(
    store: &Store,
    couriers: &Couriers,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Delivery, StoreError> {
    let claimer = store.clone();
    let kinds = couriers.kinds();
    let due = tokio::task::spawn_blocking(move || claimer.claim_due(now, 50, &kinds))
        .await
        .map_err(|_| StoreError::Corrupt("the delivery task stopped".to_owned()))??;
    let mut delivery = Delivery::default();
    for message in due {
        let outcome = send(store, couriers, &message, now).await;
        let recorder = store.clone();
        let counted = outcome.is_ok();
        tokio::task::spawn_blocking(move || match outcome {
            Ok(()) => recorder.delivered(&message.id, now),
            Err(Failure::Retry(reason)) => {
                tracing::warn!(id = %message.id, purpose = %message.purpose, attempt = message.attempts + 1, %reason, "delivery failed");
                recorder.delivery_failed(&message, &reason, false, now)
            }
            Err(Failure::GiveUp(reason)) => {
                tracing::warn!(id = %message.id, purpose = %message.purpose, %reason, "delivery given up");
                recorder.delivery_failed(&message, &reason, true, now)
            }
        })
        .await
        .map_err(|_| StoreError::Corrupt("the delivery task stopped".to_owned()))??;
        if counted {
            delivery.sent += 1;
        } else {
            delivery.failed += 1;
        }
    }
    Ok(delivery)
}

/// Runs a delivery pass every five seconds.
pub fn deliver_periodically(store: Store, couriers: Couriers, clock: crate::clock::Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(error) = deliver_due(&store, &couriers, clock.now()).await {
                tracing::warn!(%error, "outbox delivery pass failed");
            }
        }
    });
}
