//! Key checks, key rotation and key retirement. Every column that holds
//! sealed values is listed once, in [`SEALED`]; rotation, its progress and
//! the check before a key version is retired all walk that list. Guests
//! are the exception in one respect: their fields are sealed under data
//! keys of their own (version 0, which no master key rotation touches),
//! so a rotation moves guests from before data keys onto one, rewrites
//! their lookup tokens, and re-wraps the data keys in the key store.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use domain::crypto::{DATA_KEY_VERSION, Field, KeyRing, version_of};

use crate::guests::{GuestRow, db_version, open_text, seal_guest};
use crate::lock::ForUpdate;
use crate::rows::db_instant;
use crate::{Backend, Store, StoreError, WriteTransaction, on_backend};

/// A fixed text sealed once per key version, so that a wrong master key is
/// noticed at start, before anything is written with it.
const CHECK_FIELD: Field = Field::new("key_checks", "check");
const CHECK_TEXT: &[u8] = b"kluis key check";

// Data keys: records from before them are moved onto one by a rotation,
// and the wrapped keys in the key store are re-wrapped under the new
// master key version (`rotate_batch`).

/// The `key_version` of notes sealed under their guest's data key: no
/// master key version, so master key rotations leave them alone.
const DATA_KEY_NOTES: i32 = 0;

/// Re-seals a guest's notes that are still under a column key under the
/// guest's data key, in the transaction that moves the guest.
macro_rules! move_notes_onto_data_key {
    ($c:expr, $s:ident, $ring:expr, $key:expr, $guest:expr) => {
        $crate::step(|| {
            Ok({
                use $s::reservations::dsl as r;
                let notes: Vec<(String, Option<Vec<u8>>)> = r::reservations
                    .filter(r::guest_id.eq($guest))
                    .filter(r::key_version.ne(DATA_KEY_NOTES))
                    .select((r::id, r::notes_sealed))
                    .load($c)?;
                for (id, sealed) in notes {
                    let Some(bytes) = sealed else { continue };
                    let text = open_text($ring, Field::RESERVATION_NOTES, &id, &bytes)?;
                    let resealed = $key.seal(Field::RESERVATION_NOTES, &id, text.as_bytes())?;
                    diesel::update(r::reservations.find(&id))
                        .set((
                            r::key_version.eq(DATA_KEY_NOTES),
                            r::notes_sealed.eq(resealed),
                        ))
                        .execute($c)?;
                }
            })
        })
    };
}

/// A guest whose erasure the key store records but whose row this
/// database still holds (a restored backup): nothing of theirs opens, so
/// nothing is re-sealed; the lookup tokens go and the row counts as moved.
/// `kluis erasures replay` erases the rest.
macro_rules! shred_stale_guest {
    ($c:expr, $s:ident, $row:expr, $current:expr) => {
        $crate::step(|| {
            Ok({
                use $s::guests::dsl as g;
                diesel::update(g::guests.find(&$row.id))
                    .set((
                        g::key_version.eq($current),
                        g::email_lookup.eq(None::<Vec<u8>>),
                        g::phone_lookup.eq(None::<Vec<u8>>),
                        g::data_key.eq(true),
                    ))
                    .execute($c)? as u64
            })
        })
    };
}

/// Rows re-encrypted per transaction during a rotation: small enough that
/// the server's own writes never wait long behind it.
pub const ROTATION_BATCH: i64 = 200;

/// How far a rotation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationProgress {
    pub target_version: u32,
    /// Rows (of every table in [`SEALED`]) whose sealed values are all on
    /// the target version.
    pub done: u64,
    /// Rows still on an older version.
    pub remaining: u64,
}

