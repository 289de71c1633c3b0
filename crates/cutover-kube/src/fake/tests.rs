//! The fake API server driven through a real `kube::Client` over loopback HTTP.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::{json, Value};

use super::{FakeApiServer, PodBehaviour};

const WAIT: Duration = Duration::from_secs(10);

/// Polls `f` every 10 ms until it holds; fails the test after [`WAIT`].
async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(WAIT, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

fn deployment(name: &str, image: &str, replicas: i64) -> Value {
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

fn condition<'a>(obj: &'a Value, t: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

fn pods_of(fake: &FakeApiServer, ns: &str, app: &str) -> Vec<Value> {
    fake.objects("Pod", ns)
        .into_iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .collect()
}

fn api_code(e: &kube::Error) -> Option<(u16, String, String)> {
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

#[tokio::test]
async fn apply_drops_fields_the_manager_no_longer_sets_and_conflicts_without_force() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client("default"), "default");
    let mut cfg = deployment("web", "img:1", 1);
    cfg["metadata"]["annotations"] = json!({"a": "1", "b": "2"});
    api.patch("web", &PatchParams::apply("cutover"), &Patch::Apply(&cfg))
        .await
        .unwrap();
    cfg["metadata"]["annotations"] = json!({"a": "1"});
    let d = api
        .patch("web", &PatchParams::apply("cutover"), &Patch::Apply(&cfg))
        .await
        .unwrap();
    assert_eq!(d.metadata.annotations.unwrap().len(), 1);
    // Another manager setting the same field differently conflicts unless it forces.
    let mut other = deployment("web", "img:1", 5);
    other["metadata"] = json!({"name": "web"});
    let e = api
        .patch("web", &PatchParams::apply("someone"), &Patch::Apply(&other))
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!((code, reason.as_str()), (409, "Conflict"), "{msg}");
    assert!(
        msg.contains("conflict with \"cutover\"") && msg.contains(".spec.replicas"),
        "{msg}"
    );
    api.patch(
        "web",
        &PatchParams::apply("someone").force(),
        &Patch::Apply(&other),
    )
    .await
    .unwrap();
    let managers: Vec<String> = api
        .get("web")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["cutover", "someone"]);
}

#[tokio::test]
async fn a_reflector_follows_pods_and_recovers_after_410() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client("default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store::<Pod>();
    let cfg = watcher::Config::default().labels("role=test");
    let stream = watcher(pods.clone(), cfg)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = events.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Ok(p) = ev {
                super::lock(&seen).push(p.metadata.name.unwrap_or_default());
            }
        }
    });
    tokio::time::timeout(WAIT, reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"role": "test"}},
        "spec": {"containers": [{"name": "c", "image": "img"}]}})
    };
    let p1: Pod = serde_json::from_value(pod("p1")).unwrap();
    pods.create(&PostParams::default(), &p1).await.unwrap();
    // A pod outside the selector is not seen.
    let mut other: Pod = serde_json::from_value(pod("other")).unwrap();
    other.metadata.labels = None;
    pods.create(&PostParams::default(), &other).await.unwrap();
    wait_until("p1 in the store, ready", || {
        reader
            .get(&reflector::ObjectRef::new("p1").within("default"))
            .is_some_and(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
    })
    .await;
    assert!(
        super::lock(&events).len() >= 2,
        "ADDED then MODIFIED by the kubelet"
    );

    // Expire the history: the resumed watch gets 410 and the watcher re-lists.
    let lists_before = fake.counts().get("list", "pods");
    fake.expire_watches();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod("p2")).unwrap(),
    )
    .await
    .unwrap();
    pods.delete("p1", &DeleteParams::default()).await.unwrap();
    wait_until("p2 present and p1 gone after re-listing", || {
        reader
            .get(&reflector::ObjectRef::new("p2").within("default"))
            .is_some()
            && reader
                .get(&reflector::ObjectRef::new("p1").within("default"))
                .is_none()
    })
    .await;
    assert!(
        fake.counts().get("list", "pods") > lists_before,
        "the watcher re-listed"
    );
    assert!(reader
        .state()
        .iter()
        .all(|p| p.metadata.name.as_deref() != Some("other")));
    let watches: Vec<_> = fake.requests().into_iter().filter(|r| r.is_watch).collect();
    assert!(
        watches
            .iter()
            .all(|r| r.query.contains("labelSelector=role%3Dtest")),
        "{watches:?}"
    );
    task.abort();
    let _ = task.await;
    wait_until("no open watch", || fake.open_watches() == 0).await;
}

#[tokio::test]
async fn a_watch_with_a_selector_sees_label_changes_as_added_and_deleted() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Pod> = Api::namespaced(fake.client("default"), "default");
    let rv = fake.resource_version().to_string();
    let wp = kube::api::WatchParams::default()
        .labels("keep=yes")
        .timeout(2);
    let stream = api.watch(&wp, &rv).await.unwrap();
    let pod: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p", "labels": {"keep": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "img"}]}}))
        .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    wait_until("ready", || {
        fake.object("Pod", "default", "p")
            .is_some_and(|p| p["status"]["phase"] == "Running")
    })
    .await;
    api.patch(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"keep": "no"}}})),
    )
    .await
    .unwrap();
    let types: Vec<String> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>())
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.unwrap() {
            kube::api::WatchEvent::Added(_) => "ADDED".to_string(),
            kube::api::WatchEvent::Modified(_) => "MODIFIED".into(),
            kube::api::WatchEvent::Deleted(_) => "DELETED".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("ADDED"));
    assert_eq!(
        types.last().map(String::as_str),
        Some("DELETED"),
        "{types:?}"
    );
    assert!(types.iter().filter(|t| *t == "DELETED").count() == 1);
}

