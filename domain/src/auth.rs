//! Who is asking: staff passwords, session tokens, partner API keys, roles.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::DomainError;
use crate::personal::Personal;
use crate::secret::{Secret, SessionHash};

/// The roles the policy knows. Permissions are the policy file's business;
/// the code only names roles when it assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Manager,
    Staff,
    Partner,
    Guest,
    Anonymous,
}

impl Role {
    pub const ALL: [Self; 6] = [
        Self::Admin,
        Self::Manager,
        Self::Staff,
        Self::Partner,
        Self::Guest,
        Self::Anonymous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Staff => "staff",
            Self::Partner => "partner",
            Self::Guest => "guest",
            Self::Anonymous => "anonymous",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                DomainError::invalid(
                    "role",
                    "must be one of admin, manager, staff, partner, guest, anonymous",
                )
            })
    }

    /// Roles a person or a key can be given (guest and anonymous are what
    /// callers without an account are).
    pub fn is_assignable(self) -> bool {
        !matches!(self, Self::Guest | Self::Anonymous)
    }
}

/// The domain (venue) of a role assignment that holds in every venue.
pub const EVERY_VENUE: &str = "*";

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;

fn common_passwords() -> &'static HashSet<String> {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .map(|line| line.trim().to_lowercase())
            .filter(|line| !line.is_empty())
            .collect()
    })
}

/// A new password that passed the rules. Masked like personal data.
pub struct Password(Personal);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(‹personal›)")
    }
}

/// The cost settings: OWASP's recommended argon2id configuration.
fn hasher() -> Argon2<'static> {
    // These parameters are valid constants; the default is never used.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Password {
    /// Checks a password chosen for an account: at least 12 characters and
    /// not one of the 10,000 most common passwords.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(DomainError::invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(DomainError::invalid("password", "is too long"));
        }
        if common_passwords().contains(&raw.to_lowercase()) {
            return Err(DomainError::invalid(
                "password",
                "is one of the most common passwords; choose another",
            ));
        }
        Ok(Self(Personal::new(raw.to_owned())))
    }

    /// The PHC string to store (argon2id, random salt).
    pub fn hash(&self) -> Result<Secret, DomainError> {
        hasher()
            .hash_password(self.0.expose().as_bytes())
            .map(|hash| Secret::new(hash.to_string()))
            .map_err(|_| DomainError::Conflict("password hashing failed; try again".to_owned()))
    }
}

/// Checks a login attempt against a stored hash. With no stored hash (an
/// unknown e-mail) it checks against a fixed one, so that both cost the
/// same and the answer cannot tell which happened.
pub fn verify_password(attempt: &str, stored: Option<&Secret>) -> bool {
    let stored = stored.map(Secret::expose);
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hasher()
            .hash_password(b"kluis dummy password for unknown accounts")
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    });
    let attempt = &attempt.as_bytes()[..attempt.len().min(MAX_PASSWORD_BYTES)];
    let matches = hasher()
        .verify_password(attempt, stored.unwrap_or(dummy))
        .is_ok();
    matches && stored.is_some()
}

fn random_secret() -> Result<[u8; 32], DomainError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| DomainError::Conflict("no randomness available; try again".to_owned()))?;
    Ok(bytes)
}

/// A staff session: an opaque bearer token; the database keeps its SHA-256.
pub struct SessionToken(Personal);

const SESSION_PREFIX: &str = "kst_";

