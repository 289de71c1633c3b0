//! Health probes for local instances, with kubelet semantics.
//!
//! Owns: running one probe loop per instance (http GET 200-399, tcp connect, exec exit 0, gRPC
//! health SERVING), counting consecutive results against the thresholds, and setting the
//! instance's readiness flag that the router reads. Must not touch: processes or routing tables.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::router::Backend;
use super::upstream::{self, Idle};

/// The most of an HTTP probe's response body read (kubelet reads 10 KB); past it the connection
/// is closed instead of kept for the next check.
const BODY_MAX: usize = 64 * 1024;
/// How long an HTTP probe's response body is read after its status.
const DRAIN_FOR: Duration = Duration::from_millis(100);

/// What to check, resolved to this instance's ports.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Exec { argv: Vec<String> },
    Grpc { port: u16, service: String },
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http { .. } => "http",
            Check::Tcp { .. } => "tcp",
            Check::Exec { .. } => "exec",
            Check::Grpc { .. } => "grpc",
        }
    }
}

/// Timing and thresholds (kubelet's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub check: Check,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// What the engine and the console see of an instance's probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub kind: String,
    pub ready: bool,
    /// Consecutive failures have reached the failure threshold.
    pub failing: bool,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub last_latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub checks: u64,
    /// Of the checks, how many failed.
    #[serde(default)]
    pub failures: u64,
}

/// Run one check now. An HTTP check keeps its connection in `conn` for the next one (a check
/// costs a write and a read, not a connect and a close).
pub async fn check_once(check: &Check, timeout: Duration, conn: &Arc<Idle>) -> Result<(), String> {
    let fut = async {
        match check {
            Check::Http { port, path } => {
                upstream::probe_target(path).map_err(|e| format!("bad probe path {path}: {e}"))?;
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], *port));
                let resp = upstream::get(addr, path, conn)
                    .await
                    .map_err(|e| format!("GET {path}: {e}"))?;
                let code = resp.status().as_u16();
                // The status decides. The body is read to its end so that the connection can be
                // used again, up to a size and for a moment; past those it is closed instead.
                let mut body = resp.into_body();
                let drain = async {
                    let mut read = 0;
                    while read <= BODY_MAX {
                        match body.frame().await {
                            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                            _ => break,
                        }
                    }
                };
                let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
                if (200..400).contains(&code) {
                    Ok(())
                } else {
                    Err(format!("GET {path}: HTTP {code}"))
                }
            }
            Check::Tcp { port } => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .map(|_| ())
                .map_err(|e| format!("connect 127.0.0.1:{port}: {e}")),
            Check::Exec { argv } => {
                let Some((prog, args)) = argv.split_first() else {
                    return Err("empty exec command".to_string());
                };
                let mut cmd = tokio::process::Command::new(prog);
                cmd.args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                let status = cmd
                    .status()
                    .await
                    .map_err(|e| format!("exec {prog}: {e}"))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("exec {prog}: {status}"))
                }
            }
            Check::Grpc { port, service } => {
                crate::net::grpc_health(&format!("127.0.0.1:{port}"), service, timeout).await
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{} probe timed out after {timeout:?}",
            check.kind()
        )),
    }
}

