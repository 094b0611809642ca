//! Key rotation and retirement (`kluis keys rotate`, `kluis keys
//! retire`): the key file changes, the database follows, and the audit
//! trail says who did it.

use store::Store;

use crate::error::{Error, blocking};
use crate::keys::KeySource;

/// Finishes an interrupted rotation, or adds a key
/// version to the key file and re-encrypts every sealed value and lookup
/// token with it. Serving nodes pick up the new version from the key file
/// within seconds; rows they write meanwhile are re-encrypted in a later
/// batch. Calls `report` after every batch.
pub async fn rotate(
    store: &Store,
    source: &KeySource,
    report: impl Fn(store::RotationProgress),
) -> Result<store::RotationProgress, Error> {
    let path = source
        .file()
        .ok_or(crate::keys::KeyError::RotationNeedsFile)?
        .to_path_buf();
    let before = {
        let store = store.clone();
        blocking(move || Ok(store.rotation_progress()?)).await?
    };
    if before.remaining == 0 {
        let store = store.clone();
        blocking(move || {
            let ring = crate::keys::add_key_version(&path)?;
            tracing::info!(version = ring.current_version(), "added a key version");
            store.keys().replace(ring);
            store.verify_keys(chrono::Utc::now())?;
            Ok(())
        })
        .await?;
    } else {
        tracing::info!(
            remaining = before.remaining,
            version = before.target_version,
            "resuming an unfinished rotation"
        );
    }
    let mut resealed: u64 = 0;
    loop {
        let batch = store.clone();
        let (moved, progress) =
            blocking(move || Ok((batch.rotate_batch()?, batch.rotation_progress()?))).await?;
        resealed += moved;
        report(progress);
        if progress.remaining == 0 {
            // Rotation opens every sealed value: one entry in the trail
            // says who did it and when (the rows are all of them).
            let columns = store::SEALED
                .iter()
                .flat_map(|t| {
                    t.columns
                        .iter()
                        .map(move |c| format!("{}.{}", t.table, c.column))
                })
                .collect::<Vec<_>>()
                .join(",");
            let auditing = store.clone();
            blocking(move || {
                Ok(auditing.audit(
                    &[store::AuditEvent {
                        principal: "cli".to_owned(),
                        action: store::AuditAction::Rotate,
                        object: format!("keys:v{}", progress.target_version),
                        fields: format!("{columns};rows={resealed}"),
                        venue_id: None,
                    }],
                    chrono::Utc::now(),
                )?)
            })
            .await?;
            // The trail so far, its rotation entry included, is vouched
            // for under the new version: the old one can be retired
            // without leaving older entries unverifiable.
            let checkpointing = store.clone();
            let checkpoint =
                blocking(move || Ok(checkpointing.checkpoint_audit(chrono::Utc::now())?)).await?;
            match checkpoint {
                store::Checkpointed::Written {
                    until_seq,
                    key_version,
                } => tracing::info!(until_seq, key_version, "audit trail checkpoint written"),
                store::Checkpointed::Broken(broken) => tracing::error!(
                    %broken,
                    "the audit trail is broken: no checkpoint written, and older key versions cannot be retired until it is investigated"
                ),
            }
            report_unmovable(store).await?;
            return Ok(progress);
        }
        if moved == 0 {
            // Rows held by another rotation, or written by a node that has
            // not reloaded the key file yet: give them a moment.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Says what a rotation cannot move: keyed hashes of live API keys (the
/// secret is needed to re-key them; a partner's next request does it) and
/// unexpired access codes (they are waited for). Neither is left silently:
/// `kluis keys retire` refuses until they are gone.
async fn report_unmovable(store: &Store) -> Result<(), Error> {
    let store = store.clone();
    blocking(move || {
        let now = chrono::Utc::now();
        for (id, version) in store.api_keys_on_older_versions(now)? {
            tracing::warn!(
                api_key = %id,
                version,
                "API key still hashed under an older key version: it moves when next used; otherwise revoke it and issue a new one before retiring that version"
            );
        }
        let current = store.keys().current();
        for version in current.versions().filter(|v| *v != current.current_version()) {
            let usage = store.key_usage(version, now)?;
            if usage.access_codes > 0 {
                tracing::info!(
                    version,
                    codes = usage.access_codes,
                    valid_until = ?usage.codes_valid_until,
                    "access codes hashed under an older key version are waiting to expire"
                );
            }
        }
        Ok(())
    })
    .await
}

/// Removes an old key version from the key
/// file once nothing in the database needs it; otherwise refuses and
/// lists what still does (sealed values per table and column, live API
/// keys by id, access codes and when they expire). `now` decides which
/// access codes and API keys are still alive.
pub async fn retire(
    store: &Store,
    source: &KeySource,
    version: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<store::KeyUsage, Error> {
    let path = source
        .file()
        .ok_or(crate::keys::KeyError::RetireNeedsFile)?
        .to_path_buf();
    let ring = store.keys().current();
    if version == ring.current_version() {
        return Err(crate::keys::KeyError::RetireCurrent(version).into());
    }
    if !ring.versions().any(|v| v == version) {
        return Err(crate::keys::KeyError::NoSuchVersion(version).into());
    }
    let store = store.clone();
    blocking(move || {
        // The audit entries whose HMACs use the version are vouched for by
        // a checkpoint under the current one first; a broken trail stops
        // here, while every key that can prove what was changed is held.
        if let store::Checkpointed::Broken(broken) = store.checkpoint_audit(now)? {
            return Err(Error::AuditBroken(broken));
        }
        // The database forgets the version first: were the key file
        // rewritten first and the command stopped in between, servers
        // would refuse to start (the database would name a version the
        // file lacks).
        let usage = store.retire_key_version(version, now)?;
        if usage.blocks_retirement() {
            return Err(Error::KeyStillNeeded {
                version,
                needs: usage.describe(),
            });
        }
        let ring = crate::keys::remove_key_version(&path, version)?;
        store.keys().replace(ring);
        // A node that started in between recorded the version's check
        // value again; it is gone from the file now, so forget it again.
        store.retire_key_version(version, now)?;
        store.audit(
            &[store::AuditEvent {
                principal: "cli".to_owned(),
                action: store::AuditAction::Retire,
                object: format!("keys:v{version}"),
                fields: String::new(),
                venue_id: None,
            }],
            chrono::Utc::now(),
        )?;
        Ok(usage)
    })
    .await
}
