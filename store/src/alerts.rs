//! Alerts about suspicious activity, and the holds (throttle, suspension)
//! put on the principals that raised them. Ids and counts only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::Email;

use crate::audit::AuditAction;
use crate::outbox::{Mail, Outgoing, Webhook, WebhookTarget, insert_message, seal_message};
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Audit actions the bulk-read rule counts: reading a record's personal
/// fields, and finding a guest by their address (enumerating addresses at
/// the front desk is a bulk read too).
pub const BULK_READ_ACTIONS: [AuditAction; 2] = [AuditAction::Read, AuditAction::Lookup];

/// How a read of a reservation names it in the trail.
const RESERVATION_PREFIX: &str = "reservation:";
/// Where the id starts in such a name (1-based, as `substr` counts).
const RESERVATION_ID_AT: i32 = RESERVATION_PREFIX.len() as i32 + 1;
/// How a lookup that found nobody names the venue searched in vain.
const MISSED_LOOKUP: &str = "venue:";

diesel::define_sql_function! {
    /// `substr(text, start)`, 1-based: the same on SQLite and PostgreSQL.
    fn substr(text: diesel::sql_types::Text, start: diesel::sql_types::Integer) -> diesel::sql_types::Text;
}

/// Where reads of one venue's reservations are its daily work rather
/// than a bulk read: reservations starting in `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationalWindow {
    pub venue_id: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What tripped: the rule, who, where, and the count that crossed the
/// threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub rule: String,
    /// `user:<id>`, `apikey:<id>`, `address:<keyed hash>`, `system`.
    pub principal: String,
    pub venue_id: Option<String>,
    pub observed: i64,
}

/// Who hears about a newly opened alert (repeats of an open one are only
/// counted).
#[derive(Debug, Clone, Default)]
pub struct AlertNotices {
    /// Queue a webhook to the alert endpoint of the settings.
    pub webhook: bool,
    pub emails: Vec<Email>,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    pub principal: String,
    pub venue_id: Option<String>,
    pub observed: i32,
    pub triggers: i32,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// The outcome of raising: the alert's id, and whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub id: String,
    pub opened: bool,
}

/// A principal held back by an automatic response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// `throttle` or `suspend`.
    pub kind: String,
    /// `None`: until an admin lifts it.
    pub until: Option<DateTime<Utc>>,
    pub alert_id: String,
}

macro_rules! alert_columns {
    ($s:ident) => {
        (
            $s::alerts::id,
            $s::alerts::rule,
            $s::alerts::principal,
            $s::alerts::venue_id,
            $s::alerts::observed,
            $s::alerts::triggers,
            $s::alerts::first_at,
            $s::alerts::last_at,
            $s::alerts::status,
            $s::alerts::acknowledged_by,
            $s::alerts::acknowledged_at,
        )
    };
}

fn notice_mail(alert: &NewAlert, id: &str, now: DateTime<Utc>, to: Email) -> Mail {
    Mail::new(
        to,
        domain::messages::alert_notice(&domain::messages::AlertFacts {
            rule: &alert.rule,
            principal: &alert.principal,
            venue_id: alert.venue_id.as_deref(),
            observed: alert.observed,
            at: now,
            alert_id: id,
        }),
    )
}

