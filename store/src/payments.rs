//! Payments as kluis keeps them, and the only places their state changes:
//! a provider's answer or a verified webhook, recorded with its source in
//! the status history.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::payments::{Currency, Money, Payment, PaymentStatus, PaymentStep};
use domain::{DomainError, ReservationId, ReservationStatus};

use crate::lock::ForUpdate;
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

#[derive(Debug, Clone, Queryable)]
struct PaymentRow {
    id: String,
    reservation_id: String,
    kind: String,
    gateway: String,
    provider_reference: Option<String>,
    amount_minor: i64,
    currency: String,
    refunded_minor: i64,
    status: String,
    failure_reason: Option<String>,
    card_brand: Option<String>,
    card_last4: Option<String>,
    _idempotency_key: String,
    request_hash: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;

    fn try_from(row: PaymentRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("payment {}: {what}", row.id));
        let currency = Currency::parse(&row.currency).map_err(|_| bad("currency"))?;
        Ok(Payment {
            reservation_id: ReservationId::parse(&row.reservation_id)
                .map_err(|_| bad("reservation"))?,
            amount: Money::new(row.amount_minor, currency).map_err(|_| bad("amount"))?,
            refunded: Money::new(row.refunded_minor, currency).map_err(|_| bad("refunded"))?,
            status: PaymentStatus::parse(&row.status).ok_or_else(|| bad("status"))?,
            id: row.id,
            kind: row.kind,
            gateway: row.gateway,
            reference: row.provider_reference,
            failure_reason: row.failure_reason,
            card_brand: row.card_brand,
            card_last4: row.card_last4,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A payment to open.
pub struct NewPayment<'a> {
    pub reservation: ReservationId,
    /// `charge`, `guarantee` or `no_show_fee`.
    pub kind: &'a str,
    pub gateway: &'a str,
    pub amount: Money,
    pub idempotency_key: &'a str,
    /// Same key, different request: refused.
    pub request_hash: &'a str,
}

/// The outcome of asking to start a payment.
#[derive(Debug, Clone)]
pub enum BeginPayment {
    /// A new payment: call the provider.
    New(Payment),
    /// The same request was made before under this key: no new provider
    /// payment; refresh the existing one instead.
    Existing(Payment),
}

/// How long past the venue's payment deadline a hold is kept while the
/// provider says the guest is still in the challenge (3D Secure, PayPal
/// approval): banks give a challenge about 10 minutes, and a slot must not
/// be kept from other guests much longer than the venue asked for.
pub const ACTION_GRACE: chrono::Duration = chrono::Duration::minutes(15);

/// What a payment's answer needs of its reservation: venue, status, hold
/// deadline, creation, start, end of the block and resource.
type PaidFor = (
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
);

/// A provider's answer as recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub payment: Payment,
    /// Money was taken for a booking that no longer waits for it (its hold
    /// ended and its slot went, or the guest cancelled): to be refunded.
    pub orphaned: bool,
    /// The venue of the payment's reservation.
    pub venue_id: String,
}

/// The outcome of asking to refund under an idempotency key.
#[derive(Debug, Clone)]
pub enum BeginRefund {
    /// Ask the provider (again, with the same key).
    Ask(Payment),
    /// Done before under this key: the payment as it stands.
    Done(Payment),
}

/// A provider's answer to record.
pub struct ProviderAnswer<'a> {
    pub reference: Option<&'a str>,
    pub step: &'a PaymentStep,
    pub card_brand: Option<&'a str>,
    pub card_last4: Option<&'a str>,
    /// What said so: `start`, `refresh`, `webhook`, `capture`.
    pub source: &'a str,
}

macro_rules! load_payment {
    ($c:expr, $s:ident, $filter:expr) => {
        $crate::step(|| {
            Ok({
                let row: Option<PaymentRow> = $s::payments::table
                    .filter($filter)
                    .first::<PaymentRow>($c)
                    .optional()?;
                row.map(Payment::try_from).transpose()?
            })
        })
    };
}

