//! Logins, sessions, staff accounts, roles, partner API keys and the policy
//! status: the GraphQL side of access control.

use std::sync::Arc;

use async_graphql::connection::Edge;
use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, ID, InputObject, Object, OutputType, Result,
    SimpleObject,
};
use chrono::{DateTime, Utc};
use domain::auth::{EVERY_VENUE, Password};
use domain::ports::VenueRepository;
use domain::{DomainError, Email, VenueId};
use store::{Store, StoreError};

pub use super::context::ClientAddress;
use super::context::{blocking, store};
use super::coordinates;
use super::errors::{Code, OrGraphqlError, api_error, domain_error};
use super::guard::{
    EXECUTE, READ, Reach, principal, reach, require, require_for_domain, require_over,
};
use super::pages::{Cursor, Page, page, position};
use super::payload::{Checks, UserError, UserErrorCode, outcome};
use super::types::VenueObject;
use app::auth::{LoginOutcome, Principal};
use app::authz::Authorizer;

/// How long a staff session lasts.
#[derive(Debug, Clone, Copy)]
pub struct SessionLength(pub chrono::Duration);

/// A role a staff account or an API key can hold, as the access policy
/// (`policies/policy.csv`) names it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum RoleName {
    /// Administers staff, keys, breaches, alerts and the audit trail.
    Admin,
    /// Runs a venue: its settings, bookings and guests' requests.
    Manager,
    /// Works a venue's day sheet.
    Staff,
    /// A partner platform booking through an API key.
    Partner,
}

impl From<RoleName> for domain::auth::Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Self::Admin,
            RoleName::Manager => Self::Manager,
            RoleName::Staff => Self::Staff,
            RoleName::Partner => Self::Partner,
        }
    }
}

impl RoleName {
    /// The role as stored; none for one this API does not hand out (a
    /// policy may name more).
    fn of(raw: &str) -> Option<Self> {
        match domain::auth::Role::parse(raw).ok()? {
            domain::auth::Role::Admin => Some(Self::Admin),
            domain::auth::Role::Manager => Some(Self::Manager),
            domain::auth::Role::Staff => Some(Self::Staff),
            domain::auth::Role::Partner => Some(Self::Partner),
            domain::auth::Role::Guest | domain::auth::Role::Anonymous => None,
        }
    }

    fn as_str(self) -> &'static str {
        domain::auth::Role::from(self).as_str()
    }
}

/// The venue `id` names, for a reference field: null when there is none
/// (any more).
pub(super) async fn venue_reference(
    ctx: &Context<'_>,
    id: Option<&str>,
) -> Result<Option<VenueObject>> {
    let Some(id) = id.and_then(|raw| VenueId::parse(raw).ok()) else {
        return Ok(None);
    };
    let store = store(ctx).clone();
    Ok(blocking(move || store.venue(id)).await?.map(VenueObject))
}

/// A role an account holds, where it holds it.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct RoleGrant {
    pub role: RoleName,
    /// Whether the role holds in every venue (then `venue` is null).
    pub every_venue: bool,
    #[graphql(skip)]
    venue_id: Option<String>,
}

#[ComplexObject]
impl RoleGrant {
    /// The venue the role holds in; null when it holds in every venue.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<VenueObject>> {
        venue_reference(ctx, self.venue_id.as_deref()).await
    }
}

fn grant(assignment: store::RoleAssignment) -> Option<RoleGrant> {
    let every_venue = assignment.venue == EVERY_VENUE;
    Some(RoleGrant {
        role: RoleName::of(&assignment.role)?,
        every_venue,
        venue_id: (!every_venue).then_some(assignment.venue),
    })
}

/// A person who logs in to kluis.
#[derive(SimpleObject)]
pub struct StaffAccount {
    #[graphql(owned)]
    pub id: ID,
    pub email: String,
    pub active: bool,
    /// Its roles, as far as the caller administers them.
    pub roles: Vec<RoleGrant>,
}

/// A partner platform's key (never its secret).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ApiKey {
    /// The public part of the key (`kls_<id>_…`).
    #[graphql(owned)]
    pub id: ID,
    pub name: String,
    pub role: Option<RoleName>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    venue_ids: Vec<String>,
}

