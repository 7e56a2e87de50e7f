//! Witnesses (S4): another party's Ed25519 key cosigns each checkpoint once it has checked that
//! the tree only grew since the last one it cosigned. A history rewritten with the trail's own
//! key cannot get a witness's cosignature, because the witness remembers the root it saw.
//!
//! The formats are C2SP's: cosignatures are `tlog-cosignature` v1 note signatures (type 0x04, a
//! timestamped Ed25519 signature over `cosignature/v1`, the time and the checkpoint body), and
//! the request is `tlog-witness`'s `add-checkpoint`. `signed_note` parses and checks notes but
//! knows only plain Ed25519 signatures, so the cosignature type is written here as a `Signer`
//! and a `Verifier` of its traits.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::rotation::TrailKeys;
use crate::tree::{self, Hash};
use base64::Engine;
use ed25519_dalek::{Signer as _, Verifier as _};
use signed_note::{Note, VerifierList};

/// The signature type of a `tlog-cosignature` v1 Ed25519 cosignature.
const COSIGNATURE_TYPE: u8 = 0x04;
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn key_id(name: &str, public: &ed25519_dalek::VerifyingKey) -> u32 {
    signed_note::key_id(name, &[&[COSIGNATURE_TYPE], public.as_bytes().as_slice()].concat())
}

/// The message a cosignature signs: its header, its time, and the checkpoint body.
fn cosigned_message(time: u64, body: &[u8]) -> Vec<u8> {
    [format!("cosignature/v1\ntime {time}\n").as_bytes(), body].concat()
}

/// A witness's signing key, encoded as `PRIVATE+KEY+NAME+ID+KEY` with the cosignature type.
pub struct CosignerKey {
    name: String,
    signing: ed25519_dalek::SigningKey,
}

impl CosignerKey {
    /// A key named `name` from 32 random bytes (the caller's randomness: no I/O here).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<CosignerKey, CheckpointError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CheckpointError::BadSigningKey(format!("`{name}` cannot name a key")));
        }
        Ok(CosignerKey { name: name.to_owned(), signing: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }

    pub fn parse(text: &str) -> Result<CosignerKey, CheckpointError> {
        let refused = |why: &str| CheckpointError::BadSigningKey(why.to_owned());
        let fields: Vec<&str> = text.trim().splitn(5, '+').collect();
        let ["PRIVATE", "KEY", name, id, key] = fields[..] else { return Err(refused("not PRIVATE+KEY+NAME+ID+KEY")) };
        let key = BASE64.decode(key).map_err(|e| refused(&e.to_string()))?;
        let seed: [u8; 32] = match key.split_first() {
            Some((&COSIGNATURE_TYPE, seed)) => seed.try_into().map_err(|_| refused("not an Ed25519 seed"))?,
            _ => return Err(refused("not a cosignature key (type 0x04)")),
        };
        let parsed = CosignerKey::from_seed(name, seed)?;
        if format!("{:08x}", key_id(name, &parsed.signing.verifying_key())) != id {
            return Err(refused("its id does not match its key"));
        }
        Ok(parsed)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret, encoded, for the witness's key file.
    pub fn encoded(&self) -> String {
        let public = self.signing.verifying_key();
        let secret = [&[COSIGNATURE_TYPE], self.signing.to_bytes().as_slice()].concat();
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, key_id(&self.name, &public), BASE64.encode(secret))
    }

    /// What those who trust this witness are given.
    pub fn verifier_key(&self) -> CosignerVerifier {
        CosignerVerifier { name: self.name.clone(), public: self.signing.verifying_key() }
    }

    /// The cosignature line of `body` (a checkpoint's), made at `time` (seconds since 1970).
    pub fn cosign(&self, body: &str, time: u64) -> String {
        let signature = self.signing.sign(&cosigned_message(time, body.as_bytes()));
        let public = self.signing.verifying_key();
        let bytes =
            [&key_id(&self.name, &public).to_be_bytes()[..], &time.to_be_bytes(), &signature.to_bytes()].concat();
        format!("\u{2014} {} {}\n", self.name, BASE64.encode(bytes))
    }
}

/// A witness's verifier key (`NAME+ID+KEY`, type 0x04), as `trail witness key` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignerVerifier {
    name: String,
    public: ed25519_dalek::VerifyingKey,
}

impl CosignerVerifier {
    pub fn parse(text: &str) -> Result<CosignerVerifier, CheckpointError> {
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_default();
        let refused = |why: &str| CheckpointError::BadVerifierKey(format!("{why}: `{line}`"));
        let fields: Vec<&str> = line.splitn(3, '+').collect();
        let [name, id, key] = fields[..] else { return Err(refused("not NAME+ID+KEY")) };
        let key = BASE64.decode(key).map_err(|e| refused(&e.to_string()))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&COSIGNATURE_TYPE, public)) => public.try_into().map_err(|_| refused("not an Ed25519 key"))?,
            _ => return Err(refused("not a witness's key (type 0x04)")),
        };
        let public = ed25519_dalek::VerifyingKey::from_bytes(&public).map_err(|e| refused(&e.to_string()))?;
        if !signed_note::is_key_name_valid(name) || format!("{:08x}", key_id(name, &public)) != id {
            return Err(refused("its name or id does not match its key"));
        }
        Ok(CosignerVerifier { name: name.to_owned(), public })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn encoded(&self) -> String {
        let key = [&[COSIGNATURE_TYPE], self.public.as_bytes().as_slice()].concat();
        format!("{}+{:08x}+{}", self.name, key_id(&self.name, &self.public), BASE64.encode(key))
    }
}

