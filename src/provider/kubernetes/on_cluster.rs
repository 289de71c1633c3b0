//! A deployment as its objects on the cluster say it is, without any state store: what
//! `cutover status --cluster` shows and what `cutover rollback --cluster` restores, from any
//! machine with the same kube context.
//!
//! Owns: reading cutover's Deployments, Services and HTTPRoutes of one deployment (and a
//! Deployment it adopted) into [`View`], and a rollback done on those objects alone under the
//! component's Lease. Must not touch: the store (the command records what it did), the engine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cutover_kube::cluster::{Cluster, Kind};
use cutover_kube::labels::{self, annotations, dns_label, label_value};
use cutover_kube::manifest;
use cutover_kube::rollout::{self, RolloutStatus};
use cutover_kube::workload::Traffic;
use serde::Serialize;
use serde_json::{json, Value};

use super::lease::KubeLease;
use crate::provider::lease::{LeaseHolder, TargetLease};

/// How long a rollback waits for the restored revision to be available.
pub const RESTORE_WAIT: Duration = Duration::from_secs(180);

/// Where a revision stands on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Has pods asked for.
    Serving,
    /// Kept at 0 replicas once replaced: a rollback target.
    Retired,
    /// Taken off service by a cluster rollback: never a target again.
    RolledBack,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Serving => "serving",
            State::Retired => "retired",
            State::RolledBack => "rolled_back",
        })
    }
}

/// One revision (a Deployment) of a component.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Revision {
    pub deployment_name: String,
    pub key: String,
    pub version: String,
    pub state: State,
    pub replicas: u32,
    pub ready: u32,
    /// Replicas at full size.
    pub full: u32,
    /// The share of traffic it gets now, as the Service, route or pod counts give it.
    pub weight: u32,
    pub run: Option<String>,
    pub step: Option<String>,
    pub retired_at: Option<String>,
    /// A Deployment cutover did not create, adopted as a baseline.
    pub adopted: bool,
}

/// One component: how its traffic is routed, and its revisions, serving first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Component {
    pub id: String,
    pub environment: String,
    pub traffic: Traffic,
    pub revisions: Vec<Revision>,
}

/// A deployment as the cluster has it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct View {
    pub deployment: String,
    pub namespace: String,
    pub server: String,
    pub components: Vec<Component>,
}