/// Probe an instance until told to stop, keeping `status` and the backend's readiness current.
pub async fn run(
    spec: ProbeSpec,
    backend: Arc<Backend>,
    status: Arc<Mutex<ProbeStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let conn = Arc::new(Idle::default());
    {
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        s.kind = spec.check.kind().to_string();
    }
    tokio::select! {
        _ = tokio::time::sleep(spec.initial_delay) => {}
        _ = stop.changed() => return,
    }
    let mut ticker = tokio::time::interval(spec.period.max(Duration::from_millis(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let t0 = Instant::now();
        let result = check_once(&spec.check, spec.timeout, &conn).await;
        let latency = t0.elapsed().as_secs_f64() * 1000.0;
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        s.checks += 1;
        s.last_latency_ms = Some((latency * 100.0).round() / 100.0);
        match result {
            Ok(()) => {
                s.consecutive_successes += 1;
                s.consecutive_failures = 0;
                s.last_error = None;
                if s.consecutive_successes >= spec.success_threshold {
                    s.ready = true;
                    s.failing = false;
                }
            }
            Err(e) => {
                s.failures += 1;
                s.consecutive_failures += 1;
                s.consecutive_successes = 0;
                s.last_error = Some(e);
                if s.consecutive_failures >= spec.failure_threshold {
                    s.ready = false;
                    s.failing = true;
                }
            }
        }
        backend.ready.store(s.ready, Ordering::Relaxed);
    }
}

/// Mark an instance not ready right away (its process exited).
pub fn reset(backend: &Backend, status: &Mutex<ProbeStatus>) {
    backend.ready.store(false, Ordering::Relaxed);
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    s.ready = false;
    s.consecutive_successes = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<Idle> {
        Arc::new(Idle::default())
    }

    #[tokio::test]
    async fn tcp_and_exec_checks_pass_and_fail_for_real() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Duration::from_secs(1);
        assert!(check_once(&Check::Tcp { port }, t, &client()).await.is_ok());
        drop(l);
        assert!(check_once(&Check::Tcp { port }, t, &client())
            .await
            .is_err());
        assert!(check_once(
            &Check::Exec {
                argv: vec!["true".into()]
            },
            t,
            &client()
        )
        .await
        .is_ok());
        let e = check_once(
            &Check::Exec {
                argv: vec!["false".into()],
            },
            t,
            &client(),
        )
        .await
        .unwrap_err();
        assert!(e.contains("exit status: 1"), "{e}");
        let e = check_once(
            &Check::Exec {
                argv: vec!["sleep".into(), "5".into()],
            },
            Duration::from_millis(200),
            &client(),
        )
        .await
        .unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        let e = check_once(
            &Check::Exec {
                argv: vec!["/no/such/probe".into()],
            },
            t,
            &client(),
        )
        .await
        .unwrap_err();
        assert!(e.contains("/no/such/probe"), "{e}");
    }

    /// A server answering `/CODE` with that status and a body of `?N` bytes, keeping
    /// connections open; counts the connections it accepted.
    async fn statuses() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match s.read(&mut chunk).await {
                                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                                _ => return,
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        buf.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("/").to_string();
                        let (code, len) =
                            target[1..].split_once('?').unwrap_or((&target[1..], "0"));
                        let len: usize = len.parse().unwrap();
                        let out = format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: {len}\r\n\r\n{}",
                            "b".repeat(len)
                        );
                        if s.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn http_checks_judge_by_status_and_keep_one_connection() {
        let (port, accepted) = statuses().await;
        let t = Duration::from_secs(1);
        let conn = client();
        let http = |path: &str| Check::Http {
            port,
            path: path.into(),
        };
        for _ in 0..3 {
            assert!(check_once(&http("/200?10"), t, &conn).await.is_ok());
            assert!(check_once(&http("/302"), t, &conn).await.is_ok());
            let e = check_once(&http("/500?3"), t, &conn).await.unwrap_err();
            assert!(e.contains("HTTP 500"), "{e}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // A body past the limit is not read to its end: the connection is not used again.
        assert!(
            check_once(&http(&format!("/200?{}", BODY_MAX * 2)), t, &conn)
                .await
                .is_ok()
        );
        assert!(check_once(&http("/204"), t, &conn).await.is_ok());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let e = check_once(&http("/a b"), t, &conn).await.unwrap_err();
        assert!(e.contains("bad probe path"), "{e}");
        for bad in ["/x\r\nx-injected: 1", "/x#\r\nx-injected: 1", "/x#top"] {
            let e = check_once(&http(bad), t, &conn).await.unwrap_err();
            assert!(e.contains("bad probe path"), "{bad:?}: {e}");
        }
    }

    #[tokio::test]
    async fn thresholds_flip_readiness() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let backend = Arc::new(Backend::new(
            "i".into(),
            format!("127.0.0.1:{port}").parse().unwrap(),
        ));
        let status = Arc::new(Mutex::new(ProbeStatus::default()));
        let (tx, rx) = watch::channel(false);
        let spec = ProbeSpec {
            check: Check::Tcp { port },
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
            success_threshold: 2,
            failure_threshold: 2,
        };
        let task = tokio::spawn(run(spec, backend.clone(), status.clone(), rx));
        let mut ok = false;
        for _ in 0..100 {
            if backend.ready.load(Ordering::Relaxed) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ok, "became ready");
        drop(l);
        let mut failed = false;
        for _ in 0..100 {
            if status.lock().unwrap().failing {
                failed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(failed);
        assert!(!backend.ready.load(Ordering::Relaxed));
        assert!(status.lock().unwrap().consecutive_failures >= 2);
        let _ = tx.send(true);
        let _ = task.await;
    }
}
