//! The one seam through which decisions consume health and metric signals.
//!
//! Owns: the [`SignalSource`] trait, the [`Verdict`] type, and [`Builtin`], which judges the spec's
//! canary metrics, progression rules and rollback triggers against provider health and metrics.
//! Must not touch: traffic, revisions or the store; a source only reports, the run decides.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::provider::{Metrics, Provider, ProviderError, RevisionKey, RevisionStatus};
use crate::spec::expr::Expr;
pub use crate::spec::fmt_num;
use crate::spec::keyword::keyword;
use crate::spec::{Component, RuleAction, Spec, Strategy, Trigger, TriggerKind};

/// One measurement's result. Fail, error and no data are kept apart; no data is never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    Pass,
    Fail,
    NoData,
    Error,
}

/// What the run should do when a verdict is not a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    Rollback,
    Pause,
}

keyword! {
    /// What a verdict judges: instance health, a canary metric, a progression rule, a rollback
    /// trigger, or the statistical judges' combined canary score.
    pub enum SignalKind (default Health) {
        Health = "health",
        Metric = "metric",
        Rule = "rule",
        Trigger = "trigger",
        Score = "score",
    }
}

/// One judged signal, with what a person needs to agree with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Metric, rule or trigger name.
    pub signal: String,
    pub source: SignalKind,
    pub judgement: Judgement,
    pub value: Option<f64>,
    /// The threshold or condition text it was judged against.
    pub expected: String,
    pub message: String,
    pub on_fail: OnFail,
    /// The same measurement on the baseline (the revision being replaced), when there is one.
    #[serde(default)]
    pub baseline: Option<f64>,
    /// Statistical judges: the confidence interval of the shift canary - baseline.
    #[serde(default)]
    pub interval: Option<(f64, f64)>,
    /// Counts toward the analysis limits (filled in by the run).
    #[serde(default)]
    pub counts: Option<super::decide::Counts>,
    /// What this verdict led to (filled in by the run).
    #[serde(default)]
    pub decision: Option<String>,
    /// From a statistical judge: counted in the canary score rather than acting alone.
    #[serde(default)]
    pub statistical: bool,
    /// A critical statistical metric (any result but pass scores 0).
    #[serde(default)]
    pub critical: bool,
    /// Still collecting the samples a statistical judge needs: not counted as no data.
    #[serde(default)]
    pub warming_up: bool,
    /// The numeric threshold a plain metric was judged against (for charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

impl Verdict {
    /// A verdict with no baseline, interval, counts or decision yet.
    pub fn new(
        signal: &str,
        source: SignalKind,
        judgement: Judgement,
        expected: impl Into<String>,
        message: impl Into<String>,
        on_fail: OnFail,
    ) -> Verdict {
        Verdict {
            signal: signal.to_string(),
            source,
            judgement,
            value: None,
            expected: expected.into(),
            message: message.into(),
            on_fail,
            baseline: None,
            interval: None,
            counts: None,
            decision: None,
            statistical: false,
            critical: false,
            warming_up: false,
            threshold: None,
        }
    }

    pub fn with_value(mut self, v: Option<f64>) -> Verdict {
        self.value = v;
        self
    }
}

/// What a source is asked to judge.
pub struct SignalContext<'a> {
    pub spec: &'a Spec,
    pub component: &'a Component,
    /// The new revision, and its instances' status as just read from the provider.
    pub canary: &'a RevisionKey,
    pub canary_status: &'a Result<RevisionStatus, ProviderError>,
    /// The revision it replaces, if any, and its version.
    pub baseline: Option<&'a RevisionKey>,
    pub baseline_version: Option<&'a str>,
    pub provider: &'a dyn Provider,
    /// The span of recent traffic to judge (the analysis interval).
    pub window: std::time::Duration,
}

