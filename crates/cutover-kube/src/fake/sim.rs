//! The controller and kubelet simulation behind the fake API server: Deployments get pods (one
//! pod template hash at a time, recreate-style), pods get a status and Warning events from their
//! [`PodBehaviour`], Deployments get the status the real controller writes.
//!
//! Owns: the simulation task's per-object memory (when a pod was born, which events it emitted,
//! when a Deployment last progressed). Must not touch: requests (it writes through the store
//! like a controller would, never through HTTP).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::kinds::Kind;
use super::ops::delete_owned;
use super::select::canonical;
use super::world::{now_rfc3339, short_id, World};
use super::{lock, PodBehaviour, Shared};

/// The simulation's clock for time-driven changes (ready delay, restarts, progress deadline).
const TICK: Duration = Duration::from_millis(25);
/// The most pods the simulation keeps for one Deployment.
const MAX_PODS: i64 = 1000;
/// A crash-looping container restarts this often.
const RESTART_EVERY: Duration = Duration::from_millis(200);
pub(crate) const NODE: &str = "fake-node-1";
pub(crate) const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 Insufficient memory.";

/// What tests set.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub behaviours: Vec<(String, PodBehaviour)>,
    pub ready_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            behaviours: Vec::new(),
            ready_delay: Duration::from_millis(100),
        }
    }
}

impl Settings {
    /// The behaviour of the pod whose first container runs `image` (the last matching rule wins).
    fn behaviour(&self, image: &str) -> PodBehaviour {
        self.behaviours
            .iter()
            .rev()
            .find(|(s, _)| image.contains(s.as_str()))
            .map_or(PodBehaviour::Ready, |(_, b)| *b)
    }
}

struct PodTrack {
    born: Instant,
    ip: String,
    events: HashSet<&'static str>,
}

struct DeployTrack {
    progress: (i64, i64, i64, i64, i64),
    since: Instant,
}

#[derive(Default)]
struct Sim {
    pods: HashMap<String, PodTrack>,
    deploys: HashMap<String, DeployTrack>,
    counter: u64,
}

/// Runs until the server drops (its owner aborts this task) or the store's channel closes.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut rx = lock(&shared.world).subscribe();
    let mut sim = Sim::default();
    loop {
        tokio::select! {
            r = rx.recv() => {
                if matches!(r, Err(RecvError::Closed)) {
                    return;
                }
                while rx.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(TICK) => {}
        }
        let settings = lock(&shared.sim).clone();
        let mut w = lock(&shared.world);
        sim.reconcile(&mut w, &settings, Instant::now());
    }
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r["kind"] == "Deployment")?
        .get("uid")?
        .as_str()
}

/// `maxUnavailable` resolved against `replicas` (rounded down, as the controller does).
fn max_unavailable(d: &Value, replicas: i64) -> i64 {
    if str_at(d, "/spec/strategy/type") == "Recreate" || replicas == 0 {
        return 0;
    }
    let v = d
        .pointer("/spec/strategy/rollingUpdate/maxUnavailable")
        .cloned()
        .unwrap_or(json!("25%"));
    let n = match &v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s
            .trim_end_matches('%')
            .parse::<i64>()
            .map_or(0, |p| replicas.saturating_mul(p) / 100),
        _ => 0,
    };
    n.clamp(0, replicas)
}

impl Sim {
    fn reconcile(&mut self, w: &mut World, s: &Settings, now: Instant) {
        let deploys: Vec<Value> = w
            .list(Kind::Deployment, None)
            .into_iter()
            .cloned()
            .collect();
        let live: HashSet<String> = deploys
            .iter()
            .map(|d| str_at(d, "/metadata/uid").to_string())
            .collect();
        // Garbage collection: pods whose Deployment is gone.
        let orphans: Vec<(String, String)> = w
            .list(Kind::Pod, None)
            .into_iter()
            .filter(|p| owner_uid(p).is_some_and(|u| !live.contains(u)))
            .map(|p| {
                (
                    str_at(p, "/metadata/namespace").to_string(),
                    str_at(p, "/metadata/name").to_string(),
                )
            })
            .collect();
        for (ns, name) in orphans {
            let _ = w.delete(Kind::Pod, &ns, &name);
        }
        for d in &deploys {
            self.scale(w, d, s);
        }
        self.kubelet(w, s, now);
        for d in &deploys {
            self.deployment_status(w, d, now);
        }
        self.deploys.retain(|uid, _| live.contains(uid));
        let routes: Vec<Value> = w.list(Kind::HttpRoute, None).into_iter().cloned().collect();
        for r in &routes {
            route_status(w, r);
        }
    }

