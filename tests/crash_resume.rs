//! Crash safety of the driving process (issue 11): for each strategy, and for a rollback
//! (immediate and gradual), the `apply` that drives a local rollout under load is killed with
//! SIGKILL at every step in turn, and `cutover resume` takes the run over. Each time: the same
//! outcome as the uninterrupted run (the last round, which outruns every kill), traffic never
//! left half-made (weights add up to 100 and only ready revisions take any), zero failed
//! requests, exactly one outcome journaled, and one revision left serving. Recreate has a
//! downtime by design (the router answers 503 while nothing runs; a kill then lasts until the
//! resume): for it, "whole" allows no revision at all, and only transport errors and statuses
//! other than that 503 count as failed.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cutover, free_port, write_in, Host, Load, LocalSpec, Timed};
use cutover::local::proto::HostStatus;
use cutover::store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Requests per second through the router during each scenario.
const RPS: u32 = 40;

/// Two scenarios at a time: each runs its own router, services and load on two cores.
static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn block(strategy: &str, rollback: &str) -> String {
    let meta = match strategy {
        "canary" => {
            "metadata:
  canaryConfig:
    stages:
      - {name: c30, percentage: 30, duration: 1500ms}
      - {name: c60, percentage: 60, duration: 1500ms}
      - {name: full, percentage: 100, duration: 0}
    metrics:
      - {name: error_rate, threshold: 0.05, operator: lt}
    analysisInterval: 500ms
"
        }
        "canary-held" => {
            // Holds long at 40% so that a rollback can be asked for while it does.
            "metadata:
  canaryConfig:
    stages:
      - {name: c40, percentage: 40, duration: 10m}
      - {name: full, percentage: 100, duration: 0}
    metrics:
      - {name: error_rate, threshold: 0.05, operator: lt}
    analysisInterval: 1s
"
        }
        "blue-green" => {
            "metadata:
  blueGreenConfig:
    switchTraffic:
      type: gradual
      steps:
        - {percentage: 30, duration: 1s}
        - {percentage: 100, duration: 0}
      verifyDuration: 1s
    warmupDuration: 500ms
"
        }
        "rolling" => {
            "metadata:
  rollingConfig:
    batchSize: 1
    maxSurge: 1
    maxUnavailable: 0
    progressDeadline: 30s
    pauseBetweenBatches: 1s
"
        }
        _ => "",
    };
    format!(
        "rollback:
  enabled: true
  automatic: true
  triggers:
    - {{type: error-rate, threshold: 0.1}}
  strategy: {rollback}
  timeout: 60s
{meta}"
    )
}

fn spec(dir: &Path, strategy: &str, rollback: &str, version: &str, port: u16) -> PathBuf {
    let kind = if strategy == "canary-held" {
        "canary"
    } else {
        strategy
    };
    let replicas = if kind == "rolling" { 2 } else { 1 };
    let text = format!(
        "{}{}",
        LocalSpec::demo(version, port)
            .strategy(kind)
            .replicas(replicas)
            .args(&["--latency-ms", "1"])
            .yaml(),
        block(strategy, rollback)
    );
    write_in(dir, &format!("{strategy}-{version}.yaml"), &text)
}

/// A `cutover ... --json` process's JSON lines, read as they come.
struct Lines {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Vec<serde_json::Value>,
}

