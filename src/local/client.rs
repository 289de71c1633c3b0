//! The `local` provider: the engine's side of the host API, and starting the host on demand.
//!
//! Owns: connecting to the state dir's host (starting `cutover host serve` in the background when
//! none runs, as tmux starts its server) and mapping provider calls to requests. Must not touch:
//! instances or routers directly.

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

    /// One request, one response.
    pub async fn call(&self, req: &Request) -> Result<Response, ProviderError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            unavailable(format!(
                "cannot reach the host at {}: {e}",
                self.socket.display()
            ))
        })?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(req).map_err(|e| unavailable(e.to_string()))?;
        line.push('\n');
        write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| unavailable(format!("host connection: {e}")))?;
        let mut reader = BufReader::new(read);
        let mut answer = String::new();
        let n = reader
            .read_line(&mut answer)
            .await
            .map_err(|e| unavailable(format!("host connection: {e}")))?;
        if n == 0 {
            return Err(unavailable("the host closed the connection"));
        }
        serde_json::from_str(answer.trim_end())
            .map_err(|e| unavailable(format!("bad host answer: {e}")))
    }

    pub async fn ping(&self) -> bool {
        matches!(self.call(&Request::Ping).await, Ok(Response::Pong { .. }))
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
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("host.log"))
        .map_err(|e| unavailable(format!("host log: {e}")))?;
    let err = log.try_clone().map_err(|e| unavailable(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(["host", "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err));
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in the starting terminal does not reach it.
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| unavailable(format!("cannot start `{} host serve`: {e}", exe.display())))?;
    for _ in 0..200 {
        if client.ping().await {
            // The host outlives us; reap it if it exits while we run.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(client);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Lost a race with another starter? Then its host answers.
            if client.ping().await {
                return Ok(client);
            }
            return Err(unavailable(format!(
                "the host exited at start ({status}); see {}",
                state_dir.join("host.log").display()
            )));
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
    ) -> Result<(), ProviderError> {
        self.ok(Request::SetWeights {
            component: component.to_string(),
            weights: weights.to_vec(),
        })
        .await
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
