//! The payment reconciliation job every node runs: it asks the provider
//! about each payment still open (`requires_action`, `processing`) and
//! drives it to an end state (succeeded, failed, cancelled) within a stated
//! time, so that no payment holds up erasure or retention for ever. Rows
//! are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so two nodes
//! never work on one payment.

use chrono::{DateTime, Duration, Utc};
use domain::ReservationStatus;
use domain::payments::{PaymentStatus, PaymentStep};
use domain::ports::ReservationRepository;
use store::{Store, StoreError};

/// How often the job runs on each node.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// An open payment is looked at again at most this often.
const RECHECK: Duration = Duration::minutes(5);

/// A challenge (3D Secure, PayPal approval) not finished in an hour is
/// abandoned: cancelled at the provider. Banks give a challenge about ten
/// minutes, and the hold ends long before.
pub const ABANDONED_AFTER: Duration = Duration::hours(1);

/// An online payment the provider still calls processing this long after
/// it started is cancelled at the provider (a card payment settles in
/// seconds; this covers a provider stuck on its side).
pub const PROCESSING_AT_MOST: Duration = Duration::days(3);

/// An on-site payment nobody recorded as paid at the venue is cancelled
/// this long after its booking ended, or at once when the booking was
/// cancelled or its hold ended.
pub const ONSITE_AFTER_END: Duration = Duration::days(7);

/// Payments claimed per run.
const BATCH: i64 = 100;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub looked_at: usize,
    pub ended: usize,
}

/// One run at `now`.
pub async fn run_once(
    store: &Store,
    gateways: &plugins::Gateways,
    monitor: Option<&crate::monitor::Monitor>,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let claimed = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.claim_open_payments(now - RECHECK, BATCH, now))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reconciliation task: {e}")))??
    };
    let mut report = Report {
        looked_at: claimed.len(),
        ended: 0,
    };
    for payment in claimed {
        let Some(gateway) = gateways.named(&payment.gateway) else {
            continue;
        };
        let age = now - payment.created_at;
        let payment_id = payment.id.clone();
        let end = |status: PaymentStatus, reason: &'static str| {
            let store = store.clone();
            let id = payment_id.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    store.end_payment(&id, status, reason, "reconcile", now)
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("reconciliation task: {e}")))?
            }
        };
        if payment.gateway == "onsite" {
            let reservation = {
                let store = store.clone();
                let id = payment.reservation_id;
                tokio::task::spawn_blocking(move || store.reservation(id))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("reconciliation task: {e}")))??
            };
            let gone = reservation.as_ref().is_none_or(|r| {
                r.status == ReservationStatus::Cancelled
                    || (r.status == ReservationStatus::Pending
                        && r.hold_until.is_none_or(|until| until <= now))
                    || r.ends_at + ONSITE_AFTER_END <= now
            });
            if gone
                && end(
                    PaymentStatus::Cancelled,
                    "not recorded as paid at the venue",
                )
                .await?
                .is_some()
            {
                report.ended += 1;
            }
            continue;
        }
        let Some(reference) = payment.reference.clone() else {
            // The start never got an answer: after the hour, it failed. A
            // webhook the provider still sends settles it all the same.
            if age >= ABANDONED_AFTER
                && end(
                    PaymentStatus::Failed,
                    "the provider never answered the start",
                )
                .await?
                .is_some()
            {
                report.ended += 1;
            }
            continue;
        };
        let refreshed = match crate::payments::refresh_and_record(
            store,
            monitor,
            gateway.as_ref(),
            payment,
            None,
            "reconcile",
            now,
        )
        .await
        {
            Ok(refreshed) => refreshed,
            Err(error) => {
                tracing::warn!(%error, "reconciliation could not refresh a payment; next round");
                continue;
            }
        };
        if !refreshed.status.is_in_flight() {
            report.ended += 1;
            continue;
        }
        let overdue = match refreshed.status {
            PaymentStatus::RequiresAction => age >= ABANDONED_AFTER,
            _ => age >= PROCESSING_AT_MOST,
        };
        if !overdue {
            continue;
        }
        match gateway.cancel(&reference).await {
            Ok(answer) if answer.step == PaymentStep::Succeeded => {
                // It went through after all: record the success.
                let recorded = crate::payments::refresh_and_record(
                    store,
                    monitor,
                    gateway.as_ref(),
                    refreshed,
                    None,
                    "reconcile",
                    now,
                )
                .await;
                if recorded.is_ok() {
                    report.ended += 1;
                }
            }
            Ok(_) => {
                if end(
                    PaymentStatus::Cancelled,
                    "abandoned; cancelled at the provider",
                )
                .await?
                .is_some()
                {
                    report.ended += 1;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the provider did not cancel an abandoned payment; next round");
            }
        }
    }
    Ok(report)
}

/// Runs the job every `EVERY` on this node.
pub fn run_periodically(
    store: Store,
    clock: crate::clock::Clock,
    gateways: plugins::Gateways,
    monitor: Option<crate::monitor::Monitor>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match run_once(&store, &gateways, monitor.as_ref(), clock.now()).await {
                Ok(report) if report.ended > 0 => {
                    tracing::info!(ended = report.ended, "reconciliation ended open payments");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "payment reconciliation failed"),
            }
        }
    });
}
