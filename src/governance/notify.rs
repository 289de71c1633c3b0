//! Notifications: webhooks for gate requested, escalated, decided and deployment finished, with
//! a generic JSON body or a Slack-compatible one (`{"text": ...}`). Deliveries are queued and
//! retried with backoff on their own task, so a slow or dead endpoint never holds up a
//! deployment.
//!
//! Owns: the [`Notice`], which webhooks get it, their bodies, and delivering them (queue,
//! retries). Must not touch: the engine. The engine decides which of its events are notices
//! (`engine::notify`) and hands them to a [`Webhooks`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::{Webhook, Workspace};

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

/// The deliverer of a workspace's webhooks. Sending never waits: a notice is queued, and each
/// delivery retries on its own task.
pub struct Webhooks {
    ws: Arc<Workspace>,
    queue: mpsc::Sender<Job>,
}

impl Webhooks {
    /// Start delivering the workspace's webhooks; `None` when it has none. Needs a tokio
    /// runtime; without one there is no deliverer (and the log says so).
    pub fn start(ws: Arc<Workspace>) -> Option<Webhooks> {
        if ws.webhooks.is_empty() {
            return None;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("webhooks are configured but no runtime runs them");
            return None;
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("webhooks disabled: cannot build an HTTP client: {e}");
                return None;
            }
        };
        // A bounded queue: when endpoints are slow, notices are dropped (and logged), never waited for.
        let (queue, mut rx) = mpsc::channel::<Job>(1024);
        rt.spawn(async move {
            while let Some(job) = rx.recv().await {
                let client = client.clone();
                // Each delivery retries on its own, so one dead endpoint does not delay the others.
                tokio::spawn(async move { deliver(&client, &job).await });
            }
        });
        Some(Webhooks { ws, queue })
    }

    /// Queue a notice for the webhooks named (an escalation step's `notify`), or else for every
    /// webhook that wants its kind of event.
    pub fn send(&self, n: &Notice, named: Option<&[String]>) {
        for hook in targets(&self.ws, n, named) {
            let job = Job {
                url: hook.url.clone(),
                name: hook.name.clone(),
                body: body(hook, n),
            };
            if self.queue.try_send(job).is_err() {
                tracing::warn!("webhook {}: queue full, {} dropped", hook.name, n.event);
            }
        }
    }
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
