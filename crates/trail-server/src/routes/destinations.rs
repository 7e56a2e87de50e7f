//! Forwarding destinations with their backlog and last error (F4).

use crate::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use trail_forward::DestinationReport;

#[derive(Serialize, utoipa::ToSchema)]
pub struct DestinationList {
    destinations: Vec<DestinationReport>,
}

/// Every configured destination: how far it has delivered, its backlog, and its last error.
#[utoipa::path(get, path = "/api/v1/destinations", tag = "forwarding",
    responses((status = 200, body = DestinationList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_destinations(State(state): State<AppState>) -> Json<DestinationList> {
    Json(DestinationList { destinations: state.forwarding.reports() })
}
