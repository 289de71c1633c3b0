//! `cutover plan SPEC --manifests` and the Kubernetes example specs, through the binary: the YAML
//! parses, names each revision's Deployment, and carries the replica counts, HTTPRoute weights and
//! Service selectors of each step.

#[allow(dead_code)]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{isolated, run_within, seed_spec, Out};
use cutover_kube::labels::{revision_name, short_hash};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const DEADLINE: Duration = Duration::from_secs(30);

fn run(args: &[&str]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let cmd = isolated(dir.path().join("state"), dir.path(), args);
    run_within(cmd, args, DEADLINE).unwrap_or_else(|e| panic!("{e}"))
}

fn kube_specs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(seed_spec("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// The YAML documents after the `# manifests:` header, up to the first apply's section.
fn manifests(stdout: &str) -> Vec<Yaml> {
    let start = stdout
        .find("\n# manifests:")
        .unwrap_or_else(|| panic!("no manifests in:\n{stdout}"));
    let rest = &stdout[start..];
    let rest = rest.split("\n# the first apply").next().unwrap_or(rest);
    YamlLoader::load_from_str(rest).unwrap_or_else(|e| panic!("{e}\n{rest}"))
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

#[test]
fn every_kubernetes_example_validates_without_findings() {
    let specs = kube_specs();
    assert_eq!(specs.len(), 4, "{specs:?}");
    let mut args = vec!["validate".to_string()];
    args.extend(specs.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.code(), 0, "{}", out.explain());
    for p in &specs {
        assert!(
            out.stdout.contains(&format!("{}: ok", p.display())),
            "{}",
            out.explain()
        );
    }
    assert!(!out.all().contains("warning"), "{}", out.explain());
}

#[test]
fn a_replica_ratio_canary_scales_both_revisions_at_each_weight() {
    let spec = seed_spec("kubernetes/canary.yaml");
    let out = run(&["plan", spec.to_str().unwrap(), "--manifests"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let docs = manifests(&out.stdout);
    let new = revision_name("web", "web@1.1.0.planned");
    let old = revision_name("web", "web@previous");
    let deployments = of_kind(&docs, "Deployment");
    assert!(deployments
        .iter()
        .all(|d| d["metadata"]["name"].as_str() == Some(new.as_str())));
    assert!(deployments
        .iter()
        .all(|d| d["metadata"]["namespace"].as_str() == Some("shop")));
    let replicas: Vec<i64> = deployments
        .iter()
        .map(|d| d["spec"]["replicas"].as_i64().unwrap())
        .collect();
    // start 1; 25% of 4 = 1/3; scale 2; 50% = 2/2; scale 4; 100% = 4/0.
    assert_eq!(replicas, [1, 1, 2, 2, 4, 4]);
    let scales: Vec<(String, i64)> = of_kind(&docs, "Scale")
        .iter()
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_string(),
                d["spec"]["replicas"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        scales,
        [(old.clone(), 3), (old.clone(), 2), (old.clone(), 0)]
    );
    let services = of_kind(&docs, "Service");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["metadata"]["name"].as_str(), Some("web"));
    assert_eq!(
        services[0]["spec"]["selector"]["cutover.dev/component"].as_str(),
        Some("web")
    );
    assert!(out
        .stdout
        .contains("# weight asked 25%, achieved 25.0% (1 new / 3 old ready pods"));
    assert!(out.stdout.contains(&format!(
        "# retires Deployment/{old}: kept at 0 replicas, annotated cutover.dev/retired, for a rollback"
    )));
    // The pod template: image, probe, env as the spec says.
    let c = &deployments[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["image"].as_str(),
        Some("ghcr.io/example/cutover-demo:1.1.0")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["port"].as_str(),
        Some("http")
    );
    assert_eq!(c["livenessProbe"]["successThreshold"].as_i64(), Some(1));
    assert_eq!(c["ports"][0]["name"].as_str(), Some("http"));
}

#[test]
fn a_gateway_canary_sets_exact_weights() {
    let spec = seed_spec("kubernetes/gateway-canary.yaml");
    let out = run(&["plan", spec.to_str().unwrap(), "--manifests"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let docs = manifests(&out.stdout);
    let new = revision_name("web", "web@1.1.0.planned");
    let old = revision_name("web", "web@previous");
    let routes = of_kind(&docs, "HTTPRoute");
    let weights: Vec<Vec<(String, i64)>> = routes
        .iter()
        .map(|r| {
            r["spec"]["rules"][0]["backendRefs"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|b| {
                    (
                        b["name"].as_str().unwrap().to_string(),
                        b["weight"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |o: i64, n: i64| vec![(old.clone(), o), (new.clone(), n)];
    assert_eq!(
        weights,
        [
            pair(95, 5),
            pair(80, 20),
            pair(50, 50),
            pair(0, 100),
            vec![(new.clone(), 100)]
        ]
    );
    let r = routes[0];
    assert_eq!(r["metadata"]["name"].as_str(), Some("web"));
    assert_eq!(r["spec"]["parentRefs"][0]["name"].as_str(), Some("public"));
    assert_eq!(
        r["spec"]["parentRefs"][0]["namespace"].as_str(),
        Some("gateways")
    );
    assert_eq!(r["spec"]["hostnames"][0].as_str(), Some("shop.example.com"));
    // A Service per revision, each selecting its own pods.
    let services = of_kind(&docs, "Service");
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [new.as_str(), old.as_str()]);
    assert_eq!(
        services[0]["spec"]["selector"]["cutover.dev/revision"].as_str(),
        Some(short_hash("web@1.1.0.planned").as_str())
    );
    // The old revision leaves the route; its Deployment (and Service) are kept at 0, retired.
    assert!(out.stdout.contains(&format!("# retires Deployment/{old}")));
}

#[test]
fn a_blue_green_switch_moves_the_active_selector() {
    let spec = seed_spec("kubernetes/blue-green.yaml");
    let out = run(&["plan", spec.to_str().unwrap(), "--manifests"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let docs = manifests(&out.stdout);
    let services = of_kind(&docs, "Service");
    let by_name: Vec<(&str, &str)> = services
        .iter()
        .map(|s| {
            (
                s["metadata"]["name"].as_str().unwrap(),
                s["spec"]["selector"]["cutover.dev/revision"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    let new = short_hash("web@1.1.0.planned");
    assert_eq!(
        by_name,
        [("web-preview", new.as_str()), ("web", new.as_str())]
    );
    assert!(of_kind(&docs, "HTTPRoute").is_empty());
    let grpc = &of_kind(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        ["readinessProbe"]["grpc"];
    assert_eq!(grpc["port"].as_i64(), Some(9090));
}

#[test]
fn json_manifests_carry_the_objects() {
    let spec = seed_spec("kubernetes/gateway-canary.yaml");
    let out = run(&["plan", spec.to_str().unwrap(), "--manifests", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let v: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let steps = v["manifests"].as_array().unwrap();
    assert_eq!(steps.len(), v["steps"].as_array().unwrap().len());
    let shift = steps
        .iter()
        .find(|s| s["description"].as_str().unwrap().starts_with("shift 5%"))
        .unwrap();
    assert_eq!(shift["apply"][0]["kind"], "HTTPRoute");
    assert_eq!(
        shift["apply"][0]["spec"]["rules"][0]["backendRefs"][1]["weight"],
        5
    );
    assert!(v["first_deployment_manifests"].is_array());
}

#[test]
fn manifests_are_refused_where_the_cluster_cannot_run_the_spec() {
    // A local spec has no Kubernetes objects.
    let local = seed_spec("demo/local-v1.yaml");
    let out = run(&["plan", local.to_str().unwrap(), "--manifests"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.stderr
            .contains("has provider local (set infrastructure.provider: kubernetes)"),
        "{}",
        out.explain()
    );
    // The seed's canary asks for the local router's metrics: refused, with the fields named.
    let seed = seed_spec("canary.yaml");
    let out = run(&["plan", seed.to_str().unwrap(), "--manifests"]);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.stderr
            .contains("metadata.canaryConfig.metrics[0].source: `error_rate` would come from the local router's built-in metrics"),
        "{}",
        out.explain()
    );
    assert!(
        out.stderr.contains("refuses this spec (2 problem(s))"),
        "{}",
        out.explain()
    );
    assert!(out.stdout.is_empty(), "{}", out.explain());
    // Without --manifests the seed plans as before; the findings go to stderr.
    let out = run(&["plan", seed.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(out
        .stdout
        .starts_with("plan for my-app-v1.2.0 1.2.0 (canary)"));
    assert!(!out.stdout.contains("warning"), "{}", out.explain());
    assert!(
        out.stderr.contains(
            "warning: components[0].image: no image; on Kubernetes `api` runs `api:1.2.0`"
        ),
        "{}",
        out.explain()
    );
}

#[test]
fn the_rbac_file_grants_what_the_provider_uses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding"]);
    let rules = docs[1]["rules"].as_vec().unwrap();
    let grants = |group: &str, resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r["apiGroups"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .any(|g| g.as_str() == Some(group))
                    && r["resources"]
                        .as_vec()
                        .unwrap()
                        .iter()
                        .any(|x| x.as_str() == Some(resource))
            })
            .flat_map(|r| {
                r["verbs"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect()
    };
    let crud = ["get", "list", "watch", "create", "patch", "delete"];
    for (group, resource, verbs) in [
        ("apps", "deployments", &crud[..]),
        ("apps", "deployments/scale", &["get", "patch"][..]),
        ("", "services", &crud[..]),
        ("", "pods", &["get", "list", "watch"][..]),
        ("", "events", &["get", "list", "watch"][..]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update", "delete"][..],
        ),
        ("gateway.networking.k8s.io", "httproutes", &crud[..]),
    ] {
        let mut got = grants(group, resource);
        got.sort();
        let mut want: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{group}/{resource}");
    }
    // Namespaced only: no cluster-wide grant.
    assert!(!text.contains("ClusterRole"));
    assert_eq!(docs[2]["roleRef"]["name"].as_str(), Some("cutover"));
}
