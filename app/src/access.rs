//! Partner API keys: issuing one (`createApiKey`, `kluis apikey create`).

use chrono::{DateTime, Utc};
use domain::auth::{ApiKeyToken, Role};
use domain::crypto::Field;
use store::{Store, StoreError};

/// A key just issued: the whole key, shown once (kluis keeps only a keyed
/// hash of it), and the stored row.
pub struct CreatedKey {
    pub key: String,
    pub row: store::ApiKeyRow,
}

/// Creates and stores an API key; shared by the mutation and the CLI.
pub fn create_api_key(
    store: &Store,
    name: &str,
    role: Role,
    venues: &[String],
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<&str>,
) -> Result<CreatedKey, StoreError> {
    let (token, full) = ApiKeyToken::generate()?;
    let ring = store.keys().current();
    let version = ring.current_version();
    let secret_hash = ring.keyed_hash(version, Field::API_KEY_SECRET, token.secret())?;
    store.create_api_key(
        &store::NewApiKey {
            id: &token.id,
            name,
            secret_hash,
            hash_version: i32::try_from(version).unwrap_or(i32::MAX),
            role: role.as_str(),
            venues,
            created_by,
            expires_at,
        },
        Utc::now(),
    )?;
    let row = store
        .api_key(&token.id)?
        .ok_or(domain::DomainError::not_found("api key"))?;
    Ok(CreatedKey { key: full, row })
}
