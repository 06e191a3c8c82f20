//! The JSON accounts API (register, login, guest, logout, me), the public `/api/config` and
//! `/healthz`, as in docs/protocol.md section 1. Errors are `{"error": {"code", "message"}}`;
//! a `rate_limited` one also carries `retry_after_ms` and a `Retry-After` header. Sign-in,
//! sign-up and guests pass the account limits (`limits.rs`) before any work, and their
//! bodies must arrive within `http_body_timeout`.

use super::client::ClientAddr;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
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
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = json!({ "error": ErrorBody::from(&self.0) });
        let mut response = (status, Json(body)).into_response();
        if let Some(ms) = self.0.retry_after_ms {
            // Whole seconds, rounded up (RFC 9110 section 10.2.3).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, ms.div_ceil(1000).max(1).into());
        }
        response
    }
}

/// Reads a JSON body within `http_body_timeout` (else 408 `request_timeout`) and parses it,
/// answering `invalid_request` for anything unreadable (or over axum's 2 MiB body limit).
async fn body<T: DeserializeOwned>(state: &AppState, req: Request) -> Result<T, ApiError> {
    let read = Bytes::from_request(req, &());
    let bytes = match tokio::time::timeout(state.config.http_body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(rejection)) => {
            return Err(ApiError(ChatError::invalid(format!(
                "unreadable body: {}",
                rejection.body_text()
            ))))
        }
        Err(_) => {
            return Err(ApiError(ChatError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            )))
        }
    };
    serde_json::from_slice(&bytes)
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
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    state.limits.register(addr)?;
    let c: Credentials = body(&state, req).await?;
    let signed = state.node.register(&c.username, &c.password).await?;
    tracing::info!(user = %signed.user.name, "registered");
    Ok((StatusCode::CREATED, Json(signed)).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let c: Credentials = body(&state, req).await?;
    state.limits.login(addr, &c.username)?;
    let signed = state.node.login(&c.username, &c.password).await?;
    Ok(Json(signed).into_response())
}

pub async fn guest(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    if state.node.config().allow_guests {
        state.limits.guest(addr)?;
    }
    let g: Guest = body(&state, req).await?;
    let signed = state.node.register_guest(&g.nickname).await?;
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
