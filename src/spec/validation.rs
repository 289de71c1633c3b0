//! The `validation` block: checks run before traffic moves, after it moves, and by `cutover verify`.
//!
//! Owns: the item format of `preDeployment`, `postDeployment`, `healthChecks`, `performance` and
//! `security`, decoding it, and its rules. Must not touch: running the checks (that is `verify`).

use serde::{Deserialize, Serialize};

use super::decode::{Decoder, FromNode, Millis};
use super::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    pub pre_deployment: Vec<CheckItem>,
    pub post_deployment: Vec<CheckItem>,
    pub health_checks: Vec<CheckItem>,
    pub performance: Vec<CheckItem>,
    pub security: Vec<CheckItem>,
}

impl Validation {
    pub fn is_empty(&self) -> bool {
        self.pre_deployment.is_empty()
            && self.post_deployment.is_empty()
            && self.health_checks.is_empty()
            && self.performance.is_empty()
            && self.security.is_empty()
    }
}

impl FromNode for Validation {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "preDeployment",
                "postDeployment",
                "healthChecks",
                "performance",
                "security",
            ],
        );
        Validation {
            pre_deployment: o.def(d, "preDeployment"),
            post_deployment: o.def(d, "postDeployment"),
            health_checks: o.def(d, "healthChecks"),
            performance: o.def(d, "performance"),
            security: o.def(d, "security"),
        }
    }
}

/// One check. Which fields apply depends on `type` (see `TYPES`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckItem {
    pub name: Option<String>,
    /// See the `*_TYPES` lists; performance items default to `metric`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The component checked (default: every component, or the first for address-based checks).
    pub component: Option<String>,
    /// http: a path on the component's listen address, or a full `url`.
    pub path: Option<String>,
    pub url: Option<String>,
    /// tcp, grpc: `host:port` (default: the component's listen address).
    pub address: Option<String>,
    /// exec: argv, exit 0 passes.
    pub command: Vec<String>,
    /// grpc: the health service name.
    pub service: Option<String>,
    /// http: the expected status (default: any 200-399).
    pub expect_status: Option<i64>,
    /// http: text the body must contain.
    pub expect_body: Option<String>,
    /// performance: the metric (`response_time`, `request_rate`, `error_rate`, ...).
    pub metric: Option<String>,
    pub operator: Option<super::canary::Operator>,
    pub threshold: Option<f64>,
    /// performance: the span of recent traffic judged (default 30s).
    pub window: Option<Millis>,
    /// Per check (default 5s).
    pub timeout: Option<Millis>,
}

impl FromNode for CheckItem {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "name",
                "type",
                "component",
                "path",
                "url",
                "address",
                "command",
                "service",
                "expectStatus",
                "expectBody",
                "metric",
                "operator",
                "threshold",
                "window",
                "timeout",
            ],
        );
        let metric: Option<String> = o.opt(d, "metric");
        let default_kind = if metric.is_some() { "metric" } else { "" };
        CheckItem {
            name: o.opt(d, "name"),
            kind: o.or(d, "type", default_kind.to_string()),
            component: o.opt(d, "component"),
            path: o.opt(d, "path"),
            url: o.opt(d, "url"),
            address: o.opt(d, "address"),
            command: o.def(d, "command"),
            service: o.opt(d, "service"),
            expect_status: o.opt(d, "expectStatus"),
            expect_body: o.opt(d, "expectBody"),
            metric,
            operator: o.opt(d, "operator"),
            threshold: o.opt(d, "threshold"),
            window: o.opt(d, "window"),
            timeout: o.opt(d, "timeout"),
        }
    }
}

impl CheckItem {
    /// A name for reports: the given one, else type and target.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let target = self
            .url
            .clone()
            .or_else(|| self.path.clone())
            .or_else(|| self.address.clone())
            .or_else(|| self.metric.clone())
            .or_else(|| self.command.first().cloned())
            .unwrap_or_default();
        if target.is_empty() {
            self.kind.clone()
        } else {
            format!("{} {target}", self.kind)
        }
    }
}

pub const PRE_TYPES: &[&str] = &[
    "dependencies",
    "listen-free",
    "command-present",
    "http",
    "tcp",
    "exec",
    "grpc",
];
pub const POST_TYPES: &[&str] = &["http", "tcp", "exec", "grpc"];
pub const PERFORMANCE_TYPES: &[&str] = &["metric"];
pub const SECURITY_TYPES: &[&str] = &["requires-auth", "tls", "no-plain-secrets"];
