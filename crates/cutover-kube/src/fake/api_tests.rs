//! The fake API server's protocol through a real `kube::Client`: apply semantics, watches and
//! 410, conflicts, injected failures, dry runs, error statuses, kubeconfig.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
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
    fake.fail_next("GET", "/scale", 403, 1);
    let e = api.get_scale("web").await.unwrap_err();
    let msg = api_code(&e).unwrap().2;
    assert!(
        msg.starts_with("deployments.apps \"web\" is forbidden: User"),
        "{msg}"
    );
    assert!(
        msg.contains("cannot get resource \"deployments/scale\""),
        "{msg}"
    );
    fake.fail_next("GET", "watch=true", 401, 1);
    let e = api.watch(&Default::default(), "0").await.err().unwrap();
    assert_eq!(api_code(&e).map(|c| c.1), Some("Unauthorized".to_string()));
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
        "spec": {"rules": [{"backendRefs": [{"name": "web-a", "port": 80, "weight": 90}, {"name": "web-b", "port": 80, "weight": 10}]}]}});
    routes
        .patch("web", &pp, &Patch::Apply(&route))
        .await
        .unwrap();
    let got = routes.get("web").await.unwrap();
    assert_eq!(got.data["spec"]["rules"][0]["backendRefs"][1]["weight"], 10);
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
async fn a_stalled_server_leaves_requests_unanswered_until_released() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Namespace> = Api::all(fake.client("default"));
    fake.set_stalled(true);
    let hung = tokio::time::timeout(Duration::from_millis(300), api.get("default")).await;
    assert!(hung.is_err(), "no answer while stalled");
    let waiting = tokio::spawn({
        let api = api.clone();
        async move { api.get("default").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.set_stalled(false);
    let ns = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("default"));
}
