//! Key checks and key rotation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::{Field, KeyRing};

use crate::guests::{GuestRow, db_version, open_text, seal_guest};
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
    ($c:expr, $s:ident, $ring:expr, $key:expr, $guest:expr) => {{
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
    }};
}

/// A guest whose erasure the key store records but whose row this
/// database still holds (a restored backup): nothing of theirs opens, so
/// nothing is re-sealed; the lookup tokens go and the row counts as moved.
/// `kluis erasures replay` erases the rest.
macro_rules! shred_stale_guest {
    ($c:expr, $s:ident, $row:expr, $current:expr) => {{
        use $s::guests::dsl as g;
        diesel::update(g::guests.find(&$row.id))
            .set((
                g::key_version.eq($current),
                g::email_lookup.eq(None::<Vec<u8>>),
                g::phone_lookup.eq(None::<Vec<u8>>),
                g::data_key.eq(true),
            ))
            .execute($c)? as u64
    }};
}

/// Rows re-encrypted per transaction during a rotation: small enough that
/// the server's own writes never wait long behind it.
pub const ROTATION_BATCH: i64 = 200;

/// How far a rotation has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationProgress {
    pub target_version: u32,
    /// Rows (guests and reservations with notes) already on the target version.
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

    /// Counts rows on the current key version and on older ones.
    pub fn rotation_progress(&self) -> Result<RotationProgress, StoreError> {
        let target = self.keys.current().current_version();
        let current = db_version(target);
        let mut connection = self.connection()?;
        let (done, remaining): (i64, i64) = on_backend!(&mut *connection, |c, s| {
            use s::guests::dsl as g;
            use s::reservations::dsl as r;
            let guests_done: i64 = g::guests
                .filter(g::key_version.eq(current))
                .count()
                .get_result(c)?;
            // Erased guests have nothing left to re-encrypt.
            // Records from before data keys count as left until a
            // rotation moves them onto one.
            let guests_left: i64 = g::guests
                .filter(g::key_version.ne(current).or(g::data_key.eq(false)))
                .filter(g::erased_at.is_null())
                .count()
                .get_result(c)?;
            let notes_done: i64 = r::reservations
                .filter(r::key_version.eq(current))
                .count()
                .get_result(c)?;
            let notes_left: i64 = r::reservations
                .filter(r::key_version.ne(current))
                .filter(r::key_version.ne(DATA_KEY_NOTES))
                .count()
                .get_result(c)?;
            (guests_done + notes_done, guests_left + notes_left)
        });
        let wrapped_left = self.key_store().stale_keys(target)?;
        Ok(RotationProgress {
            target_version: target,
            done: u64::try_from(done).unwrap_or(0),
            remaining: u64::try_from(remaining).unwrap_or(0) + wrapped_left,
        })
    }

    /// Re-encrypts one batch of rows that are not on the ring's current
    /// version, each batch in its own transaction; returns how many rows it
    /// moved (0 when nothing is left). Safe to interrupt and to run beside
    /// serving nodes: a row changed meanwhile is skipped and picked up by
    /// the next batch, and on PostgreSQL two rotations never take the same
    /// rows.
    pub fn rotate_batch(&self) -> Result<u64, StoreError> {
        let ring = self.keys.current();
        let target = ring.current_version();
        let moved_guests = self.rotate_guests(&ring, target)?;
        let moved_notes = self.rotate_notes(&ring, target)?;
        let rewrapped = self.key_store().rewrap_batch(&ring)?;
        Ok(moved_guests + moved_notes + rewrapped)
    }

    fn rotate_guests(&self, ring: &KeyRing, target: u32) -> Result<u64, StoreError> {
        let current = db_version(target);
        let skip_locked = self.backend == Backend::Postgresql;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::guests::dsl as g;
            let rows: Vec<GuestRow> = c.stale_guests(current, skip_locked)?;
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
                    moved += shred_stale_guest!(c, s, &row, current);
                    continue;
                };
                let guest = row.open(ring, access)?;
                move_notes_onto_data_key!(c, s, ring, key, &row.id);
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

    fn rotate_notes(&self, ring: &KeyRing, target: u32) -> Result<u64, StoreError> {
        let current = db_version(target);
        let skip_locked = self.backend == Backend::Postgresql;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::reservations::dsl as r;
            let rows: Vec<StaleNote> = c.stale_notes(current, skip_locked)?;
            let mut moved = 0u64;
            for (id, version, sealed) in rows {
                let resealed = match sealed {
                    Some(bytes) => {
                        let text = open_text(ring, Field::RESERVATION_NOTES, &id, &bytes)?;
                        Some(ring.seal_with(
                            target,
                            Field::RESERVATION_NOTES,
                            &id,
                            text.as_bytes(),
                        )?)
                    }
                    None => None,
                };
                moved += diesel::update(
                    r::reservations
                        .filter(r::id.eq(&id))
                        .filter(r::key_version.eq(version)),
                )
                .set((r::key_version.eq(current), r::notes_sealed.eq(resealed)))
                .execute(c)? as u64;
            }
            Ok::<_, StoreError>(moved)
        }))
    }
}

