//! Plans: the ordered steps a strategy takes, with the rollback that applies at each step.
//!
//! Owns: turning a checked spec (and what is running now) into a [`Plan`] that both `cutover plan`
//! prints and the engine executes step by step. Must not touch: providers, the clock or the store.

use serde::{Deserialize, Serialize};

use crate::spec::{
    human, Component, Replicas, RollbackKind, Spec, Strategy, SwitchKind, ValidSpec,
};

/// What one step does. The engine executes exactly these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Start the new revision's instances and wait until they are ready.
    StartRevision { replicas: u32 },
    /// Scale the new revision and wait until the instances are ready.
    ScaleNew { replicas: u32 },
    /// Scale the old revision down.
    ScaleOld { replicas: u32 },
    /// Route this percentage of traffic to the new revision, the rest to the old one.
    ShiftTraffic { percent: u32 },
    /// Hold while analysing health and metrics.
    Analyse { label: String, duration_ms: u64 },
    /// Wait for an approval.
    Gate { name: String },
    /// Take the old revision off traffic and stop it (recreate).
    StopOld,
    /// Remove the old revision (it no longer takes traffic).
    RetireOld,
    /// Run `validation.preDeployment` before anything changes.
    PreChecks,
    /// Run `validation.postDeployment` once traffic has moved, before the old revision goes.
    PostChecks,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub index: usize,
    pub component: String,
    pub action: Action,
    pub description: String,
    /// What happens if the run fails at this step.
    pub on_failure: String,
}

/// The previous revision of a component, when one is running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    pub version: String,
    pub replicas: Replicas,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub deployment: String,
    pub version: String,
    pub strategy: Strategy,
    pub environment: String,
    pub steps: Vec<Step>,
    /// Sum of analysis and hold durations, not counting time at gates.
    pub expected_ms: u64,
    pub gates: usize,
    pub rollback: String,
    /// What runs on the platform that the store did not know and this run starts from (a
    /// cluster's plain Deployment adopted as the baseline), one line per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline: Vec<String>,
}

impl Plan {
    pub fn expected_human(&self) -> String {
        let mut s = human(self.expected_ms);
        if self.gates > 0 {
            s.push_str(&format!(" plus time waiting at {} gate(s)", self.gates));
        }
        s
    }
}

fn canary_replicas(total: u32, percent: u32) -> u32 {
    ((total as u64 * percent as u64).div_ceil(100) as u32).clamp(1, total)
}

struct Builder<'a> {
    steps: Vec<Step>,
    comp: &'a Component,
    prev: Option<&'a Previous>,
    earlier: Vec<String>,
    traffic_moved: bool,
    old_gone: bool,
    rollback_kind: RollbackKind,
}

impl Builder<'_> {
    fn push(&mut self, action: Action, description: String) {
        match &action {
            Action::ShiftTraffic { percent } if *percent > 0 => self.traffic_moved = true,
            Action::StopOld | Action::RetireOld => self.old_gone = true,
            _ => {}
        }
        let mut on_failure = match (self.prev, self.old_gone, self.traffic_moved) {
            (None, _, _) => {
                "remove the new revision (no previous revision to return to)".to_string()
            }
            (Some(p), true, _) => format!(
                "restart {} with {} replica(s), route 100% to it, remove the new revision",
                p.version, p.replicas
            ),
            (Some(p), false, true) => format!(
                "shift 100% back to {} ({}), restore its replicas, remove the new revision",
                p.version, self.rollback_kind
            ),
            (Some(p), false, false) => {
                format!("remove the new revision; {} keeps all traffic", p.version)
            }
        };
        if !self.earlier.is_empty() {
            on_failure.push_str(&format!(
                "; then roll back {} in reverse order",
                self.earlier.join(", ")
            ));
        }
        self.steps.push(Step {
            index: 0,
            component: self.comp.id.clone(),
            action,
            description,
            on_failure,
        });
    }
}

