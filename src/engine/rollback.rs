//! Rolling back: choosing a target that may be returned to, planning, and executing the return.
//!
//! Owns: the rollback procedure of a run (automatic or by command; standalone rollback runs of
//! finished deployments are `standalone`). Never rolls back a rollback; never targets a revision
//! that failed or was rolled back. Must not touch: forward strategy steps.

use std::time::Duration;

use tokio::time::Instant;

use super::event::*;
use super::refusal::Refusal;
use super::run::{OldRev, Run, Stop};
use super::state::Transition;
use crate::provider::{Provider, RevisionKey, RevisionSpec};
use crate::spec::{human, RollbackKind};
use crate::store::{RevisionRow, RevisionState, Store};

/// Where one component goes back to.
#[derive(Debug, Clone)]
struct Target {
    ci: usize,
    rev: Option<OldRev>,
}

/// The newest good revision of a component with this version (not the one being replaced), if
/// the provider can start it again.
pub(super) fn find_version(
    provider: &dyn Provider,
    store: &Store,
    comp: &str,
    env: &str,
    dry_run: bool,
    version: &str,
    exclude: &str,
) -> Result<RevisionRow, Refusal> {
    let revs = store.revisions(comp, env, dry_run)?;
    let matching: Vec<&RevisionRow> = revs
        .iter()
        .filter(|r| r.version == version && r.rev_key != exclude)
        .collect();
    if matching.is_empty() {
        let known: Vec<String> = revs
            .iter()
            .map(|r| format!("{} ({})", r.version, r.status))
            .collect();
        return Err(Refusal::NotFound(format!(
            "no revision of {comp} with version {version} is recorded in {env}{}",
            if known.is_empty() {
                String::new()
            } else {
                format!("; known: {}", known.join(", "))
            }
        )));
    }
    match matching.iter().find(|r| !r.is_bad()) {
        Some(r) => {
            let Some(comp) = super::component_of(r) else {
                return Err(Refusal::Target(format!(
                    "{}: its configuration is not recorded; cannot restart it",
                    r.rev_key
                )));
            };
            // What it runs must still be there to be started again.
            if let Err(e) = provider.can_restart(&comp) {
                return Err(Refusal::Target(format!(
                    "{}: its command is no longer present: {e}",
                    r.rev_key
                )));
            }
            Ok((*r).clone())
        }
        None => Err(Refusal::Target(format!(
            "refusing: {} was {} (a rollback never targets a revision that failed or was rolled back)",
            matching[0].rev_key, matching[0].status
        ))),
    }
}

fn old_from_row(r: &RevisionRow) -> Option<OldRev> {
    Some(OldRev {
        key: RevisionKey(r.rev_key.clone()),
        version: r.version.clone(),
        replicas: r.replicas,
        component: super::component_of(r)?,
        running: false,
    })
}

impl Run {
    /// Can the run roll back to this version? Explains a refusal.
    pub(crate) async fn check_target(&self, version: &str) -> Result<(), Refusal> {
        let store = self.engine.inner.store.clone();
        let env = self.spec.environment.clone();
        let dry = self.opts.dry_run;
        let comps: Vec<(String, String)> = self
            .comps
            .iter()
            .map(|c| (c.comp.id.clone(), c.new_key.0.clone()))
            .collect();
        let version = version.to_string();
        let provider = self.engine.inner.provider.clone();
        store
            .call(move |s| {
                Ok(comps
                    .iter()
                    .map(|(c, k)| {
                        find_version(&*provider, s, c, &env, dry, &version, k).map(|_| ())
                    })
                    .collect::<Result<Vec<()>, Refusal>>())
            })
            .await?
            .map(|_| ())
    }

    /// End the run after a stop: roll back when allowed, else fail.
    pub(crate) async fn stop(mut self, stop: Stop) -> Outcome {
        match stop {
            Stop::Fail(cause, reason) => {
                self.cause = Some(cause);
                self.emit(EventKind::Failure {
                    reason: reason.clone(),
                })
                .await;
                let r = &self.spec.rollback;
                if r.enabled && r.automatic {
                    self.rollback(reason, None).await
                } else {
                    let why = if r.enabled {
                        format!("{reason}; automatic rollback is off: traffic left as it is, run `cutover rollback {}`", self.spec.id)
                    } else {
                        format!("{reason}; rollback is disabled: traffic left as it is")
                    };
                    self.finish(Outcome::Failed, why).await
                }
            }
            Stop::Abort(cause, reason) => {
                self.cause = Some(cause);
                self.finish(Outcome::Failed, format!("{reason}; nothing was changed"))
                    .await
            }
            Stop::Rollback { to, by, cause } => {
                self.cause = Some(cause);
                let reason = match &to {
                    Some(v) => format!("rollback to {v} requested by {by}"),
                    None => format!("rollback requested by {by}"),
                };
                self.rollback(reason, to).await
            }
        }
    }