impl Store {
    /// Checks the key ring against the database: every version the database
    /// has seen must be in the ring and open its check value. Versions seen
    /// for the first time get a check value. Fails before any other write.
    pub fn verify_keys(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let ring = self.keys.current();
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            c.write_transaction(|c| {
            use s::key_checks::dsl as k;
            let known: Vec<(i32, Vec<u8>)> = k::key_checks.select((k::version, k::check_sealed)).load(c)?;
            for (version, sealed) in &known {
                let row = version.to_string();
                let opens = u32::try_from(*version)
                    .ok()
                    .filter(|v| ring.versions().any(|known| known == *v))
                    .map(|_| ring.open(CHECK_FIELD, &row, sealed));
                match opens {
                    None => {
                        return Err(StoreError::KeyMismatch(format!(
                            "the database holds data sealed with key version {version}, which the key ring does not have"
                        )));
                    }
                    Some(Ok(text)) if text == CHECK_TEXT => {}
                    Some(_) => {
                        return Err(StoreError::KeyMismatch(format!(
                            "master key version {version} does not match this database (wrong key?)"
                        )));
                    }
                }
            }
            for version in ring.versions() {
                let db = db_version(version);
                if !known.iter().any(|(v, _)| *v == db) {
                    let sealed = ring.seal_with(version, CHECK_FIELD, &db.to_string(), CHECK_TEXT)?;
                    diesel::insert_into(k::key_checks)
                        .values((k::version.eq(db), k::check_sealed.eq(sealed), k::created_at.eq(now)))
                        .execute(c)?;
                }
            }
            Ok::<_, StoreError>(())
        })
        })
    }

    /// Counts rows whose sealed values are all on the current key version
    /// (done) and rows with a value on an older one (remaining), over
    /// every table in [`SEALED`].
    pub fn rotation_progress(&self) -> Result<RotationProgress, StoreError> {
        let target = self.keys.current().current_version();
        let prefix = target.to_be_bytes().to_vec();
        let data_key_prefix = DATA_KEY_VERSION.to_be_bytes().to_vec();
        let backend = self.backend;
        let mut connection = self.connection()?;
        let mut done = 0i64;
        let mut remaining = 0i64;
        for table in SEALED {
            let left = stale_condition(backend, table);
            let any = table
                .columns
                .iter()
                .map(|c| present(&quote(c.column)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let count_left = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE {left}",
                quote(table.table)
            );
            let count_done = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE ({any}) AND NOT ({left})",
                quote(table.table)
            );
            on_backend!(&mut *connection, |c| {
                remaining += diesel::sql_query(&count_left)
                    .bind::<Binary, _>(&prefix)
                    .bind::<Binary, _>(&data_key_prefix)
                    .get_result::<Count>(c)?
                    .n;
                done += diesel::sql_query(&count_done)
                    .bind::<Binary, _>(&prefix)
                    .bind::<Binary, _>(&data_key_prefix)
                    .get_result::<Count>(c)?
                    .n;
            });
        }
        // Guests whose fields are all sealed under a data key look done to
        // the registry; they are left while their lookup tokens are on an
        // older version or, from before data keys, until a rotation moves
        // them onto one. Erased guests have nothing left to re-encrypt.
        let guests_left = format!(
            "SELECT COUNT(*) AS n FROM {} WHERE \"erased_at\" IS NULL \
             AND (\"data_key\" = {} OR \"key_version\" <> {}) AND NOT ({})",
            quote(GUESTS),
            match backend {
                Backend::Postgresql => "FALSE",
                Backend::Sqlite => "0",
            },
            param(backend, 3),
            SEALED
                .iter()
                .find(|t| t.table == GUESTS)
                .map_or_else(|| "FALSE".to_owned(), |t| stale_condition(backend, t)),
        );
        let guests_left = on_backend!(&mut *connection, |c| {
            diesel::sql_query(&guests_left)
                .bind::<Binary, _>(&prefix)
                .bind::<Binary, _>(&data_key_prefix)
                .bind::<diesel::sql_types::Integer, _>(db_version(target))
                .get_result::<Count>(c)?
                .n
        });
        done -= guests_left;
        remaining += guests_left;
        // Data keys wrapped under an older master key version.
        let wrapped_left = self.key_store().stale_keys(target)?;
        Ok(RotationProgress {
            target_version: target,
            done: u64::try_from(done).unwrap_or(0),
            remaining: u64::try_from(remaining).unwrap_or(0) + wrapped_left,
        })
    }

    /// Re-seals one batch of rows per table in [`SEALED`] that hold a
    /// value not on the ring's current version, each batch in its own
    /// transaction; returns how many rows it moved (0 when nothing is
    /// left). Safe to interrupt and to run beside serving nodes: a value
    /// changed meanwhile is skipped and picked up by the next batch, and
    /// on PostgreSQL two rotations never take the same rows.
    pub fn rotate_batch(&self) -> Result<u64, StoreError> {
        let ring = self.keys.current();
        let target = ring.current_version();
        // Guests first: moving one onto a data key also moves its
        // reservations' notes, which the registry would otherwise re-seal
        // under the master key only to have them moved again.
        let mut moved = self.rotate_guests(&ring, target)?;
        for table in SEALED {
            if table.table == GUESTS {
                continue;
            }
            moved += self.rotate_table(&ring, table)?;
        }
        // The data keys themselves are re-wrapped under the new version;
        // what they seal stays as it is.
        moved += self.key_store().rewrap_batch(&ring)?;
        Ok(moved)
    }

    fn rotate_guests(&self, ring: &KeyRing, target: u32) -> Result<u64, StoreError> {
        let current = db_version(target);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::guests::dsl as g;
            // Guests on an older key version, a batch at a time; rows
            // another rotation holds are skipped rather than waited for.
            let rows: Vec<GuestRow> = s::load_locked!(
                g::guests
                    .filter(g::key_version.ne(current).or(g::data_key.eq(false)))
                    .filter(g::erased_at.is_null())
                    .order(g::id)
                    .limit(ROTATION_BATCH),
                c,
                ForUpdate::SkipLocked
            )?;
            let flags: Vec<(String, bool)> = rows
                .iter()
                .map(|row| (row.id.clone(), row.data_key))
                .collect();
            let keys = self
                .key_store()
                .ensure_keys(ring, &flags, chrono::Utc::now())?;
            let mut moved = 0u64;
            for row in rows {
                let access = keys.access(&row.id, row.data_key)?;
                let Some(key) = keys.key(&row.id) else {
                    moved += shred_stale_guest!(c, s, &row, current)?;
                    continue;
                };
                let guest = row.open(ring, access)?;
                move_notes_onto_data_key!(c, s, ring, key, &row.id)?;
                let sealed = seal_guest(
                    ring,
                    target,
                    Some(key),
                    &row.id,
                    &guest.name,
                    guest.email.as_ref(),
                    guest.phone.as_ref(),
                )?;
                moved += diesel::update(
                    g::guests
                        .filter(g::id.eq(&row.id))
                        .filter(g::key_version.eq(row.key_version)),
                )
                .set((
                    g::key_version.eq(sealed.key_version),
                    g::name_sealed.eq(sealed.name_sealed),
                    g::email_sealed.eq(sealed.email_sealed),
                    g::email_lookup.eq(sealed.email_lookup),
                    g::phone_sealed.eq(sealed.phone_sealed),
                    g::phone_lookup.eq(sealed.phone_lookup),
                    g::data_key.eq(true),
                ))
                .execute(c)? as u64;
            }
            Ok::<_, StoreError>(moved)
        }))
    }

    fn rotate_table(&self, ring: &KeyRing, table: &SealedTable) -> Result<u64, StoreError> {
        let target = ring.current_version();
        let prefix = target.to_be_bytes().to_vec();
        let data_key_prefix = DATA_KEY_VERSION.to_be_bytes().to_vec();
        let backend = self.backend;
        if table.columns.len() > MAX_COLUMNS {
            return Err(StoreError::Corrupt(format!(
                "{} lists more than {MAX_COLUMNS} sealed columns",
                table.table
            )));
        }
        let name = quote(table.table);
        let (blob, text, lock) = match backend {
            Backend::Postgresql => ("BYTEA", "TEXT", " FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => ("BLOB", "TEXT", ""),
        };
        let values = (0..MAX_COLUMNS)
            .map(|i| match table.columns.get(i) {
                Some(column) => format!("{} AS v{i}", quote(column.column)),
                None => format!("CAST(NULL AS {blob}) AS v{i}"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Rows are found again by their primary key (indexed), not by the
        // row-id expression, which may join several columns.
        let (k0, k1) = match table.key {
            [one] => (quote(one), format!("CAST(NULL AS {text})")),
            [one, two] => (quote(one), quote(two)),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "{} needs a primary key of one or two columns",
                    table.table
                )));
            }
        };
        let key_where = |first: usize| match table.key {
            [one, two] => format!(
                "{} = {} AND {} = {}",
                quote(one),
                param(backend, first),
                quote(two),
                param(backend, first + 1)
            ),
            _ => format!("{k0} = {}", param(backend, first)),
        };
        let select = format!(
            "SELECT {} AS row_id, {k0} AS k0, {k1} AS k1, {values} FROM {name} WHERE {} ORDER BY k0, k1 LIMIT {ROTATION_BATCH}{lock}",
            table.row_id,
            stale_condition(backend, table),
        );
        let (p1, p2) = (param(backend, 1), param(backend, 2));
        let reseal = |column: &str| {
            let q = quote(column);
            format!(
                "UPDATE {name} SET {q} = {p1} WHERE {q} = {p2} AND {}",
                key_where(3)
            )
        };
        let rewrite = |column: &str| {
            format!(
                "UPDATE {name} SET {} = {p1} WHERE {}",
                quote(column),
                key_where(2)
            )
        };
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c| c.write_transaction(|c| {
            let rows: Vec<StaleRow> = diesel::sql_query(&select)
                .bind::<Binary, _>(&prefix)
                .bind::<Binary, _>(&data_key_prefix)
                .load(c)?;
            let mut moved = 0u64;
            for row in rows {
                // Binds the row's primary key after the statement's other
                // parameters.
                macro_rules! by_key {
                    ($query:expr) => {
                        match &row.k1 {
                            Some(k1) => $query
                                .bind::<Text, _>(&row.k0)
                                .bind::<Text, _>(k1)
                                .execute(c),
                            None => $query.bind::<Text, _>(&row.k0).execute(c),
                        }
                    };
                }
                let values = [row.v0, row.v1, row.v2, row.v3];
                let mut resealed = false;
                for (column, value) in table.columns.iter().zip(values) {
                    let Some(old) = value.filter(|v| v.len() > VERSION_PREFIX) else {
                        continue;
                    };
                    // Values under a data key (version 0) are not the
                    // master key's to re-seal.
                    if matches!(version_of(&old), Some(v) if v == target || v == DATA_KEY_VERSION) {
                        continue;
                    }
                    let plain = ring.open(column.field, &row.row_id, &old)?;
                    let new = ring.seal_with(target, column.field, &row.row_id, &plain)?;
                    let updated = by_key!(
                        diesel::sql_query(reseal(column.column))
                            .bind::<Binary, _>(&new)
                            .bind::<Binary, _>(&old)
                    )?;
                    if updated != 1 {
                        continue;
                    }
                    resealed = true;
                    if let Some(lookup) = column.lookup {
                        let token = ring.lookup_token_with(target, column.field, &plain)?;
                        by_key!(diesel::sql_query(rewrite(lookup)).bind::<Binary, _>(&token))?;
                    }
                }
                if !resealed {
                    continue;
                }
                moved += 1;
                if let Some(version) = table.key_version {
                    by_key!(
                        diesel::sql_query(rewrite(version))
                            .bind::<diesel::sql_types::Integer, _>(db_version(target))
                    )?;
                }
            }
            Ok::<_, StoreError>(moved)
        }))
    }

    /// Everything in the database that still needs key `version`: sealed
    /// values per table and column, live API keys whose secret hash is
    /// keyed under it, and access codes hashed under it that can still be
    /// redeemed. Nothing of it may remain before the version is retired.
    pub fn key_usage(&self, version: u32, now: DateTime<Utc>) -> Result<KeyUsage, StoreError> {
        let prefix = version.to_be_bytes().to_vec();
        let backend = self.backend;
        let db = db_version(version);
        let now = db_instant(now);
        let mut usage = KeyUsage {
            version,
            ..KeyUsage::default()
        };
        let mut connection = self.connection()?;
        for table in SEALED {
            for column in table.columns {
                let sql = format!(
                    "SELECT COUNT(*) AS n FROM {} WHERE {}",
                    quote(table.table),
                    on_version(&quote(column.column), "=", &param(backend, 1))
                );
                let rows = on_backend!(&mut *connection, |c| {
                    diesel::sql_query(&sql)
                        .bind::<Binary, _>(&prefix)
                        .get_result::<Count>(c)?
                        .n
                });
                if rows > 0 {
                    usage.sealed.push(SealedUsage {
                        table: table.table,
                        column: column.column,
                        rows: u64::try_from(rows).unwrap_or(0),
                    });
                }
            }
        }
        // Lookup tokens of guests sealed under data keys: their fields
        // carry version 0, but the tokens are keyed under the version in
        // `key_version`, and a rotation rewrites them.
        let lookups: i64 = on_backend!(&mut *connection, |c, s| {
            use s::guests::dsl as g;
            g::guests
                .filter(g::data_key.eq(true))
                .filter(g::key_version.eq(db))
                .filter(g::erased_at.is_null())
                .count()
                .get_result(c)?
        });
        if lookups > 0 {
            usage.sealed.push(SealedUsage {
                table: GUESTS,
                column: "email_lookup, phone_lookup",
                rows: u64::try_from(lookups).unwrap_or(0),
            });
        }
        // Data keys wrapped under the version in the key store.
        let wrapped = self.key_store().keys_on_version(version)?;
        if wrapped > 0 {
            usage.sealed.push(SealedUsage {
                table: "data_keys",
                column: "wrapped",
                rows: wrapped,
            });
        }
        on_backend!(&mut *connection, |c, s| {
            use s::access_codes::dsl as a;
            use s::api_keys::dsl as k;
            use s::idempotency_keys::dsl as i;
            usage.api_keys = k::api_keys
                .filter(k::hash_version.eq(db))
                .filter(k::revoked_at.is_null())
                .filter(k::expires_at.is_null().or(k::expires_at.gt(now)))
                .order(k::id)
                .select(k::id)
                .load(c)?;
            let codes = a::access_codes
                .filter(a::key_version.eq(db))
                .filter(a::used_at.is_null())
                .filter(a::attempts.lt(crate::CODE_ATTEMPTS))
                .filter(a::expires_at.gt(now));
            let live: i64 = codes.count().get_result(c)?;
            usage.access_codes = u64::try_from(live).unwrap_or(0);
            usage.codes_valid_until = codes
                .order(a::expires_at.desc())
                .select(a::expires_at)
                .first::<DateTime<Utc>>(c)
                .optional()?;
            let unsealed: i64 = i::idempotency_keys
                .filter(i::operation.eq("createReservation"))
                .filter(i::request_sealed.is_null())
                .count()
                .get_result(c)?;
            usage.unsealed_fingerprints = u64::try_from(unsealed).unwrap_or(0);
        });
        drop(connection);
        usage.audit_entries = self.audit_needs(version)?;
        Ok(usage)
    }

    /// Partner API keys (id, key version) whose secret hash is keyed under
    /// a version older than the current one and that can still be used:
    /// a hash cannot be re-keyed without the secret, so they move when the
    /// partner next uses them, or when they are replaced.
    pub fn api_keys_on_older_versions(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u32)>, StoreError> {
        let current = db_version(self.keys.current().current_version());
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let keys: Vec<(String, i32)> = on_backend!(&mut *connection, |c, s| {
            use s::api_keys::dsl as k;
            k::api_keys
                .filter(k::hash_version.ne(current))
                .filter(k::revoked_at.is_null())
                .filter(k::expires_at.is_null().or(k::expires_at.gt(now)))
                .order(k::id)
                .select((k::id, k::hash_version))
                .load(c)?
        });
        Ok(keys
            .into_iter()
            .map(|(id, version)| (id, u32::try_from(version).unwrap_or(0)))
            .collect())
    }

    /// Forgets key `version` in the database (its check value), after
    /// [`Store::key_usage`] found nothing that needs it; refuses, in the
    /// same transaction, when something does by now. The key file is
    /// rewritten afterwards: a server started in between still has the
    /// version and simply records its check value again.
    pub fn retire_key_version(
        &self,
        version: u32,
        now: DateTime<Utc>,
    ) -> Result<KeyUsage, StoreError> {
        let usage = self.key_usage(version, now)?;
        if usage.blocks_retirement() {
            return Ok(usage);
        }
        let db = db_version(version);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::key_checks::dsl as k;
            diesel::delete(k::key_checks.filter(k::version.eq(db))).execute(c)?;
        });
        Ok(usage)
    }
}

