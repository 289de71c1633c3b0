//! The one seam through which decisions consume health and metric signals.
//!
//! Owns: the [`SignalSource`] trait, the [`Verdict`] type, and [`Builtin`], which judges the spec's
//! canary metrics, progression rules and rollback triggers against provider health and metrics.
//! Must not touch: traffic, revisions or the store; a source only reports, the run decides.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::provider::{Metrics, Provider, RevisionKey};
use crate::spec::expr::Expr;
use crate::spec::{Component, Spec, Trigger};

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

/// One judged signal, with what a person needs to agree with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Metric, rule or trigger name.
    pub signal: String,
    /// health | metric | rule | trigger
    pub source: String,
    pub judgement: Judgement,
    pub value: Option<f64>,
    /// The threshold or condition text it was judged against.
    pub expected: String,
    pub message: String,
    pub on_fail: OnFail,
}

/// What a source is asked to judge.
pub struct SignalContext<'a> {
    pub spec: &'a Spec,
    pub component: &'a Component,
    /// The new revision.
    pub canary: &'a RevisionKey,
    /// The revision it replaces, if any.
    pub baseline: Option<&'a RevisionKey>,
    pub provider: &'a dyn Provider,
    /// The span of recent traffic to judge (the analysis interval).
    pub window: std::time::Duration,
}

/// A source of verdicts. Real probes, Prometheus and statistical judges plug in here.
#[async_trait]
pub trait SignalSource: Send + Sync {
    async fn evaluate(&self, ctx: &SignalContext<'_>) -> Vec<Verdict>;
}

/// Judges provider health and built-in metrics against the spec.
#[derive(Debug, Default)]
pub struct Builtin;

fn compare(value: f64, op: &str, threshold: f64) -> bool {
    match op {
        "lt" => value < threshold,
        "lte" => value <= threshold,
        "gt" => value > threshold,
        "gte" => value >= threshold,
        "eq" => (value - threshold).abs() < f64::EPSILON * threshold.abs().max(1.0),
        _ => false,
    }
}

fn op_text(op: &str) -> &'static str {
    match op {
        "lt" => "<",
        "lte" => "<=",
        "gt" => ">",
        "gte" => ">=",
        _ => "==",
    }
}

fn values_text(expr: &Expr, m: &Metrics) -> String {
    expr.identifiers()
        .iter()
        .filter_map(|id| m.get(id).map(|v| format!("{id} = {}", fmt_num(*v))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Numbers as people read them: no trailing zeros, 4 significant decimals.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn condition_verdict(
    name: &str,
    source: &str,
    cond: &str,
    m: &Metrics,
    fails_when_true: bool,
    on_fail: OnFail,
) -> Verdict {
    let base = Verdict {
        signal: name.to_string(),
        source: source.to_string(),
        judgement: Judgement::Error,
        value: None,
        expected: cond.to_string(),
        message: String::new(),
        on_fail,
    };
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
            "trigger",
            cond,
            m,
            true,
            OnFail::Rollback,
        ));
    }
    match t.kind.as_str() {
        "health-check" => Some(Verdict {
            signal: name,
            source: "trigger".into(),
            judgement: if health_bad.is_some() {
                Judgement::Fail
            } else {
                Judgement::Pass
            },
            value: None,
            expected: "all instances healthy".into(),
            message: health_bad.unwrap_or_else(|| "ok".into()),
            on_fail: OnFail::Rollback,
        }),
        "error-rate" => {
            let threshold = t.threshold?;
            let cond = format!("error_rate > {threshold}");
            Some(condition_verdict(
                &name,
                "trigger",
                &cond,
                m,
                true,
                OnFail::Rollback,
            ))
        }
        _ => None,
    }
}

