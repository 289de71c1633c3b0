//! One deployment run: executes its plan step by step over the provider, judging signals,
//! waiting at gates, obeying commands, and ending in exactly one outcome.
//!
//! Owns: the run's state machine (current step, pause, promote, gate) and journaling what it does.
//! Must not touch: other runs, the UI, or how signals are measured.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::*;
use super::signals::Verdict;
use super::state::{RunState, Transition};
use super::{Engine, Envelope, RunOptions};
use crate::plan::{Action, Plan};
use crate::provider::{RevisionKey, RevisionSpec};
use crate::spec::{human, Component, Replicas, Strategy, ValidSpec};
use crate::store::{RevisionRow, RevisionState};

/// The previous revision of a component, as the run knows it.
#[derive(Debug, Clone)]
pub(crate) struct OldRev {
    pub key: RevisionKey,
    pub version: String,
    pub replicas: Replicas,
    pub component: Component,
    /// Instances still running.
    pub running: bool,
}

/// A component's state during a run.
#[derive(Debug, Clone)]
pub(crate) struct CompState {
    pub comp: Component,
    pub new_key: RevisionKey,
    pub new_replicas: u32,
    pub new_weight: u32,
    /// The new revision's share as the platform reached it, where it differs from the weight
    /// asked (a replica ratio).
    pub new_achieved: Option<f64>,
    pub old: Option<OldRev>,
    /// The run has changed something for this component.
    pub touched: bool,
}

impl CompState {
    pub fn new(comp: Component, new_key: RevisionKey, prev: Option<&RevisionRow>) -> CompState {
        let old = prev.map(|r| OldRev {
            key: RevisionKey(r.rev_key.clone()),
            version: r.version.clone(),
            replicas: r.replicas,
            component: super::component_of(r).unwrap_or_else(|| comp.clone()),
            running: true,
        });
        CompState {
            comp,
            new_key,
            new_replicas: 0,
            new_weight: 0,
            new_achieved: None,
            old,
            touched: false,
        }
    }

    pub fn weights(&self, version: &str) -> Vec<Weight> {
        let mut w = Vec::new();
        if let Some(o) = &self.old {
            if o.running {
                w.push(Weight {
                    revision: o.key.0.clone(),
                    version: o.version.clone(),
                    weight: 100 - self.new_weight.min(100),
                    achieved: self.new_achieved.map(|a| 100.0 - a),
                });
            }
        }
        if self.new_replicas > 0 || self.new_weight > 0 {
            w.push(Weight {
                revision: self.new_key.0.clone(),
                version: version.to_string(),
                weight: self.new_weight,
                achieved: self.new_achieved,
            });
        }
        w
    }
}

/// When a gate opened, on the engine's clock and on the wall's; which one counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateClock {
    pub engine: Instant,
    pub wall_start: std::time::Instant,
    /// Count real time (a dry run that people decide).
    pub wall: bool,
}

impl GateClock {
    pub fn start(wall: bool) -> GateClock {
        GateClock {
            engine: Instant::now(),
            wall_start: std::time::Instant::now(),
            wall,
        }
    }

    pub fn elapsed(&self) -> Duration {
        if self.wall {
            self.wall_start.elapsed()
        } else {
            self.engine.elapsed()
        }
    }
}

/// Why a step could not go on.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Something failed: roll back (if allowed) with this reason.
    Fail(Cause, String),
    /// An operator (or a gate's escalation, `cause` timeout) asked for a rollback.
    Rollback {
        to: Option<String>,
        by: String,
        cause: Cause,
    },
    /// Stop before anything changed (a pre-deployment check failed): no rollback needed.
    Abort(Cause, String),
}

