//! The spec's Kubernetes side: `infrastructure.trafficRouting`, component `ports`, the default
//! image, and what the Kubernetes provider cannot run.
//!
//! Owns: decoding `trafficRouting`, the rules on these keys (errors, whatever the provider), and
//! [`findings`]: what `validate` and `plan` report for a spec on provider `kubernetes` (a missing
//! `image`, analysis that needs the local router's built-in metrics, a gradual blue-green switch
//! without Gateway API). Those findings do not make a spec invalid: the seed's examples ask for
//! exactly these things and must keep validating, and `--dry-run` simulates them; the
//! Kubernetes provider refuses the [`Severity::Refused`] ones before anything changes.
//! Must not touch: the cluster (that is `provider::kubernetes` and the `cutover-kube` crate).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::canary::SourceKind;
use super::decode::{Decoder, Diagnostic, FromNode};
use super::expr::Expr;
use super::kinds::*;
use super::model::*;
use super::yaml::Node;

/// `infrastructure.trafficRouting`: how a Kubernetes component's traffic is split between its
/// revisions. Absent: a canary's weight is the ratio of ready pods behind one stable Service, and
/// a blue-green switch moves the active Service's selector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    #[serde(rename = "gatewayAPI")]
    pub gateway_api: Option<GatewayApi>,
}

impl FromNode for TrafficRouting {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["gatewayAPI"]);
        TrafficRouting {
            gateway_api: o.opt(d, "gatewayAPI"),
        }
    }
}

/// `trafficRouting.gatewayAPI`: an HTTPRoute named after the component, attached to this
/// Gateway, whose backends are one Service per revision with exact weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApi {
    /// The Gateway's name.
    pub gateway: String,
    /// The Gateway's namespace (default: the deployment's).
    pub gateway_namespace: Option<String>,
    /// The Gateway listener to attach to (default: all of them).
    pub section_name: Option<String>,
    /// Hostnames the route matches (default: whatever the listener accepts).
    #[serde(default)]
    pub hostnames: Vec<String>,
}

impl FromNode for GatewayApi {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["gateway", "gatewayNamespace", "sectionName", "hostnames"],
        );
        GatewayApi {
            gateway: o.req(d, "gateway"),
            gateway_namespace: o.opt(d, "gatewayNamespace"),
            section_name: o.opt(d, "sectionName"),
            hostnames: o.def(d, "hostnames"),
        }
    }
}

impl Spec {
    /// The Gateway API routing the spec asks for, if any.
    pub fn gateway_api(&self) -> Option<&GatewayApi> {
        self.infrastructure
            .traffic_routing
            .as_ref()
            .and_then(|t| t.gateway_api.as_ref())
    }
}

/// The image a component runs on Kubernetes when the spec names none:
/// `<component id>:<component version, else the revision's version>`, made a valid reference
/// (lowercase name; characters a tag cannot hold become `_`).
pub fn default_image(comp: &Component, version: &str) -> String {
    let tag = if comp.version.is_empty() {
        version
    } else {
        &comp.version
    };
    let name: String = comp
        .id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-' | '/') => c,
            _ => '-',
        })
        .collect();
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    if tag.is_empty() {
        name
    } else {
        format!("{name}:{tag}")
    }
}

/// The port a component listens on, on Kubernetes, when it has no `ports` map and no numbered
/// health-check port.
pub const DEFAULT_PORT: (&str, u16) = ("http", 8080);

