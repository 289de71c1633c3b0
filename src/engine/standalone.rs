//! Standalone rollback runs: rolling back a deployment whose own run has finished (or cannot be
//! taken over), as a run of its own that takes the targets over from the run it replaces.
//!
//! Owns: choosing what serves now and where it goes back to, recording the rollback run and its
//! intent before it can act, and its task. Must not touch: the rollback procedure itself
//! (`rollback`), forward strategy steps.

use tokio::sync::mpsc;

use super::event::*;
use super::refusal::Refusal;
use super::rollback::find_version;
use super::run::{CompState, Run};
use super::state::Transition;
use super::{EngineError, RunHandle, RunOptions};
use crate::plan::Plan;
use crate::provider::RevisionKey;
use crate::spec::ValidSpec;
use crate::store::{NewRun, Outcome, RevisionState, RunKind};

/// A run that rolls a finished deployment back (the "current" revision of each component is the
/// one serving now; the target is `to` or the newest good revision before it).
pub(super) async fn start_standalone(
    engine: &super::Engine,
    spec: ValidSpec,
    dry_run: bool,
    from_run: i64,
    to: Option<String>,
    actor: &str,
) -> Result<RunHandle, EngineError> {
    let store = engine.inner.store.clone();
    let spec2 = spec.clone();
    let to2 = to.clone();
    let provider = engine.inner.provider.clone();
    let chosen = store
        .call(move |s| {
            let mut out = Vec::new();
            for c in spec2.ordered_components() {
                let revs = s.revisions(&c.id, &spec2.environment, dry_run)?;
                // The run's own revision if it still serves (an interrupted or failed run), else the active one.
                let own = revs.iter().find(|r| {
                    r.run_id == from_run
                        && match r.status {
                            RevisionState::Active
                            | RevisionState::Deploying
                            | RevisionState::Failed => true,
                            RevisionState::Retired | RevisionState::RolledBack => false,
                        }
                });
                let Some(current) = own
                    .or_else(|| revs.iter().find(|r| r.status == RevisionState::Active))
                    .cloned()
                else {
                    out.push(Err(Refusal::Target(format!(
                        "{}: nothing is serving in {}; nothing to roll back",
                        c.id, spec2.environment
                    ))));
                    continue;
                };
                let target = match &to2 {
                    Some(v) => find_version(
                        &*provider,
                        s,
                        &c.id,
                        &spec2.environment,
                        dry_run,
                        v,
                        &current.rev_key,
                    ),
                    None => revs
                        .iter()
                        .find(|r| {
                            r.rev_id < current.rev_id
                                && !r.is_bad()
                                && r.status != RevisionState::Deploying
                        })
                        .cloned()
                        .ok_or_else(|| {
                            Refusal::Target(format!(
                                "{}: no earlier good revision to roll back to",
                                c.id
                            ))
                        }),
                };
                out.push(target.map(|t| (current, t)));
            }
            Ok(out)
        })
        .await?;
    let mut pairs = Vec::new();
    for c in chosen {
        pairs.push(c.map_err(EngineError::Refused)?);
    }
    let version = pairs
        .first()
        .map(|(_, t)| t.version.clone())
        .unwrap_or_default();
    let plan = Plan {
        deployment: spec.id.clone(),
        version: version.clone(),
        strategy: spec.strategy,
        environment: spec.environment.clone(),
        steps: Vec::new(),
        expected_ms: 0,
        gates: 0,
        rollback: format!("{} rollback", spec.rollback.strategy.kind),
        baseline: Vec::new(),
    };
    let new_run = NewRun {
        deployment: spec.id.clone(),
        kind: RunKind::Rollback,
        name: spec.name.clone(),
        version: version.clone(),
        strategy: spec.strategy,
        environment: spec.environment.clone(),
        provider: engine.inner.provider.kind(),
        dry_run,
        spec_json: serde_json::to_string(&spec).unwrap_or_default(),
        plan_json: serde_json::to_string(&plan).unwrap_or_default(),
        initiator: actor.to_string(),
    };
    // The run's "new" revision is the one serving now; its "old" is the target.
    let mut comps = Vec::new();
    for (current, target) in &pairs {
        let Some(comp) = super::component_of(current) else {
            return Err(EngineError::Refused(Refusal::Target(format!(
                "{}: configuration not recorded",
                current.rev_key
            ))));
        };
        let mut st = CompState::new(comp, RevisionKey(current.rev_key.clone()), Some(target));
        st.new_replicas = current.replicas.get();
        st.new_weight = 100;
        st.touched = true;
        if let Some(o) = st.old.as_mut() {
            o.running = false;
        }
        comps.push(st);
    }
    let serving = pairs
        .first()
        .map(|(c, _)| c.version.clone())
        .unwrap_or(version);
    let spec_for_run = spec
        .amend(|s| s.version = serving)
        .map_err(|d| EngineError::Refused(Refusal::InvalidSpec(super::diag_text(&d))))?;
    // The rollback takes the targets over from the run it replaces; any other unfinished run
    // on them refuses it.
    let targets = engine.targets(&spec, dry_run);
    engine
        .take_lease(&spec, &targets)
        .await
        .map_err(EngineError::Refused)?;
    let held = targets.clone();
    let created = store
        .call(move |s| s.create_run_holding(&new_run, &held, Some(from_run)))
        .await;
    let run_id = match created {
        Ok(Ok(id)) => id,
        Ok(Err(h)) => {
            engine.give_lease_back(&spec.id, &targets).await;
            return Err(EngineError::Refused(Refusal::from(h)));
        }
        Err(e) => {
            engine.give_lease_back(&spec.id, &targets).await;
            return Err(e.into());
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    engine.lock_runs().insert(run_id, tx);
    let opts = RunOptions {
        dry_run,
        auto_approve: false,
        initiator: actor.to_string(),
    };
    let mut runner = Run::new(
        engine.clone(),
        spec_for_run,
        plan.clone(),
        run_id,
        opts,
        comps,
        rx,
    );
    let reason = match &to {
        Some(v) => format!("rollback to {v} requested by {actor}"),
        None => format!("rollback requested by {actor}"),
    };
    let all: Vec<usize> = (0..runner.comps.len()).collect();
    runner.cause = Some(Cause::Manual);
    runner.record_intent(&reason, None, &all);
    runner.transition(Transition::RollBack);
    // The intent is in the store before the run can act or be seen: a process that takes it
    // over goes on with this rollback. Not waited on when the disk refuses it (the rollback's
    // own events retry).
    let snap_json = serde_json::to_string(&runner.snapshot()).unwrap_or_default();
    let status = runner.state.status();
    if let Err(e) = store
        .call(move |s| s.update_run(run_id, status, 0, &snap_json))
        .await
    {
        tracing::warn!(run = run_id, "rollback intent not recorded yet: {e}");
    }
    let eng = engine.clone();
    let renewing = engine.inner.provider.lease().map(|l| {
        let holder = engine.lease_holder(&spec.id);
        super::start::AbortOnDrop(tokio::spawn(super::start::renew(
            engine.clone(),
            l,
            targets.clone(),
            holder,
            run_id,
        )))
    });
    let dep = spec.id.clone();
    let actor_name = actor.to_string();
    let join = tokio::spawn(async move {
        runner
            .emit(EventKind::Started {
                version: runner.spec.version.clone(),
                strategy: "rollback".into(),
                environment: runner.spec.environment.clone(),
                provider: runner.engine.inner.provider.kind().to_string(),
                steps: 0,
                dry_run,
                initiator: runner.opts.initiator.clone(),
                baseline: Vec::new(),
            })
            .await;
        // A rollback run is never rolled back itself: its failure ends it as failed.
        let outcome = runner.rollback(reason, None).await;
        close_replaced(&eng, from_run, (run_id, dry_run), outcome, &actor_name).await;
        eng.lock_runs().remove(&run_id);
        drop(renewing);
        eng.give_lease_back(&dep, &targets).await;
        outcome
    });
    Ok(RunHandle {
        run_id,
        deployment: spec.id.clone(),
        plan,
        join,
    })
}

/// The run a rollback replaced, when its process had gone before it finished, ends with the
/// rollback's outcome (rolled back, else failed) and a `finished` line naming the rollback run,
/// whose own end is what counts the rollback. Told, never fatal: the run stays as it was.
async fn close_replaced(
    engine: &super::Engine,
    from_run: i64,
    (rollback_run, rollback_dry): (i64, bool),
    outcome: Outcome,
    actor: &str,
) {
    let outcome = match outcome {
        Outcome::RolledBack => Outcome::RolledBack,
        Outcome::Succeeded | Outcome::Failed => Outcome::Failed,
    };
    let reason = format!("rolled back by {actor} in run #{rollback_run}");
    let closed = engine
        .inner
        .store
        .call(move |s| {
            let Some(r) = s.run(from_run)? else {
                return Ok(());
            };
            if r.is_finished() {
                return Ok(());
            }
            let ts = crate::store::now_ts();
            let ev = Event {
                ts: ts.clone(),
                deployment: r.deployment.clone(),
                run: from_run,
                kind: EventKind::Finished {
                    outcome,
                    reason: reason.clone(),
                    cause: Some(Cause::Manual),
                    // Metrics count the rollback from the rollback run's end, unless that run is
                    // a dry run (in no counter) and this one is not: then from this end.
                    by_run: (!rollback_dry || r.dry_run).then_some(rollback_run),
                    journal: None,
                },
            };
            let snapshot_json = match serde_json::from_str::<Snapshot>(&r.snapshot_json) {
                Ok(mut snap) => {
                    snap.status = outcome.status();
                    serde_json::to_string(&snap).unwrap_or(r.snapshot_json.clone())
                }
                Err(_) => r.snapshot_json.clone(),
            };
            let json = serde_json::to_string(&ev).unwrap_or_default();
            let last = crate::store::LastWords {
                ts: &ts,
                kind: "finished",
                json: &json,
                step: r.step.max(0) as usize,
                snapshot_json: &snapshot_json,
                audit: None,
            };
            s.finish_run_journaled(from_run, outcome, &reason, &[], Some(&last))
        })
        .await;
    if let Err(e) = closed {
        tracing::warn!(run = from_run, "the replaced run is not closed: {e}");
    }
}
