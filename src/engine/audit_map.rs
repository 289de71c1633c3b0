//! Which engine events are audit records: every operator action and every engine decision (not
//! progress such as traffic shifts or passing verdicts, which the journal keeps).
//!
//! Owns: the mapping from an event to an audit entry. Must not touch: storage or hashing.

use super::event::{AnalysisDecision, Event, EventKind};
use crate::store::audit::Entry;

/// The audit entry for an event, if it is an action or a decision.
pub(crate) fn audit_entry(ev: &Event, environment: &str, initiator: &str) -> Option<Entry> {
    let engine = "engine".to_string();
    let (actor, action, detail) = match &ev.kind {
        EventKind::Started {
            version,
            strategy,
            baseline,
            ..
        } => {
            let mut detail = serde_json::json!({"version": version, "strategy": strategy});
            if !baseline.is_empty() {
                // An adopted workload is an action on something cutover did not create.
                detail["baseline"] = serde_json::json!(baseline);
            }
            (initiator.to_string(), "deploy.start", detail)
        }
        EventKind::Paused { by, reason } => {
            (by.clone(), "pause", serde_json::json!({"reason": reason}))
        }
        EventKind::Resumed { by } => (by.clone(), "resume", serde_json::json!({})),
        EventKind::Promoted { by } => (by.clone(), "promote", serde_json::json!({})),
        EventKind::GateWaiting { gate, .. } => {
            (engine, "gate.open", serde_json::json!({"gate": gate}))
        }
        EventKind::GateVote {
            gate,
            by,
            comment,
            approvals,
            required,
        } => (
            by.clone(),
            "gate.approve",
            serde_json::json!({"gate": gate, "comment": comment, "approvals": approvals, "required": required}),
        ),
        EventKind::GateApproved { gate, by, comment } => (
            by.clone(),
            "gate.approve",
            serde_json::json!({"gate": gate, "comment": comment, "passed": true}),
        ),
        EventKind::GateRejected { gate, by, reason } => (
            by.clone(),
            "gate.reject",
            serde_json::json!({"gate": gate, "reason": reason}),
        ),
        EventKind::GateEscalated {
            gate,
            step,
            description,
            ..
        } => (
            engine,
            "gate.escalate",
            serde_json::json!({"gate": gate, "step": step + 1, "did": description}),
        ),
        EventKind::CommandRefused {
            command,
            by,
            reason,
        } => (
            by.clone(),
            "refused",
            serde_json::json!({"command": command, "reason": reason}),
        ),
        EventKind::Analysis {
            decision, reason, ..
        } if *decision != AnalysisDecision::Continue => (
            engine,
            "analysis.decide",
            serde_json::json!({"decision": decision, "reason": reason}),
        ),
        EventKind::Failure { reason } => (engine, "fail", serde_json::json!({"reason": reason})),
        EventKind::RollbackStarted { reason, target, .. } => (
            engine,
            "rollback.start",
            serde_json::json!({"reason": reason, "target": target}),
        ),
        EventKind::Finished {
            outcome, reason, ..
        } => (
            engine,
            "deploy.finish",
            serde_json::json!({"outcome": outcome, "reason": reason}),
        ),
        _ => return None,
    };
    Some(Entry {
        actor,
        action: action.to_string(),
        deployment: ev.deployment.clone(),
        run: Some(ev.run),
        environment: environment.to_string(),
        detail,
    })
}
