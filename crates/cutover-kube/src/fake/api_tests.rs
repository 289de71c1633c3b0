//! The fake API server's protocol through a real `kube::Client`: apply semantics, watches and
//! 410, selectors, Lease conflicts, dry runs, Services and HTTPRoutes.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

use super::tests::{api_code, deployment, wait_until, WAIT};
use super::FakeApiServer;

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
    // The forced apply took spec.replicas over: cutover dropping it from its configuration
    // leaves someone's value.
    let mut without = deployment("web", "img:1", 1);
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let d = api
        .patch(
            "web",
            &PatchParams::apply("cutover"),
            &Patch::Apply(&without),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5));
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
            kube::api::WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            other => format!("{other:?}"),
        })
        .filter(|t| t != "BOOKMARK")
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
async fn a_streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let fake = FakeApiServer::start().await.unwrap();
    let mut seeded = deployment("legacy", "legacy:1", 1);
    seeded["metadata"]["namespace"] = json!("default");
    fake.put_object(seeded).unwrap();
    let api: Api<Deployment> = Api::all(fake.client("default"));
    let (reader, writer) = reflector::store::<Deployment>();
    let stream = watcher(api, watcher::Config::default().streaming_lists())
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    tokio::time::timeout(WAIT, reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.state().len(), 1);
    let watches: Vec<_> = fake.requests().into_iter().filter(|r| r.is_watch).collect();
    assert!(
        watches[0].query.contains("sendInitialEvents=true"),
        "{watches:?}"
    );
    assert_eq!(
        fake.counts().get("list", "deployments"),
        0,
        "no list with streaming lists"
    );
    task.abort();
}

#[tokio::test]
async fn services_and_httproutes_are_stored_and_patched() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client("default");
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let pp = PatchParams::apply("cutover").force();
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web", "rev": "a"}, "ports": [{"port": 80, "targetPort": 8080}]}});
    let s = services
        .patch("web", &pp, &Patch::Apply(&svc))
        .await
        .unwrap();
    let ip = s.spec.as_ref().and_then(|s| s.cluster_ip.clone()).unwrap();
    // The selector switch of a blue-green promotion, as a merge patch.
    let switch = json!({"spec": {"selector": {"rev": "b"}}});
    let s = services
        .patch("web", &PatchParams::default(), &Patch::Merge(&switch))
        .await
        .unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(
        spec.cluster_ip.as_deref(),
        Some(ip.as_str()),
        "the clusterIP is kept"
    );
    assert_eq!(
        spec.selector.unwrap().get("rev").map(String::as_str),
        Some("b")
    );

    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let routes: Api<DynamicObject> =
        Api::default_namespaced_with(client.clone(), &ApiResource::from_gvk(&gvk));
    let route = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "web-a", "port": 80, "weight": 90}, {"name": "web-b", "port": 80, "weight": 10}]}]}});
    routes
        .patch("web", &pp, &Patch::Apply(&route))
        .await
        .unwrap();
    let got = routes.get("web").await.unwrap();
    assert_eq!(got.data["spec"]["rules"][0]["backendRefs"][1]["weight"], 10);
    // The simulated gateway controller accepts it; web-a and web-b do not exist.
    wait_until("the route's status", || {
        fake.object("HTTPRoute", "default", "web").is_some_and(|r| {
            r["status"]["parents"][0]["conditions"][1]["reason"] == "BackendNotFound"
        })
    })
    .await;
    assert_eq!(fake.objects("HTTPRoute", "default").len(), 1);
    let all: Api<Pod> = Api::all(client);
    assert!(all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(fake.counts().get("patch", "httproutes"), 1);
}

#[tokio::test]
async fn kube_recorder_events_are_stored_as_events_k8s_io() {
    use kube::runtime::events::{Event as Published, EventType, Recorder};
    use kube::Resource;
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client("default");
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let pp = PatchParams::apply("cutover").force();
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment("web", "img", 1)))
        .await
        .unwrap();
    let recorder = Recorder::new(client, "cutover".into());
    let ev = Published {
        type_: EventType::Normal,
        reason: "Promoted".into(),
        note: Some("canary at 50%".into()),
        action: "Promote".into(),
        secondary: None,
    };
    let reference = d.object_ref(&());
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();
    let stored = fake.objects("EventV1", "default");
    assert_eq!(stored.len(), 1, "the second publish patches the series");
    assert_eq!(stored[0]["note"], "canary at 50%");
    assert_eq!(stored[0]["series"]["count"], 2);
    assert_eq!(fake.counts().get("patch", "events"), 1);
}
