//! The login page (A1), with clear messages for a failure and a locked account, and logout.

use crate::AppState;
use crate::client::ClientAddress;
use crate::routes::params::Params;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, html};
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// Why the last attempt failed: `invalid_credentials`, `account_locked`, `too_many_attempts`.
    error: Option<String>,
    /// Where to go after logging in: a path on this server.
    next: Option<String>,
    /// Set after a logout, to say so.
    done: Option<String>,
}

/// The web UI's login page (HTML), whose form posts to `POST /login`. It is in the API's
/// document because that path is: a client asking `/login` what it takes is told both methods.
#[utoipa::path(get, path = "/login", tag = "accounts", params(LoginQuery),
    responses((status = 200, description = "The login page", content_type = "text/html", body = String)))]
pub async fn page(Params(query): Params<LoginQuery>) -> Response {
    let message = match query.error.as_deref() {
        Some("invalid_credentials") => Some("The username or password is wrong. Try again."),
        Some("account_locked") => Some(
            "This account is locked after repeated failures, or by an administrator. Wait for it to unlock, or ask an administrator.",
        ),
        Some("too_many_attempts") => {
            Some("Too many login attempts came from your address. Wait a minute, then try again.")
        }
        Some(_) => Some("The login failed. Try again."),
        None => None,
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (super::head("Log in"))
            body {
                main.login #main {
                    h1 { "Trail" }
                    @if let Some(message) = message { p.error role="alert" #login-error { (message) } }
                    @if query.done.as_deref() == Some("logged_out") { p.ok role="status" { "You are logged out." } }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(query.next.as_deref().unwrap_or("/"));
                        label { "Username" input name="username" autocomplete="username" required autofocus; }
                        label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                        button.primary type="submit" { "Log in" }
                    }
                }
            }
        }
    };
    let mut response = Html(markup.into_string()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Ends the session (recorded) and forgets the cookie.
pub async fn logout(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE)
        && let Err(error) = state.accounts.logout(id, client).await
    {
        tracing::warn!(%error, "logout failed");
    }
    let mut response = Redirect::to("/login?done=logged_out").into_response();
    let expired = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", crate::auth::SESSION_COOKIE);
    response.headers_mut().insert(header::SET_COOKIE, expired.parse().expect("a cookie header"));
    response
}
