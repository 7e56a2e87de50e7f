//! `spawn_app`: a real server on a free loopback port, with tokens of several roles, over a
//! real SQLite file, or a real PostgreSQL schema when `TRAIL_TEST_BACKEND=postgres` (the test
//! command runs these tests once with each).

use serde_json::{Value, json};
use std::sync::Arc;
use trail_accounts::Accounts;
use trail_core::identity::{AuthPolicy, Right, Roles};
use trail_server::{AppState, ServerConfig, TokenEntry, Tokens};
use trail_store::Store;
use trail_store_sqlite::SqliteStore;

/// Administrators.
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
/// A viewer (lists only) and an operator (all lists, own details).
pub const VIEWER: &str = "victor-token";
pub const OPERATOR: &str = "olga-token";
/// Reads and exports every entry, without the right to any entry's details.
pub const EXPORTER: &str = "xena-token";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    /// What the store needs kept until the test ends (a directory, a schema).
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

/// A new, empty store of the backend under test.
async fn new_store() -> (Arc<dyn Store>, Box<dyn std::any::Any + Send + Sync>) {
    match std::env::var("TRAIL_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let (store, schema) = trail_store_postgres::testing::new_store().await;
            (Arc::new(store), Box::new(schema))
        }
        Ok("sqlite") | Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            (Arc::new(SqliteStore::open(dir.path().join("trail.db")).unwrap()), Box::new(dir))
        }
        Ok(other) => panic!("TRAIL_TEST_BACKEND={other:?}: use sqlite or postgres"),
    }
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    spawn_app_adjusted(config, |_| {}).await
}

/// A server whose state `adjust` changes before it starts (trusted proxies, say).
pub async fn spawn_app_adjusted(config: ServerConfig, adjust: impl FnOnce(&mut AppState)) -> TestApp {
    spawn(config, adjust, None).await
}

/// A server of `routes` alone, behind the same guards as Trail's own (the rights table first).
pub async fn spawn_guarded(routes: axum::Router<AppState>) -> TestApp {
    spawn(ServerConfig::default(), |_| {}, Some(routes)).await
}

async fn spawn(
    config: ServerConfig,
    adjust: impl FnOnce(&mut AppState),
    mut extra: Option<axum::Router<AppState>>,
) -> TestApp {
    let (store, keep) = new_store().await;
    let roles = Roles::default();
    let tokens = Tokens::new(vec![
        TokenEntry::new(ALICE, "alice", roles.rights_of(&["admin"])),
        TokenEntry::new(BOB, "bob", roles.rights_of(&["admin"])),
        TokenEntry::new(VIEWER, "victor", roles.rights_of(&["viewer"])),
        TokenEntry::new(OPERATOR, "olga", roles.rights_of(&["operator"])),
        TokenEntry::new(EXPORTER, "xena", [Right::ReadOwn, Right::ReadAll, Right::Export].into_iter().collect()),
    ]);
    let accounts = Arc::new(Accounts::new(store.clone(), AuthPolicy::default(), roles));
    let mut state = AppState::new(store.clone(), accounts, tokens);
    adjust(&mut state);
    let app = match extra.take() {
        Some(routes) => trail_server::guarded(routes, state, &config),
        None => trail_server::app(state, &config),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(trail_server::serve(listener, app, std::future::pending()));
    // Every request has a bound: a server that stops answering fails the test, not hangs it.
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build().unwrap();
    TestApp { base, client, store, _keep: keep }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::default()).await
}

impl TestApp {
    pub async fn post_raw(&self, path: &str, token: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, ALICE, body.to_string()).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The body as text (exports).
    pub async fn text_as(&self, token: &str, path: &str) -> String {
        let response = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn delete_as(&self, token: &str, path: &str) -> u16 {
        self.client.delete(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(ALICE, path).await
    }

    pub async fn all_messages(&self) -> Vec<String> {
        let (_, page) = self.get("/api/v1/events?all_users=true&limit=1000").await;
        page["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
    }

    pub async fn assert_nothing_stored_and_still_serving(&self) {
        assert!(self.all_messages().await.is_empty(), "nothing of a refused body is stored");
        let health = self.client.get(format!("{}/healthz", self.base)).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

pub fn edited(user: &str, name: &str, message: &str) -> Value {
    json!({"user": user, "kind": "DEVICE_EDITED", "name": name, "message": message})
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}
