//! Unified diffs of multi-line text (changed values, archived configurations), as `diff -u`
//! writes them, with one difference: a text's missing final newline is not a change to its last
//! line. `similar` compares lines with their terminators, so `a\nb\nc` against `a\nB\nc\nd`
//! would show `c` removed and added again though it is the same line in both; here both texts
//! are compared as if terminated, `c` is context, and the missing final newline is marked
//! `\ No newline at end of file` after the line that lacks it, as unified diffs mark it. Only
//! when one text ends with a newline and the other does not do their last lines differ, and
//! then they are shown as `diff -u` shows them.

use similar::{ChangeTag, TextDiff};
use std::fmt::Write;

const NO_NEWLINE: &str = "\\ No newline at end of file";

/// A unified diff and what it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiff {
    /// Hunks with three lines of context; empty when the texts are equal.
    pub unified: String,
    pub added: usize,
    pub removed: usize,
}

/// `old` against `new`, line by line; `header` names the two sides (`---`/`+++` lines).
pub fn unified(old: &str, new: &str, header: Option<(&str, &str)>) -> LineDiff {
    let unterminated = |text: &str| !text.is_empty() && !text.ends_with('\n');
    let both_open = unterminated(old) && unterminated(new);
    let (old, new) =
        if both_open { (format!("{old}\n"), format!("{new}\n")) } else { (old.to_owned(), new.to_owned()) };
    let diff = TextDiff::from_lines(&old, &new);
    let last = |text: &str| text.lines().count().checked_sub(1);
    let (old_last, new_last) = (last(&old), last(&new));
    let mut out = LineDiff { unified: String::new(), added: 0, removed: 0 };
    for (number, hunk) in diff.unified_diff().context_radius(3).iter_hunks().enumerate() {
        if let (0, Some((from, to))) = (number, header) {
            let _ = writeln!(out.unified, "--- {from}\n+++ {to}");
        }
        let _ = writeln!(out.unified, "{}", hunk.header());
        for change in hunk.iter_changes() {
            let line = change.value();
            let _ = write!(out.unified, "{}{line}", change.tag());
            let ends_its_text = match change.tag() {
                ChangeTag::Delete => {
                    out.removed += 1;
                    change.old_index() == old_last
                }
                ChangeTag::Insert => {
                    out.added += 1;
                    change.new_index() == new_last
                }
                ChangeTag::Equal => change.old_index() == old_last && change.new_index() == new_last,
            };
            if !line.ends_with('\n') {
                // Only a text that ends without a newline has such a line: its last.
                let _ = writeln!(out.unified, "\n{NO_NEWLINE}");
            } else if both_open && ends_its_text {
                let _ = writeln!(out.unified, "{NO_NEWLINE}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_last_line_is_context_and_the_missing_newline_is_marked() {
        let diff = unified("a\nb\nc", "a\nB\nc\nd", None);
        assert_eq!(diff.unified, format!("@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n{NO_NEWLINE}\n"));
        assert_eq!((diff.added, diff.removed), (2, 1));
    }

    #[test]
    fn a_last_line_unchanged_at_both_ends_is_marked_once() {
        let diff = unified("x\na\nb", "y\na\nb", None);
        assert_eq!(diff.unified, format!("@@ -1,3 +1,3 @@\n-x\n+y\n a\n b\n{NO_NEWLINE}\n"));
    }

    #[test]
    fn a_removed_last_line_carries_the_mark_on_its_side() {
        let diff = unified("a\nb", "a\nc", None);
        assert_eq!(diff.unified, format!("@@ -1,2 +1,2 @@\n a\n-b\n{NO_NEWLINE}\n+c\n{NO_NEWLINE}\n"));
    }

    #[test]
    fn a_final_newline_added_or_removed_is_a_change_of_the_last_line() {
        let added = unified("a\nb", "a\nb\n", None);
        assert_eq!(added.unified, format!("@@ -1,2 +1,2 @@\n a\n-b\n{NO_NEWLINE}\n+b\n"));
        let removed = unified("a\nb\n", "a\nb", None);
        assert_eq!(removed.unified, format!("@@ -1,2 +1,2 @@\n a\n-b\n+b\n{NO_NEWLINE}\n"));
    }

    #[test]
    fn terminated_texts_diff_as_usual_and_equal_ones_not_at_all() {
        let diff = unified("a\nb\n", "a\nc\n", Some(("old", "new")));
        assert_eq!(diff.unified, "--- old\n+++ new\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
        assert_eq!(unified("same\ntext", "same\ntext", None).unified, "");
    }

    /// GNU diff's own output on the same texts, where the two must agree (both terminated, or
    /// differing in the final newline).
    #[test]
    fn agrees_with_gnu_diff_where_the_final_newlines_agree_or_are_the_change() {
        let dir = std::env::temp_dir().join(format!("trail-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (old, new) in [("a\nb\nc\n", "a\nB\nc\nd\n"), ("a\nb", "a\nb\n"), ("one\ntwo\n", "one\ntwo")] {
            std::fs::write(dir.join("old"), old).unwrap();
            std::fs::write(dir.join("new"), new).unwrap();
            let gnu = std::process::Command::new("diff").arg("-U3").arg(dir.join("old")).arg(dir.join("new")).output();
            let gnu = String::from_utf8(gnu.expect("GNU diff (diffutils) runs").stdout).unwrap();
            let hunks: String = gnu.lines().skip(2).map(|line| format!("{line}\n")).collect();
            assert_eq!(unified(old, new, None).unified, hunks, "{old:?} against {new:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