    /// Return traffic to the previous revision (or `to`), within `rollback.timeout`.
    pub(crate) async fn rollback(mut self, reason: String, to: Option<String>) -> Outcome {
        self.transition(Transition::RollBack);
        // Choose targets.
        let mut targets = Vec::new();
        for ci in (0..self.comps.len()).rev() {
            let c = &self.comps[ci];
            if to.is_none() && !c.touched {
                continue;
            }
            let rev = match &to {
                None => c.old.clone(),
                Some(v) => {
                    let store = self.engine.inner.store.clone();
                    let (id, env, dry, v2, k) = (
                        c.comp.id.clone(),
                        self.spec.environment.clone(),
                        self.opts.dry_run,
                        v.clone(),
                        c.new_key.0.clone(),
                    );
                    let provider = self.engine.inner.provider.clone();
                    let found = store
                        .call(move |s| Ok(find_version(&*provider, s, &id, &env, dry, &v2, &k)))
                        .await;
                    match found {
                        Ok(Ok(row)) => {
                            let mut o = old_from_row(&row);
                            if let (Some(o), Some(cur)) = (o.as_mut(), c.old.as_ref()) {
                                o.running = cur.key == o.key && cur.running;
                            }
                            o
                        }
                        Ok(Err(msg)) => {
                            return self
                                .finish(Outcome::Failed, format!("{reason}: {msg}"))
                                .await
                        }
                        Err(e) => {
                            return self.finish(Outcome::Failed, format!("{reason}: {e}")).await
                        }
                    }
                }
            };
            targets.push(Target { ci, rev });
        }
        let mut plan_lines = Vec::new();
        let mut target_weights = Vec::new();
        for t in &targets {
            let c = &self.comps[t.ci];
            match &t.rev {
                None => plan_lines.push(format!(
                    "{}: remove {} (no previous revision to return to)",
                    c.comp.id, c.new_key
                )),
                Some(o) => {
                    if !o.running {
                        plan_lines.push(format!(
                            "{}: start {} with {} replica(s)",
                            c.comp.id, o.key, o.replicas
                        ));
                    }
                    let strategy = &self.spec.rollback.strategy;
                    if strategy.kind == RollbackKind::Gradual {
                        for left in strategy
                            .steps
                            .iter()
                            .filter(|x| **x > 0 && (**x as u32) < c.new_weight)
                        {
                            plan_lines.push(format!(
                                "{}: traffic {} {}% / {} {}%, hold {}",
                                c.comp.id,
                                o.version,
                                100 - left,
                                self.spec.version,
                                left,
                                human(strategy.interval.0)
                            ));
                        }
                    }
                    plan_lines.push(format!(
                        "{}: traffic {} 100% ({})",
                        c.comp.id, o.version, strategy.kind
                    ));
                    plan_lines.push(format!("{}: remove {}", c.comp.id, c.new_key));
                    target_weights.push(Weight {
                        revision: o.key.0.clone(),
                        version: o.version.clone(),
                        weight: 100,
                        achieved: None,
                    });
                }
            }
        }
        // The intent is journaled with the event below, before anything is changed: a process
        // that takes the run over after a crash goes on with the same rollback.
        let cis: Vec<usize> = targets.iter().map(|t| t.ci).collect();
        self.record_intent(&reason, to.clone(), &cis);
        self.emit(EventKind::RollbackStarted {
            reason: reason.clone(),
            target: target_weights,
            plan: plan_lines,
        })
        .await;
        let timeout = self.spec.rollback.timeout.duration();
        let result = match tokio::time::timeout(timeout, self.execute_rollback(&targets)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the rollback did not finish within {}",
                human(timeout.as_millis() as u64)
            )),
        };
        match result {
            Ok(()) => {
                let versions: Vec<String> = targets
                    .iter()
                    .filter_map(|t| t.rev.as_ref().map(|o| o.version.clone()))
                    .collect();
                let to_text = if versions.is_empty() {
                    "removed the new revision".to_string()
                } else {
                    let mut v = versions.clone();
                    v.dedup();
                    format!("rolled back to {}", v.join(", "))
                };
                self.finish(Outcome::RolledBack, format!("{to_text}: {reason}"))
                    .await
            }
            Err(e) => {
                self.finish(Outcome::Failed, format!("{reason}; rollback failed: {e}"))
                    .await
            }
        }
    }

    /// Remember what the rollback is about to do (kept if already known: an adopted run goes on
    /// with the intent it was taken over with).
    pub(crate) fn record_intent(&mut self, reason: &str, to: Option<String>, cis: &[usize]) {
        if self.rolling_back.is_some() {
            return;
        }
        let components = cis
            .iter()
            .filter_map(|ci| self.comps.get(*ci))
            .map(|c| IntentComponent {
                component: c.comp.id.clone(),
                from: c.new_key.0.clone(),
                previous: c.old.as_ref().map(|o| o.key.0.clone()),
            })
            .collect();
        self.rolling_back = Some(RollbackIntent {
            reason: reason.to_string(),
            cause: self.cause,
            to,
            version: self.spec.version.clone(),
            components,
        });
    }

    async fn execute_rollback(&mut self, targets: &[Target]) -> Result<(), String> {
        let provider = self.engine.inner.provider.clone();
        for t in targets {
            let comp = self.comps[t.ci].comp.id.clone();
            let new_key = self.comps[t.ci].new_key.clone();
            if let Some(o) = &t.rev {
                let rev = RevisionSpec {
                    key: o.key.clone(),
                    deployment: self.spec.id.clone(),
                    version: o.version.clone(),
                    environment: self.spec.environment.clone(),
                    component: o.component.clone(),
                    run: self.run_id,
                    step: self.step,
                };
                provider
                    .apply_revision(&rev, o.replicas.get())
                    .await
                    .map_err(|e| format!("{comp}: cannot start {}: {e}", o.key))?;
                self.emit(EventKind::RollbackStep {
                    component: comp.clone(),
                    description: format!("{} scaled to {} replica(s)", o.key, o.replicas),
                })
                .await;
                wait_ready(self, &comp, &o.key, o.replicas.get()).await?;
                let current_new = self.comps[t.ci].new_weight;
                let mut steps: Vec<u32> = Vec::new();
                if self.spec.rollback.strategy.kind == RollbackKind::Gradual {
                    steps = self
                        .spec
                        .rollback
                        .strategy
                        .steps
                        .iter()
                        .map(|s| (*s).clamp(0, 99) as u32)
                        // The last step, to 0, is always made (once).
                        .filter(|s| *s > 0 && *s < current_new)
                        .collect();
                }
                steps.push(0);
                let hold = self.spec.rollback.strategy.interval.duration();
                for (i, left) in steps.iter().enumerate() {
                    let mut weights = vec![(o.key.clone(), 100 - left)];
                    let others: Vec<RevisionKey> = self.comps[t.ci]
                        .old
                        .iter()
                        .filter(|old| old.running && old.key != o.key)
                        .map(|old| old.key.clone())
                        .collect();
                    for k in others {
                        weights.push((k, 0));
                    }
                    if self.comps[t.ci].new_replicas > 0 {
                        weights.push((new_key.clone(), *left));
                    }
                    let split = provider
                        .set_weights(&comp, &weights)
                        .await
                        .map_err(|e| format!("{comp}: cannot set weights: {e}"))?;
                    self.comps[t.ci].new_weight = *left;
                    self.comps[t.ci].new_achieved = split.of(&new_key);
                    self.emit(EventKind::TrafficShifted {
                        component: comp.clone(),
                        weights: weights
                            .iter()
                            .map(|(k, w)| Weight {
                                revision: k.0.clone(),
                                version: if *k == new_key {
                                    self.spec.version.clone()
                                } else {
                                    o.version.clone()
                                },
                                weight: *w,
                                achieved: split.of(k),
                            })
                            .collect(),
                    })
                    .await;
                    if i + 1 < steps.len() {
                        tokio::time::sleep(hold).await;
                    }
                }
            } else {
                let _ = provider.set_weights(&comp, &[]).await;
            }
            provider
                .remove_revision(&comp, &new_key)
                .await
                .map_err(|e| format!("{comp}: cannot remove {new_key}: {e}"))?;
            self.comps[t.ci].new_replicas = 0;
            let mut retire = None;
            if let Some(old) = &self.comps[t.ci].old {
                let replaced = t.rev.as_ref().is_none_or(|o| o.key != old.key);
                if old.running && replaced {
                    provider
                        .retire_revision(&comp, &old.key)
                        .await
                        .map_err(|e| format!("{comp}: cannot remove {}: {e}", old.key))?;
                    retire = Some(old.key.0.clone());
                }
            }
            let mut states = vec![(new_key.0.clone(), RevisionState::RolledBack)];
            states.extend(retire.map(|k| (k, RevisionState::Retired)));
            states.extend(
                t.rev
                    .as_ref()
                    .map(|o| (o.key.0.clone(), RevisionState::Active)),
            );
            // Recorded with the run's end, in the same transaction.
            self.settled.extend(states);
            if let (Some(o), Some(old)) = (&t.rev, self.comps[t.ci].old.as_mut()) {
                old.running = old.key == o.key;
            }
            self.emit(EventKind::RollbackCompleted { component: comp })
                .await;
        }
        Ok(())
    }
}

async fn wait_ready(run: &Run, comp: &str, key: &RevisionKey, want: u32) -> Result<(), String> {
    let provider = run.engine.inner.provider.clone();
    let start = Instant::now();
    loop {
        let st = provider
            .revision_status(comp, key)
            .await
            .map_err(|e| format!("{comp}: {e}"))?;
        if st.ready() >= want {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(3600) {
            return Err(format!("{comp}: {key} never became ready"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
