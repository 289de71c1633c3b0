//! Judging a run's signals and deciding: go on, pause for a person, or roll back.
//!
//! Owns: asking the signal source for verdicts, counting each signal's failures, no-data and
//! errors against the analysis limits, writing the counts and the decision into every verdict,
//! and journaling it as an `analysis` event with when the next decision is due.
//! Must not touch: traffic or revisions (the run's steps do that after a decision).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::{AnalysisDecision, Cause, EventKind};
use super::run::{Run, Stop};
use super::signals::{fmt_num, Judgement, OnFail, SignalContext, SignalKind, Verdict};
use crate::spec::human;

/// The statistical metrics that failed, with their words.
fn failing_metrics(stat: &[&Verdict]) -> String {
    let bad: Vec<String> = stat
        .iter()
        .filter(|v| v.judgement == Judgement::Fail)
        .map(|v| format!("{}: {}", v.signal, v.message))
        .collect();
    if bad.is_empty() {
        "no metric failed on its own".into()
    } else {
        bad.join("; ")
    }
}

/// Counts toward the limits for one signal over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Failed measurements so far.
    pub failures: u32,
    /// Measurements without data in a row.
    pub no_data_in_row: u32,
    /// Measurement errors in a row.
    pub errors_in_row: u32,
}

/// A verdict's counts next to their limits, as shown to people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub failures: u32,
    pub failure_limit: u32,
    pub no_data_in_row: u32,
    pub no_data_limit: u32,
    pub errors_in_row: u32,
    pub error_limit: u32,
}

/// The limits in force (the canary config's, or the same defaults for other strategies).
struct Limits {
    failures: u32,
    no_data: u32,
    errors: u32,
}

enum Decision {
    Continue,
    Pause(String),
    Rollback(String),
}

impl Decision {
    fn word(&self) -> &'static str {
        self.kind().as_str()
    }

    fn kind(&self) -> AnalysisDecision {
        match self {
            Decision::Continue => AnalysisDecision::Continue,
            Decision::Pause(_) => AnalysisDecision::Pause,
            Decision::Rollback(_) => AnalysisDecision::Rollback,
        }
    }

    /// The graver of two decisions (rollback over pause over continue; the first reason wins).
    fn worst(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Rollback(r), _) | (_, Decision::Rollback(r)) => Decision::Rollback(r),
            (Decision::Pause(r), _) | (_, Decision::Pause(r)) => Decision::Pause(r),
            _ => Decision::Continue,
        }
    }
}

impl Run {
    fn limits(&self) -> Limits {
        let c = self.spec.canary();
        Limits {
            failures: c.failure_limit.max(0) as u32,
            no_data: c.no_data_limit.max(1) as u32,
            errors: c.error_limit.max(1) as u32,
        }
    }

    /// One judgement right now (after a step that changed something).
    pub(crate) async fn check(&mut self, ci: usize) -> Result<(), Stop> {
        let verdicts = self.judge(ci).await;
        // Right after a change no request may have reached the new revision yet: no data here
        // is not counted.
        self.decide_with(verdicts, false, "", None, false).await
    }

    /// Ask the signal source, and note instance health and restarts on the way. The new
    /// revision's status is read once and shared with the source.
    pub(crate) async fn judge(&mut self, ci: usize) -> Vec<Verdict> {
        let provider = self.engine.inner.provider.clone();
        let component = self.comps[ci].comp.id.clone();
        let new_key = self.comps[ci].new_key.clone();
        let baseline = self.comps[ci]
            .old
            .as_ref()
            .filter(|o| o.running)
            .map(|o| (o.key.clone(), o.version.clone()));
        let canary_status = provider.revision_status(&component, &new_key).await;
        if let Ok(st) = &canary_status {
            self.report_restarts(&component, st).await;
            let version = self.spec.version.clone();
            self.remember_health(&component, &new_key, &version, st);
        }
        if let Some((key, version)) = &baseline {
            if let Ok(st) = provider.revision_status(&component, key).await {
                self.remember_health(&component, key, version, &st);
            }
        }
        let window = self
            .interval()
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        // What each revision actually serves, for the traffic pane's measured share.
        let mut keys = vec![new_key.clone()];
        keys.extend(baseline.iter().map(|(k, _)| k.clone()));
        for key in keys {
            match provider.metrics(&component, &key, window).await {
                Ok(m) => {
                    if let Some(rps) = m.get("request_rate") {
                        self.measured.insert(key.0.clone(), *rps);
                    }
                }
                Err(_) => {
                    self.measured.remove(&key.0);
                }
            }
        }
        let c = &self.comps[ci];
        let ctx = SignalContext {
            spec: &self.spec,
            component: &c.comp,
            canary: &c.new_key,
            canary_status: &canary_status,
            baseline: baseline.as_ref().map(|(k, _)| k),
            baseline_version: baseline.as_ref().map(|(_, v)| v.as_str()),
            provider: self.engine.inner.provider.as_ref(),
            window,
        };
        self.engine.inner.signals.evaluate(&ctx).await
    }

