//! The key ring and field encryption. Pure: keys come in as bytes, nothing
//! here reads files or the environment.
//!
//! * A master key is 64 random bytes with a version. Per-purpose, per-table,
//!   per-column keys are derived from it with HKDF-SHA256, so one column's
//!   key opens nothing else.
//! * Sealed values (every personal field) are AES-SIV with a random nonce and
//!   associated data `table | column | row id | key version`: a ciphertext
//!   copied to another row or column fails to open. Layout:
//!   `version (4 bytes, big-endian) | nonce (16) | SIV tag and ciphertext`.
//!   The associated data is one length-prefixed header (each S2V header
//!   costs a CMAC pass, and one unambiguous encoding binds the same).
//! * Lookup tokens (e-mail and phone, which must be found again) are
//!   deterministic AES-SIV of the normalized value with associated data
//!   `table | column | key version` and their own derived key. Layout:
//!   `version (4) | SIV tag and ciphertext`. Equal values give equal tokens,
//!   which is exactly what they are for and all they reveal.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

pub const MASTER_KEY_BYTES: usize = 64;
const DERIVED_KEY_BYTES: usize = 64;
const NONCE_BYTES: usize = 16;
const VERSION_BYTES: usize = 4;
const HKDF_SALT: &[u8] = b"kluis key ring v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The value does not open with the key and associated data it claims:
    /// tampered, truncated, or copied from another row or column.
    #[error("integrity check failed for {table}.{column} of row {row}")]
    Integrity {
        table: &'static str,
        column: &'static str,
        row: String,
    },
    #[error("key version {0} is not in the key ring")]
    UnknownVersion(u32),
    #[error("invalid key ring: {0}")]
    InvalidKeyRing(String),
    #[error("no randomness available from the operating system")]
    Randomness,
}

/// A column that holds personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Field {
    pub table: &'static str,
    pub column: &'static str,
}

impl Field {
    pub const GUEST_NAME: Self = Self::new("guests", "name");
    pub const GUEST_EMAIL: Self = Self::new("guests", "email");
    pub const GUEST_PHONE: Self = Self::new("guests", "phone");
    pub const RESERVATION_NOTES: Self = Self::new("reservations", "notes");
    /// A one-time code sent to a guest who lost their manage token.
    pub const ACCESS_CODE: Self = Self::new("access_codes", "code");
    /// The e-mail address a guest proved control of, kept with the access
    /// token it earned so that every lookup-token version can be asked.
    pub const ACCESS_GRANT_EMAIL: Self = Self::new("guest_access_grants", "email");
    /// Recipient, subject and body of a message waiting in the outbox.
    pub const OUTBOX_MESSAGE: Self = Self::new("outbox", "message");
    /// The secret a venue's webhook messages are signed with.
    pub const WEBHOOK_SECRET: Self = Self::new("venue_webhooks", "secret");
    /// A manage token kept with an idempotent answer, so that a retried
    /// booking still gets its token back.
    pub const IDEMPOTENT_TOKEN: Self = Self::new("idempotency_keys", "manage_token");
    /// The fingerprint of an idempotent booking, which covers the guest's
    /// details: sealed rather than keyed, so that a rotation can re-seal it.
    pub const IDEMPOTENT_REQUEST: Self = Self::new("idempotency_keys", "request_fingerprint");
    /// Partner API key secrets, kept as keyed hashes.
    pub const API_KEY_SECRET: Self = Self::new("api_keys", "secret");
    /// The audit trail's chain: each entry's HMAC (and the anchor of the
    /// entries written before the chain was keyed). Someone who can write
    /// the database but has no master key cannot recompute it.
    pub const AUDIT_CHAIN: Self = Self::new("audit_log", "hash");
    /// Keys of login throttles and rate-limit counters (client addresses,
    /// e-mail addresses), kept as keyed pseudonyms.
    pub const THROTTLE_KEY: Self = Self::new("throttles", "key");
    /// A guest's data key, wrapped under the master key in the key store.
    pub const DATA_KEY: Self = Self::new("data_keys", "key");

