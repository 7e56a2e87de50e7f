//! `trail verify`: walks the whole hash chain and names the first bad event (S4).

use crate::target::{Access, Target, TargetArgs};
use indicatif::{ProgressBar, ProgressStyle};
use trail_core::EventId;
use trail_core::chain::{self, Verifier};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: TargetArgs,
}

pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!("{what} {{bar:40}} {{pos}}/{{len}} events ({{per_sec}}, {{eta}} left)"))
            .expect("a valid template"),
    );
    bar
}

/// What a walk of the chain found.
pub struct Verdict {
    pub checked: u64,
    /// The last good event's id and hash.
    pub last: (EventId, chain::Hash),
    pub marker: Option<chain::PruneMarker>,
    /// The first bad event, and what is wrong with it.
    pub broken: Option<(EventId, String)>,
}

/// Walks the chain from the marker (or the start) up to the head seen at the start: a live
/// server keeps appending.
pub async fn walk(target: &Target, bar: &ProgressBar) -> anyhow::Result<Verdict> {
    let head = target.head().await?;
    let marker = target.prune_marker().await?;
    let start = marker.map_or(EventId::ZERO, |m| m.through);
    bar.set_length((head - start).max(0) as u64);
    let mut verifier = marker.as_ref().map_or_else(Verifier::new, Verifier::after);
    let mut broken: Option<(EventId, String)> = None;
    target
        .each_chunk_after(start, |events| {
            // A server shows a token without `read_all` and `details_all` only part of the
            // trail: that is no chain to verify, and no break to report.
            anyhow::ensure!(
                !target.saw_partial_view(),
                "this token does not see every event whole: verifying through a server needs the rights \
                 read_all and details_all (an auditor's or an administrator's token)"
            );
            for event in events.iter().filter(|e| e.id <= head) {
                let checked = match chain::from_hex(&event.hash) {
                    Some(hash) => verifier.check(event.id, &event.body, &hash).map_err(|e| e.to_string()),
                    None => Err(format!("event {}: the stored hash is malformed", event.id)),
                };
                if let Err(problem) = checked {
                    broken = Some((event.id, problem));
                    return Ok(false);
                }
            }
            bar.set_position(verifier.checked());
            Ok(events.last().is_some_and(|e| e.id < head))
        })
        .await?;
    Ok(Verdict { checked: verifier.checked(), last: verifier.last(), marker, broken })
}

/// Returns the process exit code: 0 for an intact chain, 1 for a broken one.
pub async fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let target = Target::open(&args.target, Access::Read).await?;
    let bar = progress_bar(0, "verifying");
    let verdict = walk(&target, &bar).await?;
    if let Some((id, problem)) = verdict.broken {
        bar.abandon();
        eprintln!("chain broken: {problem}");
        println!("FAILED at event {id} ({} events verified before it)", verdict.checked);
        return Ok(1);
    }
    bar.finish_and_clear();
    let (last_id, last_hash) = verdict.last;
    let pruned = verdict.marker.map_or(String::new(), |m| format!(" after the purge through id {}", m.through));
    println!("OK: {} events verified{pruned}; head {} {}", verdict.checked, last_id, chain::to_hex(&last_hash));
    Ok(0)
}
