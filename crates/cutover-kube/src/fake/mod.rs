//! An in-process fake Kubernetes API server on loopback HTTP, for cutover's behaviour tests
//! (feature `fake`; never in the shipped binary's code paths).
//!
//! `kube::Client` talks to it as to a real server: discovery, get/list/watch (resourceVersions,
//! selectors, bookmarks, 410 on expired history), create/replace/patch (server-side apply,
//! merge and strategic merge, `dryRun=All`), delete, the `status` and `scale` subresources, and
//! `Status` errors shaped like the real ones. A controller and kubelet simulation gives
//! Deployments pods and statuses (and a gateway controller gives HTTPRoutes theirs); a
//! [`PodBehaviour`] per image makes pods fail the ways real pods do. Served: Namespaces,
//! Deployments, Services, Pods, core/v1 and events.k8s.io/v1 Events (stored apart), Leases,
//! HTTPRoutes.
//!
//! Owns: the server's tasks (dropping [`FakeApiServer`] aborts them), its store and request log.
//! Must not touch: cutover's provider code (it is only a peer over HTTP), the host's files
//! other than the kubeconfig a test asks it to write.
//!
//! Known approximations: server-side apply merges objects and replaces lists (no per-field
//! ownership beyond conflicts between Apply managers; `managedFields` entries carry no field
//! sets), strategic merge patches merge lists by the usual keys (`name`, `containerPort`,
//! `port`, ...) but know no per-field patch strategies, apply bodies must be JSON, pods are
//! owned by their Deployment (no ReplicaSets), a template change replaces pods all at once,
//! `limit`/`continue` are ignored (lists are never paged), and a pod is available as soon as it
//! is ready (`minReadySeconds` ignored). As on a real server, a write into a namespace that does
//! not exist is 404 `namespaces "x" not found`, while a list or watch there is empty.

mod defaults;
mod http;
mod kinds;
mod ops;
mod patch;
mod pod_status;
mod select;
mod sim;
mod status;
mod watch;
mod world;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use kinds::Kind;
use world::World;

/// How the simulated kubelet runs pods whose first container's image contains a substring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodBehaviour {
    /// Running and ready after the ready delay.
    Ready,
    /// Pending, waiting `ImagePullBackOff`, with `Failed` and `BackOff` events.
    ImagePullBackOff,
    /// Running, not ready, restarting every ~200 ms, waiting `CrashLoopBackOff`, last exit 1.
    CrashLoopBackOff,
    /// Like `CrashLoopBackOff`, last terminated `OOMKilled` with exit code 137.
    OomKilled,
    /// Pending, `PodScheduled=False` reason `Unschedulable`, and a `FailedScheduling` event.
    Unschedulable,
    /// Running, not ready, and an `Unhealthy` event "Readiness probe failed: ...".
    ReadinessFails,
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// `GET`, `PATCH`, ...
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    pub is_watch: bool,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection;
    /// the lowercased method for paths that are not resources.
    pub verb: String,
    /// `deployments`, `deployments/scale`, `leases`; the path for discovery; empty if unknown.
    pub resource: String,
    pub namespace: Option<String>,
    pub content_type: String,
    /// The request body (lossy UTF-8).
    pub body: String,
    /// The response's status code (200 for a watch that started, whatever it streamed).
    pub status: u16,
}

/// Totals of the request log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Requests per `"verb resource"`, e.g. `"patch deployments"`, `"watch pods"`, `"get /version"`.
    pub by_verb_resource: BTreeMap<String, u64>,
    /// Watch streams opened (watch requests answered 200).
    pub watches: u64,
    /// Every request, watches included.
    pub total: u64,
}

impl RequestCounts {
    /// The count for one verb on one resource (0 if none).
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.by_verb_resource
            .get(&format!("{verb} {resource}"))
            .copied()
            .unwrap_or(0)
    }
}

struct Fault {
    method: String,
    path_contains: String,
    code: u16,
    remaining: u32,
}

