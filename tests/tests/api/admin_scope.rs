//! Administration is scoped: an admin bound to venues grants, creates,
//! revokes and reads only within them; `*` (every venue) and what belongs
//! to no venue are for admins of every venue. Every admin operation of the
//! schema, by a venue-bound admin, on its own venue, another venue and the
//! whole deployment; and the admin of every venue still does all of it.

use anyhow::{Context, Result};
use kluis_tests::{Backend, TestApp, both_backends, error_code, user_error_code};
use serde_json::{Value, json};

const ME: &str = "{ me { id } }";
const ASSIGN: &str = "mutation A($i: RoleChangeInput!) { assignRole(input: $i) { changed staff { id } userErrors { field code message } } }";
const REMOVE: &str = "mutation R($i: RoleChangeInput!) { removeRole(input: $i) { changed staff { id } userErrors { field code message } } }";
const CREATE_STAFF: &str = "mutation C($i: CreateStaffInput!) { createStaff(input: $i) { staff { id roles { role everyVenue venue { id } } } userErrors { field code message } } }";
const CREATE_KEY: &str = "mutation K($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id venues { id } } userErrors { field code message } } }";
const REVOKE_KEY: &str = "mutation R($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { revoked apiKey { id } userErrors { field code message } } }";
const SET_ACTIVE: &str = "mutation S($i: SetStaffActiveInput!) { setStaffActive(input: $i) { staff { id active } userErrors { field code message } } }";
const UNLOCK: &str = "mutation U($i: UnlockLoginInput!) { unlockLogin(input: $i) { unlocked userErrors { field code message } } }";
const STAFF: &str = "{ staffAccounts(first: 100) { totalCount edges { node { id email active roles { role everyVenue venue { id } } } } } }";
const KEYS: &str =
    "{ apiKeys(first: 100) { totalCount edges { node { id venues { id } revokedAt } } } }";
const AUDIT: &str =
    "{ auditLog(first: 100) { totalCount edges { node { venue { id } objects { object } } } } }";
const ALERTS: &str = "{ alerts(first: 100) { totalCount edges { node { id venue { id } } } } }";
const ACKNOWLEDGE: &str = "mutation A($i: AcknowledgeAlertInput!) { acknowledgeAlert(input: $i) { alert { id status } userErrors { field code message } } }";
const LIFT: &str = "mutation L($i: LiftHoldInput!) { liftHold(input: $i) { lifted userErrors { field code message } } }";
const BREACHES: &str = "{ breaches(first: 100) { totalCount edges { node { id venue { id } } } } }";
const RECORD: &str = "mutation B($i: RecordBreachInput!) { recordBreach(input: $i) { breach { id venue { id } } userErrors { field code message } } }";
const REPORT: &str = "mutation R($i: ReportBreachToAuthorityInput!) { reportBreachToAuthority(input: $i) { breach { id reportedToAuthorityAt } userErrors { field code message } } }";
const NOTIFY: &str = "mutation N($i: NotifyBreachInput!) { notifyBreach(input: $i) { notified breach { id } userErrors { field code message } } }";

/// A role change's variables; `role` as the schema spells it (`ADMIN`).
fn role(staff: &str, role: &str, venue: Option<&str>) -> Value {
    json!({ "i": { "staffId": staff, "role": role, "venueId": venue } })
}

fn notice(breach: &str, affected: &Value) -> Value {
    json!({ "i": { "id": breach, "affected": affected, "subject": "Notice", "message": "Dear {name}" } })
}

/// A staff account's principal, for `liftHold`.
fn held_staff(id: &str) -> Value {
    json!({ "i": { "principal": { "staffId": id } } })
}

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

/// The nodes of a page.
fn nodes<'a>(answer: &'a Value, list: &str) -> Vec<&'a Value> {
    answer["data"][list]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| &edge["node"])
        .collect()
}

