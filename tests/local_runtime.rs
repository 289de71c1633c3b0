//! The local runtime for real: `cutover host` with supervised processes, health probes of every
//! type, crash restarts, the weighted router, stopping and replacing a host.
//!
//! Every test has its own state dir (a temp dir, also the host id) and its own free listen port,
//! so tests run in parallel. A guard stops the host when the test ends, even on panic, and checks
//! that no process of that host is left. Every wait is bounded by a deadline.

#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, isolated, run_within, write_in, LocalSpec, Out, BIN, HTTP_HEALTH};
use cutover::local::client::{ensure_host, HostClient, LocalProvider};
use cutover::local::process::find_owned;
use cutover::local::proto::{HostStatus, InstanceView, RevisionView};
use cutover::provider::{Provider, RevisionKey, RevisionSpec};
use serde_json::Value;

/// Bound for any one command.
const DEADLINE: Duration = Duration::from_secs(15);

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Poll `f` until it returns Some, or panic with `what` at the deadline.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test's world: a state dir with its own host, and a listen port for the component.
/// Dropping it stops the host and checks that nothing the host ran is left.
struct World {
    dir: tempfile::TempDir,
    /// The state dir exactly as passed to `--state-dir`: the host id.
    state: String,
    port: u16,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().display().to_string();
        World {
            dir,
            state,
            port: free_port(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        isolated(&self.state, self.path(), args)
    }

    /// Run a command to completion within the deadline (killed if it overruns).
    fn run(&self, args: &[&str]) -> Out {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `run`, but never panics (for the guard).
    fn try_run(&self, args: &[&str]) -> Result<Out, String> {
        run_within(self.command(args), args, DEADLINE)
    }

    /// A one-component local spec listening on this world's port.
    fn spec_text(&self, version: &str, replicas: u32, run: &str, health: &str) -> String {
        LocalSpec::demo(version, self.port)
            .id("rt")
            .environment("local")
            .replicas(replicas)
            .run(run)
            .health(health)
            .yaml()
    }

    fn write_spec(
        &self,
        name: &str,
        version: &str,
        replicas: u32,
        run: &str,
        health: &str,
    ) -> PathBuf {
        write_in(
            self.path(),
            name,
            &self.spec_text(version, replicas, run, health),
        )
    }

    fn apply(&self, spec: &Path) -> Out {
        self.run(&["apply", spec.to_str().unwrap(), "--json"])
    }

    /// `host status --json`: None when no host runs.
    fn status(&self) -> Option<HostStatus> {
        let out = self.run(&["host", "status", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.explain());
        let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
            panic!("host status --json: {e}\n{}", out.explain());
        });
        if v.get("running") == Some(&Value::Bool(false)) {
            return None;
        }
        Some(serde_json::from_value(v).unwrap())
    }

    fn running_status(&self) -> HostStatus {
        self.status().expect("a host runs")
    }

    /// The revisions the host runs for component `web`.
    fn revisions(&self) -> Vec<RevisionView> {
        self.running_status()
            .components
            .into_iter()
            .filter(|c| c.component == "web")
            .flat_map(|c| c.revisions)
            .collect()
    }

    /// Stop the host; wait until nothing it ran is left. Returns what is left.
    fn stop(&self) -> Vec<u32> {
        let host_pid = std::fs::read_to_string(self.path().join("host.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Err(e) = self.try_run(&["host", "stop"]) {
            eprintln!("{e}");
        }
        let start = Instant::now();
        loop {
            let left = find_owned(&self.state);
            let host_left = host_pid.is_some_and(alive);
            if (left.is_empty() && !host_left) || start.elapsed() > Duration::from_secs(10) {
                let mut left = left;
                if host_left {
                    left.extend(host_pid);
                }
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let left = self.stop();
        if !left.is_empty() {
            // Do not leak them into other tests, whatever happens.
            for pid in &left {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(*pid as i32, libc::SIGKILL);
                }
            }
            if !std::thread::panicking() {
                panic!("processes left after `host stop`: {left:?}");
            }
        }
    }
}

/// A plain HTTP/1.1 GET over a fresh connection: status, headers (lowercased names), body.
struct Reply {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn get(port: u16, path: &str, extra: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        code,
        headers,
        body: body.to_string(),
    })
}

const DEMO: &str = "{command: ['{self}', demo-service, --port, '{port}', --version, '{version}']}";
const DEMO_FAILING: &str =
    "{command: ['{self}', demo-service, --port, '{port}', --version, '{version}', --fail-health]}";

fn probe(kind_and_target: &str) -> String {
    format!("{{{kind_and_target}, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2}}")
}

/// Apply a first deployment that must succeed; its instances are ready with probe `kind`, and
/// the component answers on its listen port.
fn assert_probe_passes(w: &World, run: &str, health: &str, kind: &str) {
    let spec = w.write_spec("pass.yaml", "1.0.0", 1, run, health);
    let out = w.apply(&spec);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert_eq!(out.finished()["outcome"], "succeeded", "{}", out.explain());
    let revs = w.revisions();
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0].weight, 100);
    assert_eq!(revs[0].instances.len(), 1);
    let i = &revs[0].instances[0];
    assert!(i.running && i.ready, "{i:?}");
    assert_eq!(i.probe.kind, kind, "{i:?}");
    assert!(
        i.probe.ready && !i.probe.failing && i.probe.checks >= 1,
        "{i:?}"
    );
    assert_eq!(i.probe.last_error, None);
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.header("x-version"), Some("1.0.0"));
}

