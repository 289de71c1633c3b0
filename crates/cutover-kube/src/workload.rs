//! A revision's pods in cutover's own terms: what cutover's provider hands this crate, so that
//! the crate knows nothing of cutover's spec.
//!
//! Owns: [`Workload`], [`Probe`], [`Traffic`] and what they say. Must not touch: the API server.

use std::collections::BTreeMap;

/// One revision of one component, as it runs on the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// The component's id (labels, Service names).
    pub component: String,
    /// The deployment (spec id) and environment that own it.
    pub deployment: String,
    pub environment: String,
    /// cutover's revision key (unique in its store); the object names hash it.
    pub revision_key: String,
    pub version: String,
    /// The container image (cutover's provider fills a documented default when the spec has none).
    pub image: String,
    /// Replicas at full size.
    pub replicas: u32,
    /// Named container ports (`http`, `grpc`, ...); the first is the Services' target.
    pub ports: Vec<Port>,
    /// Container environment.
    pub env: BTreeMap<String, String>,
    /// Container resources as the spec writes them: `cpu`, `memory` (requests = limits), or
    /// `requests.cpu`, `limits.memory`, ...
    pub resources: BTreeMap<String, String>,
    /// The readiness probe (also liveness where `liveness` is set).
    pub probe: Option<Probe>,
    /// Where the rollout's plan stands when the object is written (annotations).
    pub stamp: Stamp,
    /// Labels the pods carry besides cutover's own (never in the Deployment's selector): those
    /// a team's own Service selects the baseline's pods by, so that it serves these too.
    pub pod_labels: BTreeMap<String, String>,
}

/// A container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub number: u16,
}

/// Where a port is named in a probe: by number or by the container port's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

/// A probe with kubelet's fields and kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay_seconds: i32,
    pub period_seconds: i32,
    pub timeout_seconds: i32,
    pub failure_threshold: i32,
    pub success_threshold: i32,
    /// Also a liveness probe (its success threshold is 1, as kubelet requires).
    pub liveness: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeAction {
    Http { path: String, port: PortRef },
    Tcp { port: PortRef },
    Exec { command: Vec<String> },
    Grpc { port: u16, service: Option<String> },
}

/// How a component's traffic is split between its revisions on the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Traffic {
    /// One stable Service selects every revision's pods; a weight is a replica ratio.
    #[serde(rename = "replica ratio")]
    ReplicaRatio,
    /// A Service per revision and an HTTPRoute whose backend weights are set exactly.
    #[serde(rename = "gateway api")]
    GatewayApi,
    /// An active and a preview Service; the switch moves the active Service's selector.
    #[serde(rename = "active/preview")]
    ActivePreview,
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Traffic::ReplicaRatio => "replica ratio",
            Traffic::GatewayApi => "gateway api",
            Traffic::ActivePreview => "active/preview",
        })
    }
}

/// Annotations that say which run and step wrote an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    /// `ID#N`.
    pub run: String,
    pub step: Option<u32>,
    /// The revision key this one replaces, if any.
    pub previous: Option<String>,
    /// The cutover version writing it.
    pub cutover_version: String,
}

/// The Gateway an HTTPRoute attaches to (`trafficRouting.gatewayAPI` in cutover's spec).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayRef {
    /// The Gateway's name.
    pub name: String,
    /// Its namespace when it is not the route's.
    pub namespace: Option<String>,
    /// The Gateway listener the route attaches to, when not all of them.
    pub section_name: Option<String>,
    /// Hostnames the route matches (none: every hostname the listener accepts).
    pub hostnames: Vec<String>,
}
