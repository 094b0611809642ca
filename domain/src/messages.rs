//! Every message kluis writes to a person, in one place: subject and body
//! of each e-mail, filled from the values given. Sending, sealing and
//! queueing are elsewhere; this module only words things, so the wording
//! can be read, reviewed and (later) translated side by side.

use chrono::{DateTime, Utc};

use crate::personal::Personal;
use crate::reservation::Reservation;
use crate::venue::Venue;

/// A message's words. The body may hold a secret (a manage token, an
/// access code) or a name, so it is never printed.
#[derive(Clone)]
pub struct Message {
    pub subject: String,
    pub body: Personal,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .field("body", &"‹withheld›")
            .finish()
    }
}

/// Where `{name}` in a breach notice's text is replaced by the guest's
/// name.
pub const NAME_PLACEHOLDER: &str = "{name}";

/// The confirmation sent when a booking is made, with its manage token.
pub fn booking_confirmation(venue: &Venue, reservation: &Reservation, token: &str) -> Message {
    let local = reservation.starts_at.with_timezone(&venue.time_zone);
    Message {
        subject: format!("Your booking at {}", venue.name),
        body: Personal::new(format!(
            "Your booking at {} is received: {} for {} people.\n\n\
             Your manage token: {}\n\
             Keep it: with it you can change or cancel the booking, and see, \
             export, correct or erase the data we hold about you.\n",
            venue.name,
            local.format("%A %e %B %Y, %H:%M (%Z)"),
            reservation.party_size.get(),
            token,
        )),
    }
}

/// A freed table offered to the first guest on the waitlist, with the
/// token that claims it within `minutes`.
pub fn waitlist_offer(
    venue: &Venue,
    starts_at: DateTime<Utc>,
    party_size: u32,
    token: &str,
    minutes: u32,
) -> Message {
    let local = starts_at.with_timezone(&venue.time_zone);
    Message {
        subject: format!("A table is free at {}", venue.name),
        body: Personal::new(format!(
            "A table you waited for at {} is free: {} for {} people.\n\n\
             Claim it within {} minutes with this token:\n{}\n\n\
             After that it goes to the next guest in line.\n",
            venue.name,
            local.format("%A %e %B %Y, %H:%M (%Z)"),
            party_size,
            minutes,
            token,
        )),
    }
}

/// A one-time code proving control of an e-mail address, valid for
/// `minutes`.
pub fn access_code(code: &str, minutes: i64) -> Message {
    Message {
        subject: "Your access code".to_owned(),
        body: Personal::new(format!(
            "Your code to see or change your booking data is {code}.\n\
             It works for {minutes} minutes. If you did not ask for it, ignore this message.\n"
        )),
    }
}

/// A breach notice: the privacy officer's subject and text, with
/// [`NAME_PLACEHOLDER`] replaced by the guest's name.
pub fn breach_notice(subject: &str, text: &str, name: &str) -> Message {
    Message {
        subject: subject.to_owned(),
        body: Personal::new(text.replace(NAME_PLACEHOLDER, name)),
    }
}

/// What an alert e-mail to the operators says: ids and counts only.
pub struct AlertFacts<'a> {
    pub rule: &'a str,
    pub principal: &'a str,
    pub venue_id: Option<&'a str>,
    pub observed: i64,
    pub at: DateTime<Utc>,
    pub alert_id: &'a str,
}

/// An alert opened by a monitoring rule, for the operators.
pub fn alert_notice(facts: &AlertFacts<'_>) -> Message {
    Message {
        subject: format!("kluis alert: {}", facts.rule),
        body: Personal::new(format!(
            "kluis opened an alert.\n\n\
             rule: {}\nprincipal: {}\nvenue: {}\ncount: {}\nat: {}\nalert id: {}\n\n\
             Look at it with the `alerts` query and acknowledge it with \
             `acknowledgeAlert` once handled.\n",
            facts.rule,
            facts.principal,
            facts.venue_id.unwrap_or("-"),
            facts.observed,
            facts.at.to_rfc3339(),
            facts.alert_id,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_never_prints_its_body() {
        let message = access_code("123456", 15);
        assert!(message.body.expose().contains("123456"));
        assert!(message.body.expose().contains("15 minutes"));
        assert!(!format!("{message:?}").contains("123456"));
    }

    #[test]
    fn a_breach_notice_names_the_guest_wherever_asked() {
        let notice = breach_notice("About your data", "Dear {name}, ... {name}", "Ada");
        assert_eq!(notice.body.expose(), "Dear Ada, ... Ada");
        assert_eq!(notice.subject, "About your data");
    }
}
