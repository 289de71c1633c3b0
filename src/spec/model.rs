//! The typed deployment spec: the seed's configuration keys, exactly, plus cutover's local-provider fields.
//!
//! Owns: the spec structs, their documented defaults, and decoding each from a YAML node.
//! Must not touch: cross-field rules (that is `rules`) or anything that runs a deployment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::canary::CanaryConfig;
use super::decode::{Decoder, FromNode, Millis, Moment, Secs};
use super::kinds::*;
use super::validation::Validation;
use super::yaml::{Kind, Node};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub id: String,
    pub name: String,
    pub version: String,
    pub strategy: Strategy,
    pub environment: String,
    pub components: Vec<Component>,
    pub infrastructure: Infrastructure,
    pub validation: Validation,
    pub rollback: Rollback,
    pub analytics: Analytics,
    pub metadata: Metadata,
}

impl FromNode for Spec {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "id",
                "name",
                "version",
                "strategy",
                "environment",
                "components",
                "infrastructure",
                "validation",
                "rollback",
                "analytics",
                "metadata",
            ],
        );
        Spec {
            id: o.req(d, "id"),
            name: o.req(d, "name"),
            version: o.req(d, "version"),
            strategy: o.req(d, "strategy"),
            environment: o.req(d, "environment"),
            components: o.req(d, "components"),
            infrastructure: o.req(d, "infrastructure"),
            validation: o.def(d, "validation"),
            rollback: o.or(d, "rollback", Rollback::defaults()),
            analytics: o.def(d, "analytics"),
            metadata: o.def(d, "metadata"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub id: String,
    pub name: String,
    pub version: String,
    pub replicas: Replicas,
    pub resources: BTreeMap<String, String>,
    pub health_check: Option<HealthCheck>,
    pub dependencies: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Local provider: where the router accepts traffic for this component.
    pub listen: Option<String>,
    /// Local provider: how to start an instance.
    pub run: Option<Run>,
    /// Kubernetes provider: the container image.
    pub image: Option<String>,
    /// Kubernetes provider: named container ports (`http: 8080`); see `kubernetes::container_ports`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, i64>,
}

impl FromNode for Component {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "id",
                "name",
                "version",
                "replicas",
                "resources",
                "healthCheck",
                "dependencies",
                "environment",
                "listen",
                "run",
                "image",
                "ports",
            ],
        );
        let id: String = o.req(d, "id");
        Component {
            name: o.opt(d, "name").unwrap_or_else(|| id.clone()),
            id,
            version: o.def(d, "version"),
            replicas: o.or(d, "replicas", Replicas::ONE),
            resources: o.def(d, "resources"),
            health_check: o.opt(d, "healthCheck"),
            dependencies: o.def(d, "dependencies"),
            environment: o.def(d, "environment"),
            listen: o.opt(d, "listen"),
            run: o.opt(d, "run"),
            image: o.opt(d, "image"),
            ports: o.def(d, "ports"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<String>,
}

impl FromNode for Run {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["command", "env", "ports"]);
        Run {
            command: o.req(d, "command"),
            env: o.def(d, "env"),
            ports: o.def(d, "ports"),
        }
    }
}

/// A port given as a number or as a name from `run.ports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    Number(i64),
    Name(String),
}

impl Default for PortRef {
    fn default() -> Self {
        PortRef::Number(0)
    }
}