/// State shared by the HTTP tasks, the simulation and the test's handle.
pub(crate) struct Shared {
    world: Mutex<World>,
    sim: Mutex<sim::Settings>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<RequestLog>>,
    open_watches: Arc<AtomicUsize>,
    /// While true, requests wait unanswered (an API server that accepts but hangs).
    stalled: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// The code of the first injected failure matching this request, consuming one of its times.
    fn take_fault(&self, method: &str, target: &str) -> Option<u16> {
        let mut faults = lock(&self.faults);
        let f = faults.iter_mut().find(|f| {
            f.remaining > 0
                && (f.method == "*" || f.method.eq_ignore_ascii_case(method))
                && target.contains(&f.path_contains)
        })?;
        f.remaining -= 1;
        let code = f.code;
        faults.retain(|f| f.remaining > 0);
        Some(code)
    }
}

/// A poisoned lock still holds consistent data here (every critical section is a few
/// assignments), so take it rather than panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake API server. Dropping it stops its listener, connections, watches and simulation.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeApiServer {
    /// Listens on 127.0.0.1 (a free port), plain HTTP; namespaces `default` and `kube-system`
    /// exist. Must be called inside a tokio runtime.
    pub async fn start() -> std::io::Result<FakeApiServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new()),
            sim: Mutex::new(sim::Settings::default()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            open_watches: Arc::new(AtomicUsize::new(0)),
            stalled: tokio::sync::watch::channel(false).0,
        });
        let tasks = vec![
            tokio::spawn(http::serve(listener, shared.clone())),
            tokio::spawn(sim::run(shared.clone())),
        ];
        Ok(FakeApiServer {
            shared,
            addr,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client built as kube builds one from a kubeconfig, for `namespace`. Falls back to a
    /// plain hyper client if kube's TLS-capable stack cannot be built.
    pub fn client(&self, namespace: &str) -> kube::Client {
        match self.try_client(namespace) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "fake API server: kube's client stack failed ({e}); using a plain HTTP client"
                );
                plain_client(self.addr, namespace)
            }
        }
    }

    /// [`FakeApiServer::client`], with kube's error if its client stack cannot be built.
    pub fn try_client(&self, namespace: &str) -> Result<kube::Client, kube::Error> {
        let mut config = kube::Config::new(self.uri());
        config.default_namespace = namespace.to_string();
        kube::Client::try_from(config)
    }

    fn uri(&self) -> ::http::Uri {
        ::http::Uri::builder()
            .scheme("http")
            .authority(self.addr.to_string())
            .path_and_query("/")
            .build()
            .unwrap_or_else(|_| ::http::Uri::from_static("http://127.0.0.1/"))
    }

    /// Writes a kubeconfig (cluster `fake` at [`FakeApiServer::url`], a token user, `context`
    /// selecting `namespace`, and current) that kubectl and kube-rs load. Blocking file write.
    pub fn write_kubeconfig(
        &self,
        path: &std::path::Path,
        context: &str,
        namespace: &str,
    ) -> std::io::Result<()> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: {ctx}\n  context:\n    cluster: fake\n    user: fake-user\n    namespace: {ns}\n\
             current-context: {ctx}\nusers:\n- name: fake-user\n  user:\n    token: fake-token\npreferences: {{}}\n",
            url = q(&self.url()),
            ctx = q(context),
            ns = q(namespace),
        );
        std::fs::write(path, yaml)
    }

    /// Creates a namespace (no-op if it exists).
    pub fn create_namespace(&self, ns: &str) {
        lock(&self.shared.world).ensure_namespace(ns);
    }

    /// Pods whose first container's image contains `image_substring` behave so (the latest
    /// matching rule wins; applies to existing pods from the next tick). Default: `Ready`.
    pub fn set_behaviour(&self, image_substring: &str, b: PodBehaviour) {
        lock(&self.shared.sim)
            .behaviours
            .push((image_substring.to_string(), b));
    }

    /// Time from a pod's creation to Running (and Ready, for `Ready` pods). Default 100 ms.
    pub fn set_ready_delay(&self, d: Duration) {
        lock(&self.shared.sim).ready_delay = d;
    }

    /// The next `times` requests with this method (`"*"`: any) whose `path?query` contains
    /// `path_contains` fail with `code` and a `Status` body like the real server's (403 names
    /// the verb, resource and namespace). Note kube's client retries 429/503/504 up to 3 times.
    pub fn fail_next(&self, method: &str, path_contains: &str, code: u16, times: u32) {
        lock(&self.shared.faults).push(Fault {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            code,
            remaining: times,
        });
    }

    /// While `true`, requests (new and waiting) get no answer: connections are accepted and
    /// then hang, as with an overloaded or half-dead API server. `false` releases them.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.send_replace(stalled);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RequestLog> {
        lock(&self.shared.log).clone()
    }

    /// Forgets the request log (to measure one phase of a test).
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Totals of [`FakeApiServer::requests`].
    pub fn counts(&self) -> RequestCounts {
        let log = lock(&self.shared.log);
        let mut c = RequestCounts::default();
        for r in log.iter() {
            c.total += 1;
            *c.by_verb_resource
                .entry(format!("{} {}", r.verb, r.resource))
                .or_insert(0) += 1;
            if r.is_watch && r.status == 200 {
                c.watches += 1;
            }
        }
        c
    }

    /// Watch streams open right now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// The stored object. `kind`: "Deployment", "Service", "Pod", "Lease", "HTTPRoute", "Event"
    /// (core/v1), "EventV1" (events.k8s.io/v1, what kube's `Recorder` writes), "Namespace" (or
    /// their plurals, case-insensitive); `namespace` is ignored for namespaces.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = Kind::parse(kind)?;
        let ns = if kind.namespaced() { namespace } else { "" };
        lock(&self.shared.world).get(kind, ns, name).cloned()
    }

    /// All stored objects of a kind in a namespace (`""`: all namespaces), sorted by name.
    pub fn objects(&self, kind: &str, namespace: &str) -> Vec<Value> {
        let Some(kind) = Kind::parse(kind) else {
            return Vec::new();
        };
        let ns = (!namespace.is_empty() && kind.namespaced()).then_some(namespace);
        lock(&self.shared.world)
            .list(kind, ns)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Stores an object as given (status included, though the simulation then rewrites the
    /// status of Deployments and pods), creating or replacing it, and its namespace if
    /// missing: e.g. a plain Deployment cutover did not create. `None` if the
    /// kind is not served or the object has no name.
    pub fn put_object(&self, obj: Value) -> Option<Value> {
        let kind = Kind::parse(obj.get("kind")?.as_str()?)?;
        let name = obj.pointer("/metadata/name")?.as_str()?.to_string();
        let ns = if kind.namespaced() {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let mut w = lock(&self.shared.world);
        if kind.namespaced() {
            w.ensure_namespace(&ns);
        }
        match w.get(kind, &ns, &name) {
            Some(_) => w.update(kind, &ns, &name, obj).ok(),
            None => w.create(kind, &ns, obj).ok(),
        }
    }

    /// Deletes a stored object as another client would (a Deployment's pods go with it).
    pub fn delete_object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = Kind::parse(kind)?;
        let ns = if kind.namespaced() { namespace } else { "" };
        let mut w = lock(&self.shared.world);
        let gone = w.delete(kind, ns, name).ok()?;
        if kind == Kind::Deployment {
            sim::delete_pods_of(&mut w, &gone);
        }
        Some(gone)
    }

    /// Forgets the change history and ends every open watch: watches resuming from an older
    /// resourceVersion get `410 Gone` (an ERROR event), so clients must re-list.
    pub fn expire_watches(&self) {
        lock(&self.shared.world).expire();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.world).rv()
    }
}

/// A kube client over hyper-util's plain HTTP client (no TLS stack, no retries).
fn plain_client(addr: SocketAddr, namespace: &str) -> kube::Client {
    use http_body_util::BodyExt;
    let inner = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let svc = tower::service_fn(move |mut req: ::http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            let pq = req
                .uri()
                .path_and_query()
                .map_or("/".to_string(), ToString::to_string);
            let uri: ::http::Uri = format!("http://{addr}{pq}").parse()?;
            *req.uri_mut() = uri;
            let res = inner.request(req).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(res.map(|b| b.boxed()))
        }
    });
    kube::Client::new(svc, namespace)
}
