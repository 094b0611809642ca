//! The data generator at a small size: everything it makes is what the
//! server itself would have written (sealed, findable by e-mail, no two
//! reservations of a resource overlapping).

mod support;

use anyhow::Result;
use domain::ports::{ReservationRepository, VenueRepository};

const PLAN: kluis_bench::Plan = kluis_bench::Plan {
    venues: 3,
    resources: 4,
    guests: 300,
    reservations: 700,
    days: 60,
    plaintext_baseline: false,
};

async fn seeded(database_url: String, dir: &std::path::Path) -> Result<store::Store> {
    let checked = support::settings(database_url, dir)?;
    let report = kluis_bench::seed(&checked, PLAN).await?;
    assert_eq!(
        (report.venues, report.guests, report.reservations),
        (3, 300, 700)
    );
    Ok(api::open_store(&checked).await?.0)
}

fn check(store: &store::Store) -> Result<()> {
    let mut total = 0;
    for index in 0..PLAN.venues {
        let slug =
            domain::Slug::parse(&kluis_bench::venue_slug(index)).map_err(anyhow::Error::msg)?;
        let venue = store
            .venue_by_slug(&slug)?
            .ok_or_else(|| anyhow::anyhow!("no venue {index}"))?;
        assert_eq!(store.resources(venue)?.len(), PLAN.resources);
        let far = chrono::Duration::days(4_000);
        let now = chrono::Utc::now();
        let mut reservations = store.reservations_in(venue, now - far, now + far, None, 100_000)?;
        total += reservations.len();
        reservations.sort_by_key(|r| (r.resource_id.to_string(), r.starts_at));
        for pair in reservations.windows(2) {
            if pair[0].resource_id == pair[1].resource_id {
                assert!(
                    pair[0].blocked_until <= pair[1].starts_at,
                    "overlap: {pair:?}"
                );
            }
        }
    }
    assert_eq!(total, PLAN.reservations);
    // Guests are found by e-mail through the lookup tokens, in their venue.
    let guests_per_venue = PLAN.guests / PLAN.venues;
    for n in [0, 150, 299] {
        let slug = domain::Slug::parse(&kluis_bench::venue_slug(n / guests_per_venue))
            .map_err(anyhow::Error::msg)?;
        let venue = store
            .venue_by_slug(&slug)?
            .ok_or_else(|| anyhow::anyhow!("no venue"))?;
        let email = domain::Email::parse("email", &kluis_bench::guest_email(n))?;
        assert!(
            store.find_guest(venue, Some(&email), None)?.is_some(),
            "guest {n}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_small_data_set_on_sqlite_is_sealed_findable_and_without_overlaps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = seeded(url, dir.path()).await?;
    check(&store)?;
    let mut file = std::fs::read(dir.path().join("bench.db"))?;
    if let Ok(wal) = std::fs::read(dir.path().join("bench.db-wal")) {
        file.extend(wal);
    }
    let canary = kluis_bench::guest_email(150);
    assert!(
        !file.windows(canary.len()).any(|w| w == canary.as_bytes()),
        "an e-mail address is stored in plain text"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_small_data_set_on_postgres_is_sealed_findable_and_without_overlaps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = tokio::task::spawn_blocking(support::postgres_schema).await??;
    let store = seeded(url, dir.path()).await?;
    check(&store)
}

/// The double-booking check finds overlaps. SQLite refuses overlapping
/// holds with a trigger; dropped here (as someone editing the file by hand
/// could), two can be planted.
#[tokio::test]
async fn the_double_booking_check_counts_planted_overlaps() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = seeded(url, dir.path()).await?;
    {
        use diesel::{Connection, RunQueryDsl};
        let path = dir.path().join("bench.db");
        let mut raw = diesel::SqliteConnection::establish(&path.display().to_string())?;
        diesel::sql_query("DROP TRIGGER reservation_holds_no_overlap_insert").execute(&mut raw)?;
    }
    let slug = domain::Slug::parse(&kluis_bench::venue_slug(0)).map_err(anyhow::Error::msg)?;
    let venue = store
        .venue_by_slug(&slug)?
        .ok_or_else(|| anyhow::anyhow!("no venue"))?;
    let resource = store.resources(venue)?[0].id.to_string();
    let since = chrono::Utc::now();
    assert_eq!(store.double_bookings_since(since)?, 0);
    let guest = store::BulkGuest {
        id: uuid::Uuid::new_v4().to_string(),
        venue_id: venue.to_string(),
        name: domain::PersonName::parse("name", "Planted Guest")?,
        email: None,
        phone: None,
    };
    // Far ahead of the seeded bookings, an hour apart, each two hours long.
    let start = since + chrono::Duration::days(200);
    let planted: Vec<store::BulkReservation> = [0, 1]
        .into_iter()
        .map(|hour| {
            let starts_at = start + chrono::Duration::hours(hour);
            store::BulkReservation {
                id: uuid::Uuid::new_v4().to_string(),
                venue_id: venue.to_string(),
                resource_id: resource.clone(),
                guest_id: guest.id.clone(),
                party_size: 2,
                starts_at,
                ends_at: starts_at + chrono::Duration::hours(2),
                blocked_until: starts_at + chrono::Duration::hours(2),
                status: "confirmed",
                created_at: since + chrono::Duration::seconds(1),
            }
        })
        .collect();
    store.bulk_load(&[guest], &planted, since)?;
    assert_eq!(store.double_bookings_since(since)?, 1);
    Ok(())
}
