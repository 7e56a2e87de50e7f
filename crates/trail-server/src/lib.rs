//! Trail's HTTP API: ingest, search, details, health and metrics, with the OpenAPI document
//! generated from the handlers. Only this crate knows HTTP.

mod admission;
pub mod auth;
pub mod client;
pub mod error;
pub mod listen;
mod openapi;
pub mod rights;
mod routes;
mod ui;
pub mod witness;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::TraceLayer;
use trail_store::Store;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{TokenEntry, Tokens};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub accounts: Arc<trail_accounts::Accounts>,
    pub tokens: Arc<Tokens>,
    pub metrics: PrometheusHandle,
    /// The clock that stamps events without a time of their own.
    pub clock: fn() -> jiff::Timestamp,
    /// Mark session cookies Secure (set when Trail is served over TLS, by a proxy in front).
    pub secure_cookies: bool,
    /// Signs checkpoints on demand; `None` when the server has no key.
    pub checkpointer: Option<Arc<trail_checkpoints::Checkpointer>>,
    /// The forwarding destinations, for their status.
    pub forwarding: Arc<trail_forward::Forwarding>,
    /// Jobs, job logs and device results.
    pub operations: Arc<trail_operations::Operations>,
    /// The proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<client::TrustedProxies>,
    /// When each reader's feed reading was last recorded (`routes::events::feed`).
    pub feed_readers: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

/// Server settings the binary decides.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Time to receive a whole request body, from the end of its head; past it the request is
    /// answered `408` and nothing is stored.
    pub body_timeout: std::time::Duration,
    /// Bytes of request bodies admitted at once (see `admission`): beyond it, `503`.
    pub queued_writes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 16 * 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(60),
            queued_writes: 256 * 1024 * 1024,
        }
    }
}

/// The process-wide Prometheus recorder, installed once however many servers a process runs.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests embedding several servers);
            // metrics then go there and this handle renders what it has.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, accounts: Arc<trail_accounts::Accounts>, tokens: Tokens) -> AppState {
        AppState {
            store: store.clone(),
            accounts,
            tokens: Arc::new(tokens),
            metrics: metrics_handle(),
            clock: jiff::Timestamp::now,
            secure_cookies: false,
            checkpointer: None,
            forwarding: Arc::new(trail_forward::Forwarding::none()),
            operations: Arc::new(trail_operations::Operations::new(store.clone(), store.clone())),
            trusted_proxies: Arc::default(),
            feed_readers: Arc::default(),
        }
    }
}

/// The API's routes and its OpenAPI document, built from the same handler list.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(routes::events::post_events, routes::events::list_events))
        .routes(routes!(routes::events::get_event))
        .routes(routes!(routes::events::post_changes))
        .routes(routes!(routes::events::related))
        .routes(routes!(routes::events::list_users))
        .routes(routes!(routes::jobs::submit_job, routes::jobs::list_jobs))
        .routes(routes!(routes::jobs::get_job))
        .routes(routes!(routes::jobs::report_status))
        .routes(routes!(routes::jobs::append_log, routes::jobs::get_log))
        .routes(routes!(routes::jobs::status))
        .routes(routes!(routes::jobs::status_stream))
        .routes(routes!(routes::devices::get_device))
        .routes(routes!(routes::devices::archive))
        .routes(routes!(routes::devices::inventory))
        .routes(routes!(routes::devices::restore))
        .routes(routes!(routes::devices::commit))
        .routes(routes!(routes::events::feed))
        .routes(routes!(routes::export::export))
        .routes(routes!(routes::retention::chain))
        .routes(routes!(routes::retention::purge))
        .routes(routes!(routes::checkpoints::latest))
        .routes(routes!(routes::checkpoints::make))
        .routes(routes!(routes::checkpoints::event_proof))
        .routes(routes!(routes::checkpoints::consistency))
        .routes(routes!(routes::accounts::login))
        .routes(routes!(routes::accounts::logout))
        .routes(routes!(routes::accounts::form_login, ui::login::page))
        .routes(routes!(routes::accounts::list_accounts, routes::accounts::add_account))
        .routes(routes!(routes::accounts::delete_account))
        .routes(routes!(routes::accounts::set_password))
        .routes(routes!(routes::accounts::lock_account))
        .routes(routes!(routes::accounts::unlock_account))
        .routes(routes!(routes::tokens::create_token, routes::tokens::list_tokens))
        .routes(routes!(routes::tokens::revoke_token))
        .routes(routes!(routes::destinations::list_destinations))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .split_for_parts();
    openapi::complete(&mut document);
    (router, document)
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The whole application.
pub fn app(state: AppState, config: &ServerConfig) -> Router {
    let (router, openapi) = api();
    let document = Arc::new(openapi);
    let routes = router
        .merge(ui::router())
        .route("/api/openapi.json", axum::routing::get(move || async move { axum::Json((*document).clone()) }));
    guarded(routes, state, config)
}

/// `routes` behind what every answer passes through: the rights table (a route missing from it
/// is refused), the bound on queued writes, the body limit and deadline, the security headers,
/// tracing; unknown routes answer 404.
pub fn guarded(routes: Router<AppState>, state: AppState, config: &ServerConfig) -> Router {
    let budget = admission::WriteBudget::new(config.queued_writes, config.body_limit);
    routes
        .fallback(|| async { error::ApiError::new(error::Code::NotFound, "no such route; see /api/openapi.json") })
        .layer(axum::middleware::from_fn_with_state(budget, admission::admit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rights::enforce))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(RequestBodyDeadlineLayer::new(config.body_timeout))
        .layer(axum::middleware::from_fn(ui::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves plain HTTP on one socket, with the default connection limits, until `shutdown`
/// completes, then finishes the requests in flight ([`listen::serve_listeners`] for more).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listeners = vec![listen::Listener::plain(listener)];
    listen::serve_listeners(listeners, app, listen::ConnectionLimits::default(), shutdown).await
}
