use anyhow::Result;
use kluis_tests::{Backend, TestApp, both_backends, error_code, text, tomorrow_local};
use serde_json::{Value, json};

const PUBLISH: &str = "mutation P($v: ID!, $t: String!) { publishPrivacyNotice(venueId: $v, locale: \"en\", text: $t) { version sha256 } }";
const NOTICE: &str =
    "query N($v: ID!) { privacyNotice(venueId: $v, locale: \"en\") { version text sha256 } }";
const LEDGER: &str = "query T($t: String!) { reservationByToken(token: $t) { consents { purpose given channel noticeVersion noticeSha256 } } }";

fn message(answer: &Value) -> &str {
    answer["errors"][0]["message"].as_str().unwrap_or_default()
}

/// Tomorrow at a time of day in `lunch-room`'s time zone.
fn lunch(time: &str) -> Result<String> {
    tomorrow_local("Europe/Amsterdam", time)
}

async fn bookings_must_name_the_current_notice_version(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("lunch-room").await?;
    let manager = app.staff("manager", Some("lunch-room")).await?;
    let staff = app.staff("staff", Some("lunch-room")).await?;
    let guest = json!({ "name": "Nina Notice" });

    assert!(
        app.book("lunch-room", 12)
            .starts_at(&lunch("12:00")?)
            .guest(guest.clone())
            .answer()
            .await?
            .get("errors")
            .is_none(),
        "no notice yet: no version needed"
    );
    let anonymous = app
        .gql(PUBLISH, json!({ "v": venue, "t": "# Privacy" }))
        .await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    let by_staff = app
        .gql_as(&staff, PUBLISH, json!({ "v": venue, "t": "# Privacy" }))
        .await?;
    assert_eq!(error_code(&by_staff), Some("FORBIDDEN"), "{by_staff}");
    let first = app
        .gql_as(
            &manager,
            PUBLISH,
            json!({ "v": venue, "t": "# Privacy\nWe keep your name." }),
        )
        .await?;
    assert_eq!(
        first["data"]["publishPrivacyNotice"]["version"], 1,
        "{first}"
    );
    let shown = app.gql(NOTICE, json!({ "v": venue })).await?;
    assert_eq!(
        shown["data"]["privacyNotice"]["text"],
        "# Privacy\nWe keep your name."
    );
    assert_eq!(
        shown["data"]["privacyNotice"]["sha256"],
        first["data"]["publishPrivacyNotice"]["sha256"]
    );

    let unnamed = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:30")?)
        .guest(guest.clone())
        .answer()
        .await?;
    assert_eq!(error_code(&unnamed), Some("BAD_USER_INPUT"), "{unnamed}");
    assert!(message(&unnamed).contains("version 1"), "{unnamed}");
    assert!(
        app.book("lunch-room", 12)
            .starts_at(&lunch("12:30")?)
            .guest(guest.clone())
            .input("noticeVersion", json!(1))
            .answer()
            .await?
            .get("errors")
            .is_none()
    );

    app.gql_as(
        &manager,
        PUBLISH,
        json!({ "v": venue, "t": "# Privacy\nWe keep your name and e-mail." }),
    )
    .await?;
    let stale = app
        .book("lunch-room", 12)
        .starts_at(&lunch("13:00")?)
        .guest(guest.clone())
        .input("noticeVersion", json!(1))
        .answer()
        .await?;
    assert_eq!(error_code(&stale), Some("BAD_USER_INPUT"), "{stale}");
    assert!(
        message(&stale).contains("version 2"),
        "the error must name the current version: {stale}"
    );
    let unknown = app
        .book("lunch-room", 12)
        .starts_at(&lunch("13:00")?)
        .guest(guest)
        .input("noticeVersion", json!(7))
        .answer()
        .await?;
    assert_eq!(error_code(&unknown), Some("BAD_USER_INPUT"), "{unknown}");
    Ok(())
}
both_backends!(
    bookings_must_name_the_current_notice_version,
    bookings_must_name_the_current_notice_version
);

