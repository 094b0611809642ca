//! GraphQL objects: the API's view of domain types. Instants are shown with
//! the venue's UTC offset at that instant, so a front-end can print them
//! as they are without knowing time-zone rules.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, FixedOffset};
use domain::ports::GuestRecord;
use domain::{Reservation, ReservationId, ReservationStatus, Venue};

use super::context::{blocking, store};
use super::coordinates;
use super::coordinates::Coordinate;

pub use super::scalars::local;

pub use super::venue_types::{ResourceKindValue, ResourceObject, VenueObject};

/// A start time that can be booked for the requested party.
pub struct Slot {
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    /// Resolved into objects only when the query asks for them: a day has
    /// dozens of slots with dozens of resources each.
    pub free_resources: Vec<domain::ResourceId>,
    pub free_combinations: Vec<Vec<domain::ResourceId>>,
    pub venue: Arc<store::VenueView>,
}

impl Slot {
    /// A free start time of the venue in `view`, in the venue's offset.
    pub fn of(slot: domain::Slot, view: &Arc<store::VenueView>) -> Self {
        let time_zone = view.venue.time_zone;
        Self {
            starts_at: local(slot.starts_at, time_zone),
            ends_at: local(slot.ends_at, time_zone),
            free_resources: slot.free_resources,
            free_combinations: slot.free_combinations,
            venue: Arc::clone(view),
        }
    }
}

/// A start time that can be booked for the requested party.
#[Object]
impl Slot {
    async fn starts_at(&self) -> DateTime<FixedOffset> {
        self.starts_at
    }

    async fn ends_at(&self) -> DateTime<FixedOffset> {
        self.ends_at
    }

    /// Free resources that seat the party, smallest first; the first is the
    /// one a booking without `resourceId` gets.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn free_resources(&self) -> Vec<ResourceObject> {
        self.free_resources
            .iter()
            .filter_map(|id| self.venue.resources.iter().find(|r| r.id == *id))
            .cloned()
            .map(ResourceObject)
            .collect()
    }

    /// Free combinations of tables that seat the party together, smallest
    /// first, each with its primary table first. A booking without
    /// `resourceId` gets the first of them when `freeResources` is empty.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn free_combinations(&self) -> Vec<Vec<ResourceObject>> {
        self.free_combinations
            .iter()
            .map(|ids| super::venue_types::members(&self.venue.resources, ids))
            .collect()
    }
}

pub use super::enums::OptInPurpose;
pub use super::guard::Access;

/// The guests of reservations answered together (a day sheet, a lookup):
/// decrypted in one load, the first time any of them is asked for a
/// personal field the caller may read, and not at all otherwise.
pub struct GuestBatch {
    reservations: Vec<Reservation>,
    records: tokio::sync::OnceCell<HashMap<ReservationId, GuestRecord>>,
}

pub struct ReservationObject {
    pub reservation: Reservation,
    pub venue: Venue,
    pub access: Access,
    guests: Arc<GuestBatch>,
}

impl ReservationObject {
    pub fn new(reservation: Reservation, venue: Venue, access: Access) -> Self {
        let guests = Arc::new(GuestBatch {
            reservations: vec![reservation.clone()],
            records: tokio::sync::OnceCell::new(),
        });
        Self {
            reservation,
            venue,
            access,
            guests,
        }
    }

    /// Objects for reservations of one venue answered in one list; their
    /// guests load together.
    pub fn list(reservations: Vec<Reservation>, venue: &Venue, access: Access) -> Vec<Self> {
        let guests = Arc::new(GuestBatch {
            reservations: reservations.clone(),
            records: tokio::sync::OnceCell::new(),
        });
        reservations
            .into_iter()
            .map(|reservation| Self {
                reservation,
                venue: venue.clone(),
                access,
                guests: Arc::clone(&guests),
            })
            .collect()
    }

    /// The Casbin subject for this reservation's fields: the guest when it
    /// was reached with its own manage token, the caller otherwise. A guest
    /// token for another reservation reaches nothing here.
    fn subject(&self, ctx: &Context<'_>) -> Option<String> {
        match (self.access, super::guard::principal(ctx)) {
            (Access::Guest, _) => Some("guest".to_owned()),
            (Access::Public, app::auth::Principal::Guest(own)) => {
                (*own == self.reservation.id).then(|| "guest".to_owned())
            }
            (Access::Public, principal) => Some(principal.subject()),
        }
    }

