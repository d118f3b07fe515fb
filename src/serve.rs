//! The HTTP side of a run: `/metrics` for Prometheus, and the live dashboard with its JSON API.
//!
//! One thread runs a single-threaded tokio runtime with axum, apart from the timely workers, so
//! that serving never takes a worker's time and a slow client never slows the dataflow. Every
//! response is computed from the [`Telemetry`]'s bounded state (see [`crate::telemetry::live`]):
//! its size does not grow with the event rate.
//!
//! | path | what |
//! |---|---|
//! | `/metrics` | Prometheus text format (the metrics listener) |
//! | `/` , `/app.js`, `/style.css` | the dashboard page, embedded in the binary |
//! | `/api/summary` | watermark, throughput, totals |
//! | `/api/warehouses` | the tracked warehouses |
//! | `/api/windows?warehouse=W[&limit=N]` | the warehouse's last windows, with forecasts, and the `seq` of the last tick they include |
//! | `/api/alerts` | active alerts (expected vs actual) and the recent alert changes |
//! | `/api/events` | server-sent events: a `tick` every [`TICK_EVERY`] with what changed |
//!
//! Both listeners bind loopback addresses unless the caller allows others ([`bind`]).

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::telemetry::live::{LiveAlert, KEPT_WINDOWS};
use crate::telemetry::{Summary, Telemetry};

/// Default address of `/metrics` (process I of a cluster: port 9464 + I).
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";
/// Default address of the dashboard (on by default in the demo).
pub const DEFAULT_DASHBOARD_ADDR: &str = "127.0.0.1:8080";

/// How often the dashboard's event stream sends a tick.
pub const TICK_EVERY: Duration = Duration::from_millis(500);

const INDEX_HTML: &str = include_str!("dashboard/assets/index.html");
const APP_JS: &str = include_str!("dashboard/assets/app.js");
const STYLE_CSS: &str = include_str!("dashboard/assets/style.css");

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is not a loopback address and remote access was not allowed.
    #[error(
        "refusing to serve {what} on {addr}, which is not a loopback address: add --allow-remote \
         to expose it beyond this machine"
    )]
    NotLoopback {
        /// Which server (`--metrics-addr`, `--dashboard`).
        what: &'static str,
        /// The address.
        addr: SocketAddr,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server thread or its runtime could not start.
    #[error("cannot start the HTTP server: {0}")]
    Start(std::io::Error),
}

/// A bound listener, ready for [`start`].
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    /// The bound address (with the port chosen, for port 0).
    pub addr: SocketAddr,
    /// Whether requests may name a non-loopback host (`--allow-remote`).
    allow_remote: bool,
}

/// Binds `addr` for `what` (`--metrics-addr`, `--dashboard`): loopback addresses only, unless
/// `allow_remote`.
pub fn bind(addr: SocketAddr, what: &'static str, allow_remote: bool) -> Result<Bound, ServeError> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(ServeError::NotLoopback { what, addr });
    }
    let listener =
        TcpListener::bind(addr).map_err(|source| ServeError::Bind { what, addr, source })?;
    let bind_error = |source| ServeError::Bind { what, addr, source };
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(Bound {
        listener,
        addr,
        allow_remote,
    })
}

/// The running server; dropping it stops it.
pub struct Server {
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `/metrics` on `metrics` and the dashboard on `dashboard` (either may be absent) until
/// the returned [`Server`] is dropped.
pub fn start(
    telemetry: Arc<Telemetry>,
    metrics: Option<Bound>,
    dashboard: Option<Bound>,
) -> Result<Server, ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Start)?;
    let stop = Arc::new(Notify::new());
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("tidewatch-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let (ticks, _) = watch::channel(Arc::new(Tick::default()));
                let state = AppState {
                    telemetry: Arc::clone(&telemetry),
                    ticks: ticks.clone(),
                };
                let mut servers = tokio::task::JoinSet::new();
                if let Some(bound) = metrics {
                    let router = Router::new()
                        .route("/metrics", get(metrics_page))
                        .with_state(state.clone());
                    servers.spawn(serve(bound, router));
                }
                if let Some(bound) = dashboard {
                    servers.spawn(serve(bound, dashboard_router(state.clone())));
                    servers.spawn(tick_loop(telemetry, ticks));
                }
                tokio::select! {
                    _ = stopped.notified() => {}
                    _ = async { while servers.join_next().await.is_some() {} } => {}
                }
                // Dropping the runtime (after this returns) ends every connection, including
                // open event streams.
            });
        })
        .map_err(ServeError::Start)?;
    Ok(Server {
        stop,
        thread: Some(thread),
    })
}

