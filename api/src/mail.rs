//! E-mail out of the outbox: SMTP through lettre when configured, the log
//! in development.

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use store::Mail;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid setting `smtp_url`: {0}")]
    SmtpUrl(String),
    #[error("invalid setting `mail_from`: {0}")]
    From(String),
    #[error("the HTTP client for webhooks could not be built")]
    Http,
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

    /// Sends one message; the error names the kind of failure only (the
    /// server's own words may echo the address).
    pub(crate) async fn send(&self, id: &str, purpose: &str, mail: &Mail) -> Result<(), String> {
        match self {
            Self::Log => {
                tracing::info!(
                    %id,
                    %purpose,
                    to = %mail.to,
                    subject = %mail.subject,
                    "e-mail delivered to the log (no smtp_url in development; body withheld)"
                );
                Ok(())
            }
            Self::Smtp { mailer, from } => {
                let to: lettre::message::Mailbox = mail
                    .to
                    .expose()
                    .parse()
                    .map_err(|_| "the recipient is not a deliverable address".to_owned())?;
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(mail.body.clone())
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
