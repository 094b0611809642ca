//! Logins, sessions, staff accounts, roles, partner API keys and the policy
//! status: the GraphQL side of access control.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::auth::{EVERY_VENUE, Password, Role};
use domain::{Email, VenueId};
use store::{Store, StoreError};

use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error};
use super::guard::{
    EXECUTE, READ, Reach, principal, reach, require, require_for_domain, require_over,
};
use app::auth::{LoginOutcome, Principal};
use app::authz::Authorizer;

/// The client's network address, for login throttling.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

/// How long a staff session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionLength(pub chrono::Duration);

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Bearer token for `Authorization: Bearer …`. Shown once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(SimpleObject, Clone)]
pub struct RoleGrant {
    pub role: String,
    /// The venue, or `*` for every venue.
    pub venue: String,
}

#[derive(SimpleObject)]
pub struct StaffAccount {
    pub id: ID,
    pub email: String,
    pub active: bool,
    pub roles: Vec<RoleGrant>,
}

#[derive(SimpleObject)]
pub struct ApiKeyInfo {
    /// The public part of the key (`kls_<id>_…`).
    pub id: ID,
    pub name: String,
    pub role: String,
    pub venues: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The whole key. Shown once: kluis keeps only a keyed hash of it.
    pub key: String,
    pub api_key: ApiKeyInfo,
}

#[derive(SimpleObject)]
pub struct PolicyStatus {
    /// SHA-256 of the model and policy files in force.
    pub hash: String,
    pub loaded_at: DateTime<Utc>,
    /// Why the last change was refused, if it was; the policy above stayed
    /// in force.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CreateStaffInput {
    pub email: String,
    /// At least 12 characters, not one of the 10,000 most common passwords.
    pub password: String,
    /// admin, manager or staff.
    pub role: String,
    /// The venue the role holds in; none means every venue.
    pub venue_id: Option<ID>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// Usually `partner`.
    pub role: Option<String>,
    /// The venues the key may act for; at least one.
    pub venue_ids: Vec<ID>,
    pub expires_in_days: Option<u32>,
}

/// The account as `reach` may see it: only its roles in venues within
/// reach; none (the account is not shown) when it holds no role there.
fn staff_account_within(
    store: &Store,
    row: store::StaffRow,
    reach: &Reach,
) -> Result<Option<StaffAccount>, StoreError> {
    let roles: Vec<RoleGrant> = store
        .roles_of(&format!("user:{}", row.id))?
        .into_iter()
        .filter(|a| reach.covers(&a.venue))
        .map(|a| RoleGrant {
            role: a.role,
            venue: a.venue,
        })
        .collect();
    if roles.is_empty() && *reach != Reach::Everywhere {
        return Ok(None);
    }
    Ok(Some(StaffAccount {
        id: ID(row.id),
        email: row.email.expose().to_owned(),
        active: row.active,
        roles,
    }))
}

fn staff_account(store: &Store, row: store::StaffRow) -> Result<StaffAccount, StoreError> {
    staff_account_within(store, row, &Reach::Everywhere)?.ok_or_else(|| {
        StoreError::Corrupt("an account vanished from an unfiltered view".to_owned())
    })
}

/// The venues (`*` included) a subject holds roles in: where an account
/// or key belongs, for scoping administration of it.
async fn domains_of(ctx: &Context<'_>, subject: String) -> Result<Vec<String>> {
    let store = store(ctx).clone();
    blocking(move || {
        let mut venues: Vec<String> = store
            .roles_of(&subject)?
            .into_iter()
            .map(|a| a.venue)
            .collect();
        venues.sort();
        venues.dedup();
        Ok(venues)
    })
    .await
}

/// Whether a venue-bound admin reaches a staff account at all: through a
/// role the account holds in one of the caller's venues. An account out of
/// reach answers as one that does not exist.
fn within(reach: &Reach, domains: &[String]) -> bool {
    *reach == Reach::Everywhere || domains.iter().any(|d| reach.covers(d))
}

fn api_key_info(store: &Store, row: store::ApiKeyRow) -> Result<ApiKeyInfo, StoreError> {
    api_key_info_within(store, row, &Reach::Everywhere)?
        .ok_or_else(|| StoreError::Corrupt("a key vanished from an unfiltered view".to_owned()))
}

