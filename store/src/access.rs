//! Staff accounts, sessions, API keys, role assignments and login
//! throttling. Everything here lives in the database so that every API node
//! sees the same state.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{DomainError, Email, Personal, Secret, SessionHash};

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// A staff account. Its e-mail and password hash are masked in `Debug`.
#[derive(Debug, Clone, Queryable)]
pub struct StaffRow {
    pub id: String,
    #[diesel(deserialize_as = String)]
    pub email: Personal,
    #[diesel(deserialize_as = String)]
    pub password_hash: Secret,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub hash_version: i32,
    pub role: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One `g` line: a subject holds a role in a venue (or `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Queryable)]
pub struct RoleAssignment {
    pub subject: String,
    pub role: String,
    pub venue: String,
}

/// A new API key's row.
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub secret_hash: Vec<u8>,
    pub hash_version: i32,
    pub role: &'a str,
    pub venues: &'a [String],
    pub created_by: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One counted login attempt of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempt {
    /// Failures so far, this attempt included.
    pub failures: u32,
    /// Set when the scope was held back already: the attempt must not be
    /// checked. Until when it was held.
    pub held: Option<DateTime<Utc>>,
    /// Until when the scope is held back now, this attempt counted.
    pub blocked_until: Option<DateTime<Utc>>,
}

/// How failures of one scope are answered: `(failures so far) -> wait`.
pub type Backoff = fn(u32) -> Option<chrono::Duration>;

macro_rules! bump_authz_version {
    ($c:expr, $s:ident) => {
        $crate::step(|| {
            Ok({
                use $s::authz_version::dsl as a;
                diesel::update(a::authz_version.filter(a::id.eq(1)))
                    .set(a::version.eq(a::version + 1))
                    .execute($c)?;
            })
        })
    };
}

impl Store {
    /// Creates a staff account with a first role.
    pub fn create_staff(
        &self,
        email: &Email,
        password_hash: &Secret,
        role: &str,
        venue: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let now = db_instant(now);
        let (email, password_hash) = (email.expose(), password_hash.expose());
        let id = domain::StaffId::new_random().to_string();
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::staff_users::dsl as u;
            let taken: i64 = u::staff_users
                .filter(u::email.eq(email))
                .count()
                .get_result(c)?;
            if taken > 0 {
                return Err(StoreError::Domain(DomainError::Conflict(
                    "a staff account with this e-mail already exists".to_owned(),
                )));
            }
            diesel::insert_into(u::staff_users)
                .values((
                    u::id.eq(&id),
                    u::email.eq(email),
                    u::password_hash.eq(password_hash),
                    u::active.eq(true),
                    u::created_at.eq(now),
                    u::updated_at.eq(now),
                ))
                .execute(c)?;
            use s::role_assignments::dsl as g;
            diesel::insert_into(g::role_assignments)
                .values((
                    g::subject.eq(format!("user:{id}")),
                    g::role.eq(role),
                    g::venue.eq(venue),
                    g::created_at.eq(now),
                ))
                .execute(c)?;
            bump_authz_version!(c, s)?;
            Ok::<_, StoreError>(())
        }))?;
        Ok(id)
    }

    pub fn staff_by_email(&self, email: &Email) -> Result<Option<StaffRow>, StoreError> {
        let email = email.expose();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::staff_users::table
            .filter(s::staff_users::email.eq(email))
            .first::<StaffRow>(c)
            .optional()?))
    }

    pub fn staff_by_id(&self, id: &str) -> Result<Option<StaffRow>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::staff_users::table
            .find(id)
            .first::<StaffRow>(c)
            .optional()?))
    }

    /// Staff accounts by e-mail, `limit` from `offset`: every one (`venues`
    /// none), or those holding a role in one of `venues`.
    pub fn staff_page(
        &self,
        venues: Option<&[String]>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<StaffRow>, StoreError> {
        let within = self.subjects_in("user:", venues)?;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::staff_users::table
                .order((s::staff_users::email, s::staff_users::id))
                .offset(offset)
                .limit(limit)
                .into_boxed();
            if let Some(ids) = &within {
                query = query.filter(s::staff_users::id.eq_any(ids.clone()));
            }
            query.load::<StaffRow>(c)?
        }))
    }

    /// How many accounts `staff_page` pages through for `venues`.
    pub fn staff_count(&self, venues: Option<&[String]>) -> Result<i64, StoreError> {
        let within = self.subjects_in("user:", venues)?;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::staff_users::table.count().into_boxed();
            if let Some(ids) = &within {
                query = query.filter(s::staff_users::id.eq_any(ids.clone()));
            }
            query.get_result::<i64>(c)?
        }))
    }

    /// The ids (after `prefix`, `user:` or `apikey:`) of the subjects
    /// holding a role in one of `venues`; none when nothing is filtered.
    fn subjects_in(
        &self,
        prefix: &str,
        venues: Option<&[String]>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let Some(venues) = venues else {
            return Ok(None);
        };
        let pattern = format!("{prefix}%");
        let mut connection = self.connection()?;
        let subjects: Vec<String> = on_backend!(&mut *connection, |c, s| {
            use s::role_assignments::dsl as g;
            g::role_assignments
                .filter(g::venue.eq_any(venues.to_vec()))
                .filter(g::subject.like(pattern.clone()))
                .select(g::subject)
                .distinct()
                .load::<String>(c)?
        });
        Ok(Some(
            subjects
                .into_iter()
                .filter_map(|subject| subject.strip_prefix(prefix).map(str::to_owned))
                .collect(),
        ))
    }

    /// Activates or deactivates an account; deactivating ends its sessions.
    pub fn set_staff_active(
        &self,
        id: &str,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::staff_users::dsl as u;
            let changed = diesel::update(u::staff_users.find(id))
                .set((u::active.eq(active), u::updated_at.eq(now)))
                .execute(c)?;
            if !active {
                use s::sessions::dsl as x;
                diesel::delete(x::sessions.filter(x::user_id.eq(id))).execute(c)?;
            }
            Ok::<_, StoreError>(changed == 1)
        }))
    }

    pub fn assign_role(
        &self,
        subject: &str,
        role: &str,
        venue: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::role_assignments::dsl as g;
            let added = diesel::insert_into(g::role_assignments)
                .values((
                    g::subject.eq(subject),
                    g::role.eq(role),
                    g::venue.eq(venue),
                    g::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            bump_authz_version!(c, s)?;
            Ok::<_, StoreError>(added == 1)
        }))
    }

    pub fn remove_role(&self, subject: &str, role: &str, venue: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::role_assignments::dsl as g;
            let removed = diesel::delete(
                g::role_assignments
                    .filter(g::subject.eq(subject))
                    .filter(g::role.eq(role))
                    .filter(g::venue.eq(venue)),
            )
            .execute(c)?;
            bump_authz_version!(c, s)?;
            Ok::<_, StoreError>(removed == 1)
        }))
    }

    pub fn role_assignments(&self) -> Result<Vec<RoleAssignment>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            s::role_assignments::table
                .select((
                    s::role_assignments::subject,
                    s::role_assignments::role,
                    s::role_assignments::venue,
                ))
                .load::<RoleAssignment>(c)?
        }))
    }

    pub fn roles_of(&self, subject: &str) -> Result<Vec<RoleAssignment>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            s::role_assignments::table
                .filter(s::role_assignments::subject.eq(subject))
                .select((
                    s::role_assignments::subject,
                    s::role_assignments::role,
                    s::role_assignments::venue,
                ))
                .load::<RoleAssignment>(c)?
        }))
    }

    /// Changes whenever role assignments change, on any node.
    pub fn authz_version(&self) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            s::authz_version::table
                .select(s::authz_version::version)
                .first::<i64>(c)?
        }))
    }

    pub fn create_session(
        &self,
        user_id: &str,
        token_hash: &SessionHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let token_hash = token_hash.expose();
        let (now, expires_at) = (db_instant(now), db_instant(expires_at));
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::sessions::dsl as x;
            // Expired sessions of this user go as a new one comes.
            diesel::delete(
                x::sessions
                    .filter(x::user_id.eq(user_id))
                    .filter(x::expires_at.le(now)),
            )
            .execute(c)?;
            diesel::insert_into(x::sessions)
                .values((
                    x::token_hash.eq(token_hash),
                    x::user_id.eq(user_id),
                    x::created_at.eq(now),
                    x::expires_at.eq(expires_at),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        }))
    }

    /// The active staff account a live session belongs to.
    pub fn session_user(
        &self,
        token_hash: &SessionHash,
        now: DateTime<Utc>,
    ) -> Result<Option<StaffRow>, StoreError> {
        let token_hash = token_hash.expose();
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let user: Option<StaffRow> = on_backend!(&mut *connection, |c, s| {
            use s::sessions::dsl as x;
            use s::staff_users::dsl as u;
            let user_id: Option<String> = x::sessions
                .filter(x::token_hash.eq(token_hash))
                .filter(x::expires_at.gt(now))
                .select(x::user_id)
                .first(c)
                .optional()?;
            match user_id {
                Some(id) => u::staff_users
                    .find(id)
                    .filter(u::active.eq(true))
                    .first::<StaffRow>(c)
                    .optional()?,
                None => None,
            }
        });
        Ok(user)
    }

    pub fn delete_session(&self, token_hash: &SessionHash) -> Result<bool, StoreError> {
        let token_hash = token_hash.expose();
        let mut connection = self.connection()?;
        let deleted = on_backend!(&mut *connection, |c, s| diesel::delete(
            s::sessions::table.filter(s::sessions::token_hash.eq(token_hash))
        )
        .execute(c)?);
        Ok(deleted == 1)
    }

    /// Stores a new API key and binds it to its venues.
    pub fn create_api_key(
        &self,
        key: &NewApiKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::api_keys::dsl as k;
            diesel::insert_into(k::api_keys)
                .values((
                    k::id.eq(key.id),
                    k::name.eq(key.name),
                    k::secret_hash.eq(&key.secret_hash),
                    k::hash_version.eq(key.hash_version),
                    k::role.eq(key.role),
                    k::created_by.eq(key.created_by),
                    k::created_at.eq(now),
                    k::expires_at.eq(key.expires_at.map(db_instant)),
                ))
                .execute(c)?;
            use s::role_assignments::dsl as g;
            for venue in key.venues {
                diesel::insert_into(g::role_assignments)
                    .values((
                        g::subject.eq(format!("apikey:{}", key.id)),
                        g::role.eq(key.role),
                        g::venue.eq(venue),
                        g::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)?;
            }
            bump_authz_version!(c, s)?;
            Ok::<_, StoreError>(())
        }))
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::api_keys::table
            .find(id)
            .first::<ApiKeyRow>(c)
            .optional()?))
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::api_keys::table
            .order(s::api_keys::created_at)
            .load::<ApiKeyRow>(c)?))
    }

    /// API keys, oldest first, `limit` from `offset`: every one (`venues`
    /// none), or those bound to one of `venues`.
    pub fn api_key_page(
        &self,
        venues: Option<&[String]>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ApiKeyRow>, StoreError> {
        let within = self.subjects_in("apikey:", venues)?;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::api_keys::table
                .order((s::api_keys::created_at, s::api_keys::id))
                .offset(offset)
                .limit(limit)
                .into_boxed();
            if let Some(ids) = &within {
                query = query.filter(s::api_keys::id.eq_any(ids.clone()));
            }
            query.load::<ApiKeyRow>(c)?
        }))
    }

    /// How many keys `api_key_page` pages through for `venues`.
    pub fn api_key_count(&self, venues: Option<&[String]>) -> Result<i64, StoreError> {
        let within = self.subjects_in("apikey:", venues)?;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::api_keys::table.count().into_boxed();
            if let Some(ids) = &within {
                query = query.filter(s::api_keys::id.eq_any(ids.clone()));
            }
            query.get_result::<i64>(c)?
        }))
    }

    /// Records that a key was used; at most once a minute per key, so busy
    /// partners do not turn every read into a write.
    pub fn touch_api_key(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = db_instant(now);
        let stale = now - chrono::Duration::minutes(1);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::api_keys::dsl as k;
            diesel::update(
                k::api_keys
                    .find(id)
                    .filter(k::last_used_at.is_null().or(k::last_used_at.lt(stale))),
            )
            .set(k::last_used_at.eq(now))
            .execute(c)?
        });
        Ok(())
    }

    /// Replaces a key's secret hash with one keyed under a newer key
    /// version, unless the row changed since it was read (revoked, or moved
    /// by a parallel request). Only a request that presents the secret can
    /// compute it: a rotation cannot.
    pub fn rehash_api_key(
        &self,
        id: &str,
        old_hash: &[u8],
        new_hash: &[u8],
        new_version: u32,
    ) -> Result<bool, StoreError> {
        let version = crate::guests::db_version(new_version);
        let mut connection = self.connection()?;
        let moved = on_backend!(&mut *connection, |c, s| {
            use s::api_keys::dsl as k;
            diesel::update(
                k::api_keys
                    .find(id)
                    .filter(k::secret_hash.eq(old_hash))
                    .filter(k::revoked_at.is_null()),
            )
            .set((k::secret_hash.eq(new_hash), k::hash_version.eq(version)))
            .execute(c)?
        });
        Ok(moved == 1)
    }

    /// Revokes a key at once; its role assignments go with it.
    pub fn revoke_api_key(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::api_keys::dsl as k;
            let revoked = diesel::update(k::api_keys.find(id).filter(k::revoked_at.is_null()))
                .set(k::revoked_at.eq(now))
                .execute(c)?;
            use s::role_assignments::dsl as g;
            diesel::delete(g::role_assignments.filter(g::subject.eq(format!("apikey:{id}"))))
                .execute(c)?;
            bump_authz_version!(c, s)?;
            Ok::<_, StoreError>(revoked == 1)
        }))
    }

    /// When the scope may try again, if it is held back now.
    pub fn throttled_until(
        &self,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        let until: Option<Option<DateTime<Utc>>> =
            on_backend!(&mut *connection, |c, s| s::login_throttle::table
                .find(scope)
                .select(s::login_throttle::blocked_until)
                .first(c)
                .optional()?);
        Ok(until.flatten().filter(|until| *until > now))
    }

    /// A scope's failures that still count (none after `forget_after`
    /// without one).
    pub fn login_failures(
        &self,
        scope: &str,
        forget_after: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let mut connection = self.connection()?;
        let row: Option<(i32, DateTime<Utc>)> =
            on_backend!(&mut *connection, |c, s| s::login_throttle::table
                .find(scope)
                .select((
                    s::login_throttle::failures,
                    s::login_throttle::last_failure_at
                ))
                .first(c)
                .optional()?);
        Ok(match row {
            Some((count, last)) if now - last < forget_after => u32::try_from(count).unwrap_or(0),
            _ => 0,
        })
    }

    /// Counts a failure of a scope and returns until when it is held back.
    /// Failures older than `forget_after` no longer count.
    pub fn record_login_failure(
        &self,
        scope: &str,
        backoff: Backoff,
        forget_after: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(u32, Option<DateTime<Utc>>), StoreError> {
        let attempt = self.count_login_attempt(scope, backoff, forget_after, now)?;
        Ok((attempt.failures, attempt.blocked_until))
    }

    /// Counts an attempt of a scope *before* it is checked, and says
    /// whether it may be checked at all: one step, so that attempts racing
    /// each other cannot all pass a check that none has counted yet. The
    /// count is one upsert whose row stays locked (PostgreSQL) or whose
    /// transaction holds the write lock (SQLite) until the new block is
    /// written, so the next attempt sees both. A success takes its count
    /// back (`clear_login_failures`, `forgive_login_attempt`).
    pub fn count_login_attempt(
        &self,
        scope: &str,
        backoff: Backoff,
        forget_after: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<LoginAttempt, StoreError> {
        let now = db_instant(now);
        let fresh_since = now - forget_after;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::login_throttle::dsl as t;
            // `blocked_until` is not set here, so the row returned carries
            // the block as it was before this attempt.
            let (count, before): (i32, Option<DateTime<Utc>>) =
                diesel::insert_into(t::login_throttle)
                    .values((
                        t::scope.eq(scope),
                        t::failures.eq(1),
                        t::last_failure_at.eq(now),
                        t::blocked_until.eq(None::<DateTime<Utc>>),
                    ))
                    .on_conflict(t::scope)
                    .do_update()
                    .set((
                        t::failures.eq(diesel::dsl::case_when(
                            t::last_failure_at.gt(fresh_since),
                            t::failures + 1,
                        )
                        .otherwise(1)),
                        t::last_failure_at.eq(now),
                    ))
                    .returning((t::failures, t::blocked_until))
                    .get_result(c)?;
            let failures = u32::try_from(count).unwrap_or(0);
            let held = before.filter(|until| *until > now);
            let blocked_until = before
                .into_iter()
                .chain(backoff(failures).map(|wait| now + wait))
                .max();
            if blocked_until != before {
                diesel::update(t::login_throttle.find(scope))
                    .set(t::blocked_until.eq(blocked_until))
                    .execute(c)?;
            }
            Ok::<_, StoreError>(LoginAttempt {
                failures,
                held,
                blocked_until: blocked_until.filter(|until| *until > now),
            })
        }))
    }

    /// Takes back the count of an attempt that turned out right, for a
    /// scope that a success does not clear (a client address shared by
    /// many): one failure fewer, and no block when that count asks none.
    pub fn forgive_login_attempt(&self, scope: &str, backoff: Backoff) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::login_throttle::dsl as t;
            let count: Option<i32> = diesel::update(t::login_throttle.find(scope))
                .set(t::failures.eq(t::failures - 1))
                .filter(t::failures.gt(0))
                .returning(t::failures)
                .get_result(c)
                .optional()?;
            if let Some(count) = count
                && backoff(u32::try_from(count).unwrap_or(0)).is_none()
            {
                diesel::update(t::login_throttle.find(scope))
                    .set(t::blocked_until.eq(None::<DateTime<Utc>>))
                    .execute(c)?;
            }
            Ok::<_, StoreError>(())
        }))
    }

    /// Forgets a scope's failures (after a successful login, or an admin's
    /// unlock).
    pub fn clear_login_failures(&self, scope: &str) -> Result<(), StoreError> {
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| diesel::delete(
            s::login_throttle::table.find(scope)
        )
        .execute(c)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staff_row_masks_its_email_and_password_hash() {
        let row = StaffRow {
            id: "staff-1".to_owned(),
            email: Personal::new("owner@example.org".to_owned()),
            password_hash: Secret::from("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            active: true,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let shown = format!("{row:?}");
        assert!(!shown.contains("owner@example.org"), "{shown}");
        assert!(!shown.contains("argon2id"), "{shown}");
    }
}
