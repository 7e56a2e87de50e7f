//! Ingest, search and details through the HTTP API.

use crate::helpers::*;
use serde_json::{Value, json};
use trail_server::ServerConfig;

#[tokio::test]
async fn an_event_is_stored_and_read_back() {
    let app = spawn_app().await;
    let (status, body) = app.post("/api/v1/events", edited("alice", "edge1", "Device edge1 edited\nmtu 9000")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["ids"][0].as_i64().unwrap();
    let (status, event) = app.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["process"], "devices");
    assert_eq!(event["severity"], "notice");
    assert_eq!(event["message"], "Device edge1 edited\nmtu 9000");
    assert_eq!(event["hash"].as_str().unwrap().len(), 64);
    let (status, missing) = app.get("/api/v1/events/999").await;
    assert_eq!((status, error_code(&missing)), (404, "not_found"));
}

#[tokio::test]
async fn a_batch_is_atomic() {
    let app = spawn_app().await;
    let bad = json!([edited("alice", "a", "one"), {"user": "alice", "kind": "DEVICE_EDITED"}]);
    let (status, body) = app.post("/api/v1/events", bad).await;
    assert_eq!((status, error_code(&body)), (422, "invalid_event"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("event 1") && message.contains("`message`"), "{message}");
    app.assert_nothing_stored_and_still_serving().await;
    let good = json!([edited("alice", "a", "one"), edited("alice", "b", "two")]);
    let (status, body) = app.post("/api/v1/events", good).await;
    assert_eq!(status, 201);
    assert_eq!(body["ids"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn no_token_no_access() {
    let app = spawn_app().await;
    for (status, body) in [
        app.post_raw("/api/v1/events", "wrong", edited("a", "n", "m").to_string()).await,
        app.get_as("", "/api/v1/events").await,
    ] {
        assert_eq!((status, error_code(&body)), (401, "unauthorized"));
        assert!(body["error"]["message"].as_str().unwrap().contains("Bearer"));
    }
    let lower_case =
        app.client.get(format!("{}/api/v1/events", app.base)).header("authorization", format!("bearer {ALICE}"));
    assert_eq!(lower_case.send().await.unwrap().status(), 200, "the scheme is case-insensitive (RFC 7235)");
    assert_eq!(app.get_as("", "/healthz").await.0, 200);
    assert_eq!(app.get_as("", "/readyz").await.0, 200);
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_nothing_is_half_stored() {
    let app = spawn_app_with(ServerConfig { body_limit: 64 * 1024, ..ServerConfig::default() }).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"user\": \"a\",".to_vec(), 400, "malformed_json"),
        ("wrong types", br#"{"user": ["a"], "kind": "DEVICE_EDITED", "message": "m"}"#.to_vec(), 422, "invalid_event"),
        ("not an object", br#""just a string""#.to_vec(), 422, "invalid_body"),
        (
            "NUL byte",
            br#"{"user": "a", "kind": "DEVICE_EDITED", "message": "a\u0000b"}"#.to_vec(),
            422,
            "invalid_event",
        ),
        (
            "bad UTF-8",
            b"{\"user\": \"\xc3\x28\", \"kind\": \"DEVICE_EDITED\", \"message\": \"m\"}".to_vec(),
            400,
            "invalid_utf8",
        ),
        (
            "unknown severity",
            br#"{"user": "a", "kind": "DEVICE_EDITED", "message": "m", "severity": "urgent"}"#.to_vec(),
            422,
            "invalid_event",
        ),
        ("oversized body", edited("a", "n", &"x".repeat(70 * 1024)).to_string().into_bytes(), 413, "payload_too_large"),
    ];
    for (what, body, status, code) in cases {
        let (got, answer) = app.post_raw("/api/v1/events", ALICE, body).await;
        assert_eq!((got, error_code(&answer)), (status, code), "{what}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().len() > 20, "{what}: the message explains");
        app.assert_nothing_stored_and_still_serving().await;
    }
}

#[tokio::test]
async fn a_ten_thousand_line_message_is_stored_whole_and_searchable() {
    let app = spawn_app().await;
    let message: String = (0..10_000).map(|i| format!("set interfaces ge-0/0/{i} mtu 9192\n")).collect();
    let (status, body) =
        app.post("/api/v1/events", json!({"user": "alice", "kind": "CONFIG_COMMITTED", "message": message})).await;
    assert_eq!(status, 201, "{body}");
    let (_, page) = app.get("/api/v1/events?message=ge-0%2F0%2F9999%20mtu").await;
    assert_eq!(page["events"][0]["message"].as_str().unwrap(), message);
}

#[tokio::test]
async fn filters_that_look_like_sql_or_regex_are_plain_text() {
    let app = spawn_app().await;
    app.post(
        "/api/v1/events",
        json!([edited("alice", "edge1", "normal"), edited("alice", "x'; DROP TABLE events; --", "a.*b [0-9]+")]),
    )
    .await;
    for (query, expected) in [
        ("name=x'%3B%20DROP%20TABLE%20events%3B%20--", 1),
        ("name=%27%20OR%20%271%27%3D%271", 0),
        ("message=.*", 1),
        ("message=%5B0-9%5D%2B", 1),
        ("message=%5E.%2A%24", 0),
        ("action=update%27%20OR%201%3D1", 0),
    ] {
        let (status, page) = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(page["events"].as_array().unwrap().len(), expected, "{query}");
    }
    assert_eq!(app.all_messages().await.len(), 2, "the table is still there");
}

#[tokio::test]
async fn own_entries_by_default_any_user_or_all() {
    let app = spawn_app().await;
    app.post(
        "/api/v1/events",
        json!([edited("alice", "n", "a1"), edited("bob", "n", "b1"), edited("alice", "n", "a2")]),
    )
    .await;
    let names = |page: &Value| -> Vec<String> {
        page["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&app.get("/api/v1/events").await.1), ["a2", "a1"]);
    assert_eq!(names(&app.get_as(BOB, "/api/v1/events").await.1), ["b1"]);
    assert_eq!(names(&app.get("/api/v1/events?user=bob").await.1), ["b1"]);
    assert_eq!(names(&app.get("/api/v1/events?all_users=true").await.1), ["a2", "b1", "a1"]);
    assert_eq!(app.get("/api/v1/users").await.1["users"], json!(["alice", "bob"]));
}

#[tokio::test]
async fn pages_keep_their_snapshot_and_count_newer_entries() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..25).map(|i| edited("alice", "n", &format!("m{i}"))).collect();
    app.post("/api/v1/events", Value::Array(batch)).await;
    let (_, first) = app.get("/api/v1/events?limit=10").await;
    assert_eq!(first["events"][0]["message"], "m24");
    app.post("/api/v1/events", json!([edited("alice", "n", "late1"), edited("alice", "n", "late2")])).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get(&format!("/api/v1/events?limit=10&cursor={cursor}")).await;
    assert_eq!(second["events"][0]["message"], "m14");
    assert_eq!(second["newer"], 2);
    let (status, bad) = app.get("/api/v1/events?cursor=1;drop").await;
    assert_eq!((status, error_code(&bad)), (400, "invalid_cursor"));
}

#[tokio::test]
async fn bad_query_parameters_are_explained() {
    let app = spawn_app().await;
    for (query, needle) in [
        ("month=2026-13", "YYYY-MM"),
        ("day=yesterday", "YYYY-MM-DD"),
        ("tz=Mars%2FBase", "IANA"),
        ("limit=0", "limit must be"),
        ("limit=5000", "limit must be"),
        ("all_users=maybe", "all_users"),
        ("month=2026-01&day=2026-01-02", "not both"),
    ] {
        let (status, body) = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_query"), "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(needle), "{query}: {body}");
    }
}

#[tokio::test]
async fn day_filter_in_a_time_zone() {
    let app = spawn_app().await;
    let at =
        |time: &str, message: &str| json!({"time": time, "user": "alice", "kind": "DEVICE_EDITED", "message": message});
    app.post(
        "/api/v1/events",
        json!([
            at("2026-03-28T22:30:00Z", "before"),
            at("2026-03-28T23:30:00Z", "inside"),
            at("2026-03-29T22:30:00Z", "after")
        ]),
    )
    .await;
    let (_, page) = app.get("/api/v1/events?day=2026-03-29&tz=Europe%2FAmsterdam").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["message"], "inside");
    assert_eq!(page["events"][0]["time"], "2026-03-28T23:30:00.000000Z");
}

#[tokio::test]
async fn a_change_is_rendered_and_its_secrets_masked() {
    let app = spawn_app().await;
    let change = json!({"user": "alice", "op": "update", "object": "node", "table": "nodes",
        "keys": {"hostname": "edge1"}, "request_id": "req-7",
        "changes": [{"variable": "description", "old": "a", "new": "b"},
                    {"variable": "community", "old": "public", "new": "hunter2", "secret": true}]});
    let (status, body) = app.post("/api/v1/changes", change).await;
    assert_eq!(status, 201, "{body}");
    let (_, event) = app.get(&format!("/api/v1/events/{}", body["id"])).await;
    assert_eq!(
        event["message"],
        "Updated node (nodes)\nKeys: hostname = edge1\n\ndescription:\n    a => b\ncommunity:\n    ******** => ********"
    );
    assert_eq!(
        (event["kind"].as_str(), event["name"].as_str(), event["request_id"].as_str()),
        (Some("OBJECT_UPDATED"), Some("edge1"), Some("req-7"))
    );
    assert!(!event.to_string().contains("hunter2") && !event.to_string().contains("public"));
}

#[tokio::test]
async fn openapi_metrics_and_unknown_routes() {
    let app = spawn_app().await;
    let (status, doc) = app.get_as("", "/api/openapi.json").await;
    assert_eq!(status, 200);
    for path in ["/api/v1/events", "/api/v1/events/{id}", "/api/v1/changes", "/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"].get("Event").is_some());
    app.post("/api/v1/events", edited("alice", "n", "m")).await;
    let (status, metrics) = app.get_as("", "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.as_str().unwrap().contains("trail_head_event_id"), "{metrics}");
    let (_, feed) = app.get("/api/v1/feed?after=0&limit=5").await;
    assert_eq!(feed["events"][0]["message"], "m");
    let (status, body) = app.get("/api/v2/nothing").await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
}

/// An export is of the trail as it stood when it was asked for: events appended while it is
/// being read are not in it, however long the reading takes.
#[tokio::test]
async fn an_export_is_of_the_trail_as_of_the_request() {
    let app = spawn_app().await;
    for batch in 0..3 {
        let events: Vec<Value> = (0..1000).map(|i| edited("alice", "edge1", &format!("before {batch}-{i}"))).collect();
        assert_eq!(app.post("/api/v1/events", Value::Array(events)).await.0, 201);
    }
    let mut response =
        app.client.get(format!("{}/api/v1/export?all_users=true", app.base)).bearer_auth(ALICE).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.chunk().await.unwrap().expect("the export has begun").to_vec();
    let later: Vec<Value> = (0..20).map(|i| edited("alice", "edge1", &format!("after {i}"))).collect();
    assert_eq!(app.post("/api/v1/events", Value::Array(later)).await.0, 201);
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    let messages: Vec<String> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(messages.iter().filter(|m| m.starts_with("before ")).count(), 3000, "everything before the request");
    assert!(!messages.iter().any(|m| m.starts_with("after ")), "nothing appended after the request");
}
