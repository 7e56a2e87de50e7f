//! This node's writer: every write goes through it, and those that append events through the
//! database-wide sequencer too (`tx.rs`).
//!
//! The writer groups the requests waiting for it into one transaction (group commit), so the
//! sequencer is taken once per group, not per request, and only by a group in which some request
//! may append. Each request that does more than append (a content, an account, a job) runs
//! under a savepoint of its own; the plain appends are inserted together, and each again alone
//! only if that fails (rolled back to a savepoint taken before them, or, in a transaction that
//! holds only appends, by starting the transaction over: every round trip under the sequencer
//! counts, see docs/scaling.md). A request that fails is rolled back alone, with the chain's
//! position, and the rest commit. What each request does is its own type's business
//! (`trail_store::write`); the writer only singles out plain appends, to insert them at once.

use crate::pg;
use crate::rows::Rows;
use crate::tx::{Carried, WriteTx};
use deadpool_postgres::Pool;
use trail_core::{EventId, chain};
use trail_store::write::{AppendEvents, Outcome, Pending, Queue, Queued};
use trail_store::{StoreError, group};

type Request = Box<dyn Pending<WriteTx>>;
type Append = Box<Queued<AppendEvents>>;

pub struct Writer {
    pool: Pool,
    /// The channel on which commits announce the new head to every node.
    channel: String,
    /// What the last transaction leaves the next: known partitions, the tree.
    carried: Carried,
    /// This node's name in its job announcements.
    node: std::sync::Arc<str>,
}

impl Writer {
    pub fn new(pool: Pool, channel: String, node: std::sync::Arc<str>) -> Writer {
        Writer { pool, channel, carried: Carried::default(), node }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut queue: Queue<WriteTx>) {
        while let Some(first) = queue.recv().await {
            let group = group::gather(first, &mut queue, |request| request.weight());
            self.group_commit(group).await;
        }
    }

    async fn group_commit(&mut self, group: Vec<Request>) {
        let mut done = Vec::with_capacity(group.len());
        let (appends, others): (Vec<Append>, Vec<Request>) = split_appends(group);
        let sequenced = !appends.is_empty() || others.iter().any(|request| request.appends_events());
        let begun = match self.pool.get().await {
            Ok(client) => {
                WriteTx::begin(client, std::mem::take(&mut self.carried), sequenced, Some(self.node.clone())).await
            }
            Err(error) => Err(crate::unreachable(error)),
        };
        let outcome = match begun {
            Ok(mut tx) => match write_group(&mut tx, appends, others, &mut done).await {
                Ok(()) => tx.commit(&self.channel).await,
                Err(error) => {
                    tx.roll_back().await;
                    Err(error)
                }
            },
            Err(error) => {
                refuse_all(appends, others, &error);
                Err(error)
            }
        };
        match outcome {
            Ok((stored, carried)) => {
                self.carried = carried;
                metrics::counter!("trail_store_commits_total").increment(1);
                metrics::counter!("trail_events_stored_total").increment(stored);
                done.into_iter().for_each(Outcome::answer);
            }
            Err(error) => {
                // Whatever the failure, partitions and the tree are looked up again.
                self.carried = Carried::default();
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                done.into_iter().for_each(|outcome| outcome.refuse(&error));
            }
        }
    }
}

/// The plain appends of a group, apart from the rest.
fn split_appends(group: Vec<Request>) -> (Vec<Append>, Vec<Request>) {
    let mut appends = Vec::new();
    let mut others = Vec::new();
    for request in group {
        if request.as_any().is::<Queued<AppendEvents>>() {
            appends.push(request.into_any().downcast().expect("checked just before"));
        } else {
            others.push(request);
        }
    }
    (appends, others)
}

/// Runs every request of the group; each outcome lands in `done`, and every request is answered
/// whatever happens. An error fails the whole group.
async fn write_group(
    tx: &mut WriteTx,
    appends: Vec<Append>,
    others: Vec<Request>,
    done: &mut Vec<Box<dyn Outcome>>,
) -> Result<(), StoreError> {
    // Alone in the transaction, the appends need no savepoint: if their insert fails, the
    // transaction starts over before they are tried one by one.
    let guard = if others.is_empty() { Guard::StartOver } else { Guard::Savepoint };
    let mut others = others.into_iter();
    while let Some(request) = others.next() {
        if let Err(error) = run_alone(tx, request, done).await {
            refuse_all(appends, others.collect(), &error);
            return Err(error);
        }
    }
    append_together(tx, appends, done, guard).await
}

/// How a group's appends, inserted together, are undone when the insert fails.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Rolled back to a savepoint taken before them.
    Savepoint,
    /// The whole transaction starts over (nothing else was done in it): two round trips fewer
    /// under the sequencer for every commit that only appends.
    StartOver,
}

fn refuse_all(appends: Vec<Append>, others: Vec<Request>, error: &StoreError) {
    others.into_iter().for_each(|request| request.refuse(error));
    appends.into_iter().for_each(|append| Pending::<WriteTx>::refuse(append, error));
}

