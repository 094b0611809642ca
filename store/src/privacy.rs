//! Privacy notices and the consent ledger. The ledger is append-only: a
//! withdrawal is a new row, never an update.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::privacy::{Consent, ConsentPurpose, Locale, PrivacyNotice};
use domain::{DomainError, GuestId, VenueId};

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

#[derive(Queryable)]
pub(crate) struct NoticeRow {
    venue_id: String,
    locale: String,
    version: i32,
    text: String,
    sha256: String,
    published_at: DateTime<Utc>,
}

impl TryFrom<NoticeRow> for PrivacyNotice {
    type Error = StoreError;

    fn try_from(row: NoticeRow) -> Result<Self, StoreError> {
        Ok(PrivacyNotice {
            venue_id: VenueId::parse(&row.venue_id)
                .map_err(|_| StoreError::Corrupt("notice venue".to_owned()))?,
            locale: Locale::parse(&row.locale)
                .map_err(|_| StoreError::Corrupt("notice locale".to_owned()))?,
            version: u32::try_from(row.version)
                .map_err(|_| StoreError::Corrupt("notice version".to_owned()))?,
            text: row.text,
            sha256: row.sha256,
            published_at: row.published_at,
        })
    }
}

/// The current notice of a venue in a locale, inside a transaction.
macro_rules! current_notice {
    ($c:expr, $s:ident, $venue:expr, $locale:expr) => {
        $crate::step(|| {
            Ok({
                use $s::privacy_notices::dsl as n;
                let row: Option<$crate::privacy::NoticeRow> = n::privacy_notices
                    .filter(n::venue_id.eq($venue))
                    .filter(n::locale.eq($locale))
                    .order(n::version.desc())
                    .first::<$crate::privacy::NoticeRow>($c)
                    .optional()?;
                row.map(domain::privacy::PrivacyNotice::try_from)
                    .transpose()?
            })
        })
    };
}
pub(crate) use current_notice;

/// Appends consent entries (one per purpose) inside a transaction.
macro_rules! append_consents {
    ($c:expr, $s:ident, $guest:expr, $venue:expr, $purposes:expr, $given:expr, $channel:expr, $notice:expr, $now:expr) => {
        $crate::step(|| {
            Ok({
                use $s::consents::dsl as k;
                let notice: Option<&domain::privacy::PrivacyNotice> = $notice;
                let last: Option<i32> = k::consents
                    .filter(k::guest_id.eq($guest))
                    .select(diesel::dsl::max(k::seq))
                    .first($c)?;
                let notice_version = notice.map(|n| i32::try_from(n.version).unwrap_or(i32::MAX));
                let notice_sha256 = notice.map(|n| n.sha256.clone());
                // One statement for all of a booking's purposes, numbered in the
                // order given.
                let rows: Vec<_> = $purposes
                    .into_iter()
                    .zip(last.unwrap_or(0) + 1..)
                    .map(|(purpose, seq): (domain::privacy::ConsentPurpose, i32)| {
                        (
                            k::id.eq(domain::GuestId::new_random().to_string()),
                            k::guest_id.eq($guest),
                            k::seq.eq(seq),
                            k::venue_id.eq($venue),
                            k::purpose.eq(purpose.as_str()),
                            k::given.eq($given),
                            k::at.eq($now),
                            k::channel.eq($channel),
                            k::notice_version.eq(notice_version),
                            k::notice_sha256.eq(notice_sha256.clone()),
                        )
                    })
                    .collect();
                diesel::insert_into(k::consents).values(rows).execute($c)?;
            })
        })
    };
}
pub(crate) use append_consents;

/// One consent to append to the ledger.
pub struct ConsentChange<'a> {
    pub guest: GuestId,
    pub venue: VenueId,
    pub purpose: ConsentPurpose,
    pub given: bool,
    /// `web`, `partner:<key id>` or `staff:<account id>`.
    pub channel: &'a str,
    /// The notice locale the guest reads.
    pub locale: &'a Locale,
}

type ConsentRow = (
    String,
    bool,
    DateTime<Utc>,
    String,
    Option<i32>,
    Option<String>,
);

