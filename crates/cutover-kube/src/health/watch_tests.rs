//! [`PodWatch`] against a mocked API server (tower-test): the two lists, a watch event that
//! changes a pod, and a 403 that names the permission needed.

use super::*;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tokio::sync::mpsc;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn pod(name: &str, revision: &str, ready: bool, waiting: Option<(&str, i32)>) -> Value {
    let state = match waiting {
        Some((reason, _)) => json!({"waiting": {"reason": reason, "message": "back-off"}}),
        None => json!({"running": {"startedAt": "2026-12-01T14:00:05Z"}}),
    };
    let s = if ready { "True" } else { "False" };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": format!("uid-{name}"), "resourceVersion": "5",
            "labels": {"cutover.dev/component": "api", "cutover.dev/revision": revision},
            "creationTimestamp": "2026-12-01T14:00:00Z",
            "managedFields": [{"manager": "kubelet", "operation": "Update"}],
        },
        "spec": {"containers": [{"name": "api", "image": "shop/api:2"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": s}],
            "containerStatuses": [{
                "name": "api", "image": "shop/api:2", "imageID": "", "ready": ready,
                "restartCount": waiting.map(|w| w.1).unwrap_or(0), "state": state,
                "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
            }],
        },
    })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items})
}

fn reply(status: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    match Response::builder().status(status).body(Body::from(bytes)) {
        Ok(r) => r,
        Err(e) => panic!("response: {e}"),
    }
}

/// Answers lists by path; answers the first pods watch with `first_watch` lines, holds every
/// other watch open. Sends each request's path and query to `seen`.
fn serve(
    mut handle: Handle,
    pods: (u16, Value),
    events: Value,
    first_watch: Option<Vec<Value>>,
    seen: mpsc::UnboundedSender<String>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut first_watch = first_watch;
        while let Some((req, send)) = handle.next_request().await {
            let uri = req.uri().to_string();
            let _ = seen.send(uri.clone());
            let is_pods = uri.starts_with("/api/v1/namespaces/shop/pods?");
            let is_events = uri.starts_with("/api/v1/namespaces/shop/events?");
            assert!(is_pods || is_events, "unexpected request {uri}");
            if uri.contains("watch=true") {
                match first_watch.take().filter(|_| is_pods) {
                    Some(lines) => {
                        let mut body = Vec::new();
                        for l in lines {
                            body.extend(serde_json::to_vec(&l).unwrap_or_default());
                            body.push(b'\n');
                        }
                        send.send_response(Response::new(Body::from(body)));
                    }
                    None => held.push(send),
                }
            } else if is_pods {
                send.send_response(reply(pods.0, &pods.1));
            } else {
                send.send_response(reply(200, &events));
            }
        }
    })
}

async fn until(watch: &PodWatch, what: &str, ok: impl Fn(&PodWatch) -> bool) {
    let mut rx = watch.changed();
    let wait = async {
        while !ok(watch) {
            if rx.changed().await.is_err() {
                panic!("watch tasks ended while waiting for {what}");
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}");
    }
}

#[tokio::test]
async fn lists_then_follows_the_watch_and_explains_failures() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let unhealthy = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "api-b.1", "namespace": "shop", "resourceVersion": "7"},
        "involvedObject": {"kind": "Pod", "name": "api-b", "uid": "uid-api-b", "namespace": "shop"},
        "reason": "Unhealthy", "type": "Warning",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "lastTimestamp": "2026-12-01T14:01:00Z",
    });
    let pods = list(
        "PodList",
        vec![
            pod("api-a", "h1", true, None),
            pod("api-b", "h2", false, None),
            pod("api-c", "h2", false, Some(("CrashLoopBackOff", 4))),
        ],
    );
    let modified = json!({"type": "MODIFIED", "object": pod("api-b", "h2", true, None)});
    let server = serve(
        handle,
        (200, pods),
        list("EventList", vec![unhealthy]),
        Some(vec![modified]),
        seen_tx,
    );

    let watch = PodWatch::start(client, "shop", "cutover.dev/component=api");
    until(&watch, "the initial list", |w| {
        w.ready() && w.pods().len() == 3
    })
    .await;
    let c = watch.pods_of("h2");
    assert_eq!(
        c.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["api-b", "api-c"]
    );
    let crashing = &c[1];
    assert_eq!(crashing.restarts, 4);
    assert_eq!(crashing.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(crashing.revision.as_deref(), Some("h2"));
    assert_eq!(
        crashing.failure.as_ref().map(|f| f.to_string()).as_deref(),
        Some("CrashLoopBackOff: container api restarted 4 times, last exit code 3")
    );
    assert!(crashing.age.is_some());
    // The MODIFIED event made api-b ready: followed, not polled.
    until(&watch, "api-b ready", |w| {
        w.pods_of("h2").first().is_some_and(|p| p.ready)
    })
    .await;
    assert_eq!(watch.pods_of("h2")[0].failure, None);
    assert_eq!(watch.last_error(), None);

    let mut uris = Vec::new();
    while let Ok(u) = seen.try_recv() {
        uris.push(u);
    }
    assert!(
        uris.iter()
            .any(|u| u.starts_with("/api/v1/namespaces/shop/pods?")
                && u.contains("labelSelector=cutover.dev%2Fcomponent%3Dapi")
                && !u.contains("watch=true")),
        "{uris:?}"
    );
    assert!(
        uris.iter()
            .any(|u| u.starts_with("/api/v1/namespaces/shop/events?")
                && u.contains("fieldSelector=involvedObject.kind%3DPod")),
        "{uris:?}"
    );
    assert!(
        uris.iter()
            .any(|u| u.starts_with("/api/v1/namespaces/shop/pods?")
                && u.contains("watch=true")
                && u.contains("resourceVersion=10")),
        "{uris:?}"
    );
    drop(watch);
    server.abort();
}