    pub const fn new(table: &'static str, column: &'static str) -> Self {
        Self { table, column }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Purpose {
    Seal,
    Lookup,
    Hash,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Seal => b"seal",
            Self::Lookup => b"lookup",
            Self::Hash => b"hash",
        }
    }
}

type DerivedKey = SecretBox<[u8; DERIVED_KEY_BYTES]>;

/// Versioned master keys; the highest version is the one new values use.
pub struct KeyRing {
    masters: BTreeMap<u32, SecretBox<[u8; MASTER_KEY_BYTES]>>,
    current: u32,
    /// Derivation costs more than the encryption of a short field, so each
    /// derived key is computed once.
    derived: RwLock<HashMap<(u32, Purpose, Field), Arc<DerivedKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.masters.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Builds a ring from `(version, key)` pairs. Versions start at 1.
    pub fn new(keys: Vec<(u32, [u8; MASTER_KEY_BYTES])>) -> Result<Self, CryptoError> {
        let mut masters = BTreeMap::new();
        for (version, key) in keys {
            if version == 0 {
                return Err(CryptoError::InvalidKeyRing(
                    "key versions start at 1".to_owned(),
                ));
            }
            if key.iter().all(|b| *b == 0) {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "key version {version} is all zeros"
                )));
            }
            if masters
                .insert(version, SecretBox::new(Box::new(key)))
                .is_some()
            {
                return Err(CryptoError::InvalidKeyRing(format!(
                    "key version {version} appears twice"
                )));
            }
        }
        let current = *masters
            .keys()
            .next_back()
            .ok_or_else(|| CryptoError::InvalidKeyRing("no key".to_owned()))?;
        Ok(Self {
            masters,
            current,
            derived: RwLock::new(HashMap::new()),
        })
    }

    /// A ring with fixed, public keys: for tests only.
    pub fn for_testing(versions: u32) -> Self {
        let keys = (1..=versions.max(1))
            .map(|version| {
                let mut key = [0u8; MASTER_KEY_BYTES];
                for (index, byte) in key.iter_mut().enumerate() {
                    *byte = (index as u8).wrapping_mul(31).wrapping_add(version as u8);
                }
                (version, key)
            })
            .collect();
        match Self::new(keys) {
            Ok(ring) => ring,
            Err(_) => unreachable!("test keys are valid"),
        }
    }

    /// A fresh random master key.
    pub fn generate_master_key() -> Result<[u8; MASTER_KEY_BYTES], CryptoError> {
        let mut key = [0u8; MASTER_KEY_BYTES];
        getrandom::fill(&mut key).map_err(|_| CryptoError::Randomness)?;
        Ok(key)
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.masters.keys().copied()
    }

    fn key(
        &self,
        version: u32,
        purpose: Purpose,
        field: Field,
    ) -> Result<Arc<DerivedKey>, CryptoError> {
        let slot = (version, purpose, field);
        if let Ok(cache) = self.derived.read()
            && let Some(key) = cache.get(&slot)
        {
            return Ok(Arc::clone(key));
        }
        let master = self
            .masters
            .get(&version)
            .ok_or(CryptoError::UnknownVersion(version))?;
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), master.expose_secret());
        let mut okm = Box::new([0u8; DERIVED_KEY_BYTES]);
        let info: [&[u8]; 5] = [
            purpose.label(),
            b"|",
            field.table.as_bytes(),
            b"|",
            field.column.as_bytes(),
        ];
        hkdf.expand_multi_info(&info, okm.as_mut())
            .map_err(|_| CryptoError::InvalidKeyRing("key derivation failed".to_owned()))?;
        let key = Arc::new(SecretBox::new(okm));
        if let Ok(mut cache) = self.derived.write() {
            cache.insert(slot, Arc::clone(&key));
        }
        Ok(key)
    }

    fn cipher(
        &self,
        version: u32,
        purpose: Purpose,
        field: Field,
    ) -> Result<Aes256Siv, CryptoError> {
        let key = self.key(version, purpose, field)?;
        Aes256Siv::new_from_slice(key.expose_secret())
            .map_err(|_| CryptoError::InvalidKeyRing("derived key has the wrong length".to_owned()))
    }

    /// Seals a personal value for one column of one row with the current key.
    pub fn seal(
        &self,
        field: Field,
        row_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_with(self.current, field, row_id, plaintext)
    }

    pub fn seal_with(
        &self,
        version: u32,
        field: Field,
        row_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_envelope(
            self.cipher(version, Purpose::Seal, field)?,
            version,
            field,
            row_id,
            plaintext,
        )
    }

    /// Opens a sealed value, which must belong to this column of this row.
    pub fn open(&self, field: Field, row_id: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let integrity = || CryptoError::Integrity {
            table: field.table,
            column: field.column,
            row: row_id.to_owned(),
        };
        let version = version_of(sealed).ok_or_else(integrity)?;
        let nonce = sealed
            .get(VERSION_BYTES..VERSION_BYTES + NONCE_BYTES)
            .ok_or_else(integrity)?;
        let ciphertext = sealed
            .get(VERSION_BYTES + NONCE_BYTES..)
            .ok_or_else(integrity)?;
        let version_bytes = version.to_be_bytes();
        let associated = seal_associated_data(field, row_id, &version_bytes);
        let headers: [&[u8]; 2] = [&associated, nonce];
        self.cipher(version, Purpose::Seal, field)?
            .decrypt(headers, ciphertext)
            .map_err(|_| integrity())
    }

    /// The lookup token of a normalized value under one key version.
    pub fn lookup_token_with(
        &self,
        version: u32,
        field: Field,
        normalized: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let version_bytes = version.to_be_bytes();
        let associated = associated_data(&[
            b"kluis/lookup",
            field.table.as_bytes(),
            field.column.as_bytes(),
            &version_bytes,
        ]);
        let headers: [&[u8]; 1] = [&associated];
        let ciphertext = self
            .cipher(version, Purpose::Lookup, field)?
            .encrypt(headers, normalized)
            .map_err(|_| CryptoError::InvalidKeyRing("encryption failed".to_owned()))?;
        let mut token = Vec::with_capacity(VERSION_BYTES + ciphertext.len());
        token.extend_from_slice(&version_bytes);
        token.extend_from_slice(&ciphertext);
        Ok(token)
    }

    /// The token new rows store.
    pub fn lookup_token(&self, field: Field, normalized: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.lookup_token_with(self.current, field, normalized)
    }

    /// The tokens of a value under every key version, newest first: during a
    /// rotation a row may still carry an older one.
    pub fn lookup_tokens(
        &self,
        field: Field,
        normalized: &[u8],
    ) -> Result<Vec<Vec<u8>>, CryptoError> {
        self.masters
            .keys()
            .rev()
            .map(|version| self.lookup_token_with(*version, field, normalized))
            .collect()
    }
}

