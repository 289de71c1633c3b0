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
use cutover::engine::{remote, Answer, Command, EngineError, Outcome};
use cutover::platform;
use cutover::provider::Provider;
use cutover::spec::{ProviderKind, ValidSpec};
use cutover::store::{pid_alive, RunRow, Store};

fn owner_alive(r: &RunRow) -> bool {
    !r.is_finished() && r.owner_pid.is_some_and(pid_alive)
}

/// Write a command for the owning engine and wait for its answer.
fn deliver(store: &Store, r: &RunRow, command: &Command) -> Result<Answer> {
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
        eprintln!(
            "no deployment `{id}` in {} (one on Kubernetes that another machine drove: `cutover status {id} --cluster`, `cutover rollback {id} --cluster`)",
            dir.display()
        );
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
            "{} run #{} is {} but no cutover process runs it (it was interrupted); `cutover resume {}#{}` takes it over, `cutover rollback {}#{}` rolls it back",
            r.deployment, r.run_id, r.status, r.deployment, r.run_id, r.deployment, r.run_id
        );
        return Ok(FAILED);
    }
    match deliver(&store, &r, &command)? {
        Ok(msg) => {
            out!("{} run #{}: {msg}", r.deployment, r.run_id);
            Ok(OK)
        }
        Err(refusal) => {
            eprintln!(
                "{} run #{}: {} refused: {refusal}",
                r.deployment,
                r.run_id,
                command.name()
            );
            Ok(refusal.exit_code())
        }
    }
}

/// `cutover resume ID`: release the pause of a run its process drives, or take over a run
/// whose process has gone and drive it to its end here, headless, with its recorded intent.
pub fn resume(dir: &Path, id: &str, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(r) = find(&store, id, dir)? else {
        return Ok(INVALID);
    };
    if r.is_finished() || owner_alive(&r) {
        return send(dir, id, Command::Resume);
    }
    match take_over(dir, store, &r, json, None)? {
        TakeOver::Done(code) => Ok(code),
        TakeOver::Refused(refusal) => {
            eprintln!(
                "{} run #{}: cannot be taken over: {refusal}",
                r.deployment, r.run_id
            );
            Ok(refusal.exit_code())
        }
    }
}

/// What taking over a run came to.
enum TakeOver {
    /// Driven to its end here: the exit code.
    Done(u8),
    /// Not taken over, and why.
    Refused(cutover::engine::Refusal),
}

/// Take over run `r` (unfinished, its process gone) in this process and drive it to its end.
/// With `rollback`, roll it back (to the version given) unless it is already rolling back.
fn take_over(
    dir: &Path,
    store: Store,
    r: &RunRow,
    json: bool,
    rollback: Option<Option<String>>,
) -> Result<TakeOver> {
    let rt = runtime(false)?;
    rt.block_on(async {
        let spec = serde_json::from_str::<ValidSpec>(&r.spec_json).ok();
        let mut req = platform::Request::new(dir)?;
        if let Some(spec) = &spec {
            req = req.for_spec(spec);
        }
        let built = match platform::build(r.provider, &req).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", r.deployment);
                return Ok(TakeOver::Done(e.exit_code()));
            }
        };
        if let (Some(sim), Some(spec)) = (&built.simulation, &spec) {
            platform::seed(sim, &store, spec, Some(r.run_id))?;
        }
        let engine = super::engine(&store, built.provider, false, true);
        let mut events = engine.subscribe();
        let user = cutover::identity::current_user();
        let adopted = match rollback {
            None => engine.adopt(r.run_id, &user).await.map(|h| (h, None)),
            Some(to) => engine.adopt_to_roll_back(r.run_id, to, &user).await,
        };
        let handle = match adopted {
            Ok((h, None)) => h,
            Ok((h, Some(refused))) => {
                eprintln!(
                    "{} run #{}: rollback refused: {refused}",
                    r.deployment, r.run_id
                );
                h
            }
            Err(EngineError::Refused(refusal)) => return Ok(TakeOver::Refused(refusal)),
            Err(e) => return Err(e.into()),
        };
        let code =
            super::apply::drive(&engine, &store, &mut events, handle, json, false, &user).await?;
        Ok(TakeOver::Done(code))
    })
}