#[async_trait]
impl SignalSource for Builtin {
    async fn evaluate(&self, ctx: &SignalContext<'_>) -> Vec<Verdict> {
        let mut out = Vec::new();
        let comp = &ctx.component.id;
        // Health of the new revision's instances.
        let health_bad = match ctx.provider.revision_status(comp, ctx.canary).await {
            Ok(st) => {
                let bad = st.unhealthy();
                let detail = st
                    .instances
                    .iter()
                    .find_map(|i| i.detail.clone())
                    .unwrap_or_default();
                out.push(Verdict {
                    signal: "health".into(),
                    source: "health".into(),
                    judgement: if bad > 0 {
                        Judgement::Fail
                    } else {
                        Judgement::Pass
                    },
                    value: Some(bad as f64),
                    expected: "0 unhealthy instances".into(),
                    message: if bad > 0 {
                        format!(
                            "{bad}/{} instance(s) unhealthy: {detail}",
                            st.instances.len()
                        )
                    } else {
                        format!("{}/{} ready", st.ready(), st.desired)
                    },
                    on_fail: OnFail::Rollback,
                });
                (bad > 0).then(|| {
                    format!(
                        "{bad}/{} instance(s) unhealthy: {detail}",
                        st.instances.len()
                    )
                })
            }
            Err(e) => {
                out.push(Verdict {
                    signal: "health".into(),
                    source: "health".into(),
                    judgement: Judgement::Error,
                    value: None,
                    expected: "0 unhealthy instances".into(),
                    message: e.to_string(),
                    on_fail: OnFail::Pause,
                });
                None
            }
        };
        let metrics = match ctx.provider.metrics(comp, ctx.canary, ctx.window).await {
            Ok(m) => m,
            Err(e) => {
                out.push(Verdict {
                    signal: "metrics".into(),
                    source: "metric".into(),
                    judgement: Judgement::Error,
                    value: None,
                    expected: String::new(),
                    message: format!("cannot read metrics: {e}"),
                    on_fail: OnFail::Pause,
                });
                Metrics::new()
            }
        };
        if ctx.spec.strategy == "canary" {
            let cfg = ctx.spec.canary();
            for metric in &cfg.metrics {
                let expected = format!(
                    "{} {}",
                    op_text(&metric.operator),
                    fmt_num(metric.threshold)
                );
                let v = match metrics.get(&metric.name) {
                    None => Verdict {
                        signal: metric.name.clone(),
                        source: "metric".into(),
                        judgement: Judgement::NoData,
                        value: None,
                        expected,
                        message: format!("no data for {}", metric.name),
                        on_fail: OnFail::Rollback,
                    },
                    Some(value) => {
                        let ok = compare(*value, &metric.operator, metric.threshold);
                        Verdict {
                            signal: metric.name.clone(),
                            source: "metric".into(),
                            judgement: if ok { Judgement::Pass } else { Judgement::Fail },
                            value: Some(*value),
                            message: format!(
                                "{} = {} (must be {expected})",
                                metric.name,
                                fmt_num(*value)
                            ),
                            expected,
                            on_fail: OnFail::Rollback,
                        }
                    }
                };
                out.push(v);
            }
            for (i, rule) in cfg.progression_rules.iter().enumerate() {
                let name = if rule.name.is_empty() {
                    format!("progressionRules[{i}]")
                } else {
                    rule.name.clone()
                };
                let v = match rule.action.as_str() {
                    "promote" => condition_verdict(
                        &name,
                        "rule",
                        &rule.condition,
                        &metrics,
                        false,
                        OnFail::Rollback,
                    ),
                    "pause" => condition_verdict(
                        &name,
                        "rule",
                        &rule.condition,
                        &metrics,
                        true,
                        OnFail::Pause,
                    ),
                    _ => condition_verdict(
                        &name,
                        "rule",
                        &rule.condition,
                        &metrics,
                        true,
                        OnFail::Rollback,
                    ),
                };
                out.push(v);
            }
        }
        let mut triggers: Vec<&Trigger> = ctx.spec.rollback.triggers.iter().collect();
        if ctx.spec.strategy == "blue-green" {
            if let Some(bg) = &ctx.spec.metadata.blue_green_config {
                triggers.extend(bg.rollback_triggers.iter());
            }
        }
        for (i, t) in triggers.into_iter().enumerate() {
            if let Some(v) = trigger_verdict(t, i, health_bad.clone(), &metrics) {
                out.push(v);
            }
        }
        out
    }
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
            "rule",
            "error_rate < 0.05",
            &m,
            false,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::Fail);
        assert!(v.message.contains("error_rate = 0.3"), "{}", v.message);
        let v = condition_verdict(
            "t",
            "trigger",
            "failure_rate > 0.1",
            &m,
            true,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::NoData);
        m.insert("failure_rate".into(), 0.0);
        let v = condition_verdict(
            "t",
            "trigger",
            "failure_rate > 0.1",
            &m,
            true,
            OnFail::Rollback,
        );
        assert_eq!(v.judgement, Judgement::Pass);
    }

    #[test]
    fn operators_compare() {
        assert!(compare(1.0, "lt", 2.0));
        assert!(compare(2.0, "lte", 2.0));
        assert!(compare(3.0, "gt", 2.0));
        assert!(compare(2.0, "gte", 2.0));
        assert!(compare(2.0, "eq", 2.0));
        assert!(!compare(2.0, "bogus", 2.0));
        assert_eq!(fmt_num(0.30000001), "0.3");
        assert_eq!(fmt_num(200.0), "200");
    }
}