/// What a sealed value is bound to: its column, its row and its key version.
/// The sealed form shared by column keys and data keys: version, random
/// nonce, AES-SIV ciphertext bound to the column and row.
fn seal_envelope(
    mut cipher: Aes256Siv,
    version: u32,
    field: Field,
    row_id: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = fresh_nonce()?;
    let version_bytes = version.to_be_bytes();
    let associated = seal_associated_data(field, row_id, &version_bytes);
    let headers: [&[u8]; 2] = [&associated, &nonce];
    let ciphertext = cipher
        .encrypt(headers, plaintext)
        .map_err(|_| CryptoError::InvalidKeyRing("encryption failed".to_owned()))?;
    let mut sealed = Vec::with_capacity(VERSION_BYTES + NONCE_BYTES + ciphertext.len());
    sealed.extend_from_slice(&version_bytes);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn seal_associated_data(
    field: Field,
    row_id: &str,
    version_bytes: &[u8; VERSION_BYTES],
) -> Vec<u8> {
    associated_data(&[
        b"kluis/seal",
        field.table.as_bytes(),
        field.column.as_bytes(),
        row_id.as_bytes(),
        version_bytes,
    ])
}

impl KeyRing {
    /// HMAC-SHA256 of `data` under a key derived for one column and key
    /// version: what is kept of secrets that must be recognised but never
    /// recovered (API key secrets). Compare results in constant time.
    pub fn keyed_hash(
        &self,
        version: u32,
        field: Field,
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use hmac::{KeyInit as _, Mac};
        let key = self.key(version, Purpose::Hash, field)?;
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.expose_secret())
            .map_err(|_| CryptoError::InvalidKeyRing("hash key has the wrong length".to_owned()))?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

/// The version bytes a value sealed under a guest's data key carries
/// instead of a master key version (those start at 1): readers tell the two
/// kinds apart by the value alone.
pub const DATA_KEY_VERSION: u32 = 0;

/// Whether a sealed value was sealed under a guest's data key rather than a
/// column key of the key ring.
pub fn is_data_key_sealed(sealed: &[u8]) -> bool {
    version_of(sealed) == Some(DATA_KEY_VERSION)
}

/// A guest's own random key. The guest's personal fields are sealed under
/// it, it is kept (wrapped under the key ring) in a key store apart from
/// the data, and destroying it there makes every copy of those fields
/// unreadable: crypto-shredding. Sealed values keep the key ring's layout
/// and associated data (`table | column | row id | version`), with version
/// [`DATA_KEY_VERSION`].
pub struct DataKey(SecretBox<[u8; DERIVED_KEY_BYTES]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(‹secret›)")
    }
}

impl DataKey {
    pub const BYTES: usize = DERIVED_KEY_BYTES;

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Box::new([0u8; DERIVED_KEY_BYTES]);
        getrandom::fill(key.as_mut()).map_err(|_| CryptoError::Randomness)?;
        Ok(Self(SecretBox::new(key)))
    }

    /// A fixed, public key: for tests only.
    pub fn for_testing(seed: u8) -> Self {
        let mut key = Box::new([0u8; DERIVED_KEY_BYTES]);
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = (index as u8).wrapping_mul(17).wrapping_add(seed) | 1;
        }
        Self(SecretBox::new(key))
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key: [u8; DERIVED_KEY_BYTES] = bytes.try_into().ok()?;
        Some(Self(SecretBox::new(Box::new(key))))
    }

    fn cipher(&self) -> Result<Aes256Siv, CryptoError> {
        Aes256Siv::new_from_slice(self.0.expose_secret())
            .map_err(|_| CryptoError::InvalidKeyRing("data key has the wrong length".to_owned()))
    }

    /// Seals a personal value for one column of one row.
    pub fn seal(
        &self,
        field: Field,
        row_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_envelope(self.cipher()?, DATA_KEY_VERSION, field, row_id, plaintext)
    }

    /// Opens a value sealed under this key for this column of this row.
    pub fn open(&self, field: Field, row_id: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let integrity = || CryptoError::Integrity {
            table: field.table,
            column: field.column,
            row: row_id.to_owned(),
        };
        if !is_data_key_sealed(sealed) {
            return Err(integrity());
        }
        let nonce = sealed
            .get(VERSION_BYTES..VERSION_BYTES + NONCE_BYTES)
            .ok_or_else(integrity)?;
        let ciphertext = sealed
            .get(VERSION_BYTES + NONCE_BYTES..)
            .ok_or_else(integrity)?;
        let associated = seal_associated_data(field, row_id, &DATA_KEY_VERSION.to_be_bytes());
        let headers: [&[u8]; 2] = [&associated, nonce];
        self.cipher()?
            .decrypt(headers, ciphertext)
            .map_err(|_| integrity())
    }
}

