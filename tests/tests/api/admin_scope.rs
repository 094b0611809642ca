//! Administration is scoped: an admin bound to venues grants, creates,
//! revokes and reads only within them; `*` (every venue) and what belongs
//! to no venue are for admins of every venue. Every admin operation of the
//! schema, by a venue-bound admin, on its own venue, another venue and the
//! whole deployment; and the admin of every venue still does all of it.

use anyhow::{Context, Result};
use kluis_tests::{Backend, TestApp, both_backends, error_code};
use serde_json::{Value, json};

const ME: &str = "{ me { id } }";
const ASSIGN: &str =
    "mutation A($s: ID!, $r: String!, $v: ID) { assignRole(staffId: $s, role: $r, venueId: $v) }";
const REMOVE: &str =
    "mutation R($s: ID!, $r: String!, $v: ID) { removeRole(staffId: $s, role: $r, venueId: $v) }";
const CREATE_STAFF: &str =
    "mutation C($i: CreateStaffInput!) { createStaff(input: $i) { id roles { role venue } } }";
const CREATE_KEY: &str =
    "mutation K($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id venues } } }";
const REVOKE_KEY: &str = "mutation R($id: ID!) { revokeApiKey(id: $id) }";
const SET_ACTIVE: &str =
    "mutation S($s: ID!, $a: Boolean!) { setStaffActive(staffId: $s, active: $a) }";
const UNLOCK: &str = "mutation U($e: String!) { unlockLogin(email: $e) }";
const STAFF: &str = "{ staffAccounts { id email active roles { role venue } } }";
const KEYS: &str = "{ apiKeys { id venues revokedAt } }";
const AUDIT: &str = "{ auditLog(first: 100) { venueId objects { object } } }";
const ALERTS: &str = "{ alerts(first: 100) { id venueId } }";
const ACKNOWLEDGE: &str = "mutation A($id: ID!) { acknowledgeAlert(id: $id) { id status } }";
const LIFT: &str = "mutation L($p: String!) { liftHold(principal: $p) }";
const BREACHES: &str = "{ breaches { id venueId } }";
const RECORD: &str = "mutation B($i: BreachInput!) { recordBreach(input: $i) { id venueId } }";
const REPORT: &str =
    "mutation R($id: ID!) { reportBreachToAuthority(id: $id) { id reportedToAuthorityAt } }";
const NOTIFY: &str = "mutation N($id: ID!, $a: AffectedGuestsInput!) { notifyBreach(id: $id, affected: $a, subject: \"Notice\", message: \"Dear {name}\") }";

/// A staff account: id, e-mail and session token.
struct Account {
    id: String,
    email: String,
    token: String,
}

async fn account(app: &TestApp, role: &str, venue: Option<&str>) -> Result<Account> {
    let (email, password) = app.staff_account(role, venue).await?;
    let token = app.login(&email, &password).await?;
    let me = app.gql_as(&token, ME, json!({})).await?;
    let id = me["data"]["me"]["id"]
        .as_str()
        .with_context(|| format!("no id: {me}"))?
        .to_owned();
    Ok(Account { id, email, token })
}

fn breach(venue: Option<&str>) -> Value {
    json!({
        "discoveredAt": chrono::Utc::now().to_rfc3339(),
        "nature": "A laptop was stolen",
        "dataCategories": "names",
        "approxPeople": 1,
        "approxRecords": 1,
        "likelyConsequences": "little",
        "measuresTaken": "remote wipe",
        "contact": "privacy@example.org",
        "venueId": venue,
    })
}

