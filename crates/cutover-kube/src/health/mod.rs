//! A component's pods, watched (not polled), and why those that fail do.
//!
//! Owns: [`PodWatch`] (a kube-runtime watcher and reflector on the component's Pods, another
//! watcher on the namespace's Pod events, both in tasks it owns and aborts on drop),
//! [`PodView`] (what the console's health pane shows) and, in [`explain`](explain()), the verdict on one
//! pod. Must not touch: the objects (it only lists and watches pods and events), rollout
//! decisions (the engine's).
//!
//! Cost: two watch streams per component (`GET pods?labelSelector=..&watch=true` and
//! `GET events?fieldSelector=involvedObject.kind=Pod&watch=true`), each after one list, resumed
//! from the last resourceVersion after a disconnection (kube-runtime relists on 410 Gone).

mod explain;

pub use explain::{explain, status_reason, PodFailure};

use crate::error::{from_kube, KubeError};
use crate::labels;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Events kept per pod (the most recent).
const EVENTS_PER_POD: usize = 8;
/// Pods whose events are kept; past it, those of pods the reflector no longer has go first,
/// then the least recently touched.
const EVENT_PODS: usize = 256;

/// One pod, as the console's health pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    pub name: String,
    /// The `cutover.dev/revision` label (the revision's short hash).
    pub revision: Option<String>,
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    /// The pod's `Ready` condition.
    pub ready: bool,
    /// Restarts of all its containers.
    pub restarts: u32,
    /// kubectl's STATUS when it says more than the phase (`CrashLoopBackOff`, `Terminating`, ...).
    pub reason: Option<String>,
    /// Since `metadata.creationTimestamp`, by the local clock (`None` without one).
    pub age: Option<Duration>,
    /// Why it does not serve, if it does not and the cause is known.
    pub failure: Option<PodFailure>,
}

impl PodView {
    /// The view of `pod` with its `events` (events about other pods are ignored).
    pub fn of(pod: &Pod, events: &[Event]) -> PodView {
        let status = pod.status.as_ref();
        let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
        let age =
            pod.metadata.creation_timestamp.as_ref().map(|t| {
                Duration::from_millis(u64::try_from(now - t.0.as_millisecond()).unwrap_or(0))
            });
        let restarts = status
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        PodView {
            name: pod.name_any(),
            revision: pod.labels().get(labels::REVISION).cloned(),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into()),
            // A terminating pod may still say Ready while it shuts down; it has left the
            // Service's endpoints and serves nothing new, so it does not count.
            ready: explain::pod_ready(pod) && pod.metadata.deletion_timestamp.is_none(),
            restarts,
            reason: status_reason(pod),
            age,
            failure: explain(pod, events),
        }
    }
}

/// Recent events per pod name, bounded.
#[derive(Default)]
struct EventLog {
    by_pod: HashMap<String, (u64, VecDeque<Event>)>,
    touched: u64,
}

