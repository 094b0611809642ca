//! The load benchmark's baselines: the SQL of the hot reads run on their
//! own, without GraphQL, authorization or decryption, so that the report
//! can show what kluis adds on top of the database as a ratio. Also the
//! plaintext e-mail column the encrypted lookup is compared with, and the
//! double-booking check run after the booking scenario.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{DomainError, Email, Reservation, ReservationStatus, Resource, VenueId};

use crate::rows::{
    OpeningHoursRow, ReservationRow, ResourceRow, VenueRow, db_instant, reservation_columns,
};
use crate::venues::{load_occupancy, load_resources, load_venue};
use crate::{DbConnection, Store, StoreError, WriteTransaction, on_backend};

diesel::table! {
    /// Only in benchmark databases: the guests' e-mail addresses in the
    /// clear, indexed like the lookup tokens, for the plaintext baseline.
    bench_plaintext_emails (venue_id, email) {
        venue_id -> Text,
        email -> Text,
        guest_id -> Text,
    }
}

const PLAINTEXT_TABLE: &str = "CREATE TABLE IF NOT EXISTS bench_plaintext_emails (\
     venue_id TEXT NOT NULL, email TEXT NOT NULL, guest_id TEXT NOT NULL, \
     PRIMARY KEY (venue_id, email))";

/// Rows per insert statement: within SQLite's limit of bound variables.
const ROWS_PER_INSERT: usize = 300;

/// What the availability SQL reads for a venue and a span.
#[derive(Debug, serde::Serialize)]
pub struct AvailabilityRows {
    pub venue: String,
    pub resources: Vec<(String, u32)>,
    pub occupied: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
}

/// A row of the day sheet as the database holds it: the guest's name
/// still sealed.
#[derive(Debug, serde::Serialize, Queryable)]
pub struct DaySheetRow {
    pub id: String,
    pub starts_at: DateTime<Utc>,
    pub party_size: i32,
    pub name_sealed: Option<Vec<u8>>,
}

/// A reservation found through its guest's e-mail address.
#[derive(Debug, serde::Serialize)]
pub struct GuestReservationRow {
    pub id: String,
    pub starts_at: DateTime<Utc>,
    pub party_size: u32,
    pub status: &'static str,
}

impl From<&Reservation> for GuestReservationRow {
    fn from(reservation: &Reservation) -> Self {
        Self {
            id: reservation.id.to_string(),
            starts_at: reservation.starts_at,
            party_size: reservation.party_size.get(),
            status: reservation.status.as_str(),
        }
    }
}

/// How many reservations a lookup returns at most.
const LOOKUP_LIMIT: i64 = 20;

