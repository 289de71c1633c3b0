//! The local host's state: components with their routers, revisions and supervised instances.
//!
//! Owns: carrying out provider requests for `local` (start and scale instances with free loopback
//! ports and placeholders, route, probe, report, retire when idle) and recording what runs in
//! the store so a restarted host adopts it (`recover`). Must not touch: the API socket (that is
//! `server`) or deployment decisions.
//!
//! A request is carried out whether or not the store can record it: what runs is kept in
//! memory, and a recorder task writes it to the store after each change, retrying every second
//! while the store fails (a full disk, a locked database). A request's answer waits for the
//! record at most 250 ms (normally a few ms: then a worker killed right after brings the change
//! back), so a rollback never waits on the disk.
//!
//! A component's router belongs to the component, not to its revisions: it is started with the
//! component's first revision and kept, answering 503 while no revision is ready (a recreate's
//! downtime, a removed last revision), until `host stop`. Only a component with no revision may
//! move to another `listen` address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::handover::Supervisor;
use super::metrics::Window;
use super::probe::{self, ProbeSpec, ProbeStatus};
use super::process::{ProcSpec, Supervised};
use super::proto::*;
use super::router::{Backend, Router};
use super::table;
use crate::provider::{InstanceStatus, Metrics, RevisionKey, RevisionSpec, RevisionStatus};
use crate::store::Store;

mod launch;
mod record;
mod recover;
mod sockets;

pub use launch::expand;
pub use recover::Adoptable;

/// How long a retired instance may keep serving in-flight requests.
const DRAIN: Duration = Duration::from_secs(30);
/// SIGTERM to SIGKILL.
const GRACE: Duration = Duration::from_secs(5);
/// Upstream timeout of the routers.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request's answer waits for the store to record what it did.
const RECORD_WAIT: Duration = Duration::from_millis(250);
/// How long a closing router lets in-flight requests finish.
const ROUTER_GRACE: Duration = Duration::from_secs(2);

struct Instance {
    id: String,
    replica: u32,
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

/// What running one instance takes.
struct Launch {
    spec: ProcSpec,
    probe: ProbeSpec,
    backend: Arc<Backend>,
    ports: BTreeMap<String, u16>,
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
    /// The supervisor holding our listen sockets, if one runs us.
    supervisor: Option<Supervisor>,
    /// Listen sockets inherited from the previous worker, by component, until claimed.
    inherited: Mutex<BTreeMap<String, OwnedFd>>,
    /// Routers start closed while recovering, and open when everything is back.
    recovering: AtomicBool,
    /// Wakes the recorder after a change.
    changed: tokio::sync::Notify,
    /// Held while recording; `true` once stopped (nothing is recorded after `stop_all`).
    recorder: tokio::sync::Mutex<bool>,
    /// Changes made so far, and the last of them recorded.
    generation: AtomicU64,
    recorded: watch::Sender<u64>,
}

impl Host {
    pub fn new(
        state_dir: &Path,
        store: Store,
        exe: PathBuf,
        supervisor: Option<Supervisor>,
        inherited: BTreeMap<String, OwnedFd>,
    ) -> Host {
        Host {
            state_dir: state_dir.to_path_buf(),
            host_id: state_dir.display().to_string(),
            started_at: crate::store::now_ts(),
            exe,
            store,
            comps: tokio::sync::Mutex::new(BTreeMap::new()),
            supervisor,
            inherited: Mutex::new(inherited),
            recovering: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            recorder: tokio::sync::Mutex::new(false),
            generation: AtomicU64::new(0),
            recorded: watch::channel(0).0,
        }
    }

    /// The supervisor's pid, when one runs this host.
    pub fn supervisor_pid(&self) -> Option<u32> {
        // SAFETY: getppid has no preconditions.
        self.supervisor
            .as_ref()
            .map(|_| unsafe { libc::getppid() } as u32)
    }