#[tokio::test]
async fn lease_create_and_replace_conflicts_are_409() {
    let fake = FakeApiServer::start().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(fake.client("default"), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "cutover-web"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let e = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&e).map(|c| (c.0, c.1)),
        Some((409, "AlreadyExists".to_string()))
    );

    let mut mine = created.clone();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let replaced = leases
        .replace("cutover-web", &PostParams::default(), &mine)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // The stale copy (old resourceVersion) loses.
    let e = leases
        .replace("cutover-web", &PostParams::default(), &created)
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(msg.contains("the object has been modified"), "{msg}");
    assert_eq!(
        fake.object("Lease", "default", "cutover-web").unwrap()["spec"]["holderIdentity"],
        "b"
    );
}

#[tokio::test]
async fn injected_failures_answer_with_the_code_then_stop() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client("shop"), "shop");
    fake.create_namespace("shop");
    fake.fail_next("PATCH", "/deployments/web", 403, 1);
    let pp = PatchParams::apply("cutover").force();
    let e = api
        .patch("web", &pp, &Patch::Apply(deployment("web", "img", 1)))
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(
        msg.contains(
            "cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
        ),
        "{msg}"
    );
    api.patch("web", &pp, &Patch::Apply(deployment("web", "img", 1)))
        .await
        .unwrap();
    fake.fail_next("*", "/deployments", 500, 2);
    for _ in 0..2 {
        let e = api.get("web").await.unwrap_err();
        assert_eq!(api_code(&e).map(|c| c.0), Some(500));
    }
    api.get("web").await.unwrap();
    fake.fail_next("GET", "watch=true", 401, 1);
    let e = api.watch(&Default::default(), "0").await.err().unwrap();
    assert_eq!(api_code(&e).map(|c| c.1), Some("Unauthorized".to_string()));
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
async fn dry_run_stores_nothing() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client("default"), "default");
    let pp = PatchParams::apply("cutover").force().dry_run();
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment("web", "img", 2)))
        .await
        .unwrap();
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(2));
    assert!(fake.object("Deployment", "default", "web").is_none());
    api.patch(
        "web",
        &PatchParams::apply("cutover").force(),
        &Patch::Apply(deployment("web", "img", 2)),
    )
    .await
    .unwrap();
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment("web", "img", 5)))
        .await
        .unwrap();
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(5));
    assert_eq!(
        fake.object("Deployment", "default", "web").unwrap()["spec"]["replicas"],
        2
    );
    api.delete(
        "web",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(fake.object("Deployment", "default", "web").is_some());
}

#[tokio::test]
async fn an_unknown_namespace_is_404_and_bad_requests_get_status_errors() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client("nope");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "nope");
    let e = api
        .patch(
            "web",
            &PatchParams::apply("cutover").force(),
            &Patch::Apply(deployment("web", "img", 1)),
        )
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (404, "NotFound", "namespaces \"nope\" not found")
    );
    let e = api.get("web").await.unwrap_err();
    assert_eq!(
        api_code(&e).map(|c| c.2),
        Some("deployments.apps \"web\" not found".to_string())
    );
    let e = Api::<Namespace>::all(client.clone())
        .get("nope")
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).map(|c| c.0), Some(404));
    let e = api
        .list(&ListParams::default().labels("a in b"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).map(|c| c.0), Some(400));

    let raw = |method: &str, path: &str, ct: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ct)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    let cases = [
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                "{not json",
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                "[]",
            ),
            400,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/apply-patch+yaml",
                "{}",
            ),
            422,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/json-patch+json",
                "[]",
            ),
            415,
        ),
        (
            raw("GET", "/apis/batch/v1/namespaces/default/jobs", "", ""),
            404,
        ),
        (
            raw(
                "GET",
                "/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc",
                "",
                "",
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                r#"{"kind":"Pod","metadata":{"name":"x"}}"#,
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                r#"{"metadata":{"name":"x"},"spec":{}}"#,
            ),
            422,
        ),
    ];
    for (req, want) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let e = client.request_text(req).await.unwrap_err();
        let (code, _, _) = api_code(&e).unwrap_or_else(|| panic!("{what}: {e:?}"));
        assert_eq!(code, want, "{what}");
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn a_written_kubeconfig_loads_and_connects() {
    let fake = FakeApiServer::start().await.unwrap();
    fake.create_namespace("shop");
    let path = std::env::temp_dir().join(format!(
        "cutover-fake-kubeconfig-{}-{}",
        std::process::id(),
        fake.addr.port()
    ));
    fake.write_kubeconfig(&path, "fake-ctx", "shop").unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let opts = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "shop");
    let client = kube::Client::try_from(config).unwrap();
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, ["default", "kube-system", "shop"]);
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
