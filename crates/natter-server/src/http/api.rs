//! The JSON accounts API (register, login, guest, logout, me, sessions, password), the public
//! `/api/config` and `/healthz`, as in docs/protocol.md section 1. Errors are
//! `{"error": {"code", "message"}}`: [`ApiError`] for the handlers' own, [`json_errors`] for
//! every other error response (405, 404 of a web file, a body the extractors refuse), and
//! [`require_json`] refuses API bodies that are not JSON (415). A `rate_limited` error also
//! carries `retry_after_ms` and a `Retry-After` header. Sign-in, sign-up and guests pass the
//! account limits (`limits.rs`) before any work, and their bodies must arrive within
//! `http_body_timeout`.

use super::client::{limit_key, ClientAddr};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use natter_core::protocol::ErrorBody;
use natter_core::{ChatError, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;

/// A `ChatError` as an HTTP response; its status follows from the error code unless
/// `status` says otherwise (a body over the size limit: 413 `invalid_request`).
pub struct ApiError {
    pub error: ChatError,
    pub status: Option<StatusCode>,
    /// Close the connection after the response (a request body left unread: an upload
    /// refused while it streams).
    pub close: bool,
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        ApiError {
            error,
            status: None,
            close: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or(match self.error.code {
            ErrorCode::NameTaken => StatusCode::CONFLICT,
            ErrorCode::InvalidCredentials | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::GuestsDisabled | ErrorCode::Forbidden | ErrorCode::AccountDeactivated => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::FileTooLarge | ErrorCode::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        });
        let body = json!({ "error": ErrorBody::from(&self.error) });
        let mut response = (status, Json(body)).into_response();
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(ms) = self.error.retry_after_ms {
            // Whole seconds, rounded up (RFC 9110 section 10.2.3).
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, ms.div_ceil(1000).max(1).into());
        }
        response
    }
}

/// Whether `headers` say the body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a request says it carries a body (or a type for one).
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    headers.contains_key(header::CONTENT_TYPE)
        || headers.contains_key(header::TRANSFER_ENCODING)
        || length.is_some_and(|n| n > 0)
}

/// Middleware: a request under `/api/` (other than GET and HEAD) that carries a body in
/// anything but `Content-Type: application/json` gets 415 `unsupported_media_type` before
/// the body is read. (A cross-site form or `no-cors` fetch can post `text/plain`,
/// form-encoded or multipart bodies without the browser asking first; never JSON.)
///
/// Uploads (`POST /api/files`) are exempt: their body is the file, in any type. They need
/// an `Authorization` header, which no cross-site form can send.
pub async fn require_json(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let checked = path.starts_with("/api/")
        && path != "/api/files"
        && !matches!(*request.method(), Method::GET | Method::HEAD);
    if checked && has_body(request.headers()) && !is_json(request.headers()) {
        return ApiError::from(ChatError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON, with `Content-Type: application/json`",
        ))
        .into_response();
    }
    next.run(request).await
}

