//! The local host's state: components with their routers, revisions and supervised instances.
//!
//! Owns: carrying out provider requests for `local` (start and scale instances with free loopback
//! ports and placeholders, route, probe, report, retire when idle) and recording what runs in
//! the store so a restarted host replaces it cleanly. Must not touch: sockets (that is `server`)
//! or deployment decisions.
//!
//! A component's router belongs to the component, not to its revisions: it is started with the
//! component's first revision and kept, answering 503 while no revision is ready (a recreate's
//! downtime, a removed last revision), until `host stop`. Only a component with no revision may
//! move to another `listen` address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::metrics::Window;
use super::probe::{self, Check, ProbeSpec, ProbeStatus};
use super::process::{self, ProcSpec, Supervised};
use super::proto::*;
use super::router::{Backend, Router};
use super::table;
use crate::provider::{InstanceStatus, Metrics, RevisionKey, RevisionSpec, RevisionStatus};
use crate::spec::{HealthKind, PortRef};
use crate::store::Store;

/// How long a retired instance may keep serving in-flight requests.
const DRAIN: Duration = Duration::from_secs(30);
/// SIGTERM to SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Upstream timeout of the routers.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing router lets in-flight requests finish.
const ROUTER_GRACE: Duration = Duration::from_secs(2);

struct Instance {
    id: String,
    ports: BTreeMap<String, u16>,
    backend: Arc<Backend>,
    proc: Supervised,
    probe: Arc<Mutex<ProbeStatus>>,
    probe_stop: watch::Sender<bool>,
    log: PathBuf,
}

impl Instance {
    /// Stop taking requests, wait until idle (bounded), then stop the probe and the process.
    async fn retire(self) {
        self.backend.routable.store(false, Ordering::Relaxed);
        let t0 = tokio::time::Instant::now();
        while self.backend.inflight.load(Ordering::Relaxed) > 0 && t0.elapsed() < DRAIN {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.probe_stop.send(true);
        self.proc.stop().await;
    }

    fn view(&self) -> InstanceView {
        let p = self.proc.snapshot();
        InstanceView {
            id: self.id.clone(),
            pid: p.pid,
            ports: self.ports.clone(),
            running: p.running,
            ready: self.backend.ready.load(Ordering::Relaxed) && p.running,
            restarts: p.restarts,
            last_exit: p.last_exit,
            inflight: self.backend.inflight.load(Ordering::Relaxed),
            probe: self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            log: self.log.display().to_string(),
        }
    }
}

struct Rev {
    spec: RevisionSpec,
    window: Arc<Window>,
    instances: Vec<Instance>,
}

struct Comp {
    router: Arc<Router>,
    revs: BTreeMap<RevisionKey, Rev>,
}

/// The host.
pub struct Host {
    pub state_dir: PathBuf,
    pub host_id: String,
    pub started_at: String,
    exe: PathBuf,
    store: Store,
    comps: tokio::sync::Mutex<BTreeMap<String, Comp>>,
}

/// Ports this host has handed out (never handed out twice while it lives).
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A free loopback port the host has not handed out before.
fn free_port() -> std::io::Result<u16> {
    for _ in 0..64 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other(
        "no fresh loopback port after 64 tries",
    ))
}

