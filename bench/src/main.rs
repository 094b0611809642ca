//! The load benchmark's tools, all working on the database of the settings
//! (`kluis.toml`, `KLUIS_*`): `seed` fills it with the data set, `baseline`
//! serves the hot reads' bare SQL for comparison, `check` counts double
//! bookings after a booking run. `scripts/bench.sh` drives them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kluis-bench", about = "kluis benchmark tools")]
struct Cli {
    /// Settings file; `KLUIS_*` environment variables override it.
    #[arg(long, env = "KLUIS_CONFIG", default_value = "kluis.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fills the database with venues, guests and reservations (the full
    /// size by default: 20 venues, 50 resources each, 1,000,000 guests,
    /// 2,000,000 reservations over two years).
    Seed {
        #[arg(long, default_value_t = kluis_bench::Plan::FULL.venues)]
        venues: usize,
        #[arg(long, default_value_t = kluis_bench::Plan::FULL.resources)]
        resources: usize,
        #[arg(long, default_value_t = kluis_bench::Plan::FULL.guests)]
        guests: usize,
        #[arg(long, default_value_t = kluis_bench::Plan::FULL.reservations)]
        reservations: usize,
        #[arg(long, default_value_t = kluis_bench::Plan::FULL.days)]
        days: i64,
        /// Where to write what the scenarios need (ids, bench accounts), as
        /// a Lua table. It holds the bench accounts' secrets.
        #[arg(long, default_value = "bench-fixture.lua")]
        fixture: PathBuf,
        /// Also keep every guest's e-mail address in the clear, in a table
        /// of its own, for the plaintext lookup baseline.
        #[arg(long)]
        plaintext_baseline: bool,
    },
    /// Serves the hot reads' SQL over HTTP without GraphQL, authorization
    /// or decryption: the baselines of the load scenarios.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:8781")]
        listen: String,
    },
    /// Counts pairs of overlapping active reservations of one resource made
    /// since a time; fails unless there are none.
    Check {
        /// RFC 3339 time, or seconds since the epoch.
        #[arg(long)]
        since: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let checked = api::config::Settings::load(&cli.config)?;
    match cli.command {
        Command::Seed {
            venues,
            resources,
            guests,
            reservations,
            days,
            fixture,
            plaintext_baseline,
        } => {
            let plan = kluis_bench::Plan {
                venues,
                resources,
                guests,
                reservations,
                days,
                plaintext_baseline,
            };
            let started = std::time::Instant::now();
            let report = kluis_bench::seed(&checked, plan).await?;
            tracing::info!(
                venues = report.venues,
                guests = report.guests,
                reservations = report.reservations,
                seconds = started.elapsed().as_secs_f64(),
                "data set loaded"
            );
            write_private(&fixture, &report.fixture.to_lua())?;
            tracing::info!(path = %fixture.display(), "fixture written");
        }
        Command::Baseline { listen } => {
            let (store, _) = api::open_store(&checked).await?;
            let workers = std::thread::available_parallelism().map_or(2, usize::from);
            let listener = std::net::TcpListener::bind(&listen)?;
            tracing::info!(%listen, "serving the baselines");
            kluis_bench::baseline::server(store, listener, workers)?.await?;
        }
        Command::Check { since } => {
            let since = match since.parse::<i64>() {
                Ok(seconds) => chrono::DateTime::from_timestamp(seconds, 0)
                    .ok_or_else(|| anyhow::anyhow!("--since: out of range"))?,
                Err(_) => chrono::DateTime::parse_from_rfc3339(&since)?.with_timezone(&chrono::Utc),
            };
            let (store, _) = api::open_store(&checked).await?;
            let pairs =
                tokio::task::spawn_blocking(move || store.double_bookings_since(since)).await??;
            use std::io::Write;
            writeln!(std::io::stdout(), "double bookings since {since}: {pairs}")?;
            anyhow::ensure!(pairs == 0, "{pairs} pairs of overlapping reservations");
        }
    }
    Ok(())
}

/// Writes a file only its owner can read: the fixture holds a password and
/// an API key.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(text.as_bytes())
}
