//! The background jobs every node runs: releasing unpaid holds and
//! purging what expired, retention, and publishing the audit head.
//! Payment reconciliation and outbox delivery have modules of their own
//! ([`crate::reconcile`], [`crate::outbox`]).

use store::Store;

use crate::clock::Clock;

/// Gives back the slots of unpaid bookings whose deadline passed, every 30
/// seconds, so availability shows them free again (bookings also release
/// expired holds themselves before looking for a free slot), and deletes
/// the guests' access codes and access tokens whose time is over. The
/// waitlist's pass runs with it: expired offers, new offers, purges.
pub fn release_holds_periodically(store: Store, clock: Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            let releasing = store.clone();
            let now = clock.now();
            match tokio::task::spawn_blocking(move || releasing.release_expired_holds(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(released)) => {
                    tracing::info!(released, "released unpaid holds past their deadline")
                }
                Ok(Err(error)) => tracing::warn!(%error, "releasing expired holds failed"),
                Err(error) => tracing::warn!(%error, "releasing expired holds failed"),
            }
            let purging = store.clone();
            match tokio::task::spawn_blocking(move || purging.purge_access_secrets(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "purging expired access codes failed"),
                Err(error) => tracing::warn!(%error, "purging expired access codes failed"),
            }
            let purging = store.clone();
            match tokio::task::spawn_blocking(move || purging.purge_expired(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "purging expired records failed"),
                Err(error) => tracing::warn!(%error, "purging expired records failed"),
            }
            // Waitlist offers past their time go to the next guest in line,
            // and entries past their venue's limit are deleted.
            if let Err(error) = crate::waitlist::run(&store, now).await {
                tracing::warn!(%error, "the waitlist pass failed");
            }
        }
    });
}

/// How long after start-up the first retention pass runs. Finding who is
/// due reads every guest of every venue (about 8 s of database time for a
/// million guests): not while a node is starting and warming its caches,
/// and not on every node of a rolling restart at once. A node that lives
/// this long has run it once.
const RETENTION_FIRST_RUN: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Drops card details past their venue's `payment_data_days` and
/// anonymizes guests past their venue's retention limit once an hour (the
/// first time ten minutes after start-up), so no one has to remember to
/// run it.
pub fn apply_retention_periodically(store: Store, clock: Clock, gateways: plugins::Gateways) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + RETENTION_FIRST_RUN,
            std::time::Duration::from_secs(60 * 60),
        );
        loop {
            tick.tick().await;
            let now = clock.now();
            let dropping = store.clone();
            match tokio::task::spawn_blocking(move || dropping.drop_expired_card_details(now)).await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "dropping card details failed"),
                Err(error) => tracing::warn!(%error, "dropping card details failed"),
            }
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.run_retention(now, false)).await {
                Ok(Ok(run)) => {
                    crate::rights::forget_saved_cards(&gateways, &run.saved_cards).await;
                }
                Ok(Err(error)) => tracing::warn!(%error, "retention run failed"),
                Err(error) => tracing::warn!(%error, "retention run failed"),
            }
        }
    });
}

/// Publishes the audit chain's head every `minutes` (see
/// `publish_audit_head`), the first time at start-up.
pub fn publish_audit_head_periodically(store: Store, clock: Clock, minutes: u32, webhook: bool) {
    tokio::spawn(async move {
        let every = std::time::Duration::from_secs(u64::from(minutes.max(1)) * 60);
        let mut tick = tokio::time::interval(every);
        let mut published: Option<store::AuditHead> = None;
        loop {
            tick.tick().await;
            if let Some(head) =
                publish_audit_head(&store, clock.now(), webhook, published.as_ref()).await
            {
                published = Some(head);
            }
        }
    });
}

/// Publishes the audit chain's head: to the log (INFO `audit head seq=…
/// hmac=…`) and, with an alert webhook, through the outbox as an
/// `audit.head` event. Whoever keeps the published heads can prove with
/// `kluis audit verify --head` that no entry up to them was removed: the
/// chain alone cannot show that its newest entries are gone. A head equal
/// to `last` (the one published before) is not sent again. Returns the
/// head, if the trail has one.
pub async fn publish_audit_head(
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
    webhook: bool,
    last: Option<&store::AuditHead>,
) -> Option<store::AuditHead> {
    let reading = store.clone();
    let head = match tokio::task::spawn_blocking(move || reading.audit_head()).await {
        Ok(Ok(head)) => head?,
        Ok(Err(error)) => {
            tracing::warn!(%error, "the audit head could not be read");
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "the audit head could not be read");
            return None;
        }
    };
    if last == Some(&head) {
        return Some(head);
    }
    tracing::info!(
        seq = head.seq,
        hmac = %head.hash,
        "audit head seq={} hmac={}",
        head.seq,
        head.hash
    );
    if webhook {
        let message = store::Outgoing::Webhook(store::Webhook {
            target: store::WebhookTarget::Alerts,
            event: "audit.head".to_owned(),
            occurred_at: now,
            data: serde_json::json!({
                "seq": head.seq,
                "hmac": head.hash,
                "head": head.to_string(),
            }),
        });
        let queueing = store.clone();
        match tokio::task::spawn_blocking(move || {
            queueing.enqueue("audit_head", None, &message, now)
        })
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the audit head could not be queued"),
            Err(error) => tracing::warn!(%error, "the audit head could not be queued"),
        }
    }
    Some(head)
}
