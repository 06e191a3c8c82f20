//! The HTTP surface: the accounts API, health, the embedded web client, and the routes that
//! hand connections to the transports (`/ws`; the Socket.IO layer answers `/socket.io/`).
//! Security headers are set on every response; every error has the JSON body of
//! docs/protocol.md section 1, and API bodies must be JSON (see [`api`]). `/metrics` is here
//! too unless `--metrics-listen` moves it (see `crate::metrics`), and every response is
//! counted by its route.
//!
//! Modules: [`api`] (the JSON endpoints), [`bots`] (the API for scripts and bots, and
//! webhooks), [`openapi`] (the OpenAPI document of every route of [`API_ROUTES`]), [`files`] (uploads and downloads), [`client`] (who a request comes from:
//! `--trusted-proxies` and `X-Forwarded-For`), [`limits`] (the account endpoints' token
//! buckets), [`serve`] (the accept loop and the header/idle timers), [`web`] (the web client's
//! files) and [`assets`] (those files hashed, compressed and versioned).

pub mod api;
pub mod assets;
pub mod bots;
pub mod client;
pub mod files;
pub mod limits;
pub mod openapi;
pub mod serve;
pub mod web;

use crate::transport;
use crate::AppState;
use axum::http::{header, HeaderValue};
use axum::routing::{any, delete, get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// Forbids inline script (and everything not from this origin).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The HTTP API's routes, in one table: [`api_router`] serves them and [`API_ROUTES`] lists
/// them with their methods, which a test checks against the OpenAPI document.
macro_rules! api_routes {
    ($($path:literal => $first:ident($handler:path) $(.$more:ident($more_handler:path))*;)*) => {
        /// Every route of the HTTP API (not `/ws`, `/metrics` or the web client's files).
        pub fn api_router() -> Router<AppState> {
            Router::new()
                $(.route($path, $first($handler)$(.$more($more_handler))*))*
        }

        /// Each route of [`api_router`] and its methods (lowercase).
        pub const API_ROUTES: &[(&str, &[&str])] =
            &[$(($path, &[stringify!($first) $(, stringify!($more))*])),*];
    };
}

api_routes! {
    "/healthz" => get(api::health);
    "/api/openapi.json" => get(openapi_json);
    "/api/register" => post(api::register);
    "/api/login" => post(api::login);
    "/api/guest" => post(api::guest);
    "/api/logout" => post(api::logout);
    "/api/me" => get(api::me);
    "/api/config" => get(api::config);
    "/api/search" => get(api::search);
    "/api/sessions" => get(api::sessions).delete(api::logout_all);
    "/api/sessions/{id}" => delete(api::revoke_session);
    "/api/logout-all" => post(api::logout_all);
    "/api/password" => post(api::change_password);
    "/api/account" => delete(api::delete_account);
    "/api/account/export" => get(api::export);
    "/api/files" => post(files::upload);
    "/api/files/key" => get(files::download_key);
    "/api/files/{id}" => get(files::download);
    "/api/files/{id}/thumb" => get(files::thumbnail);
    "/api/bots" => post(bots::create_bot).get(bots::list_bots);
    "/api/bots/{id}" => delete(bots::delete_bot);
    "/api/bots/{id}/tokens" => post(bots::create_token).get(bots::list_tokens);
    "/api/bots/{id}/tokens/{tid}" => delete(bots::revoke_token);
    "/api/rooms" => get(bots::rooms);
    "/api/rooms/{id}/members" => post(bots::add_member);
    "/api/rooms/{id}/messages" => get(bots::history).post(bots::send);
    "/api/rooms/{id}/webhooks" => post(bots::create_hook).get(bots::list_hooks);
    "/api/rooms/{id}/webhooks/{hid}" => delete(bots::delete_hook);
    "/hooks/{secret}" => post(bots::hook);
}

/// `GET /api/openapi.json`: the document of [`openapi::ApiDoc`], serialized once.
async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(|| openapi::document().to_json().unwrap_or_default());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.clone(),
    )
        .into_response()
}

pub fn router(state: AppState) -> Router {
    // `/metrics` here, unless it is served elsewhere or not at all: then a JSON 404.
    let metrics_here = state.config.metrics && state.config.metrics_listen.is_none();
    let metrics = if metrics_here {
        get(crate::metrics::scrape)
    } else {
        get(api::not_found)
    };
    let router = api_router()
        .route("/metrics", metrics)
        .route("/api/{*rest}", any(api::not_found))
        .route("/ws", get(transport::ws::upgrade))
        // The web client's page; with `Upgrade: websocket`, relay mode's plain WebSocket.
        .route("/", get(transport::ws::root))
        .fallback(get(web::serve))
        // Inside the Socket.IO layer: `/socket.io/` keeps Engine.IO's own error bodies.
        .layer(axum::middleware::from_fn(api::require_json))
        .layer(axum::middleware::from_fn(api::json_errors))
        .layer(transport::socketio::layer(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            transport::socketio::direct,
        ))
        .layer(axum::middleware::map_request(
            transport::socketio::own_request_head,
        ))
        .layer(axum::middleware::map_request_with_state(
            state.clone(),
            note_poll,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            relay_cors,
        ))
        // File downloads set their own, stricter policy (`files::download::FILE_CSP`).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    // Outermost, so every response is counted, Socket.IO's too.
    let router = if state.config.metrics {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_requests,
        ))
    } else {
        router
    };
    router.with_state(state)
}

/// Tells a disconnected Socket.IO polling socket that its client came back (see
/// `transport::socketio::PollFlushes`).
async fn note_poll(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
) -> axum::extract::Request {
    if req.uri().path().starts_with("/socket.io/") {
        state.poll_flushes.note(&req);
    }
    req
}

/// In relay mode, `/socket.io/` answers pages of any origin (`Access-Control-Allow-Origin: *`):
/// a tutorial page served by another server starts on long-polling, and the browser would
/// refuse those answers otherwise. Nothing is lost by it: Natter keeps no cookies, a socket
/// with a token needs the token, and WebSockets (the other transport) have no such check.
async fn relay_cors(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let for_socket_io = req.uri().path().starts_with("/socket.io/");
    let mut response = next.run(req).await;
    if state.config.relay && for_socket_io {
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    response
}
