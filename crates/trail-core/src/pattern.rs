//! The V3 filter semantics, exactly: a case-insensitive (Unicode-aware) substring match where `%`
//! matches any run of characters, `_` exactly one, and a backslash makes `%`, `_` or `\` literal.
//!
//! Every backend uses this matcher for the final decision; indexes only propose candidates
//! (see [`Pattern::trigrams`]), so all backends agree on what matches.

use crate::fold::{fold, fold_char};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Folded literal text.
    Literal(String),
    /// `_`: exactly one character.
    One,
}

/// A compiled filter. Matching is substring matching: the pattern behaves as `%pattern%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    /// The pieces between `%` wildcards; each must be found, in order.
    segments: Vec<Vec<Piece>>,
}

/// The longest pattern a reader may send, in characters. Matching costs up to the text's
/// length times the pattern's, so a pattern is bounded like any other input.
pub const MAX_PATTERN_CHARS: usize = 256;
/// The most wildcards (`%` and `_`, escaped ones aside) a pattern may hold.
pub const MAX_WILDCARDS: usize = 16;

/// Why a reader's pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a filter is at most {MAX_PATTERN_CHARS} characters, got {0}; search for a shorter part of the text")]
    TooLong(usize),
    #[error("a filter holds at most {MAX_WILDCARDS} wildcards (% and _), got {0}; escape literal ones as \\% and \\_")]
    TooManyWildcards(usize),
}

impl Pattern {
    /// A pattern from a reader (a query parameter, a form): refused beyond
    /// [`MAX_PATTERN_CHARS`] or [`MAX_WILDCARDS`].
    pub fn parse(source: &str) -> Result<Pattern, PatternError> {
        let chars = source.chars().count();
        if chars > MAX_PATTERN_CHARS {
            return Err(PatternError::TooLong(chars));
        }
        let wildcards = wildcards_in(source);
        if wildcards > MAX_WILDCARDS {
            return Err(PatternError::TooManyWildcards(wildcards));
        }
        Ok(Pattern::new(source))
    }

    /// A pattern without bounds, for text Trail itself chose (tests, benchmarks); readers'
    /// patterns go through [`Pattern::parse`].
    pub fn new(source: &str) -> Pattern {
        let mut segments = vec![Vec::new()];
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            let segment = segments.last_mut().expect("always one segment");
            match c {
                '%' => segments.push(Vec::new()),
                '_' => segment.push(Piece::One),
                '\\' => {
                    // `\%`, `\_` and `\\` are literals; any other backslash is itself, so a
                    // path such as `C:\temp` still finds itself.
                    let literal = match chars.peek() {
                        Some(&next @ ('%' | '_' | '\\')) => {
                            chars.next();
                            next
                        }
                        _ => '\\',
                    };
                    push_literal(segment, literal);
                }
                other => push_literal(segment, other),
            }
        }
        segments.retain(|segment| !segment.is_empty());
        Pattern { source: source.to_owned(), segments }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches anything (empty, or only `%`).
    pub fn matches_all(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn is_match(&self, text: &str) -> bool {
        if self.matches_all() {
            return true;
        }
        if text.is_ascii() {
            // ASCII text folds byte for byte, so it can be matched in place, without the copy
            // folding would make. (The pattern is already folded; a non-ASCII literal simply
            // finds nothing in ASCII text.)
            let mut from = 0;
            for segment in &self.segments {
                match ascii::find_segment(text.as_bytes(), from, segment) {
                    Some(end) => from = end,
                    None => return false,
                }
            }
            return true;
        }
        let text = fold(text);
        let mut from = 0;
        for segment in &self.segments {
            match find_segment(&text, from, segment) {
                Some(end) => from = end,
                None => return false,
            }
        }
        true
    }

    /// The distinct trigram keys (see [`crate::trigram`]) every match must contain: those of
    /// each literal run of three or more characters. Empty when the pattern has no such run, in
    /// which case an index cannot help and the caller scans.
    pub fn trigram_keys(&self) -> Vec<u32> {
        self.field_keys(crate::trigram::Field::Message)
    }

    /// [`Pattern::trigram_keys`] tagged as keys of `field` (see [`crate::trigram::tagged`]).
    pub fn field_keys(&self, field: crate::trigram::Field) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for piece in self.segments.iter().flatten() {
            if let Piece::Literal(text) = piece {
                crate::trigram::for_each_field_key(field, text, |key| {
                    if !out.contains(&key) {
                        out.push(key);
                    }
                });
            }
        }
        out
    }

