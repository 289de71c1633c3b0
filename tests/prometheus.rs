//! Against a real Prometheus: the local host publishes its instances as file-based service
//! discovery targets, Prometheus scrapes the demo service every second, and a bad canary is
//! detected through PromQL and rolled back.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`). Without it the test skips with a
//! notice on standard error that `cargo test` shows (`common::skip`), except under CI
//! (`CI=true`), where `.ci/run` installs it and a skip is a failure.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, skip, stop_host, write_in, LocalSpec, BIN};

struct Cleanup {
    state: tempfile::TempDir,
    prometheus: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut p) = self.prometheus.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        stop_host(self.state.path());
    }
}

fn spec(version: &str, port: u16, prom: u16, extra: &[&str]) -> String {
    let head = LocalSpec::demo(version, port)
        .environment("prom")
        .args(extra)
        .health(
            "{type: http, endpoint: /health, port: 8080, periodSeconds: 1, failureThreshold: 2}",
        )
        .yaml();
    format!(
        "{head}rollback: {{enabled: true, automatic: true, strategy: {{type: immediate}}, timeout: 30s}}
metadata:
  canaryConfig:
    stages:
      - {{name: canary-30, percentage: 30, duration: 40s}}
      - {{name: full, percentage: 100, duration: 0}}
    metrics:
      - name: prom_error_rate
        threshold: 0.05
        operator: lt
        source:
          type: prometheus
          address: http://127.0.0.1:{prom}
          query: '(sum(rate(demo_requests_total{{version=\"{{{{version}}}}\",code=\"500\"}}[5s])) or vector(0)) / sum(rate(demo_requests_total{{version=\"{{{{version}}}}\"}}[5s]))'
    analysisInterval: 1s
    noDataLimit: 20
"
    )
}

