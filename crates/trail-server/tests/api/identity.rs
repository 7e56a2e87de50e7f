//! Login, account administration, and rights on every kind of route.

use crate::helpers::*;
use serde_json::{Value, json};
use trail_store::Store;

async fn kinds(app: &TestApp) -> Vec<Value> {
    let events = app.store.read_after(0, 1000).await.unwrap();
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