    /// The same pattern as an SQL `LIKE` pattern (escape character `\`) over [`fold`]ed text:
    /// it matches exactly the texts whose folded form [`Pattern::is_match`] accepts, because
    /// both sides are folded one character per character. A database holding folded text can
    /// use it with a trigram index and agree with this matcher, whatever its own collation
    /// thinks about case.
    pub fn like_on_folded(&self) -> String {
        let mut like = String::from("%");
        for segment in &self.segments {
            for piece in segment {
                match piece {
                    Piece::One => like.push('_'),
                    Piece::Literal(text) => {
                        for c in text.chars() {
                            if matches!(c, '%' | '_' | '\\') {
                                like.push('\\');
                            }
                            like.push(c);
                        }
                    }
                }
            }
            like.push('%');
        }
        like
    }
}

/// The unescaped `%` and `_` of a pattern's source.
fn wildcards_in(source: &str) -> usize {
    let (mut count, mut escaped) = (0, false);
    for c in source.chars() {
        match c {
            '%' | '_' if !escaped => count += 1,
            '\\' if !escaped => {
                escaped = true;
                continue;
            }
            _ => {}
        }
        escaped = false;
    }
    count
}

fn push_literal(segment: &mut Vec<Piece>, c: char) {
    let c = fold_char(c);
    match segment.last_mut() {
        Some(Piece::Literal(text)) => text.push(c),
        _ => segment.push(Piece::Literal(c.to_string())),
    }
}

/// Finds the leftmost occurrence of `segment` in `text` at or after byte `from`; returns the
/// byte just past it. Leftmost is enough: with `%` between segments, any later segment that
/// fits after a later occurrence also fits after the leftmost one.
fn find_segment(text: &str, from: usize, segment: &[Piece]) -> Option<usize> {
    if let [Piece::Literal(literal)] = segment {
        return text[from..].find(literal.as_str()).map(|at| from + at + literal.len());
    }
    let mut start = from;
    loop {
        // Jump to the next place the first literal could begin, when the segment starts with one.
        if let Some(Piece::Literal(first)) = segment.first() {
            start += text[start..].find(first.as_str())?;
        }
        if let Some(end) = match_at(text, start, segment) {
            return Some(end);
        }
        let next = text[start..].chars().next()?;
        start += next.len_utf8();
    }
}

fn match_at(text: &str, mut at: usize, segment: &[Piece]) -> Option<usize> {
    for piece in segment {
        match piece {
            Piece::Literal(literal) => {
                if !text[at..].starts_with(literal.as_str()) {
                    return None;
                }
                at += literal.len();
            }
            Piece::One => at += text[at..].chars().next()?.len_utf8(),
        }
    }
    Some(at)
}

/// Matching in ASCII text, comparing case-insensitively in place.
mod ascii {
    use super::Piece;

    /// Like `super::find_segment`, over bytes of ASCII text.
    pub fn find_segment(text: &[u8], from: usize, segment: &[Piece]) -> Option<usize> {
        let mut start = from;
        loop {
            if let Some(Piece::Literal(first)) = segment.first() {
                start += find_literal(&text[start..], first.as_bytes())?;
            }
            if let Some(end) = match_at(text, start, segment) {
                return Some(end);
            }
            if start >= text.len() {
                return None;
            }
            start += 1;
        }
    }

    /// The first place `literal` (folded, so lower case) occurs in `text`, ignoring ASCII case.
    fn find_literal(text: &[u8], literal: &[u8]) -> Option<usize> {
        let (&first, rest) = literal.split_first()?;
        let mut at = 0;
        while at + literal.len() <= text.len() {
            at += memchr::memchr2(first, first.to_ascii_uppercase(), &text[at..text.len() - rest.len()])?;
            if text[at + 1..at + literal.len()].eq_ignore_ascii_case(rest) {
                return Some(at);
            }
            at += 1;
        }
        None
    }

    fn match_at(text: &[u8], mut at: usize, segment: &[Piece]) -> Option<usize> {
        for piece in segment {
            match piece {
                Piece::Literal(literal) => {
                    let end = at + literal.len();
                    if end > text.len() || !text[at..end].eq_ignore_ascii_case(literal.as_bytes()) {
                        return None;
                    }
                    at = end;
                }
                Piece::One => {
                    if at >= text.len() {
                        return None;
                    }
                    at += 1;
                }
            }
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).is_match(text)
    }

    #[test]
    fn readers_patterns_are_bounded() {
        assert!(Pattern::parse(&"a".repeat(MAX_PATTERN_CHARS)).is_ok());
        assert_eq!(Pattern::parse(&"a".repeat(MAX_PATTERN_CHARS + 1)), Err(PatternError::TooLong(257)));
        assert!(Pattern::parse(&"a_".repeat(MAX_WILDCARDS)).is_ok());
        assert_eq!(Pattern::parse(&"a_".repeat(17)), Err(PatternError::TooManyWildcards(17)));
        assert_eq!(wildcards_in("%%_%"), 4);
        assert_eq!(wildcards_in(r"50\% off\_now C:\temp \\%"), 1);
        let escaped = "\\%".repeat(40);
        assert!(Pattern::parse(&escaped).is_ok(), "escaped wildcards are literals");
        assert!(Pattern::parse(&"\\\\%".repeat(17)).is_err(), "an escaped backslash escapes nothing");
    }

