//! The outbox: e-mails and webhooks written in the same breath as the change that
//! causes them, and delivered by a worker that retries with backoff. The
//! message is sealed while it waits and destroyed once it has left.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use domain::Email;
use domain::crypto::Field;

use crate::lock::ForUpdate;
use crate::rows::db_instant;
use crate::{Store, StoreError, WriteTransaction, on_backend};

/// Attempts before a message is given up (about a day of backoff).
pub const MAX_ATTEMPTS: i32 = 10;
/// How long a worker owns the messages it claimed before another node may
/// try them: longer than one SMTP conversation.
const LEASE_SECONDS: i64 = 5 * 60;

/// An e-mail to send. Its body may name the guest, so it is never printed.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    #[serde(with = "email_text")]
    pub to: Email,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// A message's words, to one recipient.
    pub fn new(to: Email, message: domain::messages::Message) -> Self {
        Self {
            to,
            subject: message.subject,
            body: message.body.expose().to_owned(),
        }
    }
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"‹withheld›")
            .finish()
    }
}

mod email_text {
    use domain::Email;

    pub fn serialize<S: serde::Serializer>(email: &Email, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(email.expose())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Email, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(d)?;
        Ok(Email::from_stored(raw))
    }
}

/// Queues a sealed e-mail to a guest on a connection, inside whatever
/// transaction it is in (so that a message exists exactly when its cause
/// does). The guest's id goes with it: erasing the guest withdraws it.
macro_rules! insert_mail {
    ($c:expr, $s:ident, $id:expr, $purpose:expr, $venue:expr, $guest:expr, $sealed:expr, $now:expr) => {
        $crate::outbox::insert_message!(
            $c,
            $s,
            $id,
            "email",
            $purpose,
            $venue,
            $sealed,
            $now,
            $guest,
            None::<chrono::DateTime<chrono::Utc>>
        )
    };
}
pub(crate) use insert_mail;

/// Queues a sealed message. `$guest` is the guest it is about (if any);
/// `$discard_after` is when it stops being worth sending (if ever).
macro_rules! insert_message {
    ($c:expr, $s:ident, $id:expr, $kind:expr, $purpose:expr, $venue:expr, $sealed:expr, $now:expr) => {
        $crate::outbox::insert_message!(
            $c,
            $s,
            $id,
            $kind,
            $purpose,
            $venue,
            $sealed,
            $now,
            None::<&String>,
            None::<chrono::DateTime<chrono::Utc>>
        )
    };
    ($c:expr, $s:ident, $id:expr, $kind:expr, $purpose:expr, $venue:expr, $sealed:expr, $now:expr, $guest:expr, $discard_after:expr) => {
        $crate::step(|| {
            Ok({
                use $s::outbox::dsl as o;
                diesel::insert_into(o::outbox)
                    .values((
                        o::id.eq($id),
                        o::kind.eq($kind),
                        o::purpose.eq($purpose),
                        o::venue_id.eq($venue),
                        o::message_sealed.eq($sealed),
                        o::status.eq("pending"),
                        o::attempts.eq(0),
                        o::next_attempt_at.eq($now),
                        o::created_at.eq($now),
                        o::guest_id.eq($guest),
                        o::discard_after.eq($discard_after),
                    ))
                    .execute($c)?;
            })
        })
    };
}
pub(crate) use insert_message;

