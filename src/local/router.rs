//! The weighted HTTP reverse proxy in front of one component's revisions.
//!
//! Owns: accepting traffic on the component's `listen` address, splitting it across revisions by
//! weight (smooth weighted round-robin) and across each revision's ready instances (round-robin),
//! forwarding with streamed bodies, and recording per-revision metrics. Must not touch: processes,
//! probes (it reads the readiness flags they set) or the store.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::{Outcome, Window};
use super::upstream::{self, Idle, UpstreamBody};
use crate::provider::RevisionKey;

/// One instance the router may send to.
#[derive(Debug)]
pub struct Backend {
    pub id: String,
    pub addr: SocketAddr,
    /// Set by the probes.
    pub ready: AtomicBool,
    /// Cleared when the instance is being retired: no new requests.
    pub routable: AtomicBool,
    pub inflight: AtomicUsize,
    /// Connections to it the router keeps open between requests.
    pub idle: Arc<Idle>,
}

impl Backend {
    pub fn new(id: String, addr: SocketAddr) -> Backend {
        Backend {
            id,
            addr,
            ready: AtomicBool::new(false),
            routable: AtomicBool::new(true),
            inflight: AtomicUsize::new(0),
            idle: Arc::new(Idle::default()),
        }
    }

    fn usable(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.routable.load(Ordering::Relaxed)
    }
}

struct RevRoute {
    key: RevisionKey,
    weight: u32,
    current: i64,
    rr: usize,
    backends: Vec<Arc<Backend>>,
    window: Arc<Window>,
}

#[derive(Default)]
struct Table {
    revs: Vec<RevRoute>,
}

impl Table {
    /// Smooth weighted round-robin over revisions with a usable backend, then round-robin inside.
    fn pick(&mut self) -> Option<(Arc<Backend>, Arc<Window>)> {
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.revs.len() {
            let r = &mut self.revs[i];
            if r.weight == 0 || !r.backends.iter().any(|b| b.usable()) {
                continue;
            }
            total += i64::from(r.weight);
            r.current += i64::from(r.weight);
            let current = r.current;
            if best.is_none_or(|b| current > self.revs[b].current) {
                best = Some(i);
            }
        }
        let best = best?;
        let r = &mut self.revs[best];
        r.current -= total;
        let n = r.backends.len();
        for k in 0..n {
            let b = &r.backends[(r.rr + k) % n];
            if b.usable() {
                let chosen = b.clone();
                r.rr = (r.rr + k + 1) % n;
                return Some((chosen, r.window.clone()));
            }
        }
        None
    }
}

/// A component's router. Dropping the handle does not stop it; call [`Router::shutdown`].
pub struct Router {
    pub component: String,
    pub listen: SocketAddr,
    table: Arc<Mutex<Table>>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    opened: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The routers' own runtime: one thread that does nothing but proxy, apart from the host's other
/// work (probes, processes, its API), so neither waits on the other and a request is handled by
/// one thread from end to end (as nginx's one worker does). Started on first use; lives as long
/// as the process, each router on it stopped by its owner ([`Router::shutdown`]).
fn runtime() -> std::io::Result<&'static tokio::runtime::Handle> {
    static RT: OnceLock<Result<tokio::runtime::Handle, std::io::ErrorKind>> = OnceLock::new();
    let started = RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.kind())?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("cutover-router".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .map_err(|e| e.kind())?;
        Ok(handle)
    });
    started
        .as_ref()
        .map_err(|kind| std::io::Error::new(*kind, "starting the routers' runtime"))
}

/// Bind a listen socket for a router: address reuse (a restarted host binds again at once) and
/// a long backlog (connections wait there while a host restarts).
pub fn bind(listen: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(1024)?.into_std()
}

struct Shared {
    table: Arc<Mutex<Table>>,
    /// Handing over to another process: each response closes its connection.
    closing: AtomicBool,
    timeout: Duration,
}

impl Router {
    /// Bind the listen address and start serving.
    pub async fn start(
        component: &str,
        listen: SocketAddr,
        upstream_timeout: Duration,
    ) -> std::io::Result<Arc<Router>> {
        let listener = bind(listen)?;
        Router::start_on(component, listener, upstream_timeout, true)
    }

    /// Serve on `listener` (bound here or inherited from an earlier host). A router started
    /// closed leaves connections waiting in the listen backlog until [`Router::open`].
    pub fn start_on(
        component: &str,
        listener: std::net::TcpListener,
        upstream_timeout: Duration,
        open: bool,
    ) -> std::io::Result<Arc<Router>> {
        listener.set_nonblocking(true)?;
        let rt = runtime()?;
        let _in_rt = rt.enter();
        let listener = TcpListener::from_std(listener)?;
        let listen = listener.local_addr()?;
        let table = Arc::new(Mutex::new(Table::default()));
        let shared = Arc::new(Shared {
            table: table.clone(),
            closing: AtomicBool::new(false),
            timeout: upstream_timeout,
        });
        let (stop, stop_rx) = watch::channel(false);
        let (opened, open_rx) = watch::channel(open);
        let task = rt.spawn(serve(listener, shared.clone(), stop_rx, open_rx));
        rt.spawn(sweep_idle(table.clone(), stop.subscribe()));
        Ok(Arc::new(Router {
            component: component.to_string(),
            listen,
            table,
            shared,
            stop,
            opened,
            task: Mutex::new(Some(task)),
        }))
    }

