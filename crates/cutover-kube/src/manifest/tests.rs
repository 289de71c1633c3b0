//! Exact bodies of the objects cutover applies, and their YAML read back.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

use super::*;
use crate::labels::{revision_name, short_hash};
use crate::workload::{GatewayRef, Port, PortRef, Probe, ProbeAction, Stamp, Workload};

fn api() -> Workload {
    Workload {
        component: "api".into(),
        deployment: "my-app-v1.2.0".into(),
        environment: "production".into(),
        revision_key: "api@1.2.0.r7".into(),
        version: "1.2.0".into(),
        image: "registry.example/api:1.2.0".into(),
        replicas: 3,
        ports: vec![Port {
            name: "http".into(),
            number: 8080,
        }],
        env: BTreeMap::from([("NODE_ENV".into(), "production".into())]),
        resources: BTreeMap::from([
            ("cpu".into(), "500m".into()),
            ("memory".into(), "512Mi".into()),
        ]),
        probe: Some(Probe {
            action: ProbeAction::Http {
                path: "/health".into(),
                port: PortRef::Number(8080),
            },
            initial_delay_seconds: 30,
            period_seconds: 10,
            timeout_seconds: 5,
            failure_threshold: 3,
            success_threshold: 2,
            liveness: false,
        }),
        stamp: Stamp {
            run: "my-app-v1.2.0#4".into(),
            step: Some(2),
            previous: Some("api@1.1.0.r3".into()),
            cutover_version: "0.9.0".into(),
        },
        pod_labels: BTreeMap::new(),
    }
}

#[test]
fn a_revision_deployment_is_exactly_this() {
    let w = api();
    let name = revision_name("api", "api@1.2.0.r7");
    let hash = short_hash("api@1.2.0.r7");
    assert_eq!(name, format!("api-{hash}"));
    let labels = json!({
        "app.kubernetes.io/managed-by": "cutover",
        "cutover.dev/component": "api",
        "cutover.dev/deployment": "my-app-v1.2.0",
        "cutover.dev/revision": hash,
        "cutover.dev/version": "1.2.0",
    });
    assert_eq!(
        deployment(&w, 1),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {
                    "cutover.dev/revision-key": "api@1.2.0.r7",
                    "cutover.dev/full-replicas": "3",
                    "cutover.dev/environment": "production",
                    "cutover.dev/version": "1.2.0",
                    "cutover.dev/previous-revision": "api@1.1.0.r3",
                    "cutover.dev/run": "my-app-v1.2.0#4",
                    "cutover.dev/step": "2",
                    "cutover.dev/cutover-version": "0.9.0",
                },
            },
            "spec": {
                "replicas": 1,
                "revisionHistoryLimit": 2,
                "selector": { "matchLabels": {
                    "cutover.dev/component": "api",
                    "cutover.dev/revision": hash,
                } },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": { "containers": [{
                        "name": "api",
                        "image": "registry.example/api:1.2.0",
                        "ports": [{ "name": "http", "containerPort": 8080, "protocol": "TCP" }],
                        "env": [{ "name": "NODE_ENV", "value": "production" }],
                        "resources": {
                            "limits": { "cpu": "500m", "memory": "512Mi" },
                            "requests": { "cpu": "500m", "memory": "512Mi" },
                        },
                        "readinessProbe": {
                            "httpGet": { "path": "/health", "port": 8080 },
                            "initialDelaySeconds": 30,
                            "periodSeconds": 10,
                            "timeoutSeconds": 5,
                            "failureThreshold": 3,
                            "successThreshold": 2,
                        },
                    }] },
                },
            },
        })
    );
}