impl EventLog {
    fn apply(&mut self, e: Event, live: &Store<Pod>) {
        let Some(pod) = e.involved_object.name.clone() else {
            return;
        };
        self.touched += 1;
        let touched = self.touched;
        let entry = self.by_pod.entry(pod).or_default();
        entry.0 = touched;
        let list = &mut entry.1;
        list.retain(|old| old.metadata.name != e.metadata.name);
        list.push_back(e);
        if list.len() > EVENTS_PER_POD {
            let mut sorted: Vec<Event> = list.drain(..).collect();
            sorted.sort_by_key(explain::event_millis);
            let skip = sorted.len() - EVENTS_PER_POD;
            list.extend(sorted.into_iter().skip(skip));
        }
        if self.by_pod.len() > EVENT_PODS {
            let live_names: std::collections::HashSet<String> =
                live.state().iter().map(|p| p.name_any()).collect();
            self.by_pod.retain(|name, _| live_names.contains(name));
            while self.by_pod.len() > EVENT_PODS {
                let oldest = self
                    .by_pod
                    .iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(name, _)| name.clone());
                match oldest {
                    Some(name) => self.by_pod.remove(&name),
                    None => break,
                };
            }
        }
    }

    fn delete(&mut self, e: &Event) {
        if let Some(pod) = e.involved_object.name.as_deref() {
            if let Some((_, list)) = self.by_pod.get_mut(pod) {
                list.retain(|old| old.metadata.name != e.metadata.name);
            }
        }
    }

    fn of(&self, pod: &str) -> Vec<Event> {
        self.by_pod
            .get(pod)
            .map(|(_, l)| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

const PODS: usize = 0;
const EVENTS: usize = 1;

/// State the watch tasks write and [`PodWatch`] reads.
struct Shared {
    events: Mutex<EventLog>,
    /// The pod watch's error, then the event watch's.
    errors: Mutex<[Option<KubeError>; 2]>,
    ready: AtomicBool,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn set_error(&self, which: usize, e: Option<KubeError>) {
        if let Ok(mut errors) = self.errors.lock() {
            let Some(slot) = errors.get_mut(which) else {
                return;
            };
            let changed = *slot != e;
            *slot = e;
            drop(errors);
            if changed {
                self.bump();
            }
        }
    }
}

/// A component's pods and their events, kept current by two watches.
pub struct PodWatch {
    pods: Store<Pod>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl PodWatch {
    /// Starts watching the pods matching `label_selector` in `namespace`, and the namespace's Pod
    /// events. Call it inside a tokio runtime (without one, the watch reports that as its error).
    pub fn start(client: Client, namespace: &str, label_selector: &str) -> PodWatch {
        let (pods, writer) = reflector::store::<Pod>();
        let (tx, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            events: Mutex::new(EventLog::default()),
            errors: Mutex::new([None, None]),
            ready: AtomicBool::new(false),
            changed: tx,
        });
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            shared.set_error(
                PODS,
                Some(KubeError::Config(
                    "the pod watch needs a tokio runtime".into(),
                )),
            );
            return PodWatch {
                pods,
                shared,
                tasks: Vec::new(),
            };
        };
        let ns = namespace.to_string();
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let pod_cfg = watcher::Config::default().labels(label_selector);
        let pod_task = {
            let shared = shared.clone();
            let ns = ns.clone();
            rt.spawn(async move {
                let stream = watcher(pod_api, pod_cfg)
                    .default_backoff()
                    .modify(|p| {
                        p.managed_fields_mut().clear();
                    })
                    .reflect(writer);
                let mut stream = std::pin::pin!(stream);
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(watcher::Event::Init) => {}
                        Ok(ev) => {
                            if matches!(ev, watcher::Event::InitDone) {
                                shared.ready.store(true, Ordering::SeqCst);
                            }
                            shared.set_error(PODS, None);
                            if !matches!(ev, watcher::Event::InitApply(_)) {
                                shared.bump();
                            }
                        }
                        Err(e) => {
                            if let Some(e) = watch_error(e, "pods", &ns) {
                                shared.set_error(PODS, Some(e));
                            }
                        }
                    }
                }
            })
        };
        let event_api: Api<Event> = Api::namespaced(client, namespace);
        let event_cfg = watcher::Config::default().fields("involvedObject.kind=Pod");
        let event_task = {
            let shared = shared.clone();
            let live = pods.clone();
            rt.spawn(async move {
                let stream = watcher(event_api, event_cfg).default_backoff().modify(|e| {
                    e.managed_fields_mut().clear();
                });
                let mut stream = std::pin::pin!(stream);
                // A relist (after a disconnection) replaces the log once it is complete.
                let mut relist: Option<EventLog> = None;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(watcher::Event::Init) => {
                            relist = Some(EventLog::default());
                            continue;
                        }
                        Ok(watcher::Event::InitApply(e)) => {
                            match relist.as_mut() {
                                Some(log) => log.apply(e, &live),
                                None => {
                                    if let Ok(mut log) = shared.events.lock() {
                                        log.apply(e, &live);
                                    }
                                }
                            }
                            continue;
                        }
                        Ok(watcher::Event::InitDone) => {
                            if let (Some(fresh), Ok(mut log)) =
                                (relist.take(), shared.events.lock())
                            {
                                *log = fresh;
                            }
                        }
                        Ok(watcher::Event::Apply(e)) => {
                            if let Ok(mut log) = shared.events.lock() {
                                log.apply(e, &live);
                            }
                        }
                        Ok(watcher::Event::Delete(e)) => {
                            if let Ok(mut log) = shared.events.lock() {
                                log.delete(&e);
                            }
                        }
                        Err(e) => {
                            if let Some(e) = watch_error(e, "events", &ns) {
                                shared.set_error(EVENTS, Some(e));
                            }
                            continue;
                        }
                    }
                    shared.set_error(EVENTS, None);
                    shared.bump();
                }
            })
        };
        PodWatch {
            pods,
            shared,
            tasks: vec![pod_task, event_task],
        }
    }

    /// Every watched pod, by name.
    pub fn pods(&self) -> Vec<PodView> {
        self.views(|_| true)
    }

    /// The pods of one revision (its `cutover.dev/revision` label), by name.
    pub fn pods_of(&self, revision_hash: &str) -> Vec<PodView> {
        self.views(|p| p.labels().get(labels::REVISION).map(String::as_str) == Some(revision_hash))
    }

    /// The pods of Deployment `deployment` by their owners (its ReplicaSets
    /// `<deployment>-<pod-template-hash>`, or the Deployment itself), not by labels: other
    /// workloads' pods may share the labels a watch selects by (a Deployment cutover adopted,
    /// whose `app` label cutover's new pods carry too).
    pub fn pods_owned_by(&self, deployment: &str) -> Vec<PodView> {
        self.views(|p| owned_by(p, deployment))
    }

    fn views(&self, keep: impl Fn(&Pod) -> bool) -> Vec<PodView> {
        let log = self.shared.events.lock().ok();
        let mut views: Vec<PodView> = self
            .pods
            .state()
            .iter()
            .filter(|p| keep(p))
            .map(|p| {
                let events = log
                    .as_ref()
                    .map(|l| l.of(&p.name_any()))
                    .unwrap_or_default();
                PodView::of(p, &events)
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }

    /// A counter bumped on every change of the pods, their events or the watch's error: await
    /// `changed()` on it instead of polling.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// The pods' initial list is done (until then [`pods`](Self::pods) may miss some).
    pub fn ready(&self) -> bool {
        self.shared.ready.load(Ordering::SeqCst)
    }

    /// Why the watch is failing now (cleared once it lists or watches again): 403 names the verb
    /// and resource needed.
    pub fn last_error(&self) -> Option<KubeError> {
        let errors = self.shared.errors.lock().ok()?;
        errors.iter().flatten().next().cloned()
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An operator's error for a watcher's, or `None` for 410 Gone (the watcher relists by itself).
fn watch_error(e: watcher::Error, resource: &str, namespace: &str) -> Option<KubeError> {
    Some(match e {
        watcher::Error::InitialListFailed(e) => from_kube(e, "list", resource, namespace, ""),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            from_kube(e, "watch", resource, namespace, "")
        }
        watcher::Error::WatchError(status) if status.code == 410 => return None,
        watcher::Error::WatchError(status) => {
            from_kube(kube::Error::Api(status), "watch", resource, namespace, "")
        }
        watcher::Error::NoResourceVersion => KubeError::Api {
            verb: "watch".into(),
            resource: resource.into(),
            name: String::new(),
            code: 0,
            message: "no metadata.resourceVersion in the list (does the resource support watch?)"
                .into(),
        },
    })
}

/// Whether `pod` belongs to Deployment `deployment`: owned by one of its ReplicaSets
/// (`<deployment>-<pod-template-hash>`) or by the Deployment itself.
pub fn owned_by(pod: &Pod, deployment: &str) -> bool {
    let prefix = format!("{deployment}-");
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| match o.kind.as_str() {
            "Deployment" => o.name == deployment,
            "ReplicaSet" => o
                .name
                .strip_prefix(&prefix)
                .is_some_and(|hash| !hash.is_empty() && !hash.contains('-')),
            _ => false,
        })
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
