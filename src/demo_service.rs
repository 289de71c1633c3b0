//! The demo service: a small, real HTTP (and optional gRPC health) server used as the workload
//! in local deployments, in the bundled demo and in the integration tests (`cutover demo-service`).
//!
//! What it owns: its listening sockets (HTTP on `127.0.0.1:port`, or `--bind`, gRPC health on
//! `127.0.0.1:grpc_port`), its own request metrics, and a tiny lock-free PRNG used for injected
//! errors and latency jitter.
//!
//! What it must not touch: the state store, the engine, the local host or any other process. It
//! is deliberately self-contained so that it behaves like a third-party service that cutover
//! deploys, and it never panics on anything a client can send.
//!
//! Endpoints (every response carries `x-version: VERSION`):
//! - `/` (any method): sleeps `latency_ms` plus a uniform jitter in `[0, jitter_ms]`, then answers
//!   `200 hello from VERSION\n`, or `500 error from VERSION\n` with probability `error_rate`.
//! - `/health`: `200 ok`, or `503 unhealthy` when `fail_health` is set.
//! - `/metrics`: Prometheus text exposition (`demo_requests_total{version,code}` and the histogram
//!   `demo_request_duration_seconds{version}`); probes and scrapes (`/health`, `/metrics`) are not
//!   counted, every other request is (including 404s).
//! - anything else: `404 not found\n`.
//!
//! Request bodies of any size are accepted and drained without being buffered.
//!
//! `crash_after_s`: after that many seconds [`serve`] returns [`DemoError::Crash`]; the command
//! line (`cutover demo-service`) turns that into process exit status 1, simulating a crash.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The response header naming the version that answered.
pub const VERSION_HEADER: &str = "x-version";

/// How long a graceful shutdown waits for open connections and in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Upper bounds (seconds) of the latency histogram buckets; `+Inf` is implicit.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How the demo service behaves. Mirrors the flags of `cutover demo-service`.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// HTTP port on 127.0.0.1 (0 picks a free port; see [`DemoServer::http_addr`]).
    pub port: u16,
    /// gRPC health port on 127.0.0.1, if any (0 picks a free port).
    pub grpc_port: Option<u16>,
    /// Reported in `x-version`, in bodies and in metric labels. Must be a valid header value.
    pub version: String,
    /// Probability in `[0, 1]` that `/` answers 500.
    pub error_rate: f64,
    /// Fixed delay before `/` answers.
    pub latency_ms: u64,
    /// Extra uniform delay in `[0, jitter_ms]` before `/` answers.
    pub jitter_ms: u64,
    /// `/health` answers 503 and gRPC health reports NOT_SERVING.
    pub fail_health: bool,
    /// Stop with [`DemoError::Crash`] after this many seconds.
    pub crash_after_s: Option<u64>,
    /// The address both ports listen on: 127.0.0.1, or 0.0.0.0 in a container (a pod's probes
    /// and Services connect to the pod's address).
    pub bind: Ipv4Addr,
}

impl DemoOptions {
    /// Healthy, fast, error-free options for `version` on `port`.
    pub fn new(port: u16, version: impl Into<String>) -> Self {
        DemoOptions {
            port,
            grpc_port: None,
            version: version.into(),
            error_rate: 0.0,
            latency_ms: 0,
            jitter_ms: 0,
            fail_health: false,
            crash_after_s: None,
            bind: Ipv4Addr::LOCALHOST,
        }
    }
}

/// Why the demo service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A flag value is out of range (exit code 2 on the command line).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The gRPC health server failed.
    #[error("gRPC health server: {0}")]
    Grpc(String),
    /// `crash_after_s` elapsed: the process must exit with status 1.
    #[error("crashing on purpose (--crash-after-s)")]
    Crash,
}

/// A bound, not yet running demo service. [`serve`] is `bind` + `run`; use this type directly
/// to bind port 0 and learn the ports before serving.
#[derive(Debug)]
pub struct DemoServer {
    opts: DemoOptions,
    version_header: HeaderValue,
    http: TcpListener,
    http_addr: SocketAddr,
    grpc: Option<(TcpListener, SocketAddr)>,
}

/// Binds and runs the demo service until `shutdown` completes (returns `Ok(())` after a graceful
/// stop of at most 5 s) or `crash_after_s` elapses (returns `Err(DemoError::Crash)` at once).
pub async fn serve(
    opts: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    DemoServer::bind(opts).await?.run(shutdown).await
}