    /// Keeps `spec.replicas` pods of the current template; deletes the others.
    fn scale(&mut self, w: &mut World, d: &Value, s: &Settings) {
        let (ns, uid) = (str_at(d, "/metadata/namespace"), str_at(d, "/metadata/uid"));
        // A seeded object may ask for anything: the simulation runs at most MAX_PODS.
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .clamp(0, MAX_PODS);
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = short_id(&canonical(&template), 10);
        let owned: Vec<Value> = w
            .list(Kind::Pod, Some(ns))
            .into_iter()
            .filter(|p| owner_uid(p) == Some(uid))
            .cloned()
            .collect();
        let (mut current, old): (Vec<Value>, Vec<Value>) = owned
            .into_iter()
            .partition(|p| str_at(p, "/metadata/labels/pod-template-hash") == hash);
        for p in old {
            let _ = w.delete(Kind::Pod, ns, str_at(&p, "/metadata/name"));
        }
        // Extra pods: the unready first, then the youngest (names sort by creation within a tick).
        current.sort_by_key(|p| {
            (
                is_ready(p),
                std::cmp::Reverse(str_at(p, "/metadata/creationTimestamp").to_string()),
            )
        });
        let mut n = i64::try_from(current.len()).unwrap_or(i64::MAX);
        for p in &current {
            if n <= replicas {
                break;
            }
            let _ = w.delete(Kind::Pod, ns, str_at(p, "/metadata/name"));
            n -= 1;
        }
        while n < replicas {
            let pod = self.new_pod(w, d, &template, &hash, s);
            if w.create(Kind::Pod, ns, pod).is_err() {
                break;
            }
            n += 1;
        }
    }