#[ComplexObject]
impl ApiKey {
    /// The venues it acts for, as far as the caller administers them;
    /// none once revoked.
    async fn venues(&self, ctx: &Context<'_>) -> Result<Vec<VenueObject>> {
        let mut venues = Vec::with_capacity(self.venue_ids.len());
        for id in &self.venue_ids {
            venues.extend(venue_reference(ctx, Some(id)).await?);
        }
        Ok(venues)
    }
}

/// A key as created: the whole key (shown once) and what is kept of it.
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
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
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

/// A new session.
#[derive(SimpleObject, Default)]
pub struct LoginPayload {
    /// Bearer token for `Authorization: Bearer …`. Shown once.
    pub token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Who logged in.
    pub staff: Option<StaffAccount>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct LogoutPayload {
    /// Whether a session ended (false: it had ended already).
    pub logged_out: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateStaffInput {
    pub email: String,
    /// At least 12 characters, not one of the 10,000 most common passwords.
    pub password: String,
    pub role: RoleName,
    /// The venue the role holds in; none means every venue.
    pub venue_id: Option<ID>,
}

#[derive(SimpleObject, Default)]
pub struct CreateStaffPayload {
    pub staff: Option<StaffAccount>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RoleChangeInput {
    pub staff_id: ID,
    pub role: RoleName,
    /// The venue the role holds in; none means every venue.
    pub venue_id: Option<ID>,
}

/// A role given or taken.
#[derive(SimpleObject, Default)]
pub struct RoleChangePayload {
    /// The account afterwards, as far as the caller administers it.
    pub staff: Option<StaffAccount>,
    /// Whether anything changed (false: it held the role already, or did
    /// not hold it).
    pub changed: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct SetStaffActiveInput {
    pub staff_id: ID,
    pub active: bool,
}

#[derive(SimpleObject, Default)]
pub struct SetStaffActivePayload {
    pub staff: Option<StaffAccount>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct UnlockLoginInput {
    pub email: String,
}

#[derive(SimpleObject, Default)]
pub struct UnlockLoginPayload {
    /// Whether the address may try again now.
    pub unlocked: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// `PARTNER` unless named.
    pub role: Option<RoleName>,
    /// The venues the key may act for; at least one.
    pub venue_ids: Vec<ID>,
    /// 1 to 3660 days; none: until revoked.
    pub expires_in_days: Option<u32>,
}

#[derive(SimpleObject, Default)]
pub struct CreateApiKeyPayload {
    pub api_key: Option<ApiKey>,
    /// The whole key. Shown once: kluis keeps only a keyed hash of it.
    pub key: Option<String>,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub id: ID,
}

#[derive(SimpleObject, Default)]
pub struct RevokeApiKeyPayload {
    pub api_key: Option<ApiKey>,
    /// Whether it was in force until now.
    pub revoked: bool,
    /// What to fix before submitting again; empty when it went through.
    pub user_errors: Vec<UserError>,
}

/// Names the input field a user error is about, where the error did not;
/// top-level errors stay as they are.
pub(super) fn at_field(error: async_graphql::Error, field: &'static str) -> async_graphql::Error {
    let code = |wanted: Code| {
        error.extensions.as_ref().is_some_and(|extensions| {
            matches!(extensions.get("code"), Some(async_graphql::Value::String(c)) if c == wanted.as_str())
        })
    };
    let user_error = code(Code::NotFound) || code(Code::BadUserInput) || code(Code::Conflict);
    let named = error
        .extensions
        .as_ref()
        .is_some_and(|extensions| extensions.get("field").is_some());
    if named || !user_error {
        error
    } else {
        error.extend_with(move |_, extensions| extensions.set("field", field))
    }
}

fn not_found(entity: &'static str, field: &'static str) -> async_graphql::Error {
    at_field(domain_error(&DomainError::not_found(entity)), field)
}

/// Where a page of a list kept in a stable order starts: after the item
/// at the cursor's offset. Cursors of such lists are offsets.
pub(super) fn offset_after(after: Option<&str>) -> Result<i64> {
    match position("after", after)? {
        None => Ok(0),
        Some(text) => text
            .parse::<u32>()
            .map(|offset| i64::from(offset) + 1)
            .map_err(|_| api_error(Code::BadUserInput, "after: not a cursor from this list")),
    }
}

/// A page of an offset-ordered list read with one item more than asked
/// for (which tells whether another page follows).
pub(super) fn offset_page<Node: OutputType>(
    mut items: Vec<Node>,
    offset: i64,
    first: usize,
    total: i64,
) -> Page<Node> {
    let has_next = items.len() > first;
    items.truncate(first);
    let mut connection = page(offset > 0, has_next, total);
    connection
        .edges
        .extend(items.into_iter().enumerate().map(|(index, node)| {
            let at = offset + i64::try_from(index).unwrap_or(i64::MAX);
            Edge::new(Cursor(at.to_string()), node)
        }));
    connection
}

/// `first` as a row count, and one more to see whether a page follows.
pub(super) fn rows(first: Option<i32>) -> Result<(usize, i64)> {
    let first = super::limits::page_size(first)?;
    Ok((first, i64::try_from(first).unwrap_or(0) + 1))
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
        .filter_map(grant)
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

/// One account by id as `reach` may see it: the lookup behind `me`, the
/// payloads and a `node(id:)`.
pub fn staff_account_by_id(
    store: &Store,
    id: &str,
    reach: &Reach,
) -> Result<Option<StaffAccount>, StoreError> {
    match store.staff_by_id(id)? {
        Some(row) => staff_account_within(store, row, reach),
        None => Ok(None),
    }
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

/// The key as `reach` may see it: only its venues within reach; none (the
/// key is not shown) when it is bound to none of them.
fn api_key_within(
    store: &Store,
    row: store::ApiKeyRow,
    reach: &Reach,
) -> Result<Option<ApiKey>, StoreError> {
    let venue_ids: Vec<String> = store
        .roles_of(&format!("apikey:{}", row.id))?
        .into_iter()
        .map(|a| a.venue)
        .filter(|venue| reach.covers(venue))
        .collect();
    if venue_ids.is_empty() && *reach != Reach::Everywhere {
        return Ok(None);
    }
    Ok(Some(ApiKey {
        id: ID(row.id),
        name: row.name,
        role: RoleName::of(&row.role),
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
        venue_ids,
    }))
}

/// One key by id as `reach` may see it (for payloads and a `node(id:)`).
pub fn api_key_by_id(store: &Store, id: &str, reach: &Reach) -> Result<Option<ApiKey>, StoreError> {
    match store.api_key(id)? {
        Some(row) => api_key_within(store, row, reach),
        None => Ok(None),
    }
}

/// The domain a grant holds in: a venue's id, `*` for none given.
fn venue_domain(venue: Option<&ID>, field: &'static str) -> Result<String> {
    match venue {
        None => Ok(EVERY_VENUE.to_owned()),
        Some(id) => Ok(VenueId::parse(id)
            .map_err(|_| DomainError::invalid(field, "not a venue id"))
            .or_gql()?
            .to_string()),
    }
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
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<StaffAccount>> {
        let Principal::Staff { id, .. } = principal(ctx) else {
            return Err(api_error(Code::Unauthenticated, "log in first"));
        };
        require(ctx, None, coordinates::QUERY_ME, READ)?;
        let store = store(ctx).clone();
        let id = id.clone();
        blocking(move || staff_account_by_id(&store, &id, &Reach::Everywhere)).await
    }

    /// The access policy in force and the last refused change.
    async fn policy_status(&self, ctx: &Context<'_>) -> Result<Option<PolicyStatus>> {
        require(ctx, None, coordinates::QUERY_POLICY_STATUS, READ)?;
        let authorizer = ctx
            .data_opt::<Arc<Authorizer>>()
            .ok_or_else(|| api_error(Code::Internal, "no access policy loaded"))?;
        let status = authorizer.status();
        Ok(Some(PolicyStatus {
            hash: status.hash,
            loaded_at: status.loaded_at,
            last_error: status.last_error,
            last_error_at: status.last_error_at,
        }))
    }

    /// Staff accounts by e-mail address: every one for an admin of every
    /// venue; for one bound to venues, the accounts holding a role there,
    /// with only those roles (and `totalCount` counts only those).
    #[graphql(complexity = "super::limits::page_complexity(first, child_complexity)")]
    async fn staff_accounts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Page<StaffAccount>>> {
        require(ctx, None, coordinates::QUERY_STAFF_ACCOUNTS, READ)?;
        let reach = reach(ctx, coordinates::QUERY_STAFF_ACCOUNTS, READ);
        let (first, limit) = rows(first)?;
        let offset = offset_after(after.as_deref())?;
        let store = store(ctx).clone();
        let (accounts, total) = blocking(move || {
            let venues = reach.filter();
            let total = store.staff_count(venues.as_deref())?;
            let mut accounts = Vec::new();
            for row in store.staff_page(venues.as_deref(), offset, limit)? {
                accounts.extend(staff_account_within(&store, row, &reach)?);
            }
            Ok((accounts, total))
        })
        .await?;
        Ok(Some(offset_page(accounts, offset, first, total)))
    }

    /// API keys, oldest first: every one for an admin of every venue; for
    /// one bound to venues, the keys bound to one of them, showing only
    /// those venues (and `totalCount` counts only those).
    #[graphql(complexity = "super::limits::page_complexity(first, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Option<Page<ApiKey>>> {
        require(ctx, None, coordinates::QUERY_API_KEYS, READ)?;
        let reach = reach(ctx, coordinates::QUERY_API_KEYS, READ);
        let (first, limit) = rows(first)?;
        let offset = offset_after(after.as_deref())?;
        let store = store(ctx).clone();
        let (keys, total) = blocking(move || {
            let venues = reach.filter();
            let total = store.api_key_count(venues.as_deref())?;
            let mut keys = Vec::new();
            for row in store.api_key_page(venues.as_deref(), offset, limit)? {
                keys.extend(api_key_within(&store, row, &reach)?);
            }
            Ok((keys, total))
        })
        .await?;
        Ok(Some(offset_page(keys, offset, first, total)))
    }
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Starts a staff session. A wrong password and an unknown e-mail get
    /// the same answer (UNAUTHENTICATED) after the same time; repeated
    /// failures are held back (RATE_LIMITED with `retryAfter` seconds) and
    /// the tenth locks the account for 15 minutes.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<LoginPayload> {
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
        let outcome = app::auth::log_in(
            store(ctx),
            monitor,
            input.email,
            input.password,
            address,
            length,
            now,
        )
        .await
        .or_gql()?;
        match outcome {
            LoginOutcome::Success {
                user_id,
                token,
                expires_at,
            } => {
                let store = store(ctx).clone();
                let staff =
                    blocking(move || staff_account_by_id(&store, &user_id, &Reach::Everywhere))
                        .await?;
                Ok(LoginPayload {
                    token: Some(token.expose().to_owned()),
                    expires_at: Some(expires_at),
                    staff,
                    user_errors: Vec::new(),
                })
            }
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
    async fn logout(&self, ctx: &Context<'_>) -> Result<LogoutPayload> {
        let Principal::Staff { session, .. } = principal(ctx) else {
            return Err(api_error(Code::Unauthenticated, "log in first"));
        };
        require(ctx, None, coordinates::MUTATION_LOGOUT, EXECUTE)?;
        let store = store(ctx).clone();
        let session = session.clone();
        let logged_out = blocking(move || store.delete_session(&session)).await?;
        Ok(LogoutPayload {
            logged_out,
            user_errors: Vec::new(),
        })
    }

    /// Creates a staff account (admins), with a role in a venue the
    /// caller administers; one in every venue only by an admin of every
    /// venue (FORBIDDEN otherwise).
    async fn create_staff(
        &self,
        ctx: &Context<'_>,
        input: CreateStaffInput,
    ) -> Result<CreateStaffPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_CREATE_STAFF;
        require(ctx, None, OBJECT, EXECUTE)?;
        let mut checks = Checks::default();
        let email = checks.take(Email::parse("email", &input.email).or_gql());
        let password = checks.take(Password::parse(&input.password).or_gql());
        let venue = checks.take(venue_domain(input.venue_id.as_ref(), "venueId").and_then(
            |venue| {
                require_for_domain(ctx, &venue, OBJECT, EXECUTE)
                    .map_err(|e| at_field(e, "venueId"))?;
                Ok(venue)
            },
        ));
        let user_errors = checks.finish()?;
        let (Some(email), Some(password), Some(venue)) = (email, password, venue) else {
            return Ok(CreateStaffPayload {
                staff: None,
                user_errors,
            });
        };
        let store = store(ctx).clone();
        let role = input.role;
        let (staff, user_errors) = outcome(
            blocking(move || {
                let hash = password.hash()?;
                let id = store.create_staff(&email, &hash, role.as_str(), &venue, Utc::now())?;
                staff_account_by_id(&store, &id, &Reach::Everywhere)
            })
            .await
            .map_err(|e| at_field(e, "email")),
        )?;
        refresh(ctx).await;
        Ok(CreateStaffPayload {
            staff: staff.flatten(),
            user_errors,
        })
    }

    /// Gives a staff account a role in a venue (or every venue). An admin
    /// bound to venues grants only there, and only to accounts that
    /// already hold a role there (any other is NOT_FOUND, as an unknown
    /// one); a role in every venue is granted only by an admin of every
    /// venue.
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        input: RoleChangeInput,
    ) -> Result<RoleChangePayload> {
        change_role(ctx, input, coordinates::MUTATION_ASSIGN_ROLE).await
    }

    /// Takes a role away; `changed` says whether the account held it. An
    /// admin bound to venues removes only roles in them, from accounts it
    /// reaches (any other is NOT_FOUND, as an unknown one).
    async fn remove_role(
        &self,
        ctx: &Context<'_>,
        input: RoleChangeInput,
    ) -> Result<RoleChangePayload> {
        change_role(ctx, input, coordinates::MUTATION_REMOVE_ROLE).await
    }

    /// Deactivating an account ends its sessions at once. An admin bound
    /// to venues reaches only accounts whose every role is in them (an
    /// account of other venues is NOT_FOUND, as an unknown one; one also
    /// holding roles elsewhere is FORBIDDEN).
    async fn set_staff_active(
        &self,
        ctx: &Context<'_>,
        input: SetStaffActiveInput,
    ) -> Result<SetStaffActivePayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_SET_STAFF_ACTIVE;
        require(ctx, None, OBJECT, EXECUTE)?;
        let domains = domains_of(ctx, format!("user:{}", input.staff_id.0)).await?;
        let reach = reach(ctx, OBJECT, EXECUTE);
        if !within(&reach, &domains) {
            return Ok(SetStaffActivePayload {
                staff: None,
                user_errors: vec![not_found_error("staff account", "staffId")?],
            });
        }
        // Within reach through one of its venues: refused (FORBIDDEN) only
        // when it also holds roles elsewhere.
        require_over(ctx, &domains, OBJECT, EXECUTE, "staff account")?;
        let store = store(ctx).clone();
        let SetStaffActiveInput { staff_id, active } = input;
        let (staff, user_errors) = outcome(
            blocking(move || {
                if !store.set_staff_active(&staff_id, active, Utc::now())? {
                    return Err(DomainError::not_found("staff account").into());
                }
                staff_account_by_id(&store, &staff_id, &reach)
            })
            .await
            .map_err(|e| at_field(e, "staffId")),
        )?;
        Ok(SetStaffActivePayload {
            staff: staff.flatten(),
            user_errors,
        })
    }

    /// Lifts the login lock and backoff of an e-mail address. An admin
    /// bound to venues unlocks only accounts whose every role is in them
    /// (any other address, known or not, is FORBIDDEN).
    async fn unlock_login(
        &self,
        ctx: &Context<'_>,
        input: UnlockLoginInput,
    ) -> Result<UnlockLoginPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_UNLOCK_LOGIN;
        require(ctx, None, OBJECT, EXECUTE)?;
        let email = input.email;
        if email.len() > 320 {
            return Ok(UnlockLoginPayload {
                unlocked: false,
                user_errors: vec![UserError::new(
                    &["input", "email"],
                    UserErrorCode::Invalid,
                    "email: too long",
                )],
            });
        }
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
        Ok(UnlockLoginPayload {
            unlocked: true,
            user_errors: Vec::new(),
        })
    }

    /// Creates an API key for a partner platform, bound to venues the
    /// caller administers. The key is in the answer once; kluis keeps a
    /// keyed hash.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreateApiKeyPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_CREATE_API_KEY;
        require(ctx, None, OBJECT, EXECUTE)?;
        let request = match key_request(ctx, input)? {
            Ok(request) => request,
            Err(user_errors) => {
                return Ok(CreateApiKeyPayload {
                    user_errors,
                    ..CreateApiKeyPayload::default()
                });
            }
        };
        let created_by = match principal(ctx) {
            Principal::Staff { id, .. } => Some(id.clone()),
            _ => None,
        };
        let created = app::access::issue_api_key(store(ctx), request, created_by)
            .await
            .or_gql()?;
        let store = store(ctx).clone();
        let api_key = blocking(move || {
            api_key_within(&store, created.row, &Reach::Everywhere)?
                .ok_or_else(|| StoreError::Corrupt("a key vanished".to_owned()))
        })
        .await?;
        refresh(ctx).await;
        Ok(CreateApiKeyPayload {
            api_key: Some(api_key),
            key: Some(created.key),
            user_errors: Vec::new(),
        })
    }

    /// Revokes a key at once; `revoked` says whether it was in force. An
    /// admin bound to venues revokes only keys bound to its venues alone
    /// (a key of other venues is NOT_FOUND, as an unknown one; one also
    /// bound elsewhere is FORBIDDEN).
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> Result<RevokeApiKeyPayload> {
        const OBJECT: coordinates::Coordinate = coordinates::MUTATION_REVOKE_API_KEY;
        require(ctx, None, OBJECT, EXECUTE)?;
        let id = input.id;
        let reach = reach(ctx, OBJECT, EXECUTE);
        if reach != Reach::Everywhere {
            let domains = domains_of(ctx, format!("apikey:{}", id.0)).await?;
            if !within(&reach, &domains) {
                return Ok(RevokeApiKeyPayload {
                    user_errors: vec![not_found_error("api key", "id")?],
                    ..RevokeApiKeyPayload::default()
                });
            }
            require_over(ctx, &domains, OBJECT, EXECUTE, "api key")?;
        }
        let store = store(ctx).clone();
        let (done, user_errors) = outcome(
            blocking(move || {
                let before = api_key_by_id(&store, &id, &reach)?;
                let Some(before) = before else {
                    return Err(DomainError::not_found("api key").into());
                };
                let revoked = store.revoke_api_key(&id, Utc::now())?;
                let after = api_key_by_id(&store, &id, &Reach::Everywhere)?;
                Ok((
                    after.map(|mut key| {
                        // The venues it served, as the caller saw them:
                        // revoking unbinds them.
                        key.venue_ids = before.venue_ids;
                        key
                    }),
                    revoked,
                ))
            })
            .await
            .map_err(|e| at_field(e, "id")),
        )?;
        refresh(ctx).await;
        let (api_key, revoked) = done.unwrap_or((None, false));
        Ok(RevokeApiKeyPayload {
            api_key,
            revoked,
            user_errors,
        })
    }
}

/// A NOT_FOUND user error on `field`.
fn not_found_error(entity: &'static str, field: &'static str) -> Result<UserError> {
    super::payload::classify(not_found(entity, field))
}

/// The key asked for, checked field by field: `Ok(Err(errors))` lists
/// what to fix.
fn key_request(
    ctx: &Context<'_>,
    input: CreateApiKeyInput,
) -> Result<Result<app::access::KeyRequest, Vec<UserError>>> {
    const OBJECT: coordinates::Coordinate = coordinates::MUTATION_CREATE_API_KEY;
    let mut checks = Checks::default();
    let name = checks.take(
        domain::venue::check_display_name(&input.name)
            .map_err(|reason| DomainError::invalid("name", reason))
            .or_gql(),
    );
    if input.venue_ids.is_empty() {
        checks.push(UserError::new(
            &["input", "venueIds"],
            UserErrorCode::Invalid,
            "venueIds: give at least one venue",
        ));
    }
    if input.venue_ids.len() > 100 {
        checks.push(UserError::new(
            &["input", "venueIds"],
            UserErrorCode::Invalid,
            "venueIds: at most 100 venues",
        ));
    }
    if input
        .expires_in_days
        .is_some_and(|days| !(1..=3660).contains(&days))
    {
        checks.push(UserError::new(
            &["input", "expiresInDays"],
            UserErrorCode::Invalid,
            "expiresInDays: must be between 1 and 3660",
        ));
    }
    let mut venues = Vec::new();
    for id in input.venue_ids.iter().take(100) {
        let venue = checks.take(venue_domain(Some(id), "venueIds"));
        // Each venue the key will act for must be one the caller
        // administers.
        if let Some(venue) = venue {
            let allowed = checks.take(
                require_for_domain(ctx, &venue, OBJECT, EXECUTE)
                    .map_err(|e| at_field(e, "venueIds")),
            );
            if allowed.is_some() && !venues.contains(&venue) {
                venues.push(venue);
            }
        }
    }
    let user_errors = checks.finish()?;
    let Some(name) = name.filter(|_| user_errors.is_empty()) else {
        return Ok(Err(user_errors));
    };
    Ok(Ok(app::access::KeyRequest {
        name,
        role: input.role.unwrap_or(RoleName::Partner).into(),
        venues,
        expires_in_days: input.expires_in_days,
    }))
}

/// `assignRole` and `removeRole`: the same checks, then the change.
async fn change_role(
    ctx: &Context<'_>,
    input: RoleChangeInput,
    object: coordinates::Coordinate,
) -> Result<RoleChangePayload> {
    require(ctx, None, object, EXECUTE)?;
    let venue = venue_domain(input.venue_id.as_ref(), "venueId").and_then(|venue| {
        require_for_domain(ctx, &venue, object, EXECUTE).map_err(|e| at_field(e, "venueId"))?;
        Ok(venue)
    });
    let (venue, user_errors) = outcome(venue)?;
    let Some(venue) = venue else {
        return Ok(RoleChangePayload {
            user_errors,
            ..RoleChangePayload::default()
        });
    };
    let reach = reach(ctx, object, EXECUTE);
    let subject = format!("user:{}", input.staff_id.0);
    if !within(&reach, &domains_of(ctx, subject.clone()).await?) {
        return Ok(RoleChangePayload {
            user_errors: vec![not_found_error("staff account", "staffId")?],
            ..RoleChangePayload::default()
        });
    }
    let store = store(ctx).clone();
    let (staff_id, role) = (input.staff_id, input.role.as_str());
    let assign = object == coordinates::MUTATION_ASSIGN_ROLE;
    let (done, user_errors) = outcome(
        blocking(move || {
            store
                .staff_by_id(&staff_id)?
                .ok_or(DomainError::not_found("staff account"))?;
            let changed = if assign {
                store.assign_role(&subject, role, &venue, Utc::now())?
            } else {
                store.remove_role(&subject, role, &venue)?
            };
            Ok((staff_account_by_id(&store, &staff_id, &reach)?, changed))
        })
        .await
        .map_err(|e| at_field(e, "staffId")),
    )?;
    refresh(ctx).await;
    let (staff, changed) = done.unwrap_or((None, false));
    Ok(RoleChangePayload {
        staff,
        changed,
        user_errors,
    })
}

/// Creates and stores an API key and answers it as `createApiKey` does,
/// for callers that seed one outside a request (the benchmark).
pub fn create_api_key(
    store: &Store,
    name: &str,
    role: domain::auth::Role,
    venues: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<&str>,
) -> Result<CreatedApiKey, StoreError> {
    let created = app::access::create_api_key(store, name, role, venues, expires_at, created_by)?;
    let api_key = api_key_within(store, created.row, &Reach::Everywhere)?
        .ok_or_else(|| StoreError::Corrupt("a key vanished from an unfiltered view".to_owned()))?;
    Ok(CreatedApiKey {
        key: created.key,
        api_key,
    })
}
