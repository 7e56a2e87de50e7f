//! The trigram block index, without I/O: what every backend's index shares, so that each
//! backend only stores rows and reads them back.
//!
//! For every trigram key of an event's message, name and action (tagged with its field, see
//! [`trail_core::trigram::tagged`]), a chunk of events stores the bitmap of its blocks of 16
//! events holding that key ([`geometry`]). The index only proposes blocks; the exact matcher
//! decides, so the index may lag, be rebuilt, or propose too much without changing a result.
//!
//! The [`Builder`] takes committed events in id order and says what to write: a level-0 chunk
//! (a "mini", 4,096 ids) as it fills, and every sixteenth, the level-1 chunk (65,536 ids) that
//! replaces its minis. A backend writes each [`Write`] in one transaction with how far the index
//! reaches, so the index on disk is always whole up to that point.

pub mod geometry;

use geometry::{BIG_WORDS, BLOCKS_PER_MINI, MINI_EVENTS, MINI_WORDS, MINIS_PER_BIG};
use rustc_hash::FxHashMap;
use std::ops::RangeInclusive;
use trail_core::trigram::{self, Field};

/// What the index keys, as a number: bumped whenever that changes. An index of another version
/// could lack keys a search now looks up, and a missing key hides events, so searches treat it
/// as empty and the indexer rebuilds it from the events.
/// 1: messages; 2: messages, names and actions.
pub const VERSION: i64 = 2;

/// The ids and times a chunk covers: searches skip chunks outside a month or day filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub first_id: i64,
    pub last_id: i64,
    pub min_time: i64,
    pub max_time: i64,
}

impl Zone {
    pub fn of(id: i64, time: i64) -> Zone {
        Zone { first_id: id, last_id: id, min_time: time, max_time: time }
    }

    /// Widens `zone` (none yet, or some) to cover `other`.
    pub fn extend(zone: &mut Option<Zone>, other: Zone) {
        *zone = Some(match *zone {
            None => other,
            Some(z) => Zone {
                first_id: z.first_id.min(other.first_id),
                last_id: z.last_id.max(other.last_id),
                min_time: z.min_time.min(other.min_time),
                max_time: z.max_time.max(other.max_time),
            },
        });
    }
}

/// One chunk's rows, replacing whatever the chunk held.
#[derive(Debug)]
pub struct ChunkRows {
    pub level: i64,
    pub number: i64,
    pub zone: Zone,
    /// Each key's encoded bitmap ([`geometry::encode`]), in key order (rows append in order).
    pub postings: Vec<(u32, Vec<u8>)>,
}

impl ChunkRows {
    fn of<const WORDS: usize>(level: i64, number: i64, zone: Zone, keys: &FxHashMap<u32, [u64; WORDS]>) -> ChunkRows {
        let mut postings: Vec<(u32, Vec<u8>)> = keys.iter().map(|(k, w)| (*k, geometry::encode(w))).collect();
        postings.sort_unstable_by_key(|(key, _)| *key);
        ChunkRows { level, number, zone, postings }
    }
}

/// What one transaction writes: after it, the index reaches `through`.
#[derive(Debug)]
pub struct Write {
    pub chunks: Vec<ChunkRows>,
    /// Level-0 chunks to delete: the minis the level-1 chunk written here replaces.
    pub merged_minis: Option<RangeInclusive<i64>>,
    pub through: i64,
}

/// The indexer's state between writes: the open mini's bitmaps, and the complete minis of the
/// open big chunk side by side (so the big chunk is written without reading them back).
pub struct Builder {
    mini: FxHashMap<u32, [u64; MINI_WORDS]>,
    mini_number: i64,
    mini_zone: Option<Zone>,
    big: FxHashMap<u32, [u64; BIG_WORDS]>,
    big_zone: Option<Zone>,
    through: i64,
}

/// The first mini of the big chunk that the event after `through` falls in.
pub fn open_big_first_mini(through: i64) -> i64 {
    geometry::mini_of(through + 1) / MINIS_PER_BIG * MINIS_PER_BIG
}

