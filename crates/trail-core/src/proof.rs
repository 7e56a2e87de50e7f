//! A proof for one event that anyone can check offline (S4): the event as JSON, and a C2SP
//! [`tlog-proof`](https://c2sp.org/tlog-proof) giving its index, its inclusion proof and the
//! signed (and cosigned) checkpoint of a tree that holds it. With the trail's verifier key, and
//! the witnesses' keys it trusts, an auditor needs no server and no database to know that this
//! event, exactly as written, is in the trail every holder of that checkpoint sees.

use crate::checkpoint::{CheckpointError, VerifierKey};
use crate::rotation::TrailKeys;
use crate::tree::{self, Hash, InclusionProof};
use crate::witness::{CosignerVerifier, cosigned_by};
use crate::{Event, EventId};
use base64::Engine;
use serde::{Deserialize, Serialize};

const TLOG_PROOF: &str = "c2sp.org/tlog-proof@v1";
const FORMAT: &str = "trail-proof/v1";
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The file `trail proof` writes and `GET /api/v1/events/{id}/proof` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofFile {
    /// `trail-proof/v1`.
    pub format: String,
    /// The event, every stored field, as the API shows it.
    pub event: Event,
    /// The C2SP `tlog-proof`: the event's index, its inclusion proof, and the checkpoint.
    pub proof: String,
    /// The checkpoints that announced each new signing key, oldest first: with them, the key an
    /// auditor was given before a rotation still checks the proof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_rotations: Vec<String>,
}

/// What a proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub id: EventId,
    /// The size of the signed tree that holds it.
    pub size: u64,
    /// The trusted witnesses whose cosignature the checkpoint carries.
    pub cosigned_by: Vec<String>,
}

/// Why a proof does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("not a Trail proof file: {0}")]
    Malformed(String),
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("the proof is for leaf {found}, but event {id} is leaf {expected}")]
    OtherIndex { id: EventId, found: u64, expected: u64 },
    #[error("event {0} is not in the signed tree as it stands in the file: the event or the proof was changed")]
    NotIncluded(EventId),
    #[error("the checkpoint is not cosigned by {0}, a witness you trust")]
    NotCosigned(String),
}

impl ProofFile {
    /// The file for `event`, leaf `index` of the tree `checkpoint_note` signs, with its inclusion
    /// proof in that tree.
    pub fn new(
        event: Event,
        inclusion: &InclusionProof,
        checkpoint_note: &str,
        key_rotations: Vec<String>,
    ) -> ProofFile {
        let hashes: String = inclusion.iter().map(|h| format!("{}\n", tree::to_base64(h))).collect();
        let index = tree::leaf_index(event.id);
        let proof = format!("{TLOG_PROOF}\nindex {index}\n{hashes}\n{checkpoint_note}");
        ProofFile { format: FORMAT.to_owned(), event, proof, key_rotations }
    }

    /// Checks the file with no server: the checkpoint is signed with `key` (or a key that `key`
    /// handed the trail over to) and cosigned by every one of `witnesses`, and the event's leaf,
    /// at its index, leads to the checkpoint's root.
    pub fn verify(&self, key: &VerifierKey, witnesses: &[CosignerVerifier]) -> Result<Proven, ProofError> {
        if self.format != FORMAT {
            return Err(ProofError::Malformed(format!("format `{}`, not `{FORMAT}`", self.format)));
        }
        let (index, inclusion, note) = parse_tlog_proof(&self.proof)?;
        let mut keys = TrailKeys::new(vec![key.clone()]);
        keys.learn(self.key_rotations.iter().map(String::as_str));
        let signed = keys.open(note)?;
        let cosigned = cosigned_by(note, witnesses);
        if let Some(missing) = witnesses.iter().find(|w| !cosigned.iter().any(|name| name == w.name())) {
            return Err(ProofError::NotCosigned(missing.name().to_owned()));
        }
        let id = self.event.id;
        if id.get() < 1 || index != tree::leaf_index(id) {
            return Err(ProofError::OtherIndex {
                id,
                found: index,
                expected: tree::leaf_index(id.max(EventId::new(1))),
            });
        }
        let leaf = tree::leaf_hash(id, &self.event.body);
        let size = signed.checkpoint.size;
        tree::check_inclusion(&inclusion, size, signed.checkpoint.root, index, leaf)
            .map_err(|_| ProofError::NotIncluded(id))?;
        Ok(Proven { id, size, cosigned_by: cosigned })
    }
}

/// The index, inclusion proof and checkpoint note of a `tlog-proof` (its `extra` line, if any,
/// is skipped: nothing here needs it, and it is not authenticated).
fn parse_tlog_proof(text: &str) -> Result<(u64, InclusionProof, &str), ProofError> {
    let malformed = |why: &str| ProofError::Malformed(why.to_owned());
    let (head, note) = text.split_once("\n\n").ok_or_else(|| malformed("no empty line before the checkpoint"))?;
    let mut lines = head.lines();
    if lines.next() != Some(TLOG_PROOF) {
        return Err(malformed("the proof does not begin with c2sp.org/tlog-proof@v1"));
    }
    let mut line = lines.next().ok_or_else(|| malformed("no index line"))?;
    if line.starts_with("extra ") {
        line = lines.next().ok_or_else(|| malformed("no index line"))?;
    }
    let index = line.strip_prefix("index ").and_then(|i| i.parse().ok()).ok_or_else(|| malformed("no index line"))?;
    let hashes = lines
        .map(|line| {
            let bytes = BASE64.decode(line).map_err(|_| malformed("a proof line is not base64"))?;
            Ok(tree::hash_from(bytes.try_into().map_err(|_| malformed("a proof line is not a hash"))?))
        })
        .collect::<Result<Vec<Hash>, ProofError>>()?;
    Ok((index, hashes, note))
}
