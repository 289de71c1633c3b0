//! Validations against real local deployments: pre-deployment checks stop a run before any change,
//! a failing post-deployment check rolls back, and `cutover verify` reports each check with its
//! evidence and an overall score.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Stdio;

use common::{free_port, write_in, Host, LocalSpec};
use serde_json::Value;

fn cutover(state: &Path, args: &[&str]) -> (i32, String, String) {
    let out = common::cutover(state, args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spec(version: &str, port: u16, validation: &str) -> String {
    let head = LocalSpec::demo(version, port)
        .id("checked")
        .strategy("blue-green")
        .health("{type: http, endpoint: /health, port: 8080, periodSeconds: 1}")
        .yaml();
    format!(
        "{head}validation:
{validation}
metadata:
  blueGreenConfig:
    switchTraffic: {{type: immediate, verifyDuration: 1s}}
"
    )
}

fn apply(state: &Path, name: &str, text: &str) -> (i32, Vec<Value>) {
    let file = write_in(state, name, text);
    let (code, out, err) = cutover(state, &["apply", file.to_str().unwrap(), "--json"]);
    let events = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{err}")))
        .collect();
    (code, events)
}

const GOOD: &str = "  preDeployment:
    - {name: listen free, type: listen-free}
    - {name: program, type: command-present}
  postDeployment:
    - {name: health, type: http, path: /health, expectStatus: 200, expectBody: ok}
    - {type: tcp}
  healthChecks:
    - {type: http, path: /}
  performance:
    - {name: errors, metric: error_rate, operator: lt, threshold: 0.01, window: 30s}
  security:
    - {name: admin locked, type: requires-auth, path: /admin}
    - {type: no-plain-secrets}";

#[test]
fn verify_reports_every_check_with_evidence_and_a_score() {
    let host = Host::new();
    let state = host.path();
    let port = free_port();
    let (code, events) = apply(state, "v1.yaml", &spec("1.0.0", port, GOOD));
    assert_eq!(code, 0, "{:?}", events.last());
    let checks: Vec<&Value> = events.iter().filter(|e| e["kind"] == "checks").collect();
    assert_eq!(checks.len(), 2, "pre and post");
    assert_eq!(checks[0]["category"], "preDeployment");
    assert_eq!(checks[1]["category"], "postDeployment");
    assert!(checks.iter().all(|c| c["passed"] == true));
    // Some traffic for the performance check.
    let (code, _, err) = cutover(
        state,
        &[
            "load",
            "--target",
            &format!("http://127.0.0.1:{port}/"),
            "--rps",
            "50",
            "--duration",
            "1s",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cutover(state, &["verify", "checked", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(report["overall_score"], 100);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 6, "{report}");
    assert!(checks
        .iter()
        .all(|c| c["status"] == "pass" && !c["evidence"].as_str().unwrap().is_empty()));
    // A plain-text report names each check; a failing one lowers the score and the exit code.
    let (code, out, _) = cutover(state, &["verify", "checked"]);
    assert_eq!(code, 0);
    assert!(out.contains("overall score 100/100"), "{out}");
    let failing = GOOD.replace("path: /admin}", "path: /}");
    let (code, _) = apply(state, "v2.yaml", &spec("1.1.0", port, &failing));
    assert_eq!(code, 0);
    let (code, out, _) = cutover(state, &["verify", "checked"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  security"), "{out}");
    assert!(out.contains("expected 401 or 403"), "{out}");
    assert!(out.contains("overall score 83/100"), "{out}");
}

#[test]
fn a_busy_listen_address_stops_the_run_before_any_change() {
    let host = Host::new();
    let state = host.path();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let (code, events) = apply(state, "v1.yaml", &spec("1.0.0", port, GOOD));
    let last = events.last().unwrap();
    assert_eq!(code, 1, "{last}");
    assert_eq!(last["outcome"], "failed");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("listen free") && reason.contains("in use"),
        "{reason}"
    );
    assert!(reason.contains("nothing was changed"), "{reason}");
    assert!(
        !events.iter().any(|e| e["kind"] == "traffic_shifted"),
        "no traffic moved"
    );
    let (_, out, _) = cutover(state, &["host", "status", "--json"]);
    let status: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        status["components"].as_array().is_none_or(|c| c.is_empty()),
        "{status}"
    );
}

#[test]
fn a_failing_post_deployment_check_rolls_back_to_the_running_version() {
    let host = Host::new();
    let state = host.path();
    let port = free_port();
    let (code, _) = apply(state, "v1.yaml", &spec("1.0.0", port, GOOD));
    assert_eq!(code, 0);
    // 1.1.0's home page does not say what the check expects.
    let broken = GOOD.replace(
        "    - {type: tcp}",
        "    - {name: home says hello 1.0, type: http, path: /, expectBody: 'hello from 1.0.0'}",
    );
    let (code, events) = apply(state, "v2.yaml", &spec("1.1.0", port, &broken));
    let last = events.last().unwrap();
    assert_eq!(code, 1, "{last}");
    assert_eq!(last["outcome"], "rolled_back");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("post-deployment check failed: home says hello 1.0"),
        "{reason}"
    );
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut b = String::new();
        s.read_to_string(&mut b).unwrap();
        b
    };
    assert!(
        body.contains("hello from 1.0.0"),
        "traffic is back on 1.0.0: {body}"
    );
}
