//! The geometry and encoding of the trigram block index.
//!
//! Ids are grouped in fixed, absolute blocks of 16: block `b` holds ids `16b+1 ..= 16b+16`. A
//! level-0 chunk (a "mini") covers 256 blocks (4,096 ids); a level-1 chunk covers 16 minis
//! (65,536 ids). For every trigram key, a chunk stores the bitmap of its blocks holding an event
//! whose message, name or action has that key. Small blocks keep the rows a selective search reads few; the
//! sparse encoding keeps rare keys small, and the whole index stays a few percent of the events.

pub const BLOCK_EVENTS: i64 = 16;
pub const BLOCKS_PER_MINI: i64 = 256;
pub const MINI_EVENTS: i64 = BLOCK_EVENTS * BLOCKS_PER_MINI;
pub const MINIS_PER_BIG: i64 = 16;
/// Bitmap words of a mini and of a big chunk.
pub const MINI_WORDS: usize = (BLOCKS_PER_MINI / 64) as usize;
pub const BIG_WORDS: usize = MINI_WORDS * MINIS_PER_BIG as usize;

pub fn block_of(id: i64) -> i64 {
    (id - 1) / BLOCK_EVENTS
}

pub fn mini_of(id: i64) -> i64 {
    (id - 1) / MINI_EVENTS
}

/// The first block a chunk covers.
pub fn first_block(level: i64, number: i64) -> i64 {
    if level == 0 { number * BLOCKS_PER_MINI } else { number * BLOCKS_PER_MINI * MINIS_PER_BIG }
}

/// The ids of a block.
pub fn block_ids(block: i64) -> (i64, i64) {
    (block * BLOCK_EVENTS + 1, (block + 1) * BLOCK_EVENTS)
}

/// Encodes block bitmap words: dense (tag 0, the words) or, when shorter, sparse (tag 1, the
/// positions of the set bits as u16).
pub fn encode(words: &[u64]) -> Vec<u8> {
    let ones: usize = words.iter().map(|w| w.count_ones() as usize).sum();
    if 2 * ones < 8 * words.len() {
        let mut out = Vec::with_capacity(1 + 2 * ones);
        out.push(1);
        for (w, word) in words.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                out.extend_from_slice(&((w * 64 + bit) as u16).to_le_bytes());
                bits &= bits - 1;
            }
        }
        out
    } else {
        let mut out = Vec::with_capacity(1 + 8 * words.len());
        out.push(0);
        for word in words {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// Decodes into `words` (which sets its length), or `None` for a malformed blob.
pub fn decode(blob: &[u8], word_count: usize, words: &mut Vec<u64>) -> Option<()> {
    words.clear();
    words.resize(word_count, 0);
    let (&tag, rest) = blob.split_first()?;
    match tag {
        0 => {
            for (word, bytes) in words.iter_mut().zip(rest.chunks_exact(8)) {
                *word = u64::from_le_bytes(bytes.try_into().ok()?);
            }
        }
        1 => {
            for bytes in rest.chunks_exact(2) {
                let position = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
                *words.get_mut(position / 64)? |= 1 << (position % 64);
            }
        }
        _ => return None,
    }
    Some(())
}

pub fn word_count(level: i64) -> usize {
    if level == 0 { MINI_WORDS } else { BIG_WORDS }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        for words in
            [vec![0u64], vec![1 << 63], vec![u64::MAX], vec![0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 << 40]]
        {
            let mut back = Vec::new();
            decode(&encode(&words), words.len(), &mut back).unwrap();
            assert_eq!(back, words);
        }
        assert_eq!(encode(&[1 << 3]).len(), 3, "one bit is stored sparse");
    }

    #[test]
    fn geometry() {
        assert_eq!((block_of(1), block_of(16), block_of(17)), (0, 0, 1));
        assert_eq!((mini_of(4096), mini_of(4097)), (0, 1));
        assert_eq!(block_ids(1), (17, 32));
        assert_eq!(first_block(0, 1), 256);
        assert_eq!(first_block(1, 2), 2 * 4096);
    }
}
