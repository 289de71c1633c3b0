//! Supervised OS processes for local instances.
//!
//! Owns: starting an instance's argv (no shell) with its environment and log file, noticing exits
//! and crashes, restarting with backoff, and stopping gracefully (SIGTERM to the process group,
//! SIGKILL after a grace period). Must not touch: probes, routing or the store.

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};
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
    /// The state dir the log lives in (its sharing mode decides the log's).
    pub state_dir: PathBuf,
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
        super::files::create_dir(dir, &spec.state_dir)?;
    }
    let log = super::files::open_log(&spec.log, &spec.state_dir)?;
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

/// The process an instance runs: a child of this host, or one adopted from a host that died
/// (not our child: its exit is seen through a pidfd, its status is unknown).
enum Running {
    Child(Child),
    Adopted {
        pid: u32,
        exit: tokio::io::unix::AsyncFd<OwnedFd>,
    },
}

impl Running {
    fn pid(&self) -> Option<u32> {
        match self {
            Running::Child(c) => c.id(),
            Running::Adopted { pid, .. } => Some(*pid),
        }
    }

    /// Wait for the process to end; what happened, in words.
    async fn wait(&mut self) -> String {
        match self {
            Running::Child(c) => match c.wait().await {
                Ok(st) => describe(st),
                Err(e) => format!("lost: {e}"),
            },
            Running::Adopted { exit, .. } => match exit.readable().await {
                Ok(_) => "exited (adopted from an earlier host: exit status unknown)".into(),
                Err(e) => format!("lost: {e}"),
            },
        }
    }
}