/// The key as `reach` may see it: only its venues within reach; none (the
/// key is not shown) when it is bound to none of them.
fn api_key_info_within(
    store: &Store,
    row: store::ApiKeyRow,
    reach: &Reach,
) -> Result<Option<ApiKeyInfo>, StoreError> {
    let venues: Vec<String> = store
        .roles_of(&format!("apikey:{}", row.id))?
        .into_iter()
        .map(|a| a.venue)
        .filter(|venue| reach.covers(venue))
        .collect();
    if venues.is_empty() && *reach != Reach::Everywhere {
        return Ok(None);
    }
    Ok(Some(ApiKeyInfo {
        id: ID(row.id),
        name: row.name,
        role: row.role,
        venues,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
    }))
}

fn venue_domain(venue: Option<&ID>) -> Result<String> {
    match venue {
        None => Ok(EVERY_VENUE.to_owned()),
        Some(id) => Ok(VenueId::parse(id).or_gql()?.to_string()),
    }
}

fn assignable(raw: &str) -> Result<Role> {
    app::access::assignable(raw).or_gql()
}

/// Role changes take effect at once on this node (and within a second on
/// the others, which watch the database's version).
async fn refresh(ctx: &Context<'_>) {
    if let Some(authorizer) = ctx.data_opt::<Arc<Authorizer>>() {
        let _ignored = authorizer.reload().await;
    }
}

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// The staff account of the current session.
    async fn me(&self, ctx: &Context<'_>) -> Result<StaffAccount> {
        let Principal::Staff { id, .. } = principal(ctx) else {
            return Err(api_error(Code::Unauthenticated, "log in first"));
        };
        require(ctx, None, coordinates::QUERY_ME, READ)?;
        let store = store(ctx).clone();
        let id = id.clone();
        blocking(move || {
            let row = store
                .staff_by_id(&id)?
                .ok_or(domain::DomainError::not_found("staff account"))?;
            staff_account(&store, row)
        })
        .await
    }

    /// The access policy in force and the last refused change.
    async fn policy_status(&self, ctx: &Context<'_>) -> Result<PolicyStatus> {
        require(ctx, None, coordinates::QUERY_POLICY_STATUS, READ)?;
        let authorizer = ctx
            .data_opt::<Arc<Authorizer>>()
            .ok_or_else(|| api_error(Code::Internal, "no access policy loaded"))?;
        let status = authorizer.status();
        Ok(PolicyStatus {
            hash: status.hash,
            loaded_at: status.loaded_at,
            last_error: status.last_error,
            last_error_at: status.last_error_at,
        })
    }

    /// Staff accounts: every one for an admin of every venue; for one
    /// bound to venues, the accounts holding a role there, with only those
    /// roles.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn staff_accounts(&self, ctx: &Context<'_>) -> Result<Vec<StaffAccount>> {
        require(ctx, None, coordinates::QUERY_STAFF_ACCOUNTS, READ)?;
        let reach = reach(ctx, coordinates::QUERY_STAFF_ACCOUNTS, READ);
        let store = store(ctx).clone();
        blocking(move || {
            let mut accounts = Vec::new();
            for row in store.staff_list()? {
                accounts.extend(staff_account_within(&store, row, &reach)?);
            }
            Ok(accounts)
        })
        .await
    }

    /// API keys: every one for an admin of every venue; for one bound to
    /// venues, the keys bound to one of them, showing only those venues.
    #[graphql(complexity = "super::limits::LIST_ITEMS * child_complexity")]
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyInfo>> {
        require(ctx, None, coordinates::QUERY_API_KEYS, READ)?;
        let reach = reach(ctx, coordinates::QUERY_API_KEYS, READ);
        let store = store(ctx).clone();
        blocking(move || {
            let mut keys = Vec::new();
            for row in store.api_keys()? {
                keys.extend(api_key_info_within(&store, row, &reach)?);
            }
            Ok(keys)
        })
        .await
    }
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Starts a staff session. A wrong password and an unknown e-mail get
    /// the same answer after the same time; repeated failures are held back
    /// (RATE_LIMITED with `retryAfter` seconds) and the tenth locks the
    /// account for 15 minutes.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<LoginPayload> {
        require(ctx, None, coordinates::MUTATION_LOGIN, EXECUTE)?;
        let address = ctx
            .data_opt::<ClientAddress>()
            .map(|a| a.0.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let length = ctx
            .data_opt::<SessionLength>()
            .map_or_else(|| chrono::Duration::hours(12), |l| l.0);
        let now = Utc::now();
        let monitor = ctx.data_opt::<app::monitor::Monitor>();
        let outcome = app::auth::log_in(store(ctx), monitor, email, password, address, length, now)
            .await
            .or_gql()?;
        match outcome {
            LoginOutcome::Success {
                token, expires_at, ..
            } => Ok(LoginPayload {
                token: token.expose().to_owned(),
                expires_at,
            }),
            LoginOutcome::Refused => Err(api_error(
                Code::Unauthenticated,
                "invalid e-mail or password",
            )),
            LoginOutcome::Throttled(until) => {
                let seconds = (until - now).num_seconds().max(1);
                Err(api_error(
                    Code::RateLimited,
                    format!("too many failed logins; try again in {seconds} s"),
                )
                .extend_with(move |_, extensions| extensions.set("retryAfter", seconds)))
            }
        }
    }

    /// Ends the current session.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let Principal::Staff { session, .. } = principal(ctx) else {
            return Err(api_error(Code::Unauthenticated, "log in first"));
        };
        require(ctx, None, coordinates::MUTATION_LOGOUT, EXECUTE)?;
        let store = store(ctx).clone();
        let session = session.clone();
        blocking(move || store.delete_session(&session)).await
    }

    /// Creates a staff account (admins), with a role in a venue the
    /// caller administers; one in every venue only by an admin of every
    /// venue.
    async fn create_staff(
        &self,
        ctx: &Context<'_>,
        input: CreateStaffInput,
    ) -> Result<StaffAccount> {
        require(ctx, None, coordinates::MUTATION_CREATE_STAFF, EXECUTE)?;
        let email = Email::parse("email", &input.email).or_gql()?;
        let password = Password::parse(&input.password).or_gql()?;
        let role = assignable(&input.role)?;
        let venue = venue_domain(input.venue_id.as_ref())?;
        require_for_domain(ctx, &venue, coordinates::MUTATION_CREATE_STAFF, EXECUTE)?;
        let store = store(ctx).clone();
        let account = blocking(move || {
            let hash = password.hash()?;
            let id = store.create_staff(&email, &hash, role.as_str(), &venue, Utc::now())?;
            let row = store
                .staff_by_id(&id)?
                .ok_or(domain::DomainError::not_found("staff account"))?;
            staff_account(&store, row)
        })
        .await?;
        refresh(ctx).await;
        Ok(account)
    }

    /// Gives a staff account a role in a venue (or every venue). An admin
    /// bound to venues grants only there, and only to accounts that
    /// already hold a role there; a role in every venue is granted only by
    /// an admin of every venue.
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        staff_id: ID,
        role: String,
        venue_id: Option<ID>,
    ) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_ASSIGN_ROLE;
        require(ctx, None, OBJECT, EXECUTE)?;
        let role = assignable(&role)?;
        let venue = venue_domain(venue_id.as_ref())?;
        require_for_domain(ctx, &venue, OBJECT, EXECUTE)?;
        let reach = reach(ctx, OBJECT, EXECUTE);
        if !within(
            &reach,
            &domains_of(ctx, format!("user:{}", staff_id.0)).await?,
        ) {
            return Err(super::errors::domain_error(
                &domain::DomainError::not_found("staff account"),
            ));
        }
        let store = store(ctx).clone();
        blocking(move || {
            store
                .staff_by_id(&staff_id)?
                .ok_or(domain::DomainError::not_found("staff account"))?;
            store.assign_role(
                &format!("user:{}", staff_id.0),
                role.as_str(),
                &venue,
                Utc::now(),
            )
        })
        .await?;
        refresh(ctx).await;
        Ok(true)
    }

    /// Takes a role away; answers whether the account held it. An admin
    /// bound to venues removes only roles in them, from accounts it
    /// reaches (others answer `false`, as an account without the role).
    async fn remove_role(
        &self,
        ctx: &Context<'_>,
        staff_id: ID,
        role: String,
        venue_id: Option<ID>,
    ) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_REMOVE_ROLE;
        require(ctx, None, OBJECT, EXECUTE)?;
        let role = Role::parse(&role).or_gql()?;
        let venue = venue_domain(venue_id.as_ref())?;
        require_for_domain(ctx, &venue, OBJECT, EXECUTE)?;
        let reach = reach(ctx, OBJECT, EXECUTE);
        if !within(
            &reach,
            &domains_of(ctx, format!("user:{}", staff_id.0)).await?,
        ) {
            return Ok(false);
        }
        let store = store(ctx).clone();
        let removed = blocking(move || {
            store.remove_role(&format!("user:{}", staff_id.0), role.as_str(), &venue)
        })
        .await?;
        refresh(ctx).await;
        Ok(removed)
    }

    /// Deactivating an account ends its sessions at once. An admin bound
    /// to venues reaches only accounts whose every role is in them (an
    /// account of other venues answers `false`, as an unknown one; one also
    /// holding roles elsewhere is FORBIDDEN).
    async fn set_staff_active(
        &self,
        ctx: &Context<'_>,
        staff_id: ID,
        active: bool,
    ) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_SET_STAFF_ACTIVE;
        require(ctx, None, OBJECT, EXECUTE)?;
        let domains = domains_of(ctx, format!("user:{}", staff_id.0)).await?;
        if !within(&reach(ctx, OBJECT, EXECUTE), &domains) {
            return Ok(false);
        }
        require_over(ctx, &domains, OBJECT, EXECUTE, "staff account")?;
        let store = store(ctx).clone();
        blocking(move || store.set_staff_active(&staff_id, active, Utc::now())).await
    }

    /// Lifts the login lock and backoff of an e-mail address. An admin
    /// bound to venues unlocks only accounts whose every role is in them
    /// (any other address, known or not, is FORBIDDEN).
    async fn unlock_login(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_UNLOCK_LOGIN;
        require(ctx, None, OBJECT, EXECUTE)?;
        if reach(ctx, OBJECT, EXECUTE) != Reach::Everywhere {
            let lookup = store(ctx).clone();
            let address = email.clone();
            let account = blocking(move || match Email::parse("email", &address) {
                Ok(email) => lookup.staff_by_email(&email),
                Err(_) => Ok(None),
            })
            .await?;
            let Some(account) = account else {
                return Err(super::guard::forbidden(ctx, OBJECT));
            };
            let domains = domains_of(ctx, format!("user:{}", account.id)).await?;
            if require_over(ctx, &domains, OBJECT, EXECUTE, "staff account").is_err() {
                return Err(super::guard::forbidden(ctx, OBJECT));
            }
        }
        let store = store(ctx).clone();
        blocking(move || {
            let scope = app::auth::account_scope(&store.keys().current(), &email);
            store.clear_login_failures(&scope)
        })
        .await?;
        Ok(true)
    }

    /// Creates an API key for a partner platform, bound to venues. The key
    /// is in the answer once; kluis keeps a keyed hash.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        require(ctx, None, coordinates::MUTATION_CREATE_API_KEY, EXECUTE)?;
        let venue_ids: Vec<&str> = input.venue_ids.iter().map(|id| id.as_str()).collect();
        let request = app::access::KeyRequest::parse(
            &input.name,
            input.role.as_deref(),
            &venue_ids,
            input.expires_in_days,
        )
        .or_gql()?;
        // Each venue the key will act for must be one the caller
        // administers.
        for venue in &request.venues {
            require_for_domain(ctx, venue, coordinates::MUTATION_CREATE_API_KEY, EXECUTE)?;
        }
        let created_by = match principal(ctx) {
            Principal::Staff { id, .. } => Some(id.clone()),
            _ => None,
        };
        let created = app::access::issue_api_key(store(ctx), request, created_by)
            .await
            .or_gql()?;
        let store = store(ctx).clone();
        let api_key = blocking(move || api_key_info(&store, created.row)).await?;
        refresh(ctx).await;
        Ok(CreatedApiKey {
            key: created.key,
            api_key,
        })
    }

    /// Revokes a key at once; answers whether it was in force. An admin
    /// bound to venues revokes only keys bound to its venues alone (a key
    /// of other venues answers `false`, as an unknown one; one also bound
    /// elsewhere is FORBIDDEN).
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_REVOKE_API_KEY;
        require(ctx, None, OBJECT, EXECUTE)?;
        let reach = reach(ctx, OBJECT, EXECUTE);
        if reach != Reach::Everywhere {
            let domains = domains_of(ctx, format!("apikey:{}", id.0)).await?;
            if !within(&reach, &domains) {
                return Ok(false);
            }
            require_over(ctx, &domains, OBJECT, EXECUTE, "api key")?;
        }
        let store = store(ctx).clone();
        let revoked = blocking(move || store.revoke_api_key(&id, Utc::now())).await?;
        refresh(ctx).await;
        Ok(revoked)
    }
}

/// Creates and stores an API key and answers it as `createApiKey` does,
/// for callers that seed one outside a request (the benchmark).
pub fn create_api_key(
    store: &Store,
    name: &str,
    role: Role,
    venues: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<&str>,
) -> Result<CreatedApiKey, StoreError> {
    let created = app::access::create_api_key(store, name, role, venues, expires_at, created_by)?;
    Ok(CreatedApiKey {
        key: created.key,
        api_key: api_key_info(store, created.row)?,
    })
}
