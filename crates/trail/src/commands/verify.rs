//! `trail verify`: walks the whole hash chain and names the first bad event (S4); against a
//! database, checks each event's leaf in the stored tree too; and given checkpoints held
//! outside the trail (`--key`, `--checkpoints`), recomputes the tree from the events and checks
//! each signed root, which no one who can write the database can forge.

use crate::target::{Access, Target, TargetArgs};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use trail_core::EventId;
use trail_core::audit::{Audit, AuditSummary, Discrepancy};
use trail_core::chain::{self, Verifier};
use trail_core::checkpoint::{Checkpoint, VerifierKey};
use trail_core::rotation::{Rotation, TrailKeys};
use trail_core::tree::{self, Frontier};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The trail's verifier key, as `trail key show` prints it: the checkpoints must be signed
    /// with it, or with a key it handed the trail over to (a rotation)
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Checkpoints held outside the trail: signed notes, or the files a syslog server wrote from
    /// forwarded CHECKPOINT events
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "key")]
    checkpoints: Vec<PathBuf>,
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
    /// What the checkpoints held outside say, when any were given and the chain held.
    pub audit: Option<Result<AuditSummary, Discrepancy>>,
}

/// Walks the chain from the marker (or the start) up to the head seen at the start: a live
/// server keeps appending.
pub async fn walk(target: &Target, bar: &ProgressBar) -> anyhow::Result<Verdict> {
    walk_against(target, bar, None).await
}

/// The tree's edge where the events kept begin: empty, or, after a purge, read from the stored
/// tree (which a purge keeps).
async fn start_of_tree(target: &Target, marker: Option<&chain::PruneMarker>) -> anyhow::Result<Frontier> {
    let Some(marker) = marker else { return Ok(Frontier::new()) };
    let Target::Local(store) = target else {
        anyhow::bail!(
            "this trail was purged, and checking checkpoints past a purge reads the stored tree: run `trail verify` \
             where the database is (--data or --database) instead of through --server"
        );
    };
    let size = tree::size_through(marker.through);
    let indexes = tree::indexes_read_by(|reader| Frontier::resume(size, reader));
    let hashes = store.tree_hashes(indexes.clone()).await?;
    Ok(Frontier::resume(size, &tree::Fetched(indexes.into_iter().zip(hashes).collect()))?)
}

/// Walks the chain, and, given checkpoints held outside, the tree against them.
pub async fn walk_against(target: &Target, bar: &ProgressBar, held: Option<&[Checkpoint]>) -> anyhow::Result<Verdict> {
    let head = target.head().await?;
    let marker = target.prune_marker().await?;
    let start = marker.map_or(EventId::ZERO, |m| m.through);
    let (mut audit, mut broken) = (None, None);
    if let Some(held) = held {
        let start = start_of_tree(target, marker.as_ref()).await?;
        broken = check_purged(target, &start, held).await?;
        audit = Some(Audit::new(start, held));
    }
    // Checkpoints may reach past the head seen at the start: the walk goes as far as they do.
    let reach = audit.as_ref().and_then(|a| a.as_ref().ok()).map_or(0, Audit::reach);
    let limit = head.max(EventId::new(reach as i64));
    bar.set_length((limit - start).max(0) as u64);
    let mut verifier = marker.as_ref().map_or_else(Verifier::new, Verifier::after);
    let mut after = start;
    while broken.is_none() {
        // A damaged file fails mid-way: say how far the chain held before it.
        let (checked, through) = (verifier.checked(), after);
        let damaged =
            || format!("{checked} events checked, the chain whole through id {through}; reading past it failed");
        let events = target.read_after(after, 1000).await.with_context(damaged)?;
        // A server shows a token without `read_all` and `details_all` only part of the trail:
        // that is no chain to verify, and no break to report.
        anyhow::ensure!(
            !target.saw_partial_view(),
            "this token does not see every event whole: verifying through a server needs the rights read_all and \
             details_all (an auditor's or an administrator's token)"
        );
        let events: Vec<_> = events.into_iter().filter(|e| e.id <= limit).collect();
        let Some(last) = events.last() else { break };
        after = last.id;
        let stored_leaves = stored_leaves(target, &events).await.with_context(damaged)?;
        for (i, event) in events.iter().enumerate() {
            let leaf = tree::leaf_hash(event.id, &event.body);
            if let Err(found) = check_event(&mut verifier, event, &leaf, stored_leaves.as_ref().map(|s| &s[i])) {
                broken = Some(found);
                break;
            }
            if let Some(Ok(walking)) = audit.as_mut()
                && let Err(discrepancy) = walking.push(event.id, leaf)
            {
                audit = Some(Err(discrepancy));
            }
        }
        bar.set_position(verifier.checked());
    }
    let audit = match audit {
        Some(Ok(walking)) if broken.is_none() => Some(walking.finish()),
        Some(Ok(_)) | None => None,
        Some(Err(discrepancy)) => Some(Err(discrepancy)),
    };
    Ok(Verdict { checked: verifier.checked(), last: verifier.last(), marker, broken, audit })
}

/// The first problem with one event, and the event it is about: its link in the chain, or its
/// leaf in the stored tree (when the database is read directly).
fn check_event(
    verifier: &mut Verifier,
    event: &trail_core::Event,
    leaf: &tree::Hash,
    stored_leaf: Option<&tree::Hash>,
) -> Result<(), (EventId, String)> {
    let malformed = || (event.id, format!("event {}: the stored hash is malformed", event.id));
    let hash = chain::from_hex(&event.hash).ok_or_else(malformed)?;
    verifier.check(event.id, &event.body, &hash).map_err(|e| (e.at(), e.to_string()))?;
    if stored_leaf.is_some_and(|stored| stored != leaf) {
        let changed = "its leaf in the stored tree differs from the event (the event or the tree was changed after \
                       it was stored)";
        return Err((event.id, format!("event {}: {changed}", event.id)));
    }
    Ok(())
}

