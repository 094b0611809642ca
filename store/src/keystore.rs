//! The key store: each guest's data key, wrapped under the master key ring,
//! in a database of its own (an SQLite file, or a PostgreSQL database or
//! schema), and the record of every erasure. Destroying a guest's key here
//! makes every copy of their sealed fields unreadable: backups, replicas
//! and stale write-ahead-log frames of the data database alike. The record
//! of erasures lets a restored data backup have them applied again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::crypto::{DataKey, KeyRing};

use crate::connection::{self, Backend, DatabaseUrl, DbConnection, Pool};
use crate::guests::db_version;
use crate::rows::db_instant;
use crate::{StoreError, WriteTransaction};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/keystore-sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../migrations/keystore-postgres");

/// Ids per `IN (…)` list: within SQLite's limit of bound variables.
const IDS_PER_QUERY: usize = 500;

/// Wrapped keys re-wrapped per transaction during a rotation.
const REWRAP_BATCH: i64 = 500;

/// Why a guest's data was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureReason {
    /// The guest (or staff for them) asked.
    Request,
    /// The venue's retention limit passed.
    Retention,
}

impl ErasureReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Retention => "retention",
        }
    }
}

/// Runs Diesel code against the key store's backend, with `$schema` naming
/// that backend's key-store tables.
macro_rules! on_key_store {
    ($connection:expr, |$c:ident, $schema:ident| $body:expr) => {
        match $connection {
            DbConnection::Postgresql($c) => {
                use crate::schema::key_store_pg as $schema;
                $body
            }
            DbConnection::Sqlite($c) => {
                use crate::schema::key_store_sqlite as $schema;
                $body
            }
        }
    };
}

/// The handle to the key store.
#[derive(Clone)]
pub struct KeyStore {
    pool: Pool,
    backend: Backend,
}

/// The data keys of some guests, opened for one request or batch, and which
/// of those guests' keys were destroyed by an erasure.
#[derive(Default)]
pub struct GuestKeys {
    keys: HashMap<String, DataKey>,
    shredded: HashSet<String>,
}

/// How one guest's sealed fields open.
#[derive(Clone, Copy)]
pub enum GuestAccess<'a> {
    /// Under the key ring's column keys (records from before data keys).
    Ring,
    /// Under the guest's data key.
    Key(&'a DataKey),
    /// The guest's data key was destroyed: nothing of theirs opens, and
    /// the record reads as erased.
    Shredded,
}

impl GuestKeys {
    /// How the fields of a guest open; `uses_data_key` is the record's own
    /// marker. A record sealed under a data key the store does not hold,
    /// and whose erasure it has not recorded, means the key store is not
    /// the one this data was written with: an error, never "erased".
    pub fn access(
        &self,
        guest_id: &str,
        uses_data_key: bool,
    ) -> Result<GuestAccess<'_>, StoreError> {
        match self.keys.get(guest_id) {
            Some(key) => Ok(GuestAccess::Key(key)),
            None if self.shredded.contains(guest_id) => Ok(GuestAccess::Shredded),
            None if uses_data_key => Err(StoreError::KeyMismatch(
                "the key store holds no data key for a guest of this database; \
                 is key_store_url the key store this data was written with?"
                    .to_owned(),
            )),
            None => Ok(GuestAccess::Ring),
        }
    }

    pub fn key(&self, guest_id: &str) -> Option<&DataKey> {
        self.keys.get(guest_id)
    }
}

impl KeyStore {
    /// Connects (failing with the driver's own reason) and builds the pool.
    pub fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Self, StoreError> {
        Ok(Self {
            pool: connection::build_pool(url, pool_size)?,
            backend: url.backend(),
        })
    }

    fn connection(
        &self,
    ) -> Result<diesel::r2d2::PooledConnection<connection::ConnectionManager>, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Applies the key store's pending migrations.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection()?;
        let applied = match &mut *connection {
            DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(|error| StoreError::Migration(format!("key store: {error}")))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    }

