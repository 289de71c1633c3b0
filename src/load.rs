//! An open-loop HTTP load generator (`cutover load`), used by the demo and the integration tests
//! to drive traffic through the local router and to measure what comes back.
//!
//! What it owns: one HTTP/1 client with a keep-alive pool, the request schedule, and the
//! statistics of one run (counts, a latency histogram from `crate::latency`, counts per
//! `x-version`).
//!
//! What it must not touch: the state store, the engine or the local host; it only sends requests.
//!
//! Open loop: request `i` is due at `start + i / rps` whatever happened to earlier requests (late
//! requests are sent at once, as a burst, to catch up). Concurrency is bounded: a request due
//! while `concurrency` requests are in flight is not sent and counts as `dropped`, so a slow
//! target never makes the generator queue without bound. `sent + dropped` is the number of
//! requests scheduled, `ok + errors + transport_errors == sent` once the run is over.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::latency::{LatencyHistogram, Precision};

/// Default bound on requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Default per-request timeout (connect, response and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The response header read for the per-version counts.
pub const VERSION_HEADER: &str = "x-version";

/// What to load and how hard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// `http://HOST:PORT/path` (plain HTTP only).
    pub target: String,
    /// Requests per second to schedule (> 0).
    pub rps: u32,
    /// How long to schedule requests for (> 0).
    pub duration: Duration,
    /// Bound on requests in flight (> 0); see [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// Per-request timeout (> 0); see [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl LoadOptions {
    /// Options with the default concurrency and timeout.
    pub fn new(target: impl Into<String>, rps: u32, duration: Duration) -> Self {
        LoadOptions {
            target: target.into(),
            rps,
            duration,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why a run could not start (all of them are usage errors: exit code 2 on the command line).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target is not an `http://host:port/...` URL.
    #[error("invalid target `{target}`: {reason}")]
    InvalidTarget { target: String, reason: String },
    /// A numeric option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// One finished request, for time series (shares per version per window and the like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the request was sent, since the start of the run (it completed at `at + latency`).
    pub at: Duration,
    /// The `x-version` response header, if there was a response carrying one.
    pub version: Option<String>,
    /// The HTTP status; `None` for a transport error (connect failure, reset, timeout).
    pub status: Option<u16>,
    /// Time from sending to the end of the response body, or to the transport error.
    pub latency: Duration,
}

/// Latency percentiles in milliseconds over requests that got a response (nearest rank; exact
/// below 0.256 ms, above that at most 0.8% over the true value and never under it; `max` is
/// exact). All zero when no request got a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The outcome of a run. Serialises as one JSON object (`cutover load --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub target: String,
    /// The requested rate.
    pub rps: u32,
    /// Requests sent (scheduled and not dropped).
    pub sent: u64,
    /// Responses with status 1xx-3xx.
    pub ok: u64,
    /// Responses with status 4xx/5xx.
    pub errors: u64,
    /// Requests without a response: connect failures, resets, timeouts.
    pub transport_errors: u64,
    /// Requests not sent because `concurrency` requests were in flight.
    pub dropped: u64,
    /// Wall time from the first request to the end of the last one.
    pub duration_ms: u64,
    /// `sent` per second of `duration_ms`.
    pub achieved_rps: f64,
    pub latency_ms: LatencySummary,
    /// Responses per `x-version` header value (`"none"` when absent).
    pub by_version: BTreeMap<String, u64>,
    /// Responses per status code (`"200"`, `"503"`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// The last transport error, to explain `transport_errors`.
    pub last_transport_error: Option<String>,
}

impl LoadReport {
    /// Human-readable summary: totals, errors, latency percentiles, counts per `x-version`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let secs = self.duration_ms as f64 / 1000.0;
        let _ = writeln!(out, "target     {}", self.target);
        let _ = writeln!(
            out,
            "requests   {} sent in {secs:.2}s ({:.1}/s achieved, {}/s requested), {} dropped",
            self.sent, self.achieved_rps, self.rps, self.dropped
        );
        let _ = writeln!(
            out,
            "outcomes   {} ok, {} errors (4xx/5xx), {} transport errors",
            self.ok, self.errors, self.transport_errors
        );
        if let Some(e) = &self.last_transport_error {
            let _ = writeln!(out, "           last transport error: {e}");
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        );
        if !self.by_status.is_empty() {
            let codes: Vec<String> = self
                .by_status
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            let _ = writeln!(out, "status     {}", codes.join(", "));
        }
        let answered: u64 = self.by_version.values().sum();
        if answered > 0 {
            let _ = writeln!(out, "x-version");
            let width = self.by_version.keys().map(|v| v.len()).max().unwrap_or(0);
            for (version, n) in &self.by_version {
                let share = 100.0 * *n as f64 / answered as f64;
                let _ = writeln!(out, "  {version:<width$}  {n:>8}  {share:5.1}%");
            }
        }
        out
    }
}

