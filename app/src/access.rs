//! Partner API keys: issuing one (`createApiKey`, `kluis apikey create`);
//! guests' proof of control of an e-mail address (access codes), a lost
//! manage token reissued to whoever proved it, and the
//! backoff that holds back guessers of guests' secrets.

use chrono::{DateTime, Utc};
use domain::auth::{ApiKeyToken, Role};
use domain::crypto::Field;
use domain::{Email, VenueId};
use store::{Store, StoreError};

use crate::error::{Error, blocking};

/// A key just issued: the whole key, shown once (kluis keeps only a keyed
/// hash of it), and the stored row.
pub struct CreatedKey {
    pub key: String,
    pub row: store::ApiKeyRow,
}

/// A role that may be given to a staff account or key (not `guest` or
/// `anonymous`).
pub fn assignable(raw: &str) -> Result<Role, Error> {
    let role = Role::parse(raw)?;
    if !role.is_assignable() {
        return Err(Error::Refused(
            "role: guest and anonymous cannot be assigned".to_owned(),
        ));
    }
    Ok(role)
}

/// An API key as asked for, checked: a display name, an assignable role
/// (`partner` unless named), at least one venue, and a lifetime of 1 to
/// 3660 days if any.
pub struct KeyRequest {
    pub name: String,
    pub role: Role,
    pub venues: Vec<String>,
    pub expires_in_days: Option<u32>,
}

impl KeyRequest {
    pub fn parse(
        name: &str,
        role: Option<&str>,
        venue_ids: &[&str],
        expires_in_days: Option<u32>,
    ) -> Result<Self, Error> {
        let name = domain::venue::check_display_name(name)
            .map_err(|reason| Error::Refused(format!("name: {reason}")))?;
        let role = assignable(role.unwrap_or("partner"))?;
        if venue_ids.is_empty() {
            return Err(Error::Refused(
                "venueIds: give at least one venue".to_owned(),
            ));
        }
        let venues = venue_ids
            .iter()
            .map(|id| VenueId::parse(id).map(|v| v.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name,
            role,
            venues,
            expires_in_days,
        })
    }
}

/// Issues the key asked for (see [`create_api_key`]), off the async
/// executor.
pub async fn issue_api_key(
    store: &Store,
    request: KeyRequest,
    created_by: Option<String>,
) -> Result<CreatedKey, Error> {
    let expires_at = request
        .expires_in_days
        .map(|days| Utc::now() + chrono::Duration::days(i64::from(days.clamp(1, 3660))));
    let store = store.clone();
    blocking(move || {
        Ok(create_api_key(
            &store,
            &request.name,
            request.role,
            &request.venues,
            expires_at,
            created_by.as_deref(),
        )?)
    })
    .await
}

/// Creates and stores an API key; shared by the mutation and the CLI.
pub fn create_api_key(
    store: &Store,
    name: &str,
    role: Role,
    venues: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<&str>,
) -> Result<CreatedKey, StoreError> {
    let (token, full) = ApiKeyToken::generate()?;
    let ring = store.keys().current();
    let version = ring.current_version();
    let secret_hash = ring.keyed_hash(version, Field::API_KEY_SECRET, token.secret())?;
    store.create_api_key(
        &store::NewApiKey {
            id: &token.id,
            name,
            secret_hash,
            hash_version: i32::try_from(version).unwrap_or(i32::MAX),
            role: role.as_str(),
            venues,
            created_by,
            expires_at,
        },
        Utc::now(),
    )?;
    let row = store
        .api_key(&token.id)?
        .ok_or(domain::DomainError::not_found("api key"))?;
    Ok(CreatedKey { key: full, row })
}

/// Checks a guest's secret (manage token, access token, access code)
/// behind the per-address backoff. The attempt is counted before the check,
/// in one step with reading the backoff, so a burst of parallel guesses
/// gets no more checks than patient guessing would; an attempt while held
/// back counts too and is not checked. A secret that proves right takes
/// its count back. `Err(until)`: held back until then.
pub fn behind_backoff<T>(
    store: &Store,
    scope: &str,
    at: DateTime<Utc>,
    check: impl FnOnce() -> Result<T, StoreError>,
    is_right: impl Fn(&T) -> bool,
) -> Result<Result<T, DateTime<Utc>>, StoreError> {
    let attempt = store.count_login_attempt(
        scope,
        crate::auth::address_backoff,
        chrono::Duration::hours(1),
        at,
    )?;
    if let Some(held) = attempt.held {
        return Ok(Err(attempt
            .blocked_until
            .map_or(held, |until| until.max(held))));
    }
    let answer = check()?;
    if is_right(&answer) {
        store.forgive_login_attempt(scope, crate::auth::address_backoff)?;
    }
    Ok(Ok(answer))
}

/// Sends a one-time code to `email` if it booked at `venue`, valid for 15
/// minutes; does the same work for unknown addresses, so the caller's
/// answer does not tell whether the address is known.
pub async fn request_access_code(
    store: &Store,
    venue: VenueId,
    email: Email,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let store = store.clone();
    blocking(move || {
        if let Some(issued) = store.issue_access_code(venue, &email, at)? {
            // A code mail that has not left by the time the code
            // expires is destroyed unsent rather than retried.
            store.enqueue_until(
                "access_code",
                Some(venue),
                &store::Outgoing::Email(store::Mail {
                    to: issued.to,
                    subject: "Your access code".to_owned(),
                    body: format!(
                        "Your code to see or change your booking data is {}.\n\
                         It works for 15 minutes. If you did not ask for it, ignore this message.\n",
                        issued.code.expose()
                    ),
                }),
                at,
                Some(issued.expires_at),
            )?;
        }
        Ok(())
    })
    .await
}

/// Redeems a code from [`request_access_code`] behind the backoff of
/// `scope` (the caller's address). `Ok(Err(until))`: held back until then.
pub async fn redeem_access_code(
    store: &Store,
    scope: String,
    venue: VenueId,
    email: Email,
    code: String,
    at: DateTime<Utc>,
) -> Result<Result<store::Redemption, DateTime<Utc>>, Error> {
    if code.len() > 32 {
        return Err(Error::Refused("code: too long".to_owned()));
    }
    let store = store.clone();
    blocking(move || {
        Ok(behind_backoff(
            &store,
            &scope,
            at,
            || store.redeem_access_code(venue, &email, &code, at),
            |redemption| matches!(redemption, store::Redemption::Token(_)),
        )?)
    })
    .await
}

/// Gives one of the bookings an access token opens (`guests` at `venue`) a
/// fresh manage token, for a guest who lost theirs; the old one stops
/// working. NOT_FOUND when the reservation is not one of theirs. Audited
/// as the guest's.
pub async fn reissue_manage_token(
    store: &Store,
    reservation: domain::ReservationId,
    venue: VenueId,
    guests: Vec<domain::GuestId>,
    at: DateTime<Utc>,
) -> Result<domain::ManageToken, Error> {
    let store = store.clone();
    blocking(move || {
        let token = store
            .reissue_manage_token(reservation, &guests)?
            .ok_or(domain::DomainError::not_found("reservation"))?;
        store.audit(
            &[store::AuditEvent {
                principal: "guest".to_owned(),
                action: store::AuditAction::ReissueToken,
                object: format!("reservation:{reservation}"),
                fields: store::audit_fields::MANAGE_TOKEN.to_owned(),
                venue_id: Some(venue.to_string()),
            }],
            at,
        )?;
        Ok(token)
    })
    .await
}
