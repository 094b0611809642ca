//! The right to be forgotten, and to be correct: a guest's personal fields
//! are destroyed (erasure) or re-sealed (correction). What accounting needs
//! stays, under the guest row's id as a pseudonym.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::crypto::Field;
use domain::payments::PaymentStatus;
use domain::{DomainError, Email, GuestId, PersonName, Phone, Reservation};

use crate::guests::{GuestRow, seal_guest};
use crate::keystore::ErasureReason;
use crate::lock::ForUpdate;
use crate::rows::{ReservationRow, db_instant, reservation_columns};
use crate::{Backend, Store, StoreError, WriteTransaction, on_backend};

/// Withdraws what the outbox still holds for a guest: marked `withdrawn`,
/// its content destroyed. Sent and given-up messages hold no content.
macro_rules! withdraw_messages {
    ($c:expr, $s:ident, $guest:expr) => {
        $crate::step(|| {
            Ok({
                use $s::outbox::dsl as o;
                diesel::update(
                    o::outbox
                        .filter(o::guest_id.eq($guest))
                        .filter(o::status.eq("pending")),
                )
                .set((
                    o::status.eq("withdrawn"),
                    o::message_sealed.eq(Vec::<u8>::new()),
                ))
                .execute($c)?;
            })
        })
    };
}

/// Deletes the access codes and access grants of an address (given by its
/// lookup tokens) at a venue. Grants keep the address sealed rather than a
/// lookup token, so the venue's live grants (minutes old, few) are opened
/// and compared.
macro_rules! forget_access {
    ($c:expr, $s:ident, $ring:expr, $venue:expr, $address:expr) => {
        $crate::step(|| {
            Ok({
                let address: &Vec<Vec<u8>> = $address;
                if !address.is_empty() {
                    use $s::access_codes::dsl as a;
                    use $s::guest_access_grants::dsl as g;
                    diesel::delete(
                        a::access_codes
                            .filter(a::venue_id.eq($venue))
                            .filter(a::email_lookup.eq_any(address)),
                    )
                    .execute($c)?;
                    let grants: Vec<(String, Vec<u8>)> = g::guest_access_grants
                        .filter(g::venue_id.eq($venue))
                        .select((g::id, g::email_sealed))
                        .load($c)?;
                    let mut theirs = Vec::new();
                    for (id, sealed) in grants {
                        let email = crate::guests::open_text(
                            $ring,
                            Field::ACCESS_GRANT_EMAIL,
                            &id,
                            &sealed,
                        )?;
                        let tokens =
                            crate::guests::tokens($ring, Field::GUEST_EMAIL, Some(&email))?;
                        if tokens.iter().any(|t| address.contains(t)) {
                            theirs.push(id);
                        }
                    }
                    if !theirs.is_empty() {
                        diesel::delete(g::guest_access_grants.filter(g::id.eq_any(&theirs)))
                            .execute($c)?;
                    }
                }
            })
        })
    };
}

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    pub erased_at: DateTime<Utc>,
    /// The guest had been erased before: nothing more to do.
    pub already: bool,
    pub reservations: usize,
}

impl Store {
    /// Every reservation of a guest, oldest first.
    pub fn reservations_of_guest(&self, guest: GuestId) -> Result<Vec<Reservation>, StoreError> {
        let guest = guest.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> =
            on_backend!(&mut *connection, |c, s| s::reservations::table
                .filter(s::reservations::guest_id.eq(&guest))
                .order(s::reservations::starts_at)
                .select(reservation_columns!(s))
                .load::<ReservationRow>(c)?);
        rows.into_iter().map(Reservation::try_from).collect()
    }