impl FromNode for PortRef {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match &n.kind {
            Kind::Int(i) => PortRef::Number(*i),
            Kind::Str(s) => match s.parse::<i64>() {
                Ok(i) => PortRef::Number(i),
                Err(_) => PortRef::Name(s.clone()),
            },
            _ => {
                d.at(
                    n.pos,
                    format!(
                        "{path}: expected a port number or name, found {}",
                        n.type_name()
                    ),
                );
                PortRef::default()
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthKind,
    pub endpoint: Option<String>,
    pub port: Option<PortRef>,
    pub command: Vec<String>,
    /// grpc: the service name to check ("" is the whole server).
    pub service: Option<String>,
    pub initial_delay_seconds: Secs,
    pub period_seconds: Secs,
    pub timeout_seconds: Secs,
    pub failure_threshold: i64,
    pub success_threshold: i64,
    /// Kubernetes: also the pod's liveness probe (kubelet restarts a container that fails it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub liveness: bool,
}

impl FromNode for HealthCheck {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "type",
                "endpoint",
                "port",
                "command",
                "service",
                "initialDelaySeconds",
                "periodSeconds",
                "timeoutSeconds",
                "failureThreshold",
                "successThreshold",
                "liveness",
            ],
        );
        // Defaults are the kubelet's: 0s delay, 10s period, 1s timeout, 3 failures, 1 success.
        HealthCheck {
            kind: o.req(d, "type"),
            endpoint: o.opt(d, "endpoint"),
            port: o.opt(d, "port"),
            command: o.def(d, "command"),
            service: o.opt(d, "service"),
            initial_delay_seconds: o.or(d, "initialDelaySeconds", Secs(0)),
            period_seconds: o.or(d, "periodSeconds", Secs::from_secs(10)),
            timeout_seconds: o.or(d, "timeoutSeconds", Secs::from_secs(1)),
            failure_threshold: o.or(d, "failureThreshold", 3),
            success_threshold: o.or(d, "successThreshold", 1),
            liveness: o.def(d, "liveness"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Infrastructure {
    pub provider: ProviderKind,
    pub region: Vec<String>,
    pub networking: serde_json::Value,
    pub security: Security,
    pub monitoring: Monitoring,
    /// Kubernetes provider: the namespace (default "default").
    pub namespace: Option<String>,
    /// Kubernetes provider: how traffic is split between revisions (absent: replica ratio, or
    /// active/preview Services for blue-green).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<super::kubernetes::TrafficRouting>,
}

impl FromNode for Infrastructure {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "provider",
                "region",
                "networking",
                "security",
                "monitoring",
                "namespace",
                "trafficRouting",
            ],
        );
        if let Some(net) = o.get("networking") {
            // Free-form beyond these keys would hide typos, so name what the seed uses.
            d.obj(
                net,
                &o.path("networking"),
                &[
                    "subnets",
                    "vpc",
                    "loadBalancer",
                    "securityGroups",
                    "ingress",
                    "serviceMesh",
                ],
            );
        }
        let region = match o.get("region") {
            Some(Node {
                kind: Kind::Str(s), ..
            }) => vec![s.clone()],
            _ => o.def(d, "region"),
        };
        Infrastructure {
            provider: o.req(d, "provider"),
            region,
            networking: o.get("networking").map(Node::to_json).unwrap_or_default(),
            security: o.def(d, "security"),
            monitoring: o.def(d, "monitoring"),
            namespace: o.opt(d, "namespace"),
            traffic_routing: o.opt(d, "trafficRouting"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    pub authentication: serde_json::Value,
    pub authorization: serde_json::Value,
    pub encryption: Encryption,
    pub network_policies: Vec<serde_json::Value>,
}

impl FromNode for Security {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "authentication",
                "authorization",
                "encryption",
                "networkPolicies",
            ],
        );
        if let Some(a) = o.get("authentication") {
            d.obj(a, &o.path("authentication"), &["type", "configuration"]);
        }
        if let Some(a) = o.get("authorization") {
            let ao = d.obj(a, &o.path("authorization"), &["rbac", "policies"]);
            if let Some(r) = ao.get("rbac") {
                d.obj(r, &ao.path("rbac"), &["enabled", "roles", "bindings"]);
            }
        }
        Security {
            authentication: o.def(d, "authentication"),
            authorization: o.def(d, "authorization"),
            encryption: o.def(d, "encryption"),
            network_policies: o.def(d, "networkPolicies"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    pub in_transit: bool,
    pub at_rest: bool,
    pub key_management: BTreeMap<String, String>,
    /// Lowest TLS version accepted when `inTransit` is set ("1.2" or "1.3").
    pub min_tls_version: Option<String>,
}

impl FromNode for Encryption {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["inTransit", "atRest", "keyManagement", "minTlsVersion"],
        );
        Encryption {
            in_transit: o.def(d, "inTransit"),
            at_rest: o.def(d, "atRest"),
            key_management: o.def(d, "keyManagement"),
            min_tls_version: o.opt(d, "minTlsVersion"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    pub metrics: serde_json::Value,
    pub logging: serde_json::Value,
    pub tracing: serde_json::Value,
    pub alerting: serde_json::Value,
}

impl FromNode for Monitoring {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["metrics", "logging", "tracing", "alerting"]);
        let known: [(&str, &[&str]); 4] = [
            (
                "metrics",
                &[
                    "enabled",
                    "provider",
                    "scrapeInterval",
                    "retention",
                    "endpoint",
                    "url",
                ],
            ),
            (
                "logging",
                &["enabled", "level", "format", "destination", "retention"],
            ),
            (
                "tracing",
                &["enabled", "provider", "samplingRate", "endpoint"],
            ),
            ("alerting", &["enabled", "rules", "channels"]),
        ];
        for (key, allowed) in known {
            if let Some(n) = o.get(key) {
                d.obj(n, &o.path(key), allowed);
            }
        }
        Monitoring {
            metrics: o.def(d, "metrics"),
            logging: o.def(d, "logging"),
            tracing: o.def(d, "tracing"),
            alerting: o.def(d, "alerting"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub enabled: bool,
    pub automatic: bool,
    pub triggers: Vec<Trigger>,
    pub strategy: RollbackStrategy,
    pub timeout: Millis,
}

impl Rollback {
    /// Defaults when the block is absent: enabled, automatic, immediate, 5 minutes.
    pub fn defaults() -> Rollback {
        Rollback {
            enabled: true,
            automatic: true,
            triggers: Vec::new(),
            strategy: RollbackStrategy::default(),
            timeout: Millis(300_000),
        }
    }
}

impl Default for Rollback {
    fn default() -> Self {
        Rollback::defaults()
    }
}

impl FromNode for Rollback {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["enabled", "automatic", "triggers", "strategy", "timeout"],
        );
        Rollback {
            enabled: o.or(d, "enabled", true),
            automatic: o.or(d, "automatic", true),
            triggers: o.def(d, "triggers"),
            strategy: o.def(d, "strategy"),
            timeout: o.or(d, "timeout", Millis(300_000)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    pub name: Option<String>,
    pub condition: Option<String>,
    pub threshold: Option<f64>,
    pub duration: Option<Millis>,
}

impl FromNode for Trigger {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["type", "name", "condition", "threshold", "duration"],
        );
        Trigger {
            kind: o.req(d, "type"),
            name: o.opt(d, "name"),
            condition: o.opt(d, "condition"),
            threshold: o.opt(d, "threshold"),
            duration: o.opt(d, "duration"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStrategy {
    #[serde(rename = "type")]
    pub kind: RollbackKind,
    /// gradual: the weights (percent on the bad revision) to step down through.
    pub steps: Vec<i64>,
    /// gradual: how long to hold each step.
    pub interval: Millis,
}

impl Default for RollbackStrategy {
    fn default() -> Self {
        RollbackStrategy {
            kind: RollbackKind::Immediate,
            steps: Vec::new(),
            interval: Millis(10_000),
        }
    }
}

impl FromNode for RollbackStrategy {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["type", "steps", "interval"]);
        RollbackStrategy {
            kind: o.or(d, "type", RollbackKind::Immediate),
            steps: o.def(d, "steps"),
            interval: o.or(d, "interval", Millis(10_000)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analytics {
    pub enabled: bool,
    pub metrics: Vec<serde_json::Value>,
    pub reporting: serde_json::Value,
    pub retention: Option<Millis>,
}

impl FromNode for Analytics {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["enabled", "metrics", "reporting", "retention"]);
        if let Some(r) = o.get("reporting") {
            d.obj(
                r,
                &o.path("reporting"),
                &["dashboards", "alerts", "exports"],
            );
        }
        Analytics {
            enabled: o.or(d, "enabled", true),
            metrics: o.def(d, "metrics"),
            reporting: o.def(d, "reporting"),
            retention: o.opt(d, "retention"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub blue_green_config: Option<BlueGreenConfig>,
    pub canary_config: Option<CanaryConfig>,
    pub rolling_config: Option<RollingConfig>,
    /// How long any wait for instances to become ready may take, whatever the strategy (as a
    /// Kubernetes Deployment's `progressDeadlineSeconds`); else `rollingConfig.progressDeadline`,
    /// else 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<Millis>,
    /// When the change this version carries was made (its commit time, RFC 3339): the report's
    /// lead time for changes runs from here to the deployment's success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<Moment>,
}

impl FromNode for Metadata {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "blueGreenConfig",
                "canaryConfig",
                "rollingConfig",
                "progressDeadline",
                "changedAt",
            ],
        );
        Metadata {
            blue_green_config: o.opt(d, "blueGreenConfig"),
            canary_config: o.opt(d, "canaryConfig"),
            rolling_config: o.opt(d, "rollingConfig"),
            progress_deadline: o.opt(d, "progressDeadline"),
            changed_at: o.opt(d, "changedAt"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenConfig {
    pub switch_traffic: SwitchTraffic,
    pub environment_validation: serde_json::Value,
    pub rollback_triggers: Vec<Trigger>,
    pub warmup_duration: Millis,
}

impl Default for BlueGreenConfig {
    /// Defaults: an immediate switch held 1 minute to verify, no warmup.
    fn default() -> Self {
        BlueGreenConfig {
            switch_traffic: SwitchTraffic::default(),
            environment_validation: serde_json::Value::Null,
            rollback_triggers: Vec::new(),
            warmup_duration: Millis(0),
        }
    }
}

impl FromNode for BlueGreenConfig {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "switchTraffic",
                "environmentValidation",
                "rollbackTriggers",
                "warmupDuration",
            ],
        );
        BlueGreenConfig {
            switch_traffic: o.def(d, "switchTraffic"),
            environment_validation: o.def(d, "environmentValidation"),
            rollback_triggers: o.def(d, "rollbackTriggers"),
            warmup_duration: o.def(d, "warmupDuration"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchTraffic {
    #[serde(rename = "type")]
    pub kind: SwitchKind,
    pub steps: Vec<SwitchStep>,
    /// How long the switched state is watched before the old environment is removed.
    pub verify_duration: Millis,
}

impl Default for SwitchTraffic {
    fn default() -> Self {
        SwitchTraffic {
            kind: SwitchKind::Immediate,
            steps: Vec::new(),
            verify_duration: Millis(60_000),
        }
    }
}

impl FromNode for SwitchTraffic {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["type", "steps", "verifyDuration"]);
        SwitchTraffic {
            kind: o.or(d, "type", SwitchKind::Immediate),
            steps: o.def(d, "steps"),
            verify_duration: o.or(d, "verifyDuration", Millis(60_000)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchStep {
    pub percentage: i64,
    pub duration: Millis,
    pub validation: serde_json::Value,
    /// false: wait for an approval before this step's traffic moves.
    pub auto_promote: bool,
}

impl FromNode for SwitchStep {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["percentage", "duration", "validation", "autoPromote"],
        );
        SwitchStep {
            percentage: o.req(d, "percentage"),
            duration: o.def(d, "duration"),
            validation: o.def(d, "validation"),
            auto_promote: o.or(d, "autoPromote", true),
        }
    }
}

/// A count or a percentage (`1`, `"25%"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IntOrPercent {
    Count(i64),
    Percent(i64),
}

impl Default for IntOrPercent {
    fn default() -> Self {
        IntOrPercent::Count(0)
    }
}

impl IntOrPercent {
    /// Resolve against a total: percentages of maxSurge round up, of maxUnavailable down (as Kubernetes).
    pub fn resolve(self, total: u64, round_up: bool) -> u64 {
        match self {
            IntOrPercent::Count(c) => c.max(0) as u64,
            IntOrPercent::Percent(p) => {
                let x = total * p.max(0) as u64;
                if round_up {
                    x.div_ceil(100)
                } else {
                    x / 100
                }
            }
        }
    }

    pub fn is_zero(self) -> bool {
        matches!(self, IntOrPercent::Count(0) | IntOrPercent::Percent(0))
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Count(c) => write!(f, "{c}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromNode for IntOrPercent {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        match &n.kind {
            Kind::Int(i) => IntOrPercent::Count(*i),
            Kind::Str(s) => match s.trim().strip_suffix('%').map(|p| p.trim().parse::<i64>()) {
                Some(Ok(p)) => IntOrPercent::Percent(p),
                _ => match s.trim().parse::<i64>() {
                    Ok(c) => IntOrPercent::Count(c),
                    Err(_) => {
                        d.at(
                            n.pos,
                            format!("{path}: expected a count or a percentage like \"25%\", found `{s}`"),
                        );
                        IntOrPercent::default()
                    }
                },
            },
            _ => {
                d.at(
                    n.pos,
                    format!(
                        "{path}: expected a count or a percentage like \"25%\", found {}",
                        n.type_name()
                    ),
                );
                IntOrPercent::default()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingConfig {
    pub batch_size: i64,
    pub max_unavailable: IntOrPercent,
    pub max_surge: IntOrPercent,
    pub progress_deadline: Millis,
    pub pause_between_batches: Millis,
}

impl Default for RollingConfig {
    /// Defaults: batches of 1, surge 1, none unavailable, 10m deadline, no pause.
    fn default() -> Self {
        RollingConfig {
            batch_size: 1,
            max_unavailable: IntOrPercent::Count(0),
            max_surge: IntOrPercent::Count(1),
            progress_deadline: Millis(600_000),
            pause_between_batches: Millis(0),
        }
    }
}

impl FromNode for RollingConfig {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "batchSize",
                "maxUnavailable",
                "maxSurge",
                "progressDeadline",
                "pauseBetweenBatches",
            ],
        );
        let def = RollingConfig::default();
        RollingConfig {
            batch_size: o.or(d, "batchSize", def.batch_size),
            max_unavailable: o.or(d, "maxUnavailable", def.max_unavailable),
            max_surge: o.or(d, "maxSurge", def.max_surge),
            progress_deadline: o.or(d, "progressDeadline", def.progress_deadline),
            pause_between_batches: o.or(d, "pauseBetweenBatches", def.pause_between_batches),
        }
    }
}
