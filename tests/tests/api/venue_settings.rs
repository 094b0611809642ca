//! `saveVenue` changes what it is given and nothing else: a setting left
//! out keeps its stored value. A venue file, by contrast, is the whole truth
//! about the venues it lists.

use anyhow::Result;
use kluis_tests::{
    Backend, ONE_TABLE_VENUE, Options, TestApp, both_backends, data, error_code, payload, text,
    user_errors,
};
use serde_json::{Value, json};

const SAVE: &str = "mutation S($v: VenueInput!) {
    saveVenue(input: $v) { venue { id retentionDays } userErrors { field code message } } }";

/// Every setting a venue has, as managers read it back.
const SETTINGS: &str = "query V($id: ID!) { venue(id: $id) {
    slug name timeZone country
    slotIntervalMinutes bookingDurationMinutes bufferMinutes minNoticeMinutes sameDayCutoff
    cancelDeadlineMinutes maxPartySize maxAdvanceDays
    payment { kind amount { amount currency } perGuest holdMinutes }
    guestFields { email phone notes }
    consentPurposes allowedOrigins
    retentionDays
    openingHours { weekday opens closes }
    resources { slug name kind capacity } } }";

/// A venue where no setting is at its default, so that a reset to a
/// default shows.
const FULL_VENUE: &str = kluis_tests::fixture!("full-house.toml");

/// `one-table` of the shared test venues, keeping its guests ten years.
const KEEPING_VENUE: &str = kluis_tests::fixture!("keeping.toml");

async fn spawn(backend: Backend, venues: &'static str) -> Result<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            venues,
            ..Options::default()
        },
    )
    .await
}

async fn settings(app: &TestApp, token: &str, venue: &str) -> Result<Value> {
    let answer = app.gql_as(token, SETTINGS, json!({ "id": venue })).await?;
    Ok(data(&answer, "venue")?.clone())
}

async fn save(app: &TestApp, token: &str, input: Value) -> Result<Value> {
    app.gql_as(token, SAVE, json!({ "v": input })).await
}

/// The ten-year limit of `one-table` outlives an edit of its name alone:
/// read back over GraphQL, and honoured by a retention run four years
/// after the guest's visit. Set back to a year explicitly, the same run
/// anonymizes the guest, so the run really tests the limit.
async fn keeps_guests_after_a_name_edit(app: &TestApp, manager: &str) -> Result<()> {
    let venue = app.venue_id("one-table").await?;
    let renamed = save(
        app,
        manager,
        json!({ "slug": "one-table", "name": "One Table, renamed" }),
    )
    .await?;
    assert_eq!(
        renamed["data"]["saveVenue"]["venue"]["retentionDays"], 3650,
        "{renamed}"
    );
    let read = settings(app, manager, &venue).await?;
    assert_eq!(read["name"], "One Table, renamed", "{read}");
    assert_eq!(read["retentionDays"], 3650, "{read}");

    app.book("one-table", 10)
        .guest(json!({ "name": "Karel Keep", "email": "keep@example.org" }))
        .await?;
    let four_years = 4 * 365 + 2;
    let run = app.run_retention(four_years, false).await?;
    assert_eq!((run.due, run.anonymized), (0, 0), "{run:?}");
    assert_eq!(app.count_rows("guests", "erased_at IS NULL")?, 1);

    let shortened = save(
        app,
        manager,
        json!({ "slug": "one-table", "retentionDays": 365 }),
    )
    .await?;
    assert_eq!(
        shortened["data"]["saveVenue"]["venue"]["retentionDays"], 365,
        "{shortened}"
    );
    let run = app.run_retention(four_years, false).await?;
    assert_eq!((run.due, run.anonymized), (1, 1), "{run:?}");
    assert_eq!(app.count_rows("guests", "erased_at IS NULL")?, 0);
    Ok(())
}

async fn retention_set_by_import_survives_an_edit_of_the_name(backend: Backend) -> Result<()> {
    let app = spawn(backend, KEEPING_VENUE).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    keeps_guests_after_a_name_edit(&app, &manager).await
}
both_backends!(
    retention_set_by_import_survives_an_edit_of_the_name,
    retention_set_by_import_survives_an_edit_of_the_name
);