impl Store {
    /// Opens a payment for a reservation awaiting one (or, for a no-show
    /// fee, marked no-show), idempotently.
    pub fn begin_payment(
        &self,
        new: &NewPayment<'_>,
        now: DateTime<Utc>,
    ) -> Result<BeginPayment, StoreError> {
        let now = db_instant(now);
        let NewPayment {
            reservation,
            kind,
            gateway,
            amount,
            idempotency_key,
            request_hash,
        } = *new;
        let reservation_id = reservation.to_string();
        let payment_id = domain::GuestId::new_random().to_string().replace('-', "");
        let payment_id = format!("pay_{payment_id}");
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::payments::dsl as p;
            let existing: Option<PaymentRow> = p::payments
                .filter(p::idempotency_key.eq(idempotency_key))
                .first::<PaymentRow>(c)
                .optional()?;
            if let Some(row) = existing {
                if row.request_hash != request_hash {
                    return Err(StoreError::Domain(DomainError::Conflict(
                        "this idempotency key was already used for a different payment".to_owned(),
                    )));
                }
                return Ok(BeginPayment::Existing(Payment::try_from(row)?));
            }
            use s::reservations::dsl as r;
            let (status, hold_until, starts_at): (String, Option<DateTime<Utc>>, DateTime<Utc>) =
                r::reservations
                    .find(&reservation_id)
                    .select((r::status, r::hold_until, r::starts_at))
                    .first(c)
                    .optional()?
                    .ok_or(DomainError::not_found("reservation"))?;
            if kind == "no_show_fee" {
                if status != ReservationStatus::NoShow.as_str() {
                    return Err(DomainError::invalid(
                        "reservationId",
                        "a no-show fee is only for reservations marked no-show",
                    )
                    .into());
                }
                // Also for a no-show recorded before marking waited for the
                // start: no fee for a visit that has not begun.
                if now < starts_at {
                    return Err(DomainError::invalid(
                        "reservationId",
                        "a no-show fee can be charged only after the booking has started",
                    )
                    .into());
                }
            } else {
                if status != ReservationStatus::Pending.as_str() {
                    return Err(DomainError::invalid(
                        "reservationId",
                        "this reservation is not awaiting a payment",
                    )
                    .into());
                }
                if hold_until.is_none_or(|until| until <= now) {
                    return Err(DomainError::invalid(
                        "reservationId",
                        "the payment deadline has passed and the slot was released; book again",
                    )
                    .into());
                }
            }
            // One of each kind: one deposit (or guarantee), one no-show fee.
            let others: Vec<String> = p::payments
                .filter(p::reservation_id.eq(&reservation_id))
                .filter(p::kind.eq(kind))
                .select(p::status)
                .load(c)?;
            if others
                .iter()
                .any(|s| s == PaymentStatus::Succeeded.as_str())
            {
                return Err(DomainError::Conflict(format!(
                    "this reservation's {} is already done",
                    kind.replace('_', " ")
                ))
                .into());
            }
            if others
                .iter()
                .filter_map(|s| PaymentStatus::parse(s))
                .any(PaymentStatus::is_in_flight)
            {
                return Err(DomainError::Conflict(
                    "a payment for this reservation is already under way; complete or wait for it"
                        .to_owned(),
                )
                .into());
            }
            diesel::insert_into(p::payments)
                .values((
                    p::id.eq(&payment_id),
                    p::reservation_id.eq(&reservation_id),
                    p::kind.eq(kind),
                    p::gateway.eq(gateway),
                    p::amount_minor.eq(amount.minor()),
                    p::currency.eq(amount.currency().code()),
                    p::refunded_minor.eq(0i64),
                    p::status.eq(PaymentStatus::Processing.as_str()),
                    p::idempotency_key.eq(idempotency_key),
                    p::request_hash.eq(request_hash),
                    p::created_at.eq(now),
                    p::updated_at.eq(now),
                ))
                .execute(c)?;
            use s::payment_events::dsl as e;
            diesel::insert_into(e::payment_events)
                .values((
                    e::payment_id.eq(&payment_id),
                    e::at.eq(now),
                    e::status.eq(PaymentStatus::Processing.as_str()),
                    e::source.eq("created"),
                ))
                .execute(c)?;
            let created = load_payment!(c, s, p::id.eq(&payment_id))?
                .ok_or(DomainError::not_found("payment"))?;
            Ok(BeginPayment::New(created))
        }))
    }

    /// Records what the provider said. A success confirms the reservation;
    /// settled states are never undone by a late or repeated answer.
    ///
    /// While the provider says the guest is acting (3D Secure, PayPal
    /// approval), the hold is kept up to `ACTION_GRACE` past the venue's
    /// payment deadline. A success that comes after the hold ended
    /// confirms the booking if its slot is still free and it has not
    /// started; otherwise the answer is `orphaned`: the caller refunds it
    /// through the provider and raises an alert.
    pub fn record_payment_answer(
        &self,
        payment_id: &str,
        answer: &ProviderAnswer<'_>,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let recorded = on_backend!(&mut *connection, |c, s| {
            c.write_transaction(|c| {
            use s::payments::dsl as p;
            let current = load_payment!(c, s, p::id.eq(payment_id))?.ok_or(DomainError::not_found("payment"))?;
            let next = answer.step.status();
            let settled = matches!(
                current.status,
                PaymentStatus::Succeeded | PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded
            );
            let status = if settled { current.status } else { next };
            let reason = match answer.step {
                PaymentStep::Failed { reason } if !settled => Some(reason.clone()),
                _ => current.failure_reason.clone(),
            };
            diesel::update(p::payments.find(payment_id))
                .set((
                    p::status.eq(status.as_str()),
                    p::provider_reference.eq(current.reference.as_deref().or(answer.reference)),
                    p::failure_reason.eq(reason),
                    p::card_brand.eq(answer.card_brand.or(current.card_brand.as_deref())),
                    p::card_last4.eq(answer.card_last4.or(current.card_last4.as_deref())),
                    p::updated_at.eq(now),
                ))
                .execute(c)?;
            use s::payment_events::dsl as e;
            diesel::insert_into(e::payment_events)
                .values((
                    e::payment_id.eq(payment_id),
                    e::at.eq(now),
                    e::status.eq(next.as_str()),
                    e::source.eq(answer.source),
                ))
                .execute(c)?;
            let mut orphaned = false;
            let reservation = current.reservation_id.to_string();
            let (venue_id, reservation_status, hold_until, created_at, starts_at, blocked_until, resource_id): PaidFor = {
                use s::reservations::dsl as r;
                r::reservations
                    .find(&reservation)
                    .select((r::venue_id, r::status, r::hold_until, r::created_at, r::starts_at, r::blocked_until, r::resource_id))
                    .first(c)?
            };
            let pending = reservation_status == ReservationStatus::Pending.as_str();
            if next == PaymentStatus::RequiresAction && !settled && pending
                && hold_until.is_some_and(|until| until > now)
            {
                // The guest is in the challenge now: keep the slot for them,
                // up to a fixed cap counted from the booking, so that a new
                // payment cannot stretch the hold again.
                use s::venues::dsl as v;
                let minutes: i32 = v::venues.find(&venue_id).select(v::payment_hold_minutes).first(c)?;
                let cap = created_at
                    + chrono::Duration::minutes(i64::from(minutes))
                    + ACTION_GRACE;
                if hold_until.is_some_and(|until| until < cap) {
                    use s::reservations::dsl as r;
                    diesel::update(r::reservations.find(&reservation).filter(r::status.eq(ReservationStatus::Pending.as_str())))
                        .set(r::hold_until.eq(Some(cap)))
                        .execute(c)?;
                }
            }
            if status == PaymentStatus::Succeeded && !settled && current.kind != "no_show_fee" {
                use s::reservations::dsl as r;
                // A hold the deadline released (cancelled, deadline
                // cleared) may come back if nothing took its slot
                // meanwhile and it has not started; a booking the guest
                // cancelled never does.
                let released = reservation_status == ReservationStatus::Cancelled.as_str()
                    && hold_until.is_none();
                let revivable = released && starts_at > now && {
                    let active: Vec<&str> = ReservationStatus::ACTIVE.iter().map(|s| s.as_str()).collect();
                    // Every table it held, for a combination of tables.
                    use s::reservation_holds::dsl as h;
                    let mut held: Vec<String> = h::reservation_holds
                        .filter(h::reservation_id.eq(&reservation))
                        .select(h::resource_id)
                        .load(c)?;
                    if held.is_empty() {
                        held.push(resource_id.clone());
                    }
                    let overlapping: i64 = r::reservations
                        .inner_join(h::reservation_holds)
                        .filter(h::resource_id.eq_any(&held))
                        .filter(r::id.ne(&reservation))
                        .filter(r::status.eq_any(active))
                        .filter(r::starts_at.lt(blocked_until))
                        .filter(r::blocked_until.gt(starts_at))
                        .filter(r::hold_until.is_null().or(r::hold_until.gt(now)))
                        .count()
                        .get_result(c)?;
                    overlapping == 0
                };
                let waiting = if revivable {
                    ReservationStatus::Cancelled.as_str()
                } else {
                    ReservationStatus::Pending.as_str()
                };
                let confirmed = diesel::update(
                    r::reservations
                        .find(&reservation)
                        .filter(r::status.eq(waiting)),
                )
                .set((
                    r::status.eq(ReservationStatus::Confirmed.as_str()),
                    r::hold_until.eq(None::<DateTime<Utc>>),
                    r::version.eq(r::version + 1),
                    r::updated_at.eq(now),
                ))
                .execute(c)?;
                if confirmed == 0 {
                    // Paid for a booking that no longer waits for it: the
                    // caller gives the money back.
                    orphaned = current.kind == "charge";
                    tracing::warn!(payment = %payment_id, "paid after the reservation stopped waiting; refunding");
                } else {
                    let row: crate::rows::ReservationRow = r::reservations
                        .find(&reservation)
                        .select(crate::rows::reservation_columns!(s))
                        .first(c)?;
                    let confirmed = domain::Reservation::try_from(row)?;
                    crate::outbox::queue_reservation_event!(
                        c,
                        s,
                        &self.keys().current(),
                        &confirmed,
                        domain::webhooks::ReservationEvent::StatusChanged,
                        now
                    )?;
                }
            }
            let payment = load_payment!(c, s, p::id.eq(payment_id))?.ok_or(DomainError::not_found("payment"))?;
            Ok(Recorded { payment, orphaned, venue_id })
        })
        });
        // A paid hold may have turned into a confirmed booking.
        if recorded.is_ok() {
            self.occupancy_cache.everything_changed();
        }
        recorded
    }

    /// Notes a refund about to be asked of the provider under an
    /// idempotency key. The same key and request again: `Done` once the
    /// provider accepted it (ask nothing, count nothing), `Ask` while it is
    /// still open (the provider's own idempotency key makes the second ask
    /// the same refund). The same key for another request: CONFLICT.
    pub fn begin_refund(
        &self,
        payment_id: &str,
        idempotency_key: &str,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<BeginRefund, StoreError> {
        let now = db_instant(now);
        let request_hash = format!("{payment_id}|{}", amount.minor());
        // Keys are the caller's: one payment's never meets another's.
        let idempotency_key = &format!("{payment_id}|{idempotency_key}");
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::payment_refunds::dsl as f;
            use s::payments::dsl as p;
            let current = load_payment!(c, s, p::id.eq(payment_id))?
                .ok_or(DomainError::not_found("payment"))?;
            let existing: Option<(String, String)> = f::payment_refunds
                .find(idempotency_key)
                .select((f::request_hash, f::status))
                .first(c)
                .optional()?;
            match existing {
                Some((hash, _)) if hash != request_hash => {
                    Err(StoreError::Domain(DomainError::Conflict(
                        "this idempotency key was already used for a different refund".to_owned(),
                    )))
                }
                Some((_, status)) if status == "succeeded" => Ok(BeginRefund::Done(current)),
                Some(_) => Ok(BeginRefund::Ask(current)),
                None => {
                    if amount.is_zero() || amount.minor() > current.refundable() {
                        let left = Money::new(current.refundable(), current.amount.currency())
                            .map(|m| m.to_string())
                            .unwrap_or_default();
                        return Err(DomainError::invalid(
                            "amount",
                            format!(
                                "can refund between 0.01 and {left} (paid {}, refunded {})",
                                current.amount, current.refunded
                            ),
                        )
                        .into());
                    }
                    diesel::insert_into(f::payment_refunds)
                        .values((
                            f::idempotency_key.eq(idempotency_key),
                            f::payment_id.eq(payment_id),
                            f::request_hash.eq(&request_hash),
                            f::amount_minor.eq(amount.minor()),
                            f::status.eq("requested"),
                            f::created_at.eq(now),
                            f::updated_at.eq(now),
                        ))
                        .execute(c)?;
                    Ok(BeginRefund::Ask(current))
                }
            }
        }))
    }

    /// Records a refund the provider accepted, once per idempotency key: a
    /// second record of the same key changes nothing.
    pub fn record_refund(
        &self,
        payment_id: &str,
        idempotency_key: &str,
        amount: Money,
        provider_reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Payment, StoreError> {
        let now = db_instant(now);
        let idempotency_key = &format!("{payment_id}|{idempotency_key}");
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::payments::dsl as p;
            let current = load_payment!(c, s, p::id.eq(payment_id))?
                .ok_or(DomainError::not_found("payment"))?;
            {
                use s::payment_refunds::dsl as f;
                let settled = diesel::update(
                    f::payment_refunds
                        .find(idempotency_key)
                        .filter(f::payment_id.eq(payment_id))
                        .filter(f::status.eq("requested")),
                )
                .set((
                    f::status.eq("succeeded"),
                    f::provider_reference.eq(provider_reference),
                    f::updated_at.eq(now),
                ))
                .execute(c)?;
                if settled == 0 {
                    // Recorded before (or never begun): nothing to add.
                    return Ok(current);
                }
            }
            if amount.minor() > current.refundable() {
                return Err(
                    DomainError::invalid("amount", "is more than what is left to refund").into(),
                );
            }
            let refunded = current.refunded.minor() + amount.minor();
            let status = if refunded == current.amount.minor() {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            };
            diesel::update(p::payments.find(payment_id))
                .set((
                    p::refunded_minor.eq(refunded),
                    p::status.eq(status.as_str()),
                    p::updated_at.eq(now),
                ))
                .execute(c)?;
            use s::payment_events::dsl as e;
            diesel::insert_into(e::payment_events)
                .values((
                    e::payment_id.eq(payment_id),
                    e::at.eq(now),
                    e::status.eq(status.as_str()),
                    e::source.eq("refund"),
                    e::detail.eq(Some(amount.to_string())),
                ))
                .execute(c)?;
            load_payment!(c, s, p::id.eq(payment_id))?
                .ok_or(DomainError::not_found("payment").into())
        }))
    }

    pub fn payment(&self, id: &str) -> Result<Option<Payment>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| load_payment!(
            c,
            s,
            s::payments::id.eq(id)
        )?))
    }

    pub fn payment_by_reference(
        &self,
        gateway: &str,
        reference: &str,
    ) -> Result<Option<Payment>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| load_payment!(
            c,
            s,
            s::payments::gateway
                .eq(gateway)
                .and(s::payments::provider_reference.eq(reference))
        )?))
    }

    pub fn payments_of(&self, reservation: ReservationId) -> Result<Vec<Payment>, StoreError> {
        let id = reservation.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<PaymentRow> = on_backend!(&mut *connection, |c, s| s::payments::table
            .filter(s::payments::reservation_id.eq(&id))
            .order(s::payments::created_at)
            .load::<PaymentRow>(c)?);
        rows.into_iter().map(Payment::try_from).collect()
    }

    /// The payments of several reservations, in one query, oldest first.
    pub fn payments_of_many(
        &self,
        reservations: &[ReservationId],
    ) -> Result<Vec<Payment>, StoreError> {
        if reservations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = reservations.iter().map(ToString::to_string).collect();
        let mut connection = self.connection()?;
        let rows: Vec<PaymentRow> = on_backend!(&mut *connection, |c, s| s::payments::table
            .filter(s::payments::reservation_id.eq_any(&ids))
            .order((s::payments::created_at, s::payments::id))
            .load::<PaymentRow>(c)?);
        rows.into_iter().map(Payment::try_from).collect()
    }

    /// Whether a webhook event was handled (settled) before.
    pub fn delivered_before(&self, provider: &str, event_id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection()?;
        let found: Option<String> = on_backend!(&mut *connection, |c, s| {
            use s::webhook_events::dsl as w;
            w::webhook_events
                .filter(w::provider.eq(provider))
                .filter(w::event_id.eq(event_id))
                .select(w::event_id)
                .first(c)
                .optional()?
        });
        Ok(found.is_some())
    }

    /// Records a webhook event id once what it announced is settled; a
    /// second record (a concurrent retry) changes nothing.
    pub fn record_delivery(
        &self,
        provider: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| diesel::insert_into(
            s::webhook_events::table
        )
        .values((
            s::webhook_events::provider.eq(provider),
            s::webhook_events::event_id.eq(event_id),
            s::webhook_events::received_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c)?);
        Ok(())
    }
}

