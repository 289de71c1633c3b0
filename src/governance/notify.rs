//! Notifications: webhooks for gate requested, escalated, decided and deployment finished, with
//! a generic JSON body or a Slack-compatible one (`{"text": ...}`). Deliveries are queued and
//! retried with backoff on their own task, so a slow or dead endpoint never holds up a
//! deployment.
//!
//! Owns: turning engine events into webhook calls and delivering them. Must not touch: engine
//! state (it only listens to the event broadcast).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use super::config::{Webhook, Workspace};
use crate::engine::{Event, EventKind};

/// Attempts per delivery, and the first backoff (doubling).
pub const ATTEMPTS: u32 = 5;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// One notification: which event, in words, with the facts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notice {
    pub event: &'static str,
    pub deployment: String,
    pub run: i64,
    pub ts: String,
    pub text: String,
    pub detail: serde_json::Value,
}

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
        EventKind::Finished { outcome, reason } => (
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

/// The body a webhook gets.
pub fn body(hook: &Webhook, n: &Notice) -> serde_json::Value {
    if hook.format == "slack" {
        serde_json::json!({"text": format!("cutover: {}", n.text)})
    } else {
        serde_json::to_value(n).unwrap_or_default()
    }
}

/// Which webhooks get a notice: the escalation step's named ones, or every webhook that wants
/// this kind of event.
pub fn targets<'a>(ws: &'a Workspace, n: &Notice, named: Option<&[String]>) -> Vec<&'a Webhook> {
    match named {
        Some(names) => names.iter().filter_map(|name| ws.webhook(name)).collect(),
        None => ws
            .webhooks
            .iter()
            .filter(|w| w.events.is_empty() || w.events.iter().any(|e| e == n.event))
            .collect(),
    }
}

struct Job {
    url: String,
    name: String,
    body: serde_json::Value,
}

/// Listen to an engine's events and deliver their webhooks, if the workspace has any. Needs a
/// tokio runtime; without one it does nothing (and says so in the log).
pub fn spawn(ws: Arc<Workspace>, mut events: broadcast::Receiver<Event>) {
    if ws.webhooks.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("webhooks are configured but no runtime runs them");
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match crate::net::client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhooks disabled: cannot build an HTTP client: {e}");
            return;
        }
    };
    // A bounded queue: when endpoints are slow, notices are dropped (and logged), never waited for.
    let (tx, mut rx) = mpsc::channel::<Job>(1024);
    rt.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("webhooks: {n} events skipped (the engine ran ahead)");
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            let Some((n, named)) = notice(&ev) else {
                continue;
            };
            for hook in targets(&ws, &n, named.as_deref()) {
                let job = Job {
                    url: hook.url.clone(),
                    name: hook.name.clone(),
                    body: body(hook, &n),
                };
                if tx.try_send(job).is_err() {
                    tracing::warn!("webhook {}: queue full, {} dropped", hook.name, n.event);
                }
            }
        }
    });
    rt.spawn(async move {
        while let Some(job) = rx.recv().await {
            let client = client.clone();
            // Each delivery retries on its own, so one dead endpoint does not delay the others.
            tokio::spawn(async move { deliver(&client, &job).await });
        }
    });
}

async fn deliver(client: &reqwest::Client, job: &Job) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let why = match client.post(&job.url).json(&job.body).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!("webhook {}: delivered (attempt {attempt})", job.name);
                return;
            }
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => e.to_string(),
        };
        tracing::warn!("webhook {}: attempt {attempt} failed: {why}", job.name);
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    tracing::error!("webhook {}: gave up after {ATTEMPTS} attempts", job.name);
}