fn ids(answer: &Value, list: &str) -> Vec<String> {
    answer["data"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

/// The venues the entries of a list belong to (`null` for none).
fn venues_of(answer: &Value, list: &str) -> Vec<Value> {
    answer["data"][list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item["venueId"].clone())
        .collect()
}

fn assert_code(answer: &Value, code: &str, what: &str) {
    assert_eq!(error_code(answer), Some(code), "{what}: {answer}");
}

fn assert_data(answer: &Value, field: &str, expected: &Value, what: &str) {
    assert!(answer["errors"].is_null(), "{what}: {answer}");
    assert_eq!(&answer["data"][field], expected, "{what}: {answer}");
}

async fn every_admin_operation_stays_within_the_venues_of_a_venue_bound_admin(
    backend: Backend,
) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let a = app.venue_id("one-table").await?;
    let b = app.venue_id("lunch-room").await?;
    let global = account(&app, "admin", None).await?;
    let admin_a = account(&app, "admin", Some("one-table")).await?;
    let staff_a = account(&app, "staff", Some("one-table")).await?;
    let staff_b = account(&app, "staff", Some("lunch-room")).await?;
    let staff_all = account(&app, "staff", None).await?;
    let manager_a = account(&app, "manager", Some("one-table")).await?;
    let g = |query: &'static str, variables: Value| {
        let token = global.token.clone();
        let app = &app;
        async move { app.gql_as(&token, query, variables).await }
    };
    let va = |query: &'static str, variables: Value| {
        let token = admin_a.token.clone();
        let app = &app;
        async move { app.gql_as(&token, query, variables).await }
    };

    // Keys of venue A, of venue B and of both, made by the global admin.
    let mut keys = Vec::new();
    for venues in [vec![a.clone()], vec![b.clone()], vec![a.clone(), b.clone()]] {
        let made = g(
            CREATE_KEY,
            json!({ "i": { "name": "partner", "venueIds": venues } }),
        )
        .await?;
        keys.push(
            made["data"]["createApiKey"]["apiKey"]["id"]
                .as_str()
                .with_context(|| format!("no key: {made}"))?
                .to_owned(),
        );
    }
    let (key_a, key_b, key_ab) = (keys[0].clone(), keys[1].clone(), keys[2].clone());

    // History of each venue and of none: audit entries, alerts, holds,
    // breaches.
    let store = app.store().await?;
    for (n, venue) in [Some(&a), Some(&b), None].into_iter().enumerate() {
        store.audit(
            &[store::AuditEvent {
                principal: "system".to_owned(),
                action: store::AuditAction::Read,
                object: format!("marker:{n}"),
                fields: "name".to_owned(),
                venue_id: venue.cloned(),
            }],
            app.now(),
        )?;
    }
    let mut alerts = Vec::new();
    for (principal, venue) in [
        (format!("user:{}", staff_a.id), Some(a.clone())),
        (format!("user:{}", staff_b.id), Some(b.clone())),
        ("system".to_owned(), None),
    ] {
        let raised = store.raise_alert(
            &store::NewAlert {
                rule: "bulk_read".to_owned(),
                principal: principal.clone(),
                venue_id: venue,
                observed: 1000,
            },
            &store::AlertNotices::default(),
            app.now(),
        )?;
        store.hold_principal(&principal, "suspended", None, &raised.id, app.now())?;
        alerts.push(raised.id);
    }
    let (alert_a, alert_b, alert_global) =
        (alerts[0].clone(), alerts[1].clone(), alerts[2].clone());
    let mut breaches = Vec::new();
    for venue in [Some(a.as_str()), Some(b.as_str()), None] {
        let recorded = g(RECORD, json!({ "i": breach(venue) })).await?;
        assert_eq!(
            recorded["data"]["recordBreach"]["venueId"],
            json!(venue),
            "{recorded}"
        );
        breaches.push(
            recorded["data"]["recordBreach"]["id"]
                .as_str()
                .with_context(|| format!("no breach: {recorded}"))?
                .to_owned(),
        );
    }
    let (breach_a, breach_b, breach_global) = (
        breaches[0].clone(),
        breaches[1].clone(),
        breaches[2].clone(),
    );

    // --- assignRole: the escalation itself, then own / other / global.
    let escalate = va(ASSIGN, json!({ "s": admin_a.id, "r": "admin", "v": null })).await?;
    assert_code(&escalate, "FORBIDDEN", "a venue admin making itself global");
    let to_b = va(ASSIGN, json!({ "s": admin_a.id, "r": "admin", "v": b })).await?;
    assert_code(&to_b, "NOT_FOUND", "a venue admin granting itself venue B");
    let own = va(ASSIGN, json!({ "s": staff_a.id, "r": "manager", "v": a })).await?;
    assert_data(&own, "assignRole", &json!(true), "granting in its venue");
    let other_account = va(ASSIGN, json!({ "s": staff_b.id, "r": "staff", "v": a })).await?;
    assert_code(&other_account, "NOT_FOUND", "an account of venue B");
    let global_account = va(ASSIGN, json!({ "s": staff_all.id, "r": "staff", "v": a })).await?;
    assert_code(&global_account, "NOT_FOUND", "an account of every venue");
    // Still bound to venue A: venue B's staff stay out of sight.
    let listed = va(STAFF, json!({})).await?;
    assert!(
        !ids(&listed, "staffAccounts").contains(&staff_b.id),
        "{listed}"
    );

    // --- removeRole.
    let removed = va(REMOVE, json!({ "s": staff_a.id, "r": "manager", "v": a })).await?;
    assert_data(
        &removed,
        "removeRole",
        &json!(true),
        "removing in its venue",
    );
    let removed_b = va(REMOVE, json!({ "s": staff_b.id, "r": "staff", "v": b })).await?;
    assert_code(&removed_b, "NOT_FOUND", "removing a role in venue B");
    let removed_all = va(
        REMOVE,
        json!({ "s": staff_all.id, "r": "staff", "v": null }),
    )
    .await?;
    assert_code(&removed_all, "FORBIDDEN", "removing a role in every venue");
    // A role in A taken from an account the admin does not reach: as if
    // the account held none.
    let removed_other = va(REMOVE, json!({ "s": staff_b.id, "r": "staff", "v": a })).await?;
    assert_data(
        &removed_other,
        "removeRole",
        &json!(false),
        "an account of B",
    );

    // --- createStaff.
    let new_staff = |venue: Option<&str>| {
        json!({ "i": { "email": format!("new.{}@staff.example", uuid::Uuid::new_v4().simple()),
            "password": "a long enough test password", "role": "admin", "venueId": venue } })
    };
    let created = va(CREATE_STAFF, new_staff(Some(&a))).await?;
    assert_eq!(
        created["data"]["createStaff"]["roles"],
        json!([{ "role": "admin", "venue": a }]),
        "{created}"
    );
    let created_b = va(CREATE_STAFF, new_staff(Some(&b))).await?;
    assert_code(&created_b, "NOT_FOUND", "creating staff for venue B");
    let created_all = va(CREATE_STAFF, new_staff(None)).await?;
    assert_code(&created_all, "FORBIDDEN", "creating a global admin");

    // --- createApiKey.
    let key_for = |venues: Vec<&String>| json!({ "i": { "name": "partner", "venueIds": venues } });
    let made = va(CREATE_KEY, key_for(vec![&a])).await?;
    assert_eq!(
        made["data"]["createApiKey"]["apiKey"]["venues"],
        json!([a]),
        "{made}"
    );
    let made_b = va(CREATE_KEY, key_for(vec![&b])).await?;
    assert_code(&made_b, "NOT_FOUND", "a key for venue B");
    let made_ab = va(CREATE_KEY, key_for(vec![&a, &b])).await?;
    assert_code(&made_ab, "NOT_FOUND", "a key for venues A and B");

    // --- lists: the venue's entries only; none of no venue.
    let staff_list = va(STAFF, json!({})).await?;
    let seen = ids(&staff_list, "staffAccounts");
    assert!(
        seen.contains(&staff_a.id) && seen.contains(&admin_a.id),
        "{staff_list}"
    );
    for hidden in [&staff_b.id, &staff_all.id, &global.id] {
        assert!(!seen.contains(hidden), "{hidden} shown: {staff_list}");
    }
    for account in staff_list["data"]["staffAccounts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for role in account["roles"].as_array().into_iter().flatten() {
            assert_eq!(
                role["venue"],
                json!(a),
                "a role elsewhere shown: {staff_list}"
            );
        }
    }
    let key_list = va(KEYS, json!({})).await?;
    let seen = ids(&key_list, "apiKeys");
    assert!(
        seen.contains(&key_a) && seen.contains(&key_ab),
        "{key_list}"
    );
    assert!(!seen.contains(&key_b), "{key_list}");
    for key in key_list["data"]["apiKeys"].as_array().into_iter().flatten() {
        assert_eq!(key["venues"], json!([a]), "another venue shown: {key_list}");
    }
    let audit = va(AUDIT, json!({})).await?;
    let objects: Vec<&str> = audit["data"]["auditLog"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["objects"].as_array().into_iter().flatten())
        .filter_map(|o| o["object"].as_str())
        .collect();
    assert!(objects.contains(&"marker:0"), "{audit}");
    assert!(
        !objects.contains(&"marker:1") && !objects.contains(&"marker:2"),
        "{audit}"
    );
    assert!(
        venues_of(&audit, "auditLog").iter().all(|v| *v == json!(a)),
        "{audit}"
    );
    let alert_list = va(ALERTS, json!({})).await?;
    assert!(
        ids(&alert_list, "alerts").contains(&alert_a),
        "{alert_list}"
    );
    assert!(
        venues_of(&alert_list, "alerts")
            .iter()
            .all(|v| *v == json!(a)),
        "{alert_list}"
    );
    let breach_list = va(BREACHES, json!({})).await?;
    assert_eq!(
        ids(&breach_list, "breaches"),
        vec![breach_a.clone()],
        "{breach_list}"
    );

    // --- acknowledgeAlert.
    let acknowledged = va(ACKNOWLEDGE, json!({ "id": alert_a })).await?;
    assert_eq!(
        acknowledged["data"]["acknowledgeAlert"]["status"], "ACKNOWLEDGED",
        "{acknowledged}"
    );
    for other in [&alert_b, &alert_global] {
        let refused = va(ACKNOWLEDGE, json!({ "id": other })).await?;
        assert_code(&refused, "NOT_FOUND", "acknowledging another venue's alert");
    }

    // --- liftHold: venue B's staff and the system stay held.
    let lifted = va(LIFT, json!({ "p": format!("user:{}", staff_a.id) })).await?;
    assert_data(&lifted, "liftHold", &json!(true), "a hold in its venue");
    for other in [format!("user:{}", staff_b.id), "system".to_owned()] {
        let kept = va(LIFT, json!({ "p": other })).await?;
        assert_data(&kept, "liftHold", &json!(false), "a hold elsewhere");
        assert!(
            store.principal_hold(&other, app.now())?.is_some(),
            "{other}"
        );
    }

    // --- recordBreach, reportBreachToAuthority, notifyBreach.
    let recorded = va(RECORD, json!({ "i": breach(Some(a.as_str())) })).await?;
    assert_eq!(
        recorded["data"]["recordBreach"]["venueId"],
        json!(a),
        "{recorded}"
    );
    let recorded_b = va(RECORD, json!({ "i": breach(Some(b.as_str())) })).await?;
    assert_code(&recorded_b, "NOT_FOUND", "a breach of venue B");
    let recorded_all = va(RECORD, json!({ "i": breach(None) })).await?;
    assert_code(&recorded_all, "FORBIDDEN", "a breach of no venue");
    let reported = va(REPORT, json!({ "id": breach_a })).await?;
    assert!(
        reported["data"]["reportBreachToAuthority"]["reportedToAuthorityAt"].is_string(),
        "{reported}"
    );
    let window =
        json!({ "venueId": a, "from": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z" });
    let notified = va(NOTIFY, json!({ "id": breach_a, "a": window })).await?;
    assert_data(
        &notified,
        "notifyBreach",
        &json!(0),
        "notifying for its venue",
    );
    for other in [&breach_b, &breach_global] {
        let refused = va(REPORT, json!({ "id": other })).await?;
        assert_code(&refused, "NOT_FOUND", "reporting another venue's breach");
        let refused = va(NOTIFY, json!({ "id": other, "a": window })).await?;
        assert_code(
            &refused,
            "NOT_FOUND",
            "notifying for another venue's breach",
        );
    }

    // --- revokeApiKey: its own key; another venue's is as unknown; a key
    // that also serves venue B is not its alone to revoke.
    let revoked = va(REVOKE_KEY, json!({ "id": key_a })).await?;
    assert_data(&revoked, "revokeApiKey", &json!(true), "its venue's key");
    let revoked_b = va(REVOKE_KEY, json!({ "id": key_b })).await?;
    assert_data(&revoked_b, "revokeApiKey", &json!(false), "venue B's key");
    let revoked_ab = va(REVOKE_KEY, json!({ "id": key_ab })).await?;
    assert_code(&revoked_ab, "FORBIDDEN", "a key of venues A and B");
    let all_keys = g(KEYS, json!({})).await?;
    for key in all_keys["data"]["apiKeys"].as_array().into_iter().flatten() {
        if key["id"] == json!(key_b) || key["id"] == json!(key_ab) {
            assert!(key["revokedAt"].is_null(), "{all_keys}");
        }
    }

    // --- unlockLogin.
    let unlocked = va(UNLOCK, json!({ "e": staff_a.email })).await?;
    assert_data(
        &unlocked,
        "unlockLogin",
        &json!(true),
        "its venue's account",
    );
    for other in [
        &staff_b.email,
        &staff_all.email,
        &"nobody@staff.example".to_owned(),
    ] {
        let refused = va(UNLOCK, json!({ "e": other })).await?;
        assert_code(&refused, "FORBIDDEN", "unlocking an account elsewhere");
    }

    // --- setStaffActive, last: it ends sessions.
    let kept_b = va(SET_ACTIVE, json!({ "s": staff_b.id, "a": false })).await?;
    assert_data(
        &kept_b,
        "setStaffActive",
        &json!(false),
        "venue B's account",
    );
    let kept_all = va(SET_ACTIVE, json!({ "s": staff_all.id, "a": false })).await?;
    assert_data(
        &kept_all,
        "setStaffActive",
        &json!(false),
        "a global account",
    );
    let kept_global_admin = va(SET_ACTIVE, json!({ "s": global.id, "a": false })).await?;
    assert_data(
        &kept_global_admin,
        "setStaffActive",
        &json!(false),
        "the global admin",
    );
    let everyone = g(STAFF, json!({})).await?;
    let untouched = [&staff_b.id, &staff_all.id, &global.id];
    for account in everyone["data"]["staffAccounts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if untouched.iter().any(|id| account["id"] == json!(id)) {
            assert_eq!(account["active"], true, "{everyone}");
        }
    }
    let deactivated = va(SET_ACTIVE, json!({ "s": staff_a.id, "a": false })).await?;
    assert_data(
        &deactivated,
        "setStaffActive",
        &json!(true),
        "its venue's account",
    );

    // A manager of the venue is no admin anywhere.
    for (query, variables) in [
        (STAFF, json!({})),
        (ASSIGN, json!({ "s": manager_a.id, "r": "admin", "v": a })),
        (CREATE_KEY, key_for(vec![&a])),
    ] {
        let refused = app.gql_as(&manager_a.token, query, variables).await?;
        assert_code(&refused, "FORBIDDEN", "a manager administering");
    }
    Ok(())
}
both_backends!(
    every_admin_operation_stays_within_the_venues_of_a_venue_bound_admin,
    every_admin_operation_stays_within_the_venues_of_a_venue_bound_admin
);

