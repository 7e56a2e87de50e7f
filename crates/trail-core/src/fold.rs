//! Case folding for case-insensitive comparison (V3), one character per character: what the
//! matcher compares, what the trigram index keys, and what PostgreSQL stores folded.

use std::borrow::Cow;

/// Folds one character for case-insensitive comparison, keeping one character per character so
/// that `_` still means exactly one. Maps through upper then lower case so that, for example,
/// `ς`/`σ`/`Σ` and `ẞ`/`ß` meet; `ı` (dotless i) is kept apart from `i`, as Unicode case folding
/// does.
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == 'ı' {
        return c;
    }
    let mut upper = c.to_uppercase();
    let upper = match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    };
    let mut lower = upper.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Folds a whole text; borrows when nothing changes (the common all-lower-case ASCII case).
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().map(fold_char).collect())
    }
}
