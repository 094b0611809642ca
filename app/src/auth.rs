//! Who is calling: the principal behind a request's credentials, and
//! logins with their throttling.

use chrono::{DateTime, Utc};
use domain::auth::{ApiKeyToken, SessionToken};
use domain::crypto::{Field, KeyRing};
use domain::ports::ReservationRepository;
use domain::{Email, ManageToken};
use store::{Store, StoreError};

pub use crate::principal::Principal;

/// Credentials were given but do not hold. Deliberately without detail.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing, malformed, expired or revoked credentials")]
    Unauthenticated,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves the `Authorization` header (`Bearer <token>`) to a principal.
/// Runs on the blocking pool: it reads the database.
pub fn resolve(
    store: &Store,
    header: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Principal, AuthError> {
    let Some(header) = header else {
        return Ok(Principal::Anonymous);
    };
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or(AuthError::Unauthenticated)?;
    if let Some(session) = SessionToken::parse(token) {
        let hash = session.hash();
        let user = store
            .session_user(&hash, now)?
            .ok_or(AuthError::Unauthenticated)?;
        let venues = venues_of(store, &format!("user:{}", user.id))?;
        return Ok(Principal::Staff {
            id: user.id,
            email: user.email,
            venues,
            session: hash,
        });
    }
    if let Some(key) = ApiKeyToken::parse(token) {
        let row = store.api_key(&key.id)?.ok_or(AuthError::Unauthenticated)?;
        let ring = store.keys().current();
        let version = u32::try_from(row.hash_version).map_err(|_| AuthError::Unauthenticated)?;
        let expected = ring
            .keyed_hash(version, Field::API_KEY_SECRET, key.secret())
            .map_err(|_| AuthError::Unauthenticated)?;
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_slice(), row.secret_hash.as_slice()).into();
        let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|expires| expires > now);
        if !matches || !live {
            return Err(AuthError::Unauthenticated);
        }
        store.touch_api_key(&row.id, now)?;
        // The secret is at hand only now: a key hashed under an older key
        // version moves to the current one, so that a rotation's old key
        // can be retired without waiting for partners to change keys.
        let current = ring.current_version();
        if version != current {
            let moved = ring
                .keyed_hash(current, Field::API_KEY_SECRET, key.secret())
                .map_err(StoreError::from)
                .and_then(|hash| store.rehash_api_key(&row.id, &row.secret_hash, &hash, current));
            if let Err(error) = moved {
                tracing::warn!(api_key = %row.id, %error, "could not move an API key to the current key version");
            }
        }
        let venues = venues_of(store, &format!("apikey:{}", row.id))?;
        return Ok(Principal::ApiKey { id: row.id, venues });
    }
    if token.starts_with("kmt_") {
        let manage = ManageToken::parse(token).map_err(|_| AuthError::Unauthenticated)?;
        let reservation = store
            .reservation_by_token(&manage)?
            .ok_or(AuthError::Unauthenticated)?;
        return Ok(Principal::Guest(reservation.id));
    }
    Err(AuthError::Unauthenticated)
}

fn venues_of(store: &Store, subject: &str) -> Result<Vec<String>, StoreError> {
    let mut venues: Vec<String> = store
        .roles_of(subject)?
        .into_iter()
        .map(|a| a.venue)
        .collect();
    venues.sort();
    venues.dedup();
    Ok(venues)
}

/// Failed logins per account: a short wait from the third failure on,
/// doubling each time, and a 15-minute lock at the tenth.
pub fn account_backoff(failures: u32) -> Option<chrono::Duration> {
    match failures {
        0..=2 => None,
        10.. => Some(chrono::Duration::minutes(15)),
        n => Some(chrono::Duration::seconds(1 << (n - 3))),
    }
}

/// Failed logins per client address: more room (many people behind one
/// address), the same doubling, and a 15-minute block at the hundredth.
pub fn address_backoff(failures: u32) -> Option<chrono::Duration> {
    match failures {
        0..=19 => None,
        100.. => Some(chrono::Duration::minutes(15)),
        n => Some(chrono::Duration::seconds(1 << ((n - 20).min(6)))),
    }
}

