//! The audit trail as admins read it: `auditLog`, one entry per request,
//! newest first, within the caller's venues.

use async_graphql::connection::Edge;
use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use store::{AuditAction, AuditFilter};

use super::access::{rows, venue_reference};
use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, api_error};
use super::guard::{self, READ};
use super::pages::{Cursor, Page, page, position};
use super::types::VenueObject;

/// What an entry did to an object.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "AuditAction")]
pub enum AuditActionName {
    /// A guarded field was read.
    Read,
    /// The front desk looked an address up (also when it found nobody).
    Lookup,
    Export,
    Correct,
    Erase,
    /// A breach notice was queued for the guest.
    Notify,
    /// A guest's lost manage token was replaced.
    ReissueToken,
    /// A key rotation re-sealed every sealed value.
    Rotate,
    /// A key version was retired.
    Retire,
}

impl From<AuditActionName> for AuditAction {
    fn from(action: AuditActionName) -> Self {
        match action {
            AuditActionName::Read => Self::Read,
            AuditActionName::Lookup => Self::Lookup,
            AuditActionName::Export => Self::Export,
            AuditActionName::Correct => Self::Correct,
            AuditActionName::Erase => Self::Erase,
            AuditActionName::Notify => Self::Notify,
            AuditActionName::ReissueToken => Self::ReissueToken,
            AuditActionName::Rotate => Self::Rotate,
            AuditActionName::Retire => Self::Retire,
        }
    }
}

impl AuditActionName {
    /// The action as stored; none for one this version does not know.
    fn of(raw: &str) -> Option<Self> {
        Some(match AuditAction::parse(raw)? {
            AuditAction::Read => Self::Read,
            AuditAction::Lookup => Self::Lookup,
            AuditAction::Export => Self::Export,
            AuditAction::Correct => Self::Correct,
            AuditAction::Erase => Self::Erase,
            AuditAction::Notify => Self::Notify,
            AuditAction::ReissueToken => Self::ReissueToken,
            AuditAction::Rotate => Self::Rotate,
            AuditAction::Retire => Self::Retire,
        })
    }
}

/// One object an entry names.
#[derive(SimpleObject)]
#[graphql(name = "AuditedObject", complex)]
pub struct AuditObjectObject {
    /// Null for an action newer than this server knows.
    pub action: Option<AuditActionName>,
    /// `reservation:<id>`, `guest:<id>`, `venue:<id>` (a lookup that found
    /// nobody).
    pub object: String,
    pub fields: Vec<String>,
    #[graphql(skip)]
    venue_id: Option<String>,
}

#[ComplexObject]
impl AuditObjectObject {
    /// The venue the object belongs to; null for none.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, self.venue_id.as_deref()).await
    }
}

/// One request's entry on the trail.
#[derive(SimpleObject)]
#[graphql(name = "AuditEntry", complex)]
pub struct AuditEntryObject {
    /// The entry's position in the chain, as an id.
    pub id: ID,
    /// Position in the chain.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `user:<id>`, `apikey:<id>`, `guest` or `system`.
    pub principal: String,
    /// The actions of its objects, each once.
    pub actions: Vec<AuditActionName>,
    /// Every object the request read or changed, with the fields of each.
    pub objects: Vec<AuditObjectObject>,
    /// The entry's HMAC, chained to the previous entry's.
    pub hash: String,
    #[graphql(skip)]
    venue_id: Option<String>,
}

#[ComplexObject]
impl AuditEntryObject {
    /// The venue of every object, when they share one.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, self.venue_id.as_deref()).await
    }
}

impl From<store::AuditEntry> for AuditEntryObject {
    fn from(entry: store::AuditEntry) -> Self {
        Self {
            id: ID(entry.seq.to_string()),
            seq: entry.seq,
            at: entry.at,
            principal: entry.principal,
            actions: entry
                .action
                .split(',')
                .filter_map(AuditActionName::of)
                .collect(),
            objects: entry
                .objects
                .into_iter()
                .map(|object| AuditObjectObject {
                    action: AuditActionName::of(&object.action),
                    object: object.object,
                    fields: object.fields.split(',').map(str::to_owned).collect(),
                    venue_id: object.venue_id,
                })
                .collect(),
            venue_id: entry.venue_id,
            hash: entry.hash,
        }
    }
}

/// Longer principal or object filters are refused: no stored name is
/// that long.
const MAX_FILTER_LENGTH: usize = 200;

fn filter_text(field: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(text) if text.len() > MAX_FILTER_LENGTH => Err(api_error(
            Code::BadUserInput,
            format!("{field}: at most {MAX_FILTER_LENGTH} characters"),
        )),
        other => Ok(other),
    }
}

fn seq_after(after: Option<&str>) -> Result<Option<i64>> {
    position("after", after)?
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| api_error(Code::BadUserInput, "after: not a cursor from this list"))
        })
        .transpose()
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, one entry per request, newest first (admins).
    /// Filter by principal (`user:<id>`, `apikey:<id>`, `guest`), by an
    /// object the entry names (`reservation:<id>`, `guest:<id>`) or by an
    /// action of one of its objects. An admin bound to venues reads the
    /// entries whose every object is of one of its venues (an entry names
    /// one venue's objects or it is shown whole to admins of every venue
    /// only), and `totalCount` counts those; entries of no venue only an
    /// admin of every venue.
    #[graphql(complexity = "super::limits::page_complexity(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        principal: Option<String>,
        object: Option<String>,
        action: Option<AuditActionName>,
    ) -> Result<Option<Page<AuditEntryObject>>> {
        guard::require(ctx, None, coordinates::QUERY_AUDIT_LOG, READ)?;
        let venues = guard::reach(ctx, coordinates::QUERY_AUDIT_LOG, READ).filter();
        let (first, limit) = rows(first)?;
        let before = seq_after(after.as_deref())?;
        let filter = AuditFilter {
            principal: filter_text("principal", principal)?,
            object: filter_text("object", object)?,
            action: action.map(|a| AuditAction::from(a).as_str().to_owned()),
            venues,
        };
        let store = store(ctx).clone();
        let (mut entries, total) = blocking(move || {
            let total = store.audit_count(&filter)?;
            Ok((store.audit_entries(&filter, before, limit)?, total))
        })
        .await?;
        let has_next = entries.len() > first;
        entries.truncate(first);
        let mut connection = page(before.is_some(), has_next, total);
        connection.edges.extend(
            entries.into_iter().map(|entry| {
                Edge::new(Cursor(entry.seq.to_string()), AuditEntryObject::from(entry))
            }),
        );
        Ok(Some(connection))
    }
}
