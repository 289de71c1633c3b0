//! One driver per target, between real `cutover apply --headless` processes: while a run holds a
//! target (a component in an environment on a provider), a second apply on it (another spec or
//! the same one, another process, another OS user, at the same instant) is refused with exit 1,
//! naming the run, its state, who started it, its process, and what to do; another environment
//! or component is not refused. Dry runs (the simulated provider) where they do the job; the
//! local provider where the point is that nothing reaches the router.
//!
//! Every child runs under a deadline; a waiting apply is rolled back (or killed) at the end.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{drain, isolated, lines_of, root, run_within, seed_spec, until_line, Out, Users, BIN};
use serde_json::Value;

const FIRST: &str = "my-app-v1.2.0";
const DEADLINE: Duration = Duration::from_secs(30);

/// A state dir and a working dir, isolated from the user's configuration.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn command(&self, args: &[&str]) -> Command {
        isolated(self.state(), self.dir.path(), args)
    }

    fn run(&self, args: &[&str]) -> Out {
        run_within(self.command(args), args, DEADLINE).unwrap_or_else(|e| panic!("{e}"))
    }

    /// specs/canary.yaml with `edits` (from, to) applied, written as NAME.
    fn canary(&self, name: &str, edits: &[(&str, &str)]) -> PathBuf {
        let mut text = std::fs::read_to_string(seed_spec("canary.yaml")).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{from} in canary.yaml");
            text = text.replace(from, to);
        }
        common::write_in(self.dir.path(), name, &text)
    }

    /// Deploy 1.1.0 (a dry run) so that a canary of 1.2.0 stops at its gate.
    fn seed(&self) {
        let v110 = self.canary("v110.yaml", &[("1.2.0", "1.1.0")]);
        let out = self.run(&["apply", s(&v110), "--dry-run", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.explain());
    }

    /// `status ID --json`.
    fn status(&self, id: &str) -> Value {
        let out = self.run(&["status", id, "--json"]);
        assert_eq!(out.code(), 0, "{}", out.explain());
        serde_json::from_str(out.stdout.lines().next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {}", out.explain()))
    }

    fn history(&self) -> Vec<Value> {
        let out = self.run(&["history", "--json"]);
        assert_eq!(out.code(), 0, "{}", out.explain());
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running `apply --json`: its lines, its stderr; killed when dropped.
struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, _) = lines_of(child.stdout.take().unwrap());
        let stderr = Some(drain(child.stderr.take().unwrap()));
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// Wait for its gate; the `gate_waiting` event.
    fn until_gate(&self) -> Value {
        let line = until_line(&self.lines, "\"gate_waiting\"", Duration::from_secs(20));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Its exit code and stderr, waiting at most `within`.
    fn finish(&mut self, within: Duration) -> (i32, String) {
        let status = common::wait_exit(&mut self.child, within, || {
            format!("apply did not end within {within:?}")
        });
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a refusal must say: the run, its deployment and state, who started it, its process,
/// and what to do.
fn assert_names_the_holder(text: &str, run: i64, state: &str, by: &str, pid: i64) {
    for needed in [
        format!("driven by run #{run} of {FIRST}"),
        format!("({state}, started by {by}, process {pid})"),
        format!("`cutover rollback {FIRST}#{run}`"),
    ] {
        assert!(text.contains(&needed), "`{needed}` in:\n{text}");
    }
}

#[test]
fn a_second_apply_on_a_held_target_is_refused_and_other_targets_are_not() {
    let w = World::new();
    w.seed();
    let v120 = seed_spec("canary.yaml");
    let mut first = Running::spawn(w.command(&["apply", s(&v120), "--dry-run", "--json"]));
    first.until_gate();
    let st = w.status(FIRST);
    let run = st["run"].as_i64().unwrap();
    assert_eq!(st["owner_pid"].as_i64(), Some(i64::from(first.child.id())));
    let me = cutover::identity::current_user();

    // (a) another spec for the same component and environment, (b) the same spec again.
    let v130 = w.canary("v130.yaml", &[("1.2.0", "1.3.0")]);
    for spec in [&v130, &v120] {
        let out = w.run(&["apply", s(spec), "--dry-run", "--json"]);
        assert_eq!(out.code(), 1, "{}", out.explain());
        assert_names_the_holder(
            &out.stderr,
            run,
            "waiting_approval",
            &me,
            i64::from(first.child.id()),
        );
        assert!(
            !out.stdout.contains("\"finished\""),
            "no run was started: {}",
            out.explain()
        );
    }
    // Nothing of the refused runs was recorded; each refusal was audited.
    let runs = w.history();
    assert!(
        runs.iter().all(|r| r["deployment"] != "my-app-v1.3.0"),
        "{runs:?}"
    );
    assert_eq!(
        runs.iter().filter(|r| r["deployment"] == FIRST).count(),
        1,
        "{runs:?}"
    );
    let audit = w.run(&["audit", "--json"]);
    let refused = audit
        .stdout
        .lines()
        .filter(|l| l.contains("\"refused\"") && l.contains(&format!("driven by run #{run}")))
        .count();
    assert_eq!(refused, 2, "{}", audit.stdout);

    // (e) another environment, another component: other targets, not refused.
    let staging = w.canary(
        "staging.yaml",
        &[("environment: 'production'", "environment: 'staging'")],
    );
    let worker = w.canary(
        "worker.yaml",
        &[
            ("my-app-v1.2.0", "worker-v1.2.0"),
            ("id: 'api'", "id: 'worker'"),
            ("name: 'api'", "name: 'worker'"),
        ],
    );
    for spec in [&staging, &worker] {
        let out = w.run(&["apply", s(spec), "--dry-run", "--json", "--auto-approve"]);
        assert_eq!(out.code(), 0, "{}", out.explain());
        assert_eq!(out.finished()["outcome"], "succeeded", "{}", out.explain());
    }
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the first run still waits"
    );
    // `status` shows it beside the later run of the same deployment in staging.
    let out = w.run(&["status", "--json"]);
    let listed: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (env, state) in [("production", "waiting_approval"), ("staging", "succeeded")] {
        assert!(
            listed.iter().any(|r| r["deployment"] == FIRST
                && r["environment"] == env
                && r["status"] == state),
            "{FIRST} {state} in {env}: {listed:?}"
        );
    }

    // Rolled back (named as the refusal says: the deployment's latest run is now the one in
    // staging), it lets go of the target: the next apply runs.
    let rb = w.run(&["rollback", &format!("{FIRST}#{run}")]);
    assert_eq!(rb.code(), 0, "{}", rb.explain());
    let (code, _) = first.finish(Duration::from_secs(10));
    assert_eq!(code, 1, "a rolled-back apply exits 1");
    let out = w.run(&["apply", s(&v130), "--dry-run", "--json", "--auto-approve"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
}

/// The run a refused apply names is one whose process has gone: the refusal says so and offers
/// the take-over and the rollback.
#[test]
fn a_target_held_by_a_killed_apply_is_refused_with_what_to_do() {
    let w = World::new();
    w.seed();
    let v120 = seed_spec("canary.yaml");
    let mut first = Running::spawn(w.command(&["apply", s(&v120), "--dry-run", "--json"]));
    first.until_gate();
    let run = w.status(FIRST)["run"].as_i64().unwrap();
    first.child.kill().unwrap(); // SIGKILL: no chance to let go of anything
    first.child.wait().unwrap();
    let v130 = w.canary("v130.yaml", &[("1.2.0", "1.3.0")]);
    let out = w.run(&["apply", s(&v130), "--dry-run", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.explain());
    for needed in [
        format!("driven by run #{run} of {FIRST} (waiting_approval"),
        "no live process drives it".to_string(),
        format!("`cutover resume {FIRST}#{run}`"),
        format!("`cutover rollback {FIRST}#{run}`"),
    ] {
        assert!(
            out.stderr.contains(&needed),
            "`{needed}` in:\n{}",
            out.explain()
        );
    }
    let rb = w.run(&["rollback", FIRST]);
    assert_eq!(rb.code(), 0, "{}", rb.explain());
    let out = w.run(&["apply", s(&v130), "--dry-run", "--json", "--auto-approve"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
}

/// An apply interrupted (SIGTERM) pauses and saves its run, exit 3: the run still holds its
/// target, paused with no process, and the refusal says so and offers the take-over.
#[test]
fn a_target_held_by_an_interrupted_apply_stays_held_while_it_is_paused() {
    let w = World::new();
    w.seed();
    let v120 = seed_spec("canary.yaml");
    let mut first = Running::spawn(w.command(&["apply", s(&v120), "--dry-run", "--json"]));
    first.until_gate();
    let run = w.status(FIRST)["run"].as_i64().unwrap();
    let pid = i32::try_from(first.child.id()).unwrap();
    // SAFETY: kill(2) has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (code, err) = first.finish(Duration::from_secs(20));
    assert_eq!(code, 3, "interrupted: {err}");
    let out = w.run(&["apply", s(&v120), "--dry-run", "--json"]);
    assert_eq!(out.code(), 1, "{}", out.explain());
    for needed in [
        format!("driven by run #{run} of {FIRST} (paused, started by "),
        "no live process drives it".to_string(),
        format!("`cutover resume {FIRST}#{run}`"),
    ] {
        assert!(
            out.stderr.contains(&needed),
            "`{needed}` in:\n{}",
            out.explain()
        );
    }
}

/// Two applies started together on one target: exactly one runs (it waits at its gate), the
/// other is refused naming it. Several rounds, with another spec and with the same one; and
/// on a fresh state dir (two first deployments racing to create the store).
#[test]
fn two_applies_started_at_the_same_instant_on_one_target_exactly_one_runs() {
    let w = World::new();
    w.seed();
    let v120 = seed_spec("canary.yaml");
    let v130 = w.canary("v130.yaml", &[("1.2.0", "1.3.0")]);
    for round in 0..6 {
        let (a, b) = if round % 2 == 0 {
            (&v120, &v130)
        } else {
            (&v120, &v120)
        };
        let mut both = [
            Running::spawn(w.command(&["apply", s(a), "--dry-run", "--json"])),
            Running::spawn(w.command(&["apply", s(b), "--dry-run", "--json"])),
        ];
        let start = Instant::now();
        let loser = loop {
            if let Some(i) = (0..2).find(|i| both[*i].child.try_wait().unwrap().is_some()) {
                break i;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "round {round}: neither apply was refused within 20s: both run"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let (code, err) = both[loser].finish(Duration::from_secs(1));
        assert_eq!(code, 1, "round {round}: {err}");
        assert!(err.contains("driven by run #"), "round {round}: {err}");
        let winner = &both[1 - loser];
        let gate = winner.until_gate();
        let dep = gate["deployment"].as_str().unwrap_or_default().to_string();
        let st = w.status(&dep);
        assert_eq!(st["status"], "waiting_approval", "round {round}: {st}");
        assert!(
            err.contains(&format!("driven by run #{} of {dep}", st["run"])),
            "round {round}: {err}"
        );
        let rb = w.run(&["rollback", &dep]);
        assert_eq!(rb.code(), 0, "round {round}: {}", rb.explain());
        let (code, _) = both[1 - loser].finish(Duration::from_secs(10));
        assert_eq!(code, 1, "round {round}: rolled back");
    }
    let runs = w.history();
    assert_eq!(runs.len(), 7, "the seed and one run per round: {runs:?}");
    assert!(runs.iter().all(|r| r["outcome"].is_string()), "{runs:?}");

    // Two first deployments on a fresh state dir: each succeeds or is refused naming the
    // other; never a store error. (When the second starts after the first has finished, it
    // is a canary of the same version with a gate: --auto-approve lets it end by itself.)
    for round in 0..3 {
        let w = World::new();
        let v110 = w.canary("v110.yaml", &[("1.2.0", "1.1.0")]);
        let apply = ["apply", s(&v110), "--dry-run", "--json", "--auto-approve"];
        let mut both = [
            Running::spawn(w.command(&apply)),
            Running::spawn(w.command(&apply)),
        ];
        let ends: Vec<(i32, String)> = both
            .iter_mut()
            .map(|r| r.finish(Duration::from_secs(20)))
            .collect();
        for (code, err) in &ends {
            assert!(
                *code == 0 || (*code == 1 && err.contains("driven by run #")),
                "fresh round {round}: exit {code}: {err}"
            );
        }
        assert!(
            ends.iter().any(|(c, _)| *c == 0),
            "fresh round {round}: {ends:?}"
        );
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Kills, by pid, the processes that own unfinished runs in a state dir (a waiting apply run
/// as another user is out of reach of `Child::kill`, which ends only `runuser`).
struct KillOwners(PathBuf);

impl Drop for KillOwners {
    fn drop(&mut self) {
        let Ok(db) = rusqlite::Connection::open(self.0.join("cutover.db")) else {
            return;
        };
        let pids: Vec<i64> = db
            .prepare("SELECT owner_pid FROM runs WHERE outcome IS NULL AND owner_pid IS NOT NULL")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .unwrap_or_default();
        for pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

#[test]
fn a_second_os_user_sharing_the_state_dir_is_refused_likewise() {
    if !common::skip::skip_unless(
        root(),
        "one_driver::a_second_os_user_sharing_the_state_dir_is_refused_likewise",
        "creating OS users needs root",
    ) {
        return;
    }
    let users = Users::create(&format!("d{}", std::process::id() % 100_000));
    let (alice, bob) = (users.users[0].clone(), users.users[1].clone());
    let w = World::new();
    // The team's state dir: group-owned, setgid, group-writable; the specs readable by all.
    let shared = w.state();
    std::fs::create_dir(&shared).unwrap();
    assert!(Command::new("chgrp")
        .arg(&users.group)
        .arg(&shared)
        .status()
        .unwrap()
        .success());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2770)).unwrap();
        std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _cleanup = KillOwners(shared.clone());
    let as_user = |user: &str, args: &[&str]| -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", BIN, "--state-dir"])
            .arg(&shared)
            .args(args)
            .current_dir(w.dir.path())
            .env("XDG_CONFIG_HOME", w.dir.path().join("xdg-config"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    };
    let v110 = w.canary("v110.yaml", &[("1.2.0", "1.1.0")]);
    let seeded = as_user(&alice, &["apply", s(&v110), "--dry-run"])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", text(&seeded));
    let v120 = seed_spec("canary.yaml");
    let first = Running::spawn(as_user(&alice, &["apply", s(&v120), "--dry-run", "--json"]));
    first.until_gate();
    let st = w.status(FIRST);
    let (run, pid) = (
        st["run"].as_i64().unwrap(),
        st["owner_pid"].as_i64().unwrap(),
    );
    let v130 = w.canary("v130.yaml", &[("1.2.0", "1.3.0")]);
    for spec in [&v130, &v120] {
        let out = as_user(&bob, &["apply", s(spec), "--dry-run", "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_names_the_holder(&text(&out), run, "waiting_approval", &alice, pid);
    }
    // Bob may roll alice's run back (no governance config: anyone may); then his apply runs.
    let rb = as_user(&bob, &["rollback", FIRST]).output().unwrap();
    assert!(rb.status.success(), "{}", text(&rb));
    let out = as_user(&bob, &["apply", s(&v130), "--dry-run", "--auto-approve"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    drop(first);
}

/// A canary that stops at a gate (canary-50) after 20%.
const GATED: &str = "metadata:
  canaryConfig:
    stages:
      - {name: canary-20, percentage: 20, duration: 1s}
      - {name: canary-50, percentage: 50, duration: 1s, autoPromote: false}
      - {name: full, percentage: 100, duration: 0}
    analysisInterval: 1s
";

/// What the host runs for a component: each revision's key, version, weight and instance pids.
fn served(state: &Path) -> Vec<(String, String, u32, Vec<Option<u32>>)> {
    let out = run_within(
        isolated(state, state, &["host", "status", "--json"]),
        &["host", "status"],
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.code(), 0, "{}", out.explain());
    let st: cutover::local::proto::HostStatus = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}", out.explain()));
    st.components
        .iter()
        .flat_map(|c| &c.revisions)
        .map(|r| {
            (
                r.key.0.clone(),
                r.version.clone(),
                r.weight,
                r.instances.iter().map(|i| i.pid).collect(),
            )
        })
        .collect()
}

/// On the local provider, a refused apply reaches neither the host nor the router: no instance
/// of it starts and the weights stay as the running canary set them.
#[test]
fn on_the_local_provider_a_refused_apply_starts_nothing_and_moves_no_traffic() {
    let host = common::Host::new();
    let dir = host.path();
    let port = common::free_port();
    let spec = |v: &str| {
        common::write_in(
            dir,
            &format!("{v}.yaml"),
            &(common::LocalSpec::demo(v, port).yaml() + GATED),
        )
    };
    let run = |args: &[&str]| {
        run_within(isolated(dir, dir, args), args, Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let v1 = spec("1.0.0");
    let out = run(&["apply", s(&v1), "--json", "--auto-approve"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let v2 = spec("2.0.0");
    let mut canary = Running::spawn(isolated(dir, dir, &["apply", s(&v2), "--json"]));
    canary.until_gate();
    let before = served(dir);
    assert_eq!(before.len(), 2, "1.0.0 and the 2.0.0 canary: {before:?}");
    let run_id = w_status(dir, "shop");
    for v in ["3.0.0", "2.0.0"] {
        let other = if v == "2.0.0" { v2.clone() } else { spec(v) };
        let out = run(&["apply", s(&other), "--json"]);
        assert_eq!(out.code(), 1, "{}", out.explain());
        assert!(
            out.stderr.contains(&format!(
                "local:test:web is driven by run #{run_id} of shop (waiting_approval"
            )),
            "{}",
            out.explain()
        );
        assert_eq!(served(dir), before, "{v} changed what the host runs");
    }
    let rb = run(&["rollback", "shop"]);
    assert_eq!(rb.code(), 0, "{}", rb.explain());
    let (code, _) = canary.finish(Duration::from_secs(30));
    assert_eq!(code, 1, "rolled back");
    let after = served(dir);
    assert!(
        after.len() == 1 && after[0].1 == "1.0.0" && after[0].2 == 100,
        "{after:?}"
    );
}

/// The run of deployment `id` in `state`.
fn w_status(state: &Path, id: &str) -> i64 {
    let out = run_within(
        isolated(state, state, &["status", id, "--json"]),
        &["status"],
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(out.stdout.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}", out.explain()));
    v["run"].as_i64().unwrap()
}

/// Two applies of a first deployment at the same instant on the local provider, on a fresh
/// state dir (both start the host on demand): exactly one runs; the host serves one revision.
#[test]
fn two_local_applies_at_the_same_instant_one_runs_and_the_host_serves_one_revision() {
    let host = common::Host::new();
    let dir = host.path();
    let port = common::free_port();
    let v1 = common::write_in(
        dir,
        "v1.yaml",
        &common::LocalSpec::demo("1.0.0", port).yaml(),
    );
    let mut both = [
        Running::spawn(isolated(dir, dir, &["apply", s(&v1), "--json"])),
        Running::spawn(isolated(dir, dir, &["apply", s(&v1), "--json"])),
    ];
    let mut ends: Vec<(i32, String)> = both
        .iter_mut()
        .map(|r| r.finish(Duration::from_secs(90)))
        .collect();
    ends.sort();
    assert_eq!(ends[0].0, 0, "{ends:?}");
    assert!(
        ends[1].0 == 1 && ends[1].1.contains("local:test:web is driven by run #"),
        "{ends:?}"
    );
    let served = served(dir);
    assert!(
        served.len() == 1 && served[0].1 == "1.0.0" && served[0].2 == 100,
        "{served:?}"
    );
}
