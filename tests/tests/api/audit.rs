//! The audit trail: one entry per request, an HMAC chain, a published head.
use anyhow::{Context as _, Result};
use kluis_tests::{Backend, Booked, TestApp, both_backends, tomorrow};

use serde_json::{Value, json};
use store::BrokenLink;

const SHEET: &str = "query D($v: ID!, $d: Date!) { reservations(venueId: $v, date: $d, first: 50) { edges { node { id guestName notes } } } }";
const LOG: &str = "query L($o: String, $a: AuditAction) { auditLog(object: $o, action: $a, first: 100) { totalCount edges { node { seq principal actions venue { id } objects { action object fields venue { id } } } } } }";
const EXPORT: &str =
    "mutation E { exportMyData { export { accessLog { at who action object fields } } } }";

fn entries(answer: &Value) -> Vec<Value> {
    answer["data"]["auditLog"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| edge["node"].clone())
        .collect()
}

/// A staff member's day sheet is one request: one entry naming each
/// reservation read, with the fields of each. "Who saw this reservation"
/// finds that entry by the object; the guest's export lists the access to
/// their own record, never the other guests the same request read.
async fn one_request_is_one_entry_naming_every_object(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    let Booked {
        id: ada,
        token: ada_token,
    } = app
        .book("one-table", 10)
        .guest(json!({ "name": "Ada", "email": "ada@example.org" }))
        .await?;
    let bob = app
        .book("one-table", 11)
        .guest(json!({ "name": "Bob", "email": "bob@example.org" }))
        .await?
        .id;
    let staff = app.staff("staff", Some("one-table")).await?;
    let before = app.count_rows("audit_log", "1 = 1")?;
    let sheet = app
        .gql_as(&staff, SHEET, json!({ "v": venue, "d": tomorrow() }))
        .await?;
    assert!(sheet.get("errors").is_none(), "{sheet}");
    assert_eq!(
        app.count_rows("audit_log", "1 = 1")? - before,
        1,
        "one request, one entry"
    );
    let admin = app.staff("admin", None).await?;
    let log = app
        .gql_as(
            &admin,
            LOG,
            json!({ "o": format!("reservation:{ada}"), "a": null }),
        )
        .await?;
    let found = entries(&log);
    let read = found
        .iter()
        .find(|e| {
            e["principal"]
                .as_str()
                .is_some_and(|p| p.starts_with("user:"))
        })
        .with_context(|| format!("{log}"))?;
    assert_eq!(read["actions"], json!(["READ"]), "{log}");
    assert_eq!(read["venue"]["id"], json!(venue), "{log}");
    let objects: Vec<&str> = read["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["object"].as_str())
        .collect();
    assert!(
        objects.contains(&format!("reservation:{ada}").as_str())
            && objects.contains(&format!("reservation:{bob}").as_str()),
        "the entry names both reservations: {log}"
    );
    for object in read["objects"].as_array().into_iter().flatten() {
        assert_eq!(object["fields"], json!(["guestName", "notes"]), "{log}");
    }

    let export = app.gql_as(&ada_token, EXPORT, json!({})).await?;
    let access = export["data"]["exportMyData"]["export"]["accessLog"]
        .as_array()
        .cloned()
        .with_context(|| format!("{export}"))?;
    assert!(
        access
            .iter()
            .any(|e| e["object"] == format!("reservation:{ada}") && e["action"] == "read"),
        "{export}"
    );
    assert!(
        !access
            .iter()
            .any(|e| e["object"] == format!("reservation:{bob}")),
        "another guest's record leaks through the shared entry: {export}"
    );
    assert_eq!(app.verify_audit().await?.1, None);
    Ok(())
}
both_backends!(
    one_request_is_one_entry_naming_every_object,
    one_request_is_one_entry_naming_every_object
);

fn event(principal: &str, object: &str, venue: Option<&str>) -> store::AuditEvent {
    store::AuditEvent {
        principal: principal.to_owned(),
        action: store::AuditAction::Read,
        object: object.to_owned(),
        fields: "guestName".to_owned(),
        venue_id: venue.map(str::to_owned),
    }
}

/// Five entries of two objects each.
async fn five_entries(app: &TestApp) -> Result<store::Store> {
    let store = app.store().await?;
    for n in 1..=5 {
        store.audit(
            &[
                event("user:reader", &format!("reservation:r{n}"), Some("v")),
                event("user:reader", &format!("guest:g{n}"), Some("v")),
            ],
            app.now(),
        )?;
    }
    Ok(store)
}

/// An edited entry, an edited object of an entry, a deleted entry in the
/// middle and an object added to the side table are each detected; the
/// published head catches the removal of the newest entries, which leaves
/// a chain that is otherwise intact.
async fn verify_detects_edits_deletions_and_a_truncated_tail(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let store = five_entries(&app).await?;
    let (count, broken) = app.verify_audit().await?;
    assert_eq!((count, broken), (5, None));
    // The head as the periodic job publishes it (to the alert webhook
    // through the outbox, here none is configured: the log line).
    let head = api::publish_audit_head(&store, app.now(), false, None)
        .await
        .context("a head to publish")?;
    assert_eq!(head.seq, 5);
    assert_eq!(app.verify_audit_against(Some(head.clone())).await?.1, None);

    // An object's fields rewritten.
    app.execute_sql("UPDATE audit_objects SET fields = 'nothing' WHERE seq = 2 AND position = 1")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 2 })
    );
    app.execute_sql(
        "UPDATE audit_objects SET fields = 'guestName' WHERE seq = 2 AND position = 1",
    )?;
    // The copy of the principal the monitoring rules read.
    app.execute_sql("UPDATE audit_objects SET principal = 'user:other' WHERE seq = 3")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 3 })
    );
    app.execute_sql("UPDATE audit_objects SET principal = 'user:reader' WHERE seq = 3")?;
    // An object dropped from an entry.
    app.execute_sql("DELETE FROM audit_objects WHERE seq = 4 AND position = 1")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 4 })
    );
    app.execute_sql(
        "INSERT INTO audit_objects (seq, position, at, principal, action, object, fields, venue_id) \
         SELECT seq, 1, at, principal, 'read', 'guest:g4', 'guestName', 'v' FROM audit_objects WHERE seq = 4",
    )?;
    assert_eq!(app.verify_audit().await?.1, None, "restored");
    // A reader invented: an object of no entry.
    app.execute_sql(
        "INSERT INTO audit_objects (seq, position, at, principal, action, object, fields, venue_id) \
         SELECT 99, 0, at, 'user:framed', 'read', 'guest:g1', 'guestName', 'v' FROM audit_objects WHERE seq = 1 AND position = 0",
    )?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 99 })
    );
    app.execute_sql("DELETE FROM audit_objects WHERE seq = 99")?;
    // The entry's own columns.
    app.execute_sql("UPDATE audit_log SET principal = 'user:nobody' WHERE seq = 1")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 1 })
    );
    app.execute_sql("UPDATE audit_log SET principal = 'user:reader' WHERE seq = 1")?;
    assert_eq!(app.verify_audit().await?.1, None, "restored");

    // The newest entry removed: the chain alone still holds...
    app.execute_sql("DELETE FROM audit_objects WHERE seq = 5")?;
    app.execute_sql("DELETE FROM audit_log WHERE seq = 5")?;
    assert_eq!(app.verify_audit().await?.1, None);
    // ...but not against the head published before.
    assert_eq!(
        app.verify_audit_against(Some(head.clone())).await?.1,
        Some(BrokenLink::Truncated { head: 5, last: 4 })
    );
    // Appending again does not hide it: entry 5 is now another one.
    store.audit(&[event("user:reader", "guest:g9", Some("v"))], app.now())?;
    assert_eq!(
        app.verify_audit_against(Some(head)).await?.1,
        Some(BrokenLink::Modified { seq: 5 })
    );

    // An entry deleted in the middle.
    app.execute_sql("DELETE FROM audit_objects WHERE seq = 3")?;
    app.execute_sql("DELETE FROM audit_log WHERE seq = 3")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Missing {
            seq: 4,
            expected: 3
        })
    );
    Ok(())
}
both_backends!(
    verify_detects_edits_deletions_and_a_truncated_tail,
    verify_detects_edits_deletions_and_a_truncated_tail
);

