//! One JSON error format, `{"error": {"code", "message"}}`, built from one table of stable codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trail_accounts::AccountError;
use trail_core::query::QueryError;
use trail_core::request::BodyError;
use trail_operations::OperationError;
use trail_store::StoreError;

/// Every error code the API answers with. Codes are part of the contract: add, never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    Forbidden,
    CsrfFailed,
    InvalidCredentials,
    AccountLocked,
    TooManyAttempts,
    InvalidAccount,
    InvalidOperation,
    MalformedJson,
    InvalidUtf8,
    InvalidEvent,
    InvalidBody,
    PayloadTooLarge,
    RequestTimeout,
    InvalidQuery,
    InvalidCursor,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Unavailable,
    Overloaded,
    DiskFull,
    Internal,
}

/// The table: code, HTTP status, and what the code means (shown in the README).
pub const CODES: &[(Code, &str, u16, &str)] = &[
    (Code::Unauthorized, "unauthorized", 401, "No bearer token, or one the server does not know."),
    (Code::Forbidden, "forbidden", 403, "The token lacks the right this needs (the message names it)."),
    (Code::CsrfFailed, "csrf_failed", 403, "A session's state-changing request lacks its CSRF token."),
    (Code::InvalidCredentials, "invalid_credentials", 401, "Login refused: the username or password is wrong."),
    (Code::AccountLocked, "account_locked", 403, "Login refused: the account is locked."),
    (
        Code::TooManyAttempts,
        "too_many_attempts",
        429,
        "Login not tried: too many slowed attempts from this address are queued; the message says when to retry.",
    ),
    (Code::InvalidAccount, "invalid_account", 422, "A username, password or role is not acceptable."),
    (
        Code::InvalidOperation,
        "invalid_operation",
        422,
        "A job, status report, log line or device result is not acceptable; the message says which part.",
    ),
    (Code::MalformedJson, "malformed_json", 400, "The body is not JSON."),
    (Code::InvalidUtf8, "invalid_utf8", 400, "The body is not valid UTF-8."),
    (Code::InvalidEvent, "invalid_event", 422, "An event or change is malformed; the message names the field."),
    (
        Code::InvalidBody,
        "invalid_body",
        422,
        "The JSON (or the login form) has the wrong shape (an array of strings, say).",
    ),
    (Code::PayloadTooLarge, "payload_too_large", 413, "The body exceeds the configured limit."),
    (
        Code::RequestTimeout,
        "request_timeout",
        408,
        "The body did not arrive within the configured time (`[limits] body_timeout_seconds`); nothing was stored.",
    ),
    (
        Code::InvalidQuery,
        "invalid_query",
        400,
        "A query parameter (month, day, tz, limit...) or path segment is malformed.",
    ),
    (Code::InvalidCursor, "invalid_cursor", 400, "The cursor was not issued by this server."),
    (Code::NotFound, "not_found", 404, "No such event or route."),
    (
        Code::MethodNotAllowed,
        "method_not_allowed",
        405,
        "The route does not take this method; `Allow` names those it takes.",
    ),
    (Code::Conflict, "conflict", 409, "The request contradicts what is stored (a username taken, say)."),
    (
        Code::Unavailable,
        "unavailable",
        503,
        "Storage is shutting down or unreachable; retry after `Retry-After` seconds.",
    ),
    (
        Code::Overloaded,
        "overloaded",
        503,
        "Too many writes (or connections) are queued already; nothing was stored: retry after `Retry-After` seconds.",
    ),
    (
        Code::DiskFull,
        "disk_full",
        507,
        "The disk holding the trail is full; nothing was stored: free space (or purge old events) and send again.",
    ),
    (Code::Internal, "internal", 500, "An unexpected failure; the server log has the details."),
];

impl Code {
    fn entry(self) -> &'static (Code, &'static str, u16, &'static str) {
        CODES.iter().find(|entry| entry.0 == self).expect("every code is in the table")
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.entry().2).expect("valid status in the table")
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Seconds after which the request may be sent again (`Retry-After`).
    pub retry_after: Option<u64>,
    /// The methods the route takes (`Allow`), for `method_not_allowed`.
    pub allow: Option<String>,
}