#[test]
fn the_pod_template_does_not_change_between_steps() {
    // Scaling at a later step re-applies the Deployment: only replicas and the annotations on
    // the object may differ, or every step would restart the revision's pods.
    let mut w = api();
    let a = deployment(&w, 1);
    w.stamp.step = Some(9);
    w.stamp.run = "my-app-v1.2.0#5".into();
    let b = deployment(&w, 3);
    assert_eq!(a["spec"]["template"], b["spec"]["template"]);
    assert_eq!(a["spec"]["selector"], b["spec"]["selector"]);
    assert_eq!(b["spec"]["replicas"], 3);
    assert_eq!(b["metadata"]["annotations"]["cutover.dev/step"], "9");
}

#[test]
fn probes_of_every_kind_and_liveness() {
    let mut w = api();
    let kinds = [
        (
            ProbeAction::Tcp {
                port: PortRef::Name("http".into()),
            },
            json!({ "tcpSocket": { "port": "http" } }),
        ),
        (
            ProbeAction::Exec {
                command: vec!["/bin/check".into(), "--quick".into()],
            },
            json!({ "exec": { "command": ["/bin/check", "--quick"] } }),
        ),
        (
            ProbeAction::Grpc {
                port: 9090,
                service: Some("shop.Api".into()),
            },
            json!({ "grpc": { "port": 9090, "service": "shop.Api" } }),
        ),
        (
            ProbeAction::Grpc {
                port: 9090,
                service: Some(String::new()),
            },
            json!({ "grpc": { "port": 9090 } }),
        ),
        (
            ProbeAction::Http {
                path: "/ready".into(),
                port: PortRef::Name("http".into()),
            },
            json!({ "httpGet": { "path": "/ready", "port": "http" } }),
        ),
    ];
    for (action, expected) in kinds {
        let p = w.probe.as_mut().unwrap();
        p.action = action;
        p.liveness = true;
        let d = deployment(&w, 1);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let (key, value) = expected.as_object().unwrap().iter().next().unwrap();
        assert_eq!(&c["readinessProbe"][key], value, "{c:#}");
        assert_eq!(&c["livenessProbe"][key], value, "{c:#}");
        assert_eq!(c["readinessProbe"]["successThreshold"], 2);
        assert_eq!(
            c["livenessProbe"]["successThreshold"], 1,
            "kubelet requires 1"
        );
        // One action per probe.
        let actions = ["httpGet", "tcpSocket", "exec", "grpc"];
        let n = actions
            .iter()
            .filter(|a| c["readinessProbe"].get(**a).is_some())
            .count();
        assert_eq!(n, 1);
    }
}

#[test]
fn a_bare_workload_has_no_empty_fields() {
    let w = Workload {
        ports: vec![],
        env: BTreeMap::new(),
        resources: BTreeMap::new(),
        probe: None,
        stamp: Stamp::default(),
        ..api()
    };
    let d = deployment(&w, 0);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0],
        json!({ "name": "api", "image": "registry.example/api:1.2.0" })
    );
    assert_eq!(
        d["metadata"]["annotations"],
        json!({
            "cutover.dev/revision-key": "api@1.2.0.r7",
            "cutover.dev/full-replicas": "3",
            "cutover.dev/environment": "production",
            "cutover.dev/version": "1.2.0",
        })
    );
    assert_eq!(d["spec"]["replicas"], 0);
}

#[test]
fn a_team_services_labels_go_on_the_pods_not_in_the_selector() {
    let w = Workload {
        pod_labels: BTreeMap::from([
            ("app".to_string(), "api".to_string()),
            // cutover's own labels win over a carried one of the same key.
            ("cutover.dev/version".to_string(), "0.1".to_string()),
        ]),
        ..api()
    };
    let d = deployment(&w, 1);
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "api");
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["cutover.dev/version"],
        "1.2.0"
    );
    assert!(d["spec"]["selector"]["matchLabels"].get("app").is_none());
    assert!(d["metadata"]["labels"].get("app").is_none());
}

#[test]
fn resources_short_and_long_forms() {
    let r = resources(&BTreeMap::from([
        ("cpu".into(), "500m".into()),
        ("requests.cpu".into(), "250m".into()),
        ("limits.memory".into(), "1Gi".into()),
    ]));
    assert_eq!(
        r,
        Some(json!({
            "limits": { "cpu": "500m", "memory": "1Gi" },
            "requests": { "cpu": "250m" },
        }))
    );
    assert_eq!(resources(&BTreeMap::new()), None);
}