/// Where indexing resumes, given how far the index reaches and the oldest mini stored below the
/// open big chunk (one whose big chunk was never written): from the start of that mini's big
/// chunk, else from the start of a half-filled mini. Minis from there on are redone.
pub fn redo_from(through: i64, stale_mini: Option<i64>) -> i64 {
    match stale_mini {
        Some(mini) => (mini / MINIS_PER_BIG) * MINIS_PER_BIG * MINI_EVENTS,
        None => (through / MINI_EVENTS) * MINI_EVENTS,
    }
}

impl Builder {
    /// A builder going on after `through`, which must start a mini ([`redo_from`] gives one);
    /// the open big chunk's complete minis come back through [`Builder::reload_mini`].
    pub fn starting_after(through: i64) -> Builder {
        debug_assert_eq!(through % MINI_EVENTS, 0, "indexing resumes at the start of a mini");
        Builder {
            mini: FxHashMap::default(),
            mini_number: through / MINI_EVENTS,
            mini_zone: None,
            big: FxHashMap::default(),
            big_zone: None,
            through,
        }
    }

    /// Takes back one posting of a complete mini of the open big chunk, as stored. A damaged
    /// posting is skipped: the big chunk then lacks those bits, which only a rebuild restores,
    /// so backends rebuild rather than resume from damage they can see.
    pub fn reload_mini(&mut self, number: i64, key: u32, bits: &[u8]) {
        let mut words = Vec::with_capacity(MINI_WORDS);
        if geometry::decode(bits, MINI_WORDS, &mut words).is_some() {
            let slot = (number % MINIS_PER_BIG) as usize * MINI_WORDS;
            let big = self.big.entry(key).or_insert([0; BIG_WORDS]);
            for (target, word) in big[slot..slot + MINI_WORDS].iter_mut().zip(&words) {
                *target |= word;
            }
        }
    }

    /// Takes back the zone of a complete mini of the open big chunk.
    pub fn reload_zone(&mut self, zone: Zone) {
        Zone::extend(&mut self.big_zone, zone);
    }

    /// The last id taken in.
    pub fn through(&self) -> i64 {
        self.through
    }

    /// Takes in the next committed event (ids ascending), keyed by its message, name and action.
    /// When the event starts a new mini, answers the write that persists the mini it closed.
    pub fn add(&mut self, id: i64, time: i64, message: &str, name: &str, action: &str) -> Option<Write> {
        let mini = geometry::mini_of(id);
        let closed = (mini != self.mini_number).then(|| {
            let number = std::mem::replace(&mut self.mini_number, mini);
            self.close_mini(number)
        });
        let block = (geometry::block_of(id) % BLOCKS_PER_MINI) as usize;
        let (word, bit) = (block / 64, 1u64 << (block % 64));
        let mut add = |key| self.mini.entry(key).or_insert([0; MINI_WORDS])[word] |= bit;
        for (field, text) in [(Field::Message, message), (Field::Name, name), (Field::Action, action)] {
            trigram::for_each_field_key(field, text, &mut add);
        }
        Zone::extend(&mut self.mini_zone, Zone::of(id, time));
        self.through = id;
        closed.flatten()
    }

    /// The write that makes everything taken in searchable through the index, once nothing more
    /// is coming for a while: the open mini as it stands (rewritten when it fills), or closed
    /// when full. None when nothing was taken in after `persisted`.
    pub fn flush(&mut self, persisted: i64) -> Option<Write> {
        let zone = self.mini_zone?;
        if self.through == persisted {
            return None;
        }
        if geometry::mini_of(self.through + 1) != self.mini_number {
            // The mini is full: close it, so a sixteenth mini also writes its big chunk.
            let number = self.mini_number;
            self.mini_number += 1;
            return self.close_mini(number);
        }
        let chunk = ChunkRows::of(0, self.mini_number, zone, &self.mini);
        Some(Write { chunks: vec![chunk], merged_minis: None, through: self.through })
    }

