//! S4 against an insider: `trail verify --key --checkpoints` on a trail changed behind Trail's
//! back with SQL, rebuilt with valid hashes, or rebuilt and re-signed with the stolen key. Runs
//! on SQLite, and on PostgreSQL in the test command's second pass (`TRAIL_TEST_BACKEND`).

mod common;

use common::{Server, TOKEN, Trail, ok, run, spawn_server, stdout};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use trail_forward::peers::Rsyslog;

fn post(server: &Server, path: &str, body: Value) -> Value {
    common::block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", server.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    })
}

fn get_text(server: &Server, path: &str) -> String {
    common::block_on(async {
        let response =
            reqwest::Client::new().get(format!("{}{path}", server.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.text().await.unwrap()
    })
}

fn events(server: &Server, messages: &[&str]) {
    let batch: Vec<Value> = messages
        .iter()
        .map(|m| json!({"user": "alice", "kind": "DEVICE_EDITED", "name": "edge1", "message": m}))
        .collect();
    post(server, "/api/v1/events", json!(batch));
}

/// A checkpoint signed now, as its holder outside keeps it.
fn checkpoint(server: &Server) -> String {
    post(server, "/api/v1/checkpoints", json!({}))["note"].as_str().unwrap().to_owned()
}

/// A trail and what an auditor holds outside it: the verifier key and two checkpoints.
/// Events: 1 the administrator's creation, 2-6 edits, 7 the checkpoint of 6, 8-10 edits, 11 the
/// checkpoint of 10, 12-13 edits no checkpoint covers.
struct Audited {
    trail: Trail,
    key: PathBuf,
    held: PathBuf,
    auditor: tempfile::TempDir,
}

fn audited() -> Audited {
    let trail = Trail::fresh();
    let server = spawn_server(&trail, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    events(&server, &["e2", "e3", "e4", "e5", "e6"]);
    let first = checkpoint(&server);
    events(&server, &["e8", "e9", "e10"]);
    let second = checkpoint(&server);
    events(&server, &["e12", "e13"]);
    drop(server);
    let auditor = tempfile::tempdir().unwrap();
    let key = auditor.path().join("trail.vkey");
    std::fs::write(&key, ok(&trail, &["key", "show"], &[])).unwrap();
    let held = auditor.path().join("held.txt");
    std::fs::write(&held, format!("{first}{second}")).unwrap();
    Audited { trail, key, held, auditor }
}

impl Audited {
    fn verify(&self, trail: &Trail) -> (Option<i32>, String) {
        let args = ["verify", "--key", self.key.to_str().unwrap(), "--checkpoints", self.held.to_str().unwrap()];
        let output = run(trail, &args, &[]);
        (output.status.code(), stdout(&output))
    }

    fn assert_fails(&self, trail: &Trail, at: &str, case: &str) {
        let (code, out) = self.verify(trail);
        assert_eq!(code, Some(1), "{case}: {out}");
        assert!(out.contains(&format!("FAILED {at}")), "{case}: expected `FAILED {at}` in {out}");
    }
}

#[test]
fn an_intact_trail_is_confirmed_by_the_checkpoints_held_outside() {
    let audited = audited();
    let (code, out) = audited.verify(&audited.trail);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("OK: 13 events verified"), "{out}");
    assert!(
        out.contains("checkpoints: 2 held outside confirm every event through id 10; the newest 3 events are covered by no checkpoint"),
        "{out}"
    );
    let plain = ok(&audited.trail, &["verify"], &[]);
    assert!(plain.contains("the newest 13 events are covered by no checkpoint held outside"), "{plain}");
}

#[test]
fn each_change_behind_trails_back_is_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("UPDATE events SET message = 'quietly changed' WHERE id = 4", "at event 4", "a modified event"),
        ("DELETE FROM events WHERE id = 1", "at event 1", "the first event removed"),
        ("DELETE FROM events WHERE id = 5", "at event 5", "an event in the middle removed"),
        ("DELETE FROM events WHERE id >= 9", "at event 9", "the newest events removed"),
        (
            "UPDATE events SET id = 100 WHERE id = 3; UPDATE events SET id = 3 WHERE id = 4; \
             UPDATE events SET id = 4 WHERE id = 100",
            "at event 3",
            "two events reordered",
        ),
    ];
    for (sql, at, case) in cases {
        let audited = audited();
        audited.trail.tamper(sql);
        audited.assert_fails(&audited.trail, at, case);
    }
}

