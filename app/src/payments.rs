//! Payment steps shared by booking changes, webhooks and the
//! reconciliation job: asking the provider, recording its answer, and
//! giving back money that no booking waits for.

use chrono::{DateTime, Utc};
use domain::DomainError;
use domain::ReservationId;
use domain::payments::{
    GatewayError, Money, Payment, PaymentGateway, PaymentStep, Purpose, StartPayment,
};
use domain::ports::{ReservationRepository, VenueRepository};
use domain::{IdempotencyKey, Reservation, Venue, VenueId};
use store::{BeginPayment, BeginRefund, NewPayment, ProviderAnswer, Store};

use crate::error::{Error, blocking};
use crate::monitor::Monitor;

/// What a booking that asks for a payment step hears when the server has
/// no gateway.
pub const NO_GATEWAY: &str = "gateway: no payment gateway is configured on this server";

/// After a party grew smaller: refunds through the provider what the
/// payment took beyond what the venue's rule asks for the new party (a
/// per-guest deposit or prepayment; a per-booking amount does not change).
/// Keyed by the change's idempotency key, so a retried change refunds
/// once. A refund the provider does not take raises an alert.
pub async fn refund_smaller_party(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    reservation: ReservationId,
    change_key: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let (venue, charge, party, service) = {
        let store = store.clone();
        blocking(move || {
            let current = store
                .reservation(reservation)?
                .ok_or(DomainError::not_found("reservation"))?;
            let venue = store
                .venue(current.venue_id)?
                .ok_or(DomainError::not_found("venue"))?;
            let charge = store.payments_of(reservation)?.into_iter().find(|p| {
                p.kind == "charge"
                    && matches!(
                        p.status,
                        domain::payments::PaymentStatus::Succeeded
                            | domain::payments::PaymentStatus::PartiallyRefunded
                    )
            });
            Ok((venue, charge, current.party_size, current.service_id))
        })
        .await?
    };
    let Some(charge) = charge else {
        return Ok(());
    };
    let due = venue
        .payment_rule_for(service)
        .due(party)?
        .map(|m| m.minor())
        .unwrap_or(0);
    let excess = (charge.amount.minor() - charge.refunded.minor() - due).min(charge.refundable());
    if excess <= 0 {
        return Ok(());
    }
    let amount = Money::new(excess, charge.amount.currency())?;
    let gateways = gateways.ok_or_else(|| Error::Refused(NO_GATEWAY.to_owned()))?;
    let Some(provider) = gateways.named(&charge.gateway) else {
        return Ok(());
    };
    let key = format!("party-{change_key}");
    let refunded = refund_keyed(store, provider.as_ref(), &charge, amount, &key, at).await;
    if refunded.is_none()
        && let Some(monitor) = monitor.cloned()
    {
        let (id, venue) = (charge.id.clone(), venue.id.to_string());
        let _raised = tokio::task::spawn_blocking(move || {
            monitor.party_refund_not_taken(&id, &venue, amount.minor(), at);
        })
        .await;
    }
    Ok(())
}

/// The idempotency key of the automatic refund of a late payment.
const LATE_REFUND_KEY: &str = "late-payment";

/// Refunds, through its provider, a payment that came after its booking
/// stopped waiting for it, and raises an alert either way: such money is
/// never kept silently. Failures are logged and alerted, not returned: the
/// payment's own answer is recorded and stands.
pub async fn give_back(
    store: &Store,
    monitor: Option<&Monitor>,
    gateway: &dyn PaymentGateway,
    recorded: store::Recorded,
    at: DateTime<Utc>,
) -> Payment {
    let store::Recorded {
        payment,
        orphaned,
        venue_id,
    } = recorded;
    if !orphaned || payment.refundable() == 0 {
        return payment;
    }
    let Ok(amount) = Money::new(payment.refundable(), payment.amount.currency()) else {
        return payment;
    };
    let refunded = refund_late(store, gateway, &payment, amount, at).await;
    match monitor {
        Some(monitor) => {
            let monitor = monitor.clone();
            let (id, venue) = (payment.id.clone(), venue_id.clone());
            let done = refunded.is_some();
            let _raised = tokio::task::spawn_blocking(move || {
                monitor.late_payment(&id, &venue, amount.minor(), done, at);
            })
            .await;
        }
        None => {
            tracing::error!(payment = %payment.id, refunded = refunded.is_some(), "a late payment needs a look");
        }
    }
    refunded.unwrap_or(payment)
}