async fn serve(bound: Bound, router: Router) {
    let addr = bound.addr;
    let router = if bound.allow_remote {
        router
    } else {
        router.layer(axum::middleware::from_fn(loopback_host_only))
    };
    let listener = match tokio::net::TcpListener::from_std(bound.listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%addr, %error, "cannot serve");
            return;
        }
    };
    if let Err(error) = axum::serve(listener, router).await {
        tracing::error!(%addr, %error, "the HTTP server stopped");
    }
}

/// Refuses a request whose `Host` is not a loopback name or address. A server bound to
/// loopback is reachable only from this machine, but a web page the user opens elsewhere could
/// point its own host name at 127.0.0.1 (DNS rebinding) and read the API as same-origin: its
/// requests then carry that host name, and are refused here.
async fn loopback_host_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("");
    if host_is_loopback(host) {
        next.run(request).await
    } else {
        error(
            StatusCode::FORBIDDEN,
            "only loopback host names are served (start tidewatch with --allow-remote to serve others)",
        )
    }
}

/// Whether a `Host` header (`name[:port]`) names this machine's loopback.
fn host_is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone)]
struct AppState {
    telemetry: Arc<Telemetry>,
    ticks: watch::Sender<Arc<Tick>>,
}

/// The dashboard's routes (see the module documentation).
fn dashboard_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/api/summary", get(summary))
        .route("/api/warehouses", get(warehouses))
        .route("/api/windows", get(windows))
        .route("/api/alerts", get(alerts))
        .route("/api/events", get(events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render_metrics(),
    )
        .into_response()
}

async fn summary(State(state): State<AppState>) -> Json<Summary> {
    state.telemetry.refresh();
    Json(state.telemetry.summary())
}

async fn warehouses(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "warehouses": state.telemetry.live.warehouses() }))
}

#[derive(Deserialize)]
struct WindowsQuery {
    warehouse: Option<String>,
    limit: Option<usize>,
}

async fn windows(
    State(state): State<AppState>,
    query: Result<Query<WindowsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query: use ?warehouse=W[&limit=N]",
        );
    };
    let Some(warehouse) = query.warehouse else {
        return error(StatusCode::BAD_REQUEST, "missing ?warehouse=");
    };
    let limit = query.limit.unwrap_or(KEPT_WINDOWS).min(KEPT_WINDOWS);
    // The last tick sent before the rows are read: the rows hold every change up to it, so a
    // client replays only the ticks after it over them.
    let seq = state.ticks.borrow().seq;
    match state.telemetry.live.windows(&warehouse, limit) {
        Some(rows) => {
            Json(serde_json::json!({ "warehouse": warehouse, "seq": seq, "windows": rows }))
                .into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no windows of warehouse {warehouse:?}"),
        ),
    }
}

#[derive(Serialize)]
struct AlertsBody {
    active: Vec<LiveAlert>,
    recent: Vec<LiveAlert>,
}

async fn alerts(State(state): State<AppState>) -> Json<AlertsBody> {
    state.telemetry.refresh();
    Json(AlertsBody {
        active: state.telemetry.live.active_alerts(),
        recent: state.telemetry.live.recent_alerts(),
    })
}

/// One tick of `/api/events`, serialized once for every client.
#[derive(Default)]
struct Tick {
    seq: u64,
    json: String,
}

