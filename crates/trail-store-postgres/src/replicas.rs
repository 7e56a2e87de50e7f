//! Streaming replicas for reads (`[database] replicas`): searches, exports and the UI's reads
//! go to a replica when it holds what the read needs, and to the primary when none does.
//!
//! How a replica can be trusted: the sequencer commits ids in id order (every append locks the
//! one-row chain head and moves it in the same transaction), and a streaming replica replays the
//! primary's commits in commit order. So a replica whose `chain_head` says `h` holds every event
//! through `h` and none after it: a prefix of the trail, never one with a hole. A read asks of a
//! replica only how far its prefix reaches:
//! - a page after a cursor needs the cursor's snapshot, so that it holds every event the first
//!   page counted (its `newer` count is then what that replica holds since the snapshot);
//! - an event's details need its id;
//! - events after an id need a full batch, or everything this node has heard committed, so
//!   that an export or a forwarder that learnt of the head reads up to it;
//! - a first page needs everything this node had heard committed [`MAX_LAG`] ago, so that an
//!   acknowledged event is searchable within that time through a replica too.
//!
//! A replica that lags further, or does not answer, leaves the read to the primary.

use crate::{pg_config, read_head, redact, schema};
use deadpool_postgres::{Object, Pool};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use trail_core::EventId;
use trail_store::StoreError;

/// How far behind what this node heard committed a first page may be.
pub const MAX_LAG: Duration = Duration::from_secs(1);

/// How often a failing replica is reported in the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

pub struct Replicas {
    replicas: Vec<Replica>,
    turn: AtomicUsize,
    heard: Arc<HeardHeads>,
    started: Instant,
}

struct Replica {
    pool: Pool,
    shown: String,
    /// When a failure was last reported, in milliseconds since the replicas were set up.
    warned_at: AtomicU64,
}

impl Replicas {
    /// Pools for `urls` (in `search_path` when given). A replica that does not answer, or does
    /// not hold this trail at this version yet, is used once it does (each read asks it).
    pub async fn connect(
        urls: &[String],
        search_path: Option<&str>,
        head: watch::Receiver<EventId>,
    ) -> Result<Replicas, StoreError> {
        let mut replicas = Vec::new();
        for url in urls {
            let pool = crate::pool(&pg_config(url, search_path)?)?;
            let shown = redact(url);
            // A replica may not have replayed the trail's tables, or its last migration, yet
            // (on a new trail, say): reads go to the primary until it has.
            let checked = match pool.get().await {
                Ok(client) => schema::check_current(&client, &shown).await,
                Err(error) => Err(crate::unreachable(error)),
            };
            if let Err(error) = checked {
                tracing::warn!(replica = %shown, %error, "the replica cannot take reads yet; the primary answers them until it can");
            }
            replicas.push(Replica { pool, shown, warned_at: AtomicU64::new(u64::MAX) });
        }
        let heard = Arc::new(HeardHeads::default());
        tokio::spawn(heard.clone().follow(head));
        Ok(Replicas { replicas, turn: AtomicUsize::new(0), heard, started: Instant::now() })
    }

    /// What a first page needs: everything heard committed [`MAX_LAG`] ago.
    pub fn fresh(&self) -> EventId {
        self.heard.as_of(MAX_LAG)
    }

    /// What reading events after `after`, at most `limit` of them, needs: a full batch, or
    /// everything this node has heard committed.
    pub fn after(&self, after: EventId, limit: usize, heard: EventId) -> EventId {
        EventId::new(after.get().saturating_add(limit as i64)).min(heard)
    }

    /// A connection to a replica that holds every event through `needed`, the replicas taken
    /// in turn; `None` when none does (or none answers): the read goes to the primary.
    pub async fn holding(&self, needed: EventId) -> Option<Object> {
        let first = self.turn.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.replicas.len() {
            let replica = &self.replicas[(first + offset) % self.replicas.len()];
            match replica.head().await {
                Ok((client, head)) if head >= needed => return Some(client),
                Ok(_) => metrics::counter!("trail_replica_reads_behind_total").increment(1),
                Err(error) => self.failed(replica, &error),
            }
        }
        None
    }

    /// A replica's read failed (it went away, or recovery cancelled the statement): the
    /// primary answers instead, and the log says so now and then.
    pub fn failed_read(&self, error: &StoreError) {
        metrics::counter!("trail_replica_reads_failed_total").increment(1);
        tracing::debug!(%error, "a read on a replica failed; the primary answered it");
    }

    fn failed(&self, replica: &Replica, error: &StoreError) {
        metrics::counter!("trail_replica_reads_failed_total").increment(1);
        let now = self.started.elapsed().as_millis() as u64;
        let last = replica.warned_at.load(Ordering::Relaxed);
        if last == u64::MAX || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64 {
            replica.warned_at.store(now, Ordering::Relaxed);
            tracing::warn!(replica = %replica.shown, %error, "the replica does not answer; reads go to the primary");
        }
    }
}

impl Replica {
    async fn head(&self) -> Result<(Object, EventId), StoreError> {
        let client = self.pool.get().await.map_err(crate::unreachable)?;
        let head = read_head(&client).await?;
        Ok((client, head))
    }
}

/// The heads this node heard, with when it heard them: enough to say what it had heard a
/// given time ago.
#[derive(Default)]
struct HeardHeads {
    /// Oldest first; the first is the newest head heard longer than [`MAX_LAG`] ago.
    heads: Mutex<VecDeque<(Instant, EventId)>>,
}

impl HeardHeads {
    /// Keeps up with `head`. The head known when it starts was committed before: it counts as
    /// heard long enough ago.
    async fn follow(self: Arc<Self>, mut head: watch::Receiver<EventId>) {
        let known = *head.borrow_and_update();
        self.heard(known, Instant::now().checked_sub(MAX_LAG).unwrap_or_else(Instant::now));
        while head.changed().await.is_ok() {
            let current = *head.borrow_and_update();
            self.heard(current, Instant::now());
        }
    }

    fn heard(&self, head: EventId, at: Instant) {
        let mut heads = self.heads.lock().expect("heard heads lock");
        heads.push_back((at, head));
        while heads.get(1).is_some_and(|(second, _)| at.duration_since(*second) >= MAX_LAG) {
            heads.pop_front();
        }
    }

    /// The newest head heard at least `ago` before now.
    fn as_of(&self, ago: Duration) -> EventId {
        let heads = self.heads.lock().expect("heard heads lock");
        let now = Instant::now();
        heads.iter().rev().find(|(at, _)| now.duration_since(*at) >= ago).map_or(EventId::ZERO, |(_, head)| *head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_page_needs_what_was_heard_a_lag_ago() {
        let heard = HeardHeads::default();
        let start = Instant::now() - Duration::from_secs(10);
        heard.heard(EventId::new(5), start);
        heard.heard(EventId::new(9), start + Duration::from_secs(3));
        heard.heard(EventId::new(12), Instant::now());
        assert_eq!(heard.as_of(MAX_LAG), EventId::new(9), "12 was heard just now");
        assert_eq!(heard.heads.lock().unwrap().len(), 2, "older heads are dropped");
        assert_eq!(HeardHeads::default().as_of(MAX_LAG), EventId::ZERO);
    }
}
