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

/// The folded text where lower-casing ASCII letters alone would not give it, which a database
/// can do itself (PostgreSQL's `lower(text COLLATE "C")`): storing the fold only then keeps
/// most rows free of a second copy of their text.
pub fn fold_beyond_ascii(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let folded = fold(text);
    let ascii_lowered = text.to_ascii_lowercase();
    (folded != ascii_lowered).then(|| folded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_is_kept_only_where_ascii_lower_casing_falls_short() {
        assert_eq!(fold_beyond_ascii("Commit by ALICE"), None);
        assert_eq!(fold_beyond_ascii("café ok"), None);
        assert_eq!(fold_beyond_ascii("Café"), None);
        assert_eq!(fold_beyond_ascii("CAFÉ"), Some("café".to_owned()));
        assert_eq!(fold_beyond_ascii("ΣΎΝΔΕΣΗ up"), Some("σύνδεση up".to_owned()));
        // The Kelvin sign folds to an ASCII `k`, which lower-casing ASCII never makes of it.
        assert_eq!(fold_beyond_ascii("5 \u{212A}"), Some("5 k".to_owned()));
    }
}