/// The 4-byte key version every sealed value starts with.
const VERSION_PREFIX: usize = 4;

/// A table whose rows hold sealed values, and how to re-seal them.
#[derive(Debug, Clone, Copy)]
pub struct SealedTable {
    /// The SQL table.
    pub table: &'static str,
    /// An SQL expression over the row giving the row id each value is
    /// sealed to (part of its associated data): a column (`"id"`) or an
    /// expression both backends understand.
    pub row_id: &'static str,
    /// The table's primary key (one or two text columns), by which a row
    /// is found again.
    pub key: &'static [&'static str],
    /// The sealed columns; a row is re-sealed in one transaction.
    pub columns: &'static [SealedColumn],
    /// A column that repeats the key version of the row's values, kept in
    /// step with them by the rotation.
    pub key_version: Option<&'static str>,
}

/// One sealed column of a [`SealedTable`].
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub column: &'static str,
    /// The field the value is sealed as (derived key and associated data).
    pub field: Field,
    /// A column holding the lookup token of the same value under the same
    /// field, rewritten whenever the value is re-sealed.
    pub lookup: Option<&'static str>,
}

const fn sealed(column: &'static str, field: Field) -> SealedColumn {
    SealedColumn {
        column,
        field,
        lookup: None,
    }
}

/// Sealed columns per table: rotation re-seals at most this many per row.
const MAX_COLUMNS: usize = 4;

