//! The breach register over GraphQL (admins): record an incident with the
//! Art. 33(3) items, note when the authority was told, and notify the
//! affected guests through the outbox.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::{DomainError, VenueId};

use super::context::{blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{self, EXECUTE, READ};

/// A personal data breach and what was done about it.
#[derive(SimpleObject)]
pub struct BreachObject {
    pub id: ID,
    pub discovered_at: DateTime<Utc>,
    /// What happened.
    pub nature: String,
    /// Which kinds of personal data, e.g. `names, e-mail addresses`.
    pub data_categories: String,
    pub approx_people: i32,
    pub approx_records: i32,
    pub likely_consequences: String,
    pub measures_taken: String,
    /// The privacy officer or other contact point.
    pub contact: String,
    pub reported_to_authority_at: Option<DateTime<Utc>>,
    /// 72 hours after discovery (Art. 33(1)).
    pub authority_deadline: DateTime<Utc>,
    /// Null while the authority has not been told and there is still time.
    pub deadline_met: Option<bool>,
    pub recorded_by: String,
    /// The venue it concerns; none for the whole deployment.
    pub venue_id: Option<ID>,
    /// Guests notified so far.
    pub guests_notified: i64,
}

fn object(breach: store::Breach, notified: i64, now: DateTime<Utc>) -> BreachObject {
    BreachObject {
        id: ID(breach.id.clone()),
        discovered_at: breach.discovered_at,
        authority_deadline: breach.authority_deadline(),
        deadline_met: breach.deadline_met(now),
        nature: breach.nature,
        data_categories: breach.data_categories,
        approx_people: breach.approx_people,
        approx_records: breach.approx_records,
        likely_consequences: breach.consequences,
        measures_taken: breach.measures,
        contact: breach.contact,
        reported_to_authority_at: breach.reported_at,
        recorded_by: breach.recorded_by,
        venue_id: breach.venue_id.map(ID),
        guests_notified: notified,
    }
}

#[derive(InputObject)]
pub struct BreachInput {
    pub discovered_at: DateTime<Utc>,
    pub nature: String,
    pub data_categories: String,
    pub approx_people: i32,
    pub approx_records: i32,
    pub likely_consequences: String,
    pub measures_taken: String,
    pub contact: String,
    /// The venue it concerns; none for the whole deployment (admins of
    /// every venue only).
    pub venue_id: Option<ID>,
}

/// Who is told: the guests with bookings at a venue in a time window,
/// and/or the guests of listed reservations.
#[derive(InputObject)]
pub struct AffectedGuestsInput {
    pub venue_id: Option<ID>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub reservation_ids: Vec<ID>,
}

/// Requires `object` over an existing breach: one of another venue, or of
/// no venue for an admin bound to venues, is NOT_FOUND, as an unknown one.
async fn require_breach(ctx: &Context<'_>, id: &ID, object: Coordinate) -> Result<()> {
    let reach = guard::reach(ctx, object, EXECUTE);
    if reach == guard::Reach::Everywhere {
        return Ok(());
    }
    let store = store(ctx).clone();
    let wanted = id.to_string();
    let breach = blocking(move || store.breach(&wanted)).await?;
    match breach.and_then(|b| b.venue_id) {
        Some(venue) if reach.covers(&venue) => Ok(()),
        _ => Err(DomainError::not_found("breach")).or_gql(),
    }
}

fn text(field: &str, raw: &str, limit: usize) -> Result<String> {
    app::breaches::text(field, raw, limit).or_gql()
}

#[derive(Default)]
pub struct BreachQuery;

#[Object]
impl BreachQuery {
    /// The breach register, newest discovery first (admins): an admin
    /// bound to venues sees the breaches of those venues.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn breaches(&self, ctx: &Context<'_>) -> Result<Vec<BreachObject>> {
        guard::require(ctx, None, coordinates::QUERY_BREACHES, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_BREACHES, READ).filter();
        let store = store(ctx).clone();
        let at = now(ctx);
        blocking(move || {
            store
                .breaches(venues.as_deref())?
                .into_iter()
                .map(|breach| {
                    let notified = store.breach_notice_count(&breach.id)?;
                    Ok(object(breach, notified, at))
                })
                .collect()
        })
        .await
    }
}

