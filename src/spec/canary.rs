//! The canary configuration: stages, metrics with their sources and judges, progression rules,
//! and the analysis limits.
//!
//! Owns: these types, their documented defaults and decoding them. Must not touch: measuring or
//! judging (that is `engine::signals` and `analysis`).

use serde::{Deserialize, Serialize};

use super::decode::{Decoder, FromNode, Millis};
use super::yaml::Node;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfig {
    pub stages: Vec<CanaryStage>,
    pub metrics: Vec<CanaryMetric>,
    pub progression_rules: Vec<ProgressionRule>,
    pub analysis_interval: Millis,
    /// Failed measurements of one metric tolerated before rolling back (default 0: the first fails).
    pub failure_limit: i64,
    /// Consecutive measurements without data before pausing for a person (default 3).
    pub no_data_limit: i64,
    /// Consecutive measurement errors (source down) before pausing for a person (default 4).
    pub error_limit: i64,
    /// Statistical judges: group score thresholds (defaults 95 and 75, as Spinnaker).
    pub score_thresholds: ScoreThresholds,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreThresholds {
    pub pass: f64,
    pub marginal: f64,
}

impl Default for ScoreThresholds {
    fn default() -> Self {
        ScoreThresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

impl FromNode for ScoreThresholds {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["pass", "marginal"]);
        ScoreThresholds {
            pass: o.or(d, "pass", 95.0),
            marginal: o.or(d, "marginal", 75.0),
        }
    }
}

impl CanaryConfig {
    /// Default stages when `stages` is empty: 10% for 5m, 50% for 5m, then 100%.
    pub fn default_stages() -> Vec<CanaryStage> {
        [(10, 300_000), (50, 300_000), (100, 0)]
            .into_iter()
            .map(|(p, ms)| CanaryStage {
                name: format!("canary-{p}"),
                percentage: p,
                duration: Millis(ms),
                auto_promote: true,
            })
            .collect()
    }
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            stages: CanaryConfig::default_stages(),
            metrics: Vec::new(),
            progression_rules: Vec::new(),
            analysis_interval: Millis(60_000),
            failure_limit: 0,
            no_data_limit: 3,
            error_limit: 4,
            score_thresholds: ScoreThresholds::default(),
        }
    }
}

impl FromNode for CanaryConfig {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "stages",
                "metrics",
                "progressionRules",
                "analysisInterval",
                "failureLimit",
                "noDataLimit",
                "errorLimit",
                "scoreThresholds",
            ],
        );
        let stages: Vec<CanaryStage> = o.def(d, "stages");
        CanaryConfig {
            stages: if o.has("stages") {
                stages
            } else {
                CanaryConfig::default_stages()
            },
            metrics: o.def(d, "metrics"),
            progression_rules: o.def(d, "progressionRules"),
            analysis_interval: o.or(d, "analysisInterval", Millis(60_000)),
            failure_limit: o.or(d, "failureLimit", 0),
            no_data_limit: o.or(d, "noDataLimit", 3),
            error_limit: o.or(d, "errorLimit", 4),
            score_thresholds: o.def(d, "scoreThresholds"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStage {
    pub name: String,
    pub percentage: i64,
    pub duration: Millis,
    pub auto_promote: bool,
}

impl FromNode for CanaryStage {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["name", "percentage", "duration", "autoPromote"]);
        let percentage: i64 = o.req(d, "percentage");
        CanaryStage {
            name: o
                .opt(d, "name")
                .unwrap_or_else(|| format!("canary-{percentage}")),
            percentage,
            duration: o.def(d, "duration"),
            auto_promote: o.or(d, "autoPromote", true),
        }
    }
}

/// The comparison operators a metric threshold takes.
pub const OPERATORS: &[&str] = &["lt", "lte", "gt", "gte", "eq"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    pub name: String,
    pub threshold: f64,
    pub operator: String,
    pub unit: Option<String>,
    /// Where the value comes from (default: the provider's built-in metrics).
    pub source: Option<MetricSource>,
    /// `threshold` (default) or `mann-whitney` (canary against baseline).
    pub judge: String,
    /// mann-whitney: which way is bad: `increase` (default), `decrease`, `either`.
    pub direction: String,
    /// mann-whitney: a critical metric that is not Pass fails the whole analysis.
    pub critical: bool,
}

/// The judges a metric may use.
pub const JUDGES: &[&str] = &["threshold", "mann-whitney"];
/// The directions a statistical judge may take.
pub const DIRECTIONS: &[&str] = &["increase", "decrease", "either"];
/// The metric source types.
pub const SOURCE_TYPES: &[&str] = &["builtin", "prometheus", "exec"];

impl FromNode for CanaryMetric {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "name",
                "threshold",
                "operator",
                "unit",
                "source",
                "judge",
                "direction",
                "critical",
            ],
        );
        let judge: String = o.or(d, "judge", "threshold".to_string());
        CanaryMetric {
            name: o.req(d, "name"),
            threshold: if judge == "threshold" {
                o.req(d, "threshold")
            } else {
                o.def(d, "threshold")
            },
            operator: if judge == "threshold" {
                o.req(d, "operator")
            } else {
                o.or(d, "operator", "lt".to_string())
            },
            unit: o.opt(d, "unit"),
            source: o.opt(d, "source"),
            judge,
            direction: o.or(d, "direction", "increase".to_string()),
            critical: o.def(d, "critical"),
        }
    }
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSource {
    /// builtin | prometheus | exec
    #[serde(rename = "type")]
    pub kind: String,
    /// prometheus: the server, e.g. http://127.0.0.1:9090
    pub address: Option<String>,
    /// prometheus: an instant PromQL query; `{{version}}` is the version measured (canary, then
    /// baseline), also `{{canary}}`, `{{baseline}}`, `{{component}}`, `{{environment}}`,
    /// `{{revision}}`, `{{interval}}`.
    pub query: Option<String>,
    /// exec: argv printing one number (the same placeholders apply).
    pub command: Vec<String>,
    /// How long one measurement may take (default 5s).
    pub timeout: Option<Millis>,
}

impl FromNode for MetricSource {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["type", "address", "query", "command", "timeout"]);
        MetricSource {
            kind: o.req(d, "type"),
            address: o.opt(d, "address"),
            query: o.opt(d, "query"),
            command: o.def(d, "command"),
            timeout: o.opt(d, "timeout"),
        }
    }
}

/// The actions a progression rule takes.
pub const RULE_ACTIONS: &[&str] = &["promote", "rollback", "pause"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressionRule {
    pub name: String,
    pub condition: String,
    pub action: String,
}

impl FromNode for ProgressionRule {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["name", "condition", "action"]);
        ProgressionRule {
            name: o.def(d, "name"),
            condition: o.req(d, "condition"),
            action: o.req(d, "action"),
        }
    }
}
