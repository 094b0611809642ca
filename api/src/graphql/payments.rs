//! Payments over GraphQL: start, complete after a challenge, refund, the
//! no-show fee and the desk's on-site close. The front-end's word never
//! changes a payment: every state comes from the provider (its answer here,
//! or a verified webhook). What the person at the form can fix (an amount,
//! a key, a reservation not found or not theirs, a payment already closed)
//! is a user error in the payload; a declined card is no error at all but
//! the payment's own answer (`nextStep: FAILED`).
//!
//! The `Payment` type's fields are resolved in `payment_object`, above both
//! this module and `types`: a payment leads to its reservation and a
//! reservation to its payments.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use domain::payments::{Money, NextAction, Payment, PaymentStatus, PaymentStep};
use domain::ports::ReservationRepository as _;
use domain::{DomainError, IdempotencyKey, ReservationId, VenueId};

use super::context::{blocking, manage_token, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::OrGraphqlError;
use super::guard::{self, EXECUTE, READ};
use super::guard::{Access, authorize_change_in};
use super::payload::{Checks, UserError, UserErrorCode, outcome};

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

impl From<PaymentStatus> for PaymentStatusValue {
    fn from(status: PaymentStatus) -> Self {
        use PaymentStatus as S;
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

pub use super::enums::PaymentGateway;

/// What a payment is for. (Not the venue's rule, `PaymentKind`, which says
/// what a venue asks for.)
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PaymentPurpose {
    /// Money taken for the booking: a deposit or a prepayment.
    Charge,
    /// A card saved for a later no-show fee; nothing was charged.
    Guarantee,
    /// The no-show fee charged to a saved card.
    NoShowFee,
}

impl PaymentPurpose {
    pub fn from_name(kind: &str) -> Option<Self> {
        match kind {
            "charge" => Some(Self::Charge),
            "guarantee" => Some(Self::Guarantee),
            "no_show_fee" => Some(Self::NoShowFee),
            _ => None,
        }
    }
}

/// Who reached a payment, and the venue it belongs to: its card details
/// and its reservation answer only when the policy lets that Casbin subject
/// (`guest` for the holder of the reservation's manage token) read them
/// there. Nobody reaches nothing.
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

    /// The subject and venue, when someone reached the payment.
    pub fn reach(&self) -> Option<(&str, VenueId)> {
        self.0
            .as_ref()
            .map(|(subject, venue)| (subject.as_str(), *venue))
    }
}

/// A payment as kluis keeps it: no card number, CVC or expiry exists here.
/// Its GraphQL fields are in `payment_object`.
pub struct PaymentObject {
    pub payment: Payment,
    pub viewer: Viewer,
}

impl PaymentObject {
    pub fn new(payment: Payment, viewer: Viewer) -> Self {
        Self { payment, viewer }
    }

    /// Whether the viewer may read `object` in the payment's venue;
    /// FORBIDDEN (or UNAUTHENTICATED) on that field otherwise, and the rest
    /// of the answer stands (a payment mutation still tells a partner or
    /// staff member how the payment stands).
    pub fn check(&self, ctx: &Context<'_>, object: Coordinate) -> Result<()> {
        let permitted = self.viewer.reach().is_some_and(|(subject, venue)| {
            guard::allowed_as(ctx, subject, Some(venue), object, READ)
        });
        if permitted {
            Ok(())
        } else {
            Err(guard::forbidden(ctx, object))
        }
    }
}

/// A payment by id, for those who may read its reservation's payments in
/// its venue (or hold that reservation's manage token): null with NOT_FOUND
/// when unknown or in a venue the caller cannot see, FORBIDDEN where the
/// policy does not grant `Reservation.payments`. For `node(id:)`.
pub async fn payment_by_id(ctx: &Context<'_>, id: &str) -> Result<Option<PaymentObject>> {
    let (payment, venue) = app::payments::payment_in_venue(store(ctx), id)
        .await
        .or_gql()?;
    let token = manage_token(ctx, None)?;
    if let Some(token) = token {
        let reservation = ID(payment.reservation_id.to_string());
        let object = coordinates::RESERVATION_PAYMENTS;
        let (_, access, venue) =
            authorize_guest_read(ctx, &reservation, token.expose(), object).await?;
        return Ok(Some(PaymentObject::new(
            payment,
            Viewer::of(ctx, access, venue),
        )));
    }
    guard::require_in_venue(
        ctx,
        venue,
        coordinates::RESERVATION_PAYMENTS,
        READ,
        "payment",
    )?;
    Ok(Some(PaymentObject::new(
        payment,
        Viewer::of(ctx, Access::Public, venue),
    )))
}

/// A guest's read of their own reservation's payments: the token must be
/// that reservation's, and the policy must let `guest` read `object`.
async fn authorize_guest_read(
    ctx: &Context<'_>,
    reservation: &ID,
    token: &str,
    object: Coordinate,
) -> Result<(ReservationId, Access, VenueId)> {
    let id = ReservationId::parse(reservation).or_gql()?;
    let parsed = domain::ManageToken::parse(token).or_gql()?;
    let store = store(ctx).clone();
    let venue = blocking(move || match store.reservation_by_token(&parsed)? {
        Some(found) if found.id == id => Ok(found.venue_id),
        _ => Err(DomainError::not_found("payment").into()),
    })
    .await?;
    if !guard::allowed_as(ctx, "guest", Some(venue), object, READ) {
        return Err(guard::forbidden(ctx, object));
    }
    Ok((id, Access::Guest, venue))
}

/// What the front-end does after a payment step.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PaymentNextStep {
    /// Nothing: the provider took the payment (or saved the card).
    Done,
    /// Run the guest's challenge (3D Secure, PayPal approval): send them
    /// to `redirectUrl`, or hand `clientSecret` to Stripe.js
    /// `handleNextAction`; then call `completePayment`.
    Challenge,
    /// The provider has not decided yet: a webhook settles it, and
    /// `completePayment` asks again.
    Processing,
    /// It did not go through: declined (`payment.failureReason` says why),
    /// cancelled, or given back because the booking no longer waited for
    /// it. Start again, with another card where it was declined.
    Failed,
}

impl PaymentNextStep {
    fn of(step: Option<&PaymentStep>, status: PaymentStatus) -> Self {
        use PaymentStatus as S;
        match (step, status) {
            (Some(PaymentStep::RequiresAction { .. }), _) => Self::Challenge,
            (_, S::Succeeded) => Self::Done,
            (_, S::RequiresAction | S::Processing) => Self::Processing,
            // Taken just now and given back at once: the booking had
            // stopped waiting for it.
            (Some(PaymentStep::Succeeded), S::Refunded | S::PartiallyRefunded) => Self::Failed,
            (_, S::Refunded | S::PartiallyRefunded) => Self::Done,
            (_, S::Failed | S::Cancelled) => Self::Failed,
        }
    }
}

/// A payment step as the payloads answer it.
struct StepAnswer {
    payment: PaymentObject,
    next_step: PaymentNextStep,
    redirect_url: Option<String>,
    client_secret: Option<String>,
}

impl StepAnswer {
    fn new(stepped: app::payments::Stepped, viewer: Viewer) -> Self {
        let step = stepped.step.as_ref();
        let (redirect_url, client_secret) = match step {
            Some(PaymentStep::RequiresAction {
                next_action: NextAction::RedirectToUrl(url),
            }) => (Some(url.clone()), None),
            Some(PaymentStep::RequiresAction {
                next_action: NextAction::ClientSecret(secret),
            }) => (None, Some(secret.clone())),
            _ => (None, None),
        };
        Self {
            next_step: PaymentNextStep::of(step, stepped.payment.status),
            payment: PaymentObject::new(stepped.payment, viewer),
            redirect_url,
            client_secret,
        }
    }
}

/// Declares the payload of a mutation that takes a payment step.
macro_rules! step_payload {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(SimpleObject, Default)]
        pub struct $name {
            pub payment: Option<PaymentObject>,
            /// What the front-end does next; null when the mutation did
            /// not go through.
            pub next_step: Option<PaymentNextStep>,
            /// With `CHALLENGE`: send the guest here for 3D Secure or
            /// PayPal approval…
            pub redirect_url: Option<String>,
            /// …or hand this to Stripe.js `handleNextAction`.
            pub client_secret: Option<String>,
            /// What to fix before submitting again; empty when it went
            /// through.
            pub user_errors: Vec<UserError>,
        }

        impl $name {
            fn answer(done: Option<StepAnswer>, user_errors: Vec<UserError>) -> Self {
                match done {
                    Some(step) => Self {
                        payment: Some(step.payment),
                        next_step: Some(step.next_step),
                        redirect_url: step.redirect_url,
                        client_secret: step.client_secret,
                        user_errors,
                    },
                    None => Self {
                        user_errors,
                        ..Self::default()
                    },
                }
            }
        }
    };
}

