//! The waitlist: entries (whose personal data is a guest record of their
//! own, sealed like a booking's), the offers made when a matching table is
//! free, and their claims. Offers are made by one pass per venue inside a
//! write transaction that locks the venue's row; unique indexes on the open
//! offers (one per entry, one per table and start) are the last word when
//! two nodes run the pass at once.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use domain::crypto::KeyRing;
use domain::waitlist::WaitlistWish;
use domain::{
    BookingContext, DomainError, Email, Guest, GuestId, PartySize, PersonName, Phone,
    ReservationStatus, ResourceId, TimeOfDay, Venue, VenueId, WaitlistToken,
};

use crate::guests::{GuestRow, seal_guest};
use crate::lock::ForUpdate;
use crate::rows::{OpeningHoursRow, ResourceRow, VenueRow, db_instant, db_int};
use crate::venues::{load_occupancy, load_resources, load_venue};
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Most entries a venue's list answers.
const WAITLIST_PAGE: i64 = 500;

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// In line for an offer.
    Waiting,
    /// An offer is open.
    Offered,
    /// An offer was claimed: the guest has a booking.
    Booked,
    /// An offer expired unclaimed: the turn passed to the next in line.
    Missed,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Booked => "booked",
            Self::Missed => "missed",
        }
    }

    fn parse(raw: &str) -> Result<Self, StoreError> {
        Ok(match raw {
            "waiting" => Self::Waiting,
            "offered" => Self::Offered,
            "booked" => Self::Booked,
            "missed" => Self::Missed,
            other => return Err(StoreError::Corrupt(format!("waitlist status {other}"))),
        })
    }
}

/// An offer of a freed table, as the entry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistOffer {
    pub id: String,
    pub resource_id: ResourceId,
    pub starts_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `open`, `claimed`, `expired` or `failed` (taken meanwhile).
    pub status: String,
    pub reservation_id: Option<String>,
}

/// A waitlist entry with its newest offer. The guest's details are in the
/// guest record `guest_id`, opened only where asked for.
#[derive(Debug, Clone)]
pub struct WaitlistEntry {
    pub id: String,
    pub venue_id: VenueId,
    pub guest_id: GuestId,
    pub wish: WaitlistWish,
    pub locale: String,
    pub status: EntryStatus,
    pub joined_at: DateTime<Utc>,
    pub offer: Option<WaitlistOffer>,
}

/// What a guest asks for. No `Debug`: personal data.
pub struct NewWaitlistEntry {
    pub venue_id: VenueId,
    pub wish: WaitlistWish,
    pub name: PersonName,
    pub email: Email,
    pub phone: Option<Phone>,
    pub locale: String,
}

/// A claimed offer and what booking it needs: the guest's details, opened.
pub struct ClaimedOffer {
    pub offer: WaitlistOffer,
    pub entry: WaitlistEntry,
    pub guest: Guest,
}

/// What a waitlist pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitlistRun {
    pub expired: usize,
    pub offered: usize,
    pub purged: usize,
}

type EntryRow = (
    String,
    String,
    String,
    String,
    i32,
    i32,
    i32,
    Option<String>,
    String,
    String,
    DateTime<Utc>,
);

type OfferRow = (
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
    Option<String>,
);

macro_rules! entry_columns {
    ($s:ident) => {
        (
            $s::waitlist_entries::id,
            $s::waitlist_entries::venue_id,
            $s::waitlist_entries::guest_id,
            $s::waitlist_entries::local_date,
            $s::waitlist_entries::from_minute,
            $s::waitlist_entries::until_minute,
            $s::waitlist_entries::party_size,
            $s::waitlist_entries::service_id,
            $s::waitlist_entries::locale,
            $s::waitlist_entries::status,
            $s::waitlist_entries::joined_at,
        )
    };
}

macro_rules! offer_columns {
    ($s:ident) => {
        (
            $s::waitlist_offers::id,
            $s::waitlist_offers::entry_id,
            $s::waitlist_offers::resource_id,
            $s::waitlist_offers::starts_at,
            $s::waitlist_offers::expires_at,
            $s::waitlist_offers::status,
            $s::waitlist_offers::reservation_id,
        )
    };
}

