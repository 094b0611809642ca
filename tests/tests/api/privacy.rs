use anyhow::Result;
use kluis_tests::{
    Backend, TestApp, both_backends, error_code, payload, text, tomorrow_local, user_error_code,
    user_errors,
};
use serde_json::{Value, json};

const PUBLISH: &str = "mutation P($v: ID!, $t: String!) { publishPrivacyNotice(input: { venueId: $v, locale: \"en\", text: $t }) { notice { version sha256 } userErrors { field code } } }";
const NOTICE: &str =
    "query N($v: ID!) { privacyNotice(venueId: $v, locale: \"en\") { version text sha256 } }";
const LEDGER: &str = "query T($t: String!) { reservationByToken(token: $t) { consents { purpose given channel noticeVersion noticeSha256 } } }";

fn message(answer: &Value) -> &str {
    answer["errors"][0]["message"]
        .as_str()
        .or_else(|| answer["data"]["createReservation"]["userErrors"][0]["message"].as_str())
        .unwrap_or_default()
}

/// The first user error of a booking.
fn booking_code(answer: &Value) -> Option<&str> {
    kluis_tests::user_error_code(answer, "createReservation")
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
    // Every field at fault at once.
    let garbage = app
        .gql_as(
            &manager,
            "mutation P($v: ID!) { publishPrivacyNotice(input: { venueId: $v, locale: \"english!\", text: \"  \" }) { notice { version } userErrors { field code } } }",
            json!({ "v": venue }),
        )
        .await?;
    assert_eq!(
        user_errors(&garbage, "publishPrivacyNotice"),
        [
            ("input.locale".to_owned(), "INVALID".to_owned()),
            ("input.text".to_owned(), "INVALID".to_owned())
        ],
        "{garbage}"
    );
    let none = app.gql(NOTICE, json!({ "v": venue })).await?;
    assert!(
        none.get("errors").is_none() && none["data"]["privacyNotice"].is_null(),
        "none published yet: {none}"
    );
    let bad_locale = app
        .gql(
            "query N($v: ID!) { privacyNotice(venueId: $v, locale: \"en_GB; drop\") { version } }",
            json!({ "v": venue }),
        )
        .await?;
    assert_eq!(
        error_code(&bad_locale),
        Some("BAD_USER_INPUT"),
        "{bad_locale}"
    );
    let first = app
        .gql_as(
            &manager,
            PUBLISH,
            json!({ "v": venue, "t": "# Privacy\nWe keep your name." }),
        )
        .await?;
    assert_eq!(
        payload(&first, "publishPrivacyNotice")?["notice"]["version"],
        1,
        "{first}"
    );
    let shown = app.gql(NOTICE, json!({ "v": venue })).await?;
    assert_eq!(
        shown["data"]["privacyNotice"]["text"],
        "# Privacy\nWe keep your name."
    );
    assert_eq!(
        shown["data"]["privacyNotice"]["sha256"],
        first["data"]["publishPrivacyNotice"]["notice"]["sha256"]
    );

    let unnamed = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:30")?)
        .guest(guest.clone())
        .answer()
        .await?;
    assert_eq!(booking_code(&unnamed), Some("NOTICE_CHANGED"), "{unnamed}");
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
    assert_eq!(booking_code(&stale), Some("NOTICE_CHANGED"), "{stale}");
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
    assert_eq!(booking_code(&unknown), Some("NOTICE_CHANGED"), "{unknown}");
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
    let hash = published["data"]["publishPrivacyNotice"]["notice"]["sha256"].clone();
    let booked = app
        .book("lunch-room", 12)
        .starts_at(&lunch("12:00")?)
        .guest(json!({ "name": "Otto Optin", "email": "otto@example.org" }))
        .input("consents", json!(["NEWSLETTER"]))
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

    let state = "query T($t: String!) { reservationByToken(token: $t) { consentState { purpose given since } } }";
    let before = app.gql(state, json!({ "t": token })).await?;
    let switches = &before["data"]["reservationByToken"]["consentState"];
    assert_eq!(switches[0]["purpose"], "NEWSLETTER", "{before}");
    assert_eq!(switches[0]["given"], true, "{before}");
    assert!(switches[0]["since"].is_string(), "{before}");
    assert_eq!(
        switches[1],
        json!({ "purpose": "MARKETING", "given": false, "since": null }),
        "never asked: off, with no date: {before}"
    );

    let withdraw = "mutation W($p: OptInPurpose!) { withdrawConsent(input: { purpose: $p }) { consentState { purpose given } ledger { purpose given } userErrors { field code } } }";
    let withdrawn = app
        .gql_as(&token, withdraw, json!({ "p": "NEWSLETTER" }))
        .await?;
    let after = payload(&withdrawn, "withdrawConsent")?["ledger"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(after.len(), 3, "history is append-only: {withdrawn}");
    assert_eq!(after[2], json!({ "purpose": "NEWSLETTER", "given": false }));
    assert_eq!(
        withdrawn["data"]["withdrawConsent"]["consentState"],
        json!([{ "purpose": "NEWSLETTER", "given": false }, { "purpose": "MARKETING", "given": false }]),
        "{withdrawn}"
    );
    let give = "mutation G($t: String!) { giveConsent(input: { purpose: MARKETING, manageToken: $t }) { consentState { purpose given } ledger { purpose given } } }";
    let given = app.gql(give, json!({ "t": token })).await?;
    assert_eq!(
        given["data"]["giveConsent"]["ledger"][3],
        json!({ "purpose": "MARKETING", "given": true }),
        "the deprecated field still works: {given}"
    );
    let now_state = app.gql(state, json!({ "t": token })).await?;
    assert_eq!(
        now_state["data"]["reservationByToken"]["consentState"][1]["given"], true,
        "{now_state}"
    );

    // The booking is no opt-in purpose; unknown purposes neither.
    for purpose in ["BOOKING", "PROFILING"] {
        let refused = app
            .gql_as(&token, withdraw, json!({ "p": purpose }))
            .await?;
        assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    }
    let wrong = app
        .gql_as(
            "kmt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            withdraw,
            json!({ "p": "NEWSLETTER" }),
        )
        .await?;
    assert_eq!(
        user_error_code(&wrong, "withdrawConsent"),
        Some("NOT_FOUND"),
        "{wrong}"
    );
    let both = app
        .gql_as(
            &token,
            "mutation G($t: String!) { giveConsent(input: { purpose: NEWSLETTER, manageToken: $t }) { ledger { given } userErrors { code } } }",
            json!({ "t": token }),
        )
        .await?;
    assert_eq!(
        user_error_code(&both, "giveConsent"),
        Some("INVALID"),
        "{both}"
    );
    let bad_locale = app
        .gql_as(
            &token,
            "mutation G { giveConsent(input: { purpose: NEWSLETTER, locale: \"klingon!\" }) { ledger { given } userErrors { field code } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        user_errors(&bad_locale, "giveConsent"),
        [("input.locale".to_owned(), "INVALID".to_owned())],
        "{bad_locale}"
    );
    let nobody = app.gql(withdraw, json!({ "p": "NEWSLETTER" })).await?;
    assert_eq!(error_code(&nobody), Some("UNAUTHENTICATED"), "{nobody}");

    // Someone else's token changes their consent, never this guest's; an
    // access token is no manage token.
    let other = app
        .book("lunch-room", 13)
        .starts_at(&lunch("13:00")?)
        .guest(json!({ "name": "Olga Other", "email": "olga@example.org" }))
        .input("noticeVersion", json!(1))
        .answer()
        .await?;
    let other_token = text(&other, "/data/createReservation/manageToken")?;
    app.gql_as(
        &other_token,
        "mutation G { giveConsent(input: { purpose: NEWSLETTER }) { userErrors { code } } }",
        json!({}),
    )
    .await?;
    let mine = app.gql(state, json!({ "t": token })).await?;
    assert_eq!(
        mine["data"]["reservationByToken"]["consentState"][0]["given"], false,
        "{mine}"
    );
    let with_access = app
        .gql_as(
            "kat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            withdraw,
            json!({ "p": "NEWSLETTER" }),
        )
        .await?;
    assert_eq!(
        error_code(&with_access),
        Some("UNAUTHENTICATED"),
        "{with_access}"
    );
    // A staff member without the consents right sees no state.
    let staff = app.staff("staff", Some("lunch-room")).await?;
    let reservation = text(&booked, "/data/createReservation/reservation/id")?;
    let read = app
        .gql_as(
            &staff,
            "query R($id: ID!) { reservation(id: $id) { id consentState { given } } }",
            json!({ "id": reservation }),
        )
        .await?;
    assert!(
        read["data"]["reservation"]["consentState"].is_null()
            && read["data"]["reservation"]["id"] == reservation.as_str(),
        "{read}"
    );
    assert_eq!(error_code(&read), Some("FORBIDDEN"), "{read}");
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
    assert_eq!(booking_code(&with_phone), Some("INVALID"), "{with_phone}");
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
        booking_code(&without_email),
        Some("INVALID"),
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

/// A booking widget asks for the whole form in one query by the venue's
/// slug: the notice comes with the venue, null while none is published in
/// the locale, and `noticeLocales` says which are.
async fn the_notice_comes_with_the_venue_in_one_query(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let venue = app.venue_id("one-table").await?;
    const FORM: &str = "query F($s: String!, $l: String!) { venueBySlug(slug: $s) { id noticeLocales privacyNotice(locale: $l) { locale version text } guestFields { name email } } }";
    let before = app
        .gql(FORM, json!({ "s": "one-table", "l": "en" }))
        .await?;
    assert!(before.get("errors").is_none(), "{before}");
    assert!(
        before["data"]["venueBySlug"]["privacyNotice"].is_null(),
        "{before}"
    );
    assert_eq!(
        before["data"]["venueBySlug"]["noticeLocales"],
        json!([]),
        "{before}"
    );

    let manager = app.staff("manager", Some("one-table")).await?;
    let published = app
        .gql_as(
            &manager,
            PUBLISH,
            json!({ "v": venue, "t": "We keep your name." }),
        )
        .await?;
    assert!(published.get("errors").is_none(), "{published}");
    let after = app
        .gql(FORM, json!({ "s": "one-table", "l": "en" }))
        .await?;
    assert_eq!(
        after["data"]["venueBySlug"]["privacyNotice"]["text"], "We keep your name.",
        "{after}"
    );
    assert_eq!(
        after["data"]["venueBySlug"]["noticeLocales"],
        json!(["en"]),
        "{after}"
    );
    let other_locale = app
        .gql(FORM, json!({ "s": "one-table", "l": "nl" }))
        .await?;
    assert!(
        other_locale["data"]["venueBySlug"]["privacyNotice"].is_null(),
        "{other_locale}"
    );
    let garbage = app
        .gql(FORM, json!({ "s": "one-table", "l": "not a locale!" }))
        .await?;
    assert_eq!(error_code(&garbage), Some("BAD_USER_INPUT"), "{garbage}");
    assert_eq!(
        garbage["data"]["venueBySlug"]["id"],
        json!(venue),
        "the rest answers: {garbage}"
    );
    Ok(())
}
both_backends!(
    the_notice_comes_with_the_venue_in_one_query,
    the_notice_comes_with_the_venue_in_one_query
);

/// An opt-in the venue's form does not offer cannot be recorded, neither
/// with the booking nor afterwards; one it stopped offering can still be
/// withdrawn.
async fn only_the_opt_ins_a_venue_offers_are_recorded(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let both = app
        .book("one-table", 9)
        .input("consents", json!(["MARKETING"]))
        .await?;
    let saved = app
        .gql_as(
            &manager,
            "mutation S($v: VenueInput!) { saveVenue(input: $v) { venue { consentPurposes } userErrors { field code } } }",
            json!({ "v": { "slug": "one-table", "consentPurposes": ["NEWSLETTER"] } }),
        )
        .await?;
    assert_eq!(
        payload(&saved, "saveVenue")?["venue"]["consentPurposes"],
        json!(["NEWSLETTER"])
    );

    let refused = app
        .book("one-table", 10)
        .input("consents", json!(["NEWSLETTER", "MARKETING"]))
        .answer()
        .await?;
    assert_eq!(
        user_errors(&refused, "createReservation"),
        [("input.consents".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );
    assert!(
        refused["data"]["createReservation"]["reservation"].is_null(),
        "{refused}"
    );

    let booked = app
        .book("one-table", 11)
        .input("consents", json!(["NEWSLETTER"]))
        .await?;
    const GIVE: &str = "mutation G($p: OptInPurpose!) { giveConsent(input: { purpose: $p }) { consentState { purpose given } userErrors { field code } } }";
    let marketing = app
        .gql_as(&booked.token, GIVE, json!({ "p": "MARKETING" }))
        .await?;
    assert_eq!(
        user_errors(&marketing, "giveConsent"),
        [("input.purpose".to_owned(), "INVALID".to_owned())],
        "{marketing}"
    );
    // The guest who opted in to marketing before the venue stopped
    // offering it takes it back in one call, as ever.
    const WITHDRAW: &str = "mutation W($p: OptInPurpose!) { withdrawConsent(input: { purpose: $p }) { consentState { purpose given } userErrors { field code } } }";
    let withdrawn = app
        .gql_as(&both.token, WITHDRAW, json!({ "p": "MARKETING" }))
        .await?;
    let states = payload(&withdrawn, "withdrawConsent")?["consentState"].clone();
    assert!(
        states
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["purpose"] == "MARKETING" && s["given"] == false),
        "{withdrawn}"
    );
    Ok(())
}
both_backends!(
    only_the_opt_ins_a_venue_offers_are_recorded,
    only_the_opt_ins_a_venue_offers_are_recorded
);