pub(crate) struct Run {
    pub engine: Engine,
    pub spec: ValidSpec,
    pub plan: Plan,
    pub run_id: i64,
    pub opts: RunOptions,
    pub comps: Vec<CompState>,
    pub rx: mpsc::UnboundedReceiver<Envelope>,
    /// Status, pause, gate and outcome, changed only through [`Run::transition`].
    pub state: RunState,
    pub step: usize,
    pub last_verdicts: Vec<Verdict>,
    pub started: Instant,
    /// Counts toward the analysis limits, per signal.
    pub tallies: std::collections::BTreeMap<String, super::decide::Tally>,
    /// Restart counts already reported, per instance.
    pub restarts_seen: std::collections::HashMap<String, u32>,
    /// Instance health per revision key, as last seen.
    pub health: std::collections::BTreeMap<String, Vec<InstanceHealth>>,
    /// Requests per second per revision key, as last measured by the provider.
    pub measured: std::collections::BTreeMap<String, f64>,
    /// Revision states a rollback settled, recorded with the run's end in one transaction.
    pub settled: Vec<(String, RevisionState)>,
    /// The gate being waited at: its rule, votes and escalation, and when it opened.
    pub gate_state: Option<(crate::governance::gate::Gate, GateClock)>,
    /// The rollback under way, journaled with every snapshot from before it acts.
    pub rolling_back: Option<RollbackIntent>,
    /// Why the run is ending, once it is stopping (its `finished` event records it).
    pub cause: Option<Cause>,
}

impl Run {
    pub fn new(
        engine: Engine,
        spec: ValidSpec,
        plan: Plan,
        run_id: i64,
        opts: RunOptions,
        comps: Vec<CompState>,
        rx: mpsc::UnboundedReceiver<Envelope>,
    ) -> Run {
        Run {
            engine,
            spec,
            plan,
            run_id,
            opts,
            comps,
            rx,
            state: RunState::new(),
            step: 0,
            last_verdicts: Vec::new(),
            started: Instant::now(),
            tallies: std::collections::BTreeMap::new(),
            restarts_seen: std::collections::HashMap::new(),
            health: std::collections::BTreeMap::new(),
            measured: std::collections::BTreeMap::new(),
            gate_state: None,
            settled: Vec::new(),
            rolling_back: None,
            cause: None,
        }
    }

    /// Change the run's state. A transition the state refuses is a bug in the run's own flow
    /// (commands check theirs first): it is logged and changes nothing.
    pub(crate) fn transition(&mut self, t: Transition) {
        let what = format!("{t:?}");
        if let Err(why) = self.state.apply(t) {
            tracing::error!(run = self.run_id, "transition {what} refused: {why}");
        }
    }

    /// Journal an event, update the snapshot, broadcast it. The line goes to the engine's
    /// ordered journal queue: while the store is healthy it is written before the broadcast
    /// (bounded), while it is not the run goes on at once and the writer catches up later.
    pub async fn emit(&mut self, kind: EventKind) {
        let ev = self.event(kind);
        tracing::info!(event = ev.kind.name(), "{}", ev.kind.name());
        let written = self.journal_event(&ev, Vec::new());
        self.engine.journal_settle(written).await;
        self.broadcast(ev);
    }

    fn event(&self, kind: EventKind) -> Event {
        Event {
            ts: self
                .engine
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            deployment: self.spec.id.clone(),
            run: self.run_id,
            kind,
        }
    }

    /// Queue `before` then the event's line, its audit record and the run's state.
    fn journal_event(
        &self,
        ev: &Event,
        mut writes: Vec<crate::store::Write>,
    ) -> tokio::sync::oneshot::Receiver<()> {
        use crate::store::Write;
        writes.push(Write::Event {
            run: self.run_id,
            ts: ev.ts.clone(),
            kind: ev.kind.name().to_string(),
            json: serde_json::to_string(ev).unwrap_or_default(),
        });
        if let Some(a) = super::audit_entry(ev, &self.spec.environment, &self.opts.initiator) {
            writes.push(Write::Audit(a));
        }
        writes.push(Write::RunState {
            run: self.run_id,
            status: self.state.status(),
            step: self.step,
            snapshot_json: serde_json::to_string(&self.snapshot()).unwrap_or_default(),
        });
        self.engine.journal(&self.spec.id, writes)
    }