/// Apply a first deployment that must fail its health check: exit 1, the reason names the
/// failure, and the new revision is gone from the host.
fn assert_probe_fails(w: &World, run: &str, health: &str, expect: &[&str]) {
    let spec = w.write_spec("fail.yaml", "1.0.0", 1, run, health);
    let out = w.apply(&spec);
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(out.took < Duration::from_secs(10), "{}", out.explain());
    let fin = out.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{}", out.explain());
    let reason = fin["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unhealthy"), "{reason}");
    for e in expect {
        assert!(reason.contains(e), "reason lacks {e:?}: {reason}");
    }
    assert!(w.revisions().is_empty(), "{:?}", w.running_status());
    wait_for(
        "the failed instance to be stopped",
        Duration::from_secs(8),
        || find_owned(&w.state).is_empty().then_some(()),
    );
}

#[test]
fn http_probe_passes() {
    let w = World::new();
    assert_probe_passes(&w, DEMO, HTTP_HEALTH, "http");
}

#[test]
fn http_probe_fails_on_503() {
    let w = World::new();
    assert_probe_fails(
        &w,
        DEMO_FAILING,
        HTTP_HEALTH,
        &["http probe", "GET /health: HTTP 503"],
    );
}

/// The service listens on its first port (`http`); the probe targets a port by name.
const DEMO_TWO_PORTS: &str =
    "{command: ['{self}', demo-service, --port, '{port}', --version, '{version}'], ports: [http, admin]}";

#[test]
fn tcp_probe_passes_on_the_listening_port() {
    let w = World::new();
    assert_probe_passes(&w, DEMO_TWO_PORTS, &probe("type: tcp, port: http"), "tcp");
}

#[test]
fn tcp_probe_fails_on_a_port_nothing_listens_on() {
    let w = World::new();
    assert_probe_fails(
        &w,
        DEMO_TWO_PORTS,
        &probe("type: tcp, port: admin"),
        &["tcp probe", "connect 127.0.0.1:"],
    );
}

#[test]
fn exec_probe_passes() {
    let w = World::new();
    assert_probe_passes(&w, DEMO, &probe("type: exec, command: ['true']"), "exec");
}

#[test]
fn exec_probe_fails() {
    let w = World::new();
    assert_probe_fails(
        &w,
        DEMO,
        &probe("type: exec, command: ['false']"),
        &["exec probe", "exit status: 1"],
    );
}

#[test]
fn exec_probe_expands_placeholders() {
    let w = World::new();
    // Passes only if {version}, {replica}, {port} and {port.http} were replaced by this
    // instance's values.
    assert_probe_passes(
        &w,
        DEMO,
        &probe(
            "type: exec, command: [sh, -c, 'test \"$0\" = 1.0.0/0 && test \"$1\" -gt 1023 && test \"$1\" = \"$2\"', '{version}/{replica}', '{port}', '{port.http}']",
        ),
        "exec",
    );
}

