//! Commands that act on a deployment from any terminal: approve, reject, pause, resume, rollback.
//!
//! Owns: delivering commands through the store to the process that owns a run, and rolling back
//! finished deployments in this process. Must not touch: engine internals.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::apply::runtime;
use super::{open_store, FAILED, INVALID, OK};
use cutover::engine::{remote, Command, EngineError};
use cutover::local::client::{ensure_host, LocalProvider};
use cutover::provider::simulated::Simulated;
use cutover::provider::{Provider, RevisionKey};
use cutover::spec::Spec;
use cutover::store::{pid_alive, RunRow, Store};

fn owner_alive(r: &RunRow) -> bool {
    !r.is_finished() && r.owner_pid.is_some_and(pid_alive)
}

/// Write a command for the owning engine and wait for its answer.
fn deliver(
    store: &Store,
    r: &RunRow,
    command: &Command,
) -> Result<std::result::Result<String, String>> {
    let actor = cutover::identity::current_user();
    Ok(remote::send(
        store,
        r.run_id,
        command,
        &actor,
        Duration::from_secs(20),
    )?)
}

fn find(store: &Store, id: &str, dir: &Path) -> Result<Option<RunRow>> {
    let r = store.find_run(id)?;
    if r.is_none() {
        eprintln!("no deployment `{id}` in {}", dir.display());
    }
    Ok(r)
}

pub fn send(dir: &Path, id: &str, command: Command) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(r) = find(&store, id, dir)? else {
        return Ok(INVALID);
    };
    if r.is_finished() {
        eprintln!(
            "{} run #{} has finished ({}); nothing to {}",
            r.deployment,
            r.run_id,
            r.status,
            command.name()
        );
        return Ok(FAILED);
    }
    if !owner_alive(&r) {
        eprintln!(
            "{} run #{} is {} but no cutover process runs it (it was interrupted); `cutover rollback {}` still works",
            r.deployment, r.run_id, r.status, r.deployment
        );
        return Ok(FAILED);
    }
    match deliver(&store, &r, &command)? {
        Ok(msg) => {
            out!("{} run #{}: {msg}", r.deployment, r.run_id);
            Ok(OK)
        }
        Err(msg) => {
            eprintln!(
                "{} run #{}: {} refused: {msg}",
                r.deployment,
                r.run_id,
                command.name()
            );
            Ok(FAILED)
        }
    }
}

pub fn rollback(dir: &Path, id: &str, to: Option<String>, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(r) = find(&store, id, dir)? else {
        return Ok(INVALID);
    };
    if owner_alive(&r) {
        return match deliver(&store, &r, &Command::Rollback { to })? {
            Err(msg) => {
                eprintln!(
                    "{} run #{}: rollback refused: {msg}",
                    r.deployment, r.run_id
                );
                Ok(FAILED)
            }
            Ok(_) => {
                // Follow the run to its end.
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(3600) {
                    if let Some(now) = store.run(r.run_id)? {
                        if let Some(outcome) = &now.outcome {
                            out!(
                                "{} run #{}: {outcome}: {}",
                                now.deployment,
                                now.run_id,
                                now.reason.unwrap_or_default()
                            );
                            return Ok(if outcome == "rolled_back" { OK } else { FAILED });
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(FAILED)
            }
        };
    }
    let spec: Spec = match serde_json::from_str(&r.spec_json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{} run #{}: its spec is not readable: {e}",
                r.deployment, r.run_id
            );
            return Ok(FAILED);
        }
    };
    match r.provider.as_str() {
        "simulated" => {
            let rt = runtime(true)?;
            rt.block_on(standalone(store, r, spec, to, json, None))
        }
        "local" => {
            let rt = runtime(false)?;
            rt.block_on(async {
                let exe = std::env::current_exe()?;
                let client = match ensure_host(dir, &exe).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("{e}");
                        return Ok(FAILED);
                    }
                };
                let local: Arc<dyn Provider> = Arc::new(LocalProvider::new(client));
                standalone(store, r, spec, to, json, Some(local)).await
            })
        }
        other => {
            eprintln!("provider `{other}` is not available in this build yet");
            Ok(INVALID)
        }
    }
}

async fn standalone(
    store: Store,
    r: RunRow,
    spec: Spec,
    to: Option<String>,
    json: bool,
    real: Option<Arc<dyn Provider>>,
) -> Result<u8> {
    let simulated = real.is_none();
    let sim = Arc::new(Simulated::new(Vec::new()));
    for c in spec.components.iter().filter(|_| simulated) {
        let revs = store.revisions(&c.id, &spec.environment, true)?;
        for rev in revs.iter().filter(|x| {
            x.status == "active"
                || (x.run_id == r.run_id && x.status != "rolled_back" && x.status != "retired")
        }) {
            sim.seed(
                &c.id,
                RevisionKey(rev.rev_key.clone()),
                &rev.version,
                rev.replicas.clamp(1, 10_000) as u32,
            );
        }
    }
    let provider: Arc<dyn Provider> = match real {
        Some(p) => p,
        None => sim,
    };
    let engine = super::engine(&store, provider, simulated, false);
    let mut events = engine.subscribe();
    let actor = cutover::identity::current_user();
    let handle = match engine
        .start_rollback(spec, simulated, r.run_id, to, &actor)
        .await
    {
        Ok(h) => h,
        Err(EngineError::Refused(msg)) => {
            eprintln!("{}: rollback refused: {msg}", r.deployment);
            return Ok(FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    super::print::follow(&mut events, json, 0).await;
    let outcome = handle.join.await?;
    super::apply::shut_down(&engine).await;
    if !r.is_finished() {
        let reason = format!("rolled back by {actor} in run #{}", handle.run_id);
        let o = if outcome == cutover::engine::Outcome::RolledBack {
            "rolled_back"
        } else {
            "failed"
        };
        store.finish_run(r.run_id, o, &reason)?;
    }
    Ok(if outcome == cutover::engine::Outcome::RolledBack {
        OK
    } else {
        FAILED
    })
}
