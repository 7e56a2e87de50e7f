//! A damaged SQLite file (issue 14, item 4): truncated, its header overwritten, or pages in the
//! middle overwritten. Starting on it gives a clear error naming the file and what to do, never
//! a panic; `trail verify` says how far the chain holds before the damage. SQLite only: the
//! file is SQLite's (a PostgreSQL cluster is damaged and repaired by PostgreSQL's own means).

mod common;

use common::{ok, run, stderr, stdout};
use std::path::Path;

/// A trail of `count` events of a few hundred bytes each, imported locally.
fn trail_of(dir: &Path, count: usize) {
    let lines: String = (0..count)
        .map(|i| {
            let message = format!("commit {i} {}", "x".repeat(100 + i % 300));
            format!(
                "{{\"user\":\"u{}\",\"kind\":\"CONFIG_COMMITTED\",\"name\":\"edge{i}\",\"message\":\"{message}\"}}\n",
                i % 7
            )
        })
        .collect();
    std::fs::write(dir.join("events.ndjson"), lines).unwrap();
    ok(dir, &["import", "--data", "trail", "events.ndjson"], &[]);
}

/// Overwrites `length` bytes at `offset` of the trail's file.
fn overwrite(file: &Path, offset: u64, length: usize) {
    use std::io::{Seek, Write};
    let mut handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.seek(std::io::SeekFrom::Start(offset)).unwrap();
    handle.write_all(&vec![0xA5; length]).unwrap();
}

fn assert_named_clearly(output: &std::process::Output, problem: &str) {
    let said = stderr(output);
    assert!(!output.status.success(), "started on a damaged file: {said}");
    assert!(!said.contains("panicked"), "{said}");
    assert!(said.contains("trail/trail.db is damaged") && said.contains(problem), "{said}");
    assert!(said.contains("restore it from a backup") && said.contains("trail verify"), "{said}");
}

/// A fresh trail of 20,000 events, and its database file.
fn twenty_thousand() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    trail_of(dir.path(), 20_000);
    let file = dir.path().join("trail/trail.db");
    (dir, file)
}

#[test]
fn a_damaged_file_is_named_with_what_to_do() {
    let (dir, file) = twenty_thousand();
    let dir = dir.path();
    let whole = std::fs::read(&file).unwrap();
    let size = whole.len() as u64;

    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(size / 2).unwrap();
    assert_named_clearly(&run(dir, &["serve", "--data", "trail", "--listen", "127.0.0.1:0"], &[]), "malformed");
    assert_named_clearly(&run(dir, &["verify", "--data", "trail"], &[]), "malformed");
    assert_named_clearly(&run(dir, &["search", "--data", "trail"], &[]), "malformed");

    std::fs::write(&file, &whole).unwrap();
    overwrite(&file, 0, 16);
    assert_named_clearly(&run(dir, &["serve", "--data", "trail", "--listen", "127.0.0.1:0"], &[]), "not a database");
    assert_named_clearly(&run(dir, &["verify", "--data", "trail"], &[]), "not a database");
}

#[test]
fn verify_says_how_far_the_chain_holds_before_the_damage() {
    let (dir, file) = twenty_thousand();
    let dir = dir.path();
    assert!(stdout(&run(dir, &["verify", "--data", "trail"], &[])).starts_with("OK: 20000 events verified"));
    // Pages past the first events' and before the indexes' at the end of the file.
    let size = std::fs::metadata(&file).unwrap().len();
    overwrite(&file, size * 2 / 5, 50 * 4096);
    let verified = run(dir, &["verify", "--data", "trail"], &[]);
    let said = stderr(&verified);
    assert!(!verified.status.success() && !said.contains("panicked"), "{said}");
    let checked: u64 = said
        .split(" events checked")
        .next()
        .and_then(|n| n.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(checked > 1000 && checked < 20_000, "{said}");
    assert!(said.contains(&format!("the chain whole through id {checked}")), "{said}");
    assert!(said.contains("is damaged") || said.contains("malformed"), "{said}");
}
