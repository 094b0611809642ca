//! Alerts for admins: what the detection rules saw, acknowledging them,
//! and lifting the holds automatic responses put on principals.

use async_graphql::connection::Edge;
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Object, OneofObject, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use domain::DomainError;
use store::StoreError;

use super::access::{at_field, rows, venue_reference};
use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, api_error};
use super::guard::{self, EXECUTE, READ};
use super::pages::{Cursor, Page, page, position};
use super::payload::{UserError, UserErrorCode, outcome};
use super::types::VenueObject;

/// Ids longer than this are refused before any lookup.
const MAX_ID_LENGTH: usize = 100;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
}

impl AlertStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
        }
    }
}

/// Something a detection rule saw. Ids and counts only.
#[derive(SimpleObject)]
#[graphql(name = "Alert", complex)]
pub struct AlertObject {
    #[graphql(owned)]
    pub id: ID,
    /// `failed_logins_account`, `bulk_read`, ... (README, "Security
    /// monitoring").
    pub rule: String,
    /// `user:<id>`, `apikey:<id>`, `address:<pseudonym>` or `system`.
    pub principal: String,
    /// The largest count seen when the rule tripped.
    pub observed: i32,
    /// How often the rule tripped while the alert was open.
    pub triggers: i32,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub status: AlertStatus,
    /// Who acknowledged it (`user:<id>`, `apikey:<id>`).
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub(crate) venue_id: Option<String>,
}

#[ComplexObject]
impl AlertObject {
    /// The venue it concerns; null for the whole deployment.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, self.venue_id.as_deref()).await
    }
}

impl From<store::Alert> for AlertObject {
    fn from(alert: store::Alert) -> Self {
        Self {
            id: ID(alert.id),
            rule: alert.rule,
            principal: alert.principal,
            venue_id: alert.venue_id,
            observed: alert.observed,
            triggers: alert.triggers,
            first_at: alert.first_at,
            last_at: alert.last_at,
            status: if alert.status == "open" {
                AlertStatus::Open
            } else {
                AlertStatus::Acknowledged
            },
            acknowledged_by: alert.acknowledged_by,
            acknowledged_at: alert.acknowledged_at,
        }
    }
}

/// An alert's place in the list: when it last tripped, and its id.
fn alert_cursor(alert: &store::Alert) -> Cursor {
    Cursor(format!(
        "{}|{}",
        alert
            .last_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        alert.id
    ))
}

fn alert_after(after: Option<&str>) -> Result<Option<(DateTime<Utc>, String)>> {
    let forged = || api_error(Code::BadUserInput, "after: not a cursor from this list");
    let Some(text) = position("after", after)? else {
        return Ok(None);
    };
    let (at, id) = text.split_once('|').ok_or_else(forged)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| forged())?;
    if id.is_empty() || id.len() > MAX_ID_LENGTH {
        return Err(forged());
    }
    Ok(Some((at.with_timezone(&Utc), id.to_owned())))
}

/// One alert by id, for a `node(id:)` (the caller's reach is checked by
/// the caller: alerts of no venue are for admins of every venue).
pub fn alert_by_id(store: &store::Store, id: &str) -> Result<Option<AlertObject>, StoreError> {
    Ok(store.alert(id)?.map(AlertObject::from))
}

#[derive(InputObject)]
pub struct AcknowledgeAlertInput {
    pub id: ID,
}