    /// Update the snapshot and broadcast the event.
    fn broadcast(&self, ev: Event) {
        let snap = self.snapshot();
        self.engine.inner.snapshots.send_modify(|m| {
            m.insert(self.run_id, snap);
        });
        self.engine.publish(ev);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            deployment: self.spec.id.clone(),
            run: self.run_id,
            version: self.spec.version.clone(),
            strategy: self.spec.strategy,
            environment: self.spec.environment.clone(),
            status: self.state.status(),
            step: self.step,
            steps: self.plan.steps.len(),
            step_description: self
                .plan
                .steps
                .get(self.step)
                .map(|s| s.description.clone())
                .unwrap_or_default(),
            gate: self.state.gate().map(str::to_string),
            gate_view: self.gate_state.as_ref().map(|(g, opened)| {
                let waited = opened.elapsed();
                let mut v = g.view(waited.as_millis() as u64);
                let now = if opened.wall {
                    chrono::Utc::now()
                } else {
                    self.engine.now()
                };
                let at = now - chrono::Duration::from_std(waited).unwrap_or_default();
                v.opened_at = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                v
            }),
            traffic: self
                .comps
                .iter()
                .map(|c| {
                    let weights = c.weights(&self.spec.version);
                    let measured_rps = weights
                        .iter()
                        .filter_map(|w| {
                            self.measured
                                .get(&w.revision)
                                .map(|r| (w.revision.clone(), *r))
                        })
                        .collect();
                    ComponentTraffic {
                        component: c.comp.id.clone(),
                        weights,
                        measured_rps,
                    }
                })
                .collect(),
            instances: self.health.values().flatten().cloned().collect(),
            last_verdicts: self.last_verdicts.clone(),
            reason: self.state.reason().map(str::to_string),
            outcome: self.state.outcome(),
            rolling_back: self.rolling_back.clone(),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        match self.spec.strategy {
            Strategy::Canary => self
                .spec
                .canary()
                .analysis_interval
                .duration()
                .max(Duration::from_millis(100)),
            Strategy::BlueGreen | Strategy::Rolling | Strategy::Recreate => Duration::from_secs(10),
        }
    }

    fn deadline(&self) -> Duration {
        self.spec.progress_deadline().duration()
    }

    pub async fn execute(mut self) -> Outcome {
        self.transition(Transition::Start);
        let started = EventKind::Started {
            version: self.spec.version.clone(),
            strategy: self.spec.strategy.to_string(),
            environment: self.spec.environment.clone(),
            provider: self.engine.inner.provider.kind().to_string(),
            steps: self.plan.steps.len(),
            dry_run: self.opts.dry_run,
            initiator: self.opts.initiator.clone(),
            baseline: self.plan.baseline.clone(),
        };
        self.emit(started).await;
        self.steps_from(0).await
    }

    /// Go on with an adopted run from the step it was interrupted in (that step runs again:
    /// every step is idempotent), as `by` asked.
    pub async fn resume_adopted(mut self, by: String) -> Outcome {
        self.transition(Transition::Start);
        let from = self.step;
        self.emit(EventKind::Resumed { by }).await;
        self.steps_from(from).await
    }

    /// Go on with the rollback an adopted run was doing when its process went away: the same
    /// reason and targets, from the traffic it had reached.
    pub async fn resume_rollback(mut self, by: String, intent: RollbackIntent) -> Outcome {
        let (reason, to) = (intent.reason.clone(), intent.to.clone());
        self.cause = intent.cause;
        self.rolling_back = Some(intent);
        self.transition(Transition::RollBack);
        self.emit(EventKind::Resumed { by }).await;
        self.rollback(reason, to).await
    }

