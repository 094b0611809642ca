//! The waitlist: guests join it and claim offers with their tokens; staff
//! see their venue's line, the personal fields guarded per coordinate.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, FixedOffset, Utc};
use domain::{Guest, GuestId, VenueId, WaitlistToken};
use store::WaitlistEntry;

use super::context::{now, store};
use super::coordinates::{self, Coordinate};
use super::errors::{OrGraphqlError, app_error};
use super::guard;
use super::payload::{Checks, UserError, classify, outcome};
use super::scalars::{Date, local};
use super::types::{Access, ReservationObject};

#[derive(Default)]
pub struct WaitlistQuery;

#[derive(Default)]
pub struct WaitlistMutation;

/// Who waits. Personal data: stored encrypted, like a booking's guest.
#[derive(InputObject)]
pub struct WaitlistGuestInput {
    /// At most 200 characters.
    pub name: String,
    /// Required: the offer of a freed table comes by e-mail.
    pub email: Option<String>,
    /// Only where the venue collects phone numbers.
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct JoinWaitlistInput {
    pub venue_id: ID,
    /// The day at the venue.
    pub date: Date,
    /// The earliest start that would do, on the venue's clock (`HH:MM`).
    pub from: String,
    /// Starts before this time do (`HH:MM`, later than `from`).
    pub until: String,
    pub party_size: i32,
    /// The service waited for: required at a venue that books by service
    /// (`Venue.services`), like `createReservation`'s.
    pub service_id: Option<ID>,
    pub guest: WaitlistGuestInput,
    /// The language of the offer.
    #[graphql(default = "en")]
    pub locale: String,
}

#[derive(InputObject)]
pub struct LeaveWaitlistInput {
    /// The waitlist token (`kwt_…`) `joinWaitlist` answered.
    pub token: String,
}

#[derive(InputObject)]
pub struct ClaimWaitlistOfferInput {
    /// The offer's token (`kwo_…`) from its e-mail.
    pub token: String,
    /// The offered start, to make sure the guest claims what they read;
    /// left out, the offered start.
    pub starts_at: Option<DateTime<FixedOffset>>,
}

/// The answer to `joinWaitlist`.
#[derive(SimpleObject, Default)]
pub struct JoinWaitlistPayload {
    pub entry: Option<WaitlistEntryObject>,
    /// The guest's key to the entry (`waitlistEntry`, `leaveWaitlist`).
    /// Shown here only: kluis keeps just a hash of it.
    pub waitlist_token: Option<String>,
    pub user_errors: Vec<UserError>,
}

crate::payload!(
    /// The answer to `leaveWaitlist`: the entry as it was, now deleted
    /// with the guest's details.
    LeaveWaitlistPayload { entry: WaitlistEntryObject }
);

/// The answer to `claimWaitlistOffer`.
#[derive(SimpleObject, Default)]
pub struct ClaimWaitlistOfferPayload {
    /// The booking; null when it was not made.
    pub reservation: Option<ReservationObject>,
    /// The guest's key to the booking, as `createReservation` answers it.
    pub manage_token: Option<String>,
    pub user_errors: Vec<UserError>,
}

/// An offer of a freed table to a waiting guest.
#[derive(SimpleObject)]
pub struct WaitlistOfferObject {
    pub starts_at: DateTime<FixedOffset>,
    /// Until when it can be claimed.
    pub expires_at: DateTime<FixedOffset>,
    /// `open`, `claimed`, `expired` or `failed` (the table was taken
    /// meanwhile: the entry is back in line).
    pub status: String,
    pub resource_id: ID,
}

/// One guest in a venue's line.
pub struct WaitlistEntryObject {
    entry: WaitlistEntry,
    zone: chrono_tz::Tz,
    /// Reached with its own token: the guest sees their own details.
    by_token: bool,
    guests: Arc<HashMap<GuestId, Guest>>,
}

impl WaitlistEntryObject {
    /// A personal field: for the entry's own token holder, or for callers
    /// the policy lets read `object` in the venue (audited as a read).
    fn guest(&self, ctx: &Context<'_>, object: Coordinate) -> Result<Option<&Guest>> {
        if !self.by_token {
            guard::require(ctx, Some(self.entry.venue_id), object, guard::READ)?;
            super::audit::record(
                ctx,
                &guard::principal(ctx).subject(),
                store::AuditAction::Read,
                format!("guest:{}", self.entry.guest_id),
                object.field(),
                Some(self.entry.venue_id.to_string()),
            );
        }
        Ok(self.guests.get(&self.entry.guest_id))
    }
}

#[Object(name = "WaitlistEntry")]
impl WaitlistEntryObject {
    async fn id(&self) -> ID {
        ID(self.entry.id.clone())
    }

