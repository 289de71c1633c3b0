//! Supervised OS processes for local instances.
//!
//! Owns: starting an instance's argv (no shell) with its environment and log file, noticing exits
//! and crashes, restarting with backoff, and stopping gracefully (SIGTERM to the process group,
//! SIGKILL after a grace period). Must not touch: probes, routing or the store.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The environment variable that marks processes owned by a host (its state dir).
pub const HOST_ENV: &str = "CUTOVER_HOST_ID";
/// The environment variable naming the instance.
pub const INSTANCE_ENV: &str = "CUTOVER_INSTANCE";

/// How to run one instance.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub id: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
    pub grace: Duration,
}

/// What is known about an instance's process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcStatus {
    pub pid: Option<u32>,
    pub running: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

/// Finding a program like execvp would lives with running commands.
pub use crate::exec::resolve;

fn spawn(spec: &ProcSpec) -> std::io::Result<Child> {
    if let Some(dir) = spec.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let err = log.try_clone()?;
    let (prog, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "exited".into(),
    }
}

/// Send a signal to a process group.
pub fn signal_group(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions; a stale pid only yields ESRCH.
        unsafe {
            libc::kill(-(pid as i32), sig);
        }
    }
}

/// A running, supervised instance process.
pub struct Supervised {
    pub status: Arc<Mutex<ProcStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Start the process; an error here (missing binary, bad argv) is reported at once.
    pub fn start(
        spec: ProcSpec,
        on_exit: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> std::io::Result<Supervised> {
        let child = spawn(&spec)?;
        let status = Arc::new(Mutex::new(ProcStatus {
            pid: child.id(),
            running: true,
            restarts: 0,
            last_exit: None,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(spec, child, status.clone(), stop_rx, on_exit));
        Ok(Supervised { status, stop, task })
    }

    pub fn snapshot(&self) -> ProcStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stop gracefully and wait until the process is gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        signal_group(pid, libc::SIGTERM);
        if let Ok(Ok(st)) = tokio::time::timeout(grace, child.wait()).await {
            signal_group(pid, libc::SIGKILL);
            return Some(st);
        }
        signal_group(pid, libc::SIGKILL);
    }
    let _ = child.start_kill();
    child.wait().await.ok()
}

async fn supervise(
    spec: ProcSpec,
    mut child: Child,
    status: Arc<Mutex<ProcStatus>>,
    mut stop: watch::Receiver<bool>,
    on_exit: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let exited = tokio::select! {
            st = child.wait() => st,
            _ = stop.changed() => {
                terminate(&mut child, spec.grace).await;
                let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                s.running = false;
                s.last_exit = Some("stopped".into());
                return;
            }
        };
        // Whatever happened, make sure nothing of its group lingers.
        if let Some(pid) = status.lock().unwrap_or_else(|e| e.into_inner()).pid {
            signal_group(pid, libc::SIGKILL);
        }
        let what = match exited {
            Ok(st) => describe(st),
            Err(e) => format!("lost: {e}"),
        };
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            s.running = false;
            s.last_exit = Some(what.clone());
        }
        on_exit(&what);
        tracing::warn!(instance = %spec.id, "{what}; restarting in {backoff:?}");
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
        match spawn(&spec) {
            Ok(c) => {
                child = c;
                let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                s.pid = child.id();
                s.running = true;
                s.restarts += 1;
            }
            Err(e) => {
                {
                    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                    s.restarts += 1;
                    s.last_exit = Some(format!("cannot restart: {e}"));
                }
                // Try again after the next backoff.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    if let Ok(c) = spawn(&spec) {
                        child = c;
                        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                        s.pid = child.id();
                        s.running = true;
                        break;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Processes on this machine carrying `HOST_ENV=host_id` (left by a host that died), by pid.
pub fn find_owned(host_id: &str) -> Vec<u32> {
    let needle = format!("{HOST_ENV}={host_id}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(dir: &Path, argv: &[&str]) -> ProcSpec {
        ProcSpec {
            id: "t".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("X_TEST".into(), "1".into())],
            log: dir.join("t.log"),
            grace: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn restarts_after_a_crash_and_stops_gracefully() {
        let dir = tempfile::tempdir().unwrap();
        let exits = Arc::new(Mutex::new(Vec::<String>::new()));
        let e2 = exits.clone();
        let s = Supervised::start(
            spec(dir.path(), &["sh", "-c", "echo started; exit 3"]),
            Arc::new(move |w: &str| e2.lock().unwrap().push(w.to_string())),
        )
        .unwrap();
        for _ in 0..100 {
            if s.snapshot().restarts >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(s.snapshot().restarts >= 1);
        assert_eq!(exits.lock().unwrap()[0], "exited with code 3");
        s.stop().await;
        let log = std::fs::read_to_string(dir.path().join("t.log")).unwrap();
        assert!(log.contains("started"));

        // A long runner is stopped by SIGTERM within the grace period.
        let s =
            Supervised::start(spec(dir.path(), &["sleep", "30"]), Arc::new(|_: &str| {})).unwrap();
        let pid = s.snapshot().pid.unwrap();
        let t0 = Instant::now();
        s.stop().await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || {
                // A zombie is not a running process.
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.contains(" Z "))
                    .unwrap_or(true)
            }
        );
    }

    #[tokio::test]
    async fn a_missing_binary_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = Supervised::start(
            spec(dir.path(), &["/no/such/binary"]),
            Arc::new(|_: &str| {}),
        )
        .err();
        assert!(e.is_some());
    }
}