/// A database writer without the master key cannot make a rewritten
/// entry pass as one of the SHA-256 entries from before the chain was
/// keyed: the anchor that says where those end is sealed with the key, and
/// cannot be re-sealed once entries follow it.
async fn the_anchor_of_the_older_entries_cannot_be_moved(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let store = five_entries(&app).await?;
    assert_eq!(app.verify_audit().await?.1, None);
    // Claim every entry is an old one, and empty the seal so that the
    // server would seal it again.
    let newest = store.audit_head()?.context("a head")?;
    app.execute_sql(&format!(
        "UPDATE audit_anchor SET until_seq = 5, until_hash = '{}', mac = ''",
        newest.hash
    ))?;
    // A restart: nothing to migrate, so nothing is sealed.
    store.migrate()?;
    assert_eq!(app.verify_audit().await?.1, Some(BrokenLink::Anchor));
    // Nor once entries follow the anchor.
    app.execute_sql("UPDATE audit_anchor SET until_seq = 4")?;
    assert!(!store.seal_audit_anchor()?, "sealed with entries after it");
    assert_eq!(app.verify_audit().await?.1, Some(BrokenLink::Anchor));
    app.execute_sql("DELETE FROM audit_anchor")?;
    assert_eq!(app.verify_audit().await?.1, Some(BrokenLink::Anchor));
    Ok(())
}
both_backends!(
    the_anchor_of_the_older_entries_cannot_be_moved,
    the_anchor_of_the_older_entries_cannot_be_moved
);

