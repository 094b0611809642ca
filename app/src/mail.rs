//! E-mail out of the outbox: SMTP through lettre when configured, the log
//! in development.

use std::net::IpAddr;
use std::sync::Arc;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use store::Mail;

use crate::outbound::{HostLookup, TargetError, checked_addresses};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid setting `smtp_url`: {0}")]
    SmtpUrl(String),
    #[error("invalid setting `mail_from`: {0}")]
    From(String),
    #[error("the HTTP client for webhooks could not be built")]
    Http,
}

/// Why a message did not leave, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailFailure {
    Later(String),
    Never(String),
}

/// The mail server of `smtp_url`, resolved and checked before every
/// message and then reached at a checked address, with TLS still verified
/// against the name in the URL (lettre would resolve the name again
/// itself, after the check).
#[derive(Clone)]
pub struct Relay {
    url: Box<reqwest::Url>,
    lookup: Arc<dyn HostLookup>,
    allow_private: bool,
}

/// How messages leave this node.
#[derive(Clone)]
pub enum Transport {
    Smtp {
        relay: Relay,
        from: lettre::message::Mailbox,
    },
    /// Development without SMTP: a log line per message, nothing personal.
    Log,
}

impl Transport {
    /// The transport the settings ask for; `None` in production without
    /// SMTP (messages wait in the outbox until it is configured).
    pub fn from_settings(
        settings: &crate::settings::OutboxSettings,
        lookup: Arc<dyn HostLookup>,
    ) -> Result<Option<Self>, MailError> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        match &settings.smtp_url {
            Some(url) => {
                // The URL may hold a password: name the problem only.
                let invalid =
                    || MailError::SmtpUrl("not a valid smtp:// or smtps:// URL".to_owned());
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.0.expose_secret())
                    .map_err(|_| invalid())?;
                let parsed = reqwest::Url::parse(url.0.expose_secret()).map_err(|_| invalid())?;
                // Fails at start, not at the first message.
                relay_at(&parsed, IpAddr::from([192, 0, 2, 1])).map_err(|()| invalid())?;
                let relay = Relay {
                    url: Box::new(parsed),
                    lookup,
                    allow_private: settings.outbound.allow_private_targets,
                };
                Ok(Some(Self::Smtp { relay, from }))
            }
            None if settings.env == crate::settings::Environment::Development => {
                Ok(Some(Self::Log))
            }
            None => Ok(None),
        }
    }

    /// Sends one message; the error names the kind of failure only (the
    /// server's own words may echo the address).
    pub(crate) async fn send(
        &self,
        id: &str,
        purpose: &str,
        mail: &Mail,
    ) -> Result<(), MailFailure> {
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
            Self::Smtp { relay, from } => {
                let to: lettre::message::Mailbox = mail.to.expose().parse().map_err(|_| {
                    MailFailure::Later("the recipient is not a deliverable address".to_owned())
                })?;
                let message = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(mail.subject.clone())
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(mail.body.clone())
                    .map_err(|_| MailFailure::Later("the message could not be built".to_owned()))?;
                checked_relay(relay)
                    .await?
                    .send(message)
                    .await
                    .map(|_| ())
                    // lettre's errors can quote the server, which may echo
                    // the address: keep only the kind of failure.
                    .map_err(|e| MailFailure::Later(smtp_failure(&e)))
            }
        }
    }
}

/// Resolves the mail server's name, refuses it when any address is
/// internal, and answers a transport to a checked address.
async fn checked_relay(relay: &Relay) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailFailure> {
    let url = relay.url.as_ref();
    let host = url.host_str().unwrap_or_default();
    let addresses = checked_addresses(relay.lookup.as_ref(), host, relay.allow_private)
        .await
        .map_err(|error| match error {
            TargetError::Refused(refused) => MailFailure::Never(format!("smtp_url: {refused}")),
            TargetError::Unresolved => {
                MailFailure::Later("the mail server's name could not be resolved".to_owned())
            }
        })?;
    let first = addresses.first().copied().ok_or_else(|| {
        MailFailure::Later("the mail server's name could not be resolved".to_owned())
    })?;
    relay_at(url, first).map_err(|()| {
        MailFailure::Never("smtp_url is not a valid smtp:// or smtps:// URL".to_owned())
    })
}

/// A transport to `address` for the server `url` names, as lettre's
/// `from_url` builds it (ports, TLS modes, credentials, EHLO name), with
/// TLS verified against the name in the URL.
fn relay_at(url: &reqwest::Url, address: IpAddr) -> Result<AsyncSmtpTransport<Tokio1Executor>, ()> {
    let host = url.host_str().ok_or(())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned();
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let parameters = || TlsParameters::new(host.clone()).map_err(|_| ());
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string());
    let mut builder = match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => builder.port(url.port().unwrap_or(SMTP_PORT)),
        ("smtp", Some("required")) => builder
            .port(url.port().unwrap_or(SUBMISSION_PORT))
            .tls(Tls::Required(parameters()?)),
        ("smtp", Some("opportunistic")) => builder
            .port(url.port().unwrap_or(SUBMISSION_PORT))
            .tls(Tls::Opportunistic(parameters()?)),
        ("smtps", _) => builder
            .port(url.port().unwrap_or(SUBMISSIONS_PORT))
            .tls(Tls::Wrapper(parameters()?)),
        _ => return Err(()),
    };
    if url.path().len() > 1 {
        builder = builder.hello_name(ClientId::Domain(url.path().trim_matches('/').to_owned()));
    }
    if let Some(password) = url.password() {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| ())
        };
        builder = builder.credentials(Credentials::new(decode(url.username())?, decode(password)?));
    }
    Ok(builder.build())
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
