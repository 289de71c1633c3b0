//! The objects cutover server-side-applies, built from a [`Workload`] as JSON bodies that hold
//! only the fields cutover owns (apiVersion, kind, metadata, spec), as server-side apply wants.
//!
//! Owns: object names, the labels and annotations each object carries, the pod template, the
//! Services of each traffic mode and the HTTPRoute, and their YAML for `plan --manifests`
//! ([`to_yaml`]). Must not touch: the API server (that is `cluster`) or any rollout decision.
//!
//! A revision's pod template never changes after it is first written: the run and step that
//! wrote an object are annotations on the Deployment itself, so scaling a revision at each step
//! never restarts its pods.

mod yaml;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::labels::{self, annotations, dns_label, label_value, revision_name, short_hash};
use crate::workload::{GatewayRef, Port, PortRef, Probe, ProbeAction, Stamp, Workload};

pub use yaml::to_yaml;

/// How many old ReplicaSets a revision's Deployment keeps (its template never changes).
pub const REVISION_HISTORY_LIMIT: u32 = 2;

/// One backend of an HTTPRoute: a revision's Service, its port and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub service: String,
    pub port: u16,
    pub weight: u32,
}

/// The name of a component's stable Service (replica-ratio canary and rolling), which is also
/// its active Service (blue-green) and its HTTPRoute's name: what clients address.
pub fn service_name(component: &str) -> String {
    dns_label(component, 63)
}

/// The name of a component's preview Service (blue-green): `<component>-preview`.
pub fn preview_service_name(component: &str) -> String {
    format!("{}-preview", dns_label(component, 55))
}

/// The labels of every object of a component: managed-by, component, deployment.
fn component_labels(component: &str, deployment: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(labels::MANAGED_BY.into(), json!(labels::FIELD_MANAGER));
    m.insert(labels::COMPONENT.into(), json!(label_value(component)));
    m.insert(labels::DEPLOYMENT.into(), json!(label_value(deployment)));
    m
}

/// The labels of one revision's objects and pods: the component's, plus version and revision.
pub fn revision_labels(w: &Workload) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = component_labels(&w.component, &w.deployment)
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
        .collect();
    m.insert(labels::VERSION.into(), label_value(&w.version));
    m.insert(labels::REVISION.into(), short_hash(&w.revision_key));
    m
}

/// The selector of every revision of a component (the stable Service's).
pub fn component_selector(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::COMPONENT.to_string(), label_value(component))])
}

/// The selector of one revision: component and revision hash.
pub fn revision_selector(component: &str, revision_key: &str) -> BTreeMap<String, String> {
    let mut m = component_selector(component);
    m.insert(labels::REVISION.into(), short_hash(revision_key));
    m
}

/// The annotations on a revision's Deployment: what `cutover status` and `cutover rollback`
/// read from another machine.
fn revision_annotations(w: &Workload) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(annotations::REVISION_KEY.into(), json!(w.revision_key));
    m.insert(
        annotations::FULL_REPLICAS.into(),
        json!(w.replicas.to_string()),
    );
    m.insert(annotations::ENVIRONMENT.into(), json!(w.environment));
    m.insert(annotations::VERSION.into(), json!(w.version));
    if let Some(p) = &w.stamp.previous {
        m.insert(annotations::PREVIOUS.into(), json!(p));
    }
    stamp_into(&mut m, &w.stamp);
    m
}

fn stamp_into(m: &mut Map<String, Value>, s: &Stamp) {
    if !s.run.is_empty() {
        m.insert(annotations::RUN.into(), json!(s.run));
    }
    if let Some(step) = s.step {
        m.insert(annotations::STEP.into(), json!(step.to_string()));
    }
    if !s.cutover_version.is_empty() {
        m.insert(
            annotations::CUTOVER_VERSION.into(),
            json!(s.cutover_version),
        );
    }
}

/// Add the run, step and cutover version that write `object` to its annotations (Services and
/// HTTPRoutes, which are written at a step but not built from a workload).
pub fn stamp(object: &mut Value, s: &Stamp) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(ann) = ann.as_object_mut() {
        stamp_into(ann, s);
    }
}

/// Set `metadata.namespace` (for YAML a reader may `kubectl apply`; the API calls name the
/// namespace in their path).
pub fn with_namespace(mut object: Value, namespace: &str) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), json!(namespace));
    }
    object
}

