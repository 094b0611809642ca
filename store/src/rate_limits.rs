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

    /// Forgets windows that started before `before`, except those of API
    /// keys, kept until `keys_before` (their usual rate is judged on them).
    pub fn forget_rate_windows_except_keys(
        &self,
        before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (before, keys_before) = (db_instant(before), db_instant(keys_before));
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::rate_windows::dsl as w;
            diesel::delete(
                w::rate_windows
                    .filter(w::window_start.lt(before))
                    .filter(w::scope.not_like("apikey:%")),
            )
            .execute(c)?
                + diesel::delete(w::rate_windows.filter(w::window_start.lt(keys_before)))
                    .execute(c)?
        }))
    }

    /// A scope's requests per minute in the windows between `since` and
    /// `until` (exclusive): how many windows had any, and their sum.
    pub fn rate_history(
        &self,
        scope: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(i64, i64), StoreError> {
        let (since, until) = (db_instant(since), db_instant(until));
        let mut connection = self.connection()?;
        let requests: Vec<i64> = on_backend!(&mut *connection, |c, s| {
            use s::rate_windows::dsl as w;
            w::rate_windows
                .filter(w::scope.eq(scope))
                .filter(w::window_start.ge(since))
                .filter(w::window_start.lt(until))
                .select(w::requests)
                .load(c)?
        });
        let windows = i64::try_from(requests.len()).unwrap_or(i64::MAX);
        Ok((windows, requests.iter().sum()))
    }

    /// Records that an API key was used from `network`; answers whether
    /// the network is new for it, and how many it knew before.
    pub fn note_api_key_network(
        &self,
        key_id: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<(bool, i64), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::api_key_networks::dsl as n;
            let known: i64 = n::api_key_networks
                .filter(n::key_id.eq(key_id))
                .count()
                .get_result(c)?;
            let inserted = diesel::insert_into(n::api_key_networks)
                .values((
                    n::key_id.eq(key_id),
                    n::network.eq(network),
                    n::first_seen_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            Ok::<_, StoreError>((inserted > 0, known))
        }))
    }
}
