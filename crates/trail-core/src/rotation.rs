//! Key rotation: a trail changes its signing key by a checkpoint that announces the next key
//! and that both keys sign. Whoever trusts the old key learns the new one from it, and from
//! that checkpoint on the old key no longer speaks for the trail: a checkpoint it signs of a
//! larger tree is refused, so a key that leaked stops being useful once the trail rotated.

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint, VerifierKey};

/// The keys that speak for a trail, each for a range of tree sizes: those the verifier was
/// given, for every size up to the rotation that retired them, and those announced since,
/// from their announcement on.
#[derive(Debug, Clone)]
pub struct TrailKeys {
    keys: Vec<KeyInForce>,
}

#[derive(Debug, Clone)]
struct KeyInForce {
    key: VerifierKey,
    /// The size of the checkpoint that announced it (0 for a key the verifier was given).
    from: u64,
    /// The size of the checkpoint that announced its successor.
    until: Option<u64>,
}

impl KeyInForce {
    fn covers(&self, size: u64) -> bool {
        self.from <= size && self.until.is_none_or(|until| size <= until)
    }
}

/// A key the verifier learnt: announced by a checkpoint that a trusted key signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    /// The size of the announcing checkpoint.
    pub size: u64,
    /// The retired key's label (`NAME+ID`).
    pub retired: String,
    /// The announced key (`NAME+ID+KEY`).
    pub next: String,
}

impl TrailKeys {
    /// The keys a verifier trusts from the start: every one for any size, until a rotation
    /// that it signed retires it.
    pub fn new(given: Vec<VerifierKey>) -> TrailKeys {
        TrailKeys { keys: given.into_iter().map(|key| KeyInForce { key, from: 0, until: None }).collect() }
    }

    /// The trail's name, the origin of its checkpoints.
    pub fn origin(&self) -> &str {
        self.keys.first().map_or("", |k| k.key.name())
    }

    /// Learns the rotations that `notes` announce, whatever order the notes come in: each one
    /// signed by a key in force at its size, and by the key it announces. Answers them oldest
    /// first. Give every note at once: a key's first rotation is the one that counts, so a later
    /// one by the same key (made with a key that leaked, say) is refused.
    pub fn learn<'a>(&mut self, notes: impl IntoIterator<Item = &'a str>) -> Vec<Rotation> {
        let mut announcements: Vec<(Checkpoint, &str)> = notes
            .into_iter()
            .filter_map(|note| Some((Checkpoint::from_note(note).ok().filter(|c| c.next_key.is_some())?, note)))
            .collect();
        announcements.sort_by_key(|(announced, _)| announced.size);
        let mut learnt = Vec::new();
        // The smallest first; a rotation may be signed by a key that an earlier one announced,
        // so go round again until nothing new is learnt (at most once per rotation).
        while let Some(rotation) = announcements.iter().find_map(|(announced, note)| self.rotation_in(announced, note))
        {
            learnt.push(rotation);
        }
        learnt
    }

    /// The rotation `announced` (the checkpoint of `note`) makes, if it is new and holds;
    /// learnt at once.
    fn rotation_in(&mut self, announced: &Checkpoint, note: &str) -> Option<Rotation> {
        let next = VerifierKey::parse(announced.next_key.as_deref()?).ok()?;
        if self.keys.iter().any(|k| k.key.encoded() == next.encoded()) || next.name() != announced.origin {
            return None;
        }
        let size = announced.size;
        let retired = self.keys.iter().position(|k| k.covers(size) && SignedCheckpoint::open(note, &k.key).is_ok())?;
        SignedCheckpoint::open(note, &next).ok()?;
        let old = &mut self.keys[retired];
        old.until = Some(old.until.map_or(size, |until| until.min(size)));
        let rotation = Rotation { size, retired: old.key.label(), next: next.encoded().to_owned() };
        self.keys.push(KeyInForce { key: next, from: size, until: None });
        Some(rotation)
    }

    /// Opens `note` with a key in force at its size. A note signed only by a key retired before
    /// its size is refused as such; otherwise the refusal is the first key's.
    pub fn open(&self, note: &str) -> Result<SignedCheckpoint, CheckpointError> {
        let (mut retired, mut refused) = (None, None);
        for held in &self.keys {
            match SignedCheckpoint::open(note, &held.key) {
                Ok(signed) if held.covers(signed.checkpoint.size) => return Ok(signed),
                Ok(signed) => match held.until {
                    Some(until) => {
                        let size = signed.checkpoint.size;
                        retired.get_or_insert(CheckpointError::RetiredKey {
                            key: held.key.label(),
                            size,
                            retired: until,
                        });
                    }
                    // Announced after this size: the trail did not sign with it yet.
                    None => {
                        refused.get_or_insert(CheckpointError::Unsigned(held.key.label()));
                    }
                },
                Err(refusal) => {
                    refused.get_or_insert(refusal);
                }
            }
        }
        Err(retired.or(refused).unwrap_or_else(|| CheckpointError::Unsigned(self.origin().to_owned())))
    }
}
