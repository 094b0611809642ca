//! Idempotency keys: the first request under a key does the work and stores
//! its answer in the same transaction; a retry under the same key gets that
//! answer back; a different request under the same key is refused.
//!
//! The key row is inserted before any work is done. On PostgreSQL a second
//! request under the same key blocks on that insert until the first commits
//! (or rolls back, in which case it does the work itself), so concurrent
//! retries never do the work twice. On SQLite the write transaction already
//! serializes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::rows::db_instant;
use crate::{Store, StoreError, on_backend};

/// How long an idempotency record (with the sealed manage token of a
/// booking's answer) is kept: clients retry within minutes, and a day is
/// ample.
pub const IDEMPOTENCY_HOURS: i64 = 24;

/// How long after its last failure a login or guess throttle is kept when
/// it holds nothing back any more (the counting window is one hour).
pub const THROTTLE_HOURS: i64 = 1;

/// What a purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub idempotency_records: usize,
    pub throttles: usize,
    /// Waiting messages past their use (access code mails whose code
    /// expired), destroyed unsent.
    pub stale_messages: usize,
}

impl Store {
    /// Deletes idempotency records older than [`IDEMPOTENCY_HOURS`] and
    /// login and guess throttles idle for [`THROTTLE_HOURS`] whose block
    /// has ended, and destroys waiting messages past their use. The server
    /// runs it every 30 seconds.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<Purged, StoreError> {
        let stale_messages = self.discard_stale_messages(now)?;
        let records_before = db_instant(now - chrono::Duration::hours(IDEMPOTENCY_HOURS));
        let throttles_before = db_instant(now - chrono::Duration::hours(THROTTLE_HOURS));
        let now = db_instant(now);
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::idempotency_keys::dsl as k;
            use s::login_throttle::dsl as t;
            Purged {
                idempotency_records: diesel::delete(
                    k::idempotency_keys.filter(k::created_at.lt(records_before)),
                )
                .execute(c)?,
                throttles: diesel::delete(
                    t::login_throttle
                        .filter(t::last_failure_at.lt(throttles_before))
                        .filter(t::blocked_until.is_null().or(t::blocked_until.lt(now))),
                )
                .execute(c)?,
                stale_messages,
            }
        }))
    }
}

/// A fingerprint of a request: same request, same fingerprint.
pub fn fingerprint(parts: &[&dyn std::fmt::Display]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.to_string().as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

/// Claims `($operation, $key)` inside the current transaction. Evaluates to
/// `Ok(None)` when this request is the first (go ahead, then
/// `record_answer!`), to `Ok(Some((stored answer, sealed manage token)))`
/// for a replay, and to a `Conflict` error when the key was used for a
/// different request.
macro_rules! claim_key {
    ($c:expr, $s:ident, $operation:expr, $key:expr, $hash:expr, $now:expr) => {
        $crate::step(|| {
            Ok({
                use $s::idempotency_keys::dsl as k;
                let inserted = diesel::insert_into(k::idempotency_keys)
                    .values((
                        k::operation.eq($operation),
                        k::key.eq($key),
                        k::request_hash.eq($hash),
                        k::created_at.eq($now),
                    ))
                    .on_conflict_do_nothing()
                    .execute($c)?;
                if inserted == 1 {
                    None
                } else {
                    let (stored_hash, answer, token_sealed): (
                        String,
                        Option<String>,
                        Option<Vec<u8>>,
                    ) = k::idempotency_keys
                        .find(($operation, $key))
                        .select((k::request_hash, k::response, k::token_sealed))
                        .first($c)?;
                    if stored_hash != $hash {
                        return Err(StoreError::Domain(domain::DomainError::Conflict(
                            "this idempotency key was already used for a different request"
                                .to_owned(),
                        )));
                    }
                    let answer = answer.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "idempotency key for {} has no answer",
                            $operation
                        ))
                    })?;
                    Some((answer, token_sealed))
                }
            })
        })
    };
}
pub(crate) use claim_key;

/// `claim_key!` for a request whose fingerprint covers personal data. The
/// full fingerprint is stored sealed (`$sealed`, under the row's own id),
/// so that a key rotation can re-seal it; `request_hash` holds `$hash`, a
/// fingerprint of the request's other parts. `$matches` gets a stored
/// record's `request_hash` and sealed fingerprint (absent on records from
/// before sealed fingerprints) and says whether it is this request.
macro_rules! claim_sealed_key {
    ($c:expr, $s:ident, $operation:expr, $key:expr, $hash:expr, $sealed:expr, $now:expr, $matches:expr) => {
        $crate::step(|| {
            Ok({
                use $s::idempotency_keys::dsl as k;
                let inserted = diesel::insert_into(k::idempotency_keys)
                    .values((
                        k::operation.eq($operation),
                        k::key.eq($key),
                        k::request_hash.eq($hash),
                        k::request_sealed.eq(Some($sealed)),
                        k::created_at.eq($now),
                    ))
                    .on_conflict_do_nothing()
                    .execute($c)?;
                if inserted == 1 {
                    None
                } else {
                    let (stored_hash, stored_sealed, answer, token_sealed): (
                        String,
                        Option<Vec<u8>>,
                        Option<String>,
                        Option<Vec<u8>>,
                    ) = k::idempotency_keys
                        .find(($operation, $key))
                        .select((
                            k::request_hash,
                            k::request_sealed,
                            k::response,
                            k::token_sealed,
                        ))
                        .first($c)?;
                    if !$matches(stored_hash.as_str(), stored_sealed.as_deref())? {
                        return Err(StoreError::Domain(domain::DomainError::Conflict(
                            "this idempotency key was already used for a different request"
                                .to_owned(),
                        )));
                    }
                    let answer = answer.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "idempotency key for {} has no answer",
                            $operation
                        ))
                    })?;
                    Some((answer, token_sealed))
                }
            })
        })
    };
}
pub(crate) use claim_sealed_key;

macro_rules! record_answer {
    ($c:expr, $s:ident, $operation:expr, $key:expr, $answer:expr) => {
        record_answer!($c, $s, $operation, $key, $answer, None::<Vec<u8>>)
    };
    ($c:expr, $s:ident, $operation:expr, $key:expr, $answer:expr, $token_sealed:expr) => {
        $crate::step(|| {
            Ok({
                use $s::idempotency_keys::dsl as k;
                diesel::update(k::idempotency_keys.find(($operation, $key)))
                    .set((k::response.eq($answer), k::token_sealed.eq($token_sealed)))
                    .execute($c)?;
            })
        })
    };
}
pub(crate) use record_answer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_has_the_same_fingerprint() {
        assert_eq!(fingerprint(&[&"a", &1]), fingerprint(&[&"a", &1]));
    }

    #[test]
    fn fingerprints_do_not_run_fields_together() {
        assert_ne!(fingerprint(&[&"ab", &"c"]), fingerprint(&[&"a", &"bc"]));
    }
}