/// Entries written before the chain was keyed (one object each, SHA-256
/// links) still verify after the migration, up to the sealed anchor, and
/// keyed entries follow them; a rewritten old entry is detected.
async fn entries_from_before_the_keyed_chain_still_verify(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let store = app.store().await?;
    // As the migration leaves a trail of three old entries: one object
    // each, SHA-256 links, and an anchor waiting for its seal.
    for n in 1..=3 {
        store.audit(
            &[event("user:old", &format!("guest:o{n}"), Some("v"))],
            app.now(),
        )?;
    }
    let mut written = store.audit_entries(&store::AuditFilter::default(), None, 10)?;
    written.reverse();
    let mut prev = store::AUDIT_GENESIS.to_owned();
    for entry in &written {
        let object = &entry.objects[0];
        let old = event(&entry.principal, &object.object, object.venue_id.as_deref());
        let hash = store::legacy_audit_hash(&prev, entry.seq, entry.at, &old);
        app.execute_sql(&format!(
            "UPDATE audit_log SET prev_hash = '{prev}', hash = '{hash}', key_version = 0 WHERE seq = {}",
            entry.seq
        ))?;
        prev = hash;
    }
    app.execute_sql(&format!(
        "UPDATE audit_anchor SET until_seq = 3, until_hash = '{prev}', mac = '', key_version = 0"
    ))?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Anchor),
        "unsealed"
    );
    assert!(store.seal_audit_anchor()?);
    store.audit(&[event("user:new", "guest:n1", Some("v"))], app.now())?;
    assert_eq!(app.verify_audit().await?, (4, None));
    app.execute_sql("UPDATE audit_objects SET object = 'guest:elsewhere' WHERE seq = 2")?;
    assert_eq!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Modified { seq: 2 })
    );
    Ok(())
}
both_backends!(
    entries_from_before_the_keyed_chain_still_verify,
    entries_from_before_the_keyed_chain_still_verify
);