step_payload!(
    /// The provider's answer to a payment's start.
    StartPaymentPayload
);
step_payload!(
    /// How a payment stands after the guest's challenge, as its provider
    /// says.
    CompletePaymentPayload
);
step_payload!(
    /// The provider's answer to a no-show fee.
    ChargeNoShowFeePayload
);

/// The payment after a refund.
#[derive(SimpleObject, Default)]
pub struct RefundPaymentPayload {
    pub payment: Option<PaymentObject>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

/// The on-site payment, closed.
#[derive(SimpleObject, Default)]
pub struct CloseOnsitePaymentPayload {
    pub payment: Option<PaymentObject>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

/// Points a NOT_FOUND that names no field at the input field it is about
/// (the reservation or payment the caller named).
fn at(errors: Vec<UserError>, field: &str) -> Vec<UserError> {
    point(errors, field, |error| error.code == UserErrorCode::NotFound)
}

fn point(
    mut errors: Vec<UserError>,
    field: &str,
    about: impl Fn(&UserError) -> bool,
) -> Vec<UserError> {
    for error in &mut errors {
        if error.field.is_empty() && about(error) {
            error.field = vec!["input".to_owned(), field.to_owned()];
        }
    }
    errors
}

/// Reads the idempotency key into `checks`.
fn key(checks: &mut Checks, raw: &str) -> Option<IdempotencyKey> {
    checks.take(IdempotencyKey::parse(raw).or_gql())
}

/// The manage token of a guest's call, from the header or the deprecated
/// field; a token sent twice is a user error on `manageToken`.
fn guest_token(
    ctx: &Context<'_>,
    argument: Option<&str>,
) -> Result<Result<Option<String>, Vec<UserError>>> {
    let (token, errors) = outcome(manage_token(ctx, argument))?;
    match token {
        Some(token) => Ok(Ok(token.map(|token| token.expose().to_owned()))),
        None => Ok(Err(point(errors, "manageToken", |_| true))),
    }
}

/// Pays what a pending reservation owes.
#[derive(InputObject)]
pub struct StartPaymentInput {
    pub reservation_id: ID,
    pub gateway: PaymentGateway,
    /// The provider's token from the front-end: a Stripe PaymentMethod id
    /// (`pm_…`), `card` or `paypal` for PayPal, `onsite`. Never a card
    /// number.
    pub token: String,
    /// A key of the client's (a UUID works): the same key and request
    /// again answer the same payment and never pay twice.
    pub idempotency_key: String,
    /// Deprecated: send it as `Authorization: Bearer kmt_…`.
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
    /// Where the provider sends the guest back after a challenge or
    /// approval.
    pub return_url: Option<String>,
}

/// Asks the provider again after the guest's challenge.
#[derive(InputObject)]
pub struct CompletePaymentInput {
    pub payment_id: ID,
    /// Deprecated: send it as `Authorization: Bearer kmt_…`.
    #[graphql(deprecation = "Send it as Authorization: Bearer kmt_…")]
    pub manage_token: Option<String>,
}

/// Gives back part or all of a payment.
#[derive(InputObject)]
pub struct RefundPaymentInput {
    pub payment_id: ID,
    /// In the payment's currency's minor unit (cents), at most what is
    /// left to refund.
    pub amount: i64,
    /// The same key and amount again are the same refund, made once.
    pub idempotency_key: String,
}

/// Charges the no-show fee to the card saved as guarantee.
#[derive(InputObject)]
pub struct ChargeNoShowFeeInput {
    pub reservation_id: ID,
    /// The same key again answers the same charge, made once.
    pub idempotency_key: String,
}

/// Closes an on-site payment at the desk.
#[derive(InputObject)]
pub struct CloseOnsitePaymentInput {
    pub payment_id: ID,
    /// `true` when the guest paid at the venue (a pending booking is then
    /// confirmed), `false` to cancel the payment.
    pub paid: bool,
}

#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// Pays what the venue asks for a pending reservation, with a provider
    /// token from the front-end (Stripe PaymentMethod id, `onsite`); the
    /// guest sends the reservation's manage token as
    /// `Authorization: Bearer kmt_…`. Answers the provider's word: done, a
    /// challenge to run, processing, or failed (a declined card is such an
    /// answer, not an error). Retrying with the same key never pays twice.
    async fn start_payment(
        &self,
        ctx: &Context<'_>,
        input: StartPaymentInput,
    ) -> Result<StartPaymentPayload> {
        let mut checks = Checks::default();
        let key = key(&mut checks, &input.idempotency_key);
        let token = match guest_token(ctx, input.manage_token.as_deref())? {
            Ok(token) => token,
            Err(errors) => {
                errors.into_iter().for_each(|error| checks.push(error));
                None
            }
        };
        let errors = checks.finish()?;
        let Some(key) = key.filter(|_| errors.is_empty()) else {
            return Ok(StartPaymentPayload::answer(None, errors));
        };
        let (done, errors) = outcome(start(ctx, input, token, key).await)?;
        Ok(StartPaymentPayload::answer(
            done,
            at(errors, "reservationId"),
        ))
    }