/// Every column of event 4, changed alone behind Trail's back: the chain and the tree cover each
/// stored field, so `verify` names event 4 every time (and a field left out of the hash would
/// let its change through). `month` (PostgreSQL's partition key, from `time`) and
/// `message_folded` (the message folded for search) are derived, not stored facts.
#[test]
fn every_stored_field_is_covered() {
    let user = if Trail::fresh().on_postgres() { "username" } else { "user" };
    let changes = [
        "time = time + 1".to_owned(),
        format!("{user} = 'mallory'"),
        "client = '203.0.113.9'".into(),
        "process = 'forged'".into(),
        "kind = 'DEVICE_DELETED'".into(),
        "action = 'forged'".into(),
        "name = 'edge2'".into(),
        "severity = CASE WHEN severity = 3 THEN 4 ELSE 3 END".into(),
        "outcome = CASE WHEN outcome = 2 THEN 1 ELSE 2 END".into(),
        "message = 'e4 '".into(),
        "attributes = '{\"forged\":\"1\"}'".into(),
        "request_id = 'forged'".into(),
        "session_id = 'forged'".into(),
        "job_id = '42'".into(),
        "parent_id = 'forged'".into(),
        "change = '{\"op\":\"delete\",\"object\":\"edge1\",\"table\":\"devices\"}'".into(),
        "hash = (SELECT hash FROM events WHERE id = 3)".into(),
        "submitted_by = 'mallory'".into(),
    ];
    assert_every_column_is_changed(&changes);
    for change in changes {
        let audited = audited();
        audited.trail.tamper(&format!("UPDATE events SET {change} WHERE id = 4"));
        audited.assert_fails(&audited.trail, "at event 4", &change);
        let plain = run(&audited.trail, &["verify"], &[]);
        assert_eq!(plain.status.code(), Some(1), "{change}, without checkpoints: {}", stdout(&plain));
        assert!(stdout(&plain).contains("FAILED at event 4"), "{change}, without checkpoints: {}", stdout(&plain));
    }
}

/// The events table's columns (SQLite's, which PostgreSQL's match but for `username` and its
/// derived `month` and `message_folded`) are each changed by one of `changes`, but the id, which
/// the reordering case changes: a column added later gets its case here, or this fails.
fn assert_every_column_is_changed(changes: &[String]) {
    let trail = Trail::fresh();
    if trail.on_postgres() {
        return;
    }
    drop(spawn_server(&trail, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]));
    let db = rusqlite::Connection::open(trail.join("trail-data/trail.db")).unwrap();
    let mut columns = db.prepare("SELECT name FROM pragma_table_info('events')").unwrap();
    let columns: Vec<String> = columns.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    for column in columns.iter().filter(|c| *c != "id") {
        assert!(changes.iter().any(|c| c.starts_with(&format!("{column} ="))), "no case changes events.{column}");
    }
}

/// A copy of the trail's events with event 4 changed, imported into a new trail: every hash of
/// the copy is valid.
fn rebuilt(trail: &Trail, scratch: &Path) -> Trail {
    let export = scratch.join("export.ndjson");
    ok(trail, &["export", "-o", export.to_str().unwrap()], &[]);
    let text = std::fs::read_to_string(&export).unwrap().replace("\"message\":\"e4\"", "\"message\":\"e4, rewritten\"");
    std::fs::write(&export, text).unwrap();
    let copy = Trail::fresh();
    ok(&copy, &["import", export.to_str().unwrap()], &[]);
    let (code, out) = (0, ok(&copy, &["verify"], &[]));
    assert_eq!(code, 0, "the rebuilt trail's own chain and tree hold: {out}");
    copy
}

#[test]
fn a_trail_rebuilt_with_valid_hashes_is_caught() {
    let audited = audited();
    let copy = rebuilt(&audited.trail, audited.auditor.path());
    audited.assert_fails(&copy, "between events 1 and 6", "rebuilt with valid hashes");
}

#[test]
fn a_trail_rebuilt_and_re_signed_with_the_stolen_key_is_caught() {
    let audited = audited();
    let copy = rebuilt(&audited.trail, audited.auditor.path());
    let forged = re_signed(&copy, &audited.trail);
    assert_eq!(
        ok(&copy, &["key", "show"], &[]),
        std::fs::read_to_string(&audited.key).unwrap(),
        "the copy signs with the trail's own key"
    );
    // Its own checkpoint verifies; the ones held outside since before do not.
    let own = audited.auditor.path().join("forged.txt");
    std::fs::write(&own, &forged).unwrap();
    let args = ["verify", "--key", audited.key.to_str().unwrap(), "--checkpoints", own.to_str().unwrap()];
    assert_eq!(run(&copy, &args, &[]).status.code(), Some(0), "a forger's own checkpoint agrees with the forgery");
    audited.assert_fails(&copy, "between events 1 and 6", "re-signed with the stolen key");
}