/// Checkpoints of purged events can only be held against the stored tree's roots: the first
/// that differs is a break.
async fn check_purged(
    target: &Target,
    start: &Frontier,
    held: &[Checkpoint],
) -> anyhow::Result<Option<(EventId, String)>> {
    let Target::Local(store) = target else { return Ok(None) };
    for checkpoint in Audit::before(start, held) {
        let root = trail_store::tree::root(&**store, checkpoint.size).await?;
        if root != checkpoint.root {
            let problem = format!(
                "the stored tree of the first {} events (purged since) differs from the checkpoint held outside",
                checkpoint.size
            );
            return Ok(Some((EventId::new(checkpoint.size as i64), problem)));
        }
    }
    Ok(None)
}

/// Each event's leaf as the stored tree holds it, when the trail is opened directly (a server
/// does not serve its stored tree).
async fn stored_leaves(target: &Target, events: &[trail_core::Event]) -> anyhow::Result<Option<Vec<tree::Hash>>> {
    let Target::Local(store) = target else { return Ok(None) };
    let indexes = events.iter().map(|e| tree::first_stored_index(tree::leaf_index(e.id))).collect();
    match store.tree_hashes(indexes).await {
        Ok(hashes) => Ok(Some(hashes)),
        Err(trail_store::StoreError::NotFound(missing)) => {
            anyhow::bail!("the stored tree is missing leaves ({missing}): rows were removed behind Trail's back")
        }
        Err(other) => Err(other.into()),
    }
}

/// The checkpoints in `files`, each signed with `key` or a key it handed the trail over to, as
/// the rotations held in those files or recorded in the trail (each signed by the key it
/// retires) say; and those rotations.
async fn held_checkpoints(
    key: &VerifierKey,
    files: &[PathBuf],
    target: &Target,
) -> anyhow::Result<(Vec<Checkpoint>, Vec<Rotation>)> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        found.extend(trail_core::checkpoint::notes_in(&text, key.name()).into_iter().map(|note| (file, note)));
    }
    let recorded = match target {
        Target::Local(store) => store.key_rotations().await?.into_iter().map(|c| c.note).collect(),
        _ => Vec::new(),
    };
    let mut keys = TrailKeys::new(vec![key.clone()]);
    let rotations = keys.learn(found.iter().map(|(_, note)| note.as_str()).chain(recorded.iter().map(String::as_str)));
    let mut held = Vec::new();
    for (file, note) in &found {
        let signed = keys.open(note).with_context(|| format!("a checkpoint in {} does not verify", file.display()))?;
        held.push(signed.checkpoint);
    }
    anyhow::ensure!(
        !held.is_empty(),
        "no checkpoint of {} in {}: give the files that hold the CHECKPOINT events or notes Trail sent",
        key.name(),
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok((held, rotations))
}

/// Returns the process exit code: 0 for an intact trail, 1 for a broken one.
pub async fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let target = Target::open(&args.target, Access::Read).await?;
    let held = match &args.key {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let key = VerifierKey::parse(&text)?;
            anyhow::ensure!(!args.checkpoints.is_empty(), "--key checks checkpoints: give them with --checkpoints");
            let (held, rotations) = held_checkpoints(&key, &args.checkpoints, &target).await?;
            for rotation in rotations {
                println!(
                    "key rotation at {} events: {} handed the trail over to {}",
                    rotation.size, rotation.retired, rotation.next
                );
            }
            Some(held)
        }
        None => None,
    };
    let bar = progress_bar(0, "verifying");
    let verdict = walk_against(&target, &bar, held.as_deref()).await?;
    if let Some((id, problem)) = verdict.broken {
        bar.abandon();
        eprintln!("chain broken: {problem}");
        println!("FAILED at event {id} ({} events verified before it)", verdict.checked);
        return Ok(1);
    }
    if let Some(Err(discrepancy)) = &verdict.audit {
        bar.abandon();
        eprintln!("checkpoint held outside contradicted: {discrepancy}");
        println!("FAILED {}", failure_place(discrepancy));
        return Ok(1);
    }
    bar.finish_and_clear();
    let (last_id, last_hash) = verdict.last;
    let pruned = verdict.marker.map_or(String::new(), |m| format!(" after the purge through id {}", m.through));
    println!("OK: {} events verified{pruned}; head {} {}", verdict.checked, last_id, chain::to_hex(&last_hash));
    match verdict.audit {
        Some(Ok(summary)) => println!(
            "checkpoints: {} held outside confirm every event through id {}; the newest {} events are covered by no \
             checkpoint held outside",
            summary.confirmed, summary.covered_through, summary.uncovered
        ),
        _ => println!(
            "the newest {} events are covered by no checkpoint held outside: give --key and --checkpoints to prove \
             them unchanged",
            verdict.checked
        ),
    }
    Ok(0)
}

/// Where a discrepancy puts the failure, for the result line.
fn failure_place(discrepancy: &Discrepancy) -> String {
    match discrepancy {
        Discrepancy::OutOfPlace { expected, .. } => format!("at event {expected}"),
        Discrepancy::RootDiffers { first, last, .. } => format!("between events {first} and {last}"),
        Discrepancy::Truncated { first, size, .. } => format!("at event {first}: events {first} to {size} are missing"),
        Discrepancy::Forked { size } => format!("at tree size {size}: the key signed two histories"),
    }
}