#[derive(Serialize)]
struct TickBody<'a> {
    seq: u64,
    summary: Summary,
    alerts: Vec<LiveAlert>,
    windows: &'a std::collections::BTreeMap<String, Vec<crate::telemetry::live::LiveRow>>,
    truncated: &'a [String],
}

fn tick_json(telemetry: &Telemetry, seq: u64, changes: &crate::telemetry::live::Changes) -> String {
    let body = TickBody {
        seq,
        summary: telemetry.summary(),
        alerts: telemetry.live.active_alerts(),
        windows: &changes.windows,
        truncated: &changes.truncated,
    };
    serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
}

/// Builds a tick every [`TICK_EVERY`] from what changed since the last one.
async fn tick_loop(telemetry: Arc<Telemetry>, ticks: watch::Sender<Arc<Tick>>) {
    let mut interval = tokio::time::interval(TICK_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut version = telemetry.live.changes_since(u64::MAX).version;
    let mut seq = 0u64;
    loop {
        interval.tick().await;
        telemetry.refresh();
        let changes = telemetry.live.changes_since(version);
        version = changes.version;
        seq += 1;
        let json = tick_json(&telemetry, seq, &changes);
        ticks.send_replace(Arc::new(Tick { seq, json }));
    }
}

async fn events(State(state): State<AppState>) -> impl IntoResponse {
    let mut receiver = state.ticks.subscribe();
    // The first event comes at once: no windows, the current sequence number.
    let seq = receiver.borrow_and_update().seq;
    state.telemetry.refresh();
    let hello = tick_json(
        &state.telemetry,
        seq,
        &crate::telemetry::live::Changes::default(),
    );
    let clients = state.telemetry.metrics.dashboard_clients.clone();
    clients.inc();
    let guard = ClientGuard(clients);
    let stream = futures_util::stream::unfold(
        (Some(hello), receiver, guard),
        |(hello, mut receiver, guard)| async move {
            let data = match hello {
                Some(hello) => hello,
                None => {
                    receiver.changed().await.ok()?;
                    let tick = Arc::clone(&receiver.borrow_and_update());
                    tick.json.clone()
                }
            };
            let event = Event::default().event("tick").data(data);
            Some((Ok::<_, Infallible>(event), (None, receiver, guard)))
        },
    );
    (
        [(header::CACHE_CONTROL, "no-store")],
        Sse::new(stream).keep_alive(KeepAlive::default()),
    )
}

/// Counts an open event stream until it closes.
struct ClientGuard(prometheus::IntGauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_others_need_permission() {
        for default in [DEFAULT_METRICS_ADDR, DEFAULT_DASHBOARD_ADDR] {
            let addr: SocketAddr = default.parse().expect("a socket address");
            assert!(addr.ip().is_loopback(), "{default}");
        }
        for remote in ["0.0.0.0:0", "[::]:0", "192.0.2.1:9464"] {
            let addr: SocketAddr = remote.parse().expect("a socket address");
            assert!(matches!(
                bind(addr, "--metrics-addr", false),
                Err(ServeError::NotLoopback { .. })
            ));
        }
        let bound = bind(
            "127.0.0.1:0".parse().expect("address"),
            "--dashboard",
            false,
        )
        .expect("loopback binds");
        assert!(bound.addr.ip().is_loopback() && bound.addr.port() != 0);
        let ipv6 = bind("[::1]:0".parse().expect("address"), "--dashboard", false);
        assert!(!matches!(ipv6, Err(ServeError::NotLoopback { .. })));
    }

    #[test]
    fn only_loopback_host_names_pass() {
        for host in [
            "127.0.0.1:8080",
            "localhost:9464",
            "LOCALHOST",
            "[::1]:8080",
            "127.1.2.3",
        ] {
            assert!(host_is_loopback(host), "{host}");
        }
        for host in [
            "",
            "evil.example:8080",
            "192.168.1.5:8080",
            "[2001:db8::1]:80",
            "localhost.evil.example",
        ] {
            assert!(!host_is_loopback(host), "{host}");
        }
    }
}
