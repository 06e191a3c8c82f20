//! The floor's HTTP: one request per connection (the bench sends `Connection: close` for its
//! account calls), the two account routes, and the WebSocket upgrade of `GET /ws`.

use crate::rooms::State;
use natter_server::transport::wsframe;
use serde::Deserialize;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest request head and body the floor reads.
const MAX_REQUEST: usize = 16 * 1024;

#[derive(Deserialize)]
struct Credentials {
    username: String,
}

/// Serves one connection: an account call, or an upgrade handed to [`crate::ws::run`].
pub async fn serve(mut tcp: TcpStream, state: Arc<State>) {
    let mut buf = Vec::with_capacity(1024);
    let (head_len, method, path, key, body_len) = loop {
        let mut chunk = [0u8; 2048];
        let n = match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    request
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| h.value.to_vec())
                };
                let body_len = header("content-length")
                    .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (
                    len,
                    request.method.unwrap_or("").to_string(),
                    request.path.unwrap_or("").to_string(),
                    header("sec-websocket-key"),
                    body_len,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            _ => return respond(&mut tcp, "400 Bad Request", "{}").await,
        }
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/ws") => {
            let Some(key) = key.filter(|k| wsframe::valid_key(k)) else {
                return respond(&mut tcp, "400 Bad Request", "{}").await;
            };
            let reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\n\r\n",
                wsframe::accept_key(&key)
            );
            if tcp.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            let early = buf.split_off(head_len);
            crate::ws::run(tcp, early, state).await;
        }
        ("POST", "/api/register") | ("POST", "/api/login") => {
            if body_len > MAX_REQUEST {
                return respond(&mut tcp, "413 Payload Too Large", "{}").await;
            }
            while buf.len() < head_len + body_len {
                let mut chunk = [0u8; 2048];
                match tcp.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = &buf[head_len..head_len + body_len];
            let Ok(credentials) = serde_json::from_slice::<Credentials>(body) else {
                return respond(&mut tcp, "400 Bad Request", "{}").await;
            };
            let user = state.user(&credentials.username);
            let status = if path == "/api/register" {
                "201 Created"
            } else {
                "200 OK"
            };
            let body = serde_json::json!({ "token": user.token(), "user": &*user }).to_string();
            respond(&mut tcp, status, &body).await;
        }
        _ => respond(&mut tcp, "404 Not Found", "{}").await,
    }
}

async fn respond(tcp: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
}
