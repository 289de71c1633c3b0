//! Health probes for local instances, with kubelet semantics.
//!
//! Owns: running one probe loop per instance (http GET 200-399, tcp connect, exec exit 0, gRPC
//! health SERVING), counting consecutive results against the thresholds, and setting the
//! instance's readiness flag that the router reads. Must not touch: processes or routing tables.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::router::Backend;

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

/// Run one check now.
pub async fn check_once(
    check: &Check,
    timeout: Duration,
    http: &Client<HttpConnector, Empty<bytes::Bytes>>,
) -> Result<(), String> {
    let fut = async {
        match check {
            Check::Http { port, path } => {
                let uri: hyper::Uri = format!("http://127.0.0.1:{port}{path}")
                    .parse()
                    .map_err(|e| format!("bad probe path {path}: {e}"))?;
                let resp = http
                    .get(uri)
                    .await
                    .map_err(|e| format!("GET {path}: {e}"))?;
                let code = resp.status().as_u16();
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
    let http: Client<HttpConnector, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build_http();
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
        let result = check_once(&spec.check, spec.timeout, &http).await;
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

    fn client() -> Client<HttpConnector, Empty<bytes::Bytes>> {
        Client::builder(TokioExecutor::new()).build_http()
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