/// A component's named container ports on Kubernetes: its `ports` map (the port the health
/// check names first, then `http`, then by name: the first is what `PORT` says); else the health
/// check's port number, named after the check (`http`, `grpc`, `tcp`), or the check's port name
/// at 8080; else `http: 8080`. Numbers are checked by the rules (1-65535).
pub fn container_ports(comp: &Component) -> Vec<(String, u16)> {
    let hc = comp.health_check.as_ref();
    if !comp.ports.is_empty() {
        let checked = |name: &str, n: i64| match hc.and_then(|h| h.port.as_ref()) {
            Some(PortRef::Name(p)) => p == name,
            Some(PortRef::Number(p)) => *p == n,
            None => false,
        };
        let mut ports: Vec<(u8, String, u16)> = comp
            .ports
            .iter()
            .filter_map(|(k, v)| {
                let rank = if checked(k, *v) {
                    0
                } else if k == DEFAULT_PORT.0 {
                    1
                } else {
                    2
                };
                u16::try_from(*v).ok().map(|n| (rank, k.clone(), n))
            })
            .collect();
        ports.sort();
        return ports.into_iter().map(|(_, k, n)| (k, n)).collect();
    }
    match hc.and_then(|h| h.port.as_ref()) {
        Some(PortRef::Number(n)) => {
            let name = match hc.map(|h| h.kind) {
                Some(HealthKind::Grpc) => "grpc",
                Some(HealthKind::Tcp) => "tcp",
                _ => DEFAULT_PORT.0,
            };
            let n = u16::try_from(*n).unwrap_or(DEFAULT_PORT.1);
            vec![(name.to_string(), n)]
        }
        Some(PortRef::Name(name)) => vec![(name.clone(), DEFAULT_PORT.1)],
        None => vec![(DEFAULT_PORT.0.to_string(), DEFAULT_PORT.1)],
    }
}

/// A Kubernetes port name (IANA_SVC_NAME): 1-15 of `a-z0-9-`, a letter among them, no `-` at
/// either end or twice in a row.
fn is_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A DNS-1123 subdomain (Gateway names) or, with `max` 63 and no dots, a label (namespaces).
fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').count() <= if dots { usize::MAX } else { 1 }
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Rules on the Kubernetes keys (errors on any provider).
pub(super) fn check(spec: &Spec, d: &mut Decoder) {
    for (i, c) in spec.components.iter().enumerate() {
        let p = format!("components[{i}]");
        let mut numbers = BTreeMap::new();
        for (name, n) in &c.ports {
            let at = format!("{p}.ports.{name}");
            if !is_port_name(name) {
                d.field(
                    &at,
                    format!("`{name}` is not a port name (1-15 of a-z, 0-9 and '-', with a letter; e.g. http, grpc, metrics)"),
                );
            } else if !(1..=65535).contains(n) {
                d.field(&at, "must be a port number between 1 and 65535");
            } else if let Some(other) = numbers.insert(*n, name) {
                d.field(&at, format!("port {n} is also `{other}`"));
            }
        }
        if let (Some(hc), false) = (&c.health_check, c.ports.is_empty()) {
            match &hc.port {
                Some(PortRef::Name(name)) if !c.ports.contains_key(name) => d.field(
                    &format!("{p}.healthCheck.port"),
                    format!(
                        "names no port in ports (`{name}`; ports: {})",
                        c.ports.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
                _ => {}
            }
        }
        if let Some(image) = &c.image {
            if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
                d.field(
                    &format!("{p}.image"),
                    "must be an image reference like registry.example/shop/api:1.2.0",
                );
            }
        }
    }
    let Some(tr) = &spec.infrastructure.traffic_routing else {
        return;
    };
    let base = "infrastructure.trafficRouting";
    if spec.infrastructure.provider != ProviderKind::Kubernetes
        && !d.has_error("infrastructure.provider")
    {
        d.field(
            base,
            format!(
                "applies to provider kubernetes only (provider is {})",
                spec.infrastructure.provider
            ),
        );
    }
    let Some(gw) = &tr.gateway_api else {
        d.field(base, "name a traffic router: gatewayAPI");
        return;
    };
    let base = format!("{base}.gatewayAPI");
    if !gw.gateway.is_empty() && !is_dns_name(&gw.gateway, 253, true) {
        d.field(
            &format!("{base}.gateway"),
            format!(
                "`{}` is not a Gateway name (lowercase a-z, 0-9, '-' and '.')",
                gw.gateway
            ),
        );
    }
    if let Some(ns) = gw.gateway_namespace.as_ref() {
        if !is_dns_name(ns, 63, false) {
            d.field(
                &format!("{base}.gatewayNamespace"),
                format!("`{ns}` is not a namespace name (lowercase a-z, 0-9 and '-', at most 63)"),
            );
        }
    }
    if let Some(s) = gw.section_name.as_ref() {
        if !is_dns_name(s, 253, true) {
            d.field(
                &format!("{base}.sectionName"),
                format!("`{s}` is not a listener name (lowercase a-z, 0-9, '-' and '.')"),
            );
        }
    }
    for (i, h) in gw.hostnames.iter().enumerate() {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        if !is_dns_name(bare, 253, true) {
            d.field(
                &format!("{base}.hostnames[{i}]"),
                format!(
                    "`{h}` is not a hostname (lowercase, e.g. shop.example.com or *.example.com)"
                ),
            );
        }
    }
}

/// How a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the spec runs as documented.
    Warning,
    /// The Kubernetes provider cannot run this: `apply` on the cluster (and `plan --manifests`)
    /// refuse the spec; `validate` and `plan` report it, and `--dry-run` still simulates it.
    Refused,
}

