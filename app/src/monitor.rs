//! Watching the door: the detection rules, run where the events happen
//! (logins, the audit trail of each request, policy reloads, integrity
//! failures). Counts come from the database, so the rules hold across
//! nodes. A rule that cannot be evaluated is logged and never fails the
//! request that triggered it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::crypto::Field;
use store::{AlertNotices, AuditEvent, NewAlert, Store};

use crate::principal::Principal;
use crate::settings::{BulkReadResponse, Monitoring};

/// The rules, as alerts name them.
pub mod rules {
    pub const FAILED_LOGINS_ACCOUNT: &str = "failed_logins_account";
    pub const FAILED_LOGINS_ADDRESS: &str = "failed_logins_address";
    pub const LOGIN_AFTER_FAILURES: &str = "login_after_failures";
    pub const BULK_READ: &str = "bulk_read";
    pub const EXPORT_RATE: &str = "export_rate";
    pub const ERASURE_RATE: &str = "erasure_rate";
    pub const POLICY_REJECTED: &str = "policy_rejected";
    pub const INTEGRITY_FAILURE: &str = "integrity_failure";
    pub const API_KEY_NEW_NETWORK: &str = "api_key_new_network";
    pub const API_KEY_RATE: &str = "api_key_rate";
    pub const LATE_PAYMENT_REFUNDED: &str = "late_payment_refunded";
    pub const LATE_PAYMENT_NOT_REFUNDED: &str = "late_payment_not_refunded";
    pub const PARTY_REFUND_NOT_TAKEN: &str = "party_refund_not_taken";
}

/// A client address stands in alerts as a keyed hash: alerts leave the
/// server (webhook, e-mail), and an address is personal data. The same
/// address gives the same pseudonym while the key version stays.
const CLIENT_ADDRESS: Field = Field::new("alerts", "client_address");

/// Where the rules' outcomes are counted (the server's metrics).
pub trait Signals: Send + Sync {
    /// A rule raised an alert.
    fn alert(&self, rule: &str);
    /// An edited policy was taken (`true`) or refused.
    fn policy_reload(&self, accepted: bool);
}

#[derive(Clone)]
pub struct Monitor {
    store: Store,
    rules: Arc<Monitoring>,
    notices: Arc<AlertNotices>,
    metrics: Option<Arc<dyn Signals>>,
    /// (key, network) pairs this node already knows are on record.
    known_networks: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
    /// Per principal, what the trail said at the last bulk-read count and
    /// how many records this node has seen it read since.
    bulk_counts: Arc<std::sync::Mutex<std::collections::HashMap<String, BulkCount>>>,
}

/// When a read reservation starts, and where: the rule leaves a venue's
/// day sheets out of its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordStart {
    pub at: DateTime<Utc>,
    pub zone: chrono_tz::Tz,
}

/// Per audited object (`reservation:<id>`), when it starts.
pub type RecordStarts = std::collections::HashMap<String, RecordStart>;

/// The bulk-read count is a query over the principal's whole window of the
/// trail; run on every request it grows with the very reading it watches.
/// It runs when this node's own tally could have crossed the threshold, and
/// at least every `BULK_RECOUNT` for reads made through other nodes.
#[derive(Clone)]
struct BulkCount {
    counted_at: std::time::Instant,
    counted: i64,
    /// Records read through this node since, as the rule would count
    /// them, except that a re-read counts again: an overestimate, so that
    /// reads through this node never cross the threshold uncounted.
    read_since: i64,
    /// The venues whose day sheets are left out, first read first.
    venues: Vec<String>,
}

/// The venue-local dates whose reservations are the day's work when
/// reading between `since` and `now`: from the date at `since` (a sheet
/// read just before midnight stays exempt for the rest of the window) up
/// to, not including, `days` after the date at `now`. `None` when no day
/// is exempt.
fn operational_dates(
    zone: chrono_tz::Tz,
    days: u32,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
    if days == 0 {
        return None;
    }
    let first = since.with_timezone(&zone).date_naive();
    let until = now
        .with_timezone(&zone)
        .date_naive()
        .checked_add_days(chrono::Days::new(u64::from(days)))?;
    Some((first, until))
}

