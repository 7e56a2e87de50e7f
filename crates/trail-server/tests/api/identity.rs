//! Login, account administration, and rights on every kind of route.

use crate::helpers::*;
use serde_json::{Value, json};
use trail_core::EventId;

async fn kinds(app: &TestApp) -> Vec<Value> {
    let events = app.store.read_after(EventId::ZERO, 1000).await.unwrap();
    events.into_iter().map(|e| serde_json::to_value(e).unwrap()).collect()
}

async fn add_account(app: &TestApp, name: &str, roles: &[&str], password: &str) -> (u16, Value) {
    app.post_raw("/api/v1/accounts", ALICE, json!({"username": name, "roles": roles, "password": password}).to_string())
        .await
}

async fn login(app: &TestApp, name: &str, password: &str) -> (u16, Value) {
    app.post_raw("/api/v1/login", "", json!({"username": name, "password": password}).to_string()).await
}

#[tokio::test]
async fn login_answers_only_invalid_credentials_or_account_locked() {
    let app = spawn_app().await;
    assert_eq!(add_account(&app, "carol", &["operator"], "carol-secret").await.0, 201);
    let (status, body) = login(&app, "Carol", "carol-secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["username"], "carol");
    assert!(body["rights"].as_array().unwrap().contains(&json!("details_own")));
    for (name, password) in [("carol", "wrong"), ("nobody", "x")] {
        let (status, body) = login(&app, name, password).await;
        assert_eq!((status, error_code(&body)), (401, "invalid_credentials"));
        assert_eq!(body["error"]["message"], "invalid credentials", "no reason is revealed");
    }
    for _ in 0..4 {
        login(&app, "carol", "wrong").await;
    }
    let (status, body) = login(&app, "carol", "carol-secret").await;
    assert_eq!((status, error_code(&body)), (403, "account_locked"));
    let events = kinds(&app).await;
    let failure = events.iter().find(|e| e["kind"] == "AUTH_LOGIN_FAILURE").unwrap();
    assert_eq!(failure["client"], "127.0.0.1", "the client address is recorded");
    assert_eq!(failure["attributes"]["reason"], "bad password", "the reason is stored");
    assert!(events.iter().any(|e| e["kind"] == "AUTH_ACCOUNT_LOCKED"));
    assert!(!serde_json::to_string(&events).unwrap().contains("carol-secret"));
}

#[tokio::test]
async fn administration_needs_the_administer_right() {
    let app = spawn_app().await;
    let (status, body) = app.get_as(VIEWER, "/api/v1/accounts").await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    assert!(body["error"]["message"].as_str().unwrap().contains("administer"));
    assert_eq!(app.post_raw("/api/v1/accounts/x/lock", OPERATOR, "").await.0, 403);
    assert_eq!(add_account(&app, "dave", &["viewer"], "dave-1").await.0, 201);
    let (status, body) = add_account(&app, "DAVE", &["viewer"], "x").await;
    assert_eq!((status, error_code(&body)), (409, "conflict"));
    let (status, body) = add_account(&app, "erin", &["wizard"], "x").await;
    assert_eq!((status, error_code(&body)), (422, "invalid_account"));
    assert!(body["error"]["message"].as_str().unwrap().contains("wizard"));
    assert_eq!(
        app.post_raw("/api/v1/accounts/dave/password", ALICE, json!({"password": "dave-2"}).to_string()).await.0,
        200
    );
    assert_eq!(login(&app, "dave", "dave-2").await.0, 200);
    assert_eq!(app.post_raw("/api/v1/accounts/dave/lock", ALICE, "").await.0, 200);
    let (_, list) = app.get("/api/v1/accounts").await;
    assert_eq!(list["accounts"][0]["locked"], true);
    assert_eq!(login(&app, "dave", "dave-2").await.0, 403);
    assert_eq!(app.post_raw("/api/v1/accounts/dave/unlock", ALICE, "").await.0, 200);
    assert_eq!(login(&app, "dave", "dave-2").await.0, 200);
    let deleted =
        app.client.delete(format!("{}/api/v1/accounts/dave", app.base)).bearer_auth(ALICE).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let recorded: Vec<String> = kinds(&app).await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    for kind in ["USER_ADDED", "USER_PASSWORD_CHANGED", "USER_LOCKED", "USER_UNLOCKED", "USER_DELETED"] {
        assert!(recorded.contains(&kind.to_owned()), "{kind}");
    }
    let locked = kinds(&app).await.into_iter().find(|e| e["kind"] == "USER_LOCKED").unwrap();
    assert_eq!((locked["user"].as_str(), locked["name"].as_str()), (Some("alice"), Some("dave")));
}

#[tokio::test]
async fn reading_follows_the_rights_and_others_details_are_audited() {
    let app = spawn_app().await;
    app.post(
        "/api/v1/events",
        json!([
            edited("victor", "e1", "victor's change\nsecret detail"),
            edited("olga", "e2", "olga's change\nher detail"),
            edited("bob", "e3", "bob's change\nhis detail")
        ]),
    )
    .await;
    let (status, body) = app.post_raw("/api/v1/events", VIEWER, edited("victor", "n", "m").to_string()).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "a viewer cannot ingest");

    let (_, own) = app.get_as(VIEWER, "/api/v1/events").await;
    assert_eq!(own["events"][0]["message"], "victor's change", "a viewer's list shows line 1 only, even of their own");
    let (status, body) = app.get_as(VIEWER, "/api/v1/events/1").await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));
    assert!(body["error"]["message"].as_str().unwrap().contains("first line"));

    let (_, all) = app.get_as(OPERATOR, "/api/v1/events?all_users=true").await;
    let messages: Vec<&str> =
        all["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["bob's change", "olga's change\nher detail", "victor's change"], "details of their own only");
    assert_eq!(app.get_as(OPERATOR, "/api/v1/events/2").await.0, 200);
    assert_eq!(app.get_as(OPERATOR, "/api/v1/events/3").await.0, 403);

    let before = kinds(&app).await.len();
    assert_eq!(app.get("/api/v1/events/3").await.0, 200, "an administrator sees bob's details");
    let audit = kinds(&app).await.pop().unwrap();
    assert_eq!(kinds(&app).await.len(), before + 1);
    assert_eq!(
        (audit["kind"].as_str(), audit["user"].as_str(), audit["name"].as_str()),
        (Some("AUDIT_DETAILS_VIEWED"), Some("alice"), Some("3"))
    );
    assert_eq!(audit["attributes"]["event_user"], "bob");
    let own_entry = app.post("/api/v1/events", edited("alice", "n", "alice's own")).await.1["ids"][0].as_i64().unwrap();
    let count = kinds(&app).await.len();
    app.get(&format!("/api/v1/events/{own_entry}")).await;
    assert_eq!(kinds(&app).await.len(), count, "reading one's own details is not audited");
}