    /// After the guest's challenge: asks the provider how the payment
    /// stands. The front-end saying "done" proves nothing by itself.
    async fn complete_payment(
        &self,
        ctx: &Context<'_>,
        input: CompletePaymentInput,
    ) -> Result<CompletePaymentPayload> {
        let token = match guest_token(ctx, input.manage_token.as_deref())? {
            Ok(token) => token,
            Err(errors) => return Ok(CompletePaymentPayload::answer(None, errors)),
        };
        let (done, errors) = outcome(complete(ctx, &input.payment_id, token).await)?;
        Ok(CompletePaymentPayload::answer(
            done,
            at(errors, "paymentId"),
        ))
    }

    /// Refunds part or all of a payment (managers, in the payment's
    /// venue). More than what is left is refused (`INVALID` on `amount`)
    /// before the provider is asked.
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        input: RefundPaymentInput,
    ) -> Result<RefundPaymentPayload> {
        let (payment, user_errors) = refund(ctx, input).await?;
        Ok(RefundPaymentPayload {
            payment,
            user_errors: at(user_errors, "paymentId"),
        })
    }
}

/// Refunds once the caller may and the form's checks held; every field at
/// fault is told at once.
async fn refund(
    ctx: &Context<'_>,
    input: RefundPaymentInput,
) -> Result<(Option<PaymentObject>, Vec<UserError>)> {
    let object = coordinates::MUTATION_REFUND_PAYMENT;
    let (loaded, errors) = outcome(payment_for(ctx, &input.payment_id, object).await)?;
    let Some((payment, venue)) = loaded else {
        return Ok((None, errors));
    };
    let mut checks = Checks::default();
    let key = key(&mut checks, &input.idempotency_key);
    if input.amount <= 0 {
        checks.push(UserError::at_input(
            "amount",
            UserErrorCode::Invalid,
            "amount: must be more than 0",
        ));
    }
    let errors = checks.finish()?;
    let Some(key) = key.filter(|_| errors.is_empty()) else {
        return Ok((None, errors));
    };
    let refunded = app::payments::refund_payment(
        store(ctx),
        ctx.data_opt::<plugins::Gateways>(),
        payment,
        input.amount,
        key,
        now(ctx),
    )
    .await
    .or_gql();
    let (refunded, errors) = outcome(refunded)?;
    let viewer = Viewer::of(ctx, Access::Public, venue);
    Ok((
        refunded.map(|payment| PaymentObject::new(payment, viewer)),
        errors,
    ))
}

