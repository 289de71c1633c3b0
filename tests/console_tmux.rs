//! The console end to end through tmux: a run in another process waits at a gate, the console
//! shows it, `a` approves it, the run finishes, `q` quits and the terminal is restored.
//!
//! Needs tmux. Without it each test skips with a notice on standard error that `cargo test`
//! shows (`common::skip`), except under CI (`CI=true`), where `.ci/run` installs it and a skip
//! is a failure.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    free_port, seed_spec, skip, start_until_gate, stop_host, v110, wait_exit, write_in, LocalSpec,
    BIN,
};

/// Whether tmux runs; otherwise `test` is skipped visibly (failed under CI).
fn tmux_present(test: &str) -> bool {
    skip::present_or_skip(
        skip::runs("tmux", &["-V"]),
        test,
        "tmux",
        "apt-get install tmux",
    )
}

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of its own (socket `cutover-NAME-PID`) with session `t`, 120 columns by
    /// `rows`, running `command`.
    fn start(name: &str, rows: &str, command: &[&str]) -> Tmux {
        let t = Tmux {
            socket: format!("cutover-{name}-{}", std::process::id()),
        };
        let mut args = vec!["new-session", "-d", "-s", "t", "-x", "120", "-y", rows];
        args.extend_from_slice(command);
        let out = t.cmd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-t", "t", "-p"]).stdout).into_owned()
    }
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "`{text}` never appeared; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// Wait for `words` on one line, however wide the columns between them are (the
    /// dashboard's table pads its columns to their content; the narrow list does not).
    fn wait_for_words(&self, words: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.lines().any(|l| squeeze(l).contains(words)) {
                return s;
            }
            assert!(
                start.elapsed() < within,
                "`{words}` never appeared; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "t", k]);
        }
    }
}