/// Queues a reservation event for the venue's webhook, in the change's own
/// transaction, when the venue has one.
macro_rules! queue_reservation_event {
    ($c:expr, $s:ident, $ring:expr, $reservation:expr, $event:expr, $now:expr) => {
        $crate::step(|| {
            Ok({
                let venue_id = $reservation.venue_id.to_string();
                let subscribed: i64 = {
                    use $s::venue_webhooks::dsl as w;
                    w::venue_webhooks
                        .filter(w::venue_id.eq(&venue_id))
                        .count()
                        .get_result($c)?
                };
                if subscribed > 0 {
                    let webhook = $crate::outbox::Webhook::reservation(
                        &venue_id,
                        $event,
                        $reservation,
                        $now,
                    )?;
                    let (id, sealed) = $crate::outbox::seal_message(
                        $ring,
                        &$crate::outbox::Outgoing::Webhook(webhook),
                    )?;
                    $crate::outbox::insert_message!(
                        $c,
                        $s,
                        &id,
                        $crate::outbox::OutboxKind::Webhook.as_str(),
                        $event.name(),
                        Some(&venue_id),
                        &sealed,
                        $now
                    )?;
                }
            })
        })
    };
}
pub(crate) use queue_reservation_event;

/// A signed HTTP POST to an endpoint. It holds ids, times and counts only;
/// it is sealed anyway, like everything in the outbox.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    pub target: WebhookTarget,
    /// `reservation.created`, ...
    pub event: String,
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// Whose endpoint a webhook goes to. Looked up when it is sent, so that a
/// changed URL or secret applies to messages still waiting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WebhookTarget {
    Venue {
        venue_id: String,
    },
    /// The alert endpoint of the settings (`monitoring.alert_webhook_url`).
    Alerts,
}

impl Webhook {
    pub(crate) fn reservation(
        venue_id: &str,
        event: domain::webhooks::ReservationEvent,
        reservation: &domain::Reservation,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let data = serde_json::to_value(domain::webhooks::ReservationEventData::from(reservation))
            .map_err(|_| StoreError::Corrupt("a reservation event".to_owned()))?;
        Ok(Self {
            target: WebhookTarget::Venue {
                venue_id: venue_id.to_owned(),
            },
            event: event.name().to_owned(),
            occurred_at: now,
            data,
        })
    }
}

/// What waits in the outbox.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Email(Mail),
    Webhook(Webhook),
}

/// The kinds of message, as the `kind` column names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    Email,
    Webhook,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

impl Outgoing {
    pub fn kind(&self) -> OutboxKind {
        match self {
            Self::Email(_) => OutboxKind::Email,
            Self::Webhook(_) => OutboxKind::Webhook,
        }
    }
}

/// A new outbox id and the message sealed to it.
pub(crate) fn seal_message(
    ring: &domain::crypto::KeyRing,
    message: &Outgoing,
) -> Result<(String, Vec<u8>), StoreError> {
    match message {
        Outgoing::Email(mail) => seal_mail(ring, mail),
        Outgoing::Webhook(webhook) => seal_json(ring, webhook),
    }
}

/// A new outbox id and the e-mail sealed to it.
pub(crate) fn seal_mail(
    ring: &domain::crypto::KeyRing,
    mail: &Mail,
) -> Result<(String, Vec<u8>), StoreError> {
    seal_json(ring, mail)
}

/// The kind column tells how to read the JSON back (`claim_due`).
fn seal_json(
    ring: &domain::crypto::KeyRing,
    value: &impl serde::Serialize,
) -> Result<(String, Vec<u8>), StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let plaintext = serde_json::to_vec(value)
        .map_err(|_| StoreError::Corrupt("an outgoing message".to_owned()))?;
    let sealed = ring.seal(Field::OUTBOX_MESSAGE, &id, &plaintext)?;
    Ok((id, sealed))
}

/// The confirmation a guest with an e-mail address gets: when, where, and
/// the manage token that lets them change, cancel, export or erase.
pub(crate) fn booking_confirmation(
    venue: &domain::Venue,
    reservation: &domain::Reservation,
    token: &domain::ManageToken,
    to: Email,
) -> Mail {
    Mail::new(
        to,
        domain::messages::booking_confirmation(venue, reservation, token.expose()),
    )
}

/// A message a worker claimed for delivery.
#[derive(Debug, Clone)]
pub struct DueMessage {
    pub id: String,
    pub purpose: String,
    /// Attempts made before this one.
    pub attempts: i32,
    pub message: Outgoing,
}

