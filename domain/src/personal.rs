//! Personal data as types. A personal value never shows itself by accident:
//! `Debug` and `Display` print a mask, the memory is wiped on drop, and the
//! value is read only through an explicit `expose()`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::DomainError;

const MASK: &str = "‹personal›";

#[derive(Clone)]
pub struct Personal(SecretString);

impl Personal {
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl PartialEq for Personal {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Personal {}

impl From<String> for Personal {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

macro_rules! personal_type {
    ($name:ident) => {
        #[derive(Clone, PartialEq)]
        pub struct $name(Personal);

        impl $name {
            pub fn expose(&self) -> &str {
                self.0.expose()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({MASK})", stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MASK)
            }
        }
    };
}

personal_type!(PersonName);
personal_type!(Email);
personal_type!(Phone);
personal_type!(GuestNotes);

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_NOTES_CHARS: usize = 1000;
const CARD_REFUSAL: &str = "card numbers are never accepted here";

fn check_free_text(field: &'static str, text: &str, max_chars: usize) -> Result<(), DomainError> {
    if text.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    if contains_card_number(text) {
        return Err(DomainError::invalid(field, CARD_REFUSAL));
    }
    Ok(())
}

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid(field, "must not be empty"));
        }
        check_free_text(field, trimmed, MAX_NAME_CHARS)?;
        if trimmed.contains('\n') {
            return Err(DomainError::invalid(field, "must be one line"));
        }
        Ok(Self(Personal::new(trimmed.to_owned())))
    }
}

impl GuestNotes {
    /// Empty notes are no notes.
    pub fn parse(field: &'static str, raw: &str) -> Result<Option<Self>, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        check_free_text(field, trimmed, MAX_NOTES_CHARS)?;
        Ok(Some(Self(Personal::new(trimmed.to_owned()))))
    }
}

impl Email {
    /// Normalizes (trims, lower-cases) and checks the shape. The value is
    /// never echoed in the error.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, DomainError> {
        let normalized = raw.trim().to_lowercase();
        let invalid = || DomainError::invalid(field, "is not a valid e-mail address");
        if normalized.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = normalized.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(Personal::new(normalized)))
    }
}

/// An ISO 3166 country, which tells how to read a phone number written
/// without its country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(phonenumber::country::Id);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, String> {
        phonenumber::country::Id::from_str(&raw.trim().to_uppercase())
            .map(Self)
            .map_err(|_| format!("`{raw}` is not an ISO 3166 country code (like NL)"))
    }

    pub fn code(self) -> String {
        let code: &str = self.0.as_ref();
        code.to_owned()
    }
}

impl Phone {
    /// Reads a phone number into E.164 (`+31612345678`), taking the venue's
    /// country for numbers written without a country code.
    pub fn parse(
        field: &'static str,
        raw: &str,
        region: Option<Country>,
    ) -> Result<Self, DomainError> {
        let invalid = || {
            DomainError::invalid(
                field,
                if region.is_some() {
                    "is not a valid phone number"
                } else {
                    "is not a valid phone number (write it with its country code, like +31 6 1234 5678)"
                },
            )
        };
        if raw.len() > 64 {
            return Err(invalid());
        }
        let number = phonenumber::parse(region.map(|c| c.0), raw.trim()).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let formatted = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self(Personal::new(formatted)))
    }
}

/// Whether free text contains something that looks like a payment card
/// number: a run of 13 to 19 digits (spaces and dashes between them
/// allowed) that passes the Luhn check.
pub fn contains_card_number(text: &str) -> bool {
    let mut digits: Vec<u32> = Vec::new();
    let mut pending_separator = false;
    let check = |digits: &mut Vec<u32>| {
        let found = (13..=19).contains(&digits.len()) && luhn_valid(digits);
        digits.clear();
        found
    };
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            digits.push(digit);
            pending_separator = false;
        } else if (c == ' ' || c == '-') && !digits.is_empty() && !pending_separator {
            pending_separator = true;
        } else {
            if check(&mut digits) {
                return true;
            }
            pending_separator = false;
        }
    }
    check(&mut digits)
}