/// One revision's Deployment at `replicas`: named [`revision_name`], labelled, annotated, its pod
/// template from the workload.
pub fn deployment(w: &Workload, replicas: u32) -> Value {
    let labels = revision_labels(w);
    let mut pod_labels = w.pod_labels.clone();
    pod_labels.extend(labels.clone());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": revision_name(&w.component, &w.revision_key),
            "labels": labels,
            "annotations": revision_annotations(w),
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "selector": { "matchLabels": revision_selector(&w.component, &w.revision_key) },
            "template": {
                "metadata": { "labels": pod_labels },
                "spec": { "containers": [container(w)] },
            },
        },
    })
}

fn container(w: &Workload) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), json!(dns_label(&w.component, 63)));
    c.insert("image".into(), json!(w.image));
    if !w.ports.is_empty() {
        let ports: Vec<Value> = w
            .ports
            .iter()
            .map(|p| json!({ "name": p.name, "containerPort": p.number, "protocol": "TCP" }))
            .collect();
        c.insert("ports".into(), json!(ports));
    }
    if !w.env.is_empty() {
        let env: Vec<Value> = w
            .env
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        c.insert("env".into(), json!(env));
    }
    if let Some(r) = resources(&w.resources) {
        c.insert("resources".into(), r);
    }
    if let Some(p) = &w.probe {
        c.insert("readinessProbe".into(), probe(p, false));
        if p.liveness {
            c.insert("livenessProbe".into(), probe(p, true));
        }
    }
    Value::Object(c)
}

/// `cpu: 500m` is both request and limit; `requests.cpu` or `limits.memory` only that one (and
/// wins over the short form).
fn resources(given: &BTreeMap<String, String>) -> Option<Value> {
    let mut requests = Map::new();
    let mut limits = Map::new();
    for (k, v) in given.iter().filter(|(k, _)| !k.contains('.')) {
        requests.insert(k.clone(), json!(v));
        limits.insert(k.clone(), json!(v));
    }
    for (k, v) in given {
        if let Some(name) = k.strip_prefix("requests.") {
            requests.insert(name.into(), json!(v));
        } else if let Some(name) = k.strip_prefix("limits.") {
            limits.insert(name.into(), json!(v));
        }
    }
    let mut r = Map::new();
    if !limits.is_empty() {
        r.insert("limits".into(), Value::Object(limits));
    }
    if !requests.is_empty() {
        r.insert("requests".into(), Value::Object(requests));
    }
    (!r.is_empty()).then_some(Value::Object(r))
}

fn port_ref(p: &PortRef) -> Value {
    match p {
        PortRef::Number(n) => json!(n),
        PortRef::Name(s) => json!(s),
    }
}

fn probe(p: &Probe, liveness: bool) -> Value {
    let mut m = Map::new();
    match &p.action {
        ProbeAction::Http { path, port } => {
            m.insert(
                "httpGet".into(),
                json!({ "path": path, "port": port_ref(port) }),
            );
        }
        ProbeAction::Tcp { port } => {
            m.insert("tcpSocket".into(), json!({ "port": port_ref(port) }));
        }
        ProbeAction::Exec { command } => {
            m.insert("exec".into(), json!({ "command": command }));
        }
        ProbeAction::Grpc { port, service } => {
            let mut g = Map::new();
            g.insert("port".into(), json!(port));
            if let Some(s) = service.as_ref().filter(|s| !s.is_empty()) {
                g.insert("service".into(), json!(s));
            }
            m.insert("grpc".into(), Value::Object(g));
        }
    }
    m.insert("initialDelaySeconds".into(), json!(p.initial_delay_seconds));
    m.insert("periodSeconds".into(), json!(p.period_seconds));
    m.insert("timeoutSeconds".into(), json!(p.timeout_seconds));
    m.insert("failureThreshold".into(), json!(p.failure_threshold));
    // kubelet requires 1 for liveness probes.
    let success = if liveness { 1 } else { p.success_threshold };
    m.insert("successThreshold".into(), json!(success));
    Value::Object(m)
}

