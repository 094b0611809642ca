//! The breach register: incidents with the items Art. 33(3) asks for, the
//! 72-hour deadline to the authority, and which guests were told.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// How long a controller has to tell the supervisory authority.
pub const AUTHORITY_DEADLINE_HOURS: i64 = 72;

/// A breach as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Breach {
    pub id: String,
    pub discovered_at: DateTime<Utc>,
    pub nature: String,
    pub data_categories: String,
    pub approx_people: i32,
    pub approx_records: i32,
    pub consequences: String,
    pub measures: String,
    pub contact: String,
    pub reported_at: Option<DateTime<Utc>>,
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
    /// The venue it concerns; none for the whole deployment.
    pub venue_id: Option<String>,
}

impl Breach {
    pub fn authority_deadline(&self) -> DateTime<Utc> {
        self.discovered_at + chrono::Duration::hours(AUTHORITY_DEADLINE_HOURS)
    }

    /// Whether the authority was told in time: unknown (`None`) while it
    /// has not been told and the deadline has not passed.
    pub fn deadline_met(&self, now: DateTime<Utc>) -> Option<bool> {
        match self.reported_at {
            Some(reported) => Some(reported <= self.authority_deadline()),
            None if now > self.authority_deadline() => Some(false),
            None => None,
        }
    }
}

/// What an admin records; see Art. 33(3).
#[derive(Debug, Clone)]
pub struct NewBreach {
    pub discovered_at: DateTime<Utc>,
    pub nature: String,
    pub data_categories: String,
    pub approx_people: i32,
    pub approx_records: i32,
    pub consequences: String,
    pub measures: String,
    pub contact: String,
    pub recorded_by: String,
    /// The venue it concerns; none for the whole deployment.
    pub venue_id: Option<String>,
}

impl Store {
    pub fn record_breach(
        &self,
        breach: &NewBreach,
        now: DateTime<Utc>,
    ) -> Result<Breach, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = db_instant(now);
        let discovered = db_instant(breach.discovered_at);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::breaches::dsl as b;
            diesel::insert_into(b::breaches)
                .values((
                    b::id.eq(&id),
                    b::discovered_at.eq(discovered),
                    b::nature.eq(&breach.nature),
                    b::data_categories.eq(&breach.data_categories),
                    b::approx_people.eq(breach.approx_people),
                    b::approx_records.eq(breach.approx_records),
                    b::consequences.eq(&breach.consequences),
                    b::measures.eq(&breach.measures),
                    b::contact.eq(&breach.contact),
                    b::recorded_by.eq(&breach.recorded_by),
                    b::created_at.eq(now),
                    b::venue_id.eq(&breach.venue_id),
                ))
                .execute(c)?;
        });
        self.breach(&id)?
            .ok_or_else(|| StoreError::Corrupt("a breach vanished after recording".to_owned()))
    }

    pub fn breach(&self, id: &str) -> Result<Option<Breach>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| s::breaches::table
            .find(id)
            .first(c)
            .optional()?))
    }

    /// Breaches, newest discovery first, `limit` from `offset`: every one
    /// (`venues` none), or those of the listed venues.
    pub fn breaches(
        &self,
        venues: Option<&[String]>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Breach>, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::breaches::table
                .order((s::breaches::discovered_at.desc(), s::breaches::id.desc()))
                .offset(offset)
                .limit(limit)
                .into_boxed();
            if let Some(venues) = venues {
                query = query.filter(s::breaches::venue_id.eq_any(venues.to_vec()));
            }
            query.load(c)?
        }))
    }

    /// How many breaches `breaches` pages through for `venues`.
    pub fn breach_count(&self, venues: Option<&[String]>) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            let mut query = s::breaches::table.count().into_boxed();
            if let Some(venues) = venues {
                query = query.filter(s::breaches::venue_id.eq_any(venues.to_vec()));
            }
            query.get_result::<i64>(c)?
        }))
    }

    /// Records when the authority was told (once; a second call keeps the
    /// first date, which is what the deadline is judged by).
    pub fn breach_reported(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Breach>, StoreError> {
        let at = db_instant(at);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::breaches::dsl as b;
            diesel::update(b::breaches.find(id).filter(b::reported_at.is_null()))
                .set(b::reported_at.eq(Some(at)))
                .execute(c)?;
        });
        self.breach(id)
    }

    /// Queues a breach notice for a guest and records that they were told,
    /// in one transaction: a guest is told once per breach (`false` when
    /// they already were, and nothing is queued), and a notice is queued
    /// exactly when it is recorded.
    pub fn queue_breach_notice(
        &self,
        breach: &str,
        guest: &str,
        venue: &str,
        mail: &crate::Mail,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = db_instant(now);
        let (mail_id, sealed) = crate::outbox::seal_mail(&self.keys().current(), mail)?;
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| c.write_transaction(
            |c| {
                use s::breach_notices::dsl as n;
                let recorded = diesel::insert_into(n::breach_notices)
                    .values((
                        n::breach_id.eq(breach),
                        n::guest_id.eq(guest),
                        n::outbox_id.eq(&mail_id),
                        n::notified_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)?;
                if recorded == 0 {
                    return Ok::<_, StoreError>(false);
                }
                crate::outbox::insert_mail!(
                    c,
                    s,
                    &mail_id,
                    "breach_notice",
                    Some(venue),
                    Some(guest),
                    &sealed,
                    now
                )?;
                Ok(true)
            }
        ))?)
    }

    /// How many guests were told of a breach.
    pub fn breach_notice_count(&self, breach: &str) -> Result<i64, StoreError> {
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::breach_notices::dsl as n;
            n::breach_notices
                .filter(n::breach_id.eq(breach))
                .count()
                .get_result(c)?
        }))
    }
}