const OPEN: [&str; 2] = ["requires_action", "processing"];

impl Store {
    /// Claims up to `limit` open payments no one looked at since
    /// `stale_before`, for the reconciliation job: their `updated_at`
    /// moves to `now`, so another node (which skips rows being claimed,
    /// `SKIP LOCKED` on PostgreSQL) does not take them again this round.
    pub fn claim_open_payments(
        &self,
        stale_before: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Payment>, StoreError> {
        let (stale_before, now) = (db_instant(stale_before), db_instant(now));
        let mut connection = self.connection()?;
        let rows: Vec<PaymentRow> = on_backend!(&mut *connection, |c, s| {
            c.write_transaction(|c| {
                use s::payments::dsl as p;
                // Payments still open that no one looked at since
                // `stale_before`, oldest first.
                let rows: Vec<PaymentRow> = s::load_locked!(
                    p::payments
                        .filter(p::status.eq_any(OPEN))
                        .filter(p::updated_at.le(stale_before))
                        .order(p::updated_at)
                        .limit(limit),
                    c,
                    ForUpdate::SkipLocked
                )?;
                let ids: Vec<&String> = rows.iter().map(|r| &r.id).collect();
                diesel::update(p::payments.filter(p::id.eq_any(ids)))
                    .set(p::updated_at.eq(now))
                    .execute(c)?;
                Ok::<_, StoreError>(rows)
            })?
        });
        rows.into_iter().map(Payment::try_from).collect()
    }

    /// Ends a payment that is still open with `status` (`succeeded`,
    /// `failed`, `cancelled`), recording what ended it. A payment that
    /// settled meanwhile is left as it is. A success confirms the
    /// reservation as a provider's success would.
    pub fn end_payment(
        &self,
        payment_id: &str,
        status: PaymentStatus,
        reason: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Recorded>, StoreError> {
        if status == PaymentStatus::Succeeded {
            let current = self
                .payment(payment_id)?
                .ok_or(DomainError::not_found("payment"))?;
            if !current.status.is_in_flight() {
                return Ok(None);
            }
            return self
                .record_payment_answer(
                    payment_id,
                    &ProviderAnswer {
                        reference: None,
                        step: &PaymentStep::Succeeded,
                        card_brand: None,
                        card_last4: None,
                        source,
                    },
                    now,
                )
                .map(Some);
        }
        let at = db_instant(now);
        let mut connection = self.connection()?;
        let ended = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::payments::dsl as p;
            let changed =
                diesel::update(p::payments.find(payment_id).filter(p::status.eq_any(OPEN)))
                    .set((
                        p::status.eq(status.as_str()),
                        p::failure_reason.eq(Some(reason)),
                        p::updated_at.eq(at),
                    ))
                    .execute(c)?;
            if changed == 1 {
                use s::payment_events::dsl as e;
                diesel::insert_into(e::payment_events)
                    .values((
                        e::payment_id.eq(payment_id),
                        e::at.eq(at),
                        e::status.eq(status.as_str()),
                        e::source.eq(source),
                        e::detail.eq(Some(reason)),
                    ))
                    .execute(c)?;
            }
            Ok::<_, StoreError>(changed == 1)
        }))?;
        if !ended {
            return Ok(None);
        }
        let payment = self
            .payment(payment_id)?
            .ok_or(DomainError::not_found("payment"))?;
        let venue_id = self
            .reservation_venue(payment.reservation_id)?
            .unwrap_or_default();
        Ok(Some(Recorded {
            payment,
            orphaned: false,
            venue_id,
        }))
    }

    fn reservation_venue(&self, id: ReservationId) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::reservations::table
            .find(&id)
            .select(s::reservations::venue_id)
            .first::<String>(c)
            .optional()?))
    }
}

