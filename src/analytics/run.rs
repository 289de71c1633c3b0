//! One run's analytics from its journal: time per step, at gates and paused, verdicts per signal,
//! decisions, approvals, traffic shifts and how it ended.

use crate::engine::event::AnalysisDecision;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::{Event, EventKind, Judgement};

/// Verdict counts for one signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub pass: u32,
    pub fail: u32,
    pub no_data: u32,
    pub error: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunAnalytics {
    pub run: i64,
    pub deployment: String,
    pub outcome: Option<crate::store::Outcome>,
    pub reason: Option<String>,
    pub duration_s: Option<f64>,
    /// Each step started, with how long it took (to the next step or the end).
    pub steps: Vec<(String, f64)>,
    pub gate_wait_s: f64,
    pub paused_s: f64,
    pub verdicts: BTreeMap<String, Counts>,
    /// Analysis decisions other than "continue", with their reason.
    pub decisions: Vec<String>,
    pub approvals: Vec<String>,
    pub traffic_shifts: u32,
    pub restarts: u32,
    pub rolled_back: Option<String>,
}

fn at(ev: &Event) -> Option<DateTime<Utc>> {
    crate::store::parse_ts(&ev.ts)
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds().max(0) as f64 / 1000.0
}

/// Analytics of one run from its events (oldest first).
pub fn analyse(run: i64, deployment: &str, events: &[Event]) -> RunAnalytics {
    let mut a = RunAnalytics {
        run,
        deployment: deployment.to_string(),
        ..RunAnalytics::default()
    };
    let first = events.first().and_then(at);
    let mut step: Option<(String, DateTime<Utc>)> = None;
    let mut gate_since = None;
    let mut paused_since = None;
    let mut last = first;
    for ev in events {
        let t = at(ev);
        if t.is_some() {
            last = t;
        }
        match &ev.kind {
            EventKind::StepStarted { description, .. } => {
                if let (Some((d, s)), Some(t)) = (step.take(), t) {
                    a.steps.push((d, secs(s, t)));
                }
                if let Some(t) = t {
                    step = Some((description.clone(), t));
                }
            }
            EventKind::GateWaiting { .. } => gate_since = t,
            EventKind::GateApproved { gate, by, .. } => {
                a.approvals.push(format!("{gate}: {by}"));
                if let (Some(s), Some(t)) = (gate_since.take(), t) {
                    a.gate_wait_s += secs(s, t);
                }
            }
            EventKind::GateVote { gate, by, .. } => a.approvals.push(format!("{gate}: {by}")),
            EventKind::GateRejected { .. } => {
                if let (Some(s), Some(t)) = (gate_since.take(), t) {
                    a.gate_wait_s += secs(s, t);
                }
            }
            EventKind::Paused { .. } => paused_since = t,
            EventKind::Resumed { .. } => {
                if let (Some(s), Some(t)) = (paused_since.take(), t) {
                    a.paused_s += secs(s, t);
                }
            }
            EventKind::Pruned { verdicts, .. } => {
                for (signal, [pass, fail, no_data, error]) in verdicts {
                    let c = a.verdicts.entry(signal.clone()).or_default();
                    c.pass += pass;
                    c.fail += fail;
                    c.no_data += no_data;
                    c.error += error;
                }
            }
            EventKind::TrafficShifted { .. } => a.traffic_shifts += 1,
            EventKind::InstanceRestarted { .. } => a.restarts += 1,
            EventKind::Analysis {
                verdicts,
                decision,
                reason,
                ..
            } => {
                for v in verdicts {
                    let c = a.verdicts.entry(v.signal.clone()).or_default();
                    match v.judgement {
                        Judgement::Pass => c.pass += 1,
                        Judgement::Fail => c.fail += 1,
                        Judgement::NoData => c.no_data += 1,
                        Judgement::Error => c.error += 1,
                    }
                }
                if *decision != AnalysisDecision::Continue {
                    a.decisions.push(format!(
                        "{decision}: {}",
                        reason.clone().unwrap_or_default()
                    ));
                }
            }
            EventKind::RollbackStarted { reason, .. } => a.rolled_back = Some(reason.clone()),
            EventKind::Finished {
                outcome, reason, ..
            } => {
                a.outcome = Some(*outcome);
                a.reason = Some(reason.clone());
            }
            _ => {}
        }
    }
    if let (Some((d, s)), Some(t)) = (step.take(), last) {
        a.steps.push((d, secs(s, t)));
    }
    if let (Some(s), Some(t)) = (gate_since, last) {
        a.gate_wait_s += secs(s, t);
    }
    if let (Some(f), Some(l)) = (first, last) {
        a.duration_s = Some(secs(f, l));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::Outcome;
    use crate::engine::signals::SignalKind;
    use crate::engine::signals::{OnFail, Verdict};

    fn ev(ts: &str, kind: EventKind) -> Event {
        Event {
            ts: format!("2026-11-26T10:{ts}Z"),
            deployment: "shop".into(),
            run: 3,
            kind,
        }
    }

    #[test]
    fn a_runs_story_in_numbers() {
        let step = |s: usize, d: &str| EventKind::StepStarted {
            step: s,
            component: "web".into(),
            description: d.into(),
        };
        let v = |j| {
            Verdict::new(
                "error_rate",
                SignalKind::Metric,
                j,
                "< 0.05",
                "",
                OnFail::Rollback,
            )
        };
        let events = vec![
            ev("00:00", step(0, "start")),
            ev("00:10", step(1, "analyse")),
            ev(
                "00:20",
                EventKind::Analysis {
                    component: "web".into(),
                    verdicts: vec![v(Judgement::Pass)],
                    next_in_ms: None,
                    decision: AnalysisDecision::Continue,
                    reason: None,
                    served: Default::default(),
                },
            ),
            ev("00:30", step(2, "gate")),
            ev(
                "00:30",
                EventKind::GateWaiting {
                    gate: "g".into(),
                    component: "web".into(),
                    hint: String::new(),
                },
            ),
            ev(
                "01:30",
                EventKind::GateApproved {
                    gate: "g".into(),
                    by: "bob".into(),
                    comment: None,
                },
            ),
            ev(
                "01:40",
                EventKind::Analysis {
                    component: "web".into(),
                    verdicts: vec![v(Judgement::Fail)],
                    next_in_ms: None,
                    decision: AnalysisDecision::Rollback,
                    reason: Some("error_rate failed".into()),
                    served: Default::default(),
                },
            ),
            ev(
                "01:45",
                EventKind::Finished {
                    outcome: Outcome::RolledBack,
                    reason: "rolled back".into(),
                    cause: None,
                    by_run: None,
                    journal: None,
                },
            ),
        ];
        let a = analyse(3, "shop", &events);
        assert_eq!(a.duration_s, Some(105.0));
        assert_eq!(
            a.steps,
            vec![
                ("start".to_string(), 10.0),
                ("analyse".to_string(), 20.0),
                ("gate".to_string(), 75.0)
            ]
        );
        assert_eq!(a.gate_wait_s, 60.0);
        assert_eq!(a.approvals, vec!["g: bob"]);
        let c = &a.verdicts["error_rate"];
        assert_eq!((c.pass, c.fail), (1, 1));
        assert_eq!(a.decisions, vec!["rollback: error_rate failed"]);
        assert_eq!(a.outcome, Some(Outcome::RolledBack));
    }
}
