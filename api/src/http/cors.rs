//! Cross-origin calls from browsers: a booking widget on a venue's own site
//! calling `/graphql`. Only origins in the settings (`[http]
//! allowed_origins`) or in some venue's list are answered with CORS
//! headers; any other origin gets none, and its preflight 403. Callers
//! authenticate with bearer headers, never cookies, so no credentials mode.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use domain::Origin;

use crate::config::Environment;

/// As long as a venue definition is cached (`store`'s venue cache): an
/// origin a manager adds works on every node within this time.
const VENUE_ORIGINS_TTL: Duration = Duration::from_secs(2);

/// How long a browser may reuse a preflight's answer.
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;

/// What a browser may send across origins.
const METHODS: &str = "GET, POST";
const HEADERS: [&str; 3] = ["content-type", "authorization", "idempotency-key"];
const HEADERS_LIST: &str = "Content-Type, Authorization, Idempotency-Key";
/// What a page may read of an answer besides the basics.
const EXPOSED: &str = "X-Request-Id, Retry-After";

/// The origins this node answers for.
pub struct AllowedOrigins {
    global: HashSet<Origin>,
    env: Environment,
    store: store::Store,
    venues: Mutex<Option<(Instant, Arc<HashSet<Origin>>)>>,
}

impl AllowedOrigins {
    pub fn new(global: Vec<Origin>, env: Environment, store: store::Store) -> Self {
        Self {
            global: global.into_iter().collect(),
            env,
            store,
            venues: Mutex::new(None),
        }
    }

    /// The origin a browser sent, if it is one kluis answers for: written
    /// exactly as an origin (no path, no `null`, lower case) and listed.
    pub async fn admit(&self, raw: &str) -> Option<Origin> {
        let origin = Origin::parse(raw).ok()?;
        // Browsers send origins in their canonical form; anything else is
        // not a browser's and gets nothing.
        if origin.as_str() != raw {
            return None;
        }
        if origin.is_plain_http() && self.env != Environment::Development {
            return None;
        }
        if self.global.contains(&origin) {
            return Some(origin);
        }
        self.venue_origins()
            .await
            .contains(&origin)
            .then_some(origin)
    }

    async fn venue_origins(&self) -> Arc<HashSet<Origin>> {
        if let Ok(cached) = self.venues.lock()
            && let Some((loaded, origins)) = cached.as_ref()
            && loaded.elapsed() < VENUE_ORIGINS_TTL
        {
            return Arc::clone(origins);
        }
        let store = self.store.clone();
        let loaded = match tokio::task::spawn_blocking(move || store.venue_origins()).await {
            Ok(Ok(origins)) => Arc::new(origins.into_iter().collect::<HashSet<_>>()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "venue origins unavailable; answering without them");
                return Arc::new(HashSet::new());
            }
            Err(_) => return Arc::new(HashSet::new()),
        };
        if let Ok(mut cached) = self.venues.lock() {
            *cached = Some((Instant::now(), Arc::clone(&loaded)));
        }
        loaded
    }
}

/// Whether a preflight asks only for what kluis allows.
fn preflight_is_acceptable(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    let method_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|method| method == "GET" || method == "POST");
    let headers_ok = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .all(|value| {
            value.to_str().is_ok_and(|list| {
                list.split(',')
                    .map(|name| name.trim().to_ascii_lowercase())
                    .filter(|name| !name.is_empty())
                    .all(|name| HEADERS.contains(&name.as_str()))
            })
        });
    method_ok && headers_ok
}

fn vary_origin(response: &mut HttpResponse<BoxBody>) {
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The middleware on `/graphql`.
pub async fn cors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if request.path() != "/graphql" {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let admitted = match (&origin, request.app_data::<web::Data<AllowedOrigins>>()) {
        (Some(raw), Some(origins)) => origins.admit(raw).await,
        _ => None,
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut answer = match &admitted {
            Some(origin) if preflight_is_acceptable(&request) => {
                let mut answer = HttpResponse::NoContent();
                answer
                    .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                    .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, METHODS))
                    .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, HEADERS_LIST))
                    .insert_header((
                        header::ACCESS_CONTROL_MAX_AGE,
                        PREFLIGHT_MAX_AGE_SECONDS.to_string(),
                    ));
                answer.finish()
            }
            _ => HttpResponse::Forbidden().finish(),
        };
        vary_origin(&mut answer);
        for asked in [
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ] {
            answer
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static(asked));
        }
        return Ok(request.into_response(answer));
    }
    let mut response = next.call(request).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = admitted
        && let Ok(value) = HeaderValue::from_str(origin.as_str())
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    Ok(response)
}