    /// Tell the supervisor (if any) that this worker serves.
    pub fn ready(&self) {
        if let Some(sup) = &self.supervisor {
            sup.ready();
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
            Request::ApplyRevision { rev, replicas } => {
                let r = self.apply_revision(&rev, replicas).await;
                self.recorded_within(RECORD_WAIT).await;
                r
            }
            Request::SetWeights { component, weights } => {
                let r = self.set_weights(&component, &weights).await;
                self.recorded_within(RECORD_WAIT).await;
                r
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
                let r = self.remove_revision(&component, &rev).await;
                self.recorded_within(RECORD_WAIT).await;
                r
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

    /// What running `replica` of `rev` on `ports` takes: its process, probe and backend.
    fn launch(
        &self,
        rev: &RevisionSpec,
        replica: u32,
        ports: BTreeMap<String, u16>,
    ) -> Result<Launch, String> {
        let run =
            rev.component.run.as_ref().ok_or_else(|| {
                format!("{}: run is required with provider local", rev.component.id)
            })?;
        let names = launch::port_names(rev);
        let first = names
            .first()
            .and_then(|n| ports.get(n))
            .copied()
            .unwrap_or(0);
        let x = |s: &str| expand(s, &self.exe, &rev.version, replica, &ports, first);
        let argv: Vec<String> = run.command.iter().map(|a| x(a)).collect::<Result<_, _>>()?;
        let program = argv.first().cloned().ok_or("run.command is empty")?;
        super::process::resolve(&program)
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
            env.push((launch::port_env(n), p.to_string()));
        }
        let id = format!("{}#{replica}", rev.key);
        env.push((super::process::HOST_ENV.into(), self.host_id.clone()));
        env.push((super::process::INSTANCE_ENV.into(), id.clone()));
        env.push(("CUTOVER_VERSION".into(), rev.version.clone()));
        let log = self
            .state_dir
            .join("logs")
            .join(launch::safe_name(&rev.component.id))
            .join(format!("{}-{replica}.log", launch::safe_name(&rev.key.0)));
        let probe_spec = launch::probe_spec(rev, &self.exe, replica, &ports, first)?;
        let addr: SocketAddr = format!("127.0.0.1:{first}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let backend = Arc::new(Backend::new(id.clone(), addr));
        let spec = ProcSpec {
            id,
            argv,
            env,
            log,
            state_dir: self.state_dir.clone(),
            grace: GRACE,
        };
        Ok(Launch {
            spec,
            probe: probe_spec,
            backend,
            ports,
        })
    }

    /// Start `replica` of `rev` on fresh ports, or adopt the process an earlier host left
    /// running as it (see `recover`).
    async fn start_instance(
        &self,
        rev: &RevisionSpec,
        replica: u32,
        adopt: Option<Adoptable>,
    ) -> Result<Instance, String> {
        let ports = match &adopt {
            Some(a) => a.ports.clone(),
            None => {
                let mut ports = BTreeMap::new();
                for n in launch::port_names(rev) {
                    ports.insert(
                        n,
                        launch::free_port().map_err(|e| format!("no free port: {e}"))?,
                    );
                }
                ports
            }
        };
        let Launch {
            spec,
            probe: mut probe_spec,
            backend,
            ports,
        } = self.launch(rev, replica, ports)?;
        let id = spec.id.clone();
        let log = spec.log.clone();
        let program = spec.argv.first().cloned().unwrap_or_default();
        let probe_status = Arc::new(Mutex::new(ProbeStatus::default()));
        let (b2, p2) = (backend.clone(), probe_status.clone());
        let on_exit = Arc::new(move |_: &str| probe::reset(&b2, &p2));
        let proc = match &adopt {
            Some(a) => {
                let proc = Supervised::adopt(spec, a.pid, on_exit)
                    .map_err(|e| format!("{id}: cannot adopt process {}: {e}", a.pid))?;
                // It served before: one passing check makes it ready at once, so the router
                // sends to it as soon as it opens.
                recover::probe_now(&probe_spec, &backend, &probe_status).await;
                probe_spec.initial_delay = Duration::ZERO;
                proc
            }
            None => Supervised::start(spec, on_exit)
                .map_err(|e| format!("{}: cannot start `{program}`: {e}", rev.component.id))?,
        };
        let (probe_stop, stop_rx) = watch::channel(false);
        tokio::spawn(probe::run(
            probe_spec,
            backend.clone(),
            probe_status.clone(),
            stop_rx,
        ));
        Ok(Instance {
            id,
            replica,
            ports,
            backend,
            proc,
            probe: probe_status,
            probe_stop,
            log,
        })
    }

    pub async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), String> {
        self.apply_revision_with(rev, replicas, &mut BTreeMap::new())
            .await
    }

    /// Run `replicas` instances of `rev`, adopting those in `adopt` (by instance id).
    async fn apply_revision_with(
        &self,
        rev: &RevisionSpec,
        replicas: u32,
        adopt: &mut BTreeMap<String, Adoptable>,
    ) -> Result<(), String> {
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
                self.close_router(&comp_id, &old.router).await;
            }
        }
        if !comps.contains_key(&comp_id) {
            let router = self.router_for(&comp_id, listen)?;
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
            let id = format!("{}#{replica}", rev.key);
            match self.start_instance(rev, replica, adopt.remove(&id)).await {
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
        self.note_change();
        for i in retiring {
            tokio::spawn(i.retire());
        }
        Ok(())
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
        self.note_change();
        Ok(())
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
                    phase: None,
                    age_s: None,
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
        self.note_change();
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
                                since_start: r.window.cumulative(),
                                instances: r.instances.iter().map(Instance::view).collect(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        HostStatus {
            pid: std::process::id(),
            supervisor_pid: self.supervisor_pid(),
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
            self.close_router(&c.router.component, &c.router).await;
        }
        for t in tasks {
            let _ = t.await;
        }
        let mut stopped = self.recorder.lock().await;
        *stopped = true;
        if let Err(e) = self.store.call(table::clear).await {
            tracing::error!("cannot record that the host stopped everything: {e}");
        }
    }
}
