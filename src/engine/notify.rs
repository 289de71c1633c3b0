//! Which engine events are notices for people: a gate requested, escalated or decided, and a
//! deployment finished; and handing them to the workspace's webhooks as events are published.
//!
//! Owns: the mapping from an [`Event`] to a governance [`Notice`] (with the webhooks an
//! escalation step names). Must not touch: delivery, bodies, retries (`governance::notify`).

use super::event::{Event, EventKind};
use super::Engine;
use crate::governance::notify::Notice;

/// The notice for an event, and the webhooks named by it (an escalation step's `notify`), if any.
pub fn notice(ev: &Event) -> Option<(Notice, Option<Vec<String>>)> {
    let mk = |event: &'static str, text: String, detail: serde_json::Value| Notice {
        event,
        deployment: ev.deployment.clone(),
        run: ev.run,
        ts: ev.ts.clone(),
        text,
        detail,
    };
    let d = &ev.deployment;
    Some(match &ev.kind {
        EventKind::GateWaiting { gate, hint, .. } => (
            mk(
                "gate_requested",
                format!("{d} (run #{}) waits for approval at gate {gate}: {hint}", ev.run),
                serde_json::json!({"gate": gate, "hint": hint}),
            ),
            None,
        ),
        EventKind::GateEscalated {
            gate,
            step,
            description,
            notify,
            action,
        } => (
            mk(
                "gate_escalated",
                format!(
                    "{d} (run #{}): gate {gate} is still waiting; escalation step {}: {description}",
                    ev.run,
                    step + 1
                ),
                serde_json::json!({"gate": gate, "step": step + 1, "did": description, "action": action}),
            ),
            Some(notify.clone()),
        ),
        EventKind::GateApproved { gate, by, comment } => (
            mk(
                "gate_decided",
                format!("{d} (run #{}): gate {gate} approved by {by}", ev.run),
                serde_json::json!({"gate": gate, "decision": "approved", "by": by, "comment": comment}),
            ),
            None,
        ),
        EventKind::GateRejected { gate, by, reason } => (
            mk(
                "gate_decided",
                format!("{d} (run #{}): gate {gate} rejected by {by}: {reason}", ev.run),
                serde_json::json!({"gate": gate, "decision": "rejected", "by": by, "reason": reason}),
            ),
            None,
        ),
        EventKind::Finished { outcome, reason, .. } => (
            mk(
                "deployment_finished",
                format!("{d} (run #{}) {}: {reason}", ev.run, outcome.as_str()),
                serde_json::json!({"outcome": outcome, "reason": reason}),
            ),
            None,
        ),
        _ => return None,
    })
}

impl Engine {
    /// Publish an event: hand its notice (if it is one) to the webhooks, then broadcast it.
    /// The notice is queued before anyone hears of the event, so a process that stops when it
    /// sees a run finish finds that run's notices in flight, and its shutdown waits for them.
    pub(super) fn publish(&self, ev: Event) {
        if let Some(hooks) = &self.inner.webhooks {
            if let Some((n, named)) = notice(&ev) {
                hooks.send(&n, named.as_deref());
            }
        }
        let _ = self.inner.events.send(ev);
    }
}