/// How long a client waits before retrying when storage is unavailable: a PostgreSQL restart,
/// or a node's reconnection, takes about that.
const UNAVAILABLE_RETRY_AFTER: u64 = 1;

/// A full disk is freed by a person or a purge, not in a second: clients back off longer.
const DISK_FULL_RETRY_AFTER: u64 = 10;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code from the table in the README.
    code: String,
    /// What was wrong and what to do.
    message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        let retry_after = match code {
            Code::Unavailable | Code::Overloaded => Some(UNAVAILABLE_RETRY_AFTER),
            Code::DiskFull => Some(DISK_FULL_RETRY_AFTER),
            _ => None,
        };
        ApiError { code, message: message.into(), retry_after, allow: None }
    }

    /// Says when the request may be sent again.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code.status().is_server_error() {
            tracing::error!(code = self.code.name(), message = %self.message, "request failed");
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code.name().to_owned(), message: self.message } };
        let mut response = (self.code.status(), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if let Some(allow) = self.allow.and_then(|allow| allow.parse().ok()) {
            response.headers_mut().insert(axum::http::header::ALLOW, allow);
        }
        response
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        let code = match &error {
            BodyError::InvalidUtf8(_) => Code::InvalidUtf8,
            BodyError::MalformedJson(_) => Code::MalformedJson,
            BodyError::Empty | BodyError::Invalid(_) => Code::InvalidBody,
            BodyError::InvalidEvent { .. } => Code::InvalidEvent,
        };
        ApiError::new(code, format!("{error}; nothing was stored"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let code = match error {
            StoreError::Closed | StoreError::Locked(_) | StoreError::Unreachable(_) => Code::Unavailable,
            StoreError::Full(_) => Code::DiskFull,
            StoreError::Conflict(_) => Code::Conflict,
            StoreError::NotFound(_) => Code::NotFound,
            StoreError::Backend { .. }
            | StoreError::Corrupt(_)
            | StoreError::Damaged { .. }
            | StoreError::NoTrail(_) => Code::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

impl From<trail_checkpoints::CheckpointError> for ApiError {
    fn from(error: trail_checkpoints::CheckpointError) -> ApiError {
        match error {
            trail_checkpoints::CheckpointError::Store(store) => store.into(),
            other => ApiError::new(Code::Conflict, other.to_string()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> ApiError {
        match error {
            AccountError::Store(store) => store.into(),
            AccountError::Forbidden(message) => ApiError::new(Code::Forbidden, message),
            other => ApiError::new(Code::InvalidAccount, other.to_string()),
        }
    }
}

impl From<OperationError> for ApiError {
    fn from(error: OperationError) -> ApiError {
        match error {
            OperationError::Invalid(message) => {
                ApiError::new(Code::InvalidOperation, format!("{message}; nothing was stored"))
            }
            OperationError::TooLarge(message) => {
                ApiError::new(Code::PayloadTooLarge, format!("{message}; nothing was stored"))
            }
            OperationError::Store(store) => store.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> ApiError {
        match error {
            QueryError::Cursor(message) => ApiError::new(Code::InvalidCursor, message),
            QueryError::Invalid(message) => ApiError::new(Code::InvalidQuery, message),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::PayloadTooLarge,
                "the body is larger than the server's limit (`body_limit` in the configuration); split the batch",
            )
        } else if timed_out(&rejection) {
            ApiError::new(
                Code::RequestTimeout,
                "the body did not arrive in time (`[limits] body_timeout_seconds`); nothing was stored: send it again",
            )
        } else {
            ApiError::new(Code::InvalidBody, format!("the body could not be read: {rejection}"))
        }
    }
}

/// Whether reading the body failed because its deadline passed (`tower_http`'s body deadline).
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_each_in_the_table_once() {
        for (i, entry) in CODES.iter().enumerate() {
            assert!(CODES[i + 1..].iter().all(|other| other.0 != entry.0 && other.1 != entry.1));
            assert!(StatusCode::from_u16(entry.2).unwrap().as_u16() >= 400);
        }
    }

    #[test]
    fn the_readme_lists_every_code_with_its_status() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        for (_, name, status, _) in CODES {
            let row = format!("| `{name}` | {status} |");
            assert!(readme.contains(&row), "README.md needs the row {row}");
        }
    }
}