#[derive(SimpleObject, Default)]
pub struct AcknowledgeAlertPayload {
    pub alert: Option<AlertObject>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

/// Whom a hold is on: a staff account or an API key (exactly one).
#[derive(OneofObject)]
pub enum HeldPrincipal {
    StaffId(ID),
    ApiKeyId(ID),
}

#[derive(InputObject)]
pub struct LiftHoldInput {
    pub principal: HeldPrincipal,
}

#[derive(SimpleObject, Default)]
pub struct LiftHoldPayload {
    /// Whether the principal was held (false: it was not, or is not the
    /// caller's to let in).
    pub lifted: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Alerts, most recently tripped first (admins). An admin bound to
    /// venues sees the alerts of those venues, and `totalCount` counts
    /// those; alerts of no venue (failed logins, policy refusals, ...) only
    /// an admin of every venue.
    #[graphql(complexity = "super::limits::page_complexity(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        status: Option<AlertStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Page<AlertObject>>> {
        guard::require(ctx, None, coordinates::QUERY_ALERTS, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_ALERTS, READ).filter();
        let (first, limit) = rows(first)?;
        let after = alert_after(after.as_deref())?;
        let has_previous = after.is_some();
        let store = store(ctx).clone();
        let status = status.map(AlertStatus::as_str);
        let (mut alerts, total) =
            blocking(move || store.alerts_with_count(status, venues.as_deref(), after, limit))
                .await?;
        let has_next = alerts.len() > first;
        alerts.truncate(first);
        let mut connection = page(has_previous, has_next, total);
        connection.edges.extend(
            alerts
                .into_iter()
                .map(|alert| Edge::new(alert_cursor(&alert), AlertObject::from(alert))),
        );
        Ok(Some(connection))
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Marks an alert handled (admins); the next trip of its rule by the
    /// same principal opens a new one. An alert out of the caller's venues
    /// is NOT_FOUND, as an unknown one.
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        input: AcknowledgeAlertInput,
    ) -> Result<AcknowledgeAlertPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_ACKNOWLEDGE_ALERT;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let reach = guard::reach(ctx, OBJECT, EXECUTE);
        let by = guard::principal(ctx).subject();
        let store = store(ctx).clone();
        let now = super::context::now(ctx);
        let id = input.id.0;
        let (alert, user_errors) = outcome(
            blocking(move || {
                let not_found = || StoreError::from(DomainError::not_found("alert"));
                if id.len() > MAX_ID_LENGTH {
                    return Err(not_found());
                }
                if reach != guard::Reach::Everywhere {
                    let within = store
                        .alert(&id)?
                        .and_then(|alert| alert.venue_id)
                        .is_some_and(|venue| reach.covers(&venue));
                    if !within {
                        return Err(not_found());
                    }
                }
                store
                    .acknowledge_alert(&id, &by, now)?
                    .map(AlertObject::from)
                    .ok_or_else(not_found)
            })
            .await
            .map_err(|e| at_field(e, "id")),
        )?;
        Ok(AcknowledgeAlertPayload { alert, user_errors })
    }

    /// Lets a throttled or suspended staff account or API key in again
    /// (admins); `lifted` says whether it was held. An admin bound to venues
    /// reaches only principals whose every role is in them: others answer
    /// `false`, as a principal without a hold (FORBIDDEN when it also holds
    /// roles in the caller's venues).
    async fn lift_hold(&self, ctx: &Context<'_>, input: LiftHoldInput) -> Result<LiftHoldPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_LIFT_HOLD;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let (field, subject) = match input.principal {
            HeldPrincipal::StaffId(id) => ("staffId", format!("user:{}", id.0)),
            HeldPrincipal::ApiKeyId(id) => ("apiKeyId", format!("apikey:{}", id.0)),
        };
        if subject.len() > MAX_ID_LENGTH {
            return Ok(LiftHoldPayload {
                lifted: false,
                user_errors: vec![UserError::new(
                    &["input", "principal", field],
                    UserErrorCode::Invalid,
                    format!("{field}: too long"),
                )],
            });
        }
        let reach = guard::reach(ctx, OBJECT, EXECUTE);
        if reach != guard::Reach::Everywhere {
            let lookup = store(ctx).clone();
            let held = subject.clone();
            let domains: Vec<String> = blocking(move || {
                Ok(lookup
                    .roles_of(&held)?
                    .into_iter()
                    .map(|a| a.venue)
                    .collect::<Vec<_>>())
            })
            .await?;
            if !domains.iter().any(|d| reach.covers(d)) {
                return Ok(LiftHoldPayload::default());
            }
            guard::require_over(ctx, &domains, OBJECT, EXECUTE, "principal")?;
        }
        let store = store(ctx).clone();
        let lifted = blocking(move || store.lift_hold(&subject)).await?;
        Ok(LiftHoldPayload {
            lifted,
            user_errors: Vec::new(),
        })
    }
}