impl Store {
    /// Drops the card brand and last four of payments whose last refund
    /// window closed more than the venue's `payment_data_days` ago; answers
    /// how many payments. A payment's last refund window closes at the
    /// later of its booking's end and its own last event (payment, capture
    /// or refund, `updated_at`): kluis has no refund deadline of its own,
    /// so a refund stays possible until then. Amounts, dates, statuses and
    /// provider references stay for the books.
    pub fn drop_expired_card_details(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut connection = self.connection()?;
        let dropped = on_backend!(&mut *connection, |c, s| {
            use s::payments::dsl as p;
            use s::reservations::dsl as r;
            let limits: Vec<(String, i32)> = s::venues::table
                .select((s::venues::id, s::venues::payment_data_days))
                .load(c)?;
            let mut dropped = 0usize;
            for (venue, days) in limits {
                let cutoff = db_instant(now - chrono::Duration::days(i64::from(days)));
                // Only payments that still hold card details: few, however
                // long the venue's history.
                let due: Vec<String> = p::payments
                    .inner_join(r::reservations.on(r::id.eq(p::reservation_id)))
                    .filter(r::venue_id.eq(&venue))
                    .filter(r::ends_at.lt(cutoff))
                    .filter(p::updated_at.lt(cutoff))
                    .filter(p::card_brand.is_not_null().or(p::card_last4.is_not_null()))
                    .select(p::id)
                    .load(c)?;
                for chunk in due.chunks(500) {
                    dropped += diesel::update(p::payments.filter(p::id.eq_any(chunk)))
                        .set((
                            p::card_brand.eq(None::<String>),
                            p::card_last4.eq(None::<String>),
                        ))
                        .execute(c)?;
                }
            }
            dropped
        });
        if dropped > 0 {
            tracing::info!(
                dropped,
                "card details past their venue's keeping period dropped"
            );
        }
        Ok(dropped)
    }
}
