//! `kluis-bench baseline`: an HTTP server that runs the hot reads' SQL
//! through a pool opened from the same settings as `kluis serve`, without
//! GraphQL, authorization or decryption. The load tool drives it exactly
//! as it drives kluis, so the difference between the two is what kluis adds.

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{NaiveDate, TimeDelta, Utc};
use domain::{Email, VenueId};
use serde::Deserialize;
use store::Store;

#[derive(Deserialize)]
struct DayQuery {
    venue: String,
    date: NaiveDate,
}

#[derive(Deserialize)]
struct LookupQuery {
    venue: String,
    email: String,
}

/// The baselines' server on `listener`; it serves while awaited.
pub fn server(
    store: Store,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    let store = web::Data::new(store);
    HttpServer::new(move || {
        App::new()
            .app_data(store.clone())
            .route("/availability", web::get().to(availability))
            .route("/day-sheet", web::get().to(day_sheet))
            .route("/lookup/token", web::get().to(lookup_token))
            .route("/lookup/plaintext", web::get().to(lookup_plaintext))
    })
    .workers(workers)
    .listen(listener)
    .map(HttpServer::run)
}

fn venue(raw: &str) -> Result<VenueId, &'static str> {
    VenueId::parse(raw).map_err(|_| "venue: not a venue id")
}

/// Runs a store read on the blocking pool, as kluis does, and answers it
/// as JSON.
async fn answer<T: serde::Serialize + Send + 'static>(
    store: web::Data<Store>,
    read: impl FnOnce(&Store) -> Result<T, store::StoreError> + Send + 'static,
) -> HttpResponse {
    let store = store.into_inner();
    match tokio::task::spawn_blocking(move || read(&store)).await {
        Ok(Ok(rows)) => HttpResponse::Ok().json(rows),
        Ok(Err(error)) => HttpResponse::InternalServerError().body(error.to_string()),
        Err(_) => HttpResponse::InternalServerError().body("the read stopped"),
    }
}

/// The availability queries for a whole UTC day (the grid of any local
/// day spans at most that much plus a booking).
async fn availability(store: web::Data<Store>, query: web::Query<DayQuery>) -> HttpResponse {
    let venue = match venue(&query.venue) {
        Ok(venue) => venue,
        Err(reason) => return HttpResponse::BadRequest().body(reason),
    };
    let from = query.date.and_time(chrono::NaiveTime::MIN).and_utc();
    let until = from + TimeDelta::days(1) + TimeDelta::minutes(90);
    answer(store, move |store| {
        store.baseline_availability(venue, from, until, Utc::now())
    })
    .await
}

async fn day_sheet(store: web::Data<Store>, query: web::Query<DayQuery>) -> HttpResponse {
    let venue = match venue(&query.venue) {
        Ok(venue) => venue,
        Err(reason) => return HttpResponse::BadRequest().body(reason),
    };
    let from = query.date.and_time(chrono::NaiveTime::MIN).and_utc();
    let until = from + TimeDelta::days(1);
    answer(store, move |store| {
        store.baseline_day_sheet(venue, from, until, 21)
    })
    .await
}

/// A guest's reservations by e-mail address, through `read`: the lookup
/// token or the plaintext column.
async fn lookup(
    store: web::Data<Store>,
    query: &LookupQuery,
    read: fn(&Store, VenueId, &Email) -> Result<Vec<store::GuestReservationRow>, store::StoreError>,
) -> HttpResponse {
    let venue = match venue(&query.venue) {
        Ok(venue) => venue,
        Err(reason) => return HttpResponse::BadRequest().body(reason),
    };
    let Ok(email) = Email::parse("email", &query.email) else {
        return HttpResponse::BadRequest().body("email: not an address");
    };
    answer(store, move |store| read(store, venue, &email)).await
}

async fn lookup_token(store: web::Data<Store>, query: web::Query<LookupQuery>) -> HttpResponse {
    lookup(store, &query, Store::baseline_lookup_by_token).await
}

async fn lookup_plaintext(store: web::Data<Store>, query: web::Query<LookupQuery>) -> HttpResponse {
    lookup(store, &query, Store::baseline_lookup_plaintext).await
}
