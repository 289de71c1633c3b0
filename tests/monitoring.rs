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
