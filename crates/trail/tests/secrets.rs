//! Secrets at rest and in cookies: tokens and sessions are kept as digests only, a token dies
//! with its owner, and session cookies are `Secure` when `secure_cookies` says Trail is served
//! over TLS.

mod common;

use common::{TOKEN, spawn_server};
use serde_json::{Value, json};
use std::path::Path;

const ADMIN_PASSWORD: &str = "admin-pass-1234";

/// Logs in over the API, asking for a token too: the token's secret, and the Set-Cookie header.
fn login(base: &str, user: &str, password: &str) -> (String, String) {
    common::block_on(async {
        let body = json!({"username": user, "password": password, "token": {"name": "cli", "scopes": ["read"]}});
        let response = reqwest::Client::new().post(format!("{base}/api/v1/login")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let answer: Value = response.json().await.unwrap();
        (answer["token"].as_str().unwrap().to_owned(), cookie)
    })
}

fn status_with(base: &str, token: &str) -> u16 {
    common::block_on(async {
        let response = reqwest::Client::new().get(format!("{base}/api/v1/events")).bearer_auth(token).send();
        response.await.unwrap().status().as_u16()
    })
}

/// Every byte Trail keeps in its data directory: databases, their WALs, the search index.
fn everything_kept(data: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn tokens_and_sessions_are_kept_as_digests_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)];
    let server = spawn_server(dir.path(), &["--listen", "127.0.0.1:0"], &env);
    let (token, cookie) = login(&server.base, "admin", ADMIN_PASSWORD);
    let session = cookie.split(';').next().unwrap().trim_start_matches("trail_session=").to_owned();
    assert_eq!(status_with(&server.base, &token), 200, "the token works (and its use is recorded)");
    drop(server); // SIGKILL: whatever is in the WAL stays there, to be read below.

    let kept = everything_kept(&dir.path().join("trail-data"));
    let digest = |secret: &str| trail_core::identity::token::digest(secret);
    for (what, secret) in [("token", token.as_str()), ("session", session.as_str())] {
        assert!(!holds(&kept, secret.as_bytes()), "the {what}'s secret is kept in the clear");
        assert!(holds(&kept, &digest(secret)), "the {what}'s digest is kept (the search looked in the right place)");
    }
    assert!(!holds(&kept, ADMIN_PASSWORD.as_bytes()), "the password is kept in the clear");
}

#[test]
fn a_token_stops_when_its_owner_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_server(dir.path(), &["--listen", "127.0.0.1:0"], &[("TRAIL_TOKEN", TOKEN)]);
    common::block_on(async {
        let account = json!({"username": "bob", "roles": ["operator"], "password": "bob-pass-1234"});
        let http = reqwest::Client::new();
        let added = http.post(format!("{}/api/v1/accounts", server.base)).bearer_auth(TOKEN).json(&account).send();
        assert_eq!(added.await.unwrap().status(), 201);
    });
    let (token, _) = login(&server.base, "bob", "bob-pass-1234");
    assert_eq!(status_with(&server.base, &token), 200);
    common::block_on(async {
        let deleted = reqwest::Client::new().delete(format!("{}/api/v1/accounts/bob", server.base)).bearer_auth(TOKEN);
        assert_eq!(deleted.send().await.unwrap().status(), 200);
    });
    assert_eq!(status_with(&server.base, &token), 401, "a deleted account's token is refused at once");
}

#[test]
fn session_cookies_are_secure_when_trail_is_served_over_tls() {
    for (secure, config) in [(true, "secure_cookies = true\n"), (false, "")] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("trail.toml"), config).unwrap();
        let env = [("TRAIL_TOKEN", TOKEN), ("TRAIL_ADMIN_PASSWORD", ADMIN_PASSWORD)];
        let server = spawn_server(dir.path(), &["--listen", "127.0.0.1:0", "--config", "trail.toml"], &env);
        let (_, api_cookie) = login(&server.base, "admin", ADMIN_PASSWORD);
        let form_cookie = common::block_on(async {
            let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let response = browser
                .post(format!("{}/login", server.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("username=admin&password={ADMIN_PASSWORD}&next=%2F"))
                .send()
                .await
                .unwrap();
            response.headers()["set-cookie"].to_str().unwrap().to_owned()
        });
        for cookie in [api_cookie, form_cookie] {
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
            assert_eq!(cookie.split("; ").any(|part| part == "Secure"), secure, "secure_cookies = {secure}: {cookie}");
        }
    }
}