const DEMO_GRPC: &str = "{command: ['{self}', demo-service, --port, '{port}', --grpc-port, '{port.grpc}', --version, '{version}'], ports: [http, grpc]}";
const DEMO_GRPC_FAILING: &str = "{command: ['{self}', demo-service, --port, '{port}', --grpc-port, '{port.grpc}', --version, '{version}', --fail-health], ports: [http, grpc]}";

#[test]
fn grpc_probe_passes_against_the_demo_health_server() {
    let w = World::new();
    assert_probe_passes(&w, DEMO_GRPC, &probe("type: grpc, port: grpc"), "grpc");
}

#[test]
fn grpc_probe_fails_on_not_serving() {
    let w = World::new();
    assert_probe_fails(
        &w,
        DEMO_GRPC_FAILING,
        &probe("type: grpc, port: grpc"),
        &["grpc probe", "NOT_SERVING"],
    );
}

#[test]
fn a_command_that_cannot_start_fails_early_and_clearly() {
    let w = World::new();
    let spec = w.write_spec(
        "missing.yaml",
        "1.0.0",
        1,
        "{command: [/no/such/binary, --port, '{port}']}",
        HTTP_HEALTH,
    );
    let out = w.apply(&spec);
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(out.took < Duration::from_secs(5), "{}", out.explain());
    let fin = out.finished();
    assert!(
        fin["outcome"] == "failed" || fin["outcome"] == "rolled_back",
        "{fin}"
    );
    let reason = fin["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("/no/such/binary"), "{reason}");
    assert!(w.revisions().is_empty(), "{:?}", w.running_status());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A revision of component `web` from a spec with this world's listen port.
fn revision(w: &World, key: &str, version: &str, run: &str, health: &str) -> RevisionSpec {
    let spec = cutover::spec::load_str(&w.spec_text(version, 1, run, health))
        .unwrap_or_else(|d| panic!("spec: {d:?}"));
    RevisionSpec {
        key: RevisionKey(key.into()),
        deployment: spec.id.clone(),
        version: version.into(),
        environment: spec.environment.clone(),
        component: spec.components[0].clone(),
        run: 1,
        step: 0,
    }
}

fn instance(w: &World, key: &str) -> Option<InstanceView> {
    w.revisions()
        .into_iter()
        .find(|r| r.key.0 == key)
        .and_then(|r| r.instances.into_iter().next())
}

#[test]
fn a_crashing_instance_is_restarted_and_reported() {
    let w = World::new();
    let rt = runtime();
    let client = rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap();
    let provider = LocalProvider::new(client);
    let run = "{command: ['{self}', demo-service, --port, '{port}', --version, '{version}', --crash-after-s, '1']}";
    let rev = revision(&w, "web@crash", "1.0.0", run, HTTP_HEALTH);
    rt.block_on(provider.apply_revision(&rev, 1)).unwrap();
    let first_pid = instance(&w, "web@crash").and_then(|i| i.pid).unwrap();
    let t0 = Instant::now();
    let i = wait_for("a restart after the crash", Duration::from_secs(8), || {
        instance(&w, "web@crash").filter(|i| i.restarts >= 1)
    });
    assert!(t0.elapsed() < Duration::from_secs(6));
    assert_eq!(i.last_exit.as_deref(), Some("exited with code 1"), "{i:?}");
    // Restarted with a fresh process; the old one is gone.
    let i = wait_for("the restarted process", Duration::from_secs(5), || {
        instance(&w, "web@crash").filter(|i| i.running && i.pid.is_some())
    });
    assert_ne!(i.pid, Some(first_pid));
    assert!(!alive(first_pid));
    // The provider reports the crash too.
    let st = rt
        .block_on(provider.revision_status("web", &RevisionKey("web@crash".into())))
        .unwrap();
    assert!(st.instances[0].restarts >= 1, "{st:?}");
    // And the human view names it.
    let out = w.run(&["host", "status"]);
    assert!(out.stdout.contains("restarts"), "{}", out.explain());
}

#[test]
fn host_stop_leaves_nothing_and_apply_starts_a_new_host() {
    let w = World::new();
    let spec = w.write_spec("v1.yaml", "1.0.0", 2, DEMO, HTTP_HEALTH);
    let out = w.apply(&spec);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let st = w.running_status();
    assert_eq!(st.state_dir, w.state);
    let host_pid = st.pid;
    let pids: Vec<u32> = st.components[0].revisions[0]
        .instances
        .iter()
        .filter_map(|i| i.pid)
        .collect();
    assert_eq!(pids.len(), 2);
    assert_eq!(
        find_owned(&w.state).into_iter().collect::<BTreeSet<_>>(),
        pids.iter().copied().collect::<BTreeSet<_>>()
    );

    // The socket is owner-only.
    let sock = w.path().join("host.sock");
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let out = w.run(&["host", "stop"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(out.stdout.contains("host stopped"), "{}", out.explain());
    assert!(!sock.exists(), "the socket is removed");
    wait_for("the host process to exit", Duration::from_secs(5), || {
        (!alive(host_pid)).then_some(())
    });
    let supervisor = st.supervisor_pid.expect("a supervisor ran the host");
    wait_for(
        "the host's supervisor to exit",
        Duration::from_secs(5),
        || (!alive(supervisor)).then_some(()),
    );
    for p in &pids {
        assert!(!alive(*p), "instance {p} left behind");
    }
    assert!(find_owned(&w.state).is_empty());
    assert!(get(w.port, "/", "").is_err(), "the router is closed");
    assert!(w.status().is_none());
    // Stopping again is harmless.
    let out = w.run(&["host", "stop"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(out.stdout.contains("no host runs"), "{}", out.explain());

    // The next apply starts a new host on demand.
    let other = w.path().join("other-env.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("environment: local", "environment: after-stop"),
    )
    .unwrap();
    let out = w.apply(&other);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let st = w.running_status();
    assert_ne!(st.pid, host_pid);
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.code, 200);
    assert_eq!(r.header("x-version"), Some("1.0.0"));
}

/// One canary stage straight to 100%: a quick rollout of a new version over the live one.
const ONE_STAGE: &str = "metadata:
  canaryConfig:
    stages:
      - {name: all, percentage: 100, duration: 0}
";

#[test]
fn apply_after_host_stop_deploys_the_new_version() {
    let w = World::new();
    let v1 = w.write_spec("v1.yaml", "1.0.0", 1, DEMO, HTTP_HEALTH);
    let out = w.apply(&v1);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = w.run(&["host", "stop"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let v2 = w.path().join("v2.yaml");
    std::fs::write(&v2, w.spec_text("1.1.0", 1, DEMO, HTTP_HEALTH) + ONE_STAGE).unwrap();
    let out = w.apply(&v2);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert_eq!(out.finished()["outcome"], "succeeded", "{}", out.explain());
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.header("x-version"), Some("1.1.0"));
}

/// The whole host killed (its supervisor: the worker dies with it): the instances outlive
/// both, and the next host, started on demand, adopts them (issue 11: adopt rather than restart)
/// with their weights, and kills what nobody accounts for. (Killing only the worker is in
/// `tests/host_crash.rs`: the supervisor restarts it at once.)
#[test]
fn a_host_started_after_the_whole_host_died_adopts_what_ran() {
    let w = World::new();
    let spec = w.write_spec("v1.yaml", "1.0.0", 2, DEMO, HTTP_HEALTH);
    let out = w.apply(&spec);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let before = w.running_status();
    let supervisor = before.supervisor_pid.expect("a supervisor runs the host");
    let rev = &before.components[0].revisions[0];
    let old: BTreeSet<u32> = rev.instances.iter().filter_map(|i| i.pid).collect();
    assert_eq!(old.len(), 2);

    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(supervisor as i32, libc::SIGKILL);
    }
    wait_for(
        "the supervisor and its worker to die",
        Duration::from_secs(5),
        || (!alive(supervisor) && !alive(before.pid)).then_some(()),
    );
    // Its instances outlive it (own process groups) until a new host takes over.
    assert_eq!(
        find_owned(&w.state).into_iter().collect::<BTreeSet<_>>(),
        old
    );
    assert!(w.status().is_none(), "host status does not start a host");
    // A process carrying the host's mark that no record accounts for.
    let mut stray = {
        use std::os::unix::process::CommandExt;
        Command::new("sleep")
            .arg("30")
            .env(cutover::local::process::HOST_ENV, &w.state)
            .env(cutover::local::process::INSTANCE_ENV, "web@gone#0")
            .process_group(0)
            .spawn()
            .unwrap()
    };

    let rt = runtime();
    let client = rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap();
    let after = rt.block_on(client.status()).unwrap();
    assert_ne!(after.pid, before.pid);
    let revs = wait_for("the revision ready again", Duration::from_secs(8), || {
        let revs = w.revisions();
        revs.iter()
            .all(|r| r.instances.iter().all(|i| i.ready))
            .then_some(revs)
    });
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].key, rev.key);
    assert_eq!(revs[0].weight, rev.weight);
    assert_eq!(revs[0].weight, 100);
    let now: BTreeSet<u32> = revs[0].instances.iter().filter_map(|i| i.pid).collect();
    assert_eq!(now, old, "the same processes, adopted");
    assert!(revs[0].instances.iter().all(|i| i.restarts == 0));
    let st = stray.wait().unwrap();
    assert!(!st.success(), "the stray process is killed: {st:?}");
    assert_eq!(
        find_owned(&w.state).into_iter().collect::<BTreeSet<_>>(),
        old
    );
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.header("x-version"), Some("1.0.0"));
    // The API answers on the same socket.
    assert!(rt.block_on(HostClient::new(w.path()).ping()));
}

#[test]
fn router_answers_503_without_a_ready_instance_and_502_when_the_backend_is_down() {
    let w = World::new();
    let rt = runtime();
    let provider = LocalProvider::new(rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap());
    let sick = revision(&w, "web@sick", "0.9.0", DEMO_FAILING, HTTP_HEALTH);
    rt.block_on(provider.apply_revision(&sick, 1)).unwrap();
    rt.block_on(provider.set_weights("web", &[(sick.key.clone(), 100)]))
        .unwrap();
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.code, 503, "{}", r.body);
    assert!(r.body.contains("no ready instance"), "{}", r.body);

    // Ready by an exec probe, but nothing listens on its port: the router answers 502.
    let mute = revision(
        &w,
        "web@mute",
        "1.0.0",
        "{command: [sleep, '30']}",
        &probe("type: exec, command: ['true']"),
    );
    rt.block_on(provider.apply_revision(&mute, 1)).unwrap();
    rt.block_on(provider.set_weights("web", &[(mute.key.clone(), 100)]))
        .unwrap();
    wait_for("the mute instance ready", Duration::from_secs(5), || {
        instance(&w, "web@mute").filter(|i| i.ready)
    });
    let r = get(w.port, "/", "").unwrap();
    assert_eq!(r.code, 502, "{}", r.body);
    let revs = w.revisions();
    let mute_view = revs.iter().find(|r| r.key == mute.key).unwrap();
    assert!(mute_view.transport_errors >= 1, "{mute_view:?}");
}

#[test]
fn router_forwards_with_x_forwarded_for_and_without_hop_by_hop_headers() {
    let w = World::new();
    let rt = runtime();
    let provider = LocalProvider::new(rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap());
    // The instance does not listen; this test listens on its port instead and echoes headers.
    let rev = revision(
        &w,
        "web@echo",
        "1.0.0",
        "{command: [sleep, '30']}",
        &probe("type: exec, command: ['true']"),
    );
    rt.block_on(provider.apply_revision(&rev, 1)).unwrap();
    rt.block_on(provider.set_weights("web", &[(rev.key.clone(), 100)]))
        .unwrap();
    let i = wait_for("the instance ready", Duration::from_secs(5), || {
        instance(&w, "web@echo").filter(|i| i.ready)
    });
    let backend = TcpListener::bind(("127.0.0.1", i.ports["http"])).unwrap();
    backend.set_nonblocking(true).unwrap();
    let echo = std::thread::spawn(move || -> String {
        let mut s = wait_for("the router to connect", Duration::from_secs(10), || {
            backend.accept().ok().map(|(s, _)| s)
        });
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
            match s.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nx-version: echo\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
            head.len()
        );
        head
    });
    let r = get(
        w.port,
        "/echo?q=1",
        "X-Forwarded-For: 10.1.2.3\r\nX-Hop: secret\r\nX-Keep: 1\r\nTE: trailers\r\nConnection: x-hop\r\n",
    )
    .unwrap();
    let seen = echo.join().unwrap().to_ascii_lowercase();
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.header("x-version"), Some("echo"));
    assert!(seen.starts_with("get /echo?q=1 http/1.1\r\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1\r\n"),
        "{seen}"
    );
    assert!(seen.contains("x-keep: 1\r\n"), "{seen}");
    assert!(!seen.contains("x-hop"), "{seen}");
    assert!(!seen.contains("\r\nte:"), "{seen}");
}

