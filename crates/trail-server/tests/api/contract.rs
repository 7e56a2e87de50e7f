//! The contract's edges: a method a route does not take, empty query parameters, bodies and path
//! segments that do not parse are all answered in the error format, with a status the document
//! gives for the route.

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

/// The statuses `/api/openapi.json` documents for `method` on `template`.
fn documented(document: &Value, method: &str, template: &str) -> Vec<u16> {
    let answers = document["paths"][template][method]["responses"].as_object();
    let answers = answers.unwrap_or_else(|| panic!("{method} {template} is not in the document"));
    answers.keys().map(|status| status.parse().unwrap()).collect()
}

#[tokio::test]
async fn refusals_are_in_the_error_format_with_a_documented_status() {
    let app = spawn_app().await;
    let (_, document) = app.get("/api/openapi.json").await;
    let client = &app.client;
    let url = |path: &str| format!("{}{path}", app.base);
    let cases = [
        ("get", "/api/v1/jobs/{id}", client.get(url("/api/v1/jobs/abc")).bearer_auth(ALICE), "invalid_query"),
        ("delete", "/api/v1/tokens/{id}", client.delete(url("/api/v1/tokens/_")).bearer_auth(ALICE), "invalid_query"),
        (
            "get",
            "/api/v1/events/{id}/related",
            client.get(url("/api/v1/events/36893488147419103232/related")).bearer_auth(ALICE),
            "invalid_query",
        ),
        ("get", "/api/v1/events/{id}", client.get(url("/api/v1/events/abc")).bearer_auth(ALICE), "not_found"),
        ("get", "/api/v1/events", client.get(url("/api/v1/events?limit=0")).bearer_auth(ALICE), "invalid_query"),
        ("get", "/api/v1/chain", client.get(url("/api/v1/chain")), "unauthorized"),
        ("post", "/api/v1/events", client.post(url("/api/v1/events")).bearer_auth(VIEWER).body("{}"), "forbidden"),
        ("post", "/api/v1/jobs", client.post(url("/api/v1/jobs")).bearer_auth(ALICE).body("["), "malformed_json"),
        ("post", "/login", client.post(url("/login")).body("password=x"), "invalid_body"),
        ("get", "/login", client.get(url("/login?error=a&error=b")), "invalid_query"),
    ];
    for (method, template, request, code) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{method} {template}: not JSON: {e}"));
        assert_eq!(body["error"]["code"], code, "{method} {template}: {body}");
        assert!(
            documented(&document, method, template).contains(&status),
            "{method} {template} answered {status}, which the document does not give"
        );
    }
}

#[tokio::test]
async fn every_route_documents_the_refusals_its_shape_implies() {
    let app = spawn_app().await;
    let (_, document) = app.get("/api/openapi.json").await;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let statuses = documented(&document, method, path);
            let needs = |status: u16, why: &str| {
                assert!(statuses.contains(&status), "{method} {path} does not document {status} ({why})");
            };
            if operation.get("requestBody").is_some() {
                [400, 413, 422].into_iter().for_each(|status| needs(status, "it takes a body"));
            }
            if operation["security"].as_array().is_some_and(|requirements| !requirements.is_empty()) {
                [401, 403].into_iter().for_each(|status| needs(status, "it needs a token"));
            }
            if path.starts_with("/api/") {
                needs(503, "storage may be unreachable");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                needs(400, "it takes parameters");
                let place = parameter["in"].as_str().unwrap();
                if place == "query" {
                    assert_eq!(
                        parameter["allowEmptyValue"], true,
                        "{method} {path}: an empty `{}` is an absent one",
                        parameter["name"]
                    );
                }
                assert!(
                    place == "query" || path.contains(&format!("{{{}}}", parameter["name"].as_str().unwrap())),
                    "{method} {path}: `{}` is documented in the path but is not a segment of it",
                    parameter["name"]
                );
            }
        }
    }
}

/// What the document states of a count is what the server takes: an integral float is an
/// integer (as in JSON Schema), and a page size or batch outside its range is refused, not
/// quietly clamped.
#[tokio::test]
async fn counts_are_taken_and_refused_as_the_document_states() {
    let app = spawn_app().await;
    let purge = |body: &'static str| app.post_raw("/api/v1/retention/purge", ALICE, body);
    let (status, body) = purge(r#"{"older_than_days": 3650.0, "batch": 500.0}"#).await;
    assert_eq!(status, 200, "an integral float is an integer: {body}");
    for refused in
        [r#"{"older_than_days": 1.5}"#, r#"{"older_than_days": 30, "batch": 0}"#, r#"{"older_than_days": -1}"#]
    {
        let (status, body) = purge(refused).await;
        assert_eq!((status, error_code(&body)), (422, "invalid_body"), "{refused}: {body}");
    }
    let (status, job) = app.post_raw("/api/v1/jobs", ALICE, r#"{"name": "archive", "targets": ["edge1"]}"#).await;
    assert_eq!(status, 201, "{job}");
    let log = format!("/api/v1/jobs/{}/log?limit=5000", job["id"]);
    for path in ["/api/v1/jobs?limit=0", "/api/v1/jobs?limit=1001", log.as_str()] {
        let (status, body) = app.get_as(ALICE, path).await;
        assert_eq!((status, error_code(&body)), (400, "invalid_query"), "{path}: {body}");
    }
    let (status, body) = app.get_as(ALICE, "/api/v1/jobs?limit=1000").await;
    assert_eq!(status, 200, "{body}");
}
