//! Rate-limit counters shared by the nodes: each adds its own counts for a
//! scope and minute and reads back the sum of all nodes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// What one node counted for a scope in a window since it last synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateDelta {
    pub scope: String,
    pub window_start: DateTime<Utc>,
    pub requests: i64,
    pub complexity: i64,
}

impl Store {
    /// Adds each node-local delta and returns the totals of all nodes, in
    /// the order given.
    pub fn add_rate_counts(&self, deltas: &[RateDelta]) -> Result<Vec<(i64, i64)>, StoreError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use diesel::upsert::excluded;
            use s::rate_windows::dsl as w;
            let mut totals = Vec::with_capacity(deltas.len());
            for delta in deltas {
                let start = db_instant(delta.window_start);
                let total: (i64, i64) = diesel::insert_into(w::rate_windows)
                    .values((
                        w::scope.eq(&delta.scope),
                        w::window_start.eq(start),
                        w::requests.eq(delta.requests),
                        w::complexity.eq(delta.complexity),
                    ))
                    .on_conflict((w::scope, w::window_start))
                    .do_update()
                    .set((
                        w::requests.eq(w::requests + excluded(w::requests)),
                        w::complexity.eq(w::complexity + excluded(w::complexity)),
                    ))
                    .returning((w::requests, w::complexity))
                    .get_result(c)?;
                totals.push(total);
            }
            Ok::<_, StoreError>(totals)
        }))
    }

    /// Forgets windows that started before `before`.
    pub fn forget_rate_windows(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let before = db_instant(before);
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::rate_windows::dsl as w;
            diesel::delete(w::rate_windows.filter(w::window_start.lt(before))).execute(c)?
        }))
    }
}
