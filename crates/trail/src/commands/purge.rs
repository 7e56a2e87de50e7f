//! `trail purge`: removes the events older than a number of days (S3), locally or through a
//! server; the purge is itself an event, and `trail verify` still passes after it.

use crate::target::{Access, Target, TargetArgs};
use reqwest::Method;
use serde_json::json;
use trail_core::EventId;

#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Purge the events older than this many days
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    older_than_days: u32,
    /// Events per transaction
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
}

pub async fn run(args: PurgeArgs) -> anyhow::Result<()> {
    let target = Target::open(&args.target, Access::Write).await?;
    let (purged, through) = match &target {
        Target::Local(store) => {
            let cutoff =
                jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(args.older_than_days));
            let user = std::env::var("USER").unwrap_or_else(|_| "local".into());
            let report = store.purge(cutoff, args.batch, &user).await?;
            (report.purged, report.marker.map(|m| m.through))
        }
        Target::Remote { .. } => {
            let body = json!({"older_than_days": args.older_than_days, "batch": args.batch});
            let answer = target.call_json(Method::POST, "/api/v1/retention/purge", Some(body)).await?;
            (answer["purged"].as_u64().unwrap_or(0), answer["pruned_through"].as_i64().map(EventId::new))
        }
    };
    match through {
        Some(through) if purged > 0 => println!("purged {purged} events; the chain now starts after id {through}"),
        _ => {
            println!("nothing to purge: no event is older than {} days at the start of the chain", args.older_than_days)
        }
    }
    Ok(())
}