/// Every sealed value the database holds. Rotation, its progress and the
/// check before a key version is retired walk this list and nothing else.
///
/// To add a sealed column: one entry here (or one more column of an
/// existing entry): the table, the SQL expression of the row id the value
/// is sealed to (the same string the code passes to `KeyRing::seal`), the
/// primary key, the
/// column and its `Field`, the lookup-token column if the value has one,
/// and the key-version column if the table keeps one. A value is
/// recognised by its 4-byte version prefix, so an empty or NULL column is
/// skipped. Values in another database (such as a separate key store)
/// need the same engine run over that database's connection with its own
/// list; the entry format is the same.
///
/// Not here, because they cannot be re-sealed, only replaced: keyed hashes
/// of API key secrets (`api_keys.hash_version`: moved when a partner next
/// uses the key, or by a new key) and access codes (`access_codes`: they
/// live fifteen minutes and are waited for). [`Store::key_usage`] reports
/// both.
pub const SEALED: &[SealedTable] = &[
    SealedTable {
        table: "guests",
        row_id: r#""id""#,
        key: &["id"],
        columns: &[
            sealed("name_sealed", Field::GUEST_NAME),
            SealedColumn {
                lookup: Some("email_lookup"),
                ..sealed("email_sealed", Field::GUEST_EMAIL)
            },
            SealedColumn {
                lookup: Some("phone_lookup"),
                ..sealed("phone_sealed", Field::GUEST_PHONE)
            },
        ],
        key_version: Some("key_version"),
    },
    SealedTable {
        table: "reservations",
        row_id: r#""id""#,
        key: &["id"],
        columns: &[sealed("notes_sealed", Field::RESERVATION_NOTES)],
        key_version: Some("key_version"),
    },
    SealedTable {
        table: "venue_webhooks",
        row_id: r#""venue_id""#,
        key: &["venue_id"],
        columns: &[sealed("secret_sealed", Field::WEBHOOK_SECRET)],
        key_version: None,
    },
    SealedTable {
        table: "idempotency_keys",
        row_id: r#""operation" || '|' || "key""#,
        key: &["operation", "key"],
        columns: &[
            sealed("token_sealed", Field::IDEMPOTENT_TOKEN),
            sealed("request_sealed", Field::IDEMPOTENT_REQUEST),
        ],
        key_version: None,
    },
    SealedTable {
        table: "outbox",
        row_id: r#""id""#,
        key: &["id"],
        columns: &[sealed("message_sealed", Field::OUTBOX_MESSAGE)],
        key_version: None,
    },
    SealedTable {
        table: "guest_access_grants",
        row_id: r#""id""#,
        key: &["id"],
        columns: &[sealed("email_sealed", Field::ACCESS_GRANT_EMAIL)],
        key_version: Some("key_version"),
    },
];