async fn retention_set_by_save_venue_survives_an_edit_of_the_name(backend: Backend) -> Result<()> {
    let app = spawn(backend, ONE_TABLE_VENUE).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    // Set as a client that sends every field would set it.
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
        .map(|day| json!({ "weekday": day, "opens": "00:00", "closes": "24:00" }))
        .collect();
    let set = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "name": "One Table", "timeZone": "UTC",
            "slotIntervalMinutes": 60, "bookingDurationMinutes": 60, "minNoticeMinutes": 0,
            "maxAdvanceDays": 30, "openingHours": hours,
            "resources": [{ "slug": "table", "name": "The table", "capacity": 4 }],
            "retentionDays": 3650 }),
    )
    .await?;
    assert_eq!(
        set["data"]["saveVenue"]["venue"]["retentionDays"], 3650,
        "{set}"
    );
    keeps_guests_after_a_name_edit(&app, &manager).await
}
both_backends!(
    retention_set_by_save_venue_survives_an_edit_of_the_name,
    retention_set_by_save_venue_survives_an_edit_of_the_name
);

/// Saves `edit` as the venue's manager and checks that every setting but
/// those `change` names reads back as before.
async fn an_edit_changes_only_what_it_names(
    backend: Backend,
    edit: Value,
    change: fn(&mut Value),
) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let venue = app.venue_id("full").await?;
    let before = settings(&app, &manager, &venue).await?;
    let mut input = edit;
    input["slug"] = json!("full");
    let saved = save(&app, &manager, input).await?;
    payload(&saved, "saveVenue")?;
    let after = settings(&app, &manager, &venue).await?;
    let mut expected = before.clone();
    change(&mut expected);
    assert_ne!(before, expected, "the edit changes something");
    assert_eq!(after, expected);
    Ok(())
}

async fn name_alone(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(backend, json!({ "name": "Full House & Garden" }), |v| {
        v["name"] = json!("Full House & Garden");
    })
    .await
}
both_backends!(an_edit_of_the_name_keeps_every_other_setting, name_alone);

async fn time_zone_and_country(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "timeZone": "Europe/Brussels", "country": null }),
        |v| {
            v["timeZone"] = json!("Europe/Brussels");
            v["country"] = Value::Null;
        },
    )
    .await
}
both_backends!(
    a_time_zone_edit_and_a_null_country_change_only_those,
    time_zone_and_country
);

async fn booking_rules(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "bookingDurationMinutes": 90, "sameDayCutoff": null }),
        |v| {
            v["bookingDurationMinutes"] = json!(90);
            v["sameDayCutoff"] = Value::Null;
        },
    )
    .await
}
both_backends!(an_edit_of_one_booking_rule_keeps_the_others, booking_rules);

async fn payment_hold(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(backend, json!({ "payment": { "holdMinutes": 45 } }), |v| {
        v["payment"]["holdMinutes"] = json!(45)
    })
    .await
}
both_backends!(an_edit_of_the_hold_keeps_the_payment_rule, payment_hold);

async fn payment_kind(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "payment": { "kind": "GUARANTEE" } }),
        |v| v["payment"]["kind"] = json!("GUARANTEE"),
    )
    .await
}
both_backends!(
    an_edit_of_the_payment_kind_keeps_amount_currency_and_hold,
    payment_kind
);

async fn one_guest_field(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "guestFields": { "phone": "REQUIRED" } }),
        |v| v["guestFields"]["phone"] = json!("REQUIRED"),
    )
    .await
}
both_backends!(an_edit_of_one_guest_field_keeps_the_others, one_guest_field);

async fn retention_alone(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(backend, json!({ "retentionDays": 30 }), |v| {
        v["retentionDays"] = json!(30);
    })
    .await
}
both_backends!(
    an_edit_of_the_retention_keeps_every_other_setting,
    retention_alone
);

