//! What checkpoints held outside the trail prove about its events (S4). An auditor walks the
//! events in id order, recomputes the tree from them, and at each checkpoint's size compares the
//! root with the one signed: equal, every event up to there is exactly what was signed; not, some
//! event up to there was changed, inserted, reordered or removed. A checkpoint beyond the last
//! event says the newest events were removed.
//!
//! The chain and the stored tree name the exact event of a careless change; against someone who
//! rebuilt both, only the checkpoints held outside speak, and they narrow the change to the
//! events between the last checkpoint that holds and the first that does not.

use crate::EventId;
use crate::checkpoint::Checkpoint;
use crate::tree::{self, Frontier, Hash};

/// Where the events and the checkpoints held outside disagree.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Discrepancy {
    #[error("event {found} stands where event {expected} should: events were removed, inserted or renumbered")]
    OutOfPlace { found: EventId, expected: EventId },
    #[error(
        "the tree of the first {size} events differs from the checkpoint held outside: one of the events {first} to \
         {last} was changed, inserted, reordered or removed since it was signed"
    )]
    RootDiffers { size: u64, first: EventId, last: EventId },
    #[error(
        "a checkpoint held outside covers {size} events, but the trail ends at event {have}: events {first} to {size} \
         were removed"
    )]
    Truncated { size: u64, have: u64, first: EventId },
    #[error(
        "two checkpoints signed with the key give the tree of {size} events different roots: the key signed two \
         histories (stolen, or misused)"
    )]
    Forked { size: u64 },
}

/// What an audit confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    /// Checkpoints whose root the events gave again.
    pub confirmed: usize,
    /// The size of the newest one: every event up to it is as signed.
    pub covered_through: u64,
    /// Events after it, which no checkpoint held outside covers.
    pub uncovered: u64,
}

/// The walk: events in, discrepancies out.
pub struct Audit {
    frontier: Frontier,
    /// Checkpoints still ahead of the walk, by size.
    ahead: std::collections::VecDeque<Checkpoint>,
    confirmed: usize,
    covered_through: u64,
}

impl Audit {
    /// An audit resuming from `start` (the tree's edge at the first event kept, after a purge;
    /// empty otherwise). Checkpoints of no more leaves than `start` are left out: the events they
    /// cover are gone, so only the stored tree can answer for them (see [`Audit::before`]).
    pub fn new(start: Frontier, checkpoints: &[Checkpoint]) -> Result<Audit, Discrepancy> {
        let mut sorted: Vec<Checkpoint> = checkpoints.to_vec();
        sorted.sort_by_key(|c| c.size);
        sorted.dedup();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0].size == pair[1].size) {
            return Err(Discrepancy::Forked { size: pair[0].size });
        }
        let covered_through = start.size();
        let ahead = sorted.into_iter().filter(|c| c.size > covered_through).collect();
        Ok(Audit { frontier: start, ahead, confirmed: 0, covered_through })
    }

    /// The checkpoints among `checkpoints` that a walk from `start` cannot check.
    pub fn before(start: &Frontier, checkpoints: &[Checkpoint]) -> Vec<Checkpoint> {
        checkpoints.iter().filter(|c| c.size <= start.size()).cloned().collect()
    }

    /// The largest size a checkpoint asks the walk to reach.
    pub fn reach(&self) -> u64 {
        self.ahead.back().map_or(0, |c| c.size)
    }

    /// The next event, by id, with its leaf hash.
    pub fn push(&mut self, id: EventId, leaf: Hash) -> Result<(), Discrepancy> {
        let expected = self.frontier.size();
        if tree::leaf_index(id) != expected {
            return Err(Discrepancy::OutOfPlace { found: id, expected: EventId::new(expected as i64 + 1) });
        }
        let _ = self.frontier.push(leaf);
        while let Some(next) = self.ahead.front().filter(|c| c.size == self.frontier.size()) {
            if next.root != self.frontier.root() {
                return Err(Discrepancy::RootDiffers {
                    size: next.size,
                    first: EventId::new(self.covered_through as i64 + 1),
                    last: EventId::new(next.size as i64),
                });
            }
            self.covered_through = next.size;
            self.confirmed += 1;
            self.ahead.pop_front();
        }
        Ok(())
    }

    /// The end of the events: a checkpoint still ahead covers events that are gone.
    pub fn finish(self) -> Result<AuditSummary, Discrepancy> {
        let have = self.frontier.size();
        if let Some(next) = self.ahead.front() {
            return Err(Discrepancy::Truncated { size: next.size, have, first: EventId::new(have as i64 + 1) });
        }
        Ok(AuditSummary {
            confirmed: self.confirmed,
            covered_through: self.covered_through,
            uncovered: have - self.covered_through,
        })
    }
}