    /// Count, decide, explain, journal; then pause or stop the step as decided.
    pub(crate) async fn decide(
        &mut self,
        verdicts: Vec<Verdict>,
        window_end: bool,
        label: &str,
        next: Option<Duration>,
    ) -> Result<(), Stop> {
        self.decide_with(verdicts, window_end, label, next, true)
            .await
    }

    async fn decide_with(
        &mut self,
        mut verdicts: Vec<Verdict>,
        window_end: bool,
        label: &str,
        next: Option<Duration>,
        count_no_data: bool,
    ) -> Result<(), Stop> {
        let limits = self.limits();
        let expects_data = self.expects_traffic() && count_no_data;
        let timed_out = self.timeout_trigger();
        let mut decision = match &timed_out {
            Some(t) => Decision::Rollback(t.clone()),
            None => Decision::Continue,
        };
        for v in verdicts.iter_mut() {
            let key = format!("{}:{}", v.source, v.signal);
            let t = self.tallies.entry(key).or_default();
            match v.judgement {
                Judgement::Pass => {
                    t.no_data_in_row = 0;
                    t.errors_in_row = 0;
                }
                Judgement::Fail => {
                    t.failures += 1;
                    t.no_data_in_row = 0;
                    t.errors_in_row = 0;
                }
                Judgement::NoData => {
                    if expects_data && !v.warming_up {
                        t.no_data_in_row += 1;
                    }
                    t.errors_in_row = 0;
                }
                Judgement::Error => {
                    t.errors_in_row += 1;
                    t.no_data_in_row = 0;
                }
            }
            let t = t.clone();
            v.counts = Some(Counts {
                failures: t.failures,
                failure_limit: limits.failures,
                no_data_in_row: t.no_data_in_row,
                no_data_limit: limits.no_data,
                errors_in_row: t.errors_in_row,
                error_limit: limits.errors,
            });
            // Health and triggers act at once; metrics and rules after their failure limit;
            // statistical metrics through the canary score (below).
            let immediate = matches!(v.source, SignalKind::Health | SignalKind::Trigger);
            let this = match v.judgement {
                Judgement::Fail if v.statistical => Decision::Continue,
                Judgement::Fail
                    if v.on_fail == OnFail::Rollback
                        && (immediate || t.failures > limits.failures) =>
                {
                    let counted = if immediate {
                        String::new()
                    } else {
                        format!(" [{} failure(s), limit {}]", t.failures, limits.failures)
                    };
                    Decision::Rollback(format!(
                        "{} {} failed: {}{counted}",
                        v.source, v.signal, v.message
                    ))
                }
                Judgement::Fail if v.on_fail == OnFail::Pause => {
                    Decision::Pause(format!("{} {}: {}", v.source, v.signal, v.message))
                }
                Judgement::Fail => Decision::Continue,
                Judgement::Error if t.errors_in_row >= limits.errors => Decision::Pause(format!(
                    "{} {} could not be measured {} times in a row: {}",
                    v.source, v.signal, t.errors_in_row, v.message
                )),
                Judgement::NoData if expects_data && t.no_data_in_row >= limits.no_data => {
                    Decision::Pause(format!(
                        "{} {} had no data {} times in a row: {}",
                        v.source, v.signal, t.no_data_in_row, v.message
                    ))
                }
                Judgement::NoData if v.warming_up && !window_end => Decision::Continue,
                Judgement::NoData if expects_data && window_end => Decision::Pause(format!(
                    "no data at the end of {label} for {}: {}; resume to go on or roll back",
                    v.signal, v.message
                )),
                _ => Decision::Continue,
            };
            v.decision = Some(
                match &this {
                    Decision::Continue if v.statistical && v.judgement == Judgement::Fail => {
                        "counted in the canary score"
                    }
                    Decision::Continue if v.warming_up => "collecting samples",
                    Decision::Continue => match v.judgement {
                        Judgement::Pass => "pass",
                        Judgement::Fail => "fail: counted",
                        Judgement::NoData => "no data: counted",
                        Judgement::Error => "error: counted",
                    },
                    other => other.word(),
                }
                .to_string(),
            );
            decision = decision.worst(this);
        }
        if let Some((score_verdict, d)) = self.canary_score(&verdicts, window_end) {
            verdicts.push(score_verdict);
            decision = decision.worst(d);
        }
        let word = decision.kind();
        let reason = match &decision {
            Decision::Continue => None,
            Decision::Pause(r) | Decision::Rollback(r) => Some(r.clone()),
        };
        // A rollback blames the rollout's timeout when that trigger fired, health checks when
        // one failed (a health verdict, or a trigger on them), else the analysis' metrics.
        let health = |v: &Verdict| {
            v.judgement == Judgement::Fail
                && (v.source == SignalKind::Health
                    || (v.source == SignalKind::Trigger && v.expected == "all instances healthy"))
        };
        let cause = if timed_out.is_some() {
            Cause::Timeout
        } else if verdicts.iter().any(health) {
            Cause::Health
        } else {
            Cause::Metric
        };
        self.last_verdicts = verdicts.clone();
        let component = self
            .plan
            .steps
            .get(self.step)
            .map(|s| s.component.clone())
            .unwrap_or_default();
        let next_in_ms = match decision {
            Decision::Continue => next.map(|d| d.as_millis() as u64),
            _ => None,
        };
        let served = self
            .comps
            .iter()
            .filter(|c| c.comp.id == component)
            .flat_map(|c| std::iter::once(&c.new_key.0).chain(c.old.as_ref().map(|o| &o.key.0)))
            .filter_map(|k| self.measured.get(k).map(|rps| (k.clone(), *rps)))
            .collect();
        self.emit(EventKind::Analysis {
            component,
            verdicts,
            next_in_ms,
            decision: word,
            reason,
            served,
        })
        .await;
        match decision {
            Decision::Continue => Ok(()),
            Decision::Pause(r) => {
                self.pause("engine", &r).await;
                Ok(())
            }
            Decision::Rollback(r) => Err(Stop::Fail(cause, r)),
        }
    }

