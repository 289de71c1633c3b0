//! Adopting an interrupted run: a run whose process paused it and went away (Ctrl-C on `apply`,
//! a console that quit with "pause") is taken over by this engine and goes on from its step.
//!
//! Owns: claiming the run in the store, rebuilding its state (revisions, weights, replicas) from
//! the journal's snapshot and the provider, and starting its task. Must not touch: strategy logic
//! (the run's own state machine continues it).

use super::event::{RollbackIntent, Snapshot};
use super::refusal::Refusal;
use super::run::{CompState, OldRev};
use super::start::Begin;
use super::{Engine, EngineError, RunHandle, RunOptions};
use crate::plan::Plan;
use crate::provider::RevisionKey;
use crate::spec::ValidSpec;
use crate::store::RunKind;

impl Engine {
    /// Take over run `run_id` (unfinished, with no live owner) and resume it as `actor`.
    pub async fn adopt(&self, run_id: i64, actor: &str) -> Result<RunHandle, EngineError> {
        self.accepting()?;
        // `claim_run` lets a run recorded under our own pid be claimed (a previous process may
        // have had the same pid), so a run this engine is still driving must be refused here,
        // before claiming: a second task would drive it too, and a refused rebuild (a dry run)
        // would release it in the store, for another process to take while we still run it.
        if self
            .lock_runs()
            .get(&run_id)
            .is_some_and(|tx| !tx.is_closed())
        {
            return Err(EngineError::Refused(Refusal::Takeover(format!(
                "run {run_id} cannot be taken over: this engine runs it"
            ))));
        }
        let store = self.inner.store.clone();
        let pid = std::process::id() as i64;
        let row = store
            .call(move |s| s.claim_run(run_id, pid))
            .await?
            .ok_or_else(|| {
                EngineError::Refused(Refusal::Takeover(format!(
                    "run {run_id} cannot be taken over: it has finished or another process runs it"
                )))
            })?;
        match self.rebuild(&row, actor).await {
            Ok(h) => Ok(h),
            Err(e) => {
                // Let go again, so another process (or a fixed build) can try.
                let _ = store.call(move |s| s.release_run(run_id)).await;
                Err(e)
            }
        }
    }

    /// Take over run `run_id` and roll it back (to `to`), as `cutover rollback` and
    /// `apply --supersede` do with a run whose process has gone. A run that was already rolling
    /// back goes on with its own rollback; otherwise it is asked to roll back, and a refusal of
    /// that (the run then goes on as it was) is returned beside the handle.
    pub async fn adopt_to_roll_back(
        &self,
        run_id: i64,
        to: Option<String>,
        actor: &str,
    ) -> Result<(RunHandle, Option<EngineError>), EngineError> {
        let store = self.inner.store.clone();
        let row = store.call(move |s| s.run(run_id)).await?;
        let already = row
            .and_then(|r| serde_json::from_str::<Snapshot>(&r.snapshot_json).ok())
            .is_some_and(|s| s.rolling_back.is_some());
        let handle = self.adopt(run_id, actor).await?;
        if already {
            return Ok((handle, None));
        }
        let refused = self
            .command_as_owner(run_id, super::Command::Rollback { to }, actor)
            .await
            .err();
        Ok((handle, refused))
    }

    async fn rebuild(
        &self,
        row: &crate::store::RunRow,
        actor: &str,
    ) -> Result<RunHandle, EngineError> {
        let refuse = |why: String| {
            EngineError::Refused(Refusal::Takeover(format!("run {}: {why}", row.run_id)))
        };
        if row.dry_run {
            return Err(refuse(
                "a dry run lived in its process's simulation and cannot be resumed".into(),
            ));
        }
        let ours = self.inner.provider.kind();
        if row.provider != ours {
            return Err(refuse(format!(
                "it runs on provider `{}`, this engine drives `{ours}`",
                row.provider
            )));
        }
        let spec: ValidSpec = serde_json::from_str(&row.spec_json)
            .map_err(|e| refuse(format!("its recorded spec is unreadable: {e}")))?;
        let plan: Plan = serde_json::from_str(&row.plan_json)
            .map_err(|e| refuse(format!("its recorded plan is unreadable: {e}")))?;
        let snap: Option<Snapshot> = serde_json::from_str(&row.snapshot_json).ok();
        // On a platform with its own lease, the dead driver's must have expired.
        let targets = self.targets(&spec, row.dry_run);
        self.take_lease(&spec, &targets)
            .await
            .map_err(EngineError::Refused)?;
        // A run that was rolling back goes on rolling back, to the revisions it chose.
        if let Some(intent) = snap.as_ref().and_then(|s| s.rolling_back.clone()) {
            return self
                .rebuild_rollback(row, spec, plan, snap, intent, actor)
                .await;
        }
        match row.kind {
            RunKind::Deploy | RunKind::Promote => {}
            RunKind::Rollback => {
                return Err(refuse(format!(
                    "this rollback ended before it recorded what it returns to; run `cutover rollback {}` again",
                    row.deployment
                )))
            }
        }
        let store = self.inner.store.clone();
        let run_id = row.run_id;
        let revs = store.call(move |s| s.run_revisions(run_id)).await?;
        let provider = self.inner.provider.clone();
        let mut comps = Vec::new();
        for c in spec.ordered_components() {
            // The run's own revision is its newest of the component (a baseline found on the
            // platform is recorded under the run too, before it).
            let new = revs
                .iter()
                .filter(|r| r.component == c.id)
                .max_by_key(|r| r.rev_id)
                .ok_or_else(|| refuse(format!("no revision of {} was recorded", c.id)))?;
            let weights = snap
                .as_ref()
                .and_then(|s| s.traffic.iter().find(|t| t.component == c.id))
                .map(|t| t.weights.clone())
                .unwrap_or_default();
            let (cid, env, dry) = (c.id.clone(), spec.environment.clone(), row.dry_run);
            let old_row = store
                .call(move |s| s.active_revision(&cid, &env, dry))
                .await?
                .filter(|o| o.rev_key != new.rev_key);
            let mut state = CompState::new(c.clone(), RevisionKey(new.rev_key.clone()), None);
            if let Some(o) = old_row {
                state.old = Some(old_rev(&*provider, c, &o).await);
            }
            state.new_weight = weights
                .iter()
                .find(|w| w.revision == new.rev_key)
                .map(|w| w.weight)
                .unwrap_or(0);
            state.new_replicas = provider
                .revision_status(&c.id, &state.new_key)
                .await
                .map(|s| s.desired)
                .unwrap_or(0);
            state.touched = state.new_replicas > 0 || state.new_weight > 0;
            comps.push(state);
        }
        let opts = RunOptions {
            dry_run: false,
            auto_approve: false,
            initiator: row.initiator.clone(),
        };
        let step = (row.step.max(0) as usize).min(plan.steps.len());
        Ok(self.spawn_run(
            spec,
            plan,
            run_id,
            opts,
            comps,
            Begin::Resume {
                step,
                by: actor.to_string(),
            },
        ))
    }

