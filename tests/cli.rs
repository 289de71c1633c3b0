//! The `cutover` binary against its command-line contract: validate, plan, apply (dry run on the
//! virtual clock), status, history, rollback, approve, and the exit codes.
//!
//! Every test has its own state directory (`--state-dir`) and working directory; every child
//! process runs under a deadline and is killed if it overruns.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{drain, isolated, lines_of, run_within, seed_spec as spec, wait_exit, write_in, Out};
use serde_json::Value;

const DEPLOYMENT: &str = "my-app-v1.2.0";
/// Generous bound for any single command; dry runs take milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Kills the child when dropped (a failed assertion never leaves a process behind).
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A scratch world: a state dir and a working dir, isolated from the user's XDG dirs.
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
        let mut c = isolated(self.state(), self.dir.path(), args);
        c.env("XDG_DATA_HOME", self.dir.path().join("xdg-data"));
        c
    }

    /// Run to completion within the deadline.
    fn run(&self, args: &[&str]) -> Out {
        run_within(self.command(args), args, DEADLINE).unwrap_or_else(|e| panic!("{e}"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        write_in(self.dir.path(), name, text)
    }

    /// specs/NAME with every `1.2.0` made `1.1.0`.
    fn v110(&self, name: &str) -> PathBuf {
        common::v110(self.dir.path(), name)
    }

    /// Deploy 1.1.0 of `name` (a first deployment) so that 1.2.0 has something to replace.
    fn seed_v110(&self, name: &str) {
        let p = self.v110(name);
        let out = self.run(&["apply", s(&p), "--dry-run", "--headless", "--json"]);
        assert_eq!(out.code(), 0, "seeding 1.1.0: {}", out.explain());
        assert_eq!(finished(&events(&out.stdout))["outcome"], "succeeded");
    }

    fn json_lines(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        assert_eq!(out.code(), 0, "{}", out.explain());
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Parse JSON-lines events, checking the contract: every line is an object with an RFC 3339
/// `ts`, a `deployment` and a `kind`; the last one is `finished` with an outcome and a reason.
fn events(stdout: &str) -> Vec<Value> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "no events on stdout");
    let evs: Vec<Value> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}"))
        })
        .collect();
    for ev in &evs {
        let ts = ev["ts"].as_str().unwrap_or_else(|| panic!("no ts: {ev}"));
        chrono::DateTime::parse_from_rfc3339(ts)
            .unwrap_or_else(|e| panic!("ts `{ts}` is not RFC 3339: {e}"));
        assert!(
            ev["deployment"].as_str().is_some_and(|d| !d.is_empty()),
            "no deployment: {ev}"
        );
        assert!(
            ev["kind"].as_str().is_some_and(|k| !k.is_empty()),
            "no kind: {ev}"
        );
    }
    let last = evs.last().unwrap();
    assert_eq!(last["kind"], "finished", "last line: {last}");
    assert!(
        matches!(
            last["outcome"].as_str(),
            Some("succeeded" | "rolled_back" | "failed")
        ),
        "outcome: {last}"
    );
    assert!(last["reason"].as_str().is_some(), "reason: {last}");
    assert_eq!(
        evs.iter().filter(|e| e["kind"] == "finished").count(),
        1,
        "exactly one finished event"
    );
    evs
}

fn finished(evs: &[Value]) -> &Value {
    evs.last().unwrap()
}

