//! The web UI end to end, in a real headless Chromium (Debian's) driven by playwright-core:
//! this test starts `trail serve`, seeds it through the API (XSS payloads in every field
//! included), and runs `e2e/ui.mjs` against it, over plain HTTP and over HTTPS. Screenshots of every page land in
//! `target/ui-screenshots/`. A missing browser or node fails the test: the test command installs
//! them.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const ADMIN_PASSWORD: &str = "admin-pass-1234";
/// Markup that would run if any field were not escaped.
const PAYLOADS: [&str; 3] =
    ["<script>window.__xss=1</script>", "<img src=x onerror=\"window.__xss=1\">", "\"><svg onload=window.__xss=1>"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn post(base: &str, path: &str, body: Value) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    })
}

/// 250 ordinary entries over a few months, entries carrying every payload, a job with a log,
/// and accounts for the login tests.
fn seed(base: &str) {
    let mut events = Vec::new();
    for n in 0..250 {
        let (user, message) = match n % 3 {
            0 => ("alice", format!("Device edge{} edited\nset system ntp server 192.0.2.{}", n % 7, n % 250)),
            1 => ("bob", format!("Configuration committed to core{}\n-old line {n}\n+new line {n}", n % 3)),
            _ => ("carol", format!("Archive of edge{} completed", n % 5)),
        };
        let kind = ["DEVICE_EDITED", "CONFIG_COMMITTED", "ARCHIVE_COMPLETED"][n % 3];
        let time = format!("2026-{:02}-{:02}T{:02}:00:00Z", 8 + n % 3, 1 + n % 28, n % 24);
        events.push(
            json!({"user": user, "kind": kind, "name": format!("edge{}", n % 7), "message": message, "time": time}),
        );
    }
    for payload in PAYLOADS {
        events.push(json!({
            "user": format!("mallory{payload}"), "client": payload, "kind": "ACME.PROBE", "process": payload,
            "action": payload, "name": payload, "severity": "warning", "message": format!("{payload}\n{payload}"),
            "attributes": {"note": payload}, "request_id": payload, "session_id": payload, "job_id": payload,
        }));
    }
    post(base, "/api/v1/events", Value::Array(events));
    let job = post(
        base,
        "/api/v1/jobs",
        json!({"name": format!("archive edge routers {}", PAYLOADS[1]), "targets": ["edge1", "edge2", PAYLOADS[0]]}),
    );
    let id = job["id"].as_i64().unwrap();
    post(
        base,
        &format!("/api/v1/jobs/{id}/targets/edge1/status"),
        json!({"status": "succeeded", "message": "archived"}),
    );
    post(
        base,
        &format!("/api/v1/jobs/{id}/targets/edge2/status"),
        json!({"status": "running", "message": PAYLOADS[2]}),
    );
    let lines: Vec<String> = (1..=250).map(|n| format!("step {n} {}", PAYLOADS[n % 3])).collect();
    post(base, &format!("/api/v1/jobs/{id}/log"), json!({"target": "edge1", "lines": lines}));
    post(base, "/api/v1/devices/edge1/archive", json!({"config": "hostname edge1\nntp server 192.0.2.1\n", "job": id}));
    post(base, "/api/v1/devices/edge1/archive", json!({"config": "hostname edge1\nntp server 192.0.2.2\n"}));
    for (name, roles) in [("lockme", ["viewer"]), ("olga", ["operator"])] {
        post(
            base,
            "/api/v1/accounts",
            json!({"username": name, "password": format!("{name}-pass-1234"), "roles": roles}),
        );
    }
}

fn program(name: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|c| Path::new(c).exists())
        .map(|c| (*c).to_owned())
        .unwrap_or_else(|| panic!("{name} is missing: run ./scripts/test, which installs it"))
}

/// Runs the browser tests (e2e/ui.mjs) against `base`, with `envs` besides the usual ones.
fn browser_tests(base: &str, screenshots: &str, envs: &[(&str, &Path)]) {
    let root = workspace();
    let node = program("node", &["/usr/bin/node", "/usr/local/bin/node"]);
    let chromium = program("chromium", &["/usr/bin/chromium"]);
    assert!(
        root.join("e2e/node_modules/playwright-core").exists(),
        "playwright-core is missing: run ./scripts/test, which runs npm ci in e2e/"
    );
    let screenshots = root.join("target").join(screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();
    let status = Command::new(node)
        .arg(root.join("e2e/ui.mjs"))
        .current_dir(root.join("e2e"))
        .env("TRAIL_BASE", base)
        .env("TRAIL_TOKEN", TOKEN)
        .env("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOTS", &screenshots)
        .envs(envs.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "the browser tests on {base} failed (their output is above)");
}

#[test]
fn the_web_ui_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    seed(&server.base);
    browser_tests(&server.base, "ui-screenshots", &[]);
}

/// The same tests over HTTPS served by Trail itself (`[tls]`), seeded over its plain listener.
/// Node checks the certificate against the test's CA; the browser is told to accept it, having
/// no way to be given a CA of its own.
#[test]
fn the_web_ui_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certificates = authority(&dir.path().join("certificates"));
    let port = trail_forward::peers::free_port();
    let config = tls_config(dir.path(), port);
    install(&certificates, &dir.path().join("tls"));
    let server = spawn_server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()],
        &[("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    seed(&server.base);
    let ca = certificates.join("ca.pem");
    browser_tests(&format!("https://localhost:{port}"), "ui-screenshots-https", &[("NODE_EXTRA_CA_CERTS", &ca)]);
}
