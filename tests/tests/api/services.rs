//! Services: what a venue offers to book, each with its own length,
//! buffer, party sizes, resources and payment rule. A venue with services
//! books nothing else; a venue without books as it always did.

use anyhow::Result;
use kluis_tests::{
    Backend, TestApp, both_backends, data, error_code, free_slots, payload, text, tomorrow,
    tomorrow_at, user_errors,
};
use serde_json::{Value, json};

const SAVE: &str = "mutation S($v: VenueInput!) { saveVenue(input: $v) {
    venue { id services { id slug } }
    userErrors { field code message } } }";

const SERVICES: &str = "query V($id: ID!) { venue(id: $id) { services {
    id slug name durationMinutes bufferMinutes partySize { min max }
    resources { slug } payment { kind amount { amount currency } perGuest own } } } }";

const AVAILABILITY: &str = "query Free($venue: ID!, $date: Date!, $size: Int!, $service: ID) {
  availability(venueId: $venue, date: $date, partySize: $size, serviceId: $service) {
    startsAt endsAt freeResources { slug } } }";

const BOOKED: &str = "query R($id: ID!) { reservation(id: $id) {
    status startsAt endsAt resource { slug } service { slug } } }";

async fn save(app: &TestApp, token: &str, input: Value) -> Result<Value> {
    app.gql_as(token, SAVE, json!({ "v": input })).await
}

fn every_day(opens: &str, closes: &str) -> Vec<Value> {
    [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ]
    .iter()
    .map(|day| json!({ "weekday": day, "opens": opens, "closes": closes }))
    .collect()
}

/// A clinic in UTC open 08:00-18:00: a 15-minute consult with either
/// practitioner, a 45-minute treatment (15 minutes to clean up after) with
/// Dr A only, paid by a deposit of its own. Answers the venue's id and the
/// ids of consult and treatment.
async fn clinic(app: &TestApp) -> Result<(String, String, String)> {
    let admin = app.staff("admin", None).await?;
    let saved = save(
        app,
        &admin,
        json!({ "slug": "clinic", "name": "Clinic", "timeZone": "UTC",
            "slotIntervalMinutes": 15, "bookingDurationMinutes": 30, "minNoticeMinutes": 0,
            "maxPartySize": 2, "maxAdvanceDays": 30,
            "openingHours": every_day("08:00", "18:00"),
            "resources": [
                { "slug": "dr-a", "name": "Dr A", "kind": "PRACTITIONER", "capacity": 1 },
                { "slug": "dr-b", "name": "Dr B", "kind": "PRACTITIONER", "capacity": 1 }],
            "services": [
                { "slug": "consult", "name": "Consult", "durationMinutes": 15,
                  "bufferMinutes": 0, "maxPartySize": 1 },
                { "slug": "treatment", "name": "Treatment", "durationMinutes": 45,
                  "bufferMinutes": 15, "maxPartySize": 1, "resourceSlugs": ["dr-a"],
                  "payment": { "kind": "DEPOSIT", "amount": 2000, "currency": "EUR" } }] }),
    )
    .await?;
    let venue = payload(&saved, "saveVenue")?["venue"].clone();
    Ok((
        text(&venue, "/id")?,
        text(&venue, "/services/0/id")?,
        text(&venue, "/services/1/id")?,
    ))
}

async fn free(
    app: &TestApp,
    venue: &str,
    size: i64,
    service: Option<&str>,
) -> Result<Vec<(String, Vec<String>)>> {
    let answer = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": size, "service": service }),
        )
        .await?;
    free_slots(&answer)
}

fn at(hour: u32, minute: u32) -> String {
    tomorrow_at(hour).replace(":00:00Z", &format!(":{minute:02}:00+00:00"))
}

