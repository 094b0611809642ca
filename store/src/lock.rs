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
