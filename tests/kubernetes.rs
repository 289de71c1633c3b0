//! Behaviour on Kubernetes: whole rollouts by the `cutover` binary against an in-process fake
//! API server on loopback (`cutover_kube::fake`), which simulates the Deployment controller and
//! the kubelet (pods become ready, or fail as told). No real API server can run here; the
//! opt-in real-cluster test is `tests/kubernetes_e2e.rs`. What runs before cutover and what
//! another machine sees are in `tests/kube_cluster.rs`.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::kube::{events, name_of, replicas_of, spec, Cluster, NS};
use cutover_kube::fake::PodBehaviour;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_moves_by_replica_ratio_and_finishes_on_the_new_revision() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ds = k.deployments();
    assert_eq!(ds.len(), 1, "{ds:?}");
    let first = name_of(&ds[0]);
    assert!(first.starts_with("api-"), "{first}");
    assert_eq!(replicas_of(&ds[0]), 4);
    let svc = k
        .fake
        .object("Service", NS, "api")
        .expect("the stable Service");
    assert_eq!(
        svc["spec"]["selector"]["cutover.dev/component"], "api",
        "{svc}"
    );

    let before = k.fake.counts();
    let v2 = k.write("v2.yaml", &spec("2.0.0", "canary", "shop/api:2.0.0", ""));
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ev = events(&out);
    // Each weight asked and the share the replica counts give: 25% of 4 is one pod of 4 (plus
    // one of surge): exact; 50% is 2 and 2.
    let shifts: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "traffic_shifted")
        .collect();
    assert!(shifts.len() >= 3, "{}", out.explain());
    let ds = k.serving();
    assert_eq!(ds.len(), 1, "one revision serves: {ds:?}");
    assert_ne!(name_of(&ds[0]), first);
    assert_eq!(
        k.retired(),
        vec![first.clone()],
        "the old revision is kept at 0 replicas, for a rollback"
    );
    assert_eq!(replicas_of(&ds[0]), 4);
    assert_eq!(
        ds[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:2.0.0"
    );
    let ann = &ds[0]["metadata"]["annotations"];
    assert!(
        ann["cutover.dev/run"]
            .as_str()
            .unwrap_or_default()
            .starts_with("shop#"),
        "{ann}"
    );
    let after = k.fake.counts();
    let delta: Vec<String> = after
        .by_verb_resource
        .iter()
        .filter_map(|(k, n)| {
            let d = n - before.by_verb_resource.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{k}: {d}"))
        })
        .collect();
    let requests = after.total - before.total;
    let watches = after.watches - before.watches;
    eprintln!(
        "one canary rollout (3 stages, 4 replicas): {requests} API requests, {watches} watch streams ({})",
        delta.join(", ")
    );
    // The pods are watched, not polled: a handful of writes and reads, however long it runs.
    assert!(requests <= 40, "{requests}: {}", delta.join(", "));
    assert_eq!(watches, 2, "pods and their events, one stream each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_the_replica_ratio_cannot_reach_are_shown_as_achieved() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let text = spec("2.0.0", "canary", "shop/api:2.0.0", "")
        .replace("replicas: 4", "replicas: 3")
        .replace("percentage: 25", "percentage: 10");
    let v2 = k.write("v2.yaml", &text);
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ev = events(&out);
    let first_shift = ev
        .iter()
        .find(|e| e["kind"] == "traffic_shifted")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    let w = first_shift["weights"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["version"] == "2.0.0"))
        .unwrap_or_else(|| panic!("{first_shift}"));
    assert_eq!(w["weight"], 10);
    // 10% of 3 pods: one canary pod beside three stable ones (with one of surge) is 25%.
    assert_eq!(w["achieved"], 25.0, "{first_shift}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_image_is_explained_and_rolled_back() {
    let k = Cluster::start().await;
    k.fake
        .set_behaviour("broken", PodBehaviour::ImagePullBackOff);
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let first = name_of(&k.deployments()[0]);
    let v2 = k.write("v2.yaml", &spec("2.0.0", "canary", "shop/api:broken", ""));
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    let fin = out.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
    assert!(
        fin["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ImagePullBackOff"),
        "{fin}"
    );
    let ds = k.deployments();
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(name_of(&ds[0]), first, "the old revision serves");
    assert_eq!(replicas_of(&ds[0]), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_revision_is_rolled_back_with_its_restarts() {
    let k = Cluster::start().await;
    k.fake
        .set_behaviour("crashy", PodBehaviour::CrashLoopBackOff);
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let v2 = k.write("v2.yaml", &spec("2.0.0", "canary", "shop/api:crashy", ""));
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    let fin = out.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
    assert!(
        fin["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("CrashLoopBackOff"),
        "{fin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_the_active_service_once_green_is_available() {
    let k = Cluster::start().await;
    let v1 = k.write(
        "v1.yaml",
        &spec("1.0.0", "blue-green", "shop/api:1.0.0", ""),
    );
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let blue = name_of(&k.deployments()[0]);
    let active = k.fake.object("Service", NS, "api").expect("active Service");
    let blue_hash = active["spec"]["selector"]["cutover.dev/revision"].clone();
    assert!(
        blue.ends_with(blue_hash.as_str().unwrap_or("?")),
        "{active}"
    );

    let v2 = k.write(
        "v2.yaml",
        &spec("2.0.0", "blue-green", "shop/api:2.0.0", ""),
    );
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ds = k.serving();
    assert_eq!(ds.len(), 1, "blue retired: {ds:?}");
    let green = name_of(&ds[0]);
    assert_eq!(k.retired(), vec![blue.clone()], "blue kept at 0 replicas");
    let active = k.fake.object("Service", NS, "api").expect("active Service");
    assert!(
        active["metadata"]["annotations"]["cutover.dev/run"]
            .as_str()
            .unwrap_or_default()
            .starts_with("shop#2"),
        "the active Service says which run switched it: {active}"
    );
    let hash = active["spec"]["selector"]["cutover.dev/revision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(green.ends_with(&hash), "{green} {active}");
    let preview = k
        .fake
        .object("Service", NS, "api-preview")
        .expect("preview Service");
    assert_eq!(
        preview["spec"]["selector"]["cutover.dev/revision"],
        hash.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_and_rolling_use_the_same_plan_steps() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "recreate", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let blue = name_of(&k.deployments()[0]);
    let v2 = k.write("v2.yaml", &spec("2.0.0", "recreate", "shop/api:2.0.0", ""));
    k.fake.clear_requests();
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ds = k.serving();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        ds[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:2.0.0"
    );
    assert_eq!(k.retired(), vec![blue.clone()]);
    // Recreate: the old revision's pods are gone (scaled to 0, then marked retired once they
    // have drained) before the new revision's Deployment is written.
    let log = k.fake.requests();
    let at = |pred: &dyn Fn(&cutover_kube::fake::RequestLog) -> bool| log.iter().position(pred);
    let old_deleted = at(&|r| {
        r.method == "PATCH"
            && r.path.ends_with(&format!("/deployments/{blue}"))
            && r.body.contains("cutover.dev/retired")
    })
    .expect("old marked retired");
    let old_to_zero = at(&|r| {
        r.resource == "deployments/scale"
            && r.path.contains(&blue)
            && r.body.contains("\"replicas\":0")
    })
    .expect("old scaled to 0");
    let new_written =
        at(&|r| r.method == "PATCH" && r.resource == "deployments" && !r.path.contains(&blue))
            .expect("new written");
    assert!(
        old_to_zero < old_deleted && old_deleted < new_written,
        "{log:?}"
    );
    let v3 = k.write(
        "v3.yaml",
        &spec(
            "3.0.0",
            "rolling",
            "shop/api:3.0.0",
            "  rollingConfig: { batchSize: 1, maxUnavailable: 0, maxSurge: 1, progressDeadline: 30000, pauseBetweenBatches: 0 }\n",
        ),
    );
    let old = name_of(&k.serving()[0]);
    k.fake.clear_requests();
    let out = k.apply(&v3).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    // Rolling batches scale the old revision; its Deployment is never applied again (its pod
    // template, and so its pods, stay as they were).
    let reapplied: Vec<_> = k
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.path.ends_with(&format!("/deployments/{old}"))
                && r.content_type.contains("apply-patch")
        })
        .collect();
    assert!(reapplied.is_empty(), "{reapplied:?}");
    let ds = k.serving();
    assert_eq!(ds.len(), 1);
    let mut kept = k.retired();
    kept.sort();
    let mut want = vec![blue.clone(), old.clone()];
    want.sort();
    assert_eq!(kept, want, "the two replaced revisions are kept");
    assert_eq!(replicas_of(&ds[0]), 4);
    assert_eq!(
        ds[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:3.0.0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_driver_is_refused_by_the_lease() {
    let k = Cluster::start().await;
    // Another machine's cutover holds the component's lease (it has just renewed it).
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let target = "kubernetes:production:api";
    k.fake.put_object(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": cutover_kube::lease::lease_name(target),
            "namespace": NS,
            "annotations": {"cutover.dev/deployment": "shop"}
        },
        "spec": {
            "holderIdentity": "ana pid 4242 on bastion-2",
            "leaseDurationSeconds": 30,
            "acquireTime": now,
            "renewTime": now
        }
    }));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all().contains("ana pid 4242 on bastion-2"),
        "{}",
        out.explain()
    );
    assert!(k.deployments().is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_says_which_permission_is_missing() {
    let k = Cluster::start().await;
    k.fake.fail_next("PATCH", "/services/api", 403, 1);
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all()
            .contains("cutover needs patch on services in namespace shop"),
        "{}",
        out.explain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_fails_fast_and_says_so() {
    let k = Cluster::start().await;
    // A kubeconfig whose server is a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let text = std::fs::read_to_string(&k.kubeconfig).expect("kubeconfig");
    let text = text.replace(&k.fake.url(), &format!("http://{addr}"));
    std::fs::write(&k.kubeconfig, text).expect("kubeconfig");
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(out.took < Duration::from_secs(11), "{}", out.explain());
    assert!(out.all().contains("unreachable"), "{}", out.explain());
    assert!(out.all().contains(&addr.to_string()), "{}", out.explain());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_namespace_says_how_to_create_it() {
    let k = Cluster::start().await;
    let text = spec("1.0.0", "canary", "shop/api:1.0.0", "")
        .replace("namespace: shop", "namespace: nowhere");
    let v1 = k.write("v1.yaml", &text);
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all().contains("kubectl create namespace nowhere"),
        "{}",
        out.explain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_cut_by_the_server_are_resumed() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    // Slow pods, and the server ends every watch (and forgets its history: 410 on resume)
    // while the canary waits for them.
    k.fake.set_ready_delay(Duration::from_millis(1500));
    let v2 = k.write("v2.yaml", &spec("2.0.0", "canary", "shop/api:2.0.0", ""));
    let cutting = async {
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            k.fake.expire_watches();
        }
    };
    let (out, ()) = tokio::join!(k.apply(&v2), cutting);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let relists = k
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource == "pods")
        .count();
    assert!(
        relists >= 3,
        "the watch listed again after each cut: {relists}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_weights_are_set_exactly_on_the_route() {
    let k = Cluster::start().await;
    let gateway =
        "  trafficRouting:\n    gatewayAPI: { gateway: public, gatewayNamespace: gateways }\n";
    let with_gateway = |text: String| {
        text.replace(
            "  namespace: shop\n",
            &format!("  namespace: shop\n{gateway}"),
        )
    };
    let v1 = k.write(
        "v1.yaml",
        &with_gateway(spec("1.0.0", "canary", "shop/api:1.0.0", "")),
    );
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let blue = name_of(&k.deployments()[0]);
    let v2 = k.write(
        "v2.yaml",
        &with_gateway(spec("2.0.0", "canary", "shop/api:2.0.0", "")),
    );
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    // Every weight the route was given, in order: exact, so no event says "achieved".
    let patches: Vec<Value> = k
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.resource == "httproutes")
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .collect();
    let weights: Vec<Vec<(String, u64)>> = patches
        .iter()
        .map(|p| {
            p["spec"]["rules"][0]["backendRefs"]
                .as_array()
                .map(|refs| {
                    refs.iter()
                        .map(|b| {
                            (
                                b["name"].as_str().unwrap_or_default().to_string(),
                                b["weight"].as_u64().unwrap_or(999),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let green = name_of(&k.deployments()[0]);
    let seen: Vec<Vec<u64>> = weights
        .iter()
        .map(|ws| ws.iter().map(|(_, w)| *w).collect())
        .collect();
    assert!(seen.contains(&vec![75, 25]), "{weights:?}");
    assert!(seen.contains(&vec![50, 50]), "{weights:?}");
    assert_eq!(
        weights.last().cloned().unwrap_or_default(),
        vec![(green.clone(), 100)],
        "the route ends on the new revision alone: {weights:?}"
    );
    assert!(!out.stdout.contains("\"achieved\""), "{}", out.explain());
    let route = k.fake.object("HTTPRoute", NS, "api").expect("route");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "public");
    assert!(
        route["metadata"]["annotations"]["cutover.dev/run"]
            .as_str()
            .unwrap_or_default()
            .starts_with("shop#2"),
        "the route says which run last moved it: {route}"
    );
    assert!(
        k.fake.object("Service", NS, &green).is_some(),
        "green's Service"
    );
    // Blue is kept at 0 replicas with its Service (for a rollback), out of the route.
    assert_eq!(k.retired(), vec![blue.clone()]);
    assert!(
        !route.to_string().contains(&format!("\"{blue}\"")),
        "blue is out of the route: {route}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_metrics_are_refused_before_anything_is_written() {
    let k = Cluster::start().await;
    // The seed's canary example: it validates (with findings), and a real apply refuses it.
    let seed = common::seed_spec("canary.yaml");
    let s = seed.to_string_lossy().to_string();
    let out = k.cutover(&["validate", &s]).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = k.apply(&seed).await;
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(out.all().contains("error_rate"), "{}", out.explain());
    assert!(
        out.all().contains("rometheus"),
        "names what to use instead: {}",
        out.explain()
    );
    assert!(k.fake.objects("Deployment", "").is_empty());
    assert_eq!(k.fake.counts().get("patch", "deployments"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_dry_run_sends_every_object_and_changes_nothing() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let s = v1.to_string_lossy().to_string();
    let out = k
        .cutover(&["apply", &s, "--dry-run=server", "--json"])
        .await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let answers = events(&out);
    assert!(answers.len() >= 2, "{}", out.explain());
    assert!(
        answers.iter().all(|a| a["accepted"] == true),
        "{}",
        out.explain()
    );
    assert!(k.deployments().is_empty(), "a dry run stores nothing");
    assert!(k.fake.objects("Service", NS).is_empty());
    let writes: Vec<_> = k
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(!writes.is_empty());
    assert!(
        writes.iter().all(|r| r.query.contains("dryRun=All")),
        "{writes:?}"
    );

    // The server refuses one object: named, and the exit code says so.
    k.fake.fail_next("PATCH", "/services/api", 403, 1);
    let out = k.cutover(&["apply", &s, "--dry-run=server"]).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.stdout
            .contains("Service/api: REFUSED: cutover needs patch on services in namespace shop"),
        "{}",
        out.explain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readiness_probe_failing_waits_for_the_progress_deadline_and_says_why() {
    let k = Cluster::start().await;
    k.fake
        .set_behaviour("warming", PodBehaviour::ReadinessFails);
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let text = spec("2.0.0", "canary", "shop/api:warming", "")
        .replace("metadata:\n", "metadata:\n  progressDeadline: 3000\n");
    let v2 = k.write("v2.yaml", &text);
    let out = k.apply(&v2).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    // Not failed at the first failing probe (a pod warming up fails a few): at the deadline.
    assert!(out.took >= Duration::from_secs(3), "{}", out.explain());
    let fin = out.finished();
    let reason = fin["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("progress deadline exceeded"), "{fin}");
    assert!(reason.contains("readiness probe failing"), "{fin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_cutover_did_not_create_is_left_alone() {
    let k = Cluster::start().await;
    // The team's own Service `api`, selecting its own pods.
    k.fake.put_object(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }));
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all().contains("not managed by cutover"),
        "{}",
        out.explain()
    );
    let svc = k.fake.object("Service", NS, "api").expect("still there");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "api"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_gateway_api_says_what_to_install() {
    let k = Cluster::start().await;
    // A cluster without the Gateway API CRDs answers 404 for every HTTPRoute.
    k.fake.fail_next("PATCH", "/httproutes/", 404, 100);
    let text = spec("1.0.0", "canary", "shop/api:1.0.0", "").replace(
        "  namespace: shop\n",
        "  namespace: shop\n  trafficRouting:\n    gatewayAPI: { gateway: public }\n",
    );
    let v1 = k.write("v1.yaml", &text);
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    let reason = out.finished()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("does not serve httproutes") && reason.contains("Gateway API CRDs"),
        "{}",
        out.explain()
    );
}