    /// Whether the policy lets this caller read `object` of this
    /// reservation; FORBIDDEN (or UNAUTHENTICATED) on that field otherwise.
    fn check(&self, ctx: &Context<'_>, object: Coordinate) -> Result<()> {
        let subject = self.subject(ctx);
        let permitted = subject.as_ref().is_some_and(|subject| {
            super::guard::allowed_as(
                ctx,
                subject,
                Some(self.venue.id),
                object,
                super::guard::READ,
            )
        });
        if !permitted {
            return Err(super::guard::forbidden(ctx, object));
        }
        // Every personal field read is on the record: who, which
        // reservation, which field; never the value.
        let field = object.field();
        let record = format!("reservation:{}", self.reservation.id);
        super::audit::note_start(
            ctx,
            &record,
            app::monitor::RecordStart {
                at: self.reservation.starts_at,
                zone: self.venue.time_zone,
            },
        );
        super::audit::record(
            ctx,
            subject.as_deref().unwrap_or("anonymous"),
            store::AuditAction::Read,
            record,
            field,
            Some(self.venue.id.to_string()),
        );
        Ok(())
    }

    /// The guest record, for callers the policy lets read `object`; a
    /// denied field is FORBIDDEN on its own and the rest still answers.
    async fn personal(
        &self,
        ctx: &Context<'_>,
        object: Coordinate,
    ) -> Result<Option<&GuestRecord>> {
        self.check(ctx, object)?;
        let records = self
            .guests
            .records
            .get_or_try_init(|| async {
                let store = store(ctx).clone();
                let reservations = self.guests.reservations.clone();
                blocking(move || store.guest_records(&reservations)).await
            })
            .await?;
        Ok(records.get(&self.reservation.id))
    }

    /// The guest's profile (name, contact, consents) for `object`. A
    /// manage token opens only what was entered with its own booking: a
    /// record that several bookings were once linked to answers FORBIDDEN
    /// to the token, and the access-code flow opens it instead.
    async fn profile(&self, ctx: &Context<'_>, object: Coordinate) -> Result<Option<&GuestRecord>> {
        let record = self.personal(ctx, object).await?;
        if record.is_some_and(|r| r.shared) && self.opened_by_token(ctx) {
            return Err(super::errors::api_error(
                super::errors::Code::Forbidden,
                format!(
                    "{object}: this booking's guest record is shared with other bookings; \
                     prove your e-mail address with an access code to see it"
                ),
            ));
        }
        Ok(record)
    }

    /// Whether this reservation was reached with its own manage token.
    fn opened_by_token(&self, ctx: &Context<'_>) -> bool {
        match (self.access, super::guard::principal(ctx)) {
            (Access::Guest, _) => true,
            (Access::Public, app::auth::Principal::Guest(own)) => *own == self.reservation.id,
            (Access::Public, _) => false,
        }
    }
}

#[Object(name = "Reservation")]
impl ReservationObject {
    /// Random and unguessable: knowing one id tells nothing about others.
    pub async fn id(&self) -> ID {
        ID(self.reservation.id.to_string())
    }

    async fn venue(&self) -> VenueObject {
        VenueObject(self.venue.clone())
    }

    async fn resource(&self, ctx: &Context<'_>) -> Result<ResourceObject> {
        let store = store(ctx).clone();
        let venue = self.venue.id;
        let wanted = self.reservation.resource_id;
        let view = blocking(move || {
            store
                .venue_view(venue)?
                .ok_or_else(|| store::StoreError::Corrupt(format!("venue {venue} vanished")))
        })
        .await?;
        view.resources
            .iter()
            .find(|r| r.id == wanted)
            .cloned()
            .map(ResourceObject)
            .ok_or_else(|| {
                super::errors::internal_error(&store::StoreError::Corrupt(format!(
                    "reservation {} points at a missing resource",
                    self.reservation.id
                )))
            })
    }