async fn opening_hours(backend: Backend) -> Result<()> {
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "openingHours": [{ "weekday": "MONDAY", "opens": "09:00", "closes": "17:00" }] }),
        |v| {
            v["openingHours"] =
                json!([{ "weekday": "MONDAY", "opens": "09:00", "closes": "17:00" }]);
        },
    )
    .await
}
both_backends!(
    new_opening_hours_replace_the_week_and_keep_the_rest,
    opening_hours
);

async fn resources(backend: Backend) -> Result<()> {
    // The salon keeps its kind; the table left out of the list is retired.
    an_edit_changes_only_what_it_names(
        backend,
        json!({ "resources": [{ "slug": "salon", "name": "Big salon", "capacity": 8 }] }),
        |v| {
            v["resources"] =
                json!([{ "slug": "salon", "name": "Big salon", "kind": "ROOM", "capacity": 8 }]);
        },
    )
    .await
}
both_backends!(
    a_resource_list_without_kinds_keeps_them_and_nothing_else_changes,
    resources
);

/// Bad values, wrong callers and incomplete new venues change nothing.
async fn refused_edits_change_nothing(backend: Backend) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let admin = app.staff("admin", None).await?;
    let venue = app.venue_id("full").await?;
    let before = settings(&app, &manager, &venue).await?;

    for (input, field) in [
        (json!({ "retentionDays": 0 }), "input.retentionDays"),
        (json!({ "retentionDays": 3651 }), "input.retentionDays"),
        // One bad field among good ones: all or nothing.
        (
            json!({ "name": "Half Saved", "maxPartySize": 0 }),
            "input.maxPartySize",
        ),
        (
            json!({ "name": "Half Saved", "payment": { "holdMinutes": 0 } }),
            "input.payment.holdMinutes",
        ),
        (
            json!({ "payment": { "amount": -1 } }),
            "input.payment.amount",
        ),
        (
            json!({ "payment": { "currency": "euro" } }),
            "input.payment.currency",
        ),
        (json!({ "name": " " }), "input.name"),
        (
            json!({ "slotIntervalMinutes": 0 }),
            "input.slotIntervalMinutes",
        ),
        (json!({ "maxAdvanceDays": 99999 }), "input.maxAdvanceDays"),
        (
            json!({ "consentPurposes": [] , "allowedOrigins": ["null"] }),
            "input.allowedOrigins.0",
        ),
    ] {
        let mut input = input;
        input["slug"] = json!("full");
        let refused = save(&app, &manager, input.clone()).await?;
        assert!(refused.get("errors").is_none(), "{input}: {refused}");
        assert!(refused["data"]["saveVenue"]["venue"].is_null(), "{refused}");
        assert_eq!(
            user_errors(&refused, "saveVenue"),
            [(field.to_owned(), "INVALID".to_owned())],
            "{input}: {refused}"
        );
    }
    // A time of day that is none is refused by the schema itself.
    let refused = save(
        &app,
        &manager,
        json!({ "slug": "full", "sameDayCutoff": "25:00" }),
    )
    .await?;
    assert!(refused.get("errors").is_some(), "{refused}");

    // Staff of the venue, a manager of another venue, and nobody at all.
    let staff = app.staff("staff", Some("full")).await?;
    let other = app.staff("manager", Some("elsewhere")).await?;
    let edit = json!({ "slug": "full", "retentionDays": 1 });
    let denied = save(&app, &staff, edit.clone()).await?;
    assert_eq!(error_code(&denied), Some("FORBIDDEN"), "{denied}");
    let elsewhere = save(&app, &other, edit.clone()).await?;
    assert_eq!(error_code(&elsewhere), Some("FORBIDDEN"), "{elsewhere}");
    // Bad values do not tell a caller who may not save anything about them.
    let probing = save(&app, &other, json!({ "slug": "full", "retentionDays": 0 })).await?;
    assert_eq!(error_code(&probing), Some("FORBIDDEN"), "{probing}");
    assert!(probing["data"].is_null(), "{probing}");
    let creating = save(
        &app,
        &other,
        json!({ "slug": "mine-now", "name": "Mine", "timeZone": "UTC" }),
    )
    .await?;
    assert_eq!(error_code(&creating), Some("FORBIDDEN"), "{creating}");
    let anonymous = app.gql(SAVE, json!({ "v": edit })).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    assert_eq!(settings(&app, &manager, &venue).await?, before);

    // A new venue needs a name and a time zone; the rest are defaults.
    let nameless = save(&app, &admin, json!({ "slug": "new", "timeZone": "UTC" })).await?;
    assert_eq!(
        user_errors(&nameless, "saveVenue"),
        [("input.name".to_owned(), "INVALID".to_owned())],
        "{nameless}"
    );
    let zoneless = save(&app, &admin, json!({ "slug": "new", "name": "New" })).await?;
    assert_eq!(
        user_errors(&zoneless, "saveVenue"),
        [("input.timeZone".to_owned(), "INVALID".to_owned())],
        "{zoneless}"
    );
    let no_amount = save(
        &app,
        &admin,
        json!({ "slug": "new", "name": "New", "timeZone": "UTC", "payment": { "kind": "DEPOSIT" } }),
    )
    .await?;
    assert_eq!(
        user_errors(&no_amount, "saveVenue"),
        [("input.payment.amount".to_owned(), "INVALID".to_owned())],
        "a deposit needs an amount when the venue has none: {no_amount}"
    );
    let no_currency = save(
        &app,
        &admin,
        json!({ "slug": "new", "name": "New", "timeZone": "UTC", "payment": { "kind": "DEPOSIT", "amount": 500 } }),
    )
    .await?;
    assert_eq!(
        user_errors(&no_currency, "saveVenue"),
        [("input.payment.currency".to_owned(), "INVALID".to_owned())],
        "{no_currency}"
    );
    let created = save(
        &app,
        &admin,
        json!({ "slug": "new", "name": "New", "timeZone": "UTC" }),
    )
    .await?;
    let id = text(&created, "/data/saveVenue/venue/id")?;
    let fresh = settings(&app, &admin, &id).await?;
    assert_eq!(fresh["retentionDays"], 365, "{fresh}");
    assert_eq!(fresh["payment"]["kind"], "NONE", "{fresh}");
    assert_eq!(fresh["guestFields"]["phone"], "OPTIONAL", "{fresh}");
    assert_eq!(fresh["openingHours"], json!([]), "{fresh}");
    assert_eq!(
        fresh["consentPurposes"],
        json!(["NEWSLETTER", "MARKETING"]),
        "{fresh}"
    );
    Ok(())
}
both_backends!(refused_edits_change_nothing, refused_edits_change_nothing);