/// A source of verdicts. Real probes, Prometheus and statistical judges plug in here.
#[async_trait]
pub trait SignalSource: Send + Sync {
    async fn evaluate(&self, ctx: &SignalContext<'_>) -> Vec<Verdict>;
}

/// Judges provider health, built-in metrics and the spec's metric sources against the spec.
#[derive(Debug, Default)]
pub struct Builtin {
    metrics: super::metric_judge::MetricJudge,
}

fn values_text(expr: &Expr, m: &Metrics) -> String {
    expr.identifiers()
        .iter()
        .filter_map(|id| m.get(id).map(|v| format!("{id} = {}", fmt_num(*v))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The number in a one-comparison condition such as `error_rate < 0.05`, for charts.
fn simple_threshold(cond: &str) -> Option<f64> {
    match cond.split_whitespace().collect::<Vec<_>>()[..] {
        [_, "<" | "<=" | ">" | ">=" | "==", n] => n.parse().ok(),
        _ => None,
    }
}

fn condition_verdict(
    name: &str,
    source: SignalKind,
    cond: &str,
    m: &Metrics,
    fails_when_true: bool,
    on_fail: OnFail,
) -> Verdict {
    // Say what the condition does, so a passing trigger never reads as a requirement.
    let does = match on_fail {
        OnFail::Rollback => "rolls back",
        OnFail::Pause => "pauses",
    };
    let expected = if fails_when_true {
        format!("{does} when {cond}")
    } else {
        format!("{does} unless {cond}")
    };
    let mut base = Verdict::new(name, source, Judgement::Error, expected, "", on_fail);
    base.threshold = simple_threshold(cond);
    let expr = match Expr::parse(cond) {
        Ok(e) => e,
        Err(e) => {
            return Verdict {
                message: format!("condition `{cond}` does not parse: {e}"),
                ..base
            }
        }
    };
    let value = expr.identifiers().first().and_then(|id| m.get(id).copied());
    match expr.eval(&|id| m.get(id).copied()) {
        Err(missing) => Verdict {
            judgement: Judgement::NoData,
            message: format!("no data for {} in `{cond}`", missing.join(", ")),
            ..base
        },
        Ok(holds) => {
            let failed = holds == fails_when_true;
            let vals = values_text(&expr, m);
            Verdict {
                judgement: if failed {
                    Judgement::Fail
                } else {
                    Judgement::Pass
                },
                value,
                message: match (failed, fails_when_true) {
                    (true, true) => format!("`{cond}` is true ({vals})"),
                    (true, false) => format!("`{cond}` does not hold ({vals})"),
                    (false, _) => format!("ok ({vals})"),
                },
                ..base
            }
        }
    }
}

fn trigger_verdict(
    t: &Trigger,
    i: usize,
    health_bad: Option<String>,
    m: &Metrics,
) -> Option<Verdict> {
    let name = t.name.clone().unwrap_or_else(|| format!("{}[{i}]", t.kind));
    if let Some(cond) = &t.condition {
        return Some(condition_verdict(
            &name,
            SignalKind::Trigger,
            cond,
            m,
            true,
            OnFail::Rollback,
        ));
    }
    match t.kind {
        TriggerKind::HealthCheck => Some(Verdict::new(
            &name,
            SignalKind::Trigger,
            if health_bad.is_some() {
                Judgement::Fail
            } else {
                Judgement::Pass
            },
            "all instances healthy",
            health_bad.unwrap_or_else(|| "ok".into()),
            OnFail::Rollback,
        )),
        TriggerKind::ErrorRate => {
            let threshold = t.threshold?;
            let cond = format!("error_rate > {threshold}");
            Some(condition_verdict(
                &name,
                SignalKind::Trigger,
                &cond,
                m,
                true,
                OnFail::Rollback,
            ))
        }
        // A timeout trigger is judged by the run's clock (`decide`); metric and custom triggers
        // always have a condition (the rules require it).
        TriggerKind::Timeout | TriggerKind::Metric | TriggerKind::Custom => None,
    }
}

#[async_trait]
impl SignalSource for Builtin {
    async fn evaluate(&self, ctx: &SignalContext<'_>) -> Vec<Verdict> {
        let mut out = Vec::new();
        let comp = &ctx.component.id;
        // Health of the new revision's instances.
        let health_bad = match ctx.canary_status {
            Ok(st) => {
                let bad = st.unhealthy();
                let detail = st
                    .instances
                    .iter()
                    .find_map(|i| i.detail.clone())
                    .unwrap_or_default();
                let text = format!(
                    "{bad}/{} instance(s) unhealthy: {detail}",
                    st.instances.len()
                );
                out.push(
                    Verdict::new(
                        "health",
                        SignalKind::Health,
                        if bad > 0 {
                            Judgement::Fail
                        } else {
                            Judgement::Pass
                        },
                        "0 unhealthy instances",
                        if bad > 0 {
                            text.clone()
                        } else {
                            format!("{}/{} ready", st.ready(), st.desired)
                        },
                        OnFail::Rollback,
                    )
                    .with_value(Some(bad as f64)),
                );
                (bad > 0).then_some(text)
            }
            Err(e) => {
                out.push(Verdict::new(
                    "health",
                    SignalKind::Health,
                    Judgement::Error,
                    "0 unhealthy instances",
                    e.to_string(),
                    OnFail::Pause,
                ));
                None
            }
        };
        let (metrics, metrics_error) =
            match ctx.provider.metrics(comp, ctx.canary, ctx.window).await {
                Ok(m) => (m, None),
                Err(e) => (
                    Metrics::new(),
                    Some(format!("cannot read built-in metrics: {e}")),
                ),
            };
        let baseline_metrics = match ctx.baseline {
            Some(b) => ctx.provider.metrics(comp, b, ctx.window).await.ok(),
            None => None,
        };
        if ctx.spec.strategy == Strategy::Canary {
            let cfg = ctx.spec.canary();
            for metric in &cfg.metrics {
                out.push(
                    self.metrics
                        .judge(
                            ctx,
                            metric,
                            &metrics,
                            metrics_error.as_deref(),
                            baseline_metrics.as_ref(),
                        )
                        .await,
                );
            }
            for (i, rule) in cfg.progression_rules.iter().enumerate() {
                let name = if rule.name.is_empty() {
                    format!("progressionRules[{i}]")
                } else {
                    rule.name.clone()
                };
                let (fails_when_true, on_fail) = match rule.action {
                    RuleAction::Promote => (false, OnFail::Rollback),
                    RuleAction::Pause => (true, OnFail::Pause),
                    RuleAction::Rollback => (true, OnFail::Rollback),
                };
                let mut v = condition_verdict(
                    &name,
                    SignalKind::Rule,
                    &rule.condition,
                    &metrics,
                    fails_when_true,
                    on_fail,
                );
                if let Some(e) = &metrics_error {
                    v.judgement = Judgement::Error;
                    v.message = e.clone();
                }
                out.push(v);
            }
        } else if let Some(e) = &metrics_error {
            out.push(Verdict::new(
                "metrics",
                SignalKind::Metric,
                Judgement::Error,
                "",
                e.clone(),
                OnFail::Pause,
            ));
        }
        let mut triggers: Vec<&Trigger> = ctx.spec.rollback.triggers.iter().collect();
        if ctx.spec.strategy == Strategy::BlueGreen {
            if let Some(bg) = &ctx.spec.metadata.blue_green_config {
                triggers.extend(bg.rollback_triggers.iter());
            }
        }
        for (i, t) in triggers.into_iter().enumerate() {
            if let Some(mut v) = trigger_verdict(t, i, health_bad.clone(), &metrics) {
                if let (Some(b), Some(id)) = (
                    &baseline_metrics,
                    t.condition.as_ref().and_then(|c| first_ident(c)),
                ) {
                    v.baseline = b.get(&id).copied();
                }
                out.push(v);
            }
        }
        out
    }
}

fn first_ident(cond: &str) -> Option<String> {
    Expr::parse(cond).ok()?.identifiers().into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_judge_and_explain() {
        let mut m = Metrics::new();
        m.insert("error_rate".into(), 0.3);
        let v = condition_verdict(
            "r",
            SignalKind::Rule,
            "error_rate < 0.05",
            &m,
            false,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::Fail);
        assert!(v.message.contains("error_rate = 0.3"), "{}", v.message);
        let v = condition_verdict(
            "t",
            SignalKind::Trigger,
            "failure_rate > 0.1",
            &m,
            true,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::NoData);
        m.insert("failure_rate".into(), 0.0);
        let v = condition_verdict(
            "t",
            SignalKind::Trigger,
            "failure_rate > 0.1",
            &m,
            true,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::Pass);
    }

    #[test]
    fn a_trigger_says_what_it_does() {
        let mut m = Metrics::new();
        m.insert("error_rate".into(), 0.0);
        let t = Trigger {
            kind: TriggerKind::ErrorRate,
            threshold: Some(0.1),
            ..Trigger::default()
        };
        let v = trigger_verdict(&t, 0, None, &m).unwrap();
        assert_eq!(v.judgement, Judgement::Pass);
        assert_eq!(v.expected, "rolls back when error_rate > 0.1");
        let v = condition_verdict(
            "r",
            SignalKind::Rule,
            "error_rate < 0.05",
            &m,
            false,
            OnFail::Rollback,
        );
        assert_eq!(v.expected, "rolls back unless error_rate < 0.05");
    }
}
