//! The audit trail: append-only, chained entries of who read or changed
//! which personal data. Ids and field names only.
//!
//! One entry per request (or per job step): it names every object read or
//! changed, with the fields of each, in the side table `audit_objects`
//! (indexed by object, so "who saw guest X" is one indexed query). Each
//! entry carries an HMAC-SHA256 under a key derived from the master key
//! over its content, its objects and the previous entry's HMAC: someone who
//! can write the database but holds no master key can neither edit nor
//! delete an entry, nor recompute the chain after doing so. Removing the
//! newest entries leaves a valid chain; that is detected against a head
//! published earlier (`kluis audit verify --head SEQ:HMAC`).
//!
//! Entries written before the chain was keyed keep their plain SHA-256
//! links (`legacy_hash`); the anchor row records where they end, and its
//! own HMAC (written when the migration that introduced it ran) binds
//! their last hash, so rewriting them is detected too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::{Field, KeyRing};
use sha2::{Digest, Sha256};

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// The migration that keyed the chain; its anchor is sealed right after.
pub(crate) const ANCHOR_MIGRATION: &str = "20261201000075";

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to an object an audit entry names. The names are the
/// trail's vocabulary: stored as they are, filtered on by `auditLog` and
/// counted by the monitoring rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
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

impl AuditAction {
    pub const ALL: [Self; 9] = [
        Self::Read,
        Self::Lookup,
        Self::Export,
        Self::Correct,
        Self::Erase,
        Self::Notify,
        Self::ReissueToken,
        Self::Rotate,
        Self::Retire,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Lookup => "lookup",
            Self::Export => "export",
            Self::Correct => "correct",
            Self::Erase => "erase",
            Self::Notify => "notify",
            Self::ReissueToken => "reissue_token",
            Self::Rotate => "rotate",
            Self::Retire => "retire",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields the rights and notices name, in one place: what an entry
/// says was read or changed when it is not one GraphQL field.
pub mod fields {
    /// What an erasure or anonymization destroys.
    pub const ERASED: &str = "name,email,phone,notes,card";
    /// What an export hands over.
    pub const EXPORTED: &str = "profile,reservations,consents,payments";
    /// What a correction replaces.
    pub const CORRECTED: &str = "name,email,phone";
    /// What a breach notice uses.
    pub const NOTIFIED: &str = "name,email";
    /// What reissuing a manage token changes.
    pub const MANAGE_TOKEN: &str = "manage_token";
}

/// One object read or changed, as callers report it. The events of one
/// `audit` call (or one batch) with the same principal become one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// `anonymous`, `guest`, `user:<id>`, `apikey:<id>`, `cli`.
    pub principal: String,
    pub action: AuditAction,
    /// `guest:<id>` or `reservation:<id>`.
    pub object: String,
    /// Field names, e.g. `guestName,notes`.
    pub fields: String,
    pub venue_id: Option<String>,
}

/// One object an entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditObject {
    pub action: String,
    pub object: String,
    pub fields: String,
    pub venue_id: Option<String>,
}

/// A stored entry: one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub principal: String,
    /// The actions of its objects, each once, in order.
    pub action: String,
    /// The venue of every object, when they share one.
    pub venue_id: Option<String>,
    pub objects: Vec<AuditObject>,
    pub prev_hash: String,
    pub hash: String,
}

/// One object as a row of the side table: what the guest's export lists
/// (the other objects of the same entry are not theirs to see).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AuditAccess {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub principal: String,
    pub action: String,
    pub object: String,
    pub fields: String,
}

/// A published chain head: the newest entry's sequence number and HMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

