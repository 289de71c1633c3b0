//! A representative console model: the fixture of the view snapshot tests, the render benchmark
//! and anyone who wants to see every pane filled without running anything.
//!
//! Owns: sample data only. Must not touch: the store or the engine.

use crate::engine::event::{
    ComponentTraffic, Event, EventKind, InstanceHealth, Snapshot, Status, Weight,
};
use crate::engine::signals::SignalKind;
use crate::engine::signals::{OnFail, Verdict};
use crate::engine::{Counts, Judgement};
use crate::provider::InstanceStatus;
use crate::tui::data::{parse_ts, HistRow, Live, Row, Series, TrafficHistory};
use crate::tui::model::Model;

fn snapshot() -> Snapshot {
    let mut v = Verdict::new(
        "error_rate",
        SignalKind::Metric,
        Judgement::Pass,
        "< 0.05",
        "error_rate = 0.004 (must be < 0.05); baseline 0.003",
        OnFail::Rollback,
    )
    .with_value(Some(0.004));
    v.counts = Some(Counts {
        failures: 0,
        failure_limit: 0,
        no_data_in_row: 0,
        no_data_limit: 3,
        errors_in_row: 0,
        error_limit: 4,
    });
    let inst = |id: &str, rev: &str, version: &str, ready: bool| InstanceHealth {
        component: "web".into(),
        revision: rev.into(),
        version: version.into(),
        status: InstanceStatus {
            id: id.into(),
            ready,
            unhealthy: false,
            restarts: 0,
            detail: None,
            probe: "http".into(),
            last_latency_ms: Some(1.4),
            consecutive_failures: 0,
            phase: None,
            age_s: None,
        },
    };
    Snapshot {
        deployment: "shop".into(),
        run: 7,
        version: "1.1.0".into(),
        strategy: crate::spec::Strategy::Canary,
        environment: "prod".into(),
        status: Status::WaitingApproval,
        step: 5,
        steps: 9,
        step_description: "gate canary-50".into(),
        gate: Some("canary-50".into()),
        gate_view: Some(crate::governance::gate::GateView {
            gate: "canary-50".into(),
            required: 2,
            approved_by: vec!["carol".into()],
            may_approve: "users alice, bob, carol; groups sre, except carol, bob (started it)"
                .into(),
            waited_ms: 20_000,
            opened_at: Some("2026-11-26T12:01:01.000Z".into()),
            next_escalation: Some((
                "notify oncall-webhook, add approvers users dave".into(),
                30 * 60 * 1000,
            )),
            timeout_ms: Some(2 * 3600 * 1000),
        }),
        traffic: vec![ComponentTraffic {
            component: "web".into(),
            weights: vec![
                Weight {
                    revision: "web@1.0.0.r1".into(),
                    version: "1.0.0".into(),
                    weight: 50,
                    achieved: None,
                },
                Weight {
                    revision: "web@1.1.0.r2".into(),
                    version: "1.1.0".into(),
                    weight: 50,
                    achieved: None,
                },
            ],
            measured_rps: [
                ("web@1.0.0.r1".to_string(), 24.5),
                ("web@1.1.0.r2".to_string(), 25.5),
            ]
            .into_iter()
            .collect(),
        }],
        instances: vec![
            inst("web@1.0.0.r1-0", "web@1.0.0.r1", "1.0.0", true),
            inst("web@1.1.0.r2-0", "web@1.1.0.r2", "1.1.0", true),
        ],
        last_verdicts: vec![v],
        reason: None,
        outcome: None,
        rolling_back: None,
    }
}

/// A time on the sample's day.
fn at(hms: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    parse_ts(&format!("2026-11-26T{hms}Z"))
}

/// A metric judged every 15 s from 11:57:31, passing but where `marks` says otherwise.
fn series(
    name: &str,
    canary: &[f64],
    baseline: &[f64],
    threshold: Option<f64>,
    (expected, message, condition): (&str, &str, bool),
    marks: &[(usize, Judgement)],
) -> Series {
    let all: Vec<Judgement> = (0..canary.len())
        .map(|i| {
            marks
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(Judgement::Pass, |(_, m)| *m)
        })
        .collect();
    Series {
        name: name.into(),
        canary: canary.to_vec(),
        baseline: baseline.to_vec(),
        threshold,
        judgement: all.last().copied().unwrap_or(Judgement::Pass),
        times: (0..canary.len())
            .map(|i| Some(at("11:57:31")? + chrono::Duration::seconds(15 * i as i64)))
            .collect(),
        marks: all,
        message: message.into(),
        expected: expected.into(),
        condition,
    }
}