fn validate(opts: &DemoOptions) -> Result<HeaderValue, DemoError> {
    if !(opts.error_rate.is_finite() && (0.0..=1.0).contains(&opts.error_rate)) {
        return Err(DemoError::InvalidOption(format!(
            "error rate must be between 0 and 1, got {}",
            opts.error_rate
        )));
    }
    if opts.version.trim().is_empty() {
        return Err(DemoError::InvalidOption("version must not be empty".into()));
    }
    HeaderValue::from_str(&opts.version).map_err(|_| {
        DemoError::InvalidOption(format!(
            "version `{}` cannot be sent in an HTTP header (use visible ASCII)",
            opts.version.escape_debug()
        ))
    })
}

async fn bind_on(ip: Ipv4Addr, port: u16) -> Result<(TcpListener, SocketAddr), DemoError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| DemoError::Bind { addr, source })?;
    Ok((listener, local))
}

impl DemoServer {
    /// Validates the options and binds the ports (nothing is served until [`DemoServer::run`]).
    pub async fn bind(opts: DemoOptions) -> Result<DemoServer, DemoError> {
        let version_header = validate(&opts)?;
        let (http, http_addr) = bind_on(opts.bind, opts.port).await?;
        let grpc = match opts.grpc_port {
            Some(port) => Some(bind_on(opts.bind, port).await?),
            None => None,
        };
        Ok(DemoServer {
            opts,
            version_header,
            http,
            http_addr,
            grpc,
        })
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound gRPC health address, when `grpc_port` was given.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|(_, addr)| *addr)
    }

    /// Serves until `shutdown` completes or `crash_after_s` elapses; see [`serve`].
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DemoError> {
        let DemoServer {
            opts,
            version_header,
            http,
            grpc,
            ..
        } = self;
        let state = Arc::new(State {
            version_header,
            error_rate: opts.error_rate,
            latency: Duration::from_millis(opts.latency_ms),
            jitter_ms: opts.jitter_ms,
            fail_health: opts.fail_health,
            rng: SplitMix::from_entropy(),
            metrics: Mutex::new(Metrics::default()),
            version: opts.version.clone(),
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut grpc_task = match grpc {
            Some((listener, _)) => Some(tokio::spawn(serve_grpc(
                listener,
                opts.fail_health,
                stopped(stop_rx),
            ))),
            None => None,
        };

        let graceful = GracefulShutdown::new();
        let mut conns: JoinSet<()> = JoinSet::new();
        let crash = async {
            match opts.crash_after_s {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => std::future::pending().await,
            }
        };
        let grpc_failed = async {
            match grpc_task.as_mut() {
                Some(handle) => match handle.await {
                    Ok(Ok(())) => DemoError::Grpc("stopped unexpectedly".into()),
                    Ok(Err(e)) => e,
                    Err(e) => DemoError::Grpc(format!("task failed: {e}")),
                },
                None => std::future::pending().await,
            }
        };
        let accept = accept_loop(&http, &state, &graceful, &mut conns);

        let outcome = tokio::select! {
            _ = shutdown => Ok(()),
            _ = crash => Err(DemoError::Crash),
            e = grpc_failed => Err(e),
            never = accept => match never {},
        };
        drop(http);
        let _ = stop_tx.send(true);

        if outcome.is_ok() {
            // Graceful: in-flight requests finish, idle keep-alive connections are closed.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
            if let Some(handle) = grpc_task.as_mut() {
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, handle).await;
            }
        }
        if let Some(handle) = grpc_task {
            handle.abort();
        }
        conns.abort_all();
        outcome
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // Resolves when `true` is sent or the sender is dropped.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn serve_grpc(
    listener: TcpListener,
    fail_health: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    let (reporter, service) = tonic_health::server::health_reporter();
    let status = if fail_health {
        tonic_health::ServingStatus::NotServing
    } else {
        tonic_health::ServingStatus::Serving
    };
    reporter.set_service_status("", status).await;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(service, incoming, shutdown)
        .await
        .map_err(|e| DemoError::Grpc(e.to_string()))
}

async fn accept_loop(
    listener: &TcpListener,
    state: &Arc<State>,
    graceful: &GracefulShutdown,
    conns: &mut JoinSet<()>,
) -> Infallible {
    loop {
        // Reap finished connections so the set stays as small as the number of open ones.
        while conns.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Typically EMFILE or a connection reset before accept: back off and go on.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(state);
        let service = service_fn(move |req| handle(req, Arc::clone(&state)));
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        conns.spawn(async move {
            // A client that goes away mid-request is not our problem.
            let _ = conn.await;
        });
    }
}

struct State {
    version: String,
    version_header: HeaderValue,
    error_rate: f64,
    latency: Duration,
    jitter_ms: u64,
    fail_health: bool,
    rng: SplitMix,
    metrics: Mutex<Metrics>,
}

impl State {
    fn metrics(&self) -> std::sync::MutexGuard<'_, Metrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let authorized = req.headers().contains_key(hyper::header::AUTHORIZATION);
    // Drain the body frame by frame so uploads of any size are accepted without buffering.
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }

    let (status, text, counted): (StatusCode, Bytes, bool) = match path.as_str() {
        "/" => {
            let mut delay = state.latency;
            if state.jitter_ms > 0 {
                let jitter = state.rng.next_f64() * state.jitter_ms as f64 / 1000.0;
                delay += Duration::from_secs_f64(jitter);
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if state.error_rate > 0.0 && state.rng.next_f64() < state.error_rate {
                let body = format!("error from {}\n", state.version);
                (StatusCode::INTERNAL_SERVER_ERROR, body.into(), true)
            } else {
                let body = format!("hello from {}\n", state.version);
                (StatusCode::OK, body.into(), true)
            }
        }
        "/health" => {
            if state.fail_health {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(b"unhealthy"),
                    false,
                )
            } else {
                (StatusCode::OK, Bytes::from_static(b"ok"), false)
            }
        }
        "/metrics" => {
            let text = state.metrics().render(&state.version);
            let mut res = respond(&state, StatusCode::OK, text.into());
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(res);
        }
        // A protected area, so security checks have something to find.
        p if p == "/admin" || p.starts_with("/admin/") => {
            if authorized {
                (StatusCode::OK, Bytes::from_static(b"admin\n"), true)
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    Bytes::from_static(b"authentication required\n"),
                    true,
                )
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"not found\n"),
            true,
        ),
    };
    if counted {
        state.metrics().record(status.as_u16(), started.elapsed());
    }
    Ok(respond(&state, status, text))
}

