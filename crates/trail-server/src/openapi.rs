//! The OpenAPI document served at `/api/openapi.json`: each handler documents what is its own
//! (its body, parameters, answers and the refusals only it makes), and [`complete`] adds what
//! holds for every route alike. A query parameter may be empty, meaning absent (`routes::params`).
//! The error answers follow from what a route takes, the same way the server gives them:
//! a route behind a token can answer 401 and 403, one with a body 400, 408, 413, 422 and 503 (too
//! many writes queued), one with parameters 400, one with a path 404, and every API route 503
//! while storage is unreachable or the server has too many connections.
//! So a generated client (or schemathesis) meets no status the document does not name.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, header::HeaderBuilder};

#[derive(OpenApi)]
#[openapi(
    info(title = "Trail", description = "Audit trail and system-event log for network operations."),
    modifiers(&BearerAuth),
    tags(
        (name = "events", description = "Ingest and search"),
        (name = "accounts", description = "Login and account administration"),
        (name = "forwarding", description = "Syslog and RADIUS destinations"),
        (name = "operations", description = "Jobs, job logs, device results and live status; health and metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds to every operation of `document` what holds for every route: empty query parameters,
/// and the error answers its shape implies, where the handler did not document them itself.
pub fn complete(document: &mut utoipa::openapi::OpenApi) {
    for (path, item) in document.paths.paths.iter_mut() {
        let api = path.starts_with("/api/");
        for operation in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            allow_empty_queries(operation);
            for (status, description) in answers_of(operation, api) {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_answer(status, description));
            }
        }
    }
}

/// Says of each query parameter that it may be sent empty (as a form sends a blank field), which
/// the server takes as absent. utoipa has no field for OpenAPI's `allowEmptyValue`, so it goes
/// in beside the parameter's extensions, which serialize into the parameter's object.
fn allow_empty_queries(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in == ParameterIn::Query {
            let extensions = parameter.extensions.get_or_insert_with(Default::default);
            extensions.insert("allowEmptyValue".to_owned(), serde_json::Value::Bool(true));
        }
    }
}

/// The statuses an operation can answer for what it takes, with what each means there.
fn answers_of(operation: &Operation, api: bool) -> Vec<(u16, &'static str)> {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let takes = |place: ParameterIn| parameters.iter().any(|parameter| parameter.parameter_in == place);
    let secured = operation.security.as_ref().is_some_and(|requirements| !requirements.is_empty());
    let mut answers = Vec::new();
    if operation.request_body.is_some() {
        answers.push((400, "`malformed_json` or `invalid_utf8`: the body is not JSON."));
        answers.push((408, "`request_timeout`: the body did not arrive in time; nothing was stored."));
        answers.push((413, "`payload_too_large`: the body exceeds the configured limit."));
        answers.push((422, "The body has the wrong shape, or a field is not acceptable; the message names it."));
    }
    if takes(ParameterIn::Query) || takes(ParameterIn::Path) {
        answers.push((400, "`invalid_query` or `invalid_cursor`: a parameter is malformed; the message names it."));
    }
    if takes(ParameterIn::Path) {
        answers.push((404, "`not_found`: nothing has this name or id."));
    }
    if secured {
        answers.push((401, "`unauthorized`: no bearer token or session, or one the server does not know."));
        answers.push((403, "`forbidden`: the token or role lacks the right this needs (the message names it)."));
    }
    if api {
        answers.push((
            503,
            "`unavailable`: storage is unreachable or shutting down, or `overloaded`: too many writes or connections \
             are queued; retry after `Retry-After`.",
        ));
    }
    if operation.request_body.is_some() {
        answers.push((503, "`overloaded`: too many writes are queued; nothing was stored: retry after `Retry-After`."));
    }
    if api || operation.request_body.is_some() {
        answers.push((
            507,
            "`disk_full`: the disk holding the trail is full; nothing was stored: retry after `Retry-After`.",
        ));
    }
    answers
}

/// An answer in the error format, with `Retry-After` where the client is told to wait.
fn error_answer(status: u16, description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let mut answer = ResponseBuilder::new().description(description).content("application/json", content);
    if matches!(status, 429 | 503 | 507) {
        let seconds = HeaderBuilder::new()
            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer))
            .description(Some("Seconds to wait before sending the request again."))
            .build();
        answer = answer.header("Retry-After", seconds);
    }
    RefOr::T(answer.build())
}
