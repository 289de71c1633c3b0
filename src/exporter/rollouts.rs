//! Rollout metrics from the store: each deployment's state in each environment now (phase, step,
//! weights, version, time waiting at a gate or paused), and counters over the journal (analysis
//! verdicts, rollbacks and failures by cause, finished runs, their durations, gate waits).
//!
//! The state is read afresh at each scrape from the newest run of each target; the counters
//! follow the journal from where the last scrape stopped, so a scrape reads only what is new
//! (the first one reads the whole journal; an exporter that restarts reads it again and comes
//! back to the same values). Counters are written at 0 for each target and metric from the first
//! scrape that sees them, so the first rollback is an increase. Dry runs are left out.
//!
//! Owns: the `cutover_*` rollout series and the journal cursor. Must not touch: the store's rows
//! (it only reads) or the engine.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::event::{Cause, Event, EventKind, Snapshot};
use crate::engine::Judgement;
use crate::spec::keyword::Keyword;
use crate::store::{FeedEvent, Outcome, RunKind, RunRow, Status, Store, StoreError};

type FGauge = Gauge<f64, AtomicU64>;
type Hist = Family<Target, Histogram, fn() -> Histogram>;
type HistBy<L> = Family<L, Histogram, fn() -> Histogram>;

/// The journal lines the counters follow.
const KINDS: [&str; 8] = [
    "analysis",
    "pruned",
    "gate_waiting",
    "gate_approved",
    "gate_rejected",
    "paused",
    "resumed",
    "finished",
];

/// Journal lines read per query.
const BATCH: usize = 5_000;

