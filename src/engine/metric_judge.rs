//! Judging one canary metric: measuring it on canary and baseline, then a threshold or a
//! Mann-Whitney comparison of the two.
//!
//! Owns: choosing the metric's source (built-in, Prometheus, exec), keeping each metric's sample
//! history for the statistical judge, and explaining the verdict in words. Must not touch: counts
//! toward limits or decisions (the run's `decide` does that).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::signals::{fmt_num, Judgement, OnFail, SignalContext, SignalKind, Verdict};
use super::sources::{self, Measured, Placeholders};
use crate::analysis::stats::{self, Direction, JudgeConfig, MetricResult};
use crate::provider::Metrics;
use crate::spec::{human, CanaryMetric, Judge, SourceKind};

/// Samples needed on each side before the statistical judge gives a verdict.
pub const MIN_SAMPLES: usize = 3;

/// Samples of one metric: (canary, baseline).
type Samples = (Vec<f64>, Vec<f64>);

#[derive(Debug, Default)]
pub struct MetricJudge {
    /// (canary revision, metric) -> samples so far
    history: Mutex<HashMap<(String, String), Samples>>,
}

fn measured_of(m: Option<&Metrics>, error: Option<&str>, name: &str) -> Measured {
    if let Some(e) = error {
        return Measured::Error(e.to_string());
    }
    match m.and_then(|m| m.get(name)) {
        Some(v) if v.is_finite() => Measured::Value(*v),
        _ => Measured::NoData(format!("no data for {name} (no requests in the window?)")),
    }
}

impl MetricJudge {
    async fn measure(
        &self,
        ctx: &SignalContext<'_>,
        metric: &CanaryMetric,
        builtin: &Metrics,
        builtin_error: Option<&str>,
        baseline_builtin: Option<&Metrics>,
    ) -> (Measured, Option<Measured>) {
        let src = metric.source.as_ref();
        let kind = src.map_or(SourceKind::Builtin, |s| s.kind);
        if kind == SourceKind::Builtin {
            let canary = measured_of(Some(builtin), builtin_error, &metric.name);
            let base = ctx
                .baseline
                .map(|_| measured_of(baseline_builtin, None, &metric.name));
            return (canary, base);
        }
        let Some(src) = src else {
            return (Measured::Error("no source".into()), None);
        };
        let timeout = src
            .timeout
            .map(|t| t.duration())
            .unwrap_or(Duration::from_secs(5));
        let mut p = Placeholders {
            version: ctx.spec.version.clone(),
            canary: ctx.spec.version.clone(),
            baseline: ctx.baseline_version.unwrap_or("").to_string(),
            component: ctx.component.id.clone(),
            environment: ctx.spec.environment.clone(),
            revision: ctx.canary.0.clone(),
            interval: human(ctx.window.as_millis() as u64),
        };
        let one = |p: Placeholders| async move {
            match kind {
                SourceKind::Prometheus => {
                    let q = sources::expand(src.query.as_deref().unwrap_or(""), &p);
                    sources::prometheus(src.address.as_deref().unwrap_or(""), &q, timeout).await
                }
                SourceKind::Exec | SourceKind::Builtin => {
                    let argv: Vec<String> =
                        src.command.iter().map(|a| sources::expand(a, &p)).collect();
                    let env = vec![
                        ("CUTOVER_VERSION".to_string(), p.version.clone()),
                        ("CUTOVER_REVISION".to_string(), p.revision.clone()),
                        ("CUTOVER_COMPONENT".to_string(), p.component.clone()),
                    ];
                    sources::exec(&argv, timeout, &env).await
                }
            }
        };
        let canary = one(p.clone()).await;
        let base = match (ctx.baseline, ctx.baseline_version) {
            (Some(key), Some(v)) => {
                p.version = v.to_string();
                p.revision = key.0.clone();
                Some(one(p).await)
            }
            _ => None,
        };
        (canary, base)
    }