pub fn rollback(dir: &Path, id: &str, to: Option<String>, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(r) = find(&store, id, dir)? else {
        return Ok(INVALID);
    };
    // A run whose process has gone is taken over here and rolled back as itself (one run, one
    // outcome); a run that cannot be (a dry run's) is rolled back by a rollback run below.
    if !r.is_finished() && !owner_alive(&r) && !r.dry_run {
        match take_over(dir, store.clone(), &r, json, Some(to.clone()))? {
            TakeOver::Done(code) => {
                let now = store.run(r.run_id)?;
                return Ok(match now.and_then(|n| n.outcome) {
                    Some(Outcome::RolledBack) => OK,
                    Some(_) => FAILED,
                    None => code,
                });
            }
            TakeOver::Refused(refusal) => {
                eprintln!(
                    "{} run #{}: cannot be taken over ({refusal}); rolling back with a rollback run",
                    r.deployment, r.run_id
                );
            }
        }
    }
    if owner_alive(&r) {
        return match deliver(&store, &r, &Command::Rollback { to })? {
            Err(refusal) => {
                eprintln!(
                    "{} run #{}: rollback refused: {refusal}",
                    r.deployment, r.run_id
                );
                Ok(refusal.exit_code())
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
                            return Ok(match outcome {
                                Outcome::RolledBack => OK,
                                Outcome::Succeeded | Outcome::Failed => FAILED,
                            });
                        }
                        if !owner_alive(&now) {
                            eprintln!(
                                "{} run #{}: its process went away before recording an outcome ({}); `cutover resume {}#{}` or `cutover rollback {}#{}` takes it over and goes on with it",
                                now.deployment, now.run_id, now.status, now.deployment, now.run_id, now.deployment, now.run_id
                            );
                            return Ok(FAILED);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(FAILED)
            }
        };
    }
    let spec: ValidSpec = match serde_json::from_str(&r.spec_json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "{} run #{}: its recorded spec is unusable: {e}",
                r.deployment, r.run_id
            );
            return Ok(FAILED);
        }
    };
    let simulated = r.provider == ProviderKind::Simulated;
    let rt = runtime(simulated)?;
    rt.block_on(async {
        let req = platform::Request::new(dir)?.for_spec(&spec);
        let built = match platform::build(r.provider, &req).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", r.deployment);
                return Ok(e.exit_code());
            }
        };
        if let Some(sim) = &built.simulation {
            platform::seed(sim, &store, &spec, Some(r.run_id))?;
        }
        standalone(store, r, spec, to, json, built.provider, simulated).await
    })
}

async fn standalone(
    store: Store,
    r: RunRow,
    spec: ValidSpec,
    to: Option<String>,
    json: bool,
    provider: Arc<dyn Provider>,
    simulated: bool,
) -> Result<u8> {
    let engine = super::engine(&store, provider, simulated, false);
    let mut events = engine.subscribe();
    let actor = cutover::identity::current_user();
    let handle = match engine
        .start_rollback(spec, simulated, r.run_id, to, &actor)
        .await
    {
        Ok(h) => h,
        Err(EngineError::Refused(refusal)) => {
            eprintln!("{}: rollback refused: {refusal}", r.deployment);
            return Ok(refusal.exit_code());
        }
        Err(e) => return Err(e.into()),
    };
    super::print::follow(&mut events, json, 0).await;
    let outcome = handle.join.await?;
    super::apply::shut_down(&engine).await;
    Ok(match outcome {
        Outcome::RolledBack => OK,
        Outcome::Succeeded | Outcome::Failed => FAILED,
    })
}