impl signed_note::Verifier for CosignerVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        key_id(&self.name, &self.public)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some((time, signature)) = sig.split_first_chunk::<8>() else { return false };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else { return false };
        self.public.verify(&cosigned_message(u64::from_be_bytes(*time), msg), &signature).is_ok()
    }
}

/// The witnesses among `witnesses` whose cosignatures `note` carries and which hold; a
/// cosignature that does not hold counts for nothing.
pub fn cosigned_by(note: &str, witnesses: &[CosignerVerifier]) -> Vec<String> {
    let Ok(parsed) = Note::from_bytes(note.as_bytes()) else { return Vec::new() };
    witnesses
        .iter()
        .filter(|witness| {
            let known = VerifierList::new(vec![Box::new((*witness).clone()) as Box<dyn signed_note::Verifier>]);
            parsed.verify(&known).is_ok()
        })
        .map(|witness| witness.name.clone())
        .collect()
}

/// A `tlog-witness` `add-checkpoint` request: the size the witness last cosigned, the proof that
/// the new checkpoint's tree extends it, and the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub note: String,
}

/// Why a witness refused a checkpoint, with the HTTP status `tlog-witness` gives each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request is not an add-checkpoint body: {0}")]
    Malformed(String),
    #[error("this witness does not witness the log `{0}`")]
    UnknownOrigin(String),
    #[error("the checkpoint is not signed by the log's key")]
    NotSigned,
    #[error("the old size {old} is above the checkpoint's size {size}")]
    OldSizeAbove { old: u64, size: u64 },
    #[error("the old size is not the size this witness last cosigned, {latest}")]
    Stale { latest: u64 },
    #[error("the consistency proof from the old size does not hold: the log's history changed")]
    Inconsistent,
    #[error("this witness cosigned another root for the same size: the log's history changed")]
    Forked,
}

impl Refusal {
    /// The status `tlog-witness` answers it with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::OldSizeAbove { .. } => 400,
            Refusal::NotSigned => 403,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::Stale { .. } | Refusal::Forked => 409,
            Refusal::Inconsistent => 422,
        }
    }
}

impl AddCheckpoint {
    pub fn to_body(&self) -> String {
        let proof: String = self.proof.iter().map(|hash| format!("{}\n", tree::to_base64(hash))).collect();
        format!("old {}\n{proof}\n{}", self.old_size, self.note)
    }

    pub fn parse(body: &str) -> Result<AddCheckpoint, Refusal> {
        let malformed = |why: &str| Refusal::Malformed(why.to_owned());
        let (head, note) = body.split_once("\n\n").ok_or_else(|| malformed("no empty line before the checkpoint"))?;
        let mut lines = head.lines();
        let old = lines.next().and_then(|l| l.strip_prefix("old ")).ok_or_else(|| malformed("no `old` line"))?;
        let old_size: u64 = old.parse().map_err(|_| malformed("the old size is not a number"))?;
        if old_size.to_string() != old {
            return Err(malformed("the old size has leading zeroes"));
        }
        let proof = lines
            .map(|line| {
                let bytes = BASE64.decode(line).map_err(|_| malformed("a proof line is not base64"))?;
                Ok(tree::hash_from(bytes.try_into().map_err(|_| malformed("a proof line is not a hash"))?))
            })
            .collect::<Result<Vec<Hash>, Refusal>>()?;
        if proof.len() > 63 {
            return Err(malformed("more than 63 proof lines"));
        }
        Ok(AddCheckpoint { old_size, proof, note: note.to_owned() })
    }

    /// What a witness decides, given the log's key and the checkpoint it last cosigned for this
    /// origin: the checkpoint to cosign and remember, or why not.
    pub fn examine(&self, log: &TrailKeys, latest: Option<&Checkpoint>) -> Result<Checkpoint, Refusal> {
        let signed = log.open(&self.note).map_err(|error| match error {
            CheckpointError::MalformedNote(why) => Refusal::Malformed(why),
            CheckpointError::NotACheckpoint => Refusal::Malformed(error.to_string()),
            _ => Refusal::NotSigned,
        })?;
        let checkpoint = signed.checkpoint;
        if self.old_size > checkpoint.size {
            return Err(Refusal::OldSizeAbove { old: self.old_size, size: checkpoint.size });
        }
        let latest_size = latest.map_or(0, |c| c.size);
        if self.old_size != latest_size {
            return Err(Refusal::Stale { latest: latest_size });
        }
        let Some(latest) = latest.filter(|c| c.size > 0) else {
            return if self.proof.is_empty() { Ok(checkpoint) } else { Err(Refusal::Inconsistent) };
        };
        if latest.size == checkpoint.size {
            return if latest.root == checkpoint.root { Ok(checkpoint) } else { Err(Refusal::Forked) };
        }
        tree::check_consistency(&self.proof, checkpoint.size, checkpoint.root, latest.size, latest.root)
            .map_err(|_| Refusal::Inconsistent)?;
        Ok(checkpoint)
    }
}