/// What still needs one key version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    pub version: u32,
    /// Sealed values on the version, per table and column.
    pub sealed: Vec<SealedUsage>,
    /// Live partner API keys whose secret hash is keyed under the version.
    pub api_keys: Vec<String>,
    /// Unused access codes hashed under the version that can still be
    /// redeemed, and when the last of them expires.
    pub access_codes: u64,
    pub codes_valid_until: Option<DateTime<Utc>>,
    /// Booking idempotency records from before fingerprints were sealed,
    /// keyed under a version that is not recorded. They do not hold the
    /// retirement up: a retry under such a key after it is refused with
    /// `CONFLICT` instead of answered.
    pub unsealed_fingerprints: u64,
    /// Audit entries (and the anchor or newest checkpoint) that can only
    /// be verified with the version: none once a checkpoint sealed with a
    /// newer version covers them. `kluis keys rotate` and `kluis keys
    /// retire` write that checkpoint.
    pub audit_entries: u64,
}

/// Rows of one table whose value in one column is sealed with a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedUsage {
    pub table: &'static str,
    pub column: &'static str,
    pub rows: u64,
}

impl KeyUsage {
    /// Whether anything still needs the version.
    pub fn blocks_retirement(&self) -> bool {
        !self.sealed.is_empty()
            || !self.api_keys.is_empty()
            || self.access_codes > 0
            || self.audit_entries > 0
    }

