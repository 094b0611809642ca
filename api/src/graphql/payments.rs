//! Payments over GraphQL: start, complete after a challenge, refund. The
//! front-end's word never changes a payment: every state comes from the
//! provider (its answer here, or a verified webhook).

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::payments::{
    GatewayError, Money, NextAction, Payment, PaymentGateway, PaymentStep, Purpose, StartPayment,
};
use domain::ports::{ReservationRepository, VenueRepository};
use domain::{DomainError, IdempotencyKey, ReservationId, VenueId};
use store::{BeginPayment, BeginRefund, NewPayment, Store};

use app::payments::{give_back, start_request};

use super::context::{blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE, READ};
use super::guard::{Access, authorize_change_in};

#[derive(SimpleObject, Clone)]
#[graphql(name = "Money")]
pub struct MoneyValue {
    /// In the currency's minor unit (cents).
    pub amount: i64,
    pub currency: String,
}

impl From<Money> for MoneyValue {
    fn from(money: Money) -> Self {
        Self {
            amount: money.minor(),
            currency: money.currency().code().to_owned(),
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PaymentStatus")]
pub enum PaymentStatusValue {
    RequiresAction,
    Processing,
    Succeeded,
    Failed,
    Cancelled,
    Refunded,
    PartiallyRefunded,
}

impl From<domain::payments::PaymentStatus> for PaymentStatusValue {
    fn from(status: domain::payments::PaymentStatus) -> Self {
        use domain::payments::PaymentStatus as S;
        match status {
            S::RequiresAction => Self::RequiresAction,
            S::Processing => Self::Processing,
            S::Succeeded => Self::Succeeded,
            S::Failed => Self::Failed,
            S::Cancelled => Self::Cancelled,
            S::Refunded => Self::Refunded,
            S::PartiallyRefunded => Self::PartiallyRefunded,
        }
    }
}

/// Who reached a payment, and the venue it belongs to: its card details
/// answer only when the policy lets that Casbin subject (`guest` for the
/// holder of the reservation's manage token) read them there. Nobody
/// reaches nothing.
#[derive(Clone)]
pub struct Viewer(Option<(String, VenueId)>);

impl Viewer {
    pub fn new(subject: Option<String>, venue: VenueId) -> Self {
        Self(subject.map(|subject| (subject, venue)))
    }

    /// The caller of a payment mutation: as the guest when it came with the
    /// reservation's manage token, as itself otherwise.
    fn of(ctx: &Context<'_>, access: Access, venue: VenueId) -> Self {
        let subject = match access {
            Access::Guest => "guest".to_owned(),
            Access::Public => guard::principal(ctx).subject(),
        };
        Self(Some((subject, venue)))
    }

    /// For answers that reach no caller (webhooks).
    pub fn nobody() -> Self {
        Self(None)
    }
}

/// A payment as kluis keeps it: no card number, CVC or expiry exists here.
#[derive(SimpleObject)]
#[graphql(name = "Payment", complex)]
pub struct PaymentObject {
    pub id: ID,
    /// `charge`, `guarantee` (a card saved for a no-show fee; nothing
    /// charged) or `no_show_fee`.
    pub kind: String,
    pub gateway: String,
    pub amount: MoneyValue,
    pub refunded: MoneyValue,
    pub status: PaymentStatusValue,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    card_brand: Option<String>,
    #[graphql(skip)]
    card_last4: Option<String>,
    #[graphql(skip)]
    viewer: Viewer,
}

impl PaymentObject {
    pub fn new(payment: Payment, viewer: Viewer) -> Self {
        Self {
            id: ID(payment.id),
            kind: payment.kind,
            gateway: payment.gateway,
            amount: payment.amount.into(),
            refunded: payment.refunded.into(),
            status: payment.status.into(),
            failure_reason: payment.failure_reason,
            card_brand: payment.card_brand,
            card_last4: payment.card_last4,
            created_at: payment.created_at,
            updated_at: payment.updated_at,
            viewer,
        }
    }

    /// Card details are payment data: a caller the policy does not let read
    /// `object` in the payment's venue gets FORBIDDEN on that field, and the
    /// rest of the answer stands (a payment mutation still tells a partner
    /// or staff member how the payment stands).
    fn check(&self, ctx: &Context<'_>, object: Coordinate) -> Result<()> {
        let permitted = self.viewer.0.as_ref().is_some_and(|(subject, venue)| {
            guard::allowed_as(ctx, subject, Some(*venue), object, READ)
        });
        if permitted {
            Ok(())
        } else {
            Err(guard::forbidden(ctx, object))
        }
    }
}

#[ComplexObject]
impl PaymentObject {
    /// Payment data: the card's brand (`visa`, ...), for those the policy
    /// lets read `Payment.cardBrand`.
    async fn card_brand(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.check(ctx, coordinates::PAYMENT_CARD_BRAND)?;
        Ok(self.card_brand.clone())
    }

    /// Payment data: the card's last four digits, for those the policy
    /// lets read `Payment.cardLast4`.
    async fn card_last4(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.check(ctx, coordinates::PAYMENT_CARD_LAST4)?;
        Ok(self.card_last4.clone())
    }
}

/// What the front-end does next: nothing, wait, or run the challenge.
#[derive(SimpleObject)]
pub struct PaymentStepPayload {
    pub payment: PaymentObject,
    /// Send the guest here for 3D Secure or PayPal approval…
    pub redirect_url: Option<String>,
    /// …or hand this to Stripe.js `handleNextAction`.
    pub client_secret: Option<String>,
}

fn payload(payment: Payment, step: Option<&PaymentStep>, viewer: Viewer) -> PaymentStepPayload {
    let (redirect_url, client_secret) = match step {
        Some(PaymentStep::RequiresAction {
            next_action: NextAction::RedirectToUrl(url),
        }) => (Some(url.clone()), None),
        Some(PaymentStep::RequiresAction {
            next_action: NextAction::ClientSecret(secret),
        }) => (None, Some(secret.clone())),
        _ => (None, None),
    };
    PaymentStepPayload {
        payment: PaymentObject::new(payment, viewer),
        redirect_url,
        client_secret,
    }
}

fn gateways<'a>(ctx: &Context<'a>) -> Result<&'a plugins::Gateways> {
    ctx.data_opt::<plugins::Gateways>()
        .ok_or_else(|| api_error(Code::BadUserInput, app::payments::NO_GATEWAY))
}

fn provider_error(error: GatewayError) -> async_graphql::Error {
    super::errors::app_error(app::payments::provider_error(error))
}

/// Asks the provider and records its answer (see
/// [`app::payments::settle`]), answered as the payload clients see.
#[expect(
    clippy::too_many_arguments,
    reason = "one step of several flows, each naming its own parts"
)]
pub async fn settle(
    store: &Store,
    monitor: Option<&app::monitor::Monitor>,
    viewer: Viewer,
    gateway: &dyn PaymentGateway,
    payment: Payment,
    start: Option<StartPayment>,
    reference_hint: Option<&str>,
    source: &'static str,
    at: DateTime<Utc>,
) -> Result<PaymentStepPayload> {
    let stepped = app::payments::settle(
        store,
        monitor,
        gateway,
        payment,
        start,
        reference_hint,
        source,
        at,
    )
    .await
    .or_gql()?;
    Ok(payload(stepped.payment, stepped.step.as_ref(), viewer))
}