enum BulkCheck {
    Skip,
    Now,
    Later,
}

const BULK_RECOUNT: std::time::Duration = std::time::Duration::from_secs(5);
/// Principals tallied before idle ones are forgotten.
const BULK_TALLIES: usize = 10_000;

/// The network an address belongs to, as API-key use is judged: IPv4 /24,
/// IPv6 /48 (one customer's block, roughly).
pub fn network_of(address: &str) -> Option<String> {
    let ip: std::net::IpAddr = address.parse().ok()?;
    let prefix = if ip.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(ip, prefix)
        .ok()
        .map(|net| net.trunc().to_string())
}

/// Whose reads the bulk-read rule watches: accounts and API keys (guests
/// share one principal and reach only their own data), so that other
/// requests skip the hop to the rules altogether.
pub fn watches_reads(principal: &Principal) -> bool {
    matches!(
        principal,
        Principal::Staff { .. } | Principal::ApiKey { .. }
    )
}

impl Monitor {
    pub fn new(store: Store, rules: &Monitoring, metrics: Option<Arc<dyn Signals>>) -> Self {
        let notices = AlertNotices {
            webhook: rules.alert_webhook_url.is_some(),
            // Checked when the settings were loaded.
            emails: rules
                .alert_emails
                .iter()
                .filter_map(|raw| domain::Email::parse("alert_emails", raw).ok())
                .collect(),
        };
        Self {
            store,
            rules: Arc::new(rules.clone()),
            notices: Arc::new(notices),
            metrics,
            known_networks: Arc::default(),
            bulk_counts: Arc::default(),
        }
    }

    fn raise(
        &self,
        rule: &str,
        principal: &str,
        venue: Option<&str>,
        observed: i64,
        now: DateTime<Utc>,
    ) -> Option<store::Raised> {
        if let Some(metrics) = &self.metrics {
            metrics.alert(rule);
        }
        let alert = NewAlert {
            rule: rule.to_owned(),
            principal: principal.to_owned(),
            venue_id: venue.map(str::to_owned),
            observed,
        };
        match self.store.raise_alert(&alert, &self.notices, now) {
            Ok(raised) => {
                if raised.opened {
                    tracing::warn!(%rule, %principal, observed, alert = %raised.id, "alert opened");
                }
                Some(raised)
            }
            Err(error) => {
                tracing::error!(%rule, %error, "an alert could not be recorded");
                None
            }
        }
    }

    /// The pseudonym of a client address in alerts.
    pub fn address_pseudonym(&self, address: &str) -> String {
        let ring = self.store.keys().current();
        match ring.keyed_hash(ring.current_version(), CLIENT_ADDRESS, address.as_bytes()) {
            Ok(hash) => format!("address:{}", hex::encode(&hash[..hash.len().min(8)])),
            Err(_) => "address:unknown".to_owned(),
        }
    }

    /// After a failed login: bursts per account and per client address.
    pub fn login_failed(
        &self,
        user: Option<&str>,
        account_failures: u32,
        address: &str,
        address_failures: u32,
        now: DateTime<Utc>,
    ) {
        if let Some(user) = user
            && account_failures >= self.rules.failed_logins_per_account
        {
            self.raise(
                rules::FAILED_LOGINS_ACCOUNT,
                &format!("user:{user}"),
                None,
                i64::from(account_failures),
                now,
            );
        }
        if address_failures >= self.rules.failed_logins_per_address {
            self.raise(
                rules::FAILED_LOGINS_ADDRESS,
                &self.address_pseudonym(address),
                None,
                i64::from(address_failures),
                now,
            );
        }
    }

    /// After a successful login: one right after a burst of failures may
    /// be the burst that worked.
    pub fn login_succeeded(&self, user: &str, failures_before: u32, now: DateTime<Utc>) {
        if failures_before >= self.rules.failed_logins_per_account {
            self.raise(
                rules::LOGIN_AFTER_FAILURES,
                &format!("user:{user}"),
                None,
                i64::from(failures_before),
                now,
            );
        }
    }

