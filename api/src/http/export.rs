//! `/export.json`: the guest's export as a file to keep or take elsewhere
//! (the right to portability). It runs `exportMyData` (a guest's token in
//! `Authorization: Bearer kmt_…`/`kat_…`) or, with `?reservation=<id>`,
//! `exportGuestData` (staff) through the same pipeline as `/graphql`, so
//! the authorization, the audit entry, the backoff on guests' secrets and
//! the rate limits are the GraphQL export's own; only the answer differs:
//! the export's JSON as an attachment instead of a GraphQL answer.
//!
//! Secrets never travel in the URL, where browser history, proxies and
//! access logs keep them: a query string with anything but `reservation`
//! is refused before anything runs, without repeating it.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::state::ServerState;
use crate::graphql::privacy::ExportDownload;

const AS_GUEST: &str = "mutation ExportDownload { exportMyData { export { format } userErrors { code message field } } }";
const AS_STAFF: &str = "mutation ExportDownload($reservation: ID!) { exportGuestData(input: { reservationId: $reservation }) { export { format } userErrors { code message field } } }";

/// Which export the query string asks for: the caller's own (none), or a
/// guest's by one of their reservations (staff). Anything else is refused.
fn asked(query: &str) -> Result<Option<String>, &'static str> {
    const REFUSED: &str = "the only parameter is `reservation`; send tokens as Authorization: Bearer …, never in the URL";
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query).map_err(|_| REFUSED)?;
    let mut reservation = None;
    for (name, value) in pairs.into_inner() {
        match name.as_str() {
            "reservation" if reservation.is_none() => reservation = Some(value),
            _ => return Err(REFUSED),
        }
    }
    Ok(reservation)
}

/// Answers `/export.json` (POST, and GET for a plain download link that
/// sends its token in the header); `run` is the `/graphql` pipeline.
pub async fn download<'a, Answer>(
    state: &'a ServerState,
    http: &'a HttpRequest,
    run: impl FnOnce(async_graphql::Request) -> Answer,
) -> HttpResponse
where
    Answer: std::future::Future<Output = HttpResponse> + 'a,
{
    let reservation = match asked(http.query_string()) {
        Ok(reservation) => reservation,
        Err(message) => return refused(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message),
    };
    let collected = ExportDownload::default();
    let request = match reservation {
        None => async_graphql::Request::new(AS_GUEST),
        Some(id) => async_graphql::Request::new(AS_STAFF).variables(
            async_graphql::Variables::from_json(json!({ "reservation": id })),
        ),
    }
    .operation_name("ExportDownload")
    .data(collected.clone());
    let answered = run(request).await;
    match collected.take() {
        Some((export, venue)) if answered.status().is_success() => {
            let request_id = answered.headers().get("x-request-id").cloned();
            file(state, export, venue, request_id).await
        }
        _ => refusal(answered).await,
    }
}

/// The export as an attachment named after the venue and the day.
async fn file(
    state: &ServerState,
    export: store::GuestExport,
    venue: domain::VenueId,
    request_id: Option<header::HeaderValue>,
) -> HttpResponse {
    use domain::ports::VenueRepository as _;
    let store = state.store.clone();
    let slug = match tokio::task::spawn_blocking(move || store.venue(venue)).await {
        Ok(Ok(Some(venue))) => venue.slug.as_str().to_owned(),
        _ => "venue".to_owned(),
    };
    // Slugs are lower-case letters, digits and dashes already; the filter
    // keeps the header safe should that rule ever loosen.
    let slug: String = slug
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let name = format!(
        "kluis-export-{slug}-{}.json",
        export.exported_at.format("%Y-%m-%d")
    );
    let body = match serde_json::to_vec_pretty(&export) {
        Ok(body) => body,
        Err(_) => {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "the export could not be written",
            );
        }
    };
    let mut response = HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        // Personal data: no cache on the way may keep a copy.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body);
    if let Some(id) = request_id {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), id);
    }
    response
}

/// The GraphQL answer of a download that produced no export, with the
/// HTTP status its first error stands for (a download link has no
/// GraphQL client to read `errors`).
async fn refusal(answered: HttpResponse) -> HttpResponse {
    let retry_after = answered.headers().get(header::RETRY_AFTER).cloned();
    let request_id = answered.headers().get("x-request-id").cloned();
    let status = answered.status();
    let body = actix_web::body::to_bytes(answered.into_body())
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    let errors = match &body["errors"] {
        Value::Array(errors) if !errors.is_empty() => Value::Array(errors.clone()),
        _ => {
            // The mutation answered with user errors: a GraphQL error each.
            let payload = body["data"]
                .as_object()
                .and_then(|data| data.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let user_errors = payload["userErrors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Value::Array(
                user_errors
                    .into_iter()
                    .map(|error| {
                        let code = match error["code"].as_str() {
                            Some("NOT_FOUND") => "NOT_FOUND",
                            Some("CONFLICT") => "CONFLICT",
                            _ => "BAD_USER_INPUT",
                        };
                        json!({ "message": error["message"], "extensions": { "code": code } })
                    })
                    .collect(),
            )
        }
    };
    let code = errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or("INTERNAL");
    let status = if status.is_success() {
        match code {
            "BAD_USER_INPUT" => StatusCode::BAD_REQUEST,
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "FORBIDDEN" => StatusCode::FORBIDDEN,
            "NOT_FOUND" => StatusCode::NOT_FOUND,
            "CONFLICT" => StatusCode::CONFLICT,
            "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    } else {
        status
    };
    let mut response = HttpResponse::build(status).json(json!({ "errors": errors }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(retry_after) = retry_after.or_else(|| {
        errors[0]["extensions"]["retryAfter"]
            .as_i64()
            .and_then(|s| header::HeaderValue::from_str(&s.to_string()).ok())
    }) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    if let Some(id) = request_id {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), id);
    }
    response
}

fn refused(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    }))
}
