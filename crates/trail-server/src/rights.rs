//! Who may call what: one table with a decision for every route, enforced by one middleware.
//! A route missing from the table is refused (fail closed), and a test compares the table with
//! the router's full list of operations, so a route cannot be added without a decision.

use crate::AppState;
use crate::auth::Viewer;
use crate::error::{ApiError, Code};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use trail_core::identity::Right;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// Any valid token; the handler decides the rest.
    Authenticated,
    /// A token with this right.
    Needs(Right),
    /// A token with either right; the handler decides what the second allows.
    Either(Right, Right),
    /// A web page needing this right: without a session the visitor is sent to the login
    /// page; without the right, an HTML page says which right is missing.
    Page(Right),
}

use Access::{Authenticated, Either, Needs, Page, Public};

/// Every route: method, path as the router spells it, and the access it needs. Finer decisions
/// (whose entries, whose details) are made in the handlers.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/api/openapi.json", Public),
    ("POST", "/api/v1/login", Public),
    ("POST", "/api/v1/logout", Public),
    ("POST", "/login", Public),
    ("POST", "/api/v1/events", Needs(Right::Ingest)),
    ("POST", "/api/v1/changes", Needs(Right::Ingest)),
    ("GET", "/api/v1/events", Needs(Right::ReadOwn)),
    ("GET", "/api/v1/events/{id}", Needs(Right::ReadOwn)),
    ("GET", "/api/v1/events/{id}/related", Needs(Right::ReadOwn)),
    ("GET", "/api/v1/users", Needs(Right::ReadOwn)),
    ("POST", "/api/v1/jobs", Needs(Right::Jobs)),
    ("GET", "/api/v1/jobs", Needs(Right::Jobs)),
    ("GET", "/api/v1/jobs/{id}", Needs(Right::Jobs)),
    // The platform running a job reports with `ingest`; the job's submitter may with `jobs`.
    ("POST", "/api/v1/jobs/{id}/targets/{target}/status", Either(Right::Ingest, Right::Jobs)),
    ("POST", "/api/v1/jobs/{id}/log", Either(Right::Ingest, Right::Jobs)),
    ("GET", "/api/v1/jobs/{id}/log", Needs(Right::Jobs)),
    ("GET", "/api/v1/status", Needs(Right::Jobs)),
    ("GET", "/api/v1/status/stream", Needs(Right::Jobs)),
    ("GET", "/api/v1/devices/{name}", Needs(Right::Jobs)),
    ("POST", "/api/v1/devices/{name}/archive", Needs(Right::Ingest)),
    ("POST", "/api/v1/devices/{name}/inventory", Needs(Right::Ingest)),
    ("POST", "/api/v1/devices/{name}/restore", Needs(Right::Ingest)),
    ("POST", "/api/v1/devices/{name}/commit", Needs(Right::Ingest)),
    ("GET", "/api/v1/feed", Needs(Right::Export)),
    ("GET", "/api/v1/export", Needs(Right::Export)),
    ("GET", "/api/v1/chain", Needs(Right::Export)),
    ("POST", "/api/v1/retention/purge", Needs(Right::Administer)),
    // A checkpoint shows how many events there are and the tree's root, nothing of any event.
    ("GET", "/api/v1/checkpoint", Needs(Right::ReadOwn)),
    ("POST", "/api/v1/checkpoints", Needs(Right::Administer)),
    // A proof carries the whole event: the handler applies the details rules.
    ("GET", "/api/v1/events/{id}/proof", Needs(Right::ReadOwn)),
    ("GET", "/api/v1/proofs/consistency", Needs(Right::ReadOwn)),
    ("GET", "/api/v1/accounts", Needs(Right::Administer)),
    ("POST", "/api/v1/accounts", Needs(Right::Administer)),
    ("DELETE", "/api/v1/accounts/{name}", Needs(Right::Administer)),
    ("POST", "/api/v1/accounts/{name}/password", Needs(Right::Administer)),
    ("POST", "/api/v1/accounts/{name}/lock", Needs(Right::Administer)),
    ("POST", "/api/v1/accounts/{name}/unlock", Needs(Right::Administer)),
    ("GET", "/api/v1/destinations", Needs(Right::Administer)),
    ("GET", "/api/v1/tokens", Authenticated),
    // The web UI.
    ("GET", "/login", Public),
    ("GET", "/assets/{file}", Public),
    // Whoever has a session may end it, whatever their roles.
    ("POST", "/logout", Authenticated),
    ("GET", "/", Page(Right::ReadOwn)),
    ("GET", "/events/{id}", Page(Right::ReadOwn)),
    ("GET", "/jobs", Page(Right::Jobs)),
    ("GET", "/jobs/{id}", Page(Right::Jobs)),
    ("GET", "/status", Page(Right::Jobs)),
    ("GET", "/admin/users", Page(Right::Administer)),
    ("POST", "/admin/users", Page(Right::Administer)),
    ("POST", "/admin/users/{name}/{action}", Page(Right::Administer)),
    ("GET", "/admin/tokens", Page(Right::Administer)),
    ("POST", "/admin/tokens", Page(Right::Administer)),
    ("POST", "/admin/tokens/{id}/revoke", Page(Right::Administer)),
    ("GET", "/admin/policy", Page(Right::Administer)),
    ("GET", "/admin/destinations", Page(Right::Administer)),
    ("POST", "/api/v1/tokens", Authenticated),
    ("DELETE", "/api/v1/tokens/{id}", Authenticated),
];

/// The access `method` on `path` needs; `HEAD` is a `GET` without the body.
pub fn access(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTES.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, access)| *access)
}

/// The methods `path` takes, for `Allow` (`HEAD` wherever `GET` is).
fn allowed(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = ROUTES.iter().filter(|(_, p, _)| *p == path).map(|(m, _, _)| *m).collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods
}