    /// The reservations of several guest records at one venue, in one
    /// query, by start (then id).
    pub fn reservations_of_guests(
        &self,
        guests: &[GuestId],
        venue: domain::VenueId,
    ) -> Result<Vec<Reservation>, StoreError> {
        if guests.is_empty() {
            return Ok(Vec::new());
        }
        let guests: Vec<String> = guests.iter().map(ToString::to_string).collect();
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<ReservationRow> =
            on_backend!(&mut *connection, |c, s| s::reservations::table
                .filter(s::reservations::guest_id.eq_any(&guests))
                .filter(s::reservations::venue_id.eq(&venue))
                .order((s::reservations::starts_at, s::reservations::id))
                .select(reservation_columns!(s))
                .load::<ReservationRow>(c)?);
        rows.into_iter().map(Reservation::try_from).collect()
    }

    /// Destroys a guest's personal fields everywhere: name, e-mail and phone
    /// (sealed values and lookup tokens), reservation notes, card brand and
    /// last four. Amounts, dates, statuses and provider references stay.
    /// Refused while a payment is in flight; erasing twice is fine.
    pub fn erase_guest(&self, guest: GuestId, now: DateTime<Utc>) -> Result<Erasure, StoreError> {
        self.erase(guest, now, false, ErasureReason::Request)?
            .ok_or_else(|| DomainError::not_found("guest").into())
    }

    /// Erases a guest, or on PostgreSQL with `skip_locked` gives `None`
    /// when another node holds the guest's row (it is erasing them).
    pub(crate) fn erase(
        &self,
        guest: GuestId,
        now: DateTime<Utc>,
        skip_locked: bool,
        reason: ErasureReason,
    ) -> Result<Option<Erasure>, StoreError> {
        let now = db_instant(now);
        let guest = guest.to_string();
        let ring = self.keys().current();
        let mut connection = self.connection()?;
        let erasure = on_backend!(&mut *connection, |c, s| {
            c.write_transaction(|c| {
            use s::guests::dsl as g;
            // Locked, so that concurrent erasures of the same guest (two
            // API nodes, a guest and the retention job) take turns; `None`
            // when the guest does not exist or, skipping locked rows,
            // another transaction holds theirs.
            let lock = if skip_locked {
                ForUpdate::SkipLocked
            } else {
                ForUpdate::Wait
            };
            let rows: Vec<GuestRow> =
                s::load_locked!(g::guests.find(&guest).limit(1), c, lock)?;
            let Some(row) = rows.into_iter().next() else {
                return Ok::<_, StoreError>(None);
            };
            use s::reservations::dsl as r;
            let reservations: Vec<String> = r::reservations
                .filter(r::guest_id.eq(&guest))
                .select(r::id)
                .load(c)?;
            // What is still waiting to be sent about the guest, and the
            // access codes and access tokens of their address at the
            // venue, go too (also on a replay: a restored backup brings
            // them back).
            withdraw_messages!(c, s, &guest)?;
            // Their waitlist entries go whole (with their offers): an entry
            // without its guest's details is nobody's wish.
            {
                use s::waitlist_entries::dsl as w;
                use s::waitlist_offers::dsl as wo;
                let entries: Vec<String> = w::waitlist_entries
                    .filter(w::guest_id.eq(&guest))
                    .select(w::id)
                    .load(c)?;
                if !entries.is_empty() {
                    diesel::delete(wo::waitlist_offers.filter(wo::entry_id.eq_any(&entries)))
                        .execute(c)?;
                    diesel::delete(w::waitlist_entries.filter(w::id.eq_any(&entries)))
                        .execute(c)?;
                }
            }
            let address = self.address_tokens(&row)?;
            forget_access!(c, s, &ring, &row.venue_id, &address)?;
            if let Some(erased_at) = row.erased_at {
                // Also when an earlier attempt stopped between the two
                // databases: the key goes and the erasure is recorded.
                self.key_store().destroy(&guest, erased_at, reason)?;
                return Ok(Some(Erasure {
                    erased_at,
                    already: true,
                    reservations: reservations.len(),
                }));
            }
            use s::payments::dsl as p;
            let statuses: Vec<String> = p::payments
                .filter(p::reservation_id.eq_any(&reservations))
                .select(p::status)
                .load(c)?;
            if statuses.iter().filter_map(|s| PaymentStatus::parse(s)).any(PaymentStatus::is_in_flight) {
                return Err(DomainError::Conflict(
                    "a payment is still in flight; erasure waits until it has settled (ask again in a few minutes)".to_owned(),
                )
                .into());
            }
            diesel::update(g::guests.find(&guest))
                .set((
                    g::name_sealed.eq(Vec::<u8>::new()),
                    g::email_sealed.eq(None::<Vec<u8>>),
                    g::email_lookup.eq(None::<Vec<u8>>),
                    g::phone_sealed.eq(None::<Vec<u8>>),
                    g::phone_lookup.eq(None::<Vec<u8>>),
                    g::erased_at.eq(Some(now)),
                    g::updated_at.eq(now),
                ))
                .execute(c)?;
            diesel::update(r::reservations.filter(r::guest_id.eq(&guest)))
                .set((r::notes_sealed.eq(None::<Vec<u8>>), r::key_version.eq(None::<i32>)))
                .execute(c)?;
            diesel::update(p::payments.filter(p::reservation_id.eq_any(&reservations)))
                .set((p::card_brand.eq(None::<String>), p::card_last4.eq(None::<String>)))
                .execute(c)?;
            // Last, before this transaction commits: the guest's data key
            // is destroyed and the erasure recorded in the key store. If
            // the commit here then fails, the guest already reads as
            // erased everywhere and a replay finishes the rows.
            self.key_store().destroy(&guest, now, reason)?;
            Ok(Some(Erasure {
                erased_at: now,
                already: false,
                reservations: reservations.len(),
            }))
        })
        })?;
        if self.backend() == Backend::Sqlite && erasure.as_ref().is_some_and(|e| !e.already) {
            // The old page versions sit in the write-ahead log until a
            // checkpoint; secure_delete has zeroed them in the page itself.
            use diesel::connection::SimpleConnection;
            if let crate::DbConnection::Sqlite(c) = &mut *connection {
                c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
            }
        }
        Ok(erasure)
    }