/// Runs the load and returns the report.
pub async fn run(opts: LoadOptions) -> Result<LoadReport, LoadError> {
    run_until(opts, |_| {}, std::future::pending()).await
}

/// Like [`run`], calling `on_response` for every finished request (responses and transport
/// errors, not dropped ones), from the task that made the request.
pub async fn run_with_observer(
    opts: LoadOptions,
    on_response: impl Fn(Sample) + Send + Sync + 'static,
) -> Result<LoadReport, LoadError> {
    run_until(opts, on_response, std::future::pending()).await
}

/// Like [`run_with_observer`], but stops scheduling early when `stop` completes (requests in
/// flight still finish and are reported). For continuous background load, pass a long duration.
pub async fn run_until(
    opts: LoadOptions,
    on_response: impl Fn(Sample) + Send + Sync + 'static,
    stop: impl Future<Output = ()>,
) -> Result<LoadReport, LoadError> {
    let uri = parse_target(&opts.target)?;
    if opts.rps == 0 {
        return Err(LoadError::InvalidOption("rps must be at least 1".into()));
    }
    if opts.duration.is_zero() {
        return Err(LoadError::InvalidOption("duration must be positive".into()));
    }
    if opts.concurrency == 0 {
        return Err(LoadError::InvalidOption(
            "concurrency must be at least 1".into(),
        ));
    }
    if opts.timeout.is_zero() {
        return Err(LoadError::InvalidOption("timeout must be positive".into()));
    }

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(opts.timeout));
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(opts.concurrency)
        .build(connector);

    // Requests are due at i / rps for every i with i / rps < duration.
    let total = (opts.duration.as_nanos() * u128::from(opts.rps)).div_ceil(1_000_000_000);
    let total = u64::try_from(total).unwrap_or(u64::MAX);
    let interval_nanos = 1_000_000_000u128;
    let rps = u128::from(opts.rps);

    let stats = Arc::new(Mutex::new(Stats::default()));
    let observer = Arc::new(on_response);
    let permits = Arc::new(Semaphore::new(opts.concurrency));
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut sent = 0u64;
    let mut dropped = 0u64;
    let start = Instant::now();
    let start_tokio = tokio::time::Instant::from_std(start);

    tokio::pin!(stop);
    for i in 0..total {
        let offset = Duration::from_nanos(
            u64::try_from(u128::from(i) * interval_nanos / rps).unwrap_or(u64::MAX),
        );
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(start_tokio + offset) => {}
        }
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        sent += 1;
        let client = client.clone();
        let uri = uri.clone();
        let stats = Arc::clone(&stats);
        let observer = Arc::clone(&observer);
        let timeout = opts.timeout;
        in_flight.spawn(async move {
            let sent_at = Instant::now();
            let outcome = tokio::time::timeout(timeout, one_request(&client, uri)).await;
            let latency = sent_at.elapsed();
            drop(permit);
            let sample = match outcome {
                Ok(Ok((status, version))) => Sample {
                    at: sent_at.duration_since(start),
                    version,
                    status: Some(status),
                    latency,
                },
                Ok(Err(e)) => {
                    lock(&stats).last_transport_error = Some(e);
                    transport_sample(sent_at, start, latency)
                }
                Err(_) => {
                    lock(&stats).last_transport_error =
                        Some(format!("timed out after {} ms", timeout.as_millis()));
                    transport_sample(sent_at, start, latency)
                }
            };
            lock(&stats).record(&sample);
            observer(sample);
        });
    }
    // Every request is bounded by its timeout, so this ends.
    while in_flight.join_next().await.is_some() {}
    let elapsed = start.elapsed();

    let stats = std::mem::take(&mut *lock(&stats));
    let secs = elapsed.as_secs_f64();
    Ok(LoadReport {
        target: opts.target,
        rps: opts.rps,
        sent,
        ok: stats.ok,
        errors: stats.errors,
        transport_errors: stats.transport_errors,
        dropped,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        achieved_rps: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
        latency_ms: summary(&stats.latency),
        by_version: stats.by_version,
        by_status: stats.by_status,
        last_transport_error: stats.last_transport_error,
    })
}

fn transport_sample(sent_at: Instant, start: Instant, latency: Duration) -> Sample {
    Sample {
        at: sent_at.duration_since(start),
        version: None,
        status: None,
        latency,
    }
}

