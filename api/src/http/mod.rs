//! HTTP routes: `/graphql` (POST; GET for queries and, in development,
//! GraphiQL with its assets under `/graphiql/assets`), `/export.json` (a
//! guest's export as a file), `/healthz` and `/readyz`; the request pipeline around them
//! (principal, rate limits and load shedding, metrics, the audit writer).

pub mod audit_writer;
pub mod cors;
mod export;
pub mod get_policy;
pub mod graphiql;
pub mod metrics;
pub mod rate_limit;
pub mod state;

pub use state::{MetricsAccess, ServerState};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::config::Environment;
use crate::graphql;

/// Request bodies above this are refused with 413 before being parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Marks the listener on `metrics_bind`, which serves `/metrics` only.
#[derive(Clone, Copy)]
pub struct MetricsListener;

/// The routes of the `metrics_bind` listener.
pub fn metrics_routes(config: &mut web::ServiceConfig) {
    config.route("/metrics", web::get().to(metrics));
}

/// Provider webhooks are refused above this size, before verification.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route("/graphql", web::post().to(graphql_post))
        .route("/graphql", web::get().to(graphql_get))
        .service(
            web::resource("/webhooks/{gateway}")
                .app_data(web::PayloadConfig::new(MAX_WEBHOOK_BYTES))
                .route(web::post().to(webhook)),
        )
        .route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::resource("/export.json")
                .route(web::post().to(export_json))
                .route(web::get().to(export_json)),
        )
        .configure(graphiql::routes);
}

fn request_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
    }))
}

/// A guest's export as a file, through the same pipeline as `/graphql`.
async fn export_json(state: web::Data<ServerState>, http: HttpRequest) -> HttpResponse {
    export::download(&state, &http, |request| execute(&state, &http, request)).await
}

/// Runs a request inside a span carrying a fresh request id, which every
/// log line of the request shows and the answer returns as `X-Request-Id`.
async fn execute(
    state: &ServerState,
    http: &HttpRequest,
    request: async_graphql::Request,
) -> HttpResponse {
    use tracing::Instrument as _;
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("request", id = %request_id);
    let turn = tokio::time::timeout(
        state.queue_wait,
        std::sync::Arc::clone(&state.admission).acquire_owned(),
    )
    .await;
    let mut response = match turn {
        Ok(Ok(_turn)) => {
            execute_as_caller(state, http, request)
                .instrument(span)
                .await
        }
        _ => busy(state),
    };
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    response
}

