//! `cutover demo`: the bundled demo, headless for now (the console arrives with issue 5).
//!
//! Owns: running the demo specs in a private, temporary state dir on the simulated provider and
//! virtual clock: a first version, a healthy canary that stops at an approval gate (approved by
//! the demo after showing it), and a bad version that rolls back by itself. Must not touch: engine internals.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::broadcast::error::RecvError;

use super::apply::runtime;
use super::print::human_line;
use super::OK;
use cutover::engine::{Command, EventKind, RunOptions};
use cutover::provider::simulated::{Fault, Simulated};
use cutover::spec::{self, Spec};
use cutover::store::Store;

const SPECS: [(&str, &str); 3] = [
    ("v1", include_str!("../../specs/demo/v1.yaml")),
    ("v2", include_str!("../../specs/demo/v2.yaml")),
    ("v3", include_str!("../../specs/demo/v3.yaml")),
];

pub fn demo() -> Result<u8> {
    let dir = tempfile_dir()?;
    let rt = runtime(true)?;
    let res = rt.block_on(run(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let base = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    Ok(base)
}

fn load(text: &str) -> Result<Spec> {
    spec::load_str(text).map_err(|d| anyhow::anyhow!("bundled demo spec is invalid: {d:?}"))
}

async fn run(dir: &std::path::Path) -> Result<u8> {
    out!(
        "cutover demo: simulated provider on a virtual clock, state in {}",
        dir.display()
    );
    out!("(the live console for this demo arrives with the operations console)\n");
    let store = Store::open(dir)?;
    // 1.2.0 starts failing 30s into its canary.
    let sim = Arc::new(Simulated::new(vec![Fault::parse(
        "1.2.0:error_rate=0.31@30s",
    )
    .map_err(anyhow::Error::msg)?]));
    let engine = super::engine(&store, sim, true, false);
    for (name, text) in SPECS {
        let spec = load(text)?;
        out!("--- {name}: {} {}", spec.id, spec.version);
        let mut events = engine.subscribe();
        let handle = engine
            .start(
                spec,
                RunOptions {
                    dry_run: true,
                    auto_approve: false,
                    initiator: cutover::identity::current_user(),
                },
            )
            .await?;
        let steps = handle.plan.steps.len();
        loop {
            match events.recv().await {
                Ok(ev) => {
                    if let Some(line) = human_line(&ev, steps) {
                        out!("{line}");
                    }
                    if let EventKind::GateWaiting { gate, .. } = &ev.kind {
                        tokio::time::sleep(Duration::from_secs(90)).await;
                        let c = Command::Approve {
                            gate: Some(gate.clone()),
                            comment: Some("looks good (demo)".into()),
                        };
                        let _ = engine.command(handle.run_id, c, "demo-approver").await;
                    }
                    if matches!(ev.kind, EventKind::Finished { .. }) {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
        let _ = handle.join.await;
        out!();
    }
    out!("history:");
    for r in store.runs(None, 10)?.iter().rev() {
        out!(
            "  run #{} {} {}: {}",
            r.run_id,
            r.version,
            r.outcome.clone().unwrap_or_default(),
            r.reason.clone().unwrap_or_default()
        );
    }
    Ok(OK)
}