/// Two nodes edit different settings of one venue at the same moment:
/// each edit starts from what the other saved, so neither is lost.
async fn concurrent_edits_of_different_settings_both_stay(backend: Backend) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let other_node = app.another_node().await?;
    let manager = app.staff("manager", Some("full")).await?;
    let venue = app.venue_id("full").await?;
    for round in 0..6_i64 {
        let name = format!("Full House {round}");
        let (renamed, kept) = tokio::join!(
            app.gql_at(
                &app.address,
                Some(&manager),
                SAVE,
                json!({ "v": { "slug": "full", "name": name } }),
            ),
            app.gql_at(
                &other_node,
                Some(&manager),
                SAVE,
                json!({ "v": { "slug": "full", "retentionDays": 100 + round } }),
            ),
        );
        let (renamed, kept) = (renamed?, kept?);
        payload(&renamed, "saveVenue")?;
        payload(&kept, "saveVenue")?;
        let read = settings(&app, &manager, &venue).await?;
        assert_eq!(read["name"], json!(name), "round {round}: {read}");
        assert_eq!(read["retentionDays"], 100 + round, "round {round}: {read}");
    }
    Ok(())
}
both_backends!(
    concurrent_edits_of_different_settings_both_stay,
    concurrent_edits_of_different_settings_both_stay
);

