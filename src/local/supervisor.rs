//! `cutover host supervise`: the small process that keeps the host's sockets open and its
//! worker running.
//!
//! The supervisor takes the state dir's host lock, binds `host.sock`, and starts the worker
//! (`cutover host serve`) with the API socket and every listen socket the worker has handed it
//! (see `handover`). When the worker dies other than by a clean stop, it starts the next one at
//! once (with a backoff when it keeps dying), passing the same sockets: connections that arrive
//! meanwhile wait in the kernel's backlog and are served by the next worker, so nothing is
//! refused. It is a child subreaper, so instances orphaned by a dead worker become its children
//! (it reaps them; the next worker adopts them). The worker dies with it (`PR_SET_PDEATHSIG`).
//! SIGTERM or SIGINT is passed to the worker, which stops every workload; then it exits. SIGHUP
//! has the worker hand over to a new one (started from the executable's path, so a new binary
//! takes over) without stopping any workload.
//!
//! Owns: the lock while it lives, the API socket file (removed at exit only if it is still the
//! one it bound), the held listen sockets, the worker's lifecycle. Must not touch: workloads,
//! the store (the worker's).
//!
//! It is plain blocking code on one thread (no runtime): `PR_SET_PDEATHSIG` fires when the
//! *thread* that started the worker exits, so that thread must be the process's only one.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::handover::{self, Message};
use super::server::{self, ServeError};

/// A worker that lived this long is healthy again: its death restarts at once.
const STABLE: Duration = Duration::from_secs(30);
/// Deaths in a row (each within `STABLE` of its start) before giving up.
const MAX_FAILURES: u32 = 8;
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sent to the worker (on SIGHUP to the supervisor: `systemctl reload`, a new binary) to hand
/// over: it closes its routers gracefully (in-flight requests finish), records what runs and
/// exits with [`HANDED_OVER`] leaving the instances running; the next worker adopts them.
pub const HAND_OVER_SIGNAL: libc::c_int = libc::SIGUSR2;
/// The exit code of a worker that handed over.
pub const HANDED_OVER: libc::c_int = 75;

/// How supervising ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The worker stopped cleanly (`host stop`, SIGTERM).
    Stopped,
    /// Another host holds the state dir.
    AlreadyRunning(String),
    /// The worker could not be kept running.
    GaveUp(String),
}

/// The wait before the `failures`th restart in a row: none for the first, then doubling.
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let ms = 100u64.saturating_mul(1u64 << (failures - 2).min(16));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}

struct Worker {
    pid: libc::pid_t,
    channel: Option<OwnedFd>,
    started: Instant,
    ready: bool,
}

/// Signals the supervisor takes through a signalfd (blocked for normal delivery).
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a sigset_t we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn signalfd() -> io::Result<OwnedFd> {
    let set = signal_set();
    // SAFETY: blocking signals for this (only) thread; `set` is initialised.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: a new signalfd for an initialised set.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The signals pending on the signalfd.
fn read_signals(fd: &OwnedFd) -> Vec<i32> {
    let mut out = Vec::new();
    loop {
        // SAFETY: an all-zero signalfd_siginfo is valid; read fills at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading into `info`, which is `size` bytes.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                size,
            )
        };
        if n as usize != size {
            return out;
        }
        out.push(info.ssi_signo as i32);
    }
}

/// The state dir's API socket: bound, its mode set, and the file's identity to check at exit.
fn bind_api(
    state_dir: &Path,
) -> Result<(std::os::unix::net::UnixListener, (u64, u64)), ServeError> {
    let sock = server::socket_path(state_dir);
    // We hold the lock: a socket file there is a dead host's.
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock)?;
    super::files::restrict(&sock, state_dir)?;
    let meta = std::fs::metadata(&sock)?;
    Ok((listener, (meta.dev(), meta.ino())))
}