/// Resolves the caller from the `Authorization` header, then runs the
/// request as that principal. Credentials that were given but do not hold
/// end the request with UNAUTHENTICATED and no hint which part was wrong.
async fn execute_as_caller(
    state: &ServerState,
    http: &HttpRequest,
    request: async_graphql::Request,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let header = http
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|value| value.to_str().map(str::to_owned));
    let header = match header {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return unauthenticated(),
    };
    // A guest's key in the header is handed to the resolvers that take it.
    // A manage token also makes the caller the guest of its booking (and
    // one that matches nothing is refused like any bad credential); an
    // access token proves an address, not a principal, so the caller stays
    // anonymous for the policy.
    let guest_bearer = header
        .as_deref()
        .and_then(graphql::context::GuestBearer::from_header);
    let header = match &guest_bearer {
        Some(bearer) if bearer.is_access_token() => None,
        _ => header,
    };
    let store = state.store.clone();
    let now = state.clock.now();
    let address = client_address(state, http);
    // Credentials are counted against the client before they are looked
    // at, and the count is taken back when they hold: parallel guesses
    // get no more tries than the budget, and good credentials cost none.
    let guessing = header.is_some().then(|| {
        let (scope, budget) = state.limiter.bad_credentials_scope(&address);
        let admitted = state.limiter.admit(&scope, budget, now);
        (scope, admitted)
    });
    if let Some((_, Err(retry_after))) = guessing {
        return rate_limited(state, retry_after);
    }
    let monitor = state.monitor.clone();
    let key_address = address.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        let principal = app::auth::resolve(&store, header.as_deref(), chrono::Utc::now())?;
        if let (app::auth::Principal::ApiKey { id, .. }, Some(monitor)) = (&principal, &monitor) {
            monitor.api_key_used(id, &key_address, now);
        }
        // A principal held back by an automatic response (bulk reads) is
        // refused before anything runs.
        let hold = if principal.is_venue_bound() {
            store.principal_hold(&principal.subject(), now)?
        } else {
            None
        };
        Ok::<_, app::auth::AuthError>((principal, hold))
    })
    .await;
    // A manage token that matches nothing is answered by the resolver that
    // takes it, as NOT_FOUND (like an argument, and like a booking that
    // does not exist), under the guests' own backoff on secrets; it is no
    // staff credential gone bad.
    let unknown_guest_key = guest_bearer.is_some()
        && matches!(resolved, Ok(Err(app::auth::AuthError::Unauthenticated)));
    // Only credentials that did not hold stay counted (not a database
    // that failed to answer).
    if let Some((scope, _)) = &guessing
        && (unknown_guest_key
            || !matches!(resolved, Ok(Err(app::auth::AuthError::Unauthenticated))))
    {
        state.limiter.refund(scope, now);
    }
    let principal = match resolved {
        Ok(Ok((_, Some(hold)))) => return held_back(&hold, now),
        Ok(Ok((principal, None))) => principal,
        Ok(Err(app::auth::AuthError::Unauthenticated)) if unknown_guest_key => {
            app::auth::Principal::Anonymous
        }
        Ok(Err(app::auth::AuthError::Unauthenticated)) => return unauthenticated(),
        Ok(Err(app::auth::AuthError::Store(error))) => {
            let error = graphql::errors::internal_error(&error);
            return HttpResponse::Ok()
                .json(json!({ "errors": [error.into_server_error(Default::default())] }));
        }
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    if principal.is_venue_bound() {
        state.authorizer.ensure_current().await;
    }
    let (scope, budget) = state.limiter.scope_of(&principal, &address);
    if let Err(retry_after) = state.limiter.admit(&scope, budget, now) {
        return rate_limited(state, retry_after);
    }
    let spent = std::sync::Arc::new(graphql::limits::SpentComplexity::default());
    let trail = std::sync::Arc::new(graphql::audit::AuditTrail::default());
    let watched = principal.clone();
    let operation = request.operation_name.clone();
    let mut request = request;
    if let Some(bearer) = guest_bearer {
        request = request.data(bearer);
    }
    let request = request
        .data(principal)
        .data(graphql::access::ClientAddress(address))
        .data(graphql::guard::Decisions::default())
        .data(std::sync::Arc::clone(&spent))
        .data(std::sync::Arc::clone(&trail));
    let mut response = state.schema.execute(request).await;
    state.limiter.spend(
        &scope,
        spent.0.load(std::sync::atomic::Ordering::Relaxed),
        now,
    );
    graphql::ensure_codes(&mut response);
    let codes = response.errors.iter().filter_map(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.as_str()),
                _ => None,
            })
    });
    state
        .metrics
        .observe_request(operation.as_deref(), started.elapsed().as_secs_f64(), codes);
    let integrity_failures = graphql::errors::take_integrity_marks(&mut response);
    if integrity_failures > 0
        && let Some(monitor) = state.monitor.clone()
    {
        let subject = watched.subject();
        let _recorded = tokio::task::spawn_blocking(move || {
            monitor.integrity_failures(&subject, integrity_failures, now);
        })
        .await;
    }
    // Personal data leaves only once its reading is on the record.
    let (events, starts) = trail.take();
    if !events.is_empty() {
        let now = state.clock.now();
        let events = match state.audit.append(events, now).await {
            Ok(events) => events,
            Err(error) => {
                let error = graphql::errors::internal_error(&error);
                return HttpResponse::Ok().json(
                    json!({ "data": null, "errors": [error.into_server_error(Default::default())] }),
                );
            }
        };
        if let Some(monitor) = state
            .monitor
            .clone()
            .filter(|_| app::monitor::watches_reads(&watched))
        {
            let _checked = tokio::task::spawn_blocking(move || {
                monitor.after_request(&watched, &events, &starts, now);
            })
            .await;
        }
    }
    HttpResponse::Ok().json(response)
}

/// The client's address, as the rate limits see it.
fn client_address(state: &ServerState, http: &HttpRequest) -> String {
    let forwarded_for = http
        .headers()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok());
    state
        .limiter
        .client_address(http.peer_addr().map(|peer| peer.ip()), forwarded_for)
}