    fn new_pod(
        &mut self,
        w: &World,
        d: &Value,
        template: &Value,
        hash: &str,
        s: &Settings,
    ) -> Value {
        let (ns, name, uid) = (
            str_at(d, "/metadata/namespace"),
            str_at(d, "/metadata/name"),
            str_at(d, "/metadata/uid"),
        );
        let pod_name = loop {
            self.counter += 1;
            let candidate = format!(
                "{name}-{hash}-{}",
                short_id(&format!("{uid}/{}", self.counter), 5)
            );
            if w.get(Kind::Pod, ns, &candidate).is_none() {
                break candidate;
            }
        };
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(json!({}));
        if labels.is_object() {
            labels["pod-template-hash"] = json!(hash);
        }
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        let image = spec
            .pointer("/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if s.behaviour(image) != PodBehaviour::Unschedulable && spec.is_object() {
            spec["nodeName"] = json!(NODE);
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": pod_name, "generateName": format!("{name}-{hash}-"), "namespace": ns, "labels": labels,
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"}
        })
    }

    /// Writes every pod's status from its behaviour and age; emits its Warning events once.
    fn kubelet(&mut self, w: &mut World, s: &Settings, now: Instant) {
        let pods: Vec<Value> = w.list(Kind::Pod, None).into_iter().cloned().collect();
        let live: HashSet<String> = pods
            .iter()
            .map(|p| str_at(p, "/metadata/uid").to_string())
            .collect();
        self.pods.retain(|uid, _| live.contains(uid));
        for pod in pods {
            let uid = str_at(&pod, "/metadata/uid").to_string();
            let n = self.pods.len();
            let track = self.pods.entry(uid).or_insert_with(|| PodTrack {
                born: now,
                ip: format!("10.244.{}.{}", n / 250 % 250, n % 250 + 2),
                events: HashSet::new(),
            });
            let image = str_at(&pod, "/spec/containers/0/image").to_string();
            let b = s.behaviour(&image);
            let age = now.saturating_duration_since(track.born);
            let (status, events) =
                super::pod_status::status(&pod, b, age, s.ready_delay, RESTART_EVERY, &track.ip);
            let mut new_events = Vec::new();
            for (reason, message, component) in events {
                if track.events.insert(reason) {
                    new_events.push((reason, message, component));
                }
            }
            write_status(w, Kind::Pod, &pod, status);
            for (reason, message, component) in new_events {
                emit_event(w, &pod, reason, &message, component);
            }
        }
    }

    fn deployment_status(&mut self, w: &mut World, d: &Value, now: Instant) {
        let (ns, name, uid) = (
            str_at(d, "/metadata/namespace"),
            str_at(d, "/metadata/name"),
            str_at(d, "/metadata/uid"),
        );
        let Some(d) = w.get(Kind::Deployment, ns, name).cloned() else {
            return;
        };
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .clamp(0, MAX_PODS);
        let generation = d
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let hash = short_id(
            &canonical(d.pointer("/spec/template").unwrap_or(&Value::Null)),
            10,
        );
        let pods: Vec<&Value> = w
            .list(Kind::Pod, Some(ns))
            .into_iter()
            .filter(|p| owner_uid(p) == Some(uid))
            .collect();
        let total = i64::try_from(pods.len()).unwrap_or(0);
        let updated = i64::try_from(
            pods.iter()
                .filter(|p| str_at(p, "/metadata/labels/pod-template-hash") == hash)
                .count(),
        )
        .unwrap_or(0);
        let ready = i64::try_from(pods.iter().filter(|p| is_ready(p)).count()).unwrap_or(0);
        let available = ready;
        let key = (generation, total, updated, ready, available);
        let track = self.deploys.entry(uid.to_string()).or_insert(DeployTrack {
            progress: key,
            since: now,
        });
        if track.progress != key {
            *track = DeployTrack {
                progress: key,
                since: now,
            };
        }
        let deadline = Duration::from_secs(
            d.pointer("/spec/progressDeadlineSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(600),
        );
        let rs = format!("{name}-{hash}");
        let complete = updated == replicas && available == replicas && total == replicas;
        let progressing = if complete {
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                "message": format!("ReplicaSet \"{rs}\" has successfully progressed.")})
        } else if now.saturating_duration_since(track.since) > deadline {
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{rs}\" has timed out progressing.")})
        } else {
            json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                "message": format!("ReplicaSet \"{rs}\" is progressing.")})
        };
        let available_cond = if available >= replicas - max_unavailable(&d, replicas) {
            json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
        } else {
            json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
        };
        let mut status =
            json!({"observedGeneration": generation, "conditions": [available_cond, progressing]});
        let unavailable = (replicas - available).max(0);
        for (k, v) in [
            ("replicas", total),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ] {
            if v > 0 {
                status[k] = json!(v);
            }
        }
        write_status(w, Kind::Deployment, &d, status);
    }
}

/// A gateway controller's view of an HTTPRoute: every parent accepts it; references resolve
/// when every backend Service exists (else `ResolvedRefs=False`, reason `BackendNotFound`).
fn route_status(w: &mut World, r: &Value) {
    let ns = str_at(r, "/metadata/namespace");
    let generation = r
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let backends = r
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("backendRefs").and_then(Value::as_array))
        .flatten();
    let missing: Vec<String> = backends
        .filter_map(|b| b.get("name").and_then(Value::as_str))
        .filter(|name| w.get(Kind::Service, ns, name).is_none())
        .map(str::to_string)
        .collect();
    let resolved = if missing.is_empty() {
        json!({"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
            "message": "All references resolved", "observedGeneration": generation})
    } else {
        json!({"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound",
            "message": format!("Services not found: {}", missing.join(", ")), "observedGeneration": generation})
    };
    let accepted = json!({"type": "Accepted", "status": "True", "reason": "Accepted",
        "message": "Route is accepted", "observedGeneration": generation});
    let parents: Vec<Value> = r
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            json!({"parentRef": p, "controllerName": "cutover.dev/fake-gateway-controller",
                "conditions": [accepted.clone(), resolved.clone()]})
        })
        .collect();
    let mut status = json!({"parents": parents});
    // Conditions nested in parents keep their transition times like top-level ones.
    if let Some(old) = r.pointer("/status/parents").and_then(Value::as_array) {
        for (new, old) in status["parents"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(old)
        {
            for c in new["conditions"].as_array_mut().into_iter().flatten() {
                let prev = old["conditions"]
                    .as_array()
                    .and_then(|a| a.iter().find(|o| o["type"] == c["type"]));
                if let Some(p) = prev.filter(|p| p["status"] == c["status"]) {
                    c["lastTransitionTime"] = p["lastTransitionTime"].clone();
                }
            }
        }
    }
    let now = now_rfc3339();
    for p in status["parents"].as_array_mut().into_iter().flatten() {
        for c in p["conditions"].as_array_mut().into_iter().flatten() {
            if c["lastTransitionTime"].is_null() {
                c["lastTransitionTime"] = json!(now);
            }
        }
    }
    write_status(w, Kind::HttpRoute, r, status);
}