    /// Start accepting (a router started closed).
    pub fn open(&self) {
        let _ = self.opened.send(true);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add or replace a revision's backends (weights are kept).
    pub fn set_backends(
        &self,
        key: &RevisionKey,
        backends: Vec<Arc<Backend>>,
        window: Arc<Window>,
    ) {
        let mut t = self.lock();
        match t.revs.iter_mut().find(|r| r.key == *key) {
            Some(r) => {
                r.backends = backends;
                r.window = window;
            }
            None => t.revs.push(RevRoute {
                key: key.clone(),
                weight: 0,
                current: 0,
                rr: 0,
                backends,
                window,
            }),
        }
    }

    /// Set weights; revisions not named get 0. Applies to the next request.
    pub fn set_weights(&self, weights: &[(RevisionKey, u32)]) {
        let mut t = self.lock();
        for r in t.revs.iter_mut() {
            r.weight = weights
                .iter()
                .find(|(k, _)| *k == r.key)
                .map(|(_, w)| *w)
                .unwrap_or(0);
            r.current = 0;
        }
    }

    pub fn weights(&self) -> Vec<(RevisionKey, u32)> {
        self.lock()
            .revs
            .iter()
            .map(|r| (r.key.clone(), r.weight))
            .collect()
    }

    /// Forget a revision (its backends get no new requests).
    pub fn remove_revision(&self, key: &RevisionKey) {
        let mut t = self.lock();
        for r in t.revs.iter().filter(|r| r.key == *key) {
            for b in &r.backends {
                b.routable.store(false, Ordering::Relaxed);
            }
        }
        t.revs.retain(|r| r.key != *key);
    }

    pub fn revision_count(&self) -> usize {
        self.lock().revs.len()
    }

    /// Leave the listen socket to another process: stop accepting, answer each open
    /// connection's next request with `Connection: close` (so no client writes on a connection
    /// as it closes) for up to [`HAND_OVER_WAIT`], let in-flight requests finish (up to
    /// `grace`).
    pub async fn hand_over(&self, grace: Duration) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shutdown(grace).await;
    }

    /// Stop accepting, let in-flight requests finish (up to `grace`).
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!(component = %self.component, "router did not drain within {grace:?}");
            }
        }
    }
}