/// `kluis venue import` is unchanged: a venue in a file is the whole truth
/// about that venue, so settings the file leaves out take their defaults
/// and resources it leaves out are retired. Managers read every setting.
async fn a_venue_file_is_the_whole_truth_about_its_venues(backend: Backend) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let venue = app.venue_id("full").await?;
    let imported = settings(&app, &manager, &venue).await?;
    assert_eq!(
        imported,
        json!({
            "slug": "full", "name": "Full House", "timeZone": "Europe/Amsterdam", "country": "BE",
            "slotIntervalMinutes": 20, "bookingDurationMinutes": 100, "bufferMinutes": 10,
            "minNoticeMinutes": 45, "sameDayCutoff": "15:30", "cancelDeadlineMinutes": 90,
            "maxPartySize": 9, "maxAdvanceDays": 120,
            "payment": { "kind": "DEPOSIT", "amount": { "amount": 1250, "currency": "GBP" },
                         "perGuest": true, "holdMinutes": 30 },
            "guestFields": { "email": "REQUIRED", "phone": "NOT_COLLECTED", "notes": "NOT_COLLECTED" },
            "consentPurposes": ["NEWSLETTER"],
            "allowedOrigins": ["https://book.full.example:8443", "https://full.example"],
            "retentionDays": 3650,
            "openingHours": [
                { "weekday": "TUESDAY", "opens": "12:00", "closes": "14:30" },
                { "weekday": "TUESDAY", "opens": "17:30", "closes": "22:30" },
                { "weekday": "SATURDAY", "opens": "12:00", "closes": "23:00" }],
            "resources": [
                { "slug": "t1", "name": "Table 1", "kind": "OTHER", "capacity": 2 },
                { "slug": "salon", "name": "Salon", "kind": "ROOM", "capacity": 9 }]
        })
    );

    let store = app.store().await?;
    let file = "[[venue]]\nslug = \"full\"\nname = \"Full House\"\ntime_zone = \"UTC\"\n";
    api::import_venues(&store, api::import::parse("venues.toml", file)?).await?;
    let reimported = settings(&app, &manager, &venue).await?;
    assert_eq!(reimported["retentionDays"], 365, "{reimported}");
    assert_eq!(reimported["country"], Value::Null, "{reimported}");
    assert_eq!(reimported["sameDayCutoff"], Value::Null, "{reimported}");
    assert_eq!(reimported["maxPartySize"], 12, "{reimported}");
    assert_eq!(
        reimported["payment"],
        json!({ "kind": "NONE", "amount": null, "perGuest": false, "holdMinutes": 15 })
    );
    assert_eq!(
        reimported["guestFields"],
        json!({ "email": "OPTIONAL", "phone": "OPTIONAL", "notes": "OPTIONAL" })
    );
    assert_eq!(
        reimported["consentPurposes"],
        json!(["NEWSLETTER", "MARKETING"])
    );
    assert_eq!(reimported["allowedOrigins"], json!([]));
    assert_eq!(reimported["openingHours"], json!([]));
    assert_eq!(reimported["resources"], json!([]));

    // Settings are not personal data: a booking page reads them too.
    let public = app.gql(SETTINGS, json!({ "id": venue })).await?;
    assert_eq!(public["data"]["venue"], reimported, "{public}");
    Ok(())
}
both_backends!(
    a_venue_file_is_the_whole_truth_about_its_venues,
    a_venue_file_is_the_whole_truth_about_its_venues
);

/// `one-table`, keeping card details 90 days.
const CARD_DAYS_VENUE: &str = kluis_tests::fixture!("card-days.toml");

