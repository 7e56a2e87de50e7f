//! Offline proofs for one event: built from a tree, checked with only the keys, and their
//! inclusion proofs accepted by an independent RFC 6962 implementation (ct-merkle).

use ct_merkle::InclusionProof;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2::Sha256;
use trail_core::checkpoint::SigningKey;
use trail_core::proof::{ProofError, ProofFile};
use trail_core::tree::{self, MemoryHashes};
use trail_core::witness::CosignerKey;
use trail_core::{Event, EventId, EventInput};

const LOG_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

fn event(i: i64) -> Event {
    let input = EventInput {
        user: Some("alice".into()),
        kind: Some("DEVICE_EDITED".into()),
        name: Some(format!("edge{i}")),
        message: Some(format!("line one\nline {i}")),
        ..EventInput::default()
    };
    let body = input.validate(trail_core::time::parse_rfc3339("2026-06-15T12:00:00Z").unwrap()).unwrap();
    Event { id: EventId::new(i), body, hash: String::new() }
}

/// Ten events, a checkpoint of all of them cosigned by one witness, and the proof of event 4.
fn proof_of_4() -> (ProofFile, SigningKey, CosignerKey, MemoryBackedTree<Sha256, Vec<u8>>) {
    let (mut stored, mut theirs) = (MemoryHashes::default(), MemoryBackedTree::<Sha256, Vec<u8>>::new());
    for i in 1..=10 {
        let e = event(i);
        stored.push(tree::leaf_hash(e.id, &e.body)).unwrap();
        theirs.push(tree::canonical_bytes(e.id, &e.body));
    }
    let key = SigningKey::parse(LOG_KEY).unwrap();
    let witness = CosignerKey::from_seed("witness.example/w1", [3; 32]).unwrap();
    let signed = key.sign(10, tree::root(10, &stored).unwrap());
    let note = format!("{}{}", signed.note, witness.cosign(&signed.checkpoint.body(), 1_700_000_000));
    let inclusion = tree::inclusion_proof(10, 3, &stored).unwrap();
    (ProofFile::new(event(4), &inclusion, &note, Vec::new()), key, witness, theirs)
}

#[test]
fn a_proof_holds_offline_and_survives_its_file() {
    let (file, key, witness, _) = proof_of_4();
    assert!(file.proof.starts_with("c2sp.org/tlog-proof@v1\nindex 3\n"), "{}", file.proof);
    let proven = file.verify(key.verifier_key(), &[witness.verifier_key()]).unwrap();
    assert_eq!((proven.id, proven.size, proven.cosigned_by), (EventId::new(4), 10, vec!["witness.example/w1".into()]));
    let written = serde_json::to_string_pretty(&file).unwrap();
    let read: ProofFile = serde_json::from_str(&written).unwrap();
    assert!(read.verify(key.verifier_key(), &[]).is_ok(), "a written file reads back whole");
}

#[test]
fn an_independent_implementation_accepts_the_inclusion_proof() {
    let (file, _, _, theirs) = proof_of_4();
    let hashes: Vec<u8> = file
        .proof
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .flat_map(|l| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, l).unwrap())
        .collect();
    theirs
        .root()
        .verify_inclusion(
            &tree::canonical_bytes(file.event.id, &file.event.body),
            3,
            &InclusionProof::from_bytes(hashes),
        )
        .expect("ct-merkle accepts the proof of the file");
}

#[test]
fn any_change_to_the_file_makes_it_fail() {
    let (file, key, witness, _) = proof_of_4();
    let verify = |changed: &ProofFile| changed.verify(key.verifier_key(), &[witness.verifier_key()]);

    let mut message = file.clone();
    message.event.body.message.push('!');
    assert!(matches!(verify(&message), Err(ProofError::NotIncluded(_))));
    let mut user = file.clone();
    user.event.body.user = "mallory".into();
    assert!(matches!(verify(&user), Err(ProofError::NotIncluded(_))));
    let mut moved = file.clone();
    moved.event.id = EventId::new(5);
    assert!(matches!(verify(&moved), Err(ProofError::OtherIndex { .. })));
    let mut grown = file.clone();
    grown.proof = grown.proof.replacen("\n10\n", "\n11\n", 1);
    assert!(matches!(verify(&grown), Err(ProofError::Checkpoint(_))), "the checkpoint is signed");
    let mut hashes = file.clone();
    let first_hash = hashes.proof.lines().nth(2).unwrap().to_owned();
    hashes.proof = hashes.proof.replacen(&first_hash, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
    assert!(matches!(verify(&hashes), Err(ProofError::NotIncluded(_))));

    let other = CosignerKey::from_seed("witness.example/w2", [4; 32]).unwrap();
    let demanded = file.verify(key.verifier_key(), &[witness.verifier_key(), other.verifier_key()]);
    assert!(matches!(demanded, Err(ProofError::NotCosigned(name)) if name == "witness.example/w2"));
}