fn corrupt(what: &str) -> impl Fn() -> StoreError + '_ {
    move || StoreError::Corrupt(format!("waitlist {what}"))
}

fn entry_of(row: EntryRow, offer: Option<WaitlistOffer>) -> Result<WaitlistEntry, StoreError> {
    let (id, venue, guest, date, from, until, party, service, locale, status, joined_at) = row;
    let time = |minutes: i32| {
        u32::try_from(minutes)
            .ok()
            .and_then(TimeOfDay::from_minutes)
            .ok_or_else(corrupt("window"))
    };
    Ok(WaitlistEntry {
        venue_id: VenueId::parse(&venue).map_err(|_| corrupt("venue")())?,
        guest_id: GuestId::parse(&guest).map_err(|_| corrupt("guest")())?,
        wish: WaitlistWish {
            date: NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| corrupt("date")())?,
            from: time(from)?,
            until: time(until)?,
            party_size: PartySize::parse(i64::from(party)).map_err(|_| corrupt("party")())?,
            service: service
                .map(|raw| domain::ServiceId::parse(&raw).map_err(|_| corrupt("service")()))
                .transpose()?,
        },
        status: EntryStatus::parse(&status)?,
        id,
        locale,
        joined_at,
        offer,
    })
}

fn offer_of(row: OfferRow) -> Result<(String, WaitlistOffer), StoreError> {
    let (id, entry, resource, starts_at, expires_at, status, reservation_id) = row;
    Ok((
        entry,
        WaitlistOffer {
            id,
            resource_id: ResourceId::parse(&resource).map_err(|_| corrupt("resource")())?,
            starts_at,
            expires_at,
            status,
            reservation_id,
        },
    ))
}

/// Entries with their newest offers.
fn with_offers(
    entries: Vec<EntryRow>,
    offers: Vec<OfferRow>,
) -> Result<Vec<WaitlistEntry>, StoreError> {
    let mut newest: HashMap<String, WaitlistOffer> = HashMap::new();
    for row in offers {
        let (entry, offer) = offer_of(row)?;
        let newer = newest
            .get(&entry)
            .is_none_or(|known| known.starts_at <= offer.starts_at);
        if newer {
            newest.insert(entry, offer);
        }
    }
    entries
        .into_iter()
        .map(|row| {
            let offer = newest.remove(&row.0);
            entry_of(row, offer)
        })
        .collect()
}

