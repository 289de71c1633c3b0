//! The fake API server driven through a real `kube::Client` over loopback HTTP.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{json, Value};

use super::{FakeApiServer, PodBehaviour};

pub(super) const WAIT: Duration = Duration::from_secs(10);

/// Polls `f` every 10 ms until it holds; fails the test after [`WAIT`].
pub(super) async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(WAIT, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

pub(super) fn deployment(name: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

pub(super) fn condition<'a>(obj: &'a Value, t: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

pub(super) fn pods_of(fake: &FakeApiServer, ns: &str, app: &str) -> Vec<Value> {
    fake.objects("Pod", ns)
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .collect()
}

pub(super) fn api_code(e: &kube::Error) -> Option<(u16, String, String)> {
    match e {
        kube::Error::Api(s) => Some((s.code, s.reason.clone(), s.message.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn server_side_apply_rolls_a_deployment_out_and_scales_it() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client("default"), "default");
    let pp = PatchParams::apply("cutover").force();
    let d = api
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment("web", "shop/web:1", 3)),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert!(d.metadata.uid.is_some() && d.metadata.resource_version.is_some());

    wait_until("3 ready pods and a complete rollout", || {
        let d = fake
            .object("Deployment", "default", "web")
            .unwrap_or_default();
        condition(&d, "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
            && d["status"]["availableReplicas"] == 3
    })
    .await;
    let d = fake.object("Deployment", "default", "web").unwrap();
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert!(
        d["status"].get("unavailableReplicas").is_none(),
        "zero counts are omitted: {}",
        d["status"]
    );
    assert_eq!(condition(&d, "Available").unwrap()["status"], "True");
    let pods = pods_of(&fake, "default", "web");
    assert_eq!(pods.len(), 3);
    let hash = pods[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("web-{hash}-"))
                && name.len() == "web-".len() + hash.len() + 6,
            "{name}"
        );
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["uid"],
            d["metadata"]["uid"]
        );
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
    }
    let typed: Vec<Pod> = Api::<Pod>::namespaced(fake.client("default"), "default")
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(typed.len(), 3, "pods deserialize into k8s-openapi types");

    // A second apply of the same configuration writes nothing.
    let rv =
        fake.object("Deployment", "default", "web").unwrap()["metadata"]["resourceVersion"].clone();
    let same = api
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment("web", "shop/web:1", 3)),
        )
        .await
        .unwrap();
    assert_eq!(json!(same.metadata.resource_version), rv);

    // A new image rolls the pods and bumps the generation.
    let d2 = api
        .patch(
            "web",
            &pp,
            &Patch::Apply(deployment("web", "shop/web:2", 3)),
        )
        .await
        .unwrap();
    assert_eq!(d2.metadata.generation, Some(2));
    wait_until("the new template's pods", || {
        let pods = pods_of(&fake, "default", "web");
        pods.len() == 3
            && pods
                .iter()
                .all(|p| p["metadata"]["labels"]["pod-template-hash"] != hash.as_str())
    })
    .await;
    kube::runtime::wait::await_condition(
        api.clone(),
        "web",
        kube::runtime::conditions::is_deployment_completed(),
    )
    .await
    .unwrap();

    // Scale subresource.
    let scale = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    wait_until("one pod", || pods_of(&fake, "default", "web").len() == 1).await;
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(
        scale.status.map(|s| s.selector),
        Some(Some("app=web".to_string()))
    );

    // Deleting the Deployment deletes its pods; deleting again is 404.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(pods_of(&fake, "default", "web").is_empty());
    let e = api
        .delete("web", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).map(|c| c.0), Some(404));
    let c = fake.counts();
    assert_eq!(c.get("patch", "deployments"), 3);
    assert_eq!(c.get("patch", "deployments/scale"), 1);
}

async fn rollout_with(fake: &FakeApiServer, name: &str, image: &str) -> Api<Deployment> {
    let api: Api<Deployment> = Api::namespaced(fake.client("default"), "default");
    api.patch(
        name,
        &PatchParams::apply("cutover").force(),
        &Patch::Apply(deployment(name, image, 1)),
    )
    .await
    .unwrap();
    api
}

