//! A venue's webhook: where it hears about its bookings (created, changed,
//! cancelled, status changes) as signed JSON holding ids and times only.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::VenueId;
use domain::ports::VenueRepository;
use secrecy::ExposeSecret;

use super::context::{blocking, now, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE, READ};

/// Longer URLs are refused rather than stored.
const MAX_URL_LENGTH: usize = 2_000;

/// A venue's endpoint as its managers see it: never the secret.
#[derive(SimpleObject)]
pub struct VenueWebhook {
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// A freshly made endpoint, with the signing secret shown this once.
#[derive(SimpleObject)]
pub struct VenueWebhookSecret {
    pub url: String,
    /// Verify each message's `Kluis-Signature` header with it: HMAC-SHA256
    /// over `<t>.<body>`, see the README. It is not shown again; setting
    /// the webhook again makes a new one.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// Accepts `https://` anywhere and `http://` only to this machine (a local
/// relay, or tests): messages are signed but not encrypted by us. No user
/// name or password in the URL: it is stored and shown as is. Unless the
/// operator allows private targets, no host inside the network either
/// (loopback, private, link-local, metadata...): the outbox posts from
/// every node, inside its network. Names are checked again, resolved,
/// when a message leaves.
fn check_url(raw: &str, allow_private: bool) -> Result<String> {
    let invalid = |reason: &str| api_error(Code::BadUserInput, format!("url: {reason}"));
    if raw.len() > MAX_URL_LENGTH {
        return Err(invalid("too long"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| invalid("not a URL"))?;
    let host = url.host_str().ok_or_else(|| invalid("needs a host"))?;
    app::outbound::check_url(&url, allow_private).map_err(|refused| {
        invalid(&format!(
            "must not point into a private network ({} here)",
            refused.0
        ))
    })?;
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(invalid("must use https:// (http:// only to localhost)")),
        _ => return Err(invalid("must be an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain a user name or password"));
    }
    Ok(url.to_string())
}

async fn ensure_venue_exists(ctx: &Context<'_>, venue: VenueId) -> Result<()> {
    let store = store(ctx).clone();
    blocking(move || store.venue(venue))
        .await?
        .ok_or_else(|| api_error(Code::NotFound, "no such venue"))?;
    Ok(())
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The venue's webhook endpoint, if it has one.
    async fn venue_webhook(&self, ctx: &Context<'_>, venue_id: ID) -> Result<Option<VenueWebhook>> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(ctx, venue, coordinates::QUERY_VENUE_WEBHOOK, READ, "venue")?;
        let store = store(ctx).clone();
        let endpoint = blocking(move || store.venue_webhook(&venue.to_string())).await?;
        Ok(endpoint.map(|endpoint| VenueWebhook {
            url: endpoint.url,
            created_at: endpoint.created_at,
        }))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Sends the venue's booking events to `url`, signed with a new secret
    /// (returned this once). Replaces an earlier endpoint and its secret.
    async fn set_venue_webhook(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        url: String,
    ) -> Result<VenueWebhookSecret> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_SET_VENUE_WEBHOOK,
            EXECUTE,
            "venue",
        )?;
        let allow_private = ctx
            .data_opt::<crate::config::Outbound>()
            .is_some_and(|outbound| outbound.allow_private_targets);
        let url = check_url(&url, allow_private)?;
        ensure_venue_exists(ctx, venue).await?;
        let store = store(ctx).clone();
        let at = now(ctx);
        let saved = url.clone();
        let endpoint = blocking(move || store.set_venue_webhook(venue, &saved, at)).await?;
        Ok(VenueWebhookSecret {
            url: endpoint.url,
            secret: endpoint.secret.expose_secret().to_owned(),
            created_at: endpoint.created_at,
        })
    }

    /// Stops the venue's webhook; answers whether there was one.
    async fn remove_venue_webhook(&self, ctx: &Context<'_>, venue_id: ID) -> Result<bool> {
        let venue = VenueId::parse(&venue_id).or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_REMOVE_VENUE_WEBHOOK,
            EXECUTE,
            "venue",
        )?;
        let store = store(ctx).clone();
        blocking(move || store.remove_venue_webhook(venue)).await
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn https_anywhere_and_http_only_to_this_machine() {
        for allow_private in [false, true] {
            assert!(check_url("https://hooks.example.com/kluis", allow_private).is_ok());
            assert!(check_url("http://hooks.example.com/kluis", allow_private).is_err());
            assert!(check_url("ftp://hooks.example.com/", allow_private).is_err());
            assert!(check_url("https://user:pw@hooks.example.com/", allow_private).is_err());
            assert!(check_url("not a url", allow_private).is_err());
            assert!(
                check_url(
                    &format!("https://example.com/{}", "a".repeat(2_100)),
                    allow_private
                )
                .is_err()
            );
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(check_url("http://localhost/hook", true).is_ok());
        assert!(check_url("http://[::1]:9000/", true).is_ok());
    }

    #[test]
    fn internal_hosts_are_refused_unless_allowed() {
        for raw in [
            "http://127.0.0.1:8080/hook",
            "https://127.0.0.1/",
            "http://localhost/hook",
            "http://[::1]:9000/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://100.100.100.200/",
            "https://10.0.0.1/",
            "https://192.168.1.10/",
            "https://[::ffff:10.0.0.1]/",
            "https://0.0.0.0/",
            "https://2130706433/",
            "https://metadata.google.internal/computeMetadata/v1/",
        ] {
            let refused = check_url(raw, false).expect_err(raw);
            assert!(
                refused.message.starts_with("url: "),
                "{raw}: {}",
                refused.message
            );
            assert!(check_url(raw, true).is_ok(), "{raw}");
        }
    }
}