fn respond(state: &State, status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        HeaderName::from_static(VERSION_HEADER),
        state.version_header.clone(),
    );
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Request counters by status code and one latency histogram (the process has one version).
#[derive(Debug, Default)]
struct Metrics {
    by_code: std::collections::BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

impl Metrics {
    fn record(&mut self, code: u16, elapsed: Duration) {
        *self.by_code.entry(code).or_insert(0) += 1;
        let secs = elapsed.as_secs_f64();
        for (bucket, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if secs <= le {
                *bucket += 1;
            }
        }
        self.sum_seconds += secs;
        self.count += 1;
    }

    fn render(&self, version: &str) -> String {
        let v = escape_label(version);
        let mut out = String::new();
        out.push_str("# HELP demo_requests_total Requests served, by version and status code.\n");
        out.push_str("# TYPE demo_requests_total counter\n");
        for (code, n) in &self.by_code {
            let _ = writeln!(
                out,
                "demo_requests_total{{version=\"{v}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP demo_request_duration_seconds Time to answer a request, by version.\n",
        );
        out.push_str("# TYPE demo_request_duration_seconds histogram\n");
        for (n, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "demo_request_duration_seconds_bucket{{version=\"{v}\",le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_sum{{version=\"{v}\"}} {}",
            self.sum_seconds
        );
        let _ = writeln!(
            out,
            "demo_request_duration_seconds_count{{version=\"{v}\"}} {}",
            self.count
        );
        out
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// SplitMix64 over an atomic counter: lock-free, good enough for injected faults, not for secrets.
#[derive(Debug)]
struct SplitMix {
    state: AtomicU64,
}

impl SplitMix {
    fn from_entropy() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let pid = u64::from(std::process::id());
        SplitMix::with_seed(nanos ^ pid.rotate_left(32))
    }

    fn with_seed(seed: u64) -> Self {
        SplitMix {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tonic_health::pb::health_check_response::ServingStatus as PbStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

    fn client() -> TestClient {
        Client::builder(TokioExecutor::new()).build_http()
    }

    /// Starts a demo service on free ports; the returned sender stops it.
    async fn start(
        mut opts: DemoOptions,
    ) -> (
        SocketAddr,
        Option<SocketAddr>,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), DemoError>>,
    ) {
        opts.port = 0;
        let server = DemoServer::bind(opts).await.expect("bind");
        let http = server.http_addr();
        let grpc = server.grpc_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        (http, grpc, tx, task)
    }

    async fn get(
        client: &TestClient,
        addr: SocketAddr,
        path: &str,
    ) -> (u16, Option<String>, String) {
        let uri: hyper::Uri = format!("http://{addr}{path}").parse().expect("uri");
        let res = client.get(uri).await.expect("request");
        let status = res.status().as_u16();
        let version = res
            .headers()
            .get(VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, version, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn answers_root_health_metrics_and_404_with_version_header() {
        let (addr, _, stop, task) = start(DemoOptions::new(0, "v1")).await;
        let c = client();
        assert_eq!(
            get(&c, addr, "/").await,
            (200, Some("v1".into()), "hello from v1\n".into())
        );
        assert_eq!(
            get(&c, addr, "/health").await,
            (200, Some("v1".into()), "ok".into())
        );
        let (status, version, _) = get(&c, addr, "/nope").await;
        assert_eq!((status, version.as_deref()), (404, Some("v1")));
        for _ in 0..3 {
            get(&c, addr, "/").await;
        }
        let (status, version, text) = get(&c, addr, "/metrics").await;
        assert_eq!((status, version.as_deref()), (200, Some("v1")));
        assert!(
            text.contains("demo_requests_total{version=\"v1\",code=\"200\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("demo_requests_total{version=\"v1\",code=\"404\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE demo_request_duration_seconds histogram"));
        assert!(
            text.contains("demo_request_duration_seconds_bucket{version=\"v1\",le=\"+Inf\"} 5\n")
        );
        assert!(text.contains("demo_request_duration_seconds_count{version=\"v1\"} 5\n"));
        assert!(text.contains("demo_request_duration_seconds_sum{version=\"v1\"} "));
        let _ = stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(3), task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    }

    #[tokio::test]
    async fn binds_every_address_when_asked() {
        // In a container the pod's probes and Services connect to the pod's address.
        let mut opts = DemoOptions::new(0, "v1");
        opts.grpc_port = Some(0);
        opts.bind = Ipv4Addr::UNSPECIFIED;
        let server = DemoServer::bind(opts).await.unwrap();
        assert_eq!(server.http_addr().ip(), Ipv4Addr::UNSPECIFIED);
        let loopback = DemoServer::bind(DemoOptions::new(0, "v1")).await.unwrap();
        assert_eq!(loopback.http_addr().ip(), Ipv4Addr::LOCALHOST);
    }

    #[tokio::test]
    async fn fail_health_answers_503() {
        let mut opts = DemoOptions::new(0, "bad");
        opts.fail_health = true;
        let (addr, _, _stop, _task) = start(opts).await;
        let (status, version, _) = get(&client(), addr, "/health").await;
        assert_eq!((status, version.as_deref()), (503, Some("bad")));
    }

    #[tokio::test]
    async fn error_rate_one_always_fails() {
        let mut opts = DemoOptions::new(0, "v2");
        opts.error_rate = 1.0;
        let (addr, _, _stop, _task) = start(opts).await;
        let c = client();
        for _ in 0..20 {
            let (status, version, body) = get(&c, addr, "/").await;
            assert_eq!((status, version.as_deref()), (500, Some("v2")));
            assert_eq!(body, "error from v2\n");
        }
        let (_, _, text) = get(&c, addr, "/metrics").await;
        assert!(text.contains("demo_requests_total{version=\"v2\",code=\"500\"} 20\n"));
    }

    #[tokio::test]
    async fn error_rate_is_roughly_honoured() {
        let mut opts = DemoOptions::new(0, "v3");
        opts.error_rate = 0.3;
        let (addr, _, _stop, _task) = start(opts).await;
        let c = client();
        let n = 1000;
        let mut errors = 0;
        for _ in 0..n {
            if get(&c, addr, "/").await.0 == 500 {
                errors += 1;
            }
        }
        let share = errors as f64 / n as f64;
        // sd = sqrt(0.3 * 0.7 / 1000) ~ 0.0145; 0.24..0.36 is beyond 4 sd.
        assert!((0.24..=0.36).contains(&share), "error share {share}");
    }

    #[tokio::test]
    async fn latency_and_jitter_delay_answers() {
        let mut opts = DemoOptions::new(0, "slow");
        opts.latency_ms = 100;
        opts.jitter_ms = 50;
        let (addr, _, _stop, _task) = start(opts).await;
        let c = client();
        for _ in 0..3 {
            let t = Instant::now();
            assert_eq!(get(&c, addr, "/").await.0, 200);
            let ms = t.elapsed().as_millis();
            assert!((100..1000).contains(&ms), "took {ms} ms");
        }
        // Probes are not delayed.
        let t = Instant::now();
        get(&c, addr, "/health").await;
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn accepts_and_drains_large_bodies() {
        let (addr, _, _stop, _task) = start(DemoOptions::new(0, "v1")).await;
        let body = Bytes::from(vec![b'x'; 4 << 20]);
        let c: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        for _ in 0..2 {
            let req = Request::post(format!("http://{addr}/"))
                .body(Full::new(body.clone()))
                .expect("request");
            let res = c.request(req).await.expect("response");
            assert_eq!(res.status(), StatusCode::OK);
            let _ = res.into_body().collect().await;
        }
    }

    async fn grpc_status(addr: SocketAddr) -> PbStatus {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .expect("connect");
        let mut client = HealthClient::new(channel);
        let res = client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("check");
        res.into_inner().status()
    }

    #[tokio::test]
    async fn grpc_health_serving() {
        let mut opts = DemoOptions::new(0, "v1");
        opts.grpc_port = Some(0);
        let (_, grpc, stop, task) = start(opts).await;
        let grpc = grpc.expect("grpc addr");
        assert_eq!(grpc_status(grpc).await, PbStatus::Serving);
        let _ = stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(4), task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    }

    #[tokio::test]
    async fn grpc_health_not_serving_when_failing() {
        let mut opts = DemoOptions::new(0, "v1");
        opts.grpc_port = Some(0);
        opts.fail_health = true;
        let (_, grpc, _stop, _task) = start(opts).await;
        assert_eq!(
            grpc_status(grpc.expect("grpc addr")).await,
            PbStatus::NotServing
        );
    }

    #[tokio::test]
    async fn serve_binds_the_requested_port() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(DemoOptions::new(port, "v9"), async move {
            let _ = rx.await;
        }));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let c = client();
        let mut answered = None;
        for _ in 0..50 {
            let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
            if let Ok(res) = c.get(uri).await {
                answered = Some(res.status().as_u16());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(answered, Some(200));
        let _ = tx.send(());
        assert!(matches!(
            tokio::time::timeout(Duration::from_secs(3), task).await,
            Ok(Ok(Ok(())))
        ));
    }

    #[tokio::test]
    async fn crash_after_returns_crash() {
        let mut opts = DemoOptions::new(0, "v1");
        opts.crash_after_s = Some(1);
        let t = Instant::now();
        let res = serve(opts, std::future::pending()).await;
        assert!(matches!(res, Err(DemoError::Crash)), "{res:?}");
        assert!(t.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn rejects_bad_options_and_busy_ports() {
        let mut opts = DemoOptions::new(0, "v1");
        opts.error_rate = 1.5;
        assert!(matches!(
            DemoServer::bind(opts).await,
            Err(DemoError::InvalidOption(_))
        ));
        let mut opts = DemoOptions::new(0, "v1");
        opts.error_rate = f64::NAN;
        assert!(matches!(
            DemoServer::bind(opts).await,
            Err(DemoError::InvalidOption(_))
        ));
        assert!(matches!(
            DemoServer::bind(DemoOptions::new(0, "bad\nversion")).await,
            Err(DemoError::InvalidOption(_))
        ));
        let held = DemoServer::bind(DemoOptions::new(0, "v1"))
            .await
            .expect("bind");
        let busy = DemoOptions::new(held.http_addr().port(), "v1");
        assert!(matches!(
            DemoServer::bind(busy).await,
            Err(DemoError::Bind { .. })
        ));
    }

    #[test]
    fn prng_is_uniform_enough() {
        let rng = SplitMix::with_seed(42);
        let n = 100_000;
        let mut below = 0;
        for _ in 0..n {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
            if x < 0.3 {
                below += 1;
            }
        }
        let share = below as f64 / n as f64;
        assert!((0.29..0.31).contains(&share), "{share}");
    }

    #[test]
    fn metrics_render_escapes_labels_and_accumulates_buckets() {
        let mut m = Metrics::default();
        m.record(200, Duration::from_millis(3));
        m.record(500, Duration::from_millis(300));
        let text = m.render("a\"b");
        assert!(text.contains("demo_requests_total{version=\"a\\\"b\",code=\"500\"} 1\n"));
        assert!(text.contains("le=\"0.005\"} 1\n"));
        assert!(text.contains("le=\"0.5\"} 2\n"));
        assert!(text.contains("le=\"+Inf\"} 2\n"));
    }
}
