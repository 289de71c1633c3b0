//! Engine scenarios on paused tokio time: every strategy succeeds, fails at each step and rolls
//! back with traffic on the previous revision, and obeys pause/resume, approve, promote, rollback.

#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{load_spec, next_event, outcome_of, wait_status, Recorder};
use cutover::engine::{Command, Engine, EventKind, Outcome, RunHandle, RunOptions, Status};
use cutover::provider::simulated::{Fault, FaultKind, Simulated};
use cutover::provider::{Provider, RevisionKey};
use cutover::spec::{self, ProviderKind, ValidSpec};
use cutover::store::Store;

fn spec_for(strategy: &str, version: &str) -> ValidSpec {
    let text = match strategy {
        "canary" => include_str!("../specs/canary.yaml"),
        "blue-green" => include_str!("../specs/blue-green.yaml"),
        "rolling" => include_str!("../specs/rolling.yaml"),
        _ => include_str!("../specs/recreate.yaml"),
    };
    load_spec(&text.replace("'1.2.0'", &format!("'{version}'")))
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    sim: Arc<Simulated>,
}

fn world(faults: Vec<Fault>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    World {
        _dir: dir,
        store,
        sim: Arc::new(Simulated::new(faults)),
    }
}

fn engine(w: &World, provider: Arc<dyn Provider>) -> Engine {
    common::engine(&w.store, provider, Default::default())
}

fn opts(auto_approve: bool) -> RunOptions {
    RunOptions {
        dry_run: true,
        auto_approve,
        initiator: "tester".into(),
    }
}

async fn deploy(e: &Engine, spec: ValidSpec, auto: bool) -> RunHandle {
    e.start(spec, opts(auto)).await.unwrap()
}

/// World with 1.1.0 serving (a first deployment).
async fn with_v1(strategy: &str, faults: Vec<Fault>) -> World {
    let w = world(faults);
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for(strategy, "1.1.0"), true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    w
}

fn only_on(w: &World, version_prefix: &str) {
    common::only_on(&w.sim, version_prefix);
}

const STRATEGIES: [&str; 4] = ["canary", "blue-green", "rolling", "recreate"];

#[tokio::test(start_paused = true)]
async fn first_deployment_works_for_every_strategy() {
    for s in STRATEGIES {
        let w = world(vec![]);
        let e = engine(&w, w.sim.clone());
        let h = deploy(&e, spec_for(s, "1.1.0"), false).await;
        assert_eq!(h.join.await.unwrap(), Outcome::Succeeded, "{s}");
        only_on(&w, "1.1.0");
        let active = w
            .store
            .active_revision("api", "production", true)
            .unwrap()
            .unwrap();
        assert_eq!(active.version, "1.1.0");
    }
}

#[tokio::test(start_paused = true)]
async fn every_strategy_succeeds_against_a_previous_revision() {
    for s in STRATEGIES {
        let w = with_v1(s, vec![]).await;
        let e = engine(&w, w.sim.clone());
        let h = deploy(&e, spec_for(s, "1.2.0"), true).await;
        assert!(h.plan.steps.len() > 2, "{s}: a real strategy plan");
        assert_eq!(h.join.await.unwrap(), Outcome::Succeeded, "{s}");
        only_on(&w, "1.2.0");
        let revs = w.store.revisions("api", "production", true).unwrap();
        assert_eq!(revs[0].status.as_str(), "active");
        assert_eq!(revs[1].status.as_str(), "retired");
    }
}

