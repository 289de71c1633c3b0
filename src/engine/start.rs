//! Starting runs: a deployment or a promotion, after the environment's window and the
//! initiator's role allow it; recording the run, its revisions and (for a promotion) where it
//! came from; and the environment's `beforeStart` gate.
//!
//! Owns: what happens between "start this" and the run's task taking over, and the platform's
//! lease while a run is driven (renewed; a lost lease holds the run with `Command::Hold`). Must
//! not touch: the steps themselves (`run`), how commands act (`control`), or the platform's
//! baseline (`baseline`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::refusal::Refusal;
use super::{previous_revisions, run, Engine, EngineError, RunHandle, RunOptions};
use crate::governance::rbac::Permission;
use crate::plan::{Plan, Previous};
use crate::provider::lease::{LeaseError, LeaseHolder, TargetLease};
use crate::provider::{RevisionKey, Running};
use crate::spec::{Replicas, ValidSpec};
use crate::store::{NewRun, RunKind};

impl Engine {
    /// Start a promotion: the spec of a verified run, retargeted to the next environment.
    ///
    /// The rules are checked here, with the store's facts: the latest run of the deployment in
    /// `from` succeeded, `to` is next in the pipeline (or the initiator is an admin there and
    /// gives a reason), and `to` is open. The spec is that run's, retargeted to `to` and checked
    /// again (the target's overrides may break a rule).
    pub async fn promote(
        &self,
        req: crate::governance::promotion::Ask,
        opts: RunOptions,
    ) -> Result<RunHandle, EngineError> {
        use crate::governance::promotion;
        self.accepting()?;
        let store = self.inner.store.clone();
        let (dep, from) = (req.deployment.clone(), req.from.clone());
        let source = store.call(move |s| s.latest_in(&dep, &from)).await?;
        let gov = &self.inner.governance;
        let admin = gov
            .check(&req.to, &opts.initiator, Permission::Override)
            .is_ok();
        let facts = promotion::Request {
            deployment: &req.deployment,
            from: &req.from,
            to: &req.to,
            source: source.as_ref().map(|r| (r.run_id, r.outcome)),
            override_reason: req.override_reason.as_deref(),
            admin,
            now: self.now(),
        };
        let checked = promotion::check(&gov.workspace, &facts)
            .map_err(Refusal::from)
            .and_then(|run| {
                let row = source
                    .as_ref()
                    .ok_or_else(|| Refusal::NotFound("no source run".into()))?;
                let spec: ValidSpec = serde_json::from_str(&row.spec_json).map_err(|e| {
                    Refusal::InvalidSpec(format!("run #{run}'s recorded spec is unusable: {e}"))
                })?;
                let spec = promotion::retarget(&spec, &gov.workspace, &req.to).map_err(|d| {
                    Refusal::InvalidSpec(format!(
                        "{}'s overrides break the spec's rules: {}",
                        req.to,
                        super::diag_text(&d)
                    ))
                })?;
                Ok((run, spec))
            });
        let (source_run, spec) = match checked {
            Ok(x) => x,
            Err(refusal) => {
                self.audit(crate::store::audit::Entry {
                    actor: opts.initiator.clone(),
                    action: "refused".into(),
                    deployment: req.deployment.clone(),
                    run: None,
                    environment: req.to.clone(),
                    detail: serde_json::json!({"command": "promote", "from": req.from, "reason": refusal.to_string()}),
                })
                .await;
                return Err(EngineError::Refused(refusal));
            }
        };
        let source = promotion::Source {
            from_env: req.from.clone(),
            source_run,
            override_reason: req.override_reason.clone(),
        };
        self.start_as(spec, opts, Some(source)).await
    }

