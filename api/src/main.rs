//! `kluis`: the server and its administration commands.

use std::path::PathBuf;
use std::process::ExitCode;

use api::config::{Checked, Environment, Settings};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kluis",
    version,
    about = "A reservation backend that protects guest data"
)]
struct Cli {
    /// Settings file; `KLUIS_*` environment variables override it.
    #[arg(
        long,
        global = true,
        env = "KLUIS_CONFIG",
        default_value = "kluis.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Manage venues.
    Venue {
        #[command(subcommand)]
        action: VenueCommand,
    },
    /// Manage master keys.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new key file with one fresh master key (mode 0600).
    Generate {
        /// Where to write it; an existing file is never overwritten.
        #[arg(long, default_value = "kluis.key")]
        out: PathBuf,
    },
    /// Add a key version and re-encrypt every sealed value and lookup token
    /// with it, in batches, while servers keep serving. Run it again to
    /// resume an interrupted rotation.
    Rotate,
}

#[derive(Subcommand)]
enum VenueCommand {
    /// Create or update venues, opening hours and resources from a TOML file.
    Import { file: PathBuf },
}

/// Exit status for unusable settings, as `EX_USAGE`-style tools do.
const EXIT_BAD_SETTINGS: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Keys {
        action: KeysCommand::Generate { out },
    } = &command
    {
        return match api::keys::generate_key_file(out) {
            Ok(()) => {
                eprintln!(
                    "kluis: wrote a new master key to {} (mode 0600). Back it up: without it the data it seals cannot be read.",
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("kluis: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Schema = command {
        // The SDL is the command's output, so it goes to stdout on purpose.
        use std::io::Write;
        return match std::io::stdout().write_all(api::graphql::sdl().as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let checked = match Settings::load(&cli.config) {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("kluis: {error}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    init_logging(&checked);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kluis: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, checked)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kluis: {error:#}");
            let bad_setting = error
                .downcast_ref::<api::StartError>()
                .is_some_and(api::StartError::is_bad_setting)
                || error.downcast_ref::<api::keys::KeyError>().is_some();
            if bad_setting {
                ExitCode::from(EXIT_BAD_SETTINGS)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(checked: &Checked) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&checked.settings.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(command: Command, checked: Checked) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(checked).await,
        Command::Migrate => {
            api::open_store(&checked).await?;
            tracing::info!("database is up to date");
            Ok(())
        }
        Command::Venue {
            action: VenueCommand::Import { file },
        } => {
            let definitions = api::import::read_file(&file)?;
            let (store, _) = api::open_store(&checked).await?;
            let report = api::import_venues(&store, definitions).await?;
            tracing::info!(
                venues_created = report.venues_created,
                venues_updated = report.venues_updated,
                resources_created = report.resources_created,
                resources_updated = report.resources_updated,
                resources_retired = report.resources_retired,
                "imported {}",
                file.display()
            );
            Ok(())
        }
        Command::Keys {
            action: KeysCommand::Rotate,
        } => {
            let done = api::rotate_keys(&checked, |progress| {
                tracing::info!(
                    version = progress.target_version,
                    "rotation: {} rows done, {} to go",
                    progress.done,
                    progress.remaining
                );
            })
            .await?;
            tracing::info!(
                version = done.target_version,
                rows = done.done,
                "rotation finished: every sealed value and lookup token uses key version {}",
                done.target_version
            );
            Ok(())
        }
        Command::Schema | Command::Keys { .. } => Ok(()),
    }
}

async fn serve(checked: Checked) -> anyhow::Result<()> {
    if checked.settings.env == Environment::Development {
        tracing::warn!(
            "DEVELOPMENT MODE: GraphiQL and introspection are on and an empty database gets a demo \
             venue. Never run real bookings like this: set KLUIS_ENV=production."
        );
    }
    let bind = checked.bind;
    let database = checked.database.backend();
    let application = api::Application::build(checked).await?;
    tracing::info!(
        address = %bind.ip(),
        port = application.port(),
        ?database,
        "kluis is serving GraphQL at http://{}:{}/graphql",
        bind.ip(),
        application.port()
    );
    application.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
