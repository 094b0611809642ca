//! Keeping outgoing requests (webhooks, alerts, e-mail) out of the network
//! kluis runs in. A target is checked twice: when it is set (its written
//! host), and when a message leaves (every address its name resolves to,
//! right before connecting to one of exactly those addresses, so a name
//! that answers differently the second time cannot slip through).
//! `[outbound] allow_private_targets` turns both checks off for
//! development and tests, where receivers run on this machine.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use domain::net::{Internal, internal, internal_host};

/// A target that is inside the network; never worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the receiver is {0}, which outgoing messages may not reach")]
pub struct RefusedTarget(pub Internal);

/// Why a target could not be used: refused, or not found (for now).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Refused(#[from] RefusedTarget),
    #[error("the receiver's name could not be resolved")]
    Unresolved,
}

/// What the URL's host says before any lookup: refused when it is an
/// internal address written out or a known internal name.
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), RefusedTarget> {
    if allow_private {
        return Ok(());
    }
    match url.host_str().and_then(internal_host) {
        Some(why) => Err(RefusedTarget(why)),
        None => Ok(()),
    }
}

type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. The system's resolver in service; a
/// fixed table in tests, to stand in for a name that points inside.
pub trait HostLookup: Send + Sync {
    fn lookup(&self, host: &str) -> Lookup;
}

/// The operating system's resolver (`getaddrinfo`).
pub struct SystemLookup;

impl HostLookup for SystemLookup {
    fn lookup(&self, host: &str) -> Lookup {
        let host = host.to_owned();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// Names and the addresses they resolve to, nothing else (tests).
pub struct FixedLookup(pub HashMap<String, Vec<IpAddr>>);

impl HostLookup for FixedLookup {
    fn lookup(&self, host: &str) -> Lookup {
        let found = self
            .0
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown name"));
        Box::pin(async move { found })
    }
}

/// Resolves `host` and answers its addresses when none is internal. A
/// written-out address is judged as it is, without a lookup.
pub async fn checked_addresses(
    lookup: &dyn HostLookup,
    host: &str,
    allow_private: bool,
) -> Result<Vec<IpAddr>, TargetError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return match internal(ip) {
            Some(why) if !allow_private => Err(RefusedTarget(why).into()),
            _ => Ok(vec![ip]),
        };
    }
    if !allow_private && let Some(why) = internal_host(bare) {
        return Err(RefusedTarget(why).into());
    }
    let addresses = lookup
        .lookup(bare)
        .await
        .map_err(|_| TargetError::Unresolved)?;
    if addresses.is_empty() {
        return Err(TargetError::Unresolved);
    }
    if !allow_private {
        // One internal address is enough to refuse: which one a connection
        // would use is not ours to choose.
        if let Some(why) = addresses.iter().find_map(|ip| internal(*ip)) {
            return Err(RefusedTarget(why).into());
        }
    }
    Ok(addresses)
}

/// reqwest's resolver for outgoing messages: every name is resolved here,
/// checked, and reqwest connects to one of the checked addresses only.
pub struct CheckedResolver {
    pub lookup: Arc<dyn HostLookup>,
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Arc::clone(&self.lookup);
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = checked_addresses(lookup.as_ref(), &host, allow_private)
                .await
                .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> {
                    match error {
                        TargetError::Refused(refused) => Box::new(refused),
                        unresolved @ TargetError::Unresolved => Box::new(unresolved),
                    }
                })?;
            let addresses: reqwest::dns::Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addresses)
        })
    }
}

/// The refusal somewhere in an error's chain of causes, if any.
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<RefusedTarget> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(refused) = error.downcast_ref::<RefusedTarget>() {
            return Some(*refused);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> FixedLookup {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in entries {
            map.entry((*name).to_owned())
                .or_default()
                .push(ip.parse().expect("an address"));
        }
        FixedLookup(map)
    }

    #[tokio::test]
    async fn a_name_with_any_internal_address_is_refused() {
        let lookup = table(&[
            ("mixed.example", "93.184.216.34"),
            ("mixed.example", "10.1.2.3"),
            ("public.example", "93.184.216.34"),
        ]);
        let refused = checked_addresses(&lookup, "mixed.example", false).await;
        assert!(matches!(
            refused,
            Err(TargetError::Refused(RefusedTarget(Internal::Private)))
        ));
        let allowed = checked_addresses(&lookup, "public.example", false)
            .await
            .expect("public");
        assert_eq!(
            allowed,
            vec!["93.184.216.34".parse::<IpAddr>().expect("ip")]
        );
    }

    #[tokio::test]
    async fn written_addresses_and_known_names_are_refused_without_a_lookup() {
        let lookup = table(&[]);
        for host in [
            "127.0.0.1",
            "[::1]",
            "169.254.169.254",
            "localhost",
            "metadata.google.internal",
        ] {
            assert!(
                matches!(
                    checked_addresses(&lookup, host, false).await,
                    Err(TargetError::Refused(_))
                ),
                "{host}"
            );
        }
    }

    #[tokio::test]
    async fn the_opt_in_lets_internal_targets_through() {
        let lookup = table(&[("rebind.example", "127.0.0.1")]);
        assert!(
            checked_addresses(&lookup, "rebind.example", true)
                .await
                .is_ok()
        );
        assert!(checked_addresses(&lookup, "127.0.0.1", true).await.is_ok());
        assert!(matches!(
            checked_addresses(&lookup, "rebind.example", false).await,
            Err(TargetError::Refused(RefusedTarget(Internal::Loopback)))
        ));
    }

    #[tokio::test]
    async fn an_unknown_name_is_unresolved_not_refused() {
        assert!(matches!(
            checked_addresses(&table(&[]), "nowhere.example", false).await,
            Err(TargetError::Unresolved)
        ));
    }

    #[test]
    fn urls_are_judged_by_their_host_as_the_url_parser_reads_it() {
        let url = |raw: &str| reqwest::Url::parse(raw).expect("url");
        // The URL parser reads these numeric forms as 127.0.0.1.
        for raw in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(check_url(&url(raw), false).is_err(), "{raw}");
            assert!(check_url(&url(raw), true).is_ok(), "{raw}");
        }
        assert!(check_url(&url("https://hooks.example.com/"), false).is_ok());
    }
}