    /// Every resource the reservation holds: its `resource` first, then
    /// the other tables of a combination in slug order.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn resources(&self, ctx: &Context<'_>) -> Result<Vec<ResourceObject>> {
        let store = store(ctx).clone();
        let venue = self.venue.id;
        let reservation = self.reservation.id;
        let (view, held) = blocking(move || {
            let view = store
                .venue_view(venue)?
                .ok_or_else(|| store::StoreError::Corrupt(format!("venue {venue} vanished")))?;
            Ok((view, store.held_resources(reservation)?))
        })
        .await?;
        let mut held = super::venue_types::members(&view.resources, &held);
        if let Some((_, others)) = held.split_first_mut() {
            others.sort_by(|a, b| a.0.slug.cmp(&b.0.slug));
        }
        Ok(held)
    }

    async fn party_size(&self) -> u32 {
        self.reservation.party_size.get()
    }

    async fn starts_at(&self) -> DateTime<FixedOffset> {
        local(self.reservation.starts_at, self.venue.time_zone)
    }

    async fn ends_at(&self) -> DateTime<FixedOffset> {
        local(self.reservation.ends_at, self.venue.time_zone)
    }

    async fn status(&self) -> Status {
        self.reservation.status.into()
    }

    async fn created_at(&self) -> DateTime<FixedOffset> {
        local(self.reservation.created_at, self.venue.time_zone)
    }

    async fn updated_at(&self) -> DateTime<FixedOffset> {
        local(self.reservation.updated_at, self.venue.time_zone)
    }

    /// Personal: the guest's name.
    async fn guest_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .profile(ctx, coordinates::RESERVATION_GUEST_NAME)
            .await?
            .map(|record| record.guest.name.expose().to_owned()))
    }

    /// Personal: the guest's e-mail address, normalized.
    async fn guest_email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .profile(ctx, coordinates::RESERVATION_GUEST_EMAIL)
            .await?
            .and_then(|record| record.guest.email.as_ref().map(|e| e.expose().to_owned())))
    }

    /// Personal: the guest's phone number in E.164 form.
    async fn guest_phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .profile(ctx, coordinates::RESERVATION_GUEST_PHONE)
            .await?
            .and_then(|record| record.guest.phone.as_ref().map(|p| p.expose().to_owned())))
    }

    /// Until when an unpaid (pending) reservation holds its slot.
    async fn hold_until(&self) -> Option<DateTime<FixedOffset>> {
        self.reservation
            .hold_until
            .map(|at| local(at, self.venue.time_zone))
    }

    /// Personal: the guest's consent ledger at this venue (append-only).
    /// Null, with a FORBIDDEN error for this field alone, where the policy
    /// does not grant it: the rest of the answer stands.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn consents(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::consent_types::ConsentEntry>>> {
        self.profile(ctx, coordinates::RESERVATION_CONSENTS).await?;
        super::consent_types::consents_of(ctx, &self.reservation)
            .await
            .map(Some)
    }

    /// Personal: where the guest stands on each opt-in purpose (newsletter,
    /// marketing), folded from the ledger in `consents`: what a "my data"
    /// page shows as switches. Null, with a FORBIDDEN error for this field
    /// alone, where the policy does not grant it.
    async fn consent_state(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::consent_types::ConsentState>>> {
        self.profile(ctx, coordinates::RESERVATION_CONSENT_STATE)
            .await?;
        super::consent_types::consent_state_of(ctx, &self.reservation)
            .await
            .map(Some)
    }

    /// Payment data: amounts, status, provider, card brand and last four.
    /// Null, with a FORBIDDEN error for this field alone, where the policy
    /// does not grant it (staff never see payments): the rest of the
    /// answer stands.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn payments(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::payments::PaymentObject>>> {
        self.check(ctx, coordinates::RESERVATION_PAYMENTS)?;
        let viewer = super::payments::Viewer::new(self.subject(ctx), self.venue.id);
        super::payments::payments_of(ctx, self.reservation.id, viewer)
            .await
            .map(Some)
    }

    /// Personal: the guest's remarks for this reservation.
    async fn notes(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .personal(ctx, coordinates::RESERVATION_NOTES)
            .await?
            .and_then(|record| record.notes.as_ref().map(|n| n.expose().to_owned())))
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReservationStatus")]
pub enum Status {
    /// Holds its slot while something (such as a payment) is outstanding.
    Pending,
    Confirmed,
    CheckedIn,
    Completed,
    NoShow,
    Cancelled,
}

impl From<Status> for ReservationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Confirmed => Self::Confirmed,
            Status::CheckedIn => Self::CheckedIn,
            Status::Completed => Self::Completed,
            Status::NoShow => Self::NoShow,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

impl From<ReservationStatus> for Status {
    fn from(status: ReservationStatus) -> Self {
        match status {
            ReservationStatus::Pending => Self::Pending,
            ReservationStatus::Confirmed => Self::Confirmed,
            ReservationStatus::CheckedIn => Self::CheckedIn,
            ReservationStatus::Completed => Self::Completed,
            ReservationStatus::NoShow => Self::NoShow,
            ReservationStatus::Cancelled => Self::Cancelled,
        }
    }
}