impl Store {
    /// Puts a guest on a venue's waitlist: a guest record of their own
    /// (sealed under a new data key, found by the e-mail's lookup token)
    /// and the entry, whose token is answered once and kept as a hash.
    pub fn join_waitlist(
        &self,
        request: &NewWaitlistEntry,
        now: DateTime<Utc>,
    ) -> Result<(WaitlistEntry, WaitlistToken), StoreError> {
        let now = db_instant(now);
        let ring = self.keys().current();
        let guest_id = GuestId::new_random();
        let id = guest_id.to_string();
        let venue_id = request.venue_id.to_string();
        let data_key = self.key_store().create_key(&ring, &id, now)?;
        let sealed = seal_guest(
            &ring,
            ring.current_version(),
            Some(&data_key),
            &id,
            &request.name,
            Some(&request.email),
            request.phone.as_ref(),
        )?;
        let token = WaitlistToken::generate(WaitlistToken::ENTRY)?;
        let entry_id = uuid::Uuid::new_v4().to_string();
        let wish = request.wish;
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            // The venue's row, exclusively: joins take their places in
            // the line one after the other.
            let _venue: Vec<String> = s::load_locked!(
                s::venues::table.find(&venue_id).select(s::venues::id),
                c,
                ForUpdate::Wait
            )?;
            let venue: Venue =
                load_venue!(c, s, &venue_id)?.ok_or(DomainError::not_found("venue"))?;
            venue.guest_fields.check(&domain::GuestDetails {
                name: request.name.clone(),
                email: Some(request.email.clone()),
                phone: request.phone.clone(),
                notes: None,
            })?;
            wish.check(&venue, venue.local_date(now))?;
            use s::guests::dsl as g;
            diesel::insert_into(g::guests)
                .values((
                    g::id.eq(&id),
                    g::venue_id.eq(&venue_id),
                    g::key_version.eq(sealed.key_version),
                    g::name_sealed.eq(&sealed.name_sealed),
                    g::email_sealed.eq(&sealed.email_sealed),
                    g::email_lookup.eq(&sealed.email_lookup),
                    g::phone_sealed.eq(&sealed.phone_sealed),
                    g::phone_lookup.eq(&sealed.phone_lookup),
                    g::created_at.eq(now),
                    g::updated_at.eq(now),
                    g::data_key.eq(true),
                ))
                .execute(c)?;
            use s::waitlist_entries::dsl as w;
            let last: Option<i32> = w::waitlist_entries
                .filter(w::venue_id.eq(&venue_id))
                .select(diesel::dsl::max(w::position))
                .first(c)?;
            diesel::insert_into(w::waitlist_entries)
                .values((
                    w::id.eq(&entry_id),
                    w::venue_id.eq(&venue_id),
                    w::guest_id.eq(&id),
                    w::local_date.eq(wish.date.format("%Y-%m-%d").to_string()),
                    w::from_minute.eq(db_int(wish.from.minutes())),
                    w::until_minute.eq(db_int(wish.until.minutes())),
                    w::party_size.eq(db_int(wish.party_size.get())),
                    w::service_id.eq(wish.service.map(|id| id.to_string())),
                    w::locale.eq(&request.locale),
                    w::token_hash.eq(token.hash()),
                    w::status.eq(EntryStatus::Waiting.as_str()),
                    w::position.eq(last.unwrap_or(0).saturating_add(1)),
                    w::joined_at.eq(now),
                    w::updated_at.eq(now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        }))?;
        let entry = WaitlistEntry {
            id: entry_id,
            venue_id: request.venue_id,
            guest_id,
            wish,
            locale: request.locale.clone(),
            status: EntryStatus::Waiting,
            joined_at: now,
            offer: None,
        };
        Ok((entry, token))
    }

    /// The entry a waitlist token opens; none for an unknown token.
    pub fn waitlist_entry_by_token(
        &self,
        token: &WaitlistToken,
    ) -> Result<Option<WaitlistEntry>, StoreError> {
        let hash = token.hash();
        let mut connection = self.connection()?;
        let (entries, offers) = on_backend!(&mut *connection, |c, s| {
            let entries: Vec<EntryRow> = s::waitlist_entries::table
                .filter(s::waitlist_entries::token_hash.eq(&hash))
                .select(entry_columns!(s))
                .load(c)?;
            let ids: Vec<&String> = entries.iter().map(|e| &e.0).collect();
            let offers: Vec<OfferRow> = s::waitlist_offers::table
                .filter(s::waitlist_offers::entry_id.eq_any(ids))
                .select(offer_columns!(s))
                .load(c)?;
            (entries, offers)
        });
        Ok(with_offers(entries, offers)?.into_iter().next())
    }

    /// A venue's entries on a local date (every date without one), in
    /// line order.
    pub fn waitlist_of_venue(
        &self,
        venue: VenueId,
        date: Option<NaiveDate>,
    ) -> Result<Vec<WaitlistEntry>, StoreError> {
        let venue = venue.to_string();
        let date = date.map(|d| d.format("%Y-%m-%d").to_string());
        let mut connection = self.connection()?;
        let (entries, offers) = on_backend!(&mut *connection, |c, s| {
            use s::waitlist_entries::dsl as w;
            let mut query = w::waitlist_entries
                .filter(w::venue_id.eq(&venue))
                .select(entry_columns!(s))
                .order((w::local_date, w::position, w::id))
                .limit(WAITLIST_PAGE)
                .into_boxed();
            if let Some(date) = &date {
                query = query.filter(w::local_date.eq(date.clone()));
            }
            let entries: Vec<EntryRow> = query.load(c)?;
            let ids: Vec<&String> = entries.iter().map(|e| &e.0).collect();
            let offers: Vec<OfferRow> = s::waitlist_offers::table
                .filter(s::waitlist_offers::entry_id.eq_any(ids))
                .select(offer_columns!(s))
                .load(c)?;
            (entries, offers)
        });
        with_offers(entries, offers)
    }