async fn availability_and_bookings_follow_the_service(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (venue, consult, treatment) = clinic(&app).await?;

    let read = app.gql(SERVICES, json!({ "id": venue })).await?;
    assert_eq!(
        data(&read, "venue")?["services"][1],
        json!({ "id": treatment, "slug": "treatment", "name": "Treatment",
            "durationMinutes": 45, "bufferMinutes": 15, "partySize": { "min": 1, "max": 1 },
            "resources": [{ "slug": "dr-a" }],
            "payment": { "kind": "DEPOSIT", "amount": { "amount": 2000, "currency": "EUR" },
                "perGuest": false, "own": true } }),
        "{read}"
    );

    // Without a service the clinic answers nothing.
    let refused = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": 1 }),
        )
        .await?;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");

    let consults = free(&app, &venue, 1, Some(&consult)).await?;
    assert_eq!(consults.len(), 40, "08:00 to 17:45 every 15 minutes");
    assert_eq!(consults[0].1, ["dr-a", "dr-b"]);
    let treatments = free(&app, &venue, 1, Some(&treatment)).await?;
    assert_eq!(treatments.len(), 38, "the last ends at 18:00");
    assert!(treatments.iter().all(|(_, slugs)| slugs == &["dr-a"]));

    let booked = app
        .book("clinic", 10)
        .party(1)
        .input("serviceId", json!(treatment))
        .answer()
        .await?;
    let created = payload(&booked, "createReservation")?;
    assert_eq!(created["reservation"]["endsAt"], at(10, 45), "{booked}");
    assert_eq!(created["reservation"]["resource"]["slug"], "dr-a");
    assert_eq!(
        created["reservation"]["status"], "PENDING",
        "the treatment's own deposit is due: {booked}"
    );
    let id = text(created, "/reservation/id")?;
    let token = text(created, "/manageToken")?;

    // Dr A is taken 10:00 to 11:00 (45 minutes and 15 to clean up).
    let treatments = free(&app, &venue, 1, Some(&treatment)).await?;
    assert_eq!(treatments.len(), 38 - 7, "{treatments:?}");
    let consults = free(&app, &venue, 1, Some(&consult)).await?;
    let ten = consults.iter().find(|(start, _)| *start == at(10, 0));
    assert_eq!(
        ten.map(|(_, slugs)| slugs.clone()),
        Some(vec!["dr-b".to_owned()])
    );
    let quarter_to = consults.iter().find(|(start, _)| *start == at(9, 45));
    assert_eq!(quarter_to.map(|(_, slugs)| slugs.len()), Some(2));

    // A consult is confirmed: it has no rule of its own, nor has the venue.
    let consulted = app
        .book("clinic", 14)
        .party(1)
        .input("serviceId", json!(consult))
        .answer()
        .await?;
    let created = payload(&consulted, "createReservation")?;
    assert_eq!(created["reservation"]["status"], "CONFIRMED", "{consulted}");
    assert_eq!(created["reservation"]["endsAt"], at(14, 15));

    // Moved, the treatment keeps its length and its service.
    let moved = app
        .gql_as(
            &token,
            "mutation M($input: ModifyReservationInput!) { modifyReservation(input: $input) {
                reservation { startsAt endsAt service { slug } } userErrors { field code } } }",
            json!({ "input": { "id": id, "startsAt": tomorrow_at(15),
                "idempotencyKey": kluis_tests::new_key() } }),
        )
        .await?;
    let changed = payload(&moved, "modifyReservation")?;
    assert_eq!(
        changed["reservation"],
        json!({ "startsAt": at(15, 0), "endsAt": at(15, 45), "service": { "slug": "treatment" } }),
        "{moved}"
    );
    let admin = app.staff("admin", None).await?;
    let read = app.gql_as(&admin, BOOKED, json!({ "id": id })).await?;
    assert_eq!(data(&read, "reservation")?["service"]["slug"], "treatment");

    // Two people do not fit a consult.
    let two = app
        .book("clinic", 16)
        .input("serviceId", json!(consult))
        .answer()
        .await?;
    assert_eq!(
        user_errors(&two, "createReservation"),
        [("input.partySize".to_owned(), "INVALID".to_owned())],
        "{two}"
    );
    Ok(())
}
both_backends!(
    availability_and_bookings_follow_the_service,
    availability_and_bookings_follow_the_service
);