impl AuditHead {
    /// `SEQ:HMAC`, as the head is published and given to `verify --head`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (seq, hash) = raw.trim().split_once(':')?;
        let seq = seq.parse::<i64>().ok().filter(|s| *s >= 0)?;
        let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// The plain SHA-256 link of an entry written before the chain was keyed
/// (then one object per entry).
pub fn legacy_hash(prev: &str, seq: i64, at: DateTime<Utc>, event: &AuditEvent) -> String {
    legacy_hash_of(
        prev,
        seq,
        at,
        [
            &event.principal,
            event.action.as_str(),
            &event.object,
            &event.fields,
            event.venue_id.as_deref().unwrap_or(""),
        ],
    )
}

/// The SHA-256 link over an entry's parts as stored: principal, action,
/// object, fields and venue (empty for none). Stored actions are read as
/// written, whatever vocabulary they were written in.
fn legacy_hash_of(prev: &str, seq: i64, at: DateTime<Utc>, parts: [&str; 5]) -> String {
    let mut hasher = Sha256::new();
    for part in [prev, &seq.to_string(), &at.to_rfc3339()]
        .into_iter()
        .chain(parts)
    {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

/// Appends `part` with its length first, so that no two different part
/// lists encode the same bytes.
fn push_part(encoded: &mut Vec<u8>, part: &[u8]) {
    encoded.extend_from_slice(&(part.len() as u64).to_be_bytes());
    encoded.extend_from_slice(part);
}

fn optional(part: Option<&str>) -> Vec<u8> {
    // `None` and `Some("")` must differ.
    part.map_or_else(|| vec![0], |p| [&[1], p.as_bytes()].concat())
}

/// The HMAC of an entry: everything in it, every object it names, the key
/// version and the previous entry's HMAC.
pub fn entry_hmac(ring: &KeyRing, version: u32, entry: &AuditEntry) -> Result<String, StoreError> {
    let mut data = Vec::with_capacity(256);
    push_part(&mut data, b"kluis audit entry v2");
    push_content(&mut data, entry);
    Ok(hex::encode(ring.keyed_hash(
        version,
        Field::AUDIT_CHAIN,
        &data,
    )?))
}

/// Everything an entry says (its link to the previous one included), in
/// the encoding its HMAC covers; the checkpoint digest reuses it.
fn push_content(data: &mut Vec<u8>, entry: &AuditEntry) {
    push_part(data, entry.prev_hash.as_bytes());
    push_part(data, &entry.seq.to_be_bytes());
    push_part(data, entry.at.to_rfc3339().as_bytes());
    push_part(data, entry.principal.as_bytes());
    push_part(data, entry.action.as_bytes());
    push_part(data, &optional(entry.venue_id.as_deref()));
    push_part(data, &(entry.objects.len() as u64).to_be_bytes());
    for object in &entry.objects {
        push_part(data, object.action.as_bytes());
        push_part(data, object.object.as_bytes());
        push_part(data, object.fields.as_bytes());
        push_part(data, &optional(object.venue_id.as_deref()));
    }
}

/// The HMAC of the anchor: where the SHA-256 part of the chain ends.
fn anchor_mac(
    ring: &KeyRing,
    version: u32,
    until_seq: i64,
    until_hash: &str,
) -> Result<String, StoreError> {
    let mut data = Vec::with_capacity(96);
    push_part(&mut data, b"kluis audit anchor v2");
    push_part(&mut data, &until_seq.to_be_bytes());
    push_part(&mut data, until_hash.as_bytes());
    Ok(hex::encode(ring.keyed_hash(
        version,
        Field::AUDIT_CHAIN,
        &data,
    )?))
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenLink {
    /// The entry's hash does not match its content or its objects
    /// (modified).
    Modified { seq: i64 },
    /// Entries are missing before this one (deleted), or it does not
    /// point at the previous entry's hash.
    Missing { seq: i64, expected: i64 },
    /// The chain ends before a head published earlier: its newest
    /// entries were removed.
    Truncated { head: i64, last: i64 },
    /// The anchor of the older SHA-256 entries is missing, unsealed or
    /// does not match them.
    Anchor,
    /// The entries up to `until` no longer match the checkpoint that
    /// vouches for them (an entry there was edited, removed or replaced),
    /// or the checkpoint itself was tampered with.
    Checkpoint { until: i64 },
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Modified { seq } => write!(f, "entry {seq} was modified"),
            Self::Missing { seq, expected } => write!(
                f,
                "at entry {seq}: entry {expected} is missing or was altered"
            ),
            Self::Truncated { head, last } => write!(
                f,
                "it ends at entry {last}, before the published head {head} (its newest entries were removed)"
            ),
            Self::Anchor => write!(
                f,
                "the anchor of its older entries is missing or does not match them"
            ),
            Self::Checkpoint { until } => write!(
                f,
                "the entries up to {until} no longer match the checkpoint that vouches for them, or the checkpoint was altered"
            ),
        }
    }
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// The newest entry, to publish or compare.
    pub head: Option<AuditHead>,
    pub broken: Option<BrokenLink>,
}

/// Filters for reading the trail.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub principal: Option<String>,
    /// Entries naming this object.
    pub object: Option<String>,
    /// Entries naming an object with this action.
    pub action: Option<String>,
    /// Entries of these venues only: those whose every object is of one of
    /// them (none: every entry, those of no venue or several included).
    pub venues: Option<Vec<String>>,
}

const ATTEMPTS: usize = 5;

/// Rows per insert statement: within SQLite's limit of bound variables.
const ROWS_PER_INSERT: usize = 500;

/// Any fixed number: the PostgreSQL advisory lock that makes appends from
/// several nodes take turns, so that none reads a chain head another is
/// about to extend.
const CHAIN_LOCK: i64 = 0x6b6c_7569_7361;

/// Turns a request's events into entries: one per principal (a request
/// has one; a job step may name several), objects in the order given.
fn entries_of(events: &[AuditEvent]) -> Vec<(String, Vec<AuditObject>)> {
    let mut entries: Vec<(String, Vec<AuditObject>)> = Vec::new();
    for event in events {
        let object = AuditObject {
            action: event.action.as_str().to_owned(),
            object: event.object.clone(),
            fields: event.fields.clone(),
            venue_id: event.venue_id.clone(),
        };
        match entries.iter_mut().find(|(p, _)| *p == event.principal) {
            Some((_, objects)) => objects.push(object),
            None => entries.push((event.principal.clone(), vec![object])),
        }
    }
    entries
}

/// The actions of `objects`, each once, in order.
fn actions_of(objects: &[AuditObject]) -> String {
    let mut actions: Vec<&str> = Vec::new();
    for object in objects {
        if !actions.contains(&object.action.as_str()) {
            actions.push(&object.action);
        }
    }
    actions.join(",")
}

/// The venue every object shares, if they share one.
fn venue_of(objects: &[AuditObject]) -> Option<String> {
    let first = objects.first()?.venue_id.clone()?;
    objects
        .iter()
        .all(|o| o.venue_id.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// The columns of an [`EntryRow`], in its order, from `audit_log` as `$a`.
macro_rules! entry_columns {
    ($a:ident) => {
        (
            $a::seq,
            $a::at,
            $a::principal,
            $a::action,
            $a::venue_id,
            $a::prev_hash,
            $a::hash,
            $a::key_version,
        )
    };
}

type EntryRow = (
    i64,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    String,
    String,
    i32,
);
type ObjectRow = (
    i64,
    i32,
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    Option<String>,
);
/// Where the SHA-256 entries end: sequence number, hash, key version, HMAC.
type AnchorRow = (i64, String, i32, String);
/// The newest checkpoint: up to which entry, its HMAC there, the digest of
/// every entry up to it, the key version and the checkpoint's own HMAC.
type CheckpointRow = (i64, String, String, i32, String);

/// Up to which entry a checkpoint or the anchor reaches, and the key
/// version its HMAC is made with.
type Sealing = (i64, i32);

/// What [`Store::checkpoint_audit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpointed {
    /// The trail holds; a checkpoint up to this entry (0: none yet) is
    /// sealed with the current key version.
    Written { until_seq: i64, key_version: u32 },
    /// The trail is broken: no checkpoint vouches for it.
    Broken(BrokenLink),
}

impl Store {
    /// Appends events to the chain as one entry (per principal), in one
    /// transaction.
    pub fn audit(&self, events: &[AuditEvent], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.audit_batches(&[(events, now)])
    }

    /// Appends several requests' events, each batch one entry at its own
    /// time, in one transaction: one turn on the chain for many requests
    /// (the server groups concurrent requests' trails this way). Nodes
    /// take turns through an advisory lock on PostgreSQL and `BEGIN
    /// IMMEDIATE` on SQLite; a node without the lock that collides on the
    /// sequence number retries.
    pub fn audit_batches(
        &self,
        batches: &[(&[AuditEvent], DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if batches.iter().all(|(events, _)| events.is_empty()) {
            return Ok(());
        }
        let ring = self.keys().current();
        let version = ring.current_version();
        let key_version =
            i32::try_from(version).map_err(|_| StoreError::Corrupt("a key version".to_owned()))?;
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let mut connection = self.connection()?;
            let result = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
                if self.backend() == crate::Backend::Postgresql {
                    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})"))
                        .execute(c)?;
                }
                use s::audit_log::dsl as a;
                use s::audit_objects::dsl as o;
                let last: Option<(i64, String)> = a::audit_log
                    .order(a::seq.desc())
                    .select((a::seq, a::hash))
                    .first(c)
                    .optional()?;
                let (mut seq, mut prev) = last.unwrap_or((0, GENESIS.to_owned()));
                let mut entries = Vec::new();
                let mut objects = Vec::new();
                for (events, at) in batches {
                    let at = db_instant(*at);
                    for (principal, named) in entries_of(events) {
                        seq += 1;
                        let entry = AuditEntry {
                            seq,
                            at,
                            action: actions_of(&named),
                            venue_id: venue_of(&named),
                            principal,
                            objects: named,
                            prev_hash: prev,
                            hash: String::new(),
                        };
                        let hash = entry_hmac(&ring, version, &entry)?;
                        for (position, object) in (0i32..).zip(&entry.objects) {
                            objects.push((
                                o::seq.eq(seq),
                                o::position.eq(position),
                                o::at.eq(at),
                                o::principal.eq(entry.principal.clone()),
                                o::action.eq(object.action.clone()),
                                o::object.eq(object.object.clone()),
                                o::fields.eq(object.fields.clone()),
                                o::venue_id.eq(object.venue_id.clone()),
                            ));
                        }
                        entries.push((
                            a::seq.eq(seq),
                            a::at.eq(at),
                            a::principal.eq(entry.principal),
                            a::action.eq(entry.action),
                            a::venue_id.eq(entry.venue_id),
                            a::prev_hash.eq(entry.prev_hash),
                            a::hash.eq(hash.clone()),
                            a::key_version.eq(key_version),
                        ));
                        prev = hash;
                    }
                }
                for chunk in entries.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(a::audit_log).values(chunk).execute(c)?;
                }
                for chunk in objects.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(o::audit_objects)
                        .values(chunk)
                        .execute(c)?;
                }
                Ok::<_, StoreError>(())
            }));
            match result {
                Err(error) if error.is_unique_violation() => {
                    last_error = Some(StoreError::Race(crate::Race::AuditSequence));
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or(StoreError::Race(crate::Race::AuditSequence)))
    }

    /// Seals the anchor of the SHA-256 entries with the HMAC key: when it is
    /// unsealed and nothing was appended after it. `migrate` calls it right
    /// after the migration that records the anchor, and only then. Returns
    /// whether it sealed.
    pub fn seal_audit_anchor(&self) -> Result<bool, StoreError> {
        let ring = self.keys().current();
        let version = ring.current_version();
        let key_version =
            i32::try_from(version).map_err(|_| StoreError::Corrupt("a key version".to_owned()))?;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::audit_anchor::dsl as n;
            use s::audit_log::dsl as a;
            let anchor: Option<(i64, String, String)> = n::audit_anchor
                .find(1)
                .select((n::until_seq, n::until_hash, n::mac))
                .first(c)
                .optional()?;
            let Some((until_seq, until_hash, mac)) = anchor else {
                return Ok(false);
            };
            let newest: Option<i64> = a::audit_log.select(diesel::dsl::max(a::seq)).first(c)?;
            if !mac.is_empty() || newest.unwrap_or(0) != until_seq {
                return Ok(false);
            }
            let mac = anchor_mac(&ring, version, until_seq, &until_hash)?;
            diesel::update(n::audit_anchor.find(1))
                .set((n::mac.eq(mac), n::key_version.eq(key_version)))
                .execute(c)?;
            Ok::<_, StoreError>(true)
        }))
    }

    /// The newest entry: what is published as the chain head.
    pub fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        let mut connection = self.connection()?;
        let head: Option<(i64, String)> = on_backend!(&mut *connection, |c, s| {
            use s::audit_log::dsl as a;
            a::audit_log
                .order(a::seq.desc())
                .select((a::seq, a::hash))
                .first(c)
                .optional()?
        });
        Ok(head.map(|(seq, hash)| AuditHead { seq, hash }))
    }

    /// Entries, newest first, older than `before`. An object or action
    /// filter starts from the side table's index.
    pub fn audit_entries(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut connection = self.connection()?;
        let (rows, objects): (Vec<EntryRow>, Vec<ObjectRow>) =
            on_backend!(&mut *connection, |c, s| {
                use s::audit_log::dsl as a;
                use s::audit_objects::dsl as o;
                let rows: Vec<EntryRow> = if filter.object.is_some() || filter.action.is_some() {
                    let mut query = o::audit_objects
                        .inner_join(a::audit_log)
                        .select(entry_columns!(a))
                        .distinct()
                        .order(a::seq.desc())
                        .limit(limit)
                        .into_boxed();
                    if let Some(object) = &filter.object {
                        query = query.filter(o::object.eq(object.clone()));
                    }
                    if let Some(action) = &filter.action {
                        query = query.filter(o::action.eq(action.clone()));
                    }
                    if let Some(before) = before {
                        query = query.filter(o::seq.lt(before));
                    }
                    if let Some(principal) = &filter.principal {
                        query = query.filter(o::principal.eq(principal.clone()));
                    }
                    if let Some(venues) = &filter.venues {
                        query = query.filter(a::venue_id.eq_any(venues.clone()));
                    }
                    query.load(c)?
                } else {
                    let mut query = a::audit_log
                        .select(entry_columns!(a))
                        .order(a::seq.desc())
                        .limit(limit)
                        .into_boxed();
                    if let Some(before) = before {
                        query = query.filter(a::seq.lt(before));
                    }
                    if let Some(principal) = &filter.principal {
                        query = query.filter(a::principal.eq(principal.clone()));
                    }
                    if let Some(venues) = &filter.venues {
                        query = query.filter(a::venue_id.eq_any(venues.clone()));
                    }
                    query.load(c)?
                };
                let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
                let mut objects = Vec::new();
                for chunk in seqs.chunks(ROWS_PER_INSERT) {
                    objects.extend(
                        o::audit_objects
                            .filter(o::seq.eq_any(chunk.to_vec()))
                            .order((o::seq, o::position))
                            .select((
                                o::seq,
                                o::position,
                                o::at,
                                o::principal,
                                o::action,
                                o::object,
                                o::fields,
                                o::venue_id,
                            ))
                            .load::<ObjectRow>(c)?,
                    );
                }
                (rows, objects)
            });
        let mut by_seq = group_objects(objects);
        Ok(rows
            .into_iter()
            .map(|row| {
                let objects = by_seq.remove(&row.0).unwrap_or_default();
                entry_of(row, objects.into_iter().map(|(_, o)| o).collect())
            })
            .collect())
    }

    /// How many entries `audit_entries` pages through under `filter`.
    pub fn audit_count(&self, filter: &AuditFilter) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::audit_log::dsl as a;
            use s::audit_objects::dsl as o;
            if filter.object.is_some() || filter.action.is_some() {
                let mut query = o::audit_objects
                    .inner_join(a::audit_log)
                    .select(diesel::dsl::count(a::seq).aggregate_distinct())
                    .into_boxed();
                if let Some(object) = &filter.object {
                    query = query.filter(o::object.eq(object.clone()));
                }
                if let Some(action) = &filter.action {
                    query = query.filter(o::action.eq(action.clone()));
                }
                if let Some(principal) = &filter.principal {
                    query = query.filter(o::principal.eq(principal.clone()));
                }
                if let Some(venues) = &filter.venues {
                    query = query.filter(a::venue_id.eq_any(venues.clone()));
                }
                query.first::<i64>(c)?
            } else {
                let mut query = a::audit_log.count().into_boxed();
                if let Some(principal) = &filter.principal {
                    query = query.filter(a::principal.eq(principal.clone()));
                }
                if let Some(venues) = &filter.venues {
                    query = query.filter(a::venue_id.eq_any(venues.clone()));
                }
                query.get_result::<i64>(c)?
            }
        }))
    }

    /// Every access to the given objects, newest first: one row per object
    /// an entry names (one indexed query on the side table).
    pub fn audit_accesses(
        &self,
        objects: &[String],
        limit: i64,
    ) -> Result<Vec<AuditAccess>, StoreError> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::audit_objects::dsl as o;
            o::audit_objects
                .filter(o::object.eq_any(objects.to_vec()))
                .order((o::seq.desc(), o::position))
                .limit(limit)
                .select((o::seq, o::at, o::principal, o::action, o::object, o::fields))
                .load::<AuditAccess>(c)?
        }))
    }

    /// Walks the whole chain; the first broken link, if any. With `head`
    /// (published earlier), the chain must also still reach it unchanged:
    /// otherwise its newest entries were removed or rewritten.
    pub fn verify_audit(&self, head: Option<&AuditHead>) -> Result<Verification, StoreError> {
        let ring = self.keys().current();
        let trail = self.load_trail()?;
        let entries = trail.rows.len() as u64;
        let newest = trail.rows.last().map(|row| AuditHead {
            seq: row.0,
            hash: row.6.clone(),
        });
        let broken = walk(&ring, trail, head)?.broken;
        Ok(Verification {
            entries,
            head: newest,
            broken,
        })
    }

    /// Walks the whole chain and, when it holds, seals a checkpoint up to
    /// its newest entry with the current key version: from then on the
    /// entries it covers verify without the key versions their HMACs were
    /// made with, so those versions can be retired. A broken trail gets no
    /// checkpoint (it would vouch for the tampering).
    pub fn checkpoint_audit(&self, now: DateTime<Utc>) -> Result<Checkpointed, StoreError> {
        let ring = self.keys().current();
        let version = ring.current_version();
        let key_version =
            i32::try_from(version).map_err(|_| StoreError::Corrupt("a key version".to_owned()))?;
        let trail = self.load_trail()?;
        let walked = walk(&ring, trail, None)?;
        if let Some(broken) = walked.broken {
            return Ok(Checkpointed::Broken(broken));
        }
        let (until_seq, until_hash) = walked.last;
        let digest = hex::encode(walked.digest.finalize());
        let mac = checkpoint_mac(&ring, version, until_seq, &until_hash, &digest)?;
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::audit_checkpoints::dsl as k;
            diesel::delete(k::audit_checkpoints.filter(k::until_seq.eq(until_seq))).execute(c)?;
            diesel::insert_into(k::audit_checkpoints)
                .values((
                    k::until_seq.eq(until_seq),
                    k::until_hash.eq(&until_hash),
                    k::digest.eq(&digest),
                    k::key_version.eq(key_version),
                    k::mac.eq(&mac),
                    k::created_at.eq(now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        }))?;
        Ok(Checkpointed::Written {
            until_seq,
            key_version: version,
        })
    }

    /// How much of the trail can only be verified with key `version`:
    /// entries whose HMAC is made with it and that no checkpoint covers,
    /// plus one each for the newest checkpoint and the anchor when they
    /// are sealed with it (and, for the anchor, not covered).
    pub(crate) fn audit_needs(&self, version: u32) -> Result<u64, StoreError> {
        let db =
            i32::try_from(version).map_err(|_| StoreError::Corrupt("a key version".to_owned()))?;
        let mut connection = self.connection()?;
        // (until which entry, sealed with which key version) of each.
        let (checkpoint, anchor): (Option<Sealing>, Option<Sealing>) =
            on_backend!(&mut *connection, |c, s| {
                use s::audit_anchor::dsl as n;
                use s::audit_checkpoints::dsl as k;
                let checkpoint = k::audit_checkpoints
                    .order(k::until_seq.desc())
                    .select((k::until_seq, k::key_version))
                    .first(c)
                    .optional()?;
                let anchor = n::audit_anchor
                    .find(1)
                    .select((n::until_seq, n::key_version))
                    .first(c)
                    .optional()?;
                (checkpoint, anchor)
            });
        let covered = checkpoint.map_or(-1, |(until, _)| until);
        let entries: i64 = on_backend!(&mut *connection, |c, s| {
            use s::audit_log::dsl as a;
            a::audit_log
                .filter(a::key_version.eq(db))
                .filter(a::seq.gt(covered))
                .count()
                .get_result(c)?
        });
        let mut needs = u64::try_from(entries).unwrap_or(0);
        if checkpoint.is_some_and(|(_, v)| v == db) {
            needs += 1;
        }
        if anchor.is_some_and(|(until, v)| v == db && until > covered) {
            needs += 1;
        }
        Ok(needs)
    }

    /// The anchor, the newest checkpoint, every entry and every object.
    fn load_trail(&self) -> Result<Trail, StoreError> {
        let mut connection = self.connection()?;
        let (anchor, checkpoint, rows, objects): (
            Option<AnchorRow>,
            Option<CheckpointRow>,
            Vec<EntryRow>,
            Vec<ObjectRow>,
        ) = on_backend!(&mut *connection, |c, s| {
            use s::audit_anchor::dsl as n;
            use s::audit_checkpoints::dsl as k;
            use s::audit_log::dsl as a;
            use s::audit_objects::dsl as o;
            let checkpoint = k::audit_checkpoints
                .order(k::until_seq.desc())
                .select((
                    k::until_seq,
                    k::until_hash,
                    k::digest,
                    k::key_version,
                    k::mac,
                ))
                .first(c)
                .optional()?;
            let anchor = n::audit_anchor
                .find(1)
                .select((n::until_seq, n::until_hash, n::key_version, n::mac))
                .first(c)
                .optional()?;
            let rows = a::audit_log
                .order(a::seq)
                .select(entry_columns!(a))
                .load(c)?;
            let objects = o::audit_objects
                .order((o::seq, o::position))
                .select((
                    o::seq,
                    o::position,
                    o::at,
                    o::principal,
                    o::action,
                    o::object,
                    o::fields,
                    o::venue_id,
                ))
                .load(c)?;
            (anchor, checkpoint, rows, objects)
        });
        Ok(Trail {
            anchor,
            checkpoint,
            rows,
            objects: group_objects(objects),
        })
    }
}

