//! `trail`: the one binary. It parses the command line, picks the backend and hands over to the
//! library crates; nothing here knows HTTP or SQL.

mod commands;
mod credentials;
mod demo;
mod output;
mod target;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use trail::config;

/// glibc's malloc gives threads arenas of their own, and the server's runtime and blocking pool
/// have many threads: in `scripts/soak` its resident memory grew from 135 to 160 MB in four
/// minutes under glibc, and stayed at 97 MB with two arenas. mimalloc keeps it flat without a
/// setting to remember.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "trail", version, about = "The audit trail and system-event log for network operations")]
struct Cli {
    /// Log format on standard error
    #[arg(long, env = "TRAIL_LOG_FORMAT", value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (embedded SQLite in ./trail-data, listening on 127.0.0.1:8080)
    Serve(commands::serve::ServeArgs),
    /// Record an event
    Emit(commands::emit::EmitArgs),
    /// Search the trail, newest first
    Search(commands::read::SearchArgs),
    /// Show one event with its full message
    Show(commands::read::ShowArgs),
    /// Show the newest events, and with -f follow new ones
    Tail(commands::read::TailArgs),
    /// Check the whole hash chain; exits 1 and names the first bad event when it is broken
    Verify(commands::verify::VerifyArgs),
    /// Write every event as NDJSON or CSV
    Export(commands::transfer::ExportArgs),
    /// Store events from an NDJSON or CSV file, keeping their original times
    Import(commands::transfer::ImportArgs),
    /// Administer local users: add, delete, passwd, lock, unlock, list
    Users(commands::users::UsersArgs),
    /// Manage API tokens: create, revoke, list
    Tokens(commands::tokens::TokensArgs),
    /// Log in to a server and keep a token for later commands
    Login(commands::tokens::LoginArgs),
    /// Purge the events older than a number of days (recorded; verify still passes)
    Purge(commands::purge::PurgeArgs),
    /// Move a SQLite trail into PostgreSQL and verify the copy
    Migrate(commands::migrate::MigrateArgs),
    /// Jobs through a server: list, show, log
    Jobs(commands::jobs::JobsArgs),
    /// Device results through a server: archive, inventory, restore, commit, show
    Device(commands::jobs::DeviceArgs),
    /// Forwarding destinations with their backlog and last error; `dictionary` prints the
    /// FreeRADIUS dictionary
    Destinations(commands::destinations::DestinationsArgs),
    /// Write the proof that one event is in the trail, for anyone to check offline
    Proof(commands::proof::ProofArgs),
    /// Check a proof file with no server: exits 1 when it does not hold
    VerifyProof(commands::proof::VerifyProofArgs),
    /// The checkpoint signing key: `show` prints its verifier key
    Key(commands::key::KeyArgs),
    /// A witness that cosigns other trails' checkpoints: `serve`, `key`
    Witness(commands::witness::WitnessArgs),
    /// Print the catalog of built-in kinds (the source of docs/catalog.md)
    Catalog,
    /// Measure ingest and search against the performance targets, beside baselines
    Bench(commands::bench::BenchArgs),
}

fn init_logging(format: LogFormat, serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Serve(args) => commands::serve::run(args).await?,
        Command::Emit(args) => commands::emit::run(args).await?,
        Command::Search(args) => commands::read::search(args).await?,
        Command::Show(args) => commands::read::show(args).await?,
        Command::Tail(args) => commands::read::tail(args).await?,
        Command::Verify(args) => return commands::verify::run(args).await,
        Command::Export(args) => commands::transfer::export(args).await?,
        Command::Import(args) => commands::transfer::import(args).await?,
        Command::Users(args) => commands::users::run(args).await?,
        Command::Tokens(args) => commands::tokens::tokens(args).await?,
        Command::Login(args) => commands::tokens::login(args).await?,
        Command::Purge(args) => commands::purge::run(args).await?,
        Command::Migrate(args) => return commands::migrate::run(args).await,
        Command::Jobs(args) => commands::jobs::jobs(args).await?,
        Command::Device(args) => commands::jobs::device(args).await?,
        Command::Destinations(args) => commands::destinations::run(args).await?,
        Command::Key(args) => commands::key::run(args)?,
        Command::Proof(args) => commands::proof::proof(args).await?,
        Command::VerifyProof(args) => return commands::proof::verify_proof(args),
        Command::Witness(args) => commands::witness::run(args).await?,
        Command::Catalog => print!("{}", trail_core::catalog::markdown_table()),
        Command::Bench(args) => commands::bench::run(args).await?,
    }
    Ok(0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, matches!(cli.command, Command::Serve(_) | Command::Witness(_)));
    match run(cli.command).await {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
