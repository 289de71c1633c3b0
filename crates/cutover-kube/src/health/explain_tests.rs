//! Pod and Event fixtures as kubelet and the scheduler write them, one per failure.

use super::*;
use serde_json::{json, Value};

fn pod(status: Value) -> Pod {
    let p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "api-1a2b3c4d5e-6b7c8-x2x9z", "namespace": "shop", "uid": "pod-uid-1",
            "labels": {"cutover.dev/revision": "1a2b3c4d5e"},
            "creationTimestamp": "2026-12-01T14:00:00Z",
        },
        "spec": {"containers": [{"name": "api", "image": "shop/api:9.9"}]},
        "status": status,
    });
    match serde_json::from_value(p) {
        Ok(p) => p,
        Err(e) => panic!("pod fixture: {e}"),
    }
}

fn event(reason: &str, kind: &str, message: &str, at: &str) -> Event {
    let e = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("api.{reason}.{at}"), "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "namespace": "shop",
                           "name": "api-1a2b3c4d5e-6b7c8-x2x9z", "uid": "pod-uid-1"},
        "reason": reason, "type": kind, "message": message,
        "lastTimestamp": at, "count": 3,
    });
    match serde_json::from_value(e) {
        Ok(e) => e,
        Err(e) => panic!("event fixture: {e}"),
    }
}

fn conditions(ready: bool) -> Value {
    let s = if ready { "True" } else { "False" };
    json!([
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": s},
        {"type": "Ready", "status": s},
    ])
}

fn waiting(reason: &str, message: &str, restarts: i32, last: Value) -> Value {
    json!({
        "phase": if reason == "ErrImagePull" || reason == "ImagePullBackOff" { "Pending" } else { "Running" },
        "conditions": conditions(false),
        "containerStatuses": [{
            "name": "api", "image": "shop/api:9.9", "imageID": "", "ready": false,
            "restartCount": restarts, "started": false,
            "state": {"waiting": {"reason": reason, "message": message}},
            "lastState": last,
        }],
    })
}

#[test]
fn image_pull_backoff_names_the_image() {
    let p = pod(waiting(
        "ImagePullBackOff",
        "Back-off pulling image \"shop/api:9.9\"",
        0,
        json!({}),
    ));
    let f = explain(&p, &[]);
    assert_eq!(
        f,
        Some(PodFailure::ImagePull {
            image: "shop/api:9.9".into(),
            message: "Back-off pulling image \"shop/api:9.9\"".into()
        })
    );
    assert_eq!(
        f.map(|f| f.to_string()).unwrap_or_default(),
        "ImagePullBackOff: cannot pull image shop/api:9.9 (Back-off pulling image \"shop/api:9.9\")"
    );
    assert_eq!(status_reason(&p).as_deref(), Some("ImagePullBackOff"));
}

#[test]
fn err_image_pull_is_an_image_pull_failure() {
    let p = pod(waiting(
        "ErrImagePull",
        "failed to pull and unpack image \"docker.io/shop/api:9.9\": not found",
        0,
        json!({}),
    ));
    assert!(matches!(
        explain(&p, &[]),
        Some(PodFailure::ImagePull { ref image, ref message })
            if image == "shop/api:9.9" && message.ends_with("not found")
    ));
}

#[test]
fn crash_loop_counts_restarts_and_the_last_exit_code() {
    let p = pod(waiting(
        "CrashLoopBackOff",
        "back-off 1m20s restarting failed container=api pod=api-1a2b3c4d5e-6b7c8-x2x9z",
        5,
        json!({"terminated": {"exitCode": 1, "reason": "Error",
                              "startedAt": "2026-12-01T14:02:00Z", "finishedAt": "2026-12-01T14:02:01Z"}}),
    ));
    let f = explain(&p, &[]);
    assert_eq!(
        f,
        Some(PodFailure::CrashLoop {
            container: "api".into(),
            restarts: 5,
            exit_code: Some(1),
            message: String::new()
        })
    );
    assert_eq!(
        f.map(|f| f.to_string()).unwrap_or_default(),
        "CrashLoopBackOff: container api restarted 5 times, last exit code 1"
    );
}

#[test]
fn crash_loop_carries_the_termination_message() {
    let p = pod(waiting(
        "CrashLoopBackOff",
        "back-off",
        2,
        json!({"terminated": {"exitCode": 2, "reason": "Error",
                              "message": "panic: DATABASE_URL\nis not set"}}),
    ));
    assert_eq!(
        explain(&p, &[]).map(|f| f.to_string()).unwrap_or_default(),
        "CrashLoopBackOff: container api restarted 2 times, last exit code 2: panic: DATABASE_URL is not set"
    );
}