fn apply(state: &Path, file: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = common::cutover(
        state,
        &["apply", file.to_str().unwrap(), "--headless", "--json"],
    )
    .stderr(Stdio::inherit())
    .output()
    .unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap_or(-1), events)
}

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// 100 requests a second through the router on `port`, for `duration`.
fn load(port: u16, duration: &str) -> Kill {
    Kill(
        Command::new(BIN)
            .args([
                "load",
                "--target",
                &format!("http://127.0.0.1:{port}/"),
                "--rps",
                "100",
                "--duration",
                duration,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// One instant query's value, if it has one.
fn promql(port: u16, query: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let enc: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /api/v1/query?query={enc} HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let json: serde_json::Value = serde_json::from_str(body.split("\r\n\r\n").nth(1)?).ok()?;
    json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_bad_canary_detected_through_promql_rolls_back() {
    let Some(prom_bin) = skip::find_or_skip(
        "prometheus::a_bad_canary_detected_through_promql_rolls_back",
        "prometheus",
        "apt-get install prometheus",
    ) else {
        return;
    };
    let mut c = Cleanup {
        state: tempfile::tempdir().unwrap(),
        prometheus: None,
    };
    let state = c.state.path().to_path_buf();
    let port = free_port();
    let prom = free_port();
    let v1 = write_in(&state, "v1.yaml", &spec("1.0.0", port, prom, &[]));
    let (code, events) = apply(&state, &v1);
    assert_eq!(code, 0, "{:?}", events.last());
    let targets = state.join("prometheus/targets.json");
    let sd: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&targets).unwrap()).unwrap();
    assert_eq!(sd[0]["labels"]["version"], "1.0.0", "{sd}");
    assert_eq!(sd[0]["labels"]["component"], "web");
    assert_eq!(sd[0]["labels"]["environment"], "prom");

    c.prometheus = Some(start_prometheus(
        &prom_bin,
        &state,
        &format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: cutover
    file_sd_configs:
      - files: ['{}']
        refresh_interval: 1s
",
            targets.display()
        ),
        prom,
    ));
    // Load through the router for the whole test.
    let _load = load(port, "60s");

    // Wait until Prometheus has a rate for the running version (two scrapes under load).
    let start = Instant::now();
    while promql(
        prom,
        "sum(rate(demo_requests_total{version=\"1.0.0\"}[5s]))",
    )
    .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "prometheus never scraped 1.0.0"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let bad = write_in(
        &state,
        "bad.yaml",
        &spec("1.1.0", port, prom, &["--error-rate", "0.3"]),
    );
    let t0 = Instant::now();
    let (code, events) = apply(&state, &bad);
    let last = events.last().unwrap();
    assert_eq!(code, 1, "{last}");
    assert_eq!(last["outcome"], "rolled_back", "{last}");
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains("prom_error_rate"), "{reason}");
    // The failing verdict came from Prometheus: a value for the canary and one for the baseline.
    let failing = events
        .iter()
        .filter(|e| e["kind"] == "analysis")
        .flat_map(|e| e["verdicts"].as_array().cloned().unwrap_or_default())
        .find(|v| v["signal"] == "prom_error_rate" && v["judgement"] == "fail")
        .expect("a failing prom_error_rate verdict");
    assert!(failing["value"].as_f64().unwrap() > 0.05, "{failing}");
    assert!(
        failing["baseline"].as_f64().is_some_and(|b| b < 0.01),
        "{failing}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(40),
        "detected in {:?}",
        t0.elapsed()
    );
    eprintln!(
        "bad canary detected through PromQL and rolled back in {:?}",
        t0.elapsed()
    );
}

/// A canary spec judged by the built-in error rate every second: 20% for `hold`, then all.
fn builtin_canary(version: &str, port: u16, hold: &str, extra: &[&str]) -> String {
    let head = LocalSpec::demo(version, port)
        .environment("prom")
        .args(extra)
        .yaml();
    format!(
        "{head}rollback: {{enabled: true, automatic: true, strategy: {{type: immediate}}, timeout: 30s}}
metadata:
  canaryConfig:
    stages:
      - {{name: canary-20, percentage: 20, duration: {hold}}}
      - {{name: full, percentage: 100, duration: 0}}
    metrics: [{{name: error_rate, threshold: 0.05, operator: lt}}]
    analysisInterval: 1s
    failureLimit: 2
"
    )
}

/// Start Prometheus on `port` with `config`; wait until it answers.
fn start_prometheus(bin: &Path, state: &Path, config: &str, port: u16) -> Child {
    let file = state.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let log = std::fs::File::create(state.join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            state.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "prometheus did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Poll `query` until its value satisfies `ok`, for at most `within`; the last value.
fn promql_until(port: u16, query: &str, within: Duration, ok: impl Fn(f64) -> bool) -> Option<f64> {
    let start = Instant::now();
    loop {
        let v = promql(port, query);
        if v.is_some_and(&ok) || start.elapsed() > within {
            return v;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_the_exporter_and_sees_the_weight_move_and_the_rollback_counted() {
    let Some(prom_bin) = skip::find_or_skip(
        "prometheus::prometheus_scrapes_the_exporter_and_sees_the_weight_move_and_the_rollback_counted",
        "prometheus",
        "apt-get install prometheus",
    ) else {
        return;
    };
    let mut c = Cleanup {
        state: tempfile::tempdir().unwrap(),
        prometheus: None,
    };
    let state = c.state.path().to_path_buf();
    // The exporter on its own, on a port it picks and prints.
    let mut exporter = common::cutover(&state, &["exporter", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (lines, _reader) = common::lines_of(exporter.stdout.take().unwrap());
    let _exporter = Kill(exporter);
    let said = common::until_line(&lines, "/metrics", Duration::from_secs(20));
    let url = said
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();

    let prom = free_port();
    c.prometheus = Some(start_prometheus(
        &prom_bin,
        &state,
        &format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: cutover
    static_configs:
      - targets: ['{target}']
"
        ),
        prom,
    ));
    // Prometheus scrapes the exporter (an empty store: up, no rollouts yet).
    assert_eq!(
        promql_until(prom, "up{job=\"cutover\"}", Duration::from_secs(30), |v| v
            == 1.0),
        Some(1.0),
        "prometheus never scraped the exporter at {target}"
    );

    let port = free_port();
    let _load = load(port, "120s");
    // The first version, then a good canary that holds 20% for 6 s (several scrapes) before
    // taking all the traffic, then a bad one that is rolled back by its error rate.
    for (version, hold, extra, want) in [
        ("1.0.0", "1s", &[][..], 0),
        ("1.1.0", "6s", &[][..], 0),
        ("1.2.0", "30s", &["--error-rate", "0.3"][..], 1),
    ] {
        let spec = write_in(
            &state,
            &format!("{version}.yaml"),
            &builtin_canary(version, port, hold, extra),
        );
        let (code, events) = apply(&state, &spec);
        assert_eq!(code, want, "{version}: {:?}", events.last());
        // Each outcome stays the newest for a few scrapes.
        std::thread::sleep(Duration::from_secs(3));
    }
    let sel = "deployment=\"shop\",environment=\"prom\"";
    // The weight asked for the new version moved through the canary's 20% to all of it...
    assert_eq!(
        promql_until(
            prom,
            &format!("min_over_time(cutover_rollout_weight{{{sel}}}[10m])"),
            Duration::from_secs(15),
            |v| v == 0.0
        ),
        Some(0.0)
    );
    let seen: Vec<f64> = [20.0, 100.0]
        .iter()
        .map(|w| {
            promql_until(
                prom,
                &format!("count_over_time((cutover_rollout_weight{{{sel}}} == {w})[10m:1s])"),
                Duration::from_secs(15),
                |v| v >= 1.0,
            )
            .unwrap_or(0.0)
        })
        .collect();
    assert!(
        seen.iter().all(|n| *n >= 1.0),
        "20% and 100% seen {seen:?} times"
    );
    // ...and back to none: the rollback, counted with its cause, and the phase now.
    assert_eq!(
        promql_until(
            prom,
            &format!("cutover_rollbacks_total{{{sel},reason=\"metric\"}}"),
            Duration::from_secs(15),
            |v| v >= 1.0
        ),
        Some(1.0)
    );
    assert_eq!(
        promql(prom, &format!("cutover_rollout_weight{{{sel}}}")),
        Some(0.0)
    );
    assert_eq!(
        promql(
            prom,
            &format!("cutover_rollout_phase{{{sel},phase=\"rolled_back\"}}")
        ),
        Some(1.0)
    );
    assert!(
        promql(
            prom,
            &format!(
                "cutover_analysis_verdicts_total{{{sel},metric=\"error_rate\",result=\"fail\"}}"
            )
        )
        .is_some_and(|v| v >= 1.0),
        "the failing verdicts are counted"
    );
    assert_eq!(
        promql(
            prom,
            &format!("sum(cutover_rollouts_finished_total{{{sel},outcome=\"succeeded\"}})")
        ),
        Some(2.0)
    );
    assert_eq!(
        promql(prom, &format!("cutover_rollout_info{{{sel},version=\"1.2.0\",strategy=\"canary\",provider=\"local\"}}")),
        Some(1.0)
    );
    // The host's routers, from its status: the load's answers counted by version and class,
    // the canary's 5xx among them, and latency as a histogram Prometheus can take a quantile of.
    assert_eq!(
        promql_until(prom, "cutover_host_up", Duration::from_secs(10), |v| v
            == 1.0),
        Some(1.0)
    );
    let ok = promql(
        prom,
        "sum(cutover_router_requests_total{component=\"web\",version=\"1.1.0\",code=\"2xx\"})",
    );
    assert!(ok.is_some_and(|n| n > 100.0), "{ok:?}");
    let bad = promql(
        prom,
        "sum(max_over_time(cutover_router_requests_total{component=\"web\",version=\"1.2.0\",code=\"5xx\"}[10m]))",
    );
    assert!(
        bad.is_some_and(|n| n >= 1.0),
        "the bad canary's errors: {bad:?}"
    );
    let p99 = promql(
        prom,
        "histogram_quantile(0.99, sum by (le) (rate(cutover_router_request_duration_seconds_bucket{component=\"web\"}[30s])))",
    );
    assert!(p99.is_some_and(|s| s > 0.0 && s < 5.0), "{p99:?}");
}