fn kinds(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

fn ts(ev: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(ev["ts"].as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// validate
// ---------------------------------------------------------------------------------------------

fn all_specs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    v.sort();
    assert!(v.len() >= 5);
    v
}

#[test]
fn validate_accepts_every_seed_spec() {
    let w = World::new();
    let specs = all_specs();
    let mut args = vec!["validate"];
    args.extend(specs.iter().map(|p| s(p)));
    let out = w.run(&args);
    assert_eq!(out.code(), 0, "{}", out.explain());
    for p in &specs {
        assert!(
            out.stdout.contains(&format!("{}: ok", p.display())),
            "{}",
            out.explain()
        );
    }
}

#[test]
fn validate_reports_every_problem_of_every_file() {
    let w = World::new();
    let basic = read(&spec("basic.yaml"));
    let bad1 = w.write(
        "bad1.yaml",
        &basic
            .replace("    replicas: 3\n", "    replica: 3\n")
            .replace("strategy: 'blue-green'", "strategy: 'canery'"),
    );
    let bad2 = w.write(
        "bad2.yaml",
        &read(&spec("canary.yaml"))
            .replace("percentage: 50,", "percentage: 5,")
            .replace("operator: 'lt', unit: 'ms'", "operator: 'less', unit: 'ms'"),
    );
    let empty = w.write("empty.yaml", "\n# nothing here\n");
    let binary = w.write("binary.yaml", "id: a\nname: \u{0}\u{1}\u{2}\n");
    let good = spec("rolling.yaml");
    let out = w.run(&[
        "validate",
        s(&bad1),
        s(&good),
        s(&bad2),
        s(&empty),
        s(&binary),
    ]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    let all = out.all();
    let expect = [
        format!("{}:13:5: components[0].replica: unknown key `replica`; did you mean `replicas`?", bad1.display()),
        format!(
            "{}: strategy: `canery` is not one of blue-green, canary, rolling, recreate; did you mean `canary`?",
            bad1.display()
        ),
        format!(
            "{}: metadata.canaryConfig.stages[1].percentage: must be greater than the previous stage (10)",
            bad2.display()
        ),
        format!(
            "{}: metadata.canaryConfig.metrics[1].operator: `less` is not one of lt, lte, gt, gte, eq",
            bad2.display()
        ),
        format!("{}: file is empty; expected a mapping of spec fields", empty.display()),
        format!("{}:2:7: binary data (NUL byte): this is not a YAML text file", binary.display()),
    ];
    for e in &expect {
        assert!(
            all.lines().any(|l| l == e),
            "missing line `{e}` in:\n{}",
            out.explain()
        );
    }
    let ok_line = format!("{}: ok", good.display());
    assert!(
        all.lines().any(|l| l.starts_with(&ok_line)),
        "{}",
        out.explain()
    );
    // Every diagnostic line has the contract's shape: FILE:LINE:COL: msg or FILE: path: msg.
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        let file = [&bad1, &good, &bad2, &empty, &binary]
            .iter()
            .map(|p| p.display().to_string())
            .find(|f| line.starts_with(&format!("{f}:")))
            .unwrap_or_else(|| panic!("line does not start with a file name: {line}"));
        let rest = &line[file.len()..];
        let positioned = {
            let mut parts = rest.splitn(4, ':');
            parts.next() == Some("")
                && parts
                    .next()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && parts
                    .next()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && parts.next().is_some_and(|m| m.starts_with(' '))
        };
        assert!(positioned || rest.starts_with(": "), "bad shape: {line}");
    }
}

#[test]
fn validate_missing_file_and_no_args() {
    let w = World::new();
    let out = w.run(&["validate", "does-not-exist.yaml"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.all().contains("does-not-exist.yaml"),
        "{}",
        out.explain()
    );
    let out = w.run(&["validate"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
}

#[test]
fn validate_reads_the_file_config_names() {
    // `--config FILE validate` used to ignore FILE (and needed a spec).
    let w = World::new();
    let bad = write_in(
        w.dir.path(),
        "team.yaml",
        "environments:\n  - name: staging\n    aproval: {}\n",
    );
    let out = w.run(&["--config", s(&bad), "validate"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.all()
            .contains("team.yaml:3:5: environments[0].aproval: unknown key"),
        "{}",
        out.explain()
    );
    let good = write_in(
        w.dir.path(),
        "ok.yaml",
        "environments:\n  - name: staging\n",
    );
    let basic = spec("basic.yaml");
    let out = w.run(&["--config", s(&good), "validate", s(&basic)]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(
        out.stdout.contains("ok.yaml: ok (workspace configuration")
            && out.stdout.contains("basic.yaml: ok"),
        "{}",
        out.explain()
    );
}

#[test]
fn a_store_that_cannot_be_opened_fails_with_1_not_2() {
    // A store failure is not bad input.
    let w = World::new();
    let file = write_in(w.dir.path(), "not-a-dir", "x");
    let out = run_within(
        isolated(file.join("state"), w.dir.path(), &["status"]),
        &["status"],
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(out.all().contains("state store"), "{}", out.explain());
}

// ---------------------------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------------------------

#[test]
fn plan_canary_lists_the_steps_in_order() {
    let w = World::new();
    let out = w.run(&["plan", s(&spec("canary.yaml"))]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let text = &out.stdout;
    let mut from = 0;
    for step in [
        "start canary 1.2.0",
        "shift 10%",
        "analyse canary-10 for 10m",
        "shift 50%",
        "gate canary-50",
        "shift 100%",
        "retire",
    ] {
        match text[from..].find(step) {
            Some(i) => from += i + step.len(),
            None => panic!("`{step}` not found (in order) in:\n{text}"),
        }
    }
    assert!(
        text.lines().next().unwrap().contains("expected 20m"),
        "{text}"
    );
    assert!(text.contains("if it fails here:"), "{text}");
    assert!(text.contains("\nrollback: "), "{text}");
}

#[test]
fn plan_json_has_steps() {
    let w = World::new();
    let out = w.run(&["plan", s(&spec("canary.yaml")), "--json"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let steps = v["steps"].as_array().expect("steps array");
    assert_eq!(steps.len(), 10, "{v:#}");
    let descriptions: Vec<&str> = steps
        .iter()
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    assert!(
        descriptions[0].starts_with("start canary 1.2.0"),
        "{descriptions:?}"
    );
    assert!(
        descriptions.iter().any(|d| d.starts_with("gate canary-50")),
        "{descriptions:?}"
    );
    assert!(
        descriptions.last().unwrap().starts_with("retire"),
        "{descriptions:?}"
    );
    assert!(steps
        .iter()
        .all(|s| s["on_failure"].as_str().is_some_and(|f| !f.is_empty())));
    assert_eq!(v["expected_ms"], 1_200_000);
    assert!(v["expected"].as_str().unwrap().starts_with("20m"), "{v:#}");
    assert_eq!(v["gates"], 1);
}

#[test]
fn plan_invalid_spec_exits_2() {
    let w = World::new();
    let bad = w.write("bad.yaml", "id: only-an-id\n");
    let out = w.run(&["plan", s(&bad)]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.stderr.contains(&format!(
            "{}: name: required field is missing",
            bad.display()
        )),
        "{}",
        out.explain()
    );
}

// ---------------------------------------------------------------------------------------------
// apply
// ---------------------------------------------------------------------------------------------

#[test]
fn apply_first_deployment_prints_json_lines() {
    let w = World::new();
    let p = w.v110("canary.yaml");
    let out = w.run(&["apply", s(&p), "--dry-run", "--headless", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let evs = events(&out.stdout);
    assert!(evs.iter().all(|e| e["deployment"] == "my-app-v1.1.0"));
    assert_eq!(evs[0]["kind"], "started");
    assert_eq!(finished(&evs)["outcome"], "succeeded");
}

/// `--headless` is what `apply` does with or without it; its help says so, on one line, and
/// points to the console, instead of promising the console for a later release.
#[test]
fn apply_help_says_what_headless_does() {
    let w = World::new();
    let out = w.run(&["apply", "--help"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("--headless"))
        .unwrap_or_else(|| panic!("no --headless in\n{}", out.stdout));
    assert!(!line.contains("later release"), "{line}");
    assert!(line.contains("cutover console"), "{line}");
    let next = out.stdout.lines().skip_while(|l| *l != line).nth(1);
    assert!(
        next.is_some_and(|l| l.trim_start().starts_with('-')),
        "one line: {line} / {next:?}"
    );
    // Without --headless, apply prints the same events.
    let p = w.v110("canary.yaml");
    let out = w.run(&["apply", s(&p), "--dry-run", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert_eq!(finished(&events(&out.stdout))["outcome"], "succeeded");
}

#[test]
fn apply_canary_on_the_virtual_clock_is_fast() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
    ]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(out.took < Duration::from_secs(5), "took {:?}", out.took);
    let evs = events(&out.stdout);
    assert!(evs.iter().all(|e| e["deployment"] == DEPLOYMENT));
    assert_eq!(finished(&evs)["outcome"], "succeeded");
    // Two 10-minute stages ran on the virtual clock.
    let span = ts(finished(&evs)) - ts(&evs[0]);
    assert!(span >= chrono::Duration::minutes(20), "virtual span {span}");
    let k = kinds(&evs);
    assert!(
        k.contains(&"traffic_shifted") && k.contains(&"analysis"),
        "{k:?}"
    );
    let approved = evs
        .iter()
        .find(|e| e["kind"] == "gate_approved")
        .expect("the gate is approved");
    assert_eq!(approved["gate"], "canary-50");
    assert_eq!(approved["by"], "auto-approve");
    let shifts: Vec<u64> = evs
        .iter()
        .filter(|e| e["kind"] == "traffic_shifted")
        .filter_map(|e| {
            e["weights"]
                .as_array()?
                .iter()
                .find(|w| w["version"] == "1.2.0")
                .and_then(|w| w["weight"].as_u64())
        })
        .collect();
    for want in [10, 50, 100] {
        assert!(shifts.contains(&want), "no shift to {want}%: {shifts:?}");
    }
}

#[test]
fn apply_with_bad_metric_rolls_back() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
        "--sim-fault",
        "error_rate=0.3@3m",
    ]);
    assert_eq!(out.code(), 1, "{}", out.explain());
    let evs = events(&out.stdout);
    let last = finished(&evs);
    assert_eq!(last["outcome"], "rolled_back", "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("error_rate"),
        "{last}"
    );
    assert!(kinds(&evs).contains(&"rollback_started"));
    // Traffic ends back on 1.1.0.
    let back = evs
        .iter()
        .rev()
        .find(|e| e["kind"] == "traffic_shifted")
        .expect("a traffic shift");
    let on_old: u64 = back["weights"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["version"] == "1.1.0")
        .map(|w| w["weight"].as_u64().unwrap())
        .sum();
    assert_eq!(on_old, 100, "{back}");
}

#[test]
fn apply_without_automatic_rollback_fails() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let text = read(&spec("canary.yaml"));
    assert!(text.contains("automatic: true"));
    let p = w.write(
        "manual.yaml",
        &text.replace("automatic: true", "automatic: false"),
    );
    let out = w.run(&[
        "apply",
        s(&p),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
        "--sim-fault",
        "error_rate=0.3@3m",
    ]);
    assert_eq!(out.code(), 1, "{}", out.explain());
    let evs = events(&out.stdout);
    assert_eq!(finished(&evs)["outcome"], "failed", "{}", finished(&evs));
    assert!(!kinds(&evs).contains(&"rollback_started"));
}

#[test]
fn apply_invalid_spec_exits_2() {
    let w = World::new();
    let bad = w.write(
        "bad.yaml",
        &read(&spec("canary.yaml")).replace("strategy: 'canary'", "strategy: 'canery'"),
    );
    let out = w.run(&["apply", s(&bad), "--dry-run", "--headless", "--json"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.stderr.contains("did you mean `canary`?"),
        "{}",
        out.explain()
    );
    let out = w.run(&["apply", "missing.yaml", "--dry-run", "--headless", "--json"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--sim-fault",
        "nonsense==",
    ]);
    assert_eq!(out.code(), 2, "{}", out.explain());
}

#[test]
fn usage_errors_exit_2() {
    let w = World::new();
    let out = w.run(&["frobnicate"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(out.stderr.contains("frobnicate"), "{}", out.explain());
    let out = w.run(&["apply", s(&spec("canary.yaml")), "--no-such-flag"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    let out = w.run(&[]);
    assert_eq!(out.code(), 2, "{}", out.explain());
}

#[test]
fn every_strategy_dry_runs_to_success_after_a_first_deployment() {
    for (name, strategy) in [
        ("blue-green.yaml", "blue-green"),
        ("rolling.yaml", "rolling"),
        ("recreate.yaml", "recreate"),
    ] {
        let w = World::new();
        w.seed_v110(name);
        let out = w.run(&[
            "apply",
            s(&spec(name)),
            "--dry-run",
            "--headless",
            "--json",
            "--auto-approve",
        ]);
        assert_eq!(out.code(), 0, "{name}: {}", out.explain());
        assert!(
            out.took < Duration::from_secs(5),
            "{name}: took {:?}",
            out.took
        );
        let evs = events(&out.stdout);
        assert_eq!(evs[0]["strategy"], strategy, "{name}");
        assert_eq!(
            finished(&evs)["outcome"],
            "succeeded",
            "{name}: {}",
            finished(&evs)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// status, history, rollback
// ---------------------------------------------------------------------------------------------

#[test]
fn status_and_history_list_runs() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
        "--sim-fault",
        "error_rate=0.3@3m",
    ]);
    assert_eq!(out.code(), 1, "{}", out.explain());

    let history = w.json_lines(&["history", "--json"]);
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["deployment"], DEPLOYMENT, "newest first");
    assert_eq!(history[0]["outcome"], "rolled_back");
    assert_eq!(history[0]["version"], "1.2.0");
    assert_eq!(history[1]["deployment"], "my-app-v1.1.0");
    assert_eq!(history[1]["outcome"], "succeeded");
    assert!(history[0]["run"].as_i64() > history[1]["run"].as_i64());

    let other_env = w.json_lines(&["history", "--env", "staging", "--json"]);
    assert!(other_env.is_empty(), "{other_env:?}");

    let status = w.json_lines(&["status", "--json"]);
    let ids: Vec<&str> = status
        .iter()
        .map(|s| s["deployment"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&DEPLOYMENT) && ids.contains(&"my-app-v1.1.0"),
        "{ids:?}"
    );

    let one = w.json_lines(&["status", DEPLOYMENT, "--json"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["outcome"], "rolled_back");
    assert_eq!(one[0]["running"], false);

    let out = w.run(&["status", "no-such-deployment", "--json"]);
    assert_ne!(out.code(), 0, "{}", out.explain());
}

#[test]
fn rollback_to_a_named_version() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
    ]);
    assert_eq!(out.code(), 0, "{}", out.explain());

    let out = w.run(&["rollback", DEPLOYMENT, "--to", "1.1.0"]);
    assert_eq!(out.code(), 0, "{}", out.explain());

    let history = w.json_lines(&["history", "--json"]);
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0]["kind"], "rollback", "{}", history[0]);
    assert_eq!(history[0]["deployment"], DEPLOYMENT);
    assert_eq!(history[0]["outcome"], "rolled_back");
    assert_eq!(history[0]["version"], "1.1.0");
    assert_eq!(history[1]["kind"], "deploy");
}

#[test]
fn rollback_to_an_unknown_version_names_it() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let out = w.run(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
        "--auto-approve",
    ]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = w.run(&["rollback", DEPLOYMENT, "--to", "9.9.9"]);
    assert_ne!(out.code(), 0, "{}", out.explain());
    assert!(out.all().contains("9.9.9"), "{}", out.explain());
    let history = w.json_lines(&["history", "--json"]);
    assert_eq!(
        history.len(),
        2,
        "a refused rollback records no run: {history:?}"
    );
    let out = w.run(&["rollback", "no-such-deployment"]);
    assert_ne!(out.code(), 0, "{}", out.explain());
}

// ---------------------------------------------------------------------------------------------
// a gate approved from another process
// ---------------------------------------------------------------------------------------------

struct GateRun {
    approve: Out,
    child_status: ExitStatus,
    events: Vec<Value>,
}

/// Start a headless dry run without --auto-approve, wait for it to stop at the gate, approve
/// from a second process, and collect the run's end.
fn approve_at_gate(w: &World) -> GateRun {
    w.seed_v110("canary.yaml");
    let mut cmd = w.command(&[
        "apply",
        s(&spec("canary.yaml")),
        "--dry-run",
        "--headless",
        "--json",
    ]);
    let mut guard = Guard(Some(cmd.spawn().expect("spawn apply")));
    let child = guard.0.as_mut().unwrap();
    let err = drain(child.stderr.take().unwrap());
    let (rx, reader) = lines_of(child.stdout.take().unwrap());

    // Read events until the gate waits.
    let mut lines = Vec::new();
    let start = Instant::now();
    loop {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "no gate_waiting within 10s; got:\n{}",
            lines.join("\n")
        );
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ev: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                lines.push(line);
                assert_ne!(ev["kind"], "finished", "finished before the gate: {ev}");
                if ev["kind"] == "gate_waiting" {
                    assert_eq!(ev["gate"], "canary-50", "{ev}");
                    break;
                }
            }
            Err(e) => panic!(
                "child stdout ended ({e:?}) before the gate; got:\n{}",
                lines.join("\n")
            ),
        }
    }

    // The waiting gate is visible from another process.
    let status = w.json_lines(&["status", DEPLOYMENT, "--json"]);
    assert_eq!(status[0]["status"], "waiting_approval", "{}", status[0]);
    assert_eq!(status[0]["running"], true, "{}", status[0]);
    assert_eq!(status[0]["snapshot"]["gate"], "canary-50", "{}", status[0]);
    let waiting = w.json_lines(&["approvals", "--json"]);
    assert!(
        waiting
            .iter()
            .any(|a| a["deployment"] == DEPLOYMENT && a["gate"] == "canary-50"),
        "{waiting:?}"
    );

    let approve = w.run(&["approve", DEPLOYMENT, "--gate", "canary-50"]);

    // The run goes on to the end.
    let child = guard.0.as_mut().unwrap();
    let child_status = wait_exit(child, Duration::from_secs(10), || {
        format!(
            "the run did not finish within 10s of the approval; approve said:\n{}",
            approve.explain()
        )
    });
    guard.0 = None;
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let stderr = err.join().unwrap();
    assert!(
        stderr.contains("gate canary-50 waits for approval"),
        "stderr: {stderr}"
    );
    let events = events(&lines.join("\n"));
    GateRun {
        approve,
        child_status,
        events,
    }
}

#[test]
fn headless_run_waits_at_the_gate_until_approved_from_another_process() {
    let w = World::new();
    let run = approve_at_gate(&w);
    assert_eq!(
        run.child_status.code(),
        Some(0),
        "approve said:\n{}",
        run.approve.explain()
    );
    assert_eq!(
        finished(&run.events)["outcome"],
        "succeeded",
        "{}",
        finished(&run.events)
    );
    let approved = run
        .events
        .iter()
        .find(|e| e["kind"] == "gate_approved")
        .expect("a gate_approved event");
    assert_eq!(approved["gate"], "canary-50");
    let history = w.json_lines(&["history", "--json"]);
    assert_eq!(history[0]["outcome"], "succeeded");
}

#[test]

fn approve_exits_0_when_its_approval_is_taken() {
    let w = World::new();
    let run = approve_at_gate(&w);
    assert_eq!(finished(&run.events)["outcome"], "succeeded");
    assert_eq!(run.approve.code(), 0, "{}", run.approve.explain());
}

#[test]
fn interrupt_pauses_and_saves_the_run_with_exit_3() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let mut cmd = w.command(&["apply", s(&spec("canary.yaml")), "--dry-run", "--json"]);
    let mut guard = Guard(Some(cmd.spawn().expect("spawn apply")));
    let child = guard.0.as_mut().unwrap();
    let _err = drain(child.stderr.take().unwrap());
    let (rx, reader) = lines_of(child.stdout.take().unwrap());
    let start = Instant::now();
    loop {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        let line = rx
            .recv_timeout(left)
            .expect("a gate_waiting event within 10s");
        let ev: Value = serde_json::from_str(&line).unwrap();
        if ev["kind"] == "gate_waiting" {
            break;
        }
    }
    let pid = child.id() as i32;
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let status = wait_exit(child, Duration::from_secs(10), || {
        "apply did not stop on SIGINT".to_string()
    });
    guard.0 = None;
    reader.join().unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(3), "exit code 3 = interrupted");
    let last: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(last["kind"], "interrupted", "{last}");
    assert_eq!(last["deployment"], DEPLOYMENT);
    // The run is saved, paused, and owned by no process.
    let st = w.json_lines(&["status", DEPLOYMENT, "--json"]);
    assert_eq!(st[0]["status"], "paused", "{}", st[0]);
    assert_eq!(st[0]["running"], false, "{}", st[0]);
    assert!(st[0]["outcome"].is_null());
    // It can still be rolled back from another command; the interrupted run then ends rolled back.
    let out = w.run(&["rollback", DEPLOYMENT]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let history = w.json_lines(&["history", "--json"]);
    assert_eq!(history[0]["kind"], "rollback", "{}", history[0]);
    assert_eq!(history[0]["outcome"], "rolled_back");
    assert_eq!(history[1]["outcome"], "rolled_back", "{}", history[1]);
    // Its journal ends with its end, naming the run that rolled it back (metrics count the
    // rollback once, from that run).
    let store = cutover::store::Store::open(&w.state()).unwrap();
    let (back, replaced) = (
        history[0]["run"].as_i64().unwrap(),
        history[1]["run"].as_i64().unwrap(),
    );
    let events = store.events(replaced, 0).unwrap();
    let end: Value = serde_json::from_str(&events.last().unwrap().json).unwrap();
    assert_eq!(end["kind"], "finished", "{end}");
    assert_eq!(end["outcome"], "rolled_back", "{end}");
    assert_eq!(end["cause"], "manual", "{end}");
    assert_eq!(end["by_run"], back, "{end}");
}

/// `cutover status` of a run on a platform that only comes near the weights asked (a
/// replica-ratio canary on Kubernetes): the words give both, the JSON keeps both fields.
#[test]
fn status_shows_the_weight_asked_and_the_share_achieved() {
    use cutover::engine::event::{ComponentTraffic, Weight};
    use cutover::store::{NewRun, RunKind, Status, Store};
    let w = World::new();
    let store = Store::open(&w.state()).unwrap();
    let run = store
        .create_run(&NewRun {
            deployment: "api-v2.0.0".into(),
            kind: RunKind::Deploy,
            name: "api".into(),
            version: "2.0.0".into(),
            strategy: cutover::spec::Strategy::Canary,
            environment: "prod".into(),
            provider: cutover::spec::ProviderKind::Kubernetes,
            dry_run: false,
            spec_json: "{}".into(),
            plan_json: "{}".into(),
            initiator: "alice".into(),
        })
        .unwrap();
    let weight = |version: &str, weight, achieved| Weight {
        revision: format!("api@{version}.r1"),
        version: version.into(),
        weight,
        achieved,
    };
    let snapshot = cutover::engine::Snapshot {
        deployment: "api-v2.0.0".into(),
        run,
        version: "2.0.0".into(),
        strategy: cutover::spec::Strategy::Canary,
        environment: "prod".into(),
        status: Status::Progressing,
        step: 2,
        steps: 6,
        step_description: "shift 20% of traffic to 2.0.0".into(),
        gate: None,
        gate_view: None,
        traffic: vec![ComponentTraffic {
            component: "api".into(),
            weights: vec![
                weight("1.0.0", 80, Some(75.0)),
                weight("2.0.0", 20, Some(25.0)),
            ],
            measured_rps: Default::default(),
        }],
        instances: Vec::new(),
        last_verdicts: Vec::new(),
        reason: None,
        outcome: None,
        rolling_back: None,
    };
    store
        .update_run(
            run,
            Status::Progressing,
            2,
            &serde_json::to_string(&snapshot).unwrap(),
        )
        .unwrap();
    drop(store);

    let out = w.run(&["status", "api-v2.0.0"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(
        out.stdout
            .contains("traffic:   api: 1.0.0 80% (75.0% achieved) | 2.0.0 20% (25.0% achieved)"),
        "{}",
        out.stdout
    );
    let json = w.json_lines(&["status", "api-v2.0.0", "--json"]);
    let ws = &json[0]["snapshot"]["traffic"][0]["weights"];
    assert_eq!(ws[0]["weight"], 80, "{ws}");
    assert_eq!(ws[0]["achieved"], 75.0, "{ws}");
    assert_eq!(ws[1]["weight"], 20, "{ws}");
    assert_eq!(ws[1]["achieved"], 25.0, "{ws}");
}

/// `cutover prune`: routine analysis lines of finished runs go, their counts stay; what it does
/// is said, a dry run changes nothing, and without an age it asks for one.
#[test]
fn prune_keeps_every_count_and_the_audit_chain() {
    let w = World::new();
    w.seed_v110("canary.yaml");
    let analytics = |w: &World| {
        let a = w.json_lines(&["analytics", "my-app-v1.1.0", "--json"]);
        a[0]["run"]["verdicts"].clone()
    };
    let verdicts = analytics(&w);
    assert!(
        verdicts.as_object().is_some_and(|o| !o.is_empty()),
        "{verdicts}"
    );
    let out = w.run(&["prune"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(out.stderr.contains("--older-than"), "{}", out.explain());
    let out = w.run(&["prune", "--older-than", "soon"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    let dry = w.json_lines(&["prune", "--older-than", "0s", "--dry-run", "--json"]);
    assert!(dry[0]["lines"].as_u64().unwrap_or(0) > 0, "{}", dry[0]);
    let done = w.json_lines(&["prune", "--older-than", "0s", "--json"]);
    assert_eq!(done[0]["lines"], dry[0]["lines"], "{}", done[0]);
    assert_eq!(analytics(&w), verdicts, "the counts stay");
    let again = w.json_lines(&["prune", "--older-than", "0s", "--json"]);
    assert_eq!(again[0]["lines"], 0, "{}", again[0]);
    let out = w.run(&["audit", "--verify"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = w.run(&["prune", "--older-than", "0s"]);
    assert!(
        out.stdout.contains("pruned 0 routine analysis line"),
        "{}",
        out.explain()
    );
    // The age from cutover.yaml, named when it is wrong.
    w.write("cutover.yaml", "retention:\n  pruneAfter: 90d\n");
    let out = w.run(&["prune", "--dry-run"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    w.write("cutover.yaml", "retention:\n  pruneAfter: soon\n");
    let out = w.run(&["prune"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.all().contains("retention.pruneAfter"),
        "{}",
        out.explain()
    );
}
