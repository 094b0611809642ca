//! Delivering the outbox: SMTP through lettre when configured, the log in
//! development. One pass claims what is due, sends it and records the
//! outcome; the server runs a pass every few seconds.

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use store::{DueMail, Store};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid setting `smtp_url`: {0}")]
    SmtpUrl(String),
    #[error("invalid setting `mail_from`: {0}")]
    From(String),
}

/// How messages leave this node.
#[derive(Clone)]
pub enum Transport {
    Smtp {
        mailer: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: lettre::message::Mailbox,
    },
    /// Development without SMTP: a log line per message, nothing personal.
    Log,
}

impl Transport {
    /// The transport the settings ask for; `None` in production without
    /// SMTP (messages wait in the outbox until it is configured).
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Option<Self>, MailError> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        match &settings.smtp_url {
            Some(url) => {
                let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.0.expose_secret())
                    // The URL may hold a password: name the problem only.
                    .map_err(|_| {
                        MailError::SmtpUrl("not a valid smtp:// or smtps:// URL".to_owned())
                    })?
                    .build();
                Ok(Some(Self::Smtp {
                    mailer: Box::new(mailer),
                    from,
                }))
            }
            None if settings.env == crate::config::Environment::Development => Ok(Some(Self::Log)),
            None => Ok(None),
        }
    }

    async fn send(&self, due: &DueMail) -> Result<(), String> {
        match self {
            Self::Log => {
                tracing::info!(
                    id = %due.id,
                    purpose = %due.purpose,
                    to = %due.mail.to,
                    subject = %due.mail.subject,
                    "e-mail delivered to the log (no smtp_url in development; body withheld)"
                );
                Ok(())
            }
            Self::Smtp { mailer, from } => {
                let to: lettre::message::Mailbox = due
                    .mail
                    .to
                    .expose()
                    .parse()
                    .map_err(|_| "the recipient is not a deliverable address".to_owned())?;
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(due.mail.subject.clone())
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(due.mail.body.clone())
                    .map_err(|_| "the message could not be built".to_owned())?;
                mailer
                    .send(message)
                    .await
                    .map(|_| ())
                    // lettre's errors can quote the server, which may echo
                    // the address: keep only the kind of failure.
                    .map_err(|e| smtp_failure(&e))
            }
        }
    }
}

fn smtp_failure(error: &lettre::transport::smtp::Error) -> String {
    if error.is_permanent() {
        "the mail server refused the message permanently".to_owned()
    } else if error.is_transient() {
        "the mail server refused the message for now".to_owned()
    } else if error.is_timeout() {
        "the mail server did not answer in time".to_owned()
    } else {
        "could not reach the mail server".to_owned()
    }
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

/// Sends every message that is due now, once.
pub async fn deliver_due(
    store: &Store,
    transport: &Transport,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Delivery, store::StoreError> {
    let claimer = store.clone();
    let due = tokio::task::spawn_blocking(move || claimer.claim_due_mail(now, 50))
        .await
        .map_err(|_| store::StoreError::Corrupt("the delivery task stopped".to_owned()))??;
    let mut delivery = Delivery::default();
    for message in due {
        let outcome = transport.send(&message).await;
        let recorder = store.clone();
        let counted = outcome.is_ok();
        tokio::task::spawn_blocking(move || match outcome {
            Ok(()) => recorder.mail_sent(&message.id, now),
            Err(reason) => {
                tracing::warn!(id = %message.id, attempt = message.attempts + 1, %reason, "e-mail delivery failed");
                recorder.mail_failed(&message, &reason, now)
            }
        })
        .await
        .map_err(|_| store::StoreError::Corrupt("the delivery task stopped".to_owned()))??;
        if counted {
            delivery.sent += 1;
        } else {
            delivery.failed += 1;
        }
    }
    Ok(delivery)
}

/// Runs a delivery pass every five seconds.
pub fn deliver_periodically(store: Store, transport: Transport, clock: crate::clock::Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(error) = deliver_due(&store, &transport, clock.now()).await {
                tracing::warn!(%error, "e-mail delivery pass failed");
            }
        }
    });
}
