//! Our signatures and proofs, checked by an implementation someone else wrote: a Sigsum log's
//! tree head is a C2SP checkpoint, its witnesses' cosignatures are C2SP `cosignature/v1`, and
//! its proofs are RFC 6962. So a checkpoint signed by `SigningKey`, cosigned by `CosignerKey`
//! (our witness's signer), with an inclusion proof from our tree, dressed as a Sigsum proof,
//! must satisfy Mullvad's `sigsum` verifier, which shares no code with ours.

use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};
use sigsum::{Hash, PolicyBuilder, PublicKey, SigsumSignature};
use trail_core::checkpoint::SigningKey;
use trail_core::tree::{self, MemoryHashes};
use trail_core::witness::CosignerKey;

const LOG_SEED: [u8; 32] = [5; 32];
const WITNESS_SEED: [u8; 32] = [6; 32];
const SUBMITTER_SEED: [u8; 32] = [7; 32];

fn public(seed: [u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes after the key name on a note's signature line (key id, then what it signs with).
fn signature_bytes(line: &str) -> Vec<u8> {
    let encoded = line.rsplit(' ').next().unwrap().trim();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap()
}

/// A Sigsum leaf: the checksum of a message, the submitter's signature of it, its key hash.
fn leaf(message: &[u8]) -> Vec<u8> {
    let checksum = Sha256::digest(Sha256::digest(message));
    let signed = [b"sigsum.org/v1/tree-leaf\0".as_slice(), &checksum].concat();
    let signature = ed25519_dalek::SigningKey::from_bytes(&SUBMITTER_SEED).sign(&signed).to_bytes();
    [checksum.as_slice(), &signature, &Sha256::digest(public(SUBMITTER_SEED))].concat()
}

/// A Sigsum proof that message `index` of `count` is logged, signed and cosigned by our code;
/// and the policy that trusts our log and witness keys.
fn sigsum_proof(count: u64, index: u64, cosign_time: u64) -> (String, sigsum::Policy) {
    let mut stored = MemoryHashes::default();
    for i in 0..count {
        stored.push(tree::leaf_hash_of_bytes(&leaf(format!("message {i}").as_bytes()))).unwrap();
    }
    let root = tree::root(count, &stored).unwrap();
    let log_keyhash = Sha256::digest(public(LOG_SEED));
    let log = SigningKey::from_seed(&format!("sigsum.org/v1/tree/{}", hex(&log_keyhash)), LOG_SEED).unwrap();
    let signed = log.sign(count, root);
    let witness = CosignerKey::from_seed("witness.example/w1", WITNESS_SEED).unwrap();
    let cosignature = signature_bytes(&witness.cosign(&signed.checkpoint.body(), cosign_time));
    let log_signature = signature_bytes(signed.note.lines().last().unwrap());
    let (time, witness_signature) = cosignature[4..].split_at(8);
    let inclusion = tree::inclusion_proof(count, index, &stored).unwrap();

    let submitter_leaf = leaf(format!("message {index}").as_bytes());
    let mut text = format!(
        "version=2\nlog={}\nleaf={} {}\n\nsize={count}\nroot_hash={}\nsignature={}\ncosignature={} {} {}\n\n\
         leaf_index={index}\n",
        hex(&log_keyhash),
        hex(&Sha256::digest(public(SUBMITTER_SEED))),
        hex(&submitter_leaf[32..96]),
        hex(&root.0),
        hex(&log_signature[4..]),
        hex(&Sha256::digest(public(WITNESS_SEED))),
        u64::from_be_bytes(time.try_into().unwrap()),
        hex(witness_signature),
    );
    for hash in &inclusion {
        text.push_str(&format!("node_hash={}\n", hex(&hash.0)));
    }
    let mut policy = PolicyBuilder::new();
    policy.add_log(PublicKey::from(public(LOG_SEED)), None).unwrap();
    policy.add_witness("w1".into(), PublicKey::from(public(WITNESS_SEED)), None).unwrap();
    policy.set_quorum("w1".into()).unwrap();
    (text, policy.build())
}

fn sigsum_verifies(text: &str, policy: &sigsum::Policy, index: u64) -> Result<(), String> {
    let signature = SigsumSignature::from_ascii(text).map_err(|e| e.to_string())?;
    let message = Hash::from(<[u8; 32]>::from(Sha256::digest(format!("message {index}").as_bytes())));
    let signers = [PublicKey::from(public(SUBMITTER_SEED))];
    sigsum::verify(&message, &signature, &signers, policy).map_err(|e| e.to_string())
}

#[test]
fn sigsum_accepts_our_checkpoint_signature_cosignature_and_inclusion_proof() {
    for (count, index) in [(1, 0), (7, 3), (8, 7), (13, 12), (13, 0)] {
        let (text, policy) = sigsum_proof(count, index, 1_764_000_000);
        sigsum_verifies(&text, &policy, index).unwrap_or_else(|e| panic!("{count} leaves, leaf {index}: {e}\n{text}"));
    }
}

#[test]
fn sigsum_refuses_what_was_changed() {
    let (text, policy) = sigsum_proof(7, 3, 1_764_000_000);
    // The cosignature's time is signed: another time makes it fail, as a changed size does.
    let other_time = text.replace(" 1764000000 ", " 1764000001 ");
    assert!(sigsum_verifies(&other_time, &policy, 3).unwrap_err().contains("cosignature"));
    let other_size = text.replace("size=7\n", "size=8\n");
    assert!(sigsum_verifies(&other_size, &policy, 3).is_err());
    assert!(sigsum_verifies(&text, &policy, 4).is_err(), "another message is not the logged one");
}