impl Lines {
    fn spawn(state: &Path, args: &[&str]) -> Lines {
        let mut child = tokio::process::Command::from(cutover(state, args))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Lines {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line, or None at the end of the output (bounded: a minute).
    async fn next(&mut self) -> Option<serde_json::Value> {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("a line within a minute")
            .unwrap()?;
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        self.seen.push(v.clone());
        Some(v)
    }

    /// Read to the end; the exit code and the last line.
    async fn finish(mut self) -> (i32, serde_json::Value) {
        while self.next().await.is_some() {}
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits")
            .unwrap();
        let last = self.seen.last().cloned().unwrap_or_default();
        (status.code().unwrap_or(-1), last)
    }

    fn kill9(&mut self) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn host_status(state: &Path) -> HostStatus {
    let out = cutover(state, &["host", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "host status: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Traffic is whole: the weights add up to 100 and each revision that takes any has a ready
/// instance.
fn assert_whole(state: &Path, what: &str, downtime: bool) {
    let st = host_status(state);
    for c in &st.components {
        let total: u32 = c.revisions.iter().map(|r| r.weight).sum();
        if downtime && total == 0 {
            continue;
        }
        assert_eq!(
            total, 100,
            "{what}: weights of {}: {:?}",
            c.component, c.revisions
        );
        for r in c.revisions.iter().filter(|r| r.weight > 0) {
            assert!(
                r.instances.iter().any(|i| i.ready),
                "{what}: {} takes {}% with no ready instance",
                r.key,
                r.weight
            );
        }
    }
}

/// After a run: one revision of `version` takes all traffic, and the run has one outcome.
fn assert_settled(state: &Path, version: &str, what: &str) {
    let st = host_status(state);
    let revs = &st.components[0].revisions;
    assert_eq!(revs.len(), 1, "{what}: revisions left: {revs:?}");
    assert_eq!(revs[0].version, version, "{what}");
    assert_eq!(revs[0].weight, 100, "{what}");
    let store = Store::open(state).unwrap();
    let run = store.find_run("shop").unwrap().unwrap();
    assert!(run.is_finished(), "{what}: {run:?}");
    let finished = store
        .events(run.run_id, 0)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "finished")
        .count();
    assert_eq!(finished, 1, "{what}: outcomes journaled");
}

/// Resume the run of `shop` in a new process; its exit code and last line. A run whose end
/// was recorded just before the kill needs no resume: its recorded outcome stands.
async fn resume(state: &Path) -> (i32, serde_json::Value) {
    let store = Store::open(state).unwrap();
    let run = store.find_run("shop").unwrap().unwrap();
    if let Some(outcome) = run.outcome {
        let code = match outcome.as_str() {
            "succeeded" => 0,
            _ => 1,
        };
        let last = serde_json::json!({"kind": "finished", "outcome": outcome.as_str()});
        return (code, last);
    }
    Lines::spawn(state, &["resume", "shop", "--json"])
        .finish()
        .await
}

/// Failed requests; with `downtime`, the router's 503 while nothing runs is not one.
fn failed(samples: &[Timed], downtime: bool) -> usize {
    samples
        .iter()
        .filter(|s| match s.status {
            None => true,
            Some(503) if downtime => false,
            Some(c) => c >= 400,
        })
        .count()
}

/// Deploy 1.0.0, then for k = 1, 2, ...: apply the next version and kill it after its k-th
/// step began, resume, and check; until an apply finishes before its k-th step (the
/// uninterrupted round, whose outcome every resumed round must have had).
async fn forward(strategy: &str) {
    let _slot = SLOTS.acquire().await.unwrap();
    let host = Host::new();
    let state = host.path();
    let port = free_port();
    let rollback = "{type: immediate}";
    let first = Lines::spawn(
        state,
        &[
            "apply",
            spec(state, strategy, rollback, "1.0.0", port)
                .to_str()
                .unwrap(),
            "--headless",
            "--json",
        ],
    )
    .finish()
    .await;
    assert_eq!(first.0, 0, "{strategy}: first deployment: {}", first.1);
    let load = Load::start(port, RPS, Duration::from_secs(600));
    let mut outcomes = Vec::new();
    let mut k = 1;
    loop {
        let version = format!("1.{k}.0");
        let path = spec(state, strategy, rollback, &version, port);
        let mut apply = Lines::spawn(
            state,
            &["apply", path.to_str().unwrap(), "--headless", "--json"],
        );
        let mut started = 0;
        let mut killed = false;
        while let Some(ev) = apply.next().await {
            if ev["kind"] == "step_started" {
                started += 1;
                if started == k {
                    apply.kill9();
                    killed = true;
                    break;
                }
            }
        }
        let what = format!("{strategy}, killed at step {k}");
        let (code, last) = if killed {
            let _ = apply.child.wait().await;
            assert_whole(state, &what, strategy == "recreate");
            resume(state).await
        } else {
            apply.finish().await
        };
        assert_eq!(last["kind"], "finished", "{what}: {last}");
        outcomes.push((
            k,
            killed,
            last["outcome"].as_str().unwrap_or("").to_string(),
        ));
        assert_eq!(code, 0, "{what}: {last}");
        assert_settled(state, &version, &what);
        if !killed {
            break;
        }
        k += 1;
        assert!(k < 30, "{strategy}: the plan never ended");
    }
    // The new version serves the load for a moment too (a fast recreate may end first).
    load.at_least(120, Duration::from_secs(10)).await;
    let samples = load.stop();
    assert!(
        outcomes.iter().all(|(_, _, o)| o == "succeeded"),
        "{strategy}: {outcomes:?}"
    );
    assert!(outcomes.len() >= 3, "{strategy}: only {outcomes:?}");
    assert!(
        samples.len() > 100,
        "{strategy}: {} responses",
        samples.len()
    );
    assert_eq!(
        failed(&samples, strategy == "recreate"),
        0,
        "{strategy}: failed requests"
    );
    eprintln!(
        "{strategy}: killed at each of {} steps, {} requests, 0 failed",
        outcomes.len() - 1,
        samples.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_killed_at_every_step_resumes_to_the_same_outcome() {
    forward("canary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_killed_at_every_step_resumes_to_the_same_outcome() {
    forward("blue-green").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_killed_at_every_step_resumes_to_the_same_outcome() {
    forward("rolling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_killed_at_every_step_resumes_to_the_same_outcome() {
    forward("recreate").await;
}

/// Deploy 1.0.0, then for k = 1, 2, ...: apply the next version, ask for a rollback while it
/// holds at 40%, kill the apply at the k-th event of the rollback, resume; until the rollback
/// ends before its k-th event. Every round ends rolled back to 1.0.0.
async fn rollback(kind: &str) {
    let _slot = SLOTS.acquire().await.unwrap();
    let host = Host::new();
    let state = host.path();
    let port = free_port();
    let rollback = match kind {
        "gradual" => "{type: gradual, steps: [30, 15, 0], interval: 1s}",
        _ => "{type: immediate}",
    };
    let first = Lines::spawn(
        state,
        &[
            "apply",
            spec(state, "canary", rollback, "1.0.0", port)
                .to_str()
                .unwrap(),
            "--headless",
            "--json",
        ],
    )
    .finish()
    .await;
    assert_eq!(first.0, 0, "first deployment: {}", first.1);
    let load = Load::start(port, RPS, Duration::from_secs(600));
    let mut outcomes = Vec::new();
    let mut k = 1;
    loop {
        let version = format!("2.{k}.0");
        let path = spec(state, "canary-held", rollback, &version, port);
        let mut apply = Lines::spawn(
            state,
            &["apply", path.to_str().unwrap(), "--headless", "--json"],
        );
        // Wait until it holds at 40%, then ask for the rollback from another process.
        while let Some(ev) = apply.next().await {
            if ev["kind"] == "traffic_shifted"
                && ev["weights"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w["version"] == version.as_str() && w["weight"] == 40)
            {
                break;
            }
        }
        let asker = cutover(state, &["rollback", "shop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = 0;
        let mut killed = false;
        let mut rolling = false;
        while let Some(ev) = apply.next().await {
            rolling |= ev["kind"] == "rollback_started";
            if rolling && ev["kind"] != "finished" {
                seen += 1;
                if seen == k {
                    apply.kill9();
                    killed = true;
                    break;
                }
            }
        }
        let what = format!("{kind} rollback, killed at its event {k}");
        let (code, last) = if killed {
            let _ = apply.child.wait().await;
            assert_whole(state, &what, false);
            resume(state).await
        } else {
            apply.finish().await
        };
        let mut asker = asker;
        let _ = asker.wait();
        assert_eq!(last["kind"], "finished", "{what}: {last}");
        assert_eq!(last["outcome"], "rolled_back", "{what}: {last}");
        assert_eq!(code, 1, "{what}: rolled back exits 1");
        outcomes.push((k, killed));
        assert_settled(state, "1.0.0", &what);
        if !killed {
            break;
        }
        k += 1;
        assert!(k < 30, "{kind}: the rollback never ended");
    }
    let samples = load.stop();
    assert!(outcomes.len() >= 3, "{kind}: only {outcomes:?}");
    assert_eq!(
        failed(&samples, false),
        0,
        "{kind} rollback: failed requests"
    );
    eprintln!(
        "{kind} rollback: killed at each of {} events, {} requests, 0 failed",
        outcomes.len() - 1,
        samples.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_rollback_killed_at_every_event_resumes_as_a_rollback() {
    rollback("immediate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gradual_rollback_killed_at_every_event_resumes_as_a_rollback() {
    rollback("gradual").await;
}

/// Hold until the run of `version` has shifted 40% to it.
async fn until_held(apply: &mut Lines, version: &str) {
    while let Some(ev) = apply.next().await {
        if ev["kind"] == "traffic_shifted"
            && ev["weights"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["version"] == version && w["weight"] == 40)
        {
            return;
        }
    }
    panic!("{version} never held at 40%: {:?}", apply.seen.last());
}

fn run_of(state: &Path, version: &str) -> cutover::store::RunRow {
    let store = Store::open(state).unwrap();
    store
        .runs(None, 100)
        .unwrap()
        .into_iter()
        .find(|r| r.version == version)
        .unwrap_or_else(|| panic!("no run of {version}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_supersede_rolls_the_holder_back_first_live_or_orphaned() {
    let _slot = SLOTS.acquire().await.unwrap();
    let host = Host::new();
    let state = host.path();
    let port = free_port();
    let rb = "{type: immediate}";
    let path = |v: &str, held: bool| {
        let s = if held { "canary-held" } else { "canary" };
        spec(state, s, rb, v, port).to_str().unwrap().to_string()
    };
    let apply = |p: &str, extra: &[&str]| {
        let mut args = vec!["apply", p, "--headless", "--json"];
        args.extend_from_slice(extra);
        Lines::spawn(state, &args)
    };
    let (code, last) = apply(&path("1.0.0", false), &[]).finish().await;
    assert_eq!(code, 0, "{last}");
    let load = Load::start(port, RPS, Duration::from_secs(600));

    // A live holder: 2.0.0 holds at 40% in its own process.
    let mut holder = apply(&path("2.0.0", true), &[]);
    until_held(&mut holder, "2.0.0").await;
    // Without --supersede: refused, exit 1, and nothing changes.
    let out = cutover(state, &["apply", &path("3.0.0", false), "--headless"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is driven by run #") && err.contains("--supersede"),
        "{err}"
    );
    // With it: 2.0.0 is rolled back by its own process, then 3.0.0 runs to the end.
    let (code, last) = apply(&path("3.0.0", false), &["--supersede"])
        .finish()
        .await;
    assert_eq!(code, 0, "{last}");
    let (code, last) = holder.finish().await;
    assert_eq!(code, 1, "the superseded apply ends rolled back: {last}");
    assert_eq!(last["outcome"], "rolled_back", "{last}");
    assert_eq!(
        run_of(state, "2.0.0").outcome.map(|o| o.as_str()),
        Some("rolled_back")
    );
    assert_settled(state, "3.0.0", "after superseding a live run");

    // An orphaned holder: 4.0.0 holds at 40%, its process is killed.
    let mut holder = apply(&path("4.0.0", true), &[]);
    until_held(&mut holder, "4.0.0").await;
    holder.kill9();
    let _ = holder.child.wait().await;
    let (code, last) = apply(&path("5.0.0", false), &["--supersede"])
        .finish()
        .await;
    assert_eq!(code, 0, "{last}");
    let orphan = run_of(state, "4.0.0");
    assert_eq!(
        orphan.outcome.map(|o| o.as_str()),
        Some("rolled_back"),
        "{orphan:?}"
    );
    assert_settled(state, "5.0.0", "after superseding an orphaned run");
    assert_eq!(failed(&load.stop(), false), 0, "failed requests");
}
