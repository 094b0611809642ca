//! The `kluis` command line: the server and its administration commands.
//! Each command parses its arguments, opens what it needs and calls one
//! function of `api` or `app`.

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
    /// Manage staff accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Manage partner API keys.
    Apikey {
        #[command(subcommand)]
        action: ApiKeyCommand,
    },
    /// Check and explain the access policy.
    Policy {
        #[command(subcommand)]
        action: PolicyCommand,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Apply the venues' retention limits now (the server also does so
    /// hourly).
    Retention {
        #[command(subcommand)]
        action: RetentionCommand,
    },
    /// The record of erasures kept in the key store.
    Erasures {
        #[command(subcommand)]
        action: ErasuresCommand,
    },
}

#[derive(Subcommand)]
enum ErasuresCommand {
    /// Apply every recorded erasure to the data database again: run it
    /// after restoring a data backup, before serving from it. Safe to
    /// repeat.
    Replay,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Anonymize every guest whose last visit is older than their venue's
    /// `retention_days`.
    Run {
        /// Only count who would be anonymized.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the HMAC chain; name the first modified or missing entry,
    /// and print the head to compare with the next run.
    Verify {
        /// A head published earlier (`SEQ:HMAC`, from the log line or the
        /// alert webhook): the chain must still reach it unchanged, which
        /// detects removal of the newest entries.
        #[arg(long, value_name = "SEQ:HMAC")]
        head: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        /// admin, manager or staff.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Venue id the role holds in; `*` (the default) for every venue.
        #[arg(long)]
        venue: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a partner platform; prints it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "partner")]
        role: String,
        /// A venue id the key may act for (repeat for several).
        #[arg(long = "venue", required = true)]
        venues: Vec<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policy files against the schema, offline.
    Check {
        /// The folder with model.conf and policy.csv (default: the
        /// configured policy_dir).
        dir: Option<PathBuf>,
    },
    /// Print the decision for one request and the lines that make it.
    Explain {
        /// `anonymous`, `guest`, `user:<id>` or `apikey:<id>`.
        #[arg(long)]
        subject: String,
        #[arg(long, default_value = "*")]
        venue: String,
        #[arg(long)]
        object: String,
        #[arg(long, default_value = "read")]
        action: String,
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
    /// Remove an old key version from the key file once nothing needs it;
    /// otherwise list what still does (sealed values per table and column,
    /// API keys by id, access codes and when they expire).
    Retire {
        /// The key version to remove; never the current one.
        version: u32,
    },
}

#[derive(Subcommand)]
enum VenueCommand {
    /// Create or update venues, opening hours and resources from a TOML file.
    Import { file: PathBuf },
}

/// Exit status for unusable settings, as `EX_USAGE`-style tools do.
const EXIT_BAD_SETTINGS: u8 = 2;

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
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
    if let Command::Policy {
        action: PolicyCommand::Check { dir: Some(dir) },
    } = &command
    {
        return check_policy(dir);
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
    api::telemetry::init_logging(&checked);
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
            if checked.settings.env == Environment::Production {
                api::import::refuse_plain_http_origins(&file.display().to_string(), &definitions)?;
            }
            let (store, _) = api::open_store(&checked).await?;
            let report = api::import_venues(&store, definitions).await?;
            tracing::info!(
                venues_created = report.venues_created,
                venues_updated = report.venues_updated,
                resources_created = report.resources_created,
                resources_updated = report.resources_updated,
                resources_retired = report.resources_retired,
                // Kept, not cancelled: the operator decides what to tell
                // those guests (ids only, no personal data).
                bookings_in_closures = report.reservations_in_closures.len(),
                bookings_outside_hours = report.reservations_outside_hours.len(),
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
        Command::Keys {
            action: KeysCommand::Retire { version },
        } => {
            let usage = api::retire_key(&checked, version, chrono::Utc::now()).await?;
            if usage.unsealed_fingerprints > 0 {
                tracing::warn!(
                    records = usage.unsealed_fingerprints,
                    "booking idempotency records from before sealed fingerprints: a retry under their keys is now refused (CONFLICT) instead of answered"
                );
            }
            tracing::info!(
                version,
                "retired key version {version}: the key file no longer holds it"
            );
            Ok(())
        }
        Command::User {
            action: UserCommand::Add { email, role, venue },
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let id =
                api::add_staff_account(&checked, &email, password, &role, venue.as_deref()).await?;
            tracing::info!(staff = %id, role = %role, "staff account created");
            Ok(())
        }
        Command::Apikey { action } => apikey(&checked, action).await,
        Command::Policy {
            action: PolicyCommand::Check { dir: None },
        } => match check_policy(&checked.settings.policy_dir) {
            code if code == ExitCode::SUCCESS => Ok(()),
            _ => Err(anyhow::anyhow!("the policy was refused")),
        },
        Command::Policy {
            action:
                PolicyCommand::Explain {
                    subject,
                    venue,
                    object,
                    action,
                },
        } => {
            let (store, _) = api::open_store(&checked).await?;
            let authorizer = api::authz::load(&checked.settings.policy_dir, store)
                .await
                .map_err(api::StartError::from)?;
            let (allowed, lines) = authorizer.explain(&subject, &venue, &object, &action);
            let mut out = format!(
                "{}: {subject} {action} {object} in {venue}\n",
                if allowed { "ALLOW" } else { "DENY" }
            );
            for line in &lines {
                out.push_str(&format!(
                    "  policy.csv:{}: p, {}, {}, {}\n",
                    line.line, line.role, line.object, line.action
                ));
            }
            if lines.is_empty() {
                out.push_str("  no permission line matches (deny by default)\n");
            }
            use std::io::Write;
            std::io::stdout().write_all(out.as_bytes())?;
            Ok(())
        }
        Command::Retention {
            action: RetentionCommand::Run { dry_run },
        } => {
            let (store, _) = api::open_store(&checked).await?;
            let run = tokio::task::spawn_blocking(move || {
                store.run_retention(chrono::Utc::now(), dry_run)
            })
            .await??;
            if !run.saved_cards.is_empty() {
                let gateways = plugins::build_gateways(&checked.settings.payments)?;
                let asked = api::forget_saved_cards(&gateways, &run.saved_cards).await;
                tracing::info!(asked, "payment providers asked to delete saved cards");
            }
            if dry_run {
                tracing::info!(
                    due = run.due,
                    "guests past their venue's retention limit (dry run: nothing changed)"
                );
            } else {
                tracing::info!(
                    anonymized = run.anonymized,
                    waiting_for_payments = run.waiting,
                    "retention applied"
                );
            }
            Ok(())
        }
        Command::Erasures {
            action: ErasuresCommand::Replay,
        } => {
            let replay = api::replay_erasures(&checked).await?;
            use std::io::Write;
            writeln!(
                std::io::stdout(),
                "applied {} of {} recorded erasures ({} already erased, {} not in this database, \
                 {} waiting for a payment to settle)",
                replay.applied,
                replay.recorded,
                replay.already,
                replay.absent,
                replay.waiting
            )?;
            Ok(())
        }
        Command::Audit {
            action: AuditCommand::Verify { head },
        } => {
            let head = head
                .map(|raw| {
                    store::AuditHead::parse(&raw)
                        .ok_or_else(|| anyhow::anyhow!("--head must be SEQ:HMAC (64 hex digits)"))
                })
                .transpose()?;
            let (store, _) = api::open_store(&checked).await?;
            let verification =
                tokio::task::spawn_blocking(move || store.verify_audit(head.as_ref())).await??;
            let entries = verification.entries;
            match verification.broken {
                None => {
                    let head = verification
                        .head
                        .map_or_else(|| "none".to_owned(), |h| h.to_string());
                    tracing::info!(entries, %head, "the audit trail is intact");
                    // The head on standard output, to keep and compare.
                    use std::io::Write;
                    writeln!(
                        std::io::stdout().lock(),
                        "audit trail intact: {entries} entries, head {head}"
                    )?;
                    Ok(())
                }
                Some(broken) => anyhow::bail!("the audit trail is broken: {broken}"),
            }
        }
        Command::Schema | Command::Keys { .. } | Command::Policy { .. } => Ok(()),
    }
}

/// `kluis policy check DIR`: the same messages the server logs.
fn check_policy(dir: &std::path::Path) -> ExitCode {
    match api::authz::check_dir(dir) {
        Ok(policy) => {
            eprintln!(
                "kluis: policy in {} is valid ({} permission lines)",
                dir.display(),
                policy.permissions.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("kluis: {}: {error}", dir.display());
            }
            ExitCode::from(EXIT_BAD_SETTINGS)
        }
    }
}

async fn apikey(checked: &Checked, action: ApiKeyCommand) -> anyhow::Result<()> {
    let (store, _) = api::open_store(checked).await?;
    use std::io::Write;
    let mut out = std::io::stdout();
    match action {
        ApiKeyCommand::Create {
            name,
            role,
            venues,
            expires_in_days,
        } => {
            let role = domain::auth::Role::parse(&role)?;
            let venues = venues
                .iter()
                .map(|v| domain::VenueId::parse(v).map(|id| id.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            let expires_at = expires_in_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
            let created = tokio::task::spawn_blocking(move || {
                app::access::create_api_key(&store, &name, role, &venues, expires_at, None)
            })
            .await??;
            writeln!(out, "{}", created.key)?;
            eprintln!(
                "kluis: API key {} created; the key above is shown once",
                created.row.id
            );
        }
        ApiKeyCommand::List => {
            let keys = tokio::task::spawn_blocking(move || store.api_keys()).await??;
            for key in keys {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.role,
                    state,
                    key.created_at.to_rfc3339(),
                    key.name
                )?;
            }
        }
        ApiKeyCommand::Revoke { id } => {
            let revoked =
                tokio::task::spawn_blocking(move || store.revoke_api_key(&id, chrono::Utc::now()))
                    .await??;
            anyhow::ensure!(revoked, "no active key with that id");
            eprintln!("kluis: revoked");
        }
    }
    Ok(())
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
