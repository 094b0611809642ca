//! Rate limits per API key, per staff session and per client address, on
//! requests and on query complexity spent, in one-minute windows. Each
//! node counts locally and adds its counts to the database about once a
//! second, reading back what all nodes spent: limits hold across nodes
//! within that second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use store::{RateDelta, Store};

use crate::config::RateLimits;
use app::auth::Principal;

/// A caller's budget: requests and complexity per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub requests: i64,
    pub complexity: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    window: Option<DateTime<Utc>>,
    /// All nodes' counts as of the last sync (this node's included).
    synced_requests: i64,
    synced_complexity: i64,
    /// This node's counts since the last sync.
    pending_requests: i64,
    pending_complexity: i64,
}

#[derive(Clone)]
pub struct RateLimiter {
    counters: Arc<Mutex<HashMap<String, Counter>>>,
    limits: Arc<RateLimits>,
    trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    store: Store,
    monitor: Option<app::monitor::Monitor>,
    /// Where nodes share counts when not through the database.
    redis: Option<redis::Client>,
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

pub use app::auth::client_group;

fn window_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now)
}

impl RateLimiter {
    pub fn new(store: Store, limits: &RateLimits, monitor: Option<app::monitor::Monitor>) -> Self {
        let trusted_proxies = limits
            .trusted_proxies
            .iter()
            // Checked when the settings were loaded.
            .filter_map(|raw| crate::config::parse_network(raw).ok())
            .collect();
        let redis = limits.redis_url.as_ref().and_then(|url| {
            use secrecy::ExposeSecret;
            // Checked when the settings were loaded.
            redis::Client::open(url.0.expose_secret()).ok()
        });
        Self {
            counters: Arc::new(Mutex::new(HashMap::new())),
            limits: Arc::new(limits.clone()),
            trusted_proxies: Arc::new(trusted_proxies),
            store,
            monitor,
            redis,
        }
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one.
    /// A forged header from anyone else is ignored.
    pub fn client_address(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> String {
        let Some(peer) = peer else {
            return "unknown".to_owned();
        };
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|net| net.contains(ip));
        if !trusted(&peer) {
            return peer.to_string();
        }
        let hops = forwarded_for
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter_map(|hop| hop.parse::<IpAddr>().ok());
        let mut client = peer;
        for hop in hops.collect::<Vec<_>>().into_iter().rev() {
            client = hop;
            if !trusted(&hop) {
                break;
            }
        }
        client.to_string()
    }

    /// A client's counter key: never the address itself (see
    /// `app::auth::pseudonym`).
    fn pseudonym(&self, kind: &str, address: &str) -> String {
        app::auth::pseudonym(&self.store.keys().current(), kind, &client_group(address))
    }

    /// The scope a caller's requests count against, and its budget.
    pub fn scope_of(&self, principal: &Principal, address: &str) -> (String, Budget) {
        let complexity = i64::from(self.limits.complexity_per_minute);
        match principal {
            Principal::ApiKey { id, .. } => (
                format!("apikey:{id}"),
                Budget {
                    requests: i64::from(self.limits.api_key_per_minute),
                    complexity,
                },
            ),
            Principal::Staff { session, .. } => (
                format!(
                    "session:{}",
                    hex::encode(&session.expose()[..session.expose().len().min(12)])
                ),
                Budget {
                    requests: i64::from(self.limits.session_per_minute),
                    complexity,
                },
            ),
            Principal::Anonymous | Principal::Guest(_) => (
                self.pseudonym("address", address),
                Budget {
                    requests: i64::from(self.limits.address_per_minute),
                    complexity,
                },
            ),
        }
    }

    /// The scope and budget of provider webhook deliveries from a client.
    pub fn webhook_scope(&self, address: &str) -> (String, Budget) {
        (
            self.pseudonym("webhook", address),
            Budget {
                requests: i64::from(self.limits.webhook_per_minute),
                complexity: i64::MAX,
            },
        )
    }

    /// The scope and budget of credentials that do not hold, per client.
    pub fn bad_credentials_scope(&self, address: &str) -> (String, Budget) {
        (
            self.pseudonym("badauth", address),
            Budget {
                requests: i64::from(self.limits.bad_credentials_per_minute),
                complexity: i64::MAX,
            },
        )
    }

    /// Takes back a request `admit` counted, when it turned out not to
    /// count against that scope (credentials that did hold).
    pub fn refund(&self, scope: &str, now: DateTime<Utc>) {
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        if let Some(counter) = counters.get_mut(scope)
            && counter.window == Some(window_of(now))
        {
            counter.pending_requests -= 1;
        }
    }

    /// Counts a request, or refuses it with the seconds until the window
    /// ends when the scope spent its requests or complexity.
    pub fn admit(&self, scope: &str, budget: Budget, now: DateTime<Utc>) -> Result<(), i64> {
        let window = window_of(now);
        let retry_after = (window + TimeDelta::minutes(1) - now).num_seconds().max(1);
        let Ok(mut counters) = self.counters.lock() else {
            return Ok(());
        };
        let counter = counters.entry(scope.to_owned()).or_default();
        if counter.window != Some(window) {
            *counter = Counter {
                window: Some(window),
                ..Counter::default()
            };
        }
        let requests = counter.synced_requests + counter.pending_requests;
        let complexity = counter.synced_complexity + counter.pending_complexity;
        if requests >= budget.requests || complexity >= budget.complexity {
            return Err(retry_after);
        }
        counter.pending_requests += 1;
        Ok(())
    }

    /// Adds the complexity a request spent to its scope.
    pub fn spend(&self, scope: &str, complexity: usize, now: DateTime<Utc>) {
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        if let Some(counter) = counters.get_mut(scope)
            && counter.window == Some(window_of(now))
        {
            counter.pending_complexity += i64::try_from(complexity).unwrap_or(i64::MAX);
        }
    }

    /// Adds deltas in Redis (a hash per scope and minute, gone after two
    /// minutes) and reads back the totals of all nodes.
    fn add_in_redis(
        &self,
        client: &redis::Client,
        deltas: &[RateDelta],
    ) -> Result<Vec<(i64, i64)>, redis::RedisError> {
        let mut connection =
            client.get_connection_with_timeout(std::time::Duration::from_secs(2))?;
        let mut pipe = redis::pipe();
        for delta in deltas {
            let key = format!(
                "{}:rate:{}:{}",
                self.limits.redis_namespace,
                delta.scope,
                delta.window_start.timestamp()
            );
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg("requests")
                .arg(delta.requests);
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg("complexity")
                .arg(delta.complexity);
            pipe.cmd("EXPIRE").arg(&key).arg(120).ignore();
        }
        let counts: Vec<i64> = pipe.query(&mut connection)?;
        Ok(counts
            .chunks(2)
            .map(|pair| {
                (
                    pair.first().copied().unwrap_or(0),
                    pair.get(1).copied().unwrap_or(0),
                )
            })
            .collect())
    }

    /// Adds this node's counts to the shared store and takes back all
    /// nodes'.
    pub fn sync(&self, now: DateTime<Utc>) -> Result<(), RateLimitError> {
        let current = window_of(now);
        let deltas: Vec<RateDelta> = {
            let Ok(mut counters) = self.counters.lock() else {
                return Ok(());
            };
            counters.retain(|_, counter| counter.window == Some(current));
            // Scopes with nothing new are refreshed too (adding zero), so a
            // node learns what the others spent while it was quiet.
            counters
                .iter()
                .map(|(scope, c)| RateDelta {
                    scope: scope.clone(),
                    window_start: current,
                    requests: c.pending_requests,
                    complexity: c.pending_complexity,
                })
                .collect()
        };
        let totals = match &self.redis {
            Some(client) => {
                // API keys' usual rate is judged on the database's history.
                let keys: Vec<RateDelta> = deltas
                    .iter()
                    .filter(|delta| delta.scope.starts_with("apikey:"))
                    .cloned()
                    .collect();
                self.store.add_rate_counts(&keys)?;
                self.add_in_redis(client, &deltas)?
            }
            None => self.store.add_rate_counts(&deltas)?,
        };
        if let Some(monitor) = &self.monitor {
            for (delta, (requests, _)) in deltas.iter().zip(&totals) {
                if delta.scope.starts_with("apikey:") {
                    monitor.api_key_rate(&delta.scope, delta.window_start, *requests, now);
                }
            }
        }
        let Ok(mut counters) = self.counters.lock() else {
            return Ok(());
        };
        for (delta, (requests, complexity)) in deltas.iter().zip(totals) {
            if let Some(counter) = counters.get_mut(&delta.scope)
                && counter.window == Some(delta.window_start)
            {
                counter.pending_requests -= delta.requests;
                counter.pending_complexity -= delta.complexity;
                counter.synced_requests = requests;
                counter.synced_complexity = complexity;
            }
        }
        Ok(())
    }

    /// Syncs every second and forgets old windows every few minutes.
    pub fn sync_periodically(self, clock: app::clock::Clock) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                ticks += 1;
                let limiter = self.clone();
                let now = clock.now();
                let cleanup = ticks.is_multiple_of(300);
                let synced = tokio::task::spawn_blocking(move || {
                    limiter.sync(now)?;
                    if cleanup {
                        limiter.store.forget_rate_windows_except_keys(
                            now - TimeDelta::minutes(10),
                            now - TimeDelta::hours(25),
                        )?;
                    }
                    Ok::<_, RateLimitError>(())
                })
                .await;
                if let Ok(Err(error)) = synced {
                    tracing::warn!(%error, "rate-limit counters could not be shared");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::client_group;

    #[test]
    fn ipv4_addresses_each_count_alone() {
        assert_eq!(client_group("198.51.100.7"), "198.51.100.7");
        assert_ne!(client_group("198.51.100.7"), client_group("198.51.100.8"));
    }

    #[test]
    fn ipv6_addresses_of_one_64_network_count_together() {
        let one = client_group("2001:db8:1:2::1");
        assert_eq!(one, "2001:db8:1:2::/64");
        assert_eq!(one, client_group("2001:db8:1:2:ffff:ffff:ffff:fffe"));
        assert_eq!(one, client_group("2001:DB8:1:2:0:0:0:9"));
    }

    #[test]
    fn neighbouring_ipv6_networks_count_apart() {
        assert_ne!(
            client_group("2001:db8:1:2::1"),
            client_group("2001:db8:1:3::1")
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_count_as_the_ipv4_address() {
        assert_eq!(client_group("::ffff:198.51.100.7"), "198.51.100.7");
        assert_ne!(
            client_group("::ffff:198.51.100.7"),
            client_group("::ffff:198.51.100.8")
        );
    }

    #[test]
    fn what_is_not_an_address_counts_as_itself() {
        assert_eq!(client_group("unknown"), "unknown");
    }
}