async fn delete(app: &TestApp, path: &str, token: &str) -> u16 {
    app.client.delete(format!("{}{path}", app.base)).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn api_tokens_are_shown_once_scoped_revocable_and_remember_their_use() {
    let app = spawn_app().await;
    add_account(&app, "ivan", &["operator"], "ivan-secret").await;
    let request = json!({"username": "ivan", "password": "ivan-secret", "token": {"name": "cli", "scopes": ["read"]}});
    let (status, answer) = app.post_raw("/api/v1/login", "", request.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("trl_"));
    app.post("/api/v1/events", json!([edited("ivan", "n", "ivan's entry\ndetail")])).await;
    let (status, own) = app.get_as(&token, "/api/v1/events").await;
    assert_eq!(status, 200);
    assert_eq!(own["events"][0]["message"], "ivan's entry\ndetail", "the token reads as its owner");
    let (status, body) = app.post_raw("/api/v1/events", &token, edited("ivan", "n", "m").to_string()).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "a read token cannot ingest");

    let (status, body) = app
        .post_raw("/api/v1/tokens", &token, json!({"name": "x", "scopes": ["read"], "owner": "alice"}).to_string())
        .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "only administrators make tokens for others");
    let (status, body) =
        app.post_raw("/api/v1/tokens", &token, json!({"name": "ingest-try", "scopes": ["read"]}).to_string()).await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"), "a token without the admin scope issues nothing");
    let request_ingest =
        json!({"username": "ivan", "password": "ivan-secret", "token": {"name": "ingest-try", "scopes": ["ingest"]}});
    let (status, issued) = app.post_raw("/api/v1/login", "", request_ingest.to_string()).await;
    assert_eq!(status, 200, "{issued}");
    let ingest_token = issued["token"].as_str().unwrap();
    assert_eq!(
        app.post_raw("/api/v1/events", ingest_token, edited("ivan", "n", "m").to_string()).await.0,
        403,
        "a scope never adds a right the owner lacks"
    );

    let (_, listed) = app.get_as(&token, "/api/v1/tokens").await;
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "ivan's read token sees his tokens within its scopes: {listed}");
    assert!(tokens[0]["last_used_at"].is_string(), "the read token's use is remembered");
    assert!(!listed.to_string().contains(&token), "secrets are never listed");
    let (_, all) = app.get("/api/v1/tokens").await;
    assert_eq!(all["tokens"].as_array().unwrap().len(), 2, "an administrator sees everyone's");

    let id = tokens[0]["id"].as_i64().unwrap();
    assert_eq!(delete(&app, &format!("/api/v1/tokens/{id}"), VIEWER).await, 404, "not victor's to revoke");
    assert_eq!(delete(&app, &format!("/api/v1/tokens/{id}"), &token).await, 200);
    let (status, _) = app.get_as(&token, "/api/v1/events").await;
    assert_eq!(status, 401, "a revoked token stops at once");

    let (_, again) = app.post_raw("/api/v1/login", "", request.to_string()).await;
    let fresh = again["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_as(&fresh, "/api/v1/events").await.0, 200);
    app.post_raw("/api/v1/accounts/ivan/lock", ALICE, "").await;
    assert_eq!(app.get_as(&fresh, "/api/v1/events").await.0, 401, "a locked owner's tokens stop");

    let events = kinds(&app).await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("TOKEN_CREATED") && text.contains("TOKEN_REVOKED"));
    assert!(!text.contains(&token) && !text.contains(&fresh), "no secret in any event");
}