    pub(super) async fn start_as(
        &self,
        spec: ValidSpec,
        opts: RunOptions,
        promotion: Option<crate::governance::promotion::Source>,
    ) -> Result<RunHandle, EngineError> {
        let store = self.inner.store.clone();
        let window = self
            .inner
            .governance
            .workspace
            .env(&spec.environment)
            .map(|e| crate::governance::window::open(e, self.now()))
            .unwrap_or(Ok(()));
        let allowed = window.map_err(Refusal::from).and_then(|()| {
            self.inner
                .governance
                .check(&spec.environment, &opts.initiator, Permission::Deploy)
                .map_err(Refusal::from)
        });
        if let Err(refusal) = allowed {
            return Err(self.refuse_deploy(&spec, &opts, refusal).await);
        }
        let spec2 = spec.clone();
        let dry = opts.dry_run;
        let mut previous = store
            .call(move |s| previous_revisions(s, &spec2, dry))
            .await?;
        // What the platform runs now may differ from what the store says (a revision gone, or
        // one only the platform knows): the plan starts from what runs. Nothing is written
        // until the run is recorded.
        let (gone, mut found) = match self.platform_previous(&spec, &mut previous, dry).await {
            Ok(v) => v,
            Err(refusal) => return Err(self.refuse_deploy(&spec, &opts, refusal).await),
        };
        let mut plan = crate::plan::build(&spec, &|id| {
            previous
                .get(id)
                .map(|r| Previous {
                    version: r.version.clone(),
                    replicas: r.replicas,
                })
                .or_else(|| {
                    found.get(id).map(|f: &Running| Previous {
                        version: f.version.clone(),
                        replicas: Replicas::new(i64::from(f.replicas)).unwrap_or(Replicas::ONE),
                    })
                })
        });
        plan.baseline = found
            .iter()
            .map(|(c, f)| {
                format!(
                    "{c}: {}, {} replica(s) of {}, is the baseline",
                    f.what, f.replicas, f.version
                )
            })
            .collect();
        let before_start = self
            .inner
            .governance
            .workspace
            .env(&spec.environment)
            .and_then(|e| e.approval.as_ref())
            .is_some_and(|a| a.before_start);
        if before_start {
            add_before_start_gate(&mut plan);
        }
        let new_run = NewRun {
            deployment: spec.id.clone(),
            kind: if promotion.is_some() {
                RunKind::Promote
            } else {
                RunKind::Deploy
            },
            name: spec.name.clone(),
            version: spec.version.clone(),
            strategy: spec.strategy,
            environment: spec.environment.clone(),
            provider: self.inner.provider.kind(),
            dry_run: opts.dry_run,
            spec_json: serde_json::to_string(&spec).unwrap_or_default(),
            plan_json: serde_json::to_string(&plan).unwrap_or_default(),
            initiator: opts.initiator.clone(),
        };
        let targets = self.targets(&spec, dry);
        // The platform's lease (where other machines drive it too) before the store's lock:
        // a refusal there records nothing.
        let leased = self.take_lease(&spec, &targets).await;
        if let Err(refusal) = leased {
            return Err(self.refuse_deploy(&spec, &opts, refusal).await);
        }
        if let Err(refusal) = self.adopt_found(&mut found).await {
            self.give_lease_back(&spec.id, &targets).await;
            return Err(self.refuse_deploy(&spec, &opts, refusal).await);
        }
        let held = targets.clone();
        let created = store
            .call(move |s| s.create_run_holding(&new_run, &held, None))
            .await;
        let run_id = match created {
            Ok(Ok(id)) => id,
            Ok(Err(holder)) => {
                self.give_lease_back(&spec.id, &targets).await;
                return Err(self
                    .refuse_deploy(&spec, &opts, Refusal::from(holder))
                    .await);
            }
            Err(e) => {
                self.give_lease_back(&spec.id, &targets).await;
                return Err(e.into());
            }
        };
        if let Some(p) = promotion {
            let (dep, to, by) = (
                spec.id.clone(),
                spec.environment.clone(),
                opts.initiator.clone(),
            );
            store
                .call(move |s| {
                    s.record_promotion(
                        run_id,
                        &dep,
                        &p.from_env,
                        &to,
                        p.source_run,
                        &by,
                        p.override_reason.as_deref(),
                    )?;
                    s.append_audit(&crate::store::audit::Entry {
                        actor: by.clone(),
                        action: "promote.env".into(),
                        deployment: dep.clone(),
                        run: Some(run_id),
                        environment: to.clone(),
                        detail: serde_json::json!({"from": p.from_env, "to": to,
                            "source_run": p.source_run, "override_reason": p.override_reason}),
                    })
                    .map(|_| ())
                })
                .await?;
        }
        self.record_found(run_id, &spec, gone, &found, &mut previous)
            .await?;
        let mut comps = Vec::new();
        for c in spec.ordered_components() {
            let rev = crate::store::NewRevision {
                run: run_id,
                component: c.id.clone(),
                environment: spec.environment.clone(),
                version: spec.version.clone(),
                dry_run: dry,
                replicas: c.replicas,
                config_json: serde_json::to_string(c).unwrap_or_default(),
            };
            let (_, key) = store.call(move |s| s.insert_revision(&rev)).await?;
            comps.push(run::CompState::new(
                c.clone(),
                RevisionKey(key),
                previous.get(&c.id),
            ));
        }
        Ok(self.spawn_run(spec, plan, run_id, opts, comps, Begin::Fresh))
    }