    async fn venue_id(&self) -> ID {
        ID(self.entry.venue_id.to_string())
    }

    async fn date(&self) -> Date {
        Date(self.entry.wish.date)
    }

    /// On the venue's clock, `HH:MM`.
    async fn from(&self) -> String {
        self.entry.wish.from.to_string()
    }

    /// On the venue's clock, `HH:MM`.
    async fn until(&self) -> String {
        self.entry.wish.until.to_string()
    }

    async fn party_size(&self) -> u32 {
        self.entry.wish.party_size.get()
    }

    /// `waiting`, `offered`, `booked` or `missed` (an offer lapsed).
    async fn status(&self) -> String {
        self.entry.status.as_str().to_owned()
    }

    async fn joined_at(&self) -> DateTime<FixedOffset> {
        local(self.entry.joined_at, self.zone)
    }

    /// The newest offer made to this entry.
    async fn offer(&self) -> Option<WaitlistOfferObject> {
        self.entry.offer.as_ref().map(|o| WaitlistOfferObject {
            starts_at: local(o.starts_at, self.zone),
            expires_at: local(o.expires_at, self.zone),
            status: o.status.clone(),
            resource_id: ID(o.resource_id.to_string()),
        })
    }

    /// Personal: the guest's name.
    async fn guest_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .guest(ctx, coordinates::WAITLIST_ENTRY_GUEST_NAME)?
            .map(|g| g.name.expose().to_owned()))
    }

    /// Personal: the guest's e-mail address.
    async fn guest_email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .guest(ctx, coordinates::WAITLIST_ENTRY_GUEST_EMAIL)?
            .and_then(|g| g.email.as_ref().map(|e| e.expose().to_owned())))
    }

    /// Personal: the guest's phone number.
    async fn guest_phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self
            .guest(ctx, coordinates::WAITLIST_ENTRY_GUEST_PHONE)?
            .and_then(|g| g.phone.as_ref().map(|p| p.expose().to_owned())))
    }
}

/// The venue's time zone, for answers in its clock.
async fn zone_of(ctx: &Context<'_>, venue: VenueId) -> Result<chrono_tz::Tz> {
    let store = store(ctx).clone();
    let view = super::context::blocking(move || {
        store
            .venue_view(venue)?
            .ok_or_else(|| domain::DomainError::not_found("venue").into())
    })
    .await?;
    Ok(view.venue.time_zone)
}

/// A single entry reached with its own token.
async fn own_entry(ctx: &Context<'_>, entry: WaitlistEntry) -> Result<WaitlistEntryObject> {
    let zone = zone_of(ctx, entry.venue_id).await?;
    let reading = store(ctx).clone();
    let one = entry.clone();
    let guests = super::context::blocking(move || reading.waitlist_guests(&[one])).await?;
    Ok(WaitlistEntryObject {
        entry,
        zone,
        by_token: true,
        guests: Arc::new(guests),
    })
}

fn token(prefix: &str, raw: &str) -> Result<WaitlistToken> {
    WaitlistToken::parse(prefix, raw)
        .map_err(app::Error::Domain)
        .or_gql()
}

#[Object]
impl WaitlistQuery {
    /// The entry a waitlist token (`kwt_…`) opens, with its newest offer;
    /// null for any other token.
    async fn waitlist_entry(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> Result<Option<WaitlistEntryObject>> {
        let Ok(token) = WaitlistToken::parse(WaitlistToken::ENTRY, &token) else {
            return Ok(None);
        };
        match app::waitlist::entry(store(ctx), token).await {
            Ok(entry) => Ok(Some(own_entry(ctx, entry).await?)),
            Err(app::Error::Domain(domain::DomainError::NotFound { .. })) => Ok(None),
            Err(other) => Err(app_error(other)),
        }
    }

    /// A venue's waitlist in line order (venue staff): on one date, or
    /// every date kept. The guests' details are guarded field by field.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn waitlist(
        &self,
        ctx: &Context<'_>,
        venue_id: ID,
        date: Option<Date>,
    ) -> Result<Vec<WaitlistEntryObject>> {
        let venue = VenueId::parse(&venue_id)
            .map_err(|_| domain::DomainError::not_found("venue"))
            .map_err(app::Error::Domain)
            .or_gql()?;
        guard::require_in_venue(
            ctx,
            venue,
            coordinates::QUERY_WAITLIST,
            guard::READ,
            "venue",
        )?;
        let zone = zone_of(ctx, venue).await?;
        let (entries, guests) = app::waitlist::of_venue(store(ctx), venue, date.map(|d| d.0))
            .await
            .or_gql()?;
        let guests = Arc::new(guests);
        Ok(entries
            .into_iter()
            .map(|entry| WaitlistEntryObject {
                entry,
                zone,
                by_token: false,
                guests: guests.clone(),
            })
            .collect())
    }
}