/// Each workload port as a Service port of the same number and name, targeting the container
/// port by name (so revisions may number them differently).
fn service_ports(ports: &[Port]) -> Vec<Value> {
    ports
        .iter()
        .map(|p| json!({ "name": p.name, "port": p.number, "targetPort": p.name, "protocol": "TCP" }))
        .collect()
}

fn service(
    name: String,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    selector: BTreeMap<String, String>,
    ports: &[Port],
) -> Value {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    meta.insert("labels".into(), Value::Object(labels));
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": { "selector": selector, "ports": service_ports(ports) },
    })
}

/// The body that scales a revision's Deployment through its `scale` subresource
/// (`PATCH .../deployments/NAME/scale`): how an old revision is scaled, since re-applying its
/// Deployment from the new spec would rewrite its pod template.
pub fn scale(component: &str, revision_key: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": { "name": revision_name(component, revision_key) },
        "spec": { "replicas": replicas },
    })
}

/// The stable Service (replica-ratio canary, rolling, recreate): selects every revision of the
/// component, so the share each revision serves is its share of the ready pods.
pub fn stable_service(component: &str, deployment: &str, ports: &[Port]) -> Value {
    service(
        service_name(component),
        component_labels(component, deployment),
        Map::new(),
        component_selector(component),
        ports,
    )
}

/// One revision's own Service (the HTTPRoute's backends): named like its Deployment.
pub fn revision_service(w: &Workload) -> Value {
    let mut labels = component_labels(&w.component, &w.deployment);
    labels.insert(labels::VERSION.into(), json!(label_value(&w.version)));
    labels.insert(labels::REVISION.into(), json!(short_hash(&w.revision_key)));
    let mut ann = Map::new();
    ann.insert(annotations::REVISION_KEY.into(), json!(w.revision_key));
    service(
        revision_name(&w.component, &w.revision_key),
        labels,
        ann,
        revision_selector(&w.component, &w.revision_key),
        &w.ports,
    )
}

fn pinned_service(
    name: String,
    component: &str,
    deployment: &str,
    ports: &[Port],
    revision_key: &str,
) -> Value {
    let mut ann = Map::new();
    ann.insert(annotations::REVISION_KEY.into(), json!(revision_key));
    service(
        name,
        component_labels(component, deployment),
        ann,
        revision_selector(component, revision_key),
        ports,
    )
}

/// The active Service (blue-green): what clients address, pinned to the serving revision; the
/// switch re-applies it with the new revision once that one is fully available.
pub fn active_service(
    component: &str,
    deployment: &str,
    ports: &[Port],
    revision_key: &str,
) -> Value {
    pinned_service(
        service_name(component),
        component,
        deployment,
        ports,
        revision_key,
    )
}

/// The preview Service (blue-green): the new revision, before it takes traffic.
pub fn preview_service(
    component: &str,
    deployment: &str,
    ports: &[Port],
    revision_key: &str,
) -> Value {
    pinned_service(
        preview_service_name(component),
        component,
        deployment,
        ports,
        revision_key,
    )
}

/// The component's HTTPRoute (Gateway API): one rule whose backends are revision Services with
/// exact weights (a backend's share is its weight over the sum; 0 takes no traffic).
pub fn http_route(
    component: &str,
    deployment: &str,
    gateway: &GatewayRef,
    backends: &[Backend],
) -> Value {
    let mut parent = Map::new();
    parent.insert("name".into(), json!(gateway.name));
    if let Some(ns) = &gateway.namespace {
        parent.insert("namespace".into(), json!(ns));
    }
    if let Some(s) = &gateway.section_name {
        parent.insert("sectionName".into(), json!(s));
    }
    let refs: Vec<Value> = backends
        .iter()
        .map(|b| json!({ "name": b.service, "port": b.port, "weight": b.weight }))
        .collect();
    let weights = backends
        .iter()
        .map(|b| format!("{}={}", b.service, b.weight))
        .collect::<Vec<_>>()
        .join(",");
    let mut spec = Map::new();
    spec.insert("parentRefs".into(), json!([parent]));
    if !gateway.hostnames.is_empty() {
        spec.insert("hostnames".into(), json!(gateway.hostnames));
    }
    spec.insert("rules".into(), json!([{ "backendRefs": refs }]));
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": service_name(component),
            "labels": component_labels(component, deployment),
            "annotations": { (annotations::WEIGHTS): weights },
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests;