/// The whole trail as stored.
struct Trail {
    anchor: Option<AnchorRow>,
    checkpoint: Option<CheckpointRow>,
    rows: Vec<EntryRow>,
    objects: BTreeMap<i64, Vec<(ObjectRow, AuditObject)>>,
}

/// What a walk found: the first broken place, the last entry reached and
/// the digest of every entry up to it (what a checkpoint seals).
struct Walked {
    broken: Option<BrokenLink>,
    last: (i64, String),
    digest: Sha256,
}

/// Feeds one entry, everything in it and its key version, into a
/// checkpoint digest.
fn digest_entry(digest: &mut Sha256, entry: &AuditEntry, key_version: i32) {
    let mut data = Vec::with_capacity(256);
    push_content(&mut data, entry);
    push_part(&mut data, entry.hash.as_bytes());
    push_part(&mut data, &key_version.to_be_bytes());
    digest.update(&data);
}

/// The HMAC of a checkpoint.
fn checkpoint_mac(
    ring: &KeyRing,
    version: u32,
    until_seq: i64,
    until_hash: &str,
    digest: &str,
) -> Result<String, StoreError> {
    let mut data = Vec::with_capacity(160);
    push_part(&mut data, b"kluis audit checkpoint v1");
    push_part(&mut data, &until_seq.to_be_bytes());
    push_part(&mut data, until_hash.as_bytes());
    push_part(&mut data, digest.as_bytes());
    Ok(hex::encode(ring.keyed_hash(
        version,
        Field::AUDIT_CHAIN,
        &data,
    )?))
}