/// Build the plan of a checked spec. `previous(component_id)` says what runs now for a
/// component, if anything.
pub fn build(spec: &ValidSpec, previous: &dyn Fn(&str) -> Option<Previous>) -> Plan {
    let mut steps = Vec::new();
    let mut earlier: Vec<String> = Vec::new();
    let rollback_kind = spec.rollback.strategy.kind;
    for comp in spec.ordered_components() {
        let prev = previous(&comp.id);
        let mut b = Builder {
            steps: Vec::new(),
            comp,
            prev: prev.as_ref(),
            earlier: earlier.iter().rev().cloned().collect(),
            traffic_moved: false,
            old_gone: false,
            rollback_kind,
        };
        let n = comp.replicas.get();
        let v = &spec.version;
        match prev.as_ref() {
            None => first_deployment(&mut b, n, v),
            Some(p) => match spec.strategy {
                Strategy::Canary => canary(spec, &mut b, n, v, p),
                Strategy::BlueGreen => blue_green(spec, &mut b, n, v, p),
                Strategy::Rolling => rolling(spec, &mut b, n, v, p),
                Strategy::Recreate => recreate(&mut b, n, v, p),
            },
        }
        steps.extend(b.steps);
        earlier.push(comp.id.clone());
    }
    add_checks(spec, &mut steps);
    for (i, s) in steps.iter_mut().enumerate() {
        s.index = i;
    }
    let expected_ms = steps
        .iter()
        .map(|s| match &s.action {
            Action::Analyse { duration_ms, .. } => *duration_ms,
            _ => 0,
        })
        .sum();
    let gates = steps
        .iter()
        .filter(|s| matches!(s.action, Action::Gate { .. }))
        .count();
    let r = &spec.rollback;
    let rollback = if !r.enabled {
        "rollback disabled: a failure stops the run (failed) and leaves traffic where it is"
            .to_string()
    } else {
        format!(
            "{}{} rollback to the previous revision, within {}; never to a revision that failed",
            if r.automatic { "automatic " } else { "manual " },
            r.strategy.kind,
            human(r.timeout.0)
        )
    };
    Plan {
        deployment: spec.id.clone(),
        version: spec.version.clone(),
        strategy: spec.strategy,
        environment: spec.environment.clone(),
        steps,
        expected_ms,
        gates,
        rollback,
        baseline: Vec::new(),
    }
}

fn add_checks(spec: &Spec, steps: &mut Vec<Step>) {
    let v = &spec.validation;
    let Some(first) = steps.first().map(|s| s.component.clone()) else {
        return;
    };
    if !v.post_deployment.is_empty() {
        let last = steps
            .last()
            .map(|s| s.component.clone())
            .unwrap_or_default();
        // Before the last component's old revision goes, so a failure can return to it.
        let at = match steps.last() {
            Some(s) if matches!(s.action, Action::RetireOld) => steps.len() - 1,
            _ => steps.len(),
        };
        let on_failure = steps
            .get(at.saturating_sub(1))
            .map(|s| s.on_failure.clone())
            .unwrap_or_default();
        steps.insert(
            at,
            Step {
                index: 0,
                component: last,
                action: Action::PostChecks,
                description: format!("post-deployment checks ({})", v.post_deployment.len()),
                on_failure,
            },
        );
    }
    if !v.pre_deployment.is_empty() {
        steps.insert(
            0,
            Step {
                index: 0,
                component: first,
                action: Action::PreChecks,
                description: format!("pre-deployment checks ({})", v.pre_deployment.len()),
                on_failure: "stop: nothing has changed yet".into(),
            },
        );
    }
}

fn first_deployment(b: &mut Builder, n: u32, v: &str) {
    b.push(
        Action::StartRevision { replicas: n },
        format!("start {v} with {n} replica(s) (first deployment: nothing to shift from)"),
    );
    b.push(
        Action::ShiftTraffic { percent: 100 },
        format!("route 100% of traffic to {v}"),
    );
}

