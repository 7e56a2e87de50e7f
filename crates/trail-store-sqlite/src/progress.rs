//! Where the writer and the indexer are: the head the writer has committed (and a watch on it),
//! how far the indexer has indexed, and how many group commits there were. Both threads
//! publish here and readers and stats read it, so neither thread's module needs the other's.

use std::sync::atomic::{AtomicI64, Ordering};
use trail_core::EventId;

/// Positions the writer publishes for readers and stats.
pub struct Progress {
    pub head: AtomicI64,
    /// The same head, for those who wait for it to move.
    pub head_changes: tokio::sync::watch::Sender<EventId>,
    pub indexed_through: AtomicI64,
    /// Group commits so far: fewer than append requests when requests share fsyncs.
    pub commits: AtomicI64,
}

impl Progress {
    pub fn starting_at(head: EventId) -> Progress {
        Progress {
            head: AtomicI64::new(head.get()),
            head_changes: tokio::sync::watch::Sender::new(head),
            indexed_through: AtomicI64::new(0),
            commits: AtomicI64::new(0),
        }
    }

    pub fn publish_head(&self, head: EventId) {
        self.head.store(head.get(), Ordering::SeqCst);
        self.head_changes.send_if_modified(|seen| std::mem::replace(seen, head) != head);
    }
}
