//! The console end to end through tmux: a run in another process waits at a gate, the console
//! shows it, `a` approves it, the run finishes, `q` quits and the terminal is restored.
//!
//! Needs tmux. Without it the test says so loudly and skips, except under CI (`CI=true`), where
//! `.ci/run` installs it and a skip is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cutover");

fn tmux_present() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "tmux is required under CI (.ci/run installs it)"
        );
        eprintln!("\n*** SKIPPED: tmux is not installed (apt-get install tmux) ***\n");
    }
    ok
}

struct Tmux {
    socket: String,
}

impl Tmux {
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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn approve_a_gate_from_the_console_then_quit() {
    if !tmux_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let v110 = dir.path().join("v110.yaml");
    std::fs::write(
        &v110,
        std::fs::read_to_string(specs.join("canary.yaml"))
            .unwrap()
            .replace("1.2.0", "1.1.0"),
    )
    .unwrap();
    let st = Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .args(["apply", v110.to_str().unwrap(), "--dry-run"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // The rollout with a gate runs in its own process.
    let mut apply = Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .args([
            "apply",
            specs.join("canary.yaml").to_str().unwrap(),
            "--dry-run",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = apply.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("gate_waiting within 10s");
        if line.contains("\"gate_waiting\"") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    let t = Tmux {
        socket: format!("cutover-test-{}", std::process::id()),
    };
    let cmdline = format!("{BIN} --state-dir {} console", state.display());
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "32",
        &cmdline,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = t.wait_for("waits for approval", Duration::from_secs(10));
    assert!(screen.contains("GATE my-app-v1.2.0"), "{screen}");
    t.cmd(&["send-keys", "-t", "t", "a"]);
    t.wait_for("approved gate canary-50", Duration::from_secs(10));
    // The run in the other process finishes.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = apply.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the run did not finish after the approval"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
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