    /// Makes a new data key for a guest and stores it wrapped.
    pub fn create_key(
        &self,
        ring: &KeyRing,
        guest_id: &str,
        now: DateTime<Utc>,
    ) -> Result<DataKey, StoreError> {
        let key = DataKey::generate()?;
        let wrapped = ring.wrap_data_key(guest_id, &key)?;
        let version = db_version(ring.current_version());
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_key_store!(&mut *connection, |c, s| {
            use s::data_keys::dsl as k;
            diesel::insert_into(k::data_keys)
                .values((
                    k::guest_id.eq(guest_id),
                    k::key_version.eq(version),
                    k::wrapped.eq(&wrapped),
                    k::created_at.eq(now),
                ))
                .execute(c)?;
        });
        Ok(key)
    }

    /// New data keys for many guests at once (bulk loads), in multi-row
    /// inserts of one transaction.
    pub fn create_keys(
        &self,
        ring: &KeyRing,
        guest_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DataKey>, StoreError> {
        let version = db_version(ring.current_version());
        let now = db_instant(now);
        let mut keys = HashMap::with_capacity(guest_ids.len());
        let mut rows = Vec::with_capacity(guest_ids.len());
        for id in guest_ids {
            let key = DataKey::generate()?;
            rows.push((id.clone(), ring.wrap_data_key(id, &key)?));
            keys.insert(id.clone(), key);
        }
        let mut connection = self.connection()?;
        on_key_store!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::data_keys::dsl as k;
            for chunk in rows.chunks(IDS_PER_QUERY) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|(id, wrapped)| {
                        (
                            k::guest_id.eq(id),
                            k::key_version.eq(version),
                            k::wrapped.eq(wrapped),
                            k::created_at.eq(now),
                        )
                    })
                    .collect();
                diesel::insert_into(k::data_keys)
                    .values(values)
                    .execute(c)?;
            }
            Ok::<_, StoreError>(())
        }))?;
        Ok(keys)
    }

    /// The data key of each guest that has one, or a new one for records
    /// from before data keys (`(id, uses a data key)` pairs), which moves
    /// them onto data keys; guests whose erasure is recorded get none and
    /// are listed as shredded. A record that uses a data key never gets a
    /// new one: its fields open only with the old.
    pub fn ensure_keys(
        &self,
        ring: &KeyRing,
        guests: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<GuestKeys, StoreError> {
        let ids: Vec<String> = guests.iter().map(|(id, _)| id.clone()).collect();
        let mut keys = self.keys_of(ring, &ids)?;
        for (id, uses_data_key) in guests {
            if *uses_data_key || keys.keys.contains_key(id) || keys.shredded.contains(id) {
                continue;
            }
            let key = self.create_key(ring, id, now)?;
            keys.keys.insert(id.clone(), key);
        }
        Ok(keys)
    }

    /// Opens the data keys of several guests with one query per few
    /// hundred ids; a guest without a key is shredded when their erasure
    /// is recorded, and otherwise simply has none (a record from before
    /// data keys).
    pub fn keys_of(&self, ring: &KeyRing, guest_ids: &[String]) -> Result<GuestKeys, StoreError> {
        let mut wrapped: Vec<(String, Vec<u8>)> = Vec::new();
        let mut erased: Vec<String> = Vec::new();
        if guest_ids.is_empty() {
            return Ok(GuestKeys::default());
        }
        let mut connection = self.connection()?;
        for chunk in guest_ids.chunks(IDS_PER_QUERY) {
            on_key_store!(&mut *connection, |c, s| {
                use s::data_keys::dsl as k;
                wrapped.extend(
                    k::data_keys
                        .filter(k::guest_id.eq_any(chunk))
                        .select((k::guest_id, k::wrapped))
                        .load::<(String, Vec<u8>)>(c)?,
                );
            });
        }
        let mut keys = HashMap::with_capacity(wrapped.len());
        for (id, sealed) in wrapped {
            let key = ring.unwrap_data_key(&id, &sealed)?;
            keys.insert(id, key);
        }
        let missing: Vec<&String> = guest_ids
            .iter()
            .filter(|id| !keys.contains_key(id.as_str()))
            .collect();
        for chunk in missing.chunks(IDS_PER_QUERY) {
            on_key_store!(&mut *connection, |c, s| {
                use s::erasures::dsl as e;
                erased.extend(
                    e::erasures
                        .filter(e::guest_id.eq_any(chunk))
                        .select(e::guest_id)
                        .load::<String>(c)?,
                );
            });
        }
        Ok(GuestKeys {
            keys,
            shredded: erased.into_iter().collect(),
        })
    }

    /// Destroys a guest's data key and records the erasure (ids and time
    /// only). Idempotent: the first record's time stays.
    pub fn destroy(
        &self,
        guest_id: &str,
        at: DateTime<Utc>,
        reason: ErasureReason,
    ) -> Result<(), StoreError> {
        let at = db_instant(at);
        let mut connection = self.connection()?;
        let removed = on_key_store!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::data_keys::dsl as k;
            use s::erasures::dsl as e;
            let removed = diesel::delete(k::data_keys.find(guest_id)).execute(c)?;
            diesel::insert_into(e::erasures)
                .values((
                    e::guest_id.eq(guest_id),
                    e::erased_at.eq(at),
                    e::reason.eq(reason.as_str()),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            Ok::<_, StoreError>(removed)
        }))?;
        if removed > 0 && self.backend == Backend::Sqlite {
            // secure_delete zeroed the key in its page; the old page
            // version sits in the write-ahead log until a checkpoint.
            use diesel::connection::SimpleConnection;
            if let DbConnection::Sqlite(c) = &mut *connection {
                c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
            }
        }
        Ok(())
    }

    /// Every recorded erasure: guest id and when, oldest first.
    pub fn erasures(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_key_store!(&mut *connection, |c, s| {
            use s::erasures::dsl as e;
            e::erasures
                .order((e::erased_at, e::guest_id))
                .select((e::guest_id, e::erased_at))
                .load::<(String, DateTime<Utc>)>(c)?
        }))
    }

    /// Wrapped keys on an older master key version.
    pub fn stale_keys(&self, current: u32) -> Result<u64, StoreError> {
        let current = db_version(current);
        let mut connection = self.connection()?;
        let count: i64 = on_key_store!(&mut *connection, |c, s| {
            use s::data_keys::dsl as k;
            k::data_keys
                .filter(k::key_version.ne(current))
                .count()
                .get_result(c)?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Data keys wrapped under master key `version`: a retirement waits
    /// until a rotation has re-wrapped them.
    pub fn keys_on_version(&self, version: u32) -> Result<u64, StoreError> {
        let version = db_version(version);
        let mut connection = self.connection()?;
        let count: i64 = on_key_store!(&mut *connection, |c, s| {
            use s::data_keys::dsl as k;
            k::data_keys
                .filter(k::key_version.eq(version))
                .count()
                .get_result(c)?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Re-wraps one batch of data keys under the ring's current version;
    /// answers how many (0 when none is left). The keys themselves, and so
    /// the guests' sealed fields, stay as they are.
    pub fn rewrap_batch(&self, ring: &KeyRing) -> Result<u64, StoreError> {
        let target = db_version(ring.current_version());
        let mut connection = self.connection()?;
        on_key_store!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::data_keys::dsl as k;
            let rows: Vec<(String, i32, Vec<u8>)> = k::data_keys
                .filter(k::key_version.ne(target))
                .order(k::guest_id)
                .limit(REWRAP_BATCH)
                .select((k::guest_id, k::key_version, k::wrapped))
                .load(c)?;
            let mut moved = 0u64;
            for (id, version, wrapped) in rows {
                let key = ring.unwrap_data_key(&id, &wrapped)?;
                let rewrapped = ring.wrap_data_key(&id, &key)?;
                moved += diesel::update(
                    k::data_keys
                        .filter(k::guest_id.eq(&id))
                        .filter(k::key_version.eq(version)),
                )
                .set((k::key_version.eq(target), k::wrapped.eq(rewrapped)))
                .execute(c)? as u64;
            }
            Ok::<_, StoreError>(moved)
        }))
    }
}
