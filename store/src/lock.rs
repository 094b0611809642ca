//! The one place that adds a row-locking clause to a read that precedes a
//! write in the same transaction.
//!
//! On PostgreSQL several writers run at once, so the rows a transaction is
//! about to change are read `FOR UPDATE`, and a batch worker that should
//! leave rows another node is working on to that node reads them
//! `FOR UPDATE SKIP LOCKED`. SQLite has one writer at a time (every write
//! transaction begins `IMMEDIATE`), so it needs, and has, no locking clause.
//!
//! Each backend's schema module carries its variant as `load_locked!`, so
//! that code inside `on_backend!(…, |c, s| …)` locks with
//! `s::load_locked!(query, c, lock)`.

/// How a locking read treats rows another transaction holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForUpdate {
    /// Waits for them: the caller needs exactly these rows.
    Wait,
    /// Leaves them out: another worker is handling them.
    SkipLocked,
}

/// Loads the query's rows `FOR UPDATE`, skipping locked rows when asked.
macro_rules! load_locked_pg {
    ($query:expr, $c:expr, $lock:expr) => {{
        let query = $query;
        match $lock {
            $crate::lock::ForUpdate::Wait => query.for_update().load($c),
            $crate::lock::ForUpdate::SkipLocked => query.for_update().skip_locked().load($c),
        }
    }};
}
pub(crate) use load_locked_pg;

/// Loads the query's rows: the write transaction around the read already
/// keeps every other writer out.
macro_rules! load_locked_sqlite {
    ($query:expr, $c:expr, $lock:expr) => {{
        let _: $crate::lock::ForUpdate = $lock;
        $query.load($c)
    }};
}
pub(crate) use load_locked_sqlite;

/// Loads the query's rows `FOR SHARE`: other readers go on, a writer that
/// locks them `FOR UPDATE` waits, or is waited for. Bookings take the
/// venue's row this way, so that a venue edit (closures, hours) committed
/// while a booking is placed is seen by it, or waits for it.
macro_rules! load_shared_pg {
    ($query:expr, $c:expr) => {{ $query.for_share().load($c) }};
}
pub(crate) use load_shared_pg;

/// Loads the query's rows: SQLite has one writer at a time.
macro_rules! load_shared_sqlite {
    ($query:expr, $c:expr) => {{ $query.load($c) }};
}
pub(crate) use load_shared_sqlite;

/// Makes the bookings of one venue take turns until the transaction ends,
/// for venues that cap the guests starting per slot or hour: such a cap is
/// a sum over many reservations, which no constraint can keep. The
/// booking's `FOR SHARE` lock on the venue row does not serialize two
/// bookings (shared locks do not conflict), and upgrading it to
/// `FOR UPDATE` would deadlock two bookings that both hold it. A
/// transaction-scoped advisory lock keyed by the venue conflicts only with
/// itself: it waits for the other booking to commit and never blocks a
/// venue edit, which waits for the shared row locks as before. Venues
/// without caps never take it.
macro_rules! lock_venue_bookings_pg {
    ($c:expr, $venue_id:expr) => {{
        use diesel::RunQueryDsl;
        diesel::sql_query("SELECT pg_advisory_xact_lock(1801284211, hashtext($1))")
            .bind::<diesel::sql_types::Text, _>($venue_id)
            .execute($c)
            .map(|_| ())
    }};
}
pub(crate) use lock_venue_bookings_pg;

/// Nothing to do: SQLite has one writer at a time.
macro_rules! lock_venue_bookings_sqlite {
    ($c:expr, $venue_id:expr) => {{
        let _ = (&$c, $venue_id);
        Ok::<(), diesel::result::Error>(())
    }};
}
pub(crate) use lock_venue_bookings_sqlite;
