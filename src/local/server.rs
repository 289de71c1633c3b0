//! The `cutover host` process: one per state dir, serving the host API on a Unix socket.
//!
//! Owns: the single-instance lock, the owner-only socket, reading requests and writing responses,
//! and shutting everything down on `host stop`, SIGTERM or SIGINT. Must not touch: what a request
//! does (that is `host`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

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
struct HostLock {
    _file: std::fs::File,
}

fn lock(state_dir: &Path) -> Result<HostLock, ServeError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir.join("host.lock"))?;
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

/// Run the host until told to stop.
pub async fn serve(state_dir: &Path, exe: PathBuf) -> Result<(), ServeError> {
    let store = Store::open(state_dir)?;
    super::table::create(&store)?;
    let _lock = lock(state_dir)?;
    let sock = socket_path(state_dir);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    // Shared with the dir's group when the dir is (see `store::modes`).
    let shared = crate::store::modes::check_dir(state_dir).unwrap_or(false);
    let mode = crate::store::modes::file_mode(shared);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(mode))?;
    std::fs::write(state_dir.join("host.pid"), std::process::id().to_string())?;
    let host = Arc::new(Host::new(state_dir, store, exe));
    host.recover().await;
    tracing::info!(
        pid = std::process::id(),
        "host serving on {}",
        sock.display()
    );
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
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
        }
    }
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(state_dir.join("host.pid"));
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