    /// The write of a complete mini, folded into the open big chunk; with the big chunk too
    /// when this was its sixteenth mini.
    fn close_mini(&mut self, number: i64) -> Option<Write> {
        let keys = std::mem::take(&mut self.mini);
        let zone = self.mini_zone.take()?;
        let mut chunks = vec![ChunkRows::of(0, number, zone, &keys)];
        let slot = (number % MINIS_PER_BIG) as usize * MINI_WORDS;
        for (key, words) in &keys {
            let big = self.big.entry(*key).or_insert([0; BIG_WORDS]);
            for (target, word) in big[slot..slot + MINI_WORDS].iter_mut().zip(words) {
                *target |= word;
            }
        }
        Zone::extend(&mut self.big_zone, zone);
        let mut merged_minis = None;
        if number % MINIS_PER_BIG == MINIS_PER_BIG - 1 {
            let big = number / MINIS_PER_BIG;
            let big_zone = self.big_zone.take().unwrap_or(zone);
            chunks.push(ChunkRows::of(1, big, big_zone, &std::mem::take(&mut self.big)));
            merged_minis = Some(big * MINIS_PER_BIG..=big * MINIS_PER_BIG + MINIS_PER_BIG - 1);
        }
        Some(Write { chunks, merged_minis, through: zone.last_id })
    }
}

/// The blocks of a chunk that may hold every key, narrowed one key's stored posting at a time.
pub struct Candidates {
    all: Vec<u64>,
    words: Vec<u64>,
}

impl Candidates {
    /// Every block of a chunk of `level`.
    pub fn of(level: i64) -> Candidates {
        let count = geometry::word_count(level);
        Candidates { all: vec![u64::MAX; count], words: Vec::with_capacity(count) }
    }

    /// Keeps the blocks holding a key, given its posting in the chunk (`None`: the chunk lacks
    /// it); answers whether any block is left. A damaged posting keeps every block, so damage
    /// never hides an event.
    pub fn narrow(&mut self, posting: Option<&[u8]>) -> bool {
        let Some(bits) = posting else {
            self.all.fill(0);
            return false;
        };
        if geometry::decode(bits, self.all.len(), &mut self.words).is_some() {
            for (a, w) in self.all.iter_mut().zip(&self.words) {
                *a &= w;
            }
        }
        self.all.iter().any(|w| *w != 0)
    }

    /// The bitmap of the blocks left.
    pub fn into_words(self) -> Vec<u64> {
        self.all
    }
}

/// The id ranges of a chunk's candidate blocks (`words`, from [`Candidates`]) within
/// `[low, high]`, newest first, consecutive blocks joined into one range.
pub fn candidate_ranges(level: i64, number: i64, words: &[u64], (low, high): (i64, i64)) -> Vec<(i64, i64)> {
    let first_block = geometry::first_block(level, number);
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for (w, word) in words.iter().enumerate().rev() {
        let mut bits = *word;
        while bits != 0 {
            let bit = 63 - i64::from(bits.leading_zeros());
            bits &= !(1u64 << bit);
            let (block_low, block_high) = geometry::block_ids(first_block + w as i64 * 64 + bit);
            let (block_low, block_high) = (block_low.max(low), block_high.min(high));
            if block_low > block_high {
                continue;
            }
            match ranges.last_mut() {
                Some((run_low, _)) if block_high + 1 == *run_low => *run_low = block_low,
                _ => ranges.push((block_low, block_high)),
            }
        }
    }
    ranges
}

