//! From a spec's component to what `cutover-kube` runs: the [`Workload`] of one revision, the
//! traffic mode and the Gateway of a spec.
//!
//! Owns: this mapping and its documented defaults (image `<component id>:<version>`, ports from
//! `ports`, else the health check's, else `http: 8080`; `CUTOVER_VERSION` and `PORT` in the
//! container's environment; health-check seconds rounded up to whole seconds). Must not touch: the cluster, the engine or the store.

use std::collections::BTreeMap;

use cutover_kube::workload::{
    GatewayRef, Port, PortRef, Probe, ProbeAction, Stamp, Traffic, Workload,
};

use crate::spec::kubernetes::{container_ports, default_image};
use crate::spec::{self, Component, HealthCheck, HealthKind, Secs, Spec, Strategy};

/// The cutover version written on every object (`cutover.dev/cutover-version`).
pub const CUTOVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A stamp for the run `ID#N` at `step`, replacing `previous`, by this cutover.
pub fn stamp(run: &str, step: Option<u32>, previous: Option<&str>) -> Stamp {
    Stamp {
        run: run.to_string(),
        step,
        previous: previous.map(str::to_string),
        cutover_version: CUTOVER_VERSION.to_string(),
    }
}

/// One revision of `comp` as `cutover-kube` runs it: `revision_key` is the store's key
/// (`component@version.rN`), `version` the version the revision runs.
pub fn workload(
    spec: &Spec,
    comp: &Component,
    revision_key: &str,
    version: &str,
    stamp: Stamp,
) -> Workload {
    let ports: Vec<Port> = container_ports(comp)
        .into_iter()
        .map(|(name, number)| Port { name, number })
        .collect();
    Workload {
        component: comp.id.clone(),
        deployment: spec.id.clone(),
        environment: spec.environment.clone(),
        revision_key: revision_key.to_string(),
        version: version.to_string(),
        image: comp
            .image
            .clone()
            .unwrap_or_else(|| default_image(comp, version)),
        replicas: comp.replicas.get(),
        probe: comp.health_check.as_ref().map(|hc| probe(hc, &ports)),
        env: env(comp, version, &ports),
        ports,
        resources: comp.resources.clone(),
        stamp,
        pod_labels: BTreeMap::new(),
    }
}

/// The container's environment: `CUTOVER_VERSION` (the revision's version) and `PORT` (the
/// first container port), as the local provider sets them, then the component's `environment`
/// (which wins).
fn env(comp: &Component, version: &str, ports: &[Port]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("CUTOVER_VERSION".to_string(), version.to_string())]);
    if let Some(p) = ports.first() {
        env.insert("PORT".into(), p.number.to_string());
    }
    env.extend(comp.environment.clone());
    env
}

/// Whole seconds, rounded up (kubelet counts seconds; `500ms` waits 1 s), at least `min`.
fn seconds(s: Secs, min: i32) -> i32 {
    i32::try_from(s.0.div_ceil(1000))
        .unwrap_or(i32::MAX)
        .max(min)
}

fn count(n: i64) -> i32 {
    i32::try_from(n.max(1)).unwrap_or(i32::MAX)
}

/// A health check as kubelet's probe: a numbered port as given; a named one by name (a
/// container port of that name exists: see `container_ports`); none, the first container port.
fn probe(hc: &HealthCheck, ports: &[Port]) -> Probe {
    let first = ports.first().map(|p| p.number).unwrap_or(8080);
    let port = match &hc.port {
        Some(spec::PortRef::Number(n)) => PortRef::Number(u16::try_from(*n).unwrap_or(first)),
        Some(spec::PortRef::Name(name)) => PortRef::Name(name.clone()),
        None => PortRef::Number(first),
    };
    let action = match hc.kind {
        HealthKind::Http => ProbeAction::Http {
            path: hc.endpoint.clone().unwrap_or_else(|| "/".into()),
            port,
        },
        HealthKind::Tcp => ProbeAction::Tcp { port },
        HealthKind::Exec => ProbeAction::Exec {
            command: hc.command.clone(),
        },
        // kubelet's gRPC probe takes a number only.
        HealthKind::Grpc => ProbeAction::Grpc {
            port: match port {
                PortRef::Number(n) => n,
                PortRef::Name(name) => ports
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.number)
                    .unwrap_or(first),
            },
            service: hc.service.clone(),
        },
    };
    Probe {
        action,
        initial_delay_seconds: seconds(hc.initial_delay_seconds, 0),
        period_seconds: seconds(hc.period_seconds, 1),
        timeout_seconds: seconds(hc.timeout_seconds, 1),
        failure_threshold: count(hc.failure_threshold),
        success_threshold: count(hc.success_threshold),
        liveness: hc.liveness,
    }
}

/// How the spec's traffic is split on the cluster: Gateway API when `trafficRouting.gatewayAPI`
/// is set; else active/preview Services for blue-green, and the replica ratio behind one
/// stable Service for canary, rolling and recreate.
pub fn traffic(spec: &Spec) -> Traffic {
    if spec.gateway_api().is_some() {
        Traffic::GatewayApi
    } else if spec.strategy == Strategy::BlueGreen {
        Traffic::ActivePreview
    } else {
        Traffic::ReplicaRatio
    }
}