    /// Audit a refused start, and the refusal as the error to return.
    async fn refuse_deploy(
        &self,
        spec: &ValidSpec,
        opts: &RunOptions,
        refusal: Refusal,
    ) -> EngineError {
        self.audit(crate::store::audit::Entry {
            actor: opts.initiator.clone(),
            action: "refused".into(),
            deployment: spec.id.clone(),
            run: None,
            environment: spec.environment.clone(),
            detail: serde_json::json!({"command": "deploy", "reason": refusal.to_string()}),
        })
        .await;
        EngineError::Refused(refusal)
    }

    /// The targets a run of `spec` drives: each component in its environment on this engine's
    /// provider (a dry run's simulated world apart from a real one).
    pub(super) fn targets(&self, spec: &ValidSpec, dry_run: bool) -> Vec<String> {
        let provider = self.inner.provider.kind();
        spec.components
            .iter()
            .map(|c| {
                format!(
                    "{provider}{}:{}:{}",
                    if dry_run { "(dry run)" } else { "" },
                    spec.environment,
                    c.id
                )
            })
            .collect()
    }

    /// Register a run's command channel and start its task: from the first step, or (`resume_by`)
    /// from the step an adopted run was in. The task deregisters the run when it ends.
    pub(super) fn spawn_run(
        &self,
        spec: ValidSpec,
        plan: Plan,
        run_id: i64,
        opts: RunOptions,
        comps: Vec<run::CompState>,
        begin: Begin,
    ) -> RunHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_runs().insert(run_id, tx);
        // The platform's lease, if it has one, is renewed while the run is driven here and
        // given back when it has ended (not when this process stops: it then expires).
        let lease = self.inner.provider.lease().map(|l| {
            let targets = self.targets(&spec, opts.dry_run);
            let holder = self.lease_holder(&spec.id);
            let renewing = tokio::spawn(renew(
                self.clone(),
                l.clone(),
                targets.clone(),
                holder.clone(),
                run_id,
            ));
            (l, targets, holder, AbortOnDrop(renewing))
        });
        let mut runner = run::Run::new(self.clone(), spec, plan.clone(), run_id, opts, comps, rx);
        let engine = self.clone();
        // Every line a run logs carries its deployment, run and step (JSON logs: in `span`).
        let span = tracing::info_span!(
            "run",
            deployment = %plan.deployment,
            run = run_id,
            step = tracing::field::Empty
        );
        let join = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let outcome = match begin {
                    Begin::Fresh => runner.execute().await,
                    Begin::Resume { step, by } => {
                        runner.step = step;
                        runner.resume_adopted(by).await
                    }
                    Begin::RollBack { by, intent } => runner.resume_rollback(by, intent).await,
                };
                engine.lock_runs().remove(&run_id);
                if let Some((l, targets, holder, renewing)) = lease {
                    drop(renewing);
                    l.release(&targets, &holder).await;
                }
                outcome
            },
            span,
        ));
        RunHandle {
            run_id,
            deployment: plan.deployment.clone(),
            plan,
            join,
        }
    }
}

impl Engine {
    /// Who this engine is, as a platform's lease names its holder.
    pub(super) fn lease_holder(&self, deployment: &str) -> LeaseHolder {
        let host = crate::identity::host_name();
        LeaseHolder {
            deployment: deployment.to_string(),
            identity: format!(
                "{} pid {} on {host} (state {})",
                crate::identity::current_user(),
                std::process::id(),
                self.inner.store.path().display()
            ),
        }
    }