    /// Kayenta's group score over the statistical verdicts: below marginal rolls back; marginal
    /// at the end of an analysis window pauses for a person.
    fn canary_score(&self, verdicts: &[Verdict], window_end: bool) -> Option<(Verdict, Decision)> {
        use crate::analysis::stats::{score_with_thresholds, MetricResult, ScoreClass};
        let stat: Vec<&Verdict> = verdicts.iter().filter(|v| v.statistical).collect();
        if stat.is_empty() {
            return None;
        }
        let results: Vec<(MetricResult, bool, f64)> = stat
            .iter()
            .map(|v| {
                let r = match v.judgement {
                    Judgement::Pass => MetricResult::Pass,
                    Judgement::Fail => MetricResult::High,
                    Judgement::NoData => MetricResult::NoData,
                    Judgement::Error => MetricResult::Error,
                };
                (r, v.critical, 1.0)
            })
            .collect();
        // Score only when every statistical metric was measured: no data and errors go through
        // their own limits (pause), never through the score (which would roll back).
        if stat
            .iter()
            .any(|v| matches!(v.judgement, Judgement::NoData | Judgement::Error))
        {
            return None;
        }
        let th = self.spec.canary().score_thresholds;
        let score = score_with_thresholds(&results, th.pass, th.marginal);
        let expected = format!(
            ">= {} to pass, >= {} marginal",
            fmt_num(th.pass),
            fmt_num(th.marginal)
        );
        let (judgement, decision) = match score.class {
            ScoreClass::Pass => (Judgement::Pass, Decision::Continue),
            ScoreClass::Marginal if window_end => (
                Judgement::Fail,
                Decision::Pause(format!(
                    "canary score {} is marginal ({}); resume to go on or roll back",
                    fmt_num(score.value),
                    score.reason
                )),
            ),
            ScoreClass::Marginal => (Judgement::Pass, Decision::Continue),
            ScoreClass::Fail => (
                Judgement::Fail,
                Decision::Rollback(format!(
                    "canary score {} is below {}: {} ({})",
                    fmt_num(score.value),
                    fmt_num(th.marginal),
                    failing_metrics(&stat),
                    score.reason
                )),
            ),
        };
        let mut v = Verdict::new(
            "canary-score",
            SignalKind::Score,
            judgement,
            expected,
            format!("score {} ({})", fmt_num(score.value), score.reason),
            OnFail::Rollback,
        )
        .with_value(Some(score.value));
        v.decision = Some(decision.word().to_string());
        Some((v, decision))
    }

    /// Some new revision takes traffic, so its metrics should have data.
    pub(crate) fn expects_traffic(&self) -> bool {
        self.comps.iter().any(|c| c.new_weight > 0)
    }

    fn timeout_trigger(&self) -> Option<String> {
        let elapsed = self.started.elapsed();
        self.spec
            .rollback
            .triggers
            .iter()
            .filter(|t| t.kind == crate::spec::TriggerKind::Timeout)
            .filter_map(|t| t.duration)
            .find(|d| elapsed > d.duration())
            .map(|d| {
                format!(
                    "timeout trigger: the deployment ran longer than {}",
                    human(d.0)
                )
            })
    }
}