    #[test]
    fn plain_text_is_a_case_insensitive_substring() {
        assert!(m("edge", "archive EDGE1"));
        assert!(m("Édge", "archive édge1"));
        assert!(m("STRASSE", "strasse"));
        assert!(m("σ", "ΟΔΟΣ"));
        assert!(m("ς", "Σ"));
        assert!(!m("edge2", "edge1"));
        assert!(m("", "anything"));
    }

    #[test]
    fn the_ascii_path_agrees_with_folding() {
        // Every pattern over a small alphabet against every text over it: the in-place ASCII
        // path must decide exactly as matching the folded copy does.
        let alphabet = ['a', 'B', '%', '_', '\\'];
        let texts = ["", "a", "ab", "AB", "bA", "aab", "b%a", "a_b", "ABAB", "x\\y", "baBA_"];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> =
                patterns.iter().flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}"))).collect();
            patterns.extend(longer);
        }
        for pattern in &patterns {
            let compiled = Pattern::new(pattern);
            for text in texts {
                let folded_copy = {
                    let mut from = 0;
                    compiled.matches_all()
                        || compiled.segments.iter().all(|segment| match find_segment(&fold(text), from, segment) {
                            Some(end) => {
                                from = end;
                                true
                            }
                            None => false,
                        })
                };
                assert_eq!(compiled.is_match(text), folded_copy, "pattern {pattern:?} on {text:?}");
            }
        }
    }

    #[test]
    fn dotless_i_stays_apart() {
        assert!(!m("ı", "i"));
        assert!(m("I", "i"));
    }

    #[test]
    fn wildcards() {
        assert!(m("ed%1", "archive edge1"));
        assert!(m("e_ge", "EDGE"));
        assert!(!m("e_ge", "ege"));
        assert!(m("a_c", "aéc"), "one character, not one byte");
        assert!(m("%", ""));
        assert!(m("a%b%c", "xxaYYbZZc"));
        assert!(!m("a%b%c", "xxaYYcZZb"));
        assert!(m("_", "x"));
        assert!(!m("_", ""));
        assert!(m("ab_", "xab ab1"));
    }

    #[test]
    fn backslash_escapes() {
        assert!(m(r"100\%", "load 100% now"));
        assert!(!m(r"100\%", "load 1000 now"));
        assert!(m(r"a\_b", "a_b"));
        assert!(!m(r"a\_b", "axb"));
        assert!(m(r"a\\b", r"a\b"));
        assert!(m(r"C:\temp", r"copy C:\temp\x"));
        assert!(m("end\\", "the end\\"));
    }

    #[test]
    fn whole_multi_line_text_is_searched() {
        assert!(m("ntp server", "Updated node (nodes)\n\nconfig:\n  ntp server 1"));
        assert!(m("nodes)%ntp", "Updated node (nodes)\n\nntp"));
    }

    #[test]
    fn sql_and_regex_look_alikes_are_literal() {
        assert!(m("' OR 1=1 --", "x' or 1=1 -- y"));
        assert!(!m("' OR 1=1 --", "anything"));
        assert!(m(".*", "a.*b"));
        assert!(!m(".*", "ab"));
        assert!(m("[a-z]+", "[A-Z]+"));
    }

    #[test]
    fn like_patterns_escape_literals_and_keep_wildcards() {
        assert_eq!(Pattern::new("").like_on_folded(), "%");
        assert_eq!(Pattern::new("Edge%Core").like_on_folded(), "%edge%core%");
        assert_eq!(Pattern::new("a_b").like_on_folded(), "%a_b%");
        assert_eq!(Pattern::new(r"50\% off\_now C:\temp").like_on_folded(), r"%50\% off\_now c:\\temp%");
        assert_eq!(Pattern::new("ΣΎΝΔΕΣΗ").like_on_folded(), "%σύνδεση%");
    }

    #[test]
    fn trigram_keys_come_from_literal_runs_of_three() {
        use crate::trigram::key;
        assert_eq!(
            Pattern::new("Edge1").trigram_keys(),
            vec![key('e', 'd', 'g'), key('d', 'g', 'e'), key('g', 'e', '1')]
        );
        assert!(Pattern::new("ab%cd_e").trigram_keys().is_empty());
        assert_eq!(Pattern::new("ab_cde").trigram_keys(), vec![key('c', 'd', 'e')]);
        assert_eq!(Pattern::new("aaaa").trigram_keys(), vec![key('a', 'a', 'a')]);
    }
}