fn lock(stats: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse_target(target: &str) -> Result<Uri, LoadError> {
    let invalid = |reason: &str| LoadError::InvalidTarget {
        target: target.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = target
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(invalid(&format!(
                "scheme `{other}` is not supported; use http://"
            )))
        }
        None => return Err(invalid("expected http://HOST:PORT/PATH")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host"));
    }
    Ok(uri)
}

/// Sends one GET and drains the body; returns the status and the `x-version` header.
async fn one_request(
    client: &Client<HttpConnector, Empty<Bytes>>,
    uri: Uri,
) -> Result<(u16, Option<String>), String> {
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = uri;
    req.headers_mut()
        .insert(USER_AGENT, HeaderValue::from_static("cutover-load"));
    let res = client.request(req).await.map_err(|e| describe(&e))?;
    let status = res.status().as_u16();
    let version = res
        .headers()
        .get(VERSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut body = res.into_body();
    while let Some(frame) = body.frame().await {
        frame.map_err(|e| format!("reading the body: {e}"))?;
    }
    Ok((status, version))
}

/// The error with its causes (hyper's top-level messages alone say little).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

#[derive(Debug)]
struct Stats {
    ok: u64,
    errors: u64,
    transport_errors: u64,
    by_version: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    latency: LatencyHistogram,
    last_transport_error: Option<String>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ok: 0,
            errors: 0,
            transport_errors: 0,
            by_version: BTreeMap::new(),
            by_status: BTreeMap::new(),
            latency: LatencyHistogram::new(Precision::Fine),
            last_transport_error: None,
        }
    }
}

impl Stats {
    fn record(&mut self, sample: &Sample) {
        let Some(status) = sample.status else {
            self.transport_errors += 1;
            return;
        };
        if status < 400 {
            self.ok += 1;
        } else {
            self.errors += 1;
        }
        let version = sample.version.as_deref().unwrap_or("none");
        *self.by_version.entry(version.to_owned()).or_insert(0) += 1;
        *self.by_status.entry(status.to_string()).or_insert(0) += 1;
        self.latency.record(sample.latency);
    }
}