/// The answer to a caller over a budget: RATE_LIMITED with the seconds
/// until the window ends, also as `Retry-After`.
fn rate_limited(state: &ServerState, retry_after: i64) -> HttpResponse {
    state
        .metrics
        .observe_request(None, 0.0, std::iter::once("RATE_LIMITED"));
    let mut refused = refusal(
        &format!("too many requests; try again in {retry_after} s"),
        json!({ "code": "RATE_LIMITED", "retryAfter": retry_after }),
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
        refused
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    refused
}

/// The answer when the node has no turn free within the wait: 503 with a
/// `Retry-After`, so that clients and balancers back off or go elsewhere.
fn busy(state: &ServerState) -> HttpResponse {
    state
        .metrics
        .observe_request(None, 0.0, std::iter::once("RATE_LIMITED"));
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
        .json(json!({
            "data": null,
            "errors": [{
                "message": "the server is busy; try again in 1 s",
                "extensions": { "code": "RATE_LIMITED", "retryAfter": 1 }
            }]
        }))
}

/// The answer to a principal that is throttled or suspended.
fn held_back(hold: &store::Hold, now: chrono::DateTime<chrono::Utc>) -> HttpResponse {
    let alert = &hold.alert_id;
    match hold.until {
        Some(until) => {
            let seconds = (until - now).num_seconds().max(1);
            refusal(
                &format!(
                    "held back after unusual activity (alert {alert}); try again in {seconds} s or ask an admin"
                ),
                json!({ "code": "RATE_LIMITED", "retryAfter": seconds, "alertId": alert }),
            )
        }
        None => refusal(
            &format!("suspended after unusual activity (alert {alert}); an admin can lift it"),
            json!({ "code": "FORBIDDEN", "alertId": alert }),
        ),
    }
}

/// A GraphQL answer for a request refused before the schema ran.
fn refusal(message: &str, extensions: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "data": null,
        "errors": [{ "message": message, "extensions": extensions }]
    }))
}

fn unauthenticated() -> HttpResponse {
    refusal(
        "missing, malformed, expired or revoked credentials",
        json!({ "code": "UNAUTHENTICATED" }),
    )
}

async fn graphql_post(
    state: web::Data<ServerState>,
    http: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("the request body is not valid JSON: {error}"),
            );
        }
    };
    if value.is_array() {
        return request_error(
            StatusCode::BAD_REQUEST,
            "batched requests are not supported: send one operation per request",
        );
    }
    match serde_json::from_value::<async_graphql::Request>(value) {
        Ok(request) => execute(&state, &http, request).await,
        Err(error) => request_error(
            StatusCode::BAD_REQUEST,
            &format!("the request is not a GraphQL request: {error}"),
        ),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

/// 405 with a GraphQL-shaped error and `Allow: POST`.
fn use_post(message: &str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, "POST"))
        .json(json!({
            "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
        }))
}

/// GET runs public lookups only (see `get_policy`): a mutation must not be
/// triggerable by a link or an image tag, and what a URL carries ends up in
/// logs and histories.
async fn graphql_get(state: web::Data<ServerState>, request: HttpRequest) -> HttpResponse {
    let params = match web::Query::<GetParams>::from_query(request.query_string()) {
        Ok(params) => params.into_inner(),
        // The query string is not echoed: it may hold what it should not.
        Err(_) => return use_post("send GraphQL requests with POST"),
    };
    let Some(query) = params.query else {
        return if state.env == Environment::Development {
            graphiql::page()
        } else {
            request_error(StatusCode::NOT_FOUND, "send GraphQL requests with POST")
        };
    };
    let mut graphql_request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        graphql_request = graphql_request.operation_name(name);
    }
    let variables: Option<serde_json::Value> =
        match params.variables.as_deref().map(serde_json::from_str) {
            None => None,
            Some(Ok(variables)) => Some(variables),
            Some(Err(_)) => {
                return use_post(
                    "variables over GET must be a JSON object; send this request with POST",
                );
            }
        };
    if let Some(why) = get_policy::refusal(
        &graphql_request.query,
        graphql_request.operation_name.as_deref(),
        variables.as_ref(),
    ) {
        return use_post(why);
    }
    if let Some(variables) = variables {
        graphql_request = graphql_request.variables(async_graphql::Variables::from_json(variables));
    }
    execute(&state, &request, graphql_request).await
}