/// How long card details are kept is not readable over GraphQL: it is
/// read from the database. An edit of the name keeps it, an edit of it
/// changes it, and a value out of range changes nothing.
async fn payment_data_days_survive_an_edit_of_the_name(backend: Backend) -> Result<()> {
    let app = spawn(backend, CARD_DAYS_VENUE).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    assert_eq!(app.count_rows("venues", "payment_data_days = 90")?, 1);
    let renamed = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "name": "One Table, renamed" }),
    )
    .await?;
    payload(&renamed, "saveVenue")?;
    assert_eq!(
        app.count_rows("venues", "payment_data_days = 90")?,
        1,
        "a name edit reset how long card details are kept"
    );
    let set = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "paymentDataDays": 7 }),
    )
    .await?;
    payload(&set, "saveVenue")?;
    assert_eq!(app.count_rows("venues", "payment_data_days = 7")?, 1);
    let refused = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "paymentDataDays": 541 }),
    )
    .await?;
    assert_eq!(
        user_errors(&refused, "saveVenue"),
        [("input.paymentDataDays".to_owned(), "INVALID".to_owned())],
        "{refused}"
    );
    assert_eq!(app.count_rows("venues", "payment_data_days = 7")?, 1);
    Ok(())
}
both_backends!(
    payment_data_days_survive_an_edit_of_the_name,
    payment_data_days_survive_an_edit_of_the_name
);

/// The waitlist's settings read back, change alone, and are refused out
/// of range with nothing saved.
async fn waitlist_settings_are_saved_alone_and_checked(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let venue = app.venue_id("one-table").await?;
    const READ: &str =
        "query V($id: ID!) { venue(id: $id) { waitlistOfferMinutes waitlistRetentionDays } }";
    let read = app.gql(READ, json!({ "id": venue })).await?;
    assert_eq!(
        read["data"]["venue"],
        json!({ "waitlistOfferMinutes": 30, "waitlistRetentionDays": 7 })
    );
    let set = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "waitlistOfferMinutes": 10 }),
    )
    .await?;
    payload(&set, "saveVenue")?;
    let read = app.gql(READ, json!({ "id": venue })).await?;
    assert_eq!(
        read["data"]["venue"],
        json!({ "waitlistOfferMinutes": 10, "waitlistRetentionDays": 7 })
    );
    let refused = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "waitlistOfferMinutes": 4, "waitlistRetentionDays": 91 }),
    )
    .await?;
    assert_eq!(
        user_errors(&refused, "saveVenue"),
        [
            (
                "input.waitlistOfferMinutes".to_owned(),
                "INVALID".to_owned()
            ),
            (
                "input.waitlistRetentionDays".to_owned(),
                "INVALID".to_owned()
            )
        ],
        "{refused}"
    );
    assert_eq!(app.count_rows("venues", "waitlist_offer_minutes = 10")?, 1);
    Ok(())
}
both_backends!(
    waitlist_settings_are_saved_alone_and_checked,
    waitlist_settings_are_saved_alone_and_checked
);

