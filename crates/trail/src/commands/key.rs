//! `trail key show`: the verifier key of the trail's checkpoints, for auditors, witnesses and
//! `trail verify --key`; `trail key rotate`: a new key, which the trail's next checkpoint,
//! signed by both, announces.

use crate::config::{self, FileConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    action: KeyAction,
}

#[derive(clap::Subcommand, Debug)]
enum KeyAction {
    /// Print the verifier key line (`NAME+ID+KEY`) of the checkpoint signing key
    Show(KeyFileArgs),
    /// Make a new signing key; Trail's next checkpoint, signed with the old and the new key,
    /// announces it, and the old key's file is then removed. Restart Trail (every node, with
    /// both files) to hand over.
    Rotate(KeyFileArgs),
}

#[derive(clap::Args, Debug)]
struct KeyFileArgs {
    /// The data directory whose `checkpoint.key` to read [default: ./trail-data]
    #[arg(long, env = "TRAIL_DATA")]
    data: Option<PathBuf>,
    /// The configuration file, for its `data` and `[checkpoints] key_file`
    #[arg(long, env = "TRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// The key file itself, wherever the configuration says it is
    #[arg(long)]
    key_file: Option<PathBuf>,
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    match args.action {
        KeyAction::Show(args) => show(args),
        KeyAction::Rotate(args) => rotate(args),
    }
}

fn key_file(args: KeyFileArgs) -> anyhow::Result<PathBuf> {
    let file = FileConfig::load(args.config.as_deref())?;
    let data = args.data.or(file.data).unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA));
    Ok(args.key_file.unwrap_or_else(|| file.checkpoints.key_file(&data)))
}

fn rotate(args: KeyFileArgs) -> anyhow::Result<()> {
    let path = key_file(args)?;
    let (new, old) = trail_checkpoints::key::rotate(&path)?;
    let retiring = trail_checkpoints::key::retiring_file(&path);
    println!("new key: {}", new.verifier_key().encoded());
    println!("retiring: {} (kept in {} until the hand-over)", old.verifier_key().encoded(), retiring.display());
    println!(
        "restart Trail: its next checkpoint, signed with both keys, announces the new one, and {} is then removed. \
         On several nodes, give each both files first.",
        retiring.display()
    );
    Ok(())
}

fn show(args: KeyFileArgs) -> anyhow::Result<()> {
    let path = key_file(args)?;
    if !path.exists() {
        anyhow::bail!(
            "there is no checkpoint key at {}: `trail serve` makes it at first start (check --data, --config or \
             --key-file)",
            path.display()
        );
    }
    let key = trail_checkpoints::key::load(&path)?;
    println!("{}", key.verifier_key().encoded());
    Ok(())
}
