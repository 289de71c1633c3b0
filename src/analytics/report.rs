//! Delivery metrics over history, per deployment and environment and overall: runs, success
//! rate, change fail rate (deployments that failed or were rolled back), median and p90 duration
//! of successful ones, deployment frequency, failed-deployment recovery time (from a failed run's
//! end to the next success in the same place), rollback runs, and a 28-day trend against the 28
//! days before (only when both windows have at least 10 deployments).
//!
//! Medians and p90s are `analysis::stats::quantile`, interpolated between the two closest runs
//! (R's and numpy's default): the median of an even count is the mean of the middle two, and the
//! p90 of 10 runs lies a tenth of the way from the 9th shortest to the longest.
//!
//! Lead time for changes is measured only where a spec says when its change was made
//! (`metadata.changedAt`): cutover does not see commits.

use crate::store::{Outcome, RunKind};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::analysis::stats::{median, quantile};

/// What the report needs to know about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// Shared by the runs of one place as the store reads them (no copy per run).
    pub deployment: Arc<str>,
    pub environment: Arc<str>,
    pub kind: RunKind,
    /// `None` while running.
    pub outcome: Option<Outcome>,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// When the change it deploys was made (the spec's `metadata.changedAt`), if it says.
    pub changed_at: Option<DateTime<Utc>>,
}

impl From<crate::store::RunFacts> for Option<Fact> {
    /// What a run's facts say (none when its start time is unreadable).
    fn from(r: crate::store::RunFacts) -> Option<Fact> {
        Some(Fact {
            changed_at: r.changed_at,
            started: r.started?,
            finished: r.finished,
            deployment: r.deployment,
            environment: r.environment,
            kind: r.kind,
            outcome: r.outcome,
        })
    }
}

/// The spec's `metadata.changedAt`, read from a run's recorded spec without decoding the rest.
pub fn changed_at(spec_json: &str) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Spec {
        metadata: Option<Meta>,
    }
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(rename = "changedAt")]
        changed_at: Option<String>,
    }
    let text = serde_json::from_str::<Spec>(spec_json)
        .ok()?
        .metadata?
        .changed_at?;
    crate::store::parse_ts(&text)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub deployments: (usize, usize),
    pub change_fail_rate: (f64, f64),
    pub median_duration_s: (Option<f64>, Option<f64>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// `deployment@environment`, or `all`.
    pub scope: String,
    pub deployments: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub rolled_back: usize,
    pub running: usize,
    pub rollback_runs: usize,
    pub success_rate: Option<f64>,
    pub change_fail_rate: Option<f64>,
    pub median_duration_s: Option<f64>,
    pub p90_duration_s: Option<f64>,
    /// Successful deployments per day over the report's window.
    pub per_day: f64,
    pub frequency: &'static str,
    pub recovery_median_s: Option<f64>,
    /// Lead time for changes: from `metadata.changedAt` to the deployment's success, median
    /// over the successful deployments whose spec gives it (none: not measured, not zero).
    pub lead_time_median_s: Option<f64>,
    /// How many successful deployments gave a change time.
    pub lead_time_samples: usize,
    pub trend: Option<Trend>,
}

/// DORA's deployment-frequency scale, from successful deployments per day.
pub fn frequency_band(per_day: f64) -> &'static str {
    if per_day >= 2.0 {
        "on demand (several a day)"
    } else if per_day >= 1.0 {
        "daily"
    } else if per_day >= 1.0 / 7.0 {
        "between daily and weekly"
    } else if per_day >= 1.0 / 30.0 {
        "between weekly and monthly"
    } else if per_day > 0.0 {
        "less than monthly"
    } else {
        "none"
    }
}

/// Recovery times in one place (its deployments, rollback runs left out): from a failed or
/// rolled-back deployment's end to the end of the next success there.
fn recoveries(place: &[&Fact]) -> Vec<f64> {
    let mut list: Vec<&Fact> = place
        .iter()
        .filter(|f| f.kind != RunKind::Rollback)
        .copied()
        .collect();
    list.sort_by_key(|f| f.started);
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        if !matches!(f.outcome, Some(Outcome::Failed | Outcome::RolledBack)) {
            continue;
        }
        let Some(end) = f.finished else { continue };
        if let Some(next) = list[i + 1..]
            .iter()
            .find(|g| g.outcome == Some(Outcome::Succeeded))
        {
            if let Some(fixed) = next.finished {
                out.push((fixed - end).num_milliseconds().max(0) as f64 / 1000.0);
            }
        }
    }
    out
}

/// Runs grouped by deployment and environment.
fn by_place<'a>(runs: &[&'a Fact]) -> HashMap<(&'a str, &'a str), Vec<&'a Fact>> {
    let mut places: HashMap<(&str, &str), Vec<&Fact>> = HashMap::new();
    for f in runs {
        places
            .entry((&*f.deployment, &*f.environment))
            .or_default()
            .push(f);
    }
    places
}

