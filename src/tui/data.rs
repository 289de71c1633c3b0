//! What the console shows, read from the state store: every deployment's latest run with its
//! snapshot, the selected run's recent journal turned into lines, metric series and timers, the
//! history of past runs, and one run's full timeline for the drill-down.
//!
//! Owns: reading (never writing) the store for the console, and deriving view data from events.
//! Must not touch: the terminal, the engine, or how things are drawn.

use crate::engine::signals::SignalKind;
use crate::spec::Strategy;
use crate::store::{Outcome, RunKind, Status};
use chrono::{DateTime, Utc};

use crate::describe::human_line;
use crate::engine::event::AnalysisDecision;
use crate::engine::{Event, EventKind, Judgement, Snapshot};
use crate::store::{pid_alive, RunRow, Store, StoreError};

/// One deployment (its latest run) as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub deployment: String,
    pub run: i64,
    pub version: String,
    pub environment: String,
    pub strategy: Strategy,
    pub status: Status,
    /// A process runs it now (or it has finished): commands can be delivered.
    pub live: bool,
    pub finished: bool,
    pub reason: Option<String>,
    pub initiator: String,
    /// When the run started (the table's age).
    pub started: Option<DateTime<Utc>>,
    pub snapshot: Option<Snapshot>,
    /// The plan's step descriptions, in order.
    pub plan: Vec<String>,
    /// Details read for the selected deployment only.
    pub detail: Option<Live>,
}

/// The selected run's recent journal, digested.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Newest last.
    pub events: Vec<String>,
    pub series: Vec<Series>,
    pub step_since: Option<DateTime<Utc>>,
    pub next_decision: Option<DateTime<Utc>>,
    pub gate_since: Option<DateTime<Utc>>,
    /// Per component, the weight asked and the share served over the run.
    pub traffic: Vec<TrafficHistory>,
}

/// One component's traffic over a run: the new version's weight as asked at each shift (a
/// staircase) and the share of requests it served at each analysis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficHistory {
    pub component: String,
    /// (when, percent asked for the new version), oldest first.
    pub asked: Vec<(DateTime<Utc>, f64)>,
    /// (when, percent of the requests the new version served), oldest first.
    pub served: Vec<(DateTime<Utc>, f64)>,
}

/// One judged signal over time: canary and baseline values and the threshold.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub canary: Vec<f64>,
    pub baseline: Vec<f64>,
    pub threshold: Option<f64>,
    pub judgement: Judgement,
    /// Every interval's verdict, oldest first (one per value).
    pub marks: Vec<Judgement>,
    /// When each interval was judged (one per value).
    pub times: Vec<Option<DateTime<Utc>>>,
    /// The latest verdict's reason in words.
    pub message: String,
    /// What it is judged against: a threshold (`< 0.05`) or, for rules and triggers, what the
    /// condition does (`rolls back when error_rate > 0.1`).
    pub expected: String,
    /// A rule or trigger: `expected` says what it does rather than what the value must be.
    pub condition: bool,
}

/// Equal when every value is the same number, a missing one (NaN) included: the console
/// redraws only when its model changes, and NaN never equals itself.
impl PartialEq for Series {
    fn eq(&self, o: &Series) -> bool {
        let same = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        same(&self.canary, &o.canary)
            && same(&self.baseline, &o.baseline)
            && self.threshold.map(f64::to_bits) == o.threshold.map(f64::to_bits)
            && self.name == o.name
            && self.judgement == o.judgement
            && self.marks == o.marks
            && self.times == o.times
            && self.message == o.message
            && self.expected == o.expected
            && self.condition == o.condition
    }
}

/// One past (or current) run for the history view.
#[derive(Debug, Clone, PartialEq)]
pub struct HistRow {
    pub run: i64,
    pub deployment: String,
    pub version: String,
    pub environment: String,
    pub strategy: Strategy,
    /// The outcome (as a status), or the status of a run that has not finished.
    pub outcome: Status,
    pub finished: bool,
    pub started: Option<DateTime<Utc>>,
    pub duration_s: Option<i64>,
    pub initiator: String,
    pub reason: Option<String>,
    /// What the delivery measures need: a deployment or a rollback, when it ended, and when
    /// its change was made (the spec's `metadata.changedAt`).
    pub kind: RunKind,
    pub finished_at: Option<DateTime<Utc>>,
    pub changed_at: Option<DateTime<Utc>>,
}