    /// Take the platform's lease on `targets`, where the provider has one.
    pub(super) async fn take_lease(
        &self,
        spec: &ValidSpec,
        targets: &[String],
    ) -> Result<(), Refusal> {
        let Some(l) = self.inner.provider.lease() else {
            return Ok(());
        };
        l.acquire(targets, &self.lease_holder(&spec.id))
            .await
            .map_err(|e| Refusal::Leased(e.to_string()))
    }

    /// Give back a lease taken for a run that was not recorded after all.
    pub(super) async fn give_lease_back(&self, deployment: &str, targets: &[String]) {
        if let Some(l) = self.inner.provider.lease() {
            l.release(targets, &self.lease_holder(deployment)).await;
        }
    }
}

/// Aborts its task when dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renew a run's lease every third of its time to live. A failure is logged and tried again;
/// once the lease is lost (another driver holds it, or no renewal has succeeded for its whole
/// time to live, so another may have taken it), the run is held (paused with the cause, as its
/// owner) so that two drivers never move one target; an operator resumes it once the platform
/// answers again, and it is held again if the lease is still lost.
pub(super) async fn renew(
    engine: Engine,
    lease: Arc<dyn TargetLease>,
    targets: Vec<String>,
    holder: LeaseHolder,
    run: i64,
) {
    let every = (lease.ttl() / 3).max(Duration::from_millis(100));
    let mut renewed = tokio::time::Instant::now();
    // A hold asked and not yet seen (the run reads commands between its steps).
    let mut asked = false;
    loop {
        tokio::time::sleep(every).await;
        let e = match lease.renew(&targets, &holder).await {
            Ok(()) => {
                renewed = tokio::time::Instant::now();
                asked = false;
                continue;
            }
            Err(e) => e,
        };
        tracing::error!(run, "cannot renew the platform's lease: {e}");
        let lost = matches!(e, LeaseError::Held(_)) || renewed.elapsed() >= lease.ttl();
        let status = engine.inner.snapshots.borrow().get(&run).map(|s| s.status);
        // A rollback is not held: it is the way back to what served, and it ends by itself.
        if status == Some(crate::store::Status::Paused) {
            asked = false;
        }
        let holdable = !matches!(
            status,
            Some(crate::store::Status::Paused | crate::store::Status::RollingBack)
        );
        if lost && holdable && !asked {
            asked = true;
            let reason = format!(
                "held by cutover: the platform's lease on {} was lost ({e}); no two drivers move a \
                 target: resume once the platform answers and the lease is free",
                targets.join(", ")
            );
            // Asked without waiting for the run's answer (it reads commands between its
            // steps): the renewals go on meanwhile.
            let engine = engine.clone();
            tokio::spawn(async move {
                if let Err(err) = engine
                    .send(run, super::Command::Hold { reason }, "engine", true)
                    .await
                {
                    tracing::warn!(run, "cannot hold the run after losing its lease: {err}");
                }
            });
        }
    }
}

/// Where a spawned run begins.
pub(super) enum Begin {
    /// A new run, from its first step.
    Fresh,
    /// An adopted run going forward from this step.
    Resume { step: usize, by: String },
    /// An adopted run that was rolling back: it goes on with this rollback.
    RollBack {
        by: String,
        intent: super::event::RollbackIntent,
    },
}

/// Put an approval gate before the first step (the environment's `beforeStart`).
fn add_before_start_gate(plan: &mut Plan) {
    let Some(component) = plan.steps.first().map(|s| s.component.clone()) else {
        return;
    };
    plan.steps.insert(
        0,
        crate::plan::Step {
            index: 0,
            component,
            action: crate::plan::Action::Gate {
                name: BEFORE_START.into(),
            },
            description: format!(
                "gate {BEFORE_START}: wait for approval before any change (beforeStart)"
            ),
            on_failure: "nothing has changed; the deployment ends".into(),
        },
    );
    for (i, s) in plan.steps.iter_mut().enumerate() {
        s.index = i;
    }
    plan.gates += 1;
}

/// The name of the environment's gate before any change.
pub const BEFORE_START: &str = "before-start";