/// A request under a savepoint of its own. A refusal or a failure rolls it back alone; the
/// error returned fails the whole group (the savepoint itself failed).
async fn run_alone(tx: &mut WriteTx, request: Request, done: &mut Vec<Box<dyn Outcome>>) -> Result<(), StoreError> {
    let before = tx.position();
    if let Err(error) = tx.savepoint("request").await {
        request.refuse(&error);
        return Err(error);
    }
    let outcome = request.apply(tx).await;
    let failed = outcome.error().is_some();
    done.push(outcome);
    if failed {
        tx.roll_back_to(before);
        tx.roll_back_savepoint("request").await
    } else {
        tx.release("request").await
    }
}

/// The plain appends of a group, inserted together under one savepoint; when that fails, each
/// again under its own, so that only the failing one is refused.
async fn append_together(
    tx: &mut WriteTx,
    appends: Vec<Append>,
    done: &mut Vec<Box<dyn Outcome>>,
    guard: Guard,
) -> Result<(), StoreError> {
    if appends.is_empty() {
        return Ok(());
    }
    let start = tx.position();
    match insert_together(tx, &appends, guard).await {
        Ok(numbered) => {
            done.extend(appends.into_iter().zip(numbered).map(|(append, ids)| append.answered(Ok(ids))));
            return Ok(());
        }
        Err(error) => {
            tracing::warn!(%error, "a group's appends failed together; retrying each alone");
            match guard {
                Guard::Savepoint => tx.roll_back_to(start),
                Guard::StartOver => {
                    if let Err(error) = tx.start_over().await {
                        refuse_all(appends, Vec::new(), &error);
                        return Err(error);
                    }
                }
            }
        }
    }
    let mut appends = appends.into_iter();
    while let Some(append) = appends.next() {
        if let Err(error) = run_alone(tx, append, done).await {
            refuse_all(appends.collect(), Vec::new(), &error);
            return Err(error);
        }
    }
    Ok(())
}

/// Numbers every append, then inserts them all at once (under a savepoint when `guard` says
/// so); answers their ids.
async fn insert_together(tx: &mut WriteTx, appends: &[Append], guard: Guard) -> Result<Vec<Vec<EventId>>, StoreError> {
    let batches: Vec<&[trail_core::EventBody]> = appends.iter().map(|append| append.request.0.as_slice()).collect();
    if guard == Guard::StartOver {
        return tx.append_streamed(&batches).await;
    }
    tx.savepoint("appends").await?;
    match tx.append_streamed(&batches).await {
        Ok(numbered) => {
            tx.release("appends").await?;
            Ok(numbered)
        }
        Err(error) => {
            tx.roll_back_savepoint("appends").await?;
            Err(error)
        }
    }
}

/// `trail migrate`: stores events that already have their ids and hashes, in one transaction
/// under the sequencer. Each must continue the chain from the head, recomputed here: a trail
/// that does not verify is refused whole.
pub async fn import(pool: &Pool, events: &[trail_core::Event], channel: &str) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(crate::unreachable)?;
    let mut tx = WriteTx::begin(client, Carried::default(), true, None).await?;
    let mut rows = Rows::default();
    for event in events {
        let ids = tx.number(std::slice::from_ref(&event.body), &mut rows)?;
        let hash = tx.position().map(|p| chain::to_hex(&p.hash));
        if ids[0] != event.id || hash.as_deref() != Some(event.hash.as_str()) {
            tx.roll_back().await;
            return Err(StoreError::Corrupt(format!(
                "event {} does not continue the chain at id {} (its id or hash differs); verify the source",
                event.id, ids[0]
            )));
        }
    }
    if let Err(error) = tx.insert(&rows).await {
        tx.roll_back().await;
        return Err(error);
    }
    tx.commit(channel).await.map(drop)
}

/// `trail migrate` of a purged trail: the chain starts after the source's marker, and the tree
/// with the rows of the purged leaves (`tree_rows`, every leaf before the marker's). Only an
/// empty database may start so.
pub async fn start_after(
    client: &mut deadpool_postgres::Object,
    marker: &chain::PruneMarker,
    tree_rows: &[(u64, Vec<u8>)],
) -> Result<(), StoreError> {
    let leaves = trail_core::tree::size_through(marker.through);
    let carried =
        tree_rows.last().and_then(|(row, bytes)| trail_core::tree::leaves_stored(*row, bytes.len() as u64 / 32));
    let in_order = tree_rows.iter().enumerate().all(|(i, (row, _))| *row == i as u64);
    if leaves > 0 && (carried != Some(leaves) || !in_order) {
        return Err(StoreError::Corrupt(format!(
            "the purged trail's tree rows do not hold its {leaves} leaves; it cannot be carried"
        )));
    }
    let tx = client.transaction().await.map_err(pg)?;
    let head: EventId =
        EventId::new(tx.query_one("SELECT last_id FROM chain_head FOR UPDATE", &[]).await.map_err(pg)?.get(0));
    if head != EventId::ZERO {
        return Err(StoreError::Conflict(format!(
            "the database already holds events (through id {head}); migrate into an empty one"
        )));
    }
    let now = trail_core::time::to_micros(jiff::Timestamp::now());
    tx.execute("UPDATE chain_head SET last_id = $1, last_hash = $2", &[&marker.through.get(), &&marker.hash[..]])
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO prune_marker VALUES (1, $1, $2, $3) ON CONFLICT (singleton) DO UPDATE SET through = $1, hash = $2",
        &[&marker.through.get(), &&marker.hash[..], &now],
    )
    .await
    .map_err(pg)?;
    crate::tree::write(&tx, tree_rows).await?;
    tx.commit().await.map_err(pg)
}