/// Logs in with an optional cookie already set; returns (status, session cookie value, csrf).
async fn browser_login(
    app: &TestApp,
    name: &str,
    password: &str,
    offered: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request =
        app.client.post(format!("{}/api/v1/login", app.base)).json(&json!({"username": name, "password": password}));
    if let Some(offered) = offered {
        request = request.header("cookie", format!("trail_session={offered}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    if let Some(cookie) = &cookie {
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"),
            "{cookie}"
        );
    }
    let body: Value = response.json().await.unwrap_or_default();
    let id = cookie.and_then(|c| c.split(';').next().and_then(|p| p.strip_prefix("trail_session=")).map(str::to_owned));
    (status, id, body["csrf"].as_str().unwrap_or("").to_owned())
}

async fn with_cookie(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    session: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request =
        app.client.request(method, format!("{}{path}", app.base)).header("cookie", format!("trail_session={session}"));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn browser_sessions_resist_fixation_and_csrf_and_log_out() {
    let app = spawn_app().await;
    add_account(&app, "kim", &["operator"], "kim-secret").await;
    let (status, session, csrf) = browser_login(&app, "kim", "kim-secret", Some("attacker-chosen-id")).await;
    assert_eq!(status, 200);
    let session = session.expect("login sets the session cookie");
    assert_ne!(session, "attacker-chosen-id", "the server never adopts an offered id");
    let (status, _) = with_cookie(&app, reqwest::Method::GET, "/api/v1/events", "attacker-chosen-id", None, None).await;
    assert_eq!(status, 401, "the fixed id grants nothing");
    assert_eq!(
        with_cookie(&app, reqwest::Method::GET, "/api/v1/events", &session, None, None).await.0,
        200,
        "reads need no CSRF token"
    );

    let token = json!({"name": "from the browser", "scopes": ["read"]});
    let (status, body) =
        with_cookie(&app, reqwest::Method::POST, "/api/v1/tokens", &session, None, Some(token.clone())).await;
    assert_eq!((status, error_code(&body)), (403, "csrf_failed"), "a state change without the token is refused");
    let (status, _) =
        with_cookie(&app, reqwest::Method::POST, "/api/v1/tokens", &session, Some("forged"), Some(token.clone())).await;
    assert_eq!(status, 403);
    let (status, _) =
        with_cookie(&app, reqwest::Method::POST, "/api/v1/tokens", &session, Some(&csrf), Some(token)).await;
    assert_eq!(status, 201, "with the session's CSRF token it goes through");

    let (_, rotated, rotated_csrf) = browser_login(&app, "kim", "kim-secret", Some(&session)).await;
    let rotated = rotated.unwrap();
    assert_ne!(rotated, session, "a new login rotates the id");
    assert_eq!(
        with_cookie(&app, reqwest::Method::GET, "/api/v1/events", &session, None, None).await.0,
        401,
        "the old session ended"
    );

    let (status, body) = with_cookie(&app, reqwest::Method::POST, "/api/v1/logout", &rotated, None, None).await;
    assert_eq!((status, error_code(&body)), (403, "csrf_failed"), "another site cannot end the session");
    let response = app
        .client
        .post(format!("{}/api/v1/logout", app.base))
        .header("cookie", format!("trail_session={rotated}"))
        .header("x-csrf-token", &rotated_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(with_cookie(&app, reqwest::Method::GET, "/api/v1/events", &rotated, None, None).await.0, 401);
    let events = kinds(&app).await;
    let logout = events.iter().find(|e| e["kind"] == "AUTH_LOGOUT" && e["user"] == "kim").expect("logout recorded");
    // One session id from login to logout (RADIUS Start and Stop), never the cookie itself.
    let session_of = |kind: &str| {
        let event = events.iter().filter(|e| e["kind"] == kind && e["user"] == "kim");
        event.map(|e| e["session_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let rotated_logins = session_of("AUTH_LOGIN_SUCCESS");
    assert_eq!(rotated_logins.len(), 2);
    assert!(rotated_logins.contains(&logout["session_id"].as_str().unwrap().to_owned()));
    assert_eq!(session_of("TOKEN_CREATED").len(), 1, "actions in a session name it");
    assert!(rotated_logins.contains(&session_of("TOKEN_CREATED")[0]));
    assert!(events.iter().all(|e| !e.to_string().contains(&rotated) && !e.to_string().contains(&session)));
}

#[tokio::test]
async fn every_export_is_recorded_and_follows_the_rights() {
    let app = spawn_app().await;
    app.post(
        "/api/v1/events",
        json!([
            edited("bob", "e1", "first ntp\ndetail one"),
            edited("carol", "e2", "second\ndetail two"),
            edited("bob", "e3", "third ntp\ndetail three")
        ]),
    )
    .await;
    let response = app
        .client
        .get(format!("{}/api/v1/export?all_users=true&message=ntp", app.base))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = response.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let messages: Vec<&str> = lines.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["first ntp\ndetail one", "third ntp\ndetail three"], "matching events, oldest first");
    let audit = kinds(&app).await.into_iter().find(|e| e["kind"] == "AUDIT_EXPORT").expect("the export is recorded");
    assert_eq!(audit["user"], "alice");
    assert!(audit["attributes"]["filter"].as_str().unwrap().contains("message=ntp"));

    let csv = app
        .client
        .get(format!("{}/api/v1/export?all_users=true&format=csv", app.base))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("id,time,user,client,process,kind"), "{text}");
    assert!(text.contains("\"second\ndetail two\""), "multi-line cells are quoted");

    for (token, why) in [(VIEWER, "viewers have no export right"), (OPERATOR, "operators have no export right")] {
        let response = app.client.get(format!("{}/api/v1/export", app.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 403, "{why}");
    }
    let exports = kinds(&app).await.iter().filter(|e| e["kind"] == "AUDIT_EXPORT").count();
    assert_eq!(exports, 2, "refused exports are not exports");
}

#[tokio::test]
async fn the_form_login_redirects_locally_and_refuses_other_sites() {
    let app = spawn_app().await;
    add_account(&app, "lena", &["viewer"], "lena-secret").await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();
    let post = |form: &'static str, origin: Option<String>| {
        let mut request = browser
            .post(format!("{}/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let ok = post("username=lena&password=lena-secret&next=%2Fjobs%3Fpage%3D2", Some(format!("http://{host}")))
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/jobs?page=2");
    assert!(ok.headers()["set-cookie"].to_str().unwrap().starts_with("trail_session="));
    let away = post("username=lena&password=lena-secret&next=%2F%2Fevil.example%2F", None).await.unwrap();
    assert_eq!(away.headers()["location"], "/", "never an open redirect");
    let tabbed = post("username=lena&password=lena-secret&next=%2F%09%2Fevil.example%2F", None).await.unwrap();
    assert_eq!(tabbed.headers()["location"], "/", "browsers drop the tab: it would be //evil.example");
    let wrong = post("username=lena&password=nope&next=%2Fjobs", None).await.unwrap();
    assert_eq!(
        (wrong.status().as_u16(), wrong.headers()["location"].to_str().unwrap()),
        (303, "/login?error=invalid_credentials&next=%2Fjobs"),
        "back to the form, still going to /jobs"
    );
    let wrong_away = post("username=lena&password=nope&next=%2F%2Fevil.example%2F", None).await.unwrap();
    assert_eq!(wrong_away.headers()["location"], "/login?error=invalid_credentials&next=%2F");
    assert!(wrong.headers().get("set-cookie").is_none());
    let forged = post("username=lena&password=lena-secret", Some("https://evil.example".into())).await.unwrap();
    assert_eq!(forged.status(), 403, "a login form posted from another site");
}

#[tokio::test]
async fn a_form_post_may_carry_the_csrf_token_as_a_field() {
    let app = spawn_app().await;
    add_account(&app, "mia", &["admin"], "mia-secret").await;
    let (_, session, csrf) = browser_login(&app, "mia", "mia-secret", None).await;
    let session = session.unwrap();
    let form = |body: String| {
        app.client
            .post(format!("{}/api/v1/accounts/mia/lock", app.base))
            .header("cookie", format!("trail_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(form("csrf=forged".into()).await.unwrap().status(), 403);
    assert_eq!(form(String::new()).await.unwrap().status(), 403);
    assert_eq!(form(format!("other=1&csrf={csrf}")).await.unwrap().status(), 200, "the form field is accepted");
}
