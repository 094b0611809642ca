//! Prometheus metrics: per-operation request counts and latency, errors by
//! code, alerts by rule, policy reloads, pool usage and the outbox backlog.
//! One registry per server, so that several servers in one process (tests)
//! do not mix their counts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use store::Store;

/// Operation names are chosen by clients: beyond this many distinct ones,
/// the rest are counted as `other`, so a client cannot grow the registry
/// without bound.
const MAX_OPERATIONS: usize = 200;
const MAX_OPERATION_NAME: usize = 64;

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    errors: IntCounterVec,
    alerts: IntCounterVec,
    policy_reloads: IntCounterVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    outbox_backlog: IntGaugeVec,
    operations: Mutex<HashSet<String>>,
}

impl app::monitor::Signals for Metrics {
    fn alert(&self, rule: &str) {
        self.0.alerts.with_label_values(&[rule]).inc();
    }

    fn policy_reload(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.0.policy_reloads.with_label_values(&[outcome]).inc();
    }
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some("kluis".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "graphql_requests_total",
                "GraphQL requests by operation name",
            ),
            &["operation"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "graphql_request_duration_seconds",
                "Time from request to answer, by operation name",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["operation"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("graphql_errors_total", "GraphQL errors by extensions.code"),
            &["code"],
        )?;
        let alerts = IntCounterVec::new(
            Opts::new("alerts_total", "Detection rule trips, by rule"),
            &["rule"],
        )?;
        let policy_reloads = IntCounterVec::new(
            Opts::new("policy_reloads_total", "Policy reloads, by outcome"),
            &["outcome"],
        )?;
        let pool_connections = IntGauge::new("pool_connections", "Database connections open")?;
        let pool_idle = IntGauge::new("pool_idle_connections", "Database connections idle")?;
        let pool_max = IntGauge::new("pool_max_connections", "Database connections at most")?;
        let outbox_backlog = IntGaugeVec::new(
            Opts::new("outbox_backlog", "Messages waiting in the outbox, by kind"),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(alerts.clone()))?;
        registry.register(Box::new(policy_reloads.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        Ok(Self(Arc::new(Inner {
            registry,
            requests,
            latency,
            errors,
            alerts,
            policy_reloads,
            pool_connections,
            pool_idle,
            pool_max,
            outbox_backlog,
            operations: Mutex::new(HashSet::new()),
        })))
    }

    /// The label for a client's operation name.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".to_owned();
        };
        // A key pasted as an operation name must not become a label.
        let plain = !name.is_empty()
            && name.len() <= MAX_OPERATION_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !["kmt_", "kat_", "kst_", "kls_"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
        if !plain {
            return "other".to_owned();
        }
        let Ok(mut seen) = self.0.operations.lock() else {
            return "other".to_owned();
        };
        if seen.contains(name) || seen.len() < MAX_OPERATIONS {
            seen.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// Counts one answered GraphQL request.
    pub fn observe_request<'a>(
        &self,
        operation: Option<&str>,
        seconds: f64,
        error_codes: impl Iterator<Item = &'a str>,
    ) {
        let label = self.operation_label(operation);
        self.0.requests.with_label_values(&[&label]).inc();
        self.0.latency.with_label_values(&[&label]).observe(seconds);
        for code in error_codes {
            self.0.errors.with_label_values(&[code]).inc();
        }
    }

    /// The text exposition, with pool and outbox read now. Runs on the
    /// blocking pool (it queries the database).
    pub fn render(&self, store: &Store) -> String {
        let (connections, idle, max) = store.pool_usage();
        self.0.pool_connections.set(i64::from(connections));
        self.0.pool_idle.set(i64::from(idle));
        self.0.pool_max.set(i64::from(max));
        match store.outbox_backlog() {
            Ok(backlog) => {
                self.0.outbox_backlog.reset();
                for kind in ["email", "webhook"] {
                    self.0.outbox_backlog.with_label_values(&[kind]).set(0);
                }
                for (kind, count) in backlog {
                    self.0.outbox_backlog.with_label_values(&[&kind]).set(count);
                }
            }
            Err(error) => tracing::warn!(%error, "outbox backlog unavailable for metrics"),
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.0.registry.gather(), &mut text) {
            tracing::warn!(%error, "metrics could not be encoded");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn client_chosen_operation_names_cannot_grow_the_registry_without_bound() -> anyhow::Result<()>
    {
        let metrics = Metrics::new()?;
        assert_eq!(
            metrics.operation_label(Some("Availability")),
            "Availability"
        );
        assert_eq!(metrics.operation_label(None), "anonymous");
        assert_eq!(metrics.operation_label(Some("drop table;")), "other");
        assert_eq!(metrics.operation_label(Some(&"x".repeat(65))), "other");
        for n in 0..300 {
            metrics.operation_label(Some(&format!("op{n}")));
        }
        assert_eq!(metrics.operation_label(Some("op299")), "other");
        assert_eq!(
            metrics.operation_label(Some("Availability")),
            "Availability"
        );
        Ok(())
    }
}