/// A throttle or rate-limit key: `kind:` and an HMAC of the value under a
/// key derived from the master key (current version). Client and e-mail
/// addresses are personal data, and a plain hash of one can be guessed:
/// neither is ever stored as it is. Counters restart when the key version
/// changes, which their one-hour life makes harmless.
pub fn pseudonym(keys: &KeyRing, kind: &str, value: &str) -> String {
    match keys.keyed_hash(
        keys.current_version(),
        Field::THROTTLE_KEY,
        value.as_bytes(),
    ) {
        Ok(hash) => format!("{kind}:{}", hex::encode(&hash[..hash.len().min(16)])),
        // Every version in a ring derives; fall back to one shared bucket.
        Err(_) => format!("{kind}:unknown"),
    }
}

/// Throttle scopes: a pseudonym of the e-mail (kept whether or not an
/// account has it, so that the answer never tells) and the client address.
pub fn account_scope(keys: &KeyRing, email: &str) -> String {
    pseudonym(keys, "account", &email.trim().to_lowercase())
}

/// The throttle scope of a client address: per address for IPv4, per
/// /64 network for IPv6 (see [`client_group`]).
pub fn address_scope(keys: &KeyRing, address: &str) -> String {
    pseudonym(keys, "address", &client_group(address))
}

/// How a login attempt ended.
pub enum LoginOutcome {
    Success {
        user_id: String,
        token: SessionToken,
        expires_at: DateTime<Utc>,
    },
    Refused,
    /// Held back until then (too many failures of the account or address).
    Throttled(DateTime<Utc>),
}

/// Checks a login attempt, counting failures per account and per address.
/// Unknown e-mails cost and answer exactly like wrong passwords.
///
/// Every attempt is counted before the password is checked, and a held
/// back scope is told so by that same count: a burst of parallel attempts
/// gets no more checks than the backoff allows one after the other. A
/// success takes its count back.
pub fn login(
    store: &Store,
    monitor: Option<&crate::monitor::Monitor>,
    email: &str,
    password: &str,
    address: &str,
    session_length: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<LoginOutcome, StoreError> {
    let keys = store.keys().current();
    let account = account_scope(&keys, email);
    let client = address_scope(&keys, address);
    let forget = chrono::Duration::hours(1);
    let by_account = store.count_login_attempt(&account, account_backoff, forget, now)?;
    let by_address = store.count_login_attempt(&client, address_backoff, forget, now)?;
    let blocked_until = by_account
        .blocked_until
        .into_iter()
        .chain(by_address.blocked_until)
        .max();
    if let Some(held) = by_account.held.into_iter().chain(by_address.held).max() {
        // Trying again while held back counts as a failure too: a burst of
        // attempts reaches the lock as fast as slow ones would.
        if let Some(monitor) = monitor {
            let user = match Email::parse("email", email) {
                Ok(email) => store.staff_by_email(&email)?.map(|u| u.id),
                Err(_) => None,
            };
            monitor.login_failed(
                user.as_deref(),
                by_account.failures,
                address,
                by_address.failures,
                now,
            );
        }
        return Ok(LoginOutcome::Throttled(blocked_until.unwrap_or(held)));
    }
    let user = match Email::parse("email", email) {
        Ok(email) => store.staff_by_email(&email)?,
        Err(_) => None,
    };
    let stored = user.as_ref().filter(|u| u.active).map(|u| &u.password_hash);
    if domain::auth::verify_password(password, stored) {
        let user_id = user.map(|u| u.id).unwrap_or_default();
        if let Some(monitor) = monitor {
            monitor.login_succeeded(&user_id, by_account.failures.saturating_sub(1), now);
        }
        store.clear_login_failures(&account)?;
        store.forgive_login_attempt(&client, address_backoff)?;
        let token = SessionToken::generate()?;
        let expires_at = now + session_length;
        store.create_session(&user_id, &token.hash(), now, expires_at)?;
        return Ok(LoginOutcome::Success {
            user_id,
            token,
            expires_at,
        });
    }
    if let Some(monitor) = monitor {
        let user = user.as_ref().map(|u| u.id.as_str());
        monitor.login_failed(user, by_account.failures, address, by_address.failures, now);
    }
    Ok(match blocked_until {
        Some(until) if until > now + chrono::Duration::seconds(1) => LoginOutcome::Throttled(until),
        _ => LoginOutcome::Refused,
    })
}

/// The group a client address counts in for every per-address limit: the
/// address itself for IPv4 (an IPv4-mapped IPv6 address is IPv4), its /64
/// network for IPv6, since whoever holds one address of a /64 usually holds
/// all 2^64 of them. Anything that is not an address counts as itself.
pub fn client_group(address: &str) -> String {
    use std::net::IpAddr;
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let network = u128::from(v6) & !(u128::MAX >> 64);
                format!("{}/64", std::net::Ipv6Addr::from(network))
            }
        },
        Err(_) => address.to_owned(),
    }
}

