//! The `/ws` HTTP upgrade: checks the RFC 6455 handshake, answers 101 (or a JSON refusal)
//! and starts the connection's task.

use super::super::wsframe::{self};
use super::*;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};

/// `GET /ws`: checks the handshake, answers 101 and starts the session once hyper hands over
/// the connection. A bad handshake gets a JSON error: 400, or 426 for a missing upgrade or
/// an unsupported `Sec-WebSocket-Version` (with `Sec-WebSocket-Version: 13`).
pub async fn upgrade(State(state): State<AppState>, req: Request) -> Response {
    accept(req, |on_upgrade| {
        let task = connection(
            on_upgrade,
            state.node.clone(),
            state.config.clone(),
            state.tasks.clone(),
        );
        tokio::spawn(state.tasks.track_future(task));
    })
}

/// Checks an upgrade request's handshake; if it is good, `start`s the connection's task with
/// what hyper hands over and answers 101, else a JSON refusal.
pub(super) fn accept(mut req: Request, start: impl FnOnce(OnUpgrade)) -> Response {
    let accept = match check_handshake(req.version(), req.headers()) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    if req
        .extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .is_none()
    {
        return Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded",
        )
        .into_response();
    }
    start(hyper::upgrade::on(&mut req));
    switching_protocols(&accept)
}

/// The `101 Switching Protocols` answer with its `Sec-WebSocket-Accept`.
pub(super) fn switching_protocols(accept: &str) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(value) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// A refused handshake.
pub(super) struct Refusal {
    status: StatusCode,
    message: &'static str,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, message: &'static str) -> Refusal {
        Refusal { status, message }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"error": {"code": "invalid_request", "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UPGRADE_REQUIRED {
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Checks an upgrade request (RFC 6455 section 4.2.1); returns `Sec-WebSocket-Accept`.
pub(super) fn check_handshake(version: Version, headers: &HeaderMap) -> Result<String, Refusal> {
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: send `Upgrade: websocket`",
        ));
    }
    if version != Version::HTTP_11 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "WebSocket upgrades need HTTP/1.1",
        ));
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "`Connection` header must include `upgrade`",
        ));
    }
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported `Sec-WebSocket-Version`: only 13 is spoken",
        ));
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) if wsframe::valid_key(key.as_bytes()) => Ok(wsframe::accept_key(key.as_bytes())),
        _ => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` missing or not base64 of 16 bytes",
        )),
    }
}

/// Whether a comma-separated header has `token` (case-insensitive) in any of its values.
pub(super) fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}