    /// The entries of some guest records (an export).
    pub fn waitlist_of_guests(&self, guests: &[GuestId]) -> Result<Vec<WaitlistEntry>, StoreError> {
        let ids: Vec<String> = guests.iter().map(ToString::to_string).collect();
        let mut connection = self.connection()?;
        let (entries, offers) = on_backend!(&mut *connection, |c, s| {
            use s::waitlist_entries::dsl as w;
            let entries: Vec<EntryRow> = w::waitlist_entries
                .filter(w::guest_id.eq_any(&ids))
                .select(entry_columns!(s))
                .order((w::joined_at, w::id))
                .load(c)?;
            let entry_ids: Vec<&String> = entries.iter().map(|e| &e.0).collect();
            let offers: Vec<OfferRow> = s::waitlist_offers::table
                .filter(s::waitlist_offers::entry_id.eq_any(entry_ids))
                .select(offer_columns!(s))
                .load(c)?;
            (entries, offers)
        });
        with_offers(entries, offers)
    }

    /// The guest records of entries, opened (erased ones read as erased).
    pub fn waitlist_guests(
        &self,
        entries: &[WaitlistEntry],
    ) -> Result<HashMap<GuestId, Guest>, StoreError> {
        let ids: Vec<String> = entries.iter().map(|e| e.guest_id.to_string()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<GuestRow> = {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| s::guests::table
                .filter(s::guests::id.eq_any(&ids))
                .load(c)?)
        };
        self.opening(|ring| open_guests(self, ring, &rows))
    }

    /// Takes a guest off the waitlist: the entry and its offers go, and
    /// the guest record is erased (its data key destroyed).
    pub fn leave_waitlist(
        &self,
        token: &WaitlistToken,
        now: DateTime<Utc>,
    ) -> Result<WaitlistEntry, StoreError> {
        let entry = self
            .waitlist_entry_by_token(token)?
            .ok_or(DomainError::not_found("waitlist entry"))?;
        let erasure = self.erase_guest(entry.guest_id, now)?;
        if !erasure.already {
            self.audit(
                &[erased_event("guest", &entry.guest_id, entry.venue_id)],
                now,
            )?;
        }
        Ok(entry)
    }

