//! Group commit, as both backends' writers do it: a request, and whatever already waits behind
//! it, share one transaction.

use tokio::sync::mpsc;

/// Most events written in one group commit; the rest wait for the next.
pub const MAX_GROUP_EVENTS: usize = 20_000;

/// `first` and the requests already queued behind it, until they may write
/// [`MAX_GROUP_EVENTS`] events (by `weight`); never waits for more.
pub fn gather<C>(first: C, queue: &mut mpsc::Receiver<C>, weight: impl Fn(&C) -> usize) -> Vec<C> {
    let mut total = weight(&first);
    let mut group = vec![first];
    while total < MAX_GROUP_EVENTS {
        let Ok(next) = queue.try_recv() else { break };
        total += weight(&next);
        group.push(next);
    }
    group
}