/// The phases a rollout is in, as the `phase` label says them.
const PHASES: [&str; 7] = [
    "running",
    "paused",
    "waiting",
    "rolling_back",
    "succeeded",
    "rolled_back",
    "failed",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Target {
    deployment: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    deployment: String,
    environment: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    deployment: String,
    environment: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    deployment: String,
    environment: String,
    version: String,
    strategy: &'static str,
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    deployment: String,
    environment: String,
    gate: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    deployment: String,
    environment: String,
    metric: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    deployment: String,
    environment: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    deployment: String,
    environment: String,
    outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    // 10 s to 8 h.
    Histogram::new([
        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    ])
}

fn wait_histogram() -> Histogram {
    // 1 s to 4 h.
    Histogram::new([
        1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    ])
}

/// The rollout series and the journal cursor behind them.
pub struct Rollouts {
    cursor: i64,
    /// Runs waiting at a gate or paused: since when (from the journal).
    waiting: HashMap<i64, (String, DateTime<Utc>)>,
    paused: HashMap<i64, DateTime<Utc>>,
    phase: Family<PhaseLabels, Gauge>,
    step: Family<Target, Gauge>,
    steps: Family<Target, Gauge>,
    weight: Family<ComponentLabels, FGauge>,
    achieved: Family<ComponentLabels, FGauge>,
    info: Family<InfoLabels, Gauge>,
    gate_waiting: Family<GateLabels, FGauge>,
    paused_for: Family<Target, FGauge>,
    verdicts: Family<VerdictLabels, Counter>,
    rollbacks: Family<CauseLabels, Counter>,
    failures: Family<CauseLabels, Counter>,
    finished: Family<OutcomeLabels, Counter>,
    duration: HistBy<OutcomeLabels>,
    gate_wait: Hist,
}

impl Rollouts {
    /// The series, registered in `registry`.
    pub fn new(registry: &mut Registry) -> Rollouts {
        let r = Rollouts {
            cursor: 0,
            waiting: HashMap::new(),
            paused: HashMap::new(),
            phase: Family::default(),
            step: Family::default(),
            steps: Family::default(),
            weight: Family::default(),
            achieved: Family::default(),
            info: Family::default(),
            gate_waiting: Family::default(),
            paused_for: Family::default(),
            verdicts: Family::default(),
            rollbacks: Family::default(),
            failures: Family::default(),
            finished: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            gate_wait: Family::new_with_constructor(wait_histogram),
        };
        registry.register(
            "cutover_rollout_phase",
            "1 for the phase the newest run of a deployment in an environment is in, 0 for the others",
            r.phase.clone(),
        );
        registry.register(
            "cutover_rollout_step",
            "The step the newest run is at (1-based; the step count once finished)",
            r.step.clone(),
        );
        registry.register(
            "cutover_rollout_steps",
            "How many steps the newest run's plan has",
            r.steps.clone(),
        );
        registry.register(
            "cutover_rollout_weight",
            "Percent of a component's traffic asked for the version being rolled out",
            r.weight.clone(),
        );
        registry.register(
            "cutover_rollout_weight_achieved",
            "Percent of a component's traffic the platform gives the version being rolled out (below the weight asked where replicas cannot split it exactly)",
            r.achieved.clone(),
        );
        registry.register(
            "cutover_rollout_info",
            "The version, strategy and provider of the newest run (always 1)",
            r.info.clone(),
        );
        registry.register(
            "cutover_gate_waiting_seconds",
            "How long the newest run has been waiting at an approval gate",
            r.gate_waiting.clone(),
        );
        registry.register(
            "cutover_rollout_paused_seconds",
            "How long the newest run has been paused",
            r.paused_for.clone(),
        );
        registry.register(
            "cutover_analysis_verdicts",
            "Analysis verdicts by metric and result (pass, fail, nodata, error)",
            r.verdicts.clone(),
        );
        registry.register(
            "cutover_rollbacks",
            "Runs that ended rolled back, by cause (metric, health, manual, timeout, rejected, check, error)",
            r.rollbacks.clone(),
        );
        registry.register(
            "cutover_failures",
            "Runs that ended failed, by cause (metric, health, manual, timeout, rejected, check, error)",
            r.failures.clone(),
        );
        registry.register(
            "cutover_rollouts_finished",
            "Runs that ended, by outcome (succeeded, rolled_back, failed)",
            r.finished.clone(),
        );
        registry.register(
            "cutover_rollout_duration_seconds",
            "How long runs took from start to end, by outcome",
            r.duration.clone(),
        );
        registry.register(
            "cutover_gate_wait_seconds",
            "How long gates waited before they were decided",
            r.gate_wait.clone(),
        );
        r
    }

    /// Bring every series up to date with the store, as of `now`.
    pub fn update(&mut self, store: &Store, now: DateTime<Utc>) -> Result<(), StoreError> {
        loop {
            let batch = store.feed(self.cursor, &KINDS, BATCH)?;
            for e in &batch {
                self.count(e);
                self.cursor = e.seq;
            }
            if batch.len() < BATCH {
                break;
            }
        }
        self.state(&store.latest_per_target()?, now);
        Ok(())
    }

    /// One journal line into the counters.
    fn count(&mut self, e: &FeedEvent) {
        // A line this build cannot read (a newer kind's shape) is skipped, not fatal.
        let Ok(ev) = serde_json::from_str::<Event>(&e.json) else {
            tracing::debug!(seq = e.seq, "exporter: unreadable journal line skipped");
            return;
        };
        let at = parse_ts(&e.ts);
        let (deployment, environment) = (e.deployment.clone(), e.environment.clone());
        match ev.kind {
            EventKind::Analysis { verdicts, .. } => {
                for v in verdicts {
                    let labels = |result| VerdictLabels {
                        deployment: deployment.clone(),
                        environment: environment.clone(),
                        metric: v.signal.clone(),
                        result,
                    };
                    // Every result from the metric's first verdict on (at 0 until it happens).
                    for r in ["pass", "fail", "nodata", "error"] {
                        let _ = self.verdicts.get_or_create(&labels(r));
                    }
                    self.verdicts
                        .get_or_create(&labels(judgement(v.judgement)))
                        .inc();
                }
            }
            // Routine analysis lines replaced by their counts (a restarted exporter counts
            // them here; a running one read them before they were pruned, and the summary
            // takes the first one's place behind its cursor).
            EventKind::Pruned { verdicts, .. } => {
                for (metric, counts) in verdicts {
                    let labels = |result| VerdictLabels {
                        deployment: deployment.clone(),
                        environment: environment.clone(),
                        metric: metric.clone(),
                        result,
                    };
                    for (r, n) in ["pass", "fail", "nodata", "error"].into_iter().zip(counts) {
                        self.verdicts.get_or_create(&labels(r)).inc_by(u64::from(n));
                    }
                }
            }
            EventKind::GateWaiting { gate, .. } => {
                if let Some(at) = at {
                    self.waiting.insert(e.run_id, (gate, at));
                }
            }
            EventKind::GateApproved { .. } | EventKind::GateRejected { .. } => {
                if let (Some((_, since)), Some(at)) = (self.waiting.remove(&e.run_id), at) {
                    self.gate_wait
                        .get_or_create(&Target {
                            deployment,
                            environment,
                        })
                        .observe(seconds(since, at));
                }
            }
            EventKind::Paused { .. } => {
                if let Some(at) = at {
                    self.paused.insert(e.run_id, at);
                }
            }
            EventKind::Resumed { .. } => {
                self.paused.remove(&e.run_id);
            }
            EventKind::Finished {
                outcome,
                cause,
                by_run,
                ..
            } => {
                self.waiting.remove(&e.run_id);
                self.paused.remove(&e.run_id);
                let reason = cause.map(Cause::as_str).unwrap_or("unknown");
                let by_cause = CauseLabels {
                    deployment: deployment.clone(),
                    environment: environment.clone(),
                    reason,
                };
                // A run ended by an operator's rollback run: that run's end counts the rollback.
                if by_run.is_none() {
                    match outcome {
                        Outcome::RolledBack => self.rollbacks.get_or_create(&by_cause).inc(),
                        Outcome::Failed => self.failures.get_or_create(&by_cause).inc(),
                        Outcome::Succeeded => 0,
                    };
                }
                // An operator's rollback is not a rollout: it is counted above, not below (as
                // in the reports).
                if e.run_kind == RunKind::Rollback {
                    return;
                }
                let labels = OutcomeLabels {
                    deployment,
                    environment,
                    outcome: outcome.as_str(),
                };
                self.finished.get_or_create(&labels).inc();
                if let (Some(start), Some(end)) = (parse_ts(&e.started_at), at) {
                    self.duration
                        .get_or_create(&labels)
                        .observe(seconds(start, end));
                }
            }
            _ => {}
        }
    }

    /// The state series from the newest run of each target.
    fn state(&mut self, runs: &[RunRow], now: DateTime<Utc>) {
        self.phase.clear();
        self.step.clear();
        self.steps.clear();
        self.weight.clear();
        self.achieved.clear();
        self.info.clear();
        self.gate_waiting.clear();
        self.paused_for.clear();
        // Only a target's newest run, unfinished, can still be waiting or paused (one that was
        // replaced without its end, by a rollback run that took it over, never will be).
        let open: std::collections::HashSet<i64> = runs
            .iter()
            .filter(|r| !r.is_finished())
            .map(|r| r.run_id)
            .collect();
        self.waiting.retain(|run, _| open.contains(run));
        self.paused.retain(|run, _| open.contains(run));
        for run in runs {
            let target = Target {
                deployment: run.deployment.clone(),
                environment: run.environment.clone(),
            };
            // The counters of the target at 0 until they happen.
            for reason in <Cause as Keyword>::ALL
                .iter()
                .map(|(w, _)| *w)
                .chain(["unknown"])
            {
                let l = CauseLabels {
                    deployment: run.deployment.clone(),
                    environment: run.environment.clone(),
                    reason,
                };
                let _ = self.rollbacks.get_or_create(&l);
                let _ = self.failures.get_or_create(&l);
            }
            for outcome in ["succeeded", "rolled_back", "failed"] {
                let _ = self.finished.get_or_create(&OutcomeLabels {
                    deployment: run.deployment.clone(),
                    environment: run.environment.clone(),
                    outcome,
                });
            }
            let now_phase = phase(run.status);
            for p in PHASES {
                self.phase
                    .get_or_create(&PhaseLabels {
                        deployment: run.deployment.clone(),
                        environment: run.environment.clone(),
                        phase: p,
                    })
                    .set(i64::from(p == now_phase));
            }
            self.info
                .get_or_create(&InfoLabels {
                    deployment: run.deployment.clone(),
                    environment: run.environment.clone(),
                    version: run.version.clone(),
                    strategy: run.strategy.as_str(),
                    provider: run.provider.as_str(),
                })
                .set(1);
            let snap = serde_json::from_str::<Snapshot>(&run.snapshot_json).ok();
            let steps = snap.as_ref().map(|s| s.steps).unwrap_or(0);
            let step = if run.is_finished() {
                steps
            } else {
                snap.as_ref().map(|s| s.step + 1).unwrap_or(0).min(steps)
            };
            self.step.get_or_create(&target).set(step as i64);
            self.steps.get_or_create(&target).set(steps as i64);
            for t in snap.iter().flat_map(|s| &s.traffic) {
                let labels = ComponentLabels {
                    deployment: run.deployment.clone(),
                    environment: run.environment.clone(),
                    component: t.component.clone(),
                };
                let new = t.weights.iter().find(|w| w.version == run.version);
                let asked = new.map(|w| f64::from(w.weight)).unwrap_or(0.0);
                let got = new.and_then(|w| w.achieved).unwrap_or(asked);
                self.weight.get_or_create(&labels).set(asked);
                self.achieved.get_or_create(&labels).set(got);
            }
            if run.status == Status::WaitingApproval {
                if let Some((gate, since)) = self.waiting.get(&run.run_id) {
                    self.gate_waiting
                        .get_or_create(&GateLabels {
                            deployment: run.deployment.clone(),
                            environment: run.environment.clone(),
                            gate: gate.clone(),
                        })
                        .set(seconds(*since, now));
                }
            }
            if run.status == Status::Paused {
                if let Some(since) = self.paused.get(&run.run_id) {
                    self.paused_for
                        .get_or_create(&target)
                        .set(seconds(*since, now));
                }
            }
        }
    }
}

/// The `phase` label of a run's status.
fn phase(s: Status) -> &'static str {
    match s {
        Status::Pending | Status::Progressing => "running",
        Status::Paused => "paused",
        Status::WaitingApproval => "waiting",
        Status::RollingBack => "rolling_back",
        Status::Succeeded => "succeeded",
        Status::RolledBack => "rolled_back",
        Status::Failed => "failed",
    }
}