/// A reservation's id, notes key version and sealed notes.
type StaleNote = (String, i32, Option<Vec<u8>>);

/// Guests on an older key version, a batch at a time; on PostgreSQL rows
/// another rotation holds are skipped rather than waited for.
trait StaleRows: Connection + Sized {
    fn stale_guests(&mut self, current: i32, skip_locked: bool) -> QueryResult<Vec<GuestRow>>;
    fn stale_notes(&mut self, current: i32, skip_locked: bool) -> QueryResult<Vec<StaleNote>>;
}

impl StaleRows for diesel::PgConnection {
    fn stale_guests(&mut self, current: i32, skip_locked: bool) -> QueryResult<Vec<GuestRow>> {
        use crate::schema::pg::guests::dsl as g;
        let query = g::guests
            .filter(g::key_version.ne(current).or(g::data_key.eq(false)))
            .filter(g::erased_at.is_null())
            .order(g::id)
            .limit(ROTATION_BATCH);
        if skip_locked {
            query.for_update().skip_locked().load(self)
        } else {
            query.load(self)
        }
    }

    fn stale_notes(&mut self, current: i32, skip_locked: bool) -> QueryResult<Vec<StaleNote>> {
        use crate::schema::pg::reservations::dsl as r;
        let query = r::reservations
            .filter(r::key_version.ne(current))
            .filter(r::key_version.ne(DATA_KEY_NOTES))
            .select((r::id, r::key_version.assume_not_null(), r::notes_sealed))
            .order(r::id)
            .limit(ROTATION_BATCH);
        if skip_locked {
            query.for_update().skip_locked().load(self)
        } else {
            query.load(self)
        }
    }
}

impl StaleRows for diesel::SqliteConnection {
    fn stale_guests(&mut self, current: i32, _skip_locked: bool) -> QueryResult<Vec<GuestRow>> {
        use crate::schema::sqlite::guests::dsl as g;
        g::guests
            .filter(g::key_version.ne(current).or(g::data_key.eq(false)))
            .filter(g::erased_at.is_null())
            .order(g::id)
            .limit(ROTATION_BATCH)
            .load(self)
    }

    fn stale_notes(&mut self, current: i32, _skip_locked: bool) -> QueryResult<Vec<StaleNote>> {
        use crate::schema::sqlite::reservations::dsl as r;
        r::reservations
            .filter(r::key_version.ne(current))
            .filter(r::key_version.ne(DATA_KEY_NOTES))
            .select((r::id, r::key_version.assume_not_null(), r::notes_sealed))
            .order(r::id)
            .limit(ROTATION_BATCH)
            .load(self)
    }
}
