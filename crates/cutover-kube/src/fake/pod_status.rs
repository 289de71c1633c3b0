//! The status a simulated kubelet writes for a pod, from its [`PodBehaviour`] and age, and the
//! Warning events that go with it.
//!
//! Owns: the shape of pod status (phase, conditions, containerStatuses) per behaviour.
//! Must not touch: the store (the simulation writes what this returns).

use std::time::Duration;

use serde_json::{json, Value};

use super::sim::UNSCHEDULABLE;
use super::PodBehaviour;

/// `(reason, message, reporting component)` of a Warning event.
pub(crate) type EventSpec = (&'static str, String, &'static str);

fn cond(t: &str, ok: bool) -> Value {
    json!({"type": t, "status": if ok { "True" } else { "False" }})
}

fn not_ready(t: &str, unready: &[String]) -> Value {
    json!({"type": t, "status": "False", "reason": "ContainersNotReady",
        "message": format!("containers with unready status: [{}]", unready.join(" "))})
}

/// The pod's status, and the events its state calls for (emitted once each by the caller).
pub(crate) fn status(
    pod: &Value,
    b: PodBehaviour,
    age: Duration,
    ready_delay: Duration,
    restart_every: Duration,
    ip: &str,
) -> (Value, Vec<EventSpec>) {
    let created = pod
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let containers: Vec<(String, String)> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| {
                        c.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    (s("name"), s("image"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut events = Vec::new();

    if b == PodBehaviour::Unschedulable {
        let scheduled = json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": UNSCHEDULABLE});
        events.push((
            "FailedScheduling",
            UNSCHEDULABLE.to_string(),
            "default-scheduler",
        ));
        return (
            json!({"phase": "Pending", "qosClass": "BestEffort", "conditions": [scheduled]}),
            events,
        );
    }

    let started = age >= ready_delay;
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let mut phase = if started { "Running" } else { "Pending" };
    for (i, (name, image)) in containers.iter().enumerate() {
        let cid = format!(
            "containerd://{}",
            uid.chars()
                .filter(|c| *c != '-')
                .take(24)
                .collect::<String>()
        );
        let mut st = json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}});
        if started {
            st["imageID"] = json!(format!("{image}@sha256:0000"));
            st["containerID"] = json!(cid);
            let running = json!({"running": {"startedAt": created}});
            match (i, b) {
                (0, PodBehaviour::ImagePullBackOff) => {
                    phase = "Pending";
                    st["imageID"] = json!("");
                    st.as_object_mut().map(|m| m.remove("containerID"));
                    let msg = format!("Back-off pulling image \"{image}\"");
                    st["state"] =
                        json!({"waiting": {"reason": "ImagePullBackOff", "message": msg}});
                    events.push((
                        "Failed",
                        format!("Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"),
                        "kubelet",
                    ));
                    events.push(("BackOff", msg, "kubelet"));
                }
                (0, PodBehaviour::CrashLoopBackOff | PodBehaviour::OomKilled) => {
                    let since = age.saturating_sub(ready_delay).as_millis()
                        / restart_every.as_millis().max(1);
                    let restarts = 1 + u64::try_from(since).unwrap_or(u64::MAX / 2);
                    let (exit, reason) = if b == PodBehaviour::OomKilled {
                        (137, "OOMKilled")
                    } else {
                        (1, "Error")
                    };
                    st["restartCount"] = json!(restarts);
                    let msg = format!("back-off 10s restarting failed container={name} pod={pod_name}_{ns}({uid})");
                    st["state"] =
                        json!({"waiting": {"reason": "CrashLoopBackOff", "message": msg}});
                    st["lastState"] = json!({"terminated": {"exitCode": exit, "reason": reason, "startedAt": created,
                        "finishedAt": created, "containerID": cid}});
                    events.push(("BackOff", format!("Back-off restarting failed container {name} in pod {pod_name}_{ns}({uid})"), "kubelet"));
                }
                (0, PodBehaviour::ReadinessFails) => {
                    st["started"] = json!(true);
                    st["state"] = running;
                    events.push((
                        "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503"
                            .to_string(),
                        "kubelet",
                    ));
                }
                _ => {
                    st["started"] = json!(true);
                    st["ready"] = json!(true);
                    st["state"] = running;
                }
            }
        }
        if st["ready"] != json!(true) {
            unready.push(name.clone());
        }
        statuses.push(st);
    }
    let all_ready = unready.is_empty() && !containers.is_empty();
    let (ready, containers_ready) = if all_ready {
        (cond("Ready", true), cond("ContainersReady", true))
    } else {
        (
            not_ready("Ready", &unready),
            not_ready("ContainersReady", &unready),
        )
    };
    let conditions = json!([
        cond("PodReadyToStartContainers", started),
        cond("Initialized", true),
        ready,
        containers_ready,
        cond("PodScheduled", true)
    ]);
    let mut status = json!({"phase": phase, "conditions": conditions, "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
        "startTime": created, "containerStatuses": statuses, "qosClass": "BestEffort"});
    if started {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    (status, events)
}