async fn consents_are_opt_in_and_withdrawn_in_one_call(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("lunch-room").await?;
    let manager = app.staff("manager", Some("lunch-room")).await?;
    let published = app
        .gql_as(&manager, PUBLISH, json!({ "v": venue, "t": "# Privacy" }))
        .await?;
    let hash = published["data"]["publishPrivacyNotice"]["sha256"].clone();
    let booked = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:00")?)
        .guest(json!({ "name": "Otto Optin", "email": "otto@example.org", "newsletter": true }))
        .input("noticeVersion", json!(1))
        .answer()
        .await?;
    let token = text(&booked, "/data/createReservation/manageToken")?;

    let ledger = app.gql(LEDGER, json!({ "t": token })).await?;
    let entries = ledger["data"]["reservationByToken"]["consents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let purposes: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["purpose"].as_str())
        .collect();
    assert_eq!(
        purposes,
        ["BOOKING", "NEWSLETTER"],
        "marketing is off by default: {ledger}"
    );
    assert!(entries.iter().all(|e| e["given"] == true
        && e["channel"] == "web"
        && e["noticeVersion"] == 1
        && e["noticeSha256"] == hash));

    let withdraw = "mutation W($t: String!, $p: ConsentPurpose!) { withdrawConsent(manageToken: $t, purpose: $p) { purpose given } }";
    let withdrawn = app
        .gql(withdraw, json!({ "t": token, "p": "NEWSLETTER" }))
        .await?;
    let after = withdrawn["data"]["withdrawConsent"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(after.len(), 3, "history is append-only: {withdrawn}");
    assert_eq!(after[2], json!({ "purpose": "NEWSLETTER", "given": false }));
    let give = "mutation G($t: String!) { giveConsent(manageToken: $t, purpose: MARKETING) { purpose given } }";
    let given = app.gql(give, json!({ "t": token })).await?;
    assert_eq!(
        given["data"]["giveConsent"][3],
        json!({ "purpose": "MARKETING", "given": true }),
        "{given}"
    );

    let basis = app
        .gql(withdraw, json!({ "t": token, "p": "BOOKING" }))
        .await?;
    assert_eq!(error_code(&basis), Some("BAD_USER_INPUT"), "{basis}");
    let unknown = app
        .gql(withdraw, json!({ "t": token, "p": "PROFILING" }))
        .await?;
    assert_eq!(error_code(&unknown), Some("BAD_USER_INPUT"), "{unknown}");
    let wrong = app
        .gql(
            withdraw,
            json!({ "t": "kmt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "p": "NEWSLETTER" }),
        )
        .await?;
    assert_eq!(error_code(&wrong), Some("NOT_FOUND"), "{wrong}");
    Ok(())
}
both_backends!(
    consents_are_opt_in_and_withdrawn_in_one_call,
    consents_are_opt_in_and_withdrawn_in_one_call
);

async fn fields_a_venue_does_not_collect_are_refused(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let admin = app.staff("admin", None).await?;
    let save = "mutation S($v: VenueInput!) { saveVenue(input: $v) { venue { slug } userErrors { field code } } }";
    let days = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ];
    let hours: Vec<Value> = days
        .iter()
        .map(|day| json!({ "weekday": day, "opens": "12:00", "closes": "14:00" }))
        .collect();
    let venue_input = json!({ "slug": "lunch-room", "name": "Lunch Room", "timeZone": "Europe/Amsterdam", "country": "NL",
        "openingHours": hours,
        "resources": [{ "slug": "two", "name": "Table for two", "capacity": 2 }, { "slug": "four", "name": "Table for four", "capacity": 4 }],
        "guestFields": { "email": "REQUIRED", "phone": "NOT_COLLECTED", "notes": "OPTIONAL" } });
    let saved = app
        .gql_as(&admin, save, json!({ "v": venue_input }))
        .await?;
    kluis_tests::payload(&saved, "saveVenue")?;
    let with_phone = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:00")?)
        .guest(
            json!({ "name": "Pia Phone", "email": "pia@example.org", "phone": "+31 6 1234 5678" }),
        )
        .answer()
        .await?;
    assert_eq!(
        error_code(&with_phone),
        Some("BAD_USER_INPUT"),
        "{with_phone}"
    );
    assert!(
        message(&with_phone).contains("does not collect a phone number"),
        "{with_phone}"
    );
    let without_email = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:00")?)
        .guest(json!({ "name": "Pia Phone" }))
        .answer()
        .await?;
    assert_eq!(
        error_code(&without_email),
        Some("BAD_USER_INPUT"),
        "{without_email}"
    );
    assert_eq!(
        app.count_rows("guests", "1 = 1")?,
        0,
        "a refused booking stored a guest"
    );
    let fine = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:00")?)
        .guest(json!({ "name": "Pia Phone", "email": "pia@example.org" }))
        .answer()
        .await?;
    assert!(fine.get("errors").is_none(), "{fine}");
    Ok(())
}
both_backends!(
    fields_a_venue_does_not_collect_are_refused,
    fields_a_venue_does_not_collect_are_refused
);