impl Store {
    /// Opens an alert, or counts another trip of the open one for the same
    /// rule and principal; a newly opened alert is queued to `notices` in
    /// the same transaction.
    pub fn raise_alert(
        &self,
        alert: &NewAlert,
        notices: &AlertNotices,
        now: DateTime<Utc>,
    ) -> Result<Raised, StoreError> {
        let now = db_instant(now);
        let observed = i32::try_from(alert.observed).unwrap_or(i32::MAX);
        let ring = self.keys().current();
        // Two nodes may open the same alert at once: the unique index lets
        // one win, and the other's second try finds it open.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut connection = self.connection()?;
            let result = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
                use s::alerts::dsl as a;
                let open: Option<(String, i32)> = a::alerts
                    .filter(a::rule.eq(&alert.rule))
                    .filter(a::principal.eq(&alert.principal))
                    .filter(a::status.eq("open"))
                    .select((a::id, a::observed))
                    .first(c)
                    .optional()?;
                if let Some((id, seen)) = open {
                    diesel::update(a::alerts.find(&id))
                        .set((
                            a::triggers.eq(a::triggers + 1),
                            a::observed.eq(seen.max(observed)),
                            a::last_at.eq(now),
                        ))
                        .execute(c)?;
                    return Ok::<_, StoreError>(Raised { id, opened: false });
                }
                let id = uuid::Uuid::new_v4().to_string();
                diesel::insert_into(a::alerts)
                    .values((
                        a::id.eq(&id),
                        a::rule.eq(&alert.rule),
                        a::principal.eq(&alert.principal),
                        a::venue_id.eq(alert.venue_id.as_ref()),
                        a::observed.eq(observed),
                        a::triggers.eq(1),
                        a::first_at.eq(now),
                        a::last_at.eq(now),
                        a::status.eq("open"),
                    ))
                    .execute(c)?;
                let mut messages = Vec::new();
                if notices.webhook {
                    messages.push(Outgoing::Webhook(Webhook {
                        target: WebhookTarget::Alerts,
                        event: "alert.opened".to_owned(),
                        occurred_at: now,
                        data: serde_json::json!({
                            "alert_id": id,
                            "rule": alert.rule,
                            "principal": alert.principal,
                            "venue_id": alert.venue_id,
                            "observed": alert.observed,
                            "first_at": now.to_rfc3339(),
                        }),
                    }));
                }
                for to in &notices.emails {
                    messages.push(Outgoing::Email(notice_mail(alert, &id, now, to.clone())));
                }
                for message in &messages {
                    let (message_id, sealed) = seal_message(&ring, message)?;
                    insert_message!(
                        c,
                        s,
                        &message_id,
                        message.kind().as_str(),
                        "alert",
                        alert.venue_id.as_ref(),
                        &sealed,
                        now
                    )?;
                }
                Ok(Raised { id, opened: true })
            }));
            match result {
                Err(error) if attempt < 3 && error.is_unique_violation() => continue,
                other => return other,
            }
        }
    }

    /// Alerts, most recently tripped first, after the position `after`
    /// (`last_at`, `id` of the last one seen); `status` filters (`open`,
    /// `acknowledged`), `venues` keeps those of the listed venues (none:
    /// every alert, those of no venue included).
    /// A page of alerts, newest trip first, and how many there are under
    /// the same filters, read in one snapshot so that the two agree while
    /// alerts are being raised.
    pub fn alerts_with_count(
        &self,
        status: Option<&str>,
        venues: Option<&[String]>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<(Vec<Alert>, i64), StoreError> {
        use crate::SnapshotRead as _;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            c.snapshot(|c| {
                use s::alerts::dsl as a;
                let mut count = a::alerts.count().into_boxed();
                let mut query = a::alerts
                    .order((a::last_at.desc(), a::id.desc()))
                    .limit(limit)
                    .select(alert_columns!(s))
                    .into_boxed();
                if let Some(status) = status {
                    count = count.filter(a::status.eq(status));
                    query = query.filter(a::status.eq(status));
                }
                if let Some(venues) = venues {
                    count = count.filter(a::venue_id.eq_any(venues.to_vec()));
                    query = query.filter(a::venue_id.eq_any(venues.to_vec()));
                }
                if let Some((last_at, id)) = &after {
                    let last_at = db_instant(*last_at);
                    query = query.filter(
                        a::last_at
                            .lt(last_at)
                            .or(a::last_at.eq(last_at).and(a::id.lt(id.clone()))),
                    );
                }
                let total = count.get_result::<i64>(c)?;
                let alerts = query.load::<Alert>(c)?;
                Ok::<_, diesel::result::Error>((alerts, total))
            })?
        }))
    }

    pub fn alert(&self, id: &str) -> Result<Option<Alert>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::alerts::table
            .find(id)
            .select(alert_columns!(s))
            .first::<Alert>(c)
            .optional()?))
    }

    /// Marks an alert handled; a later trip of the same rule opens a new
    /// one. `None` when there is no such alert.
    pub fn acknowledge_alert(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| c.write_transaction(
            |c| {
                use s::alerts::dsl as a;
                diesel::update(a::alerts.find(id).filter(a::status.eq("open")))
                    .set((
                        a::status.eq("acknowledged"),
                        a::acknowledged_by.eq(Some(by)),
                        a::acknowledged_at.eq(Some(now)),
                    ))
                    .execute(c)?;
                Ok::<_, StoreError>(
                    a::alerts
                        .find(id)
                        .select(alert_columns!(s))
                        .first::<Alert>(c)
                        .optional()?,
                )
            }
        ))?)
    }

    /// Holds a principal back (replacing an earlier hold).
    pub fn hold_principal(
        &self,
        principal: &str,
        kind: &str,
        until: Option<DateTime<Utc>>,
        alert_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_instant(now);
        let until = until.map(db_instant);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::principal_holds::dsl as h;
            diesel::delete(h::principal_holds.find(principal)).execute(c)?;
            diesel::insert_into(h::principal_holds)
                .values((
                    h::principal.eq(principal),
                    h::kind.eq(kind),
                    h::until.eq(until),
                    h::alert_id.eq(alert_id),
                    h::created_at.eq(now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        }))
    }

    /// The hold on a principal that is in force now, if any.
    pub fn principal_hold(
        &self,
        principal: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Hold>, StoreError> {
        let mut connection = self.connection()?;
        let row: Option<(String, Option<DateTime<Utc>>, String)> =
            on_backend!(&mut *connection, |c, s| {
                use s::principal_holds::dsl as h;
                h::principal_holds
                    .find(principal)
                    .select((h::kind, h::until, h::alert_id))
                    .first(c)
                    .optional()?
            });
        Ok(row
            .filter(|(_, until, _)| until.is_none_or(|until| until > now))
            .map(|(kind, until, alert_id)| Hold {
                kind,
                until,
                alert_id,
            }))
    }

    /// Lifts a hold; answers whether there was one.
    pub fn lift_hold(&self, principal: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection()?;
        let lifted = on_backend!(&mut *connection, |c, s| {
            use s::principal_holds::dsl as h;
            diesel::delete(h::principal_holds.find(principal)).execute(c)?
        });
        Ok(lifted > 0)
    }

    /// The venues `principal` read reservations of since `since`, in the
    /// order first read, at most `limit`.
    pub fn venues_read_since(
        &self,
        principal: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let since = db_instant(since);
        let mut connection = self.connection()?;
        let venues: Vec<Option<String>> = on_backend!(&mut *connection, |c, s| {
            use s::audit_objects::dsl as l;
            l::audit_objects
                .filter(l::principal.eq(principal))
                .filter(l::action.eq(AuditAction::Read.as_str()))
                .filter(l::at.ge(since))
                .filter(l::venue_id.is_not_null())
                .group_by(l::venue_id)
                .select(l::venue_id)
                .order(diesel::dsl::min(l::seq).asc())
                .limit(limit)
                .load(c)?
        });
        Ok(venues.into_iter().flatten().collect())
    }

    /// What `principal` read since `since` that the bulk-read rule counts,
    /// from the audit trail (so it holds across nodes): distinct
    /// reservations whose personal fields were read and distinct guests
    /// found by address, but not the reservations of the given venues that
    /// start within their operational window; and every lookup that found
    /// nobody (the trail cannot tell the addresses apart, and each is a
    /// probe of its own).
    pub fn bulk_reads_since(
        &self,
        principal: &str,
        since: DateTime<Utc>,
        operational: &[OperationalWindow],
    ) -> Result<i64, StoreError> {
        let since = db_instant(since);
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use diesel::expression_methods::AggregateExpressionMethods as _;
            use s::audit_objects::dsl as l;
            use s::reservations::dsl as r;
            let distinct = l::audit_objects
                .filter(l::principal.eq(principal))
                .filter(l::action.eq_any(BULK_READ_ACTIONS.map(AuditAction::as_str)))
                .filter(l::at.ge(since))
                .filter(l::object.not_like(format!("{MISSED_LOOKUP}%")))
                .select(diesel::dsl::count(l::object).aggregate_distinct())
                .first::<i64>(c)?;
            let missed = l::audit_objects
                .filter(l::principal.eq(principal))
                .filter(l::action.eq(AuditAction::Lookup.as_str()))
                .filter(l::at.ge(since))
                .filter(l::object.like(format!("{MISSED_LOOKUP}%")))
                .count()
                .get_result::<i64>(c)?;
            let mut exempt = 0_i64;
            for window in operational {
                // A read names `reservation:<id>`: the join strips the
                // prefix, so that the reservation is found by its key.
                exempt += l::audit_objects
                    .inner_join(r::reservations.on(r::id.eq(substr(l::object, RESERVATION_ID_AT))))
                    .filter(l::principal.eq(principal))
                    .filter(l::action.eq(AuditAction::Read.as_str()))
                    .filter(l::at.ge(since))
                    .filter(l::venue_id.eq(&window.venue_id))
                    .filter(r::venue_id.eq(&window.venue_id))
                    .filter(r::starts_at.ge(db_instant(window.from)))
                    .filter(r::starts_at.lt(db_instant(window.until)))
                    .select(diesel::dsl::count(l::object).aggregate_distinct())
                    .first::<i64>(c)?;
            }
            distinct.saturating_sub(exempt).saturating_add(missed)
        }))
    }

    /// How many requests of `principal` since `since` have `action`
    /// (`export`, `erase`) on the trail.
    pub fn actions_since(
        &self,
        principal: &str,
        action: AuditAction,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::audit_objects::dsl as l;
            // Requests, not objects: one export names every record of
            // the history it exports.
            use diesel::expression_methods::AggregateExpressionMethods as _;
            l::audit_objects
                .filter(l::principal.eq(principal))
                .filter(l::action.eq(action.as_str()))
                .filter(l::at.ge(since))
                .select(diesel::dsl::count(l::seq).aggregate_distinct())
                .first::<i64>(c)?
        }))
    }
}
