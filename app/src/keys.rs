//! Where master keys come from: `KLUIS_MASTER_KEY`, or a key file
//! (`KLUIS_KEY_FILE`, mode 0600), or in development a generated
//! `kluis.key`. Also the `kluis keys generate`, `kluis keys rotate` and
//! `kluis keys retire` commands, and the watcher that picks up a rotated key file while the
//! server runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::crypto::{KeyRing, MASTER_KEY_BYTES, SharedKeyRing};
use secrecy::ExposeSecret;

use crate::settings::{Environment, KeySettings};

/// The key file `cargo run` creates on first start in development.
pub const DEVELOPMENT_KEY_FILE: &str = "kluis.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no master key: set KLUIS_MASTER_KEY or KLUIS_KEY_FILE (`kluis keys generate --out FILE` writes a key file)"
    )]
    Missing,
    #[error("cannot read key file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: String, mode: u32 },
    #[error("{origin}: {reason}")]
    Malformed { origin: String, reason: String },
    #[error("cannot write key file {path}: {source}")]
    Unwritable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Crypto(#[from] domain::crypto::CryptoError),
    #[error(
        "key rotation needs a key file (KLUIS_KEY_FILE): keys from KLUIS_MASTER_KEY cannot be extended in place"
    )]
    RotationNeedsFile,
    #[error(
        "retiring a key needs a key file (KLUIS_KEY_FILE): remove the version from KLUIS_MASTER_KEY yourself once `kluis keys retire` would allow it"
    )]
    RetireNeedsFile,
    #[error("key version {0} is the current one, which seals new data; rotate first")]
    RetireCurrent(u32),
    #[error("key version {0} is not in the key file")]
    NoSuchVersion(u32),
}

/// Where the running key ring came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    /// Generated for development; says so loudly.
    DevelopmentFile(PathBuf),
}

impl KeySource {
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Environment => None,
            Self::File(path) | Self::DevelopmentFile(path) => Some(path),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// Version number to base64 of 64 random bytes. The highest version
    /// seals new data; older ones still open what they sealed.
    keys: BTreeMap<String, String>,
}

fn decode_key(
    origin: &str,
    version: &str,
    encoded: &str,
) -> Result<(u32, [u8; MASTER_KEY_BYTES]), KeyError> {
    let malformed = |reason: String| KeyError::Malformed {
        origin: origin.to_owned(),
        reason,
    };
    let version: u32 = version
        .trim()
        .parse()
        .map_err(|_| malformed(format!("`{version}` is not a key version number")))?;
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed(format!("key version {version} is not base64")))?;
    let key: [u8; MASTER_KEY_BYTES] = bytes.try_into().map_err(|bytes: Vec<u8>| {
        malformed(format!(
            "key version {version} has {} bytes; master keys have {MASTER_KEY_BYTES}",
            bytes.len()
        ))
    })?;
    Ok((version, key))
}

/// Reads `KLUIS_MASTER_KEY`: one base64 key (version 1), or
/// `1:BASE64,2:BASE64` for several versions.
pub fn parse_environment_keys(raw: &str) -> Result<KeyRing, KeyError> {
    const ORIGIN: &str = "KLUIS_MASTER_KEY";
    let mut keys = Vec::new();
    for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
        keys.push(match part.split_once(':') {
            Some((version, encoded)) => decode_key(ORIGIN, version, encoded)?,
            None => decode_key(ORIGIN, "1", part)?,
        });
    }
    Ok(KeyRing::new(keys)?)
}