async fn a_booking_names_a_service_of_its_own_venue(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let (_, consult, _) = clinic(&app).await?;
    let admin = app.staff("admin", None).await?;
    // A second venue with a service of its own.
    let saved = save(
        &app,
        &admin,
        json!({ "slug": "one-table", "services": [
            { "slug": "hour", "name": "An hour", "durationMinutes": 60 }] }),
    )
    .await?;
    let other = text(payload(&saved, "saveVenue")?, "/venue/services/0/id")?;

    let missing = app.book("clinic", 10).party(1).answer().await?;
    assert_eq!(
        user_errors(&missing, "createReservation"),
        [("input.serviceId".to_owned(), "INVALID".to_owned())],
        "{missing}"
    );
    for wrong in [other.as_str(), "not-a-service-id"] {
        let refused = app
            .book("clinic", 10)
            .party(1)
            .input("serviceId", json!(wrong))
            .answer()
            .await?;
        let errors = user_errors(&refused, "createReservation");
        assert!(
            errors.iter().any(|(_, code)| code == "NOT_FOUND"),
            "{refused}"
        );
        assert!(refused["data"]["createReservation"]["reservation"].is_null());
    }
    // The clinic's consult at the other venue, and in its availability.
    let refused = app
        .book("one-table", 10)
        .input("serviceId", json!(consult))
        .answer()
        .await?;
    assert!(
        user_errors(&refused, "createReservation")
            .iter()
            .any(|(_, code)| code == "NOT_FOUND"),
        "{refused}"
    );
    let venue = app.venue_id("one-table").await?;
    let asked = app
        .gql(
            AVAILABILITY,
            json!({ "venue": venue, "date": tomorrow(), "size": 2, "service": consult }),
        )
        .await?;
    assert_eq!(error_code(&asked), Some("NOT_FOUND"), "{asked}");
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 0);

    // With its own service, one-table books again.
    app.book("one-table", 10)
        .input("serviceId", json!(other))
        .await?;
    // Removing every service books without one, as before.
    let saved = save(&app, &admin, json!({ "slug": "one-table", "services": [] })).await?;
    payload(&saved, "saveVenue")?;
    app.book("one-table", 12).await?;
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 2);
    Ok(())
}
both_backends!(
    a_booking_names_a_service_of_its_own_venue,
    a_booking_names_a_service_of_its_own_venue
);

async fn a_wrong_service_is_refused_and_nothing_written(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let manager = app.staff("manager", Some("one-table")).await?;
    let good = json!({ "slug": "hour", "name": "An hour", "durationMinutes": 60 });
    for (service, field) in [
        (
            json!({ "slug": "zero", "name": "Zero", "durationMinutes": 0 }),
            "input.services.0.durationMinutes",
        ),
        (
            json!({ "slug": "minus", "name": "Minus", "durationMinutes": 30, "bufferMinutes": -5 }),
            "input.services.0.bufferMinutes",
        ),
        (
            json!({ "slug": "big", "name": "Big", "durationMinutes": 30, "maxPartySize": 7 }),
            "input.services.0.maxPartySize",
        ),
        (
            json!({ "slug": "five", "name": "Five", "durationMinutes": 30, "minPartySize": 5 }),
            "input.services.0.resourceSlugs",
        ),
        (
            json!({ "slug": "where", "name": "Where", "durationMinutes": 30,
                "resourceSlugs": ["bar"] }),
            "input.services.0.resourceSlugs",
        ),
        (
            json!({ "slug": "Not A Slug", "name": "X", "durationMinutes": 30 }),
            "input.services.0.slug",
        ),
        (
            json!({ "slug": "paid", "name": "Paid", "durationMinutes": 30,
                "payment": { "kind": "DEPOSIT" } }),
            "input.services.0.payment.amount",
        ),
    ] {
        let saved = save(
            &app,
            &manager,
            json!({ "slug": "one-table", "name": "Renamed", "services": [service] }),
        )
        .await?;
        assert_eq!(
            user_errors(&saved, "saveVenue"),
            [(field.to_owned(), "INVALID".to_owned())],
            "{saved}"
        );
    }
    let twice = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "services": [good, good] }),
    )
    .await?;
    assert_eq!(
        user_errors(&twice, "saveVenue"),
        [("input.services.1.slug".to_owned(), "INVALID".to_owned())],
        "{twice}"
    );
    let many: Vec<Value> = (0..51)
        .map(|n| json!({ "slug": format!("s{n}"), "name": "S", "durationMinutes": 30 }))
        .collect();
    let saved = save(
        &app,
        &manager,
        json!({ "slug": "one-table", "services": many }),
    )
    .await?;
    assert_eq!(
        user_errors(&saved, "saveVenue"),
        [("input.services".to_owned(), "INVALID".to_owned())],
        "{saved}"
    );
    // A manager of another venue saves none.
    let other = app.staff("manager", Some("lunch-room")).await?;
    let refused = save(
        &app,
        &other,
        json!({ "slug": "one-table", "services": [good] }),
    )
    .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    assert_eq!(app.count_rows("services", "1 = 1")?, 0);
    assert_eq!(app.count_rows("venues", "name = 'Renamed'")?, 0);
    Ok(())
}
both_backends!(
    a_wrong_service_is_refused_and_nothing_written,
    a_wrong_service_is_refused_and_nothing_written
);