impl HistRow {
    /// The run as the delivery measures see it.
    pub fn fact(&self) -> Option<crate::analytics::report::Fact> {
        Some(crate::analytics::report::Fact {
            deployment: self.deployment.as_str().into(),
            environment: self.environment.as_str().into(),
            kind: self.kind,
            outcome: outcome_of(self.outcome),
            started: self.started?,
            finished: self.finished_at,
            changed_at: self.changed_at,
        })
    }
}

fn outcome_of(s: Status) -> Option<Outcome> {
    match s {
        Status::Succeeded => Some(Outcome::Succeeded),
        Status::RolledBack => Some(Outcome::RolledBack),
        Status::Failed => Some(Outcome::Failed),
        _ => None,
    }
}

/// One run's whole story, for the drill-down.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    pub run: i64,
    pub title: String,
    pub timeline: Vec<String>,
    pub verdicts: Vec<String>,
    pub scroll: usize,
    /// The run as the main view's panes draw it (its metric and traffic charts), when read
    /// from the store.
    pub row: Option<Box<Row>>,
}

pub use crate::store::parse_ts;

fn events_of(store: &Store, run: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
    Ok(store
        .recent_events(run, limit)?
        .iter()
        .filter_map(|e| serde_json::from_str::<Event>(&e.json).ok())
        .collect())
}

fn plan_steps(r: &RunRow) -> Vec<String> {
    serde_json::from_str::<crate::plan::Plan>(&r.plan_json)
        .map(|p| p.steps.into_iter().map(|s| s.description).collect())
        .unwrap_or_default()
}

/// Digest a run's journal (oldest first) of a run of `version` (given, since the journal may
/// be only its newest events, without its start).
pub fn live_from_events(events: &[Event], version: &str) -> Live {
    let mut live = Live::default();
    let mut series: Vec<Series> = Vec::new();
    let mut steps = 0;
    // The revisions of the run's version, as traffic shifts name them.
    let mut new_revs = std::collections::BTreeSet::new();
    for ev in events {
        let at = parse_ts(&ev.ts);
        match &ev.kind {
            EventKind::TrafficShifted { component, weights } => {
                new_revs.extend(
                    weights
                        .iter()
                        .filter(|w| w.version == version)
                        .map(|w| w.revision.clone()),
                );
                if let Some(at) = at {
                    let asked = weights
                        .iter()
                        .filter(|w| w.version == version)
                        .map(|w| f64::from(w.weight))
                        .sum();
                    traffic_of(&mut live.traffic, component)
                        .asked
                        .push((at, asked));
                }
            }
            EventKind::StepStarted { .. } => {
                live.step_since = at;
                live.next_decision = None;
            }
            EventKind::GateWaiting { .. } => live.gate_since = at,
            EventKind::GateApproved { .. } | EventKind::GateRejected { .. } => {
                live.gate_since = None
            }
            EventKind::Finished { .. } => {
                live.next_decision = None;
                live.gate_since = None;
            }
            EventKind::Analysis {
                verdicts,
                next_in_ms,
                served,
                component,
                ..
            } => {
                let total: f64 = served.values().sum();
                if let (Some(at), true) = (at, total > 0.0) {
                    let new: f64 = served
                        .iter()
                        .filter(|(k, _)| new_revs.contains(*k))
                        .map(|(_, v)| v)
                        .sum();
                    traffic_of(&mut live.traffic, component)
                        .served
                        .push((at, 100.0 * new / total));
                }
                live.next_decision = match (at, next_in_ms) {
                    (Some(t), Some(ms)) => Some(t + chrono::Duration::milliseconds(*ms as i64)),
                    _ => None,
                };
                for v in verdicts.iter().filter(|v| v.source != SignalKind::Health) {
                    let i = match series.iter().position(|s| s.name == v.signal) {
                        Some(i) => i,
                        None => {
                            series.push(Series {
                                name: v.signal.clone(),
                                canary: Vec::new(),
                                baseline: Vec::new(),
                                threshold: None,
                                judgement: v.judgement,
                                marks: Vec::new(),
                                times: Vec::new(),
                                message: String::new(),
                                expected: String::new(),
                                condition: matches!(
                                    v.source,
                                    SignalKind::Rule | SignalKind::Trigger
                                ),
                            });
                            series.len() - 1
                        }
                    };
                    let s = &mut series[i];
                    s.canary.push(v.value.unwrap_or(f64::NAN));
                    s.baseline.push(v.baseline.unwrap_or(f64::NAN));
                    s.threshold = v.threshold.or(s.threshold);
                    s.judgement = v.judgement;
                    s.marks.push(v.judgement);
                    s.times.push(at);
                    s.message = v.message.clone();
                    s.expected = v.expected.clone();
                }
            }
            _ => {}
        }
        if let EventKind::Started { steps: n, .. } = &ev.kind {
            steps = *n;
        }
        if let Some(line) = human_line(ev, steps) {
            live.events.extend(line.lines().map(str::to_string));
        }
    }
    live.series = series;
    live
}