fn judgement(j: Judgement) -> &'static str {
    match j {
        Judgement::Pass => "pass",
        Judgement::Fail => "fail",
        Judgement::NoData => "nodata",
        Judgement::Error => "error",
    }
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ProviderKind, Strategy};
    use crate::store::NewRun;
    use serde_json::{json, Value};

    const T0: &str = "2026-11-30T10:00:00Z";

    fn at(mins: i64) -> String {
        (parse_ts(T0).unwrap_or_default() + chrono::Duration::minutes(mins))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    fn run(s: &Store, dep: &str, env: &str, version: &str, dry_run: bool) -> i64 {
        run_of(s, dep, env, version, dry_run, RunKind::Deploy)
    }

    fn run_of(s: &Store, dep: &str, env: &str, version: &str, dry_run: bool, kind: RunKind) -> i64 {
        s.create_run(&NewRun {
            deployment: dep.into(),
            kind,
            name: dep.into(),
            version: version.into(),
            strategy: Strategy::Canary,
            environment: env.into(),
            provider: ProviderKind::Local,
            dry_run,
            spec_json: "{}".into(),
            plan_json: "{}".into(),
            initiator: "alice".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn event(s: &Store, run: i64, dep: &str, mins: i64, kind: Value) {
        let mut ev = json!({"ts": at(mins), "deployment": dep, "run": run});
        if let (Some(o), Some(k)) = (ev.as_object_mut(), kind.as_object()) {
            o.extend(k.clone());
        }
        let name = kind["kind"].as_str().unwrap_or_default().to_string();
        s.append_event(run, &at(mins), &name, &ev.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn verdict(signal: &str, judgement: &str) -> Value {
        json!({"signal": signal, "source": "metric", "judgement": judgement, "value": 0.01,
               "expected": "< 0.05", "message": "", "on_fail": "rollback"})
    }

    fn analysis(verdicts: Vec<Value>) -> Value {
        json!({"kind": "analysis", "component": "web", "verdicts": verdicts, "next_in_ms": 1000})
    }

    fn snapshot(dep: &str, run: i64, version: &str, status: &str, step: usize) -> String {
        json!({"deployment": dep, "run": run, "version": version, "strategy": "canary",
               "environment": "production", "status": status, "step": step, "steps": 5,
               "step_description": "", "gate": null, "last_verdicts": [], "reason": null,
               "outcome": null,
               "traffic": [{"component": "web", "weights": [
                   {"revision": "web-1", "version": "1.0.0", "weight": 80},
                   {"revision": "web-2", "version": version, "weight": 20, "achieved": 18.0}]}]})
        .to_string()
    }

    /// The value of the sample line that starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    fn scrape(r: &mut Rollouts, reg: &Registry, s: &Store, now_mins: i64) -> String {
        r.update(s, parse_ts(&at(now_mins)).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, reg).unwrap_or_else(|e| panic!("{e}"));
        out
    }

    /// A store with a run waiting at a gate, one rolled back by a metric, one paused, one failed
    /// by its health checks, and a dry run.
    fn store(dir: &std::path::Path) -> Store {
        let s = Store::open(dir).unwrap_or_else(|e| panic!("{e}"));
        let shop = run(&s, "shop", "production", "2.0.0", false);
        event(
            &s,
            shop,
            "shop",
            0,
            analysis(vec![verdict("error_rate", "pass"), verdict("p99", "error")]),
        );
        event(
            &s,
            shop,
            "shop",
            1,
            json!({"kind": "gate_waiting", "gate": "prod-approval", "component": "web", "hint": ""}),
        );
        s.update_run(
            shop,
            Status::WaitingApproval,
            2,
            &snapshot("shop", shop, "2.0.0", "waiting_approval", 2),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let pay = run(&s, "payments", "staging", "1.1.0", false);
        event(
            &s,
            pay,
            "payments",
            0,
            analysis(vec![verdict("error_rate", "fail")]),
        );
        event(
            &s,
            pay,
            "payments",
            3,
            json!({"kind": "finished", "outcome": "rolled_back", "reason": "error_rate", "cause": "metric"}),
        );
        s.finish_run(pay, Outcome::RolledBack, "error_rate", &[])
            .unwrap_or_else(|e| panic!("{e}"));

        let ledger = run(&s, "ledger", "staging", "3.0.0", false);
        event(
            &s,
            ledger,
            "ledger",
            10,
            json!({"kind": "paused", "by": "bob", "reason": "lunch"}),
        );
        s.update_run(
            ledger,
            Status::Paused,
            1,
            &snapshot("ledger", ledger, "3.0.0", "paused", 1),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let search = run(&s, "search", "production", "4.0.0", false);
        event(
            &s,
            search,
            "search",
            0,
            json!({"kind": "gate_waiting", "gate": "g", "component": "web", "hint": ""}),
        );
        event(
            &s,
            search,
            "search",
            20,
            json!({"kind": "gate_approved", "gate": "g", "by": "carol", "comment": null}),
        );
        event(
            &s,
            search,
            "search",
            21,
            json!({"kind": "finished", "outcome": "failed", "reason": "unhealthy", "cause": "health"}),
        );
        s.finish_run(search, Outcome::Failed, "unhealthy", &[])
            .unwrap_or_else(|e| panic!("{e}"));

        let dry = run(&s, "dry", "production", "9.0.0", true);
        event(
            &s,
            dry,
            "dry",
            0,
            json!({"kind": "finished", "outcome": "rolled_back", "reason": "x", "cause": "manual"}),
        );
        s
    }

    #[test]
    fn the_store_becomes_rollout_series_and_the_counters_follow_the_journal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = store(dir.path());
        let mut reg = Registry::default();
        let mut r = Rollouts::new(&mut reg);
        let text = scrape(&mut r, &reg, &s, 121);
        let v = |series: &str| value(&text, series);
        let shop = "deployment=\"shop\",environment=\"production\"";
        assert_eq!(
            v(&format!(
                "cutover_rollout_phase{{{shop},phase=\"waiting\"}}"
            )),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            v(&format!(
                "cutover_rollout_phase{{{shop},phase=\"running\"}}"
            )),
            Some(0.0)
        );
        assert_eq!(v(&format!("cutover_rollout_step{{{shop}}}")), Some(3.0));
        assert_eq!(v(&format!("cutover_rollout_steps{{{shop}}}")), Some(5.0));
        assert_eq!(
            v(&format!(
                "cutover_rollout_weight{{{shop},component=\"web\"}}"
            )),
            Some(20.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_rollout_weight_achieved{{{shop},component=\"web\"}}"
            )),
            Some(18.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_gate_waiting_seconds{{{shop},gate=\"prod-approval\"}}"
            )),
            Some(7200.0)
        );
        assert_eq!(v(&format!("cutover_rollout_info{{{shop},version=\"2.0.0\",strategy=\"canary\",provider=\"local\"}}")), Some(1.0));
        assert_eq!(
            v(&format!(
                "cutover_analysis_verdicts_total{{{shop},metric=\"p99\",result=\"error\"}}"
            )),
            Some(1.0)
        );
        let pay = "deployment=\"payments\",environment=\"staging\"";
        assert_eq!(
            v(&format!(
                "cutover_rollbacks_total{{{pay},reason=\"metric\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_rollout_phase{{{pay},phase=\"rolled_back\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_rollout_duration_seconds_count{{{pay},outcome=\"rolled_back\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            v("cutover_rollout_paused_seconds{deployment=\"ledger\",environment=\"staging\"}"),
            Some(111.0 * 60.0)
        );
        let search = "deployment=\"search\",environment=\"production\"";
        assert_eq!(
            v(&format!(
                "cutover_failures_total{{{search},reason=\"health\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            v(&format!("cutover_gate_wait_seconds_count{{{search}}}")),
            Some(1.0)
        );
        assert_eq!(
            v(&format!("cutover_gate_wait_seconds_sum{{{search}}}")),
            Some(1200.0)
        );
        assert!(
            !text.contains("deployment=\"dry\""),
            "dry runs are left out:\n{text}"
        );
        // Counters that have not happened yet are there at 0, so the first one is an increase.
        assert_eq!(
            v(&format!(
                "cutover_rollbacks_total{{{shop},reason=\"metric\"}}"
            )),
            Some(0.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_failures_total{{{shop},reason=\"unknown\"}}"
            )),
            Some(0.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_rollouts_finished_total{{{shop},outcome=\"failed\"}}"
            )),
            Some(0.0)
        );
        assert_eq!(
            v(&format!(
                "cutover_analysis_verdicts_total{{{shop},metric=\"p99\",result=\"fail\"}}"
            )),
            Some(0.0)
        );

        // The next scrape reads only what is new: one more verdict counts once.
        let shop_run = 1;
        event(
            &s,
            shop_run,
            "shop",
            125,
            analysis(vec![verdict("p99", "error")]),
        );
        let text = scrape(&mut r, &reg, &s, 126);
        assert_eq!(
            value(
                &text,
                &format!(
                    "cutover_analysis_verdicts_total{{{shop},metric=\"p99\",result=\"error\"}}"
                )
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("cutover_rollbacks_total{{{pay},reason=\"metric\"}}")
            ),
            Some(1.0)
        );
    }

    /// An operator's rollback of a run whose process had gone: the rollback run's end counts
    /// one rollback (manual) and no rollout; the run it replaced ends with a `finished` line
    /// naming it, which counts one finished rollout and no second rollback. A gate the replaced
    /// run waited at is forgotten.
    #[test]
    fn an_operators_rollback_counts_once_and_is_not_a_rollout() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let shop = run(&s, "shop", "production", "2.0.0", false);
        event(
            &s,
            shop,
            "shop",
            1,
            json!({"kind": "gate_waiting", "gate": "g", "component": "web", "hint": ""}),
        );
        let mut reg = Registry::default();
        let mut r = Rollouts::new(&mut reg);
        let _ = scrape(&mut r, &reg, &s, 2);
        assert!(r.waiting.contains_key(&shop));
        // The process went; an operator rolls back in a run of its own.
        let back = run_of(&s, "shop", "production", "1.0.0", false, RunKind::Rollback);
        let text = scrape(&mut r, &reg, &s, 3);
        assert!(r.waiting.is_empty(), "the replaced run's gate is forgotten");
        assert!(!text.contains("cutover_gate_waiting_seconds{"), "{text}");
        event(
            &s,
            back,
            "shop",
            4,
            json!({"kind": "finished", "outcome": "rolled_back", "reason": "rollback requested by bob", "cause": "manual"}),
        );
        s.finish_run(back, Outcome::RolledBack, "done", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        event(
            &s,
            shop,
            "shop",
            4,
            json!({"kind": "finished", "outcome": "rolled_back", "reason": "rolled back by bob", "cause": "manual", "by_run": back}),
        );
        s.finish_run(shop, Outcome::RolledBack, "rolled back by bob", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let text = scrape(&mut r, &reg, &s, 5);
        let t = "deployment=\"shop\",environment=\"production\"";
        let v = |series: String| value(&text, &series);
        assert_eq!(
            v(format!("cutover_rollbacks_total{{{t},reason=\"manual\"}}")),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            v(format!(
                "cutover_rollouts_finished_total{{{t},outcome=\"rolled_back\"}}"
            )),
            Some(1.0)
        );
        assert_eq!(
            v(format!(
                "cutover_rollout_duration_seconds_count{{{t},outcome=\"rolled_back\"}}"
            )),
            Some(1.0)
        );
    }

    /// A pruned run's routine verdicts still count: a running exporter counted them before, a
    /// restarted one counts them from the summary line.
    #[test]
    fn verdicts_of_pruned_lines_count_once_before_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let shop = run(&s, "shop", "production", "2.0.0", false);
        for m in 0..3 {
            event(
                &s,
                shop,
                "shop",
                m,
                analysis(vec![verdict("error_rate", "pass")]),
            );
        }
        event(
            &s,
            shop,
            "shop",
            4,
            json!({"kind": "finished", "outcome": "succeeded", "reason": "done"}),
        );
        s.finish_run(shop, Outcome::Succeeded, "done", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let series = "cutover_analysis_verdicts_total{deployment=\"shop\",environment=\"production\",metric=\"error_rate\",result=\"pass\"}";
        let mut reg = Registry::default();
        let mut running = Rollouts::new(&mut reg);
        assert_eq!(value(&scrape(&mut running, &reg, &s, 5), series), Some(3.0));
        let far = parse_ts(&at(10_000)).unwrap_or_default();
        let pruned =
            crate::analytics::retention::prune(&s, far, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pruned.lines, 3);
        assert_eq!(value(&scrape(&mut running, &reg, &s, 6), series), Some(3.0));
        let mut reg = Registry::default();
        let mut restarted = Rollouts::new(&mut reg);
        assert_eq!(
            value(&scrape(&mut restarted, &reg, &s, 7), series),
            Some(3.0)
        );
    }

    /// Every `cutover_*` series the shipped Grafana dashboard and alert rules query is one the
    /// exporter writes.
    #[test]
    fn the_dashboard_and_the_alert_rules_query_only_series_the_exporter_writes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = store(dir.path());
        let mut reg = Registry::default();
        let mut r = Rollouts::new(&mut reg);
        let text = scrape(&mut r, &reg, &s, 121);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/monitoring");
        let mut used = std::collections::BTreeSet::new();
        for file in ["grafana-dashboard.json", "alerts.yaml"] {
            let body = std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{e}"));
            let mut rest = body.as_str();
            while let Some(i) = rest.find("cutover_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                used.insert(name);
            }
        }
        assert!(used.len() >= 12, "{used:?}");
        for name in &used {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{name} is queried but not exported"
            );
        }
    }
}
