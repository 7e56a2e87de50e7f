//! `trail key show`: the verifier key of the trail's checkpoints, for auditors, witnesses and
//! `trail verify --key`.

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
    let KeyAction::Show(args) = args.action;
    let file = FileConfig::load(args.config.as_deref())?;
    let data = args.data.or(file.data).unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA));
    let path = args.key_file.unwrap_or_else(|| file.checkpoints.key_file(&data));
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
