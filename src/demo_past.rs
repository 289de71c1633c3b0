//! The demo's past: 60 days of deployments of five services through staging and production,
//! made by a seeded generator so that the history and analytics views have something to say the
//! first time the demo opens. Each run has a journal like a real one (start, traffic shifts,
//! analyses with canary and baseline values, gates approved by someone else, rollbacks with
//! their cause, the end), so a drill-down into a past run shows its charts.
//!
//! Owns: generating that history. Must not touch: anything but the store it is given (the
//! demo's private one). Its random numbers are a small xorshift of our own: the demo needs
//! repeatable variety, not a crate.

use chrono::{DateTime, Datelike, Duration, Utc};

use crate::engine::event::{AnalysisDecision, Cause, Event, EventKind, Weight};
use crate::engine::signals::{OnFail, SignalKind, Verdict};
use crate::engine::Judgement;
use crate::spec::{ProviderKind, Strategy};
use crate::store::{NewRun, Outcome, PastRun, RunKind, Store, StoreError};

/// A repeatable source of variety.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo).max(1) as u64) as i64
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() as usize % from.len()]
    }
}

/// One service of the past: its name, component, strategy, and how often it ships.
struct Service {
    name: &'static str,
    component: &'static str,
    strategy: Strategy,
    per_day: f64,
    major: u32,
}

const SERVICES: [Service; 5] = [
    // Majors below the live demo's (shop 1, payments 2, search 3, checkout 5), so the demo's
    // rounds ship versions higher than any in the past.
    Service {
        name: "shop",
        component: "web",
        strategy: Strategy::Canary,
        per_day: 0.7,
        major: 0,
    },
    Service {
        name: "payments",
        component: "api",
        strategy: Strategy::Canary,
        per_day: 0.45,
        major: 1,
    },
    Service {
        name: "search",
        component: "web",
        strategy: Strategy::BlueGreen,
        per_day: 0.35,
        major: 2,
    },
    Service {
        name: "checkout",
        component: "web",
        strategy: Strategy::Rolling,
        per_day: 0.4,
        major: 4,
    },
    Service {
        name: "ledger",
        component: "worker",
        strategy: Strategy::Recreate,
        per_day: 0.2,
        major: 7,
    },
];

const PEOPLE: [&str; 5] = ["alice", "bob", "carol", "dave", "ci-bot"];

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Generate `days` of history ending before `now` and write it to `store`; how many runs.
pub fn seed(store: &Store, now: DateTime<Utc>, days: i64, seed: u64) -> Result<usize, StoreError> {
    seed_teams(store, now, days, seed, 1)
}