#[tokio::test]
async fn readiness_failures_come_from_watched_events() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let unhealthy = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "api-b.1", "namespace": "shop", "resourceVersion": "7"},
        "involvedObject": {"kind": "Pod", "name": "api-b", "uid": "uid-api-b", "namespace": "shop"},
        "reason": "Unhealthy", "type": "Warning",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "lastTimestamp": "2026-12-01T14:01:00Z",
    });
    let server = serve(
        handle,
        (200, list("PodList", vec![pod("api-b", "h2", false, None)])),
        list("EventList", vec![unhealthy]),
        None,
        seen_tx,
    );
    let watch = PodWatch::start(client, "shop", "cutover.dev/component=api");
    until(&watch, "the readiness failure", |w| {
        w.pods().first().is_some_and(|p| p.failure.is_some())
    })
    .await;
    assert_eq!(
        watch.pods()[0].failure,
        Some(PodFailure::ReadinessFailing {
            message: "HTTP probe failed with statuscode: 503".into()
        })
    );
    drop(watch);
    server.abort();
}

#[tokio::test]
async fn a_forbidden_list_names_the_permission() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let forbidden = json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "pods is forbidden: User \"dev\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"",
    });
    let server = serve(
        handle,
        (403, forbidden),
        list("EventList", vec![]),
        None,
        seen_tx,
    );
    let watch = PodWatch::start(client, "shop", "cutover.dev/component=api");
    until(&watch, "the 403", |w| w.last_error().is_some()).await;
    assert!(!watch.ready());
    let e = watch.last_error();
    assert_eq!(
        e,
        Some(KubeError::Forbidden {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: "shop".into()
        })
    );
    assert!(e
        .map(|e| e.to_string())
        .unwrap_or_default()
        .starts_with("cutover needs list on pods in namespace shop"));
    drop(watch);
    server.abort();
}

#[tokio::test]
async fn dropping_the_watch_ends_its_tasks() {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let server = serve(
        handle,
        (200, list("PodList", vec![pod("api-a", "h1", true, None)])),
        list("EventList", vec![]),
        None,
        seen_tx,
    );
    let watch = PodWatch::start(client, "shop", "cutover.dev/component=api");
    until(&watch, "the initial list", |w| w.ready()).await;
    let mut rx = watch.changed();
    drop(watch);
    // The tasks held the only other references to the counter's sender: once they are
    // aborted and dropped, the receiver sees it closed.
    let closed = async { while rx.changed().await.is_ok() {} };
    assert!(
        tokio::time::timeout(Duration::from_secs(2), closed)
            .await
            .is_ok(),
        "the watch tasks outlived the PodWatch"
    );
    server.abort();
}

#[test]
fn a_deployments_pods_are_told_by_their_owners_not_their_labels() {
    let owned = |kind: &str, name: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"app": "api"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u"}]}
        }))
        .expect("pod")
    };
    assert!(owned_by(&owned("ReplicaSet", "api-7d9f8c6b5"), "api"));
    assert!(owned_by(&owned("Deployment", "api"), "api"));
    // cutover's revision `api-0123456789` has ReplicaSets `api-0123456789-<hash>`.
    assert!(!owned_by(
        &owned("ReplicaSet", "api-0123456789-7d9f8c"),
        "api"
    ));
    assert!(!owned_by(&owned("ReplicaSet", "web-7d9f8c6b5"), "api"));
    assert!(!owned_by(&owned("StatefulSet", "api"), "api"));
    let orphan: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("pod");
    assert!(!owned_by(&orphan, "api"));
}