/// The admin of every venue still administers everything, and is the only
/// one who grants `*`.
async fn the_admin_of_every_venue_still_does_everything(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let a = app.venue_id("one-table").await?;
    let b = app.venue_id("lunch-room").await?;
    let global = account(&app, "admin", None).await?;
    let staff_b = account(&app, "staff", Some("lunch-room")).await?;
    let staff_all = account(&app, "staff", None).await?;
    let promoted = account(&app, "admin", Some("one-table")).await?;
    let g = |query: &'static str, variables: Value| {
        let token = global.token.clone();
        let app = &app;
        async move { app.gql_as(&token, query, variables).await }
    };

    let store = app.store().await?;
    store.audit(
        &[store::AuditEvent {
            principal: "system".to_owned(),
            action: store::AuditAction::Read,
            object: "marker:none".to_owned(),
            fields: "name".to_owned(),
            venue_id: None,
        }],
        app.now(),
    )?;
    let raised = store.raise_alert(
        &store::NewAlert {
            rule: "bulk_read".to_owned(),
            principal: "system".to_owned(),
            venue_id: None,
            observed: 1000,
        },
        &store::AlertNotices::default(),
        app.now(),
    )?;
    store.hold_principal(
        &format!("user:{}", staff_b.id),
        "suspended",
        None,
        &raised.id,
        app.now(),
    )?;

    let granted = g(ASSIGN, json!({ "s": promoted.id, "r": "admin", "v": null })).await?;
    assert_data(&granted, "assignRole", &json!(true), "granting every venue");
    // The promoted admin now reaches venue B and no venue too.
    let reach = app.gql_as(&promoted.token, STAFF, json!({})).await?;
    assert!(
        ids(&reach, "staffAccounts").contains(&staff_all.id),
        "{reach}"
    );
    let in_b = g(ASSIGN, json!({ "s": staff_b.id, "r": "manager", "v": b })).await?;
    assert_data(&in_b, "assignRole", &json!(true), "granting in venue B");
    let removed = g(
        REMOVE,
        json!({ "s": staff_all.id, "r": "staff", "v": null }),
    )
    .await?;
    assert_data(
        &removed,
        "removeRole",
        &json!(true),
        "removing a global role",
    );
    let created = g(
        CREATE_STAFF,
        json!({ "i": { "email": "all.venues@staff.example", "password": "a long enough test password",
            "role": "admin", "venueId": null } }),
    )
    .await?;
    assert_eq!(
        created["data"]["createStaff"]["roles"],
        json!([{ "role": "admin", "venue": "*" }]),
        "{created}"
    );
    let key = g(
        CREATE_KEY,
        json!({ "i": { "name": "partner", "venueIds": [a, b] } }),
    )
    .await?;
    let key_id = key["data"]["createApiKey"]["apiKey"]["id"].clone();
    assert!(key_id.is_string(), "{key}");

    let staff = g(STAFF, json!({})).await?;
    let seen = ids(&staff, "staffAccounts");
    for account in [&global.id, &staff_b.id, &staff_all.id, &promoted.id] {
        assert!(seen.contains(account), "{account} missing: {staff}");
    }
    let keys = g(KEYS, json!({})).await?;
    assert!(
        keys["data"]["apiKeys"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["id"] == key_id),
        "{keys}"
    );
    let audit = g(AUDIT, json!({})).await?;
    assert!(
        audit["data"]["auditLog"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["objects"][0]["object"] == "marker:none" && e["venueId"].is_null()),
        "{audit}"
    );
    let alerts = g(ALERTS, json!({})).await?;
    assert!(ids(&alerts, "alerts").contains(&raised.id), "{alerts}");
    let acknowledged = g(ACKNOWLEDGE, json!({ "id": raised.id })).await?;
    assert_eq!(
        acknowledged["data"]["acknowledgeAlert"]["status"], "ACKNOWLEDGED",
        "{acknowledged}"
    );
    let lifted = g(LIFT, json!({ "p": format!("user:{}", staff_b.id) })).await?;
    assert_data(
        &lifted,
        "liftHold",
        &json!(true),
        "lifting a hold in venue B",
    );
    let recorded = g(RECORD, json!({ "i": breach(None) })).await?;
    let breach_id = recorded["data"]["recordBreach"]["id"].clone();
    assert!(
        recorded["data"]["recordBreach"]["venueId"].is_null(),
        "{recorded}"
    );
    let recorded_b = g(RECORD, json!({ "i": breach(Some(b.as_str())) })).await?;
    assert_eq!(
        recorded_b["data"]["recordBreach"]["venueId"],
        json!(b),
        "{recorded_b}"
    );
    let listed = g(BREACHES, json!({})).await?;
    assert_eq!(ids(&listed, "breaches").len(), 2, "{listed}");
    let reported = g(REPORT, json!({ "id": breach_id })).await?;
    assert!(
        reported["data"]["reportBreachToAuthority"]["reportedToAuthorityAt"].is_string(),
        "{reported}"
    );
    let revoked = g(REVOKE_KEY, json!({ "id": key_id })).await?;
    assert_data(
        &revoked,
        "revokeApiKey",
        &json!(true),
        "a key of two venues",
    );
    let unlocked = g(UNLOCK, json!({ "e": "nobody@staff.example" })).await?;
    assert_data(&unlocked, "unlockLogin", &json!(true), "any address");
    let deactivated = g(SET_ACTIVE, json!({ "s": staff_all.id, "a": false })).await?;
    assert_data(
        &deactivated,
        "setStaffActive",
        &json!(true),
        "a global account",
    );
    Ok(())
}
both_backends!(
    the_admin_of_every_venue_still_does_everything,
    the_admin_of_every_venue_still_does_everything
);
