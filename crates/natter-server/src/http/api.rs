//! The JSON accounts API (register, login, guest, logout, me, sessions, password), the public
//! `/api/config` and `/healthz`, as in docs/protocol.md section 1. Errors are
//! `{"error": {"code", "message"}}`.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use natter_core::protocol::ErrorBody;
use natter_core::{ChatError, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;

/// A `ChatError` as an HTTP response.
pub struct ApiError(pub ChatError);

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::NameTaken => StatusCode::CONFLICT,
            ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::GuestsDisabled | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": ErrorBody::from(&self.0) });
        (status, Json(body)).into_response()
    }
}

/// Parses a JSON body, answering `invalid_request` for anything unreadable.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(ChatError::invalid(format!("bad JSON body: {e}"))))
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError(ChatError::new(
                ErrorCode::Unauthenticated,
                "missing `Authorization: Bearer <token>`",
            ))
        })
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Guest {
    nickname: String,
}

#[derive(Deserialize)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// The device label of a new session, from the User-Agent (`accounts::device_label`).
fn device_label(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(natter_core::accounts::device_label)
        .unwrap_or_default()
}

pub async fn health(State(state): State<AppState>) -> Response {
    if state.shutting_down.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ok"})).into_response()
    }
}

/// Any other path under `/api/`: a JSON 404, not the web client's page.
pub async fn not_found() -> ApiError {
    ApiError(ChatError::new(
        ErrorCode::NotFound,
        "no such API endpoint (docs/protocol.md section 1)",
    ))
}

/// What a client may want to know before signing in: whether it may offer guest access, and
/// the longest message it may send.
pub async fn config(State(state): State<AppState>) -> Response {
    let core = state.node.config();
    Json(json!({
        "allow_guests": core.allow_guests,
        "max_message_chars": core.max_message_chars,
    }))
    .into_response()
}

pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let c: Credentials = body(&bytes)?;
    let signed = state
        .node
        .register(&c.username, &c.password, &device_label(&headers))
        .await?;
    tracing::info!(user = %signed.user.name, "registered");
    Ok((StatusCode::CREATED, Json(signed)).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let c: Credentials = body(&bytes)?;
    let signed = state
        .node
        .login(&c.username, &c.password, &device_label(&headers))
        .await?;
    Ok(Json(signed).into_response())
}

pub async fn guest(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let g: Guest = body(&bytes)?;
    let signed = state
        .node
        .register_guest(&g.nickname, &device_label(&headers))
        .await?;
    Ok((StatusCode::CREATED, Json(signed)).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.node.logout(bearer(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = state.node.user_for_token(bearer(&headers)?).await?;
    Ok(Json(json!({ "user": user })).into_response())
}

/// `GET /api/sessions`: the caller's sessions, newest first.
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sessions = state.node.sessions(bearer(&headers)?).await?;
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// `DELETE /api/sessions/{id}`: revokes one of the caller's sessions.
pub async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.node.revoke_session(bearer(&headers)?, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/logout-all` and `DELETE /api/sessions`: signs the caller out everywhere.
pub async fn logout_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.node.logout_all(bearer(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/password`: changes the caller's password; their other sessions are revoked.
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    let p: PasswordChange = body(&bytes)?;
    state
        .node
        .change_password(token, &p.old_password, &p.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
