//! Trigram keys: the one definition an index and a query share. A key stands for three
//! consecutive case-folded characters: three ASCII characters pack exactly into the low 24 bits;
//! anything else is hashed into the upper half of the key space. Hash collisions can only make an
//! index propose an extra candidate, never miss one, because the exact matcher decides.

use crate::fold::fold_char;

/// The key of three folded characters.
pub fn key(a: char, b: char, c: char) -> u32 {
    if a.is_ascii() && b.is_ascii() && c.is_ascii() {
        return (a as u32) << 16 | (b as u32) << 8 | c as u32;
    }
    // FNV-1a over the code points, kept in the upper half so it never meets a packed key.
    let mut hash: u32 = 0x811c_9dc5;
    for ch in [a, b, c] {
        for byte in (ch as u32).to_le_bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash | 0x8000_0000
}

/// The fields an index keys. A key is tagged with its field, so that a device named like a
/// word of some message never proposes that message's event for a name filter (and the other
/// way round); messages keep untagged keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Message = 0,
    Name = 1,
    Action = 2,
}

/// `key` tagged with `field`: packed ASCII keys take the tag in bits 24..31, which packing
/// leaves free; hashed keys are mixed with it and stay in the upper half. A tag collision
/// among hashed keys, like a hash collision, only proposes an extra candidate.
pub fn tagged(field: Field, key: u32) -> u32 {
    let tag = field as u32;
    if key < 0x0100_0000 { key | tag << 24 } else { (key ^ tag.wrapping_mul(0x9e37_79b9)) | 0x8000_0000 }
}

/// Calls `each` with the tagged key of every trigram of `text` as `field` (see [`tagged`]).
pub fn for_each_field_key(field: Field, text: &str, mut each: impl FnMut(u32)) {
    for_each_key(text, |key| each(tagged(field, key)));
}

/// Calls `each` with the key of every trigram of `text`, folding as it goes (repeats included).
pub fn for_each_key(text: &str, mut each: impl FnMut(u32)) {
    if text.is_ascii() {
        // The common case: fold bytes in place, no allocation.
        let bytes = text.as_bytes();
        if bytes.len() < 3 {
            return;
        }
        let lower = |i: usize| u32::from(bytes[i].to_ascii_lowercase());
        let mut window = lower(0) << 8 | lower(1);
        for i in 2..bytes.len() {
            window = (window << 8 | lower(i)) & 0x00ff_ffff;
            each(window);
        }
        return;
    }
    let mut chars = text.chars().map(fold_char);
    let (Some(mut a), Some(mut b)) = (chars.next(), chars.next()) else { return };
    for c in chars {
        each(key(a, b, c));
        (a, b) = (b, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for_each_key(text, |k| out.push(k));
        out
    }

    #[test]
    fn ascii_and_unicode_paths_agree_with_key() {
        assert_eq!(keys("AbCd"), vec![key('a', 'b', 'c'), key('b', 'c', 'd')]);
        assert_eq!(
            keys("Zürich"),
            vec![key('z', 'ü', 'r'), key('ü', 'r', 'i'), key('r', 'i', 'c'), key('i', 'c', 'h')]
        );
        assert_eq!(keys("ab"), Vec::<u32>::new());
        assert!(key('z', 'ü', 'r') >= 0x8000_0000 && key('a', 'b', 'c') < 0x0100_0000);
    }

    #[test]
    fn fields_never_share_a_key() {
        for text in ["edge17", "Zürich", "ΣΎΝΔΕΣΗ"] {
            let of = |field| {
                let mut out = Vec::new();
                for_each_field_key(field, text, |k| out.push(k));
                out
            };
            assert_eq!(of(Field::Message), keys(text), "messages keep untagged keys");
            for (a, b) in [(Field::Message, Field::Name), (Field::Message, Field::Action), (Field::Name, Field::Action)]
            {
                assert!(of(a).iter().all(|k| !of(b).contains(k)), "{text}: {a:?} and {b:?} share a key");
            }
        }
    }

    #[test]
    fn folding_happens_before_keying() {
        assert_eq!(keys("ΟΔΟΣ"), keys("οδοσ"));
        assert_eq!(keys("EDGE\nNTP"), keys("edge\nntp"));
    }
}