fn canary(spec: &Spec, b: &mut Builder, n: u32, v: &str, p: &Previous) {
    let cfg = spec.canary();
    let mut started = false;
    for stage in &cfg.stages {
        let pct = stage.percentage.clamp(1, 100) as u32;
        let replicas = if pct == 100 {
            n
        } else {
            canary_replicas(n, pct)
        };
        if !started {
            b.push(
                Action::StartRevision { replicas },
                format!("start canary {v} with {replicas} replica(s)"),
            );
            started = true;
        } else {
            b.push(
                Action::ScaleNew { replicas },
                format!("scale canary {v} to {replicas} replica(s)"),
            );
        }
        b.push(
            Action::ShiftTraffic { percent: pct },
            format!(
                "shift {pct}% of traffic to {v} ({}% stays on {})",
                100 - pct,
                p.version
            ),
        );
        if stage.duration.0 > 0 {
            b.push(
                Action::Analyse {
                    label: stage.name.clone(),
                    duration_ms: stage.duration.0,
                },
                format!(
                    "analyse {} for {} (every {})",
                    stage.name,
                    human(stage.duration.0),
                    human(cfg.analysis_interval.0)
                ),
            );
        }
        if !stage.auto_promote && pct < 100 {
            b.push(
                Action::Gate {
                    name: stage.name.clone(),
                },
                format!(
                    "gate {}: wait for approval (autoPromote: false)",
                    stage.name
                ),
            );
        }
    }
    b.push(
        Action::RetireOld,
        format!("retire the old revision ({})", p.version),
    );
}

fn blue_green(spec: &Spec, b: &mut Builder, n: u32, v: &str, p: &Previous) {
    let cfg = spec.blue_green();
    b.push(
        Action::StartRevision { replicas: n },
        format!(
            "start green {v} with {n} replica(s) beside blue {}",
            p.version
        ),
    );
    if cfg.warmup_duration.0 > 0 {
        b.push(
            Action::Analyse {
                label: "warmup".into(),
                duration_ms: cfg.warmup_duration.0,
            },
            format!(
                "warm up green for {} (no traffic yet)",
                human(cfg.warmup_duration.0)
            ),
        );
    }
    let steps: Vec<(u32, u64, bool)> = if cfg.switch_traffic.kind == SwitchKind::Gradual {
        cfg.switch_traffic
            .steps
            .iter()
            .map(|s| {
                (
                    s.percentage.clamp(1, 100) as u32,
                    s.duration.0,
                    s.auto_promote,
                )
            })
            .collect()
    } else {
        let auto = cfg
            .switch_traffic
            .steps
            .first()
            .is_none_or(|s| s.auto_promote);
        vec![(100, 0, auto)]
    };
    for (pct, dur, auto) in steps {
        if !auto {
            b.push(
                Action::Gate {
                    name: format!("switch-{pct}"),
                },
                format!("gate switch-{pct}: wait for approval before switching {pct}%"),
            );
        }
        b.push(
            Action::ShiftTraffic { percent: pct },
            format!("switch {pct}% of traffic to green {v}"),
        );
        if dur > 0 {
            b.push(
                Action::Analyse {
                    label: format!("switch-{pct}"),
                    duration_ms: dur,
                },
                format!("hold at {pct}% for {}", human(dur)),
            );
        }
    }
    let verify = cfg.switch_traffic.verify_duration.0;
    if verify > 0 {
        b.push(
            Action::Analyse {
                label: "verify".into(),
                duration_ms: verify,
            },
            format!(
                "verify the switch for {} (blue {} kept)",
                human(verify),
                p.version
            ),
        );
    }
    b.push(Action::RetireOld, format!("retire blue {}", p.version));
}

/// One rolling batch: replicas of new and old after it.
pub fn rolling_batches(spec: &Spec, n: u32, old: u32) -> Vec<(u32, u32)> {
    let cfg = spec.rolling();
    let batch = cfg.batch_size.max(1) as u32;
    let surge = cfg.max_surge.resolve(n as u64, true) as u32;
    let unavailable = cfg.max_unavailable.resolve(n as u64, false) as u32;
    // Kubernetes: if both resolve to zero, allow one unavailable so the rollout can move.
    let unavailable = if surge == 0 && unavailable == 0 {
        1
    } else {
        unavailable
    };
    let (mut new, mut old) = (0u32, old);
    let mut out = Vec::new();
    for _ in 0..(2 * (n + old) + 4) {
        if new >= n && old == 0 {
            break;
        }
        let room = (n + surge).saturating_sub(new + old);
        let up = batch.min(n - new).min(room);
        new += up;
        let floor = n.saturating_sub(unavailable);
        let down = batch.min(old).min((new + old).saturating_sub(floor));
        old -= down;
        if up == 0 && down == 0 {
            // Cannot move (should be prevented by validation): force one step down.
            old = old.saturating_sub(1);
        }
        out.push((new, old));
    }
    out
}