/// Middleware: an error response (4xx, 5xx) without a JSON body (axum's 405 for a known path
/// and another method, a body the extractors refuse, ...) gets the documented one,
/// `{"error": {"code", "message"}}`, keeping its status and headers (`Allow` of a 405). The
/// app's own "page not found" (index.html with 404, see `web`) is a page, and stays one.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers())
        || page
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "not found"),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this path does not take that method (see the `Allow` header)",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON, with `Content-Type: application/json`",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::InvalidRequest, "the body is too large"),
        s if s.is_server_error() => (ErrorCode::Internal, "internal error, try again"),
        _ => (ErrorCode::InvalidRequest, "the request could not be read"),
    };
    let body = json!({ "error": ErrorBody::from(&ChatError::new(code, message)) });
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Reads a JSON body within `http_body_timeout` (else 408 `request_timeout`) and parses it,
/// answering `invalid_request` for anything unreadable (or over axum's 2 MiB body limit).
pub(crate) async fn body<T: DeserializeOwned>(
    state: &AppState,
    req: Request,
) -> Result<T, ApiError> {
    let read = Bytes::from_request(req, &());
    let bytes = match tokio::time::timeout(state.config.http_body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(rejection)) => {
            let status = rejection.status();
            let mut error = ApiError::from(ChatError::invalid(format!(
                "unreadable body: {}",
                rejection.body_text()
            )));
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                error.status = Some(status);
            }
            return Err(error);
        }
        Err(_) => {
            return Err(ApiError::from(ChatError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            )))
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::from(ChatError::invalid(format!("bad JSON body: {e}"))))
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::from(ChatError::new(
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
pub(crate) fn device_label(headers: &HeaderMap) -> String {
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
    ApiError::from(ChatError::new(
        ErrorCode::NotFound,
        "no such API endpoint (docs/protocol.md section 1)",
    ))
}

/// What a client may want to know before signing in: whether it may offer guest access, the
/// longest message it may send, the connection limits (as in the `auth` reply) and how large an
/// upload may be.
pub async fn config(State(state): State<AppState>) -> Response {
    let core = state.node.config();
    Json(json!({
        "allow_guests": core.allow_guests,
        "max_message_chars": core.max_message_chars,
        "max_frame_bytes": core.max_frame_bytes,
        "rate_per_sec": core.rate_per_sec,
        "rate_burst": core.rate_burst,
        "max_upload_bytes": state.config.max_upload_bytes,
        "upload_quota_bytes": state.config.upload_quota_bytes,
    }))
    .into_response()
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    state.limits.register(addr)?;
    let label = device_label(req.headers());
    let c: Credentials = body(&state, req).await?;
    let signed = state
        .node
        .register(limit_key(addr), &c.username, &c.password, &label)
        .await?;
    tracing::info!(user = %signed.user.name, "registered");
    Ok((StatusCode::CREATED, Json(signed)).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let label = device_label(req.headers());
    let c: Credentials = body(&state, req).await?;
    state.limits.login(addr, &c.username)?;
    let signed = state
        .node
        .login(limit_key(addr), &c.username, &c.password, &label)
        .await?;
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
    let label = device_label(req.headers());
    let g: Guest = body(&state, req).await?;
    let signed = state.node.register_guest(&g.nickname, &label).await?;
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

/// `GET /api/search?query=...`: the `search` request for scripts and bots (docs/protocol.md
/// section 4), as the token's user.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<
        axum::extract::Query<natter_core::protocol::SearchArgs>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let user = state.node.user_for_token(bearer(&headers)?).await?;
    let axum::extract::Query(args) = query.map_err(|e| {
        ApiError::from(ChatError::invalid(format!(
            "bad query parameters: {}",
            e.body_text()
        )))
    })?;
    let reply = state.node.search_as(&user, args).await?;
    Ok(Json(reply).into_response())
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

/// `DELETE /api/account` body.
#[derive(Debug, Deserialize)]
struct AccountDeletion {
    /// Required for a registered account.
    #[serde(default)]
    password: Option<String>,
}

/// `DELETE /api/account`: deletes the caller's account (docs/protocol.md section 1).
pub async fn delete_account(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers())?.to_string();
    // A guess at the password is a sign-in attempt: the same limits apply.
    let user = state.node.user_for_token(&token).await?;
    state.limits.login(addr, &user.name)?;
    let d: AccountDeletion = body(&state, req).await?;
    state
        .node
        .delete_account(limit_key(addr), &token, d.password.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/account/export`: the caller's profile, rooms and messages as a JSON download.
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let export = state.node.export(bearer(&headers)?).await?;
    let name = format!("natter-{}.json", export.user.name);
    let mut response = Json(export).into_response();
    if let Ok(value) = format!("attachment; filename=\"{name}\"").parse() {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `POST /api/password`: changes the caller's password; their other sessions are revoked.
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers())?.to_string();
    // A guess at the old password is a sign-in attempt: the same limits apply.
    let user = state.node.user_for_token(&token).await?;
    state.limits.login(addr, &user.name)?;
    let p: PasswordChange = body(&state, req).await?;
    state
        .node
        .change_password(limit_key(addr), &token, &p.old_password, &p.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