fn ids(answer: &Value, list: &str) -> Vec<String> {
    nodes(answer, list)
        .into_iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

/// The venues the entries of a list belong to (`null` for none).
fn venues_of(answer: &Value, list: &str) -> Vec<Value> {
    nodes(answer, list)
        .into_iter()
        .map(|item| item["venue"]["id"].clone())
        .collect()
}

fn total(answer: &Value, list: &str) -> i64 {
    answer["data"][list]["totalCount"].as_i64().unwrap_or(-1)
}

/// A user error (not a top-level one) with `code` on `field`.
fn assert_user_error(answer: &Value, mutation: &str, code: &str, field: &[&str], what: &str) {
    assert!(answer["errors"].is_null(), "{what}: {answer}");
    assert_eq!(
        user_error_code(answer, mutation),
        Some(code),
        "{what}: {answer}"
    );
    assert_eq!(
        answer["data"][mutation]["userErrors"][0]["field"],
        json!(field),
        "{what}: {answer}"
    );
}

fn assert_code(answer: &Value, code: &str, what: &str) {
    assert_eq!(error_code(answer), Some(code), "{what}: {answer}");
}

/// A payload without errors whose `answer` field is `expected`.
fn assert_data(answer: &Value, mutation: &str, field: &str, expected: &Value, what: &str) {
    assert!(answer["errors"].is_null(), "{what}: {answer}");
    assert_eq!(
        answer["data"][mutation]["userErrors"],
        json!([]),
        "{what}: {answer}"
    );
    assert_eq!(
        &answer["data"][mutation][field], expected,
        "{what}: {answer}"
    );
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
            recorded["data"]["recordBreach"]["breach"]["venue"]["id"],
            json!(venue),
            "{recorded}"
        );
        breaches.push(
            recorded["data"]["recordBreach"]["breach"]["id"]
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
    let escalate = va(ASSIGN, role(&admin_a.id, "ADMIN", None)).await?;
    assert_code(&escalate, "FORBIDDEN", "a venue admin making itself global");
    let to_b = va(ASSIGN, role(&admin_a.id, "ADMIN", Some(&b))).await?;
    assert_user_error(
        &to_b,
        "assignRole",
        "NOT_FOUND",
        &["input", "venueId"],
        "a venue admin granting itself venue B",
    );
    let own = va(ASSIGN, role(&staff_a.id, "MANAGER", Some(&a))).await?;
    assert_data(
        &own,
        "assignRole",
        "changed",
        &json!(true),
        "granting in its venue",
    );
    let again = va(ASSIGN, role(&staff_a.id, "MANAGER", Some(&a))).await?;
    assert_data(
        &again,
        "assignRole",
        "changed",
        &json!(false),
        "granting it twice",
    );
    let unknown = va(
        ASSIGN,
        role(&uuid::Uuid::new_v4().to_string(), "STAFF", Some(&a)),
    )
    .await?;
    for (answer, what) in [
        (
            va(ASSIGN, role(&staff_b.id, "STAFF", Some(&a))).await?,
            "an account of venue B",
        ),
        (
            va(ASSIGN, role(&staff_all.id, "STAFF", Some(&a))).await?,
            "an account of every venue",
        ),
        (unknown, "an unknown account"),
    ] {
        assert_user_error(
            &answer,
            "assignRole",
            "NOT_FOUND",
            &["input", "staffId"],
            what,
        );
        assert!(
            answer["data"]["assignRole"]["staff"].is_null(),
            "{what}: {answer}"
        );
    }
    // Still bound to venue A: venue B's staff stay out of sight.
    let listed = va(STAFF, json!({})).await?;
    assert!(
        !ids(&listed, "staffAccounts").contains(&staff_b.id),
        "{listed}"
    );

    // --- removeRole.
    let removed = va(REMOVE, role(&staff_a.id, "MANAGER", Some(&a))).await?;
    assert_data(
        &removed,
        "removeRole",
        "changed",
        &json!(true),
        "removing in its venue",
    );
    let removed_again = va(REMOVE, role(&staff_a.id, "MANAGER", Some(&a))).await?;
    assert_data(
        &removed_again,
        "removeRole",
        "changed",
        &json!(false),
        "a role the account no longer holds",
    );
    let removed_b = va(REMOVE, role(&staff_b.id, "STAFF", Some(&b))).await?;
    assert_user_error(
        &removed_b,
        "removeRole",
        "NOT_FOUND",
        &["input", "venueId"],
        "removing a role in venue B",
    );
    let removed_all = va(REMOVE, role(&staff_all.id, "STAFF", None)).await?;
    assert_code(&removed_all, "FORBIDDEN", "removing a role in every venue");
    // A role in A taken from an account the admin does not reach: as if
    // the account did not exist.
    let removed_other = va(REMOVE, role(&staff_b.id, "STAFF", Some(&a))).await?;
    let removed_unknown = va(
        REMOVE,
        role(&uuid::Uuid::new_v4().to_string(), "STAFF", Some(&a)),
    )
    .await?;
    for answer in [&removed_other, &removed_unknown] {
        assert_user_error(
            answer,
            "removeRole",
            "NOT_FOUND",
            &["input", "staffId"],
            "out of reach",
        );
    }
    assert_eq!(
        removed_other["data"]["removeRole"]["userErrors"][0]["message"],
        removed_unknown["data"]["removeRole"]["userErrors"][0]["message"],
        "foreign and unknown accounts look alike"
    );

    // --- createStaff.
    let new_staff = |venue: Option<&str>| {
        json!({ "i": { "email": format!("new.{}@staff.example", uuid::Uuid::new_v4().simple()),
            "password": "a long enough test password", "role": "ADMIN", "venueId": venue } })
    };
    let created = va(CREATE_STAFF, new_staff(Some(&a))).await?;
    assert_eq!(
        created["data"]["createStaff"]["staff"]["roles"],
        json!([{ "role": "ADMIN", "everyVenue": false, "venue": { "id": a } }]),
        "{created}"
    );
    let created_b = va(CREATE_STAFF, new_staff(Some(&b))).await?;
    assert_user_error(
        &created_b,
        "createStaff",
        "NOT_FOUND",
        &["input", "venueId"],
        "creating staff for venue B",
    );
    let created_all = va(CREATE_STAFF, new_staff(None)).await?;
    assert_code(&created_all, "FORBIDDEN", "creating a global admin");

    // --- createApiKey.
    let key_for = |venues: Vec<&String>| json!({ "i": { "name": "partner", "venueIds": venues } });
    let made = va(CREATE_KEY, key_for(vec![&a])).await?;
    assert_eq!(
        made["data"]["createApiKey"]["apiKey"]["venues"],
        json!([{ "id": a }]),
        "{made}"
    );
    let made_b = va(CREATE_KEY, key_for(vec![&b])).await?;
    assert_user_error(
        &made_b,
        "createApiKey",
        "NOT_FOUND",
        &["input", "venueIds"],
        "a key for venue B",
    );
    assert!(made_b["data"]["createApiKey"]["key"].is_null(), "{made_b}");
    let made_ab = va(CREATE_KEY, key_for(vec![&a, &b])).await?;
    assert_user_error(
        &made_ab,
        "createApiKey",
        "NOT_FOUND",
        &["input", "venueIds"],
        "a key for venues A and B",
    );

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
    assert_eq!(
        total(&staff_list, "staffAccounts"),
        i64::try_from(seen.len())?,
        "the count is of venue A's accounts: {staff_list}"
    );
    for account in nodes(&staff_list, "staffAccounts") {
        for role in account["roles"].as_array().into_iter().flatten() {
            assert_eq!(
                role["venue"]["id"],
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
    assert_eq!(total(&key_list, "apiKeys"), 3, "{key_list}");
    for key in nodes(&key_list, "apiKeys") {
        assert_eq!(
            key["venues"],
            json!([{ "id": a }]),
            "another venue shown: {key_list}"
        );
    }
    let audit = va(AUDIT, json!({})).await?;
    assert_eq!(
        total(&audit, "auditLog"),
        i64::try_from(nodes(&audit, "auditLog").len())?,
        "{audit}"
    );
    let objects: Vec<&str> = nodes(&audit, "auditLog")
        .into_iter()
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
    assert_eq!(
        total(&alert_list, "alerts"),
        i64::try_from(nodes(&alert_list, "alerts").len())?,
        "{alert_list}"
    );
    let breach_list = va(BREACHES, json!({})).await?;
    assert_eq!(
        ids(&breach_list, "breaches"),
        vec![breach_a.clone()],
        "{breach_list}"
    );
    assert_eq!(total(&breach_list, "breaches"), 1, "{breach_list}");

    // --- acknowledgeAlert.
    let acknowledged = va(ACKNOWLEDGE, json!({ "i": { "id": alert_a } })).await?;
    assert_eq!(
        acknowledged["data"]["acknowledgeAlert"]["alert"]["status"], "ACKNOWLEDGED",
        "{acknowledged}"
    );
    for other in [&alert_b, &alert_global, &"no-such-alert".to_owned()] {
        let refused = va(ACKNOWLEDGE, json!({ "i": { "id": other } })).await?;
        assert_user_error(
            &refused,
            "acknowledgeAlert",
            "NOT_FOUND",
            &["input", "id"],
            "acknowledging another venue's alert",
        );
    }

    // --- liftHold: venue B's staff and the system stay held.
    let lifted = va(LIFT, held_staff(&staff_a.id)).await?;
    assert_data(
        &lifted,
        "liftHold",
        "lifted",
        &json!(true),
        "a hold in its venue",
    );
    let kept = va(LIFT, held_staff(&staff_b.id)).await?;
    assert_data(
        &kept,
        "liftHold",
        "lifted",
        &json!(false),
        "a hold elsewhere",
    );
    for other in [format!("user:{}", staff_b.id), "system".to_owned()] {
        assert!(
            store.principal_hold(&other, app.now())?.is_some(),
            "{other}"
        );
    }

    // --- recordBreach, reportBreachToAuthority, notifyBreach.
    let recorded = va(RECORD, json!({ "i": breach(Some(a.as_str())) })).await?;
    assert_eq!(
        recorded["data"]["recordBreach"]["breach"]["venue"]["id"],
        json!(a),
        "{recorded}"
    );
    let recorded_b = va(RECORD, json!({ "i": breach(Some(b.as_str())) })).await?;
    assert_user_error(
        &recorded_b,
        "recordBreach",
        "NOT_FOUND",
        &["input", "venueId"],
        "a breach of venue B",
    );
    let recorded_all = va(RECORD, json!({ "i": breach(None) })).await?;
    assert_code(&recorded_all, "FORBIDDEN", "a breach of no venue");
    let reported = va(REPORT, json!({ "i": { "id": breach_a } })).await?;
    assert!(
        reported["data"]["reportBreachToAuthority"]["breach"]["reportedToAuthorityAt"].is_string(),
        "{reported}"
    );
    let window =
        json!({ "venueId": a, "from": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z" });
    let notified = va(NOTIFY, notice(&breach_a, &window)).await?;
    assert_data(
        &notified,
        "notifyBreach",
        "notified",
        &json!(0),
        "notifying for its venue",
    );
    let window_b =
        json!({ "venueId": b, "from": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z" });
    let refused = va(NOTIFY, notice(&breach_a, &window_b)).await?;
    assert_user_error(
        &refused,
        "notifyBreach",
        "NOT_FOUND",
        &["input", "affected", "venueId"],
        "notifying venue B's guests of its own breach",
    );
    for other in [&breach_b, &breach_global, &"no-such-breach".to_owned()] {
        let refused = va(REPORT, json!({ "i": { "id": other } })).await?;
        assert_user_error(
            &refused,
            "reportBreachToAuthority",
            "NOT_FOUND",
            &["input", "id"],
            "reporting another venue's breach",
        );
        let refused = va(NOTIFY, notice(other, &window)).await?;
        assert_user_error(
            &refused,
            "notifyBreach",
            "NOT_FOUND",
            &["input", "id"],
            "notifying for another venue's breach",
        );
    }

    // --- revokeApiKey: its own key; another venue's is as unknown; a key
    // that also serves venue B is not its alone to revoke.
    let revoked = va(REVOKE_KEY, json!({ "i": { "id": key_a } })).await?;
    assert_data(
        &revoked,
        "revokeApiKey",
        "revoked",
        &json!(true),
        "its venue's key",
    );
    for other in [&key_b, &"kls_nosuchkey".to_owned()] {
        let revoked_b = va(REVOKE_KEY, json!({ "i": { "id": other } })).await?;
        assert_user_error(
            &revoked_b,
            "revokeApiKey",
            "NOT_FOUND",
            &["input", "id"],
            "venue B's key",
        );
    }
    let revoked_ab = va(REVOKE_KEY, json!({ "i": { "id": key_ab } })).await?;
    assert_code(&revoked_ab, "FORBIDDEN", "a key of venues A and B");
    let all_keys = g(KEYS, json!({})).await?;
    for key in nodes(&all_keys, "apiKeys") {
        if key["id"] == json!(key_b) || key["id"] == json!(key_ab) {
            assert!(key["revokedAt"].is_null(), "{all_keys}");
        }
    }

    // --- unlockLogin.
    let unlocked = va(UNLOCK, json!({ "i": { "email": staff_a.email } })).await?;
    assert_data(
        &unlocked,
        "unlockLogin",
        "unlocked",
        &json!(true),
        "its venue's account",
    );
    for other in [
        &staff_b.email,
        &staff_all.email,
        &"nobody@staff.example".to_owned(),
    ] {
        let refused = va(UNLOCK, json!({ "i": { "email": other } })).await?;
        assert_code(&refused, "FORBIDDEN", "unlocking an account elsewhere");
    }

    // --- setStaffActive, last: it ends sessions.
    let deactivate = |id: &str| json!({ "i": { "staffId": id, "active": false } });
    for (id, what) in [
        (&staff_b.id, "venue B's account"),
        (&staff_all.id, "a global account"),
        (&global.id, "the global admin"),
        (&uuid::Uuid::new_v4().to_string(), "an unknown account"),
    ] {
        let kept = va(SET_ACTIVE, deactivate(id)).await?;
        assert_user_error(
            &kept,
            "setStaffActive",
            "NOT_FOUND",
            &["input", "staffId"],
            what,
        );
    }
    let everyone = g(STAFF, json!({})).await?;
    let untouched = [&staff_b.id, &staff_all.id, &global.id];
    for account in nodes(&everyone, "staffAccounts") {
        if untouched.iter().any(|id| account["id"] == json!(id)) {
            assert_eq!(account["active"], true, "{everyone}");
        }
    }
    let deactivated = va(SET_ACTIVE, deactivate(&staff_a.id)).await?;
    assert_eq!(
        deactivated["data"]["setStaffActive"]["staff"],
        json!({ "id": staff_a.id, "active": false }),
        "its venue's account: {deactivated}"
    );

    // A manager of the venue is no admin anywhere.
    for (query, variables) in [
        (STAFF, json!({})),
        (ASSIGN, role(&manager_a.id, "ADMIN", Some(&a))),
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

    let granted = g(ASSIGN, role(&promoted.id, "ADMIN", None)).await?;
    assert_data(
        &granted,
        "assignRole",
        "changed",
        &json!(true),
        "granting every venue",
    );
    // The promoted admin now reaches venue B and no venue too.
    let reach = app.gql_as(&promoted.token, STAFF, json!({})).await?;
    assert!(
        ids(&reach, "staffAccounts").contains(&staff_all.id),
        "{reach}"
    );
    let in_b = g(ASSIGN, role(&staff_b.id, "MANAGER", Some(&b))).await?;
    assert_data(
        &in_b,
        "assignRole",
        "changed",
        &json!(true),
        "granting in venue B",
    );
    let removed = g(REMOVE, role(&staff_all.id, "STAFF", None)).await?;
    assert_data(
        &removed,
        "removeRole",
        "changed",
        &json!(true),
        "removing a global role",
    );
    let created = g(
        CREATE_STAFF,
        json!({ "i": { "email": "all.venues@staff.example", "password": "a long enough test password",
            "role": "ADMIN", "venueId": null } }),
    )
    .await?;
    assert_eq!(
        created["data"]["createStaff"]["staff"]["roles"],
        json!([{ "role": "ADMIN", "everyVenue": true, "venue": null }]),
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
        nodes(&keys, "apiKeys").iter().any(|k| k["id"] == key_id),
        "{keys}"
    );
    let audit = g(AUDIT, json!({})).await?;
    assert!(
        nodes(&audit, "auditLog")
            .iter()
            .any(|e| e["objects"][0]["object"] == "marker:none" && e["venue"].is_null()),
        "{audit}"
    );
    let alerts = g(ALERTS, json!({})).await?;
    assert!(ids(&alerts, "alerts").contains(&raised.id), "{alerts}");
    let acknowledged = g(ACKNOWLEDGE, json!({ "i": { "id": raised.id } })).await?;
    assert_eq!(
        acknowledged["data"]["acknowledgeAlert"]["alert"]["status"], "ACKNOWLEDGED",
        "{acknowledged}"
    );
    let lifted = g(LIFT, held_staff(&staff_b.id)).await?;
    assert_data(
        &lifted,
        "liftHold",
        "lifted",
        &json!(true),
        "lifting a hold in venue B",
    );
    let recorded = g(RECORD, json!({ "i": breach(None) })).await?;
    let breach_id = recorded["data"]["recordBreach"]["breach"]["id"].clone();
    assert!(
        recorded["data"]["recordBreach"]["breach"]["venue"].is_null(),
        "{recorded}"
    );
    let recorded_b = g(RECORD, json!({ "i": breach(Some(b.as_str())) })).await?;
    assert_eq!(
        recorded_b["data"]["recordBreach"]["breach"]["venue"]["id"],
        json!(b),
        "{recorded_b}"
    );
    let listed = g(BREACHES, json!({})).await?;
    assert_eq!(ids(&listed, "breaches").len(), 2, "{listed}");
    assert_eq!(total(&listed, "breaches"), 2, "{listed}");
    let reported = g(REPORT, json!({ "i": { "id": breach_id } })).await?;
    assert!(
        reported["data"]["reportBreachToAuthority"]["breach"]["reportedToAuthorityAt"].is_string(),
        "{reported}"
    );
    let revoked = g(REVOKE_KEY, json!({ "i": { "id": key_id } })).await?;
    assert_data(
        &revoked,
        "revokeApiKey",
        "revoked",
        &json!(true),
        "a key of two venues",
    );
    let unlocked = g(UNLOCK, json!({ "i": { "email": "nobody@staff.example" } })).await?;
    assert_data(
        &unlocked,
        "unlockLogin",
        "unlocked",
        &json!(true),
        "any address",
    );
    let deactivated = g(
        SET_ACTIVE,
        json!({ "i": { "staffId": staff_all.id, "active": false } }),
    )
    .await?;
    assert_eq!(
        deactivated["data"]["setStaffActive"]["staff"]["active"],
        json!(false),
        "a global account: {deactivated}"
    );
    Ok(())
}
both_backends!(
    the_admin_of_every_venue_still_does_everything,
    the_admin_of_every_venue_still_does_everything
);

/// Pages of every admin list, walked by a venue-bound admin: nothing of
/// another venue on any page, and counts of its venue alone. Cursors the
/// lists did not hand out, roles the schema does not know and oversized
/// inputs are refused.
async fn pages_counts_and_inputs_stay_within_bounds(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let a = app.venue_id("one-table").await?;
    let global = account(&app, "admin", None).await?;
    let admin_a = account(&app, "admin", Some("one-table")).await?;
    let mut in_a = vec![admin_a.id.clone()];
    for _ in 0..3 {
        in_a.push(account(&app, "staff", Some("one-table")).await?.id);
    }
    let mut elsewhere = vec![global.id.clone()];
    for _ in 0..2 {
        elsewhere.push(account(&app, "staff", Some("lunch-room")).await?.id);
    }

    // Walk staffAccounts one at a time.
    let page_query = "query P($a: String) { staffAccounts(first: 1, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .gql_as(&admin_a.token, page_query, json!({ "a": after }))
            .await?;
        assert!(page["errors"].is_null(), "{page}");
        assert_eq!(
            total(&page, "staffAccounts"),
            4,
            "venue A's count only: {page}"
        );
        seen.extend(ids(&page, "staffAccounts"));
        let info = &page["data"]["staffAccounts"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break;
        }
        after = info["endCursor"].clone();
        assert!(seen.len() <= 4, "{page}");
    }
    seen.sort();
    in_a.sort();
    assert_eq!(seen, in_a);
    let everything = app.gql_as(&global.token, STAFF, json!({})).await?;
    assert_eq!(total(&everything, "staffAccounts"), 7, "{everything}");
    for id in &elsewhere {
        assert!(!seen.contains(id), "{id}");
    }

    // Alerts and breaches of both venues, several tripped at the same
    // instant: walked two at a time, venue A's only, each once.
    let b = app.venue_id("lunch-room").await?;
    let store = app.store().await?;
    for (n, venue) in [&a, &a, &a, &a, &a, &b, &b, &b].into_iter().enumerate() {
        store.raise_alert(
            &store::NewAlert {
                rule: "bulk_read".to_owned(),
                principal: format!("user:paged-{n}"),
                venue_id: Some(venue.clone()),
                observed: 1000,
            },
            &store::AlertNotices::default(),
            app.now(),
        )?;
    }
    for venue in [&a, &a, &a, &b] {
        let recorded = app
            .gql_as(
                &global.token,
                RECORD,
                json!({ "i": breach(Some(venue.as_str())) }),
            )
            .await?;
        assert!(recorded["errors"].is_null(), "{recorded}");
    }
    for (list, expected) in [("alerts", 5), ("breaches", 3)] {
        let query = format!(
            "query P($a: String) {{ {list}(first: 2, after: $a) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ id venue {{ id }} }} }} }} }}"
        );
        let (mut after, mut seen) = (Value::Null, Vec::new());
        loop {
            let page = app
                .gql_as(&admin_a.token, &query, json!({ "a": after }))
                .await?;
            assert_eq!(total(&page, list), expected, "{page}");
            assert!(
                venues_of(&page, list).iter().all(|v| *v == json!(a)),
                "{page}"
            );
            seen.extend(ids(&page, list));
            let info = &page["data"][list]["pageInfo"];
            if info["hasNextPage"] != json!(true) {
                break;
            }
            after = info["endCursor"].clone();
            assert!(seen.len() < 10, "{page}");
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{list}: each once");
        assert_eq!(
            i64::try_from(seen.len())?,
            expected,
            "{list}: every one of venue A"
        );
    }

    // Forged cursors: not base64, not a position, a negative one.
    let encode = base64url;
    for (query, cursor) in [
        (
            "query P($a: String) { staffAccounts(after: $a) { totalCount } }",
            "not a cursor!".to_owned(),
        ),
        (
            "query P($a: String) { staffAccounts(after: $a) { totalCount } }",
            encode("-1"),
        ),
        (
            "query P($a: String) { apiKeys(after: $a) { totalCount } }",
            encode("1 OR 1=1"),
        ),
        (
            "query P($a: String) { breaches(after: $a) { totalCount } }",
            encode("x"),
        ),
        (
            "query P($a: String) { auditLog(after: $a) { totalCount } }",
            encode("0"),
        ),
        (
            "query P($a: String) { auditLog(after: $a) { totalCount } }",
            encode("seq"),
        ),
        (
            "query P($a: String) { alerts(after: $a) { totalCount } }",
            encode("yesterday|x"),
        ),
        (
            "query P($a: String) { alerts(after: $a) { totalCount } }",
            encode("2026-01-01T00:00:00Z"),
        ),
    ] {
        let refused = app
            .gql_as(&global.token, query, json!({ "a": cursor }))
            .await?;
        assert_code(&refused, "BAD_USER_INPUT", query);
    }
    // A cursor past the end is an empty page, with the count of the list.
    let far = app
        .gql_as(
            &admin_a.token,
            "query P($a: String) { staffAccounts(after: $a) { totalCount edges { node { id } } } }",
            json!({ "a": encode("4000000000") }),
        )
        .await?;
    assert_eq!(ids(&far, "staffAccounts"), Vec::<String>::new(), "{far}");
    assert_eq!(total(&far, "staffAccounts"), 4, "{far}");

    // Roles the schema does not know never reach the resolver.
    for wrong in ["GUEST", "ANONYMOUS", "admin", "SUPERUSER"] {
        let refused = app
            .gql_as(&global.token, ASSIGN, role(&admin_a.id, wrong, Some(&a)))
            .await?;
        assert!(refused["errors"].is_array(), "{wrong}: {refused}");
        assert!(refused["data"].is_null(), "{wrong}: {refused}");
    }

    // Oversized inputs: user errors on the field, or refused filters.
    let huge = "x".repeat(10_000);
    let key = app
        .gql_as(
            &global.token,
            CREATE_KEY,
            json!({ "i": { "name": huge, "venueIds": [a], "expiresInDays": 100_000 } }),
        )
        .await?;
    let fields: Vec<String> = kluis_tests::user_errors(&key, "createApiKey")
        .into_iter()
        .map(|(field, code)| format!("{field} {code}"))
        .collect();
    assert_eq!(
        fields,
        ["input.name INVALID", "input.expiresInDays INVALID"],
        "{key}"
    );
    let many: Vec<String> = (0..101).map(|_| a.clone()).collect();
    let key = app
        .gql_as(
            &global.token,
            CREATE_KEY,
            json!({ "i": { "name": "p", "venueIds": many } }),
        )
        .await?;
    assert_user_error(
        &key,
        "createApiKey",
        "INVALID",
        &["input", "venueIds"],
        "101 venues",
    );
    let lift = app.gql_as(&global.token, LIFT, held_staff(&huge)).await?;
    assert_user_error(
        &lift,
        "liftHold",
        "INVALID",
        &["input", "principal", "staffId"],
        "a huge id",
    );
    let both = app
        .gql_as(
            &global.token,
            LIFT,
            json!({ "i": { "principal": { "staffId": admin_a.id, "apiKeyId": "kls_x" } } }),
        )
        .await?;
    assert!(both["errors"].is_array(), "exactly one principal: {both}");
    let unlock = app
        .gql_as(&global.token, UNLOCK, json!({ "i": { "email": huge } }))
        .await?;
    assert_user_error(
        &unlock,
        "unlockLogin",
        "INVALID",
        &["input", "email"],
        "a huge address",
    );
    let audit = app
        .gql_as(
            &global.token,
            "query A($p: String) { auditLog(principal: $p) { totalCount } }",
            json!({ "p": huge }),
        )
        .await?;
    assert_code(&audit, "BAD_USER_INPUT", "a huge principal filter");
    let staff = app
        .gql_as(
            &global.token,
            CREATE_STAFF,
            json!({ "i": { "email": "not an address", "password": "short", "role": "STAFF", "venueId": "nope" } }),
        )
        .await?;
    let fields: Vec<String> = kluis_tests::user_errors(&staff, "createStaff")
        .into_iter()
        .map(|(field, code)| format!("{field} {code}"))
        .collect();
    assert_eq!(
        fields,
        [
            "input.email INVALID",
            "input.password INVALID",
            "input.venueId INVALID"
        ],
        "every field at fault at once: {staff}"
    );
    let twice = app
        .gql_as(
            &global.token,
            CREATE_STAFF,
            json!({ "i": { "email": admin_a.email, "password": "a long enough test password", "role": "STAFF", "venueId": a } }),
        )
        .await?;
    assert_user_error(
        &twice,
        "createStaff",
        "CONFLICT",
        &["input", "email"],
        "an address in use",
    );
    let guest_key = app
        .gql_as(
            &global.token,
            CREATE_KEY,
            json!({ "i": { "name": "p", "role": "GUEST", "venueIds": [a] } }),
        )
        .await?;
    assert!(guest_key["data"].is_null(), "{guest_key}");
    Ok(())
}
both_backends!(
    pages_counts_and_inputs_stay_within_bounds,
    pages_counts_and_inputs_stay_within_bounds
);

/// Base64url without padding, as cursors travel: forged cursors look like
/// real ones.
fn base64url(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, byte)| {
            acc | (u32::from(*byte) << (16 - 8 * i))
        });
        for i in 0..=chunk.len() {
            let index = (bits >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}