fn rolling(spec: &Spec, b: &mut Builder, n: u32, v: &str, p: &Previous) {
    let cfg = spec.rolling();
    let batches = rolling_batches(spec, n, p.replicas.get());
    let (mut cur_new, mut cur_old) = (0u32, p.replicas.get());
    let count = batches.len();
    for (i, (new, old)) in batches.into_iter().enumerate() {
        if new > cur_new {
            if cur_new == 0 {
                b.push(
                    Action::StartRevision { replicas: new },
                    format!("batch {}/{count}: start {new} replica(s) of {v}", i + 1),
                );
            } else {
                b.push(
                    Action::ScaleNew { replicas: new },
                    format!("batch {}/{count}: scale {v} to {new} replica(s)", i + 1),
                );
            }
        }
        let pct = if new + old == 0 {
            100
        } else {
            ((new as u64 * 100) / (new + old) as u64) as u32
        };
        let pct = if old == 0 { 100 } else { pct };
        // Traffic moves before the old revision shrinks: a crash between the two steps leaves
        // the old revision with fewer requests than instances, never a share and no instance.
        b.push(
            Action::ShiftTraffic { percent: pct },
            format!("route {pct}% to {v} ({new} new / {old} old)"),
        );
        if old < cur_old {
            b.push(
                Action::ScaleOld { replicas: old },
                format!(
                    "batch {}/{count}: scale {} down to {old} replica(s)",
                    i + 1,
                    p.version
                ),
            );
        }
        cur_new = new;
        cur_old = old;
        if cfg.pause_between_batches.0 > 0 && old > 0 {
            b.push(
                Action::Analyse {
                    label: format!("batch-{}", i + 1),
                    duration_ms: cfg.pause_between_batches.0,
                },
                format!(
                    "pause {} between batches",
                    human(cfg.pause_between_batches.0)
                ),
            );
        }
    }
    b.push(
        Action::RetireOld,
        format!("retire the old revision ({})", p.version),
    );
}

fn recreate(b: &mut Builder, n: u32, v: &str, p: &Previous) {
    b.push(
        Action::StopOld,
        format!(
            "stop {} (recreate: the service is down until {v} is ready)",
            p.version
        ),
    );
    b.push(
        Action::StartRevision { replicas: n },
        format!("start {v} with {n} replica(s)"),
    );
    b.push(
        Action::ShiftTraffic { percent: 100 },
        format!("route 100% of traffic to {v}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_with_surge_adds_before_removing() {
        let mut spec = Spec {
            strategy: Strategy::Rolling,
            ..Default::default()
        };
        spec.metadata.rolling_config = Some(crate::spec::RollingConfig::default());
        let b = rolling_batches(&spec, 3, 3);
        assert_eq!(b, vec![(1, 2), (2, 1), (3, 0)]);
    }

    #[test]
    fn rolling_without_surge_removes_first() {
        let mut spec = Spec::default();
        let cfg = crate::spec::RollingConfig {
            max_surge: crate::spec::IntOrPercent::Count(0),
            max_unavailable: crate::spec::IntOrPercent::Count(1),
            ..Default::default()
        };
        spec.metadata.rolling_config = Some(cfg);
        let b = rolling_batches(&spec, 2, 2);
        assert_eq!(b, vec![(0, 1), (1, 0), (2, 0)]);
    }

    #[test]
    fn canary_replicas_round_up() {
        assert_eq!(canary_replicas(3, 10), 1);
        assert_eq!(canary_replicas(3, 50), 2);
        assert_eq!(canary_replicas(10, 100), 10);
    }
}