    async fn steps_from(mut self, from: usize) -> Outcome {
        let steps = self.plan.steps.clone();
        for step in steps.iter().filter(|s| s.index >= from) {
            self.step = step.index;
            tracing::Span::current().record("step", step.index + 1);
            let Some(ci) = self.comps.iter().position(|c| c.comp.id == step.component) else {
                continue;
            };
            if let Err(stop) = self.hold_if_paused().await {
                return self.stop(stop).await;
            }
            self.emit(EventKind::StepStarted {
                step: step.index,
                component: step.component.clone(),
                description: step.description.clone(),
            })
            .await;
            if let Err(stop) = self.do_step(ci, &step.action).await {
                return self.stop(stop).await;
            }
            self.emit(EventKind::StepCompleted {
                step: step.index,
                component: step.component.clone(),
            })
            .await;
        }
        self.succeed().await
    }

    async fn do_step(&mut self, ci: usize, action: &Action) -> Result<(), Stop> {
        let provider = self.engine.inner.provider.clone();
        match action {
            Action::StartRevision { replicas } | Action::ScaleNew { replicas } => {
                self.comps[ci].touched = true;
                let rev = self.rev_spec(ci);
                provider
                    .apply_revision(&rev, *replicas)
                    .await
                    .map_err(|e| {
                        Stop::Fail(
                            Cause::Error,
                            format!("{}: cannot start {}: {e}", rev.component.id, rev.key),
                        )
                    })?;
                self.comps[ci].new_replicas = *replicas;
                let key = self.comps[ci].new_key.clone();
                self.wait_ready(ci, &key, *replicas).await?;
                self.check(ci).await
            }
            Action::ScaleOld { replicas } => {
                if let Some(old) = self.comps[ci].old.clone() {
                    let rev = self.old_spec(ci, &old);
                    provider
                        .apply_revision(&rev, *replicas)
                        .await
                        .map_err(|e| {
                            Stop::Fail(
                                Cause::Error,
                                format!("{}: cannot scale {}: {e}", old.component.id, old.key),
                            )
                        })?;
                }
                Ok(())
            }
            Action::ShiftTraffic { percent } => {
                self.comps[ci].touched = true;
                self.set_new_weight(ci, *percent).await?;
                self.check(ci).await
            }
            Action::Analyse { label, duration_ms } => {
                if self.state.promoting() {
                    return Ok(());
                }
                self.analyse(ci, label, Duration::from_millis(*duration_ms))
                    .await
            }
            Action::Gate { name } => {
                if self.state.promoting() {
                    return Ok(());
                }
                self.gate(ci, name).await
            }
            Action::StopOld => {
                self.comps[ci].touched = true;
                if let Some(old) = self.comps[ci].old.clone() {
                    let comp = self.comps[ci].comp.id.clone();
                    provider.set_weights(&comp, &[]).await.map_err(|e| {
                        Stop::Fail(
                            Cause::Error,
                            format!("{comp}: cannot take {} off traffic: {e}", old.key),
                        )
                    })?;
                    provider
                        .retire_revision(&comp, &old.key)
                        .await
                        .map_err(|e| {
                            Stop::Fail(
                                Cause::Error,
                                format!("{comp}: cannot stop {}: {e}", old.key),
                            )
                        })?;
                    if let Some(o) = self.comps[ci].old.as_mut() {
                        o.running = false;
                    }
                }
                Ok(())
            }
            Action::PreChecks => self.checks(true).await,
            Action::PostChecks => self.checks(false).await,
            Action::RetireOld => {
                if let Some(old) = self.comps[ci].old.clone() {
                    let comp = self.comps[ci].comp.id.clone();
                    provider
                        .retire_revision(&comp, &old.key)
                        .await
                        .map_err(|e| {
                            Stop::Fail(
                                Cause::Error,
                                format!("{comp}: cannot retire {}: {e}", old.key),
                            )
                        })?;
                    if let Some(o) = self.comps[ci].old.as_mut() {
                        o.running = false;
                    }
                    // The store records it retired when the run finishes, in the same
                    // transaction that makes the new revision active: it never says that
                    // nothing serves.
                }
                Ok(())
            }
        }
    }

