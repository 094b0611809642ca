//! Alerts for admins: what the detection rules saw, acknowledging them,
//! and lifting the holds automatic responses put on principals.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, api_error};
use super::guard::{self, EXECUTE, READ};

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
pub struct AlertObject {
    pub id: ID,
    /// `failed_logins_account`, `bulk_read`, ... (README, "Security
    /// monitoring").
    pub rule: String,
    /// `user:<id>`, `apikey:<id>`, `address:<pseudonym>` or `system`.
    pub principal: String,
    pub venue_id: Option<ID>,
    /// The largest count seen when the rule tripped.
    pub observed: i32,
    /// How often the rule tripped while the alert was open.
    pub triggers: i32,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub status: AlertStatus,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

impl From<store::Alert> for AlertObject {
    fn from(alert: store::Alert) -> Self {
        Self {
            id: ID(alert.id),
            rule: alert.rule,
            principal: alert.principal,
            venue_id: alert.venue_id.map(ID),
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

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Alerts, most recently tripped first (admins); page with `before`
    /// (the `lastAt` of the last one seen). An admin bound to venues sees
    /// the alerts of those venues; alerts of no venue (failed logins,
    /// policy refusals, ...) only an admin of every venue.
    #[graphql(complexity = "super::limits::page_complexity(Some(first), child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        status: Option<AlertStatus>,
        #[graphql(default = 50)] first: i32,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<AlertObject>> {
        guard::require(ctx, None, coordinates::QUERY_ALERTS, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_ALERTS, READ).filter();
        let limit = i64::try_from(super::limits::page_size(Some(first))?).unwrap_or(0);
        let store = store(ctx).clone();
        let alerts = blocking(move || {
            store.alerts(
                status.map(AlertStatus::as_str),
                venues.as_deref(),
                before,
                limit,
            )
        })
        .await?;
        Ok(alerts.into_iter().map(AlertObject::from).collect())
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Marks an alert handled (admins); the next trip of its rule by the
    /// same principal opens a new one. An alert out of the caller's venues
    /// is NOT_FOUND, as an unknown one.
    async fn acknowledge_alert(&self, ctx: &Context<'_>, id: ID) -> Result<AlertObject> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_ACKNOWLEDGE_ALERT;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let reach = guard::reach(ctx, OBJECT, EXECUTE);
        if reach != guard::Reach::Everywhere {
            let lookup = store(ctx).clone();
            let wanted = id.0.clone();
            let found = blocking(move || lookup.alert(&wanted)).await?;
            let within = found
                .and_then(|alert| alert.venue_id)
                .is_some_and(|venue| reach.covers(&venue));
            if !within {
                return Err(api_error(Code::NotFound, "alert not found"));
            }
        }
        let by = guard::principal(ctx).subject();
        let store = store(ctx).clone();
        let now = super::context::now(ctx);
        let alert = blocking(move || store.acknowledge_alert(&id, &by, now)).await?;
        alert
            .map(AlertObject::from)
            .ok_or_else(|| api_error(Code::NotFound, "alert not found"))
    }

    /// Lets a throttled or suspended principal (`user:<id>`,
    /// `apikey:<id>`) in again (admins); answers whether it was held. An
    /// admin bound to venues reaches only principals whose every role is in
    /// them: others answer `false`, as a principal without a hold (FORBIDDEN
    /// when it also holds roles in the caller's venues).
    async fn lift_hold(&self, ctx: &Context<'_>, principal: String) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_LIFT_HOLD;
        guard::require(ctx, None, OBJECT, EXECUTE)?;
        let reach = guard::reach(ctx, OBJECT, EXECUTE);
        if reach != guard::Reach::Everywhere {
            // Only staff and keys have venues; any other hold (an address,
            // the system) is of the whole deployment.
            if !(principal.starts_with("user:") || principal.starts_with("apikey:")) {
                return Ok(false);
            }
            let lookup = store(ctx).clone();
            let subject = principal.clone();
            let domains: Vec<String> = blocking(move || {
                Ok(lookup
                    .roles_of(&subject)?
                    .into_iter()
                    .map(|a| a.venue)
                    .collect::<Vec<_>>())
            })
            .await?;
            if !domains.iter().any(|d| reach.covers(d)) {
                return Ok(false);
            }
            guard::require_over(ctx, &domains, OBJECT, EXECUTE, "principal")?;
        }
        let store = store(ctx).clone();
        blocking(move || store.lift_hold(&principal)).await
    }
}