    /// Take over a run that was rolling back: the components its intent names, each from the
    /// revision being taken off to the previous one, as the provider has them now; the rollback
    /// then goes on from the traffic it had reached (a gradual one skips the steps it made).
    async fn rebuild_rollback(
        &self,
        row: &crate::store::RunRow,
        spec: ValidSpec,
        plan: Plan,
        snap: Option<Snapshot>,
        intent: RollbackIntent,
        actor: &str,
    ) -> Result<RunHandle, EngineError> {
        let refuse = |why: String| {
            EngineError::Refused(Refusal::Takeover(format!("run {}: {why}", row.run_id)))
        };
        let store = self.inner.store.clone();
        let provider = self.inner.provider.clone();
        let mut comps = Vec::new();
        for ic in &intent.components {
            let from_key = ic.from.clone();
            let prev_key = ic.previous.clone();
            let (from_row, prev_row) = store
                .call(move |s| {
                    let prev = match &prev_key {
                        Some(k) => s.revision(k)?,
                        None => None,
                    };
                    Ok((s.revision(&from_key)?, prev))
                })
                .await?;
            let comp = from_row
                .as_ref()
                .and_then(super::component_of)
                .or_else(|| {
                    spec.components
                        .iter()
                        .find(|c| c.id == ic.component)
                        .cloned()
                })
                .ok_or_else(|| refuse(format!("component {} is not in its spec", ic.component)))?;
            let mut state = CompState::new(comp.clone(), RevisionKey(ic.from.clone()), None);
            if let Some(o) = prev_row {
                state.old = Some(old_rev(&*provider, &comp, &o).await);
            }
            let weights = snap
                .as_ref()
                .and_then(|s| s.traffic.iter().find(|t| t.component == ic.component))
                .map(|t| t.weights.clone())
                .unwrap_or_default();
            state.new_replicas = provider
                .revision_status(&comp.id, &state.new_key)
                .await
                .map(|s| s.desired)
                .unwrap_or(0);
            state.new_weight = if state.new_replicas == 0 {
                0
            } else {
                weights
                    .iter()
                    .find(|w| w.revision == ic.from)
                    .map(|w| w.weight)
                    .unwrap_or(100)
            };
            // Every component the intent names is finished again (traffic, removal, states),
            // also one whose new revision was already gone.
            state.touched = true;
            comps.push(state);
        }
        let spec = if spec.version == intent.version {
            spec
        } else {
            let v = intent.version.clone();
            spec.amend(|s| s.version = v)
                .map_err(|d| refuse(format!("its recorded spec: {}", super::diag_text(&d))))?
        };
        let opts = RunOptions {
            dry_run: false,
            auto_approve: false,
            initiator: row.initiator.clone(),
        };
        Ok(self.spawn_run(
            spec,
            plan,
            row.run_id,
            opts,
            comps,
            Begin::RollBack {
                by: actor.to_string(),
                intent,
            },
        ))
    }
}

/// The previous revision `row` of `comp` as a rebuilt run knows it: running if the provider
/// still has it.
async fn old_rev(
    provider: &dyn crate::provider::Provider,
    comp: &crate::spec::Component,
    row: &crate::store::RevisionRow,
) -> OldRev {
    let key = RevisionKey(row.rev_key.clone());
    // A revision kept at 0 replicas (retired on a cluster) does not run.
    let running = provider
        .revision_status(&comp.id, &key)
        .await
        .is_ok_and(|s| s.desired > 0);
    OldRev {
        key,
        version: row.version.clone(),
        replicas: row.replicas,
        component: super::component_of(row).unwrap_or_else(|| comp.clone()),
        running,
    }
}