    /// Run the pre- or post-deployment checks; a failure aborts (pre) or fails the run (post).
    async fn checks(&mut self, pre: bool) -> Result<(), Stop> {
        let v = &self.spec.validation;
        let (category, items) = if pre {
            ("preDeployment", v.pre_deployment.clone())
        } else {
            ("postDeployment", v.post_deployment.clone())
        };
        let mut revisions = std::collections::BTreeMap::new();
        let mut serving = Vec::new();
        for c in &self.comps {
            match (pre, c.old.as_ref().filter(|o| o.running)) {
                (true, Some(o)) => {
                    revisions.insert(c.comp.id.clone(), o.key.clone());
                    serving.push(c.comp.id.clone());
                }
                (true, None) => {}
                (false, _) => {
                    revisions.insert(c.comp.id.clone(), c.new_key.clone());
                    serving.push(c.comp.id.clone());
                }
            }
        }
        let target = crate::verify::Target {
            spec: self.spec.spec().clone(),
            provider: Some(self.engine.inner.provider.clone()),
            revisions,
            serving,
            exe: std::env::current_exe().unwrap_or_default(),
        };
        let results = crate::verify::run_category(category, &items, &target).await;
        let bad: Vec<String> = results
            .iter()
            .filter(|r| {
                matches!(
                    r.status,
                    crate::verify::CheckStatus::Fail | crate::verify::CheckStatus::Error
                )
            })
            .map(|r| format!("{}: {}", r.name, r.evidence))
            .collect();
        self.emit(EventKind::Checks {
            category: category.to_string(),
            results,
            passed: bad.is_empty(),
        })
        .await;
        if bad.is_empty() {
            return Ok(());
        }
        let what = if pre {
            "pre-deployment"
        } else {
            "post-deployment"
        };
        let reason = format!("{what} check failed: {}", bad.join("; "));
        if pre {
            Err(Stop::Abort(Cause::Check, reason))
        } else {
            Err(Stop::Fail(Cause::Check, reason))
        }
    }

    pub fn rev_spec(&self, ci: usize) -> RevisionSpec {
        let c = &self.comps[ci];
        RevisionSpec {
            key: c.new_key.clone(),
            deployment: self.spec.id.clone(),
            version: self.spec.version.clone(),
            environment: self.spec.environment.clone(),
            component: c.comp.clone(),
            run: self.run_id,
            step: self.step,
        }
    }

    pub fn old_spec(&self, _ci: usize, old: &OldRev) -> RevisionSpec {
        RevisionSpec {
            key: old.key.clone(),
            deployment: self.spec.id.clone(),
            version: old.version.clone(),
            environment: self.spec.environment.clone(),
            component: old.component.clone(),
            run: self.run_id,
            step: self.step,
        }
    }

    async fn set_new_weight(&mut self, ci: usize, percent: u32) -> Result<(), Stop> {
        let c = &self.comps[ci];
        let mut weights = Vec::new();
        if let Some(o) = c.old.as_ref().filter(|o| o.running) {
            weights.push((o.key.clone(), 100 - percent.min(100)));
        }
        weights.push((c.new_key.clone(), percent));
        let comp = c.comp.id.clone();
        let split = self
            .engine
            .inner
            .provider
            .set_weights(&comp, &weights)
            .await
            .map_err(|e| {
                Stop::Fail(
                    Cause::Error,
                    format!("{comp}: cannot set traffic weights: {e}"),
                )
            })?;
        self.comps[ci].new_weight = percent;
        self.comps[ci].new_achieved = split.of(&self.comps[ci].new_key);
        let w = self.comps[ci].weights(&self.spec.version);
        self.emit(EventKind::TrafficShifted {
            component: comp,
            weights: w,
        })
        .await;
        Ok(())
    }

