//! Payment gateways behind `domain::payments::PaymentGateway`, and the one
//! registry that builds them from configuration. Adding a provider is one
//! new folder (`mod.rs` for the flow, `wire.rs` for its JSON) and one line
//! in [`build_gateways`]; see README.md.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use domain::DomainError;
use domain::payments::PaymentGateway;
use serde::Deserialize;

#[cfg(feature = "onsite")]
pub mod onsite;
#[cfg(feature = "paypal")]
pub mod paypal;
#[cfg(feature = "stripe")]
pub mod stripe;

/// Payment settings (`[payments]` in kluis.toml). A gateway without its
/// section is not configured and refused by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    #[cfg(feature = "stripe")]
    pub stripe: Option<stripe::StripeConfig>,
    #[cfg(feature = "paypal")]
    pub paypal: Option<paypal::PayPalConfig>,
    #[cfg(feature = "onsite")]
    pub onsite: Option<onsite::OnsiteConfig>,
    /// Venue id to the gateways it accepts; a venue not listed accepts
    /// every configured gateway.
    #[serde(default)]
    pub venues: HashMap<String, Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("payments.{gateway}: {reason}")]
    Config {
        gateway: &'static str,
        reason: String,
    },
}

/// The configured gateways, by name.
#[derive(Clone, Default)]
pub struct Gateways {
    gateways: BTreeMap<&'static str, Arc<dyn PaymentGateway>>,
    venues: HashMap<String, Vec<String>>,
}

/// Known gateway names, configured or not, for clear refusals.
pub const KNOWN: [&str; 3] = ["stripe", "paypal", "onsite"];

impl Gateways {
    /// The gateway with this name, if it is configured and the venue
    /// accepts it; otherwise BAD_USER_INPUT naming it.
    pub fn for_venue(
        &self,
        name: &str,
        venue: &str,
    ) -> Result<Arc<dyn PaymentGateway>, DomainError> {
        let refuse = |why: &str| DomainError::invalid("gateway", format!("`{name}` {why}"));
        if !KNOWN.contains(&name) {
            return Err(refuse(
                "is not a payment gateway kluis knows (stripe, paypal, onsite)",
            ));
        }
        let gateway = self
            .gateways
            .get(name)
            .ok_or_else(|| refuse("is not configured on this server"))?;
        if let Some(allowed) = self.venues.get(venue)
            && !allowed.iter().any(|g| g == name)
        {
            return Err(refuse("is not enabled for this venue"));
        }
        Ok(Arc::clone(gateway))
    }

    /// A configured gateway by name, whatever the venue (webhooks).
    pub fn named(&self, name: &str) -> Option<Arc<dyn PaymentGateway>> {
        self.gateways.get(name).map(Arc::clone)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.gateways.keys().copied().collect()
    }
}

/// Builds every configured gateway. The one place that knows them all.
pub fn build_gateways(config: &PaymentsConfig) -> Result<Gateways, PluginError> {
    // reqwest's rustls needs a crypto provider; ring builds faster than the
    // default aws-lc. Installing twice is harmless.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let mut gateways: BTreeMap<&'static str, Arc<dyn PaymentGateway>> = BTreeMap::new();
    #[cfg(feature = "stripe")]
    if let Some(stripe) = &config.stripe {
        gateways.insert("stripe", Arc::new(stripe::Stripe::new(stripe.clone())?));
    }
    #[cfg(feature = "paypal")]
    if let Some(paypal) = &config.paypal {
        gateways.insert("paypal", Arc::new(paypal::PayPal::new(paypal.clone())?));
    }
    #[cfg(feature = "onsite")]
    if config.onsite.as_ref().is_some_and(|onsite| onsite.enabled) {
        gateways.insert("onsite", Arc::new(onsite::Onsite));
    }
    for (venue, names) in &config.venues {
        if let Some(unknown) = names.iter().find(|n| !gateways.contains_key(n.as_str())) {
            return Err(PluginError::Config {
                gateway: "venues",
                reason: format!("venue {venue} enables `{unknown}`, which is not configured"),
            });
        }
    }
    Ok(Gateways {
        gateways,
        venues: config.venues.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_unconfigured_and_disabled_gateways_are_refused_by_name() {
        let mut config = PaymentsConfig {
            onsite: Some(onsite::OnsiteConfig { enabled: true }),
            ..PaymentsConfig::default()
        };
        config
            .venues
            .insert("v1".to_owned(), vec!["onsite".to_owned()]);
        let gateways = build_gateways(&config).expect("builds");
        assert!(gateways.for_venue("onsite", "v1").is_ok());
        assert!(
            gateways.for_venue("onsite", "v2").is_ok(),
            "unlisted venues accept all"
        );
        let error = gateways
            .for_venue("stripe", "v1")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("gateway: `stripe` is not configured on this server")
        );
        let error = gateways
            .for_venue("bitcoin", "v1")
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("`bitcoin` is not a payment gateway")));
    }

    #[test]
    fn a_venue_cannot_enable_an_unconfigured_gateway() {
        let mut config = PaymentsConfig::default();
        config
            .venues
            .insert("v1".to_owned(), vec!["stripe".to_owned()]);
        assert!(build_gateways(&config).is_err());
    }
}
