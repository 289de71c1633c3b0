//! Prometheus metrics of every deployment in the store and of the local host (its routers and
//! instances), in the OpenMetrics text format, over HTTP (`GET /metrics`). `cutover exporter
//! --listen ADDR` serves them on their own.
//!
//! Owns: the registry, a scrape (bring the series up to date, encode them) and the HTTP server.
//! Must not touch: the engine, or anything in the store (it only reads).

pub mod host;
pub mod rollouts;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::local::client::HostClient;
use crate::local::proto::HostStatus;
use crate::store::{Store, StoreError};

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("the state store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How long a scrape waits for the host's status.
const HOST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a connection may take to send a request's headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The registry and what fills it.
pub struct Exporter {
    store: Store,
    /// The local host to ask for its status at each scrape, if any.
    host: Option<HostClient>,
    host_series: host::HostSeries,
    inner: Mutex<Inner>,
}

struct Inner {
    registry: Registry,
    rollouts: rollouts::Rollouts,
    /// The last scrape's length: the next one's buffer is sized from it (one allocation, not
    /// a doubling series).
    last_len: usize,
}

impl Exporter {
    /// An exporter of `store`, asking `host` (when given) for the local host's series.
    pub fn new(store: Store, host: Option<HostClient>) -> Exporter {
        let mut registry = Registry::default();
        let rollouts = rollouts::Rollouts::new(&mut registry);
        let host_series = host::HostSeries::default();
        registry.register_collector(Box::new(host_series.clone()));
        Exporter {
            store,
            host,
            host_series,
            inner: Mutex::new(Inner {
                registry,
                rollouts,
                last_len: 16 * 1024,
            }),
        }
    }

    /// The host's status, when a host answers (it is never started for this).
    pub async fn host_status(&self) -> Option<HostStatus> {
        let client = self.host.as_ref()?;
        if !client.ping().await {
            return None;
        }
        tokio::time::timeout(HOST_TIMEOUT, client.status())
            .await
            .ok()?
            .ok()
    }

    /// Every series, up to date, with `host` as the local host's status, as OpenMetrics text.
    /// Blocking (it reads SQLite): call it off the runtime's threads.
    pub fn scrape(&self, host: Option<HostStatus>) -> Result<String, ExporterError> {
        // A scrape that panicked half way left counters that are still counters.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock: two scrapes at once each encode their own host status.
        self.host_series.set(host);
        let Inner {
            registry,
            rollouts,
            last_len,
        } = &mut *inner;
        rollouts.update(&self.store, chrono::Utc::now())?;
        let mut out = String::with_capacity(*last_len + *last_len / 8);
        prometheus_client::encoding::text::encode(&mut out, registry)?;
        *last_len = out.len();
        Ok(out)
    }
}

/// Bind `addr` (port 0 picks one): the listener to [`serve`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ExporterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ExporterError::Listen { addr, source })
}

/// Serve `GET /metrics` on `listener` until `stop` turns true. Each connection is a task of its
/// own that ends with its client or at stop.
pub async fn serve(
    exporter: Arc<Exporter>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                };
                let exporter = Arc::clone(&exporter);
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let exporter = Arc::clone(&exporter);
                        async move { Ok::<_, Infallible>(answer(exporter, req).await) }
                    });
                    // A client that opens a connection and sends nothing (or half a request)
                    // is dropped after HEADER_TIMEOUT, not held open.
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn answer(exporter: Arc<Exporter>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let host = exporter.host_status().await;
            match tokio::task::spawn_blocking(move || exporter.scrape(host)).await {
                Ok(Ok(text)) => reply(StatusCode::OK, CONTENT_TYPE, text),
                Ok(Err(e)) => {
                    tracing::warn!("scrape failed: {e}");
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        format!("{e}\n"),
                    )
                }
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("scrape did not finish: {e}\n"),
                ),
            }
        }
        (&Method::GET, "/") => reply(
            StatusCode::OK,
            "text/plain",
            "cutover exporter: metrics at /metrics\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
