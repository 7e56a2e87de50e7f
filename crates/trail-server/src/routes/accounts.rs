//! Login (`/api/v1/login`) and account administration (`/api/v1/accounts`).

use super::params::Path;
use crate::AppState;
use crate::auth::{Viewer, actor};
use crate::error::{ApiError, Code, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use trail_accounts::LoginRefusal;
use trail_accounts::events::Actor;
use trail_core::EventId;
use trail_core::identity::Account;

use crate::client::ClientAddress;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
    /// Also issue an API token for the account (as `trail login` does).
    token: Option<TokenRequest>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    name: String,
    scopes: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    username: String,
    display_name: String,
    roles: Vec<String>,
    locked: bool,
    created_at: String,
}

impl AccountView {
    fn of(account: &Account, locked: bool) -> AccountView {
        AccountView {
            username: account.username.to_string(),
            display_name: account.display_name.clone(),
            roles: account.roles.clone(),
            locked,
            created_at: trail_core::time::format_rfc3339(account.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    /// Send this in `X-CSRF-Token` with every state-changing request made with the session
    /// cookie set by this answer.
    csrf: String,
    account: AccountView,
    /// The rights the account's roles grant.
    rights: Vec<String>,
    /// The token asked for, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// Checks a username and password under the authentication policy. Every attempt is recorded;
/// a refusal says only "invalid credentials" or "account locked".
#[utoipa::path(post, path = "/api/v1/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = LoginAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: axum::http::HeaderMap,
    super::body::JsonBody(request): super::body::JsonBody<LoginRequest>,
) -> Result<(axum::http::HeaderMap, Json<LoginAnswer>), ApiError> {
    match state.accounts.login(&request.username, &request.password, client).await? {
        Ok(logged_in) => {
            let token = match request.token {
                Some(wanted) => {
                    let scopes = crate::auth::parse_scopes(&wanted.scopes)?;
                    let owner = logged_in.account.username.to_string();
                    let actor = Actor {
                        user: owner.clone(),
                        client: Some(client),
                        session: None,
                        submitted_by: trail_core::event::submitted_by::session(&owner),
                    };
                    let grantor = trail_core::identity::Grantor::Session; // a password login, as strong as a session
                    Some(state.accounts.create_token(&actor, &grantor, &owner, &wanted.name, scopes).await?.secret)
                }
                None => None,
            };
            // A new session id every time: never one the client offered (session fixation).
            let offered = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE);
            let session = state.accounts.open_session(&logged_in, offered, client).await?;
            let secure = if state.secure_cookies { "; Secure" } else { "" };
            let cookie =
                format!("{}={}; Path=/; HttpOnly; SameSite=Strict{secure}", crate::auth::SESSION_COOKIE, session.id);
            let mut set = axum::http::HeaderMap::new();
            set.insert(axum::http::header::SET_COOKIE, cookie.parse().expect("a valid cookie header"));
            Ok((
                set,
                Json(LoginAnswer {
                    csrf: session.csrf,
                    account: AccountView::of(&logged_in.account, false),
                    rights: logged_in.rights.iter().map(|r| r.name().to_owned()).collect(),
                    token,
                }),
            ))
        }
        Err(refusal) => Err(match refusal {
            LoginRefusal::InvalidCredentials => ApiError::new(Code::InvalidCredentials, refusal.message()),
            LoginRefusal::AccountLocked => ApiError::new(Code::AccountLocked, refusal.message()),
            LoginRefusal::TooManyAttempts { retry_after_secs } => {
                ApiError::new(Code::TooManyAttempts, refusal.message()).retry_after(retry_after_secs)
            }
        }),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountList {
    accounts: Vec<AccountView>,
}

/// Every local account.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = AccountList), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_accounts(State(state): State<AppState>) -> Result<Json<AccountList>, ApiError> {
    let accounts = state.accounts.users().await?;
    let views = accounts.iter().map(|a| AccountView::of(a, state.accounts.is_locked(a))).collect();
    Ok(Json(AccountList { accounts: views }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    #[serde(default)]
    display_name: String,
    roles: Vec<String>,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Recorded {
    /// The event recording the change.
    event_id: EventId,
}

/// Adds an account. The event names the administrator and the account, never the password.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Recorded), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_account(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    super::body::JsonBody(new): super::body::JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let id = state
        .accounts
        .add_user(&actor(&viewer, client), &new.username, &new.display_name, new.roles, &new.password)
        .await?;
    Ok((StatusCode::CREATED, Json(Recorded { event_id: id })))
}

/// Deletes an account.
#[utoipa::path(delete, path = "/api/v1/accounts/{name}", tag = "accounts",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, body = Recorded), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_account(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<Recorded>, ApiError> {
    Ok(Json(Recorded { event_id: state.accounts.delete_user(&actor(&viewer, client), &name).await? }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPassword {
    #[schema(min_length = 1)]
    password: String,
    /// Also revoke every API token of the account (default: tokens are kept).
    #[serde(default)]
    revoke_tokens: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordSet {
    event_id: EventId,
    /// The account's browser sessions that the change ended (all but the caller's own).
    sessions_ended: usize,
    /// Its API tokens revoked (with `revoke_tokens` only).
    tokens_revoked: usize,
}

/// Sets an account's password. Its other browser sessions end; its API tokens are kept unless
/// `revoke_tokens` is true.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/password", tag = "accounts", request_body = NewPassword,
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, body = PasswordSet), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_password(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    Path(name): Path<String>,
    super::body::JsonBody(new): super::body::JsonBody<NewPassword>,
) -> Result<Json<PasswordSet>, ApiError> {
    let changed = state.accounts.set_password(&actor(&viewer, client), &name, &new.password, new.revoke_tokens).await?;
    Ok(Json(PasswordSet {
        event_id: changed.event_id,
        sessions_ended: changed.sessions_ended,
        tokens_revoked: changed.tokens_revoked,
    }))
}

/// Locks an account until an administrator unlocks it.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/lock", tag = "accounts",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, body = Recorded), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn lock_account(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<Recorded>, ApiError> {
    Ok(Json(Recorded { event_id: state.accounts.lock_user(&actor(&viewer, client), &name).await? }))
}

/// Unlocks an account and clears its failure count.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/unlock", tag = "accounts",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, body = Recorded), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn unlock_account(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    Path(name): Path<String>,
) -> Result<Json<Recorded>, ApiError> {
    Ok(Json(Recorded { event_id: state.accounts.unlock_user(&actor(&viewer, client), &name).await? }))
}

/// Ends the browser session of the cookie sent, recorded, and clears the cookie. A live
/// session's logout carries its CSRF token, like every other state change (another site must
/// not end it).
#[utoipa::path(post, path = "/api/v1/logout", tag = "accounts",
    responses((status = 204, description = "logged out"), (status = 403, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: axum::http::HeaderMap,
) -> Result<(StatusCode, axum::http::HeaderMap), ApiError> {
    if let Some(id) = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE) {
        if let Some(holder) = state.accounts.resolve_session(id).await?
            && !crate::auth::csrf_matches(&holder.session.csrf, &headers)
        {
            return Err(ApiError::new(Code::CsrfFailed, "send the session's CSRF token (from login) in X-CSRF-Token"));
        }
        state.accounts.logout(id, client).await?;
    }
    let mut clear = axum::http::HeaderMap::new();
    let cookie = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", crate::auth::SESSION_COOKIE);
    clear.insert(axum::http::header::SET_COOKIE, cookie.parse().expect("a valid cookie header"));
    Ok((StatusCode::NO_CONTENT, clear))
}

/// The `Set-Cookie` header of a new session.
fn session_cookie(state: &AppState, id: &str) -> axum::http::HeaderMap {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}", crate::auth::SESSION_COOKIE);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::SET_COOKIE, cookie.parse().expect("a valid cookie header"));
    headers
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    username: String,
    password: String,
    /// Where to go after logging in: a path on this server (default `/`).
    next: Option<String>,
}

/// A local path to return to, never another site (no open redirect).
fn local_path(next: Option<&str>) -> &str {
    match next {
        // No control characters or spaces either: browsers drop a tab, and "/\t/evil" would
        // become "//evil".
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.bytes().any(|b| b <= 0x20 || b == 0x7f) =>
        {
            path
        }
        _ => "/",
    }
}

/// The web UI's form login: sets the session cookie and redirects (303) to `next`, or back to
/// `/login?error=...`. A cross-site `Origin` is refused (login CSRF).
#[utoipa::path(post, path = "/login", tag = "accounts",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "to `next`, or to /login?error=invalid_credentials|account_locked"),
              (status = 403, body = ErrorBody),
              (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn form_login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: axum::http::HeaderMap,
    super::body::FormBody(form): super::body::FormBody<LoginForm>,
) -> Result<(StatusCode, axum::http::HeaderMap), ApiError> {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(axum::http::header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if Some(origin_host) != host {
            return Err(ApiError::new(Code::Forbidden, "a login form posted from another site is refused"));
        }
    }
    let mut answer = match state.accounts.login(&form.username, &form.password, client).await? {
        Ok(logged_in) => {
            let offered = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE);
            let session = state.accounts.open_session(&logged_in, offered, client).await?;
            let mut headers = session_cookie(&state, &session.id);
            headers.insert(
                axum::http::header::LOCATION,
                local_path(form.next.as_deref()).parse().unwrap_or_else(|_| "/".parse().expect("a path")),
            );
            headers
        }
        Err(refusal) => {
            let code = match refusal {
                LoginRefusal::InvalidCredentials => "invalid_credentials",
                LoginRefusal::AccountLocked => "account_locked",
                LoginRefusal::TooManyAttempts { .. } => "too_many_attempts",
            };
            let mut headers = axum::http::HeaderMap::new();
            // Back to the form, keeping where the visitor was going.
            let next: String = form_urlencoded::byte_serialize(local_path(form.next.as_deref()).as_bytes()).collect();
            let location = format!("/login?error={code}&next={next}");
            headers.insert(axum::http::header::LOCATION, location.parse().expect("a path"));
            headers
        }
    };
    answer.insert(axum::http::header::CACHE_CONTROL, "no-store".parse().expect("a header value"));
    Ok((StatusCode::SEE_OTHER, answer))
}
