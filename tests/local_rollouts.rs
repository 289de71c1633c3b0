//! Real rollouts on the local runtime under load: processes, the weighted router, probes.
//!
//! For blue-green, canary and rolling: after 1.0.0 is applied, a rollout of 1.1.0 under >= 200
//! requests/s completes with zero failed requests, and the share of responses per `x-version`
//! follows the weights at each step. A version serving 30% errors, or failing its health check,
//! is rolled back and traffic returns entirely to the old version. Recreate after each strategy
//! (and after itself) under load ends with all traffic on the new version, and during its
//! downtime the component's listener answers 503 instead of refusing connections. No process is
//! left behind.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{free_port, spawn_apply, ts, write_in, Host, Load, LocalSpec, Timed};
use tokio::io::{AsyncBufReadExt, BufReader};

/// These tests measure traffic shares in real time: run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn strategy_block(strategy: &str) -> &'static str {
    match strategy {
        "canary" => {
            "metadata:
  canaryConfig:
    stages:
      - {name: canary-20, percentage: 20, duration: 4s}
      - {name: canary-50, percentage: 50, duration: 4s}
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
        - {percentage: 25, duration: 4s}
        - {percentage: 75, duration: 4s}
        - {percentage: 100, duration: 0}
      verifyDuration: 2s
    warmupDuration: 1s
"
        }
        "rolling" => {
            "metadata:
  rollingConfig:
    batchSize: 1
    maxSurge: 1
    maxUnavailable: 0
    progressDeadline: 30s
    pauseBetweenBatches: 3s
"
        }
        _ => "",
    }
}

fn write_spec(
    dir: &Path,
    strategy: &str,
    version: &str,
    port: u16,
    replicas: u32,
    extra: &[&str],
) -> PathBuf {
    let mut args = vec!["--latency-ms", "1"];
    args.extend_from_slice(extra);
    let text = format!(
        "{}rollback:
  enabled: true
  automatic: true
  triggers:
    - {{type: error-rate, threshold: 0.1}}
  strategy: {{type: immediate}}
  timeout: 30s
{}",
        LocalSpec::demo(version, port)
            .strategy(strategy)
            .replicas(replicas)
            .args(&args)
            .yaml(),
        strategy_block(strategy)
    );
    write_in(dir, &format!("{strategy}-{version}.yaml"), &text)
}

struct Applied {
    code: i32,
    events: Vec<serde_json::Value>,
}

async fn apply(host: &Host, spec: &Path) -> Applied {
    let mut child = spawn_apply(host.path(), spec);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut events = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            events.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("apply finished within 2 minutes");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    Applied {
        code: status.code().unwrap_or(-1),
        events,
    }
}

/// (when, weight of `version`) for each traffic shift.
fn shifts(events: &[serde_json::Value], version: &str) -> Vec<(DateTime<Utc>, u64)> {
    events
        .iter()
        .filter(|e| e["kind"] == "traffic_shifted")
        .map(|e| {
            let w = e["weights"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|w| w["version"] == version)
                .map(|w| w["weight"].as_u64().unwrap())
                .sum();
            (ts(e), w)
        })
        .collect()
}