/// How often idle connections to the instances are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Close idle connections to the instances that have waited too long or that the instances
/// closed, until the router stops.
async fn sweep_idle(table: Arc<Mutex<Table>>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let backends: Vec<Arc<Backend>> = table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revs
            .iter()
            .flat_map(|r| r.backends.iter().cloned())
            .collect();
        for b in backends {
            b.idle.sweep();
        }
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut open: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = open.wait_for(|o| *o) => {}
        _ = stop.changed() => return,
    }
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("router accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let client_ip: Arc<str> = peer.ip().to_string().into();
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    let client_ip = client_ip.clone();
                    async move {
                        let closing = &shared.closing;
                        let mut resp = proxy(req, &client_ip, &shared).await;
                        if closing.load(Ordering::Relaxed) {
                            resp.headers_mut().insert(
                                hyper::header::CONNECTION,
                                HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                let fut = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = fut.await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if shared.closing.load(Ordering::Relaxed) {
        let deadline = Instant::now() + HAND_OVER_WAIT;
        while graceful.count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    graceful.shutdown().await;
}

/// How long a router handing over keeps serving its open connections (each closed after its
/// next response); an idle one left after that is closed.
pub const HAND_OVER_WAIT: Duration = Duration::from_millis(300);

/// What the router answers with: its own short message, or the instance's response.
enum ProxyBody {
    Plain(Full<Bytes>),
    Upstream(Tracked),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ProxyBody::Plain(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            ProxyBody::Upstream(b) => Pin::new(&mut b.inner).poll_frame(cx),
        }
    }
    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Plain(b) => b.is_end_stream(),
            ProxyBody::Upstream(b) => b.inner.is_end_stream(),
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Plain(b) => b.size_hint(),
            ProxyBody::Upstream(b) => b.inner.size_hint(),
        }
    }
}

fn plain(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = ProxyBody::Plain(Full::new(Bytes::from(format!("{msg}\n"))));
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

/// An instance counted as busy with one request for as long as this lives: from the pick until
/// the response body has been sent, or until the request fails or is dropped (a client that
/// goes away while waiting drops the whole request with it).
struct Busy(Arc<Backend>);

impl Busy {
    fn new(backend: Arc<Backend>) -> Busy {
        backend.inflight.fetch_add(1, Ordering::Relaxed);
        Busy(backend)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An instance's response body, its instance counted busy until it has been sent.
struct Tracked {
    inner: UpstreamBody,
    _busy: Busy,
}

async fn proxy(req: Request<Incoming>, client_ip: &str, shared: &Shared) -> Response<ProxyBody> {
    let picked = shared
        .table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pick();
    let Some((backend, window)) = picked else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "cutover: no ready instance",
        );
    };
    let busy = Busy::new(backend.clone());
    let start = Instant::now();
    let result = upstream::send(req, backend.addr, &backend.idle, client_ip, shared.timeout).await;
    let took = start.elapsed();
    match result {
        Ok(mut resp) => {
            // The instance's time: waiting for a slow client's upload is not its doing.
            let latency = took.saturating_sub(resp.body().client_wait());
            window.record(Outcome::Status(resp.status().as_u16()), latency);
            resp.body_mut().stall_limit(shared.timeout);
            let (parts, body) = resp.into_parts();
            let body = ProxyBody::Upstream(Tracked {
                inner: body,
                _busy: busy,
            });
            Response::from_parts(parts, body)
        }
        Err(upstream::Failure::ClientIdle(after)) => {
            // The client stopped sending its body: nothing about the instance.
            tracing::debug!("client's body for {} idle for {after:?}", backend.id);
            plain(
                StatusCode::REQUEST_TIMEOUT,
                "cutover: the request body stopped coming",
            )
        }
        Err(upstream::Failure::Client(e)) => {
            // The client's side failed (it went away in the middle of its upload): nothing
            // about the instance, so not recorded against its revision.
            tracing::debug!(
                "request body for {} cut short by the client: {e}",
                backend.id
            );
            plain(
                StatusCode::BAD_REQUEST,
                "cutover: the request body was cut short",
            )
        }
        Err(upstream::Failure::Timeout(after)) => {
            window.record(Outcome::Transport, took);
            tracing::debug!("upstream {} silent for {after:?}", backend.id);
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("cutover: upstream {} timed out", backend.id),
            )
        }
        Err(e) => {
            window.record(Outcome::Transport, took);
            tracing::debug!("upstream {} failed: {e}", backend.id);
            plain(
                StatusCode::BAD_GATEWAY,
                &format!("cutover: upstream {} failed", backend.id),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(id: &str, ready: bool) -> Arc<Backend> {
        let b = Backend::new(id.into(), "127.0.0.1:1".parse().unwrap());
        b.ready.store(ready, Ordering::Relaxed);
        Arc::new(b)
    }

    fn table(weights: &[(u32, Vec<Arc<Backend>>)]) -> Table {
        Table {
            revs: weights
                .iter()
                .enumerate()
                .map(|(i, (w, b))| RevRoute {
                    key: RevisionKey(format!("r{i}")),
                    weight: *w,
                    current: 0,
                    rr: 0,
                    backends: b.clone(),
                    window: Arc::new(Window::new()),
                })
                .collect(),
        }
    }

    #[test]
    fn smooth_weighted_round_robin_is_exact_over_short_windows() {
        let mut t = table(&[
            (90, vec![backend("a", true)]),
            (10, vec![backend("b", true)]),
        ]);
        for _ in 0..5 {
            let picks: Vec<String> = (0..10).map(|_| t.pick().unwrap().0.id.clone()).collect();
            assert_eq!(picks.iter().filter(|p| *p == "b").count(), 1, "{picks:?}");
        }
        let mut t = table(&[(1, vec![backend("a", true)]), (1, vec![backend("b", true)])]);
        let picks: Vec<String> = (0..4).map(|_| t.pick().unwrap().0.id.clone()).collect();
        assert_eq!(picks, ["a", "b", "a", "b"]);
    }

    #[test]
    fn only_ready_routable_instances_get_traffic() {
        let b1 = backend("b1", true);
        let b2 = backend("b2", false);
        let mut t = table(&[
            (50, vec![b1.clone(), b2.clone()]),
            (50, vec![backend("x", false)]),
        ]);
        for _ in 0..10 {
            assert_eq!(t.pick().unwrap().0.id, "b1");
        }
        b2.ready.store(true, Ordering::Relaxed);
        let picks: Vec<String> = (0..4).map(|_| t.pick().unwrap().0.id.clone()).collect();
        assert!(picks.contains(&"b2".to_string()));
        b1.routable.store(false, Ordering::Relaxed);
        b2.routable.store(false, Ordering::Relaxed);
        assert!(t.pick().is_none());
    }
}
