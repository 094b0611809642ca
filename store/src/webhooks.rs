//! Venues' webhook endpoints: where a venue hears about its bookings, and
//! the secret its messages are signed with (sealed to the venue's row).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::VenueId;
use domain::crypto::Field;
use secrecy::SecretString;

use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// A venue's endpoint. The secret is only opened to sign a message.
pub struct VenueWebhook {
    pub url: String,
    pub secret: SecretString,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for VenueWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VenueWebhook")
            .field("url", &self.url)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Points the venue's webhook at `url` with a fresh secret, replacing
    /// any earlier endpoint; returns it with the secret, which is not shown
    /// again.
    pub fn set_venue_webhook(
        &self,
        venue: VenueId,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<VenueWebhook, StoreError> {
        let venue_id = venue.to_string();
        let secret = domain::webhooks::new_secret()?;
        let sealed =
            self.keys()
                .current()
                .seal(Field::WEBHOOK_SECRET, &venue_id, secret.as_bytes())?;
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| c.write_transaction(|c| {
            use s::venue_webhooks::dsl as w;
            diesel::delete(w::venue_webhooks.find(&venue_id)).execute(c)?;
            diesel::insert_into(w::venue_webhooks)
                .values((
                    w::venue_id.eq(&venue_id),
                    w::url.eq(url),
                    w::secret_sealed.eq(&sealed),
                    w::created_at.eq(now),
                ))
                .execute(c)?;
            Ok::<_, StoreError>(())
        }))?;
        Ok(VenueWebhook {
            url: url.to_owned(),
            secret: SecretString::from(secret),
            created_at: now,
        })
    }

    /// Stops the venue's webhook; messages still waiting are given up
    /// when their turn comes. Returns whether there was one.
    pub fn remove_venue_webhook(&self, venue: VenueId) -> Result<bool, StoreError> {
        let venue_id = venue.to_string();
        let mut connection = self.connection()?;
        let removed = on_backend!(&mut *connection, |c, s| {
            use s::venue_webhooks::dsl as w;
            diesel::delete(w::venue_webhooks.find(&venue_id)).execute(c)?
        });
        Ok(removed > 0)
    }

    /// The venue's endpoint, if it has one.
    pub fn venue_webhook(&self, venue: &str) -> Result<Option<VenueWebhook>, StoreError> {
        let mut connection = self.connection()?;
        let row: Option<(String, Vec<u8>, DateTime<Utc>)> =
            on_backend!(&mut *connection, |c, s| {
                use s::venue_webhooks::dsl as w;
                w::venue_webhooks
                    .find(venue)
                    .select((w::url, w::secret_sealed, w::created_at))
                    .first(c)
                    .optional()?
            });
        let Some((url, sealed, created_at)) = row else {
            return Ok(None);
        };
        let secret =
            self.opening(|ring| Ok(ring.open(Field::WEBHOOK_SECRET, venue, &sealed)?))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| StoreError::Corrupt(format!("the webhook secret of venue {venue}")))?;
        Ok(Some(VenueWebhook {
            url,
            secret: SecretString::from(secret),
            created_at,
        }))
    }
}