/// A console showing three deployments (one at a gate, one rolled back, one interrupted) and
/// seven runs of history.
pub fn model() -> Model {
    let live = Live {
        events: vec![
            "12:00:01 [5/9] web: shift 50% of traffic to 1.1.0".into(),
            "12:00:31 web: analysis ok: error_rate 0.004".into(),
            "12:01:01 web: gate canary-50 waits: cutover approve shop --gate canary-50".into(),
        ],
        series: vec![
            series(
                "error_rate",
                &[
                    0.002, 0.003, 0.002, 0.004, 0.003, 0.003, 0.002, 0.004, 0.003, 0.004, 0.003,
                    0.004,
                ],
                &[0.003; 12],
                Some(0.05),
                ("< 0.05", "error_rate = 0.004 (must be < 0.05)", false),
                &[],
            ),
            series(
                "latency_p99",
                &[
                    210.0,
                    250.0,
                    f64::NAN,
                    230.0,
                    260.0,
                    f64::NAN,
                    300.0,
                    320.0,
                    350.0,
                    390.0,
                    420.0,
                    480.0,
                ],
                &[
                    200.0, 205.0, 198.0, 201.0, 203.0, 199.0, 202.0, 204.0, 200.0, 206.0, 201.0,
                    203.0,
                ],
                Some(400.0),
                ("< 400", "latency_p99 = 480 (must be < 400)", false),
                &[
                    (2, Judgement::NoData),
                    (5, Judgement::Error),
                    (10, Judgement::Fail),
                    (11, Judgement::Fail),
                ],
            ),
            series(
                "error-rate[0]",
                &[
                    0.002, 0.003, 0.002, 0.004, 0.003, 0.003, 0.002, 0.004, 0.003, 0.004, 0.003,
                    0.004,
                ],
                &[],
                Some(0.1),
                (
                    "rolls back when error_rate > 0.1",
                    "ok (error_rate = 0.004)",
                    true,
                ),
                &[],
            ),
        ],
        traffic: vec![TrafficHistory {
            component: "web".into(),
            asked: [("11:57:01", 0.0), ("11:57:31", 10.0), ("12:00:01", 50.0)]
                .iter()
                .filter_map(|(t, w)| Some((at(t)?, *w)))
                .collect(),
            served: (0..12)
                .filter_map(|i| {
                    let t = at("11:57:31")? + chrono::Duration::seconds(15 * i);
                    let share = if i < 10 {
                        9.0 + (i % 3) as f64
                    } else {
                        48.0 + i as f64 % 3.0
                    };
                    Some((t, share))
                })
                .collect(),
        }],
        step_since: parse_ts("2026-11-26T12:00:01Z"),
        next_decision: parse_ts("2026-11-26T12:01:31Z"),
        gate_since: parse_ts("2026-11-26T12:01:01Z"),
    };
    let plan = [
        "pre-deployment checks",
        "start 1.1.0 with 1 instance(s)",
        "shift 10% of traffic to 1.1.0",
        "analyse for 30s",
        "shift 50% of traffic to 1.1.0",
        "gate canary-50: wait for approval",
        "shift 100% of traffic to 1.1.0",
        "post-deployment checks",
        "retire 1.0.0",
    ]
    .map(String::from)
    .to_vec();
    let mut m = Model::new("alice", false);
    m.set_rows(vec![
        Row {
            deployment: "shop".into(),
            run: 7,
            version: "1.1.0".into(),
            environment: "prod".into(),
            strategy: crate::spec::Strategy::Canary,
            status: crate::store::Status::WaitingApproval,
            live: true,
            finished: false,
            reason: None,
            initiator: "bob".into(),
            started: at("11:55:40"),
            snapshot: Some(snapshot()),
            plan,
            detail: Some(live),
        },
        Row {
            deployment: "payments".into(),
            run: 3,
            version: "2.0.0".into(),
            environment: "staging".into(),
            strategy: crate::spec::Strategy::Rolling,
            status: crate::store::Status::RolledBack,
            live: true,
            finished: true,
            reason: Some("rolled back to 1.9.0: metric error_rate failed".into()),
            initiator: "carol".into(),
            started: at("09:12:00"),
            snapshot: None,
            plan: Vec::new(),
            detail: None,
        },
        Row {
            deployment: "search".into(),
            run: 5,
            version: "0.9.1".into(),
            environment: "prod".into(),
            strategy: crate::spec::Strategy::BlueGreen,
            status: crate::store::Status::Paused,
            live: false,
            finished: false,
            reason: Some("paused by alice: interrupted".into()),
            initiator: "alice".into(),
            started: at("10:40:00"),
            snapshot: None,
            plan: Vec::new(),
            detail: None,
        },
    ]);
    m.now = parse_ts("2026-11-26T12:01:21Z");
    m.minute = parse_ts("2026-11-26T12:01:00Z");
    use crate::store::Status;
    let h = |run, dep: &str, outcome: Status, day: &str, dur| HistRow {
        run,
        deployment: dep.into(),
        version: format!("1.{run}.0"),
        environment: "prod".into(),
        strategy: crate::spec::Strategy::Canary,
        outcome,
        finished: outcome != Status::WaitingApproval,
        started: parse_ts(&format!("2026-11-{day}T09:30:00Z")),
        duration_s: Some(dur),
        initiator: "alice".into(),
        reason: None,
        kind: crate::store::RunKind::Deploy,
        finished_at: None,
        changed_at: None,
    };
    let mut history = vec![h(7, "shop", Status::WaitingApproval, "26", 0)];
    // Eight weeks of runs before it: three services through staging and production, with
    // rollbacks, failures and (for shop) the time each change was made.
    let end = parse_ts("2026-11-26T09:00:00Z").unwrap_or_default();
    for day in 0..56i64 {
        for (i, dep) in ["shop", "payments", "search"].iter().enumerate() {
            let n = day * 3 + i as i64;
            if (day * 7 + i as i64 * 3) % 5 >= 2 {
                continue;
            }
            let outcome = match n % 23 {
                0 => Status::Failed,
                k if k % 9 == 4 => Status::RolledBack,
                _ => Status::Succeeded,
            };
            let started = end - chrono::Duration::days(day) - chrono::Duration::hours(i as i64 * 2);
            let took = 120 + (n * 37) % 600;
            let mut r = h(0, dep, outcome, "26", took);
            r.environment = if n % 2 == 0 { "production" } else { "staging" }.into();
            r.started = Some(started);
            r.finished_at = Some(started + chrono::Duration::seconds(took));
            r.changed_at = (*dep == "shop").then(|| started - chrono::Duration::hours(1 + n % 30));
            history.push(r);
        }
    }
    // Numbered as the store would, newest highest.
    let n = history.len() as i64;
    for (i, r) in history.iter_mut().enumerate() {
        r.run = n - i as i64;
    }
    m.set_history(history);
    m
}

