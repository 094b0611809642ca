//! Collecting the audit trail of a request: personal fields note who read
//! what while the query runs; the HTTP layer appends it all before the
//! answer leaves, and answers with an error when it cannot.

use std::sync::Mutex;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use store::{AuditEvent, AuditFilter};

use super::context::{blocking, store};
use super::coordinates;
use super::guard::{self, READ};
use app::monitor::{RecordStart, RecordStarts};

/// The accesses of one request (one entry on the trail), merged per
/// (principal, action, object) with the fields of each,
/// and when the reservations read start (for the bulk-read rule; not part
/// of the trail).
#[derive(Default)]
pub struct AuditTrail(Mutex<(Vec<AuditEvent>, RecordStarts)>);

impl AuditTrail {
    pub fn take(&self) -> (Vec<AuditEvent>, RecordStarts) {
        self.0
            .lock()
            .map(|mut collected| std::mem::take(&mut *collected))
            .unwrap_or_default()
    }
}

/// Notes when the reservation `object` starts, in its venue's time zone.
pub fn note_start(ctx: &Context<'_>, object: &str, start: RecordStart) {
    let Some(trail) = ctx.data_opt::<std::sync::Arc<AuditTrail>>() else {
        return;
    };
    if let Ok(mut collected) = trail.0.lock()
        && !collected.1.contains_key(object)
    {
        collected.1.insert(object.to_owned(), start);
    }
}

/// Notes that `principal` read `field` of `object`.
pub fn record(
    ctx: &Context<'_>,
    principal: &str,
    action: store::AuditAction,
    object: String,
    field: &str,
    venue: Option<String>,
) {
    let Some(trail) = ctx.data_opt::<std::sync::Arc<AuditTrail>>() else {
        return;
    };
    let Ok(mut collected) = trail.0.lock() else {
        return;
    };
    let events = &mut collected.0;
    match events
        .iter_mut()
        .find(|e| e.principal == principal && e.action == action && e.object == object)
    {
        Some(event) => {
            if !event.fields.split(',').any(|f| f == field) {
                event.fields.push(',');
                event.fields.push_str(field);
            }
        }
        None => events.push(AuditEvent {
            principal: principal.to_owned(),
            action,
            object,
            fields: field.to_owned(),
            venue_id: venue,
        }),
    }
}

/// One object an entry names.
#[derive(SimpleObject)]
#[graphql(name = "AuditObject")]
pub struct AuditObjectObject {
    pub action: String,
    /// `reservation:<id>`, `guest:<id>`, `venue:<id>` (a lookup that found
    /// nobody).
    pub object: String,
    pub fields: Vec<String>,
    pub venue_id: Option<ID>,
}

/// One request's entry on the trail.
#[derive(SimpleObject)]
pub struct AuditEntryObject {
    /// Position in the chain; pass as `before` for the next page.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub principal: String,
    /// The actions of its objects, each once.
    pub actions: Vec<String>,
    /// Every object the request read or changed, with the fields of each.
    pub objects: Vec<AuditObjectObject>,
    /// The venue of every object, when they share one.
    pub venue_id: Option<ID>,
    /// The entry's HMAC, chained to the previous entry's.
    pub hash: String,
}

impl From<store::AuditEntry> for AuditEntryObject {
    fn from(entry: store::AuditEntry) -> Self {
        Self {
            seq: entry.seq,
            at: entry.at,
            principal: entry.principal,
            actions: entry.action.split(',').map(str::to_owned).collect(),
            objects: entry
                .objects
                .into_iter()
                .map(|object| AuditObjectObject {
                    action: object.action,
                    object: object.object,
                    fields: object.fields.split(',').map(str::to_owned).collect(),
                    venue_id: object.venue_id.map(ID),
                })
                .collect(),
            venue_id: entry.venue_id.map(ID),
            hash: entry.hash,
        }
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, one entry per request, newest first (admins).
    /// Filter by principal (`user:<id>`, `apikey:<id>`, `guest`), by an
    /// object the entry names (`reservation:<id>`, `guest:<id>`) or by an
    /// action of one of its objects; page with `before`. An admin bound to
    /// venues reads the entries whose every object is of one of its venues
    /// (an entry names one venue's objects or it is shown whole to admins
    /// of every venue only); entries of no venue only an admin of every
    /// venue.
    #[graphql(complexity = "super::limits::page_complexity(Some(first), child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        before: Option<i64>,
        principal: Option<String>,
        object: Option<String>,
        action: Option<String>,
    ) -> Result<Vec<AuditEntryObject>> {
        guard::require(ctx, None, coordinates::QUERY_AUDIT_LOG, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_AUDIT_LOG, READ).filter();
        let limit = i64::from(super::limits::page_size(Some(first)).map(|n| n as i32)?);
        let store = store(ctx).clone();
        let filter = AuditFilter {
            principal,
            object,
            action,
            venues,
        };
        let entries = blocking(move || store.audit_entries(&filter, before, limit)).await?;
        Ok(entries.into_iter().map(AuditEntryObject::from).collect())
    }
}
