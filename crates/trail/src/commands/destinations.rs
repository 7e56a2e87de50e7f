//! `trail destinations`: each forwarding destination with its backlog and last error, from a
//! running server (live) or from the local data directory and configuration file (cursors only).

use crate::config::FileConfig;
use crate::target::{Access, Target, TargetArgs};
use reqwest::Method;
use std::path::PathBuf;
use trail_core::EventId;
use trail_forward::DestinationReport;
use trail_store::Store;

#[derive(clap::Args, Debug)]
pub struct DestinationsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The configuration file naming the destinations (without --server)
    #[arg(long, env = "TRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    action: Option<DestinationsAction>,
}

#[derive(clap::Subcommand, Debug)]
enum DestinationsAction {
    /// List the destinations (the default)
    List,
    /// Print the FreeRADIUS dictionary of Trail's vendor-specific attributes
    Dictionary,
}

pub async fn run(args: DestinationsArgs) -> anyhow::Result<()> {
    if matches!(args.action, Some(DestinationsAction::Dictionary)) {
        print!("{}", trail_forward::radius::DICTIONARY);
        return Ok(());
    }
    let reports = match Target::open(&args.target, Access::Read).await? {
        target @ Target::Remote { .. } => {
            let listed = target.call_json(Method::GET, "/api/v1/destinations", None).await?;
            serde_json::from_value(listed["destinations"].clone())?
        }
        Target::Local(store) => local_reports(&*store, args.config).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    println!(
        "{:<16}  {:<6}  {:<28}  {:>10}  {:>8}  {:<10}  LAST ERROR",
        "NAME", "TYPE", "TARGET", "DELIVERED", "BACKLOG", "STATE"
    );
    for r in &reports {
        let error = r.last_error.as_ref().map_or(String::from("-"), |e| format!("{} {}", e.at, e.message));
        println!(
            "{:<16}  {:<6}  {:<28}  {:>10}  {:>8}  {:<10}  {error}",
            r.name, r.type_name, r.target, r.delivered_through, r.backlog, r.state
        );
    }
    Ok(())
}

/// Without a server: the configured destinations and their saved cursors.
async fn local_reports(store: &dyn Store, config: Option<PathBuf>) -> anyhow::Result<Vec<DestinationReport>> {
    let file = FileConfig::load(config.as_deref())?;
    if file.destinations.is_empty() {
        anyhow::bail!("no destinations: pass the server's --config, or ask the server with --server");
    }
    let head = store.stats().await?.head;
    let mut reports = Vec::new();
    for destination in &file.destinations {
        let delivered_through = store.forward_cursor(destination.name()).await?.unwrap_or(EventId::ZERO);
        reports.push(DestinationReport {
            name: destination.name().to_owned(),
            type_name: destination.type_name().to_owned(),
            target: destination.target(),
            delivered_through,
            backlog: (head - delivered_through).max(0) as u64,
            sent: 0,
            state: "saved".to_owned(),
            last_error: None,
        });
    }
    Ok(reports)
}