/// Starts a payment once the input's form checks held.
async fn start(
    ctx: &Context<'_>,
    input: StartPaymentInput,
    token: Option<String>,
    key: IdempotencyKey,
) -> Result<StepAnswer> {
    let (id, access, venue_id) = authorize_change_in(
        ctx,
        &input.reservation_id,
        token,
        coordinates::MUTATION_START_PAYMENT,
    )
    .await?;
    let request = app::payments::PaymentRequest {
        reservation: id,
        gateway: input.gateway.as_str().to_owned(),
        token: input.token,
        key,
        return_url: input.return_url,
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
    Ok(StepAnswer::new(stepped, Viewer::of(ctx, access, venue_id)))
}

/// Asks the provider about a payment the caller may change.
async fn complete(ctx: &Context<'_>, payment_id: &ID, token: Option<String>) -> Result<StepAnswer> {
    let payment = app::payments::payment(store(ctx), payment_id)
        .await
        .or_gql()?;
    let reservation = ID(payment.reservation_id.to_string());
    let (_, access, venue) = authorize_change_in(
        ctx,
        &reservation,
        token,
        coordinates::MUTATION_COMPLETE_PAYMENT,
    )
    .await
    .map_err(as_payment)?;
    let stepped = app::payments::complete_payment(
        store(ctx),
        ctx.data_opt::<plugins::Gateways>(),
        ctx.data_opt::<app::monitor::Monitor>(),
        payment,
        now(ctx),
    )
    .await
    .or_gql()?;
    Ok(StepAnswer::new(stepped, Viewer::of(ctx, access, venue)))
}

/// A reservation the caller cannot reach through a payment reads as the
/// payment not found: the answer tells nothing about the reservation.
fn as_payment(error: async_graphql::Error) -> async_graphql::Error {
    match super::payload::classify(error.clone()) {
        Ok(user_error) if user_error.code == UserErrorCode::NotFound => {
            super::errors::domain_error(&DomainError::not_found("payment"))
        }
        _ => error,
    }
}

/// A payment and its venue, for a staff action the caller must hold
/// `object` for there (a venue it cannot see reads as NOT_FOUND).
async fn payment_for(
    ctx: &Context<'_>,
    payment_id: &ID,
    object: Coordinate,
) -> Result<(Payment, VenueId)> {
    let (payment, venue) = app::payments::payment_in_venue(store(ctx), payment_id)
        .await
        .or_gql()?;
    guard::require_in_venue(ctx, venue, object, EXECUTE, "payment")?;
    Ok((payment, venue))
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
        input: CloseOnsitePaymentInput,
    ) -> Result<CloseOnsitePaymentPayload> {
        let (closed, user_errors) = outcome(close(ctx, &input).await)?;
        Ok(CloseOnsitePaymentPayload {
            payment: closed,
            user_errors: at(user_errors, "paymentId"),
        })
    }
}

