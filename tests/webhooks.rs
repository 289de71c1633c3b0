//! Webhooks reach a real HTTP server on loopback: gate requested, escalated and decided, and
//! deployment finished, as generic JSON and Slack-compatible bodies; a failing endpoint is
//! retried with backoff; a dead one never slows the deployment; a headless `apply` waits (for a
//! bounded time) for its last notices to be delivered before it exits.

#[allow(dead_code)]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover::engine::{
    Builtin, Command, Engine, EngineConfig, EngineError, EventKind, Outcome, Refusal, RunOptions,
    Status,
};
use cutover::governance::{config, Governance};
use cutover::provider::simulated::Simulated;
use cutover::store::Store;

/// A loopback HTTP server that records every POST body and answers 500 to the first `fail` ones;
/// a slow one takes `delay` before it records a body and answers.
struct Server {
    url: String,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
    hits: Arc<Mutex<u32>>,
}

fn server(fail: u32) -> Server {
    slow_server(fail, Duration::ZERO)
}

fn slow_server(fail: u32, delay: Duration) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(Mutex::new(0u32));
    let (g, h) = (got.clone(), hits.clone());
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { break };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            std::thread::sleep(delay);
            let n = {
                let mut h = h.lock().unwrap();
                *h += 1;
                *h
            };
            let status = if n <= fail {
                "500 Internal Server Error"
            } else {
                g.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Server { url, got, hits }
}

fn spec(version: &str) -> cutover::spec::ValidSpec {
    let text = format!(
        "id: shop
name: shop
version: '{version}'
strategy: canary
environment: test
components:
  - {{id: web, name: web, version: '{version}', replicas: 1}}
infrastructure: {{provider: simulated}}
metadata:
  canaryConfig:
    stages:
      - {{name: canary-20, percentage: 20, duration: 1s}}
      - {{name: canary-50, percentage: 50, duration: 1s, autoPromote: false}}
      - {{name: full, percentage: 100, duration: 0}}
    analysisInterval: 500ms
"
    );
    cutover::spec::load_str(&text).unwrap_or_else(|d| panic!("{d:?}"))
}