/// The Gateway the spec's HTTPRoutes attach to, if it routes through Gateway API.
pub fn gateway(spec: &Spec) -> Option<GatewayRef> {
    spec.gateway_api().map(|g| GatewayRef {
        name: g.gateway.clone(),
        namespace: g.gateway_namespace.clone(),
        section_name: g.section_name.clone(),
        hostnames: g.hostnames.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::load_str;

    const CANARY: &str = include_str!("../../../specs/canary.yaml");
    const BLUE_GREEN: &str = include_str!("../../../specs/blue-green.yaml");
    const ROLLING: &str = include_str!("../../../specs/rolling.yaml");

    #[test]
    fn the_seed_canary_component() {
        let spec = load_str(CANARY).unwrap();
        let st = stamp("my-app-v1.2.0#1", Some(0), Some("api@1.1.0.r1"));
        let w = workload(
            &spec,
            &spec.components[0],
            "api@1.2.0.r2",
            "1.2.0",
            st.clone(),
        );
        assert_eq!(
            w,
            Workload {
                component: "api".into(),
                deployment: "my-app-v1.2.0".into(),
                environment: "production".into(),
                revision_key: "api@1.2.0.r2".into(),
                version: "1.2.0".into(),
                image: "api:1.2.0".into(),
                replicas: 3,
                ports: vec![Port {
                    name: "http".into(),
                    number: 8080
                }],
                env: BTreeMap::from([
                    ("CUTOVER_VERSION".into(), "1.2.0".into()),
                    ("NODE_ENV".into(), "production".into()),
                    ("PORT".into(), "8080".into()),
                ]),
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
                    success_threshold: 1,
                    liveness: false,
                }),
                stamp: st,
                pod_labels: BTreeMap::new(),
            }
        );
        assert_eq!(w.stamp.cutover_version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn image_ports_and_probes_as_written() {
        let text = CANARY
            .replace(
                "    replicas: 3\n",
                "    replicas: 3\n    image: 'reg.example/shop/api:1.2.0'\n    ports: {web: 8000, grpc: 9090}\n",
            )
            .replace(
                "      type: 'http'\n      endpoint: '/health'\n      port: 8080\n      initialDelaySeconds: 30\n",
                "      type: 'grpc'\n      port: 'grpc'\n      service: 'shop.Api'\n      liveness: true\n      initialDelaySeconds: '1500ms'\n",
            );
        let spec = load_str(&text).unwrap_or_else(|d| panic!("{d:?}"));
        let w = workload(&spec, &spec.components[0], "k", "1.2.0", Stamp::default());
        assert_eq!(w.image, "reg.example/shop/api:1.2.0");
        assert_eq!(
            w.ports,
            [
                Port {
                    name: "grpc".into(),
                    number: 9090
                },
                Port {
                    name: "web".into(),
                    number: 8000
                }
            ]
        );
        let p = w.probe.unwrap();
        assert_eq!(
            p.action,
            ProbeAction::Grpc {
                port: 9090,
                service: Some("shop.Api".into())
            }
        );
        assert_eq!(p.initial_delay_seconds, 2, "1.5 s rounds up");
        assert!(p.liveness);
        // exec and tcp
        let exec = CANARY.replace(
            "      type: 'http'\n      endpoint: '/health'\n      port: 8080\n",
            "      type: 'exec'\n      command: ['/bin/ok']\n",
        );
        let spec = load_str(&exec).unwrap();
        let w = workload(&spec, &spec.components[0], "k", "1.2.0", Stamp::default());
        assert_eq!(
            w.probe.unwrap().action,
            ProbeAction::Exec {
                command: vec!["/bin/ok".into()]
            }
        );
        assert_eq!(
            w.ports,
            [Port {
                name: "http".into(),
                number: 8080
            }]
        );
        let tcp = CANARY.replace("type: 'http'\n      endpoint: '/health'\n", "type: 'tcp'\n");
        let spec = load_str(&tcp).unwrap();
        let w = workload(&spec, &spec.components[0], "k", "1.2.0", Stamp::default());
        assert_eq!(
            w.probe.unwrap().action,
            ProbeAction::Tcp {
                port: PortRef::Number(8080)
            }
        );
        assert_eq!(w.ports[0].name, "tcp");
    }

    #[test]
    fn traffic_modes_and_gateway() {
        assert_eq!(traffic(&load_str(CANARY).unwrap()), Traffic::ReplicaRatio);
        assert_eq!(traffic(&load_str(ROLLING).unwrap()), Traffic::ReplicaRatio);
        let bg = load_str(BLUE_GREEN).unwrap();
        assert_eq!(traffic(&bg), Traffic::ActivePreview);
        assert_eq!(gateway(&bg), None);
        let gw = load_str(&CANARY.replace(
            "  provider: 'kubernetes'\n",
            "  provider: 'kubernetes'\n  trafficRouting: {gatewayAPI: {gateway: public, sectionName: web}}\n",
        ))
        .unwrap();
        assert_eq!(traffic(&gw), Traffic::GatewayApi);
        assert_eq!(
            gateway(&gw),
            Some(GatewayRef {
                name: "public".into(),
                namespace: None,
                section_name: Some("web".into()),
                hostnames: vec![],
            })
        );
    }
}
