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

/// Where an event's canonical bytes go: a hash being computed, or a buffer.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn put_bytes(sink: &mut impl Sink, bytes: &[u8]) {
    sink.put(&(bytes.len() as u64).to_le_bytes());
    sink.put(bytes);
}

fn put_optional(sink: &mut impl Sink, value: Option<&str>) {
    match value {
        None => sink.put(&[0u8]),
        Some(text) => {
            sink.put(&[1u8]);
            put_bytes(sink, text.as_bytes());
        }
    }
}

/// Event `id` with `body` as bytes: every stored field, in a fixed, length-prefixed order. What
/// both the chain and the Merkle tree's leaves cover.
pub fn canonical(id: EventId, body: &EventBody, sink: &mut impl Sink) {
    sink.put(&id.get().to_le_bytes());
    sink.put(&time::to_micros(body.time).to_le_bytes());
    for text in [&body.user, &body.process, &body.kind, &body.action, &body.name, &body.message] {
        put_bytes(sink, text.as_bytes());
    }
    sink.put(&[body.severity.code(), body.outcome.map_or(0, |o| o as u8 + 1)]);
    put_optional(sink, body.client.as_deref());
    put_bytes(sink, serde_json::to_string(&body.attributes).unwrap_or_default().as_bytes());
    for id in [&body.request_id, &body.session_id, &body.job_id, &body.parent_id] {
        put_optional(sink, id.as_deref());
    }
    let change = body.change.as_ref().map(|c| serde_json::to_string(c).unwrap_or_default());
    put_optional(sink, change.as_deref());
    // Appended only when present, so events stored before it existed keep their hashes; the
    // fields before it have a fixed shape, so its presence cannot be mistaken for another field.
    if let Some(submitted_by) = &body.submitted_by {
        put_bytes(sink, submitted_by.as_bytes());
    }
}

/// The hash of event `id` with `body`, chained to `previous`.
pub fn link(previous: &Hash, id: EventId, body: &EventBody) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(previous);
    canonical(id, body, &mut hasher);
    hasher.finalize().into()
}

/// [`link`] of an event already encoded by [`canonical`].
pub fn link_canonical(previous: &Hash, canonical: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(previous);
    hasher.update(canonical);
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
    /// Ids are given without gaps, so a gap is an event removed.
    #[error("event {id} is missing: the next one kept is {next} (removed behind Trail's back)")]
    Missing { id: EventId, next: EventId },
}

impl ChainBreak {
    /// The first event the break is about: the missing one, or the one that does not fit.
    pub fn at(&self) -> EventId {
        match self {
            ChainBreak::HashMismatch { id } | ChainBreak::OutOfOrder { id, .. } | ChainBreak::Missing { id, .. } => *id,
        }
    }
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
        if id != self.last_id + 1 {
            return Err(ChainBreak::Missing { id: self.last_id + 1, next: id });
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

    /// Every field set, as a trail written before the tree existed stored it (`trail import`
    /// then `trail export`): the chain's hashes never change under a trail already written.
    #[test]
    fn a_full_event_keeps_the_hash_it_was_stored_with() {
        let input: crate::EventInput = serde_json::from_value(serde_json::json!({
            "time": "2026-06-15T12:00:00.123456Z", "user": "alice", "client": "10.0.0.1", "process": "nms",
            "kind": "DEVICE_EDITED", "action": "edit", "name": "edge1", "severity": "notice",
            "outcome": "success", "message": "Changed edge1\nline two", "attributes": {"ticket": "CHG1", "n": 2},
            "request_id": "r1", "session_id": "s1", "job_id": "7", "parent_id": "p1"
        }))
        .unwrap();
        let mut body = input.validate(jiff::Timestamp::UNIX_EPOCH).unwrap();
        body.submitted_by = Some("local command by local".into());
        assert_eq!(
            to_hex(&link(&GENESIS, EventId::new(1), &body)),
            "2d78dc0a19666f07f13f34654c71cb0c66c7f8f017f90cb72314fff7f4da0891"
        );
    }
}
