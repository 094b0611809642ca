//! The audit trail: append-only, hash-chained entries of who read or
//! changed which personal data. Ids and field names only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One access to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// `anonymous`, `guest`, `user:<id>`, `apikey:<id>`, `cli`.
    pub principal: String,
    /// `read`, `export`, `correct`, `erase`.
    pub action: String,
    /// `guest:<id>` or `reservation:<id>`.
    pub object: String,
    /// Field names, e.g. `guestName,notes`.
    pub fields: String,
    pub venue_id: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub principal: String,
    pub action: String,
    pub object: String,
    pub fields: String,
    pub venue_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain hash of an entry: everything in it, and the previous hash.
pub fn chain_hash(prev: &str, seq: i64, at: DateTime<Utc>, event: &AuditEvent) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &at.to_rfc3339(),
        &event.principal,
        &event.action,
        &event.object,
        &event.fields,
        event.venue_id.as_deref().unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenLink {
    /// The entry's hash does not match its content (modified).
    Modified { seq: i64 },
    /// Entries are missing before this one (deleted), or it does not
    /// point at the previous entry's hash.
    Missing { seq: i64, expected: i64 },
}

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub object: Option<String>,
    pub action: Option<String>,
    pub objects: Vec<String>,
    /// Only entries of these venues (none: every entry, those of no venue
    /// included).
    pub venues: Option<Vec<String>>,
}

const ATTEMPTS: usize = 5;

/// Rows per insert statement: within SQLite's limit of bound variables.
const ROWS_PER_INSERT: usize = 500;

/// Any fixed number: the PostgreSQL advisory lock that makes appends from
/// several nodes take turns, so that none reads a chain head another is
/// about to extend.
const CHAIN_LOCK: i64 = 0x6b6c_7569_7361;

impl Store {
    /// Appends events to the chain, in one transaction.
    pub fn audit(&self, events: &[AuditEvent], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.audit_batches(&[(events, now)])
    }

    /// Appends several requests' events, each batch at its own time, in one
    /// transaction: one turn on the chain for many requests (the server
    /// groups concurrent requests' trails this way). Nodes take turns
    /// through an advisory lock on PostgreSQL and `BEGIN IMMEDIATE` on
    /// SQLite; a node without the lock that collides on the sequence
    /// number retries.
    pub fn audit_batches(
        &self,
        batches: &[(&[AuditEvent], DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if batches.iter().all(|(events, _)| events.is_empty()) {
            return Ok(());
        }
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let mut connection = self.connection()?;
            let result = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
                if self.backend() == crate::Backend::Postgresql {
                    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
                        .execute(c)?;
                }
                use s::audit_log::dsl as a;
                let last: Option<(i64, String)> = a::audit_log
                    .order(a::seq.desc())
                    .select((a::seq, a::hash))
                    .first(c)
                    .optional()?;
                let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_owned()));
                let mut rows = Vec::new();
                for (events, at) in batches {
                    let at = db_instant(*at);
                    for event in *events {
                        seq += 1;
                        let hash = chain_hash(&prev, seq, at, event);
                        rows.push((
                            a::seq.eq(seq),
                            a::at.eq(at),
                            a::principal.eq(&event.principal),
                            a::action.eq(&event.action),
                            a::object.eq(&event.object),
                            a::fields.eq(&event.fields),
                            a::venue_id.eq(&event.venue_id),
                            a::prev_hash.eq(prev),
                            a::hash.eq(hash.clone()),
                        ));
                        prev = hash;
                    }
                }
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(a::audit_log).values(chunk).execute(c)?;
                }
                Ok::<_, StoreError>(())
            }));
            match result {
                Err(error) if error.is_unique_violation() => {
                    last_error = Some(StoreError::Race("audit sequence"));
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or(StoreError::Race("audit sequence")))
    }

    /// Entries, newest first, after a sequence number (older than it).
    pub fn audit_entries(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::audit_log::dsl as a;
            let mut query = a::audit_log.order(a::seq.desc()).limit(limit).into_boxed();
            if let Some(before) = before {
                query = query.filter(a::seq.lt(before));
            }
            if let Some(principal) = &filter.principal {
                query = query.filter(a::principal.eq(principal.clone()));
            }
            if let Some(object) = &filter.object {
                query = query.filter(a::object.eq(object.clone()));
            }
            if let Some(action) = &filter.action {
                query = query.filter(a::action.eq(action.clone()));
            }
            if !filter.objects.is_empty() {
                query = query.filter(a::object.eq_any(filter.objects.clone()));
            }
            if let Some(venues) = &filter.venues {
                query = query.filter(a::venue_id.eq_any(venues.clone()));
            }
            query.load::<AuditEntry>(c)?
        }))
    }

    /// Walks the whole chain; the first broken link, if any.
    pub fn verify_audit(&self) -> Result<(u64, Option<BrokenLink>), StoreError> {
        let mut connection = self.connection()?;
        let entries: Vec<AuditEntry> = on_backend!(&mut *connection, |c, s| s::audit_log::table
            .order(s::audit_log::seq)
            .load::<AuditEntry>(c)?);
        let mut prev = GENESIS.to_owned();
        for (expected, entry) in (1i64..).zip(entries.iter()) {
            if entry.seq != expected || entry.prev_hash != prev {
                return Ok((
                    entries.len() as u64,
                    Some(BrokenLink::Missing {
                        seq: entry.seq,
                        expected,
                    }),
                ));
            }
            let event = AuditEvent {
                principal: entry.principal.clone(),
                action: entry.action.clone(),
                object: entry.object.clone(),
                fields: entry.fields.clone(),
                venue_id: entry.venue_id.clone(),
            };
            if chain_hash(&prev, entry.seq, entry.at, &event) != entry.hash {
                return Ok((
                    entries.len() as u64,
                    Some(BrokenLink::Modified { seq: entry.seq }),
                ));
            }
            prev = entry.hash.clone();
        }
        Ok((entries.len() as u64, None))
    }
}