/// Where a message stands, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStatus {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub has_content: bool,
}

/// How long to wait after the given number of failed attempts: 30 s,
/// doubling, at most six hours.
pub fn retry_delay(failed_attempts: i32) -> chrono::Duration {
    let doublings = u32::try_from(failed_attempts.clamp(1, 20) - 1).unwrap_or(0);
    let seconds = 30i64.saturating_mul(1i64 << doublings.min(20));
    chrono::Duration::seconds(seconds.min(6 * 60 * 60))
}

impl Store {
    /// Queues a message; it is sealed to its row before it is written.
    pub fn enqueue(
        &self,
        purpose: &str,
        venue: Option<domain::VenueId>,
        message: &Outgoing,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        self.enqueue_until(purpose, venue, message, now, None)
    }

    /// Queues a message that is worth sending only until `discard_after`:
    /// past it, it is destroyed unsent instead of tried again.
    pub fn enqueue_until(
        &self,
        purpose: &str,
        venue: Option<domain::VenueId>,
        message: &Outgoing,
        now: DateTime<Utc>,
        discard_after: Option<DateTime<Utc>>,
    ) -> Result<String, StoreError> {
        let (id, sealed) = seal_message(&self.keys().current(), message)?;
        let kind = message.kind().as_str();
        let now = db_instant(now);
        let discard_after = discard_after.map(db_instant);
        let venue = venue.map(|v| v.to_string());
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            insert_message!(
                c,
                s,
                &id,
                kind,
                purpose,
                venue.as_ref(),
                &sealed,
                now,
                None::<&String>,
                discard_after
            )?;
        });
        Ok(id)
    }

    /// Destroys waiting messages that are no longer worth sending (an
    /// access code mail after its code expired): marked `discarded`, their
    /// content gone. Returns how many.
    pub fn discard_stale_messages(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        Ok(on_backend!(&mut *connection, |c, s| {
            use s::outbox::dsl as o;
            diesel::update(
                o::outbox
                    .filter(o::status.eq("pending"))
                    .filter(o::discard_after.lt(now)),
            )
            .set((
                o::status.eq("discarded"),
                o::message_sealed.eq(Vec::<u8>::new()),
            ))
            .execute(c)?
        }))
    }

    /// Claims up to `limit` messages that are due, for `LEASE_SECONDS`:
    /// several nodes each get different ones (`SKIP LOCKED` on
    /// PostgreSQL; SQLite has one writer at a time).
    /// Only messages of the given kinds are claimed: a node without SMTP
    /// leaves e-mails for one that has it.
    pub fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        kinds: &[OutboxKind],
    ) -> Result<Vec<DueMessage>, StoreError> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let now = db_instant(now);
        let lease_until = now + chrono::Duration::seconds(LEASE_SECONDS);
        let mut connection = self.connection()?;
        let claimed: Vec<ClaimedRow> = on_backend!(&mut *connection, |c, s| {
            c.write_transaction(|c| {
                use s::outbox::dsl as o;
                // Pending messages that are due, oldest first; rows another
                // node is claiming are skipped rather than waited for.
                let rows: Vec<ClaimedRow> = s::load_locked!(
                    o::outbox
                        .filter(o::status.eq("pending"))
                        .filter(o::kind.eq_any(&kinds))
                        .filter(o::next_attempt_at.le(now))
                        // Past its use: the purge destroys it; never sent late.
                        .filter(o::discard_after.is_null().or(o::discard_after.gt(now)))
                        .order(o::next_attempt_at)
                        .limit(limit)
                        .select((o::id, o::kind, o::purpose, o::attempts, o::message_sealed)),
                    c,
                    ForUpdate::SkipLocked
                )?;
                let ids: Vec<&String> = rows.iter().map(|r| &r.0).collect();
                diesel::update(o::outbox.filter(o::id.eq_any(ids)))
                    .set(o::next_attempt_at.eq(lease_until))
                    .execute(c)?;
                Ok::<_, StoreError>(rows)
            })?
        });
        claimed
            .into_iter()
            .map(|(id, kind, purpose, attempts, sealed)| {
                let plaintext =
                    self.opening(|ring| Ok(ring.open(Field::OUTBOX_MESSAGE, &id, &sealed)?))?;
                let corrupt = |_| StoreError::Corrupt(format!("outbox message {id}"));
                let message = if kind == OutboxKind::Webhook.as_str() {
                    Outgoing::Webhook(serde_json::from_slice(&plaintext).map_err(corrupt)?)
                } else {
                    Outgoing::Email(serde_json::from_slice(&plaintext).map_err(corrupt)?)
                };
                Ok(DueMessage {
                    id,
                    purpose,
                    attempts,
                    message,
                })
            })
            .collect()
    }

    /// Marks a message delivered and destroys its content.
    pub fn delivered(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = db_instant(now);
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::outbox::dsl as o;
            diesel::update(o::outbox.find(id))
                .set((
                    o::status.eq("sent"),
                    o::sent_at.eq(Some(now)),
                    o::message_sealed.eq(Vec::<u8>::new()),
                    o::attempts.eq(o::attempts + 1),
                ))
                .execute(c)?;
        });
        Ok(())
    }

    /// Records a failed attempt: the message is tried again after a
    /// growing delay, or after `MAX_ATTEMPTS` given up and destroyed.
    /// `reason` must not contain personal data (the recipient's address).
    /// `give_up` ends it at once (nothing would change by waiting).
    pub fn delivery_failed(
        &self,
        due: &DueMessage,
        reason: &str,
        give_up: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let attempts = due.attempts.saturating_add(1);
        let next = db_instant(now + retry_delay(attempts));
        let reason: String = reason.chars().take(500).collect();
        let mut connection = self.connection()?;
        on_backend!(&mut *connection, |c, s| {
            use s::outbox::dsl as o;
            if give_up || attempts >= MAX_ATTEMPTS {
                diesel::update(o::outbox.find(&due.id))
                    .set((
                        o::status.eq("dead"),
                        o::attempts.eq(attempts),
                        o::last_error.eq(Some(&reason)),
                        o::message_sealed.eq(Vec::<u8>::new()),
                    ))
                    .execute(c)?;
            } else {
                diesel::update(o::outbox.find(&due.id))
                    .set((
                        o::attempts.eq(attempts),
                        o::next_attempt_at.eq(next),
                        o::last_error.eq(Some(&reason)),
                    ))
                    .execute(c)?;
            }
        });
        Ok(())
    }

    /// Where a message stands.
    pub fn outbox_status(&self, id: &str) -> Result<Option<OutboxStatus>, StoreError> {
        let mut connection = self.connection()?;
        let row: Option<(String, i32, Option<String>, Vec<u8>)> =
            on_backend!(&mut *connection, |c, s| {
                use s::outbox::dsl as o;
                o::outbox
                    .find(id)
                    .select((o::status, o::attempts, o::last_error, o::message_sealed))
                    .first(c)
                    .optional()?
            });
        Ok(
            row.map(|(status, attempts, last_error, sealed)| OutboxStatus {
                status,
                attempts,
                last_error,
                has_content: !sealed.is_empty(),
            }),
        )
    }
}

/// Id, kind, purpose, attempts so far and the sealed message.
type ClaimedRow = (String, String, String, i32, Vec<u8>);

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn retries_back_off_exponentially_up_to_six_hours() {
        assert_eq!(retry_delay(1).num_seconds(), 30);
        assert_eq!(retry_delay(2).num_seconds(), 60);
        assert_eq!(retry_delay(5).num_seconds(), 480);
        assert_eq!(retry_delay(MAX).num_seconds(), 6 * 60 * 60);
    }

    const MAX: i32 = 20;
}