#[test]
fn services_of_each_traffic_mode() {
    let w = api();
    let ports = vec![
        Port {
            name: "http".into(),
            number: 8080,
        },
        Port {
            name: "grpc".into(),
            number: 9090,
        },
    ];
    let svc_ports = json!([
        { "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP" },
        { "name": "grpc", "port": 9090, "targetPort": "grpc", "protocol": "TCP" },
    ]);
    let comp_labels = json!({
        "app.kubernetes.io/managed-by": "cutover",
        "cutover.dev/component": "api",
        "cutover.dev/deployment": "my-app-v1.2.0",
    });
    assert_eq!(
        stable_service("api", "my-app-v1.2.0", &ports),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "api", "labels": comp_labels },
            "spec": {
                "selector": { "cutover.dev/component": "api" },
                "ports": svc_ports,
            },
        })
    );
    let hash = short_hash("api@1.2.0.r7");
    let pinned = json!({ "cutover.dev/component": "api", "cutover.dev/revision": hash });
    let ann = json!({ "cutover.dev/revision-key": "api@1.2.0.r7" });
    assert_eq!(
        active_service("api", "my-app-v1.2.0", &ports, "api@1.2.0.r7"),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": "api", "labels": comp_labels, "annotations": ann },
            "spec": { "selector": pinned, "ports": svc_ports },
        })
    );
    let preview = preview_service("api", "my-app-v1.2.0", &ports, "api@1.2.0.r7");
    assert_eq!(preview["metadata"]["name"], "api-preview");
    assert_eq!(preview["spec"]["selector"], pinned);
    let rev = revision_service(&w);
    assert_eq!(
        rev,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": format!("api-{hash}"),
                "labels": {
                    "app.kubernetes.io/managed-by": "cutover",
                    "cutover.dev/component": "api",
                    "cutover.dev/deployment": "my-app-v1.2.0",
                    "cutover.dev/revision": hash,
                    "cutover.dev/version": "1.2.0",
                },
                "annotations": ann,
            },
            "spec": {
                "selector": pinned,
                "ports": [{ "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP" }],
            },
        })
    );
    // The revision Service selects exactly what the revision's Deployment selects.
    assert_eq!(
        rev["spec"]["selector"],
        deployment(&w, 1)["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn an_http_route_with_exact_weights() {
    let gw = GatewayRef {
        name: "public".into(),
        namespace: Some("gateways".into()),
        section_name: Some("https".into()),
        hostnames: vec!["shop.example.com".into()],
    };
    let backends = [
        Backend {
            service: "api-aaaa".into(),
            port: 8080,
            weight: 90,
        },
        Backend {
            service: "api-bbbb".into(),
            port: 8080,
            weight: 10,
        },
    ];
    let mut route = http_route("api", "my-app-v1.2.0", &gw, &backends);
    stamp(
        &mut route,
        &Stamp {
            run: "my-app-v1.2.0#4".into(),
            step: Some(3),
            previous: None,
            cutover_version: "0.9.0".into(),
        },
    );
    assert_eq!(
        route,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": "api",
                "labels": {
                    "app.kubernetes.io/managed-by": "cutover",
                    "cutover.dev/component": "api",
                    "cutover.dev/deployment": "my-app-v1.2.0",
                },
                "annotations": {
                    "cutover.dev/weights": "api-aaaa=90,api-bbbb=10",
                    "cutover.dev/run": "my-app-v1.2.0#4",
                    "cutover.dev/step": "3",
                    "cutover.dev/cutover-version": "0.9.0",
                },
            },
            "spec": {
                "parentRefs": [{ "name": "public", "namespace": "gateways", "sectionName": "https" }],
                "hostnames": ["shop.example.com"],
                "rules": [{ "backendRefs": [
                    { "name": "api-aaaa", "port": 8080, "weight": 90 },
                    { "name": "api-bbbb", "port": 8080, "weight": 10 },
                ] }],
            },
        })
    );
    let bare = http_route(
        "api",
        "d",
        &GatewayRef {
            name: "public".into(),
            ..GatewayRef::default()
        },
        &backends[..1],
    );
    assert_eq!(bare["spec"]["parentRefs"], json!([{ "name": "public" }]));
    assert!(bare["spec"].get("hostnames").is_none());
}