fn key_file(trail: &Path) -> PathBuf {
    trail.join("trail-data").join("checkpoint.key")
}

/// The copy signed with the key stolen from `trail`: its checkpoint, which agrees with it.
fn re_signed(copy: &Trail, trail: &Trail) -> String {
    std::fs::create_dir_all(copy.join("trail-data")).unwrap();
    std::fs::copy(key_file(trail), key_file(copy)).unwrap();
    let server = spawn_server(copy, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    checkpoint(&server)
}

/// rsyslog writing what it receives in its default file format, as a security team's server
/// would: line feeds become `#012`.
fn rsyslog() -> Rsyslog {
    Rsyslog::with_config(|dir, port| {
        format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             action(type=\"omfile\" file=\"{dir}/trail.log\")\n",
            dir = dir.display()
        )
    })
}

/// Waits until rsyslog's file holds a checkpoint of at least `size` events.
fn held_by_rsyslog(file: &Path, origin: &str, size: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let sizes = trail_core::checkpoint::notes_in(&text, origin)
            .iter()
            .filter_map(|note| note.lines().nth(1).and_then(|line| line.parse::<u64>().ok()))
            .collect::<Vec<_>>();
        if sizes.iter().any(|s| *s >= size) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint of {size} events reached rsyslog: {text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn checkpoints_kept_by_rsyslog_catch_a_trail_re_signed_with_the_stolen_key() {
    let rsyslog = rsyslog();
    let trail = Trail::fresh();
    let config =
        format!("[[destinations]]\nname = \"security\"\ntype = \"syslog\"\nurl = \"{}\"\n", rsyslog.url("tcp"));
    std::fs::write(trail.join("trail.toml"), config).unwrap();
    let server = spawn_server(
        &trail,
        &["--listen", "127.0.0.1:0", "--config", "trail.toml"],
        &[("TRAIL_CHECKPOINT_EVERY", "1"), ("TRAIL_TOKEN", TOKEN)],
    );
    let key = trail.join("trail.vkey");
    let key_line = ok(&trail, &["key", "show", "--config", "trail.toml"], &[]);
    std::fs::write(&key, &key_line).unwrap();
    let origin = key_line.split('+').next().unwrap().to_owned();
    let received = rsyslog.dir.path().join("trail.log");
    events(&server, &["e2", "e3", "e4", "e5", "e6"]);
    held_by_rsyslog(&received, &origin, 6);
    events(&server, &["later 1", "later 2"]);
    held_by_rsyslog(&received, &origin, 8);
    drop(server);
    let file = std::fs::read_to_string(&received).unwrap();
    assert!(
        file.contains("trail-checkpoints[") && file.contains("#012"),
        "rsyslog's own format, line feeds escaped: {file}"
    );

    let args = ["verify", "--key", key.to_str().unwrap(), "--checkpoints", received.to_str().unwrap()];
    let verified = ok(&trail, &args, &[]);
    assert!(verified.contains("held outside confirm every event through id"), "{verified}");
    let copy = rebuilt(&trail, &trail);
    re_signed(&copy, &trail);
    let caught = run(&copy, &args, &[]);
    assert_eq!(caught.status.code(), Some(1), "{}", stdout(&caught));
    assert!(stdout(&caught).contains("FAILED between events 1 and"), "{}", stdout(&caught));
}

/// `trail witness serve` in `dir`, witnessing the trail whose verifier key is in `log_key`; its
/// own verifier key.
fn spawn_witness(dir: &Path, log_key: &Path) -> (Server, String) {
    let args = ["witness", "serve", "--data", "witness-data", "--listen", "127.0.0.1:0", "--log"];
    let mut command = common::command(dir, &args, &[]);
    command.arg(log_key);
    let server = common::spawn_serving(command);
    let key = server.banner.iter().find_map(|l| l.strip_prefix("witness key: ")).unwrap().to_owned();
    (server, key)
}

fn witnessed_config(witness: &Server, key: &str) -> String {
    format!("[[witnesses]]\nurl = \"{}\"\nkey = \"{key}\"\n[checkpoints]\nwitnesses_required = 1\n", witness.base)
}

#[test]
fn a_witness_cosigns_the_trail_and_refuses_a_rewritten_history_even_after_a_restart() {
    let trail = Trail::fresh();
    drop(spawn_server(&trail, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]));
    let log_key = trail.join("trail.vkey");
    std::fs::write(&log_key, ok(&trail, &["key", "show"], &[])).unwrap();
    let witness_dir = tempfile::tempdir().unwrap();
    let (witness, witness_key) = spawn_witness(witness_dir.path(), &log_key);
    let witness_name = witness_key.split('+').next().unwrap().to_owned();
    std::fs::write(trail.join("trail.toml"), witnessed_config(&witness, &witness_key)).unwrap();

    let server =
        spawn_server(&trail, &["--listen", "127.0.0.1:0", "--config", "trail.toml"], &[("TRAIL_TOKEN", TOKEN)]);
    events(&server, &["e2", "e3"]);
    let first = post(&server, "/api/v1/checkpoints", json!({}));
    assert_eq!(first["cosigned_by"], json!([witness_name]), "{first}");
    assert_eq!(first["final"], true);
    events(&server, &["e5", "e6", "e7"]);
    let second = post(&server, "/api/v1/checkpoints", json!({}));
    assert_eq!(second["cosigned_by"], json!([witness_name]), "cosigned again, from a consistency proof: {second}");
    assert_eq!(second["witnesses"][0]["cosigned_size"], second["size"]);
    assert!(second["note"].as_str().unwrap().matches('\u{2014}').count() == 2, "the log's signature and the witness's");

    // One event's proof, from the server and from the database, checked with only the keys.
    let witness_key_file = trail.join("witness.vkey");
    std::fs::write(&witness_key_file, &witness_key).unwrap();
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    ok(&trail, &["proof", "3", "-o", "remote.json"], &env);
    drop(server);
    ok(&trail, &["proof", "3", "-o", "local.json"], &[]);
    let check = |file: &str| {
        let args = ["verify-proof", file, "--key", "trail.vkey", "--witness-key", "witness.vkey"];
        let output = run(&trail, &args, &[]);
        (output.status.code(), stdout(&output))
    };
    for file in ["remote.json", "local.json"] {
        let (code, out) = check(file);
        assert_eq!(code, Some(0), "{file}: {out}");
        assert!(out.starts_with("OK: event 3 is in the tree of") && out.contains(&witness_name), "{out}");
    }
    let changed = std::fs::read_to_string(trail.join("local.json")).unwrap().replace("\"e3\"", "\"e3, quietly\"");
    std::fs::write(trail.join("changed.json"), changed).unwrap();
    let (code, out) = check("changed.json");
    assert_eq!(code, Some(1), "a changed event fails offline: {out}");
    assert!(out.starts_with("FAILED: event 3 is not in the signed tree"), "{out}");

    // The trail rebuilt with a changed event and re-signed with the stolen key gets no
    // cosignature, from the witness running or restarted.
    let copy = rebuilt(&trail, &trail);
    re_signed(&copy, &trail);
    let mut witness = witness;
    for round in ["running", "restarted"] {
        std::fs::write(copy.join("trail.toml"), witnessed_config(&witness, &witness_key)).unwrap();
        let server =
            spawn_server(&copy, &["--listen", "127.0.0.1:0", "--config", "trail.toml"], &[("TRAIL_TOKEN", TOKEN)]);
        let forged = post(&server, "/api/v1/checkpoints", json!({}));
        assert_eq!(forged["cosigned_by"], json!([]), "{round}: {forged}");
        assert_eq!(forged["final"], false);
        let refusal = forged["witnesses"][0]["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(refusal.contains("refused with 4"), "{round}: {refusal}");
        let page = get_text(&server, "/admin/destinations");
        assert!(page.contains("cosigned by 0 of 1 witnesses") && page.contains("refused with 4"), "{page}");
        let metrics = get_text(&server, "/metrics");
        assert!(metrics.contains("trail_witness_failures_total"), "{metrics}");
        drop(server);
        drop(witness);
        witness = spawn_witness(witness_dir.path(), &log_key).0;
    }
}

#[test]
fn a_rotated_key_is_learnt_by_auditors_and_witnesses_and_the_old_key_stops_counting() {
    let trail = Trail::fresh();
    drop(spawn_server(&trail, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]));
    std::fs::write(trail.join("trail.vkey"), ok(&trail, &["key", "show"], &[])).unwrap();
    let stolen = std::fs::read_to_string(key_file(&trail)).unwrap();
    let witness_dir = tempfile::tempdir().unwrap();
    let (witness, witness_key) = spawn_witness(witness_dir.path(), &trail.join("trail.vkey"));
    std::fs::write(trail.join("trail.toml"), witnessed_config(&witness, &witness_key)).unwrap();
    let serve = ["--listen", "127.0.0.1:0", "--config", "trail.toml"];

    let server = spawn_server(&trail, &serve, &[("TRAIL_TOKEN", TOKEN)]);
    events(&server, &["e2", "e3"]);
    let before = checkpoint(&server);
    drop(server);
    let rotated = ok(&trail, &["key", "rotate"], &[]);
    assert!(rotated.contains("new key: ") && rotated.contains("restart Trail"), "{rotated}");
    let new_key = ok(&trail, &["key", "show"], &[]);
    assert_ne!(new_key, std::fs::read_to_string(trail.join("trail.vkey")).unwrap());

    let server = spawn_server(&trail, &serve, &[("TRAIL_TOKEN", TOKEN)]);
    assert!(server.banner.iter().any(|l| l.contains("hands the trail over")), "{:?}", server.banner);
    let handed = post(&server, "/api/v1/checkpoints", json!({}));
    assert!(handed["note"].as_str().unwrap().contains(&format!("\nnext-key {}", new_key.trim())), "{handed}");
    assert_eq!(handed["final"], true, "the witness cosigns the hand-over: {handed}");
    assert!(!trail.join("trail-data/checkpoint.key.retiring").exists(), "the old key's file is gone");
    events(&server, &["e6", "e7"]);
    let after = post(&server, "/api/v1/checkpoints", json!({}));
    assert_eq!(after["final"], true, "the witness learnt the new key: {after}");
    drop(server);

    // An auditor who was given the old key only: the hand-over teaches the new one.
    let after_note = after["note"].as_str().unwrap();
    let held = format!("{before}{}{after_note}", handed["note"].as_str().unwrap());
    std::fs::write(trail.join("held.txt"), &held).unwrap();
    let verify = ["verify", "--key", "trail.vkey", "--checkpoints", "held.txt"];
    let verified = ok(&trail, &verify, &[]);
    assert!(verified.contains("key rotation at") && verified.contains(new_key.trim()), "{verified}");
    assert!(verified.contains("3 held outside confirm every event"), "{verified}");
    ok(&trail, &["proof", "3", "-o", "proof.json"], &[]);
    let proof = ok(&trail, &["verify-proof", "proof.json", "--key", "trail.vkey"], &[]);
    assert!(proof.starts_with("OK: event 3 is in the tree of"), "the proof carries the hand-over: {proof}");

    // Whoever stole the old key signs the newest tree with it: nobody takes it any more.
    let newest = trail_core::checkpoint::Checkpoint::from_note(after_note).unwrap();
    let size = newest.size;
    let forged = trail_core::checkpoint::SigningKey::parse(&stolen).unwrap().sign(size, newest.root).note;
    let refused = common::block_on(async {
        let body = format!("old {size}\n\n{forged}");
        let response =
            reqwest::Client::new().post(format!("{}/add-checkpoint", witness.base)).body(body).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    });
    assert_eq!(refused.0, 403, "the witness refuses the retired key: {refused:?}");
    std::fs::write(trail.join("held.txt"), format!("{held}{forged}")).unwrap();
    let caught = run(&trail, &verify, &[]);
    assert_ne!(caught.status.code(), Some(0), "{}", stdout(&caught));
    let said = format!("{}{}", stdout(&caught), String::from_utf8_lossy(&caught.stderr));
    assert!(said.contains("which the trail retired at"), "{said}");
}

#[test]
fn a_stored_tree_changed_behind_trails_back_is_named() {
    let audited = audited();
    // Row 0 holds the stored hashes of the first 16 leaves, event 1's leaf first.
    let zeroed = if audited.trail.on_postgres() {
        "UPDATE tree_rows SET hashes = decode(repeat('00', length(hashes)), 'hex') WHERE number = 0"
    } else {
        "UPDATE tree_rows SET hashes = zeroblob(length(hashes)) WHERE number = 0"
    };
    audited.trail.tamper(zeroed);
    let output = run(&audited.trail, &["verify"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("FAILED at event 1"), "{}", stdout(&output));
}
