//! The shipped Prometheus alerting rules (`specs/monitoring/alerts.yaml`): `promtool check rules`
//! accepts them and `promtool test rules` runs a unit test of each alert. (That the rules and the
//! Grafana dashboard query only series the exporter writes is a unit test in
//! `src/exporter/rollouts.rs`.)
//!
//! Needs `promtool` (Debian package `prometheus`): skipped with a notice without it, except under
//! CI, where `.ci/run` installs it and a skip is a failure.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;

use common::skip;

fn promtool(args: &[&str]) -> (bool, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/monitoring");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_alert_rules_load_and_each_alert_passes_its_unit_test() {
    if skip::find_or_skip(
        "monitoring::the_alert_rules_load_and_each_alert_passes_its_unit_test",
        "promtool",
        "apt-get install prometheus",
    )
    .is_none()
    {
        return;
    }
    let (ok, text) = promtool(&["check", "rules", "alerts.yaml"]);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS: 5 rules found"), "{text}");
    let (ok, text) = promtool(&["test", "rules", "alerts.test.yaml"]);
    assert!(ok, "{text}");
    // Every alert in the rules has a test that expects it to fire.
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/monitoring/alerts.yaml"),
    )
    .unwrap();
    let tests = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/monitoring/alerts.test.yaml"),
    )
    .unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - exp_labels"
            )),
            "{alert} has no test that expects it to fire"
        );
    }
}

/// One GET over a plain TCP connection: the status line and the body.
fn get(addr: &str, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

#[test]
fn a_bad_exporter_address_in_cutover_yaml_is_named_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_in(
        dir.path(),
        "cutover.yaml",
        "exporter:\n  listen: localhost\n",
    );
    let out = common::cutover(dir.path(), &["validate", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("exporter.listen") && text.contains("not an address with a port"),
        "{text}"
    );
}

#[test]
fn the_host_serves_the_exporter_where_cutover_yaml_says() {
    let state = tempfile::tempdir().unwrap();
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            common::stop_host(self.0);
        }
    }
    let _stop = Stop(state.path());
    let metrics = common::free_port();
    let cfg = common::write_in(
        state.path(),
        "cutover.yaml",
        &format!("exporter:\n  listen: 127.0.0.1:{metrics}\n"),
    );
    let port = common::free_port();
    let spec = common::write_in(
        state.path(),
        "v1.yaml",
        &common::LocalSpec::demo("1.0.0", port).yaml(),
    );
    // The apply starts the host with the configuration (its path passed on to the host).
    let out = common::cutover(
        state.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "apply",
            spec.to_str().unwrap(),
            "--headless",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = format!("127.0.0.1:{metrics}");
    let start = std::time::Instant::now();
    let (status, body) = loop {
        if let Some(r) = get(&addr, "/metrics") {
            break r;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "nothing serves {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("cutover_host_up 1"), "{body}");
    assert!(
        body.contains("cutover_router_weight{component=\"web\",revision=\"web@1.0.0.r1\",version=\"1.0.0\"} 100"),
        "{body}"
    );
    assert!(
        body.contains(
            "cutover_rollout_phase{deployment=\"shop\",environment=\"test\",phase=\"succeeded\"} 1"
        ),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let (status, _) = get(&addr, "/nope").unwrap();
    assert!(status.contains("404"), "{status}");
}

/// `cutover exporter` on its own: it prints where it serves, answers a scrape of an empty store,
/// and drops a connection that sends no request instead of holding it open.
#[test]
fn the_exporter_drops_a_connection_that_sends_no_request() {
    use std::io::{BufRead, Read};
    let state = tempfile::tempdir().unwrap();
    let mut child = common::cutover(state.path(), &["exporter", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _kill = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("serving Prometheus metrics at http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let (status, body) = get(&addr, "/metrics").unwrap();
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("cutover_host_up 0"), "{body}");
    // A silent client: the server closes it after its header timeout (10 s).
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = silent.read_to_end(&mut buf);
    let waited = start.elapsed();
    assert!(
        read.is_ok() && waited < std::time::Duration::from_secs(15),
        "the silent connection was not closed by the server: {read:?} after {waited:?}"
    );
}
