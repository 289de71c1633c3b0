//! TEMPORARY (replaced by the spec mapping from wt-manifests).
use cutover_kube::workload::{GatewayRef, Stamp, Traffic, Workload};

use crate::spec::{Component, Spec, Strategy};

pub fn workload(
    spec: &Spec,
    comp: &Component,
    revision_key: &str,
    version: &str,
    stamp: Stamp,
) -> Workload {
    let _ = spec;
    Workload {
        component: comp.id.clone(),
        deployment: spec.id.clone(),
        environment: spec.environment.clone(),
        revision_key: revision_key.into(),
        version: version.into(),
        image: comp
            .image
            .clone()
            .unwrap_or_else(|| format!("{}:{}", comp.id, version)),
        replicas: comp.replicas.get(),
        ports: vec![cutover_kube::workload::Port {
            name: "http".into(),
            number: 8080,
        }],
        env: comp.environment.clone(),
        resources: comp.resources.clone(),
        probe: None,
        stamp,
    }
}

pub fn traffic(spec: &Spec) -> Traffic {
    match spec.strategy {
        Strategy::BlueGreen => Traffic::ActivePreview,
        _ => Traffic::ReplicaRatio,
    }
}

pub fn gateway(_spec: &Spec) -> Option<GatewayRef> {
    None
}
