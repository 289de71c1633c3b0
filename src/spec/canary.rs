//! The canary configuration: stages, metrics with their sources and judges, progression rules,
//! and the analysis limits.
//!
//! Owns: these types, their documented defaults and decoding them. Must not touch: measuring or
//! judging (that is `engine::signals` and `analysis`).

use serde::{Deserialize, Serialize};

use super::decode::{Decoder, FromNode, Millis};
use super::keyword::keyword;
use super::yaml::Node;

keyword! {
    /// How a value compares with a threshold (`operator`): it passes when `value OP threshold`.
    pub enum Operator (default Lt) {
        Lt = "lt",
        Lte = "lte",
        Gt = "gt",
        Gte = "gte",
        Eq = "eq",
    }
}

impl Operator {
    /// Whether `value OP threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::Lt => value < threshold,
            Operator::Lte => value <= threshold,
            Operator::Gt => value > threshold,
            Operator::Gte => value >= threshold,
            Operator::Eq => (value - threshold).abs() < f64::EPSILON * threshold.abs().max(1.0),
        }
    }

    /// The operator as people write it (`<`, `>=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Lt => "<",
            Operator::Lte => "<=",
            Operator::Gt => ">",
            Operator::Gte => ">=",
            Operator::Eq => "==",
        }
    }
}

keyword! {
    /// How a metric is judged (`judge`).
    pub enum Judge (default Threshold) {
        Threshold = "threshold",
        MannWhitney = "mann-whitney",
    }
}

keyword! {
    /// Which way a statistical judge counts as bad (`direction`).
    pub enum Direction (default Increase) {
        Increase = "increase",
        Decrease = "decrease",
        Either = "either",
    }
}

keyword! {
    /// Where a metric's value comes from (`source.type`).
    pub enum SourceKind (default Builtin) {
        Builtin = "builtin",
        Prometheus = "prometheus",
        Exec = "exec",
    }
}

keyword! {
    /// What a progression rule does (`action`): `promote` needs its condition to hold, `rollback`
    /// and `pause` act when it is true.
    pub enum RuleAction (default Pause) {
        Promote = "promote",
        Rollback = "rollback",
        Pause = "pause",
    }
}

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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryMetric {
    pub name: String,
    pub threshold: f64,
    pub operator: Operator,
    pub unit: Option<String>,
    /// Where the value comes from (default: the provider's built-in metrics).
    pub source: Option<MetricSource>,
    /// `threshold` (default) or `mann-whitney` (canary against baseline).
    pub judge: Judge,
    /// mann-whitney: which way is bad: `increase` (default), `decrease`, `either`.
    pub direction: Direction,
    /// mann-whitney: a critical metric that is not Pass fails the whole analysis.
    pub critical: bool,
}

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
        let judge: Judge = o.or(d, "judge", Judge::Threshold);
        let thresholded = judge == Judge::Threshold && !d.has_error(&o.path("judge"));
        CanaryMetric {
            name: o.req(d, "name"),
            threshold: if thresholded {
                o.req(d, "threshold")
            } else {
                o.def(d, "threshold")
            },
            operator: if thresholded {
                o.req(d, "operator")
            } else {
                o.or(d, "operator", Operator::Lt)
            },
            unit: o.opt(d, "unit"),
            source: o.opt(d, "source"),
            judge,
            direction: o.or(d, "direction", Direction::Increase),
            critical: o.def(d, "critical"),
        }
    }
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSource {
    #[serde(rename = "type")]
    pub kind: SourceKind,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressionRule {
    pub name: String,
    pub condition: String,
    pub action: RuleAction,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{fmt_num, Keyword};

    #[test]
    fn operators_compare() {
        assert!(Operator::Lt.holds(1.0, 2.0));
        assert!(Operator::Lte.holds(2.0, 2.0));
        assert!(Operator::Gt.holds(3.0, 2.0));
        assert!(Operator::Gte.holds(2.0, 2.0));
        assert!(Operator::Eq.holds(2.0, 2.0));
        assert_eq!(Operator::parse("bogus"), None);
        assert_eq!(Operator::Gte.symbol(), ">=");
        assert_eq!(fmt_num(0.30000001), "0.3");
        assert_eq!(fmt_num(200.0), "200");
    }
}