/// One thing [`findings`] reports, on a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub diagnostic: Diagnostic,
}

impl Finding {
    fn new(severity: Severity, path: &str, message: String) -> Finding {
        Finding {
            severity,
            diagnostic: Diagnostic::Field {
                path: path.to_string(),
                message,
            },
        }
    }

    /// `FILE: warning: field.path: message`; a refused one says that apply on Kubernetes
    /// refuses it.
    pub fn render(&self, file: &str) -> String {
        match self.severity {
            Severity::Warning => format!("{file}: warning: {}", self.diagnostic),
            Severity::Refused => format!(
                "{file}: warning: {} (apply on provider kubernetes refuses this; --dry-run simulates it)",
                self.diagnostic
            ),
        }
    }
}

/// The metrics the local provider's router measures, which a cluster does not have.
pub const ROUTER_METRICS: &[&str] = &[
    "requests",
    "request_rate",
    "error_rate",
    "server_errors",
    "transport_errors",
    "success_rate",
    "response_time",
    "response_time_p50",
    "response_time_p90",
    "response_time_p99",
];

/// What to use instead of a router metric on a cluster: a Prometheus source with a query of the
/// right shape for it, or an exec source.
fn instead(name: &str) -> String {
    const SEL: &str = "app=\"{{component}}\",version=\"{{version}}\"";
    let query = if name.starts_with("response_time") {
        let q = match name {
            "response_time_p50" => "0.5",
            "response_time_p90" => "0.9",
            _ => "0.99",
        };
        format!("histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{SEL}}}[1m]))) * 1000")
    } else if name.starts_with("request") {
        format!("sum(rate(http_requests_total{{{SEL}}}[1m]))")
    } else {
        format!("sum(rate(http_requests_total{{{SEL},code=~\"5..\"}}[1m])) / sum(rate(http_requests_total{{{SEL}}}[1m]))")
    };
    format!(
        "give it a source: {{type: prometheus, address: http://prometheus.monitoring:9090, query: '{query}'}} \
         (a query of this shape for {name}), or {{type: exec, command: [...]}} printing one number"
    )
}