/// The side table's rows by entry, each with its position.
fn group_objects(objects: Vec<ObjectRow>) -> BTreeMap<i64, Vec<(ObjectRow, AuditObject)>> {
    let mut by_seq: BTreeMap<i64, Vec<(ObjectRow, AuditObject)>> = BTreeMap::new();
    for row in objects {
        let object = AuditObject {
            action: row.4.clone(),
            object: row.5.clone(),
            fields: row.6.clone(),
            venue_id: row.7.clone(),
        };
        by_seq.entry(row.0).or_default().push((row, object));
    }
    by_seq
}

fn entry_of(row: EntryRow, objects: Vec<AuditObject>) -> AuditEntry {
    let (seq, at, principal, action, venue_id, prev_hash, hash, _) = row;
    AuditEntry {
        seq,
        at,
        principal,
        action,
        venue_id,
        objects,
        prev_hash,
        hash,
    }
}

/// Checks the anchor, the newest checkpoint, every link, every entry's
/// objects and the head. Entries a checkpoint covers whose HMAC key is
/// no longer held are checked through the checkpoint's digest instead.
fn walk(ring: &KeyRing, trail: Trail, head: Option<&AuditHead>) -> Result<Walked, StoreError> {
    let Trail {
        anchor,
        checkpoint,
        rows,
        mut objects,
    } = trail;
    let mut walked = Walked {
        broken: None,
        last: (0, GENESIS.to_owned()),
        digest: Sha256::new(),
    };
    let broken = |walked: Walked, link: BrokenLink| Walked {
        broken: Some(link),
        ..walked
    };
    let held = |version: u32| ring.versions().any(|v| v == version);
    // A checkpoint counts only when its HMAC holds under a key we hold.
    let checkpoint = match checkpoint {
        None => None,
        Some((until, until_hash, digest, version, mac)) => {
            let sealed = u32::try_from(version)
                .ok()
                .filter(|v| held(*v))
                .and_then(|v| checkpoint_mac(ring, v, until, &until_hash, &digest).ok())
                .is_some_and(|expected| expected == mac);
            if !sealed {
                return Ok(broken(walked, BrokenLink::Checkpoint { until }));
            }
            Some((until, until_hash, digest))
        }
    };
    let covered = checkpoint.as_ref().map_or(-1, |(until, _, _)| *until);
    let Some((until_seq, until_hash, anchor_version, mac)) = anchor else {
        return Ok(broken(walked, BrokenLink::Anchor));
    };
    // The anchor's own HMAC matters only while no checkpoint covers it.
    let sealed = until_seq <= covered
        || u32::try_from(anchor_version)
            .ok()
            .filter(|_| !mac.is_empty())
            .and_then(|version| anchor_mac(ring, version, until_seq, &until_hash).ok())
            .is_some_and(|expected| expected == mac);
    if !sealed {
        return Ok(broken(walked, BrokenLink::Anchor));
    }
    if until_seq == 0 && until_hash != GENESIS {
        return Ok(broken(walked, BrokenLink::Anchor));
    }
    if let Some((0, hash, _)) = &checkpoint
        && hash != GENESIS
    {
        return Ok(broken(walked, BrokenLink::Checkpoint { until: 0 }));
    }
    let mut prev = GENESIS.to_owned();
    let mut last = 0;
    let mut at_head = None;
    for (expected, row) in (1i64..).zip(rows) {
        let seq = row.0;
        if seq != expected || row.5 != prev {
            return Ok(broken(walked, BrokenLink::Missing { seq, expected }));
        }
        let stored_version = row.7;
        let key_version = u32::try_from(row.7).ok();
        let named = objects.remove(&seq).unwrap_or_default();
        // The side table repeats the entry's time and principal for the
        // monitoring rules: they must not say otherwise.
        let copies_agree = (0i32..)
            .zip(&named)
            .all(|(position, (o, _))| o.1 == position && o.2 == row.1 && o.3 == row.2);
        let entry = entry_of(row, named.into_iter().map(|(_, o)| o).collect());
        let holds = copies_agree
            && if seq <= until_seq {
                legacy_holds(&entry, &prev, until_seq, &until_hash)
            } else {
                // Version 0 marks the SHA-256 entries: never past the anchor.
                !entry.objects.is_empty()
                    && key_version.filter(|v| *v > 0).is_some_and(|v| {
                        if held(v) {
                            entry_hmac(ring, v, &entry).is_ok_and(|expected| expected == entry.hash)
                        } else {
                            // A retired key: only a checkpoint can vouch.
                            seq <= covered
                        }
                    })
            };
        if !holds {
            return Ok(broken(walked, BrokenLink::Modified { seq }));
        }
        digest_entry(&mut walked.digest, &entry, stored_version);
        if let Some((until, hash, digest)) = &checkpoint
            && seq == *until
        {
            let reached = hex::encode(walked.digest.clone().finalize());
            if entry.hash != *hash || reached != *digest {
                return Ok(broken(walked, BrokenLink::Checkpoint { until: *until }));
            }
        }
        if head.is_some_and(|h| h.seq == seq) {
            at_head = Some(entry.hash.clone());
        }
        prev = entry.hash;
        last = seq;
        walked.last = (last, prev.clone());
    }
    if last < until_seq {
        return Ok(broken(walked, BrokenLink::Anchor));
    }
    if last < covered {
        return Ok(broken(walked, BrokenLink::Checkpoint { until: covered }));
    }
    // Objects of no entry: added to make someone look like a reader.
    if let Some(seq) = objects.keys().next() {
        let seq = *seq;
        return Ok(broken(walked, BrokenLink::Modified { seq }));
    }
    if let Some(head) = head
        && head.seq > 0
    {
        if last < head.seq {
            return Ok(broken(
                walked,
                BrokenLink::Truncated {
                    head: head.seq,
                    last,
                },
            ));
        }
        // The chain holds, so another HMAC at the head's place means the
        // entries from there on were replaced.
        if at_head.as_deref() != Some(head.hash.as_str()) {
            return Ok(broken(walked, BrokenLink::Modified { seq: head.seq }));
        }
    }
    Ok(walked)
}