/// A provider's webhook: verified (signature, freshness) before anything
/// else, ignored when its event id was handled before, and then only a
/// trigger to ask the provider for the truth about the payment it names.
async fn webhook(
    state: web::Data<ServerState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let name = path.into_inner();
    let Some(gateway) = state.gateways.named(&name) else {
        return HttpResponse::NotFound().json(json!({ "error": "no such payment gateway" }));
    };
    let now = state.clock.now();
    // Verifying a delivery may cost calls to the provider: anyone can post
    // here, so each client gets a budget, and what cannot be an event is
    // turned away first.
    let (scope, budget) = state
        .limiter
        .webhook_scope(&client_address(&state, &request));
    if let Err(retry_after) = state.limiter.admit(&scope, budget, now) {
        return HttpResponse::TooManyRequests()
            .insert_header((
                actix_web::http::header::RETRY_AFTER,
                retry_after.to_string(),
            ))
            .json(json!({ "error": "too many webhook deliveries; try again later" }));
    }
    if body.is_empty() {
        return HttpResponse::BadRequest().json(json!({ "error": "empty body" }));
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let event = match gateway.verify_webhook(&headers, &body, now).await {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(gateway = %name, %error, "webhook refused");
            return HttpResponse::BadRequest().json(json!({ "error": error.to_string() }));
        }
    };
    let store = state.store.clone();
    let (provider, event_id, reference, payment_id) = (
        name.clone(),
        event.id.clone(),
        event.reference.clone(),
        event.payment_id.clone(),
    );
    let found = tokio::task::spawn_blocking(move || {
        if store.delivered_before(&provider, &event_id)? {
            return Ok::<_, store::StoreError>(None);
        }
        let by_reference = match &reference {
            Some(reference) => store.payment_by_reference(&provider, reference)?,
            None => None,
        };
        // A start that timed out never learned its reference; the provider
        // echoes kluis's payment id back in the event.
        let by_id = match (&by_reference, &payment_id) {
            (None, Some(id)) => store
                .payment(id)?
                .filter(|p| p.gateway == provider && p.reference.is_none()),
            _ => None,
        };
        Ok(Some(by_reference.or(by_id)))
    })
    .await;
    let payment = match found {
        Ok(Ok(None)) => return HttpResponse::Ok().json(json!({ "status": "duplicate" })),
        Ok(Ok(Some(payment))) => payment,
        Ok(Err(error)) => {
            graphql::errors::internal_error(&error);
            return HttpResponse::InternalServerError().finish();
        }
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    let status = match payment {
        None => "ignored",
        Some(payment) => {
            let hint = event.reference.as_deref();
            match app::payments::refresh_and_record(
                &state.store,
                state.monitor.as_ref(),
                gateway.as_ref(),
                payment,
                hint,
                "webhook",
                now,
            )
            .await
            {
                Ok(_) => "processed",
                // Not settled (the provider did not answer, the database
                // failed): the event is not recorded and the provider,
                // which retries a delivery that got no 2xx, comes back.
                Err(error) => {
                    tracing::warn!(gateway = %name, %error, "webhook not settled; the provider will retry");
                    return HttpResponse::ServiceUnavailable()
                        .json(json!({ "status": "retry later" }));
                }
            }
        }
    };
    // Recorded only once settled: a retry of an event that failed to
    // settle is settled again, never dropped as a duplicate.
    let store = state.store.clone();
    let (provider, event_id) = (name.clone(), event.id.clone());
    match tokio::task::spawn_blocking(move || store.record_delivery(&provider, &event_id, now))
        .await
    {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": status })),
        Ok(Err(error)) => {
            graphql::errors::internal_error(&error);
            HttpResponse::ServiceUnavailable().json(json!({ "status": "retry later" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({ "status": "retry later" })),
    }
}

/// Prometheus text exposition, for whoever `MetricsAccess` lets in.
async fn metrics(state: web::Data<ServerState>, http: HttpRequest) -> HttpResponse {
    let access = &state.metrics_access;
    let allowed = match &access.token {
        Some(token) => {
            use secrecy::ExposeSecret;
            let given = http
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let matches: bool =
                subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.expose_secret().as_bytes())
                    .into();
            if !matches {
                return HttpResponse::Unauthorized()
                    .insert_header(("WWW-Authenticate", "Bearer"))
                    .finish();
            }
            true
        }
        None => access.open_on_main || http.app_data::<MetricsListener>().is_some(),
    };
    if !allowed {
        return HttpResponse::NotFound().finish();
    }
    let store = state.store.clone();
    let metrics = state.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.render(&store)).await {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: its database answers.
async fn readyz(state: web::Data<ServerState>) -> HttpResponse {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unavailable" }))
        }
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unavailable" }))
        }
    }
}