async fn refund_late(
    store: &Store,
    gateway: &dyn PaymentGateway,
    payment: &Payment,
    amount: Money,
    at: DateTime<Utc>,
) -> Option<Payment> {
    refund_keyed(store, gateway, payment, amount, LATE_REFUND_KEY, at).await
}

/// Refunds through the provider under a refund key of kluis's own; `None`
/// (logged) when it did not happen.
async fn refund_keyed(
    store: &Store,
    gateway: &dyn PaymentGateway,
    payment: &Payment,
    amount: Money,
    refund_key: &str,
    at: DateTime<Utc>,
) -> Option<Payment> {
    let reference = payment.reference.clone()?;
    let begun = {
        let store = store.clone();
        let id = payment.id.clone();
        let key = refund_key.to_owned();
        tokio::task::spawn_blocking(move || store.begin_refund(&id, &key, amount, at)).await
    };
    match begun {
        Ok(Ok(BeginRefund::Done(payment))) => return Some(payment),
        Ok(Ok(BeginRefund::Ask(_))) => {}
        Ok(Err(error)) => {
            tracing::error!(payment = %payment.id, %error, "a late payment could not be refunded");
            return None;
        }
        Err(error) => {
            tracing::error!(payment = %payment.id, %error, "a late payment could not be refunded");
            return None;
        }
    }
    let refund = match gateway
        .refund(
            &reference,
            amount,
            &format!("kluis-{refund_key}-{}", payment.id),
        )
        .await
    {
        Ok(refund) if refund.succeeded => refund,
        Ok(_) => {
            tracing::error!(payment = %payment.id, "the provider did not accept the refund of a late payment");
            return None;
        }
        Err(error) => {
            tracing::error!(payment = %payment.id, %error, "a late payment could not be refunded");
            return None;
        }
    };
    let store = store.clone();
    let id = payment.id.clone();
    let key = refund_key.to_owned();
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_refund(&id, &key, refund.amount, &refund.reference, at)
    })
    .await;
    match recorded {
        Ok(Ok(payment)) => Some(payment),
        Ok(Err(error)) => {
            tracing::error!(payment = %payment.id, %error, "a refunded late payment could not be recorded");
            None
        }
        Err(error) => {
            tracing::error!(payment = %payment.id, %error, "a refunded late payment could not be recorded");
            None
        }
    }
}

/// Why a payment could not be brought up to date with its provider.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Provider(#[from] GatewayError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("a blocking task failed: {0}")]
    Task(String),
}

/// Asks the provider how a payment stands and records the answer; unlike
/// `settle`, silence is an error: a webhook or a job must not take "no
/// answer" for "done".
pub async fn refresh_and_record(
    store: &Store,
    monitor: Option<&Monitor>,
    gateway: &dyn PaymentGateway,
    payment: Payment,
    reference_hint: Option<&str>,
    source: &'static str,
    at: DateTime<Utc>,
) -> Result<Payment, SettleError> {
    let Some(reference) = payment.reference.as_deref().or(reference_hint) else {
        return Ok(payment);
    };
    let provider = gateway.refresh(reference).await?;
    let store_for_refund = store.clone();
    let store = store.clone();
    let id = payment.id.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_payment_answer(
            &id,
            &ProviderAnswer {
                reference: Some(&provider.reference),
                step: &provider.step,
                card_brand: provider.card_brand.as_deref(),
                card_last4: provider.card_last4.as_deref(),
                source,
            },
            at,
        )
    })
    .await
    .map_err(|e| SettleError::Task(e.to_string()))??;
    Ok(give_back(&store_for_refund, monitor, gateway, recorded, at).await)
}

/// What a payment step came to: the payment as recorded, and the step the
/// provider asked for (none when it was not asked).
#[derive(Debug)]
pub struct Stepped {
    pub payment: Payment,
    pub step: Option<PaymentStep>,
}

/// A provider's refusal as the caller hears it; other failures are
/// internal.
pub fn provider_error(error: GatewayError) -> Error {
    match error {
        GatewayError::Rejected(reason) => {
            Error::Refused(format!("the payment provider refused: {reason}"))
        }
        GatewayError::Unsupported(reason) => Error::Refused(reason.to_owned()),
        other => Error::Provider(other),
    }
}