/// An entry written before the chain was keyed: one object, SHA-256, and
/// the last of them is the one the anchor names.
fn legacy_holds(entry: &AuditEntry, prev: &str, until_seq: i64, until_hash: &str) -> bool {
    let [object] = entry.objects.as_slice() else {
        return false;
    };
    let parts = [
        entry.principal.as_str(),
        object.action.as_str(),
        object.object.as_str(),
        object.fields.as_str(),
        object.venue_id.as_deref().unwrap_or(""),
    ];
    entry.action == object.action
        && entry.venue_id == object.venue_id
        && legacy_hash_of(prev, entry.seq, entry.at, parts) == entry.hash
        && (entry.seq != until_seq || entry.hash == until_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, venue: Option<&str>) -> AuditObject {
        AuditObject {
            action: "read".to_owned(),
            object: name.to_owned(),
            fields: "guestName".to_owned(),
            venue_id: venue.map(str::to_owned),
        }
    }

    fn entry(objects: Vec<AuditObject>) -> AuditEntry {
        AuditEntry {
            seq: 7,
            at: DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            principal: "user:a".to_owned(),
            action: actions_of(&objects),
            venue_id: venue_of(&objects),
            objects,
            prev_hash: GENESIS.to_owned(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_action_reads_back_as_itself() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("write"), None);
    }

    #[test]
    fn the_hmac_covers_every_object_and_their_order() {
        let ring = KeyRing::for_testing(1);
        let both = entry(vec![object("guest:a", None), object("guest:b", None)]);
        let swapped = entry(vec![object("guest:b", None), object("guest:a", None)]);
        let fewer = entry(vec![object("guest:a", None)]);
        let mac = entry_hmac(&ring, 1, &both).unwrap();
        assert_eq!(mac.len(), 64);
        assert_eq!(mac, entry_hmac(&ring, 1, &both).unwrap());
        assert_ne!(mac, entry_hmac(&ring, 1, &swapped).unwrap());
        assert_ne!(mac, entry_hmac(&ring, 1, &fewer).unwrap());
    }

    #[test]
    fn another_master_key_gives_another_chain() {
        let ours = KeyRing::for_testing(1);
        let theirs = KeyRing::new(vec![(1, [7u8; 64])]).unwrap();
        let one = entry(vec![object("guest:a", None)]);
        assert_ne!(
            entry_hmac(&ours, 1, &one).unwrap(),
            entry_hmac(&theirs, 1, &one).unwrap()
        );
        assert_ne!(
            anchor_mac(&ours, 1, 3, GENESIS).unwrap(),
            anchor_mac(&theirs, 1, 3, GENESIS).unwrap()
        );
    }

    #[test]
    fn no_venue_and_an_empty_venue_differ() {
        let ring = KeyRing::for_testing(1);
        let none = entry(vec![object("guest:a", None)]);
        let empty = entry(vec![object("guest:a", Some(""))]);
        assert_ne!(
            entry_hmac(&ring, 1, &none).unwrap(),
            entry_hmac(&ring, 1, &empty).unwrap()
        );
    }

    #[test]
    fn an_entry_has_a_venue_only_when_every_object_shares_it() {
        assert_eq!(
            venue_of(&[object("a", Some("v")), object("b", Some("v"))]),
            Some("v".to_owned())
        );
        assert_eq!(
            venue_of(&[object("a", Some("v")), object("b", Some("w"))]),
            None
        );
        assert_eq!(venue_of(&[object("a", Some("v")), object("b", None)]), None);
    }

    #[test]
    fn a_head_parses_from_seq_and_hmac_only() {
        let hash = "ab".repeat(32);
        assert_eq!(
            AuditHead::parse(&format!("12:{hash}")),
            Some(AuditHead {
                seq: 12,
                hash: hash.clone()
            })
        );
        assert_eq!(
            AuditHead::parse(&format!("12:{}", hash.to_uppercase())).map(|h| h.hash),
            Some(hash.clone())
        );
        for bad in [
            "12".to_owned(),
            format!("-1:{hash}"),
            format!("x:{hash}"),
            "12:abc".to_owned(),
            format!("12:{}", "zz".repeat(32)),
        ] {
            assert_eq!(AuditHead::parse(&bad), None, "{bad}");
        }
    }
}
