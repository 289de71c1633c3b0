//! Engine events in words, one line (or a few) per event, as the CLI prints them and the console
//! lists them.
//!
//! Owns: the wording of events. Must not touch: terminals, colours or engine state.

use crate::engine::event::{AnalysisDecision, Event, EventKind, Weight};
use crate::engine::signals::{fmt_num, Judgement, SignalKind};
use crate::spec::human;

/// A component's split in words: `1.0.0 80% | 1.1.0 20%`; where the platform only came near the
/// weights asked (a replica ratio), what it reached follows each: `1.1.0 20% (25.0% achieved)`.
pub fn weights(ws: &[Weight]) -> String {
    if ws.is_empty() {
        return "no traffic".into();
    }
    ws.iter()
        .map(|w| match w.achieved {
            Some(a) => format!("{} {}% ({a:.1}% achieved)", w.version, w.weight),
            None => format!("{} {}%", w.version, w.weight),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn mark(j: Judgement) -> &'static str {
    match j {
        Judgement::Pass => "ok",
        Judgement::Fail => "FAIL",
        Judgement::NoData => "NO DATA",
        Judgement::Error => "ERROR",
    }
}

/// One event as a line (or a few) for people; `None` for events too chatty to print.
pub fn human_line(ev: &Event, steps: usize) -> Option<String> {
    let t = ev.ts.get(11..19).unwrap_or(&ev.ts);
    let body = match &ev.kind {
        EventKind::Started {
            version,
            strategy,
            environment,
            provider,
            steps,
            dry_run,
            initiator,
            baseline,
        } => format!(
            "==> {} {version}: {strategy} in {environment} on {provider}{} ({steps} steps, run #{}, by {initiator}){}",
            ev.deployment,
            if *dry_run { ", dry run" } else { "" },
            ev.run,
            baseline
                .iter()
                .map(|b| format!("; baseline {b}"))
                .collect::<String>()
        ),
        EventKind::StepStarted {
            step,
            component,
            description,
        } => format!("[{}/{steps}] {component}: {description}", step + 1),
        EventKind::StepCompleted { .. } => return None,
        EventKind::InstancesReady {
            component,
            revision,
            ready,
            desired,
        } => format!("    {component}: {revision} ready {ready}/{desired}"),
        EventKind::InstanceRestarted {
            component,
            instance,
            restarts,
            detail,
        } => format!("!! {component}: {instance} {detail} (restart {restarts})"),
        EventKind::TrafficShifted { component, weights: w } => {
            format!("    {component} traffic: {}", weights(w))
        }
        EventKind::Analysis {
            component,
            verdicts,
            next_in_ms,
            decision,
            reason,
            ..
        } => {
            let parts: Vec<String> = verdicts
                .iter()
                .filter(|v| v.source != SignalKind::Health || v.judgement != Judgement::Pass)
                .map(|v| {
                    let base = v
                        .baseline
                        .map(|b| format!(", baseline {}", fmt_num(b)))
                        .unwrap_or_default();
                    let counts = match (&v.counts, v.judgement) {
                        (Some(c), Judgement::Fail) if !matches!(v.source, SignalKind::Health | SignalKind::Trigger) => {
                            format!(", {}/{} failures", c.failures, c.failure_limit + 1)
                        }
                        (Some(c), Judgement::NoData) => format!(", {}/{} no data", c.no_data_in_row, c.no_data_limit),
                        (Some(c), Judgement::Error) => format!(", {}/{} errors", c.errors_in_row, c.error_limit),
                        _ => String::new(),
                    };
                    match v.value {
                        Some(x) if v.source == SignalKind::Metric => format!(
                            "{} {} {} ({}{base}{counts})",
                            v.signal,
                            fmt_num(x),
                            mark(v.judgement),
                            v.expected
                        ),
                        _ => format!("{} {}{}", v.signal, mark(v.judgement), if counts.is_empty() { String::new() } else { format!(" ({})", counts.trim_start_matches(", ")) }),
                    }
                })
                .collect();
            let next = next_in_ms
                .map(|ms| format!("; next in {}", human(ms)))
                .unwrap_or_default();
            let verdict = match (decision, reason) {
                (AnalysisDecision::Pause | AnalysisDecision::Rollback, Some(r)) => {
                    format!(" => {decision}: {r}")
                }
                _ => String::new(),
            };
            format!(
                "    {component} analysis: {}{next}{verdict}",
                if parts.is_empty() {
                    "healthy".to_string()
                } else {
                    parts.join(", ")
                }
            )
        }
        EventKind::Checks {
            category,
            results,
            passed,
        } => {
            let mut s = format!(
                "    {category} checks: {}",
                if *passed { "passed" } else { "FAILED" }
            );
            for r in results {
                s.push_str(&format!(
                    "\n      {:?} {}{}: {}",
                    r.status,
                    r.name,
                    r.component.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default(),
                    r.evidence
                ));
            }
            s
        }
        EventKind::GateWaiting { gate, hint, .. } => {
            format!("|| gate {gate} waits for approval: run `{hint}` (or reject with `cutover reject {} --reason ...`)", ev.deployment)
        }
        EventKind::GateApproved { gate, by, comment } => format!(
            "    gate {gate} approved by {by}{}",
            comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        ),
        EventKind::GateVote {
            gate,
            by,
            comment,
            approvals,
            required,
        } => format!(
            "    gate {gate}: approved by {by} ({approvals} of {required}){}",
            comment
                .as_ref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        ),
        EventKind::GateEscalated {
            gate,
            step,
            description,
            ..
        } => format!("    gate {gate}: escalation step {}: {description}", step + 1),
        EventKind::GateRejected { gate, by, reason } => {
            format!("    gate {gate} rejected by {by}: {reason}")
        }
        EventKind::Paused { by, reason } => format!("|| paused by {by}: {reason}"),
        EventKind::Resumed { by } => format!(">> resumed by {by}"),
        EventKind::Promoted { by } => format!(">> promoted by {by}: skipping the remaining analysis and gates"),
        EventKind::Failure { reason } => format!("!! {reason}"),
        EventKind::RollbackStarted {
            reason,
            plan,
            target,
        } => {
            let mut s = format!("<< rolling back: {reason}");
            // Where the platform only comes near the weights asked, the target says what it
            // reaches (exact targets print as before: the plan lines say them).
            if target.iter().any(|w| w.achieved.is_some()) {
                s.push_str(&format!("\n     target: {}", weights(target)));
            }
            for p in plan {
                s.push_str(&format!("\n     - {p}"));
            }
            s
        }
        EventKind::RollbackStep {
            component,
            description,
        } => format!("    {component}: {description}"),
        EventKind::RollbackCompleted { component } => format!("    {component}: rollback complete"),
        EventKind::CommandRefused { command, by, reason } => {
            format!("    {command} from {by} refused: {reason}")
        }
        EventKind::JournalDelayed { lines, error } => {
            format!("!! journal delayed: {lines} line(s) wait for the state store: {error}")
        }
        EventKind::JournalCaughtUp {
            lines, waited_ms, ..
        } => format!(
            "    journal caught up: {lines} line(s) written after {}",
            crate::spec::human(*waited_ms)
        ),
        EventKind::Pruned {
            lines,
            verdicts,
            from,
            to,
        } => {
            let counts: Vec<String> = verdicts
                .iter()
                .map(|(s, [p, f, n, e])| format!("{s} {p}/{f}/{n}/{e}"))
                .collect();
            format!(
                "{lines} routine analysis line(s) from {from} to {to} pruned (verdicts pass/fail/no data/error: {})",
                counts.join(", ")
            )
        }
        EventKind::JournalLost { lines, error } => {
            format!("!! journal: {lines} line(s) rejected by the state store and NOT recorded: {error}")
        }
        EventKind::Finished {
            outcome,
            reason,
            journal,
            ..
        } => {
            let note = journal
                .as_ref()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            format!("==> {}: {reason}{note}", outcome.as_str())
        }
    };
    Some(format!("{t} {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(version: &str, weight: u32, achieved: Option<f64>) -> Weight {
        Weight {
            revision: format!("api@{version}.r1"),
            version: version.into(),
            weight,
            achieved,
        }
    }

    fn ev(kind: EventKind) -> Event {
        Event {
            ts: "2026-11-26T12:00:01.000Z".into(),
            deployment: "shop".into(),
            run: 7,
            kind,
        }
    }

    #[test]
    fn exact_weights_read_as_before_and_a_replica_ratio_says_what_it_reached() {
        assert_eq!(
            weights(&[w("1.0.0", 80, None), w("2.0.0", 20, None)]),
            "1.0.0 80% | 2.0.0 20%"
        );
        assert_eq!(
            weights(&[w("1.0.0", 80, Some(75.0)), w("2.0.0", 20, Some(25.0))]),
            "1.0.0 80% (75.0% achieved) | 2.0.0 20% (25.0% achieved)"
        );
        // One decimal: a third of the pods.
        assert_eq!(
            weights(&[w("2.0.0", 30, Some(100.0 / 3.0))]),
            "2.0.0 30% (33.3% achieved)"
        );
        assert_eq!(weights(&[]), "no traffic");
    }

    #[test]
    fn traffic_shifted_lines_carry_the_achieved_share() {
        let line = human_line(
            &ev(EventKind::TrafficShifted {
                component: "api".into(),
                weights: vec![w("1.0.0", 80, Some(75.0)), w("2.0.0", 20, Some(25.0))],
            }),
            9,
        );
        assert_eq!(
            line.as_deref(),
            Some(
                "12:00:01     api traffic: 1.0.0 80% (75.0% achieved) | 2.0.0 20% (25.0% achieved)"
            )
        );
    }

    #[test]
    fn rollback_started_names_its_target_only_where_the_split_is_not_exact() {
        let rb = |target| {
            human_line(
                &ev(EventKind::RollbackStarted {
                    reason: "metric error_rate failed".into(),
                    target,
                    plan: vec!["api: traffic 1.0.0 100% (immediate)".into()],
                }),
                9,
            )
        };
        assert_eq!(
            rb(vec![w("1.0.0", 100, None)]).as_deref(),
            Some(
                "12:00:01 << rolling back: metric error_rate failed\n     - api: traffic 1.0.0 100% (immediate)"
            )
        );
        assert_eq!(
            rb(vec![w("1.0.0", 90, Some(75.0)), w("2.0.0", 10, Some(25.0))]).as_deref(),
            Some(
                "12:00:01 << rolling back: metric error_rate failed\n     target: 1.0.0 90% (75.0% achieved) | 2.0.0 10% (25.0% achieved)\n     - api: traffic 1.0.0 100% (immediate)"
            )
        );
    }

    #[test]
    fn achieved_weights_survive_a_snapshot_round_trip_and_exact_ones_stay_absent() {
        // What `cutover status --json` prints is the snapshot as serialized.
        let exact = serde_json::to_value(w("1.0.0", 100, None)).unwrap_or_default();
        assert!(exact.get("achieved").is_none(), "{exact}");
        let ratio = serde_json::to_value(w("2.0.0", 20, Some(25.0))).unwrap_or_default();
        assert_eq!(ratio["achieved"], serde_json::json!(25.0));
        assert_eq!(ratio["weight"], serde_json::json!(20));
        let back: Weight = serde_json::from_value(ratio).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.achieved, Some(25.0));
    }
}
