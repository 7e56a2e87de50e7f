//! Witnesses: C2SP cosignatures, the add-checkpoint body, and what a witness decides.

use trail_core::checkpoint::{SignedCheckpoint, SigningKey};
use trail_core::rotation::TrailKeys;
use trail_core::tree::{self, MemoryHashes};
use trail_core::witness::{AddCheckpoint, CosignerKey, CosignerVerifier, Refusal, cosigned_by};

const LOG_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

/// A log of `size` leaves; its signed checkpoint.
fn log(size: u64, salt: &str) -> (MemoryHashes, SignedCheckpoint) {
    let mut stored = MemoryHashes::default();
    for i in 0..size {
        stored.push(tree::leaf_hash_of_bytes(format!("{salt}{i}").as_bytes())).unwrap();
    }
    let root = tree::root(size, &stored).unwrap();
    (stored, SigningKey::parse(LOG_KEY).unwrap().sign(size, root))
}

fn witness() -> CosignerKey {
    CosignerKey::from_seed("witness.example/w1", [7; 32]).unwrap()
}

#[test]
fn keys_round_trip_and_refuse_what_is_not_theirs() {
    let key = witness();
    let again = CosignerKey::parse(&key.encoded()).unwrap();
    assert_eq!(again.verifier_key(), key.verifier_key());
    let verifier = CosignerVerifier::parse(&key.verifier_key().encoded()).unwrap();
    assert_eq!(verifier, key.verifier_key());
    assert!(
        CosignerVerifier::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err(),
        "a log's key (type 0x01) is not a witness's"
    );
    assert!(CosignerKey::parse(LOG_KEY).is_err());
    let mut wrong_id = key.verifier_key().encoded();
    wrong_id.replace_range(wrong_id.find('+').unwrap() + 1..wrong_id.find('+').unwrap() + 3, "zz");
    assert!(CosignerVerifier::parse(&wrong_id).is_err());
}

#[test]
fn a_cosignature_covers_the_checkpoint_and_its_time() {
    let (_, signed) = log(5, "a");
    let key = witness();
    let line = key.cosign(&signed.checkpoint.body(), 1_679_315_147);
    assert!(line.starts_with("\u{2014} witness.example/w1 "));
    let cosigned = format!("{}{line}", signed.note);
    assert_eq!(cosigned_by(&cosigned, &[key.verifier_key()]), vec!["witness.example/w1".to_owned()]);
    assert!(
        SignedCheckpoint::open(&cosigned, &SigningKey::parse(LOG_KEY).unwrap().verifier_key().clone()).is_ok(),
        "the log's own signature still holds beside it"
    );

    let other = CosignerKey::from_seed("witness.example/w2", [8; 32]).unwrap();
    assert!(cosigned_by(&cosigned, &[other.verifier_key()]).is_empty(), "another witness's key finds nothing");
    let (_, grown) = log(6, "a");
    let moved = format!("{}{line}", grown.note);
    assert!(cosigned_by(&moved, &[key.verifier_key()]).is_empty(), "a cosignature does not carry to another tree");
}

#[test]
fn add_checkpoint_bodies_round_trip_and_bad_ones_are_malformed() {
    let (stored, signed) = log(8, "a");
    let proof = tree::consistency_proof(8, 3, &stored).unwrap();
    let request = AddCheckpoint { old_size: 3, proof, note: signed.note.clone() };
    let body = request.to_body();
    assert!(body.starts_with("old 3\n"));
    assert_eq!(AddCheckpoint::parse(&body).unwrap(), request);
    for bad in ["old 03\n\nx", "old x\n\nx", "new 3\n\nx", "old 3\nnot base64!\n\nx", "old 3\n"] {
        assert!(matches!(AddCheckpoint::parse(bad), Err(Refusal::Malformed(_))), "{bad:?}");
    }
}

#[test]
fn a_witness_cosigns_only_what_extends_what_it_saw() {
    let log_key = SigningKey::parse(LOG_KEY).unwrap();
    let verifier = TrailKeys::new(vec![log_key.verifier_key().clone()]);
    let (_, first) = log(3, "a");
    let ask = |old_size, proof, note: &str| AddCheckpoint { old_size, proof, note: note.to_owned() };
    let seen = ask(0, vec![], &first.note).examine(&verifier, None).unwrap();
    assert_eq!(seen, first.checkpoint, "a first checkpoint needs no proof");

    let (grown_stored, grown) = log(8, "a");
    let proof = tree::consistency_proof(8, 3, &grown_stored).unwrap();
    assert_eq!(ask(3, proof.clone(), &grown.note).examine(&verifier, Some(&seen)).unwrap(), grown.checkpoint);
    assert_eq!(ask(0, vec![], &grown.note).examine(&verifier, Some(&seen)), Err(Refusal::Stale { latest: 3 }));
    assert_eq!(
        ask(9, vec![], &grown.note).examine(&verifier, Some(&seen)),
        Err(Refusal::OldSizeAbove { old: 9, size: 8 })
    );

    // A rewritten history, signed with the log's own key: no proof from what the witness saw.
    let (rewritten_stored, rewritten) = log(8, "b");
    let forged_proof = tree::consistency_proof(8, 3, &rewritten_stored).unwrap();
    assert_eq!(ask(3, forged_proof, &rewritten.note).examine(&verifier, Some(&seen)), Err(Refusal::Inconsistent));
    assert_eq!(ask(3, proof, &rewritten.note).examine(&verifier, Some(&seen)), Err(Refusal::Inconsistent));
    let (_, same_size) = log(3, "b");
    assert_eq!(ask(3, vec![], &same_size.note).examine(&verifier, Some(&seen)), Err(Refusal::Forked));
    assert_eq!(
        ask(3, vec![], &first.note).examine(&verifier, Some(&seen)).unwrap(),
        first.checkpoint,
        "the same again"
    );

    let unsigned = first.note.split("\n\n").next().unwrap().to_owned() + "\n\n";
    assert!(ask(0, vec![], &unsigned).examine(&verifier, None).is_err(), "an unsigned note is refused");
    let other_log = SigningKey::parse(&signed_note::generate_key(&mut Zero, "PeterNeumann").0).unwrap();
    let signed_by_another = other_log.sign(3, first.checkpoint.root);
    assert_eq!(ask(0, vec![], &signed_by_another.note).examine(&verifier, None), Err(Refusal::NotSigned));
}

/// Not random at all: a second key, the same on every run.
struct Zero;

impl rand_core::RngCore for Zero {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for Zero {}