/// The run's latency percentiles (nearest rank, see [`LatencyHistogram`]), in milliseconds to
/// the microsecond.
fn summary(h: &LatencyHistogram) -> LatencySummary {
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |q: f64| ms(h.quantile_us(q).unwrap_or(0));
    LatencySummary {
        p50: q(0.50),
        p90: q(0.90),
        p99: q(0.99),
        max: ms(h.max_us()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_service::{DemoOptions, DemoServer};
    use std::net::SocketAddr;

    /// Starts a demo service on a free port; it stops when the sender is dropped.
    async fn demo(opts: DemoOptions) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let server = DemoServer::bind(opts).await.expect("bind");
        let addr = server.http_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    #[tokio::test]
    async fn steady_load_against_the_demo_service() {
        let (addr, _stop) = demo(DemoOptions::new(0, "v1")).await;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&samples);
        let opts = LoadOptions::new(format!("http://{addr}/"), 300, Duration::from_secs(2));
        let report = run_with_observer(opts, move |s| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(s)
        })
        .await
        .expect("run");
        assert_eq!(report.sent, 600, "{report:?}");
        assert_eq!(report.dropped, 0);
        assert_eq!(report.ok, 600);
        assert_eq!(report.errors + report.transport_errors, 0);
        assert_eq!(report.by_version, BTreeMap::from([("v1".to_string(), 600)]));
        assert_eq!(report.by_status, BTreeMap::from([("200".to_string(), 600)]));
        assert!(
            (1900..3000).contains(&report.duration_ms),
            "{}",
            report.duration_ms
        );
        assert!(report.achieved_rps > 250.0, "{}", report.achieved_rps);
        assert!(report.latency_ms.p50 > 0.0);
        assert!(report.latency_ms.p50 <= report.latency_ms.p90);
        assert!(report.latency_ms.p90 <= report.latency_ms.p99);
        assert!(report.latency_ms.p99 <= report.latency_ms.max);

        let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(samples.len(), 600);
        // Open loop: about 150 requests in each half second window.
        for w in 0..4u32 {
            let from = Duration::from_millis(500) * w;
            let to = from + Duration::from_millis(500);
            let n = samples.iter().filter(|s| s.at >= from && s.at < to).count();
            assert!((120..=180).contains(&n), "window {w}: {n}");
        }
        assert!(samples
            .iter()
            .all(|s| s.version.as_deref() == Some("v1") && s.status == Some(200)));

        let text = report.render();
        assert!(text.contains("600 sent"), "{text}");
        assert!(text.contains("v1"), "{text}");
        assert!(text.contains("100.0%"), "{text}");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["by_version"]["v1"], 600);
        assert!(json["latency_ms"]["p99"].is_number());
    }

    #[tokio::test]
    async fn counts_errors_by_status() {
        let mut opts = DemoOptions::new(0, "bad");
        opts.error_rate = 1.0;
        let (addr, _stop) = demo(opts).await;
        let opts = LoadOptions::new(format!("http://{addr}/"), 100, Duration::from_millis(500));
        let report = run(opts).await.expect("run");
        assert_eq!(report.sent, 50);
        assert_eq!(report.errors, 50);
        assert_eq!(report.ok, 0);
        assert_eq!(report.by_status.get("500"), Some(&50));
        assert_eq!(report.by_version.get("bad"), Some(&50));
    }

    #[tokio::test]
    async fn drops_when_concurrency_is_exhausted() {
        let mut opts = DemoOptions::new(0, "slow");
        opts.latency_ms = 300;
        let (addr, _stop) = demo(opts).await;
        let mut opts = LoadOptions::new(format!("http://{addr}/"), 50, Duration::from_secs(1));
        opts.concurrency = 1;
        let report = run(opts).await.expect("run");
        assert_eq!(report.sent + report.dropped, 50, "{report:?}");
        assert!(report.sent <= 5, "{report:?}");
        assert!(report.dropped >= 45, "{report:?}");
        assert_eq!(report.ok, report.sent);
        assert!(report.latency_ms.p50 >= 300.0, "{report:?}");
    }

    #[tokio::test]
    async fn transport_errors_and_timeouts() {
        // Nothing listens on a port we just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let opts = LoadOptions::new(
            format!("http://127.0.0.1:{port}/"),
            20,
            Duration::from_millis(250),
        );
        let report = run(opts).await.expect("run");
        assert_eq!(report.sent, 5);
        assert_eq!(report.transport_errors, 5);
        assert!(report.by_version.is_empty());
        assert!(report.last_transport_error.is_some());
        assert!(report.render().contains("5 transport errors"));

        let mut slow = DemoOptions::new(0, "slow");
        slow.latency_ms = 2000;
        let (addr, _stop) = demo(slow).await;
        let mut opts = LoadOptions::new(format!("http://{addr}/"), 10, Duration::from_millis(300));
        opts.timeout = Duration::from_millis(200);
        let report = run(opts).await.expect("run");
        assert_eq!(report.sent, 3);
        assert_eq!(report.transport_errors, 3, "{report:?}");
        assert!(report.duration_ms < 1500, "{report:?}");
        let err = report.last_transport_error.unwrap_or_default();
        assert!(err.contains("timed out"), "{err}");
    }

    #[tokio::test]
    async fn counts_missing_version_as_none_and_stops_early() {
        // A bare server without x-version.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"hi")),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let opts = LoadOptions::new(format!("http://{addr}/x"), 100, Duration::from_secs(60));
        let t = Instant::now();
        let report = run_until(opts, |_| {}, tokio::time::sleep(Duration::from_millis(300)))
            .await
            .expect("run");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!((20..=40).contains(&report.sent), "{report:?}");
        assert_eq!(report.by_version.get("none"), Some(&report.sent));
    }

    #[tokio::test]
    async fn rejects_bad_targets_and_options() {
        for target in [
            "",
            "127.0.0.1:80",
            "https://127.0.0.1/",
            "ftp://x/",
            "http://",
        ] {
            let opts = LoadOptions::new(target, 10, Duration::from_secs(1));
            assert!(
                matches!(run(opts).await, Err(LoadError::InvalidTarget { .. })),
                "{target}"
            );
        }
        let ok = "http://127.0.0.1:1/";
        assert!(matches!(
            run(LoadOptions::new(ok, 0, Duration::from_secs(1))).await,
            Err(LoadError::InvalidOption(_))
        ));
        assert!(matches!(
            run(LoadOptions::new(ok, 1, Duration::ZERO)).await,
            Err(LoadError::InvalidOption(_))
        ));
        let mut opts = LoadOptions::new(ok, 1, Duration::from_secs(1));
        opts.concurrency = 0;
        assert!(matches!(run(opts).await, Err(LoadError::InvalidOption(_))));
    }

    #[test]
    fn latency_summary() {
        let mut h = LatencyHistogram::new(Precision::Fine);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = summary(&h);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.02;
        assert!(close(s.p50, 50.0), "{s:?}");
        assert!(close(s.p90, 90.0), "{s:?}");
        assert!(close(s.p99, 99.0), "{s:?}");
        assert_eq!(s.max, 100.0);
        // Exact for small values, never under the true value.
        let mut h = LatencyHistogram::new(Precision::Fine);
        h.record(Duration::from_micros(7));
        assert_eq!(summary(&h).p50, 0.007);
        assert!(s.p50 >= 50.0 && s.p90 >= 90.0 && s.p99 >= 99.0, "{s:?}");
        assert_eq!(
            summary(&LatencyHistogram::new(Precision::Fine)),
            LatencySummary::default()
        );
        assert_eq!(
            summary(&Stats::default().latency),
            LatencySummary::default()
        );
    }
}
