//! Payments over GraphQL: start, complete after a challenge, refund. The
//! front-end's word never changes a payment: every state comes from the
//! provider (its answer here, or a verified webhook).

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::payments::{Money, NextAction, Payment, PaymentStep};
use domain::{IdempotencyKey, ReservationId, VenueId};

use super::context::{blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::OrGraphqlError;
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
        let request = app::payments::PaymentRequest {
            reservation: id,
            gateway,
            token,
            key,
            return_url,
        };
        let stepped = app::payments::start_payment(
            store(ctx),
            ctx.data_opt::<plugins::Gateways>(),
            ctx.data_opt::<app::monitor::Monitor>(),
            request,
            now(ctx),
        )
        .await
        .or_gql()?;
        Ok(payload(stepped.payment, stepped.step.as_ref(), viewer))
    }

    /// After the guest's challenge: asks the provider how the payment
    /// stands. The front-end saying "done" proves nothing by itself.
    async fn complete_payment(
        &self,
        ctx: &Context<'_>,
        payment_id: ID,
        manage_token: Option<String>,
    ) -> Result<PaymentStepPayload> {
        let payment = app::payments::payment(store(ctx), &payment_id)
            .await
            .or_gql()?;
        let reservation = ID(payment.reservation_id.to_string());
        let (_, access, venue) = authorize_change_in(
            ctx,
            &reservation,
            manage_token,
            coordinates::MUTATION_COMPLETE_PAYMENT,
        )
        .await?;
        let viewer = Viewer::of(ctx, access, venue);
        let stepped = app::payments::complete_payment(
            store(ctx),
            ctx.data_opt::<plugins::Gateways>(),
            ctx.data_opt::<app::monitor::Monitor>(),
            payment,
            now(ctx),
        )
        .await
        .or_gql()?;
        Ok(payload(stepped.payment, stepped.step.as_ref(), viewer))
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
        let store = store(ctx);
        let (payment, venue) = app::payments::payment_in_venue(store, &payment_id)
            .await
            .or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_REFUND_PAYMENT,
            EXECUTE,
            "payment",
        )?;
        let gateways = ctx.data_opt::<plugins::Gateways>();
        let refunded =
            app::payments::refund_payment(store, gateways, payment, amount, key, now(ctx))
                .await
                .or_gql()?;
        Ok(PaymentObject::new(
            refunded,
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
        let store = store(ctx);
        let (payment, venue) = app::payments::payment_in_venue(store, &payment_id)
            .await
            .or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::MUTATION_CLOSE_ONSITE_PAYMENT,
            EXECUTE,
            "payment",
        )?;
        let closed = app::payments::close_onsite_payment(
            store,
            ctx.data_opt::<plugins::Gateways>(),
            ctx.data_opt::<app::monitor::Monitor>(),
            payment,
            paid,
            now(ctx),
        )
        .await
        .or_gql()?;
        Ok(PaymentObject::new(
            closed,
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
