//! Kubernetes, what runs before and beside a run: a plain Deployment adopted as the first
//! rollout's baseline, and a deployment seen and rolled back from another machine (another state
//! dir) through the cluster's objects alone. Against the fake API server, as
//! `tests/kubernetes.rs`.

#[allow(dead_code)]
mod common;

use common::kube::{events, name_of, replicas_of, spec, Cluster, NS};
use serde_json::Value;

/// A team's own Deployment `api` (Helm's), 4 pods of 0.9.0 labelled `app: api`, behind its own
/// Service `api`.
fn plain_api(k: &Cluster) {
    k.fake.put_object(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": NS,
            "labels": {"app": "api", "app.kubernetes.io/managed-by": "Helm"}},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "shop/api:0.9.0"}]}
            }
        }
    }));
    k.fake.put_object(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_deployment_is_adopted_as_the_first_rollouts_baseline() {
    let k = Cluster::start().await;
    plain_api(&k);
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ev = events(&out);
    let started = ev.iter().find(|e| e["kind"] == "started").expect("started");
    let baseline = started["baseline"][0].as_str().unwrap_or_default();
    assert!(
        baseline.contains("Deployment api (not created by cutover; adopted)")
            && baseline.contains("4 replica(s) of 0.9.0"),
        "{started}"
    );
    // The canary moved traffic off the adopted pods by scaling them (25% of 4: 3 of them stay).
    let scaled_to = |n: u32| {
        k.fake.requests().iter().any(|r| {
            r.resource == "deployments/scale"
                && r.path.ends_with("/deployments/api/scale")
                && r.body.contains(&format!("\"replicas\":{n}"))
        })
    };
    assert!(scaled_to(3), "the adopted Deployment was scaled for 25%");
    // At the end it is kept at 0 replicas, annotated, its pod template as the team wrote it.
    let api = k
        .fake
        .object("Deployment", NS, "api")
        .expect("never deleted");
    assert_eq!(replicas_of(&api), 0, "{api}");
    let ann = &api["metadata"]["annotations"];
    assert_eq!(ann["cutover.dev/adopted-by"], "shop", "{ann}");
    assert!(ann["cutover.dev/retired"].is_string(), "{ann}");
    assert_eq!(
        api["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({"app": "api"})
    );
    assert_eq!(
        api["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:0.9.0"
    );
    // The new revision's pods carry `app: api`, so the team's Service (untouched) serves them.
    let new: Vec<Value> = k
        .serving()
        .into_iter()
        .filter(|d| name_of(d) != "api")
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        new[0]["spec"]["template"]["metadata"]["labels"]["app"],
        "api"
    );
    assert!(new[0]["spec"]["selector"]["matchLabels"]
        .get("app")
        .is_none());
    let svc = k
        .fake
        .object("Service", NS, "api")
        .expect("the team's Service");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "api"}));
    assert_eq!(
        svc["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "Helm"
    );

    // The adopted revision is a rollback target like any other: back to 0.9.0.
    let out = k.cutover(&["rollback", "shop", "--json"]).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let api = k.fake.object("Deployment", NS, "api").expect("still there");
    assert_eq!(replicas_of(&api), 4, "0.9.0 serves again: {api}");
    assert!(
        api["metadata"]["annotations"]["cutover.dev/retired"].is_null(),
        "{api}"
    );
    assert!(
        k.fake.object("Deployment", NS, &name_of(&new[0])).is_none(),
        "the rolled-back revision is deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_deployment_is_not_adopted_where_its_service_would_keep_serving_it() {
    let k = Cluster::start().await;
    plain_api(&k);
    let v1 = k.write(
        "v1.yaml",
        &spec("1.0.0", "blue-green", "shop/api:1.0.0", ""),
    );
    let out = k.apply(&v1).await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all()
            .contains("adopts such a Deployment as the baseline only with replica-ratio traffic"),
        "{}",
        out.explain()
    );
    assert!(
        k.deployments().iter().all(|d| name_of(d) == "api"),
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_machine_sees_and_rolls_back_from_the_cluster_alone() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    let v2 = k.write("v2.yaml", &spec("2.0.0", "canary", "shop/api:2.0.0", ""));
    assert_eq!(k.apply(&v2).await.code(), 0);

    // Machine B: its own state dir, which never ran shop; only the kube context is shared.
    let b = k.dir.path().join("machine-b");
    let out = k
        .cutover_at(
            b.clone(),
            &["status", "shop", "--cluster", "--json", "--namespace", NS],
        )
        .await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let view: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    let revs = &view["components"][0]["revisions"];
    assert_eq!(view["components"][0]["id"], "api", "{view}");
    assert_eq!(view["components"][0]["environment"], "production", "{view}");
    assert_eq!(revs[0]["version"], "2.0.0", "{view}");
    assert_eq!(revs[0]["state"], "serving", "{view}");
    assert_eq!(revs[0]["weight"], 100, "{view}");
    assert!(
        revs[0]["run"]
            .as_str()
            .unwrap_or_default()
            .starts_with("shop#2"),
        "{view}"
    );
    assert_eq!(revs[1]["version"], "1.0.0", "{view}");
    assert_eq!(revs[1]["state"], "retired", "{view}");
    let text = k
        .cutover_at(
            b.clone(),
            &["status", "shop", "--cluster", "--namespace", NS],
        )
        .await;
    assert!(
        text.stdout.contains("traffic by replica ratio"),
        "{}",
        text.explain()
    );

    // While another machine's run holds the component's Lease, the rollback is refused.
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease = cutover_kube::lease::lease_name("kubernetes:production:api");
    k.fake.put_object(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": lease, "namespace": NS},
        "spec": {"holderIdentity": "ana pid 4242 on bastion-2", "leaseDurationSeconds": 30,
                 "acquireTime": now, "renewTime": now}
    }));
    let out = k
        .cutover_at(
            b.clone(),
            &["rollback", "shop", "--cluster", "--namespace", NS],
        )
        .await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all().contains("ana pid 4242 on bastion-2"),
        "{}",
        out.explain()
    );
    assert_eq!(k.serving().len(), 1);
    k.fake.delete_object("Lease", NS, &lease);

    let out = k
        .cutover_at(
            b.clone(),
            &["rollback", "shop", "--cluster", "--namespace", NS],
        )
        .await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(
        out.stdout
            .contains("rolled back on the cluster to api 1.0.0"),
        "{}",
        out.explain()
    );
    let serving = k.serving();
    assert_eq!(serving.len(), 1, "{serving:?}");
    assert_eq!(
        serving[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:1.0.0"
    );
    let v2_dep = k
        .deployments()
        .into_iter()
        .find(|d| d["metadata"]["annotations"]["cutover.dev/version"] == "2.0.0")
        .expect("2.0.0 kept");
    assert_eq!(replicas_of(&v2_dep), 0);
    assert!(v2_dep["metadata"]["annotations"]["cutover.dev/rolled-back"].is_string());
    // The Lease was held and given back.
    let leases = k.fake.objects("Lease", NS);
    assert!(
        leases.iter().all(|l| l["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
            || l["spec"]["holderIdentity"].is_null()),
        "{leases:?}"
    );
    // B's audit trail records it.
    let audit = k.cutover_at(b.clone(), &["audit"]).await;
    assert!(
        audit.stdout.contains("rollback.cluster"),
        "{}",
        audit.explain()
    );
    // No second rollback to 2.0.0: it was rolled back.
    let again = k
        .cutover_at(
            b.clone(),
            &[
                "rollback",
                "shop",
                "--cluster",
                "--to",
                "2.0.0",
                "--namespace",
                NS,
            ],
        )
        .await;
    assert_eq!(again.code(), 1, "{}", again.explain());
    assert!(
        again.all().contains("no revision of version 2.0.0"),
        "{}",
        again.explain()
    );

    // Machine A's store still says 2.0.0 serves; its next apply starts from what the cluster
    // runs (1.0.0), not from the rolled-back revision at 0 replicas.
    let v3 = k.write("v3.yaml", &spec("3.0.0", "canary", "shop/api:3.0.0", ""));
    let out = k.apply(&v3).await;
    assert_eq!(out.code(), 0, "{}", out.explain());
    let ev = events(&out);
    let started = ev.iter().find(|e| e["kind"] == "started").expect("started");
    assert!(
        started["baseline"][0]
            .as_str()
            .unwrap_or_default()
            .contains("4 replica(s) of 1.0.0"),
        "{started}"
    );
    let serving = k.serving();
    assert_eq!(serving.len(), 1, "{serving:?}");
    assert_eq!(
        serving[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "shop/api:3.0.0"
    );
    // 1.0.0 is kept, retired; 2.0.0, rolled back, is deleted at this retirement.
    let versions: Vec<String> = k
        .deployments()
        .iter()
        .map(|d| {
            d["metadata"]["annotations"]["cutover.dev/version"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(
        versions.contains(&"1.0.0".to_string()) && !versions.contains(&"2.0.0".to_string()),
        "{versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_rollback_switches_the_route_or_the_active_service_back() {
    let k = Cluster::start().await;
    let gateway = "  namespace: shop\n  trafficRouting:\n    gatewayAPI: { gateway: public }\n";
    let b = k.dir.path().join("machine-b");
    for (n, (strategy, routing)) in [("blue-green", ""), ("canary", gateway)]
        .into_iter()
        .enumerate()
    {
        let id = format!("shop{n}");
        let write = |version: &str| {
            let text = spec(version, strategy, &format!("shop/api:{version}"), "")
                .replace("id: shop\n", &format!("id: {id}\n"))
                .replace("  - id: api\n", &format!("  - id: api{n}\n"));
            let text = if routing.is_empty() {
                text
            } else {
                text.replace("  namespace: shop\n", routing)
            };
            k.write(&format!("{id}-{version}.yaml"), &text)
        };
        assert_eq!(k.apply(&write("1.0.0")).await.code(), 0, "{strategy}");
        assert_eq!(k.apply(&write("2.0.0")).await.code(), 0, "{strategy}");
        let out = k
            .cutover_at(
                b.clone(),
                &["rollback", &id, "--cluster", "--namespace", NS],
            )
            .await;
        assert_eq!(out.code(), 0, "{strategy}: {}", out.explain());
        let old = k
            .deployments()
            .into_iter()
            .find(|d| {
                d["metadata"]["labels"]["cutover.dev/component"] == format!("api{n}").as_str()
                    && d["metadata"]["annotations"]["cutover.dev/version"] == "1.0.0"
            })
            .expect("1.0.0");
        assert_eq!(replicas_of(&old), 4, "{strategy}");
        let hash = old["metadata"]["labels"]["cutover.dev/revision"].clone();
        if routing.is_empty() {
            let active = k
                .fake
                .object("Service", NS, &format!("api{n}"))
                .expect("active");
            assert_eq!(
                active["spec"]["selector"]["cutover.dev/revision"], hash,
                "{active}"
            );
        } else {
            let route = k
                .fake
                .object("HTTPRoute", NS, &format!("api{n}"))
                .expect("route");
            let refs = &route["spec"]["rules"][0]["backendRefs"];
            assert_eq!(refs.as_array().map(Vec::len), Some(1), "{route}");
            assert_eq!(refs[0]["name"], name_of(&old).as_str(), "{route}");
            assert_eq!(refs[0]["weight"], 100, "{route}");
        }
        let view = k
            .cutover_at(
                b.clone(),
                &["status", &id, "--cluster", "--json", "--namespace", NS],
            )
            .await;
        let v: Value = serde_json::from_str(view.stdout.trim()).expect("json");
        let first = &v["components"][0]["revisions"][0];
        assert_eq!(first["version"], "1.0.0", "{strategy}: {v}");
        assert_eq!(first["weight"], 100, "{strategy}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_revisions_serving_from_an_unfinished_run_elsewhere_are_not_guessed_between() {
    let k = Cluster::start().await;
    let v1 = k.write("v1.yaml", &spec("1.0.0", "canary", "shop/api:1.0.0", ""));
    assert_eq!(k.apply(&v1).await.code(), 0);
    // Another machine's run died mid-canary: a second revision serves beside the first.
    let mut other = k.deployments()[0].clone();
    other["metadata"]["name"] = "api-0123456789".into();
    other["metadata"]["annotations"]["cutover.dev/revision-key"] = "api@2.0.0.r9".into();
    other["metadata"]["annotations"]["cutover.dev/version"] = "2.0.0".into();
    other["spec"]["replicas"] = 1.into();
    for obj in ["metadata", "spec"] {
        if let Some(m) = other[obj].as_object_mut() {
            m.remove("uid");
            m.remove("resourceVersion");
        }
    }
    other.as_object_mut().map(|m| m.remove("status"));
    k.fake.put_object(other);
    let v3 = k.write("v3.yaml", &spec("3.0.0", "canary", "shop/api:3.0.0", ""));
    let out = k
        .cutover_at(
            k.dir.path().join("machine-b"),
            &["apply", &v3.to_string_lossy(), "--headless"],
        )
        .await;
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.all()
            .contains("2 revisions of api serve on the cluster"),
        "{}",
        out.explain()
    );
    assert_eq!(k.serving().len(), 2, "nothing changed");
}