/// A method the route does not take: `405` naming those it does, before anyone is asked who
/// they are (the answer says nothing of the trail).
fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    let allowed = allowed(path).join(", ");
    let mut error = ApiError::new(Code::MethodNotAllowed, format!("{method} is not taken by {path}; use {allowed}"));
    error.allow = Some(allowed);
    error
}

/// A session's state-changing request must carry the session's CSRF token: in the
/// `X-CSRF-Token` header, or, for an HTML form post, in its `csrf` field.
async fn check_csrf(viewer: &Viewer, request: Request) -> Result<Request, ApiError> {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || crate::auth::csrf_holds(viewer, request.headers()) {
        return Ok(request);
    }
    let refused = || {
        ApiError::new(
            Code::CsrfFailed,
            "send the session's CSRF token (from login) in the X-CSRF-Token header or a csrf form field",
        )
    };
    let (Some(expected), true) = (viewer.session_csrf(), is_form(&request)) else { return Err(refused()) };
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.map_err(|_| refused())?;
    let sent = form_urlencoded::parse(&bytes).find(|(key, _)| key == "csrf").map(|(_, value)| value.into_owned());
    if !sent.is_some_and(|sent| bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.as_bytes()))) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

fn is_form(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Runs an API route for a caller holding any of `rights`, with the caller in the request's
/// extensions.
async fn authorised(
    state: &AppState,
    mut request: Request,
    next: Next,
    rights: &[Right],
) -> Result<Response, ApiError> {
    let viewer = crate::auth::authenticate(state, request.headers()).await?;
    if !rights.iter().any(|right| viewer.may(*right)) {
        let names: Vec<String> = rights.iter().map(|right| format!("`{}`", right.name())).collect();
        return Err(ApiError::new(
            Code::Forbidden,
            format!("this needs the right {}, which your token does not have", names.join(" or ")),
        ));
    }
    request = check_csrf(&viewer, request).await?;
    request.extensions_mut().insert::<Viewer>(viewer);
    Ok(next.run(request).await)
}

/// Authenticates the caller and checks the route's right before the handler runs; the handler
/// finds the caller in the request's extensions.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(path) = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()) else {
        return Ok(next.run(request).await); // No route: the fallback answers 404.
    };
    match access(request.method(), &path) {
        Some(Public) => Ok(next.run(request).await),
        Some(Authenticated) => {
            let viewer = crate::auth::authenticate(&state, request.headers()).await?;
            request = check_csrf(&viewer, request).await?;
            request.extensions_mut().insert::<Viewer>(viewer);
            Ok(next.run(request).await)
        }
        Some(Needs(right)) => authorised(&state, request, next, &[right]).await,
        Some(Either(first, second)) => authorised(&state, request, next, &[first, second]).await,
        Some(Page(right)) => {
            let Ok(viewer) = crate::auth::authenticate(&state, request.headers()).await else {
                return Ok(crate::ui::to_login(request.uri()));
            };
            if !viewer.rights.contains(&right) {
                return Ok(crate::ui::forbidden(viewer, right, request.uri().path()));
            }
            request = check_csrf(&viewer, request).await?;
            request.extensions_mut().insert::<Viewer>(viewer);
            Ok(next.run(request).await)
        }
        None if !allowed(&path).is_empty() => Err(method_not_allowed(request.method(), &path)),
        None => {
            Err(ApiError::new(Code::Forbidden, format!("{} {path} has no rights decision; refusing", request.method())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_a_rights_decision_and_every_decision_a_route() {
        let mut operations: Vec<(String, String)> = Vec::new();
        for (path, item) in crate::openapi().paths.paths {
            for (method, operation) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if operation.is_some() {
                    operations.push((method.to_owned(), path.clone()));
                }
            }
        }
        operations.push(("GET".into(), "/api/openapi.json".into()));
        for (method, path) in &operations {
            assert!(
                access(&method.parse().unwrap(), path).is_some(),
                "{method} {path} has no entry in rights::ROUTES: decide who may call it"
            );
        }
        // The web UI's routes are not API operations: they come from `ui::router`.
        let ui = ui_routes();
        for (method, path) in &ui {
            assert!(
                access(&method.parse().unwrap(), path).is_some(),
                "{method} {path} (a page) has no entry in rights::ROUTES: decide who may see it"
            );
        }
        operations.extend(ui);
        for (method, path, _) in ROUTES {
            assert!(
                operations.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is in ROUTES but not routed"
            );
        }
    }

    /// The routes `ui::router` declares, read from its source (a router does not list its
    /// routes): each `.route("PATH", get(..).post(..))` line.
    fn ui_routes() -> Vec<(String, String)> {
        let mut routes = Vec::new();
        for line in include_str!("ui/mod.rs").lines().map(str::trim) {
            let Some(rest) = line.strip_prefix(".route(\"") else { continue };
            let (path, handlers) = rest.split_once('"').expect("a quoted path");
            for method in ["get", "post", "put", "patch", "delete"] {
                if handlers.contains(&format!(" {method}(")) || handlers.contains(&format!(".{method}(")) {
                    routes.push((method.to_uppercase(), path.to_owned()));
                }
            }
        }
        assert!(routes.len() >= 15, "the UI's routes were found: {routes:?}");
        routes
    }

    #[test]
    fn the_ui_routes_are_read_whole() {
        let routes = ui_routes();
        for expected in [("GET", "/admin/users"), ("POST", "/admin/users"), ("POST", "/admin/tokens/{id}/revoke")] {
            assert!(routes.iter().any(|(m, p)| m == expected.0 && p == expected.1), "{expected:?} in {routes:?}");
        }
    }
}