/// With an alert webhook, the published head goes out through the outbox
/// as an `audit.head` event; a head that has not moved is not sent again.
async fn the_head_is_published_through_the_outbox(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let store = five_entries(&app).await?;
    let head = api::publish_audit_head(&store, app.now(), true, None)
        .await
        .context("published")?;
    assert_eq!(
        app.count_rows("outbox", "purpose = 'audit_head' AND kind = 'webhook'")?,
        1
    );
    assert!(
        api::publish_audit_head(&store, app.now(), true, Some(&head))
            .await
            .is_some()
    );
    assert_eq!(
        app.count_rows("outbox", "purpose = 'audit_head'")?,
        1,
        "an unchanged head is not sent again"
    );
    Ok(())
}
both_backends!(
    the_head_is_published_through_the_outbox,
    the_head_is_published_through_the_outbox
);

/// An admin bound to one venue sees the entries whose every object is of
/// its venue; an entry that also names another venue's record is shown
/// only to an admin of every venue.
async fn an_entry_naming_two_venues_is_shown_to_admins_of_every_venue(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let store = app.store().await?;
    let a = app.venue_id("one-table").await?;
    let b = app.venue_id("lunch-room").await?;
    store.audit(&[event("user:x", "guest:only-a", Some(&a))], app.now())?;
    store.audit(
        &[
            event("user:x", "guest:mixed-a", Some(&a)),
            event("user:x", "guest:mixed-b", Some(&b)),
        ],
        app.now(),
    )?;
    let of_a = app.staff("admin", Some("one-table")).await?;
    let global = app.staff("admin", None).await?;
    let named = |answer: &Value| -> Vec<String> {
        entries(answer)
            .iter()
            .flat_map(|e| e["objects"].as_array().cloned().unwrap_or_default())
            .filter_map(|o| o["object"].as_str().map(str::to_owned))
            .collect()
    };
    let seen = app
        .gql_as(&of_a, LOG, json!({ "o": null, "a": null }))
        .await?;
    let objects = named(&seen);
    assert!(objects.contains(&"guest:only-a".to_owned()), "{seen}");
    assert!(
        !objects.iter().any(|o| o.starts_with("guest:mixed")),
        "an entry with another venue's record: {seen}"
    );
    let by_object = app
        .gql_as(&of_a, LOG, json!({ "o": "guest:mixed-a", "a": null }))
        .await?;
    assert_eq!(entries(&by_object), Vec::<Value>::new(), "{by_object}");
    assert_eq!(
        by_object["data"]["auditLog"]["totalCount"], 0,
        "not even counted: {by_object}"
    );
    let counted = |answer: &Value| {
        answer["data"]["auditLog"]["totalCount"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
    };
    assert_eq!(counted(&seen), Some(entries(&seen).len()), "{seen}");
    // Walking the whole trail two entries at a time: newest first, each
    // entry once, as many as counted.
    let page = "query P($a: String) { auditLog(first: 2, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { seq } } } }";
    let (mut after, mut seqs) = (Value::Null, Vec::new());
    let total = loop {
        let answer = app.gql_as(&global, page, json!({ "a": after })).await?;
        seqs.extend(entries(&answer).iter().filter_map(|e| e["seq"].as_i64()));
        let info = &answer["data"]["auditLog"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break counted(&answer);
        }
        after = info["endCursor"].clone();
    };
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_eq!(total, Some(seqs.len()));
    let by_action = app
        .gql_as(&global, LOG, json!({ "o": null, "a": "LOOKUP" }))
        .await?;
    assert_eq!(counted(&by_action), Some(0), "{by_action}");
    let wrong = app
        .gql_as(&global, LOG, json!({ "o": null, "a": "read" }))
        .await?;
    assert!(wrong["errors"].is_array(), "actions are an enum: {wrong}");
    let all = app
        .gql_as(&global, LOG, json!({ "o": "guest:mixed-a", "a": null }))
        .await?;
    assert_eq!(
        named(&all),
        ["guest:mixed-a", "guest:mixed-b"],
        "the whole entry for an admin of every venue: {all}"
    );
    assert_eq!(counted(&all), Some(1), "{all}");
    assert_eq!(entries(&all)[0]["venue"], Value::Null, "{all}");
    Ok(())
}
both_backends!(
    an_entry_naming_two_venues_is_shown_to_admins_of_every_venue,
    an_entry_naming_two_venues_is_shown_to_admins_of_every_venue
);

/// A key rotation seals a checkpoint under the new key version that
/// vouches for every entry so far; retiring the old version then leaves
/// the whole trail verifiable with the new key file alone, and edits to
/// entries whose HMAC key is gone are still caught through the
/// checkpoint's digest. A broken trail is never vouched for: retirement
/// waits until it is investigated.
async fn retiring_a_key_keeps_the_older_trail_verifiable(backend: Backend) -> Result<()> {
    let mut app = TestApp::spawn(backend).await?;
    let store = five_entries(&app).await?;
    assert_eq!(app.count_rows("audit_log", "key_version = 1")?, 5);

    // Tampered before the retirement: the checkpoint is refused and the
    // key stays.
    app.execute_sql("UPDATE audit_objects SET fields = 'nothing' WHERE seq = 2 AND position = 1")?;
    app.rotate_keys().await?;
    assert_eq!(app.count_rows("audit_checkpoints", "1 = 1")?, 0);
    match app.retire_key(1).await {
        Err(api::StartError::AuditBroken(BrokenLink::Modified { seq: 2 })) => {}
        other => anyhow::bail!("retired over a broken trail: {other:?}"),
    }
    assert_eq!(
        api::keys::read_key_file(&app.key_file())?
            .versions()
            .collect::<Vec<_>>(),
        [1, 2]
    );
    app.execute_sql(
        "UPDATE audit_objects SET fields = 'guestName' WHERE seq = 2 AND position = 1",
    )?;

    // Without a checkpoint, the entries under version 1 hold it up.
    let usage = {
        let store = store.clone();
        let now = app.now();
        tokio::task::spawn_blocking(move || store.key_usage(1, now)).await??
    };
    assert!(usage.audit_entries >= 5, "{usage:?}");
    assert!(
        usage
            .describe()
            .iter()
            .any(|line| line.starts_with("audit_log:")),
        "{usage:?}"
    );

    let retired = app.retire_key(1).await?;
    assert!(!retired.blocks_retirement(), "{retired:?}");
    assert_eq!(
        api::keys::read_key_file(&app.key_file())?
            .versions()
            .collect::<Vec<_>>(),
        [2]
    );
    app.restart().await?;
    // A node started with the new key file alone.
    let store = app.store().await?;
    store.audit(&[event("user:reader", "guest:g6", Some("v"))], app.now())?;
    let (count, broken) = app.verify_audit().await?;
    assert_eq!(broken, None);
    assert!(count >= 7, "{count}");
    assert_eq!(app.count_rows("audit_log", "key_version = 1")?, 5);

    // Entry 2's HMAC key is gone; its edit is caught by the checkpoint.
    let until = app.count_rows("audit_log", "key_version = 1")? + 1;
    app.execute_sql("UPDATE audit_objects SET fields = 'nothing' WHERE seq = 2 AND position = 1")?;
    match app.verify_audit().await?.1 {
        Some(BrokenLink::Checkpoint { until: reached }) => assert!(reached >= until),
        other => anyhow::bail!("an edit under a retired key went unnoticed: {other:?}"),
    }
    app.execute_sql(
        "UPDATE audit_objects SET fields = 'guestName' WHERE seq = 2 AND position = 1",
    )?;
    assert_eq!(app.verify_audit().await?.1, None, "restored");
    // So are a forged checkpoint and a removed one.
    app.execute_sql("UPDATE audit_checkpoints SET digest = 'forged'")?;
    assert!(matches!(
        app.verify_audit().await?.1,
        Some(BrokenLink::Checkpoint { .. })
    ));
    app.execute_sql("DELETE FROM audit_checkpoints")?;
    assert!(
        app.verify_audit().await?.1.is_some(),
        "the checkpoint's removal went unnoticed"
    );
    Ok(())
}
both_backends!(
    retiring_a_key_keeps_the_older_trail_verifiable,
    retiring_a_key_keeps_the_older_trail_verifiable
);