    /// Claims an open offer by its token (for the offered start, when
    /// `starts_at` names one), once: the offer is marked
    /// claimed in a transaction that finds it still open and unexpired, so
    /// a replay or a concurrent claim is refused. The caller books the
    /// table and reports back with [`Store::settle_waitlist_claim`].
    pub fn claim_waitlist_offer(
        &self,
        token: &WaitlistToken,
        starts_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ClaimedOffer, StoreError> {
        let now = db_instant(now);
        let hash = token.hash();
        let mut connection = self.connection()?;
        let (offer, entry) = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::waitlist_offers::dsl as o;
            let found: Option<OfferRow> = o::waitlist_offers
                .filter(o::token_hash.eq(&hash))
                .select(offer_columns!(s))
                .first(c)
                .optional()?;
            let (entry_id, offer) =
                offer_of(found.ok_or(DomainError::not_found("waitlist offer"))?)?;
            if offer.status != "open" {
                return Err(DomainError::Conflict(
                    "this offer was claimed already or has lapsed".to_owned(),
                )
                .into());
            }
            if offer.expires_at <= now {
                return Err(DomainError::Conflict(
                    "this offer has expired; the table went to the next guest in line".to_owned(),
                )
                .into());
            }
            // Another start than the offered one is a mistake to fix, and
            // leaves the offer open.
            if starts_at.is_some_and(|asked| asked != offer.starts_at) {
                return Err(
                    DomainError::invalid("startsAt", "is not the start this offer holds").into(),
                );
            }
            let claimed = diesel::update(
                o::waitlist_offers
                    .filter(o::id.eq(&offer.id))
                    .filter(o::status.eq("open")),
            )
            .set(o::status.eq("claimed"))
            .execute(c)?;
            if claimed != 1 {
                return Err(DomainError::Conflict(
                    "this offer was claimed already or has lapsed".to_owned(),
                )
                .into());
            }
            use s::waitlist_entries::dsl as w;
            diesel::update(w::waitlist_entries.find(&entry_id))
                .set((
                    w::status.eq(EntryStatus::Booked.as_str()),
                    w::updated_at.eq(now),
                ))
                .execute(c)?;
            let entry: EntryRow = w::waitlist_entries
                .find(&entry_id)
                .select(entry_columns!(s))
                .first(c)?;
            Ok::<_, StoreError>((offer, entry))
        }))?;
        let offer = WaitlistOffer {
            status: "claimed".to_owned(),
            ..offer
        };
        let entry = entry_of(entry, Some(offer.clone()))?;
        let guest = self
            .waitlist_guests(std::slice::from_ref(&entry))?
            .remove(&entry.guest_id)
            .ok_or_else(corrupt("guest record"))?;
        Ok(ClaimedOffer {
            offer,
            entry,
            guest,
        })
    }

    /// Records how a claim ended: the booking made, or (`None`) no booking
    /// because the table was taken meanwhile, when the offer lapses and
    /// the entry goes back in line at its old place.
    pub fn settle_waitlist_claim(
        &self,
        claimed: &ClaimedOffer,
        reservation: Option<domain::ReservationId>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::waitlist_entries::dsl as w;
            use s::waitlist_offers::dsl as o;
            match reservation {
                Some(id) => {
                    diesel::update(o::waitlist_offers.find(&claimed.offer.id))
                        .set(o::reservation_id.eq(Some(id.to_string())))
                        .execute(c)?;
                }
                None => {
                    diesel::update(o::waitlist_offers.find(&claimed.offer.id))
                        .set(o::status.eq("failed"))
                        .execute(c)?;
                    diesel::update(w::waitlist_entries.find(&claimed.entry.id))
                        .set((
                            w::status.eq(EntryStatus::Waiting.as_str()),
                            w::updated_at.eq(now),
                        ))
                        .execute(c)?;
                }
            }
            Ok::<_, StoreError>(())
        }))
    }

    /// One pass over every venue's waitlist: open offers past their time
    /// expire (their entries lose their turn), the next entries in line get
    /// offers of matching free tables, and entries past their venue's
    /// `waitlist_retention_days` are deleted with their guest records.
    pub fn run_waitlist(&self, now: DateTime<Utc>) -> Result<WaitlistRun, StoreError> {
        let venues: Vec<String> = {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| {
                use s::waitlist_entries::dsl as w;
                w::waitlist_entries.select(w::venue_id).distinct().load(c)?
            })
        };
        let mut run = WaitlistRun::default();
        for venue in venues {
            let id = VenueId::parse(&venue).map_err(|_| corrupt("venue")())?;
            let pass = self.run_waitlist_of(id, now)?;
            run.expired += pass.expired;
            run.offered += pass.offered;
            run.purged += pass.purged;
        }
        if run != WaitlistRun::default() {
            tracing::info!(
                expired = run.expired,
                offered = run.offered,
                purged = run.purged,
                "waitlist pass"
            );
        }
        Ok(run)
    }

    /// The pass of one venue (see [`Store::run_waitlist`]): also run right
    /// after a change frees a table there.
    pub fn run_waitlist_of(
        &self,
        venue: VenueId,
        now: DateTime<Utc>,
    ) -> Result<WaitlistRun, StoreError> {
        let now = db_instant(now);
        let purged = self.purge_waitlist(venue, now)?;
        let mut run = self.opening(|ring| offer_pass(self, ring, venue, now))?;
        run.purged = purged;
        Ok(run)
    }

    /// Deletes a venue's entries whose date is more than its
    /// `waitlist_retention_days` past, erasing their guest records.
    fn purge_waitlist(&self, venue: VenueId, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let venue_text = venue.to_string();
        let guests = {
            let mut connection = self.connection()?;
            on_backend!(&mut *connection, |c, s| {
                let loaded: Option<Venue> = load_venue!(c, s, &venue_text)?;
                let Some(loaded) = loaded else {
                    return Ok(0);
                };
                let cutoff = loaded.local_date(now)
                    - chrono::Duration::days(i64::from(loaded.waitlist.retention_days));
                use s::waitlist_entries::dsl as w;
                let guests: Vec<String> = w::waitlist_entries
                    .filter(w::venue_id.eq(&venue_text))
                    .filter(w::local_date.lt(cutoff.format("%Y-%m-%d").to_string()))
                    .select(w::guest_id)
                    .load(c)?;
                guests
            })
        };
        for guest in &guests {
            let guest = GuestId::parse(guest).map_err(|_| corrupt("guest")())?;
            match self.erase(guest, now, false, crate::ErasureReason::Retention) {
                Ok(Some(erasure)) if !erasure.already => {
                    self.audit(&[erased_event("retention", &guest, venue)], now)?;
                }
                Ok(_) => {}
                Err(StoreError::Domain(DomainError::Conflict(_))) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(guests.len())
    }
}

/// The audit trail's record of an entry's details erased by `who`.
fn erased_event(who: &str, guest: &GuestId, venue: VenueId) -> crate::AuditEvent {
    crate::AuditEvent {
        principal: who.to_owned(),
        action: crate::AuditAction::Erase,
        object: format!("guest:{guest}"),
        fields: crate::audit_fields::ERASED.to_owned(),
        venue_id: Some(venue.to_string()),
    }
}

/// The guest records of `rows`, opened under their data keys.
fn open_guests(
    store: &Store,
    ring: &KeyRing,
    rows: &[GuestRow],
) -> Result<HashMap<GuestId, Guest>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let keys = store.key_store().keys_of(ring, &ids)?;
    let mut opened = HashMap::with_capacity(rows.len());
    for row in rows {
        let access = keys.access(&row.id, row.data_key)?;
        let guest = row.open(ring, access)?;
        opened.insert(guest.id, guest);
    }
    Ok(opened)
}

