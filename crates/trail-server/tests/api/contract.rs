//! The contract's edges: a method a route does not take, empty query parameters, and bodies
//! that do not parse are all answered in the error format, with the status the document gives.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_naming_those_it_does() {
    let app = spawn_app().await;
    let cases = [
        ("TRACE", "/api/v1/events", "POST, GET, HEAD"),
        ("DELETE", "/api/v1/events", "POST, GET, HEAD"),
        ("PUT", "/healthz", "GET, HEAD"),
        ("PATCH", "/api/v1/accounts/{name}", "DELETE"),
    ];
    for (method, path, allow) in cases {
        for token in [ALICE, VIEWER, ""] {
            let url = format!("{}{}", app.base, path.replace("{name}", "vera"));
            let response = app.client.request(method.parse().unwrap(), url).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], allow, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        }
    }
    let head = app.client.head(format!("{}/api/v1/events", app.base)).bearer_auth(ALICE).send().await.unwrap();
    assert_eq!(head.status(), 200, "HEAD is GET without the body");
    let viewer = app.client.head(format!("{}/api/v1/events", app.base)).bearer_auth(VIEWER).send().await.unwrap();
    assert_eq!(viewer.status(), 200, "the viewer reads their own");
    let anonymous = app.client.head(format!("{}/api/v1/events", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "HEAD needs what GET needs");
}

#[tokio::test]
async fn an_empty_query_parameter_is_an_absent_one() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/events?month=&day=&user=&all_users=&limit=&message=&name=&action=&tz=&cursor=",
        "/api/v1/export?month=&day=&format=",
        "/api/v1/feed?after=&limit=",
        "/api/v1/jobs?before=&limit=",
    ] {
        let (status, body) = app.get_as(ALICE, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = app.get_as(ALICE, "/api/v1/events?month=2026-06&day=2026-06-01").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "both given: {body}");
    let (status, body) = app.get_as(ALICE, "/api/v1/events?limit=many").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_query")), "{body}");
}

#[tokio::test]
async fn bodies_that_do_not_parse_are_answered_in_the_error_format() {
    let app = spawn_app().await;
    for path in ["/api/v1/tokens", "/api/v1/accounts", "/api/v1/login", "/api/v1/accounts/alice/password"] {
        let (status, body) = app.post_raw(path, ALICE, "{}").await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_body")), "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("missing field"), "{path}: {body}");
        let (status, body) = app.post_raw(path, ALICE, "not json").await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("malformed_json")), "{path}: {body}");
    }
}