#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// Pays what the venue asks for a pending reservation, with a provider
    /// token from the front-end (Stripe PaymentMethod id, `onsite`). Returns
    /// the provider's answer: done, a challenge to run, processing, or
    /// failed. Retrying with the same key never pays twice.
    #[expect(
        clippy::too_many_arguments,
        reason = "GraphQL arguments of one mutation"
    )]
    async fn start_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        gateway: String,
        token: String,
        idempotency_key: String,
        manage_token: Option<String>,
        return_url: Option<String>,
    ) -> Result<PaymentStepPayload> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let (id, access, venue_id) = authorize_change_in(
            ctx,
            &reservation_id,
            manage_token,
            coordinates::MUTATION_START_PAYMENT,
        )
        .await?;
        let viewer = Viewer::of(ctx, access, venue_id);
        let store = store(ctx).clone();
        let at = now(ctx);
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
        let provider = gateways(ctx)?
            .for_venue(&gateway, &venue.id.to_string())
            .or_gql()?;
        provider.check_token(&token).or_gql()?;
        let requirement = venue
            .payments
            .rule
            .requirement(reservation.party_size)
            .or_gql()?
            .ok_or_else(|| {
                api_error(
                    Code::BadUserInput,
                    "reservationId: this venue takes no payment online",
                )
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
            let gateway = gateway.clone();
            blocking(move || {
                store.begin_payment(
                    &NewPayment {
                        reservation: id,
                        kind,
                        gateway: &gateway,
                        amount,
                        idempotency_key: key.as_str(),
                        request_hash: &hash,
                    },
                    at,
                )
            })
            .await?
        };
        let payment = match begun {
            BeginPayment::New(payment) | BeginPayment::Existing(payment) => payment,
        };
        let request = start_request(&payment, &token, return_url, requirement.purpose);
        settle(
            &store,
            ctx.data_opt::<app::monitor::Monitor>(),
            viewer,
            provider.as_ref(),
            payment,
            Some(request),
            None,
            "start",
            at,
        )
        .await
    }

    /// After the guest's challenge: asks the provider how the payment
    /// stands. The front-end saying "done" proves nothing by itself.
    async fn complete_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        manage_token: Option<String>,
    ) -> Result<PaymentStepPayload> {
        let store = store(ctx).clone();
        let payment = {
            let store = store.clone();
            let id = payment_id.0.clone();
            blocking(move || {
                Ok(store
                    .payment(&id)?
                    .ok_or(DomainError::not_found("payment"))?)
            })
            .await?
        };
        let reservation = ID(payment.reservation_id.to_string());
        let (_, access, venue) = authorize_change_in(
            ctx,
            &reservation,
            manage_token,
            coordinates::MUTATION_COMPLETE_PAYMENT,
        )
        .await?;
        let viewer = Viewer::of(ctx, access, venue);
        let provider = gateways(ctx)?.named(&payment.gateway).ok_or_else(|| {
            api_error(
                Code::BadUserInput,
                format!(
                    "gateway: `{}` is not configured on this server",
                    payment.gateway
                ),
            )
        })?;
        settle(
            &store,
            ctx.data_opt::<app::monitor::Monitor>(),
            viewer,
            provider.as_ref(),
            payment,
            None,
            None,
            "refresh",
            now(ctx),
        )
        .await
    }

    /// Refunds part or all of a payment (managers). More than what is left
    /// is refused before the provider is asked.
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        amount: i64,
        idempotency_key: String,
    ) -> Result<PaymentObject> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let store = store(ctx).clone();
        let (payment, venue) = payment_in_venue(&store, &payment_id).await?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_REFUND_PAYMENT,
            EXECUTE,
            "payment",
        )?;
        let amount = Money::new(amount, payment.amount.currency()).or_gql()?;
        let at = now(ctx);
        // The key is claimed before the provider is asked: the same request
        // again finds the refund made and neither asks nor counts again.
        let begun = {
            let store = store.clone();
            let id = payment.id.clone();
            let key = key.as_str().to_owned();
            blocking(move || store.begin_refund(&id, &key, amount, at)).await?
        };
        let payment = match begun {
            BeginRefund::Done(payment) => {
                return Ok(PaymentObject::new(
                    payment,
                    Viewer::of(ctx, Access::Public, venue),
                ));
            }
            BeginRefund::Ask(payment) => payment,
        };
        let reference = payment.reference.clone().ok_or_else(|| {
            api_error(
                Code::BadUserInput,
                "paymentId: this payment never reached its provider",
            )
        })?;
        let provider = gateways(ctx)?.named(&payment.gateway).ok_or_else(|| {
            api_error(
                Code::BadUserInput,
                format!(
                    "gateway: `{}` is not configured on this server",
                    payment.gateway
                ),
            )
        })?;
        let refund = provider
            .refund(
                &reference,
                amount,
                &format!("kluis-refund-{}", key.as_str()),
            )
            .await
            .map_err(provider_error)?;
        if !refund.succeeded {
            return Err(api_error(
                Code::Conflict,
                "the provider did not accept the refund",
            ));
        }
        let id = payment.id.clone();
        let recorded = blocking(move || {
            store.record_refund(&id, key.as_str(), refund.amount, &refund.reference, at)
        })
        .await?;
        Ok(PaymentObject::new(
            recorded,
            Viewer::of(ctx, Access::Public, venue),
        ))
    }
}