/// The history of one component, made on first use.
fn traffic_of<'a>(all: &'a mut Vec<TrafficHistory>, component: &str) -> &'a mut TrafficHistory {
    let i = match all.iter().position(|t| t.component == component) {
        Some(i) => i,
        None => {
            all.push(TrafficHistory {
                component: component.to_string(),
                ..Default::default()
            });
            all.len() - 1
        }
    };
    &mut all[i]
}

fn row_from(r: RunRow, detail: Option<Live>) -> Row {
    let finished = r.is_finished();
    Row {
        live: finished || r.owner_pid.is_some_and(pid_alive),
        finished,
        snapshot: serde_json::from_str::<Snapshot>(&r.snapshot_json).ok(),
        plan: plan_steps(&r),
        deployment: r.deployment,
        run: r.run_id,
        version: r.version,
        environment: r.environment,
        strategy: r.strategy,
        status: r.status,
        reason: r.reason,
        started: parse_ts(&r.started_at),
        initiator: r.initiator,
        detail,
    }
}

/// The latest run of every deployment, by name; the selected one (else the first still going,
/// else the first) with its journal digested.
pub fn rows(store: &Store, selected: Option<&str>) -> Result<Vec<Row>, StoreError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in store.runs(None, 500)? {
        if seen.insert(r.deployment.clone()) {
            out.push(row_from(r, None));
        }
    }
    // A stable order, so rows do not jump when a deployment starts a new run.
    out.sort_by(|a, b| a.deployment.cmp(&b.deployment));
    let pick = out
        .iter()
        .position(|r| Some(r.deployment.as_str()) == selected)
        .or_else(|| out.iter().position(|r| !r.finished))
        .or((!out.is_empty()).then_some(0));
    if let Some(i) = pick {
        let events = events_of(store, out[i].run, 300)?;
        out[i].detail = Some(live_from_events(&events, &out[i].version));
    }
    Ok(out)
}

/// How many of the newest runs the history view reads.
pub const HISTORY_RUNS: usize = 5000;

/// Past runs, newest first.
pub fn history(store: &Store, limit: usize) -> Result<Vec<HistRow>, StoreError> {
    Ok(store
        .runs(None, limit)?
        .into_iter()
        .map(|r| {
            let started = parse_ts(&r.started_at);
            let end = r.finished_at.as_deref().and_then(parse_ts);
            HistRow {
                run: r.run_id,
                finished: r.is_finished(),
                outcome: r.outcome.map_or(r.status, Outcome::status),
                duration_s: match (started, end) {
                    (Some(a), Some(b)) => Some((b - a).num_seconds().max(0)),
                    _ => None,
                },
                started,
                kind: r.kind,
                finished_at: end,
                changed_at: crate::analytics::report::changed_at(&r.spec_json),
                deployment: r.deployment,
                version: r.version,
                environment: r.environment,
                strategy: r.strategy,
                initiator: r.initiator,
                reason: r.reason,
            }
        })
        .collect())
}

