//! The core does no I/O (ARCHITECTURE.md): no files, sockets, processes or environment in its
//! code (its tests may read the docs they check), and none of the crates that do them among its
//! dependencies. Reading the clock (search budgets) and the OS's randomness (password salts)
//! are not I/O in this sense.

use std::path::Path;

/// Paths that reach outside the process.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::process",
    "std::env",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "File::open",
    "File::create",
    "tokio::",
    "reqwest::",
    "rusqlite::",
    "tokio_postgres::",
    "axum::",
];

/// Crates that do I/O, which the core must not depend on.
const FORBIDDEN_DEPENDENCIES: &[&str] = &["tokio", "rusqlite", "tokio-postgres", "axum", "hyper", "reqwest", "mio"];

fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The code of a source file without its unit tests (kept, by convention, after `#[cfg(test)]`).
fn code_of(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

#[test]
fn the_core_reaches_nothing_outside_the_process() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 20, "the sources were found: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in code_of(&text).lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for forbidden in FORBIDDEN {
                assert!(
                    !line.contains(forbidden),
                    "{}:{}: `{forbidden}` in the core: {line}",
                    file.display(),
                    number + 1
                );
            }
        }
    }
}

#[test]
fn the_core_depends_on_no_crate_that_does_io() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for line in dependencies.lines() {
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default().trim();
        assert!(!FORBIDDEN_DEPENDENCIES.contains(&name), "the core depends on `{name}`, which does I/O");
    }
}
