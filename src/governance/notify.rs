//! Notifications: webhooks for gate requested, escalated, decided and deployment finished, with
//! a generic JSON body or a Slack-compatible one (`{"text": ...}`). Deliveries are queued and
//! retried with backoff on their own task, so a slow or dead endpoint never holds up a
//! deployment; [`Webhooks`] knows which are in flight, so that a process can wait for them
//! (for a bounded time) before it exits.
//!
//! Owns: the [`Notice`], which webhooks get it, their bodies, and delivering them (queue,
//! retries, draining). Must not touch: the engine. The engine decides which of its events are
//! notices (`engine::notify`) and hands them to a [`Webhooks`].

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::config::{Webhook, WebhookFormat, Workspace};

/// Attempts per delivery, and the first backoff (doubling).
pub const ATTEMPTS: u32 = 5;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// At most this many deliveries in flight; more are dropped (and logged), never waited for.
pub const QUEUE: usize = 1024;

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
    if hook.format == WebhookFormat::Slack {
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

/// The deliverer of a workspace's webhooks, and the owner of its deliveries. Sending never
/// waits: each delivery retries on its own task. [`Webhooks::drain`] waits for those in flight.
pub struct Webhooks {
    ws: Arc<Workspace>,
    client: reqwest::Client,
    rt: tokio::runtime::Handle,
    inflight: Arc<Inflight>,
}

/// The deliveries in flight, and whether new ones are taken.
struct Inflight {
    jobs: Mutex<Jobs>,
    /// Signalled when the last delivery in flight ends.
    idle: Condvar,
}

#[derive(Default)]
struct Jobs {
    next: u64,
    /// False once draining started: later notices are dropped (and logged).
    closed: bool,
    /// Each delivery in flight: what it is (for the log), and its task.
    running: BTreeMap<u64, (String, Option<AbortHandle>)>,
}

impl Inflight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn done(&self, id: u64) {
        let mut jobs = self.lock();
        jobs.running.remove(&id);
        if jobs.running.is_empty() {
            self.idle.notify_all();
        }
    }
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
        let client = match crate::net::client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("webhooks disabled: cannot build an HTTP client: {e}");
                return None;
            }
        };
        Some(Webhooks {
            ws,
            client,
            rt,
            inflight: Arc::new(Inflight {
                jobs: Mutex::new(Jobs::default()),
                idle: Condvar::new(),
            }),
        })
    }

    /// Queue a notice for the webhooks named (an escalation step's `notify`), or else for every
    /// webhook that wants its kind of event.
    pub fn send(&self, n: &Notice, named: Option<&[String]>) {
        for hook in targets(&self.ws, n, named) {
            let what = format!(
                "{} of {} (run #{}) to webhook {}",
                n.event, n.deployment, n.run, hook.name
            );
            let mut jobs = self.inflight.lock();
            if jobs.closed {
                tracing::warn!("{what}: dropped (shutting down)");
                continue;
            }
            if jobs.running.len() >= QUEUE {
                tracing::warn!("{what}: dropped (queue full)");
                continue;
            }
            let id = jobs.next;
            jobs.next += 1;
            let job = Job {
                url: hook.url.clone(),
                name: hook.name.clone(),
                body: body(hook, n),
            };
            let (client, inflight) = (self.client.clone(), self.inflight.clone());
            // The task removes itself when it ends, after this lock is released.
            let task = self.rt.spawn(async move {
                deliver(&client, &job).await;
                inflight.done(id);
            });
            jobs.running.insert(id, (what, Some(task.abort_handle())));
        }
    }

    /// Take no more notices and wait, at most `grace` of real time, for the deliveries in
    /// flight (retries included) to end. Those still going then are stopped, logged, and
    /// returned (what they were).
    pub async fn drain(&self, grace: Duration) -> Vec<String> {
        let inflight = self.inflight.clone();
        // Wait on a blocking thread, against the wall clock: on a paused (virtual) tokio clock a
        // timer would run out at once while the deliveries wait on the network.
        let left = tokio::task::spawn_blocking(move || {
            let mut jobs = inflight.lock();
            jobs.closed = true;
            let (mut jobs, _) = inflight
                .idle
                .wait_timeout_while(jobs, grace, |j| !j.running.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut jobs.running)
        })
        .await;
        let left = match left {
            Ok(left) => left,
            Err(e) => {
                tracing::error!("webhooks: waiting for deliveries failed: {e}");
                return vec!["(unknown: waiting failed)".into()];
            }
        };
        left.into_values()
            .map(|(what, task)| {
                if let Some(t) = task {
                    t.abort();
                }
                tracing::warn!("{what}: not delivered within {grace:?} of shutting down; dropped");
                what
            })
            .collect()
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