/// Replace `{self}`, `{version}`, `{replica}`, `{port}` and `{port.NAME}`.
pub fn expand(
    s: &str,
    exe: &Path,
    version: &str,
    replica: u32,
    ports: &BTreeMap<String, u16>,
    first: u16,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = match name {
            "self" => exe.display().to_string(),
            "version" => version.to_string(),
            "replica" => replica.to_string(),
            "port" => first.to_string(),
            _ => match name.strip_prefix("port.") {
                Some(p) => ports
                    .get(p)
                    .map(|v| v.to_string())
                    .ok_or_else(|| format!("placeholder {{{name}}} names no port in run.ports"))?,
                // Not a placeholder of ours: keep it as written.
                None => format!("{{{name}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn probe_spec(
    rev: &RevisionSpec,
    exe: &Path,
    replica: u32,
    ports: &BTreeMap<String, u16>,
    first: u16,
) -> Result<ProbeSpec, String> {
    let Some(hc) = &rev.component.health_check else {
        // No health check: ready once the first port accepts connections.
        return Ok(ProbeSpec {
            check: Check::Tcp { port: first },
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        });
    };
    let port = match &hc.port {
        None | Some(PortRef::Number(_)) => first,
        Some(PortRef::Name(n)) => *ports
            .get(n)
            .ok_or_else(|| format!("healthCheck.port `{n}` is not in run.ports"))?,
    };
    let check = match hc.kind {
        HealthKind::Http => Check::Http {
            port,
            path: hc.endpoint.clone().unwrap_or_else(|| "/".into()),
        },
        HealthKind::Tcp => Check::Tcp { port },
        HealthKind::Grpc => Check::Grpc {
            port,
            service: hc.service.clone().unwrap_or_default(),
        },
        HealthKind::Exec => Check::Exec {
            argv: hc
                .command
                .iter()
                .map(|a| expand(a, exe, &rev.version, replica, ports, first))
                .collect::<Result<_, _>>()?,
        },
    };
    Ok(ProbeSpec {
        check,
        initial_delay: hc.initial_delay_seconds.duration(),
        period: hc.period_seconds.duration(),
        timeout: hc.timeout_seconds.duration(),
        success_threshold: hc.success_threshold.max(1) as u32,
        failure_threshold: hc.failure_threshold.max(1) as u32,
    })
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Host {
    pub fn new(state_dir: &Path, store: Store, exe: PathBuf) -> Host {
        Host {
            state_dir: state_dir.to_path_buf(),
            host_id: state_dir.display().to_string(),
            started_at: crate::store::now_ts(),
            exe,
            store,
            comps: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Kill processes a previous host left behind and bring back what the store says ran.
    pub async fn recover(&self) {
        let stale = process::find_owned(&self.host_id);
        for pid in &stale {
            process::signal_group(*pid, libc::SIGKILL);
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
        if !stale.is_empty() {
            tracing::warn!("killed {} process(es) left by an earlier host", stale.len());
        }
        let rows = match table::all(&self.store) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read what the host ran: {e}");
                return;
            }
        };
        let mut weights: BTreeMap<String, Vec<(RevisionKey, u32)>> = BTreeMap::new();
        for row in rows {
            let Ok(spec) = serde_json::from_str::<RevisionSpec>(&row.spec_json) else {
                tracing::error!("{}: unreadable record; dropped", row.rev_key);
                let _ = table::remove(&self.store, &row.rev_key);
                continue;
            };
            match self.apply_revision(&spec, row.replicas).await {
                Ok(()) => weights
                    .entry(row.component.clone())
                    .or_default()
                    .push((RevisionKey(row.rev_key.clone()), row.weight)),
                Err(e) => tracing::error!("cannot restart {}: {e}", row.rev_key),
            }
        }
        for (comp, w) in weights {
            if let Err(e) = self.set_weights(&comp, &w).await {
                tracing::error!("cannot restore weights of {comp}: {e}");
            }
        }
    }

    pub async fn handle(&self, req: Request) -> Response {
        let result = match req {
            Request::Ping => {
                return Response::Pong {
                    pid: std::process::id(),
                    state_dir: self.state_dir.display().to_string(),
                    started_at: self.started_at.clone(),
                }
            }
            Request::ApplyRevision { rev, replicas } => self.apply_revision(&rev, replicas).await,
            Request::SetWeights { component, weights } => {
                self.set_weights(&component, &weights).await
            }
            Request::RevisionStatus { component, rev } => {
                return match self.revision_status(&component, &rev).await {
                    Ok(status) => Response::RevisionStatus { status },
                    Err(message) => Response::Error { message },
                }
            }
            Request::Metrics {
                component,
                rev,
                window_ms,
            } => {
                return match self
                    .metrics(&component, &rev, Duration::from_millis(window_ms))
                    .await
                {
                    Ok(metrics) => Response::Metrics { metrics },
                    Err(message) => Response::Error { message },
                }
            }
            Request::RemoveRevision { component, rev } => {
                self.remove_revision(&component, &rev).await
            }
            Request::Status => {
                return Response::Status {
                    status: self.status().await,
                }
            }
            Request::Stop => {
                self.stop_all().await;
                Ok(())
            }
        };
        match result {
            Ok(()) => Response::Ok,
            Err(message) => Response::Error { message },
        }
    }

    async fn start_instance(&self, rev: &RevisionSpec, replica: u32) -> Result<Instance, String> {
        let run =
            rev.component.run.as_ref().ok_or_else(|| {
                format!("{}: run is required with provider local", rev.component.id)
            })?;
        let mut names: Vec<String> = run.ports.clone();
        if names.is_empty() {
            names.push("http".into());
        }
        let mut ports = BTreeMap::new();
        for n in &names {
            ports.insert(
                n.clone(),
                free_port().map_err(|e| format!("no free port: {e}"))?,
            );
        }
        let first = ports.get(&names[0]).copied().unwrap_or(0);
        let x = |s: &str| expand(s, &self.exe, &rev.version, replica, &ports, first);
        let argv: Vec<String> = run.command.iter().map(|a| x(a)).collect::<Result<_, _>>()?;
        let program = argv.first().cloned().ok_or("run.command is empty")?;
        process::resolve(&program)
            .map_err(|e| format!("{}: cannot start: {e}", rev.component.id))?;
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in &rev.component.environment {
            env.push((k.clone(), x(v)?));
        }
        for (k, v) in &run.env {
            env.push((k.clone(), x(v)?));
        }
        env.push(("PORT".into(), first.to_string()));
        for (n, p) in &ports {
            env.push((
                format!("PORT_{}", n.to_ascii_uppercase().replace('-', "_")),
                p.to_string(),
            ));
        }
        let id = format!("{}#{replica}", rev.key);
        env.push((process::HOST_ENV.into(), self.host_id.clone()));
        env.push((process::INSTANCE_ENV.into(), id.clone()));
        env.push(("CUTOVER_VERSION".into(), rev.version.clone()));
        let log = self
            .state_dir
            .join("logs")
            .join(safe_name(&rev.component.id))
            .join(format!("{}-{replica}.log", safe_name(&rev.key.0)));
        let probe_spec = probe_spec(rev, &self.exe, replica, &ports, first)?;
        let addr: SocketAddr = format!("127.0.0.1:{first}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let backend = Arc::new(Backend::new(id.clone(), addr));
        let probe_status = Arc::new(Mutex::new(ProbeStatus::default()));
        let (b2, p2) = (backend.clone(), probe_status.clone());
        let on_exit = Arc::new(move |_: &str| probe::reset(&b2, &p2));
        let proc = Supervised::start(
            ProcSpec {
                id: id.clone(),
                argv,
                env,
                log: log.clone(),
                grace: GRACE,
            },
            on_exit,
        )
        .map_err(|e| format!("{}: cannot start `{program}`: {e}", rev.component.id))?;
        let (probe_stop, stop_rx) = watch::channel(false);
        tokio::spawn(probe::run(
            probe_spec,
            backend.clone(),
            probe_status.clone(),
            stop_rx,
        ));
        Ok(Instance {
            id,
            ports,
            backend,
            proc,
            probe: probe_status,
            probe_stop,
            log,
        })
    }

    pub async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), String> {
        let comp_id = rev.component.id.clone();
        let listen: SocketAddr = rev
            .component
            .listen
            .as_deref()
            .ok_or_else(|| format!("{comp_id}: listen is required with provider local"))?
            .parse()
            .map_err(|e| format!("{comp_id}: bad listen address: {e}"))?;
        let mut comps = self.comps.lock().await;
        // A component with no revision behind it may move: close its old address.
        let moving = comps
            .get(&comp_id)
            .is_some_and(|c| c.revs.is_empty() && c.router.listen != listen && listen.port() != 0);
        if moving {
            if let Some(old) = comps.remove(&comp_id) {
                tracing::info!("{comp_id}: moves from {} to {listen}", old.router.listen);
                old.router.shutdown(ROUTER_GRACE).await;
            }
        }
        if !comps.contains_key(&comp_id) {
            let router = Router::start(&comp_id, listen, UPSTREAM_TIMEOUT)
                .await
                .map_err(|e| format!("{comp_id}: cannot listen on {listen}: {e}"))?;
            comps.insert(
                comp_id.clone(),
                Comp {
                    router,
                    revs: BTreeMap::new(),
                },
            );
        }
        let Some(comp) = comps.get_mut(&comp_id) else {
            return Err(format!("{comp_id}: component vanished"));
        };
        if comp.router.listen != listen && listen.port() != 0 {
            return Err(format!(
                "{comp_id}: already routed on {}; cannot also listen on {listen}",
                comp.router.listen
            ));
        }
        let rev_entry = comp.revs.entry(rev.key.clone()).or_insert_with(|| Rev {
            spec: rev.clone(),
            window: Arc::new(Window::new()),
            instances: Vec::new(),
        });
        let mut started = Vec::new();
        for replica in rev_entry.instances.len() as u32..replicas {
            match self.start_instance(rev, replica).await {
                Ok(i) => started.push(i),
                Err(e) => {
                    for i in started {
                        i.retire().await;
                    }
                    if rev_entry.instances.is_empty() {
                        comp.revs.remove(&rev.key);
                    }
                    return Err(e);
                }
            }
        }
        rev_entry.instances.extend(started);
        let mut retiring = Vec::new();
        while rev_entry.instances.len() as u32 > replicas {
            if let Some(i) = rev_entry.instances.pop() {
                i.backend.routable.store(false, Ordering::Relaxed);
                retiring.push(i);
            }
        }
        let backends = rev_entry
            .instances
            .iter()
            .map(|i| i.backend.clone())
            .collect();
        comp.router
            .set_backends(&rev.key, backends, rev_entry.window.clone());
        self.write_sd(&comps);
        drop(comps);
        for i in retiring {
            tokio::spawn(i.retire());
        }
        let spec_json = serde_json::to_string(rev).map_err(|e| e.to_string())?;
        table::put(&self.store, &rev.key.0, &comp_id, &spec_json, replicas)
            .map_err(|e| e.to_string())
    }

    /// Write the live instances as Prometheus file-based service discovery targets
    /// (`STATE/prometheus/targets.json`, replaced atomically).
    fn write_sd(&self, comps: &BTreeMap<String, Comp>) {
        let mut groups = Vec::new();
        for (id, c) in comps {
            for (key, r) in &c.revs {
                for i in &r.instances {
                    let Some(port) = i.ports.values().next() else {
                        continue;
                    };
                    groups.push(serde_json::json!({
                        "targets": [format!("127.0.0.1:{port}")],
                        "labels": {
                            "component": id,
                            "version": r.spec.version,
                            "revision": key.0,
                            "environment": r.spec.environment,
                            "deployment": r.spec.deployment,
                            "instance_id": i.id,
                        }
                    }));
                }
            }
        }
        let dir = self.state_dir.join("prometheus");
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join("targets.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&groups).unwrap_or_default())?;
            std::fs::rename(&tmp, dir.join("targets.json"))
        };
        if let Err(e) = write() {
            tracing::warn!("cannot write Prometheus targets: {e}");
        }
    }

    pub async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<(), String> {
        let comps = self.comps.lock().await;
        let comp = comps
            .get(component)
            .ok_or_else(|| format!("no component `{component}` on this host"))?;
        for (k, _) in weights {
            if !comp.revs.contains_key(k) {
                return Err(format!("{component}: no revision {k} on this host"));
            }
        }
        comp.router.set_weights(weights);
        drop(comps);
        let w: Vec<(String, u32)> = weights.iter().map(|(k, v)| (k.0.clone(), *v)).collect();
        table::set_weights(&self.store, component, &w).map_err(|e| e.to_string())
    }

    pub async fn revision_status(
        &self,
        component: &str,
        key: &RevisionKey,
    ) -> Result<RevisionStatus, String> {
        let comps = self.comps.lock().await;
        let rev = comps
            .get(component)
            .and_then(|c| c.revs.get(key))
            .ok_or_else(|| format!("{component}: no revision {key} on this host"))?;
        let instances = rev
            .instances
            .iter()
            .map(|i| {
                let v = i.view();
                let crashed = !v.running && v.last_exit.is_some();
                // One crash is restarted (and reported); a second one is a crash loop.
                let crash_loop = crashed && v.restarts >= 1;
                InstanceStatus {
                    id: v.id,
                    ready: v.ready,
                    unhealthy: v.probe.failing || crash_loop,
                    restarts: v.restarts,
                    detail: if crashed {
                        v.last_exit
                            .map(|e| format!("{e} (restarts: {})", v.restarts))
                    } else {
                        v.probe
                            .last_error
                            .map(|e| format!("{} probe: {e}", v.probe.kind))
                    },
                    probe: v.probe.kind,
                    last_latency_ms: v.probe.last_latency_ms,
                    consecutive_failures: v.probe.consecutive_failures,
                }
            })
            .collect();
        Ok(RevisionStatus {
            desired: rev.instances.len() as u32,
            instances,
        })
    }

    pub async fn metrics(
        &self,
        component: &str,
        key: &RevisionKey,
        window: Duration,
    ) -> Result<Metrics, String> {
        let comps = self.comps.lock().await;
        let rev = comps
            .get(component)
            .and_then(|c| c.revs.get(key))
            .ok_or_else(|| format!("{component}: no revision {key} on this host"))?;
        let mut m = rev.window.metrics(window);
        let total = rev.instances.len().max(1) as f64;
        let failing = rev
            .instances
            .iter()
            .filter(|i| {
                let v = i.view();
                v.probe.failing || !v.running
            })
            .count() as f64;
        m.insert("failure_rate".into(), failing / total);
        Ok(m)
    }

    /// Take a revision off the router and stop its instances (after their in-flight requests).
    /// The component and its router stay: with no revision left it answers 503.
    pub async fn remove_revision(&self, component: &str, key: &RevisionKey) -> Result<(), String> {
        let mut comps = self.comps.lock().await;
        let Some(comp) = comps.get_mut(component) else {
            return Ok(());
        };
        comp.router.remove_revision(key);
        let removed = comp.revs.remove(key);
        self.write_sd(&comps);
        drop(comps);
        let _ = table::remove(&self.store, &key.0);
        if let Some(rev) = removed {
            for i in rev.instances {
                tokio::spawn(i.retire());
            }
        }
        Ok(())
    }

    pub async fn status(&self) -> HostStatus {
        let comps = self.comps.lock().await;
        let components = comps
            .iter()
            .map(|(id, c)| {
                let weights = c.router.weights();
                ComponentView {
                    component: id.clone(),
                    listen: c.router.listen.to_string(),
                    revisions: c
                        .revs
                        .iter()
                        .map(|(k, r)| {
                            let (req, e5, et) = r.window.totals();
                            RevisionView {
                                key: k.clone(),
                                version: r.spec.version.clone(),
                                weight: weights
                                    .iter()
                                    .find(|(wk, _)| wk == k)
                                    .map(|(_, w)| *w)
                                    .unwrap_or(0),
                                requests: req,
                                server_errors: e5,
                                transport_errors: et,
                                instances: r.instances.iter().map(Instance::view).collect(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        HostStatus {
            pid: std::process::id(),
            state_dir: self.state_dir.display().to_string(),
            started_at: self.started_at.clone(),
            components,
        }
    }

    /// Stop every router and instance; forget what ran.
    pub async fn stop_all(&self) {
        let mut comps = self.comps.lock().await;
        let all: Vec<Comp> = std::mem::take(&mut *comps).into_values().collect();
        self.write_sd(&comps);
        drop(comps);
        let mut tasks = Vec::new();
        for c in all {
            for (_, r) in c.revs {
                for i in r.instances {
                    i.backend.routable.store(false, Ordering::Relaxed);
                    tasks.push(tokio::spawn(async move {
                        let _ = i.probe_stop.send(true);
                        i.proc.stop().await;
                    }));
                }
            }
            c.router.shutdown(ROUTER_GRACE).await;
        }
        for t in tasks {
            let _ = t.await;
        }
        let _ = table::clear(&self.store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand() {
        let mut ports = BTreeMap::new();
        ports.insert("http".to_string(), 8001u16);
        ports.insert("grpc".to_string(), 9001u16);
        let exe = Path::new("/bin/cutover");
        assert_eq!(
            expand(
                "{self} --port {port} --grpc {port.grpc} --v {version} r{replica} {other}",
                exe,
                "1.2",
                3,
                &ports,
                8001
            )
            .unwrap(),
            "/bin/cutover --port 8001 --grpc 9001 --v 1.2 r3 {other}"
        );
        assert!(expand("{port.nope}", exe, "1", 0, &ports, 8001).is_err());
        assert_eq!(
            expand("no {brace", exe, "1", 0, &ports, 1).unwrap(),
            "no {brace"
        );
    }
}
