//! `trail migrate`: moves a SQLite trail into PostgreSQL, then verifies the copy (S1). The
//! events keep their ids, times and hashes; each batch must continue the chain in PostgreSQL,
//! which recomputes it. Run again after an interruption, it resumes after the last event it
//! copied.

use crate::commands::verify;
use crate::config::{self, Database};
use crate::target::Target;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::sync::Arc;
use trail_core::EventId;
use trail_core::chain::{self, PruneMarker};
use trail_core::operations::LogQuery;
use trail_store::prelude::*;
use trail_store_postgres::PgStore;
use trail_store_sqlite::SqliteStore;

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The PostgreSQL database to move into: postgres://USER@HOST:PORT/DATABASE
    #[arg(long)]
    to: String,
    /// The data directory of the SQLite trail to move
    #[arg(long, env = "TRAIL_DATA", default_value = config::DEFAULT_DATA)]
    data: PathBuf,
    /// Events per transaction
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
}

/// Returns the process exit code: 0 when the copy verifies, 1 when it does not.
pub async fn run(args: MigrateArgs) -> anyhow::Result<i32> {
    let path = args.data.join(config::DATABASE_FILE);
    if !path.exists() {
        bail!("there is no trail at {}; point --data at the data directory to move", path.display());
    }
    // The writer's lock: no server adds events while they are copied.
    let source = SqliteStore::open(&path).context("stop the server using this trail before migrating it")?;
    let Database::Postgres { url, .. } = Database::resolve(Some(&args.to), &args.data)? else {
        bail!("--to must be a postgres:// URL");
    };
    let target = Arc::new(PgStore::connect(&url, None).await?);
    // Under the writer's lock, neither moves while this runs.
    let (head, marker) = (source.stats().await?.head, source.prune_marker().await?);
    let after = resume_point(&source, &target, marker.as_ref()).await?;
    let copied = copy_events(&source, &target, (after, head), args.batch.max(1)).await?;
    let moved = copy_state(&source, &target).await?;

    let verdict = verify::walk(&Target::Local(target.clone()), &indicatif::ProgressBar::hidden()).await?;
    let expected = match source.get(head).await? {
        Some(event) => (event.id, chain::from_hex(&event.hash).context("the SQLite trail's head hash is malformed")?),
        None => marker.map_or((EventId::ZERO, chain::GENESIS), |m| (m.through, m.hash)),
    };
    println!("migrated {copied} events and {moved}");
    if let Some((id, problem)) = verdict.broken {
        println!("FAILED: the copy does not verify at event {id}: {problem}");
        return Ok(1);
    }
    if verdict.last != expected {
        println!(
            "FAILED: the copy ends at event {} {}, the SQLite trail at {} {}",
            verdict.last.0,
            chain::to_hex(&verdict.last.1),
            expected.0,
            chain::to_hex(&expected.1)
        );
        return Ok(1);
    }
    println!(
        "OK: {} events verified in PostgreSQL; head {} {} as in SQLite",
        verdict.checked,
        expected.0,
        chain::to_hex(&expected.1)
    );
    Ok(0)
}

/// Where copying starts: after the last event already in PostgreSQL, which must be this
/// trail's, or after the SQLite trail's purge marker when PostgreSQL is empty.
async fn resume_point(source: &SqliteStore, target: &PgStore, marker: Option<&PruneMarker>) -> anyhow::Result<EventId> {
    let held = target.stats().await?.head;
    if held == EventId::ZERO {
        if let Some(marker) = marker {
            let tree_rows = source.tree_rows_before(trail_core::tree::size_through(marker.through)).await?;
            target.start_after(marker, &tree_rows).await?;
            return Ok(marker.through);
        }
        return Ok(EventId::ZERO);
    }
    let same = match (source.get(held).await?, target.get(held).await?) {
        (Some(ours), Some(theirs)) => ours.hash == theirs.hash,
        // Nothing copied yet after starting from the marker.
        _ => marker.is_some_and(|m| m.through == held),
    };
    if !same {
        bail!(
            "the database already holds another trail (its event {held} is not this trail's); migrate into an empty database"
        );
    }
    Ok(held)
}

async fn copy_events(
    source: &SqliteStore,
    target: &PgStore,
    (mut after, head): (EventId, EventId),
    batch: usize,
) -> anyhow::Result<u64> {
    let bar = verify::progress_bar((head - after).max(0) as u64, "migrating");
    let mut copied = 0u64;
    loop {
        let events = source.read_after(after, batch).await?;
        let Some(last) = events.last() else { break };
        after = last.id;
        target.import(&events).await.with_context(|| format!("copying the events after id {}", events[0].id - 1))?;
        copied += events.len() as u64;
        bar.set_position(copied);
    }
    bar.finish_and_clear();
    Ok(copied)
}

/// Accounts, tokens, sessions, device contents, jobs with their logs, forwarding cursors and
/// checkpoints.
async fn copy_state(source: &SqliteStore, target: &PgStore) -> anyhow::Result<String> {
    let state = source.export_state().await?;
    target.replace_state(&state).await?;
    let mut lines = 0usize;
    for record in &state.jobs {
        let mut after = 0;
        loop {
            let query =
                LogQuery { job: record.job.id, target: None, contains: None, after, limit: 5_000, deadline: None };
            let page = source.job_log(query).await?.entries;
            let Some(last) = page.last() else { break };
            after = last.seq;
            lines += page.len();
            target.append_job_log(record.job.id, page.into_iter().map(|stored| stored.entry).collect()).await?;
        }
    }
    Ok(format!(
        "{} accounts, {} tokens, {} sessions, {} device contents, {} jobs with {lines} log entries, {} forwarding \
         cursors, {} checkpoints",
        state.accounts.len(),
        state.tokens.len(),
        state.sessions.len(),
        state.contents.len(),
        state.jobs.len(),
        state.cursors.len(),
        state.checkpoints.len()
    ))
}