/// Every field at fault comes back at once, each with its path, and
/// nothing is saved.
async fn every_wrong_field_is_reported_at_once(backend: Backend) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let venue = app.venue_id("full").await?;
    let before = settings(&app, &manager, &venue).await?;
    let refused = save(
        &app,
        &manager,
        json!({
            "slug": "full",
            "name": "",
            "country": "Narnia",
            "retentionDays": -4,
            "payment": { "holdMinutes": 100000, "currency": "€" },
            "openingHours": [
                { "weekday": "MONDAY", "opens": "09:00", "closes": "17:00" },
                { "weekday": "MONDAY", "opens": "18:00", "closes": "18:00" },
                { "weekday": "TUESDAY", "opens": "20:00", "closes": "08:00" }
            ],
            "resources": [
                { "slug": "ok", "name": "Fine", "capacity": 2 },
                { "slug": "Not A Slug!", "name": "x", "capacity": 0 }
            ],
            "allowedOrigins": ["https://fine.example", "https://x.example/path", "*", "http://shop.example"]
        }),
    )
    .await?;
    assert!(refused.get("errors").is_none(), "{refused}");
    let mut found = user_errors(&refused, "saveVenue");
    found.sort();
    let mut expected: Vec<(String, String)> = [
        "input.name",
        "input.country",
        "input.retentionDays",
        "input.payment.holdMinutes",
        "input.payment.currency",
        "input.openingHours.1.closes",
        "input.openingHours.2.closes",
        "input.resources.1.slug",
        "input.resources.1.capacity",
        "input.allowedOrigins.1",
        "input.allowedOrigins.2",
        "input.allowedOrigins.3",
    ]
    .iter()
    .map(|field| ((*field).to_owned(), "INVALID".to_owned()))
    .collect();
    expected.sort();
    assert_eq!(found, expected, "{refused}");
    for error in refused["data"]["saveVenue"]["userErrors"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(
            !error["message"].as_str().unwrap_or_default().is_empty(),
            "{error}"
        );
    }
    assert_eq!(settings(&app, &manager, &venue).await?, before);

    // Overlapping intervals are a fault of the list as a whole.
    let overlapping = save(
        &app,
        &manager,
        json!({ "slug": "full", "openingHours": [
            { "weekday": "FRIDAY", "opens": "09:00", "closes": "17:00" },
            { "weekday": "FRIDAY", "opens": "16:00", "closes": "22:00" }] }),
    )
    .await?;
    assert_eq!(
        user_errors(&overlapping, "saveVenue"),
        [("input.openingHours".to_owned(), "INVALID".to_owned())],
        "{overlapping}"
    );
    // Oversized lists of origins and absurd strings are refused, not stored.
    let many: Vec<String> = (0..21).map(|i| format!("https://s{i}.example")).collect();
    let too_many = save(
        &app,
        &manager,
        json!({ "slug": "full", "allowedOrigins": many }),
    )
    .await?;
    assert_eq!(
        user_errors(&too_many, "saveVenue"),
        [("input.allowedOrigins".to_owned(), "INVALID".to_owned())],
        "{too_many}"
    );
    let huge = format!("https://{}.example", "a".repeat(5000));
    let oversized = save(
        &app,
        &manager,
        json!({ "slug": "full", "allowedOrigins": [huge] }),
    )
    .await?;
    assert_eq!(
        user_errors(&oversized, "saveVenue"),
        [("input.allowedOrigins.0".to_owned(), "INVALID".to_owned())]
    );
    assert!(
        !oversized.to_string().contains(&"a".repeat(200)),
        "the message does not echo the whole value"
    );
    assert_eq!(settings(&app, &manager, &venue).await?, before);
    Ok(())
}
both_backends!(
    every_wrong_field_is_reported_at_once,
    every_wrong_field_is_reported_at_once
);

/// The opt-ins and origins a manager saves read back, normalized; plain
/// http origins are for development servers only.
async fn opt_ins_and_origins_are_saved(backend: Backend) -> Result<()> {
    let app = spawn(backend, FULL_VENUE).await?;
    let manager = app.staff("manager", Some("full")).await?;
    let venue = app.venue_id("full").await?;
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "full", "consentPurposes": [],
                "allowedOrigins": ["HTTPS://Widget.Example:443", "https://widget.example"] }),
    )
    .await?;
    payload(&saved, "saveVenue")?;
    let read = settings(&app, &manager, &venue).await?;
    assert_eq!(read["consentPurposes"], json!([]), "{read}");
    assert_eq!(
        read["allowedOrigins"],
        json!(["https://widget.example"]),
        "{read}"
    );
    // The test server runs as production.
    let local = save(
        &app,
        &manager,
        json!({ "slug": "full", "allowedOrigins": ["http://localhost:5173"] }),
    )
    .await?;
    assert_eq!(
        user_errors(&local, "saveVenue"),
        [("input.allowedOrigins.0".to_owned(), "INVALID".to_owned())],
        "{local}"
    );

    let development = TestApp::spawn_with(
        backend,
        Options {
            venues: FULL_VENUE,
            env: api::config::Environment::Development,
            ..Options::default()
        },
    )
    .await?;
    let manager = development.staff("manager", Some("full")).await?;
    let local = save(
        &development,
        &manager,
        json!({ "slug": "full", "allowedOrigins": ["http://localhost:5173"] }),
    )
    .await?;
    payload(&local, "saveVenue")?;
    Ok(())
}
both_backends!(opt_ins_and_origins_are_saved, opt_ins_and_origins_are_saved);

