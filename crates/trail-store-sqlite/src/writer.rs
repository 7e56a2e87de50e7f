//! The single writer: group commit and the hash chain.
//!
//! Every write goes through one thread that owns the only write connection. It takes every
//! request waiting in its queue, runs them in one transaction (each that can refuse under its own
//! savepoint, so a request is stored whole or not at all, and a refused one leaves the rest;
//! one that cannot, a plain append, fails its whole group if it fails) and commits once,
//! with `synchronous=FULL`: concurrent requests share one fsync. Answers go out only after the
//! commit returns, so an acknowledged event is durable (S2). What each request does is its own
//! type's business (`trail_store::write`); the writer never names a kind of write.
//!
//! After each commit it wakes the indexer (`index.rs`), which keeps the search index in a file of
//! its own, and the checkpointer (`checkpointer.rs`), which copies the WAL into the database:
//! both off the commit path. Once the WAL is past its mark, the writer has it begin again between
//! two groups.

use crate::checkpointer;
use crate::index::IndexMessage;
use crate::progress::Progress;
use crate::tx::WriteTx;
use futures_util::FutureExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use trail_store::write::{Outcome, Pending, Queue};
use trail_store::{StoreError, group};

type Request = Box<dyn Pending<WriteTx>>;

pub struct Writer {
    tx: WriteTx,
    progress: Arc<Progress>,
    indexer: std::sync::mpsc::SyncSender<IndexMessage>,
    wal: checkpointer::WalSize,
}

impl Writer {
    pub fn new(
        tx: WriteTx,
        progress: Arc<Progress>,
        indexer: std::sync::mpsc::SyncSender<IndexMessage>,
        wal: checkpointer::WalSize,
    ) -> Writer {
        progress.publish_head(tx.position().last_id);
        Writer { tx, progress, indexer, wal }
    }

    /// Runs until every sender is gone.
    pub fn run(mut self, mut queue: Queue<WriteTx>) {
        while let Some(first) = queue.blocking_recv() {
            let group = group::gather(first, &mut queue, |request| request.weight());
            self.group_commit(group);
            // A full queue only means the indexer already has a wake-up waiting.
            let _ = self.indexer.try_send(IndexMessage::Wake);
            self.wal.after_commit(&self.tx.conn);
        }
    }

    /// Runs every waiting request in one transaction and answers each after the commit.
    fn group_commit(&mut self, group: Vec<Request>) {
        let start = self.tx.position();
        let mut done = Vec::with_capacity(group.len());
        let mut pending = group.into_iter();
        let outcome = (|| -> Result<(), StoreError> {
            self.tx.execute("BEGIN IMMEDIATE")?;
            for request in pending.by_ref() {
                if request.can_refuse() {
                    self.in_savepoint(request, &mut done)?;
                } else {
                    self.unguarded(request, &mut done)?;
                }
            }
            self.tx.write_tree()?;
            self.tx.execute("COMMIT")
        })();
        match outcome {
            Ok(()) => {
                self.tx.committed();
                self.progress.publish_head(self.tx.position().last_id);
                self.progress.commits.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("trail_store_commits_total").increment(1);
                let stored = done.iter().map(|outcome| outcome.events_stored()).sum();
                metrics::counter!("trail_events_stored_total").increment(stored);
                done.into_iter().for_each(Outcome::answer);
            }
            Err(error) => {
                // Restore first: whatever the rollback does, the chain continues from the last
                // committed event.
                self.tx.roll_back_to(start);
                if !self.tx.transaction_lost() {
                    let _ = self.tx.execute("ROLLBACK");
                }
                tracing::error!(%error, "group commit failed; nothing of it was stored");
                done.into_iter().for_each(|outcome| outcome.refuse(&error));
                pending.for_each(|request| request.refuse(&error));
            }
        }
    }

    /// One request under a savepoint: stored whole, or rolled back whole with the chain's
    /// position; its outcome joins `done`. An error fails the whole group: the savepoint could
    /// not be released or rolled back, or SQLite dropped the transaction.
    fn in_savepoint(&mut self, request: Request, done: &mut Vec<Box<dyn Outcome>>) -> Result<(), StoreError> {
        let start = self.tx.position();
        if let Err(error) = self.tx.execute("SAVEPOINT request") {
            request.refuse(&error);
            return Err(error);
        }
        let Some(error) = self.run_into(request, done)? else {
            return self.tx.execute("RELEASE request");
        };
        self.tx.roll_back_to(start);
        if self.tx.transaction_lost() {
            return Err(error);
        }
        self.tx.execute("ROLLBACK TO request; RELEASE request")
    }

    /// A request that cannot refuse, without a savepoint: under one, SQLite's statement journal
    /// copies every page the request changes that the group's earlier requests changed (13 % of
    /// the writer's time under batch ingest). If it fails all the same, so does its group.
    fn unguarded(&mut self, request: Request, done: &mut Vec<Box<dyn Outcome>>) -> Result<(), StoreError> {
        self.run_into(request, done)?.map_or(Ok(()), Err)
    }

    /// Runs a request, keeps its outcome in `done` and returns its own failure, if it failed.
    /// SQLite's storage never waits (see `tx.rs`), so a request is done in one poll. One that
    /// is not is dropped, and its caller hears that the store closed.
    fn run_into(
        &mut self,
        request: Request,
        done: &mut Vec<Box<dyn Outcome>>,
    ) -> Result<Option<StoreError>, StoreError> {
        let outcome = request
            .apply(&mut self.tx)
            .now_or_never()
            .ok_or_else(|| StoreError::backend("a write request waited inside the SQLite writer, which never waits"))?;
        let failure = outcome.error().map(|error| StoreError::backend(error.to_string()));
        done.push(outcome);
        Ok(failure)
    }
}
