//! The breach register over GraphQL (admins): record an incident with the
//! Art. 33(3) items, note when the authority was told, and notify the
//! affected guests through the outbox.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::{DomainError, VenueId};

use super::access::{at_field, offset_after, offset_page, rows, venue_reference};
use super::context::{blocking, now, store};
use super::coordinates;
use super::coordinates::Coordinate;
use super::errors::OrGraphqlError;
use super::guard::{self, EXECUTE, READ};
use super::pages::Page;
use super::payload::{Checks, UserError, outcome};
use super::types::VenueObject;

/// A personal data breach and what was done about it.
#[derive(SimpleObject)]
#[graphql(name = "Breach", complex)]
pub struct BreachObject {
    #[graphql(owned)]
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
    /// Who recorded it (`user:<id>`, `apikey:<id>`).
    pub recorded_by: String,
    /// Guests notified so far.
    pub guests_notified: i64,
    #[graphql(skip)]
    pub(crate) venue_id: Option<String>,
}

#[ComplexObject]
impl BreachObject {
    /// The venue it concerns; null for the whole deployment.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, self.venue_id.as_deref()).await
    }
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
        venue_id: breach.venue_id,
        guests_notified: notified,
    }
}

/// One breach by id with its notice count, for payloads and a
/// `node(id:)` (the caller's reach is checked by the caller).
pub fn breach_by_id(
    store: &store::Store,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<BreachObject>, store::StoreError> {
    let Some(breach) = store.breach(id)? else {
        return Ok(None);
    };
    let notified = store.breach_notice_count(&breach.id)?;
    Ok(Some(object(breach, notified, now)))
}

#[derive(InputObject)]
pub struct RecordBreachInput {
    pub discovered_at: DateTime<Utc>,
    /// 1 to 4000 characters.
    pub nature: String,
    /// 1 to 1000 characters.
    pub data_categories: String,
    pub approx_people: i32,
    pub approx_records: i32,
    /// 1 to 4000 characters.
    pub likely_consequences: String,
    /// 1 to 4000 characters.
    pub measures_taken: String,
    /// 1 to 500 characters.
    pub contact: String,
    /// The venue it concerns; none for the whole deployment (admins of
    /// every venue only).
    pub venue_id: Option<ID>,
}

#[derive(SimpleObject, Default)]
pub struct RecordBreachPayload {
    pub breach: Option<BreachObject>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct ReportBreachToAuthorityInput {
    pub id: ID,
    /// When the authority was told; now when left out.
    pub reported_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Default)]
pub struct ReportBreachToAuthorityPayload {
    pub breach: Option<BreachObject>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
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

#[derive(InputObject)]
pub struct NotifyBreachInput {
    pub id: ID,
    pub affected: AffectedGuestsInput,
    /// 1 to 200 characters.
    pub subject: String,
    /// 1 to 20,000 characters; `{name}` becomes each guest's name.
    pub message: String,
}

#[derive(SimpleObject, Default)]
pub struct NotifyBreachPayload {
    pub breach: Option<BreachObject>,
    /// Guests notified now (those told before are not told again).
    pub notified: i32,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

/// Reservations one notice may name; more are refused rather than loaded.
const MAX_LISTED: usize = 1_000;

/// Requires `object` over an existing breach: one of another venue, or of
/// no venue for an admin bound to venues, is NOT_FOUND, as an unknown one.
async fn require_breach(ctx: &Context<'_>, id: &ID, object: Coordinate) -> Result<()> {
    let not_found = || {
        at_field(
            super::errors::domain_error(&DomainError::not_found("breach")),
            "id",
        )
    };
    let reach = guard::reach(ctx, object, EXECUTE);
    if id.len() > 100 {
        return Err(not_found());
    }
    if reach == guard::Reach::Everywhere {
        return Ok(());
    }
    let store = store(ctx).clone();
    let wanted = id.to_string();
    let breach = blocking(move || store.breach(&wanted)).await?;
    match breach.and_then(|b| b.venue_id) {
        Some(venue) if reach.covers(&venue) => Ok(()),
        _ => Err(not_found()),
    }
}

fn text(field: &'static str, raw: &str, limit: usize) -> Result<String> {
    app::breaches::text(field, raw, limit).or_gql()
}

/// The breach to record, checked field by field.
fn new_breach(
    ctx: &Context<'_>,
    input: RecordBreachInput,
) -> Result<Result<store::NewBreach, Vec<UserError>>> {
    const OBJECT: coordinates::Coordinate = coordinates::MUTATION_RECORD_BREACH;
    let mut checks = Checks::default();
    let venue_id = match &input.venue_id {
        Some(raw) => checks
            .take(
                VenueId::parse(raw)
                    .or_gql()
                    .and_then(|venue| {
                        let venue = venue.to_string();
                        guard::require_for_domain(ctx, &venue, OBJECT, EXECUTE)?;
                        Ok(venue)
                    })
                    .map_err(|e| at_field(e, "venueId")),
            )
            .map(Some),
        None => {
            guard::require_everywhere(ctx, OBJECT, EXECUTE)?;
            Some(None)
        }
    };
    let invalid = |field: &'static str, reason: &str| {
        Err::<(), _>(DomainError::invalid(field, reason.to_owned())).or_gql()
    };
    if input.discovered_at > now(ctx) {
        checks.take(invalid("discoveredAt", "in the future"));
    }
    if input.approx_people < 0 {
        checks.take(invalid("approxPeople", "must not be negative"));
    }
    if input.approx_records < 0 {
        checks.take(invalid("approxRecords", "must not be negative"));
    }
    let nature = checks.take(text("nature", &input.nature, 4000));
    let categories = checks.take(text("dataCategories", &input.data_categories, 1000));
    let consequences = checks.take(text("likelyConsequences", &input.likely_consequences, 4000));
    let measures = checks.take(text("measuresTaken", &input.measures_taken, 4000));
    let contact = checks.take(text("contact", &input.contact, 500));
    let user_errors = checks.finish()?;
    let (
        Some(venue_id),
        Some(nature),
        Some(data_categories),
        Some(consequences),
        Some(measures),
        Some(contact),
        true,
    ) = (
        venue_id,
        nature,
        categories,
        consequences,
        measures,
        contact,
        user_errors.is_empty(),
    )
    else {
        return Ok(Err(user_errors));
    };
    Ok(Ok(store::NewBreach {
        discovered_at: input.discovered_at,
        nature,
        data_categories,
        approx_people: input.approx_people,
        approx_records: input.approx_records,
        consequences,
        measures,
        contact,
        recorded_by: guard::principal(ctx).subject(),
        venue_id,
    }))
}

#[derive(Default)]
pub struct BreachQuery;

#[Object]
impl BreachQuery {
    /// The breach register, newest discovery first (admins): an admin
    /// bound to venues sees the breaches of those venues, and `totalCount`
    /// counts those.
    #[graphql(complexity = "super::limits::page_complexity(first, child_complexity)")]
    async fn breaches(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Page<BreachObject>>> {
        guard::require(ctx, None, coordinates::QUERY_BREACHES, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_BREACHES, READ).filter();
        let (first, limit) = rows(first)?;
        let offset = offset_after(after.as_deref())?;
        let store = store(ctx).clone();
        let at = now(ctx);
        let (breaches, total) = blocking(move || {
            let total = store.breach_count(venues.as_deref())?;
            let breaches = store
                .breaches(venues.as_deref(), offset, limit)?
                .into_iter()
                .map(|breach| {
                    let notified = store.breach_notice_count(&breach.id)?;
                    Ok(object(breach, notified, at))
                })
                .collect::<Result<Vec<_>, store::StoreError>>()?;
            Ok((breaches, total))
        })
        .await?;
        Ok(Some(offset_page(breaches, offset, first, total)))
    }
}

#[derive(Default)]
pub struct BreachMutation;

#[Object]
impl BreachMutation {
    /// Records a breach with what Art. 33(3) asks the authority be told,
    /// in a venue the caller administers (of no venue: admins of every
    /// venue, FORBIDDEN for others).
    async fn record_breach(
        &self,
        ctx: &Context<'_>,
        input: RecordBreachInput,
    ) -> Result<RecordBreachPayload> {
        guard::require(ctx, None, coordinates::MUTATION_RECORD_BREACH, EXECUTE)?;
        let breach = match new_breach(ctx, input)? {
            Ok(breach) => breach,
            Err(user_errors) => {
                return Ok(RecordBreachPayload {
                    breach: None,
                    user_errors,
                });
            }
        };
        let store = store(ctx).clone();
        let at = now(ctx);
        let breach = blocking(move || Ok(object(store.record_breach(&breach, at)?, 0, at))).await?;
        Ok(RecordBreachPayload {
            breach: Some(breach),
            user_errors: Vec::new(),
        })
    }

    /// Notes when the supervisory authority was told (now when left out);
    /// the first date stands.
    async fn report_breach_to_authority(
        &self,
        ctx: &Context<'_>,
        input: ReportBreachToAuthorityInput,
    ) -> Result<ReportBreachToAuthorityPayload> {
        const OBJECT: Coordinate = coordinates::MUTATION_REPORT_BREACH_TO_AUTHORITY;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let at = now(ctx);
        let work = async {
            require_breach(ctx, &input.id, OBJECT).await?;
            let reported = input.reported_at.unwrap_or(at);
            if reported > at {
                return Err(DomainError::invalid("reportedAt", "in the future")).or_gql();
            }
            let store = store(ctx).clone();
            let id = input.id;
            blocking(move || {
                store
                    .breach_reported(&id, reported)?
                    .ok_or(DomainError::not_found("breach"))?;
                breach_by_id(&store, &id, at)
            })
            .await
        };
        let (breach, user_errors) = outcome(work.await)?;
        Ok(ReportBreachToAuthorityPayload {
            breach: breach.flatten(),
            user_errors,
        })
    }

    /// E-mails the affected guests a notice (Art. 34); `{name}` in the
    /// message is replaced by each guest's name. Guests without an e-mail
    /// address or already told of this breach are skipped; `notified`
    /// counts those notified now.
    async fn notify_breach(
        &self,
        ctx: &Context<'_>,
        input: NotifyBreachInput,
    ) -> Result<NotifyBreachPayload> {
        const OBJECT: Coordinate = coordinates::MUTATION_NOTIFY_BREACH;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let (notified, user_errors) = outcome(notify(ctx, &input).await)?;
        let Some(notified) = notified else {
            return Ok(NotifyBreachPayload {
                user_errors,
                ..NotifyBreachPayload::default()
            });
        };
        let store = store(ctx).clone();
        let (id, at) = (input.id.to_string(), now(ctx));
        let breach = blocking(move || breach_by_id(&store, &id, at)).await?;
        Ok(NotifyBreachPayload {
            breach,
            notified,
            user_errors: Vec::new(),
        })
    }
}

/// `notifyBreach`'s work: the breach and the affected guests checked, the
/// notices queued; how many were.
async fn notify(ctx: &Context<'_>, input: &NotifyBreachInput) -> Result<i32> {
    const OBJECT: Coordinate = coordinates::MUTATION_NOTIFY_BREACH;
    require_breach(ctx, &input.id, OBJECT).await?;
    let notice = app::breaches::Notice::parse(&input.subject, &input.message).or_gql()?;
    let affected = &input.affected;
    if affected.reservation_ids.len() > MAX_LISTED {
        return Err(DomainError::invalid(
            "affected.reservationIds",
            format!("at most {MAX_LISTED}"),
        ))
        .or_gql();
    }
    let venue = affected.venue_id.as_ref().map(|id| id.as_str());
    let window = app::breaches::window(venue, affected.from, affected.until).or_gql()?;
    if let Some((venue, _, _)) = window {
        guard::require_in_venue(ctx, venue, OBJECT, EXECUTE, "venue")
            .map_err(|e| at_field(e, "affected.venueId"))?;
    }
    let listed = app::breaches::listed(window.as_ref(), &affected.reservation_ids).or_gql()?;
    let store = store(ctx);
    let reservations = app::breaches::affected_reservations(store, window, listed)
        .await
        .or_gql()
        .map_err(|e| at_field(e, "affected.reservationIds"))?;
    for reservation in &reservations {
        guard::require_in_venue(ctx, reservation.venue_id, OBJECT, EXECUTE, "reservation")
            .map_err(|e| at_field(e, "affected.reservationIds"))?;
    }
    let who = guard::principal(ctx).subject();
    app::breaches::notify(
        store,
        input.id.to_string(),
        reservations,
        notice,
        who,
        now(ctx),
    )
    .await
    .or_gql()
}