    /// One line per thing that still needs the version, for the operator.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .sealed
            .iter()
            .map(|u| {
                format!(
                    "{}.{}: {} rows sealed with key version {} (run `kluis keys rotate`)",
                    u.table, u.column, u.rows, self.version
                )
            })
            .collect();
        if !self.api_keys.is_empty() {
            lines.push(format!(
                "api_keys: {} live API keys hashed under key version {}, ids {} (they move when next used; or revoke them and issue new ones)",
                self.api_keys.len(),
                self.version,
                self.api_keys.join(", ")
            ));
        }
        if self.access_codes > 0 {
            let until = self
                .codes_valid_until
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            lines.push(format!(
                "access_codes: {} codes hashed under key version {} waiting to expire, valid until {until} at the latest",
                self.access_codes, self.version
            ));
        }
        if self.audit_entries > 0 {
            lines.push(format!(
                "audit_log: {} entries verifiable only with key version {} (written since the last checkpoint, by a node still on the old key file: run `kluis keys retire {}` again once every node has reloaded it)",
                self.audit_entries, self.version, self.version
            ));
        }
        lines
    }
}

/// A row a rotation batch re-seals: its id and up to [`MAX_COLUMNS`]
/// sealed values, in the order of its entry's columns.
#[derive(QueryableByName)]
struct StaleRow {
    #[diesel(sql_type = Text)]
    row_id: String,
    #[diesel(sql_type = Text)]
    k0: String,
    #[diesel(sql_type = Nullable<Text>)]
    k1: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    v0: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v1: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v2: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    v3: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Identifiers in the registry are fixed strings of this crate, never
/// input; quoting keeps keywords such as `key` usable.
fn quote(identifier: &str) -> String {
    format!("\"{identifier}\"")
}

/// The `n`th bind parameter (numbered, so that one value can be used
/// several times).
fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgresql => format!("${n}"),
        Backend::Sqlite => format!("?{n}"),
    }
}

/// The column holds a sealed value (destroyed ones are emptied or NULL).
fn present(column: &str) -> String {
    format!("({column} IS NOT NULL AND length({column}) > {VERSION_PREFIX})")
}

/// The column holds a sealed value whose version prefix compares with
/// `operator` to the bound prefix `param`.
fn on_version(column: &str, operator: &str, param: &str) -> String {
    format!(
        "({column} IS NOT NULL AND length({column}) > {VERSION_PREFIX} AND substr({column}, 1, {VERSION_PREFIX}) {operator} {param})"
    )
}

/// Rows with a value on another master key version than the first bind
/// parameter. Values sealed under a guest's data key carry version 0 (the
/// second bind parameter): the master key's rotation leaves them alone,
/// so they are not stale.
fn stale_condition(backend: Backend, table: &SealedTable) -> String {
    let (p1, p2) = (param(backend, 1), param(backend, 2));
    table
        .columns
        .iter()
        .map(|c| {
            let column = quote(c.column);
            format!(
                "({} AND substr({column}, 1, {VERSION_PREFIX}) <> {p2})",
                on_version(&column, "<>", &p1)
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The table whose rows [`Store::rotate_guests`] moves itself.
const GUESTS: &str = "guests";