impl KeyRing {
    /// Wraps a guest's data key for the key store, under the current master
    /// key and bound to the guest's id.
    pub fn wrap_data_key(&self, guest_id: &str, key: &DataKey) -> Result<Vec<u8>, CryptoError> {
        self.seal(Field::DATA_KEY, guest_id, key.0.expose_secret())
    }

    /// Opens a wrapped data key, which must belong to this guest.
    pub fn unwrap_data_key(&self, guest_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let mut bytes = self.open(Field::DATA_KEY, guest_id, wrapped)?;
        let key = DataKey::from_bytes(&bytes);
        bytes.fill(0);
        key.ok_or_else(|| CryptoError::Integrity {
            table: Field::DATA_KEY.table,
            column: Field::DATA_KEY.column,
            row: guest_id.to_owned(),
        })
    }
}

/// Joins associated-data parts with a length before each, so that no two
/// different part lists encode the same bytes.
fn associated_data(parts: &[&[u8]]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let length = u32::try_from(part.len()).unwrap_or(u32::MAX);
        encoded.extend_from_slice(&length.to_be_bytes());
        encoded.extend_from_slice(part);
    }
    encoded
}

/// A random nonce from a per-thread pool filled by the operating system in
/// 4 KiB draws: one system call per 256 nonces instead of one each.
fn fresh_nonce() -> Result<[u8; NONCE_BYTES], CryptoError> {
    use std::cell::RefCell;
    const POOL_BYTES: usize = 4096;
    thread_local! {
        static POOL: RefCell<(Box<[u8; POOL_BYTES]>, usize)> =
            RefCell::new((Box::new([0u8; POOL_BYTES]), POOL_BYTES));
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let (bytes, used) = &mut *pool;
        if *used + NONCE_BYTES > POOL_BYTES {
            getrandom::fill(bytes.as_mut()).map_err(|_| CryptoError::Randomness)?;
            *used = 0;
        }
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&bytes[*used..*used + NONCE_BYTES]);
        // Never hand out the same bytes twice.
        bytes[*used..*used + NONCE_BYTES].fill(0);
        *used += NONCE_BYTES;
        Ok(nonce)
    })
}