/// Removes times, so that a status is rewritten only when something besides a clock changed.
fn strip_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !(k.ends_with("Time") || k.ends_with("At") || k.ends_with("Timestamp"))
                })
                .map(|(k, v)| (k.clone(), strip_times(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_times).collect()),
        other => other.clone(),
    }
}

/// Writes `status` when it differs (besides times); conditions keep their transition times.
fn write_status(w: &mut World, kind: Kind, obj: &Value, mut status: Value) {
    let old = obj.get("status").cloned().unwrap_or(Value::Null);
    if let Some(conds) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        let now = now_rfc3339();
        for c in conds.iter_mut() {
            let prev = old
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|o| o["type"] == c["type"]));
            let same_status = prev.is_some_and(|p| p["status"] == c["status"]);
            let same_all = prev.is_some_and(|p| {
                p["status"] == c["status"]
                    && p["reason"] == c["reason"]
                    && p["message"] == c["message"]
            });
            c["lastTransitionTime"] = prev
                .filter(|_| same_status)
                .map_or(json!(now), |p| p["lastTransitionTime"].clone());
            if kind == Kind::Deployment {
                c["lastUpdateTime"] = prev
                    .filter(|_| same_all)
                    .map_or(json!(now), |p| p["lastUpdateTime"].clone());
            }
            if kind == Kind::Pod {
                c["lastProbeTime"] = Value::Null;
            }
        }
    }
    if strip_times(&old) == strip_times(&status) {
        return;
    }
    let mut new = obj.clone();
    new["status"] = status;
    let (ns, name) = (
        str_at(obj, "/metadata/namespace"),
        str_at(obj, "/metadata/name"),
    );
    let _ = w.update(kind, ns, name, new);
}

/// A core/v1 Warning Event about a pod.
fn emit_event(w: &mut World, pod: &Value, reason: &str, message: &str, component: &str) {
    let (ns, name) = (
        str_at(pod, "/metadata/namespace"),
        str_at(pod, "/metadata/name"),
    );
    let now = now_rfc3339();
    let container = str_at(pod, "/spec/containers/0/name");
    let mut involved = json!({"kind": "Pod", "namespace": ns, "name": name, "uid": pod["metadata"]["uid"],
        "apiVersion": "v1", "resourceVersion": pod["metadata"]["resourceVersion"]});
    if component == "kubelet" {
        involved["fieldPath"] = json!(format!("spec.containers{{{container}}}"));
    }
    let event_name = format!("{name}.{}", short_id(&format!("{name}/{reason}/{now}"), 16));
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name, "namespace": ns},
        "involvedObject": involved, "reason": reason, "message": message, "type": "Warning", "count": 1,
        "source": {"component": component, "host": if component == "kubelet" { NODE } else { "" }},
        "firstTimestamp": now, "lastTimestamp": now, "eventTime": null,
        "reportingComponent": component, "reportingInstance": if component == "kubelet" { NODE } else { "" }
    });
    let _ = w.create(Kind::Event, ns, ev);
}

/// Deletes a Deployment's pods now (used when a test deletes objects directly).
pub(crate) fn delete_pods_of(w: &mut World, d: &Value) {
    delete_owned(w, str_at(d, "/metadata/namespace"), &d["metadata"]["uid"]);
}