fn wait_until(what: &str, within: Duration, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_a_loopback_server_with_retries_and_never_block() {
    let all = server(0);
    let slack = server(0);
    let flaky = server(2);
    let ws = config::parse(&format!(
        "environments:
  - name: test
    approval:
      allowSelfApproval: true
      escalation:
        - {{after: 1s, notify: [all]}}
webhooks:
  - {{name: all, url: '{}'}}
  - {{name: chat, url: '{}', format: slack, events: [deployment_finished]}}
  - {{name: flaky, url: '{}', events: [gate_requested]}}
  - {{name: dead, url: 'http://127.0.0.1:1/nothing-listens-here'}}
",
        all.url, slack.url, flaky.url
    ))
    .unwrap_or_else(|d| panic!("{d:?}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let engine = real_time_engine(&store, ws, false);
    let h = engine.start(spec("1.0.0"), opts(true)).await.unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    let mut events = engine.subscribe();
    let started = Instant::now();
    let h = engine.start(spec("1.1.0"), opts(false)).await.unwrap();
    // Approve once the first escalation step has gone out.
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("events")
            .unwrap();
        if ev.run == h.run_id && matches!(ev.kind, EventKind::GateEscalated { .. }) {
            break;
        }
    }
    let c = Command::Approve {
        gate: None,
        comment: Some("ship it".into()),
    };
    engine.command(h.run_id, c, "bob").await.unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    let took = started.elapsed();
    // ~1s at 20%, ~1s at 50%, 1s at the gate: a dead webhook (retried for ~7.5s) must not add to it.
    assert!(
        took < Duration::from_secs(6),
        "the deployment took {took:?}"
    );
    let events_of = |s: &Server| -> Vec<String> {
        s.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| b["event"].as_str().map(str::to_string))
            .collect()
    };
    wait_until("generic notices", Duration::from_secs(10), || {
        events_of(&all)
            .iter()
            .filter(|e| *e != "gate_requested")
            .count()
            >= 3
    });
    let got = events_of(&all);
    for want in [
        "gate_requested",
        "gate_escalated",
        "gate_decided",
        "deployment_finished",
    ] {
        assert!(got.iter().any(|e| e == want), "{want} in {got:?}");
    }
    let bodies = all.got.lock().unwrap().clone();
    let decided = bodies
        .iter()
        .find(|b| b["event"] == "gate_decided" && b["run"] == h.run_id)
        .unwrap();
    assert_eq!(decided["detail"]["by"], "bob");
    assert_eq!(decided["detail"]["decision"], "approved");
    assert_eq!(decided["deployment"], "shop");
    wait_until("the slack notice", Duration::from_secs(10), || {
        slack.got.lock().unwrap().len() >= 2
    });
    let s = slack.got.lock().unwrap().clone();
    assert!(
        s.iter().all(|b| b.get("event").is_none()),
        "slack bodies are {{text}}: {s:?}"
    );
    assert!(
        s.iter().any(|b| b["text"]
            .as_str()
            .unwrap_or("")
            .contains("shop (run #2) succeeded")),
        "{s:?}"
    );
    // Two 500s, then delivered on the third attempt (after 0.5s and 1s of backoff).
    wait_until(
        "the flaky endpoint's third attempt",
        Duration::from_secs(10),
        || *flaky.hits.lock().unwrap() >= 3 && !flaky.got.lock().unwrap().is_empty(),
    );
    assert_eq!(
        events_of(&flaky),
        vec!["gate_requested".to_string()],
        "only the gate"
    );
}

/// `cutover apply --headless` returns when its run ends; the `deployment_finished` notice it
/// queued at that moment must still reach a slow endpoint (it answers after 300 ms) before the
/// process exits: the engine's shutdown drains the webhook queue for a bounded time.
#[test]
fn headless_apply_delivers_its_last_notice_before_it_exits() {
    let slow = slow_server(0, Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    common::write_in(
        dir.path(),
        "cutover.yaml",
        &format!(
            "webhooks:\n  - {{name: slow, url: '{}', events: [deployment_finished]}}\n",
            slow.url
        ),
    );
    let spec = common::write_in(
        dir.path(),
        "shop.yaml",
        "id: shop
name: shop
version: '1.0.0'
strategy: canary
environment: test
components:
  - {id: web, name: web, version: '1.0.0', replicas: 1}
infrastructure: {provider: simulated}
metadata:
  canaryConfig:
    stages:
      - {name: full, percentage: 100, duration: 0}
",
    );
    let state = dir.path().join("state");
    let spec = spec.display().to_string();
    let args = ["apply", spec.as_str(), "--headless", "--json"];
    let cmd = common::isolated(&state, dir.path(), &args);
    let out = common::run_within(cmd, &args, Duration::from_secs(60)).unwrap();
    // Read at once: the process has exited, and a notice still in flight does not count.
    let got = slow.got.lock().unwrap().clone();
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert_eq!(out.finished()["outcome"], "succeeded");
    assert!(
        got.iter()
            .any(|b| b["event"] == "deployment_finished" && b["deployment"] == "shop"),
        "deployment_finished arrived before apply exited: {got:?}\n{}",
        out.explain()
    );
}

/// `Engine::shutdown`: new runs and commands are refused, a run waiting at a gate is paused and
/// released in the store, a slow endpoint's notice is delivered before it returns, and a dead
/// endpoint holds it up no longer than the grace (its notice is reported as dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_pauses_refuses_and_drains_within_its_grace() {
    let slow = slow_server(0, Duration::from_millis(300));
    let ws = config::parse(&format!(
        "webhooks:
  - {{name: slow, url: '{}', events: [gate_requested]}}
  - {{name: dead, url: 'http://127.0.0.1:1/nothing-listens-here', events: [gate_requested]}}
",
        slow.url
    ))
    .unwrap_or_else(|d| panic!("{d:?}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let engine = real_time_engine(&store, ws, true);
    let h = engine.start(spec("1.0.0"), opts(true)).await.unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    let mut events = engine.subscribe();
    let h = engine.start(spec("1.1.0"), opts(false)).await.unwrap();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("events")
            .unwrap();
        if ev.run == h.run_id && matches!(ev.kind, EventKind::GateWaiting { .. }) {
            break;
        }
    }
    let started = Instant::now();
    let report = engine.shutdown(Duration::from_secs(1)).await;
    let took = started.elapsed();
    let got = slow.got.lock().unwrap().clone();
    assert!(
        got.iter().any(|b| b["event"] == "gate_requested"),
        "the slow endpoint's notice arrived before shutdown returned: {got:?}"
    );
    assert_eq!(report.paused, vec![h.run_id]);
    assert!(report.not_paused.is_empty(), "{report:?}");
    assert_eq!(
        report.undelivered,
        vec![format!(
            "gate_requested of shop (run #{}) to webhook dead",
            h.run_id
        )]
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "a dead endpoint holds shutdown up for the grace, no longer: {took:?}"
    );
    assert_eq!(
        engine.snapshots().borrow()[&h.run_id].status,
        Status::Paused
    );
    let row = store.run(h.run_id).unwrap().unwrap();
    assert_eq!(
        row.owner_pid, None,
        "released for another process to take over"
    );
    assert!(matches!(
        engine.start(spec("1.2.0"), opts(true)).await,
        Err(EngineError::Refused(Refusal::ShuttingDown))
    ));
    let resume = engine.command(h.run_id, Command::Resume, "alice").await;
    assert!(
        matches!(resume, Err(EngineError::Refused(Refusal::ShuttingDown))),
        "{resume:?}"
    );
}

/// An engine on the simulated provider in real time (webhooks are delivered for real).
fn real_time_engine(store: &Store, ws: config::Workspace, poll_store: bool) -> Engine {
    Engine::new(EngineConfig {
        store: store.clone(),
        provider: Arc::new(Simulated::new(Vec::new())),
        signals: Arc::new(Builtin::default()),
        virtual_clock: false,
        poll_store,
        governance: Governance::new(ws),
        wall_clock_gates: false,
    })
}

fn opts(auto_approve: bool) -> RunOptions {
    RunOptions {
        dry_run: true,
        auto_approve,
        initiator: "alice".into(),
    }
}