impl Store {
    /// The queries `availability` runs (venue with its hours, resources,
    /// occupancy over `[from, until)`), on one connection.
    pub fn baseline_availability(
        &self,
        venue: VenueId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<AvailabilityRows, StoreError> {
        let id = venue.to_string();
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            let venue: domain::Venue =
                load_venue!(c, s, &id)?.ok_or(DomainError::not_found("venue"))?;
            let resources: Vec<Resource> = load_resources!(c, s, &id)?;
            let occupied = load_occupancy!(c, s, &id, from, until, "", now)?;
            Ok(AvailabilityRows {
                venue: venue.name,
                resources: resources
                    .into_iter()
                    .map(|r| (r.id.to_string(), r.capacity))
                    .collect(),
                occupied: occupied
                    .into_iter()
                    .map(|o| (o.resource_id.to_string(), o.starts_at, o.blocked_until))
                    .collect(),
            })
        })
    }

    /// A venue's reservations starting in `[from, until)` with their
    /// guests' sealed names, in start order: the day sheet's reads in two
    /// queries.
    pub fn baseline_day_sheet(
        &self,
        venue: VenueId,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DaySheetRow>, StoreError> {
        let venue = venue.to_string();
        let (from, until) = (db_instant(from), db_instant(until));
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::guests::dsl as g;
            use s::reservations::dsl as r;
            Ok(r::reservations
                .left_join(g::guests.on(g::id.nullable().eq(r::guest_id)))
                .filter(r::venue_id.eq(&venue))
                .filter(r::starts_at.ge(from))
                .filter(r::starts_at.lt(until))
                .order((r::starts_at, r::id))
                .limit(limit)
                .select((
                    r::id,
                    r::starts_at,
                    r::party_size,
                    g::name_sealed.nullable(),
                ))
                .load::<DaySheetRow>(c)?)
        })
    }

    /// A guest's reservations at a venue through the e-mail lookup token:
    /// exactly the store read the front-desk lookup makes (the token
    /// computed as bookings compute it, then two indexed queries).
    pub fn baseline_lookup_by_token(
        &self,
        venue: VenueId,
        email: &Email,
    ) -> Result<Vec<GuestReservationRow>, StoreError> {
        let (_, reservations) = self.reservations_of_guest_by_email(venue, email, LOOKUP_LIMIT)?;
        Ok(reservations.iter().map(GuestReservationRow::from).collect())
    }

    /// The same lookup against the plaintext e-mail column.
    pub fn baseline_lookup_plaintext(
        &self,
        venue: VenueId,
        email: &Email,
    ) -> Result<Vec<GuestReservationRow>, StoreError> {
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> = on_backend!(&mut *connection, |c, s| {
            use bench_plaintext_emails::dsl as p;
            let guest: Option<String> = p::bench_plaintext_emails
                .filter(p::venue_id.eq(&venue))
                .filter(p::email.eq(email.expose()))
                .select(p::guest_id)
                .first(c)
                .optional()?;
            let Some(guest) = guest else {
                return Ok(Vec::new());
            };
            use s::reservations::dsl as r;
            r::reservations
                .filter(r::guest_id.eq(&guest))
                .order((r::starts_at.desc(), r::id.desc()))
                .limit(LOOKUP_LIMIT)
                .select(reservation_columns!(s))
                .load::<ReservationRow>(c)?
        });
        rows.into_iter()
            .filter(|row| row.venue_id == venue)
            .map(|row| Ok(GuestReservationRow::from(&Reservation::try_from(row)?)))
            .collect()
    }

    /// Writes guests' addresses in the clear into the baseline's own table
    /// (made if missing): `(venue id, e-mail, guest id)`. Benchmark
    /// databases only.
    pub fn bulk_plaintext_emails(
        &self,
        rows: &[(String, Email, String)],
    ) -> Result<(), StoreError> {
        // The same statements on either backend; only the table is ours.
        macro_rules! insert_all {
            ($c:expr) => {
                $c.write_transaction(|c| {
                    use diesel::connection::SimpleConnection;
                    c.batch_execute(PLAINTEXT_TABLE)?;
                    use bench_plaintext_emails::dsl as p;
                    for chunk in rows.chunks(ROWS_PER_INSERT) {
                        let values: Vec<_> = chunk
                            .iter()
                            .map(|(venue, email, guest)| {
                                (
                                    p::venue_id.eq(venue.as_str()),
                                    p::email.eq(email.expose()),
                                    p::guest_id.eq(guest.as_str()),
                                )
                            })
                            .collect();
                        diesel::insert_into(p::bench_plaintext_emails)
                            .values(values)
                            .execute(c)?;
                    }
                    Ok::<_, StoreError>(())
                })
            };
        }
        match &mut *self.connection()? {
            DbConnection::Postgresql(c) => insert_all!(c),
            DbConnection::Sqlite(c) => insert_all!(c),
        }
    }

    /// Reservations made at or after `since`.
    pub fn reservations_made_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let since = db_instant(since);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            Ok(r::reservations
                .filter(r::created_at.ge(since))
                .count()
                .get_result::<i64>(c)?)
        })
    }

    /// Pairs of active reservations of one resource that overlap in time,
    /// around those made at or after `since`: zero unless a double booking
    /// slipped through. The new reservations are read first, then each
    /// venue's active reservations over their span (one indexed range per
    /// venue), and the overlaps are counted here.
    pub fn double_bookings_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        type Span = (String, String, DateTime<Utc>, DateTime<Utc>);
        let since = db_instant(since);
        let active: Vec<&str> = ReservationStatus::ACTIVE
            .iter()
            .map(|s| s.as_str())
            .collect();
        let mut connection = self.connection()?;
        let made: Vec<Span> = on_backend!(&mut *connection, |c, s| {
            use s::reservations::dsl as r;
            r::reservations
                .filter(r::created_at.ge(since))
                .filter(r::status.eq_any(&active))
                .select((r::venue_id, r::resource_id, r::starts_at, r::blocked_until))
                .load(c)?
        });
        let mut spans: std::collections::BTreeMap<String, (DateTime<Utc>, DateTime<Utc>)> =
            std::collections::BTreeMap::new();
        for (venue, _, starts_at, blocked_until) in &made {
            let span = spans
                .entry(venue.clone())
                .or_insert((*starts_at, *blocked_until));
            span.0 = span.0.min(*starts_at);
            span.1 = span.1.max(*blocked_until);
        }
        let mut overlapping = 0;
        for (venue, (from, until)) in spans {
            let lower = db_instant(from - domain::BookingRules::longest_block());
            let (from, until) = (db_instant(from), db_instant(until));
            let mut rows: Vec<Span> = on_backend!(&mut *connection, |c, s| {
                use s::reservations::dsl as r;
                r::reservations
                    .filter(r::venue_id.eq(&venue))
                    .filter(r::starts_at.gt(lower))
                    .filter(r::starts_at.lt(until))
                    .filter(r::blocked_until.gt(from))
                    .filter(r::status.eq_any(&active))
                    .select((r::venue_id, r::resource_id, r::starts_at, r::blocked_until))
                    .load(c)?
            });
            rows.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
            for (index, (_, resource, _, blocked_until)) in rows.iter().enumerate() {
                overlapping += rows[index + 1..]
                    .iter()
                    .take_while(|next| next.1 == *resource && next.2 < *blocked_until)
                    .count();
            }
        }
        Ok(i64::try_from(overlapping).unwrap_or(i64::MAX))
    }
}