    /// Replaces the name, e-mail and phone of guest records (the right to
    /// rectification), sealed anew with the current key, in one
    /// transaction; answers the records changed. Erased records stay
    /// erased; when every record is erased the correction is refused.
    pub fn correct_guests(
        &self,
        guests: &[GuestId],
        name: &PersonName,
        email: Option<&Email>,
        phone: Option<&Phone>,
        now: DateTime<Utc>,
    ) -> Result<Vec<GuestId>, StoreError> {
        let now = db_instant(now);
        let ring = self.keys().current();
        let version = ring.current_version();
        let ids: Vec<String> = guests.iter().map(ToString::to_string).collect();
        let flags: Vec<(String, bool)> = {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| {
                use s::guests::dsl as g;
                g::guests
                    .filter(g::id.eq_any(&ids))
                    .select((g::id, g::data_key))
                    .load(c)?
            })
        };
        // Corrected records are sealed under their data keys (records
        // from before data keys get one now); erased ones stay erased.
        let keys = self.key_store().ensure_keys(&ring, &flags, now)?;
        let mut sealed = Vec::with_capacity(guests.len());
        for (guest, id) in guests.iter().zip(ids) {
            let Some(key) = keys.key(&id) else {
                continue;
            };
            let row = seal_guest(&ring, version, Some(key), &id, name, email, phone)?;
            sealed.push((*guest, id, row));
        }
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::guests::dsl as g;
            let mut corrected = Vec::new();
            let mut erased = 0usize;
            for (guest, id, sealed) in &sealed {
                let state: Option<Option<DateTime<Utc>>> = g::guests
                    .find(id)
                    .select(g::erased_at)
                    .first(c)
                    .optional()?;
                match state {
                    None => continue,
                    Some(Some(_)) => {
                        erased += 1;
                        continue;
                    }
                    Some(None) => {}
                }
                diesel::update(g::guests.find(id))
                    .set((
                        g::key_version.eq(sealed.key_version),
                        g::name_sealed.eq(&sealed.name_sealed),
                        g::email_sealed.eq(&sealed.email_sealed),
                        g::email_lookup.eq(&sealed.email_lookup),
                        g::phone_sealed.eq(&sealed.phone_sealed),
                        g::phone_lookup.eq(&sealed.phone_lookup),
                        g::updated_at.eq(now),
                        g::data_key.eq(true),
                    ))
                    .execute(c)?;
                corrected.push(*guest);
            }
            if corrected.is_empty() {
                return Err(if erased > 0 {
                    DomainError::Conflict("this guest's data was erased".to_owned()).into()
                } else {
                    DomainError::not_found("guest").into()
                });
            }
            Ok(corrected)
        }))
    }
}