/// The summary of `runs`, given the recovery times of their places ([`recoveries`]).
fn summary(
    scope: String,
    runs: &[&Fact],
    days: f64,
    now: DateTime<Utc>,
    recoveries: &[f64],
) -> Summary {
    let deploys: Vec<&&Fact> = runs
        .iter()
        .filter(|f| f.kind != RunKind::Rollback)
        .collect();
    let is = |f: &&&Fact, o: Outcome| f.outcome == Some(o);
    let succeeded = deploys.iter().filter(|f| is(f, Outcome::Succeeded)).count();
    let failed = deploys.iter().filter(|f| is(f, Outcome::Failed)).count();
    let rolled_back = deploys
        .iter()
        .filter(|f| is(f, Outcome::RolledBack))
        .count();
    let finished = succeeded + failed + rolled_back;
    let mut durations: Vec<f64> = deploys
        .iter()
        .filter(|f| is(f, Outcome::Succeeded))
        .filter_map(|f| {
            f.finished
                .map(|e| (e - f.started).num_milliseconds() as f64 / 1000.0)
        })
        .collect();
    // Sorted once here, the median's and the p90's sorts find it sorted.
    durations.sort_by(f64::total_cmp);
    let lead_times: Vec<f64> = deploys
        .iter()
        .filter(|f| is(f, Outcome::Succeeded))
        .filter_map(|f| {
            let (changed, done) = (f.changed_at?, f.finished?);
            Some((done - changed).num_milliseconds().max(0) as f64 / 1000.0)
        })
        .collect();
    let per_day = succeeded as f64 / days.max(1.0);
    let rate = |n: usize| (finished > 0).then(|| n as f64 / finished as f64);
    Summary {
        scope,
        deployments: deploys.len(),
        succeeded,
        failed,
        rolled_back,
        running: deploys.len() - finished,
        rollback_runs: runs.len() - deploys.len(),
        success_rate: rate(succeeded),
        change_fail_rate: rate(failed + rolled_back),
        median_duration_s: median(&durations),
        p90_duration_s: quantile(&durations, 0.9),
        per_day,
        frequency: frequency_band(per_day),
        recovery_median_s: median(recoveries),
        lead_time_median_s: median(&lead_times),
        lead_time_samples: lead_times.len(),
        trend: trend(&deploys, now),
    }
}

/// The last 28 days against the 28 before, when both have at least 10 deployments.
fn trend(deploys: &[&&Fact], now: DateTime<Utc>) -> Option<Trend> {
    let window = |from: i64, to: i64| -> Vec<&&Fact> {
        let (from, to) = (now - Duration::days(from), now - Duration::days(to));
        deploys
            .iter()
            .filter(|f| f.started > from && f.started <= to)
            .copied()
            .collect()
    };
    let (recent, before) = (window(28, 0), window(56, 28));
    if recent.len() < 10 || before.len() < 10 {
        return None;
    }
    let cfr = |w: &[&&Fact]| {
        let bad = w
            .iter()
            .filter(|f| matches!(f.outcome, Some(Outcome::Failed | Outcome::RolledBack)))
            .count();
        bad as f64 / w.len() as f64
    };
    let med = |w: &[&&Fact]| {
        let durations: Vec<f64> = w
            .iter()
            .filter(|f| f.outcome == Some(Outcome::Succeeded))
            .filter_map(|f| {
                f.finished
                    .map(|e| (e - f.started).num_milliseconds() as f64 / 1000.0)
            })
            .collect();
        median(&durations)
    };
    Some(Trend {
        deployments: (before.len(), recent.len()),
        change_fail_rate: (cfr(&before), cfr(&recent)),
        median_duration_s: (med(&before), med(&recent)),
    })
}

/// The `all` summary alone, over runs started from `from` to `to` (rates per day over that
/// span).
pub fn between(facts: &[Fact], from: DateTime<Utc>, to: DateTime<Utc>) -> Summary {
    let recent: Vec<&Fact> = facts
        .iter()
        .filter(|f| f.started >= from && f.started <= to)
        .collect();
    let days = (to - from).num_seconds() as f64 / 86_400.0;
    let recovered: Vec<f64> = by_place(&recent)
        .values()
        .flat_map(|place| recoveries(place))
        .collect();
    summary("all".into(), &recent, days, to, &recovered)
}