async fn a_venue_file_names_the_line_and_key_of_a_wrong_service(backend: Backend) -> Result<()> {
    let app = TestApp::spawn(backend).await?;
    let head = "[[venue]]\nslug = \"one-table\"\nname = \"One\"\ntime_zone = \"UTC\"\n\
                max_party_size = 6\n[[venue.resource]]\nslug = \"table\"\nname = \"T\"\n\
                capacity = 4\n[[venue.service]]\nslug = \"lunch\"\nname = \"Lunch\"\n";
    for (tail, line, key) in [
        (
            "duration_minutes = 0\n",
            13,
            "venue[0].service[0].duration_minutes",
        ),
        (
            "duration_minutes = 90\nmax_party_size = 8\n",
            14,
            "venue[0].service[0].max_party_size",
        ),
        (
            "duration_minutes = 90\nresources = [\"bar\"]\n",
            14,
            "venue[0].service[0].resources",
        ),
        (
            "duration_minutes = 90\nmin_party_size = 5\nresources = [\"table\"]\n",
            15,
            "venue[0].service[0].resources",
        ),
        (
            "duration_minutes = 90\npayment = \"deposit\"\n",
            14,
            "venue[0].service[0].payment_amount",
        ),
    ] {
        let file = format!("{head}{tail}");
        let error = api::import::parse("venues.toml", &file)
            .err()
            .ok_or_else(|| anyhow::anyhow!("accepted: {file}"))?
            .to_string();
        assert!(
            error.starts_with(&format!("venues.toml:{line}: {key}: ")),
            "{error}"
        );
    }
    let file = format!(
        "{head}duration_minutes = 90\n[[venue.service]]\nslug = \"dinner\"\nname = \"Dinner\"\n\
         duration_minutes = 120\nbuffer_minutes = 15\nmin_party_size = 2\n\
         payment = \"guarantee\"\npayment_amount = 2500\n"
    );
    let store = app.store().await?;
    api::import_venues(&store, api::import::parse("venues.toml", &file)?).await?;
    let venue = app.venue_id("one-table").await?;
    let read = app.gql(SERVICES, json!({ "id": venue })).await?;
    let services = &data(&read, "venue")?["services"];
    assert_eq!(services[0]["slug"], "lunch", "{read}");
    assert_eq!(services[0]["durationMinutes"], 90, "{read}");
    assert_eq!(services[0]["payment"]["own"], false, "{read}");
    assert_eq!(
        services[1]["partySize"],
        json!({ "min": 2, "max": 6 }),
        "{read}"
    );
    assert_eq!(services[1]["payment"]["kind"], "GUARANTEE", "{read}");
    Ok(())
}
both_backends!(
    a_venue_file_names_the_line_and_key_of_a_wrong_service,
    a_venue_file_names_the_line_and_key_of_a_wrong_service
);