/// A pod as the Kubernetes provider reports it.
fn pod(
    (rev, version): (&str, &str),
    id: &str,
    phase: &str,
    ready: bool,
    restarts: u32,
    age_s: u64,
    detail: Option<&str>,
) -> InstanceHealth {
    InstanceHealth {
        component: "api".into(),
        revision: rev.into(),
        version: version.into(),
        status: InstanceStatus {
            id: id.into(),
            ready,
            unhealthy: detail.is_some() && !ready && phase != "Pending",
            restarts,
            detail: detail.map(String::from),
            probe: "http".into(),
            last_latency_ms: None,
            consecutive_failures: 0,
            phase: Some(phase.into()),
            age_s: Some(age_s),
        },
    }
}

/// A canary on Kubernetes without a mesh: 20% asked of four replicas is one pod, 25% reached;
/// its pod crash-loops, one stable pod cannot be scheduled, another restarted once.
fn kube_row() -> Row {
    let (old, new) = (("api@1.0.0.r4", "1.0.0"), ("api@2.0.0.r5", "2.0.0"));
    let weights = vec![
        Weight {
            revision: old.0.into(),
            version: old.1.into(),
            weight: 80,
            achieved: Some(75.0),
        },
        Weight {
            revision: new.0.into(),
            version: new.1.into(),
            weight: 20,
            achieved: Some(25.0),
        },
    ];
    let event = |ts: &str, kind| Event {
        ts: ts.into(),
        deployment: "api".into(),
        run: 9,
        kind,
    };
    let events = [
        event(
            "2026-11-26T12:00:41Z",
            EventKind::StepStarted {
                step: 2,
                component: "api".into(),
                description: "shift 20% of traffic to 2.0.0".into(),
            },
        ),
        event(
            "2026-11-26T12:00:42Z",
            EventKind::TrafficShifted {
                component: "api".into(),
                weights: weights.clone(),
            },
        ),
        event(
            "2026-11-26T12:01:12Z",
            EventKind::InstanceRestarted {
                component: "api".into(),
                instance: "api-b41e7c0a9f-6c4d9b7f8-x2k8p".into(),
                restarts: 5,
                detail: "CrashLoopBackOff: container api restarted 5 times, last exit code 1"
                    .into(),
            },
        ),
    ];
    let snapshot = Snapshot {
        deployment: "api".into(),
        run: 9,
        version: "2.0.0".into(),
        strategy: crate::spec::Strategy::Canary,
        environment: "prod".into(),
        status: Status::Progressing,
        step: 3,
        steps: 6,
        step_description: "analyse for 1m".into(),
        gate: None,
        gate_view: None,
        traffic: vec![ComponentTraffic {
            component: "api".into(),
            weights,
            measured_rps: [(old.0.to_string(), 31.0), (new.0.to_string(), 9.2)]
                .into_iter()
                .collect(),
        }],
        instances: vec![
            pod(
                old,
                "api-5f0c2a91d3-7d9f8c6b5-2xkqp",
                "Running",
                true,
                0,
                4 * 86400,
                None,
            ),
            pod(
                old,
                "api-5f0c2a91d3-7d9f8c6b5-h8z4m",
                "Running",
                true,
                1,
                7 * 3600 + 5 * 60,
                None,
            ),
            pod(
                old,
                "api-5f0c2a91d3-7d9f8c6b5-q7wvn",
                "Pending",
                false,
                0,
                45,
                Some("Unschedulable: 0/3 nodes are available: 3 Insufficient memory."),
            ),
            pod(
                new,
                "api-b41e7c0a9f-6c4d9b7f8-x2k8p",
                "Running",
                false,
                5,
                192,
                Some("CrashLoopBackOff: container api restarted 5 times, last exit code 1"),
            ),
        ],
        last_verdicts: Vec::new(),
        reason: None,
        outcome: None,
        rolling_back: None,
    };
    Row {
        deployment: "api".into(),
        run: 9,
        version: "2.0.0".into(),
        environment: "prod".into(),
        strategy: crate::spec::Strategy::Canary,
        status: crate::store::Status::Progressing,
        live: true,
        finished: false,
        reason: None,
        initiator: "alice".into(),
        started: at("11:59:10"),
        snapshot: Some(snapshot),
        plan: [
            "pre-deployment checks",
            "start 2.0.0 with 1 instance(s)",
            "shift 20% of traffic to 2.0.0",
            "analyse for 1m",
            "shift 100% of traffic to 2.0.0",
            "retire 1.0.0",
        ]
        .map(String::from)
        .to_vec(),
        detail: Some(Live {
            events: events
                .iter()
                .filter_map(|e| crate::describe::human_line(e, 6))
                .collect(),
            series: Vec::new(),
            step_since: parse_ts("2026-11-26T12:00:41Z"),
            next_decision: parse_ts("2026-11-26T12:01:41Z"),
            gate_since: None,
            traffic: Vec::new(),
        }),
    }
}

/// The same console with a Kubernetes canary first and selected: replica-ratio weights (asked
/// and achieved) and pods in several states.
pub fn kube_model() -> Model {
    let mut m = model();
    let mut rows = m.rows.clone();
    rows.insert(0, kube_row());
    m.selected = 0;
    m.rows = Vec::new();
    m.set_rows(rows);
    m
}
