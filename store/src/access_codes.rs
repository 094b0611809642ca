//! Proof of control of an e-mail address, for the rights over a guest's
//! whole history at a venue: a one-time code goes to the address through
//! the outbox; redeeming it gives a short-lived access token that opens
//! every booking made with that address at that venue.
//!
//! A code is issued, stored and counted for any well-formed address, known
//! to the venue or not (only known addresses are sent one), so that neither
//! the answers nor the work done tell which addresses a venue knows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::Field;
use domain::{AccessToken, Email, GuestId, VenueId};

use crate::guests::{db_version, guest_ids_by_email, open_text, parse_guest_ids, tokens};
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Tries per code, the right one included: the sixth is refused however
/// the first five were spent, in sequence or all at once.
pub const CODE_ATTEMPTS: i32 = 5;
/// Codes an address can be sent per hour: enough for a lost e-mail, too
/// few to flood an inbox.
const CODES_PER_HOUR: i64 = 3;
/// How long an access code works.
pub const CODE_MINUTES: i64 = 15;
/// How long an access token opens a guest's history: long enough to read
/// an export and act on it, short enough that a forgotten tab is harmless.
pub const ACCESS_MINUTES: i64 = 30;

/// What redeeming a code gave.
#[derive(Debug)]
pub enum Redemption {
    /// An access token for every booking made with the address at the venue.
    Token(AccessToken),
    /// No live code for the address, or the wrong code.
    NotFound,
    /// Too many tries: a new code must be requested.
    Exhausted,
}

/// A code to send, with its recipient; `None` from `issue_access_code`
/// when the address is unknown or the hourly limit is reached (the caller
/// answers the same either way).
pub struct IssuedCode {
    pub code: domain::Personal,
    pub to: Email,
    /// When the code stops working: its mail is not worth sending after.
    pub expires_at: DateTime<Utc>,
}

/// What an access token opens: the guest records of one address at one
/// venue, found anew at each use (a booking made since is included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessScope {
    pub venue: VenueId,
    pub guests: Vec<GuestId>,
}

fn code_hash(
    ring: &domain::crypto::KeyRing,
    version: u32,
    id: &str,
    code: &str,
) -> Result<Vec<u8>, StoreError> {
    Ok(ring.keyed_hash(
        version,
        Field::ACCESS_CODE,
        format!("{id}:{code}").as_bytes(),
    )?)
}