fn spawn_worker(
    exe: &Path,
    state_dir: &Path,
    api: &std::os::unix::net::UnixListener,
    held: &BTreeMap<String, OwnedFd>,
) -> io::Result<Worker> {
    let (mine, theirs) = handover::socketpair()?;
    let listeners: BTreeMap<String, RawFd> = held
        .iter()
        .map(|(c, fd)| (c.clone(), fd.as_raw_fd()))
        .collect();
    let mut keep: Vec<RawFd> = vec![theirs.as_raw_fd(), api.as_raw_fd()];
    keep.extend(listeners.values().copied());
    let mut cmd = Command::new(exe);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(["host", "serve"])
        .envs(handover::env_for(
            theirs.as_raw_fd(),
            api.as_raw_fd(),
            &listeners,
        ))
        .stdin(Stdio::null());
    // SAFETY: `getpid` has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // calls (fcntl, sigprocmask, prctl, getppid) on values captured before the fork; it does not
    // allocate.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &keep {
                let flags = libc::fcntl(*fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(*fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            // The supervisor died between fork and prctl: do not run unsupervised.
            if libc::getppid() != parent {
                return Err(io::Error::other("the supervisor is gone"));
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    // Reaped by waitpid(-1) below; dropping the handle neither waits nor kills.
    drop(child);
    drop(theirs);
    Ok(Worker {
        pid,
        channel: Some(mine),
        started: Instant::now(),
        ready: false,
    })
}

/// Read every pending message of the worker.
fn drain(w: &mut Worker, held: &mut BTreeMap<String, OwnedFd>) {
    loop {
        let Some(ch) = &w.channel else { return };
        match handover::recv(ch.as_fd()) {
            Ok(Some((Message::Hold { component }, Some(fd)))) => {
                tracing::debug!("holding the listen socket of {component}");
                held.insert(component, fd);
            }
            Ok(Some((Message::Hold { component }, None))) => {
                tracing::warn!("worker asked to hold {component} without a socket");
            }
            Ok(Some((Message::Release { component }, _))) => {
                held.remove(&component);
            }
            Ok(Some((Message::Ready, _))) => w.ready = true,
            Ok(None) => {
                w.channel = None;
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!("bad message from the worker: {e}");
            }
            Err(e) => {
                tracing::warn!("worker channel: {e}");
                w.channel = None;
                return;
            }
        }
    }
}

fn describe(status: libc::c_int) -> String {
    let st = std::process::ExitStatus::from_raw(status);
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "exited".into(),
    }
}

/// Supervise the state dir's host until it stops.
pub fn run(state_dir: &Path, exe: &Path) -> Result<Ended, ServeError> {
    let _lock = match server::lock(state_dir) {
        Ok(l) => l,
        Err(ServeError::AlreadyRunning(d)) => return Ok(Ended::AlreadyRunning(d)),
        Err(e) => return Err(e),
    };
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        tracing::warn!(
            "cannot become a child subreaper: {}",
            io::Error::last_os_error()
        );
    }
    let sigs = signalfd()?;
    let (api, ident) = bind_api(state_dir)?;
    let sock: PathBuf = server::socket_path(state_dir);
    tracing::info!(
        pid = std::process::id(),
        "host supervisor holding {}",
        sock.display()
    );
    let mut held: BTreeMap<String, OwnedFd> = BTreeMap::new();
    let mut worker: Option<Worker> = None;
    let mut restart_at = Some(Instant::now());
    let mut failures = 0u32;
    let mut ever_ready = false;
    let mut stopping = false;
    let mut last_pid: Option<libc::pid_t> = None;
    let ended = 'run: loop {
        if worker.is_none() {
            if stopping {
                break Ended::Stopped;
            }
            if restart_at.is_some_and(|at| at <= Instant::now()) {
                restart_at = None;
                match spawn_worker(exe, state_dir, &api, &held) {
                    Ok(w) => {
                        tracing::info!(pid = w.pid, "host worker started");
                        last_pid = Some(w.pid);
                        worker = Some(w);
                    }
                    Err(e) => break Ended::GaveUp(format!("cannot start the host worker: {e}")),
                }
            }
        }
        let mut fds = vec![libc::pollfd {
            fd: sigs.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(ch) = worker.as_ref().and_then(|w| w.channel.as_ref()) {
            fds.push(libc::pollfd {
                fd: ch.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = restart_at
            .map(|at| at.saturating_duration_since(Instant::now()).as_millis() as i32 + 1)
            .unwrap_or(-1);
        // SAFETY: `fds` is a live array of initialised pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Ended::GaveUp(format!("poll: {e}"));
        }
        if let Some(w) = worker.as_mut() {
            drain(w, &mut held);
            if w.ready && !ever_ready {
                ever_ready = true;
            }
        }
        if fds[0].revents == 0 {
            continue;
        }
        let mut reap = false;
        for sig in read_signals(&sigs) {
            match sig {
                libc::SIGCHLD => reap = true,
                libc::SIGHUP if !stopping => {
                    if let Some(w) = &worker {
                        tracing::info!("SIGHUP: handing over to a new worker");
                        // SAFETY: kill(2) has no memory-safety preconditions.
                        unsafe {
                            libc::kill(w.pid, HAND_OVER_SIGNAL);
                        }
                    }
                }
                libc::SIGTERM | libc::SIGINT => {
                    tracing::info!("signal {sig}: stopping the host");
                    stopping = true;
                    if let Some(w) = &worker {
                        // SAFETY: kill(2) has no memory-safety preconditions.
                        unsafe {
                            libc::kill(w.pid, libc::SIGTERM);
                        }
                    }
                }
                _ => {}
            }
        }
        if !reap {
            continue;
        }
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            let Some(mut w) = worker.take_if(|w| w.pid == pid) else {
                continue; // an orphaned instance or one of its children
            };
            drain(&mut w, &mut held);
            ever_ready |= w.ready;
            let handed_over = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == HANDED_OVER;
            if handed_over && !stopping {
                tracing::info!("host worker {pid} handed over; starting the next");
                restart_at = Some(Instant::now());
                continue;
            }
            let clean = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            if clean || stopping {
                tracing::info!("host worker {pid} {}", describe(status));
                stopping = true;
                continue;
            }
            if !ever_ready {
                let why = format!("the host worker {} before serving", describe(status));
                break 'run Ended::GaveUp(why);
            }
            if w.started.elapsed() > STABLE {
                failures = 0;
            }
            failures += 1;
            if failures > MAX_FAILURES {
                let why = format!(
                    "the host worker {} ({failures} times in a row); giving up",
                    describe(status)
                );
                break 'run Ended::GaveUp(why);
            }
            let wait = backoff(failures);
            tracing::warn!(
                "host worker {pid} {}; starting another in {wait:?} with {} listen socket(s)",
                describe(status),
                held.len()
            );
            restart_at = Some(Instant::now() + wait);
        }
    };
    drop(held);
    Ok(finish(state_dir, &sock, ident, last_pid, ended))
}

/// Remove the socket file if it is still the one bound here, and a pid file naming the last
/// worker (a crashed one's); then report how it ended.
fn finish(
    state_dir: &Path,
    sock: &Path,
    ident: (u64, u64),
    last_pid: Option<libc::pid_t>,
    ended: Ended,
) -> Ended {
    super::files::remove_if_same(sock, ident);
    if let Some(pid) = last_pid {
        super::files::remove_pid_file(&state_dir.join("host.pid"), pid as u32);
    }
    match &ended {
        Ended::GaveUp(why) => tracing::error!("host supervisor: {why}"),
        _ => tracing::info!("host supervisor stopped"),
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restart_is_immediate_then_the_wait_doubles_up_to_a_bound() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
