//! Acknowledged means durable (S2), beyond a process crash: the crash test kills the server,
//! which leaves written data in the OS cache, so it would pass with `synchronous=OFF`. Here the
//! server runs under `strace`, and for each event acknowledged with `201`, the trace shows its
//! row written to SQLite's WAL, then an fsync of the WAL that began after that write and ended
//! before the `201` was sent: nothing is acknowledged before it is on disk.

mod common;

use common::{TOKEN, spawn_serving};
use std::collections::{HashMap, HashSet};
use std::process::Command;

/// One system call from the trace, joined from its `unfinished` and `resumed` halves.
#[derive(Debug)]
struct Call {
    name: String,
    args: String,
    result: String,
    /// When it was entered, and when it returned (seconds, as `strace -ttt` gives them).
    start: f64,
    end: f64,
}

impl Call {
    fn fd(&self) -> Option<i64> {
        self.args.split([',', ')']).next()?.trim().parse().ok()
    }
}

/// `strace -f -ttt` output (`PID TIME call(args) = result`), each call whole.
fn calls(trace: &str) -> Vec<Call> {
    let mut pending: HashMap<&str, (String, String, f64)> = HashMap::new();
    let mut calls = Vec::new();
    for line in trace.lines() {
        // strace pads the PID to a width of its own.
        let Some((pid, rest)) = line.trim_start().split_once(' ') else { continue };
        let Some((time, rest)) = rest.trim_start().split_once(' ') else { continue };
        let Ok(time) = time.parse::<f64>() else { continue };
        if rest.starts_with("---") || rest.starts_with("+++") {
            continue;
        }
        if let Some(entered) = rest.strip_suffix(" <unfinished ...>") {
            if let Some((name, args)) = entered.split_once('(') {
                pending.insert(pid, (name.to_owned(), args.to_owned(), time));
            }
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, after)) = resumed.split_once(" resumed>") else { continue };
            let Some((name, args, start)) = pending.remove(pid) else { continue };
            let (more, result) = returned(after);
            calls.push(Call { name, args: args + more, result, start, end: time });
        } else if let Some((name, args)) = rest.split_once('(') {
            let (args, result) = returned(args);
            calls.push(Call { name: name.to_owned(), args: args.to_owned(), result, start: time, end: time });
        }
    }
    calls
}

/// The arguments and the result of `args) = result` (strace pads before the `=`).
fn returned(text: &str) -> (&str, String) {
    match text.rsplit_once(" = ") {
        Some((args, result)) => (args.trim_end().trim_end_matches(')'), result.trim().to_owned()),
        None => (text, String::new()),
    }
}

/// Stops the traced server with SIGTERM, so that it shuts down and strace, whose tracee it is,
/// writes out the whole trace before it exits (a SIGKILL to strace may lose its last lines).
fn stop_traced(mut server: common::Server) {
    let strace = server.child.id();
    let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children")).unwrap();
    let trail = children.split_whitespace().next().expect("strace runs trail");
    let status = Command::new("sh").args(["-c", &format!("kill -TERM {trail}")]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the traced server did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn every_201_follows_an_fsync_of_what_it_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let inner = common::command(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-ttt", "-s", "16384", "-o"])
        .arg(&trace)
        .args(["-e", "trace=openat,pwrite64,fsync,fdatasync,write,writev,sendto,sendmsg", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(dir.path())
        .env_clear();
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            traced.env(key, value);
        }
    }
    let server = spawn_serving(traced);

    // One request at a time, so the nth 201 the server writes answers the nth probe.
    let probes = 20;
    common::block_on(async {
        let http = reqwest::Client::new();
        for n in 0..probes {
            let body = format!(r#"{{"user":"alice","kind":"DEVICE_EDITED","message":"durable-probe-{n}-end"}}"#);
            let response =
                http.post(format!("{}/api/v1/events", server.base)).bearer_auth(TOKEN).body(body).send().await.unwrap();
            assert_eq!(response.status(), 201);
        }
    });
    stop_traced(server);

    let trace = std::fs::read_to_string(&trace).unwrap();
    let calls = calls(&trace);
    let wal: HashSet<i64> = calls
        .iter()
        .filter(|c| c.name == "openat" && c.args.contains("/trail.db-wal\""))
        .filter_map(|c| c.result.trim().parse().ok())
        .collect();
    assert!(!wal.is_empty(), "the trace shows the WAL opened");
    let is_wal = |c: &&Call| c.fd().is_some_and(|fd| wal.contains(&fd));
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| ["fsync", "fdatasync"].contains(&c.name.as_str()) && c.result.trim() == "0")
        .filter(is_wal)
        .collect();
    let mut answers: Vec<&Call> = calls
        .iter()
        .filter(|c| {
            ["write", "writev", "sendto", "sendmsg"].contains(&c.name.as_str()) && c.args.contains("HTTP/1.1 201")
        })
        .collect();
    answers.sort_by(|a, b| a.start.total_cmp(&b.start));
    assert_eq!(answers.len(), probes, "one 201 per probe");

    for (n, answer) in answers.iter().enumerate() {
        let probe = format!("durable-probe-{n}-end");
        let written = calls
            .iter()
            .filter(|c| c.name == "pwrite64" && c.args.contains(&probe))
            .filter(is_wal)
            .min_by(|a, b| a.start.total_cmp(&b.start))
            .unwrap_or_else(|| panic!("probe {n}'s row is never written to the WAL"));
        assert!(written.end <= answer.start, "probe {n} was acknowledged before its row was written");
        let synced = syncs.iter().any(|s| s.fd() == written.fd() && s.start >= written.end && s.end <= answer.start);
        assert!(synced, "probe {n} was acknowledged without an fsync of the WAL between its write and its 201");
    }
}
