//! A Socket.IO request's own head, so an idle socket does not hold hyper's read buffer.

use super::SOCKET_IO_PATH;
use axum::extract::OriginalUri;

/// Gives a Socket.IO request a head of its own, for the router to run before `layer`. hyper
/// parses a request's URI and header values as slices of the connection's read buffer (8-16
/// KiB), and engineioxide keeps the head of the request that opened a socket for the socket's
/// whole life, so every idle Socket.IO connection held that buffer: 16 KiB of its 44
/// (heaptrack of `natter-bench idle --target natter-sio`). With copies of the URI, the header
/// values and the router's `OriginalUri`, the buffer goes when the upgrade is done. Other
/// requests pass untouched.
pub async fn own_request_head(req: axum::extract::Request) -> axum::extract::Request {
    let for_socket_io = req
        .uri()
        .path()
        .strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !for_socket_io {
        return req;
    }
    let (mut head, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(head.headers.len());
    for (name, value) in &head.headers {
        // hyper copies header names already (or uses static ones); only values are slices.
        let mut copy =
            axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    head.headers = headers;
    if let Ok(uri) = axum::http::Uri::from_maybe_shared(bytes::Bytes::copy_from_slice(
        head.uri.to_string().as_bytes(),
    )) {
        // The router's copy of the URI (kept in the extensions) is a slice of the buffer too.
        if let Some(original) = head.extensions.get_mut::<OriginalUri>() {
            *original = OriginalUri(uri.clone());
        }
        head.uri = uri;
    }
    axum::extract::Request::from_parts(head, body)
}