    pub(crate) fn remember_health(
        &mut self,
        component: &str,
        key: &RevisionKey,
        version: &str,
        st: &crate::provider::RevisionStatus,
    ) {
        let list = st
            .instances
            .iter()
            .map(|i| InstanceHealth {
                component: component.to_string(),
                revision: key.0.clone(),
                version: version.to_string(),
                status: i.clone(),
            })
            .collect();
        self.health.insert(key.0.clone(), list);
        // Forget revisions that are gone.
        let live: Vec<String> = self
            .comps
            .iter()
            .flat_map(|c| {
                let mut v = vec![c.new_key.0.clone()];
                if let Some(o) = c.old.as_ref().filter(|o| o.running) {
                    v.push(o.key.0.clone());
                }
                v
            })
            .collect();
        self.health.retain(|k, _| live.contains(k));
    }

    /// Report instances that restarted since we last looked.
    pub(crate) async fn report_restarts(
        &mut self,
        component: &str,
        st: &crate::provider::RevisionStatus,
    ) {
        for i in &st.instances {
            let seen = self.restarts_seen.get(&i.id).copied().unwrap_or(0);
            if i.restarts > seen {
                self.restarts_seen.insert(i.id.clone(), i.restarts);
                self.emit(EventKind::InstanceRestarted {
                    component: component.to_string(),
                    instance: i.id.clone(),
                    restarts: i.restarts,
                    detail: i.detail.clone().unwrap_or_else(|| "restarted".into()),
                })
                .await;
            }
        }
    }

    /// Wait until `want` instances of a revision are ready, within the progress deadline.
    async fn wait_ready(&mut self, ci: usize, key: &RevisionKey, want: u32) -> Result<(), Stop> {
        let comp = self.comps[ci].comp.id.clone();
        let mut budget = self.deadline();
        let poll = Duration::from_millis(500);
        let mut last_judged = Instant::now();
        loop {
            let st = self
                .engine
                .inner
                .provider
                .revision_status(&comp, key)
                .await
                .map_err(|e| Stop::Fail(Cause::Error, format!("{comp}: {e}")))?;
            self.report_restarts(&comp, &st).await;
            if st.ready() >= want {
                self.emit(EventKind::InstancesReady {
                    component: comp,
                    revision: key.0.clone(),
                    ready: st.ready(),
                    desired: want,
                })
                .await;
                return Ok(());
            }
            if st.unhealthy() > 0 {
                let detail = st
                    .instances
                    .iter()
                    .find_map(|i| i.detail.clone())
                    .unwrap_or_default();
                return Err(Stop::Fail(
                    Cause::Health,
                    format!(
                        "{comp}: {} of {want} instance(s) of {key} unhealthy: {detail}",
                        st.unhealthy()
                    ),
                ));
            }
            if budget.is_zero() {
                // Why the others are not ready, where the platform says (a pod waiting for a
                // node, a readiness probe failing).
                let why = st
                    .instances
                    .iter()
                    .filter(|i| !i.ready)
                    .find_map(|i| i.detail.clone())
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                return Err(Stop::Fail(Cause::Timeout, format!(
                    "{comp}: progress deadline exceeded: {}/{want} instance(s) of {key} ready after {}{why}",
                    st.ready(),
                    human(self.deadline().as_millis() as u64)
                )));
            }
            let t0 = Instant::now();
            self.sleep_handling(poll.min(budget)).await?;
            if !self.state.paused() {
                budget = budget.saturating_sub(t0.elapsed());
            }
            self.hold_if_paused().await?;
            // While the canary already takes traffic, keep judging it (triggers are continuous).
            if self.comps[ci].new_weight > 0 && last_judged.elapsed() >= self.interval() {
                last_judged = Instant::now();
                let verdicts = self.judge(ci).await;
                self.decide(verdicts, false, "", None).await?;
            }
        }
    }