async fn close(ctx: &Context<'_>, input: &CloseOnsitePaymentInput) -> Result<PaymentObject> {
    let object = coordinates::MUTATION_CLOSE_ONSITE_PAYMENT;
    let (payment, venue) = payment_for(ctx, &input.payment_id, object).await?;
    let closed = app::payments::close_onsite_payment(
        store(ctx),
        ctx.data_opt::<plugins::Gateways>(),
        ctx.data_opt::<app::monitor::Monitor>(),
        payment,
        input.paid,
        now(ctx),
    )
    .await
    .or_gql()?;
    Ok(PaymentObject::new(
        closed,
        Viewer::of(ctx, Access::Public, venue),
    ))
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
        input: ChargeNoShowFeeInput,
    ) -> Result<ChargeNoShowFeePayload> {
        let (done, errors) = outcome(no_show_fee(ctx, &input).await)?;
        Ok(ChargeNoShowFeePayload::answer(
            done,
            at(errors, "reservationId"),
        ))
    }
}

async fn no_show_fee(ctx: &Context<'_>, input: &ChargeNoShowFeeInput) -> Result<StepAnswer> {
    let id = ReservationId::parse(&input.reservation_id).or_gql()?;
    let store = store(ctx);
    let target = app::payments::no_show_target(store, id).await.or_gql()?;
    guard::require_in_venue(
        ctx,
        target.venue.id,
        coordinates::MUTATION_CHARGE_NO_SHOW_FEE,
        EXECUTE,
        "reservation",
    )?;
    let key = IdempotencyKey::parse(&input.idempotency_key).or_gql()?;
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
    Ok(StepAnswer::new(stepped, viewer))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_purposes_read_back_the_names_kluis_stores() {
        for gateway in [
            PaymentGateway::Stripe,
            PaymentGateway::Paypal,
            PaymentGateway::Onsite,
        ] {
            assert_eq!(PaymentGateway::from_name(gateway.as_str()), Some(gateway));
        }
        assert_eq!(PaymentGateway::from_name("bitcoin"), None);
        assert_eq!(
            PaymentPurpose::from_name("no_show_fee"),
            Some(PaymentPurpose::NoShowFee)
        );
        assert_eq!(PaymentPurpose::from_name("deposit"), None);
    }

    #[test]
    fn the_next_step_follows_the_provider_and_what_was_recorded() {
        use PaymentStatus as S;
        let challenge = PaymentStep::RequiresAction {
            next_action: NextAction::ClientSecret("secret".to_owned()),
        };
        let next = PaymentNextStep::of;
        assert_eq!(
            next(Some(&challenge), S::RequiresAction),
            PaymentNextStep::Challenge
        );
        assert_eq!(
            next(Some(&PaymentStep::Succeeded), S::Succeeded),
            PaymentNextStep::Done
        );
        // Taken and given back at once: the booking no longer waited.
        assert_eq!(
            next(Some(&PaymentStep::Succeeded), S::Refunded),
            PaymentNextStep::Failed
        );
        assert_eq!(next(None, S::PartiallyRefunded), PaymentNextStep::Done);
        assert_eq!(
            next(Some(&PaymentStep::Processing), S::Processing),
            PaymentNextStep::Processing
        );
        let declined = PaymentStep::Failed {
            reason: "insufficient_funds".to_owned(),
        };
        assert_eq!(next(Some(&declined), S::Failed), PaymentNextStep::Failed);
    }
}