async fn deploy_under_load(strategy: &str) {
    let _serial = SERIAL.lock().await;
    let host = Host::new();
    let port = free_port();
    let replicas = if strategy == "rolling" { 3 } else { 2 };
    let v1 = write_spec(host.path(), strategy, "1.0.0", port, replicas, &[]);
    let v2 = write_spec(host.path(), strategy, "1.1.0", port, replicas, &[]);
    let first = apply(&host, &v1).await;
    assert_eq!(first.code, 0, "first deployment: {:?}", first.events.last());
    let load = Load::start(port, 250, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    let second = apply(&host, &v2).await;
    let took = t0.elapsed();
    let last = second.events.last().unwrap();
    assert_eq!(second.code, 0, "{strategy}: {last}");
    assert_eq!(last["outcome"], "succeeded");
    // Keep the load going a little after the switch, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let samples = load.stop();
    assert!(
        samples.len() > 250 * 5,
        "{strategy}: only {} responses",
        samples.len()
    );
    let failed: Vec<&Timed> = samples
        .iter()
        .filter(|s| s.status.is_none_or(|c| c >= 400))
        .collect();
    assert!(
        failed.is_empty(),
        "{strategy}: {} failed requests, e.g. status {:?}",
        failed.len(),
        failed[0].status
    );
    // The share of 1.1.0 follows each weight while it holds.
    let steps = shifts(&second.events, "1.1.0");
    assert!(steps.len() >= 3, "{strategy}: {steps:?}");
    let mut checked = 0;
    for (i, (at, weight)) in steps.iter().enumerate() {
        let until = steps
            .get(i + 1)
            .map(|s| s.0)
            .unwrap_or(*at + chrono::Duration::seconds(1));
        let from = *at + chrono::Duration::milliseconds(200);
        let to = until - chrono::Duration::milliseconds(200);
        let window: Vec<&Timed> = samples
            .iter()
            .filter(|s| s.sent >= from && s.sent < to)
            .collect();
        if window.len() < 150 {
            continue;
        }
        let new = window
            .iter()
            .filter(|s| s.version.as_deref() == Some("1.1.0"))
            .count();
        let share = new as f64 * 100.0 / window.len() as f64;
        assert!(
            (share - *weight as f64).abs() <= 5.0,
            "{strategy}: weight {weight}% but {share:.1}% of {} responses came from 1.1.0",
            window.len()
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "{strategy}: too few weight steps long enough to measure ({steps:?})"
    );
    eprintln!(
        "{strategy}: rollout took {took:?}, {} responses, 0 failed, {checked} weight steps within 5 points",
        samples.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_under_load_has_no_failed_requests_and_follows_weights() {
    deploy_under_load("canary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_under_load_has_no_failed_requests_and_follows_weights() {
    deploy_under_load("blue-green").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_under_load_has_no_failed_requests_and_follows_weights() {
    deploy_under_load("rolling").await;
}

/// The wall time of the first event of `kind` that `pick` accepts.
fn first_event(
    events: &[serde_json::Value],
    kind: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> Option<DateTime<Utc>> {
    events.iter().find(|e| e["kind"] == kind && pick(e)).map(ts)
}

/// 1.0.0 deployed, then rolled out to 1.1.0 with `before`, then recreated as 1.2.0 on the same
/// `listen` address, all under 250 requests/s (the analyses need traffic): every request gets an
/// HTTP answer (503 while nothing is ready, never a refused connection); during the recreate,
/// 1.1.0 answers before its downtime, 503 only within it, and 1.2.0 after it.
async fn recreate_after(before: &str) {
    let _serial = SERIAL.lock().await;
    let host = Host::new();
    let port = free_port();
    let replicas = if before == "rolling" { 3 } else { 2 };
    let v1 = write_spec(host.path(), before, "1.0.0", port, replicas, &[]);
    let v2 = write_spec(host.path(), before, "1.1.0", port, replicas, &[]);
    let v3 = write_spec(host.path(), "recreate", "1.2.0", port, 2, &[]);
    let first = apply(&host, &v1).await;
    assert_eq!(first.code, 0, "{before} 1.0.0: {:?}", first.events.last());
    let load = Load::start(port, 250, Duration::from_secs(90));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = apply(&host, &v2).await;
    assert_eq!(second.code, 0, "{before} 1.1.0: {:?}", second.events.last());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Utc::now();
    let t0 = Instant::now();
    let third = apply(&host, &v3).await;
    let took = t0.elapsed();
    let last = third.events.last().unwrap();
    assert_eq!(third.code, 0, "recreate after {before}: {last}");
    assert_eq!(
        last["outcome"], "succeeded",
        "recreate after {before}: {last}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = load.stop();
    let refused = all.iter().filter(|s| s.status.is_none()).count();
    assert_eq!(
        refused,
        0,
        "{before}, then recreate: {refused} of {} requests got no HTTP answer",
        all.len()
    );
    let samples: Vec<&Timed> = all.iter().filter(|s| s.sent >= began).collect();

    let down = first_event(&third.events, "step_started", |e| {
        e["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("stop 1.1.0"))
    })
    .unwrap_or_else(|| panic!("no stop step: {:?}", third.events));
    let up = *shifts(&third.events, "1.2.0")
        .iter()
        .find(|(_, w)| *w == 100)
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("never routed to 1.2.0: {:?}", third.events));
    let slack = chrono::Duration::milliseconds(100);

    let unavailable: Vec<&Timed> = samples
        .iter()
        .copied()
        .filter(|s| s.status == Some(503))
        .collect();
    assert!(
        !unavailable.is_empty(),
        "recreate after {before}: no 503 during the downtime ({} responses)",
        samples.len()
    );
    for s in &unavailable {
        assert!(
            s.sent >= down - slack && s.sent <= up + slack,
            "recreate after {before}: a 503 at {} outside the downtime {down}..{up}",
            s.sent
        );
    }
    for s in &samples {
        assert!(
            matches!(s.status, Some(200) | Some(503)),
            "recreate after {before}: status {:?}",
            s.status
        );
        if s.sent < down - slack {
            assert_eq!(s.version.as_deref(), Some("1.1.0"), "before the downtime");
        }
    }
    let after: Vec<&Timed> = samples
        .iter()
        .copied()
        .filter(|s| s.sent > up + slack)
        .collect();
    assert!(
        after.len() > 100,
        "recreate after {before}: {} responses after the switch",
        after.len()
    );
    assert!(
        after
            .iter()
            .all(|s| s.status == Some(200) && s.version.as_deref() == Some("1.2.0")),
        "recreate after {before}: traffic after the switch not all on 1.2.0"
    );
    eprintln!(
        "recreate after {before}: took {took:?}, downtime {} ms, {} responses, {} answered 503, 0 refused",
        (up - down).num_milliseconds(),
        samples.len(),
        unavailable.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_after_canary_answers_503_in_its_downtime_and_ends_on_the_new_version() {
    recreate_after("canary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_after_blue_green_answers_503_in_its_downtime_and_ends_on_the_new_version() {
    recreate_after("blue-green").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_after_rolling_answers_503_in_its_downtime_and_ends_on_the_new_version() {
    recreate_after("rolling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_after_recreate_answers_503_in_its_downtime_and_ends_on_the_new_version() {
    recreate_after("recreate").await;
}

async fn bad_version_rolls_back(extra: &[&str], reason_has: &str) {
    let _serial = SERIAL.lock().await;
    let host = Host::new();
    let port = free_port();
    let v1 = write_spec(host.path(), "canary", "1.0.0", port, 2, &[]);
    let bad = write_spec(host.path(), "canary", "1.2.0", port, 2, extra);
    assert_eq!(apply(&host, &v1).await.code, 0);
    let load = Load::start(port, 250, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = apply(&host, &bad).await;
    let last = res.events.last().unwrap().clone();
    assert_eq!(res.code, 1, "{last}");
    assert_eq!(last["outcome"], "rolled_back", "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains(reason_has), "{reason}");
    let back = shifts(&res.events, "1.0.0").last().unwrap().0;
    // Everything sent after the rollback is answered by 1.0.0.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = load.stop();
    let after: Vec<&Timed> = samples
        .iter()
        .filter(|s| s.sent > back + chrono::Duration::milliseconds(100))
        .collect();
    assert!(
        after.len() > 250,
        "{} responses after the rollback",
        after.len()
    );
    assert!(after
        .iter()
        .all(|s| s.version.as_deref() == Some("1.0.0") && s.status == Some(200)));
    if let Some(first_bad) = samples
        .iter()
        .filter(|s| s.version.as_deref() == Some("1.2.0") && s.status == Some(500))
        .map(|s| s.sent)
        .min()
    {
        let reaction = back - first_bad;
        eprintln!(
            "bad canary off traffic {} ms after its first failed request",
            reaction.num_milliseconds()
        );
        assert!(
            reaction < chrono::Duration::seconds(3),
            "reaction {reaction}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_serving_30_percent_errors_is_rolled_back() {
    bad_version_rolls_back(&["--error-rate", "0.3"], "error_rate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_health_check_is_rolled_back() {
    bad_version_rolls_back(&["--fail-health"], "unhealthy").await;
}
