//! `trail witness serve` and `trail witness key`: a C2SP witness for trails run by others. It
//! cosigns a trail's checkpoints only while each extends the last one it cosigned, so a
//! history rewritten with the trail's own key gets no cosignature.

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use trail_checkpoints::witness::Witness;
use trail_core::checkpoint::VerifierKey;

#[derive(clap::Args, Debug)]
pub struct WitnessArgs {
    #[command(subcommand)]
    action: WitnessAction,
}

#[derive(clap::Subcommand, Debug)]
enum WitnessAction {
    /// Run the witness: POST /add-checkpoint cosigns the checkpoints of the trails it witnesses
    Serve(ServeArgs),
    /// Print the witness's verifier key (made at first use), for a trail's [[witnesses]] key
    Key(KeyArgs),
}

#[derive(clap::Args, Debug)]
struct KeyArgs {
    /// Where the witness keeps its key and what it cosigned
    #[arg(long, default_value = "witness-data")]
    data: PathBuf,
    /// The name of a key made now [default: `witness/` and 16 random hex digits]
    #[arg(long)]
    name: Option<String>,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Listen address
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// A trail to witness: a file with its verifier key, as `trail key show` prints it
    /// (repeat for several trails)
    #[arg(long = "log", value_name = "FILE", required = true)]
    logs: Vec<PathBuf>,
}

pub async fn run(args: WitnessArgs) -> anyhow::Result<()> {
    match args.action {
        WitnessAction::Key(args) => {
            let (witness, _) = Witness::open(&args.data, args.name.as_deref(), Vec::new())?;
            println!("{}", witness.verifier_key().encoded());
            Ok(())
        }
        WitnessAction::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut logs = Vec::new();
    for path in &args.logs {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        logs.push(VerifierKey::parse(&text).with_context(|| format!("--log {}", path.display()))?);
    }
    let names: Vec<String> = logs.iter().map(|log| log.name().to_owned()).collect();
    let (witness, made) = Witness::open(&args.key.data, args.key.name.as_deref(), logs)?;
    if made {
        println!("witness: made its key in {}", args.key.data.join(trail_checkpoints::witness::KEY_FILE).display());
    }
    println!("witness key: {}", witness.verifier_key().encoded());
    println!("witnessing: {}", names.join(", "));
    let listen = crate::config::parse_listen(&args.listen)?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    // Last, as the sign that the witness is ready.
    println!("trail witness listening on http://{}", listener.local_addr()?);
    let app = trail_server::witness::witness_app(Arc::new(witness));
    trail_server::serve(listener, app, super::serve::shutdown_signal()).await.context("the witness stopped")
}