    /// After a request's audit trail was written: bulk reads by accounts
    /// and API keys (guests share one principal and reach only their own
    /// data). `starts` says when the reservations read start.
    pub fn after_request(
        &self,
        principal: &Principal,
        events: &[AuditEvent],
        starts: &RecordStarts,
        now: DateTime<Utc>,
    ) {
        if !watches_reads(principal) {
            return;
        }
        let subject = principal.subject();
        let read: Vec<&AuditEvent> = events
            .iter()
            .filter(|event| event.principal == subject)
            .filter(|event| store::BULK_READ_ACTIONS.contains(&event.action))
            .collect();
        if read.is_empty() {
            return;
        }
        let venue = events
            .iter()
            .filter(|event| event.principal == subject)
            .find_map(|event| event.venue_id.as_deref());
        match self.bulk_count_due(&subject, &read, starts, now) {
            BulkCheck::Skip => {}
            // The request that may have crossed the threshold waits for the
            // verdict, so that the next one is already held back.
            BulkCheck::Now => self.bulk_read(principal, &subject, venue, now),
            // A periodic recount (for reads through other nodes) does not
            // hold up the request that happened to come due.
            BulkCheck::Later => {
                let monitor = self.clone();
                let principal = principal.clone();
                let venue = venue.map(str::to_owned);
                drop(tokio::task::spawn_blocking(move || {
                    monitor.bulk_read(&principal, &subject, venue.as_deref(), now);
                }));
            }
        }
    }

