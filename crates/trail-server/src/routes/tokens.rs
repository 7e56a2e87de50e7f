//! API tokens (`/api/v1/tokens`): created by administrators for anyone, or by users for
//! themselves; shown once; revocable; each shows when it was last used.

use super::params::Path;
use crate::AppState;
use crate::auth::Viewer;
use crate::auth::{actor, parse_scopes};
use crate::client::ClientAddress;
use crate::error::{ApiError, Code, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use trail_core::EventId;
use trail_core::identity::{ApiToken, Right};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// What the token is for.
    pub name: String,
    /// Any of `ingest`, `read`, `admin`; the token never has more than its owner.
    pub scopes: Vec<String>,
    /// Whose token it is (default: the caller; another user's needs `administer`).
    pub owner: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Issued {
    id: i64,
    /// The secret, shown this once; only its digest is stored.
    token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    id: i64,
    owner: String,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl TokenView {
    fn of(token: &ApiToken) -> TokenView {
        let time = trail_core::time::format_rfc3339;
        TokenView {
            id: token.id,
            owner: token.owner.to_string(),
            name: token.name.clone(),
            scopes: token.scopes.iter().map(|s| s.name().to_owned()).collect(),
            created_at: time(token.created_at),
            last_used_at: token.last_used_at.map(time),
            revoked_at: token.revoked_at.map(time),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

/// Issues a token. Its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, body = Issued), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    super::body::JsonBody(new): super::body::JsonBody<NewToken>,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let owner = match (new.owner, &viewer.user) {
        (Some(owner), _) => owner,
        (None, Some(own)) => own.clone(),
        (None, None) => return Err(ApiError::new(Code::InvalidAccount, "name the token's `owner`")),
    };
    let for_self =
        viewer.user.as_deref() == trail_core::identity::Username::parse(&owner).ok().as_ref().map(|u| u.as_str());
    if !for_self && !viewer.may(Right::Administer) {
        return Err(ApiError::new(Code::Forbidden, "a token for another user needs the right `administer`"));
    }
    let scopes = parse_scopes(&new.scopes)?;
    let issued =
        state.accounts.create_token(&actor(&viewer, client), &viewer.grantor(), &owner, &new.name, scopes).await?;
    Ok((StatusCode::CREATED, Json(Issued { id: issued.id, token: issued.secret })))
}

/// The caller's tokens; an administrator sees everyone's.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = TokenList)), security(("bearer" = [])))]
pub async fn list_tokens(State(state): State<AppState>, viewer: Viewer) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.accounts.manageable_tokens(viewer.user.as_deref(), &viewer.rights, &viewer.grantor()).await?;
    Ok(Json(TokenList { tokens: tokens.iter().map(TokenView::of).collect() }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Revoked {
    event_id: EventId,
}

/// Revokes a token at once: one's own, or any with `administer`.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = Revoked), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientAddress(client): ClientAddress,
    Path(id): Path<i64>,
) -> Result<Json<Revoked>, ApiError> {
    let grantor = viewer.grantor();
    let tokens = state.accounts.manageable_tokens(viewer.user.as_deref(), &viewer.rights, &grantor).await?;
    let token = tokens
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("you have no token {id}")))?;
    Ok(Json(Revoked { event_id: state.accounts.revoke_token(&actor(&viewer, client), &grantor, token).await? }))
}