/// What replaying the key store's record of erasures did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replay {
    /// Erasures the key store records.
    pub recorded: usize,
    /// Guests erased again now (their rows had come back with a restore).
    pub applied: usize,
    /// Guests whose rows were erased already.
    pub already: usize,
    /// Guests this database does not hold (a backup older than them).
    pub absent: usize,
    /// Guests with a payment in flight: a later replay erases them.
    pub waiting: usize,
}

impl Store {
    /// Applies every erasure the key store records to this database: after
    /// a data backup is restored, the guests erased since it was taken are
    /// erased again (their data keys are gone, so their fields never
    /// opened). Idempotent; keeps each erasure's original time.
    pub fn replay_erasures(&self) -> Result<Replay, StoreError> {
        let recorded = self.key_store().erasures()?;
        let mut replay = Replay {
            recorded: recorded.len(),
            ..Replay::default()
        };
        for (id, erased_at) in recorded {
            let Ok(guest) = GuestId::parse(&id) else {
                return Err(StoreError::Corrupt(format!("erasure record {id}")));
            };
            match self.erase(guest, erased_at, false, ErasureReason::Request) {
                Ok(None) => replay.absent += 1,
                Ok(Some(erasure)) if erasure.already => replay.already += 1,
                Ok(Some(_)) => replay.applied += 1,
                Err(StoreError::Domain(DomainError::Conflict(_))) => replay.waiting += 1,
                Err(other) => return Err(other),
            }
        }
        tracing::info!(
            recorded = replay.recorded,
            applied = replay.applied,
            waiting = replay.waiting,
            "replayed recorded erasures"
        );
        Ok(replay)
    }
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionRun {
    /// Guests past their venue's retention limit.
    pub due: usize,
    pub anonymized: usize,
    /// Left for a later run: a payment of theirs is still in flight.
    pub waiting: usize,
    /// Being anonymized by another node's run at the same moment.
    pub taken_by_another_node: usize,
    /// (gateway, provider reference) of the anonymized guests' saved
    /// cards: the caller asks the providers to forget them.
    pub saved_cards: Vec<(String, String)>,
}

impl Store {
    /// (gateway, provider reference) of a guest's saved cards (no-show
    /// guarantees): what the providers are asked to delete on erasure.
    pub fn saved_cards_of(&self, guest: GuestId) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .reservations_of_guest(guest)?
            .into_iter()
            .map(|booking| self.payments_of(booking.id))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .filter(|p| p.kind == "guarantee")
            .filter_map(|p| p.reference.map(|reference| (p.gateway, reference)))
            .collect())
    }

    /// Guests whose last visit ended longer ago than their venue keeps
    /// data, not yet erased.
    pub fn retention_due(&self, now: DateTime<Utc>) -> Result<Vec<GuestId>, StoreError> {
        let mut connection = self.connection()?;
        // Asked of the database venue by venue: a guest is due when they
        // have visits and none ends after the venue's cut-off. Only the
        // due guests' ids come back, however large the tables.
        let due: Vec<String> = on_backend!(&mut *connection, |c, s| {
            use s::guests::dsl as g;
            use s::reservations::dsl as r;
            let limits: Vec<(String, i32)> = s::venues::table
                .select((s::venues::id, s::venues::retention_days))
                .load(c)?;
            let mut due = Vec::new();
            for (venue, days) in limits {
                let cutoff = db_instant(now - chrono::Duration::days(i64::from(days)));
                let visits = r::reservations.filter(r::guest_id.eq(g::id.nullable()));
                let recent = r::reservations
                    .filter(r::guest_id.eq(g::id.nullable()))
                    .filter(r::ends_at.ge(cutoff));
                due.extend(
                    g::guests
                        .filter(g::venue_id.eq(&venue))
                        .filter(g::erased_at.is_null())
                        .filter(diesel::dsl::exists(visits))
                        .filter(diesel::dsl::not(diesel::dsl::exists(recent)))
                        .select(g::id)
                        .load::<String>(c)?,
                );
            }
            due
        });
        Ok(due
            .into_iter()
            .filter_map(|guest| GuestId::parse(&guest).ok())
            .collect())
    }

    /// Anonymizes guests past their venue's retention limit, in batches.
    /// Erasure is idempotent, so two nodes running this at once anonymize
    /// each guest once; guests with a payment in flight wait for a later
    /// run. Logs counts, never identities.
    pub fn run_retention(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<RetentionRun, StoreError> {
        let due = self.retention_due(now)?;
        let mut run = RetentionRun {
            due: due.len(),
            ..RetentionRun::default()
        };
        if dry_run {
            return Ok(run);
        }
        for batch in due.chunks(100) {
            for guest in batch {
                let skip_locked = self.backend() == Backend::Postgresql;
                let saved_cards = self.saved_cards_of(*guest)?;
                match self.erase(*guest, now, skip_locked, ErasureReason::Retention) {
                    Ok(None) => run.taken_by_another_node += 1,
                    Ok(Some(erasure)) if !erasure.already => {
                        run.anonymized += 1;
                        run.saved_cards.extend(saved_cards);
                        self.audit(
                            &[crate::AuditEvent {
                                principal: "retention".to_owned(),
                                action: crate::AuditAction::Erase,
                                object: format!("guest:{guest}"),
                                fields: crate::audit_fields::ERASED.to_owned(),
                                venue_id: None,
                            }],
                            now,
                        )?;
                    }
                    Ok(Some(_)) => {}
                    Err(StoreError::Domain(DomainError::Conflict(_))) => run.waiting += 1,
                    Err(other) => return Err(other),
                }
            }
        }
        // An hourly job with nothing to do should not fill the log.
        if run.due > 0 {
            tracing::info!(
                due = run.due,
                anonymized = run.anonymized,
                waiting = run.waiting,
                taken_by_another_node = run.taken_by_another_node,
                "retention run"
            );
        } else {
            tracing::debug!("retention run: nobody is past their venue's limit");
        }
        Ok(run)
    }
}

impl Store {
    /// The lookup tokens of a guest record's e-mail address, under every
    /// key version when the address still opens, and at least the one the
    /// row keeps (when the guest's data key is already gone). Empty for a
    /// record without an address.
    fn address_tokens(&self, row: &GuestRow) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut found: Vec<Vec<u8>> = row._email_lookup.iter().cloned().collect();
        let Some(sealed) = &row.email_sealed else {
            return Ok(found);
        };
        let ring = self.keys().current();
        let keys = self
            .key_store()
            .keys_of(&ring, std::slice::from_ref(&row.id))?;
        let access = match keys.access(&row.id, row.data_key) {
            Ok(crate::GuestAccess::Shredded) | Err(StoreError::KeyMismatch(_)) => {
                return Ok(found);
            }
            Ok(access) => access,
            Err(other) => return Err(other),
        };
        let email =
            crate::guests::open_personal(&ring, access, Field::GUEST_EMAIL, &row.id, sealed)?;
        for token in crate::guests::tokens(&ring, Field::GUEST_EMAIL, Some(&email))? {
            if !found.contains(&token) {
                found.push(token);
            }
        }
        Ok(found)
    }
}
