//! Alerts for admins: what the detection rules saw, acknowledging them,
//! and lifting the holds automatic responses put on principals.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::errors::{Code, api_error};
use super::guard::{self, EXECUTE, READ};
use super::{blocking, store};

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
    /// (the `lastAt` of the last one seen).
    #[graphql(complexity = "super::query::page_complexity(Some(first), child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        status: Option<AlertStatus>,
        #[graphql(default = 50)] first: i32,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<AlertObject>> {
        guard::require(ctx, None, "Query.alerts", READ)?;
        let limit = i64::try_from(super::query::page_size(Some(first))?).unwrap_or(0);
        let store = store(ctx).clone();
        let alerts =
            blocking(move || store.alerts(status.map(AlertStatus::as_str), before, limit)).await?;
        Ok(alerts.into_iter().map(AlertObject::from).collect())
    }
}

#[derive(Default)]
pub struct AlertMutation;

#[Object]
impl AlertMutation {
    /// Marks an alert handled (admins); the next trip of its rule by the
    /// same principal opens a new one.
    async fn acknowledge_alert(&self, ctx: &Context<'_>, id: ID) -> Result<AlertObject> {
        guard::require(ctx, None, "Mutation.acknowledgeAlert", EXECUTE)?;
        let by = guard::principal(ctx).subject();
        let store = store(ctx).clone();
        let now = super::now(ctx);
        let alert = blocking(move || store.acknowledge_alert(&id, &by, now)).await?;
        alert
            .map(AlertObject::from)
            .ok_or_else(|| api_error(Code::NotFound, "alert not found"))
    }

    /// Lets a throttled or suspended principal (`user:<id>`,
    /// `apikey:<id>`) in again (admins); answers whether it was held.
    async fn lift_hold(&self, ctx: &Context<'_>, principal: String) -> Result<bool> {
        guard::require(ctx, None, "Mutation.liftHold", EXECUTE)?;
        let store = store(ctx).clone();
        blocking(move || store.lift_hold(&principal)).await
    }
}
