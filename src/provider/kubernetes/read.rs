//! What the cluster says, in the engine's terms: a Deployment as a revision, a pod as an
//! instance (and whether its failure lasts), pod counts as a traffic split.
//!
//! Owns: these readings. Must not touch: the cluster (the provider reads, this interprets).

use cutover_kube::health::PodView;
use cutover_kube::labels::annotations;
use cutover_kube::workload::Port;
use serde_json::Value;

use crate::provider::{InstanceStatus, RevisionKey, Split};

/// A revision as the provider knows it.
#[derive(Debug, Clone)]
pub(super) struct Rev {
    /// The Deployment's name.
    pub name: String,
    /// Replicas at full size.
    pub full: u32,
    /// Replicas as last set.
    pub replicas: u32,
    pub ports: Vec<Port>,
}

/// The split reached: exact when every share is the weight asked (to a twentieth of a
/// percent), else the shares.
pub(super) fn split_of(achieved: Vec<(RevisionKey, f64)>, weights: &[(RevisionKey, u32)]) -> Split {
    let exact = achieved
        .iter()
        .zip(weights)
        .all(|((_, a), (_, w))| (a - *w as f64).abs() < 0.05);
    if exact {
        Split::exact()
    } else {
        Split { achieved }
    }
}

/// What a Deployment on the cluster says of its revision.
pub(super) fn rev_of(name: &str, d: &Value) -> Rev {
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32;
    let full = d
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::FULL_REPLICAS))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(replicas);
    let ports = d
        .pointer("/spec/template/spec/containers/0/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(Port {
                        name: p.get("name")?.as_str()?.to_string(),
                        number: u16::try_from(p.get("containerPort")?.as_u64()?).ok()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Rev {
        name: name.to_string(),
        full,
        replicas,
        ports,
    }
}

/// A failure that does not pass by itself: a crash loop, an OOM kill, an image that cannot be
/// pulled after kubelet's retries (`ImagePullBackOff`), a pod that failed. A readiness probe
/// failing during warm-up, a pod waiting for a node (the autoscaler may add one) or a first
/// `ErrImagePull` are shown, and left to the progress deadline, as `kubectl rollout status`
/// and Argo Rollouts do.
pub(super) fn failing(p: &PodView) -> bool {
    use cutover_kube::health::PodFailure;
    match &p.failure {
        Some(PodFailure::CrashLoop { .. } | PodFailure::OomKilled { .. }) => true,
        Some(PodFailure::ImagePull { .. }) => p.reason.as_deref() == Some("ImagePullBackOff"),
        _ => p.phase == "Failed",
    }
}

/// A pod as the engine's instance.
pub(super) fn instance(p: &PodView) -> InstanceStatus {
    let detail = p
        .failure
        .as_ref()
        .map(|f| f.to_string())
        .or_else(|| p.reason.clone());
    InstanceStatus {
        id: p.name.clone(),
        ready: p.ready,
        unhealthy: failing(p),
        restarts: p.restarts,
        detail,
        probe: "kubelet".into(),
        last_latency_ms: None,
        consecutive_failures: 0,
        phase: Some(p.phase.clone()),
        age_s: p.age.map(|a| a.as_secs()),
    }
}

/// The version a Deployment cutover did not create runs: its `app.kubernetes.io/version`
/// label, else its first container's image tag.
pub(super) fn plain_version(d: &Value) -> String {
    let labelled = d
        .pointer("/metadata/labels")
        .and_then(|l| l.get("app.kubernetes.io/version"))
        .and_then(Value::as_str);
    if let Some(v) = labelled {
        return v.to_string();
    }
    let image = d
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tail = image.rsplit('/').next().unwrap_or(image);
    // `name:tag@sha256:...`: the tag; a digest alone names no version.
    let tail = tail.split('@').next().unwrap_or(tail);
    match tail.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "unknown".into(),
    }
}
