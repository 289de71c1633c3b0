//! `cutover demo-service` and `cutover load`: the sample service and the load generator.
//!
//! Owns: flags to options, signals to shutdown, results to exit codes. Must not touch: their internals.

use anyhow::Result;

use super::{FAILED, INVALID, OK};
use cutover::demo_service::{self, DemoError, DemoOptions};
use cutover::load::{self, LoadOptions};

pub fn demo_service(opts: DemoOptions) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        match demo_service::serve(opts, shutdown).await {
            Ok(()) => Ok(OK),
            Err(DemoError::Crash) => {
                eprintln!("demo-service: crashing on purpose (--crash-after-s)");
                Ok(FAILED)
            }
            Err(e @ DemoError::InvalidOption(_)) => {
                eprintln!("demo-service: {e}");
                Ok(INVALID)
            }
            Err(e) => {
                eprintln!("demo-service: {e}");
                Ok(FAILED)
            }
        }
    })
}

pub fn load(opts: LoadOptions, json: bool) -> Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match rt.block_on(load::run(opts)) {
        Ok(report) => {
            if json {
                let mut v = serde_json::to_value(&report)?;
                v["kind"] = serde_json::json!("load_report");
                v["ts"] = serde_json::json!(cutover::store::now_ts());
                out!("{}", serde_json::to_string(&v)?);
            } else {
                out!("{}", report.render());
            }
            Ok(OK)
        }
        Err(e) => {
            eprintln!("load: {e}");
            Ok(INVALID)
        }
    }
}