/// A line with every run of spaces made one.
fn squeeze(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn approve_a_gate_from_the_console_then_quit() {
    if !tmux_present("console_tmux::approve_a_gate_from_the_console_then_quit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let v110 = v110(dir.path(), "canary.yaml");
    let st = common::cutover(&state, &["apply", v110.to_str().unwrap(), "--dry-run"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // The rollout with a gate runs in its own process.
    let canary = seed_spec("canary.yaml");
    let (mut apply, _lines) = start_until_gate(
        common::cutover(
            &state,
            &["apply", canary.to_str().unwrap(), "--dry-run", "--json"],
        ),
        Duration::from_secs(10),
    );
    let cmdline = format!("{BIN} --state-dir {} console", state.display());
    let t = Tmux::start("test", "32", &[&cmdline]);
    let screen = t.wait_for("waits for approval", Duration::from_secs(10));
    assert!(screen.contains("GATE my-app-v1.2.0"), "{screen}");
    t.cmd(&["send-keys", "-t", "t", "a"]);
    t.wait_for("approved gate canary-50", Duration::from_secs(10));
    // The run in the other process finishes.
    let status = wait_exit(&mut apply, Duration::from_secs(10), || {
        "the run did not finish after the approval".to_string()
    });
    assert!(status.success());
    t.wait_for("OK   my-app-v1.2.0", Duration::from_secs(5));
    // q quits; the pane's shell is gone, so the session ends.
    t.cmd(&["send-keys", "-t", "t", "q"]);
    let start = Instant::now();
    while t.cmd(&["has-session", "-t", "t"]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the console did not quit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A local spec of the demo service on `port`: a 20% canary step, then a gate at 50%.
fn local_spec(dir: &Path, version: &str, port: u16, stage: &str) -> PathBuf {
    let text = format!(
        "{}rollback: {{enabled: true, automatic: true, strategy: {{type: immediate}}, timeout: 1m}}
metadata:
  canaryConfig:
    stages:
      - {{name: canary-20, percentage: 20, duration: {stage}}}
      - {{name: canary-50, percentage: 50, duration: 1s, autoPromote: false}}
      - {{name: full, percentage: 100, duration: 0}}
    analysisInterval: 500ms
",
        LocalSpec::demo(version, port).yaml()
    );
    write_in(dir, &format!("shop-{version}.yaml"), &text)
}

/// A state dir whose local host is stopped when the test ends, however it ends.
struct State(tempfile::TempDir);

impl State {
    fn path(&self) -> PathBuf {
        self.0.path().join("state")
    }
}

impl Drop for State {
    fn drop(&mut self) {
        stop_host(&self.path());
    }
}

/// A state dir where 1.0.0 already serves on a free port; returns it and 1.1.0's spec.
fn deployed(stage: &str) -> (State, PathBuf) {
    let st = State(tempfile::tempdir().unwrap());
    let port = free_port();
    let v1 = local_spec(st.0.path(), "1.0.0", port, stage);
    let v2 = local_spec(st.0.path(), "1.1.0", port, stage);
    let ok = common::cutover(st.path(), &["apply", v1.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "1.0.0 deploys");
    (st, v2)
}

/// Start `cutover console SPEC` in tmux, in a shell that reports the exit code and whether the
/// terminal is back in cooked mode once the console has gone.
fn console_on(st: &State, spec: &Path, name: &str) -> Tmux {
    let cmdline = format!(
        "{BIN} --state-dir {} console {}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -- '-*icanon'; sleep 30",
        st.path().display(),
        spec.display()
    );
    Tmux::start(name, "36", &["sh", "-c", &cmdline])
}

fn outcome(st: &State) -> serde_json::Value {
    let out = common::cutover(st.path(), &["status", "shop", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn console_runs_a_local_spec_to_its_gate_approves_it_and_quits_restoring_the_terminal() {
    if !tmux_present("console_tmux::console_runs_a_local_spec_to_its_gate_approves_it_and_quits_restoring_the_terminal") {
        return;
    }
    let (st, v2) = deployed("1s");
    let t = console_on(&st, &v2, "gate");
    t.wait_for("waits for approval", Duration::from_secs(30));
    t.wait_for_words("GATE shop 1.1.0", Duration::from_secs(5));
    t.cmd(&["send-keys", "-t", "t", "a"]);
    t.wait_for_words("OK shop 1.1.0", Duration::from_secs(20));
    let s = outcome(&st);
    assert_eq!(s["status"], "succeeded", "{s}");
    // Nothing runs any more, so q quits without asking.
    t.cmd(&["send-keys", "-t", "t", "q"]);
    t.wait_for("EXIT=0", Duration::from_secs(10));
    let screen = t.wait_for("icanon", Duration::from_secs(5));
    assert!(
        screen.lines().any(|l| l.trim() == "icanon"),
        "the terminal is back in cooked mode:\n{screen}"
    );
    assert!(
        !screen.contains("deployments"),
        "the alternate screen is gone:\n{screen}"
    );
}

#[test]
fn rolling_back_a_running_rollout_with_capital_u() {
    if !tmux_present("console_tmux::rolling_back_a_running_rollout_with_capital_u") {
        return;
    }
    let (st, v2) = deployed("60s");
    let t = console_on(&st, &v2, "undo");
    t.wait_for("traffic: 1.0.0 80% | 1.1.0 20%", Duration::from_secs(30));
    t.wait_for_words("RUN shop 1.1.0", Duration::from_secs(10));
    t.cmd(&["send-keys", "-t", "t", "U"]);
    let screen = t.wait_for("Roll back shop 1.1.0?", Duration::from_secs(5));
    assert!(
        screen.contains("all traffic back to 1.0.0, then remove 1.1.0"),
        "the dialog shows the rollback plan:\n{screen}"
    );
    t.cmd(&["send-keys", "-t", "t", "y"]);
    t.wait_for_words("RBCK shop 1.1.0", Duration::from_secs(20));
    let s = outcome(&st);
    assert_eq!(s["status"], "rolled_back", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap_or("")
            .contains("rollback requested"),
        "{s}"
    );
    t.cmd(&["send-keys", "-t", "t", "q"]);
    t.wait_for("EXIT=0", Duration::from_secs(10));
}

#[test]
fn a_dropped_terminal_pauses_the_consoles_runs_and_lets_go_of_them() {
    if !tmux_present(
        "console_tmux::a_dropped_terminal_pauses_the_consoles_runs_and_lets_go_of_them",
    ) {
        return;
    }
    let (st, v2) = deployed("60s");
    let t = console_on(&st, &v2, "hup");
    t.wait_for("traffic: 1.0.0 80% | 1.1.0 20%", Duration::from_secs(30));
    // Like an SSH connection dropping: the terminal goes away and the console gets SIGHUP.
    t.cmd(&["kill-server"]);
    let start = Instant::now();
    let s = loop {
        let s = outcome(&st);
        if s["status"] == "paused" && s["running"] == false {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the run was not paused and released: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Paused between steps: the 20% split is whole, and the run can be taken over later.
    let w = &s["snapshot"]["traffic"][0]["weights"];
    assert_eq!(w[1]["weight"], 20, "{s}");
}

#[test]
fn the_dashboard_shows_every_pane_zooms_one_reflows_to_tabs_and_the_history_filters_and_exports() {
    if !tmux_present(
        "console_tmux::the_dashboard_shows_every_pane_zooms_one_reflows_to_tabs_and_the_history_filters_and_exports",
    ) {
        return;
    }
    let (st, v2) = deployed("60s");
    let t = console_on(&st, &v2, "dash");
    // 120x36: every pane at once, under a table of the deployments.
    let screen = t.wait_for("traffic: 1.0.0 80% | 1.1.0 20%", Duration::from_secs(30));
    for title in [
        "deployments (1)",
        "progress",
        "traffic",
        "health",
        "analysis",
        "events",
        "STRATEGY",
    ] {
        assert!(screen.contains(title), "{title} missing:\n{screen}");
    }
    t.wait_for_words("RUN shop 1.1.0 test canary", Duration::from_secs(5));
    t.wait_for("weight asked for 1.1.0", Duration::from_secs(5));
    // Focus the analysis pane and zoom it to the whole screen, then back.
    t.keys(&["l", "l", "l", "z"]);
    let screen = t.wait_for("analysis (z: back)", Duration::from_secs(5));
    assert!(!screen.contains("STRATEGY"), "zoomed:\n{screen}");
    t.keys(&["z"]);
    t.wait_for("STRATEGY", Duration::from_secs(5));
    // A smaller terminal: the panes become tabs, with the focused one shown.
    t.cmd(&["resize-window", "-t", "t", "-x", "80", "-y", "24"]);
    let screen = t.wait_for("[analysis]", Duration::from_secs(5));
    assert!(!screen.contains("STRATEGY"), "tabs:\n{screen}");
    t.cmd(&["resize-window", "-t", "t", "-x", "160", "-y", "48"]);
    t.wait_for("STRATEGY", Duration::from_secs(5));
    // The history: delivery measures, filtered to an environment, exported to a file.
    t.keys(&["H"]);
    t.wait_for(
        "delivery of every deployment in every environment",
        Duration::from_secs(5),
    );
    t.keys(&["e"]);
    t.wait_for(
        "delivery of every deployment in test",
        Duration::from_secs(5),
    );
    t.keys(&["<"]);
    t.wait_for("the 4 weeks to", Duration::from_secs(5));
    let export = st.path().join("history.csv");
    t.keys(&[":"]);
    t.cmd(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        &format!("export {}", export.display()),
    ]);
    t.keys(&["Enter"]);
    t.wait_for("line(s) to", Duration::from_secs(5));
    let csv = std::fs::read_to_string(&export).unwrap_or_default();
    assert!(
        csv.starts_with("scope,") && csv.contains("shop@test"),
        "{csv}"
    );
    t.keys(&["Escape"]);
    t.wait_for("STRATEGY", Duration::from_secs(5));
    // Quitting while the run goes on asks; p pauses it and quits.
    t.keys(&["q"]);
    t.wait_for("What should happen to them?", Duration::from_secs(5));
    t.keys(&["p"]);
    t.wait_for("EXIT=0", Duration::from_secs(15));
    assert_eq!(outcome(&st)["status"], "paused");
}