pub fn read_key_file(path: &Path) -> Result<KeyRing, KeyError> {
    let shown = path.display().to_string();
    check_permissions(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let file: KeyFile = toml::from_str(&text).map_err(|error| KeyError::Malformed {
        origin: shown.clone(),
        reason: error.message().to_owned(),
    })?;
    let keys = file
        .keys
        .iter()
        .map(|(version, encoded)| decode_key(&shown, version, encoded))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyRing::new(keys)?)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(path).map_err(|source| KeyError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Writes a key file with the given keys, readable by its owner only,
/// replacing any previous one atomically (written beside it, then renamed).
fn write_key_file(
    path: &Path,
    keys: &BTreeMap<u32, [u8; MASTER_KEY_BYTES]>,
    create_new: bool,
) -> Result<(), KeyError> {
    let unwritable = |source| KeyError::Unwritable {
        path: path.display().to_string(),
        source,
    };
    let file = KeyFile {
        keys: keys
            .iter()
            .map(|(version, key)| (version.to_string(), STANDARD.encode(key)))
            .collect(),
    };
    let body = toml::to_string(&file).map_err(|e| KeyError::Malformed {
        origin: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let text = format!(
        "# kluis master keys. Keep this file secret (mode 0600) and backed up:\n\
         # without it, the guest data sealed with these keys cannot be read.\n\
         # The highest version seals new data; older ones open what they\n\
         # sealed until `kluis keys retire VERSION` removes them.\n{body}"
    );
    let temporary = path.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = std::fs::remove_file(&temporary);
    let mut handle = options.open(&temporary).map_err(unwritable)?;
    handle.write_all(text.as_bytes()).map_err(unwritable)?;
    handle.sync_all().map_err(unwritable)?;
    drop(handle);
    if create_new && path.exists() {
        let _ = std::fs::remove_file(&temporary);
        return Err(unwritable(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a key file is already there; refusing to overwrite it",
        )));
    }
    std::fs::rename(&temporary, path).map_err(unwritable)
}

/// `kluis keys generate`: a new key file with one fresh key (version 1).
pub fn generate_key_file(path: &Path) -> Result<(), KeyError> {
    let mut keys = BTreeMap::new();
    keys.insert(1, KeyRing::generate_master_key()?);
    write_key_file(path, &keys, true)
}

/// Adds a fresh key version to a key file and returns the new ring.
pub fn add_key_version(path: &Path) -> Result<KeyRing, KeyError> {
    let ring_before = read_key_file(path)?;
    let mut keys = read_keys(path)?;
    keys.insert(
        ring_before.current_version() + 1,
        KeyRing::generate_master_key()?,
    );
    write_key_file(path, &keys, false)?;
    read_key_file(path)
}

/// Every key in a key file, by version.
fn read_keys(path: &Path) -> Result<BTreeMap<u32, [u8; MASTER_KEY_BYTES]>, KeyError> {
    check_permissions(path)?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let file: KeyFile = toml::from_str(&text).map_err(|error| KeyError::Malformed {
        origin: shown.clone(),
        reason: error.message().to_owned(),
    })?;
    let mut keys = BTreeMap::new();
    for (version, encoded) in &file.keys {
        let (version, key) = decode_key(&shown, version, encoded)?;
        keys.insert(version, key);
    }
    Ok(keys)
}

/// Removes one key version from a key file (rewritten atomically, mode
/// 0600) and returns the new ring. The current (highest) version is never
/// removed. Whether anything still needs the version is for the caller to
/// have checked: `kluis keys retire` does.
pub fn remove_key_version(path: &Path, version: u32) -> Result<KeyRing, KeyError> {
    let mut keys = read_keys(path)?;
    let current = keys.keys().next_back().copied().unwrap_or(0);
    if version == current {
        return Err(KeyError::RetireCurrent(version));
    }
    if keys.remove(&version).is_none() {
        return Err(KeyError::NoSuchVersion(version));
    }
    // Check the remaining keys form a ring before anything is written.
    KeyRing::new(keys.iter().map(|(v, k)| (*v, *k)).collect())?;
    write_key_file(path, &keys, false)?;
    read_key_file(path)
}

/// Loads the key ring for a command or the server, following the rules in
/// the README: environment, then key file, then (development only) a
/// generated `kluis.key`.
pub fn load(settings: &KeySettings) -> Result<(KeyRing, KeySource), KeyError> {
    if let Some(raw) = &settings.master_key {
        return Ok((
            parse_environment_keys(raw.0.expose_secret())?,
            KeySource::Environment,
        ));
    }
    if let Some(path) = &settings.key_file {
        return Ok((read_key_file(path)?, KeySource::File(path.clone())));
    }
    if settings.env == Environment::Production {
        return Err(KeyError::Missing);
    }
    let path = PathBuf::from(DEVELOPMENT_KEY_FILE);
    if !path.exists() {
        generate_key_file(&path)?;
        tracing::warn!(
            "GENERATED A DEVELOPMENT MASTER KEY in {}: guest data is encrypted with it. \
             Production needs KLUIS_MASTER_KEY or KLUIS_KEY_FILE.",
            path.display()
        );
    } else {
        tracing::warn!(
            "using the development master key in {}; production needs KLUIS_MASTER_KEY or KLUIS_KEY_FILE",
            path.display()
        );
    }
    Ok((read_key_file(&path)?, KeySource::DevelopmentFile(path)))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads the key file when it changes, so that a running server learns
/// the version a rotation added (and seals with it) without a restart. A
/// file that fails to load is logged and the old ring stays in force.
pub fn watch(source: &KeySource, ring: SharedKeyRing) {
    let Some(path) = source.file().map(Path::to_path_buf) else {
        return;
    };
    tokio::spawn(async move {
        let mut seen = modified(&path);
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let reload_path = path.clone();
            match tokio::task::spawn_blocking(move || read_key_file(&reload_path)).await {
                Ok(Ok(new_ring)) => {
                    tracing::info!(
                        current_version = new_ring.current_version(),
                        "reloaded the key file"
                    );
                    ring.replace(new_ring);
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "the changed key file was refused; the previous keys stay in force");
                }
                Err(error) => tracing::error!(%error, "key file reload failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(byte: u8) -> String {
        STANDARD.encode([byte; MASTER_KEY_BYTES])
    }

    #[test]
    fn an_environment_key_is_version_one() {
        let ring = parse_environment_keys(&encoded(3)).expect("valid");
        assert_eq!(ring.current_version(), 1);
        let ring =
            parse_environment_keys(&format!("1:{},2:{}", encoded(3), encoded(4))).expect("valid");
        assert_eq!(ring.current_version(), 2);
    }

    #[test]
    fn short_or_garbled_environment_keys_are_refused() {
        assert!(parse_environment_keys(&STANDARD.encode([1u8; 32])).is_err());
        assert!(parse_environment_keys("not base64 at all!").is_err());
        assert!(parse_environment_keys("").is_err());
    }

    #[test]
    fn generated_key_files_are_private_and_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kluis.key");
        generate_key_file(&path).expect("written");
        assert_eq!(read_key_file(&path).expect("readable").current_version(), 1);
        assert!(
            generate_key_file(&path).is_err(),
            "overwrote an existing key file"
        );
        let ring = add_key_version(&path).expect("extended");
        assert_eq!(ring.versions().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn retiring_a_version_rewrites_the_file_without_it_and_keeps_it_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kluis.key");
        generate_key_file(&path).expect("written");
        add_key_version(&path).expect("extended");
        let before = read_keys(&path).expect("readable");
        assert!(matches!(
            remove_key_version(&path, 2),
            Err(KeyError::RetireCurrent(2))
        ));
        assert!(matches!(
            remove_key_version(&path, 7),
            Err(KeyError::NoSuchVersion(7))
        ));
        let ring = remove_key_version(&path, 1).expect("retired");
        assert_eq!(ring.versions().collect::<Vec<_>>(), vec![2]);
        let after = read_keys(&path).expect("readable");
        assert_eq!(after.get(&2), before.get(&2), "the current key changed");
        assert!(!after.contains_key(&1));
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(!text.contains(&STANDARD.encode(before[&1])));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !dir.path().join("kluis.key.tmp").exists(),
            "the temporary file was left behind"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kluis.key");
        generate_key_file(&path).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = read_key_file(&path).expect_err("refused").to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