#[derive(Default)]
pub struct OnsiteMutation;

#[Object]
impl OnsiteMutation {
    /// Closes an on-site payment at the desk (venue staff, managers):
    /// `paid: true` when the guest paid at the venue (a pending booking is
    /// then confirmed), `false` to cancel it. Only open on-site payments;
    /// closing twice is CONFLICT.
    async fn close_onsite_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        paid: bool,
    ) -> Result<PaymentObject> {
        let store = store(ctx).clone();
        let (payment, venue) = payment_in_venue(&store, &payment_id).await?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_CLOSE_ONSITE_PAYMENT,
            EXECUTE,
            "payment",
        )?;
        if payment.gateway != "onsite" {
            return Err(api_error(
                Code::BadUserInput,
                "paymentId: only on-site payments are closed at the venue",
            ));
        }
        if !payment.status.is_in_flight() {
            return Err(api_error(Code::Conflict, "this payment has already ended"));
        }
        let at = now(ctx);
        let status = if paid {
            domain::payments::PaymentStatus::Succeeded
        } else {
            domain::payments::PaymentStatus::Cancelled
        };
        let source = if paid {
            "paid at the venue"
        } else {
            "cancelled at the venue"
        };
        let id = payment.id.clone();
        let store_for_refund = &store.clone();
        let ended = blocking(move || store.end_payment(&id, status, source, "venue", at)).await?;
        let ended =
            ended.ok_or_else(|| api_error(Code::Conflict, "this payment has already ended"))?;
        // Paid at the desk for a booking that no longer waited for it: the
        // venue gives the money back there, and an alert says so.
        let payment = match gateways(ctx)?.named("onsite") {
            Some(onsite) => {
                give_back(
                    store_for_refund,
                    ctx.data_opt::<app::monitor::Monitor>(),
                    onsite.as_ref(),
                    ended,
                    at,
                )
                .await
            }
            None => ended.payment,
        };
        Ok(PaymentObject::new(
            payment,
            Viewer::of(ctx, Access::Public, venue),
        ))
    }
}