#[derive(Default)]
pub struct BreachMutation;

#[Object]
impl BreachMutation {
    /// Records a breach with what Art. 33(3) asks the authority be told,
    /// in a venue the caller administers (of no venue: admins of every
    /// venue).
    async fn record_breach(&self, ctx: &Context<'_>, input: BreachInput) -> Result<BreachObject> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_RECORD_BREACH;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let venue_id = match &input.venue_id {
            Some(raw) => {
                let venue = VenueId::parse(raw).or_gql()?.to_string();
                guard::require_for_domain(ctx, &venue, OBJECT, EXECUTE)?;
                Some(venue)
            }
            None => {
                guard::require_everywhere(ctx, OBJECT, EXECUTE)?;
                None
            }
        };
        let at = now(ctx);
        if input.discovered_at > at {
            return Err(api_error(Code::BadUserInput, "discoveredAt: in the future"));
        }
        if input.approx_people < 0 || input.approx_records < 0 {
            return Err(api_error(
                Code::BadUserInput,
                "approxPeople, approxRecords: must not be negative",
            ));
        }
        let breach = store::NewBreach {
            discovered_at: input.discovered_at,
            nature: text("nature", &input.nature, 4000)?,
            data_categories: text("dataCategories", &input.data_categories, 1000)?,
            approx_people: input.approx_people,
            approx_records: input.approx_records,
            consequences: text("likelyConsequences", &input.likely_consequences, 4000)?,
            measures: text("measuresTaken", &input.measures_taken, 4000)?,
            contact: text("contact", &input.contact, 500)?,
            recorded_by: guard::principal(ctx).subject(),
            venue_id,
        };
        let store = store(ctx).clone();
        blocking(move || Ok(object(store.record_breach(&breach, at)?, 0, at))).await
    }

    /// Notes when the supervisory authority was told (now when left out);
    /// the first date stands.
    async fn report_breach_to_authority(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reported_at: Option<DateTime<Utc>>,
    ) -> Result<BreachObject> {
        guard::require(
            ctx,
            None,
            coordinates::MUTATION_REPORT_BREACH_TO_AUTHORITY,
            EXECUTE,
        )?;
        require_breach(ctx, &id, coordinates::MUTATION_REPORT_BREACH_TO_AUTHORITY).await?;
        let at = now(ctx);
        let reported = reported_at.unwrap_or(at);
        if reported > at {
            return Err(api_error(Code::BadUserInput, "reportedAt: in the future"));
        }
        let store = store(ctx).clone();
        blocking(move || {
            let breach = store
                .breach_reported(&id, reported)?
                .ok_or(DomainError::not_found("breach"))?;
            let notified = store.breach_notice_count(&breach.id)?;
            Ok(object(breach, notified, at))
        })
        .await
    }

    /// E-mails the affected guests a notice (Art. 34); `{name}` in the
    /// message is replaced by each guest's name. Guests without an e-mail
    /// address or already told of this breach are skipped. Answers how
    /// many were notified now.
    async fn notify_breach(
        &self,
        ctx: &Context<'_>,
        id: ID,
        affected: AffectedGuestsInput,
        subject: String,
        message: String,
    ) -> Result<i32> {
        const OBJECT: Coordinate = coordinates::MUTATION_NOTIFY_BREACH;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        require_breach(ctx, &id, OBJECT).await?;
        let notice = app::breaches::Notice::parse(&subject, &message).or_gql()?;
        let venue = affected.venue_id.as_ref().map(|id| id.as_str());
        let window = app::breaches::window(venue, affected.from, affected.until).or_gql()?;
        if let Some((venue, _, _)) = window {
            guard::require(ctx, Some(venue), OBJECT, EXECUTE)?;
        }
        let listed = app::breaches::listed(window.as_ref(), &affected.reservation_ids).or_gql()?;
        let store = store(ctx);
        let reservations = app::breaches::affected_reservations(store, window, listed)
            .await
            .or_gql()?;
        for reservation in &reservations {
            guard::require_in_venue(ctx, reservation.venue_id, OBJECT, EXECUTE, "reservation")?;
        }
        let who = guard::principal(ctx).subject();
        app::breaches::notify(store, id.to_string(), reservations, notice, who, now(ctx))
            .await
            .or_gql()
    }
}