/// Expires a venue's lapsed offers and makes the offers now due, in one
/// write transaction holding the venue's row.
fn offer_pass(
    store: &Store,
    ring: &KeyRing,
    venue_id: VenueId,
    now: DateTime<Utc>,
) -> Result<WaitlistRun, StoreError> {
    let venue_text = venue_id.to_string();
    let mut connection = store.connection()?;
    let made = on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
        // The venue's row, exclusively: a second node's pass waits here
        // and then sees the offers this one made.
        let _venue: Vec<String> = s::load_locked!(
            s::venues::table.find(&venue_text).select(s::venues::id),
            c,
            ForUpdate::Wait
        )?;
        let loaded: Option<Venue> = load_venue!(c, s, &venue_text)?;
        let Some(venue) = loaded else {
            return Ok::<_, StoreError>(WaitlistRun::default());
        };
        use s::waitlist_entries::dsl as w;
        use s::waitlist_offers::dsl as o;
        // Lapsed offers: their entries lose their turn.
        let lapsed: Vec<(String, String)> = o::waitlist_offers
            .filter(o::venue_id.eq(&venue_text))
            .filter(o::status.eq("open"))
            .filter(o::expires_at.le(now))
            .select((o::id, o::entry_id))
            .load(c)?;
        for (offer, entry) in &lapsed {
            diesel::update(o::waitlist_offers.find(offer))
                .set(o::status.eq("expired"))
                .execute(c)?;
            diesel::update(w::waitlist_entries.find(entry))
                .set((
                    w::status.eq(EntryStatus::Missed.as_str()),
                    w::updated_at.eq(now),
                ))
                .execute(c)?;
        }
        let today = venue.local_date(now).format("%Y-%m-%d").to_string();
        let waiting: Vec<EntryRow> = w::waitlist_entries
            .filter(w::venue_id.eq(&venue_text))
            .filter(w::status.eq(EntryStatus::Waiting.as_str()))
            .filter(w::local_date.ge(&today))
            .order((w::position, w::id))
            .select(entry_columns!(s))
            .load(c)?;
        if waiting.is_empty() {
            return Ok(WaitlistRun {
                expired: lapsed.len(),
                ..WaitlistRun::default()
            });
        }
        // Tables already offered and not yet claimed or lapsed are held.
        let mut held: Vec<(ResourceId, DateTime<Utc>, DateTime<Utc>)> = o::waitlist_offers
            .filter(o::venue_id.eq(&venue_text))
            .filter(o::status.eq("open"))
            .select((o::resource_id, o::starts_at, o::blocked_until))
            .load::<(String, DateTime<Utc>, DateTime<Utc>)>(c)?
            .into_iter()
            .map(|(resource, from, until)| {
                Ok((
                    ResourceId::parse(&resource).map_err(|_| corrupt("resource")())?,
                    from,
                    until,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let resources = load_resources!(c, s, &venue_text)?;
        let mut offered = 0usize;
        for row in waiting {
            let entry = entry_of(row, None)?;
            let date = entry.wish.date;
            let from = venue.instant_at(date, TimeOfDay::MIDNIGHT);
            let until = venue.instant_at(date, TimeOfDay::END_OF_DAY)
                + domain::BookingRules::longest_block();
            // An entry whose service has been retired since, or that names
            // none at a venue that now books by service, could not be
            // booked: it waits unoffered until it leaves or is purged.
            let Ok(service) = venue.service_for(entry.wish.service) else {
                continue;
            };
            let occupied = load_occupancy!(c, s, &venue_text, from, until, "", now)?;
            let context = BookingContext {
                venue: &venue,
                resources: &resources,
                occupied: &occupied,
                now,
                service,
            };
            let Ok(slots) = context.availability(date, entry.wish.party_size) else {
                continue;
            };
            let shape = context.shape();
            let block = shape.duration.duration() + shape.buffer.duration();
            let found = entry.wish.first_match(&venue, &slots, |resource, slot| {
                held.iter().any(|(r, from, until)| {
                    *r == resource && *from < slot.starts_at + block && slot.starts_at < *until
                })
            });
            let Some((resource, starts_at)) = found else {
                continue;
            };
            let token = WaitlistToken::generate(WaitlistToken::OFFER)?;
            let offer_id = uuid::Uuid::new_v4().to_string();
            let expires_at =
                now + chrono::Duration::minutes(i64::from(venue.waitlist.offer_minutes));
            diesel::insert_into(o::waitlist_offers)
                .values((
                    o::id.eq(&offer_id),
                    o::entry_id.eq(&entry.id),
                    o::venue_id.eq(&venue_text),
                    o::resource_id.eq(resource.to_string()),
                    o::starts_at.eq(starts_at),
                    o::blocked_until.eq(starts_at + block),
                    o::token_hash.eq(token.hash()),
                    o::status.eq("open"),
                    o::expires_at.eq(expires_at),
                    o::created_at.eq(now),
                ))
                .execute(c)?;
            diesel::update(w::waitlist_entries.find(&entry.id))
                .set((
                    w::status.eq(EntryStatus::Offered.as_str()),
                    w::updated_at.eq(now),
                ))
                .execute(c)?;
            held.push((resource, starts_at, starts_at + block));
            // The offer goes by mail, with the guest's id: erasing them
            // withdraws it while it waits.
            let guest_text = entry.guest_id.to_string();
            let rows: Vec<GuestRow> = s::guests::table
                .filter(s::guests::id.eq(&guest_text))
                .load(c)?;
            let guest = open_guests(store, ring, &rows)?.remove(&entry.guest_id);
            if let Some(email) = guest.and_then(|g| g.email) {
                let message = domain::messages::waitlist_offer(
                    &venue,
                    starts_at,
                    entry.wish.party_size.get(),
                    token.expose(),
                    venue.waitlist.offer_minutes,
                );
                let (mail_id, sealed) =
                    crate::outbox::seal_mail(ring, &crate::outbox::Mail::new(email, message))?;
                crate::outbox::insert_mail!(
                    c,
                    s,
                    &mail_id,
                    "waitlist_offer",
                    Some(&venue_text),
                    Some(&guest_text),
                    &sealed,
                    now
                )?;
            }
            offered += 1;
        }
        Ok(WaitlistRun {
            expired: lapsed.len(),
            offered,
            purged: 0,
        })
    }));
    match made {
        // Another node made the same offer first: its pass stands.
        Err(StoreError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ))) => Ok(WaitlistRun::default()),
        other => other,
    }
}