/// Asks the provider and records its answer. A provider that is silent or
/// down leaves the payment `processing`: a later refresh or webhook decides.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of several flows, each naming its own parts"
)]
pub async fn settle(
    store: &Store,
    monitor: Option<&Monitor>,
    gateway: &dyn PaymentGateway,
    payment: Payment,
    start: Option<StartPayment>,
    reference_hint: Option<&str>,
    source: &'static str,
    at: DateTime<Utc>,
) -> Result<Stepped, Error> {
    let known = payment.reference.as_deref().or(reference_hint);
    let answer = match (&start, known) {
        (_, Some(reference)) => gateway.refresh(reference).await,
        (Some(request), None) => gateway.start(request).await,
        (None, None) => {
            return Ok(Stepped {
                payment,
                step: None,
            });
        }
    };
    let provider = match answer {
        Ok(provider) => provider,
        Err(GatewayError::Timeout | GatewayError::Unavailable(_)) => {
            tracing::warn!(payment = %payment.id, "payment provider silent; the payment stays processing");
            return Ok(Stepped {
                payment,
                step: Some(PaymentStep::Processing),
            });
        }
        Err(other) => return Err(provider_error(other)),
    };
    let writer = store.clone();
    let id = payment.id.clone();
    let step = provider.step.clone();
    let recorded = blocking(move || {
        Ok(writer.record_payment_answer(
            &id,
            &ProviderAnswer {
                reference: Some(&provider.reference),
                step: &provider.step,
                card_brand: provider.card_brand.as_deref(),
                card_last4: provider.card_last4.as_deref(),
                source,
            },
            at,
        )?)
    })
    .await?;
    let payment = give_back(store, monitor, gateway, recorded, at).await;
    Ok(Stepped {
        payment,
        step: Some(step),
    })
}

/// The request a payment sends its provider.
pub fn start_request(
    payment: &Payment,
    token: &str,
    return_url: Option<String>,
    purpose: Purpose,
) -> StartPayment {
    StartPayment {
        purpose,
        payment_id: payment.id.clone(),
        amount: payment.amount,
        token: token.to_owned(),
        // The provider's own idempotency key follows kluis's payment: a
        // retry never creates a second provider payment.
        idempotency_key: format!("kluis-{}", payment.id),
        return_url,
        description: format!("Reservation {}", payment.reservation_id),
    }
}

/// A reservation, its venue and the card saved for it (a succeeded
/// guarantee): what a no-show fee is charged against. Loaded before the
/// caller's permission in the venue is checked.
pub struct NoShowTarget {
    pub reservation: Reservation,
    pub venue: Venue,
    pub saved: Option<Payment>,
}

pub async fn no_show_target(store: &Store, id: ReservationId) -> Result<NoShowTarget, Error> {
    let store = store.clone();
    blocking(move || {
        let reservation = store
            .reservation(id)?
            .ok_or(DomainError::not_found("reservation"))?;
        let venue = store
            .venue(reservation.venue_id)?
            .ok_or(DomainError::not_found("venue"))?;
        let saved = store.payments_of(id)?.into_iter().find(|p| {
            p.kind == "guarantee" && p.status == domain::payments::PaymentStatus::Succeeded
        });
        Ok(NoShowTarget {
            reservation,
            venue,
            saved,
        })
    })
    .await
}

/// Charges a guest who did not come the venue's no-show fee on the card
/// saved with their booking. Keyed by `key`: a retry answers the same
/// payment (refreshed from the provider once it has a reference).
pub async fn charge_no_show_fee(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    target: NoShowTarget,
    key: IdempotencyKey,
    at: DateTime<Utc>,
) -> Result<Stepped, Error> {
    let NoShowTarget {
        reservation,
        venue,
        saved,
    } = target;
    let id = reservation.id;
    let fee = match venue
        .payment_rule_for(reservation.service_id)
        .requirement(reservation.party_size)?
    {
        Some(requirement) if requirement.purpose == Purpose::SaveCard => requirement.amount,
        _ => {
            return Err(DomainError::invalid(
                "reservationId",
                "this venue takes no card guarantee",
            )
            .into());
        }
    };
    let no_card = || -> Error {
        DomainError::invalid("reservationId", "no card was saved for this reservation").into()
    };
    let saved = saved.ok_or_else(no_card)?;
    let saved_reference = saved.reference.clone().ok_or_else(no_card)?;
    let gateways = gateways.ok_or_else(|| Error::Refused(NO_GATEWAY.to_owned()))?;
    let provider = gateways.named(&saved.gateway).ok_or_else(|| {
        Error::Refused(format!(
            "gateway: `{}` is not configured on this server",
            saved.gateway
        ))
    })?;
    let hash = format!("no-show|{id}|{}", fee.minor());
    let begun = {
        let store = store.clone();
        let gateway = saved.gateway.clone();
        blocking(move || {
            Ok(store.begin_payment(
                &NewPayment {
                    reservation: id,
                    kind: "no_show_fee",
                    gateway: &gateway,
                    amount: fee,
                    idempotency_key: key.as_str(),
                    request_hash: &hash,
                },
                at,
            )?)
        })
        .await?
    };
    let payment = match begun {
        BeginPayment::Existing(payment) if payment.reference.is_some() => {
            return settle(
                store,
                monitor,
                provider.as_ref(),
                payment,
                None,
                None,
                "refresh",
                at,
            )
            .await;
        }
        BeginPayment::New(payment) | BeginPayment::Existing(payment) => payment,
    };
    let request = start_request(&payment, "saved card", None, Purpose::Charge);
    let answer = match provider.charge_saved(&saved_reference, &request).await {
        Ok(answer) => answer,
        Err(GatewayError::Timeout | GatewayError::Unavailable(_)) => {
            return Ok(Stepped {
                payment,
                step: Some(PaymentStep::Processing),
            });
        }
        Err(other) => return Err(provider_error(other)),
    };
    let step = answer.step.clone();
    let id = payment.id.clone();
    let store = store.clone();
    let recorded = blocking(move || {
        Ok(store.record_payment_answer(
            &id,
            &ProviderAnswer {
                reference: Some(&answer.reference),
                step: &answer.step,
                card_brand: answer.card_brand.as_deref(),
                card_last4: answer.card_last4.as_deref(),
                source: "no_show_fee",
            },
            at,
        )?)
    })
    .await?;
    Ok(Stepped {
        payment: recorded.payment,
        step: Some(step),
    })
}