impl Store {
    /// Stores a new code for the address (known or not) and answers it for
    /// sending when the venue knows the address.
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
        let current_token =
            ring.lookup_token_with(version, Field::GUEST_EMAIL, email.expose().as_bytes())?;
        let venue = venue.to_string();
        let code = format!("{:06}", uuid::Uuid::new_v4().as_u128() % 1_000_000);
        let id = uuid::Uuid::new_v4().to_string();
        let hash = code_hash(&ring, version, &id, &code)?;
        let mut connection = self.connection()?;
        let issued = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::access_codes::dsl as a;
            let recent: i64 = a::access_codes
                .filter(a::venue_id.eq(&venue))
                .filter(a::email_lookup.eq_any(&email_tokens))
                .filter(a::created_at.gt(now - chrono::Duration::hours(1)))
                .count()
                .get_result(c)?;
            if recent >= CODES_PER_HOUR {
                return Ok::<_, StoreError>(false);
            }
            diesel::insert_into(a::access_codes)
                .values((
                    a::id.eq(&id),
                    a::venue_id.eq(&venue),
                    a::email_lookup.eq(&current_token),
                    a::code_hash.eq(&hash),
                    a::key_version.eq(db_version(version)),
                    a::attempts.eq(0),
                    a::expires_at.eq(now + chrono::Duration::minutes(CODE_MINUTES)),
                    a::created_at.eq(now),
                ))
                .execute(c)?;
            let known = !guest_ids_by_email!(c, s, &venue, &email_tokens)?.is_empty();
            Ok(known)
        }))?;
        Ok(issued.then(|| IssuedCode {
            code: domain::Personal::new(code),
            to: email.clone(),
            expires_at: now + chrono::Duration::minutes(CODE_MINUTES),
        }))
    }

    /// Checks a code for the address; the right one yields an access token.
    /// Every try, right or wrong, spends one of the code's attempts in one
    /// atomic step before the code is compared, so parallel guesses get no
    /// more tries than sequential ones.
    pub fn redeem_access_code(
        &self,
        venue: VenueId,
        email: &Email,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        let now = db_instant(now);
        let ring = self.keys().current();
        let version = ring.current_version();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let venue = venue.to_string();
        let token = AccessToken::generate()?;
        let grant = uuid::Uuid::new_v4().to_string();
        let email_sealed = ring.seal_with(
            version,
            Field::ACCESS_GRANT_EMAIL,
            &grant,
            email.expose().as_bytes(),
        )?;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::access_codes::dsl as a;
            let live: Option<(String, Vec<u8>, i32)> = a::access_codes
                .filter(a::venue_id.eq(&venue))
                .filter(a::email_lookup.eq_any(&email_tokens))
                .filter(a::used_at.is_null())
                .filter(a::expires_at.gt(now))
                .order(a::created_at.desc())
                .select((a::id, a::code_hash, a::key_version))
                .first(c)
                .optional()?;
            let Some((id, stored, code_version)) = live else {
                return Ok::<_, StoreError>(Redemption::NotFound);
            };
            // Spend a try first, in one statement: of parallel tries, only
            // as many as are left get past this line.
            let spent = diesel::update(
                a::access_codes
                    .find(&id)
                    .filter(a::attempts.lt(CODE_ATTEMPTS))
                    .filter(a::used_at.is_null()),
            )
            .set(a::attempts.eq(a::attempts + 1))
            .execute(c)?;
            if spent != 1 {
                return Ok(Redemption::Exhausted);
            }
            let code_version = u32::try_from(code_version)
                .map_err(|_| StoreError::Corrupt("access code key version".to_owned()))?;
            let given = code_hash(&ring, code_version, &id, code.trim())?;
            let matches: bool =
                subtle::ConstantTimeEq::ct_eq(given.as_slice(), stored.as_slice()).into();
            if !matches {
                let attempts: i32 = a::access_codes.find(&id).select(a::attempts).first(c)?;
                return Ok(if attempts >= CODE_ATTEMPTS {
                    Redemption::Exhausted
                } else {
                    Redemption::NotFound
                });
            }
            let used = diesel::update(a::access_codes.find(&id).filter(a::used_at.is_null()))
                .set(a::used_at.eq(Some(now)))
                .execute(c)?;
            if used != 1 {
                return Ok(Redemption::NotFound);
            }
            use s::guest_access_grants::dsl as g;
            diesel::insert_into(g::guest_access_grants)
                .values((
                    g::id.eq(&grant),
                    g::token_hash.eq(token.hash()),
                    g::venue_id.eq(&venue),
                    g::email_sealed.eq(&email_sealed),
                    g::key_version.eq(db_version(version)),
                    g::expires_at.eq(now + chrono::Duration::minutes(ACCESS_MINUTES)),
                    g::created_at.eq(now),
                ))
                .execute(c)?;
            Ok(Redemption::Token(token.clone()))
        }))
    }

    /// The guest records an access token opens, or `None` for a token that
    /// matches nothing or has expired.
    pub fn access_scope(
        &self,
        token: &AccessToken,
        now: DateTime<Utc>,
    ) -> Result<Option<AccessScope>, StoreError> {
        let now = db_instant(now);
        let hash = token.hash();
        let mut connection = self.connection()?;
        let grant: Option<(String, String, Vec<u8>)> = on_backend!(&mut *connection, |c, s| {
            use s::guest_access_grants::dsl as g;
            g::guest_access_grants
                .filter(g::token_hash.eq(&hash))
                .filter(g::expires_at.gt(now))
                .select((g::id, g::venue_id, g::email_sealed))
                .first(c)
                .optional()?
        });
        let Some((id, venue, sealed)) = grant else {
            return Ok(None);
        };
        let ring = self.keys().current();
        let email = open_text(&ring, Field::ACCESS_GRANT_EMAIL, &id, &sealed)?;
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(&email))?;
        let guests: Vec<String> = on_backend!(&mut *connection, |c, s| guest_ids_by_email!(
            c,
            s,
            &venue,
            &email_tokens
        )?);
        Ok(Some(AccessScope {
            venue: VenueId::parse(&venue)
                .map_err(|_| StoreError::Corrupt(format!("access grant {id} venue")))?,
            guests: parse_guest_ids(guests)?,
        }))
    }

    /// The guest records at a venue that share the e-mail address of this
    /// one, itself first: the history staff act on when a guest asks at the
    /// desk. A record without an address stands alone.
    pub fn guests_sharing_email(&self, guest: GuestId) -> Result<Vec<GuestId>, StoreError> {
        let id = guest.to_string();
        let mut connection = self.connection()?;
        let row: Option<(String, Option<Vec<u8>>, bool)> = on_backend!(&mut *connection, |c, s| {
            use s::guests::dsl as g;
            g::guests
                .find(&id)
                .select((g::venue_id, g::email_sealed, g::data_key))
                .first(c)
                .optional()?
        });
        let Some((venue, Some(sealed), uses_data_key)) = row else {
            return Ok(vec![guest]);
        };
        let ring = self.keys().current();
        let keys = self.key_store().keys_of(&ring, std::slice::from_ref(&id))?;
        let access = keys.access(&id, uses_data_key)?;
        if matches!(access, crate::GuestAccess::Shredded) {
            return Ok(vec![guest]);
        }
        let email = crate::guests::open_personal(&ring, access, Field::GUEST_EMAIL, &id, &sealed)?;
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(&email))?;
        let guests: Vec<String> = on_backend!(&mut *connection, |c, s| guest_ids_by_email!(
            c,
            s,
            &venue,
            &email_tokens
        )?);
        // The record asked about first: it is the one the request is about.
        let mut guests = parse_guest_ids(guests)?;
        guests.retain(|g| *g != guest);
        guests.insert(0, guest);
        Ok(guests)
    }

    /// Gives one of the reservations of `guests` a fresh manage token (the
    /// old one stops working); `None` when the reservation is not theirs.
    pub fn reissue_manage_token(
        &self,
        reservation: domain::ReservationId,
        guests: &[GuestId],
    ) -> Result<Option<domain::ManageToken>, StoreError> {
        let token = domain::ManageToken::generate()?;
        let id = reservation.to_string();
        let guests: Vec<String> = guests.iter().map(ToString::to_string).collect();
        let mut connection = self.connection()?;
        let updated = on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            diesel::update(
                r::reservations
                    .find(&id)
                    .filter(r::guest_id.eq_any(&guests)),
            )
            .set(r::manage_token_hash.eq(Some(token.hash())))
            .execute(c)?
        });
        Ok((updated == 1).then_some(token))
    }

    /// Deletes access codes and access grants whose time is over: neither
    /// outlives its purpose. Returns how many rows went.
    pub fn purge_access_secrets(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::access_codes::dsl as a;
            use s::guest_access_grants::dsl as g;
            // Codes stay an hour past their expiry: the hourly sending
            // limit counts them.
            let codes = diesel::delete(
                a::access_codes.filter(a::expires_at.lt(now - chrono::Duration::hours(1))),
            )
            .execute(c)?;
            let grants =
                diesel::delete(g::guest_access_grants.filter(g::expires_at.lt(now))).execute(c)?;
            Ok::<_, StoreError>(codes + grants)
        }))
    }
}