fn luhn_valid(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                *digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What a guest gives when booking.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestDetails {
    pub name: PersonName,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub notes: Option<GuestNotes>,
}

/// A guest as stored for a venue: one record however often they book,
/// recognised by e-mail or phone.
#[derive(Debug, Clone, PartialEq)]
pub struct Guest {
    pub id: crate::GuestId,
    pub venue_id: crate::VenueId,
    pub name: PersonName,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
}

impl PersonName {
    /// For values read back from storage, which were checked when written.
    pub fn from_stored(value: String) -> Self {
        Self(Personal::new(value))
    }
}

impl Email {
    pub fn from_stored(value: String) -> Self {
        Self(Personal::new(value))
    }
}

impl Phone {
    pub fn from_stored(value: String) -> Self {
        Self(Personal::new(value))
    }
}

impl GuestNotes {
    pub fn from_stored(value: String) -> Self {
        Self(Personal::new(value))
    }
}

/// 256 random bits, URL-safe, behind a prefix that says what the secret is
/// for (so a token pasted in the wrong place is simply not found).
fn random_secret(prefix: &str) -> Result<Personal, DomainError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| DomainError::Conflict("no randomness available; try again".to_owned()))?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(Personal::new(format!("{prefix}{encoded}")))
}

/// Reads a secret a client sent. Anything malformed is simply not found,
/// like a well-formed secret that matches nothing.
fn parse_secret(prefix: &str, raw: &str, what: &'static str) -> Result<Personal, DomainError> {
    let not_found = || DomainError::not_found(what);
    let encoded = raw.strip_prefix(prefix).ok_or_else(not_found)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| not_found())?;
    if bytes.len() != 32 {
        return Err(not_found());
    }
    Ok(Personal::new(raw.to_owned()))
}

/// What the database keeps of a secret: enough to recognise it, useless to
/// recover it.
fn secret_hash(secret: &Personal) -> Vec<u8> {
    Sha256::digest(secret.expose().as_bytes()).to_vec()
}

/// The secret with which a guest reads, changes and cancels their own
/// reservation, and sees the personal data entered with it: a key to one
/// reservation, nothing more. 256 random bits; only its SHA-256 is stored.
#[derive(Clone)]
pub struct ManageToken(Personal);

impl ManageToken {
    pub fn generate() -> Result<Self, DomainError> {
        random_secret("kmt_").map(Self)
    }

    /// Reads a token a client sent; malformed is NOT_FOUND.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        parse_secret("kmt_", raw, "reservation").map(Self)
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> Vec<u8> {
        secret_hash(&self.0)
    }

    /// Compares a stored hash with this token's in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.hash().ct_eq(stored_hash).into()
    }
}

impl fmt::Debug for ManageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManageToken({MASK})")
    }
}

/// A secret of the waitlist: the guest's key to their entry (`kwt_`) or
/// to one offer of a freed table (`kwo_`). 256 random bits; only its
/// SHA-256 is stored.
#[derive(Clone)]
pub struct WaitlistToken(Personal);

impl WaitlistToken {
    pub const ENTRY: &'static str = "kwt_";
    pub const OFFER: &'static str = "kwo_";

    /// A new secret with `prefix` ([`Self::ENTRY`] or [`Self::OFFER`]).
    pub fn generate(prefix: &str) -> Result<Self, DomainError> {
        random_secret(prefix).map(Self)
    }

    /// Reads a token a client sent; malformed (or of the other kind) is
    /// NOT_FOUND.
    pub fn parse(prefix: &str, raw: &str) -> Result<Self, DomainError> {
        parse_secret(prefix, raw, "waitlist entry").map(Self)
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> Vec<u8> {
        secret_hash(&self.0)
    }
}

impl fmt::Debug for WaitlistToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaitlistToken({MASK})")
    }
}

/// The secret a guest earns by proving control of an e-mail address (a
/// one-time code sent to it): it opens, for a short while, every booking
/// made with that address at one venue, for the rights over the whole
/// history (export, correction, erasure). 256 random bits; only its
/// SHA-256 is stored.
#[derive(Clone)]
pub struct AccessToken(Personal);

impl AccessToken {
    pub fn generate() -> Result<Self, DomainError> {
        random_secret("kat_").map(Self)
    }