/// A descriptor that becomes readable when process `pid` exits (any process, not only a
/// child).
pub fn pidfd(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns (pidfds are close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
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
        let pid = child.id();
        Ok(Self::supervise(spec, Running::Child(child), pid, on_exit))
    }

    /// Supervise process `pid`, started by an earlier host as this instance (the caller has
    /// checked that it is): when it exits it is restarted from `spec`, as a crash would be.
    pub fn adopt(
        spec: ProcSpec,
        pid: u32,
        on_exit: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> std::io::Result<Supervised> {
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same descriptor until
        // the AsyncFd is dropped.
        let exit = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                pidfd(pid)?,
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(Self::supervise(
            spec,
            Running::Adopted { pid, exit },
            Some(pid),
            on_exit,
        ))
    }

    fn supervise(
        spec: ProcSpec,
        running: Running,
        pid: Option<u32>,
        on_exit: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Supervised {
        let status = Arc::new(Mutex::new(ProcStatus {
            pid,
            running: true,
            restarts: 0,
            last_exit: None,
        }));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(spec, running, status.clone(), stop_rx, on_exit));
        Supervised { status, stop, task }
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

async fn terminate(running: &mut Running, grace: Duration) {
    if let Some(pid) = running.pid() {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(grace, running.wait()).await.is_ok() {
            signal_group(pid, libc::SIGKILL);
            return;
        }
        signal_group(pid, libc::SIGKILL);
    }
    match running {
        Running::Child(c) => {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        Running::Adopted { .. } => {
            let _ = tokio::time::timeout(Duration::from_secs(2), running.wait()).await;
        }
    }
}

async fn supervise(
    spec: ProcSpec,
    mut running: Running,
    status: Arc<Mutex<ProcStatus>>,
    mut stop: watch::Receiver<bool>,
    on_exit: Arc<dyn Fn(&str) + Send + Sync>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let what = tokio::select! {
            what = running.wait() => what,
            _ = stop.changed() => {
                terminate(&mut running, spec.grace).await;
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
                let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                s.pid = c.id();
                s.running = true;
                s.restarts += 1;
                running = Running::Child(c);
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
                        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
                        s.pid = c.id();
                        s.running = true;
                        running = Running::Child(c);
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

/// A process carrying this host's mark, as found in /proc.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned {
    pub pid: u32,
    /// Its process group (an instance leads its own).
    pub pgid: u32,
    /// The instance it was started as (`INSTANCE_ENV`).
    pub instance: Option<String>,
    /// Its `PORT_*` variables: the ports it was given.
    pub port_env: BTreeMap<String, u16>,
}

impl Owned {
    /// The instance's own process (not a child that inherited its environment).
    pub fn leads_its_group(&self) -> bool {
        self.pid == self.pgid
    }
}

/// Process `pid` if it is alive (not a zombie) and carries `HOST_ENV=host_id`.
pub fn owned(pid: u32, host_id: &str) -> Option<Owned> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state, ppid, pgrp, ...
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?;
    if state.starts_with(['Z', 'X']) {
        return None;
    }
    let pgid: u32 = rest.nth(1)?.parse().ok()?;
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let needle = format!("{HOST_ENV}={host_id}");
    let mut ours = false;
    let mut instance = None;
    let mut port_env = BTreeMap::new();
    for kv in env.split(|b| *b == 0) {
        let Ok(kv) = std::str::from_utf8(kv) else {
            continue;
        };
        if kv == needle {
            ours = true;
        } else if let Some(v) = kv.strip_prefix(&format!("{INSTANCE_ENV}=")) {
            instance = Some(v.to_string());
        } else if let Some((k, v)) = kv.split_once('=') {
            if k.starts_with("PORT_") {
                if let Ok(p) = v.parse::<u16>() {
                    port_env.insert(k.to_string(), p);
                }
            }
        }
    }
    ours.then_some(Owned {
        pid,
        pgid,
        instance,
        port_env,
    })
}

/// Every live process on this machine carrying `HOST_ENV=host_id`, but this one.
pub fn scan_owned(host_id: &str) -> Vec<Owned> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| *pid != me)
        .filter_map(|pid| owned(pid, host_id))
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
            state_dir: dir.to_path_buf(),
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
    /// A process started as an instance by an earlier host: own group, the host's marks.
    fn orphan(host: &str, id: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("30")
            .env(HOST_ENV, host)
            .env(INSTANCE_ENV, id)
            .env("PORT_HTTP", "4321")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[tokio::test]
    async fn an_instance_left_by_a_dead_host_is_found_adopted_restarted_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let mut old = orphan(&host, "web@1#0");
        let pid = old.id();
        let found = scan_owned(&host);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].leads_its_group());
        assert_eq!(found[0].pid, pid);
        assert_eq!(found[0].instance.as_deref(), Some("web@1#0"));
        assert_eq!(found[0].port_env.get("PORT_HTTP"), Some(&4321));
        assert!(owned(pid, "another host").is_none());

        let exits = Arc::new(Mutex::new(Vec::<String>::new()));
        let e2 = exits.clone();
        let mut spec = spec(dir.path(), &["sleep", "30"]);
        spec.env.push((HOST_ENV.into(), host.clone()));
        let s = Supervised::adopt(
            spec,
            pid,
            Arc::new(move |w: &str| e2.lock().unwrap().push(w.to_string())),
        )
        .unwrap();
        assert_eq!(s.snapshot().pid, Some(pid));
        assert!(s.snapshot().running);
        // Adopted, not restarted: the same process goes on.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(s.snapshot().restarts, 0);
        // Its death is noticed (it is not our child: through the pidfd) and it is restarted.
        signal_group(pid, libc::SIGKILL);
        let _ = old.wait();
        for _ in 0..100 {
            if s.snapshot().restarts >= 1 && s.snapshot().running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let now = s.snapshot();
        assert_eq!(now.restarts, 1, "{now:?}");
        assert_ne!(now.pid, Some(pid));
        assert!(exits.lock().unwrap()[0].contains("adopted"));
        let new = now.pid.unwrap();
        assert_eq!(owned(new, &host).map(|o| o.pid), Some(new));
        s.stop().await;
        assert!(owned(new, &host).is_none(), "stopped");

        // Stopping an adopted instance terminates it by its group.
        let mut other = orphan(&host, "web@1#1");
        let opid = other.id();
        let s = Supervised::adopt(spec_for_stop(dir.path()), opid, Arc::new(|_: &str| {})).unwrap();
        let t0 = Instant::now();
        s.stop().await;
        assert!(t0.elapsed() < Duration::from_secs(2));
        let st = other.wait().unwrap();
        assert!(!st.success(), "terminated by a signal: {st:?}");
    }

    fn spec_for_stop(dir: &Path) -> ProcSpec {
        spec(dir, &["sleep", "30"])
    }
}
