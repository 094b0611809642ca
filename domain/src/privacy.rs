//! Transparency and minimization: versioned privacy notices, the consent
//! ledger's purposes, and which guest fields a venue collects at all.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{DomainError, GuestDetails, VenueId};

/// A BCP 47 language tag kluis accepts: `en`, `nl`, `nl-BE`, `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale(String);

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::invalid("locale", "must be a language tag like en or nl-BE");
        let (language, region) = match raw.split_once('-') {
            Some((language, region)) => (language, Some(region)),
            None => (raw, None),
        };
        let language_ok =
            (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_alphabetic());
        let region_ok =
            region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()));
        if !language_ok || !region_ok {
            return Err(invalid());
        }
        let normalized = match region {
            Some(region) => format!(
                "{}-{}",
                language.to_ascii_lowercase(),
                region.to_ascii_uppercase()
            ),
            None => language.to_ascii_lowercase(),
        };
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One published version of a venue's privacy notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyNotice {
    pub venue_id: VenueId,
    pub locale: Locale,
    pub version: u32,
    /// Markdown.
    pub text: String,
    /// SHA-256 of the text, hex: proves which words a guest was shown.
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

pub const MAX_NOTICE_CHARS: usize = 100_000;

/// Checks a notice text and returns it with its SHA-256.
pub fn notice_text(raw: &str) -> Result<(String, String), DomainError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTICE_CHARS {
        return Err(DomainError::invalid(
            "text",
            format!("must be 1 to {MAX_NOTICE_CHARS} characters of Markdown"),
        ));
    }
    Ok((
        text.to_owned(),
        hex::encode(Sha256::digest(text.as_bytes())),
    ))
}

/// Why kluis keeps and uses a guest's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentPurpose {
    /// The booking itself (the legal basis of the stay or visit).
    Booking,
    /// Opt-in only, off by default.
    Newsletter,
    /// Opt-in only, off by default.
    Marketing,
}

impl ConsentPurpose {
    pub const ALL: [Self; 3] = [Self::Booking, Self::Newsletter, Self::Marketing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booking => "booking",
            Self::Newsletter => "newsletter",
            Self::Marketing => "marketing",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                DomainError::invalid("purpose", "must be booking, newsletter or marketing")
            })
    }
}

/// One entry of the append-only consent ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub given: bool,
    pub at: DateTime<Utc>,
    /// `web`, `partner:<key id>` or `staff:<account id>`.
    pub channel: String,
    pub notice_version: Option<u32>,
    pub notice_sha256: Option<String>,
}

/// Whether a venue asks for a guest field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldRule {
    Required,
    #[default]
    Optional,
    /// Not collected: given anyway, it is refused, never silently stored.
    NotCollected,
}

impl FieldRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::NotCollected => "no",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "required" => Ok(Self::Required),
            "optional" => Ok(Self::Optional),
            "no" => Ok(Self::NotCollected),
            other => Err(format!("`{other}` is not required, optional or no")),
        }
    }

    fn check(self, field: &'static str, what: &str, given: bool) -> Result<(), DomainError> {
        match (self, given) {
            (Self::Required, false) => Err(DomainError::invalid(
                field,
                format!("this venue needs {what}"),
            )),
            (Self::NotCollected, true) => Err(DomainError::invalid(
                field,
                format!("this venue does not collect {what}; leave it out"),
            )),
            _ => Ok(()),
        }
    }
}

/// Which guest fields a venue collects. The name is always required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestFields {
    pub email: FieldRule,
    pub phone: FieldRule,
    pub notes: FieldRule,
}

impl GuestFields {
    /// Refuses a booking's guest details that the venue does not collect,
    /// and missing ones it requires.
    pub fn check(&self, details: &GuestDetails) -> Result<(), DomainError> {
        self.email
            .check("guest.email", "an e-mail address", details.email.is_some())?;
        self.phone
            .check("guest.phone", "a phone number", details.phone.is_some())?;
        self.notes
            .check("guest.notes", "notes", details.notes.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Email, PersonName};

    #[test]
    fn locales_are_normalized_language_tags() {
        assert_eq!(
            Locale::parse("NL-be").map(|l| l.as_str().to_owned()),
            Ok("nl-BE".to_owned())
        );
        for raw in ["", "e", "english", "nl_BE", "nl-BEL", "1n"] {
            assert!(Locale::parse(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn a_notice_is_hashed_as_published() {
        let (text, hash) = notice_text("  # Privacy\nWe keep little.  ").expect("valid");
        assert_eq!(text, "# Privacy\nWe keep little.");
        assert_eq!(hash.len(), 64);
        assert!(notice_text("   ").is_err());
    }

    #[test]
    fn fields_a_venue_does_not_collect_are_refused_and_required_ones_demanded() {
        let details = |email: bool| GuestDetails {
            name: PersonName::parse("name", "Ada").expect("valid"),
            email: email.then(|| Email::parse("email", "ada@example.org").expect("valid")),
            phone: None,
            notes: None,
        };
        let no_email = GuestFields {
            email: FieldRule::NotCollected,
            ..GuestFields::default()
        };
        assert!(no_email.check(&details(true)).is_err());
        assert!(no_email.check(&details(false)).is_ok());
        let needs_email = GuestFields {
            email: FieldRule::Required,
            ..GuestFields::default()
        };
        assert!(needs_email.check(&details(false)).is_err());
    }

    #[test]
    fn purposes_round_trip_and_unknown_ones_are_refused() {
        for purpose in ConsentPurpose::ALL {
            assert_eq!(ConsentPurpose::parse(purpose.as_str()), Ok(purpose));
        }
        assert!(ConsentPurpose::parse("profiling").is_err());
    }
}
