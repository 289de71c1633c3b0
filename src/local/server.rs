//! The `cutover host` process: one per state dir, serving the host API on a Unix socket.
//!
//! Owns: the single-instance lock and the API socket when it runs alone (under a supervisor,
//! both are the supervisor's: it inherits the socket), `host.pid`, reading requests and writing
//! responses, and shutting everything down on `host stop`, SIGTERM or SIGINT. Must not touch:
//! what a request does (that is `host`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use super::handover::{Inherited, Supervisor};
use super::host::Host;
use super::proto::{Request, Response};
use crate::store::Store;

/// Longest request line accepted.
const MAX_LINE: usize = 4 * 1024 * 1024;

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("host.sock")
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("a host already runs for {0}")]
    AlreadyRunning(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// An exclusive lock on the state dir's host (released when the process exits).
pub struct HostLock {
    _file: std::fs::File,
}

pub fn lock(state_dir: &Path) -> Result<HostLock, ServeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(super::files::mode_for(state_dir))
        .open(state_dir.join("host.lock"))?;
    // The umask may have taken the group's bits (another operator's host takes this lock).
    let _ = super::files::restrict(&state_dir.join("host.lock"), state_dir);
    // An advisory exclusive lock (flock on Linux) held by the open file: the kernel drops
    // it when the process exits, however it exits.
    match file.try_lock() {
        Ok(()) => Ok(HostLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(ServeError::AlreadyRunning(state_dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(ServeError::Io(e)),
    }
}

/// Run the host until told to stop: alone (binding its socket), or as a supervisor's worker
/// (on the sockets in `inherited`).
pub async fn serve(state_dir: &Path, exe: PathBuf, inherited: Inherited) -> Result<(), ServeError> {
    let store = Store::open(state_dir)?;
    super::table::create(&store)?;
    let sock = socket_path(state_dir);
    let supervisor = inherited.channel.map(Supervisor::new);
    // Alone: our own lock and socket (whose identity we check before removing it at exit).
    let mut own_socket = None;
    let mut _lock = None;
    let listener = match (inherited.api, &supervisor) {
        (Some(fd), Some(_)) => {
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true)?;
            UnixListener::from_std(l)?
        }
        _ => {
            _lock = Some(lock(state_dir)?);
            let _ = std::fs::remove_file(&sock);
            let listener = UnixListener::bind(&sock)?;
            super::files::restrict(&sock, state_dir)?;
            own_socket = Some(super::files::identity(&sock)?);
            listener
        }
    };
    let pid_file = state_dir.join("host.pid");
    super::files::write_pid_file(&pid_file, state_dir)?;
    let host = Arc::new(Host::new(
        state_dir,
        store,
        exe,
        supervisor,
        inherited.listeners,
    ));
    host.recover().await;
    host.start_recorder();
    tracing::info!(
        pid = std::process::id(),
        supervisor = ?host.supervisor_pid(),
        "host serving on {}",
        sock.display()
    );
    host.ready();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut hand_over = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(
        super::supervisor::HAND_OVER_SIGNAL,
    ))?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let host = host.clone();
                    let stop_tx = stop_tx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, host, stop_tx).await {
                            tracing::debug!("host connection: {e}");
                        }
                    });
                }
                Err(e) => tracing::warn!("host accept: {e}"),
            },
            _ = stop_rx.changed() => break,
            _ = term.recv() => { host.stop_all().await; break; }
            _ = int.recv() => { host.stop_all().await; break; }
            // Detached from any terminal: a hangup is not a reason to stop.
            _ = hup.recv() => {}
            // From the supervisor: leave the workloads to the next worker.
            _ = hand_over.recv(), if host.supervisor_pid().is_some() => {
                host.hand_over().await;
                super::files::remove_pid_file(&pid_file, std::process::id());
                tracing::info!("handed over to the next worker");
                // Exit without running destructors: dropping the instances' process handles
                // would kill them.
                std::process::exit(super::supervisor::HANDED_OVER);
            }
        }
    }
    if let Some(ident) = own_socket {
        super::files::remove_if_same(&sock, ident);
    }
    super::files::remove_pid_file(&pid_file, std::process::id());
    tracing::info!("host stopped");
    Ok(())
}

async fn connection(
    stream: UnixStream,
    host: Arc<Host>,
    stop: watch::Sender<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = String::new();
    loop {
        line.clear();
        let n = lines.read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let (resp, stopping) = match super::proto::decode_request(&line) {
            Ok(Request::Stop) => (host.handle(Request::Stop).await, true),
            Ok(req) => (host.handle(req).await, false),
            Err(e) => (
                Response::Error {
                    message: format!("bad request: {e}"),
                },
                false,
            ),
        };
        let out = super::proto::encode_response(&resp);
        write.write_all(out.as_bytes()).await?;
        write.flush().await?;
        if stopping {
            let _ = stop.send(true);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_lock_per_state_dir_released_with_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock(dir.path()).expect("first lock");
        // A second open file description (as a second host process would have) is refused.
        match lock(dir.path()) {
            Err(ServeError::AlreadyRunning(d)) => assert_eq!(d, dir.path().display().to_string()),
            Err(e) => panic!("expected AlreadyRunning, got {e}"),
            Ok(_) => panic!("a second lock on the same state dir was granted"),
        }
        drop(first);
        let again = lock(dir.path()).expect("the lock is free once its holder is gone");
        drop(again);
        // Another state dir has its own lock.
        let other = tempfile::tempdir().expect("tempdir");
        let _a = lock(dir.path()).expect("lock a");
        let _b = lock(other.path()).expect("lock b");
    }
}