/// The router belongs to the component, not to a revision: with every revision removed (a
/// recreate's downtime) the listen address answers 503 instead of refusing connections, and the
/// next revision is routed there at once. A component left with no revision may move to a new
/// address; `host stop` closes it.
#[test]
fn the_listener_outlives_the_revisions_behind_it() {
    let w = World::new();
    let rt = runtime();
    let provider = LocalProvider::new(rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap());
    let serve = |key: &str, version: &str, rev: &RevisionSpec| {
        rt.block_on(provider.apply_revision(rev, 1))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        rt.block_on(provider.set_weights("web", &[(rev.key.clone(), 100)]))
            .unwrap();
        wait_for(&format!("{key} answering"), Duration::from_secs(8), || {
            get(w.port, "/", "")
                .ok()
                .filter(|r| r.code == 200 && r.header("x-version") == Some(version))
        });
    };
    let a = revision(&w, "web@a", "1.0.0", DEMO, HTTP_HEALTH);
    serve("web@a", "1.0.0", &a);
    // Remove it and, straight away, start the next one on the same address.
    rt.block_on(provider.set_weights("web", &[])).unwrap();
    rt.block_on(provider.remove_revision("web", &a.key))
        .unwrap();
    let b = revision(&w, "web@b", "1.1.0", DEMO, HTTP_HEALTH);
    serve("web@b", "1.1.0", &b);

    // No revision at all, and no process left: the router still answers, 503.
    rt.block_on(provider.remove_revision("web", &b.key))
        .unwrap();
    wait_for("the instances to stop", Duration::from_secs(10), || {
        find_owned(&w.state).is_empty().then_some(())
    });
    for _ in 0..3 {
        let r = get(w.port, "/", "").expect("the listener is still open");
        assert_eq!(r.code, 503, "{}", r.body);
        assert!(r.body.contains("no ready instance"), "{}", r.body);
    }
    let st = w.running_status();
    assert_eq!(st.components.len(), 1, "{st:?}");
    assert_eq!(st.components[0].listen, format!("127.0.0.1:{}", w.port));
    assert!(st.components[0].revisions.is_empty(), "{st:?}");
    let out = w.run(&["host", "status"]);
    assert!(out.stdout.contains("no revision"), "{}", out.explain());

    // With no revision behind it, the component may move to another address.
    let moved = free_port();
    let mut c = revision(&w, "web@c", "1.2.0", DEMO, HTTP_HEALTH);
    c.component.listen = Some(format!("127.0.0.1:{moved}"));
    rt.block_on(provider.apply_revision(&c, 1)).unwrap();
    rt.block_on(provider.set_weights("web", &[(c.key.clone(), 100)]))
        .unwrap();
    wait_for("1.2.0 on the new address", Duration::from_secs(8), || {
        get(moved, "/", "")
            .ok()
            .filter(|r| r.code == 200 && r.header("x-version") == Some("1.2.0"))
    });
    wait_for("the old address closed", Duration::from_secs(5), || {
        get(w.port, "/", "").is_err().then_some(())
    });
    // While a revision runs behind it, it may not.
    let d = revision(&w, "web@d", "1.3.0", DEMO, HTTP_HEALTH);
    let err = rt.block_on(provider.apply_revision(&d, 1)).unwrap_err();
    assert!(err.to_string().contains("already routed"), "{err}");
}

