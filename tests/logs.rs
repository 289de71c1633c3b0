//! Logs: a headless run writes them to `STATE/logs/apply.DATE.log`, never to its output, as
//! text by default and as JSON lines with the run's deployment, run and step under
//! `CUTOVER_LOG_FORMAT=json` or `--log-format json`.

#[allow(dead_code)]
mod common;

use std::path::Path;

use common::seed_spec;

fn log_text(state: &Path) -> String {
    std::fs::read_dir(state.join("logs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("apply."))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect::<String>()
        })
        .unwrap_or_default()
}

fn dry_run(state: &Path, args: &[&str], env: Option<&str>) -> std::process::Output {
    let spec = seed_spec("canary.yaml");
    let mut all = vec![
        "apply",
        spec.to_str().unwrap(),
        "--dry-run",
        "--headless",
        "--json",
    ];
    all.extend_from_slice(args);
    let mut cmd = common::cutover(state, &all);
    cmd.env_remove("CUTOVER_LOG_FORMAT");
    if let Some(v) = env {
        cmd.env("CUTOVER_LOG_FORMAT", v);
    }
    cmd.output().unwrap()
}

#[test]
fn json_logs_carry_the_deployment_run_and_step_and_stay_out_of_the_output() {
    for (args, env) in [
        (&[][..], Some("json")),
        (&["--log-format", "json"][..], None),
    ] {
        let state = tempfile::tempdir().unwrap();
        let out = dry_run(state.path(), args, env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The output is the run's JSON events only.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["kind"].is_string(), "{line}");
        }
        let text = log_text(state.path());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let stepped: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["span"]["step"].is_u64())
            .collect();
        assert!(!stepped.is_empty(), "{text}");
        for l in &stepped {
            assert_eq!(l["span"]["deployment"], "my-app-v1.2.0", "{l}");
            assert!(l["span"]["run"].as_u64().is_some_and(|r| r >= 1), "{l}");
            assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
        }
        assert!(
            lines.iter().any(|l| l["fields"]["event"] == "finished"),
            "the run's end is logged: {text}"
        );
    }
}

#[test]
fn logs_are_text_by_default() {
    let state = tempfile::tempdir().unwrap();
    let out = dry_run(state.path(), &[], None);
    assert_eq!(out.status.code(), Some(0));
    let text = log_text(state.path());
    assert!(
        text.contains("run{deployment=my-app-v1.2.0 run=1"),
        "{text}"
    );
    assert!(text.lines().all(|l| !l.starts_with('{')), "{text}");
}