/// A staff login as a use case: checks the attempt off the async executor
/// (see [`login`]) and logs a success by account id.
pub async fn log_in(
    store: &Store,
    monitor: Option<&crate::monitor::Monitor>,
    email: String,
    password: String,
    address: String,
    session_length: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<LoginOutcome, crate::Error> {
    let store = store.clone();
    let monitor = monitor.cloned();
    let outcome = crate::error::blocking(move || {
        Ok(login(
            &store,
            monitor.as_ref(),
            &email,
            &password,
            &address,
            session_length,
            now,
        )?)
    })
    .await?;
    if let LoginOutcome::Success { user_id, .. } = &outcome {
        tracing::info!(staff = %user_id, "login");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_lock_for_fifteen_minutes_at_the_tenth_failure() {
        assert_eq!(account_backoff(2), None);
        assert_eq!(account_backoff(3), Some(chrono::Duration::seconds(1)));
        assert_eq!(account_backoff(5), Some(chrono::Duration::seconds(4)));
        assert_eq!(account_backoff(9), Some(chrono::Duration::seconds(64)));
        assert_eq!(account_backoff(10), Some(chrono::Duration::minutes(15)));
    }

    #[test]
    fn addresses_get_more_room_but_the_same_doubling() {
        assert_eq!(address_backoff(19), None);
        assert_eq!(address_backoff(21), Some(chrono::Duration::seconds(2)));
        assert_eq!(address_backoff(99), Some(chrono::Duration::seconds(64)));
        assert_eq!(address_backoff(100), Some(chrono::Duration::minutes(15)));
    }

    #[test]
    fn login_backoff_holds_a_whole_ipv6_64_network_as_one_address() {
        let keys = KeyRing::for_testing(1);
        let scope = |address: &str| address_scope(&keys, address);
        assert_eq!(scope("2001:db8:7:7::1"), scope("2001:db8:7:7:abcd::2"));
        assert_ne!(scope("2001:db8:7:7::1"), scope("2001:db8:7:8::1"));
        assert_ne!(scope("192.0.2.1"), scope("192.0.2.2"));
        assert_eq!(scope("::ffff:192.0.2.1"), scope("192.0.2.1"));
        assert!(!scope("192.0.2.1").contains("192.0.2"));
    }

    #[test]
    fn account_scopes_are_keyed_pseudonyms_of_the_email() {
        let keys = KeyRing::for_testing(1);
        let scope = account_scope(&keys, " Ada@Example.org ");
        assert_eq!(scope, account_scope(&keys, "ada@example.org"));
        assert!(!scope.contains("ada"));
        // Not the plain hash anyone could compute from a guessed address.
        use sha2::{Digest, Sha256};
        let plain = hex::encode(Sha256::digest(b"ada@example.org"));
        assert!(!scope.contains(&plain[..16]));
        // Another master key gives another pseudonym.
        let other =
            KeyRing::new(vec![(1, [7u8; domain::crypto::MASTER_KEY_BYTES])]).expect("valid");
        assert_ne!(scope, account_scope(&other, "ada@example.org"));
    }
}