/// `status` of a run on the local host says whether its traffic is live: while the host does not
/// answer, the traffic shown is the last recorded, and marked so.
#[test]
fn status_marks_traffic_as_last_recorded_while_the_host_is_down() {
    let w = World::new();
    let v1 = w.write_spec("v1.yaml", "1.0.0", 1, DEMO, HTTP_HEALTH);
    let out = w.apply(&v1);
    assert_eq!(out.code(), 0, "{}", out.explain());
    // A canary that holds 20% for a minute.
    let v2 = write_in(
        w.path(),
        "v2.yaml",
        &format!(
            "{}metadata:
  canaryConfig:
    stages:
      - {{name: c20, percentage: 20, duration: 60s}}
      - {{name: full, percentage: 100, duration: 0}}
",
            w.spec_text("2.0.0", 1, DEMO, HTTP_HEALTH)
        ),
    );
    let mut apply = w
        .command(&["apply", v2.to_str().unwrap(), "--json"])
        .spawn()
        .unwrap();
    let (lines, _) = common::lines_of(apply.stdout.take().unwrap());
    common::until_line(&lines, "\"traffic_shifted\"", Duration::from_secs(20));
    let live = w.run(&["status", "rt"]);
    assert!(
        live.stdout.contains("traffic:   web:"),
        "{}",
        live.explain()
    );
    assert!(!live.stdout.contains("last recorded"), "{}", live.explain());
    let v: Value = serde_json::from_str(w.run(&["status", "rt", "--json"]).stdout.trim()).unwrap();
    assert_eq!(v["host_answering"], true, "{v}");
    assert_eq!(v["traffic_live"], true, "{v}");

    // The whole host dies (its supervisor, and the worker with it).
    let st = w.running_status();
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(st.supervisor_pid.unwrap() as i32, libc::SIGKILL);
    }
    wait_for("the host to die", Duration::from_secs(5), || {
        (!alive(st.pid)).then_some(())
    });
    let stale = w.run(&["status", "rt"]);
    assert!(
        stale.stdout.contains("the local host does not answer"),
        "{}",
        stale.explain()
    );
    assert!(
        stale.stdout.contains("2.0.0") && stale.stdout.contains("(last recorded)"),
        "{}",
        stale.explain()
    );
    let list = w.run(&["status"]);
    assert!(
        list.stdout.contains("(local host down)"),
        "{}",
        list.explain()
    );
    let v: Value = serde_json::from_str(w.run(&["status", "rt", "--json"]).stdout.trim()).unwrap();
    assert_eq!(v["host_answering"], false, "{v}");
    assert_eq!(v["traffic_live"], false, "{v}");
    assert!(w.status().is_none(), "status does not start a host");

    // Clean up: the apply, and its instances through a new host (which adopts them).
    let _ = apply.kill();
    let _ = apply.wait();
    let rt = runtime();
    rt.block_on(ensure_host(w.path(), Path::new(BIN))).unwrap();
}

