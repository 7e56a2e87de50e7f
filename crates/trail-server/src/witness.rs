//! The witness's HTTP side (C2SP `tlog-witness`): `POST /add-checkpoint` answers a cosignature, or
//! the status the specification gives each refusal. `trail witness serve` runs it, apart from
//! any trail.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use trail_checkpoints::witness::{Witness, WitnessError};
use trail_core::witness::Refusal;

/// A request holds a checkpoint and at most 63 hashes: a few kilobytes.
const BODY_LIMIT: usize = 64 * 1024;

pub fn witness_app(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", axum::routing::post(add_checkpoint))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(witness)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    let text = |status: StatusCode, text: String| (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text);
    match answer {
        Ok(Ok(cosignature)) => text(StatusCode::OK, cosignature).into_response(),
        Ok(Err(WitnessError::Refused(Refusal::Stale { latest }))) => {
            (StatusCode::CONFLICT, [(CONTENT_TYPE, "text/x.tlog.size")], format!("{latest}\n")).into_response()
        }
        Ok(Err(WitnessError::Refused(refusal))) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            text(status, format!("{refusal}\n")).into_response()
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "the witness cannot keep what it cosigns");
            text(StatusCode::INTERNAL_SERVER_ERROR, "the witness cannot keep what it cosigns\n".into()).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "the witness failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "the witness failed\n".into()).into_response()
        }
    }
}
