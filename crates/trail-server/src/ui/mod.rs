//! The web UI (I2): pages rendered by the server with maud (which escapes every value it
//! interpolates), one embedded stylesheet and one embedded script, under a strict
//! Content-Security-Policy. Pages use the same rights table as the API; a visitor without a
//! session is sent to the login page.

mod admin;
mod event;
mod jobs;
pub(crate) mod login;
mod logs;

use crate::AppState;
use crate::auth::Viewer;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use trail_core::identity::Right;

/// Every page and its handler. Their rights are in `rights::ROUTES`, as `Page`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(logs::page))
        .route("/logout", post(login::logout))
        .route("/events/{id}", get(event::page))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::job))
        .route("/status", get(jobs::status))
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/admin/users/{name}/{action}", post(admin::user_action))
        .route("/admin/tokens", get(admin::tokens).post(admin::create_token))
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/admin/policy", get(admin::policy))
        .route("/admin/destinations", get(admin::destinations))
        .route("/assets/{file}", get(asset))
}

/// No inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every answer, pages and API alike.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let over_tls = request.extensions().get::<crate::listen::OverTls>().is_some();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if over_tls {
        secure_transport(headers);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Answers carry secrets (logins, new tokens) and details (events, exports): no cache keeps
    // them, unless an answer says otherwise (the embedded assets).
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Served over TLS: browsers keep to HTTPS for a year (HSTS), and every cookie set is `Secure`,
/// whatever `secure_cookies` says, so a session begun over HTTPS never travels in clear text.
fn secure_transport(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let text = cookie.to_str().unwrap_or_default();
        let secure = text.split(';').any(|part| part.trim().eq_ignore_ascii_case("secure"));
        let value = if secure { cookie } else { HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie) };
        headers.append(header::SET_COOKIE, value);
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match file.as_str() {
        "app.css" => (include_str!("assets/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("assets/app.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Where a visitor without a session goes: the login page, then back here.
pub fn to_login(uri: &axum::http::Uri) -> Response {
    let back = uri.path_and_query().map_or("/", |p| p.as_str());
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// A page's viewer, the zone to show times in (the browser tells it through a cookie), and the
/// path, for the navigation.
pub struct Ui {
    pub viewer: Viewer,
    pub zone: jiff::tz::TimeZone,
    pub path: String,
}

impl FromRequestParts<AppState> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Ui, Response> {
        let viewer = parts.extensions.get::<Viewer>().cloned().ok_or_else(|| to_login(&parts.uri))?;
        let zone = crate::auth::cookie(&parts.headers, "trail_tz")
            .map(|z| form_urlencoded::parse(format!("z={z}").as_bytes()).map(|(_, v)| v.into_owned()).next())
            .and_then(|z| jiff::tz::TimeZone::get(z.as_deref().unwrap_or("UTC")).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        Ok(Ui { viewer, zone, path: parts.uri.path().to_owned() })
    }
}

impl Ui {
    pub fn time(&self, time: jiff::Timestamp) -> String {
        time.to_zoned(self.zone.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    pub fn csrf(&self) -> &str {
        self.viewer.session_csrf().unwrap_or("")
    }

    pub fn may(&self, right: Right) -> bool {
        self.viewer.may(right)
    }

    /// The whole page around `content`.
    pub fn page(&self, title: &str, content: Markup) -> Response {
        let nav = [
            ("/", "Change logs", Right::ReadOwn),
            ("/jobs", "Jobs", Right::Jobs),
            ("/status", "Status", Right::Jobs),
            ("/admin/users", "Administration", Right::Administer),
        ];
        let current = |href: &str| {
            let section = if href == "/" {
                self.path == "/" || self.path.starts_with("/events")
            } else {
                self.path.starts_with(href) || (href == "/admin/users" && self.path.starts_with("/admin"))
            };
            section.then_some("page")
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body data-zoned="true" {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        span.brand { "Trail" }
                        nav aria-label="Main" {
                            ul {
                                @for (href, label, right) in nav {
                                    @if self.may(right) {
                                        li { a href=(href) aria-current=[current(href)] { (label) } }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (self.viewer.user.as_deref().unwrap_or("automation")) } }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(self.csrf());
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                    main #main tabindex="-1" { (content) }
                }
            }
        };
        no_store(Html(markup.into_string()).into_response())
    }
}

/// Every page's head: its title, the stylesheet and the script (nothing inline).
pub fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Trail" }
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// Pages hold user data: never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page the viewer may not see: says which right it needs.
pub fn forbidden(viewer: Viewer, right: Right, path: &str) -> Response {
    let ui = Ui { viewer, zone: jiff::tz::TimeZone::UTC, path: path.to_owned() };
    let content = html! {
        h1 { "Not allowed" }
        p.error { "This page needs the right " code { (right.name()) } ", which your account does not have. Ask an administrator." }
    };
    let mut response = ui.page("Not allowed", content);
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

/// A page naming what went wrong, with a way back.
pub fn problem(ui: &Ui, status: StatusCode, title: &str, message: &str) -> Response {
    let content = html! {
        h1 { (title) }
        p.error role="alert" { (message) }
        p { a href="/" { "Back to the change logs" } }
    };
    let mut response = ui.page(title, content);
    *response.status_mut() = status;
    response
}

/// The severity badge: a word, coloured (the word carries the meaning).
pub fn severity_badge(severity: trail_core::Severity) -> Markup {
    html! { span class={ "badge sev-" (severity.name()) } { (severity.name()) } }
}

pub fn status_badge(status: &str) -> Markup {
    html! { span class={ "badge st-" (status) } { (status) } }
}