/// One run's timeline and every verdict it recorded.
pub fn drill(store: &Store, run: i64) -> Result<Option<Drill>, StoreError> {
    let Some(r) = store.run(run)? else {
        return Ok(None);
    };
    let events = events_of(store, run, 5000)?;
    let live = live_from_events(&events, &r.version);
    let mut verdicts = Vec::new();
    for ev in &events {
        if let EventKind::Analysis {
            verdicts: vs,
            decision,
            ..
        } = &ev.kind
        {
            let time = ev.ts.get(11..19).unwrap_or("");
            for v in vs {
                let mark = match v.judgement {
                    Judgement::Pass => "pass",
                    Judgement::Fail => "FAIL",
                    Judgement::NoData => "nodata",
                    Judgement::Error => "ERROR",
                };
                verdicts.push(format!(
                    "{time} {mark:<6} {:<16} {} ({}){}",
                    v.signal,
                    v.message,
                    v.expected,
                    if *decision == AnalysisDecision::Continue {
                        String::new()
                    } else {
                        format!(" -> {decision}")
                    }
                ));
            }
        }
    }
    let row = row_from(
        r.clone(),
        Some(Live {
            events: Vec::new(),
            ..live.clone()
        }),
    );
    let title = format!(
        "{} {} run #{} ({}, {}, {} by {}): {}",
        r.deployment,
        r.version,
        r.run_id,
        r.strategy,
        r.environment,
        r.status,
        r.initiator,
        r.reason.clone().unwrap_or_default()
    );
    Ok(Some(Drill {
        run,
        title,
        timeline: live.events,
        verdicts,
        scroll: 0,
        row: Some(Box::new(row)),
    }))
}

