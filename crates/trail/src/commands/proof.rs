//! `trail proof` writes the proof that one event is in the trail; `trail verify-proof` checks
//! one with no server and no database, only the keys the auditor trusts.

use crate::target::{Access, Target, TargetArgs};
use anyhow::Context;
use std::path::{Path, PathBuf};
use trail_core::EventId;
use trail_core::checkpoint::VerifierKey;
use trail_core::proof::ProofFile;
use trail_core::witness::CosignerVerifier;

#[derive(clap::Args, Debug)]
pub struct ProofArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The event's id
    id: EventId,
    /// The file to write [default: standard output]
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyProofArgs {
    /// A proof file, as `trail proof` writes it
    file: PathBuf,
    /// The trail's verifier key, as `trail key show` prints it
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// A witness whose cosignature the proof must carry, as `trail witness key` prints it
    /// (repeat for several)
    #[arg(long = "witness-key", value_name = "FILE")]
    witness_keys: Vec<PathBuf>,
}

pub async fn proof(args: ProofArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target, Access::Read).await?;
    let file = match &target {
        Target::Local(store) => {
            let event = store.get(args.id).await?.with_context(|| format!("no event with id {}", args.id))?;
            trail_store::tree::event_proof(&**store, event).await?
        }
        Target::Remote { .. } => {
            let path = format!("/api/v1/events/{}/proof", args.id);
            serde_json::from_value(target.call_json(reqwest::Method::GET, &path, None).await?)
                .context("the server's proof is not a Trail proof file")?
        }
    };
    let text = serde_json::to_string_pretty(&file)? + "\n";
    match &args.output {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Returns the process exit code: 0 when the proof holds, 1 when it does not.
pub fn verify_proof(args: VerifyProofArgs) -> anyhow::Result<i32> {
    let key = VerifierKey::parse(&read(&args.key)?)?;
    let witnesses = args
        .witness_keys
        .iter()
        .map(|path| Ok(CosignerVerifier::parse(&read(path)?)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let file: ProofFile = serde_json::from_str(&read(&args.file)?)
        .with_context(|| format!("{} is not a Trail proof file", args.file.display()))?;
    match file.verify(&key, &witnesses) {
        Ok(proven) => {
            let cosigned = match proven.cosigned_by.as_slice() {
                [] => String::new(),
                names => format!(", cosigned by {}", names.join(", ")),
            };
            println!(
                "OK: event {} is in the tree of {} events signed by {}{cosigned}",
                proven.id,
                proven.size,
                key.label()
            );
            Ok(0)
        }
        Err(problem) => {
            println!("FAILED: {problem}");
            Ok(1)
        }
    }
}