#[Object]
impl WaitlistMutation {
    /// Puts a guest on a venue's waitlist for a table on `date`, starting
    /// between `from` and `until`, and answers, once, the waitlist token.
    /// When a matching table is free (now, or after a cancellation), the
    /// first guest in line gets an e-mail offer to claim it within the
    /// venue's `waitlistOfferMinutes`.
    async fn join_waitlist(
        &self,
        ctx: &Context<'_>,
        input: JoinWaitlistInput,
    ) -> Result<JoinWaitlistPayload> {
        let mut checks = Checks::default();
        let Some(venue_id) = checks.take(VenueId::parse(&input.venue_id).or_gql()) else {
            return Ok(JoinWaitlistPayload {
                user_errors: checks.finish()?,
                ..JoinWaitlistPayload::default()
            });
        };
        let service_id = input
            .service_id
            .as_ref()
            .and_then(|id| checks.take(domain::ServiceId::parse(id).or_gql()));
        guard::require_in_venue(
            ctx,
            venue_id,
            coordinates::MUTATION_JOIN_WAITLIST,
            guard::EXECUTE,
            "venue",
        )?;
        let form = app::waitlist::JoinForm {
            venue_id,
            date: input.date.0,
            from: input.from,
            until: input.until,
            party_size: i64::from(input.party_size),
            service_id,
            name: input.guest.name,
            email: input.guest.email,
            phone: input.guest.phone,
            locale: input.locale,
        };
        let mut user_errors = checks.finish()?;
        match app::waitlist::join(store(ctx), form, now(ctx)).await {
            Err(error) => user_errors.push(classify(app_error(error))?),
            Ok(Err(refusals)) => {
                for refusal in refusals {
                    user_errors.push(classify(app_error(refusal))?);
                }
            }
            Ok(Ok((entry, token))) => {
                return Ok(JoinWaitlistPayload {
                    entry: Some(own_entry(ctx, entry).await?),
                    waitlist_token: Some(token.expose().to_owned()),
                    user_errors,
                });
            }
        }
        Ok(JoinWaitlistPayload {
            user_errors,
            ..JoinWaitlistPayload::default()
        })
    }

    /// Takes the guest off the waitlist with their waitlist token: the
    /// entry and the details given with it are deleted.
    async fn leave_waitlist(
        &self,
        ctx: &Context<'_>,
        input: LeaveWaitlistInput,
    ) -> Result<LeaveWaitlistPayload> {
        guard::require(
            ctx,
            None,
            coordinates::MUTATION_LEAVE_WAITLIST,
            guard::EXECUTE,
        )?;
        let (entry, user_errors) = outcome(
            async {
                let token = token(WaitlistToken::ENTRY, &input.token)?;
                let entry = app::waitlist::leave(store(ctx), token, now(ctx))
                    .await
                    .or_gql()?;
                let zone = zone_of(ctx, entry.venue_id).await?;
                Ok(WaitlistEntryObject {
                    entry,
                    zone,
                    by_token: true,
                    guests: Arc::new(HashMap::new()),
                })
            }
            .await,
        )?;
        Ok(LeaveWaitlistPayload { entry, user_errors })
    }

    /// Claims an offered table with the offer's token: books it as an
    /// ordinary reservation (answering the manage token once) if it is
    /// still free, SLOT_TAKEN otherwise (the entry is then back in line).
    /// An offer is claimed once: a replay, or a claim after it expired, is
    /// a CONFLICT.
    async fn claim_waitlist_offer(
        &self,
        ctx: &Context<'_>,
        input: ClaimWaitlistOfferInput,
    ) -> Result<ClaimWaitlistOfferPayload> {
        guard::require(
            ctx,
            None,
            coordinates::MUTATION_CLAIM_WAITLIST_OFFER,
            guard::EXECUTE,
        )?;
        let claimed = outcome(
            async {
                let token = token(WaitlistToken::OFFER, &input.token)?;
                let starts_at = input.starts_at.map(|t| t.with_timezone(&Utc));
                app::waitlist::claim(store(ctx), token, starts_at, now(ctx))
                    .await
                    .or_gql()
            }
            .await,
        )?;
        Ok(match claimed {
            (Some(claimed), user_errors) => ClaimWaitlistOfferPayload {
                manage_token: Some(claimed.manage_token.expose().to_owned()),
                reservation: Some(ReservationObject::new(
                    claimed.reservation,
                    claimed.venue,
                    Access::Guest,
                )),
                user_errors,
            },
            (None, user_errors) => ClaimWaitlistOfferPayload {
                user_errors,
                ..ClaimWaitlistOfferPayload::default()
            },
        })
    }
}
