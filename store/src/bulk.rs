//! Loading many guests and reservations at once, for the benchmark's data
//! set: the same sealed columns and lookup tokens as bookings write, in
//! multi-row inserts of one transaction per batch.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::{Email, PersonName, Phone};

use crate::guests::{db_version, seal_guest};
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// A guest to load; sealed on the way in.
pub struct BulkGuest {
    pub id: String,
    pub venue_id: String,
    pub name: PersonName,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
}

/// A reservation to load. The caller keeps reservations of one resource
/// from overlapping (PostgreSQL refuses them anyway).
pub struct BulkReservation {
    pub id: String,
    pub venue_id: String,
    pub resource_id: String,
    pub guest_id: String,
    pub party_size: i32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
}

/// Rows per insert statement: within SQLite's limit of bound variables.
const ROWS_PER_INSERT: usize = 500;

impl Store {
    /// Inserts guests and then reservations in one transaction.
    pub fn bulk_load(
        &self,
        guests: &[BulkGuest],
        reservations: &[BulkReservation],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ring = self.keys().current();
        let version = ring.current_version();
        let now = db_instant(now);
        let ids: Vec<String> = guests.iter().map(|guest| guest.id.clone()).collect();
        let keys = self.key_store().create_keys(&ring, &ids, now)?;
        let mut guest_rows = Vec::with_capacity(guests.len());
        for guest in guests {
            let sealed = seal_guest(
                &ring,
                version,
                keys.get(&guest.id),
                &guest.id,
                &guest.name,
                guest.email.as_ref(),
                guest.phone.as_ref(),
            )?;
            guest_rows.push((guest, sealed));
        }
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::guests::dsl as g;
            use s::reservations::dsl as r;
            for chunk in guest_rows.chunks(ROWS_PER_INSERT) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|(guest, sealed)| {
                        (
                            g::id.eq(&guest.id),
                            g::venue_id.eq(&guest.venue_id),
                            g::key_version.eq(db_version(version)),
                            g::name_sealed.eq(&sealed.name_sealed),
                            g::email_sealed.eq(sealed.email_sealed.as_ref()),
                            g::email_lookup.eq(sealed.email_lookup.as_ref()),
                            g::phone_sealed.eq(sealed.phone_sealed.as_ref()),
                            g::phone_lookup.eq(sealed.phone_lookup.as_ref()),
                            g::created_at.eq(now),
                            g::updated_at.eq(now),
                            g::data_key.eq(true),
                        )
                    })
                    .collect();
                diesel::insert_into(g::guests).values(values).execute(c)?;
            }
            for chunk in reservations.chunks(ROWS_PER_INSERT) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|booking| {
                        (
                            (
                                r::id.eq(&booking.id),
                                r::venue_id.eq(&booking.venue_id),
                                r::resource_id.eq(&booking.resource_id),
                                r::party_size.eq(booking.party_size),
                                r::starts_at.eq(db_instant(booking.starts_at)),
                                r::ends_at.eq(db_instant(booking.ends_at)),
                                r::blocked_until.eq(db_instant(booking.blocked_until)),
                                r::status.eq(booking.status),
                            ),
                            (
                                r::version.eq(1),
                                r::created_at.eq(db_instant(booking.created_at)),
                                r::updated_at.eq(db_instant(booking.created_at)),
                                r::guest_id.eq(Some(&booking.guest_id)),
                            ),
                        )
                    })
                    .collect();
                diesel::insert_into(r::reservations)
                    .values(values)
                    .execute(c)?;
            }
            Ok::<_, StoreError>(())
        }))
    }
}
