//! `cutover apply`: run one deployment headless, printing events, exiting with the outcome.
//!
//! Owns: choosing the provider and clock for a run, Ctrl-C/SIGTERM (pause and persist, exit 3).
//! Must not touch: engine decisions.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::broadcast::error::RecvError;

use super::{load_spec, open_store, FAILED, INTERRUPTED, INVALID};
use cutover::engine::{Command, Engine, EngineError, EventKind, Refusal, RunOptions};
use cutover::platform;
use cutover::provider::simulated::Fault;
use cutover::provider::Provider;
use cutover::spec::{ProviderKind, ValidSpec};
use cutover::store::Store;

/// Build the runtime: a paused (virtual) clock for dry runs, real time otherwise.
pub fn runtime(virtual_clock: bool) -> Result<tokio::runtime::Runtime> {
    let rt = if virtual_clock {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    };
    Ok(rt)
}

/// How a headless run goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headless {
    /// One JSON object per line.
    pub json: bool,
    /// Against the simulated provider on a virtual clock.
    pub dry_run: bool,
    /// Approve every gate.
    pub auto_approve: bool,
    /// When another run drives a target, roll that run back first, then start.
    pub supersede: bool,
}

pub fn apply(dir: &Path, path: &Path, how: Headless, faults: &[String]) -> Result<u8> {
    let spec = match load_spec(path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut parsed = Vec::new();
    for f in faults {
        match Fault::parse(f) {
            Ok(f) => parsed.push(f),
            Err(e) => {
                eprintln!("--sim-fault: {e}");
                return Ok(INVALID);
            }
        }
    }
    launch(dir, spec, how, parsed, None)
}

/// Run a checked spec (a deployment, or a promotion when `promotion` says where it comes from)
/// on the provider it names, or the simulated one for a dry run.
pub fn launch(
    dir: &Path,
    spec: ValidSpec,
    how: Headless,
    faults: Vec<Fault>,
    promotion: Option<cutover::governance::promotion::Ask>,
) -> Result<u8> {
    let rt = runtime(how.dry_run)?;
    let kind = if how.dry_run {
        ProviderKind::Simulated
    } else {
        spec.infrastructure.provider
    };
    rt.block_on(async {
        let mut req = platform::Request::new(dir)?.for_spec(&spec);
        req.faults = faults;
        let built = match platform::build(kind, &req).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", spec.id);
                return Ok(e.exit_code());
            }
        };
        let store = open_store(dir)?;
        if let Some(sim) = &built.simulation {
            platform::seed(sim, &store, &spec, None)?;
        }
        let simulated_world = built.simulation.is_some();
        run(spec, built.provider, simulated_world, how, promotion, store).await
    })
}

async fn run(
    spec: ValidSpec,
    provider: Arc<dyn Provider>,
    simulated_world: bool,
    how: Headless,
    promotion: Option<cutover::governance::promotion::Ask>,
    store: Store,
) -> Result<u8> {
    let engine = super::engine(&store, provider, how.dry_run, true);
    let mut events = engine.subscribe();
    let user = cutover::identity::current_user();
    let opts = RunOptions {
        dry_run: simulated_world,
        auto_approve: how.auto_approve,
        initiator: user.clone(),
    };
    let started = match promotion {
        Some(p) => engine.promote(p, opts).await,
        None => {
            let first = engine.start(spec.clone(), opts.clone()).await;
            match first {
                Err(EngineError::Refused(Refusal::Busy { run, .. })) if how.supersede => {
                    match supersede(&engine, &store, run, &user).await {
                        Ok(()) => engine.start(spec, opts).await,
                        Err(why) => {
                            eprintln!("refused: cannot supersede run #{run}: {why}");
                            return Ok(FAILED);
                        }
                    }
                }
                other => other,
            }
        }
    };
    let handle = match started {
        Ok(h) => h,
        Err(EngineError::Refused(refusal)) => {
            eprintln!("refused: {refusal}");
            // Its audit record goes through the journal's queue: written (or said) before exit.
            shut_down(&engine).await;
            return Ok(refusal.exit_code());
        }
        Err(e) => return Err(e.into()),
    };
    drive(
        &engine,
        &store,
        &mut events,
        handle,
        how.json,
        how.auto_approve,
        &user,
    )
    .await
}

