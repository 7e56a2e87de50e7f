//! V3 patterns: the matcher against a reference written from the documented rules, the SQL
//! `LIKE` pattern PostgreSQL is given against the same rules, and the trigram keys an index
//! looks up against the keys of every text the pattern matches (an index may propose too much,
//! never too little). Input: the pattern, a NUL, the text.

use std::collections::HashSet;
use trail_core::fold::fold_char;
use trail_core::pattern::{MAX_PATTERN_CHARS, MAX_WILDCARDS, Pattern};
use trail_core::trigram::{self, Field};

pub fn run(data: &[u8]) {
    let Some(input) = crate::text(data) else { return };
    let (source, text) = input.split_once('\0').unwrap_or((input, ""));
    let pattern = Pattern::new(source);
    let tokens = tokens(source);
    let expected = glob(&tokens, &folded(text));
    assert_eq!(pattern.is_match(text), expected, "pattern {source:?} on {text:?}");
    assert_eq!(like(&pattern.like_on_folded(), &folded(text)), expected, "LIKE of {source:?} on {text:?}");
    check_bounds(source, &tokens);
    if expected {
        check_keys(&pattern, text);
    }
    for c in input.chars() {
        assert_eq!(fold_char(fold_char(c)), fold_char(c), "folding {c:?} twice differs");
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Any,
    One,
    Literal(char),
}

/// The documented rules: `%` any run, `_` one character, `\` before `%`, `_` or `\` makes it
/// literal and is itself otherwise; literals compare folded.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let token = match chars[i] {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' if matches!(chars.get(i + 1), Some('%' | '_' | '\\')) => {
                i += 1;
                Token::Literal(chars[i])
            }
            c => Token::Literal(fold_char(c)),
        };
        tokens.push(token);
        i += 1;
    }
    tokens
}

fn folded(text: &str) -> Vec<char> {
    text.chars().map(fold_char).collect()
}

/// Substring matching, by dynamic programming over `%tokens%`: `reach[j]` says whether the
/// tokens so far can end just before character `j`.
fn glob(tokens: &[Token], text: &[char]) -> bool {
    let mut all = vec![Token::Any];
    all.extend_from_slice(tokens);
    all.push(Token::Any);
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for token in all {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            match token {
                Token::Any => next[j] = reach[j] || (j > 0 && next[j - 1]),
                Token::One => next[j] = j > 0 && reach[j - 1],
                Token::Literal(c) => next[j] = j > 0 && reach[j - 1] && fold_char(c) == text[j - 1],
            }
        }
        reach = next;
    }
    reach[text.len()]
}

/// SQL `LIKE` with `\` as its escape, on the whole text: what PostgreSQL does with
/// `like_on_folded` over the folded message.
fn like(pattern: &str, text: &[char]) -> bool {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Literal(chars.next().expect("LIKE patterns never end in a lone escape")),
            c => Token::Literal(c),
        });
    }
    glob(&tokens, text)
}

fn check_bounds(source: &str, tokens: &[Token]) {
    let wildcards = tokens.iter().filter(|t| matches!(t, Token::Any | Token::One)).count();
    let within = source.chars().count() <= MAX_PATTERN_CHARS && wildcards <= MAX_WILDCARDS;
    assert_eq!(Pattern::parse(source).is_ok(), within, "bounds of {source:?} ({wildcards} wildcards)");
}

/// Every key the pattern asks an index for is a key of the text it matches, in each field.
fn check_keys(pattern: &Pattern, text: &str) {
    for field in [Field::Message, Field::Name, Field::Action] {
        let mut keys = HashSet::new();
        let want = pattern.field_keys(field);
        if field == Field::Message {
            trigram::for_each_key(text, |key| {
                keys.insert(key);
            });
            assert_eq!(want, pattern.trigram_keys(), "message keys");
        } else {
            trigram::for_each_field_key(field, text, |key| {
                keys.insert(key);
            });
        }
        let missing: Vec<&u32> = want.iter().filter(|key| !keys.contains(key)).collect();
        assert!(missing.is_empty(), "{:?} matches {text:?} but asks for keys it lacks: {missing:?}", pattern.source());
    }
}