/// In an existing state dir left `0755` with world-readable host files (an older release), the
/// host's logs, pid file, socket and instance log dir end up with no world bits.
#[test]
fn the_hosts_files_have_no_world_bits_even_in_an_old_0755_state_dir() {
    use std::os::unix::fs::MetadataExt;
    let w = World::new();
    std::fs::set_permissions(w.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = |rel: &str| std::fs::metadata(w.path().join(rel)).unwrap().mode() & 0o7777;
    for (f, m) in [("host.log", 0o644), ("host.pid", 0o644)] {
        std::fs::write(w.path().join(f), "old\n").unwrap();
        std::fs::set_permissions(w.path().join(f), std::fs::Permissions::from_mode(m)).unwrap();
    }
    std::fs::create_dir_all(w.path().join("logs/web")).unwrap();
    std::fs::set_permissions(
        w.path().join("logs"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        w.path().join("logs/web"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let spec = w.write_spec("v1.yaml", "1.0.0", 1, DEMO, HTTP_HEALTH);
    let out = w.apply(&spec);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let st = w.running_status();
    let log = st.components[0].revisions[0].instances[0].log.clone();
    assert_eq!(
        std::fs::read_to_string(w.path().join("host.pid")).unwrap(),
        st.pid.to_string()
    );
    for f in ["host.log", "host.pid", "host.sock", "logs", "logs/web"] {
        assert_eq!(mode(f) & 0o007, 0, "{f} has world bits: {:o}", mode(f));
    }
    let log_mode = std::fs::metadata(&log).unwrap().mode() & 0o777;
    assert_eq!(log_mode, 0o600, "{log}");
}