#[test]
fn oom_killed_from_the_last_state() {
    let p = pod(waiting(
        "CrashLoopBackOff",
        "back-off",
        3,
        json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
    ));
    let f = explain(&p, &[]);
    assert_eq!(
        f,
        Some(PodFailure::OomKilled {
            container: "api".into()
        })
    );
    assert_eq!(
        f.map(|f| f.to_string()).unwrap_or_default(),
        "OOMKilled: container api ran out of memory (raise resources.memory)"
    );
    // Restarted after the kill, running, not ready yet: still the OOM kill.
    let running = pod(json!({
        "phase": "Running", "conditions": conditions(false),
        "containerStatuses": [{
            "name": "api", "image": "shop/api:9.9", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"running": {"startedAt": "2026-12-01T14:03:00Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        }],
    }));
    assert!(matches!(
        explain(&running, &[]),
        Some(PodFailure::OomKilled { .. })
    ));
}

#[test]
fn unschedulable_carries_the_schedulers_message() {
    let p = pod(json!({
        "phase": "Pending",
        "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory.",
        }],
    }));
    let f = explain(&p, &[]);
    assert_eq!(
        f.map(|f| f.to_string()).unwrap_or_default(),
        "Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
    );
    assert_eq!(status_reason(&p).as_deref(), Some("Unschedulable"));
}

fn running(ready: bool) -> Pod {
    pod(json!({
        "phase": "Running", "conditions": conditions(ready),
        "containerStatuses": [{
            "name": "api", "image": "shop/api:9.9", "imageID": "", "ready": ready, "restartCount": 0,
            "started": true, "state": {"running": {"startedAt": "2026-12-01T14:00:05Z"}},
        }],
    }))
}

#[test]
fn readiness_failures_come_from_unhealthy_events() {
    let events = [
        event(
            "Unhealthy",
            "Warning",
            "Readiness probe failed: Get \"http://10.1.0.7:8080/healthz\": connection refused",
            "2026-12-01T14:00:10Z",
        ),
        event(
            "Unhealthy",
            "Warning",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "2026-12-01T14:00:40Z",
        ),
        event(
            "Pulled",
            "Normal",
            "Container image already present",
            "2026-12-01T14:00:50Z",
        ),
    ];
    let f = explain(&running(false), &events);
    assert_eq!(
        f.map(|f| f.to_string()).unwrap_or_default(),
        "readiness probe failing: HTTP probe failed with statuscode: 503"
    );
    // The same events about a pod that became ready explain nothing.
    assert_eq!(explain(&running(true), &events), None);
}

#[test]
fn events_about_other_pods_are_ignored() {
    let mut other = event(
        "Unhealthy",
        "Warning",
        "Readiness probe failed: HTTP probe failed with statuscode: 500",
        "2026-12-01T14:00:40Z",
    );
    other.involved_object.name = Some("api-1a2b3c4d5e-6b7c8-aaaaa".into());
    assert_eq!(explain(&running(false), &[other.clone()]), None);
    // Same name, an older pod (another uid).
    other.involved_object.name = Some("api-1a2b3c4d5e-6b7c8-x2x9z".into());
    other.involved_object.uid = Some("pod-uid-0".into());
    assert_eq!(explain(&running(false), &[other]), None);
}

#[test]
fn a_healthy_pod_explains_nothing() {
    let p = running(true);
    assert_eq!(explain(&p, &[]), None);
    assert_eq!(status_reason(&p), None);
}

#[test]
fn a_starting_pod_explains_nothing() {
    let creating = pod(json!({
        "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{
            "name": "api", "image": "shop/api:9.9", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }],
    }));
    assert_eq!(explain(&creating, &[]), None);
    let scheduling = pod(json!({"phase": "Pending"}));
    assert_eq!(explain(&scheduling, &[]), None);
    // Running, not ready yet, no probe failure reported.
    assert_eq!(explain(&running(false), &[]), None);
}

#[test]
fn other_waiting_reasons_and_evictions_are_named() {
    let p = pod(waiting(
        "CreateContainerConfigError",
        "secret \"api-db\" not found",
        0,
        json!({}),
    ));
    assert_eq!(
        explain(&p, &[]).map(|f| f.to_string()).unwrap_or_default(),
        "CreateContainerConfigError: secret \"api-db\" not found"
    );
    let evicted = pod(json!({
        "phase": "Failed", "reason": "Evicted",
        "message": "The node was low on resource: memory.",
    }));
    assert_eq!(
        explain(&evicted, &[]),
        Some(PodFailure::Other {
            reason: "Evicted".into(),
            message: "The node was low on resource: memory.".into()
        })
    );
    let mount = event(
        "FailedMount",
        "Warning",
        "MountVolume.SetUp failed for volume \"config\" : configmap \"api\" not found",
        "2026-12-01T14:00:20Z",
    );
    let creating = pod(json!({
        "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{
            "name": "api", "image": "shop/api:9.9", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }],
    }));
    assert!(matches!(
        explain(&creating, &[mount]),
        Some(PodFailure::Other { ref reason, .. }) if reason == "FailedMount"
    ));
}

#[test]
fn a_terminating_pod_is_not_ready() {
    let mut p = running(true);
    assert!(crate::health::PodView::of(&p, &[]).ready);
    p.metadata.deletion_timestamp = p.metadata.creation_timestamp.clone();
    assert!(
        !crate::health::PodView::of(&p, &[]).ready,
        "it has left the endpoints"
    );
}