#[derive(Debug, thiserror::Error)]
pub enum OnClusterError {
    #[error(transparent)]
    Kube(#[from] cutover_kube::KubeError),
    #[error("{0}")]
    Refused(String),
}

fn ann<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn label<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.pointer("/metadata/labels")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The component's id as the spec writes it: the revision key's prefix (`api@1.2.0.r7`); the
/// label holds a DNS-safe form of it.
fn component_id(d: &Value) -> String {
    ann(d, annotations::REVISION_KEY)
        .and_then(|k| k.split_once('@'))
        .map(|(c, _)| c.to_string())
        .or_else(|| label(d, labels::COMPONENT).map(str::to_string))
        .unwrap_or_default()
}

fn count(d: &Value, pointer: &str) -> u32 {
    d.pointer(pointer).and_then(Value::as_u64).unwrap_or(0) as u32
}

fn name(d: &Value) -> String {
    d.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The deployment's objects, read once.
struct Objects {
    /// Deployments by component.
    revisions: BTreeMap<String, Vec<Value>>,
    services: Vec<Value>,
    routes: Vec<Value>,
}

async fn objects(cluster: &Cluster, deployment: &str) -> Result<Objects, OnClusterError> {
    let selector = format!(
        "{}={},{}={}",
        labels::DEPLOYMENT,
        label_value(deployment),
        labels::MANAGED_BY,
        labels::FIELD_MANAGER
    );
    let mut revisions: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for d in cluster.list(Kind::Deployment, &selector).await? {
        revisions.entry(component_id(&d)).or_default().push(d);
    }
    // A Deployment a run of this deployment adopted is named as its component.
    let comps: Vec<String> = revisions.keys().cloned().collect();
    for comp in comps {
        if let Some(d) = cluster.get(Kind::Deployment, &dns_label(&comp, 63)).await? {
            if ann(&d, annotations::ADOPTED_BY) == Some(deployment) && !labels::is_managed(&d) {
                revisions.entry(comp).or_default().push(d);
            }
        }
    }
    let services = cluster.list(Kind::Service, &selector).await?;
    let routes = match cluster.list(Kind::HttpRoute, &selector).await {
        Ok(r) => r,
        // A cluster without the Gateway API CRDs has no routes.
        Err(cutover_kube::KubeError::NotFound { .. })
        | Err(cutover_kube::KubeError::Api { code: 404, .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(Objects {
        revisions,
        services,
        routes,
    })
}

/// Read the deployment `deployment` from the cluster.
pub async fn view(cluster: &Cluster, deployment: &str) -> Result<View, OnClusterError> {
    let objs = objects(cluster, deployment).await?;
    let mut components = Vec::new();
    for (comp, ds) in &objs.revisions {
        components.push(component(comp, ds, &objs));
    }
    Ok(View {
        deployment: deployment.to_string(),
        namespace: cluster.namespace().to_string(),
        server: cluster.server().to_string(),
        components,
    })
}

fn find<'a>(objs: &'a [Value], n: &str) -> Option<&'a Value> {
    objs.iter().find(|o| name(o) == n)
}

fn component(comp: &str, ds: &[Value], objs: &Objects) -> Component {
    let service = manifest::service_name(comp);
    let route = find(&objs.routes, &service);
    let preview = find(&objs.services, &manifest::preview_service_name(comp));
    let active = find(&objs.services, &service);
    let traffic = if route.is_some() {
        Traffic::GatewayApi
    } else if preview.is_some() {
        Traffic::ActivePreview
    } else {
        Traffic::ReplicaRatio
    };
    let total_ready: u32 = ds
        .iter()
        .map(|d| count(d, "/spec/replicas").min(count(d, "/status/readyReplicas")))
        .sum();
    let mut revisions: Vec<Revision> = ds
        .iter()
        .map(|d| {
            let n = name(d);
            let replicas = count(d, "/spec/replicas");
            let ready = count(d, "/status/readyReplicas").min(replicas);
            let key = ann(d, annotations::REVISION_KEY)
                .unwrap_or_default()
                .to_string();
            let weight = match traffic {
                Traffic::GatewayApi => route
                    .and_then(|r| r.pointer("/spec/rules/0/backendRefs"))
                    .and_then(Value::as_array)
                    .and_then(|bs| bs.iter().find(|b| b["name"] == n.as_str()))
                    .map(|b| count(b, "/weight"))
                    .unwrap_or(0),
                Traffic::ActivePreview => {
                    let selected = active
                        .and_then(|s| s.pointer("/spec/selector"))
                        .and_then(|s| s.get(labels::REVISION))
                        .and_then(Value::as_str);
                    if selected.is_some() && selected == label(d, labels::REVISION) {
                        100
                    } else {
                        0
                    }
                }
                Traffic::ReplicaRatio if total_ready == 0 => 0,
                Traffic::ReplicaRatio => {
                    ((ready as f64 / total_ready as f64) * 100.0).round() as u32
                }
            };
            let state = if ann(d, annotations::ROLLED_BACK).is_some() {
                State::RolledBack
            } else if replicas == 0 {
                State::Retired
            } else {
                State::Serving
            };
            Revision {
                deployment_name: n,
                key,
                version: ann(d, annotations::VERSION)
                    .or_else(|| label(d, labels::VERSION))
                    .map(str::to_string)
                    .unwrap_or_else(|| super::read::plain_version(d)),
                state,
                replicas,
                ready,
                full: ann(d, annotations::FULL_REPLICAS)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(replicas),
                weight,
                run: ann(d, annotations::RUN).map(str::to_string),
                step: ann(d, annotations::STEP).map(str::to_string),
                retired_at: ann(d, annotations::RETIRED).map(str::to_string),
                adopted: ann(d, annotations::ADOPTED_BY).is_some(),
            }
        })
        .collect();
    // Serving first (most traffic first), then the newest retired.
    revisions.sort_by(|a, b| {
        (
            a.state != State::Serving,
            std::cmp::Reverse(a.weight),
            std::cmp::Reverse(&a.retired_at),
        )
            .cmp(&(
                b.state != State::Serving,
                std::cmp::Reverse(b.weight),
                std::cmp::Reverse(&b.retired_at),
            ))
    });
    let environment = ds
        .iter()
        .find_map(|d| ann(d, annotations::ENVIRONMENT))
        .unwrap_or_default()
        .to_string();
    Component {
        id: comp.to_string(),
        environment,
        traffic,
        revisions,
    }
}

/// The revision a rollback of `c` restores: the one running `to`, else the newest retired one
/// (a rolled-back revision is never one).
pub fn target<'a>(c: &'a Component, to: Option<&str>) -> Result<&'a Revision, String> {
    let candidates = c.revisions.iter().filter(|r| r.state != State::RolledBack);
    let found = match to {
        Some(v) => candidates
            .filter(|r| r.version == v)
            .max_by_key(|r| (r.state == State::Serving, r.retired_at.clone())),
        None => candidates
            .filter(|r| r.state == State::Retired)
            .max_by_key(|r| r.retired_at.clone()),
    };
    found.ok_or_else(|| match to {
        Some(v) => format!(
            "{}: no revision of version {v} is kept on the cluster (kept: {})",
            c.id,
            kept(c)
        ),
        None => format!(
            "{}: no earlier revision is kept on the cluster (cutover keeps the {} newest replaced \
             revisions at 0 replicas; kept: {})",
            c.id,
            super::provider::RETIRED_KEPT,
            kept(c)
        ),
    })
}

fn kept(c: &Component) -> String {
    let v: Vec<String> = c
        .revisions
        .iter()
        .map(|r| format!("{} {}", r.version, r.state))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Roll `deployment` back on the cluster: per component, the target revision is scaled to its
/// full size and waited for, traffic goes to it (the route's weights, the active Service's
/// selector, or, with replica-ratio traffic, the pod counts), then the revisions that served
/// are scaled to 0 and marked rolled back. Each component's Lease is held while it happens,
/// so a run on another machine is not driving it. `say` hears each step.
pub async fn roll_back(
    cluster: &Cluster,
    deployment: &str,
    to: Option<&str>,
    identity: &str,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<View, OnClusterError> {
    let first = view(cluster, deployment).await?;
    if first.components.is_empty() {
        return Err(OnClusterError::Refused(format!(
            "no Deployment of {deployment} managed by cutover in namespace {}",
            cluster.namespace()
        )));
    }
    // The same targets as the engine's (`kubernetes:ENV:COMPONENT`), so a run anywhere and
    // this rollback exclude each other.
    let targets: Vec<String> = first
        .components
        .iter()
        .map(|c| format!("kubernetes:{}:{}", c.environment, c.id))
        .collect();
    let holder = LeaseHolder {
        deployment: deployment.to_string(),
        identity: identity.to_string(),
    };
    let lease = Arc::new(KubeLease::new(cluster.client(), cluster.namespace()));
    lease
        .acquire(&targets, &holder)
        .await
        .map_err(|e| OnClusterError::Refused(e.to_string()))?;
    // Renewed while the restore runs (it may wait minutes for a revision to roll out); a lost
    // lease stops it before its next write.
    let lost = Arc::new(AtomicBool::new(false));
    let renewing = Renewing(tokio::spawn({
        let (lease, targets, holder, lost) =
            (lease.clone(), targets.clone(), holder.clone(), lost.clone());
        async move {
            loop {
                tokio::time::sleep(lease.ttl() / 3).await;
                if let Err(e) = lease.renew(&targets, &holder).await {
                    tracing::error!("rollback --cluster: the lease was lost: {e}");
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }));
    // Read again under the lease: what a run elsewhere did until now is in it.
    let result = async {
        let before = view(cluster, deployment).await?;
        let mut plan = Vec::new();
        for c in &before.components {
            let t = target(c, to).map_err(OnClusterError::Refused)?;
            plan.push((c, t.clone()));
        }
        restore(cluster, deployment, &plan, identity, &lost, say).await
    }
    .await;
    drop(renewing);
    lease.release(&targets, &holder).await;
    result?;
    view(cluster, deployment).await
}

/// Aborts the renewal task when dropped.
struct Renewing(tokio::task::JoinHandle<()>);

impl Drop for Renewing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn still_held(lost: &AtomicBool) -> Result<(), OnClusterError> {
    if lost.load(Ordering::SeqCst) {
        return Err(OnClusterError::Refused(
            "the Lease could not be renewed; stopped before the next change (see `cutover status --cluster`)"
                .into(),
        ));
    }
    Ok(())
}

async fn restore(
    cluster: &Cluster,
    deployment: &str,
    plan: &[(&Component, Revision)],
    identity: &str,
    lost: &AtomicBool,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), OnClusterError> {
    let stamp = format!("{deployment} rollback by {identity}");
    for (c, t) in plan {
        let full = t.full.max(1);
        still_held(lost)?;
        say(format!(
            "{}: scale {} ({}) to {full}",
            c.id, t.deployment_name, t.version
        ));
        cluster.scale(&t.deployment_name, full).await?;
        let body = json!({ "metadata": { "annotations": {
            annotations::RETIRED: null,
            annotations::RUN: stamp,
            annotations::STEP: null,
        }}});
        cluster
            .merge_patch(Kind::Deployment, &t.deployment_name, &body)
            .await?;
        if let Err(e) = wait_available(cluster, &t.deployment_name).await {
            // Back as it was: kept at 0, retired (with replica-ratio traffic its ready pods
            // would serve meanwhile).
            let _ = cluster.scale(&t.deployment_name, 0).await;
            let body = json!({ "metadata": { "annotations": {
                annotations::RETIRED: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) }}});
            let _ = cluster
                .merge_patch(Kind::Deployment, &t.deployment_name, &body)
                .await;
            say(format!(
                "{}: {} scaled back to 0; nothing else changed",
                c.id, t.deployment_name
            ));
            return Err(e);
        }
        say(format!("{}: {} is available", c.id, t.deployment_name));
        still_held(lost)?;
        match c.traffic {
            Traffic::GatewayApi => {
                let route = manifest::service_name(&c.id);
                // The port that serves users: `http` where the Service names one.
                let ports = cluster
                    .get(Kind::Service, &t.deployment_name)
                    .await?
                    .and_then(|s| s.pointer("/spec/ports").and_then(Value::as_array).cloned())
                    .unwrap_or_default();
                let port = ports
                    .iter()
                    .find(|p| p["name"] == "http")
                    .or(ports.first())
                    .and_then(|p| p["port"].as_u64())
                    .unwrap_or(80);
                let body = json!({ "spec": { "rules": [{ "backendRefs": [
                    { "kind": "Service", "name": t.deployment_name, "port": port, "weight": 100 }
                ]}]}, "metadata": { "annotations": {
                    annotations::WEIGHTS: format!("{}=100", t.key), annotations::RUN: stamp }}});
                cluster.merge_patch(Kind::HttpRoute, &route, &body).await?;
                say(format!(
                    "{}: route {route} sends 100% to {}",
                    c.id, t.deployment_name
                ));
            }
            Traffic::ActivePreview => {
                let svc = manifest::service_name(&c.id);
                let body = json!({
                    "spec": { "selector": manifest::revision_selector(&c.id, &t.key) },
                    "metadata": { "annotations": {
                        annotations::REVISION_KEY: t.key,
                        annotations::WEIGHTS: format!("{}=100", t.key),
                        annotations::RUN: stamp }}});
                cluster.merge_patch(Kind::Service, &svc, &body).await?;
                say(format!(
                    "{}: Service {svc} selects {}",
                    c.id, t.deployment_name
                ));
            }
            // The restored pods are behind the stable Service already.
            Traffic::ReplicaRatio => {}
        }
        for r in c.revisions.iter().filter(|r| r.state == State::Serving) {
            if r.deployment_name == t.deployment_name {
                continue;
            }
            cluster.scale(&r.deployment_name, 0).await?;
            let body = json!({ "metadata": { "annotations": {
                annotations::ROLLED_BACK: stamp,
                annotations::RUN: stamp,
                annotations::STEP: null,
            }}});
            cluster
                .merge_patch(Kind::Deployment, &r.deployment_name, &body)
                .await?;
            say(format!(
                "{}: {} ({}) scaled to 0, marked rolled back",
                c.id, r.deployment_name, r.version
            ));
        }
    }
    Ok(())
}

/// Wait until the Deployment has rolled out as `kubectl rollout status` says, reading it once a
/// second (bounded by [`RESTORE_WAIT`]); a Deployment whose rollout failed is an error.
async fn wait_available(cluster: &Cluster, name: &str) -> Result<(), OnClusterError> {
    let deadline = tokio::time::Instant::now() + RESTORE_WAIT;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Some(d) = cluster.get(Kind::Deployment, name).await? {
            let typed: Option<k8s_openapi::api::apps::v1::Deployment> =
                serde_json::from_value(d).ok();
            match typed.as_ref().map(rollout::status) {
                Some(RolloutStatus::Complete) => return Ok(()),
                Some(RolloutStatus::Failed(m)) => {
                    return Err(OnClusterError::Refused(format!("{name}: {m}")))
                }
                Some(RolloutStatus::Progressing(m)) => last = m,
                None => {}
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(OnClusterError::Refused(format!(
        "{name} is not available after {}s ({last}); traffic was not moved",
        RESTORE_WAIT.as_secs()
    )))
}