    /// Hold for `total`, judging signals every interval; the time paused does not count.
    async fn analyse(&mut self, ci: usize, label: &str, total: Duration) -> Result<(), Stop> {
        let mut remaining = total;
        let interval = self.interval();
        while !remaining.is_zero() {
            self.hold_if_paused().await?;
            if self.state.promoting() {
                return Ok(());
            }
            let tick = interval.min(remaining);
            let t0 = Instant::now();
            self.sleep_handling(tick).await?;
            remaining = remaining.saturating_sub(t0.elapsed().min(tick));
            if self.state.promoting() {
                return Ok(());
            }
            let next = (!remaining.is_zero()).then(|| interval.min(remaining));
            let verdicts = self.judge(ci).await;
            self.decide(verdicts, remaining.is_zero(), label, next)
                .await?;
        }
        Ok(())
    }

    async fn succeed(self) -> Outcome {
        let mut revisions: Vec<(String, RevisionState)> = self
            .comps
            .iter()
            .filter_map(|c| {
                c.old
                    .as_ref()
                    .map(|o| (o.key.0.clone(), RevisionState::Retired))
            })
            .collect();
        revisions.extend(
            self.comps
                .iter()
                .map(|c| (c.new_key.0.clone(), RevisionState::Active)),
        );
        let reason = if self.state.promoting() {
            format!("{} promoted to 100% by operator", self.spec.version)
        } else {
            format!("{} serves 100% of traffic", self.spec.version)
        };
        self.finish_with(Outcome::Succeeded, reason, revisions)
            .await
    }

    /// End the run, recording the new revisions as `status` (when they ended up anywhere but
    /// active or retired: failed, rolled back).
    pub async fn finish(mut self, outcome: Outcome, reason: String) -> Outcome {
        let mut revisions = match outcome {
            Outcome::Succeeded => Vec::new(),
            Outcome::RolledBack => self.new_revisions(RevisionState::RolledBack),
            Outcome::Failed => self.new_revisions(RevisionState::Failed),
        };
        // What a rollback settled per component (its target active, what it replaced retired)
        // is more precise than the outcome's mark.
        for (key, state) in std::mem::take(&mut self.settled) {
            revisions.retain(|(k, _)| *k != key);
            revisions.push((key, state));
        }
        self.finish_with(outcome, reason, revisions).await
    }

    fn new_revisions(&self, state: RevisionState) -> Vec<(String, RevisionState)> {
        self.comps
            .iter()
            .map(|c| (c.new_key.0.clone(), state))
            .collect()
    }

    /// Record the outcome and where each revision now stands in one transaction (a failure half
    /// way would leave the next deployment planned as a first one), then tell everyone. The end
    /// goes through the journal's queue like every line (a rollback never waits on the disk):
    /// the run waits up to [`FINISH_FLUSH`] for it to be written, and its last line says when
    /// it is not yet (the writer keeps trying while the process lives; see `Engine::shutdown`).
    async fn finish_with(
        mut self,
        outcome: Outcome,
        reason: String,
        revisions: Vec<(String, RevisionState)>,
    ) -> Outcome {
        self.transition(Transition::Finish(outcome, reason.clone()));
        let cause = (outcome != Outcome::Succeeded).then_some(self.cause.unwrap_or_default());
        tracing::info!(
            event = "finished",
            outcome = outcome.as_str(),
            cause = cause.map(Cause::as_str),
            "finished: {reason}"
        );
        let mut ev = self.event(EventKind::Finished {
            outcome,
            reason: reason.clone(),
            cause,
            by_run: None,
            journal: None,
        });
        let end = crate::store::Write::Finish {
            run: self.run_id,
            outcome,
            reason,
            revisions,
        };
        drop(self.journal_event(&ev, vec![end]));
        let flushed = self.engine.flush_journal(FINISH_FLUSH).await;
        if let EventKind::Finished { journal, .. } = &mut ev.kind {
            *journal = self.engine.journal_note(self.run_id, flushed);
        }
        self.broadcast(ev);
        outcome
    }
}

/// How long a run's end waits for its journal to be written before it is reported anyway.
pub const FINISH_FLUSH: Duration = Duration::from_secs(2);
