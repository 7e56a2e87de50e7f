//! The audit against checkpoints held outside: each way events can differ from what was signed.

use trail_core::EventId;
use trail_core::audit::{Audit, AuditSummary, Discrepancy};
use trail_core::checkpoint::Checkpoint;
use trail_core::tree::{Frontier, Hash, leaf_hash_of_bytes};

fn leaf(i: u64) -> Hash {
    leaf_hash_of_bytes(format!("event {i}").as_bytes())
}

/// The checkpoint of the first `size` of ten leaves, as signed before anything changed.
fn signed(size: u64) -> Checkpoint {
    let mut frontier = Frontier::new();
    (1..=size).for_each(|i| drop(frontier.push(leaf(i))));
    Checkpoint { origin: "trail/test".into(), size, root: frontier.root(), next_key: None }
}

/// Walks events 1..=10 as `leaves` gives them (id, leaf).
fn walk(checkpoints: &[Checkpoint], leaves: impl Iterator<Item = (i64, Hash)>) -> Result<AuditSummary, Discrepancy> {
    let mut audit = Audit::new(Frontier::new(), checkpoints)?;
    for (id, hash) in leaves {
        audit.push(EventId::new(id), hash)?;
    }
    audit.finish()
}

fn intact() -> impl Iterator<Item = (i64, Hash)> {
    (1..=10).map(|i| (i as i64, leaf(i)))
}

#[test]
fn intact_events_confirm_every_checkpoint_and_the_rest_is_counted() {
    let summary = walk(&[signed(7), signed(3)], intact()).unwrap();
    assert_eq!(summary, AuditSummary { confirmed: 2, covered_through: 7, uncovered: 3 });
    assert_eq!(walk(&[], intact()).unwrap().uncovered, 10, "without checkpoints nothing is covered");
}

#[test]
fn a_changed_event_is_placed_between_the_checkpoints_around_it() {
    let changed = intact().map(|(id, hash)| if id == 5 { (id, leaf(55)) } else { (id, hash) });
    let found = walk(&[signed(3), signed(7)], changed).unwrap_err();
    assert_eq!(found, Discrepancy::RootDiffers { size: 7, first: EventId::new(4), last: EventId::new(7) });
    let first_changed = intact().map(|(id, hash)| if id == 1 { (id, leaf(11)) } else { (id, hash) });
    assert!(matches!(walk(&[signed(3)], first_changed), Err(Discrepancy::RootDiffers { size: 3, .. })));
}

#[test]
fn removed_reordered_and_truncated_events_are_named() {
    let removed = intact().filter(|(id, _)| *id != 5);
    let found = walk(&[signed(7)], removed).unwrap_err();
    assert_eq!(found, Discrepancy::OutOfPlace { found: EventId::new(6), expected: EventId::new(5) });

    let swapped = intact().map(|(id, hash)| match id {
        4 => (4, leaf(5)),
        5 => (5, leaf(4)),
        _ => (id, hash),
    });
    assert!(matches!(walk(&[signed(7)], swapped), Err(Discrepancy::RootDiffers { size: 7, .. })));

    let newest_gone = intact().filter(|(id, _)| *id <= 8);
    let found = walk(&[signed(3), signed(10)], newest_gone).unwrap_err();
    assert_eq!(found, Discrepancy::Truncated { size: 10, have: 8, first: EventId::new(9) });
}

#[test]
fn two_roots_for_one_size_are_a_fork() {
    let mut other = signed(7);
    other.root = leaf(0);
    assert_eq!(walk(&[signed(7), other], intact()).unwrap_err(), Discrepancy::Forked { size: 7 });
    assert!(walk(&[signed(7), signed(7)], intact()).is_ok(), "the same checkpoint twice is one");
}

#[test]
fn after_a_purge_the_walk_resumes_from_the_kept_edge() {
    let mut start = Frontier::new();
    (1..=4).for_each(|i| drop(start.push(leaf(i))));
    let held = [signed(3), signed(7)];
    assert_eq!(Audit::before(&start, &held), vec![signed(3)], "the purged ones are the stored tree's to answer");
    let mut audit = Audit::new(start, &held).unwrap();
    (5..=10).for_each(|i| audit.push(EventId::new(i as i64), leaf(i)).unwrap());
    assert_eq!(audit.finish().unwrap(), AuditSummary { confirmed: 1, covered_through: 7, uncovered: 3 });
}