#[test]
fn names_fit_dns_labels() {
    assert_eq!(service_name("Payment_API"), "payment-api");
    assert_eq!(preview_service_name("api"), "api-preview");
    assert!(preview_service_name(&"x".repeat(100)).len() <= 63);
    let w = Workload {
        component: "Payment API".into(),
        ..api()
    };
    let d = deployment(&w, 1);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["name"],
        "payment-api"
    );
    assert_eq!(
        d["metadata"]["labels"]["cutover.dev/component"],
        "Payment_API"
    );
}

#[test]
fn a_scale_names_the_revision_deployment() {
    assert_eq!(
        scale("api", "api@1.1.0.r3", 2),
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": { "name": revision_name("api", "api@1.1.0.r3") },
            "spec": { "replicas": 2 },
        })
    );
}

#[test]
fn with_namespace_sets_metadata() {
    let s = with_namespace(stable_service("api", "d", &[]), "shop");
    assert_eq!(s["metadata"]["namespace"], "shop");
}

/// yaml-rust2's document back as JSON (strings, integers, floats, booleans, null).
fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::String(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Boolean(b) => json!(b),
        Yaml::Null => Value::Null,
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), yaml_to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

#[test]
fn yaml_reads_back_as_the_objects() {
    let mut w = api();
    // Strings YAML would mistype unquoted.
    w.env = BTreeMap::from([
        ("A".into(), "true".into()),
        ("B".into(), "1.0".into()),
        ("C".into(), String::new()),
        ("D".into(), "key: value".into()),
        ("E".into(), "007".into()),
        ("F".into(), "null".into()),
        ("G".into(), "- item".into()),
        ("H".into(), "line one\nline two".into()),
        ("I".into(), "# not a comment".into()),
        ("J".into(), "yes".into()),
        ("K".into(), " padded ".into()),
        ("L".into(), "0x1F".into()),
        ("M".into(), "~".into()),
        ("N".into(), "1e3".into()),
    ]);
    let objects = vec![
        deployment(&w, 2),
        revision_service(&w),
        stable_service("api", "my-app-v1.2.0", &w.ports),
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "x" },
                "data": { "f": 1.5, "g": -3, "h": true, "i": null, "j": [], "k": {} } }),
    ];
    let text = to_yaml(&objects);
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(docs.len(), objects.len(), "{text}");
    for (doc, obj) in docs.iter().zip(&objects) {
        assert_eq!(&yaml_to_json(doc), obj, "{text}");
    }
    assert_eq!(text.matches("---\n").count(), objects.len());
}

#[test]
fn yaml_keys_come_in_a_readable_order() {
    let text = to_yaml(&[deployment(&api(), 1)]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "---");
    assert_eq!(lines[1], "apiVersion: apps/v1");
    assert_eq!(lines[2], "kind: Deployment");
    assert_eq!(lines[3], "metadata:");
    assert!(lines[4].starts_with("  name: api-"), "{text}");
    let top: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with(' ') && **l != "---")
        .copied()
        .collect();
    assert_eq!(
        top,
        [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            "spec:"
        ]
    );
    // The container's name and image come first (a string with ':' is quoted).
    let name = text.find("- name: api\n").unwrap_or(usize::MAX);
    let image = text
        .find("image: \"registry.example/api:1.2.0\"")
        .unwrap_or(0);
    assert!(name < image, "{text}");
    assert!(text.contains("- name: api\n          image: "), "{text}");
}