/// `deposit-bistro` asks 10 EUR a guest. Its "tasting" service asks a
/// prepayment of 35 EUR a booking instead, which is what the provider is
/// asked for; its "drinks" service asks nothing, so those bookings are
/// confirmed at once. The same idempotency key for another service is a
/// conflict, never a second booking.
async fn a_service_brings_its_own_payment_rule(backend: Backend) -> Result<()> {
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let stripe = MockServer::start().await;
    let app = TestApp::spawn_with(
        backend,
        kluis_tests::Options {
            env: api::config::Environment::Production,
            venues: kluis_tests::DEPOSIT_VENUE,
            tls: None,
            payments: kluis_tests::stripe_config(&stripe.uri(), 5)?,
            ..kluis_tests::Options::default()
        },
    )
    .await?;
    let admin = app.staff("admin", None).await?;
    let saved = save(
        &app,
        &admin,
        json!({ "slug": "deposit-bistro", "services": [
            { "slug": "tasting", "name": "Tasting", "durationMinutes": 60,
              "payment": { "kind": "PREPAYMENT", "amount": 3500, "currency": "EUR" } },
            { "slug": "drinks", "name": "Drinks", "durationMinutes": 60,
              "payment": { "kind": "NONE" } }] }),
    )
    .await?;
    let venue = &payload(&saved, "saveVenue")?["venue"];
    let (tasting, drinks) = (
        text(venue, "/services/0/id")?,
        text(venue, "/services/1/id")?,
    );

    let intent = |status: &str| {
        kluis_tests::stripe_fixture(
            "payment_intent",
            json!({ "id": "pi_tasting", "status": status, "amount": 3500, "currency": "eur",
                "payment_method": { "id": "pm_x", "object": "payment_method",
                    "card": { "brand": "visa", "last4": "4242" } } }),
        )
    };
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(body_string_contains("amount=3500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent("succeeded")?))
        .expect(1)
        .mount(&stripe)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_tasting"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent("succeeded")?))
        .mount(&stripe)
        .await;

    let key = kluis_tests::new_key();
    let booked = app
        .book("deposit-bistro", 10)
        .key(&key)
        .input("serviceId", json!(tasting))
        .answer()
        .await?;
    let created = payload(&booked, "createReservation")?;
    assert_eq!(created["reservation"]["status"], "PENDING", "{booked}");
    let (id, token) = (
        text(created, "/reservation/id")?,
        text(created, "/manageToken")?,
    );
    let paid = app
        .gql_as(
            &token,
            "mutation P($r: ID!, $k: String!) { startPayment(input: { reservationId: $r,
                gateway: STRIPE, token: \"pm_card_visa\", idempotencyKey: $k }) {
                payment { status amount { amount currency } } userErrors { field code } } }",
            json!({ "r": id, "k": kluis_tests::new_key() }),
        )
        .await?;
    assert_eq!(
        payload(&paid, "startPayment")?["payment"],
        json!({ "status": "SUCCEEDED", "amount": { "amount": 3500, "currency": "EUR" } }),
        "{paid}"
    );

    // The same key for the other service: a conflict, not a booking.
    let replayed = app
        .book("deposit-bistro", 10)
        .key(&key)
        .input("serviceId", json!(drinks))
        .answer()
        .await?;
    assert!(
        user_errors(&replayed, "createReservation")
            .iter()
            .any(|(_, code)| code == "CONFLICT"),
        "{replayed}"
    );
    let free = app
        .book("deposit-bistro", 12)
        .input("serviceId", json!(drinks))
        .answer()
        .await?;
    assert_eq!(
        payload(&free, "createReservation")?["reservation"]["status"],
        "CONFIRMED",
        "{free}"
    );
    assert_eq!(app.count_rows("reservations", "1 = 1")?, 2);
    Ok(())
}
both_backends!(
    a_service_brings_its_own_payment_rule,
    a_service_brings_its_own_payment_rule
);