#[derive(Default)]
pub struct NoShowMutation;

#[Object]
impl NoShowMutation {
    /// Charges the no-show fee to the card the guest left as guarantee
    /// (managers; only for reservations marked no-show). Retrying with the
    /// same key never charges twice.
    async fn charge_no_show_fee(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        idempotency_key: String,
    ) -> Result<PaymentStepPayload> {
        let key = IdempotencyKey::parse(&idempotency_key).or_gql()?;
        let id = ReservationId::parse(&reservation_id).or_gql()?;
        let store = store(ctx);
        let target = app::payments::no_show_target(store, id).await.or_gql()?;
        guard::require_in_venue(
            ctx,
            target.venue.id,
            coordinates::MUTATION_CHARGE_NO_SHOW_FEE,
            EXECUTE,
            "reservation",
        )?;
        let viewer = Viewer::of(ctx, Access::Public, target.venue.id);
        let stepped = app::payments::charge_no_show_fee(
            store,
            ctx.data_opt::<plugins::Gateways>(),
            ctx.data_opt::<app::monitor::Monitor>(),
            target,
            key,
            now(ctx),
        )
        .await
        .or_gql()?;
        Ok(payload(stepped.payment, stepped.step.as_ref(), viewer))
    }
}

/// Payments of a reservation, for `Reservation.payments`, as seen by
/// whoever reached the reservation.
pub async fn payments_of(
    ctx: &Context<'_>,
    reservation: ReservationId,
    viewer: Viewer,
) -> Result<Vec<PaymentObject>> {
    let store = store(ctx).clone();
    let payments = blocking(move || store.payments_of(reservation)).await?;
    Ok(payments
        .into_iter()
        .map(|payment| PaymentObject::new(payment, viewer.clone()))
        .collect())
}

/// A payment and the venue of its reservation, before the caller's rights
/// in that venue are checked; an unknown payment is NOT_FOUND.
async fn payment_in_venue(store: &Store, payment_id: &ID) -> Result<(Payment, VenueId)> {
    let store = store.clone();
    let id = payment_id.0.clone();
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