/// A payment and the venue of its reservation, loaded before the caller's
/// rights in that venue are checked; an unknown payment is NOT_FOUND.
pub async fn payment_in_venue(store: &Store, id: &str) -> Result<(Payment, VenueId), Error> {
    let store = store.clone();
    let id = id.to_owned();
    blocking(move || {
        let payment = store
            .payment(&id)?
            .ok_or(DomainError::not_found("payment"))?;
        let reservation = store
            .reservation(payment.reservation_id)?
            .ok_or(DomainError::not_found("payment"))?;
        Ok((payment, reservation.venue_id))
    })
    .await
}

/// A payment by id, loaded before the caller's right to change its
/// reservation is checked; an unknown payment is NOT_FOUND.
pub async fn payment(store: &Store, id: &str) -> Result<Payment, Error> {
    let store = store.clone();
    let id = id.to_owned();
    blocking(move || {
        Ok(store
            .payment(&id)?
            .ok_or(DomainError::not_found("payment"))?)
    })
    .await
}

fn configured(
    gateways: Option<&plugins::Gateways>,
    name: &str,
) -> Result<std::sync::Arc<dyn PaymentGateway>, Error> {
    let gateways = gateways.ok_or_else(|| Error::Refused(NO_GATEWAY.to_owned()))?;
    gateways.named(name).ok_or_else(|| {
        Error::Refused(format!(
            "gateway: `{name}` is not configured on this server"
        ))
    })
}

/// What a guest or the venue asks to pay for a pending reservation.
pub struct PaymentRequest {
    pub reservation: ReservationId,
    /// The gateway's name (`stripe`, `paypal`, `onsite`).
    pub gateway: String,
    /// The provider's token from the front-end.
    pub token: String,
    pub key: IdempotencyKey,
    pub return_url: Option<String>,
}

/// Pays what the venue asks for a reservation: a charge or a saved card,
/// as its rule says. The same key and request answer the same payment, so
/// a retry never pays twice.
pub async fn start_payment(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    request: PaymentRequest,
    at: DateTime<Utc>,
) -> Result<Stepped, Error> {
    let PaymentRequest {
        reservation: id,
        gateway,
        token,
        key,
        return_url,
    } = request;
    let (reservation, venue) = {
        let store = store.clone();
        blocking(move || {
            let reservation = store
                .reservation(id)?
                .ok_or(DomainError::not_found("reservation"))?;
            let venue = store
                .venue(reservation.venue_id)?
                .ok_or(DomainError::not_found("venue"))?;
            Ok((reservation, venue))
        })
        .await?
    };
    let provider = gateways
        .ok_or_else(|| Error::Refused(NO_GATEWAY.to_owned()))?
        .for_venue(&gateway, &venue.id.to_string())?;
    provider.check_token(&token)?;
    let requirement = venue
        .payment_rule_for(reservation.service_id)
        .requirement(reservation.party_size)?
        .ok_or_else(|| {
            DomainError::invalid("reservationId", "this venue takes no payment online")
        })?;
    let amount = requirement.amount;
    let kind = match requirement.purpose {
        Purpose::Charge => "charge",
        Purpose::SaveCard => "guarantee",
    };
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        format!("{id}\u{1f}{gateway}\u{1f}{token}\u{1f}{}", amount.minor()).as_bytes(),
    ));
    let begun = {
        let store = store.clone();
        blocking(move || {
            Ok(store.begin_payment(
                &NewPayment {
                    reservation: id,
                    kind,
                    gateway: &gateway,
                    amount,
                    idempotency_key: key.as_str(),
                    request_hash: &hash,
                },
                at,
            )?)
        })
        .await?
    };
    let payment = match begun {
        BeginPayment::New(payment) | BeginPayment::Existing(payment) => payment,
    };
    let request = start_request(&payment, &token, return_url, requirement.purpose);
    settle(
        store,
        monitor,
        provider.as_ref(),
        payment,
        Some(request),
        None,
        "start",
        at,
    )
    .await
}

