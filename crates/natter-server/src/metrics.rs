//! `GET /metrics`: this server's measurements in the Prometheus text exposition format
//! (version 0.0.4), rendered by hand from the node's `CoreMetrics` and gauges, the account
//! limits' refusals and this module's own [`ServerMetrics`] (HTTP requests by route and
//! status, Socket.IO connections). Every server instance has its own set: nothing is global,
//! so tests can run several servers in one process. docs/deployment.md ("Metrics") lists
//! every metric; docs/adr/0023-metrics-per-node-registry.md says why it is built this way.
//!
//! It is served on `--listen`, or on `--metrics-listen` alone ([`serve_apart`]), or not at
//! all (`--metrics false`).

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use natter_core::metrics::{Counter, Gauge, HistogramSnapshot, LATENCY_BUCKETS};
use natter_core::RateLimitKind;
use socketioxide::{SocketIo, TransportType};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use tokio::net::TcpListener;

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of a request no route matched: Socket.IO's (answered by its layer).
const SOCKET_IO_ROUTE: &str = "/socket.io/";
/// The `route` label of any other unmatched request (the web client's files, and 404s).
const FALLBACK_ROUTE: &str = "fallback";

/// The server's own measurements (the core's are the node's).
#[derive(Default)]
pub struct ServerMetrics {
    /// HTTP responses by route template (`MatchedPath`, so the label set is the router's
    /// routes, never raw paths) and status code.
    http: Mutex<HashMap<Box<str>, HashMap<u16, u64>>>,
    /// Socket.IO connections from the handshake's `auth` to the socket task's end (the core
    /// counts every transport's; `/ws` is the rest, so its connections cost no extra byte).
    pub socketio_connections: Gauge,
    /// Socket.IO requests refused because the socket's request queue was full.
    pub socketio_queue_refused: Counter,
    /// The Socket.IO handle, to tell polling sockets from WebSocket ones at scrape time; set
    /// while the server runs and taken away at its end (it holds the handlers, which hold
    /// the state that holds this).
    socket_io: Mutex<Option<SocketIo>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServerMetrics {
    pub fn set_socket_io(&self, io: SocketIo) {
        *lock(&self.socket_io) = Some(io);
    }

    /// Drops the Socket.IO handle (at shutdown), which breaks the cycle through it.
    pub fn forget_socket_io(&self) {
        lock(&self.socket_io).take();
    }

    fn count_response(&self, route: &str, status: u16) {
        let mut http = lock(&self.http);
        let by_status = match http.get_mut(route) {
            Some(by_status) => by_status,
            None => http.entry(route.into()).or_default(),
        };
        *by_status.entry(status).or_insert(0) += 1;
    }

    /// Socket.IO sockets on long-polling now (the others are on WebSocket).
    fn socketio_polling(&self) -> i64 {
        let io = lock(&self.socket_io).clone();
        let Some(sockets) = io.and_then(|io| io.of("/")).map(|ns| ns.sockets()) else {
            return 0;
        };
        let polling = sockets
            .iter()
            .filter(|s| s.transport_type() == TransportType::Polling)
            .count();
        i64::try_from(polling).unwrap_or(i64::MAX)
    }
}

/// Middleware: counts every response by its route template and status.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // A `MatchedPath` is a shared string: keeping it costs no copy of the route.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = match &matched {
        Some(matched) => matched.as_str(),
        None if request.uri().path().starts_with(SOCKET_IO_ROUTE) => SOCKET_IO_ROUTE,
        None => FALLBACK_ROUTE,
    };
    let response = next.run(request).await;
    state
        .metrics
        .count_response(route, response.status().as_u16());
    response
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&state),
    )
        .into_response()
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`) until `stop` resolves.
pub fn serve_apart(
    state: AppState,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state);
    async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "the metrics listener failed");
        }
    }
}

/// One metric family after another, in the text format.
struct Exposition(String);

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample line; `labels` are name/value pairs (values escaped here).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"{}\"", escape(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&h.cumulative) {
            self.sample(&bucket, &[("le", &bound.to_string())], count);
        }
        self.sample(&bucket, &[("le", "+Inf")], h.count);
        self.sample(&format!("{name}_sum"), &[], h.sum_seconds);
        self.sample(&format!("{name}_count"), &[], h.count);
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything, in the text format.
pub fn render(state: &AppState) -> String {
    let core = state.node.metrics();
    let gauges = state.node.gauges();
    let server = &state.metrics;
    let mut out = Exposition(String::with_capacity(8 * 1024));

    let socketio = server.socketio_connections.get().max(0);
    let polling = server.socketio_polling().min(socketio);
    out.family(
        "natter_connections",
        "gauge",
        "Client connections open now, authenticated or not, by transport.",
    );
    let transports = [
        ("ws", (core.connections.get() - socketio).max(0)),
        ("socketio_websocket", socketio - polling),
        ("socketio_polling", polling),
    ];
    for (transport, count) in transports {
        out.sample("natter_connections", &[("transport", transport)], count);
    }
    out.single(
        "natter_sessions",
        "gauge",
        "Authenticated sessions on this node.",
        gauges.sessions,
    );
    out.single(
        "natter_rooms_active",
        "gauge",
        "Rooms with at least one member connected to this node.",
        gauges.rooms,
    );
    out.single(
        "natter_presence_online_users",
        "gauge",
        "Users with at least one connection to this node.",
        gauges.online_users,
    );
    out.single(
        "natter_typing_active",
        "gauge",
        "Typing indicators this node holds now (one per user and room).",
        gauges.typing,
    );
    out.single(
        "natter_messages_stored_total",
        "counter",
        "Messages stored by this node (duplicates of a client_id not counted).",
        core.messages_stored.get(),
    );
    out.single(
        "natter_deliveries_total",
        "counter",
        "Room messages handed to local sessions' outbound queues.",
        core.deliveries.get(),
    );
    out.single(
        "natter_slow_consumer_closes_total",
        "counter",
        "Sessions closed with 4008 (outbound queue full, or too far behind presence).",
        core.slow_consumer_closes.get(),
    );
    out.family(
        "natter_rate_limited_total",
        "counter",
        "Requests refused by a rate limit, by limit.",
    );
    for kind in RateLimitKind::ALL {
        let count = core.rate_limited(kind).get();
        out.sample(
            "natter_rate_limited_total",
            &[("kind", kind.as_str())],
            count,
        );
    }
    for (kind, count) in state.limits.refused.by_kind() {
        out.sample("natter_rate_limited_total", &[("kind", kind)], count);
    }
    let queue_refused = server.socketio_queue_refused.get();
    out.sample(
        "natter_rate_limited_total",
        &[("kind", "socketio_queue")],
        queue_refused,
    );
    out.histogram(
        "natter_store_append_seconds",
        "Time to store a message (Store::append), group commit included.",
        &core.store_append.snapshot(),
    );
    if let Some(bytes) = state.node.store().wal_bytes() {
        out.single(
            "natter_store_wal_bytes",
            "gauge",
            "Size of the SQLite write-ahead log file (measured every 250 ms).",
            bytes,
        );
    }
    out.histogram(
        "natter_broker_lag_seconds",
        "From an event's publication to its arrival from the broker (Redis only; node clocks \
         may differ).",
        &core.broker_lag.snapshot(),
    );
    let http: BTreeMap<(String, u16), u64> = lock(&server.http)
        .iter()
        .flat_map(|(route, by_status)| {
            by_status
                .iter()
                .map(move |(status, count)| ((route.to_string(), *status), *count))
        })
        .collect();
    out.family(
        "natter_http_requests_total",
        "counter",
        "HTTP responses by route template and status code.",
    );
    for ((route, status), count) in http {
        let status = status.to_string();
        out.sample(
            "natter_http_requests_total",
            &[("route", &route), ("status", &status)],
            count,
        );
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("a\nb"), "a\\nb");
    }

    #[test]
    fn samples_and_histograms_are_written_in_the_text_format() {
        let mut out = Exposition(String::new());
        out.family("x_total", "counter", "Xs.");
        out.sample("x_total", &[("kind", "a"), ("route", "/b")], 3);
        let h = natter_core::metrics::Histogram::default();
        h.observe(std::time::Duration::from_millis(2));
        out.histogram("y_seconds", "Ys.", &h.snapshot());
        let text = out.0;
        assert!(text.starts_with(
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total{kind=\"a\",route=\"/b\"} 3\n"
        ));
        assert!(
            text.contains("y_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("y_seconds_bucket{le=\"0.0025\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("y_seconds_bucket{le=\"+Inf\"} 1\n"), "{text}");
        assert!(text.contains("y_seconds_count 1\n"), "{text}");
        assert!(text.contains("y_seconds_sum 0.002\n"), "{text}");
    }
}