/// Summaries per deployment and environment (by name), then `all`, over runs started in the
/// last `days` days.
pub fn report(facts: &[Fact], days: i64, now: DateTime<Utc>) -> Vec<Summary> {
    let since = now - Duration::days(days);
    let recent: Vec<&Fact> = facts.iter().filter(|f| f.started >= since).collect();
    // In the order of their names (`deployment@environment`).
    let mut places: Vec<(String, Vec<&Fact>)> = by_place(&recent)
        .into_iter()
        .map(|((d, e), runs)| (format!("{d}@{e}"), runs))
        .collect();
    places.sort_by(|a, b| a.0.cmp(&b.0));
    let mut recovered = Vec::new();
    let mut out: Vec<Summary> = places
        .into_iter()
        .map(|(scope, runs)| {
            let r = recoveries(&runs);
            recovered.extend_from_slice(&r);
            summary(scope, &runs, days as f64, now, &r)
        })
        .collect();
    out.push(summary("all".into(), &recent, days as f64, now, &recovered));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Keyword;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn f(dep: &str, kind: &str, outcome: &str, start: &str, mins: i64) -> Fact {
        Fact {
            deployment: dep.into(),
            environment: "prod".into(),
            kind: RunKind::parse(kind).unwrap(),
            outcome: Outcome::parse(outcome),
            started: t(start),
            finished: (!outcome.is_empty()).then(|| t(start) + Duration::minutes(mins)),
            changed_at: None,
        }
    }

    #[test]
    fn rates_durations_frequency_and_recovery() {
        let now = t("2026-11-26T12:00:00Z");
        let facts = vec![
            f("shop", "deploy", "succeeded", "2026-11-20T10:00:00Z", 10),
            f("shop", "deploy", "rolled_back", "2026-11-21T10:00:00Z", 5),
            f("shop", "rollback", "succeeded", "2026-11-21T10:06:00Z", 1),
            f("shop", "deploy", "succeeded", "2026-11-21T11:00:00Z", 20),
            f("shop", "promote", "failed", "2026-11-22T10:00:00Z", 2),
            f("shop", "deploy", "", "2026-11-26T11:00:00Z", 0),
            f("old", "deploy", "succeeded", "2026-01-01T10:00:00Z", 3),
        ];
        let r = report(&facts, 30, now);
        assert_eq!(r.len(), 2, "old is outside the window: shop@prod and all");
        let s = &r[0];
        assert_eq!(s.scope, "shop@prod");
        assert_eq!(
            (
                s.deployments,
                s.succeeded,
                s.failed,
                s.rolled_back,
                s.running
            ),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(s.rollback_runs, 1);
        assert_eq!(s.change_fail_rate, Some(0.5));
        assert_eq!(
            s.median_duration_s,
            Some(900.0),
            "of 600 and 1200: their mean (this said 1200, 'rounding up', which was the defect)"
        );
        // Rolled back at 10:05, fixed by the success that ended at 11:20.
        assert_eq!(s.recovery_median_s, Some(75.0 * 60.0));
        assert_eq!(s.frequency, "between weekly and monthly");
        assert!(s.trend.is_none(), "fewer than 10 per window");
        assert_eq!(frequency_band(3.0), "on demand (several a day)");
    }

    #[test]
    fn lead_time_runs_from_the_change_to_the_success_where_the_spec_says_when() {
        let now = t("2026-11-26T12:00:00Z");
        let with = |mut f: Fact, changed: &str| {
            f.changed_at = Some(t(changed));
            f
        };
        let facts = vec![
            // Changed 2 h before it started, took 10 min: 2 h 10 min.
            with(
                f("shop", "deploy", "succeeded", "2026-11-20T10:00:00Z", 10),
                "2026-11-20T08:00:00Z",
            ),
            // A failure's change time is not a lead time.
            with(
                f("shop", "deploy", "failed", "2026-11-21T10:00:00Z", 5),
                "2026-11-21T09:00:00Z",
            ),
            // No change time: left out, not counted as zero.
            f("shop", "deploy", "succeeded", "2026-11-22T10:00:00Z", 10),
            with(
                f("shop", "deploy", "succeeded", "2026-11-23T10:00:00Z", 30),
                "2026-11-23T09:30:00Z",
            ),
        ];
        let s = &report(&facts, 30, now)[0];
        assert_eq!(s.lead_time_samples, 2);
        // 130 min and 60 min: their mean.
        assert_eq!(s.lead_time_median_s, Some(95.0 * 60.0));
        let none = &report(&facts[2..3], 30, now)[0];
        assert_eq!((none.lead_time_median_s, none.lead_time_samples), (None, 0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let now = t("2026-11-26T12:00:00Z");
        let facts = vec![
            f("shop", "deploy", "succeeded", "2026-11-20T10:00:00Z", 10),
            f("shop", "deploy", "succeeded", "2026-11-21T10:00:00Z", 20),
        ];
        let s = &report(&facts, 30, now)[0];
        assert_eq!(s.median_duration_s, Some(900.0), "of 600 s and 1200 s");
        // p90 interpolates between the closest runs: 600 + 0.9 * (1200 - 600).
        assert_eq!(s.p90_duration_s, Some(1140.0));
    }
}
