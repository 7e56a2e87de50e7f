//! The hash chain (S4): each event's hash covers the previous hash and every stored field, in
//! a fixed, length-prefixed encoding, so any modified, deleted, reordered or truncated entry
//! breaks the chain at that entry.

use crate::event::{EventBody, EventId};
use crate::time;
use sha2::{Digest, Sha256};

/// The previous hash of the first event.
pub const GENESIS: [u8; 32] = [0; 32];
const DOMAIN: &[u8] = b"trail-chain-v1";

pub type Hash = [u8; 32];

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn put_optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            put_bytes(hasher, text.as_bytes());
        }
    }
}

/// The hash of event `id` with `body`, chained to `previous`.
pub fn link(previous: &Hash, id: EventId, body: &EventBody) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(previous);
    hasher.update(id.get().to_le_bytes());
    hasher.update(time::to_micros(body.time).to_le_bytes());
    for text in [&body.user, &body.process, &body.kind, &body.action, &body.name, &body.message] {
        put_bytes(&mut hasher, text.as_bytes());
    }
    hasher.update([body.severity.code(), body.outcome.map_or(0, |o| o as u8 + 1)]);
    put_optional(&mut hasher, body.client.as_deref());
    put_bytes(&mut hasher, serde_json::to_string(&body.attributes).unwrap_or_default().as_bytes());
    for id in [&body.request_id, &body.session_id, &body.job_id, &body.parent_id] {
        put_optional(&mut hasher, id.as_deref());
    }
    let change = body.change.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default());
    put_optional(&mut hasher, change.as_deref());
    // Appended only when present, so events stored before it existed keep their hashes; the
    // fields before it have a fixed shape, so its presence cannot be mistaken for another field.
    if let Some(submitted_by) = &body.submitted_by {
        put_bytes(&mut hasher, submitted_by.as_bytes());
    }
    hasher.finalize().into()
}

pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

pub fn from_hex(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// Walks a chain in id order and reports the first event that does not link.
#[derive(Debug, Clone)]
pub struct Verifier {
    previous: Hash,
    last_id: EventId,
    checked: u64,
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "event {id}: its hash does not match its contents and the previous hash (modified, or an earlier event was removed)"
    )]
    HashMismatch { id: EventId },
    #[error("event {id}: ids go backwards or repeat after {previous} (reordered)")]
    OutOfOrder { id: EventId, previous: EventId },
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

impl Verifier {
    pub fn new() -> Verifier {
        Verifier { previous: GENESIS, last_id: EventId::ZERO, checked: 0 }
    }

    /// A chain whose events through `id` were purged (S3): it resumes from the marker the
    /// purge left, the last purged event's id and hash.
    pub fn after(marker: &PruneMarker) -> Verifier {
        Verifier { previous: marker.hash, last_id: marker.through, checked: 0 }
    }

    /// Checks the next event in id order against its stored hash.
    pub fn check(&mut self, id: EventId, body: &EventBody, stored: &Hash) -> Result<(), ChainBreak> {
        if id <= self.last_id {
            return Err(ChainBreak::OutOfOrder { id, previous: self.last_id });
        }
        if link(&self.previous, id, body) != *stored {
            return Err(ChainBreak::HashMismatch { id });
        }
        self.previous = *stored;
        self.last_id = id;
        self.checked += 1;
        Ok(())
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    pub fn last(&self) -> (EventId, Hash) {
        (self.last_id, self.previous)
    }
}

/// What a purge leaves (S3): every event through `through` is gone, and `hash` was the last one's
/// hash, so the chain still verifies from the first event kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneMarker {
    pub through: EventId,
    pub hash: Hash,
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    #[test]
    fn a_chain_resumes_after_its_marker() {
        let input: crate::EventInput = serde_json::from_value(serde_json::json!({
            "user": "a", "kind": "DEVICE_EDITED", "message": "m"
        }))
        .unwrap();
        let body = input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap();
        let first = link(&GENESIS, EventId::new(1), &body);
        let second = link(&first, EventId::new(2), &body);
        let mut resumed = Verifier::after(&PruneMarker { through: EventId::new(1), hash: first });
        assert_eq!(resumed.check(EventId::new(2), &body, &second), Ok(()));
        let mut wrong = Verifier::after(&PruneMarker { through: EventId::new(1), hash: GENESIS });
        assert_eq!(wrong.check(EventId::new(2), &body, &second), Err(ChainBreak::HashMismatch { id: EventId::new(2) }));
    }

    /// Who sent an event is covered: changing it, adding it or removing it breaks the link,
    /// while an event stored before it existed keeps its hash.
    #[test]
    fn the_sender_is_chained() {
        let input: crate::EventInput =
            serde_json::from_value(serde_json::json!({"user": "a", "kind": "DEVICE_EDITED", "message": "m"})).unwrap();
        let before = input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap();
        let sent = |by: &str| EventBody { submitted_by: Some(by.to_owned()), ..before.clone() };
        let hashes = [
            link(&GENESIS, EventId::new(1), &before),
            link(&GENESIS, EventId::new(1), &sent("trail")),
            link(&GENESIS, EventId::new(1), &sent("token 1 (x) of a")),
            link(&GENESIS, EventId::new(1), &sent("")),
        ];
        for (i, hash) in hashes.iter().enumerate() {
            assert!(hashes[i + 1..].iter().all(|other| other != hash), "{i}");
        }
        assert_eq!(
            to_hex(&hashes[0]),
            "b07dcf6abf4342ea092f720936d72b22db94c4a5ee3b5278f9ad8835358dab2d",
            "the hash the chain gave this event before senders were recorded"
        );
    }
}