/// Success rate (percent) per day and duration per run, oldest first, for the history charts.
pub fn history_charts(rows: &[&HistRow]) -> (Vec<(String, f64, usize)>, Vec<f64>) {
    let mut days: Vec<(String, usize, usize)> = Vec::new();
    let mut durations = Vec::new();
    for h in rows.iter().rev().filter(|h| h.finished) {
        let day = h
            .started
            .map(|t| t.format("%m-%d").to_string())
            .unwrap_or_else(|| "?".into());
        match days.last_mut() {
            Some((d, ok, n)) if *d == day => {
                *n += 1;
                *ok += usize::from(h.outcome == Status::Succeeded);
            }
            _ => days.push((day, usize::from(h.outcome == Status::Succeeded), 1)),
        }
        durations.push(h.duration_s.unwrap_or(0) as f64);
    }
    let rate = days
        .into_iter()
        .map(|(d, ok, n)| (d, 100.0 * ok as f64 / n.max(1) as f64, n))
        .collect();
    (rate, durations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::signals::{OnFail, Verdict};

    fn ev(ts: &str, kind: EventKind) -> Event {
        Event {
            ts: ts.into(),
            deployment: "shop".into(),
            run: 1,
            kind,
        }
    }

    #[test]
    fn journal_digests_into_series_timers_and_lines() {
        let mut v = Verdict::new(
            "error_rate",
            SignalKind::Metric,
            Judgement::Pass,
            "< 0.05",
            "error_rate = 0.01",
            OnFail::Rollback,
        )
        .with_value(Some(0.01));
        v.baseline = Some(0.02);
        v.threshold = Some(0.05);
        let mut bad = v.clone();
        bad.value = Some(0.3);
        bad.judgement = Judgement::Fail;
        let weight = |revision: &str, version: &str, weight| crate::engine::event::Weight {
            revision: revision.into(),
            version: version.into(),
            weight,
            achieved: None,
        };
        let events = vec![
            ev(
                "2026-11-26T09:59:00.000Z",
                EventKind::Started {
                    version: "1.1.0".into(),
                    strategy: "canary".into(),
                    environment: "prod".into(),
                    provider: "local".into(),
                    steps: 4,
                    dry_run: false,
                    initiator: "me".into(),
                    baseline: Vec::new(),
                },
            ),
            ev(
                "2026-11-26T09:59:30.000Z",
                EventKind::TrafficShifted {
                    component: "web".into(),
                    weights: vec![
                        weight("web@1.0.0.r1", "1.0.0", 90),
                        weight("web@1.1.0.r2", "1.1.0", 10),
                    ],
                },
            ),
            ev(
                "2026-11-26T10:00:00.000Z",
                EventKind::StepStarted {
                    step: 2,
                    component: "web".into(),
                    description: "analyse".into(),
                },
            ),
            ev(
                "2026-11-26T10:00:10.000Z",
                EventKind::Analysis {
                    component: "web".into(),
                    verdicts: vec![v],
                    next_in_ms: Some(10_000),
                    decision: AnalysisDecision::Continue,
                    reason: None,
                    served: [("web@1.1.0.r2".into(), 9.0), ("web@1.0.0.r1".into(), 81.0)].into(),
                },
            ),
            ev(
                "2026-11-26T10:00:20.000Z",
                EventKind::Analysis {
                    component: "web".into(),
                    verdicts: vec![bad],
                    next_in_ms: Some(5_000),
                    decision: AnalysisDecision::Rollback,
                    reason: Some("error_rate failed".into()),
                    served: Default::default(),
                },
            ),
        ];
        let live = live_from_events(&events, "1.1.0");
        // The same journal digests to an equal model, a missing value (NaN) included, so an
        // unchanged store draws no new frame.
        let mut no_base = events.clone();
        if let EventKind::Analysis { verdicts, .. } = &mut no_base[3].kind {
            verdicts[0].baseline = None;
        }
        assert_eq!(
            live_from_events(&no_base, "1.1.0"),
            live_from_events(&no_base, "1.1.0")
        );
        // Without its start (only the newest events read), the staircase still knows the
        // version.
        assert_eq!(
            live_from_events(&events[1..], "1.1.0").traffic,
            live.traffic
        );
        assert_eq!(live.series.len(), 1);
        let s = &live.series[0];
        assert_eq!(s.canary, vec![0.01, 0.3]);
        assert_eq!(s.baseline, vec![0.02, 0.02]);
        assert_eq!(s.threshold, Some(0.05));
        assert_eq!(s.judgement, Judgement::Fail);
        assert_eq!(s.marks, vec![Judgement::Pass, Judgement::Fail]);
        assert_eq!(s.times[1], parse_ts("2026-11-26T10:00:20Z"));
        // The weight asked as a staircase, and the share the new version served.
        let t = &live.traffic[0];
        assert_eq!(t.component, "web");
        assert_eq!(
            t.asked,
            vec![(parse_ts("2026-11-26T09:59:30Z").unwrap(), 10.0)]
        );
        assert_eq!(
            t.served,
            vec![(parse_ts("2026-11-26T10:00:10Z").unwrap(), 10.0)]
        );
        assert_eq!(live.step_since, parse_ts("2026-11-26T10:00:00Z"));
        assert_eq!(live.next_decision, parse_ts("2026-11-26T10:00:25Z"));
        assert!(
            live.events.iter().any(|e| e.starts_with("10:00:00 ")),
            "{:?}",
            live.events
        );
    }

    #[test]
    fn charts_group_by_day_and_skip_unfinished() {
        let h = |run, outcome: &str, day: &str, dur| HistRow {
            run,
            deployment: "d".into(),
            version: "1".into(),
            environment: "e".into(),
            strategy: crate::spec::Strategy::Canary,
            outcome: <crate::store::Status as crate::spec::Keyword>::parse(outcome).unwrap(),
            finished: outcome != "progressing",
            started: parse_ts(&format!("2026-11-{day}T10:00:00Z")),
            duration_s: Some(dur),
            initiator: "me".into(),
            reason: None,
            kind: RunKind::Deploy,
            finished_at: None,
            changed_at: None,
        };
        // Newest first, as the store returns them.
        let rows = [
            h(4, "progressing", "26", 0),
            h(3, "rolled_back", "26", 30),
            h(2, "succeeded", "26", 60),
            h(1, "succeeded", "25", 90),
        ];
        let rows: Vec<&HistRow> = rows.iter().collect();
        let (rate, dur) = history_charts(&rows);
        assert_eq!(
            rate,
            vec![("11-25".into(), 100.0, 1), ("11-26".into(), 50.0, 2)]
        );
        assert_eq!(dur, vec![90.0, 60.0, 30.0]);
    }
}