/// What `validate` and `plan` report for a spec on provider `kubernetes` (nothing for any other
/// provider), in spec order.
pub fn findings(spec: &Spec) -> Vec<Finding> {
    let mut out = Vec::new();
    if spec.infrastructure.provider != ProviderKind::Kubernetes {
        return out;
    }
    for (i, c) in spec.components.iter().enumerate() {
        if c.image.is_none() {
            out.push(Finding::new(
                Severity::Warning,
                &format!("components[{i}].image"),
                format!(
                    "no image; on Kubernetes `{}` runs `{}` (the component's id and version): set image to your registry's reference",
                    c.id,
                    default_image(c, &spec.version)
                ),
            ));
        }
    }
    // Names a canary metric defines: its source decides (reported at the metric).
    let mut defined = BTreeSet::new();
    if let Some(cfg) = &spec.metadata.canary_config {
        let base = "metadata.canaryConfig";
        for (i, m) in cfg.metrics.iter().enumerate() {
            defined.insert(m.name.as_str());
            let kind = m.source.as_ref().map(|s| s.kind);
            if matches!(kind, None | Some(SourceKind::Builtin)) && m.name != "failure_rate" {
                let at = match kind {
                    None => format!("{base}.metrics[{i}].source"),
                    Some(_) => format!("{base}.metrics[{i}].source.type"),
                };
                out.push(Finding::new(
                    Severity::Refused,
                    &at,
                    format!(
                        "`{}` would come from the local router's built-in metrics, which a Kubernetes cluster does not have; {}",
                        m.name,
                        instead(&m.name)
                    ),
                ));
            }
        }
        for (i, r) in cfg.progression_rules.iter().enumerate() {
            router_names_in(
                &mut out,
                &format!("{base}.progressionRules[{i}].condition"),
                &r.condition,
                &defined,
            );
        }
    }
    let mut triggers = vec![("rollback.triggers", &spec.rollback.triggers)];
    if let Some(bg) = &spec.metadata.blue_green_config {
        triggers.push((
            "metadata.blueGreenConfig.rollbackTriggers",
            &bg.rollback_triggers,
        ));
    }
    for (base, list) in triggers {
        for (i, t) in list.iter().enumerate() {
            let p = format!("{base}[{i}]");
            match &t.condition {
                Some(cond) => router_names_in(&mut out, &format!("{p}.condition"), cond, &defined),
                None if t.kind == TriggerKind::ErrorRate && !defined.contains("error_rate") => {
                    out.push(Finding::new(
                        Severity::Refused,
                        &format!("{p}.type"),
                        format!(
                            "an error-rate trigger reads the local router's error_rate, which a Kubernetes cluster does not have; define a canary metric named error_rate with a prometheus or exec source ({})",
                            instead("error_rate")
                        ),
                    ));
                }
                None => {}
            }
        }
    }
    for (i, item) in spec.validation.performance.iter().enumerate() {
        if let Some(name) = item
            .metric
            .as_deref()
            .filter(|n| ROUTER_METRICS.contains(n))
        {
            out.push(Finding::new(
                Severity::Refused,
                &format!("validation.performance[{i}].metric"),
                format!(
                    "`{name}` is a local router metric, which a Kubernetes cluster does not have; check it with a canary metric with a prometheus source, or an exec check in validation.postDeployment"
                ),
            ));
        }
    }
    if let Some(bg) = &spec.metadata.blue_green_config {
        if bg.switch_traffic.kind == SwitchKind::Gradual && spec.gateway_api().is_none() {
            out.push(Finding::new(
                Severity::Refused,
                "metadata.blueGreenConfig.switchTraffic.type",
                "gradual needs infrastructure.trafficRouting.gatewayAPI on Kubernetes (without it the switch moves the active Service's selector, all at once); add trafficRouting.gatewayAPI or use type: immediate".into(),
            ));
        }
    }
    out
}

/// What the Kubernetes provider refuses in `spec` (the [`Severity::Refused`] findings), as
/// diagnostics to print as `FILE: field.path: message`; empty when it can run the spec.
pub fn refusals(spec: &Spec) -> Vec<Diagnostic> {
    findings(spec)
        .into_iter()
        .filter(|f| f.severity == Severity::Refused)
        .map(|f| f.diagnostic)
        .collect()
}

/// Router metrics a condition reads that no canary metric defines.
fn router_names_in(out: &mut Vec<Finding>, path: &str, cond: &str, defined: &BTreeSet<&str>) {
    let Ok(expr) = Expr::parse(cond) else {
        return;
    };
    let names: Vec<String> = expr
        .identifiers()
        .into_iter()
        .filter(|n| ROUTER_METRICS.contains(&n.as_str()) && !defined.contains(n.as_str()))
        .collect();
    if names.is_empty() {
        return;
    }
    out.push(Finding::new(
        Severity::Refused,
        path,
        format!(
            "reads {} from the local router's built-in metrics, which a Kubernetes cluster does not have; define a canary metric of that name with a prometheus or exec source ({})",
            names.join(", "),
            instead(&names[0])
        ),
    ));
}

#[cfg(test)]
mod tests;
