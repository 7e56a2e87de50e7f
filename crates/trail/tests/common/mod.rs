//! Helpers for tests that run the real `trail` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_trail");
pub const TOKEN: &str = "test-token-0123456789";

/// A `trail serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// What serve printed on standard output before it began serving.
    pub banner: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped, even when a test panics (an orphan would hold the test
/// runner's pipes open).
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `trail` command with a clean environment apart from `envs`, run in `dir`.
pub fn command(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Starts `trail serve` and waits until it prints its address.
pub fn spawn_server(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut full = vec!["serve"];
    full.extend_from_slice(args);
    let mut child =
        command(dir, &full, envs).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("trail serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        banner.push(line.clone());
        if let Some(address) = line.split("listening on ").nth(1) {
            let base = address.trim().to_owned();
            // Drain the rest, so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
            return Server { child, base, banner };
        }
    }
    let status = child.wait().unwrap();
    panic!("trail serve exited ({status}) before listening; it printed {banner:?}");
}

/// Runs `trail` to completion.
pub fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    command(dir, args, envs).stdin(Stdio::null()).output().expect("trail runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `trail` and insists it succeeds.
pub fn ok(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = run(dir, args, envs);
    assert!(output.status.success(), "trail {args:?} failed: {}{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// The events of `--json` output, a JSON object per line.
pub fn events_json(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}
