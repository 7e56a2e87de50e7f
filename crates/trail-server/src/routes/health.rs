//! Health, readiness and Prometheus metrics (I6). No token needed.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Storage answers: ready for traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, description = "storage unavailable")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.known_users().await {
        Ok(_) => (StatusCode::OK, "ready\n".to_owned()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {error}\n")),
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus metrics")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(stats) = state.store.stats().await {
        metrics::gauge!("trail_head_event_id").set(stats.head.get() as f64);
        metrics::gauge!("trail_unindexed_events").set(stats.unindexed as f64);
    }
    // Reports refresh the forwarding backlog gauges.
    state.forwarding.reports();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