/// The waitlist at a venue that books by service: an entry names its
/// service, is offered a time that service fits (its resources, its
/// length) and the claimed booking is of that service.
async fn the_waitlist_waits_for_a_service(backend: Backend) -> Result<()> {
    const JOIN: &str = "mutation J($input: JoinWaitlistInput!) { joinWaitlist(input: $input) {
        waitlistToken userErrors { field code message } } }";
    const CLAIM: &str =
        "mutation C($input: ClaimWaitlistOfferInput!) { claimWaitlistOffer(input: $input) {
        reservation { startsAt endsAt resource { slug } service { slug } }
        userErrors { field code message } } }";
    const CANCEL: &str = "mutation C($id: ID!, $t: String!) { cancelReservation(input: {
        id: $id, manageToken: $t, idempotencyKey: \"cancel-treatment\" }) { userErrors { code } } }";
    let app = TestApp::spawn(backend).await?;
    let smtp = kluis_tests::FakeSmtp::start(0).await?;
    let (venue, consult, treatment) = clinic(&app).await?;
    let booked = app
        .book("clinic", 10)
        .party(1)
        .input("serviceId", json!(treatment))
        .answer()
        .await?;
    let created = payload(&booked, "createReservation")?;
    let (id, token) = (
        text(created, "/reservation/id")?,
        text(created, "/manageToken")?,
    );
    let wish = |service: Option<&str>| {
        json!({ "input": { "venueId": venue, "date": tomorrow(), "from": "10:00",
            "until": "10:30", "partySize": 1, "serviceId": service,
            "guest": { "name": "Wanda Waiting", "email": "wanda@example.org" } } })
    };

    let unnamed = app.gql(JOIN, wish(None)).await?;
    assert_eq!(
        user_errors(&unnamed, "joinWaitlist"),
        vec![("input.serviceId".to_owned(), "INVALID".to_owned())],
        "{unnamed}"
    );
    let elsewhere = app.gql(JOIN, wish(Some(&id))).await?;
    assert_eq!(
        user_errors(&elsewhere, "joinWaitlist")
            .first()
            .map(|(_, code)| code.clone()),
        Some("NOT_FOUND".to_owned()),
        "an id that is no service of this venue: {elsewhere}"
    );
    let joined = app.gql(JOIN, wish(Some(&treatment))).await?;
    assert!(
        payload(&joined, "joinWaitlist")?["waitlistToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("kwt_")),
        "{joined}"
    );
    // Dr B is free at 10:00, but does not give treatments: no offer yet.
    app.run_waitlist().await?;
    assert_eq!(app.count_rows("waitlist_offers", "1 = 1")?, 0);
    let consulted = app
        .book("clinic", 10)
        .party(1)
        .input("serviceId", json!(consult))
        .answer()
        .await?;
    assert_eq!(
        payload(&consulted, "createReservation")?["reservation"]["resource"]["slug"],
        "dr-b"
    );

    let cancelled = app.gql(CANCEL, json!({ "id": id, "t": token })).await?;
    assert!(
        user_errors(&cancelled, "cancelReservation").is_empty(),
        "{cancelled}"
    );
    app.run_waitlist().await?;
    app.deliver_mail(&smtp.url).await?;
    let offer = smtp
        .messages()
        .iter()
        .filter(|m| m.contains("wanda@example.org"))
        .find_map(|m| {
            m.split_whitespace()
                .find(|w| w.starts_with("kwo_"))
                .map(|w| w.trim_end_matches(['.', ',']).to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("no offer mailed"))?;
    let claimed = app
        .gql(CLAIM, json!({ "input": { "token": offer } }))
        .await?;
    let reservation = &payload(&claimed, "claimWaitlistOffer")?["reservation"];
    assert_eq!(
        *reservation,
        json!({ "startsAt": at(10, 0), "endsAt": at(10, 45),
            "resource": { "slug": "dr-a" }, "service": { "slug": "treatment" } }),
        "{claimed}"
    );
    Ok(())
}
both_backends!(
    the_waitlist_waits_for_a_service,
    the_waitlist_waits_for_a_service
);
