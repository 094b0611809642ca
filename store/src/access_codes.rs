//! One-time codes for guests who lost their manage token: the code goes to
//! the guest's e-mail address through the outbox; redeeming it gives a
//! fresh manage token (the lost one stops working).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::Field;
use domain::{Email, ManageToken, VenueId};

use crate::guests::{db_version, find_guest_id, tokens};
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Wrong tries before a code dies.
pub const CODE_ATTEMPTS: i32 = 5;
/// Codes a guest can be sent per hour: enough for a lost e-mail, too few
/// to flood their inbox.
const CODES_PER_HOUR: i64 = 3;
const CODE_MINUTES: i64 = 15;

/// What redeeming a code gave.
#[derive(Debug)]
pub enum Redemption {
    /// A fresh manage token for the guest's latest reservation.
    Token(ManageToken),
    /// Unknown address, no live code, or the wrong code.
    NotFound,
    /// Too many wrong tries: a new code must be requested.
    Exhausted,
}

/// A code to send, with its recipient; `None` from `issue_access_code`
/// when the address is unknown or the hourly limit is reached (the caller
/// answers the same either way).
pub struct IssuedCode {
    pub code: domain::Personal,
    pub to: Email,
}

fn code_hash(
    ring: &domain::crypto::KeyRing,
    version: u32,
    guest: &str,
    code: &str,
) -> Result<Vec<u8>, StoreError> {
    Ok(ring.keyed_hash(
        version,
        Field::ACCESS_CODE,
        format!("{guest}:{code}").as_bytes(),
    )?)
}

impl Store {
    pub fn issue_access_code(
        &self,
        venue: VenueId,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<IssuedCode>, StoreError> {
        let now = db_instant(now);
        let ring = self.keys().current();
        let version = ring.current_version();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let empty: Vec<Vec<u8>> = Vec::new();
        let venue = venue.to_string();
        let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
        let mut connection = self.connection()?;
        let issued = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let Some(guest) = find_guest_id!(c, s, &venue, &email_tokens, &empty) else {
                return Ok::<_, StoreError>(false);
            };
            use s::access_codes::dsl as a;
            let recent: i64 = a::access_codes
                .filter(a::guest_id.eq(&guest))
                .filter(a::created_at.gt(now - chrono::Duration::hours(1)))
                .count()
                .get_result(c)?;
            if recent >= CODES_PER_HOUR {
                return Ok(false);
            }
            diesel::insert_into(a::access_codes)
                .values((
                    a::id.eq(uuid::Uuid::new_v4().to_string()),
                    a::guest_id.eq(&guest),
                    a::code_hash.eq(code_hash(&ring, version, &guest, &code)?),
                    a::key_version.eq(db_version(version)),
                    a::attempts.eq(0),
                    a::expires_at.eq(now + chrono::Duration::minutes(CODE_MINUTES)),
                    a::created_at.eq(now),
                ))
                .execute(c)?;
            Ok(true)
        }))?;
        Ok(issued.then(|| IssuedCode {
            code: domain::Personal::new(code),
            to: email.clone(),
        }))
    }

    pub fn redeem_access_code(
        &self,
        venue: VenueId,
        email: &Email,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        let now = db_instant(now);
        let ring = self.keys().current();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let empty: Vec<Vec<u8>> = Vec::new();
        let venue = venue.to_string();
        let token = ManageToken::generate()?;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let Some(guest) = find_guest_id!(c, s, &venue, &email_tokens, &empty) else {
                return Ok::<_, StoreError>(Redemption::NotFound);
            };
            use s::access_codes::dsl as a;
            let live: Option<(String, Vec<u8>, i32, i32)> = a::access_codes
                .filter(a::guest_id.eq(&guest))
                .filter(a::used_at.is_null())
                .filter(a::expires_at.gt(now))
                .order(a::created_at.desc())
                .select((a::id, a::code_hash, a::key_version, a::attempts))
                .first(c)
                .optional()?;
            let Some((id, stored, version, attempts)) = live else {
                return Ok(Redemption::NotFound);
            };
            if attempts >= CODE_ATTEMPTS {
                return Ok(Redemption::Exhausted);
            }
            let version = u32::try_from(version)
                .map_err(|_| StoreError::Corrupt("access code key version".to_owned()))?;
            let given = code_hash(&ring, version, &guest, code.trim())?;
            let matches: bool =
                subtle::ConstantTimeEq::ct_eq(given.as_slice(), stored.as_slice()).into();
            if !matches {
                diesel::update(a::access_codes.find(&id))
                    .set(a::attempts.eq(attempts + 1))
                    .execute(c)?;
                return Ok(if attempts + 1 >= CODE_ATTEMPTS {
                    Redemption::Exhausted
                } else {
                    Redemption::NotFound
                });
            }
            diesel::update(a::access_codes.find(&id))
                .set(a::used_at.eq(Some(now)))
                .execute(c)?;
            use s::reservations::dsl as r;
            let latest: Option<String> = r::reservations
                .filter(r::guest_id.eq(&guest))
                .order(r::starts_at.desc())
                .select(r::id)
                .first(c)
                .optional()?;
            let Some(latest) = latest else {
                return Ok(Redemption::NotFound);
            };
            diesel::update(r::reservations.find(&latest))
                .set(r::manage_token_hash.eq(Some(token.hash())))
                .execute(c)?;
            Ok(Redemption::Token(token.clone()))
        }))
    }
}