/// How many blocks a stored posting marks: rarer keys first make a chunk without the pattern
/// cheap to skip. A damaged posting weighs most.
pub fn weight(level: i64, posting: Option<&[u8]>) -> u32 {
    let Some(bits) = posting else { return 0 };
    let mut words = Vec::new();
    match geometry::decode(bits, geometry::word_count(level), &mut words) {
        Some(()) => words.iter().map(|w| w.count_ones()).sum(),
        None => u32::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(builder: &mut Builder, id: i64, name: &str) -> Option<Write> {
        builder.add(id, id * 1000, "Device edited", name, "update")
    }

    #[test]
    fn a_mini_is_written_as_the_next_begins_and_a_big_chunk_every_sixteenth() {
        let mut builder = Builder::starting_after(0);
        let mut writes = Vec::new();
        for id in 1..=MINI_EVENTS * MINIS_PER_BIG + 1 {
            writes.extend(event(&mut builder, id, if id == 5000 { "edge4711" } else { "core1" }));
        }
        assert_eq!(writes.len(), 16, "one write per closed mini");
        assert!(writes[..15].iter().all(|w| w.chunks.len() == 1 && w.merged_minis.is_none()));
        let last = &writes[15];
        assert_eq!(last.merged_minis, Some(0..=15));
        assert_eq!((last.chunks[1].level, last.chunks[1].number), (1, 0));
        assert_eq!(last.chunks[1].zone, Zone { first_id: 1, last_id: 65_536, min_time: 1000, max_time: 65_536_000 });
        assert_eq!(last.through, 65_536);
        // The rare name is in one block of the big chunk: block 312 holds ids 4993..=5008.
        let key = {
            let mut keys = Vec::new();
            trigram::for_each_field_key(Field::Name, "471", |k| keys.push(k));
            keys[0]
        };
        let posting = last.chunks[1].postings.iter().find(|(k, _)| *k == key).map(|(_, bits)| bits.as_slice());
        let mut candidates = Candidates::of(1);
        assert!(candidates.narrow(posting));
        assert_eq!(candidate_ranges(1, 0, &candidates.into_words(), (1, i64::MAX)), vec![(4993, 5008)]);
        assert!(last.chunks[1].postings.windows(2).all(|p| p[0].0 < p[1].0), "postings in key order");
    }

    #[test]
    fn a_flush_writes_the_open_mini_and_closes_a_full_one() {
        let mut builder = Builder::starting_after(0);
        assert!(builder.flush(0).is_none(), "nothing taken in");
        event(&mut builder, 1, "a");
        let write = builder.flush(0).unwrap();
        assert_eq!((write.chunks.len(), write.through), (1, 1));
        assert!(builder.flush(1).is_none(), "nothing new since");
        for id in 2..=MINI_EVENTS {
            assert!(event(&mut builder, id, "a").is_none());
        }
        let full = builder.flush(1).unwrap();
        assert_eq!((full.chunks[0].number, full.through), (0, MINI_EVENTS));
        assert!(event(&mut builder, MINI_EVENTS + 1, "a").is_none(), "the closed mini is not written twice");
    }

    #[test]
    fn resuming_redoes_half_filled_minis_and_unmerged_big_chunks() {
        assert_eq!(redo_from(5000, None), 4096);
        assert_eq!(redo_from(8192, None), 8192);
        assert_eq!(redo_from(70_000, Some(3)), 0, "a mini left below the open big chunk redoes it");
        assert_eq!(open_big_first_mini(65_535), 0);
        assert_eq!(open_big_first_mini(65_536), 16);
    }

    #[test]
    fn damaged_postings_propose_every_block_and_absent_keys_none() {
        let one = geometry::encode(&[1, 0, 0, 0]);
        let mut candidates = Candidates::of(0);
        assert!(candidates.narrow(Some(&one)) && candidates.narrow(Some(&[9u8][..])));
        assert_eq!(candidates.into_words(), vec![1, 0, 0, 0]);
        let mut candidates = Candidates::of(0);
        assert!(candidates.narrow(Some(&one)));
        assert!(!candidates.narrow(None));
        assert!(!candidates.narrow(Some(&geometry::encode(&[2, 0, 0, 0]))), "no block holds both");
        assert_eq!(weight(0, Some(&[9u8][..])), u32::MAX);
        assert_eq!(weight(0, None), 0);
        assert_eq!(candidate_ranges(0, 1, &[0b11, 0, 0, 1 << 63], (1, i64::MAX)), vec![(8177, 8192), (4097, 4128)]);
    }
}