    fn bulk_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::minutes(i64::from(self.rules.bulk_read_minutes))
    }

    /// Adds this request's reads to the principal's tally, as the rule
    /// counts them, and says when the trail must be counted.
    fn bulk_count_due(
        &self,
        subject: &str,
        read: &[&AuditEvent],
        starts: &RecordStarts,
        now: DateTime<Utc>,
    ) -> BulkCheck {
        let Ok(mut counts) = self.bulk_counts.lock() else {
            return BulkCheck::Now;
        };
        let Some(count) = counts.get_mut(subject) else {
            return BulkCheck::Now;
        };
        let since = self.bulk_since(now);
        let venues_exempt = usize::try_from(self.rules.bulk_read_operational_venues).unwrap_or(0);
        let mut counted = 0_i64;
        for event in read {
            let start = (event.action == store::AuditAction::Read)
                .then(|| starts.get(&event.object))
                .flatten();
            let on_sheet = start.is_some_and(|start| {
                operational_dates(
                    start.zone,
                    self.rules.bulk_read_operational_days,
                    since,
                    now,
                )
                .is_some_and(|(first, until)| {
                    let date = start.at.with_timezone(&start.zone).date_naive();
                    first <= date && date < until
                })
            });
            // As the trail is counted: the first venues read, whatever
            // was read of them.
            let exempt = event.action == store::AuditAction::Read
                && event.venue_id.as_ref().is_some_and(|venue| {
                    if !count.venues.contains(venue) && count.venues.len() < venues_exempt {
                        count.venues.push(venue.clone());
                    }
                    on_sheet && count.venues.contains(venue)
                });
            if !exempt {
                counted += 1;
            }
        }
        count.read_since = count.read_since.saturating_add(counted);
        if count.counted.saturating_add(count.read_since) > i64::from(self.rules.bulk_read_records)
        {
            BulkCheck::Now
        } else if count.counted_at.elapsed() >= BULK_RECOUNT {
            // One recount at a time: the next requests see it as fresh.
            count.counted_at = std::time::Instant::now();
            BulkCheck::Later
        } else {
            BulkCheck::Skip
        }
    }

    fn bulk_counted(&self, subject: &str, counted: i64, venues: Vec<String>) {
        if let Ok(mut counts) = self.bulk_counts.lock() {
            if counts.len() >= BULK_TALLIES {
                counts.retain(|_, count| count.counted_at.elapsed() < BULK_RECOUNT * 60);
            }
            counts.insert(
                subject.to_owned(),
                BulkCount {
                    counted_at: std::time::Instant::now(),
                    counted,
                    read_since: 0,
                    venues,
                },
            );
        }
    }

    /// Counts the principal's window of the trail as the rule does: the
    /// first venues it read, the operational window of each in its own
    /// time zone, and what it read outside them.
    fn bulk_recount(
        &self,
        subject: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, Vec<String>), store::StoreError> {
        let since = self.bulk_since(now);
        let days = self.rules.bulk_read_operational_days;
        let venues = if days == 0 {
            Vec::new()
        } else {
            self.store.venues_read_since(
                subject,
                since,
                i64::from(self.rules.bulk_read_operational_venues),
            )?
        };
        let mut windows = Vec::with_capacity(venues.len());
        for venue in &venues {
            // A venue that is gone (or an id that is not one) has no
            // sheets: its reads count.
            let Ok(id) = domain::VenueId::parse(venue) else {
                continue;
            };
            let Some(view) = self.store.venue_view(id)? else {
                continue;
            };
            let zone = view.venue.time_zone;
            if let Some((first, until)) = operational_dates(zone, days, since, now) {
                windows.push(store::OperationalWindow {
                    venue_id: venue.clone(),
                    from: domain::venue::start_of_day(zone, first),
                    until: domain::venue::start_of_day(zone, until),
                });
            }
        }
        let counted = self.store.bulk_reads_since(subject, since, &windows)?;
        Ok((counted, venues))
    }

    /// After an export or erasure by `subject` was audited: above the
    /// hourly rate, an alert. Accounts and API keys only.
    pub fn rights_exercised(
        &self,
        subject: &str,
        action: store::AuditAction,
        venue: Option<&str>,
        now: DateTime<Utc>,
    ) {
        if !(subject.starts_with("user:") || subject.starts_with("apikey:")) {
            return;
        }
        let (rule, limit) = match action {
            store::AuditAction::Export => (rules::EXPORT_RATE, self.rules.exports_per_hour),
            store::AuditAction::Erase => (rules::ERASURE_RATE, self.rules.erasures_per_hour),
            _ => return,
        };
        let since = now - chrono::Duration::hours(1);
        match self.store.actions_since(subject, action, since) {
            Ok(count) if count > i64::from(limit) => {
                self.raise(rule, subject, venue, count, now);
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%rule, %error, "a rule could not be evaluated"),
        }
    }

    fn bulk_read(
        &self,
        principal: &Principal,
        subject: &str,
        venue: Option<&str>,
        now: DateTime<Utc>,
    ) {
        let count = match self.bulk_recount(subject, now) {
            Ok((count, venues)) => {
                self.bulk_counted(subject, count, venues);
                count
            }
            Err(error) => {
                tracing::error!(rule = rules::BULK_READ, %error, "a rule could not be evaluated");
                return;
            }
        };
        if count <= i64::from(self.rules.bulk_read_records) {
            return;
        }
        let Some(raised) = self.raise(rules::BULK_READ, subject, venue, count, now) else {
            return;
        };
        let hold = match (self.rules.bulk_read_response, principal) {
            (BulkReadResponse::Alert, _) => None,
            (BulkReadResponse::Suspend, Principal::ApiKey { .. }) => Some(("suspend", None)),
            // Accounts are throttled, not locked out: an admin may need
            // to log in to see why.
            (BulkReadResponse::Suspend | BulkReadResponse::Throttle, _) => Some((
                "throttle",
                Some(now + chrono::Duration::minutes(i64::from(self.rules.throttle_minutes))),
            )),
        };
        if let Some((kind, until)) = hold {
            match self
                .store
                .hold_principal(subject, kind, until, &raised.id, now)
            {
                Ok(()) => tracing::warn!(principal = %subject, %kind, "principal held back"),
                Err(error) => tracing::error!(%error, "a principal could not be held back"),
            }
        }
    }

    /// An API key made a request from `address`: a network it was never
    /// used from is worth a look (a leaked key used elsewhere).
    pub fn api_key_used(&self, key_id: &str, address: &str, now: DateTime<Utc>) {
        let Some(network) = network_of(address) else {
            return;
        };
        let pair = (key_id.to_owned(), network.clone());
        if let Ok(known) = self.known_networks.lock()
            && known.contains(&pair)
        {
            return;
        }
        match self.store.note_api_key_network(key_id, &network, now) {
            Ok((new, known_before)) => {
                if new && known_before > 0 {
                    self.raise(
                        rules::API_KEY_NEW_NETWORK,
                        &format!("apikey:{key_id}"),
                        None,
                        known_before + 1,
                        now,
                    );
                }
                if let Ok(mut known) = self.known_networks.lock() {
                    known.insert(pair);
                }
            }
            Err(error) => {
                tracing::error!(rule = rules::API_KEY_NEW_NETWORK, %error, "a rule could not be evaluated")
            }
        }
    }

    /// An API key's requests this minute (all nodes) against its usual
    /// rate: the average per active minute over the last day, once there
    /// are ten such minutes to judge by.
    pub fn api_key_rate(
        &self,
        scope: &str,
        window: DateTime<Utc>,
        requests: i64,
        now: DateTime<Utc>,
    ) {
        if requests < i64::from(self.rules.api_key_rate_floor) {
            return;
        }
        let since = window - chrono::Duration::hours(24);
        match self.store.rate_history(scope, since, window) {
            Ok((windows, total)) if windows >= 10 => {
                let factor = i64::from(self.rules.api_key_rate_factor);
                if requests.saturating_mul(windows) > factor.saturating_mul(total) {
                    self.raise(rules::API_KEY_RATE, scope, None, requests, now);
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(rule = rules::API_KEY_RATE, %error, "a rule could not be evaluated")
            }
        }
    }

    /// The policy files were edited into something that does not load.
    pub fn policy_rejected(&self, now: DateTime<Utc>) {
        if let Some(metrics) = &self.metrics {
            metrics.policy_reload(false);
        }
        self.raise(rules::POLICY_REJECTED, "system", None, 1, now);
    }

    /// An edited policy is in force.
    pub fn policy_reloaded(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.policy_reload(true);
        }
    }

    /// A payment succeeded for a booking that no longer waited for it (its
    /// hold ended and its slot went, or the guest cancelled): refunded
    /// through the provider, or, when that failed, to be refunded by hand.
    /// Never silent: a person looks at every one.
    pub fn late_payment(
        &self,
        payment: &str,
        venue: &str,
        amount_minor: i64,
        refunded: bool,
        now: DateTime<Utc>,
    ) {
        let rule = if refunded {
            rules::LATE_PAYMENT_REFUNDED
        } else {
            rules::LATE_PAYMENT_NOT_REFUNDED
        };
        self.raise(
            rule,
            &format!("payment:{payment}"),
            Some(venue),
            amount_minor,
            now,
        );
    }

    /// A smaller party's share of a per-guest payment could not be
    /// refunded through the provider: to be refunded by hand.
    pub fn party_refund_not_taken(
        &self,
        payment: &str,
        venue: &str,
        amount_minor: i64,
        now: DateTime<Utc>,
    ) {
        self.raise(
            rules::PARTY_REFUND_NOT_TAKEN,
            &format!("payment:{payment}"),
            Some(venue),
            amount_minor,
            now,
        );
    }

    /// Sealed values failed their integrity check while serving
    /// `principal`: tampering, or rows moved between records.
    pub fn integrity_failures(&self, principal: &str, count: i64, now: DateTime<Utc>) {
        self.raise(rules::INTEGRITY_FAILURE, principal, None, count, now);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone as _};

    use super::operational_dates;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn the_operational_window_is_today_and_tomorrow_at_the_venue() {
        let zone = chrono_tz::Pacific::Auckland;
        // 20:00 on 1 December in Auckland is still 1 December in UTC.
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 7, 0, 0).unwrap();
        let since = now - chrono::Duration::minutes(10);
        assert_eq!(
            operational_dates(zone, 2, since, now),
            Some((date(2026, 12, 1), date(2026, 12, 3)))
        );
        assert_eq!(operational_dates(zone, 0, since, now), None);
    }

    #[test]
    fn a_sheet_read_before_midnight_stays_exempt_for_the_window() {
        let zone = chrono_tz::UTC;
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 2, 0, 5, 0).unwrap();
        let since = now - chrono::Duration::minutes(10);
        assert_eq!(
            operational_dates(zone, 2, since, now),
            Some((date(2026, 12, 1), date(2026, 12, 4)))
        );
    }
}