/// [`seed`] for `teams` teams, each with the five services (the second team's are `shop-2`,
/// `payments-2`, ...): a bigger history for benchmarks. Written in batches of about 5,000 runs.
pub fn seed_teams(
    store: &Store,
    now: DateTime<Utc>,
    days: i64,
    seed: u64,
    teams: usize,
) -> Result<usize, StoreError> {
    let mut rng = Rng(seed.max(1));
    let mut runs = Vec::new();
    let mut written = 0;
    let services: Vec<(String, &Service)> = (1..=teams.max(1))
        .flat_map(|t| {
            SERVICES.iter().map(move |s| {
                let name = if t == 1 {
                    s.name.to_string()
                } else {
                    format!("{}-{t}", s.name)
                };
                (name, s)
            })
        })
        .collect();
    let mut minor = vec![0u32; services.len()];
    // The version each service last shipped in each environment.
    let mut serving: std::collections::BTreeMap<(usize, &str), String> = Default::default();
    for day in (1..=days).rev() {
        let date = now - Duration::days(day);
        let weekend = date.weekday().number_from_monday() > 5;
        // The team gets better: fewer failures as the weeks go by.
        let progress = 1.0 - day as f64 / days as f64;
        if runs.len() >= 5_000 {
            // Every run made from here on starts on this day or later.
            written += flush(store, &mut runs, date, now)?;
        }
        for (i, (name, s)) in services.iter().enumerate() {
            let chance = if weekend { s.per_day * 0.15 } else { s.per_day };
            if rng.unit() >= chance {
                continue;
            }
            minor[i] += 1;
            let mut version = format!("{}.{}.0", s.major, minor[i]);
            let mut start = date
                .date_naive()
                .and_hms_opt(9, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(date)
                + Duration::minutes(rng.range(0, 7 * 60));
            let changed = start - Duration::minutes(rng.range(20, 36 * 60));
            // Through staging, then production; a failure is fixed by a patch and tried again.
            let mut patch = 0;
            for env in ["staging", "production"] {
                loop {
                    let bad = if env == "staging" { 0.16 } else { 0.09 } * (1.2 - 0.7 * progress);
                    let roll = rng.unit();
                    let outcome = if roll < bad * 0.7 {
                        Outcome::RolledBack
                    } else if roll < bad {
                        Outcome::Failed
                    } else {
                        Outcome::Succeeded
                    };
                    let prev = serving
                        .get(&(i, env))
                        .cloned()
                        .unwrap_or_else(|| format!("{}.0.0", s.major));
                    let run = past_run(
                        &mut rng,
                        (name, s),
                        env,
                        (&prev, &version),
                        (start, changed),
                        outcome,
                    );
                    if outcome == Outcome::Succeeded {
                        serving.insert((i, env), version.clone());
                    }
                    let end = crate::store::parse_ts(&run.finished_at).unwrap_or(start);
                    runs.push(run);
                    if outcome == Outcome::Succeeded || patch >= 2 {
                        start = end + Duration::minutes(rng.range(30, 180));
                        break;
                    }
                    patch += 1;
                    version = format!("{}.{}.{patch}", s.major, minor[i]);
                    start = end + Duration::minutes(rng.range(40, 300));
                }
                if start >= now {
                    break;
                }
            }
        }
    }
    Ok(written + flush(store, &mut runs, now, now)?)
}

/// Write the runs that started before `before` and ended before `now`, oldest first (run ids
/// follow start times); keep the others for later. How many were written.
fn flush(
    store: &Store,
    runs: &mut Vec<PastRun>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    runs.retain(|r| crate::store::parse_ts(&r.finished_at).is_some_and(|t| t < now));
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let cut = ts(before);
    let split = runs.partition_point(|r| r.started_at < cut);
    store.import_runs(&runs[..split])?;
    runs.drain(..split);
    Ok(split)
}

/// One run and its journal.
fn past_run(
    rng: &mut Rng,
    (name, s): (&str, &Service),
    env: &str,
    (prev, version): (&str, &str),
    (start, changed): (DateTime<Utc>, DateTime<Utc>),
    outcome: Outcome,
) -> PastRun {
    let who = rng.pick(&PEOPLE).to_string();
    let mut j = Journal {
        deployment: name.to_string(),
        at: start,
        events: Vec::new(),
    };
    let comp = s.component.to_string();
    let (old, new) = (
        format!("{comp}@{prev}.r{}", rng.range(1, 99)),
        format!("{comp}@{version}.r{}", rng.range(100, 999)),
    );
    let weights = |w: u32| {
        vec![
            Weight {
                revision: old.clone(),
                version: prev.to_string(),
                weight: 100 - w,
                achieved: None,
            },
            Weight {
                revision: new.clone(),
                version: version.to_string(),
                weight: w,
                achieved: None,
            },
        ]
    };
    let stages: &[u32] = match s.strategy {
        Strategy::Canary => &[10, 50, 100],
        Strategy::BlueGreen => &[25, 100],
        Strategy::Rolling => &[50, 100],
        Strategy::Recreate => &[100],
    };
    let gate = s.strategy == Strategy::Canary && env == "production";
    let steps = stages.len() * 2 + usize::from(gate) + 2;
    j.push(
        0,
        EventKind::Started {
            version: version.into(),
            strategy: s.strategy.as_str().into(),
            environment: env.into(),
            provider: "local".into(),
            steps,
            dry_run: false,
            initiator: who.clone(),
            baseline: Vec::new(),
        },
    );
    // How many intervals each stage analyses, and the one at which a bad version shows itself.
    let intervals: Vec<i64> = stages.iter().map(|_| rng.range(3, 6)).collect();
    let total: i64 = intervals.iter().sum();
    let fails_at = (outcome != Outcome::Succeeded).then(|| rng.range(2, total + 1) as usize);
    let mut step = 0;
    let mut interval = 0;
    let mut reason = "every step passed".to_string();
    'stages: for (si, w) in stages.iter().enumerate() {
        step += 1;
        j.push(
            5,
            EventKind::StepStarted {
                step,
                component: comp.clone(),
                description: format!("shift {w}% of traffic to {version}"),
            },
        );
        j.push(
            2,
            EventKind::TrafficShifted {
                component: comp.clone(),
                weights: weights(*w),
            },
        );
        if gate && si == 1 {
            let approver = PEOPLE
                .iter()
                .find(|p| **p != who && **p != "ci-bot")
                .copied()
                .unwrap_or("alice");
            j.push(
                3,
                EventKind::GateWaiting {
                    gate: "canary-50".into(),
                    component: comp.clone(),
                    hint: format!("cutover approve {name} --gate canary-50"),
                },
            );
            j.push(
                rng.range(60, 2400),
                EventKind::GateApproved {
                    gate: "canary-50".into(),
                    by: approver.into(),
                    comment: Some("metrics look good".into()),
                },
            );
        }
        step += 1;
        for _ in 0..intervals[si] {
            interval += 1;
            let failing = fails_at.is_some_and(|f| interval >= f);
            let mut served = std::collections::BTreeMap::new();
            let rps = 40.0 + rng.unit() * 10.0;
            served.insert(new.clone(), rps * f64::from(*w) / 100.0);
            if *w < 100 {
                served.insert(old.clone(), rps * f64::from(100 - w) / 100.0);
            }
            let verdicts = verdicts(rng, failing && outcome == Outcome::RolledBack);
            let decision = if failing {
                AnalysisDecision::Rollback
            } else {
                AnalysisDecision::Continue
            };
            let why = failing.then(|| match outcome {
                Outcome::RolledBack => "metric error_rate failed".to_string(),
                _ => format!("instance {new}-0 is not ready: health check failed 3 times"),
            });
            j.push(
                rng.range(25, 40),
                EventKind::Analysis {
                    component: comp.clone(),
                    verdicts,
                    next_in_ms: Some(30_000),
                    decision,
                    reason: why.clone(),
                    served,
                },
            );
            if let Some(why) = why {
                reason = why;
                break 'stages;
            }
        }
    }
    if outcome != Outcome::Succeeded {
        j.push(
            1,
            EventKind::RollbackStarted {
                reason: reason.clone(),
                target: weights(0),
                plan: vec![format!("{comp}: all traffic back to the previous version")],
            },
        );
        j.push(
            3,
            EventKind::TrafficShifted {
                component: comp.clone(),
                weights: weights(0),
            },
        );
        reason = match outcome {
            Outcome::RolledBack => format!("rolled back: {reason}"),
            _ => format!("failed: {reason}"),
        };
    }
    j.push(
        4,
        EventKind::Finished {
            outcome,
            reason: reason.clone(),
            // Every bad past run fails an analysis.
            cause: (outcome != Outcome::Succeeded).then_some(Cause::Metric),
            by_run: None,
            journal: None,
        },
    );
    let spec = if rng.unit() < 0.85 {
        format!(
            "{{\"metadata\":{{\"changedAt\":\"{}\"}}}}",
            changed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    } else {
        "{}".into()
    };
    PastRun {
        run: NewRun {
            deployment: name.into(),
            kind: RunKind::Deploy,
            name: name.into(),
            version: version.into(),
            strategy: s.strategy,
            environment: env.into(),
            provider: ProviderKind::Local,
            dry_run: false,
            spec_json: spec,
            plan_json: "{}".into(),
            initiator: who,
        },
        started_at: ts(start),
        finished_at: ts(j.at),
        outcome,
        reason,
        step,
        snapshot_json: "{}".into(),
        events: j.events,
    }
}

/// A journal being written, its clock moving forward with each event.
struct Journal {
    deployment: String,
    at: DateTime<Utc>,
    events: Vec<(String, String, String)>,
}

impl Journal {
    /// An event `after` seconds after the previous one.
    fn push(&mut self, after: i64, kind: EventKind) {
        self.at += Duration::seconds(after);
        let e = Event {
            ts: ts(self.at),
            deployment: self.deployment.clone(),
            run: 0,
            kind,
        };
        if let Ok(json) = serde_json::to_string(&e) {
            self.events.push((e.ts, e.kind.name().into(), json));
        }
    }
}

/// An interval's verdicts: error rate and p99 latency against the baseline.
fn verdicts(rng: &mut Rng, bad: bool) -> Vec<Verdict> {
    let base_err = 0.002 + rng.unit() * 0.004;
    let err = if bad {
        0.08 + rng.unit() * 0.2
    } else {
        base_err + (rng.unit() - 0.5) * 0.002
    };
    let base_p99 = 180.0 + rng.unit() * 40.0;
    let p99 = base_p99 * (0.95 + rng.unit() * 0.15);
    let judge = |ok: bool| if ok { Judgement::Pass } else { Judgement::Fail };
    let round = |v: f64, to: f64| (v * to).round() / to;
    let mut e = Verdict::new(
        "error_rate",
        SignalKind::Metric,
        judge(err < 0.05),
        "< 0.05",
        format!("error_rate = {} (must be < 0.05)", round(err, 1000.0)),
        OnFail::Rollback,
    )
    .with_value(Some(round(err, 10_000.0)));
    e.baseline = Some(round(base_err, 10_000.0));
    e.threshold = Some(0.05);
    let mut l = Verdict::new(
        "latency_p99",
        SignalKind::Metric,
        judge(p99 < 400.0),
        "< 400",
        format!("latency_p99 = {} (must be < 400)", p99.round()),
        OnFail::Rollback,
    )
    .with_value(Some(p99.round()));
    l.baseline = Some(base_p99.round());
    l.threshold = Some(400.0);
    vec![e, l]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_days_of_history_with_every_outcome_gates_and_change_times() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let now = Utc::now();
        let n = seed(&store, now, 60, 7).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 80, "{n} runs");
        let runs = store.runs(None, 10_000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(runs.len(), n);
        let count = |o: Outcome| runs.iter().filter(|r| r.outcome == Some(o)).count();
        assert!(count(Outcome::Succeeded) > n / 2);
        assert!(count(Outcome::RolledBack) > 0 && count(Outcome::Failed) > 0);
        let oldest = runs
            .iter()
            .filter_map(|r| crate::store::parse_ts(&r.started_at))
            .min();
        assert!(oldest.is_some_and(|t| t < now - Duration::days(50)));
        assert!(runs.iter().all(|r| r
            .finished_at
            .as_deref()
            .and_then(crate::store::parse_ts)
            .is_some_and(|t| t < now)));
        // Gates, approved by someone other than who started the run; journals that decode.
        let run = runs
            .iter()
            .find(|r| r.environment == "production" && r.deployment == "shop")
            .unwrap_or_else(|| panic!("a production shop run"));
        let events: Vec<Event> = store
            .events(run.run_id, 0)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|e| serde_json::from_str(&e.json).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert!(events.iter().any(
            |e| matches!(&e.kind, EventKind::GateApproved { by, .. } if *by != run.initiator)
        ));
        assert!(matches!(
            events.last().map(|e| &e.kind),
            Some(EventKind::Finished { .. })
        ));
        // The same seed makes the same past.
        let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let again = Store::open(other.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            seed(&again, now, 60, 7).unwrap_or_else(|e| panic!("{e}")),
            n
        );
    }
}
