//! Helpers shared by the integration tests. Each test binary includes this module with
//! `mod common;` (allowing dead code: a binary uses only part of it).
//!
//! - Processes: the `cutover` binary under a state dir, commands run to a deadline, lines read
//!   as they come, waiting for a child to exit, the seed specs.
//! - The local runtime: a free port, a guard that stops `cutover host`, specs of the demo service,
//!   `apply --json` as a child process, load through the router.
//! - The engine on the simulated platform: a provider that records (and can fail) calls, and
//!   waiting for a run's status, event or outcome.
//! - Skipping visibly when an outside program (prometheus, openssl, tmux) is missing: `skip`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cutover::engine::{
    Builtin, Engine, EngineConfig, Event, EventKind, Outcome, RunHandle, Status,
};
use cutover::governance::Governance;
use cutover::load::{self, LoadOptions, Sample};
use cutover::provider::lease::{LeaseError, LeaseHolder, Taken, TargetLease};
use cutover::provider::simulated::Simulated;
use cutover::provider::{
    Metrics, Provider, ProviderError, RevisionKey, RevisionSpec, RevisionStatus,
};
use cutover::spec::{self, ProviderKind, ValidSpec};
use cutover::store::Store;
use serde_json::Value;

pub mod kube;
pub mod skip;

pub const BIN: &str = env!("CARGO_BIN_EXE_cutover");

// ---------------------------------------------------------------------------------------------
// processes
// ---------------------------------------------------------------------------------------------

/// `cutover --state-dir STATE ARGS...`.
pub fn cutover(state: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--state-dir").arg(state).args(args);
    c
}

/// `cutover --state-dir STATE ARGS...` in `dir`, isolated from the user's environment (no
/// `CUTOVER_STATE_DIR` or `CUTOVER_CONFIG`, `XDG_CONFIG_HOME` inside `dir`, no colour), with no
/// input and its output piped.
pub fn isolated(state: impl AsRef<OsStr>, dir: &Path, args: &[&str]) -> Command {
    let mut c = cutover(state, args);
    c.current_dir(dir)
        .env_remove("CUTOVER_STATE_DIR")
        .env_remove("CUTOVER_CONFIG")
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Read `r` to its end on a thread.
pub fn drain(r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let mut r = r;
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// A finished command.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Out {
    pub fn code(&self) -> i32 {
        self.status.code().expect("exited normally")
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.took, self.stdout, self.stderr
        )
    }

    /// The `finished` event of `apply --json`.
    pub fn finished(&self) -> Value {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["kind"] == "finished")
            .unwrap_or_else(|| panic!("no finished event\n{}", self.explain()))
    }
}

/// Run `cmd` (`cutover ARGS...`, its output piped) to its end within `deadline`; one that
/// overruns is killed and this is an error.
pub fn run_within(mut cmd: Command, args: &[&str], deadline: Duration) -> Result<Out, String> {
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawn cutover: {e}"))?;
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("wait for cutover {args:?}: {e}"));
            }
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "cutover {args:?} did not finish within {deadline:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Out {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took: start.elapsed(),
    })
}

/// Every line of `r`, sent on as it comes; `r` is read to its end even when nobody listens any
/// more (so the writer never blocks). The thread ends at the end of `r`.
pub fn lines_of(r: impl Read + Send + 'static) -> (Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (rx, reader)
}

/// The first line containing `needle`, waiting at most `within` for each line and for all.
pub fn until_line(rx: &Receiver<String>, needle: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let line = rx
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("no line with {needle} within {within:?}: {e:?}"));
        if line.contains(needle) {
            return line;
        }
        assert!(
            start.elapsed() < within,
            "no line with {needle} within {within:?}"
        );
    }
}

/// Wait for `child` to exit; one still running after `within` is killed, and the test fails
/// with `what`.
pub fn wait_exit(child: &mut Child, within: Duration, what: impl Fn() -> String) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}", what());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `specs/NAME` of this repository.
pub fn seed_spec(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(name)
}

