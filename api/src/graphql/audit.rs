//! Collecting the audit trail of a request: personal fields note who read
//! what while the query runs; the HTTP layer appends it all before the
//! answer leaves, and answers with an error when it cannot.

use std::sync::Mutex;

use async_graphql::Context;
use store::AuditEvent;

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
