//! `kluis-bench seed`: fills the database of the settings (`kluis.toml`,
//! `KLUIS_*`) with the benchmark's data set.

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
        } => {
            let plan = kluis_bench::Plan {
                venues,
                resources,
                guests,
                reservations,
                days,
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
        }
    }
    Ok(())
}