/// What a booking widget asks of a venue before it draws the form.
const FORM: &str = "query F($slug: String!) { venueBySlug(slug: $slug) {
    id slug name timeZone country
    guestFields { name email phone notes }
    payment { kind amount { amount currency } perGuest holdMinutes }
    gateways consentPurposes noticeLocales
    partySize { min max }
    minNoticeMinutes sameDayCutoff cancelDeadlineMinutes maxAdvanceDays } }";

async fn a_widget_draws_its_form_from_one_query(backend: Backend) -> Result<()> {
    let app = TestApp::spawn_with(
        backend,
        Options {
            venues: FULL_VENUE,
            payments: kluis_tests::stripe_config("http://127.0.0.1:9", 5)?,
            ..Options::default()
        },
    )
    .await?;
    let venue = app.venue_id("full").await?;
    let store = app.store().await?;
    for locale in ["nl-BE", "en"] {
        let locale = domain::privacy::Locale::parse(locale)?;
        let (text, sha) = domain::privacy::notice_text("We keep little.")?;
        store.publish_notice(
            domain::VenueId::parse(&venue)?,
            &locale,
            &text,
            &sha,
            app.now(),
        )?;
    }
    let answer = app.gql(FORM, json!({ "slug": "full" })).await?;
    let form = data(&answer, "venueBySlug")?;
    assert_eq!(
        *form,
        json!({
            "id": venue, "slug": "full", "name": "Full House", "timeZone": "Europe/Amsterdam",
            "country": "BE",
            "guestFields": { "name": "REQUIRED", "email": "REQUIRED", "phone": "NOT_COLLECTED",
                             "notes": "NOT_COLLECTED" },
            "payment": { "kind": "DEPOSIT", "amount": { "amount": 1250, "currency": "GBP" },
                         "perGuest": true, "holdMinutes": 30 },
            "gateways": ["STRIPE", "ONSITE"],
            "consentPurposes": ["NEWSLETTER"],
            "noticeLocales": ["en", "nl-BE"],
            "partySize": { "min": 1, "max": 9 },
            "minNoticeMinutes": 45, "sameDayCutoff": "15:30", "cancelDeadlineMinutes": 90,
            "maxAdvanceDays": 120
        })
    );

    // A guarantee keeps a card: only Stripe can. No payment: no gateway.
    let manager = app.staff("manager", Some("full")).await?;
    let guarantee = save(
        &app,
        &manager,
        json!({ "slug": "full", "payment": { "kind": "GUARANTEE" }, "maxPartySize": 20 }),
    )
    .await?;
    payload(&guarantee, "saveVenue")?;
    let answer = app.gql(FORM, json!({ "slug": "full" })).await?;
    assert_eq!(
        answer["data"]["venueBySlug"]["gateways"],
        json!(["STRIPE"]),
        "{answer}"
    );
    assert_eq!(
        answer["data"]["venueBySlug"]["partySize"],
        json!({ "min": 1, "max": 9 }),
        "the largest resource seats nine: {answer}"
    );
    let answer = app.gql(FORM, json!({ "slug": "elsewhere" })).await?;
    let elsewhere = data(&answer, "venueBySlug")?;
    assert_eq!(elsewhere["gateways"], json!([]), "{answer}");
    assert_eq!(elsewhere["noticeLocales"], json!([]), "{answer}");
    assert_eq!(
        elsewhere["partySize"],
        json!({ "min": 1, "max": 0 }),
        "{answer}"
    );

    // A slug that names nothing, and one that cannot be a slug.
    let missing = app.gql(FORM, json!({ "slug": "nowhere" })).await?;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"), "{missing}");
    assert!(missing["data"]["venueBySlug"].is_null(), "{missing}");
    let garbage = app
        .gql(FORM, json!({ "slug": format!("../{}", "x".repeat(5000)) }))
        .await?;
    assert_eq!(error_code(&garbage), Some("BAD_USER_INPUT"), "{garbage}");
    assert!(garbage["data"]["venueBySlug"].is_null(), "{garbage}");
    Ok(())
}
both_backends!(
    a_widget_draws_its_form_from_one_query,
    a_widget_draws_its_form_from_one_query
);