impl SessionToken {
    pub fn generate() -> Result<Self, DomainError> {
        let encoded = URL_SAFE_NO_PAD.encode(random_secret()?);
        Ok(Self(Personal::new(format!("{SESSION_PREFIX}{encoded}"))))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let encoded = raw.strip_prefix(SESSION_PREFIX)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (bytes.len() == 32).then(|| Self(Personal::new(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn hash(&self) -> SessionHash {
        SessionHash::new(Sha256::digest(self.expose().as_bytes()).to_vec())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(‹personal›)")
    }
}

/// A partner platform's API key: `kls_<id>_<secret><checksum>`. The id finds
/// the key's row; the 256-bit secret is checked against a keyed hash; the
/// checksum catches typos and truncation without a database round trip.
pub struct ApiKeyToken {
    pub id: String,
    secret: Personal,
}

const API_KEY_PREFIX: &str = "kls_";
const API_KEY_ID_CHARS: usize = 16;
const API_KEY_SECRET_CHARS: usize = 43;
const API_KEY_CHECKSUM_CHARS: usize = 8;

fn api_key_checksum(id: &str, secret: &str) -> String {
    let digest = Sha256::digest(format!("{API_KEY_PREFIX}{id}_{secret}").as_bytes());
    hex::encode(&digest[..API_KEY_CHECKSUM_CHARS / 2])
}

impl ApiKeyToken {
    pub fn generate() -> Result<(Self, String), DomainError> {
        let id_bytes = random_secret()?;
        let id = hex::encode(&id_bytes[..API_KEY_ID_CHARS / 2]);
        let secret = URL_SAFE_NO_PAD.encode(random_secret()?);
        let full = format!(
            "{API_KEY_PREFIX}{id}_{secret}{}",
            api_key_checksum(&id, &secret)
        );
        Ok((
            Self {
                id,
                secret: Personal::new(secret),
            },
            full,
        ))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(API_KEY_PREFIX)?;
        let (id, tail) = rest.split_once('_')?;
        if id.len() != API_KEY_ID_CHARS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if tail.len() != API_KEY_SECRET_CHARS + API_KEY_CHECKSUM_CHARS || !tail.is_ascii() {
            return None;
        }
        let (secret, checksum) = tail.split_at(API_KEY_SECRET_CHARS);
        let expected = api_key_checksum(id, secret);
        let checksum_ok: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), checksum.as_bytes()).into();
        if !checksum_ok || URL_SAFE_NO_PAD.decode(secret).ok()?.len() != 32 {
            return None;
        }
        Some(Self {
            id: id.to_owned(),
            secret: Personal::new(secret.to_owned()),
        })
    }

    pub fn secret(&self) -> &[u8] {
        self.secret.expose().as_bytes()
    }
}

impl fmt::Debug for ApiKeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyToken({}, ‹personal›)", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused() {
        assert!(Password::parse("elevenchars").is_err());
        assert!(Password::parse("twelve chars").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert!(common_passwords().len() > 9_000);
        let common = common_passwords()
            .iter()
            .find(|p| p.chars().count() >= MIN_PASSWORD_CHARS)
            .cloned()
            .expect("the list has long entries");
        assert!(Password::parse(&common).is_err(), "{common}");
        assert!(Password::parse(&common.to_uppercase()).is_err());
    }

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = Password::parse("correct horse battery")
            .expect("valid")
            .hash()
            .expect("hashed");
        assert!(
            hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.expose()
        );
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery!", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
    }

    #[test]
    fn session_tokens_round_trip_and_hash() {
        let token = SessionToken::generate().expect("random");
        let parsed = SessionToken::parse(token.expose()).expect("valid");
        assert_eq!(parsed.hash(), token.hash());
        assert!(SessionToken::parse("kst_short").is_none());
        assert_eq!(format!("{token:?}"), "SessionToken(‹personal›)");
    }

    #[test]
    fn api_keys_carry_a_checksum_that_catches_typos() {
        let (key, full) = ApiKeyToken::generate().expect("random");
        assert!(full.starts_with("kls_"));
        let parsed = ApiKeyToken::parse(&full).expect("valid");
        assert_eq!(parsed.id, key.id);
        assert_eq!(parsed.secret(), key.secret());
        let mut typo = full.clone().into_bytes();
        let position = 4 + 16 + 1 + 5;
        typo[position] = if typo[position] == b'A' { b'B' } else { b'A' };
        assert!(ApiKeyToken::parse(&String::from_utf8(typo).expect("ascii")).is_none());
        assert!(ApiKeyToken::parse(&full[..full.len() - 1]).is_none());
        assert!(!format!("{parsed:?}").contains(&full[21..40]));
    }

    #[test]
    fn roles_round_trip_and_only_accounts_are_assignable() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(!Role::Guest.is_assignable());
        assert!(Role::Partner.is_assignable());
    }
}
