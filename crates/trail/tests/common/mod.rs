//! Helpers for tests that run the real `trail` binary.
#![allow(dead_code)]

pub mod load;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use trail_store_postgres::testing::TestSchema;

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

/// A `trail` command with a clean environment apart from `envs` (and the place's database), run
/// in the place's directory.
pub fn command(place: &(impl Place + ?Sized), args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(place.dir()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some(database) = place.database() {
        command.env("TRAIL_DATABASE", database);
    }
    // A checkpoint signed on the way would be an event the test did not send: tests that want
    // them ask for them (POST /api/v1/checkpoints) or set a shorter interval.
    command.env("TRAIL_CHECKPOINT_EVERY", "3600");
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Starts `trail serve` and waits until it prints its address.
pub fn spawn_server(dir: &(impl Place + ?Sized), args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut full = vec!["serve"];
    full.extend_from_slice(args);
    spawn_serving(command(dir, &full, envs))
}

/// Starts `command`, which runs `trail serve` or `trail witness serve` (under a tracer, say),
/// and waits until it prints its address: at most a minute, so a server that hangs fails the
/// test instead of hanging it.
pub fn spawn_serving(mut command: Command) -> Server {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("trail serve starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (sender, printed) = std::sync::mpsc::channel();
    // Reads every line, and keeps reading once nobody listens, so the server never blocks on a
    // full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| drop(sender.send(line))));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut banner = Vec::new();
    loop {
        match printed.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => {
                banner.push(line.clone());
                if let Some(address) = line.split("listening on ").nth(1) {
                    return Server { child, base: address.trim().to_owned(), banner };
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server printed no address within a minute; it printed {banner:?}");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                panic!("the server exited ({status}) before listening; it printed {banner:?}");
            }
        }
    }
}

/// Runs `trail` to completion.
pub fn run(dir: &(impl Place + ?Sized), args: &[&str], envs: &[(&str, &str)]) -> Output {
    command(dir, args, envs).stdin(Stdio::null()).output().expect("trail runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `trail` and insists it succeeds.
pub fn ok(dir: &(impl Place + ?Sized), args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = run(dir, args, envs);
    assert!(output.status.success(), "trail {args:?} failed: {}{}", stdout(&output), stderr(&output));
    stdout(&output)
}

/// The events of `--json` output, a JSON object per line.
pub fn events_json(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Where a command runs: a directory (its trail is SQLite in `trail-data/`), or a test's [`Trail`].
pub trait Place {
    fn dir(&self) -> &Path;
    /// The `TRAIL_DATABASE` every command here is given, if any.
    fn database(&self) -> Option<String> {
        None
    }
}

impl Place for Path {
    fn dir(&self) -> &Path {
        self
    }
}

/// A test's trail on the backend under test: SQLite in a temporary directory, or, when
/// `TRAIL_TEST_BACKEND=postgres` (the test command's second pass), a PostgreSQL schema of the
/// test's own that every command run here is pointed at through `TRAIL_DATABASE`. So one test
/// checks a command on both backends; where they are meant to differ, the test says how.
pub struct Trail {
    dir: tempfile::TempDir,
    postgres: Option<TestSchema>,
}

impl Trail {
    pub fn fresh() -> Trail {
        let postgres = match std::env::var("TRAIL_TEST_BACKEND").as_deref() {
            Ok("postgres") => Some(block_on(TestSchema::new())),
            Ok("sqlite") | Err(_) => None,
            Ok(other) => panic!("TRAIL_TEST_BACKEND={other:?}: use sqlite or postgres"),
        };
        Trail { dir: tempfile::tempdir().unwrap(), postgres }
    }

    pub fn on_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// What `trail serve` prints after `data:` for this trail.
    pub fn described(&self) -> String {
        match &self.postgres {
            Some(schema) => format!("{} (PostgreSQL)", schema.url()),
            None => format!("{} (SQLite)", std::path::absolute(self.join("trail-data/trail.db")).unwrap().display()),
        }
    }

    /// Runs SQL on the trail's database behind Trail's back, as someone tampering with it would.
    pub fn tamper(&self, sql: &str) {
        match &self.postgres {
            Some(schema) => block_on(schema.execute(sql)),
            None => rusqlite::Connection::open(self.join("trail-data/trail.db")).unwrap().execute_batch(sql).unwrap(),
        }
    }
}

impl std::ops::Deref for Trail {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.dir.path()
    }
}

impl Place for Trail {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn database(&self) -> Option<String> {
        self.postgres.as_ref().map(TestSchema::url)
    }
}

/// Runs a future to completion on a runtime of its own (the tests themselves are synchronous).
/// At most two minutes: a server that stops answering fails the test instead of hanging it.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(120), future)
            .await
            .expect("no answer within two minutes: the server hangs")
    })
}

/// The text `GET base + path` answers, with the test token.
pub fn get_text(base: &str, path: &str) -> String {
    block_on(async {
        let response = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
        response.text().await.unwrap()
    })
}

/// A value in the server's `/metrics`: `name` is the series as written there, labels included.
pub fn metric(base: &str, name: &str) -> f64 {
    get_text(base, "/metrics")
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// A certificate pair made by its own CA: `ca.pem`, `server.pem`, `server.key` in `dir`.
pub fn authority(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    trail_forward::peers::make_certificates(dir);
    dir.to_owned()
}

/// Puts `from`'s certificate and key where the server reads them, each file replaced whole.
pub fn install(from: &Path, tls: &Path) {
    for (source, target) in [("server.pem", "cert.pem"), ("server.key", "key.pem")] {
        let staged = tls.join(format!("{target}.new"));
        std::fs::copy(from.join(source), &staged).unwrap();
        std::fs::rename(&staged, tls.join(target)).unwrap();
    }
}

/// A configuration file in `dir` serving HTTPS on `port` with the pair in `dir/tls` (see [`install`]).
pub fn tls_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let config = dir.join("trail.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nlisten = \"127.0.0.1:{port}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            tls.join("cert.pem").display(),
            tls.join("key.pem").display()
        ),
    )
    .unwrap();
    config
}
