//! Key rotation: what a checkpoint signed by two keys teaches a verifier, and what it does not.

use trail_core::checkpoint::{CheckpointError, SignedCheckpoint, SigningKey};
use trail_core::rotation::TrailKeys;
use trail_core::tree;

const ORIGIN: &str = "audit.example/trail";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed(ORIGIN, [seed; 32]).unwrap()
}

fn root(size: u64) -> tree::Hash {
    tree::leaf_hash_of_bytes(format!("tree of {size}").as_bytes())
}

fn trusting(key: &SigningKey) -> TrailKeys {
    TrailKeys::new(vec![key.verifier_key().clone()])
}

#[test]
fn a_hand_over_announces_the_next_key_in_the_signed_body() {
    let (old, new) = (key(1), key(2));
    let handed = old.hand_over(&new, 10, root(10));
    assert_eq!(handed.checkpoint.next_key.as_deref(), Some(new.verifier_key().encoded()));
    assert!(handed.note.contains(&format!("\nnext-key {}\n\n", new.verifier_key().encoded())));
    // Both keys sign it, and each opens it alone.
    assert!(SignedCheckpoint::open(&handed.note, old.verifier_key()).is_ok());
    assert!(SignedCheckpoint::open(&handed.note, new.verifier_key()).is_ok());
    // The announcement is signed: changing the announced key breaks both signatures.
    let other = key(3);
    let swapped = handed.note.replace(new.verifier_key().encoded(), other.verifier_key().encoded());
    assert!(matches!(SignedCheckpoint::open(&swapped, old.verifier_key()), Err(CheckpointError::BadSignature(_))));
}

#[test]
fn the_old_key_teaches_the_new_one_and_stops_speaking_for_the_trail() {
    let (old, new) = (key(1), key(2));
    let before = old.sign(5, root(5));
    let handed = old.hand_over(&new, 10, root(10));
    let after = new.sign(15, root(15));
    let forged_with_the_old_key = old.sign(20, root(20));

    let mut keys = trusting(&old);
    assert!(keys.open(&after.note).is_err(), "the new key is not trusted before its announcement is seen");
    // Notes come in any order: the announcement is found among them.
    let rotations = keys.learn([after.note.as_str(), handed.note.as_str(), before.note.as_str()]);
    assert_eq!(rotations.len(), 1);
    assert_eq!((rotations[0].size, rotations[0].next.as_str()), (10, new.verifier_key().encoded()));
    assert_eq!(rotations[0].retired, old.verifier_key().label());

    for note in [&before.note, &handed.note, &after.note] {
        assert!(keys.open(note).is_ok(), "{note}");
    }
    match keys.open(&forged_with_the_old_key.note) {
        Err(CheckpointError::RetiredKey { size: 20, retired: 10, .. }) => {}
        other => panic!("a checkpoint signed with the retired key after the rotation is refused: {other:?}"),
    }
    assert!(keys.learn([handed.note.as_str()]).is_empty(), "a rotation is learnt once");
}

#[test]
fn announcements_that_do_not_hold_teach_nothing() {
    let (old, new, stranger) = (key(1), key(2), key(3));
    let mut keys = trusting(&old);
    // Signed by the new key alone: nothing the verifier trusts vouches for it.
    let self_announced = new.hand_over(&new, 10, root(10));
    // Signed by the old key alone: the announced key's holder never signed.
    let mut unproven = old.hand_over(&new, 10, root(10));
    let cut = unproven.note.rfind("\u{2014} ").unwrap();
    unproven.note.truncate(cut);
    assert!(SignedCheckpoint::open(&unproven.note, old.verifier_key()).is_ok());
    // Announced by a key that the trail retired before that size.
    let handed = old.hand_over(&new, 10, root(10));
    let late = old.hand_over(&stranger, 12, root(12));
    assert!(keys.learn([self_announced.note.as_str(), unproven.note.as_str()]).is_empty());
    assert_eq!(keys.learn([late.note.as_str(), handed.note.as_str()]).len(), 1, "only the first rotation counts");
    assert!(keys.open(&stranger.sign(13, root(13)).note).is_err());
}

#[test]
fn rotations_chain() {
    let (first, second, third) = (key(1), key(2), key(3));
    let one = first.hand_over(&second, 10, root(10));
    let two = second.hand_over(&third, 20, root(20));
    let latest = third.sign(30, root(30));
    let mut keys = trusting(&first);
    assert_eq!(keys.learn([two.note.as_str(), one.note.as_str()]).len(), 2, "learnt whatever the order");
    assert!(keys.open(&latest.note).is_ok());
    assert!(matches!(keys.open(&second.sign(25, root(25)).note), Err(CheckpointError::RetiredKey { .. })));
}