/// `apply --supersede`: roll back the run that holds a target first. A run with a live process
/// is asked to roll back (through the store, as `cutover rollback` does) and followed to its
/// end; a run whose process has gone is taken over by this engine and rolled back here.
async fn supersede(engine: &Engine, store: &Store, holder: i64, user: &str) -> Result<(), String> {
    let row = store
        .call(move |s| s.run(holder))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run #{holder} is not in the store"))?;
    eprintln!(
        "superseding run #{} of {} ({}): rolling it back first",
        row.run_id, row.deployment, row.status
    );
    let alive = !row.is_finished() && row.owner_pid.is_some_and(cutover::store::pid_alive);
    if alive {
        let (s, u) = (store.clone(), user.to_string());
        let answer = tokio::task::spawn_blocking(move || {
            cutover::engine::remote::send(
                &s,
                holder,
                &Command::Rollback { to: None },
                &u,
                Duration::from_secs(20),
            )
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        answer.map_err(|r| r.to_string())?;
        // Its driver rolls it back; wait for the end it records (bounded by its own timeout).
        let deadline = std::time::Instant::now() + Duration::from_secs(3600);
        loop {
            let now = store
                .call(move |s| s.run(holder))
                .await
                .map_err(|e| e.to_string())?;
            match now {
                Some(r) if r.is_finished() => break,
                Some(r) if !r.owner_pid.is_some_and(cutover::store::pid_alive) => {
                    return Err(format!(
                        "its process went away while rolling it back; `cutover resume {}` finishes it",
                        r.deployment
                    ))
                }
                None => break,
                Some(_) if std::time::Instant::now() > deadline => {
                    return Err("its rollback did not end within an hour".into())
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    } else if !row.is_finished() {
        let (h, refused) = engine
            .adopt_to_roll_back(holder, None, user)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(e) = refused {
            return Err(e.to_string());
        }
        h.join.await.map_err(|e| e.to_string())?;
    }
    let end = store
        .call(move |s| s.run(holder))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(r) = end {
        eprintln!(
            "run #{} of {}: {}",
            r.run_id,
            r.deployment,
            r.reason.unwrap_or_else(|| r.status.to_string())
        );
    }
    Ok(())
}

/// Follow a run this process drives to its end, printing its events (`--json`: one object per
/// line), and shut the engine down; Ctrl-C or SIGTERM pause and persist it instead (exit 3).
/// `events` is subscribed before the run began, so that nothing it said is missed.
pub async fn drive(
    engine: &Engine,
    store: &Store,
    events: &mut tokio::sync::broadcast::Receiver<cutover::engine::Event>,
    handle: cutover::engine::RunHandle,
    json: bool,
    auto_approve: bool,
    user: &str,
) -> Result<u8> {
    let steps = handle.plan.steps.len();
    let run_id = handle.run_id;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if ev.run != run_id {
                        continue;
                    }
                    let last = super::print::show(&ev, json, steps);
                    if let EventKind::GateWaiting { gate, hint, .. } = &ev.kind {
                        if json && !auto_approve {
                            eprintln!("gate {gate} waits for approval: {hint}");
                        }
                    }
                    if last {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => eprintln!("(skipped {n} events; see `cutover status`)"),
                Err(RecvError::Closed) => break,
            },
            _ = tokio::signal::ctrl_c() => return interrupted(engine, store, run_id, user, json).await,
            _ = term.recv() => return interrupted(engine, store, run_id, user, json).await,
        }
    }
    let code = match handle.join.await {
        Ok(outcome) => outcome.exit_code() as u8,
        Err(e) => {
            eprintln!("the deployment task failed: {e}");
            FAILED
        }
    };
    shut_down(engine).await;
    Ok(code)
}

/// How long a headless run's process waits, once its run is over, for runs to pause and for
/// webhook deliveries in flight (each).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a process waits before it exits for the journal lines the state store has not
/// taken yet (it is busy, full or read-only), telling the operator while it waits.
pub const JOURNAL_GRACE: Duration = Duration::from_secs(30);

/// Shut the engine down before the process exits; say on stderr what could not be done.
pub async fn shut_down(engine: &Engine) {
    let lag = engine.journal_lag();
    if lag.lines > 0 || !lag.unfinished.is_empty() {
        eprintln!(
            "waiting up to {}s for {} journal line(s) the state store has not taken yet{}",
            JOURNAL_GRACE.as_secs(),
            lag.lines,
            lag.error.map(|e| format!(": {e}")).unwrap_or_default()
        );
        engine.flush_journal(JOURNAL_GRACE).await;
    }
    let r = engine.shutdown(SHUTDOWN_GRACE).await;
    for (run, why) in &r.not_paused {
        eprintln!("run #{run} could not be paused: {why}");
    }
    for what in &r.undelivered {
        eprintln!("webhook notice not delivered: {what}");
    }
    let j = &r.journal;
    if j.lines > 0 || !j.unfinished.is_empty() {
        eprintln!(
            "NOT RECORDED: {} journal line(s) could not be written to the state store{}; they are lost with this process",
            j.lines,
            j.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
        for run in &j.unfinished {
            eprintln!(
                "run #{run}: its end is not recorded: the store still shows it unfinished (traffic is as the run left it); once the store takes writes, take it over with `cutover resume {run}`"
            );
        }
    }
}

/// Ctrl-C or SIGTERM: pause the run, persist it, exit 3.
async fn interrupted(
    engine: &Engine,
    store: &Store,
    run_id: i64,
    user: &str,
    json: bool,
) -> Result<u8> {
    let _ = engine.command_as_owner(run_id, Command::Pause, user).await;
    let s = store.clone();
    let dep = engine
        .snapshots()
        .borrow()
        .get(&run_id)
        .map(|snap| snap.deployment.clone())
        .unwrap_or_default();
    // A store that takes no writes now must not stop the shutdown below (it waits for the
    // journal and says what is not recorded).
    if let Err(e) = store.call(move |st| st.release_run(run_id)).await {
        eprintln!("run #{run_id} could not be released in the state store: {e}");
    }
    if json {
        let line = serde_json::json!({
            "ts": cutover::store::now_ts(),
            "deployment": dep,
            "run": run_id,
            "kind": "interrupted",
            "reason": "interrupted: the run was paused and saved",
        });
        out!("{line}");
    } else {
        eprintln!(
            "interrupted: run #{run_id} of {dep} is paused and saved in {}",
            s.path().display()
        );
    }
    shut_down(engine).await;
    Ok(INTERRUPTED)
}