/// Write `text` to DIR/NAME.
pub fn write_in(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `specs/NAME` with every `1.2.0` made `1.1.0`, written to DIR/v110-NAME.
pub fn v110(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(seed_spec(name)).unwrap();
    write_in(
        dir,
        &format!("v110-{name}"),
        &text.replace("1.2.0", "1.1.0"),
    )
}

/// Start `cmd`, an `apply --json` of a run with a gate, and wait (at most `within`) until its
/// gate waits; returns the child and the rest of its lines. Its stderr is dropped.
pub fn start_until_gate(mut cmd: Command, within: Duration) -> (Child, Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (rx, _) = lines_of(child.stdout.take().unwrap());
    until_line(&rx, "\"gate_waiting\"", within);
    (child, rx)
}

// ---------------------------------------------------------------------------------------------
// the local runtime
// ---------------------------------------------------------------------------------------------

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `cutover host stop` for STATE, whatever it says.
pub fn stop_host(state: &Path) {
    let _ = cutover(state, &["host", "stop"])
        .stdout(Stdio::null())
        .status();
}

/// One state dir (also the host's id); stops the host (and so every instance) even when a test
/// fails, and checks that no process of it is left.
pub struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    pub fn new() -> Host {
        Host {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn id(&self) -> String {
        self.dir.path().display().to_string()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        stop_host(self.path());
        let left = cutover::local::process::find_owned(&self.id());
        if !std::thread::panicking() {
            assert!(left.is_empty(), "processes left behind: {left:?}");
        }
    }
}

/// The health check most local specs use.
pub const HTTP_HEALTH: &str = "{type: http, endpoint: /health, port: 8080, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2}";

/// The `run` of the demo service on `{port}` as `{version}`, with `args` after.
pub fn demo_run(args: &[&str]) -> String {
    let args: String = args.iter().map(|a| format!(", '{a}'")).collect();
    format!("{{command: ['{{self}}', demo-service, --port, '{{port}}', --version, '{{version}}'{args}]}}")
}

/// The head of a local spec: one component `web` listening on 127.0.0.1:PORT behind the router.
/// By default deployment `shop`, canary, environment `test`, one instance of the demo service
/// probed by [`HTTP_HEALTH`]. Callers append the rest (rollback, metadata...).
pub struct LocalSpec<'a> {
    id: &'a str,
    version: &'a str,
    strategy: &'a str,
    environment: &'a str,
    replicas: u32,
    port: u16,
    run: String,
    health: &'a str,
}

impl<'a> LocalSpec<'a> {
    pub fn demo(version: &'a str, port: u16) -> Self {
        LocalSpec {
            id: "shop",
            version,
            strategy: "canary",
            environment: "test",
            replicas: 1,
            port,
            run: demo_run(&[]),
            health: HTTP_HEALTH,
        }
    }

    pub fn id(self, id: &'a str) -> Self {
        LocalSpec { id, ..self }
    }

    pub fn strategy(self, strategy: &'a str) -> Self {
        LocalSpec { strategy, ..self }
    }

    pub fn environment(self, environment: &'a str) -> Self {
        LocalSpec {
            environment,
            ..self
        }
    }

    pub fn replicas(self, replicas: u32) -> Self {
        LocalSpec { replicas, ..self }
    }

    /// The demo service with `args` after its own.
    pub fn args(self, args: &[&str]) -> Self {
        self.run(&demo_run(args))
    }

    pub fn run(self, run: &str) -> Self {
        LocalSpec {
            run: run.to_string(),
            ..self
        }
    }

    pub fn health(self, health: &'a str) -> Self {
        LocalSpec { health, ..self }
    }

    pub fn yaml(&self) -> String {
        let LocalSpec {
            id,
            version,
            strategy,
            environment,
            replicas,
            port,
            run,
            health,
        } = self;
        format!(
            "id: {id}
name: {id}
version: '{version}'
strategy: {strategy}
environment: {environment}
components:
  - id: web
    name: web
    version: '{version}'
    replicas: {replicas}
    listen: 127.0.0.1:{port}
    run: {run}
    healthCheck: {health}
infrastructure:
  provider: local
"
        )
    }
}

/// `cutover --state-dir STATE apply SPEC --headless --json` as a child process: stdout piped,
/// stderr inherited, killed when dropped.
pub fn spawn_apply(state: &Path, spec: &Path) -> tokio::process::Child {
    let apply = cutover(
        state,
        &["apply", spec.to_str().unwrap(), "--headless", "--json"],
    );
    tokio::process::Command::from(apply)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The wall time of an event.
pub fn ts(ev: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(ev["ts"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// One response the load generator got, with the wall time its request was sent.
pub struct Timed {
    pub sent: DateTime<Utc>,
    pub version: Option<String>,
    pub status: Option<u16>,
}

/// Open-loop load through the router for at most `duration`, recording every response; stopped
/// on drop.
pub struct Load {
    handle: tokio::task::JoinHandle<load::LoadReport>,
    samples: Arc<Mutex<Vec<Timed>>>,
}

impl Load {
    pub fn start(port: u16, rps: u32, duration: Duration) -> Load {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sink = samples.clone();
        let start = Utc::now();
        let handle = tokio::spawn(async move {
            let mut opts = LoadOptions::new(format!("http://127.0.0.1:{port}/"), rps, duration);
            opts.timeout = Duration::from_secs(5);
            load::run_with_observer(opts, move |s: Sample| {
                let sent = start + chrono::Duration::from_std(s.at).unwrap();
                sink.lock().unwrap().push(Timed {
                    sent,
                    version: s.version,
                    status: s.status,
                });
            })
            .await
            .unwrap()
        });
        Load { handle, samples }
    }

    /// Keep the load going until it has recorded `n` responses, for at most `within` (a short
    /// rollout on a fast machine may end before the load has said much).
    pub async fn at_least(&self, n: usize, within: Duration) {
        let end = std::time::Instant::now() + within;
        while self.samples.lock().unwrap().len() < n && std::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the load and take what it recorded.
    pub fn stop(self) -> Vec<Timed> {
        self.handle.abort();
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// the engine on the simulated platform
// ---------------------------------------------------------------------------------------------

pub fn load_spec(text: &str) -> ValidSpec {
    spec::load_str(text).unwrap_or_else(|d| panic!("spec does not load: {d:?}"))
}

/// The simulated platform, under another name if need be, with every mutating call noted, and
/// the Nth of them (1-based) failed once if asked: the same `Simulated` underneath, so its
/// state persists across engines like a real host's.
pub struct Recorder {
    inner: Arc<Simulated>,
    kind: ProviderKind,
    fail_at: Option<usize>,
    calls: Mutex<Vec<String>>,
    lease: Option<Arc<MemLease>>,
}

impl Recorder {
    pub fn new(inner: Arc<Simulated>, kind: ProviderKind) -> Arc<Recorder> {
        Arc::new(Recorder {
            inner,
            kind,
            fail_at: None,
            calls: Mutex::new(Vec::new()),
            lease: None,
        })
    }

    /// A platform that holds its targets in `lease` too, as a cluster does for every machine.
    pub fn leasing(inner: Arc<Simulated>, lease: Arc<MemLease>) -> Arc<Recorder> {
        Arc::new(Recorder {
            inner,
            kind: ProviderKind::Simulated,
            fail_at: None,
            calls: Mutex::new(Vec::new()),
            lease: Some(lease),
        })
    }

    /// Fails the `n`th mutating call, once.
    pub fn failing_at(inner: Arc<Simulated>, n: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            inner,
            kind: ProviderKind::Simulated,
            fail_at: Some(n),
            calls: Mutex::new(Vec::new()),
            lease: None,
        })
    }

    fn note(&self, what: &str, call: String) -> Result<(), ProviderError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call);
            calls.len()
        };
        if self.fail_at == Some(n) {
            return Err(ProviderError::Failed(format!(
                "injected failure on call {n} ({what})"
            )));
        }
        Ok(())
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
}

#[async_trait]
impl Provider for Recorder {
    fn kind(&self) -> ProviderKind {
        self.kind
    }
    async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), ProviderError> {
        self.note("apply", format!("apply {} x{replicas}", rev.key))?;
        self.inner.apply_revision(rev, replicas).await
    }
    async fn set_weights(
        &self,
        c: &str,
        w: &[(RevisionKey, u32)],
    ) -> Result<cutover::provider::Split, ProviderError> {
        let list: Vec<String> = w.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.note("weights", format!("weights {}", list.join(",")))?;
        self.inner.set_weights(c, w).await
    }
    async fn revision_status(
        &self,
        c: &str,
        r: &RevisionKey,
    ) -> Result<RevisionStatus, ProviderError> {
        self.inner.revision_status(c, r).await
    }
    async fn metrics(
        &self,
        c: &str,
        r: &RevisionKey,
        w: Duration,
    ) -> Result<Metrics, ProviderError> {
        self.inner.metrics(c, r, w).await
    }
    async fn remove_revision(&self, c: &str, r: &RevisionKey) -> Result<(), ProviderError> {
        self.note("remove", format!("remove {r}"))?;
        self.inner.remove_revision(c, r).await
    }
    fn lease(&self) -> Option<Arc<dyn TargetLease>> {
        self.lease.clone().map(|l| l as Arc<dyn TargetLease>)
    }
}

/// A platform's leases in memory, on the (virtual) tokio clock: what a Kubernetes Lease per
/// component does, for engine tests.
pub struct MemLease {
    ttl: Duration,
    held: Mutex<std::collections::BTreeMap<String, (LeaseHolder, tokio::time::Instant)>>,
}

impl MemLease {
    pub fn new(ttl: Duration) -> Arc<MemLease> {
        Arc::new(MemLease {
            ttl,
            held: Mutex::new(Default::default()),
        })
    }

    /// Who holds `target` now (unexpired).
    pub fn holder(&self, target: &str) -> Option<LeaseHolder> {
        let now = tokio::time::Instant::now();
        self.held
            .lock()
            .unwrap()
            .get(target)
            .filter(|(_, until)| *until > now)
            .map(|(h, _)| h.clone())
    }

    /// Another driver takes `target` (as one may once this holder's lease has expired).
    pub fn steal(&self, target: &str, by: LeaseHolder) {
        let until = tokio::time::Instant::now() + self.ttl;
        self.held
            .lock()
            .unwrap()
            .insert(target.to_string(), (by, until));
    }

    fn take(
        &self,
        targets: &[String],
        holder: &LeaseHolder,
        renewing: bool,
    ) -> Result<(), LeaseError> {
        let now = tokio::time::Instant::now();
        let mut held = self.held.lock().unwrap();
        for t in targets {
            match held.get(t) {
                Some((h, until)) if h != holder && *until > now => {
                    return Err(LeaseError::Held(Taken {
                        target: t.clone(),
                        holder: h.clone(),
                        expires_in: *until - now,
                    }))
                }
                None if renewing => {
                    return Err(LeaseError::Unavailable(format!("{t}: not held")));
                }
                _ => {}
            }
        }
        for t in targets {
            held.insert(t.clone(), (holder.clone(), now + self.ttl));
        }
        Ok(())
    }
}

#[async_trait]
impl TargetLease for MemLease {
    fn ttl(&self) -> Duration {
        self.ttl
    }
    async fn acquire(&self, targets: &[String], holder: &LeaseHolder) -> Result<(), LeaseError> {
        self.take(targets, holder, false)
    }
    async fn renew(&self, targets: &[String], holder: &LeaseHolder) -> Result<(), LeaseError> {
        self.take(targets, holder, true)
    }
    async fn release(&self, targets: &[String], holder: &LeaseHolder) {
        let mut held = self.held.lock().unwrap();
        for t in targets {
            if held.get(t).is_some_and(|(h, _)| h == holder) {
                held.remove(t);
            }
        }
    }
}

/// An engine on the virtual clock over `store` and `provider`, governed by `governance`.
pub fn engine(store: &Store, provider: Arc<dyn Provider>, governance: Governance) -> Engine {
    Engine::new(EngineConfig {
        store: store.clone(),
        provider,
        signals: Arc::new(Builtin::default()),
        virtual_clock: true,
        poll_store: false,
        governance,
        wall_clock_gates: false,
    })
}

/// Wait (an hour of virtual time at most between changes) until run `run` has status `want`.
pub async fn wait_status(e: &Engine, run: i64, want: Status) {
    let mut rx = e.snapshots();
    for _ in 0..10_000 {
        if rx.borrow().get(&run).map(|s| s.status) == Some(want) {
            return;
        }
        if tokio::time::timeout(Duration::from_secs(3600), rx.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    panic!("run {run} never reached {want:?}");
}

/// A run's outcome, within six hours of virtual time.
pub async fn outcome_of(h: RunHandle) -> Outcome {
    match tokio::time::timeout(Duration::from_secs(6 * 3600), h.join).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => panic!("run {} did not finish", h.run_id),
    }
}

/// The next event of `run` that `pick` accepts, within `within` of virtual time.
pub async fn next_event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    run: i64,
    within: Duration,
    pick: impl Fn(&EventKind) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(ev)) if ev.run == run => {
                if let Some(t) = pick(&ev.kind) {
                    return t;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("event stream of run {run}: {e}"),
            Err(_) => panic!("run {run}: the awaited event never came"),
        }
    }
}

/// The journal of a run as the store has it (as another process reads it): each row's kind and
/// its event.
pub fn journal_rows(store: &Store, run: i64) -> Vec<(String, Event)> {
    store
        .events(run, 0)
        .unwrap()
        .into_iter()
        .map(|row| {
            let ev: Event = serde_json::from_str(&row.json)
                .unwrap_or_else(|e| panic!("journal event {}: {e}", row.kind));
            (row.kind, ev)
        })
        .collect()
}

/// Only the revision of component `api` whose version starts with `version_prefix` takes
/// traffic and runs.
pub fn only_on(sim: &Simulated, version_prefix: &str) {
    let weights = sim.weights("api");
    let on: Vec<_> = weights.iter().filter(|(_, v)| **v > 0).collect();
    assert_eq!(on.len(), 1, "weights {weights:?}");
    assert!(
        on[0].0 .0.starts_with(&format!("api@{version_prefix}")),
        "weights {weights:?}"
    );
    assert_eq!(*on[0].1, 100, "weights {weights:?}");
    let revs = sim.revisions("api");
    assert_eq!(revs.len(), 1, "only one revision should remain: {revs:?}");
}

// ---------------------------------------------------------------------------------------------
// OS users
// ---------------------------------------------------------------------------------------------

/// Whether the tests run as root (creating OS users needs it).
pub fn root() -> bool {
    cutover::identity::real_uid() == 0
}

/// OS users and a group made for the test, removed afterwards.
pub struct Users {
    pub group: String,
    pub users: Vec<String>,
}

impl Users {
    pub fn create(tag: &str) -> Users {
        let group = format!("cotest{tag}");
        let users: Vec<String> = ["alice", "bob"]
            .iter()
            .map(|u| format!("co{u}{tag}"))
            .collect();
        let made = Users {
            group: group.clone(),
            users: users.clone(),
        };
        let ok = Command::new("groupadd").arg(&group).status().unwrap();
        assert!(ok.success(), "groupadd");
        for u in &users {
            let ok = Command::new("useradd")
                .args(["-M", "-N", "-g", &group, "-s", "/bin/sh", u])
                .status()
                .unwrap();
            assert!(ok.success(), "useradd {u}");
        }
        made
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).status();
        }
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}