impl Store {
    /// Publishes the next version of a venue's notice in a locale.
    pub fn publish_notice(
        &self,
        venue: VenueId,
        locale: &Locale,
        text: &str,
        sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<PrivacyNotice, StoreError> {
        let now = db_instant(now);
        let venue_id = venue.to_string();
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let latest: Option<PrivacyNotice> = current_notice!(c, s, &venue_id, locale.as_str())?;
            let version = latest.map_or(1, |n| n.version + 1);
            use s::privacy_notices::dsl as n;
            diesel::insert_into(n::privacy_notices)
                .values((
                    n::venue_id.eq(&venue_id),
                    n::locale.eq(locale.as_str()),
                    n::version.eq(i32::try_from(version).unwrap_or(i32::MAX)),
                    n::text.eq(text),
                    n::sha256.eq(sha256),
                    n::published_at.eq(now),
                ))
                .execute(c)?;
            let published: Option<PrivacyNotice> =
                current_notice!(c, s, &venue_id, locale.as_str())?;
            published
                .ok_or_else(|| StoreError::Corrupt("the notice just published is gone".to_owned()))
        }))
    }

    pub fn current_notice(
        &self,
        venue: VenueId,
        locale: &Locale,
    ) -> Result<Option<PrivacyNotice>, StoreError> {
        let venue_id = venue.to_string();
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| current_notice!(
            c,
            s,
            &venue_id,
            locale.as_str()
        )?))
    }

    /// Appends a consent given or withdrawn, under the venue's current
    /// notice in that locale.
    pub fn record_consent(
        &self,
        change: &ConsentChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = db_instant(now);
        let (guest, venue) = (change.guest.to_string(), change.venue.to_string());
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            let notice: Option<PrivacyNotice> =
                current_notice!(c, s, &venue, change.locale.as_str())?;
            append_consents!(
                c,
                s,
                &guest,
                &venue,
                [change.purpose],
                change.given,
                change.channel,
                notice.as_ref(),
                now
            )?;
            Ok::<_, StoreError>(())
        }))
    }

    /// A guest's consent ledger at a venue, oldest first.
    pub fn consents_of(&self, guest: GuestId, venue: VenueId) -> Result<Vec<Consent>, StoreError> {
        Ok(self
            .consents_of_many(&[guest], venue)?
            .into_iter()
            .map(|(_, consent)| consent)
            .collect())
    }

    /// The consent ledgers of several guest records at a venue, in one
    /// query, in the order they were recorded, each with its record.
    pub fn consents_of_many(
        &self,
        guests: &[GuestId],
        venue: VenueId,
    ) -> Result<Vec<(GuestId, Consent)>, StoreError> {
        if guests.is_empty() {
            return Ok(Vec::new());
        }
        let guests: Vec<String> = guests.iter().map(ToString::to_string).collect();
        let venue = venue.to_string();
        let mut connection = self.connection()?;
        let rows: Vec<(String, ConsentRow)> = on_backend!(&mut *connection, |c, s| {
            use s::consents::dsl as k;
            k::consents
                .filter(k::guest_id.eq_any(&guests))
                .filter(k::venue_id.eq(&venue))
                .order(k::seq)
                .select((
                    k::guest_id,
                    (
                        k::purpose,
                        k::given,
                        k::at,
                        k::channel,
                        k::notice_version,
                        k::notice_sha256,
                    ),
                ))
                .load::<(String, ConsentRow)>(c)?
        });
        rows.into_iter()
            .map(|(guest, (purpose, given, at, channel, version, sha256))| {
                let guest = GuestId::parse(&guest)
                    .map_err(|_| StoreError::Corrupt("consent guest".to_owned()))?;
                Ok((
                    guest,
                    Consent {
                        purpose: ConsentPurpose::parse(&purpose)
                            .map_err(|_| StoreError::Corrupt("consent purpose".to_owned()))?,
                        given,
                        at,
                        channel,
                        notice_version: version.and_then(|v| u32::try_from(v).ok()),
                        notice_sha256: sha256,
                    },
                ))
            })
            .collect()
    }
}

/// Refuses a booking that names a notice version other than the current
/// one (or names one where none is published).
pub(crate) fn check_notice(
    current: Option<&PrivacyNotice>,
    named: Option<u32>,
) -> Result<(), DomainError> {
    match (current, named) {
        (Some(notice), Some(version)) if notice.version == version => Ok(()),
        (Some(notice), _) => Err(DomainError::invalid(
            "noticeVersion",
            format!(
                "the current privacy notice ({}) is version {}; show it and book again",
                notice.locale.as_str(),
                notice.version
            ),
        )),
        (None, Some(_)) => Err(DomainError::invalid(
            "noticeVersion",
            "this venue has published no privacy notice in this locale",
        )),
        (None, None) => Ok(()),
    }
}
