//! The `Payment` type's fields. They live above `payments` (the payment
//! itself and its mutations) and `types` (the reservation): a payment leads
//! to its reservation, and a reservation to its payments.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use domain::ports::ReservationRepository as _;

use super::coordinates;
use super::errors::{Code, api_error};
use super::guard::{self, Access, READ};
use super::payments::{
    MoneyValue, PaymentGateway, PaymentObject, PaymentPurpose, PaymentStatusValue,
};
use super::query::load_reservation;
use super::types::ReservationObject;

/// A stored name kluis does not know is a fault of kluis, not the caller's.
fn unknown(what: &str) -> async_graphql::Error {
    super::errors::internal_error(&store::StoreError::Corrupt(format!(
        "a payment has an unknown {what}"
    )))
}

/// A payment as kluis keeps it: no card number, CVC or expiry exists here.
#[Object(name = "Payment")]
impl PaymentObject {
    pub async fn id(&self) -> ID {
        ID(self.payment.id.clone())
    }

    /// What the payment is for.
    async fn kind(&self) -> Result<PaymentPurpose> {
        PaymentPurpose::from_name(&self.payment.kind).ok_or_else(|| unknown("kind"))
    }

    async fn gateway(&self) -> Result<PaymentGateway> {
        PaymentGateway::from_name(&self.payment.gateway).ok_or_else(|| unknown("gateway"))
    }

    async fn amount(&self) -> MoneyValue {
        self.payment.amount.into()
    }

    /// How much of `amount` was given back.
    async fn refunded(&self) -> MoneyValue {
        self.payment.refunded.into()
    }

    async fn status(&self) -> PaymentStatusValue {
        self.payment.status.into()
    }

    /// The provider's reason for a decline or failure (such as
    /// `insufficient_funds`), as it gave it.
    async fn failure_reason(&self) -> Option<&str> {
        self.payment.failure_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.payment.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.payment.updated_at
    }

    /// Payment data: the card's brand (`visa`, ...), for those the policy
    /// lets read `Payment.cardBrand`. Null with FORBIDDEN otherwise.
    async fn card_brand(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.check(ctx, coordinates::PAYMENT_CARD_BRAND)?;
        Ok(self.payment.card_brand.as_deref())
    }

    /// Payment data: the card's last four digits, for those the policy
    /// lets read `Payment.cardLast4`. Null with FORBIDDEN otherwise.
    async fn card_last4(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.check(ctx, coordinates::PAYMENT_CARD_LAST4)?;
        Ok(self.payment.card_last4.as_deref())
    }

    /// The reservation paid for, as the caller may see it: the guest who
    /// holds its manage token sees it as their own; anyone else needs what
    /// `reservation(id:)` needs in its venue. Null with FORBIDDEN
    /// otherwise; the rest of the payment still answers.
    async fn reservation(&self, ctx: &Context<'_>) -> Result<Option<ReservationObject>> {
        let object = coordinates::QUERY_RESERVATION;
        let access = match self.viewer.reach() {
            Some(("guest", _)) => Access::Guest,
            Some((subject, venue))
                if guard::allowed_as(ctx, subject, Some(venue), object, READ) =>
            {
                Access::Public
            }
            Some(_) => return Err(guard::forbidden(ctx, object)),
            None => return Err(api_error(Code::Forbidden, format!("not allowed: {object}"))),
        };
        let id = self.payment.reservation_id;
        load_reservation(ctx, access, move |store| store.reservation(id))
            .await
            .map(Some)
    }
}
