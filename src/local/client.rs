//! The `local` provider: the engine's side of the host API, and starting the host on demand.
//!
//! Owns: connecting to the state dir's host (starting `cutover host supervise` in the background
//! when none runs, as tmux starts its server), retrying a request whose connection failed while
//! the host's worker restarts, and mapping provider calls to requests. Must not touch: instances
//! or routers directly.
//!
//! Every request is idempotent (apply N replicas, set weights, remove, read), so a request whose
//! connection broke is sent again: an engine's run goes on across a host restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::proto::{HostStatus, Request, Response};
use super::server::socket_path;
use crate::provider::{
    Metrics, Provider, ProviderError, RevisionKey, RevisionSpec, RevisionStatus,
};

/// How long a request whose connection failed is retried (a worker restarts within a second).
pub const RETRY_FOR: Duration = Duration::from_secs(5);
/// How long a ping waits for its answer.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Why one attempt failed: the connection broke (worth another try), or not.
enum Attempt {
    Connection(ProviderError),
    Answer(ProviderError),
}

/// A connection point to a host.
#[derive(Debug, Clone)]
pub struct HostClient {
    socket: PathBuf,
}

fn unavailable(msg: impl Into<String>) -> ProviderError {
    ProviderError::Unavailable("local".into(), msg.into())
}

impl HostClient {
    pub fn new(state_dir: &Path) -> HostClient {
        HostClient {
            socket: socket_path(state_dir),
        }
    }

    /// One request, one response; a request whose connection failed (the host's worker died
    /// with it, or is being restarted) is sent again for up to [`RETRY_FOR`].
    pub async fn call(&self, req: &Request) -> Result<Response, ProviderError> {
        let start = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(20);
        loop {
            match self.call_once(req).await {
                Ok(r) => return Ok(r),
                Err(Attempt::Answer(e)) => return Err(e),
                Err(Attempt::Connection(e)) => {
                    if start.elapsed() + wait > RETRY_FOR {
                        return Err(e);
                    }
                    tracing::debug!("host request failed ({e}); again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    async fn call_once(&self, req: &Request) -> Result<Response, Attempt> {
        let conn = |e: String| Attempt::Connection(unavailable(e));
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            let msg = format!("cannot reach the host at {}: {e}", self.socket.display());
            // No socket, or nobody listening on it: no host runs (a supervised host keeps its
            // socket listening while its worker restarts). A full backlog is worth a retry.
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                conn(msg)
            } else {
                Attempt::Answer(unavailable(msg))
            }
        })?;
        let (read, mut write) = stream.into_split();
        let mut line =
            serde_json::to_string(req).map_err(|e| Attempt::Answer(unavailable(e.to_string())))?;
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| conn(format!("host connection: {e}")))?;
        let mut reader = BufReader::new(read);
        let mut answer = String::new();
        let n = reader
            .read_line(&mut answer)
            .await
            .map_err(|e| conn(format!("host connection: {e}")))?;
        if n == 0 {
            return Err(conn("the host closed the connection".into()));
        }
        serde_json::from_str(answer.trim_end())
            .map_err(|e| Attempt::Answer(unavailable(format!("bad host answer: {e}"))))
    }

    /// Whether a host answers now (one attempt, bounded: no retry).
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(PING_TIMEOUT, self.call_once(&Request::Ping)).await,
            Ok(Ok(Response::Pong { .. }))
        )
    }

    pub async fn status(&self) -> Result<HostStatus, ProviderError> {
        match self.call(&Request::Status).await? {
            Response::Status { status } => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    pub async fn stop(&self) -> Result<(), ProviderError> {
        match self.call(&Request::Stop).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(r: Response) -> ProviderError {
    match r {
        Response::Error { message } => ProviderError::Failed(message),
        other => ProviderError::Failed(format!("unexpected host answer: {other:?}")),
    }
}

/// Connect to the state dir's host, starting one in the background if none answers.
pub async fn ensure_host(state_dir: &Path, exe: &Path) -> Result<HostClient, ProviderError> {
    let client = HostClient::new(state_dir);
    if client.ping().await {
        return Ok(client);
    }
    std::fs::create_dir_all(state_dir).map_err(|e| unavailable(format!("state dir: {e}")))?;
    let log = super::files::open_log(&state_dir.join("host.log"), state_dir)
        .map_err(|e| unavailable(format!("host log: {e}")))?;
    let err = log.try_clone().map_err(|e| unavailable(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(["host", "supervise"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err));
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in the starting terminal does not reach it.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| {
        unavailable(format!(
            "cannot start `{} host supervise`: {e}",
            exe.display()
        ))
    })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut exited = None;
    while tokio::time::Instant::now() < deadline {
        if client.ping().await {
            if exited.is_none() {
                // The host outlives us; reap it if it exits while we run.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            return Ok(client);
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                // Exit 0: another host holds the state dir (we lost a race with another
                // starter, or its worker is restarting): wait for it to answer.
                if !status.success() {
                    return Err(unavailable(format!(
                        "the host exited at start ({status}); see {}",
                        state_dir.join("host.log").display()
                    )));
                }
                exited = Some(status);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(unavailable(format!(
        "the host did not answer within 10s; see {}",
        state_dir.join("host.log").display()
    )))
}

/// The `local` provider.
pub struct LocalProvider {
    client: HostClient,
}

impl LocalProvider {
    pub fn new(client: HostClient) -> LocalProvider {
        LocalProvider { client }
    }

    async fn ok(&self, req: Request) -> Result<(), ProviderError> {
        match self.client.call(&req).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> crate::spec::ProviderKind {
        crate::spec::ProviderKind::Local
    }

    /// The command's program must still exist (on PATH, or at its path; `{self}` is this
    /// executable, as the host started from it expands it).
    fn can_restart(&self, component: &crate::spec::Component) -> Result<(), ProviderError> {
        let Some(prog) = component.run.as_ref().and_then(|run| run.command.first()) else {
            return Ok(());
        };
        let exe = std::env::current_exe().unwrap_or_default();
        let prog = prog.replace("{self}", &exe.display().to_string());
        super::process::resolve(&prog)
            .map(|_| ())
            .map_err(|e| ProviderError::Failed(e.to_string()))
    }

    async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), ProviderError> {
        self.ok(Request::ApplyRevision {
            rev: Box::new(rev.clone()),
            replicas,
        })
        .await
    }

    async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<crate::provider::Split, ProviderError> {
        // The router splits requests exactly as asked.
        self.ok(Request::SetWeights {
            component: component.to_string(),
            weights: weights.to_vec(),
        })
        .await
        .map(|()| crate::provider::Split::exact())
    }

    async fn revision_status(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<RevisionStatus, ProviderError> {
        match self
            .client
            .call(&Request::RevisionStatus {
                component: component.to_string(),
                rev: rev.clone(),
            })
            .await?
        {
            Response::RevisionStatus { status } => Ok(status),
            other => Err(unexpected(other)),
        }
    }

    async fn metrics(
        &self,
        component: &str,
        rev: &RevisionKey,
        window: Duration,
    ) -> Result<Metrics, ProviderError> {
        match self
            .client
            .call(&Request::Metrics {
                component: component.to_string(),
                rev: rev.clone(),
                window_ms: window.as_millis() as u64,
            })
            .await?
        {
            Response::Metrics { metrics } => Ok(metrics),
            other => Err(unexpected(other)),
        }
    }

    async fn remove_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError> {
        self.ok(Request::RemoveRevision {
            component: component.to_string(),
            rev: rev.clone(),
        })
        .await
    }
}