fn first_pod(fake: &FakeApiServer, app: &str) -> Value {
    pods_of(fake, "default", app)
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn events_for(fake: &FakeApiServer, pod: &Value) -> Vec<(String, String)> {
    fake.objects("Event", "default")
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod["metadata"]["name"])
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_pod_behaviour_shows_in_status_and_events() {
    let fake = FakeApiServer::start().await.unwrap();
    fake.set_ready_delay(Duration::from_millis(20));
    fake.set_behaviour("bad-image", PodBehaviour::ImagePullBackOff);
    fake.set_behaviour("crash", PodBehaviour::CrashLoopBackOff);
    fake.set_behaviour("oom", PodBehaviour::OomKilled);
    fake.set_behaviour("huge", PodBehaviour::Unschedulable);
    fake.set_behaviour("unready", PodBehaviour::ReadinessFails);
    for (name, image) in [
        ("a", "bad-image:1"),
        ("b", "crash:1"),
        ("c", "oom:1"),
        ("d", "huge:1"),
        ("e", "unready:1"),
    ] {
        rollout_with(&fake, name, image).await;
    }
    let cs = |app: &str| first_pod(&fake, app)["status"]["containerStatuses"][0].clone();
    wait_until("image pull back-off", || {
        cs("a")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;
    assert_eq!(
        cs("a")["state"]["waiting"]["message"],
        "Back-off pulling image \"bad-image:1\""
    );
    assert_eq!(first_pod(&fake, "a")["status"]["phase"], "Pending");
    wait_until("crash loop restarts", || {
        cs("b")["restartCount"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(cs("b")["state"]["waiting"]["reason"], "CrashLoopBackOff");
    assert_eq!(cs("b")["lastState"]["terminated"]["exitCode"], 1);
    wait_until("OOM kills", || {
        cs("c")["lastState"]["terminated"]["reason"] == "OOMKilled"
    })
    .await;
    assert_eq!(cs("c")["lastState"]["terminated"]["exitCode"], 137);
    let d = first_pod(&fake, "d");
    let scheduled = condition(&d, "PodScheduled").unwrap();
    assert_eq!(
        (scheduled["status"].as_str(), scheduled["reason"].as_str()),
        (Some("False"), Some("Unschedulable"))
    );
    assert_eq!(
        scheduled["message"],
        "0/3 nodes are available: 3 Insufficient memory."
    );
    wait_until("unready but running", || cs("e")["started"] == true).await;
    assert_eq!(cs("e")["ready"], false);
    assert_eq!(first_pod(&fake, "e")["status"]["phase"], "Running");

    let reasons = |app: &str| {
        events_for(&fake, &first_pod(&fake, app))
            .into_iter()
            .map(|e| e.0)
            .collect::<Vec<_>>()
    };
    wait_until("events", || {
        reasons("a").contains(&"BackOff".to_string())
            && reasons("b").contains(&"BackOff".to_string())
            && reasons("d") == ["FailedScheduling"]
            && reasons("e") == ["Unhealthy"]
    })
    .await;
    // Events are found the way a provider looks for them: a field selector on the pod.
    let events: Api<Event> = Api::namespaced(fake.client("default"), "default");
    let pod_e = first_pod(&fake, "e")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let found = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod_e}")))
        .await
        .unwrap()
        .items;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].message.as_deref(),
        Some("Readiness probe failed: HTTP probe failed with statuscode: 503")
    );
    // None of these Deployments completes.
    for app in ["a", "b", "c", "d", "e"] {
        let d = fake.object("Deployment", "default", app).unwrap();
        assert_eq!(
            condition(&d, "Available").unwrap()["status"],
            "False",
            "{app}"
        );
    }
}

#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let fake = FakeApiServer::start().await.unwrap();
    fake.set_behaviour("crash", PodBehaviour::CrashLoopBackOff);
    let api: Api<Deployment> = Api::namespaced(fake.client("default"), "default");
    let mut d = deployment("web", "crash:1", 2);
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    api.patch(
        "web",
        &PatchParams::apply("cutover").force(),
        &Patch::Apply(&d),
    )
    .await
    .unwrap();
    wait_until("ProgressDeadlineExceeded", || {
        fake.object("Deployment", "default", "web")
            .and_then(|d| condition(&d, "Progressing").cloned())
            .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded" && c["status"] == "False")
    })
    .await;
}

#[tokio::test]
async fn a_seeded_deployment_gets_pods_and_dropping_the_server_stops_everything() {
    let fake = FakeApiServer::start().await.unwrap();
    let mut seeded = deployment("legacy", "legacy:1", 2);
    seeded["metadata"]["namespace"] = json!("shop");
    let stored = fake.put_object(seeded).unwrap();
    assert_eq!(stored["metadata"]["namespace"], "shop");
    wait_until("the seeded Deployment's pods", || {
        pods_of(&fake, "shop", "legacy").len() == 2
    })
    .await;
    let url = fake.url();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await;
    assert!(refused.is_err(), "the listener is closed");
}

#[tokio::test]
async fn odd_seeded_objects_do_not_break_the_server() {
    let fake = FakeApiServer::start().await.unwrap();
    let odd = [
        json!({"kind": "Deployment", "metadata": {"name": "s"}, "spec": "not an object"}),
        json!({"kind": "Deployment", "metadata": {"name": "n"}, "spec": {"replicas": -3, "template": 7,
            "strategy": {"rollingUpdate": {"maxUnavailable": "-50%"}}}}),
        json!({"kind": "Pod", "metadata": {"name": "p", "labels": "x"}, "spec": {"containers": "none"}}),
        json!({"kind": "Service", "metadata": {"name": "svc"}, "spec": {"ports": [1, {"port": 80}]}}),
    ];
    for o in odd {
        assert!(fake.put_object(o).is_some());
    }
    assert!(fake
        .put_object(json!({"kind": "Job", "metadata": {"name": "j"}}))
        .is_none());
    assert!(fake.put_object(json!({"kind": "Pod"})).is_none());
    let api: Api<Deployment> = Api::default_namespaced(fake.client("default"));
    let scale = api
        .patch_scale(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await;
    assert_eq!(scale.unwrap().spec.and_then(|s| s.replicas), Some(2));
    wait_until("pods for the odd Deployment", || {
        fake.objects("Pod", "default").len() >= 3
    })
    .await;
    // The server still answers, and the kubelet gave the odd pod a status.
    let client = fake.client("default");
    let req = http::Request::get("/api/v1/namespaces/default/pods")
        .body(Vec::new())
        .unwrap();
    assert!(client.request_text(req).await.unwrap().contains("PodList"));
    assert!(fake.object("Deployment", "default", "n").is_some());
    wait_until("the odd pod's status", || {
        fake.object("Pod", "default", "p")
            .is_some_and(|p| p["status"]["conditions"].is_array())
    })
    .await;
}

#[tokio::test]
async fn a_behaviour_set_later_applies_to_running_pods() {
    let fake = FakeApiServer::start().await.unwrap();
    rollout_with(&fake, "web", "web:2").await;
    wait_until("ready", || {
        fake.object("Deployment", "default", "web")
            .is_some_and(|d| d["status"]["availableReplicas"] == 1)
    })
    .await;
    fake.set_behaviour("web:2", PodBehaviour::ReadinessFails);
    wait_until("unready and unavailable", || {
        fake.object("Deployment", "default", "web")
            .is_some_and(|d| {
                d["status"].get("availableReplicas").is_none()
                    && condition(&d, "Available").is_some_and(|c| c["status"] == "False")
            })
    })
    .await;
    let pod = first_pod(&fake, "web");
    assert_eq!(
        condition(&pod, "Ready").unwrap()["reason"],
        "ContainersNotReady"
    );
    wait_until("the Unhealthy event", || {
        events_for(&fake, &first_pod(&fake, "web"))
            .iter()
            .any(|e| e.0 == "Unhealthy")
    })
    .await;
}