#[tokio::test(start_paused = true)]
async fn the_seed_canary_takes_twenty_virtual_minutes() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let start = tokio::time::Instant::now();
    let wall = std::time::Instant::now();
    let h = deploy(&e, spec_for("canary", "1.2.0"), true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    let virt = start.elapsed();
    assert!(virt >= Duration::from_secs(20 * 60), "virtual {virt:?}");
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "wall {:?}",
        wall.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn failure_at_each_step_rolls_back_to_the_previous_revision() {
    for s in STRATEGIES {
        // Count the mutating calls of a clean run.
        let w = with_v1(s, vec![]).await;
        let counter = Recorder::new(w.sim.clone(), ProviderKind::Simulated);
        let e = engine(&w, counter.clone());
        let h = deploy(&e, spec_for(s, "1.2.0"), true).await;
        assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
        let total = counter.calls().len();
        assert!(total >= 3, "{s}: {total} calls");
        for fail_at in 1..=total {
            let w = with_v1(s, vec![]).await;
            let flaky = Recorder::failing_at(w.sim.clone(), fail_at);
            let e = engine(&w, flaky);
            let mut rx = e.subscribe();
            let h = deploy(&e, spec_for(s, "1.2.0"), true).await;
            let outcome = h.join.await.unwrap();
            assert_eq!(
                outcome,
                Outcome::RolledBack,
                "{s}: failing call {fail_at}/{total}"
            );
            only_on(&w, "1.1.0");
            let mut saw_failure = false;
            while let Ok(ev) = rx.try_recv() {
                if let EventKind::Failure { reason } = &ev.kind {
                    assert!(reason.contains("injected failure"), "{reason}");
                    saw_failure = true;
                }
            }
            assert!(saw_failure, "{s}: call {fail_at}");
            let revs = w.store.revisions("api", "production", true).unwrap();
            assert_eq!(revs[0].status.as_str(), "rolled_back", "{s}");
            assert_eq!(revs[1].status.as_str(), "active", "{s}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn unhealthy_or_bad_metrics_roll_back_every_strategy() {
    let faults = [
        Fault {
            version: Some("1.2.0".into()),
            kind: FaultKind::Unhealthy,
            after: Duration::ZERO,
        },
        Fault {
            version: Some("1.2.0".into()),
            kind: FaultKind::Unhealthy,
            after: Duration::from_secs(120),
        },
        Fault {
            version: Some("1.2.0".into()),
            kind: FaultKind::Metric("failure_rate".into(), 0.5),
            after: Duration::from_secs(60),
        },
    ];
    for s in STRATEGIES {
        for f in &faults {
            let w = with_v1(s, vec![f.clone()]).await;
            let e = engine(&w, w.sim.clone());
            let h = deploy(&e, spec_for(s, "1.2.0"), true).await;
            let outcome = h.join.await.unwrap();
            if s == "recreate" && f.after > Duration::ZERO {
                // Recreate finishes (no analysis window) before a late fault can be seen.
                assert_eq!(outcome, Outcome::Succeeded, "{s} {f:?}");
                only_on(&w, "1.2.0");
                continue;
            }
            assert_eq!(outcome, Outcome::RolledBack, "{s} {f:?}");
            only_on(&w, "1.1.0");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn automatic_rollback_disabled_ends_failed() {
    let w = with_v1(
        "canary",
        vec![Fault::parse("1.2.0:error_rate=0.5@3m").unwrap()],
    )
    .await;
    let e = engine(&w, w.sim.clone());
    let spec = spec_for("canary", "1.2.0")
        .amend(|s| s.rollback.automatic = false)
        .unwrap();
    let h = deploy(&e, spec, true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::Failed);
    // Traffic was left where it was: the canary still has its 10%.
    let weights = w.sim.weights("api");
    assert_eq!(
        weights.values().filter(|v| **v > 0).count(),
        2,
        "{weights:?}"
    );
    let run = w.store.find_run("my-app-v1.2.0").unwrap().unwrap();
    assert_eq!(run.outcome.map(|o| o.as_str()), Some("failed"));
    assert!(run.reason.unwrap().contains("automatic rollback is off"));
}

#[tokio::test(start_paused = true)]
async fn gate_waits_for_approval_then_finishes() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    // A gate name that is not waiting is refused; the right one is accepted.
    let wrong = e
        .command(
            h.run_id,
            Command::Approve {
                gate: Some("nope".into()),
                comment: None,
            },
            "bob",
        )
        .await;
    assert!(wrong.is_err());
    let ok = e
        .command(
            h.run_id,
            Command::Approve {
                gate: Some("canary-50".into()),
                comment: Some("lgtm".into()),
            },
            "bob",
        )
        .await
        .unwrap();
    assert!(ok.contains("canary-50"));
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    only_on(&w, "1.2.0");
}

#[tokio::test(start_paused = true)]
async fn reject_at_gate_rolls_back() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    e.command(
        h.run_id,
        Command::Reject {
            reason: "not today".into(),
        },
        "carol",
    )
    .await
    .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    only_on(&w, "1.1.0");
}

#[tokio::test(start_paused = true)]
async fn pause_holds_the_run_and_resume_continues() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), true).await;
    wait_status(&e, h.run_id, Status::Progressing).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    e.command(h.run_id, Command::Pause, "alice").await.unwrap();
    assert!(
        e.command(h.run_id, Command::Pause, "alice").await.is_err(),
        "double pause is refused"
    );
    let step_at_pause = e.snapshots().borrow().get(&h.run_id).unwrap().step;
    // A long wait changes nothing while paused.
    tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    let snap = e.snapshots().borrow().get(&h.run_id).unwrap().clone();
    assert_eq!(snap.status, Status::Paused);
    assert_eq!(snap.step, step_at_pause);
    e.command(h.run_id, Command::Resume, "alice").await.unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn promote_skips_the_remaining_analysis_and_gates() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let start = tokio::time::Instant::now();
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::Progressing).await;
    tokio::time::sleep(Duration::from_secs(90)).await;
    e.command(h.run_id, Command::Promote, "alice")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    assert!(
        start.elapsed() < Duration::from_secs(10 * 60),
        "promotion skipped the 20m of analysis"
    );
    only_on(&w, "1.2.0");
}

#[tokio::test(start_paused = true)]
async fn manual_rollback_during_a_run_returns_to_the_previous_revision() {
    let w = with_v1("blue-green", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("blue-green", "1.2.0"), true).await;
    wait_status(&e, h.run_id, Status::Progressing).await;
    tokio::time::sleep(Duration::from_secs(400)).await;
    e.command(h.run_id, Command::Rollback { to: None }, "alice")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    only_on(&w, "1.1.0");
}

#[tokio::test(start_paused = true)]
async fn rollback_to_a_named_version_and_refusals() {
    // 1.0.0 -> 1.1.0 -> 1.2.0 (running); roll back to 1.0.0 by name.
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    let h = deploy(&e, spec_for("canary", "1.3.0"), true).await;
    wait_status(&e, h.run_id, Status::Progressing).await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    let refused = e
        .command(
            h.run_id,
            Command::Rollback {
                to: Some("9.9.9".into()),
            },
            "alice",
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("9.9.9"), "{refused}");
    e.command(
        h.run_id,
        Command::Rollback {
            to: Some("1.1.0".into()),
        },
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    only_on(&w, "1.1.0");
    // 1.3.0 was rolled back: a later rollback may never target it.
    let spec = spec_for("canary", "1.1.0");
    let run = w.store.find_run("my-app-v1.2.0").unwrap().unwrap();
    let err = e
        .start_rollback(
            spec.clone(),
            true,
            run.run_id,
            Some("1.3.0".into()),
            "alice",
        )
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("rolled_back"), "{err}");
    // Rolling back the finished deployment to 1.2.0 (good, retired) works.
    let h = e
        .start_rollback(spec, true, run.run_id, Some("1.2.0".into()), "alice")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    only_on(&w, "1.2.0");
}

#[tokio::test(start_paused = true)]
async fn progress_deadline_rolls_back() {
    // Instances never become ready (but are not reported unhealthy either): the deadline decides.
    let w = with_v1("rolling", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let spec = spec_for("rolling", "1.2.0")
        .amend(|s| {
            let hc = s.components[0].health_check.as_mut().unwrap();
            hc.initial_delay_seconds = cutover::spec::Secs::from_secs(3600);
        })
        .unwrap();
    let h = deploy(&e, spec, true).await;
    let mut rx = e.subscribe();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    let mut reason = String::new();
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Failure { reason: r } = ev.kind {
            reason = r;
        }
    }
    assert!(reason.contains("progress deadline"), "{reason}");
    only_on(&w, "1.1.0");
}

#[tokio::test(start_paused = true)]
async fn rollback_timeout_ends_failed() {
    // Recreate stops 1.1.0 first; 1.2.0 is unhealthy; 1.1.0 needs 40s to be ready again, but the
    // rollback may take only 1s: the run ends failed (a rollback is never rolled back).
    let w = with_v1("recreate", vec![Fault::parse("1.2.0:unhealthy").unwrap()]).await;
    let e = engine(&w, w.sim.clone());
    let spec = spec_for("recreate", "1.2.0")
        .amend(|s| s.rollback.timeout = cutover::spec::Millis(1000))
        .unwrap();
    let h = deploy(&e, spec, true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::Failed);
    let run = w.store.find_run("my-app-v1.2.0").unwrap().unwrap();
    let reason = run.reason.unwrap();
    assert!(reason.contains("did not finish within 1s"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn the_journal_records_where_a_run_stood() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    // Read the store as another process would.
    let run = w.store.run(h.run_id).unwrap().unwrap();
    assert_eq!(run.status.as_str(), "waiting_approval");
    assert_eq!(run.step, 6);
    let events = w.store.events(h.run_id, 0).unwrap();
    assert_eq!(events.first().unwrap().kind, "started");
    assert_eq!(events.last().unwrap().kind, "gate_waiting");
    e.command(
        h.run_id,
        Command::Approve {
            gate: None,
            comment: None,
        },
        "bob",
    )
    .await
    .unwrap();
    h.join.await.unwrap();
    let events = w.store.events(h.run_id, 0).unwrap();
    assert_eq!(events.last().unwrap().kind, "finished");
}

fn with_metric_source(spec: ValidSpec, source: &str) -> ValidSpec {
    let text = format!(
        "
id: x
name: x
version: '1'
strategy: canary
environment: e
components: [{{id: api}}]
infrastructure: {{provider: simulated}}
metadata:
  canaryConfig:
    metrics:
      - {{name: m, threshold: 1, operator: lt, source: {source}}}
"
    );
    let parsed = spec::load_str(&text).unwrap_or_else(|d| panic!("{d:?}"));
    spec.amend(|s| {
        let cfg = s.metadata.canary_config.as_mut().unwrap();
        cfg.metrics = parsed.metadata.canary_config.clone().unwrap().metrics;
        cfg.progression_rules.clear();
    })
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_metrics_source_outage_pauses_rather_than_promotes() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let mut spec = spec_for("canary", "1.2.0");
    spec = with_metric_source(spec, "{type: exec, command: [sh, -c, 'exit 7']}");
    let mut rx = e.subscribe();
    let h = deploy(&e, spec, true).await;
    wait_status(&e, h.run_id, Status::Paused).await;
    let snap = e.snapshots().borrow().get(&h.run_id).unwrap().clone();
    let reason = snap.reason.clone().unwrap();
    assert!(
        reason.contains("could not be measured 4 times in a row"),
        "{reason}"
    );
    assert!(
        reason.contains("exit status: 7"),
        "the command's own failure: {reason}"
    );
    // Every measurement was an error, never a pass, with its counts.
    let mut errors = 0;
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Analysis { verdicts, .. } = &ev.kind {
            for v in verdicts.iter().filter(|v| v.signal == "m") {
                assert_eq!(v.judgement, cutover::engine::Judgement::Error, "{v:?}");
                let c = v.counts.clone().unwrap();
                assert_eq!(c.error_limit, 4);
                errors += 1;
            }
        }
    }
    assert!(errors >= 4);
    // The canary still has its first stage's traffic: nothing promoted, nothing rolled back.
    let weights = w.sim.weights("api");
    assert_eq!(
        weights.values().filter(|v| **v > 0).count(),
        2,
        "{weights:?}"
    );
    e.command(h.run_id, Command::Rollback { to: None }, "alice")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn an_exec_metric_source_judges_the_canary() {
    // The canary's value (from an exec source that sees CUTOVER_VERSION) fails the threshold.
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let mut spec = spec_for("canary", "1.2.0");
    spec = with_metric_source(
        spec,
        "{type: exec, command: [sh, -c, 'if [ \"$CUTOVER_VERSION\" = 1.2.0 ]; then echo 5; else echo 0.5; fi']}",
    );
    let mut rx = e.subscribe();
    let h = deploy(&e, spec, true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    let mut seen = None;
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Finished { reason, .. } = &ev.kind {
            seen = Some(reason.clone());
        }
        if let EventKind::Analysis { verdicts, .. } = &ev.kind {
            if let Some(v) = verdicts
                .iter()
                .find(|v| v.signal == "m" && v.value.is_some())
            {
                assert_eq!(v.value, Some(5.0));
                assert_eq!(v.baseline, Some(0.5), "the baseline is measured too");
            }
        }
    }
    let reason = seen.unwrap();
    assert!(
        reason.contains("m = 5") && reason.contains("must be < 1"),
        "{reason}"
    );
}

fn with_validation(spec: ValidSpec, block: &str) -> ValidSpec {
    let text = format!(
        "
id: x
name: x
version: '1'
strategy: recreate
environment: e
components: [{{id: api}}]
infrastructure: {{provider: simulated}}
validation:
{block}
"
    );
    let parsed = spec::load_str(&text).unwrap_or_else(|d| panic!("{d:?}"));
    spec.amend(|s| s.validation = parsed.validation.clone())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failing_pre_deployment_check_stops_before_any_change() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let mut spec = spec_for("canary", "1.2.0");
    spec = with_validation(spec, "  preDeployment:\n    - {name: migrations applied, type: exec, command: [sh, -c, 'exit 1']}");
    let before = w.sim.revisions("api");
    let h = deploy(&e, spec, true).await;
    assert_eq!(h.plan.steps[0].action, cutover::plan::Action::PreChecks);
    assert_eq!(h.join.await.unwrap(), Outcome::Failed);
    assert_eq!(w.sim.revisions("api"), before, "nothing was started");
    only_on(&w, "1.1.0");
    let run = w.store.find_run("my-app-v1.2.0").unwrap().unwrap();
    let reason = run.reason.unwrap();
    assert!(
        reason.contains("pre-deployment check failed: migrations applied"),
        "{reason}"
    );
    assert!(reason.contains("nothing was changed"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_post_deployment_check_rolls_back() {
    let w = with_v1("blue-green", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let mut spec = spec_for("blue-green", "1.2.0");
    spec = with_validation(
        spec,
        "  preDeployment:\n    - {type: exec, command: ['true']}\n  postDeployment:\n    - {name: smoke test, type: exec, command: [sh, -c, 'echo broken >&2; exit 2']}",
    );
    let mut rx = e.subscribe();
    let h = deploy(&e, spec, true).await;
    let post = h
        .plan
        .steps
        .iter()
        .position(|s| s.action == cutover::plan::Action::PostChecks)
        .unwrap();
    let retire = h
        .plan
        .steps
        .iter()
        .position(|s| s.action == cutover::plan::Action::RetireOld)
        .unwrap();
    assert!(
        post < retire,
        "post-deployment checks run while the old revision still runs"
    );
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    only_on(&w, "1.1.0");
    let mut checks = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Checks {
            category,
            passed,
            results,
        } = ev.kind
        {
            checks.push((category, passed, results));
        }
    }
    assert_eq!(checks.len(), 2);
    assert!(checks[0].1, "pre-deployment passed");
    assert!(!checks[1].1);
    assert!(
        checks[1].2[0].evidence.contains("broken"),
        "{:?}",
        checks[1].2[0]
    );
}

#[tokio::test(start_paused = true)]
async fn the_statistical_judge_rolls_back_a_slower_canary_through_the_score() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let mut spec = spec_for("canary", "1.2.0");
    // Latency-like samples: the canary about twice the baseline, with noise.
    spec = with_metric_source(
        spec,
        "{type: exec, command: [sh, -c, 'n=$(od -An -N1 -tu1 /dev/urandom | tr -d \" \"); if [ \"$CUTOVER_VERSION\" = 1.2.0 ]; then echo $((100 + n % 20)); else echo $((50 + n % 20)); fi']}, judge: mann-whitney",
    );
    let mut rx = e.subscribe();
    let h = deploy(&e, spec, true).await;
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    let mut reason = String::new();
    let mut saw_interval = false;
    while let Ok(ev) = rx.try_recv() {
        match &ev.kind {
            EventKind::Finished { reason: r, .. } => reason = r.clone(),
            EventKind::Analysis { verdicts, .. } => {
                for v in verdicts
                    .iter()
                    .filter(|v| v.signal == "m" && v.judgement == cutover::engine::Judgement::Fail)
                {
                    let (lo, hi) = v.interval.expect("an interval");
                    assert!(lo > 0.0 && hi > lo, "{v:?}");
                    assert!(v.statistical);
                    saw_interval = true;
                }
            }
            _ => {}
        }
    }
    assert!(saw_interval);
    assert!(reason.contains("canary score 0"), "{reason}");
}

// ---- adopting an interrupted run ----

/// A real (not dry) run on the simulated provider: only such runs can be taken over.
fn live_opts(auto_approve: bool) -> RunOptions {
    RunOptions {
        dry_run: false,
        auto_approve,
        initiator: "alice".into(),
    }
}

/// World with 1.1.0 serving, deployed for real (not a dry run) on the simulated platform.
async fn with_v1_live(strategy: &str) -> World {
    let w = world(vec![]);
    let e = engine(&w, w.sim.clone());
    let h = e
        .start(spec_for(strategy, "1.1.0"), live_opts(true))
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    assert!(w
        .store
        .active_revision("api", "production", false)
        .unwrap()
        .is_some());
    w
}

/// The journal of a run, as another process reads it from the store.
fn journal(w: &World, run: i64) -> Vec<EventKind> {
    common::journal_rows(&w.store, run)
        .into_iter()
        .map(|(kind, ev)| {
            assert_eq!(ev.kind.name(), kind);
            ev.kind
        })
        .collect()
}

/// The weights given to `revision` by every traffic shift in these events.
fn weights_of(events: &[EventKind], revision: &str) -> Vec<u32> {
    events
        .iter()
        .filter_map(|k| match k {
            EventKind::TrafficShifted { weights, .. } => weights
                .iter()
                .find(|w| w.revision == revision)
                .map(|w| w.weight),
            _ => None,
        })
        .collect()
}

fn steps_started(events: &[EventKind]) -> Vec<usize> {
    events
        .iter()
        .filter_map(|k| match k {
            EventKind::StepStarted { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

/// The process that owned `h` goes away: it lets go of the run in the store and its task ends.
async fn abandon(w: &World, h: RunHandle) {
    w.store.release_run(h.run_id).unwrap();
    h.join.abort();
    assert!(h.join.await.unwrap_err().is_cancelled());
}

/// How long (virtual time) to wait for an awaited event.
const HOUR: Duration = Duration::from_secs(3600);

/// Not a process: above the largest pid Linux hands out (2^22).
const DEAD_PID: i64 = 5_000_000;

#[tokio::test(start_paused = true)]
async fn an_adopted_canary_goes_on_from_its_step_and_finishes() {
    let w = with_v1_live("canary").await;
    let old_key = w
        .store
        .active_revision("api", "production", false)
        .unwrap()
        .unwrap()
        .rev_key;
    let a = engine(&w, w.sim.clone());
    let mut a_events = a.subscribe();
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    let run = h.run_id;
    let new_key = w.store.run_revisions(run).unwrap()[0].rev_key.clone();
    let first = next_event(&mut a_events, run, HOUR, |k| match k {
        EventKind::TrafficShifted { weights, .. } => Some(weights.clone()),
        _ => None,
    })
    .await;
    let shifted = first.iter().find(|x| x.revision == new_key).unwrap().weight;
    assert_eq!(shifted, 10, "{first:?}");
    // A while into the first stage's analysis, alice pauses and her process goes away.
    tokio::time::sleep(Duration::from_secs(90)).await;
    a.command(run, Command::Pause, "alice").await.unwrap();
    let at_pause = w.store.run(run).unwrap().unwrap();
    assert_eq!(at_pause.status.as_str(), "paused");
    let step = at_pause.step as usize;
    assert!(step >= 2, "paused after the first shift, at step {step}");
    let analyse = &h.plan.steps[step].action;
    assert!(
        matches!(analyse, cutover::plan::Action::Analyse { .. }),
        "{analyse:?}"
    );
    abandon(&w, h).await;
    drop(a);
    let before = journal(&w, run).len();
    assert_eq!(w.sim.weights("api")[&RevisionKey(new_key.clone())], 10);

    // Bob's engine, on the same store and the same platform, takes it over.
    let rec = Recorder::new(w.sim.clone(), ProviderKind::Simulated);
    let b = engine(&w, rec.clone());
    let mut b_events = b.subscribe();
    let h = b.adopt(run, "bob").await.unwrap();
    assert_eq!(h.run_id, run);
    assert_eq!(h.deployment, "my-app-v1.2.0");
    assert_eq!(b.owned_runs(), vec![run]);
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.owner_pid, Some(std::process::id() as i64));
    let by = next_event(&mut b_events, run, HOUR, |k| match k {
        EventKind::Resumed { by } => Some(by.clone()),
        _ => None,
    })
    .await;
    assert_eq!(by, "bob");
    // The stage with a manual gate (canary-50) waits for bob.
    wait_status(&b, run, Status::WaitingApproval).await;
    b.command(
        run,
        Command::Approve {
            gate: Some("canary-50".into()),
            comment: None,
        },
        "bob",
    )
    .await
    .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.2.0");
    assert!(b.owned_runs().is_empty());

    let all = journal(&w, run);
    let after = &all[before..];
    assert_eq!(
        after.first(),
        Some(&EventKind::Resumed { by: "bob".into() }),
        "the adopted part of the journal begins with bob's resume"
    );
    let started = all
        .iter()
        .filter(|k| matches!(k, EventKind::Started { .. }))
        .count();
    assert_eq!(started, 1, "the run was not started again");
    // It went on from the step it was in (that step runs again), never from the start.
    let resumed_steps = steps_started(after);
    assert_eq!(resumed_steps.first(), Some(&step), "{resumed_steps:?}");
    assert!(
        resumed_steps.iter().all(|s| *s >= step),
        "{resumed_steps:?}"
    );
    assert_eq!(
        steps_started(&all).iter().filter(|s| **s == 0).count(),
        1,
        "the canary was started once"
    );
    // Traffic went on upward from where alice left it: 10 -> 50 -> 100.
    assert_eq!(weights_of(&all, &new_key), vec![10, 50, 100]);
    assert_eq!(weights_of(after, &new_key), vec![50, 100]);
    // On the platform, bob's engine scaled the running canary up; it never started it afresh.
    let calls = rec.calls();
    assert_eq!(
        calls,
        vec![
            format!("apply {new_key} x2"),
            format!("weights {old_key}=50,{new_key}=50"),
            format!("apply {new_key} x3"),
            format!("weights {old_key}=0,{new_key}=100"),
            format!("remove {old_key}"),
        ]
    );
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.outcome.map(|o| o.as_str()), Some("succeeded"));
    assert_eq!(row.owner_pid, None);
    let revs = w.store.revisions("api", "production", false).unwrap();
    assert_eq!(revs[0].rev_key, new_key);
    assert_eq!(revs[0].status.as_str(), "active");
    assert_eq!(revs[1].rev_key, old_key);
    assert_eq!(revs[1].status.as_str(), "retired");
    assert!(all.iter().any(|k| matches!(
        k,
        EventKind::GateApproved { by, .. } if by == "bob"
    )));
}

#[tokio::test(start_paused = true)]
async fn an_adopted_run_waiting_at_a_gate_waits_again_until_approved() {
    let w = with_v1_live("canary").await;
    let a = engine(&w, w.sim.clone());
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    let run = h.run_id;
    wait_status(&a, run, Status::WaitingApproval).await;
    let gate_step = w.store.run(run).unwrap().unwrap().step;
    assert_eq!(gate_step, 6);
    // Alice's process dies at the gate (not paused).
    abandon(&w, h).await;
    drop(a);
    let weights_then = w.sim.weights("api");

    let b = engine(&w, w.sim.clone());
    let h = b.adopt(run, "bob").await.unwrap();
    wait_status(&b, run, Status::WaitingApproval).await;
    // It waits there, with the traffic where it was, however long nobody approves.
    tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    let snap = b.snapshots().borrow().get(&run).unwrap().clone();
    assert_eq!(snap.status, Status::WaitingApproval);
    assert_eq!(snap.step, 6);
    assert_eq!(snap.gate.as_deref(), Some("canary-50"));
    assert!(!h.join.is_finished());
    assert_eq!(w.sim.weights("api"), weights_then);
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.status.as_str(), "waiting_approval");
    assert_eq!(row.step, 6);
    // The gate the snapshot names is the one that is approved.
    let answer = b
        .command(
            run,
            Command::Approve {
                gate: Some("canary-50".into()),
                comment: Some("after the takeover".into()),
            },
            "bob",
        )
        .await
        .unwrap();
    assert!(answer.contains("canary-50"), "{answer}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.2.0");
    let all = journal(&w, run);
    let waits = all
        .iter()
        .filter(|k| matches!(k, EventKind::GateWaiting { gate, .. } if gate == "canary-50"))
        .count();
    assert_eq!(
        waits, 2,
        "the gate was waited at by alice's and by bob's engine"
    );
    let resumed = all
        .iter()
        .position(|k| *k == EventKind::Resumed { by: "bob".into() })
        .expect("a resumed event by bob");
    let approved = all
        .iter()
        .position(|k| matches!(k, EventKind::GateApproved { by, .. } if by == "bob"))
        .expect("bob approved");
    assert!(resumed < approved);
    assert_eq!(steps_started(&all[resumed..]).first(), Some(&6));
}

#[tokio::test(start_paused = true)]
async fn adopting_a_run_of_a_dead_process_and_rolling_it_back() {
    // The owner died without letting go: its pid is recorded but no longer runs.
    let w = with_v1_live("canary").await;
    let a = engine(&w, w.sim.clone());
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    let run = h.run_id;
    wait_status(&a, run, Status::Progressing).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    a.command(run, Command::Pause, "alice").await.unwrap();
    abandon(&w, h).await;
    drop(a);
    // Another process claims it and dies.
    assert!(w.store.claim_run(run, DEAD_PID).unwrap().is_some());
    assert_eq!(w.store.run(run).unwrap().unwrap().owner_pid, Some(DEAD_PID));

    let b = engine(&w, w.sim.clone());
    let h = b.adopt(run, "bob").await.unwrap();
    assert_eq!(
        w.store.run(run).unwrap().unwrap().owner_pid,
        Some(std::process::id() as i64)
    );
    wait_status(&b, run, Status::Progressing).await;
    // The rebuilt run knows the previous revision: a rollback returns all traffic to it.
    b.command(run, Command::Rollback { to: None }, "bob")
        .await
        .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");
    let revs = w.store.revisions("api", "production", false).unwrap();
    assert_eq!(revs[0].status.as_str(), "rolled_back");
    assert_eq!(revs[1].status.as_str(), "active");
}

#[tokio::test(start_paused = true)]
async fn adoption_is_refused_for_owned_finished_dry_rollback_and_foreign_runs() {
    let w = with_v1_live("canary").await;
    let b = engine(&w, w.sim.clone());
    let refused = |r: Result<RunHandle, cutover::engine::EngineError>| match r {
        Ok(h) => panic!("run {} was taken over", h.run_id),
        Err(cutover::engine::EngineError::Refused(msg)) => msg.to_string(),
        Err(e) => panic!("not a refusal: {e}"),
    };

    // No such run.
    let msg = refused(b.adopt(9_999, "bob").await);
    assert!(msg.contains("9999"), "{msg}");

    // A finished run (1.1.0's; every version of the seed spec has the id my-app-v1.2.0).
    let v1 = w.store.find_run("my-app-v1.2.0").unwrap().unwrap();
    assert_eq!(v1.version, "1.1.0");
    assert!(v1.is_finished());
    let msg = refused(b.adopt(v1.run_id, "bob").await);
    assert!(msg.contains("finished"), "{msg}");
    let row = w.store.run(v1.run_id).unwrap().unwrap();
    assert_eq!(row.outcome.map(|o| o.as_str()), Some("succeeded"));
    assert_eq!(row.owner_pid, None);

    // A run another live process owns (our parent process stands in for it).
    let a = engine(&w, w.sim.clone());
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    let run = h.run_id;
    wait_status(&a, run, Status::Progressing).await;
    a.command(run, Command::Pause, "alice").await.unwrap();
    abandon(&w, h).await;
    let other = std::os::unix::process::parent_id() as i64;
    assert!(cutover::store::pid_alive(other));
    assert!(w.store.claim_run(run, other).unwrap().is_some());
    let msg = refused(b.adopt(run, "bob").await);
    assert!(msg.contains("another process runs it"), "{msg}");
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.owner_pid, Some(other), "the owner keeps its run");
    assert_eq!(row.status.as_str(), "paused");
    assert!(b.owned_runs().is_empty());
    // Once that process lets go, the run can be taken over (and is rolled back here).
    w.store.release_run(run).unwrap();
    let h = b.adopt(run, "bob").await.unwrap();
    b.command(run, Command::Rollback { to: None }, "bob")
        .await
        .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");

    // A dry run: its world was its own process's simulation (here too: not the shared one).
    let own_world = engine(&w, Arc::new(Simulated::new(vec![])));
    let h = own_world
        .start(spec_for("canary", "1.2.0"), opts(false))
        .await
        .unwrap();
    let dry = h.run_id;
    wait_status(&own_world, dry, Status::Progressing).await;
    own_world
        .command(dry, Command::Pause, "alice")
        .await
        .unwrap();
    abandon(&w, h).await;
    let msg = refused(b.adopt(dry, "bob").await);
    assert!(msg.contains("dry run"), "{msg}");
    let row = w.store.run(dry).unwrap().unwrap();
    assert_eq!(row.owner_pid, None, "a refused run is let go again");
    assert!(!row.is_finished());
    assert!(b.owned_runs().is_empty());

    // A run on another provider.
    let h = a
        .start(spec_for("canary", "1.3.0"), live_opts(false))
        .await
        .unwrap();
    let foreign = h.run_id;
    wait_status(&a, foreign, Status::Progressing).await;
    a.command(foreign, Command::Pause, "alice").await.unwrap();
    abandon(&w, h).await;
    let elsewhere = engine(&w, Recorder::new(w.sim.clone(), ProviderKind::Local));
    let msg = refused(elsewhere.adopt(foreign, "bob").await);
    assert!(
        msg.contains("provider `simulated`") && msg.contains("`local`"),
        "{msg}"
    );
    assert_eq!(w.store.run(foreign).unwrap().unwrap().owner_pid, None);
    assert!(elsewhere.owned_runs().is_empty());
    // The right engine still can; roll it back to leave 1.1.0 serving.
    let h = b.adopt(foreign, "bob").await.unwrap();
    b.command(foreign, Command::Rollback { to: None }, "bob")
        .await
        .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");

    // A rollback run: it is never resumed, only rolled back anew.
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(true))
        .await
        .unwrap();
    let deployed = h.run_id;
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    let h = a
        .start_rollback(spec_for("canary", "1.2.0"), false, deployed, None, "alice")
        .await
        .unwrap();
    let back = h.run_id;
    abandon(&w, h).await;
    assert!(!w.store.run(back).unwrap().unwrap().is_finished());
    // Its intent was recorded before it could act: it is taken over as the rollback it was.
    let h = b.adopt(back, "bob").await.unwrap();
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");
    let row = w.store.run(back).unwrap().unwrap();
    assert_eq!(row.outcome.map(|o| o.as_str()), Some("rolled_back"));
    assert_eq!(row.owner_pid, None);
}

#[tokio::test(start_paused = true)]
async fn a_run_taken_over_while_rolling_back_goes_on_rolling_back() {
    // Issue 11, finding 1: a gradual rollback killed after its first step was taken over as a
    // forward rollout and ended `succeeded` with the bad version at 100%.
    let w = with_v1_live("canary").await;
    let old_key = w
        .store
        .active_revision("api", "production", false)
        .unwrap()
        .unwrap()
        .rev_key;
    let gradual = spec_for("canary", "1.2.0")
        .amend(|s| {
            s.rollback.strategy.kind = cutover::spec::RollbackKind::Gradual;
            s.rollback.strategy.steps = vec![8, 4, 0];
            s.rollback.strategy.interval = cutover::spec::Millis(4000);
        })
        .unwrap();
    let a = engine(&w, w.sim.clone());
    let mut a_events = a.subscribe();
    let h = a.start(gradual, live_opts(false)).await.unwrap();
    let run = h.run_id;
    let new_key = w.store.run_revisions(run).unwrap()[0].rev_key.clone();
    next_event(&mut a_events, run, HOUR, |k| match k {
        EventKind::TrafficShifted { .. } => Some(()),
        _ => None,
    })
    .await;
    a.command(run, Command::Rollback { to: None }, "alice")
        .await
        .unwrap();
    // The first gradual step (8%) is made; the process dies while it holds.
    next_event(&mut a_events, run, HOUR, |k| match k {
        EventKind::TrafficShifted { weights, .. } => weights
            .iter()
            .find(|x| x.revision == new_key && x.weight == 8)
            .map(|_| ()),
        _ => None,
    })
    .await;
    abandon(&w, h).await;
    drop(a);
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.status.as_str(), "rolling_back");
    let before = journal(&w, run).len();

    let b = engine(&w, w.sim.clone());
    let h = b.adopt(run, "bob").await.unwrap();
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");
    let all = journal(&w, run);
    let after = &all[before..];
    assert_eq!(
        after.first(),
        Some(&EventKind::Resumed { by: "bob".into() })
    );
    assert!(
        steps_started(after).is_empty(),
        "no forward step after the take-over: {after:?}"
    );
    // Traffic only went down, from where alice's rollback had reached.
    assert_eq!(weights_of(&all, &new_key), vec![10, 8, 4, 0]);
    assert_eq!(weights_of(after, &new_key), vec![4, 0]);
    let finished: Vec<&EventKind> = all
        .iter()
        .filter(|k| matches!(k, EventKind::Finished { .. }))
        .collect();
    assert_eq!(finished.len(), 1, "exactly one outcome: {finished:?}");
    let row = w.store.run(run).unwrap().unwrap();
    assert_eq!(row.outcome.map(|o| o.as_str()), Some("rolled_back"));
    assert!(
        row.reason
            .as_deref()
            .unwrap_or("")
            .contains("requested by alice"),
        "the rollback's own reason: {:?}",
        row.reason
    );
    let revs = w.store.revisions("api", "production", false).unwrap();
    assert_eq!(revs[0].rev_key, new_key);
    assert_eq!(revs[0].status.as_str(), "rolled_back");
    assert_eq!(revs[1].rev_key, old_key);
    assert_eq!(revs[1].status.as_str(), "active");
}

#[tokio::test(start_paused = true)]
async fn an_engine_does_not_adopt_a_run_it_is_running() {
    let w = with_v1_live("canary").await;
    let a = engine(&w, w.sim.clone());
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    let run = h.run_id;
    wait_status(&a, run, Status::WaitingApproval).await;
    let err = a.adopt(run, "bob").await.err().expect("refused");
    assert!(err.to_string().contains("runs it"), "{err}");
    // The run is still this engine's, untouched: not resumed, not let go.
    assert_eq!(a.owned_runs(), vec![run]);
    assert_eq!(
        w.store.run(run).unwrap().unwrap().owner_pid,
        Some(std::process::id() as i64)
    );
    let resumed = journal(&w, run)
        .iter()
        .filter(|k| matches!(k, EventKind::Resumed { .. }))
        .count();
    assert_eq!(resumed, 0);
    assert_eq!(
        w.store.run(run).unwrap().unwrap().status.as_str(),
        "waiting_approval"
    );
    // Once its task is gone (the engine still lists the run's dead channel), it may.
    abandon(&w, h).await;
    let h = a.adopt(run, "alice").await.unwrap();
    wait_status(&a, run, Status::WaitingApproval).await;
    a.command(
        run,
        Command::Approve {
            gate: None,
            comment: None,
        },
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.2.0");
}

#[tokio::test(start_paused = true)]
async fn progress_deadline_applies_to_every_strategy() {
    // `metadata.progressDeadline` bounds every wait for ready instances, whatever the strategy
    // (before, only `rollingConfig.progressDeadline` could set it, so a canary waited 10 minutes).
    for s in STRATEGIES {
        let w = with_v1(s, vec![]).await;
        let e = engine(&w, w.sim.clone());
        let spec = spec_for(s, "1.2.0")
            .amend(|sp| {
                sp.metadata.progress_deadline = Some(cutover::spec::Millis(30_000));
                let hc = sp.components[0].health_check.as_mut().unwrap();
                hc.initial_delay_seconds = cutover::spec::Secs::from_secs(3600);
            })
            .unwrap_or_else(|d| panic!("{s}: {d:?}"));
        let mut rx = e.subscribe();
        let h = deploy(&e, spec, true).await;
        let outcome = h.join.await.unwrap();
        let mut reason = String::new();
        while let Ok(ev) = rx.try_recv() {
            if let EventKind::Failure { reason: r } = ev.kind {
                reason = r;
            }
        }
        assert!(
            reason.contains("progress deadline exceeded") && reason.contains("after 30s"),
            "{s}: {reason}"
        );
        // Recreate stopped 1.1.0 first and brings it back; every other strategy never left it.
        assert_ne!(outcome, Outcome::Succeeded, "{s}");
    }
    // Also written in the spec, for a canary.
    let text = include_str!("../specs/canary.yaml")
        .replace("metadata:\n", "metadata:\n  progressDeadline: 45s\n");
    let spec = spec::load_str(&text).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(spec.progress_deadline(), cutover::spec::Millis(45_000));
}

#[tokio::test(start_paused = true)]
async fn finishing_records_the_outcome_and_revisions_in_one_transaction() {
    // The store refuses to make a revision active (a full disk, a lock): nothing of the finish
    // may be half-recorded (1.1.0 retired with nothing active would plan the next deployment as a
    // first one), and the failure is reported rather than dropped.
    let w = with_v1("canary", vec![]).await;
    let conn = rusqlite::Connection::open(w.store.path()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER no_active BEFORE UPDATE OF status ON revisions
         WHEN NEW.status = 'active' BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END;",
    )
    .unwrap();
    let e = engine(&w, w.sim.clone());
    let mut rx = e.subscribe();
    let h = deploy(&e, spec_for("canary", "1.2.0"), true).await;
    let run_id = h.run_id;
    h.join.await.unwrap();
    let active = w.store.active_revision("api", "production", true).unwrap();
    assert_eq!(
        active.map(|r| r.version),
        Some("1.1.0".to_string()),
        "the old revision stays recorded as serving"
    );
    let mut reported = String::new();
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Failure { reason } = ev.kind {
            reported = reason;
        }
    }
    assert!(
        reported.contains("cannot record the outcome") && reported.contains("disk full"),
        "{reported}"
    );
    let run = w.store.run(run_id).unwrap().unwrap();
    assert_eq!(run.outcome, None, "nothing of the finish was recorded");
}

#[test]
fn a_recorded_spec_or_row_with_an_unknown_word_is_an_error_not_a_default() {
    // Plans used to send any unknown strategy to recreate (the one with downtime).
    let spec = spec_for("canary", "1.2.0");
    let json = serde_json::to_string(&spec)
        .unwrap()
        .replace("\"strategy\":\"canary\"", "\"strategy\":\"big-bang\"");
    let err = serde_json::from_str::<ValidSpec>(&json).unwrap_err();
    assert!(
        err.to_string().contains("`big-bang` is not one of"),
        "{err}"
    );
    // A store row the same way.
    let w = world(vec![]);
    let conn = rusqlite::Connection::open(w.store.path()).unwrap();
    conn.execute(
        "INSERT INTO runs (deployment, kind, name, version, strategy, environment, provider, dry_run,
           spec_json, plan_json, status, initiator, started_at, updated_at)
         VALUES ('x', 'deploy', 'x', '1', 'big-bang', 'e', 'simulated', 1, '{}', '{}', 'pending',
           'me', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        [],
    )
    .unwrap();
    let err = w.store.find_run("x").unwrap_err().to_string();
    assert!(err.contains("`big-bang` is not one of"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_command_that_names_nobody_is_refused() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    for who in ["", "  "] {
        let r = e.command(h.run_id, Command::Pause, who).await;
        assert!(
            matches!(
                r,
                Err(cutover::engine::EngineError::Refused(
                    cutover::engine::Refusal::NoActor
                ))
            ),
            "{r:?}"
        );
    }
    e.command(h.run_id, Command::Rollback { to: None }, "tester")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_command_row_is_answered_and_audited() {
    let w = with_v1("canary", vec![]).await;
    let e = Engine::new(cutover::engine::EngineConfig {
        store: w.store.clone(),
        provider: w.sim.clone(),
        signals: Arc::new(cutover::engine::Builtin::default()),
        virtual_clock: true,
        poll_store: true,
        governance: Default::default(),
        wall_clock_gates: false,
    });
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    let id = w
        .store
        .enqueue_command(h.run_id, "pause", "{not json", "mallory")
        .unwrap();
    // The poller is a real-time thread (every 200 ms).
    let mut answer = None;
    for _ in 0..50 {
        answer = w.store.command_result(id).unwrap();
        if answer.is_some() {
            break;
        }
        tokio::task::spawn_blocking(|| std::thread::sleep(std::time::Duration::from_millis(100)))
            .await
            .unwrap();
    }
    let answer = cutover::engine::refusal::decode_answer(&answer.expect("answered"));
    assert!(
        answer
            .as_ref()
            .is_err_and(|r| r.to_string().contains("unreadable command")),
        "{answer:?}"
    );
    let audit = w.store.audit().unwrap();
    assert!(
        audit.iter().any(|r| r.entry.actor == "mallory"
            && r.entry.action == "refused"
            && r.entry.run == Some(h.run_id)
            && r.entry.deployment == "my-app-v1.2.0"),
        "{audit:?}"
    );
    e.command(h.run_id, Command::Rollback { to: None }, "tester")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn one_driver_per_target() {
    let w = with_v1("canary", vec![]).await;
    let e = engine(&w, w.sim.clone());
    let h = deploy(&e, spec_for("canary", "1.2.0"), false).await;
    wait_status(&e, h.run_id, Status::WaitingApproval).await;
    // Another version, or the same spec again: refused, naming the run that drives the target.
    for v in ["1.3.0", "1.2.0"] {
        let r = e.start(spec_for("canary", v), opts(true)).await;
        match r {
            Err(cutover::engine::EngineError::Refused(cutover::engine::Refusal::Busy {
                target,
                run,
                status,
                ..
            })) => {
                assert_eq!(run, h.run_id, "{v}");
                assert_eq!(status, Status::WaitingApproval, "{v}");
                assert!(target.ends_with(":production:api"), "{target}");
            }
            other => panic!("{v}: expected busy, got {:?}", other.map(|h| h.run_id)),
        }
    }
    let refused = e
        .start(spec_for("canary", "1.3.0"), opts(true))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains(&format!("driven by run #{}", h.run_id))
            && refused.contains("cutover rollback my-app-v1.2.0"),
        "{refused}"
    );
    assert!(w
        .sim
        .revisions("api")
        .keys()
        .all(|k| !k.0.contains("1.3.0")));
    // Another environment is another target.
    let staging = spec_for("canary", "1.3.0")
        .amend(|s| s.environment = "staging".into())
        .unwrap();
    let other = e.start(staging, opts(true)).await.unwrap();
    assert_eq!(other.join.await.unwrap(), Outcome::Succeeded);
    // Once the first run ends, the target is free again.
    e.command(h.run_id, Command::Rollback { to: None }, "tester")
        .await
        .unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::RolledBack);
    let next = deploy(&e, spec_for("canary", "1.3.0"), true).await;
    assert_eq!(next.join.await.unwrap(), Outcome::Succeeded);
}

// ---- a platform's lease: one driver across machines ----

fn leased(r: Result<RunHandle, cutover::engine::EngineError>) -> String {
    match r {
        Ok(h) => panic!("run {} was started", h.run_id),
        Err(cutover::engine::EngineError::Refused(cutover::engine::Refusal::Leased(msg))) => msg,
        Err(e) => panic!("not a lease refusal: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_platform_lease_keeps_one_driver_across_machines_until_it_expires() {
    // Two machines (two state stores) drive one platform (one simulated world, one lease table).
    let lease = common::MemLease::new(Duration::from_secs(60));
    let w = with_v1_live("canary").await;
    let b_dir = tempfile::tempdir().unwrap();
    let b_store = Store::open(b_dir.path()).unwrap();
    let a = engine(&w, Recorder::leasing(w.sim.clone(), lease.clone()));
    let b = common::engine(
        &b_store,
        Recorder::leasing(w.sim.clone(), lease.clone()),
        Default::default(),
    );
    let target = "simulated:production:api";
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    wait_status(&a, h.run_id, Status::WaitingApproval).await;
    // Ten minutes at the gate, ten times the lease's time to live: renewed all along.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let holder = lease.holder(target).expect("held while a's run waits");
    assert_eq!(holder.deployment, "my-app-v1.2.0");
    assert!(
        holder
            .identity
            .contains(&w.store.path().display().to_string()),
        "{holder:?}"
    );
    // The other machine is refused, naming the holder; nothing is recorded there.
    let msg = leased(b.start(spec_for("canary", "1.3.0"), live_opts(true)).await);
    assert!(
        msg.contains(target) && msg.contains(&holder.identity),
        "{msg}"
    );
    assert!(b_store.runs(None, 10).unwrap().is_empty());
    // a's process dies: the lease is no longer renewed, and holds until it expires.
    abandon(&w, h).await;
    drop(a);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let msg = leased(b.start(spec_for("canary", "1.3.0"), live_opts(true)).await);
    assert!(msg.contains("expires in"), "{msg}");
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(lease.holder(target).is_none(), "expired");
    let h = b
        .start(spec_for("canary", "1.3.0"), live_opts(true))
        .await
        .unwrap();
    let held_by_b = lease.holder(target).expect("b holds it while it runs");
    assert!(
        held_by_b
            .identity
            .contains(&b_dir.path().display().to_string()),
        "{held_by_b:?}"
    );
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    assert!(
        lease.holder(target).is_none(),
        "given back at the run's end"
    );
}

/// Another machine's driver, as its lease names it.
fn ana() -> cutover::provider::lease::LeaseHolder {
    cutover::provider::lease::LeaseHolder {
        deployment: "my-app-v1.2.0".into(),
        identity: "ana pid 4242 on bastion-2".into(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_that_loses_its_platform_lease_is_held_not_driven() {
    let lease = common::MemLease::new(Duration::from_secs(30));
    let w = with_v1_live("canary").await;
    let a = engine(&w, Recorder::leasing(w.sim.clone(), lease.clone()));
    let target = "simulated:production:api";
    let h = a
        .start(spec_for("canary", "1.2.0"), live_opts(false))
        .await
        .unwrap();
    wait_status(&a, h.run_id, Status::WaitingApproval).await;
    // While a's API server was out of reach its lease expired, and another machine took it.
    lease.steal(target, ana());
    // The next renewal (a third of the time to live) finds it lost: the run is held.
    tokio::time::sleep(Duration::from_secs(11)).await;
    wait_status(&a, h.run_id, Status::Paused).await;
    let paused = w
        .store
        .events(h.run_id, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "paused")
        .map(|e| e.json)
        .collect::<Vec<_>>();
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert!(
        paused[0].contains("lease") && paused[0].contains("ana pid 4242 on bastion-2"),
        "{}",
        paused[0]
    );
    // An approval does not move it while it is held.
    let _ = a
        .command(
            h.run_id,
            cutover::engine::Command::Approve {
                gate: None,
                comment: None,
            },
            "bob",
        )
        .await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        a.snapshots().borrow().get(&h.run_id).map(|s| s.status),
        Some(Status::Paused),
        "still held"
    );
    // Resuming needs the lease back: refused, naming its holder, while another has it (ana
    // keeps renewing hers).
    lease.steal(target, ana());
    let refused = a
        .command(h.run_id, cutover::engine::Command::Resume, "bob")
        .await;
    match refused {
        Err(cutover::engine::EngineError::Refused(cutover::engine::Refusal::Leased(m))) => {
            assert!(m.contains("ana pid 4242 on bastion-2"), "{m}")
        }
        other => panic!("resume was not refused for the lease: {other:?}"),
    }
    abandon(&w, h).await;
}