    /// Reads a token a client sent; malformed is NOT_FOUND.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        parse_secret("kat_", raw, "access token").map(Self)
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> Vec<u8> {
        secret_hash(&self.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken({MASK})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_is_not_a_manage_token_and_back() {
        let access = AccessToken::generate().expect("random");
        let manage = ManageToken::generate().expect("random");
        assert!(ManageToken::parse(access.expose()).is_err());
        assert!(AccessToken::parse(manage.expose()).is_err());
        assert!(AccessToken::parse(access.expose()).is_ok());
        assert_eq!(format!("{access:?}"), "AccessToken(‹personal›)");
        assert!(AccessToken::parse("kat_short").is_err());
    }

    #[test]
    fn personal_values_are_masked_in_debug_and_display() {
        let name = PersonName::parse("name", "Ada Lovelace").expect("valid");
        assert_eq!(format!("{name:?}"), "PersonName(‹personal›)");
        assert_eq!(format!("{name}"), "‹personal›");
        assert_eq!(name.expose(), "Ada Lovelace");
        let details = GuestDetails {
            name,
            email: Email::parse("email", "ada@example.org").ok(),
            phone: None,
            notes: None,
        };
        assert!(!format!("{details:?}").contains("Ada"));
        assert!(!format!("{details:?}").contains("example"));
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = Email::parse("email", "  Alice@Example.COM ").expect("valid");
        assert_eq!(email.expose(), "alice@example.com");
    }

    #[test]
    fn malformed_emails_are_refused_without_echoing_them() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "al ice@example.com",
            "a@b..c",
            "a@-b.com",
        ] {
            let error = Email::parse("guest.email", raw).expect_err(raw);
            assert_eq!(
                error.to_string(),
                "guest.email: is not a valid e-mail address"
            );
        }
    }

    #[test]
    fn phone_numbers_become_e164_with_the_venues_country() {
        let nl = Country::parse("NL").expect("valid");
        let phone = Phone::parse("phone", "06 1234 5678", Some(nl)).expect("valid");
        assert_eq!(phone.expose(), "+31612345678");
        let international = Phone::parse("phone", "+44 20 7946 0958", Some(nl)).expect("valid");
        assert_eq!(international.expose(), "+442079460958");
    }

    #[test]
    fn a_national_number_without_a_country_is_refused() {
        assert!(Phone::parse("phone", "06 1234 5678", None).is_err());
        assert!(Phone::parse("phone", "+31 6 1234 5678", None).is_ok());
        assert!(Phone::parse("phone", "not a number", None).is_err());
    }

    #[test]
    fn card_numbers_in_free_text_are_found() {
        assert!(contains_card_number("4111 1111 1111 1111"));
        assert!(contains_card_number("pay with 4111-1111-1111-1111 please"));
        assert!(contains_card_number("5500005555555559"));
        assert!(!contains_card_number("4111 1111 1111 1112"), "fails Luhn");
        assert!(!contains_card_number("call 0612345678"), "too short");
        assert!(!contains_card_number("table 4, 2 people, 19:30"));
    }

    #[test]
    fn names_and_notes_refuse_card_numbers_and_excess_length() {
        let error = GuestNotes::parse("notes", "my card: 4111111111111111").expect_err("card");
        assert_eq!(
            error.to_string(),
            "notes: card numbers are never accepted here"
        );
        assert!(PersonName::parse("name", &"a".repeat(201)).is_err());
        assert!(PersonName::parse("name", &"a".repeat(200)).is_ok());
        assert!(GuestNotes::parse("notes", &"n".repeat(1001)).is_err());
        assert_eq!(GuestNotes::parse("notes", "   "), Ok(None));
        assert!(PersonName::parse("name", "  ").is_err());
    }

    #[test]
    fn manage_tokens_round_trip_and_match_only_their_hash() {
        let token = ManageToken::generate().expect("random");
        assert!(token.expose().starts_with("kmt_"));
        assert_eq!(token.expose().len(), 4 + 43);
        let parsed = ManageToken::parse(token.expose()).expect("valid");
        assert!(parsed.matches(&token.hash()));
        let other = ManageToken::generate().expect("random");
        assert!(!other.matches(&token.hash()));
        assert!(ManageToken::parse("kmt_short").is_err());
        assert!(ManageToken::parse("nonsense").is_err());
        assert_eq!(format!("{token:?}"), "ManageToken(‹personal›)");
    }
}