/// After the guest's challenge: asks the payment's provider how it
/// stands. The front-end saying "done" proves nothing by itself.
pub async fn complete_payment(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    payment: Payment,
    at: DateTime<Utc>,
) -> Result<Stepped, Error> {
    let provider = configured(gateways, &payment.gateway)?;
    settle(
        store,
        monitor,
        provider.as_ref(),
        payment,
        None,
        None,
        "refresh",
        at,
    )
    .await
}

/// Refunds `amount` (in the payment's currency's minor unit) of a payment.
/// More than what is left is refused before the provider is asked. The
/// key is claimed before the provider is asked: the same request again
/// finds the refund made and neither asks nor counts again.
pub async fn refund_payment(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    payment: Payment,
    amount: i64,
    key: IdempotencyKey,
    at: DateTime<Utc>,
) -> Result<Payment, Error> {
    let amount = Money::new(amount, payment.amount.currency())?;
    let begun = {
        let store = store.clone();
        let id = payment.id.clone();
        let key = key.as_str().to_owned();
        blocking(move || Ok(store.begin_refund(&id, &key, amount, at)?)).await?
    };
    let payment = match begun {
        BeginRefund::Done(payment) => return Ok(payment),
        BeginRefund::Ask(payment) => payment,
    };
    let reference = payment.reference.clone().ok_or_else(|| {
        DomainError::invalid("paymentId", "this payment never reached its provider")
    })?;
    let provider = configured(gateways, &payment.gateway)?;
    let refund = provider
        .refund(
            &reference,
            amount,
            &format!("kluis-refund-{}", key.as_str()),
        )
        .await
        .map_err(provider_error)?;
    if !refund.succeeded {
        return Err(
            DomainError::Conflict("the provider did not accept the refund".to_owned()).into(),
        );
    }
    let store = store.clone();
    let id = payment.id.clone();
    blocking(move || {
        Ok(store.record_refund(&id, key.as_str(), refund.amount, &refund.reference, at)?)
    })
    .await
}

/// Closes an on-site payment at the desk: paid at the venue (a pending
/// booking is then confirmed) or cancelled. Only open on-site payments;
/// closing twice is a conflict. Money paid for a booking that no longer
/// waited for it is given back (see [`give_back`]).
pub async fn close_onsite_payment(
    store: &Store,
    gateways: Option<&plugins::Gateways>,
    monitor: Option<&Monitor>,
    payment: Payment,
    paid: bool,
    at: DateTime<Utc>,
) -> Result<Payment, Error> {
    let ended = || DomainError::Conflict("this payment has already ended".to_owned());
    if payment.gateway != "onsite" {
        return Err(DomainError::invalid(
            "paymentId",
            "only on-site payments are closed at the venue",
        )
        .into());
    }
    if !payment.status.is_in_flight() {
        return Err(ended().into());
    }
    let (status, source) = if paid {
        (
            domain::payments::PaymentStatus::Succeeded,
            "paid at the venue",
        )
    } else {
        (
            domain::payments::PaymentStatus::Cancelled,
            "cancelled at the venue",
        )
    };
    let closed = {
        let store = store.clone();
        let id = payment.id.clone();
        blocking(move || Ok(store.end_payment(&id, status, source, "venue", at)?)).await?
    };
    let closed = closed.ok_or_else(ended)?;
    let gateways = gateways.ok_or_else(|| Error::Refused(NO_GATEWAY.to_owned()))?;
    Ok(match gateways.named("onsite") {
        Some(onsite) => give_back(store, monitor, onsite.as_ref(), closed, at).await,
        None => closed.payment,
    })
}