/// The key version a sealed value or lookup token was made with.
pub fn version_of(ciphertext: &[u8]) -> Option<u32> {
    let bytes: [u8; VERSION_BYTES] = ciphertext.get(..VERSION_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Re-reads the keys from wherever they came from.
pub type Reloader = Arc<dyn Fn() -> Result<KeyRing, String> + Send + Sync>;

/// The key ring a running server uses. It can be replaced while the server
/// runs (after a rotation added a version), and every reader sees either the
/// old ring or the new one.
#[derive(Clone)]
pub struct SharedKeyRing {
    ring: Arc<RwLock<Arc<KeyRing>>>,
    reloader: Option<Reloader>,
}

impl std::fmt::Debug for SharedKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedKeyRing")
            .field(&self.current())
            .finish()
    }
}

impl SharedKeyRing {
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            reloader: None,
        }
    }

    /// A ring that can re-read its source on demand: a node that meets a
    /// version another node's rotation just added loads it at once.
    pub fn with_reloader(ring: KeyRing, reloader: Reloader) -> Self {
        Self {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            reloader: Some(reloader),
        }
    }

    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, ring: KeyRing) {
        match self.ring.write() {
            Ok(mut slot) => *slot = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
    }

    /// Re-reads the keys; false when there is no source to read or it
    /// failed (the current ring then stays in force).
    pub fn reload(&self) -> bool {
        match self.reloader.as_ref().map(|reload| reload()) {
            Some(Ok(ring)) => {
                self.replace(ring);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "7a1c7d0e-8d55-4d7e-9d38-2f1f4c3a9b10";

    #[test]
    fn a_sealed_value_opens_in_its_own_row_and_column() {
        let ring = KeyRing::for_testing(1);
        let sealed = ring
            .seal(Field::GUEST_NAME, ROW, b"Ada Lovelace")
            .expect("seals");
        assert_eq!(
            ring.open(Field::GUEST_NAME, ROW, &sealed).expect("opens"),
            b"Ada Lovelace"
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let ring = KeyRing::for_testing(1);
        let first = ring.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        let second = ring.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        assert_ne!(first, second);
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_does_not_open() {
        let ring = KeyRing::for_testing(1);
        let sealed = ring
            .seal(Field::GUEST_EMAIL, ROW, b"ada@example.org")
            .expect("seals");
        assert!(matches!(
            ring.open(Field::GUEST_EMAIL, "another-row", &sealed),
            Err(CryptoError::Integrity { .. })
        ));
        assert!(matches!(
            ring.open(Field::GUEST_NAME, ROW, &sealed),
            Err(CryptoError::Integrity { .. })
        ));
    }

    #[test]
    fn a_flipped_bit_or_truncation_is_detected() {
        let ring = KeyRing::for_testing(1);
        let sealed = ring.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                ring.open(Field::GUEST_NAME, ROW, &tampered).is_err(),
                "byte {index}"
            );
        }
        assert!(
            ring.open(Field::GUEST_NAME, ROW, &sealed[..sealed.len() - 1])
                .is_err()
        );
        assert!(ring.open(Field::GUEST_NAME, ROW, &[]).is_err());
    }

    #[test]
    fn another_master_key_cannot_open_it() {
        let sealed = KeyRing::for_testing(1)
            .seal(Field::GUEST_NAME, ROW, b"Ada")
            .expect("seals");
        let other = KeyRing::new(vec![(1, [7u8; MASTER_KEY_BYTES])]).expect("valid");
        assert!(other.open(Field::GUEST_NAME, ROW, &sealed).is_err());
    }

    #[test]
    fn values_sealed_with_an_older_version_still_open_after_a_new_one_is_added() {
        let old = KeyRing::for_testing(1);
        let sealed = old.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        let rotated = KeyRing::for_testing(2);
        assert_eq!(rotated.current_version(), 2);
        assert_eq!(version_of(&sealed), Some(1));
        assert_eq!(
            rotated
                .open(Field::GUEST_NAME, ROW, &sealed)
                .expect("opens"),
            b"Ada"
        );
        let resealed = rotated.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        assert_eq!(version_of(&resealed), Some(2));
    }

    #[test]
    fn lookup_tokens_are_deterministic_per_column_and_version() {
        let ring = KeyRing::for_testing(2);
        let token = ring
            .lookup_token(Field::GUEST_EMAIL, b"ada@example.org")
            .expect("token");
        assert_eq!(
            token,
            ring.lookup_token(Field::GUEST_EMAIL, b"ada@example.org")
                .expect("token")
        );
        assert_ne!(
            token,
            ring.lookup_token(Field::GUEST_PHONE, b"ada@example.org")
                .expect("token")
        );
        assert_ne!(
            token,
            ring.lookup_token(Field::GUEST_EMAIL, b"bob@example.org")
                .expect("token")
        );
        let all = ring
            .lookup_tokens(Field::GUEST_EMAIL, b"ada@example.org")
            .expect("tokens");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], token);
        assert_eq!(version_of(&all[1]), Some(1));
    }

    #[test]
    fn lookup_tokens_do_not_contain_the_value() {
        let ring = KeyRing::for_testing(1);
        let token = ring
            .lookup_token(Field::GUEST_EMAIL, b"ada@example.org")
            .expect("token");
        assert!(!token.windows(3).any(|w| w == b"ada"));
    }

    #[test]
    fn key_rings_refuse_zero_versions_duplicates_and_empty_keys() {
        assert!(KeyRing::new(vec![]).is_err());
        assert!(KeyRing::new(vec![(0, [1; MASTER_KEY_BYTES])]).is_err());
        assert!(KeyRing::new(vec![(1, [0; MASTER_KEY_BYTES])]).is_err());
        assert!(
            KeyRing::new(vec![(1, [1; MASTER_KEY_BYTES]), (1, [2; MASTER_KEY_BYTES])]).is_err()
        );
    }

    #[test]
    fn an_unknown_version_is_reported_as_such() {
        let sealed = KeyRing::for_testing(3)
            .seal(Field::GUEST_NAME, ROW, b"Ada")
            .expect("seals");
        assert!(matches!(
            KeyRing::for_testing(2).open(Field::GUEST_NAME, ROW, &sealed),
            Err(CryptoError::UnknownVersion(3))
        ));
    }

    #[test]
    fn the_debug_form_shows_versions_not_keys() {
        let text = format!("{:?}", KeyRing::for_testing(2));
        assert_eq!(text, "KeyRing { versions: [1, 2], current: 2, .. }");
    }

    #[test]
    fn nonces_never_repeat_across_pool_refills() {
        let nonces: std::collections::HashSet<[u8; NONCE_BYTES]> =
            (0..2_000).map(|_| fresh_nonce().expect("random")).collect();
        assert_eq!(nonces.len(), 2_000);
    }

    #[test]
    fn associated_data_parts_cannot_be_shifted_into_each_other() {
        assert_ne!(
            associated_data(&[b"ab", b"c"]),
            associated_data(&[b"a", b"bc"])
        );
    }

    #[test]
    fn keyed_hashes_depend_on_data_key_and_version() {
        let ring = KeyRing::for_testing(2);
        let hash = ring
            .keyed_hash(1, Field::API_KEY_SECRET, b"secret")
            .expect("hash");
        assert_eq!(hash.len(), 32);
        assert_eq!(
            hash,
            ring.keyed_hash(1, Field::API_KEY_SECRET, b"secret")
                .expect("hash")
        );
        assert_ne!(
            hash,
            ring.keyed_hash(2, Field::API_KEY_SECRET, b"secret")
                .expect("hash")
        );
        assert_ne!(
            hash,
            ring.keyed_hash(1, Field::API_KEY_SECRET, b"secreT")
                .expect("hash")
        );
    }

    #[test]
    fn a_value_sealed_under_a_data_key_opens_only_with_that_key_row_and_column() {
        let key = DataKey::for_testing(1);
        let sealed = key.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        assert!(is_data_key_sealed(&sealed));
        assert_eq!(
            key.open(Field::GUEST_NAME, ROW, &sealed).expect("opens"),
            b"Ada"
        );
        assert!(
            DataKey::for_testing(2)
                .open(Field::GUEST_NAME, ROW, &sealed)
                .is_err()
        );
        assert!(key.open(Field::GUEST_NAME, "another-row", &sealed).is_err());
        assert!(key.open(Field::GUEST_EMAIL, ROW, &sealed).is_err());
        // Nor does the key ring take it for one of its own.
        assert!(
            KeyRing::for_testing(1)
                .open(Field::GUEST_NAME, ROW, &sealed)
                .is_err()
        );
    }

    #[test]
    fn a_tampered_data_key_value_is_detected() {
        let key = DataKey::for_testing(1);
        let sealed = key.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                key.open(Field::GUEST_NAME, ROW, &tampered).is_err(),
                "byte {index}"
            );
        }
        assert!(
            key.open(Field::GUEST_NAME, ROW, &sealed[..sealed.len() - 1])
                .is_err()
        );
        // A key-ring value is not taken for a data-key one.
        let ring_sealed = KeyRing::for_testing(1)
            .seal(Field::GUEST_NAME, ROW, b"Ada")
            .expect("seals");
        assert!(!is_data_key_sealed(&ring_sealed));
        assert!(key.open(Field::GUEST_NAME, ROW, &ring_sealed).is_err());
    }

    #[test]
    fn a_wrapped_data_key_opens_for_its_guest_only_and_with_the_ring_only() {
        let ring = KeyRing::for_testing(1);
        let key = DataKey::generate().expect("random");
        let wrapped = ring.wrap_data_key(ROW, &key).expect("wraps");
        let sealed = key.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        let unwrapped = ring.unwrap_data_key(ROW, &wrapped).expect("unwraps");
        assert_eq!(
            unwrapped
                .open(Field::GUEST_NAME, ROW, &sealed)
                .expect("opens"),
            b"Ada"
        );
        assert!(ring.unwrap_data_key("another-guest", &wrapped).is_err());
        let other = KeyRing::new(vec![(1, [7u8; MASTER_KEY_BYTES])]).expect("valid");
        assert!(other.unwrap_data_key(ROW, &wrapped).is_err());
    }

    #[test]
    fn data_keys_are_random_and_never_printed() {
        let first = DataKey::generate().expect("random");
        let second = DataKey::generate().expect("random");
        let sealed = first.seal(Field::GUEST_NAME, ROW, b"Ada").expect("seals");
        assert!(second.open(Field::GUEST_NAME, ROW, &sealed).is_err());
        assert_eq!(format!("{first:?}"), "DataKey(‹secret›)");
    }

    #[test]
    fn generated_master_keys_differ() {
        assert_ne!(
            KeyRing::generate_master_key().expect("random"),
            KeyRing::generate_master_key().expect("random")
        );
    }
}
