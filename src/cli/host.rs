//! `cutover host [status|stop]`, and the hidden `host supervise` (the host: a supervisor) and
//! `host serve` (its worker, or a host alone).
//!
//! Owns: presenting the host's state and stopping it. Must not touch: the host's internals.

use std::path::Path;

use anyhow::Result;

use super::{FAILED, OK};
use cutover::local::client::HostClient;
use cutover::local::proto::HostStatus;

fn log_to_stderr() {
    super::logs::to_stderr(super::logs::LogFormat::from_env());
}

/// The host: a supervisor on this (only) thread, which runs the worker.
pub fn supervise(dir: &Path) -> Result<u8> {
    std::fs::create_dir_all(dir)?;
    log_to_stderr();
    let exe = std::env::current_exe()?;
    use cutover::local::supervisor::{run, Ended};
    match run(dir, &exe)? {
        Ended::Stopped => Ok(OK),
        Ended::AlreadyRunning(d) => {
            eprintln!("a host already runs for {d}");
            Ok(OK)
        }
        Ended::GaveUp(why) => {
            eprintln!("host: {why}");
            Ok(FAILED)
        }
    }
}

/// The host's worker; with `metrics`, it also serves the Prometheus exporter there
/// (`exporter.listen` in cutover.yaml).
pub fn serve(dir: &Path, metrics: Option<std::net::SocketAddr>) -> Result<u8> {
    std::fs::create_dir_all(dir)?;
    // Before any thread starts: this reads and clears the handover variables.
    let inherited = cutover::local::handover::Inherited::take_from_env();
    log_to_stderr();
    let exe = std::env::current_exe()?;
    // One worker per core the host may run on (its CPU affinity counts: a host pinned to one
    // core runs one worker, not two taking turns), at most two.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let served = rt.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let exporter = match metrics {
            Some(addr) => exporter(dir, addr, stopped).await,
            None => None,
        };
        let r = cutover::local::server::serve(dir, exe, inherited).await;
        let _ = stop.send(true);
        if let Some(e) = exporter {
            let _ = e.await;
        }
        r
    });
    match served {
        Ok(()) => Ok(OK),
        Err(cutover::local::server::ServeError::AlreadyRunning(d)) => {
            eprintln!("a host already runs for {d}");
            Ok(OK)
        }
        Err(e) => Err(e.into()),
    }
}

/// The exporter beside the host (it asks the host for its status over the socket, as a separate
/// `cutover exporter` would); a port it cannot bind is logged, and the host runs without it.
async fn exporter(
    dir: &Path,
    addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    use cutover::exporter::{bind, serve, Exporter};
    let store = match cutover::store::Store::open(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("exporter: cannot open the store: {e}");
            return None;
        }
    };
    match bind(addr).await {
        Ok(listener) => {
            tracing::info!("exporter: Prometheus metrics at http://{addr}/metrics");
            let exporter = Exporter::new(store, Some(HostClient::new(dir)));
            Some(tokio::spawn(serve(
                std::sync::Arc::new(exporter),
                listener,
                stop,
            )))
        }
        Err(e) => {
            tracing::warn!("exporter: {e}; the host runs without it");
            None
        }
    }
}

fn render(s: &HostStatus) {
    out!(
        "host pid {} for {} (since {}){}",
        s.pid,
        s.state_dir,
        s.started_at,
        s.supervisor_pid
            .map(|p| format!(", supervisor pid {p}"))
            .unwrap_or_default()
    );
    if s.components.is_empty() {
        out!("  no workloads");
    }
    for c in &s.components {
        out!("  {} on {}", c.component, c.listen);
        if c.revisions.is_empty() {
            out!("    no revision: the router answers 503");
        }
        for r in &c.revisions {
            out!(
                "    {} ({}) weight {}%  requests {}  5xx {}  transport errors {}",
                r.key,
                r.version,
                r.weight,
                r.requests,
                r.server_errors,
                r.transport_errors
            );
            for i in &r.instances {
                let ports: Vec<String> = i.ports.iter().map(|(n, p)| format!("{n}={p}")).collect();
                out!(
                    "      {} pid {} ports {} {} {} restarts {}{} probe {} {}{}",
                    i.id,
                    i.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    ports.join(","),
                    if i.running { "running" } else { "down" },
                    if i.ready { "ready" } else { "not-ready" },
                    i.restarts,
                    i.last_exit
                        .as_ref()
                        .filter(|_| i.restarts > 0 || !i.running)
                        .map(|e| format!(" (last: {e})"))
                        .unwrap_or_default(),
                    i.probe.kind,
                    i.probe
                        .last_latency_ms
                        .map(|l| format!("{l}ms"))
                        .unwrap_or_default(),
                    i.probe
                        .last_error
                        .as_ref()
                        .map(|e| format!(" ({} failures: {e})", i.probe.consecutive_failures))
                        .unwrap_or_default()
                );
            }
        }
    }
}

pub fn status(dir: &Path, json: bool) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = HostClient::new(dir);
    match rt.block_on(client.status()) {
        Ok(s) => {
            if json {
                out!("{}", serde_json::to_string(&s)?);
            } else {
                render(&s);
            }
            Ok(OK)
        }
        Err(_) => {
            if json {
                out!(
                    "{}",
                    serde_json::json!({"running": false, "state_dir": dir.display().to_string()})
                );
            } else {
                out!("no host runs for {}", dir.display());
            }
            Ok(OK)
        }
    }
}

pub fn stop(dir: &Path) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = HostClient::new(dir);
    if !rt.block_on(client.ping()) {
        out!("no host runs for {}", dir.display());
        return Ok(OK);
    }
    match rt.block_on(client.stop()) {
        Ok(()) => {
            // Wait until the socket file is gone: the host (its supervisor, or a host running
            // alone) removes it as it exits.
            let sock = cutover::local::server::socket_path(dir);
            for _ in 0..400 {
                if !sock.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            out!("host stopped; every workload it ran is stopped");
            Ok(OK)
        }
        Err(e) => {
            eprintln!("host stop failed: {e}");
            Ok(FAILED)
        }
    }
}
