//! `cutover exporter --listen ADDR`: the Prometheus exporter on its own, for a store driven by
//! consoles, `apply` or Kubernetes runs with no local host.
//!
//! Owns: flags, signals and the exit code. Must not touch: the metrics (see `cutover::exporter`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::{open_store, FAILED, OK};
use cutover::exporter::{self, Exporter};
use cutover::local::client::HostClient;

pub fn run(dir: &Path, listen: SocketAddr) -> Result<u8> {
    let store = open_store(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = match exporter::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("exporter: {e}");
                return Ok(FAILED);
            }
        };
        let addr = listener.local_addr()?;
        // The address on stdout (port 0 picks one), for scripts and tests to read.
        println!("serving Prometheus metrics at http://{addr}/metrics");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let server = tokio::spawn(exporter::serve(
            Arc::new(Exporter::new(store, Some(HostClient::new(dir)))),
            listener,
            stop_rx,
        ));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
        let _ = server.await;
        Ok(OK)
    })
}
