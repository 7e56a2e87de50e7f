//! The server's edges, against the real binary: HTTPS without a proxy (curl is the client; the
//! certificate is reloaded on SIGHUP under an open connection), and slow and greedy clients
//! (idle sockets by the thousand, a body that never finishes, more connections or queued writes
//! than the limits allow) that must not stop a normal client.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trail_forward::peers::{free_port, program, signal};

const ADMIN_PASSWORD: &str = "admin-pass-1234";

/// curl's answer: the status, the headers (lower-cased names) and the body; `None` when curl
/// could not connect or rejected the certificate.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

fn curl(ca: &Path, args: &[&str]) -> Option<Answer> {
    let output = Command::new(program("curl"))
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl runs");
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Some(Answer { status, headers: head.to_ascii_lowercase(), body: body.to_owned() })
}

fn session_cookie(answer: &Answer) -> String {
    answer.headers.lines().find(|line| line.starts_with("set-cookie:")).expect("a session cookie").to_owned()
}

#[test]
fn https_beside_plain_http_with_hsts_secure_cookies_and_certificates_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (authority(&dir.path().join("first")), authority(&dir.path().join("second")));
    let port = free_port();
    let config = tls_config(dir.path(), port);
    install(&first, &dir.path().join("tls"));
    let server = spawn_server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()],
        &[("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let https = format!("https://127.0.0.1:{port}");

    // HTTPS, checked against the CA (no -k): HSTS on every answer.
    let health = curl(&first.join("ca.pem"), &[&format!("{https}/healthz")]).expect("HTTPS answers");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    assert!(health.headers.contains("strict-transport-security: max-age=31536000"), "{}", health.headers);
    let plain = block_on(reqwest::get(format!("{}/healthz", server.base))).unwrap();
    assert!(plain.headers().get("strict-transport-security").is_none(), "no HSTS over plain HTTP");

    // A session made over HTTPS has a Secure cookie (no `secure_cookies` set); over plain HTTP not.
    let login = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let over_tls = curl(
        &first.join("ca.pem"),
        &["-H", "content-type: application/json", "-d", &login, &format!("{https}/api/v1/login")],
    )
    .unwrap();
    assert_eq!(over_tls.status, 200, "{}", over_tls.body);
    assert!(session_cookie(&over_tls).ends_with("; secure"), "{}", session_cookie(&over_tls));
    let over_plain = Command::new(program("curl"))
        .args(["-sS", "-i", "-H", "content-type: application/json", "-d", &login])
        .arg(format!("{}/api/v1/login", server.base))
        .output()
        .unwrap();
    let over_plain = String::from_utf8(over_plain.stdout).unwrap().to_ascii_lowercase();
    let cookie = over_plain.lines().find(|line| line.starts_with("set-cookie:")).unwrap();
    assert!(!cookie.contains("secure"), "{cookie}");

    // A stream opened with the first certificate outlives the reload.
    let mut stream = Command::new(program("curl"))
        .args(["-sS", "-N", "--max-time", "60", "--cacert"])
        .arg(first.join("ca.pem"))
        .args(["-H", &format!("authorization: Bearer {TOKEN}"), &format!("{https}/api/v1/status/stream")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(stream.stdout.take().unwrap()).lines();
    let (sender, streamed) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| drop(sender.send(line))));
    let mut stream = Killed(stream);
    std::thread::sleep(Duration::from_millis(500));

    install(&second, &dir.path().join("tls"));
    signal(&server.child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while curl(&second.join("ca.pem"), &[&format!("{https}/healthz")]).is_none() {
        assert!(Instant::now() < deadline, "the second certificate was not served within 10 s of SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(curl(&first.join("ca.pem"), &[&format!("{https}/healthz")]).is_none(), "the old certificate is gone");

    let job = post(&server.base, "/api/v1/jobs", json!({"name": "reload probe", "targets": ["edge1"]}));
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|line| line.contains("reload probe")) && Instant::now() < deadline {
        if let Ok(line) = streamed.recv_timeout(Duration::from_secs(1)) {
            seen.push(line);
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("reload probe")),
        "the stream opened before the reload got no update for job {job}: {seen:?}"
    );
    assert!(stream.0.try_wait().unwrap().is_none(), "the stream opened before the reload was cut");

    // A reload that fails keeps the certificate in use, and the server up.
    std::fs::write(dir.path().join("tls/cert.pem"), "not a certificate").unwrap();
    signal(&server.child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    let still = curl(&second.join("ca.pem"), &[&format!("{https}/healthz")]).expect("still served after a bad reload");
    assert_eq!(still.status, 200);
}

#[test]
fn https_only_when_listen_is_not_set_and_bad_certificates_stop_serve_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (authority(&dir.path().join("first")), authority(&dir.path().join("second")));
    let port = free_port();
    let config = tls_config(dir.path(), port);
    let tls = dir.path().join("tls");

    // Missing files, and a key that is not the certificate's.
    let missing = run(dir.path(), &["serve", "--config", config.to_str().unwrap()], &[("TRAIL_TOKEN", TOKEN)]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains(&tls.join("cert.pem").display().to_string()), "{}", stderr(&missing));
    std::fs::copy(first.join("server.pem"), tls.join("cert.pem")).unwrap();
    std::fs::copy(second.join("server.key"), tls.join("key.pem")).unwrap();
    let mismatch = run(dir.path(), &["serve", "--config", config.to_str().unwrap()], &[("TRAIL_TOKEN", TOKEN)]);
    assert!(!mismatch.status.success());
    assert!(stderr(&mismatch).contains("does not fit the certificate"), "{}", stderr(&mismatch));

    install(&first, &tls);
    let server = spawn_server(dir.path(), &["--config", config.to_str().unwrap()], &[("TRAIL_TOKEN", TOKEN)]);
    assert_eq!(server.base, format!("https://127.0.0.1:{port}"), "{:?}", server.banner);
    let events = json!([{"user": "alice", "kind": "DEVICE_EDITED", "message": "over https"}]).to_string();
    let auth = format!("authorization: Bearer {TOKEN}");
    let stored = curl(&first.join("ca.pem"), &["-H", &auth, "-d", &events, &format!("{}/api/v1/events", server.base)]);
    assert_eq!(stored.map(|answer| answer.status), Some(201));
    let found = curl(
        &first.join("ca.pem"),
        &["-H", &auth, &format!("{}/api/v1/events?all_users=true&message=over%20https", server.base)],
    )
    .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&found.body).unwrap()["events"].as_array().unwrap().len(), 1);
}

fn post(base: &str, path: &str, body: Value) -> Value {
    block_on(async {
        let response =
            reqwest::Client::new().post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        let status = response.status();
        let answer = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    })
}

/// Sends `head` (and the start of a body, maybe) and then nothing more.
fn stalled(base: &str, head: &str) -> TcpStream {
    let mut socket = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    socket.write_all(head.as_bytes()).unwrap();
    socket
}

/// What the server answers on `socket` before it closes it, which it must do within `limit`.
fn answer_on(mut socket: TcpStream, limit: Duration) -> String {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    let closed = socket.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(closed.is_ok(), "the server kept the connection open for {limit:?} after answering {answer:?}");
    answer
}

fn slow_body(base: &str, declared: usize) -> TcpStream {
    stalled(
        base,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nhost: trail\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {declared}\r\n\r\n[{{\"user\": \"slow\""
        ),
    )
}

fn limits_server(dir: &Path, limits: &str) -> Server {
    let config = dir.join("trail.toml");
    std::fs::write(&config, format!("[limits]\n{limits}")).unwrap();
    spawn_server(dir, &["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()], &[("TRAIL_TOKEN", TOKEN)])
}

fn event_count(base: &str) -> usize {
    block_on(async {
        let answer: Value = reqwest::Client::new()
            .get(format!("{base}/api/v1/events?all_users=true&limit=1000"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["events"].as_array().unwrap().len()
    })
}

#[test]
fn two_thousand_idle_connections_and_a_slow_body_do_not_stop_a_normal_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = limits_server(dir.path(), "body_timeout_seconds = 3\n");
    let slow = slow_body(&server.base, 4096);
    let address = server.base.trim_start_matches("http://").to_owned();
    let idle: Vec<TcpStream> = (0..2000).map(|_| TcpStream::connect(&address).unwrap()).collect();

    let started = Instant::now();
    let before = event_count(&server.base);
    post(
        &server.base,
        "/api/v1/events",
        json!([{"user": "alice", "kind": "DEVICE_EDITED", "message": "normal client"}]),
    );
    assert_eq!(event_count(&server.base), before + 1);
    let waited = started.elapsed();
    let open = metric(&server.base, "trail_connections_open");
    assert!(open > 2000.0, "the idle connections were held open while the normal client was served: {open}");
    assert!(waited < Duration::from_secs(10), "the normal client waited {waited:?}");

    let answer = answer_on(slow, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert_eq!(event_count(&server.base), before + 1, "the slow body stored nothing");
    drop(idle);
}

#[test]
fn connections_and_queued_writes_beyond_their_limits_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = limits_server(
        dir.path(),
        "connections = 20\nheader_timeout_seconds = 2\nbody_timeout_seconds = 3\nqueued_writes_mib = 1\n",
    );
    let address = server.base.trim_start_matches("http://").to_owned();

    let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&address).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let refused = answer_on(TcpStream::connect(&address).unwrap(), Duration::from_secs(5));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("retry-after: 1") && refused.contains("\"code\":\"overloaded\""), "{refused}");
    // The idle ones are closed after the header timeout, and their slots serve others.
    for socket in idle {
        assert_eq!(answer_on(socket, Duration::from_secs(5)), "", "an idle connection is closed without an answer");
    }
    let before = event_count(&server.base);

    // A body that stalls holds the whole budget of queued writes: the next write is refused at
    // once, stores nothing, and goes through once the stalled one has timed out.
    let slow = slow_body(&server.base, 1024 * 1024);
    std::thread::sleep(Duration::from_millis(200));
    let refused = block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/events", server.base))
            .bearer_auth(TOKEN)
            .json(&json!([{"user": "alice", "kind": "DEVICE_EDITED", "message": "queued"}]))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = block_on(refused.json()).unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(answer_on(slow, Duration::from_secs(10)).starts_with("HTTP/1.1 408"));
    assert_eq!(event_count(&server.base), before);
    post(&server.base, "/api/v1/events", json!([{"user": "alice", "kind": "DEVICE_EDITED", "message": "queued"}]));
    assert_eq!(event_count(&server.base), before + 1);
}
