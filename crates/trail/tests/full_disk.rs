//! A full disk: `trail serve` on a small filesystem that the test mounts itself (a tmpfs, so
//! the test needs root, as CI has; it fails, never skips, without), ingesting until the disk is
//! full. Then writes are refused with `507 disk_full` and nothing acknowledged is lost; the
//! server stays up; searches and the UI answer; forwarding to a real rsyslog goes on although
//! neither its cursor nor the search index can be written; and once space is freed, ingest,
//! the index and the cursor resume by themselves.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use trail_forward::peers::{Rsyslog, SyslogKind};

/// A tmpfs of its own, unmounted when dropped.
struct SmallFilesystem {
    _dir: tempfile::TempDir,
    point: PathBuf,
}

impl SmallFilesystem {
    fn mount(megabytes: u32) -> SmallFilesystem {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("small");
        std::fs::create_dir(&point).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&point)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "mounting a {megabytes} MiB tmpfs failed ({}): this test needs root, as CI has",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        SmallFilesystem { _dir: dir, point }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

/// Sends one request and answers its status, `Retry-After` and JSON body.
fn send(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    block_on(async {
        let response = request.bearer_auth(TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
        (status, retry, response.json().await.unwrap_or(Value::Null))
    })
}

fn ingest(base: &str, batch: u32) -> (u16, Option<String>, Value) {
    let filler = "the disk fills up ".repeat(100);
    let events: Vec<Value> = (0..20)
        .map(|n| json!({"user": "alice", "kind": "DEVICE_EDITED", "name": format!("full-disk {batch}-{n}"), "message": filler}))
        .collect();
    send(reqwest::Client::new().post(format!("{base}/api/v1/events")).json(&events))
}

/// The ids of every event whose name holds `full-disk`, read page by page.
fn stored_ids(base: &str) -> BTreeSet<i64> {
    let (mut ids, mut cursor) = (BTreeSet::new(), None::<String>);
    loop {
        let mut url = format!("{base}/api/v1/events?all_users=true&name=full-disk%25&limit=1000");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, _, page) = send(reqwest::Client::new().get(url));
        assert_eq!(status, 200, "{page}");
        ids.extend(page["events"].as_array().unwrap().iter().map(|event| event["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

fn eventually(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holds() {
        assert!(Instant::now() < deadline, "{what} did not happen within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ballast(path: &Path, megabytes: usize) {
    std::fs::write(path, vec![0x55; megabytes * 1024 * 1024]).unwrap();
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_everything_acknowledged_and_resumes_when_freed() {
    let small = SmallFilesystem::mount(8);
    let ballast_file = small.point.join("ballast");
    ballast(&ballast_file, 3);
    let rsyslog = Rsyslog::start(SyslogKind::Plain);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("trail.toml");
    std::fs::write(
        &config,
        format!("[[destinations]]\nname = \"siem\"\ntype = \"syslog\"\nurl = \"{}\"\n", rsyslog.url("tcp")),
    )
    .unwrap();
    let data = small.point.join("data");
    let server = spawn_server(
        work.path(),
        &["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--data", data.to_str().unwrap()],
        &[("TRAIL_TOKEN", TOKEN)],
    );

    // Ingest until the disk is full.
    let mut acknowledged = BTreeSet::new();
    let refusal = (0..5000)
        .find_map(|batch| {
            let (status, retry, answer) = ingest(&server.base, batch);
            if status == 201 {
                acknowledged.extend(answer["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()));
                return None;
            }
            Some((status, retry, answer))
        })
        .expect("the disk never filled");
    let (status, retry, answer) = refusal;
    assert_eq!((status, retry.as_deref()), (507, Some("10")), "{answer}");
    assert_eq!(answer["error"]["code"], "disk_full", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("disk holding the trail is full") && message.contains("nothing was stored"), "{message}");
    assert!(acknowledged.len() > 100, "only {} events fitted", acknowledged.len());

    // The server stays up: more writes get the same answer, reads answer.
    for batch in 0..3 {
        assert_eq!(ingest(&server.base, 10_000 + batch).0, 507);
    }
    assert_eq!(stored_ids(&server.base), acknowledged, "every acknowledged event, and nothing else, is there");
    // (An entry's details are not read here: reading them is recorded first, like an export,
    // so they too wait for space.)
    let (status, _, newest) = send(
        reqwest::Client::new().get(format!("{}/api/v1/events?all_users=true&name=full-disk%25&limit=1", server.base)),
    );
    assert_eq!(status, 200, "{newest}");
    assert_eq!(newest["events"][0]["id"].as_i64(), acknowledged.last().copied(), "the newest page starts at the last");
    let name = newest["events"][0]["name"].as_str().unwrap().to_owned();
    let (status, _, found) = send(reqwest::Client::new().get(format!(
        "{}/api/v1/events?all_users=true&message=disk%20fills&name={}",
        server.base,
        name.replace(' ', "%20")
    )));
    assert_eq!((status, found["events"].as_array().map(Vec::len)), (200, Some(1)), "{found}");
    assert!(get_text(&server.base, "/").contains(&name), "the UI's change log shows the newest entry");

    // Forwarding goes on, though its cursor cannot be saved.
    eventually("forwarding the last acknowledged event", || rsyslog.parsed().iter().any(|line| line.contains(&name)));

    // Space freed: ingest, the index and the saved cursor resume, with no restart.
    std::fs::remove_file(&ballast_file).unwrap();
    let mut resumed = None;
    eventually("ingest resuming", || {
        let (status, _, answer) = ingest(&server.base, 20_000);
        resumed = (status == 201).then_some(answer);
        resumed.is_some()
    });
    acknowledged.extend(resumed.unwrap()["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()));
    assert_eq!(stored_ids(&server.base), acknowledged);
    eventually("the index catching up", || metric(&server.base, "trail_unindexed_events") == 0.0);
    let head = *acknowledged.last().unwrap() as f64;
    eventually("the forwarding cursor being saved", || {
        metric(&server.base, "trail_forward_delivered_through{destination=\"siem\"}") >= head
    });
    let verified = ok(work.path(), &["verify", "--data", data.to_str().unwrap()], &[]);
    assert!(verified.starts_with("OK: "), "{verified}");
}
