//! A venue's webhook: where it hears about its bookings (created, changed,
//! cancelled, status changes) as signed JSON holding ids and times only.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ports::VenueRepository;
use domain::{DomainError, VenueId};
use secrecy::ExposeSecret;

use super::access::{at_field, venue_reference};
use super::context::{blocking, now, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE, READ};
use super::payload::{Checks, UserError, outcome};
use super::types::VenueObject;

/// Longer URLs are refused rather than stored.
const MAX_URL_LENGTH: usize = 2_000;

/// A venue's endpoint as its managers see it: never the secret.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct VenueWebhook {
    pub url: String,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    venue_id: String,
}

#[ComplexObject]
impl VenueWebhook {
    /// The venue whose bookings it hears about.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, Some(&self.venue_id)).await
    }
}

#[derive(InputObject)]
pub struct SetVenueWebhookInput {
    pub venue_id: ID,
    /// `https://…` (`http://` only to this machine), at most 2000
    /// characters, no user name or password, no private network.
    pub url: String,
}

/// A freshly made endpoint, with the signing secret shown this once.
#[derive(SimpleObject, Default)]
pub struct SetVenueWebhookPayload {
    pub webhook: Option<VenueWebhook>,
    /// Verify each message's `Kluis-Signature` header with it: HMAC-SHA256
    /// over `<t>.<body>`, see the README. It is not shown again; setting
    /// the webhook again makes a new one.
    pub secret: Option<String>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RemoveVenueWebhookInput {
    pub venue_id: ID,
}

#[derive(SimpleObject, Default)]
pub struct RemoveVenueWebhookPayload {
    /// Whether the venue had a webhook.
    pub removed: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
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

/// The venue `raw` names, if the caller may change its webhook (another
/// venue reads as NOT_FOUND, as an unknown one).
async fn venue_to_change(
    ctx: &Context<'_>,
    raw: &ID,
    object: coordinates::Coordinate,
) -> Result<VenueId> {
    let venue = VenueId::parse(raw)
        .map_err(|_| DomainError::invalid("venueId", "not a venue id"))
        .or_gql()?;
    guard::require_in_venue(ctx, venue, object, EXECUTE, "venue")
        .map_err(|e| at_field(e, "venueId"))?;
    let store = store(ctx).clone();
    blocking(move || store.venue(venue))
        .await?
        .ok_or_else(|| at_field(api_error(Code::NotFound, "no such venue"), "venueId"))?;
    Ok(venue)
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
            venue_id: venue.to_string(),
        }))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Sends the venue's booking events to `url`, signed with a new secret
    /// (in the payload this once). Replaces an earlier endpoint and its
    /// secret.
    async fn set_venue_webhook(
        &self,
        ctx: &Context<'_>,
        input: SetVenueWebhookInput,
    ) -> Result<SetVenueWebhookPayload> {
        let allow_private = ctx
            .data_opt::<crate::config::Outbound>()
            .is_some_and(|outbound| outbound.allow_private_targets);
        let mut checks = Checks::default();
        let venue = checks.take(
            venue_to_change(
                ctx,
                &input.venue_id,
                coordinates::MUTATION_SET_VENUE_WEBHOOK,
            )
            .await,
        );
        let url = checks.take(check_url(&input.url, allow_private).map_err(|e| at_field(e, "url")));
        let user_errors = checks.finish()?;
        let (Some(venue), Some(url)) = (venue, url) else {
            return Ok(SetVenueWebhookPayload {
                user_errors,
                ..SetVenueWebhookPayload::default()
            });
        };
        let store = store(ctx).clone();
        let at = now(ctx);
        let endpoint = blocking(move || store.set_venue_webhook(venue, &url, at)).await?;
        Ok(SetVenueWebhookPayload {
            secret: Some(endpoint.secret.expose_secret().to_owned()),
            webhook: Some(VenueWebhook {
                url: endpoint.url,
                created_at: endpoint.created_at,
                venue_id: venue.to_string(),
            }),
            user_errors: Vec::new(),
        })
    }

    /// Stops the venue's webhook; `removed` says whether there was one.
    async fn remove_venue_webhook(
        &self,
        ctx: &Context<'_>,
        input: RemoveVenueWebhookInput,
    ) -> Result<RemoveVenueWebhookPayload> {
        let work = async {
            let venue = venue_to_change(
                ctx,
                &input.venue_id,
                coordinates::MUTATION_REMOVE_VENUE_WEBHOOK,
            )
            .await?;
            let store = store(ctx).clone();
            blocking(move || store.remove_venue_webhook(venue)).await
        };
        let (removed, user_errors) = outcome(work.await)?;
        Ok(RemoveVenueWebhookPayload {
            removed: removed.unwrap_or(false),
            user_errors,
        })
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
