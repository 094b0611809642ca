//! Secrets as types: credentials, password hashes, session material. Like
//! personal data (see `personal.rs`), a secret never shows itself by
//! accident: `Debug` and `Display` print a mask, the memory is wiped on
//! drop, and the value is read only through an explicit `expose()`.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use subtle::ConstantTimeEq;

const MASK: &str = "‹secret›";

/// A secret text: an API key, a webhook signing secret, a client secret, a
/// password hash.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// In constant time: comparing secrets must not tell how much matched.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// The SHA-256 of a staff session's token: what the database keeps, and
/// enough to end the session, so masked like the token.
pub struct SessionHash(SecretBox<Vec<u8>>);

impl SessionHash {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl Clone for SessionHash {
    fn clone(&self) -> Self {
        Self::new(self.expose().to_vec())
    }
}

impl fmt::Debug for SessionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHash({MASK})")
    }
}

impl fmt::Display for SessionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// In constant time, like [`Secret`].
impl PartialEq for SessionHash {
    fn eq(&self, other: &Self) -> bool {
        self.expose().ct_eq(other.expose()).into()
    }
}

impl Eq for SessionHash {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_its_value() {
        let secret = Secret::from("sk_test_very_secret");
        assert!(!format!("{secret:?}").contains("very_secret"));
        assert!(!format!("{secret}").contains("very_secret"));
        assert_eq!(secret.expose(), "sk_test_very_secret");
    }

    #[test]
    fn a_session_hash_never_shows_its_bytes() {
        let hash = SessionHash::new(vec![0xab; 32]);
        for shown in [format!("{hash:?}"), format!("{hash}")] {
            assert!(!shown.to_lowercase().contains("abab"), "{shown}");
            assert!(!shown.contains("171"), "{shown}");
        }
    }

    #[test]
    fn secrets_compare_by_value() {
        assert_eq!(Secret::from("a"), Secret::from("a".to_owned()));
        assert_ne!(Secret::from("a"), Secret::from("b"));
        assert_eq!(SessionHash::new(vec![1, 2]), SessionHash::new(vec![1, 2]));
        assert_ne!(SessionHash::new(vec![1, 2]), SessionHash::new(vec![1, 3]));
    }
}
