//! Engine events in words, one line (or a few) per event, as the CLI prints them and the console
//! lists them.
//!
//! Owns: the wording of events. Must not touch: terminals, colours or engine state.

use crate::engine::event::{AnalysisDecision, Event, EventKind, Weight};
use crate::engine::signals::{fmt_num, Judgement, SignalKind};
use crate::spec::human;

pub fn weights(ws: &[Weight]) -> String {
    if ws.is_empty() {
        return "no traffic".into();
    }
    ws.iter()
        .map(|w| format!("{} {}%", w.version, w.weight))
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
        } => format!(
            "==> {} {version}: {strategy} in {environment} on {provider}{} ({steps} steps, run #{}, by {initiator})",
            ev.deployment,
            if *dry_run { ", dry run" } else { "" },
            ev.run
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
        EventKind::RollbackStarted { reason, plan, .. } => {
            let mut s = format!("<< rolling back: {reason}");
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
        EventKind::JournalLost { lines, error } => {
            format!("!! journal: {lines} line(s) rejected by the state store and NOT recorded: {error}")
        }
        EventKind::Finished {
            outcome,
            reason,
            journal,
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