    /// Measure and judge one metric.
    pub async fn judge(
        &self,
        ctx: &SignalContext<'_>,
        metric: &CanaryMetric,
        builtin: &Metrics,
        builtin_error: Option<&str>,
        baseline_builtin: Option<&Metrics>,
    ) -> Verdict {
        let (canary, base) = self
            .measure(ctx, metric, builtin, builtin_error, baseline_builtin)
            .await;
        let base_value = match &base {
            Some(Measured::Value(v)) => Some(*v),
            _ => None,
        };
        // The seed's `unit: percentage` labels a 0..1 ratio: it is not a suffix for the number.
        let unit = metric
            .unit
            .as_deref()
            .filter(|u| !matches!(*u, "percentage" | "percent" | "ratio"))
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        if metric.judge == Judge::MannWhitney {
            let mut v = self.statistical(ctx, metric, canary, base);
            v.statistical = true;
            v.critical = metric.critical;
            return v;
        }
        let expected = format!("{} {}", metric.operator.symbol(), fmt_num(metric.threshold));
        let mut v = match canary {
            Measured::NoData(why) => Verdict::new(
                &metric.name,
                SignalKind::Metric,
                Judgement::NoData,
                expected,
                why,
                OnFail::Rollback,
            ),
            Measured::Error(why) => Verdict::new(
                &metric.name,
                SignalKind::Metric,
                Judgement::Error,
                expected,
                why,
                OnFail::Pause,
            ),
            Measured::Value(value) => {
                let ok = metric.operator.holds(value, metric.threshold);
                let vs = match &base {
                    Some(Measured::Value(b)) => format!("; baseline {}{unit}", fmt_num(*b)),
                    Some(Measured::NoData(why)) => format!("; baseline: {why}"),
                    Some(Measured::Error(why)) => format!("; baseline not measured: {why}"),
                    None => String::new(),
                };
                Verdict::new(
                    &metric.name,
                    SignalKind::Metric,
                    if ok { Judgement::Pass } else { Judgement::Fail },
                    expected.clone(),
                    format!(
                        "{} = {}{unit} (must be {expected}){vs}",
                        metric.name,
                        fmt_num(value)
                    ),
                    OnFail::Rollback,
                )
                .with_value(Some(value))
            }
        };
        v.baseline = base_value;
        v.threshold = Some(metric.threshold);
        v
    }

    fn statistical(
        &self,
        ctx: &SignalContext<'_>,
        metric: &CanaryMetric,
        canary: Measured,
        base: Option<Measured>,
    ) -> Verdict {
        let expected = format!(
            "no significant {} vs baseline (Mann-Whitney, 98% confidence, tolerance 25%)",
            metric.direction
        );
        let on_fail = OnFail::Rollback;
        let key = (ctx.canary.0.clone(), metric.name.clone());
        let (c, b) = match (canary, base) {
            (Measured::Error(e), _) | (_, Some(Measured::Error(e))) => {
                return Verdict::new(
                    &metric.name,
                    SignalKind::Metric,
                    Judgement::Error,
                    expected,
                    e,
                    OnFail::Pause,
                )
            }
            (_, None) => {
                return Verdict::new(
                    &metric.name,
                    SignalKind::Metric,
                    Judgement::NoData,
                    expected,
                    "no baseline revision to compare with",
                    on_fail,
                )
            }
            (Measured::NoData(why), _) | (_, Some(Measured::NoData(why))) => {
                return Verdict::new(
                    &metric.name,
                    SignalKind::Metric,
                    Judgement::NoData,
                    expected,
                    why,
                    on_fail,
                )
            }
            (Measured::Value(c), Some(Measured::Value(b))) => (c, b),
        };
        let (cs, bs) = {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            let entry = h.entry(key).or_default();
            entry.0.push(c);
            entry.1.push(b);
            (entry.0.clone(), entry.1.clone())
        };
        if cs.len() < MIN_SAMPLES {
            let mut v = Verdict::new(
                &metric.name,
                SignalKind::Metric,
                Judgement::NoData,
                expected,
                format!("collecting samples: {} of {MIN_SAMPLES}", cs.len()),
                on_fail,
            )
            .with_value(Some(c));
            v.baseline = Some(b);
            v.warming_up = true;
            return v;
        }
        let cfg = JudgeConfig {
            direction: match metric.direction {
                crate::spec::Direction::Increase => Direction::Increase,
                crate::spec::Direction::Decrease => Direction::Decrease,
                crate::spec::Direction::Either => Direction::Either,
            },
            critical: metric.critical,
            ..JudgeConfig::default()
        };
        let class = stats::classify(&cs, &bs, &cfg);
        let judgement = match class.result {
            MetricResult::Pass => Judgement::Pass,
            MetricResult::High | MetricResult::Low => Judgement::Fail,
            MetricResult::NoData | MetricResult::NoDataFail => Judgement::NoData,
            MetricResult::Error => Judgement::Error,
        };
        let mut v = Verdict::new(
            &metric.name,
            SignalKind::Metric,
            judgement,
            expected,
            format!("{} ({} samples each)", class.reason, cs.len()),
            on_fail,
        )
        .with_value(Some(c));
        v.baseline = Some(b);
        v.interval = class.interval;
        v
    }
}
