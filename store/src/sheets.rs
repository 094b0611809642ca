//! The staff's day sheet with its filters, and the counts beside a page of
//! it: every filter runs in the query, so a page and its totals agree and
//! no row of another venue is ever loaded.

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, sum};
use diesel::prelude::*;
use domain::crypto::Field;
use domain::{Email, Reservation, ReservationStatus, ResourceId, VenueId};

use crate::guests::tokens;
use crate::rows::{ReservationRow, db_instant, reservation_columns};
use crate::{Store, StoreError, on_backend};

/// Which of a venue's reservations a day sheet shows.
#[derive(Debug, Clone)]
pub struct SheetFilter {
    pub venue: VenueId,
    /// Starts in `[from, until)`.
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Any of these statuses; every status when empty.
    pub statuses: Vec<ReservationStatus>,
    pub resource: Option<ResourceId>,
    /// Changed (booked, moved, cancelled, checked in…) after this instant.
    pub updated_since: Option<DateTime<Utc>>,
}

/// How many reservations a filter matches and how many guests they seat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SheetSummary {
    pub reservations: i64,
    pub covers: i64,
}

/// The filter's conditions on `reservations`, as a boxed query of this
/// backend.
macro_rules! filtered {
    ($s:ident, $filter:expr, $venue:expr, $statuses:expr, $resource:expr) => {{
        use $s::reservations::dsl as r;
        let filter: &SheetFilter = $filter;
        let mut query = r::reservations
            .filter(r::venue_id.eq($venue))
            .filter(r::starts_at.ge(db_instant(filter.from)))
            .filter(r::starts_at.lt(db_instant(filter.until)))
            .into_boxed();
        if !$statuses.is_empty() {
            query = query.filter(r::status.eq_any($statuses));
        }
        if let Some(resource) = $resource {
            // Every booking holding it: as its primary resource or as one
            // table of a combination.
            use $s::reservation_holds::dsl as h;
            query = query.filter(
                r::id.eq_any(
                    h::reservation_holds
                        .filter(h::resource_id.eq(resource))
                        .select(h::reservation_id),
                ),
            );
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(r::updated_at.gt(db_instant(since)));
        }
        query
    }};
}

impl Store {
    /// A page of a venue's reservations under a filter, in start order,
    /// after a `(starts_at, id)` position, at most `limit`.
    pub fn sheet_page(
        &self,
        filter: &SheetFilter,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<Reservation>, StoreError> {
        let venue = filter.venue.to_string();
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let resource = filter.resource.map(|id| id.to_string());
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> = on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            let mut query = filtered!(s, filter, &venue, &statuses, &resource)
                .select(reservation_columns!(s))
                .order((r::starts_at, r::id))
                .limit(limit);
            if let Some((starts_at, id)) = &after {
                let starts_at = db_instant(*starts_at);
                query = query.filter(
                    r::starts_at
                        .gt(starts_at)
                        .or(r::starts_at.eq(starts_at).and(r::id.gt(id.clone()))),
                );
            }
            query.load::<ReservationRow>(c)?
        });
        rows.into_iter().map(Reservation::try_from).collect()
    }

    /// How many reservations the filter matches, and their covers.
    pub fn sheet_summary(&self, filter: &SheetFilter) -> Result<SheetSummary, StoreError> {
        let venue = filter.venue.to_string();
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let resource = filter.resource.map(|id| id.to_string());
        let mut connection = self.connection()?;
        let (reservations, covers): (i64, Option<i64>) = on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            filtered!(s, filter, &venue, &statuses, &resource)
                .select((count_star(), sum(r::party_size)))
                .first::<(i64, Option<i64>)>(c)?
        });
        Ok(SheetSummary {
            reservations,
            covers: covers.unwrap_or(0),
        })
    }

    /// How many reservations at a venue the guest with this e-mail address
    /// holds (the total beside a page of the front desk's lookup).
    pub fn count_reservations_of_guest_by_email(
        &self,
        venue: VenueId,
        email: &Email,
    ) -> Result<i64, StoreError> {
        let ring = self.keys().current();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let guests = crate::guests::guest_ids_by_email!(c, s, &venue, &email_tokens)?;
            use s::reservations::dsl as r;
            if guests.is_empty() {
                0
            } else {
                r::reservations
                    .filter(r::guest_id.eq_any(&guests))
                    .filter(r::venue_id.eq(&venue))
                    .select(count_star())
                    .first::<i64>(c)?
            }
        }))
    }

    /// A page of the reservations at a venue of the guest with this e-mail
    /// address, newest start first, after a `(starts_at, id)` position, at
    /// most `limit`. Found through the lookup tokens of every key version,
    /// so nothing is decrypted.
    pub fn guest_reservations_page(
        &self,
        venue: VenueId,
        email: &Email,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> Result<Vec<Reservation>, StoreError> {
        let ring = self.keys().current();
        let email_tokens = tokens(&ring, Field::GUEST_EMAIL, Some(email.expose()))?;
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> = on_backend!(&mut *connection, |c, s| {
            let guests = crate::guests::guest_ids_by_email!(c, s, &venue, &email_tokens)?;
            use s::reservations::dsl as r;
            if guests.is_empty() {
                Vec::new()
            } else {
                let mut query = r::reservations
                    .filter(r::guest_id.eq_any(&guests))
                    .filter(r::venue_id.eq(&venue))
                    .order((r::starts_at.desc(), r::id.desc()))
                    .limit(limit)
                    .select(reservation_columns!(s))
                    .into_boxed();
                if let Some((starts_at, id)) = &after {
                    let starts_at = db_instant(*starts_at);
                    query = query.filter(
                        r::starts_at
                            .lt(starts_at)
                            .or(r::starts_at.eq(starts_at).and(r::id.lt(id.clone()))),
                    );
                }
                query.load::<ReservationRow>(c)?
            }
        });
        rows.into_iter().map(Reservation::try_from).collect()
    }

    /// How many venues there are (the total beside a page of `venues`).
    pub fn count_venues(&self) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::venues::table
            .select(count_star())
            .first::<i64>(c)?))
    }
}
