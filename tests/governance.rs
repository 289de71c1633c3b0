//! Governance in the engine, on paused tokio time: approval gates with a quorum of distinct
//! people and no self-approval, rejections, the escalation ladder and timeouts, roles checked for
//! commands sent straight to the engine, the `beforeStart` gate, and the audit trail (including
//! detecting tampering with the SQLite file).

#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{load_spec, next_event, outcome_of, wait_status, Recorder};
use cutover::engine::{
    Command, Engine, EngineError, EventKind, Outcome, Refusal, RunHandle, RunOptions, Snapshot,
    Status,
};
use cutover::governance::rbac::Role;
use cutover::governance::{config, Governance, GroupResolver};
use cutover::plan::Action;
use cutover::provider::simulated::Simulated;
use cutover::spec::{ProviderKind, ValidSpec};
use cutover::store::audit::{self, Broken};
use cutover::store::Store;
use tokio::time::Instant;

/// A short canary: 20% for 30s, 50% for 30s then the gate `canary-50`, then 100%.
const SPEC: &str = "
id: shop
name: shop
version: 'VERSION'
strategy: canary
environment: production
components:
  - id: api
    name: api
    version: 'VERSION'
    replicas: 2
    healthCheck: {type: http, endpoint: /health, port: 8080, periodSeconds: 5}
infrastructure:
  provider: simulated
rollback:
  enabled: true
  automatic: true
  triggers:
    - {type: health-check, condition: 'failure_rate > 0.1'}
  strategy: {type: immediate}
  timeout: 2m
metadata:
  canaryConfig:
    stages:
      - {name: canary-20, percentage: 20, duration: 30s}
      - {name: canary-50, percentage: 50, duration: 30s, autoPromote: false}
      - {name: full, percentage: 100, duration: 0}
    metrics:
      - {name: error_rate, threshold: 0.05, operator: lt}
    progressionRules:
      - {name: errors-low, condition: 'error_rate < 0.05', action: promote}
    analysisInterval: 10s
";

const GATE: &str = "canary-50";
const MIN: u64 = 60 * 1000;

fn spec_of(version: &str) -> ValidSpec {
    load_spec(&SPEC.replace("VERSION", version))
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    sim: Arc<Simulated>,
    rec: Arc<Recorder>,
    engine: Engine,
}

/// Groups as the OS would say: dave is in sre, nobody else is in any group.
fn groups() -> GroupResolver {
    Arc::new(|user: &str| {
        if user == "dave" {
            vec!["sre".to_string()]
        } else {
            Vec::new()
        }
    })
}

/// A store, the simulated platform and an engine governed by `cutover_yaml`.
fn world(cutover_yaml: &str) -> World {
    let ws = config::parse(cutover_yaml)
        .unwrap_or_else(|d| panic!("configuration does not load: {d:?}"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sim = Arc::new(Simulated::new(vec![]));
    let rec = Recorder::new(sim.clone(), ProviderKind::Simulated);
    let engine = common::engine(
        &store,
        rec.clone(),
        Governance {
            workspace: Arc::new(ws),
            groups: groups(),
        },
    );
    World {
        _dir: dir,
        store,
        sim,
        rec,
        engine,
    }
}

fn opts(initiator: &str, auto_approve: bool) -> RunOptions {
    RunOptions {
        dry_run: true,
        auto_approve,
        initiator: initiator.into(),
    }
}

/// A governed world with 1.1.0 serving, deployed by alice beforehand without governance
/// (`--auto-approve` never passes a gate whose rule the initiator alone cannot satisfy).
async fn with_v1(cutover_yaml: &str) -> World {
    let w = world(cutover_yaml);
    let before = common::engine(&w.store, w.rec.clone(), Governance::default());
    let h = before
        .start(spec_of("1.1.0"), opts("alice", true))
        .await
        .unwrap();
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.1.0");
    w.rec.clear();
    w
}

/// Start `version` as `initiator`, gates waiting for people.
async fn start(w: &World, version: &str, initiator: &str) -> RunHandle {
    w.engine
        .start(spec_of(version), opts(initiator, false))
        .await
        .unwrap()
}

fn snapshot(w: &World, run: i64) -> Snapshot {
    w.engine
        .snapshots()
        .borrow()
        .get(&run)
        .cloned()
        .unwrap_or_else(|| panic!("no snapshot of run {run}"))
}

/// The journal of a run, as the store has it.
fn journal(w: &World, run: i64) -> Vec<EventKind> {
    common::journal_rows(&w.store, run)
        .into_iter()
        .map(|(_, ev)| ev.kind)
        .collect()
}

/// Only `version` takes traffic and runs.
fn only_on(w: &World, version: &str) {
    common::only_on(&w.sim, &format!("{version}."));
}

/// The refusal's message; panics on success or any other error.
fn refused(r: Result<String, EngineError>) -> String {
    match r {
        Err(EngineError::Refused(m)) => m.to_string(),
        Ok(m) => panic!("expected a refusal, got success: {m}"),
        Err(e) => panic!("expected a refusal, got: {e}"),
    }
}

async fn approve(w: &World, run: i64, by: &str) -> Result<String, EngineError> {
    w.engine
        .command(
            run,
            Command::Approve {
                gate: None,
                comment: Some(format!("ok from {by}")),
            },
            by,
        )
        .await
}

async fn reject(w: &World, run: i64, by: &str, reason: &str) -> Result<String, EngineError> {
    w.engine
        .command(
            run,
            Command::Reject {
                reason: reason.into(),
            },
            by,
        )
        .await
}

/// The run's recorded reason.
fn reason_of(w: &World, run: i64) -> String {
    w.store
        .run(run)
        .unwrap()
        .unwrap()
        .reason
        .unwrap_or_default()
}

/// production: two distinct approvals from alice, bob, carol or group sre; not the initiator.
const QUORUM: &str = "
environments:
  - name: staging
  - name: production
    approval:
      approvers: {users: [alice, bob, carol], groups: [sre]}
      required: 2
      allowSelfApproval: false
";

/// Alice deploys 1.2.0 into QUORUM's production; she may not approve, mallory is no approver,
/// bob's approval counts once, carol's completes the quorum. Returns the run.
async fn two_approvals(w: &World) -> i64 {
    let mut rx = w.engine.subscribe();
    let h = start(w, "1.2.0", "alice").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::WaitingApproval).await;
    let s = snapshot(w, run);
    assert_eq!(s.gate.as_deref(), Some(GATE));
    let v = s.gate_view.expect("a waiting gate has a view");
    assert_eq!((v.required, v.approved_by.len()), (2, 0));

    let m = refused(approve(w, run, "alice").await);
    assert!(
        m.contains("alice started this deployment") && m.contains("allowSelfApproval: false"),
        "{m}"
    );
    let m = refused(approve(w, run, "mallory").await);
    assert!(
        m.contains("mallory is not an approver of gate canary-50 in production")
            && m.contains("approvers are users alice, bob, carol; groups sre"),
        "{m}"
    );

    let m = approve(w, run, "bob").await.unwrap();
    assert!(m.contains("1 of 2") && m.contains("1 more needed"), "{m}");
    let vote = next_event(&mut rx, run, Duration::from_secs(60), |k| match k {
        EventKind::GateVote {
            gate,
            by,
            approvals,
            required,
            ..
        } => Some((gate.clone(), by.clone(), *approvals, *required)),
        _ => None,
    })
    .await;
    assert_eq!(vote, (GATE.to_string(), "bob".to_string(), 1, 2));
    let s = snapshot(w, run);
    assert_eq!(
        s.status,
        Status::WaitingApproval,
        "one approval is not enough"
    );
    assert_eq!(s.gate.as_deref(), Some(GATE));
    let v = s.gate_view.expect("a waiting gate has a view");
    assert_eq!(v.approved_by, vec!["bob"]);
    assert_eq!(v.required, 2);
    assert!(
        v.may_approve
            .contains("users alice, bob, carol; groups sre")
            && v.may_approve.contains("except bob, alice (started it)"),
        "{}",
        v.may_approve
    );

    let m = refused(approve(w, run, "bob").await);
    assert!(
        m.contains("bob has already approved gate canary-50") && m.contains("1 of 2"),
        "{m}"
    );
    assert_eq!(snapshot(w, run).status, Status::WaitingApproval);

    let m = approve(w, run, "carol").await.unwrap();
    assert!(m.contains("approved gate canary-50"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(w, "1.2.0");
    let approved: Vec<String> = journal(w, run)
        .iter()
        .filter_map(|k| match k {
            EventKind::GateApproved { by, .. } => Some(by.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(approved, vec!["carol"], "the gate passed once, on carol's");
    run
}

#[tokio::test(start_paused = true)]
async fn a_gate_needs_a_quorum_of_distinct_approvers_never_the_initiator() {
    let w = with_v1(QUORUM).await;
    two_approvals(&w).await;

    // A member of an approving group counts like a named approver; others still may not.
    let h = start(&w, "1.3.0", "alice").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::WaitingApproval).await;
    let m = refused(approve(&w, run, "eve").await);
    assert!(m.contains("eve is not an approver"), "{m}");
    let m = approve(&w, run, "dave").await.unwrap();
    assert!(m.contains("1 of 2"), "{m}");
    assert_eq!(
        snapshot(&w, run).gate_view.unwrap().approved_by,
        vec!["dave"]
    );
    let m = approve(&w, run, "bob").await.unwrap();
    assert!(m.contains("approved gate canary-50"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.3.0");
}

#[tokio::test(start_paused = true)]
async fn one_rejection_ends_the_gate_and_rolls_back() {
    let w = with_v1(QUORUM).await;
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::WaitingApproval).await;

    let m = approve(&w, run, "carol").await.unwrap();
    assert!(m.contains("1 of 2"), "{m}");
    let m = refused(reject(&w, run, "bob", "   ").await);
    assert!(m.contains("needs a reason"), "{m}");
    let m = refused(reject(&w, run, "mallory", "I say so").await);
    assert!(m.contains("mallory is not an approver"), "{m}");
    let m = refused(reject(&w, run, "alice", "changed my mind").await);
    assert!(m.contains("alice started this deployment"), "{m}");
    assert_eq!(snapshot(&w, run).status, Status::WaitingApproval);

    let m = reject(&w, run, "bob", "error budget is spent")
        .await
        .unwrap();
    assert!(m.contains("rejected gate canary-50"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("rolled back to 1.1.0")
            && reason.contains("gate canary-50 rejected by bob: error budget is spent"),
        "{reason}"
    );
    only_on(&w, "1.1.0");
    let rejected: Vec<(String, String)> = journal(&w, run)
        .iter()
        .filter_map(|k| match k {
            EventKind::GateRejected { by, reason, .. } => Some((by.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![("bob".to_string(), "error budget is spent".to_string())]
    );
}

/// What the journal says about a gate's life, in order.
fn gate_story(w: &World, run: i64) -> Vec<String> {
    journal(w, run)
        .iter()
        .filter_map(|k| match k {
            EventKind::GateWaiting { gate, .. } => Some(format!("gate_waiting {gate}")),
            EventKind::GateVote { by, .. } => Some(format!("gate_vote {by}")),
            EventKind::GateEscalated { step, .. } => Some(format!("gate_escalated {step}")),
            EventKind::GateApproved { by, .. } => Some(format!("gate_approved {by}")),
            EventKind::GateRejected { by, .. } => Some(format!("gate_rejected {by}")),
            EventKind::RollbackStarted { .. } => Some("rollback_started".into()),
            EventKind::Finished { outcome, .. } => Some(format!("finished {}", outcome.as_str())),
            _ => None,
        })
        .collect()
}

const LADDER: &str = "
environments:
  - name: production
    approval:
      approvers: {users: [bob]}
      timeout: 2h
      escalation:
        - {after: 30m, notify: [oncall], addApprovers: {users: [carol]}}
        - {after: 2h, action: reject}
webhooks:
  - {name: oncall, url: 'http://127.0.0.1:9/hook', format: slack}
";

#[tokio::test(start_paused = true)]
async fn an_undecided_gate_walks_the_escalation_ladder_then_rejects() {
    let w = with_v1(LADDER).await;
    let mut rx = w.engine.subscribe();
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    let opened = next_event(&mut rx, run, Duration::from_secs(3600), |k| {
        matches!(k, EventKind::GateWaiting { .. }).then(Instant::now)
    })
    .await;
    let v = snapshot(&w, run)
        .gate_view
        .expect("a waiting gate has a view");
    assert_eq!(v.timeout_ms, Some(120 * MIN));
    let (what, at) = v.next_escalation.expect("the ladder's first step");
    assert_eq!(at, 30 * MIN);
    assert!(
        what.contains("notify oncall") && what.contains("add approvers users carol"),
        "{what}"
    );
    // Before the ladder widens the approvers, carol is not one.
    let m = refused(approve(&w, run, "carol").await);
    assert!(
        m.contains("carol is not an approver") && m.contains("approvers are users bob"),
        "{m}"
    );

    let (step, notify, action) = next_event(&mut rx, run, Duration::from_secs(3600), |k| match k {
        EventKind::GateEscalated {
            step,
            notify,
            action,
            ..
        } => Some((*step, notify.clone(), action.clone())),
        _ => None,
    })
    .await;
    assert_eq!(
        (step, notify, action),
        (0, vec!["oncall".to_string()], None)
    );
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(30 * 60) && waited < Duration::from_secs(31 * 60),
        "the first step came after {waited:?}"
    );
    // Carol may approve now (she doesn't): the view says so and the gate still waits.
    let s = snapshot(&w, run);
    assert_eq!(s.status, Status::WaitingApproval);
    let v = s.gate_view.expect("a waiting gate has a view");
    assert!(
        v.may_approve.contains("added by escalation: users carol"),
        "{}",
        v.may_approve
    );
    let (what, at) = v.next_escalation.expect("the ladder's second step");
    assert_eq!((what.as_str(), at), ("reject", 120 * MIN));

    // Nobody decides: the last step rejects, and the canary rolls back.
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_secs(2 * 3600) && waited < Duration::from_secs(2 * 3600 + 600),
        "the gate was decided after {waited:?}"
    );
    only_on(&w, "1.1.0");
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("gate canary-50 rejected: escalation after 2h (0 of 1 approvals): reject"),
        "{reason}"
    );
    assert_eq!(
        gate_story(&w, run),
        vec![
            "gate_waiting canary-50",
            "gate_escalated 0",
            "gate_escalated 1",
            "gate_rejected escalation",
            "rollback_started",
            "finished rolled_back",
        ]
    );
    let escalations: Vec<(String, String)> = w
        .store
        .audit()
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.run == Some(run) && r.entry.action == "gate.escalate")
        .map(|r| (r.entry.detail["step"].to_string(), r.entry.actor))
        .collect();
    assert_eq!(
        escalations,
        vec![
            ("1".to_string(), "engine".to_string()),
            ("2".to_string(), "engine".to_string())
        ],
        "the audit numbers steps from 1"
    );
}

#[tokio::test(start_paused = true)]
async fn the_ladder_can_approve_roll_back_or_just_time_out() {
    // The last step approves: the deployment goes on and succeeds.
    let w = with_v1(
        "
environments:
  - name: production
    approval:
      approvers: {users: [bob]}
      escalation:
        - {after: 1h, action: approve}
",
    )
    .await;
    let t0 = Instant::now();
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    assert!(
        t0.elapsed() >= Duration::from_secs(3600),
        "{:?}",
        t0.elapsed()
    );
    only_on(&w, "1.2.0");
    assert_eq!(
        gate_story(&w, run),
        vec![
            "gate_waiting canary-50",
            "gate_escalated 0",
            "gate_approved escalation",
            "finished succeeded",
        ]
    );
    let comment = journal(&w, run).iter().find_map(|k| match k {
        EventKind::GateApproved { comment, .. } => comment.clone(),
        _ => None,
    });
    assert_eq!(
        comment.as_deref(),
        Some("escalation after 1h (0 of 1 approvals): approve")
    );

    // The last step rolls back.
    let w = with_v1(
        "
environments:
  - name: production
    approval:
      approvers: {users: [bob]}
      escalation:
        - {after: 1h, action: rollback}
",
    )
    .await;
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    only_on(&w, "1.1.0");
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("rollback requested by escalation"),
        "{reason}"
    );
    assert_eq!(
        gate_story(&w, run),
        vec![
            "gate_waiting canary-50",
            "gate_escalated 0",
            "rollback_started",
            "finished rolled_back",
        ]
    );

    // A timeout without a ladder rejects.
    let w = with_v1(
        "
environments:
  - name: production
    approval:
      approvers: {users: [bob]}
      timeout: 1h
",
    )
    .await;
    let t0 = Instant::now();
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    assert_eq!(outcome_of(h).await, Outcome::RolledBack);
    assert!(
        t0.elapsed() >= Duration::from_secs(3600),
        "{:?}",
        t0.elapsed()
    );
    only_on(&w, "1.1.0");
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("gate canary-50 rejected: timed out after 1h with 0 of 1 approvals"),
        "{reason}"
    );
    assert_eq!(
        gate_story(&w, run),
        vec![
            "gate_waiting canary-50",
            "gate_rejected escalation",
            "rollback_started",
            "finished rolled_back",
        ]
    );
}

const RBAC: &str = "
environments:
  - name: production
    roles:
      operator: {users: [olga]}
      admin: {users: [alice]}
";

#[tokio::test(start_paused = true)]
async fn roles_are_checked_in_the_engine_for_every_command() {
    let w = with_v1(RBAC).await;

    // Without a role, vic may not even start a deployment; nothing is created or changed.
    match w.engine.start(spec_of("1.2.0"), opts("vic", false)).await {
        Err(EngineError::Refused(Refusal::Forbidden(f))) => {
            assert_eq!(f.needed, [Role::Operator, Role::Admin], "{f}");
            assert!(f.held.is_empty(), "{f}");
            let m = f.to_string();
            assert!(
                m.contains("vic may not deploy in production")
                    && m.contains("needs the operator or admin role")
                    && m.contains("vic has no role"),
                "{m}"
            )
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(h) => panic!("vic started run {}", h.run_id),
    }
    assert!(w.rec.calls().is_empty(), "{:?}", w.rec.calls());
    assert_eq!(
        w.store.find_run("shop").unwrap().unwrap().version,
        "1.1.0",
        "no run was created"
    );
    let audit = w.store.audit().unwrap();
    let last = audit.last().unwrap();
    assert_eq!(
        (
            last.entry.actor.as_str(),
            last.entry.action.as_str(),
            last.entry.run
        ),
        ("vic", "refused", None)
    );
    assert_eq!(last.entry.detail["command"], "deploy");

    // An operator may deploy.
    let h = start(&w, "1.2.0", "olga").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::WaitingApproval).await;

    let m = refused(w.engine.command(run, Command::Pause, "vic").await);
    assert!(
        m.contains("vic may not pause in production")
            && m.contains("needs the operator or admin role"),
        "{m}"
    );
    for cmd in [
        Command::Resume,
        Command::Promote,
        Command::Rollback { to: None },
    ] {
        let name = cmd.name();
        let m = refused(w.engine.command(run, cmd, "vic").await);
        assert!(
            m.contains(&format!("vic may not {name} in production")),
            "{m}"
        );
    }
    assert_eq!(snapshot(&w, run).status, Status::WaitingApproval);

    assert_eq!(
        w.engine.command(run, Command::Pause, "olga").await.unwrap(),
        "paused"
    );
    assert_eq!(snapshot(&w, run).status, Status::Paused);
    // The process that owns the run is not restricted by roles.
    assert_eq!(
        w.engine
            .command_as_owner(run, Command::Resume, "vic")
            .await
            .unwrap(),
        "resumed"
    );
    assert_eq!(
        w.engine
            .command_as_owner(run, Command::Pause, "vic")
            .await
            .unwrap(),
        "paused"
    );
    assert_eq!(
        w.engine
            .command(run, Command::Resume, "olga")
            .await
            .unwrap(),
        "resumed"
    );
    assert_eq!(snapshot(&w, run).status, Status::WaitingApproval);

    // Without an approval block the gate is decided by the approver or admin role.
    let m = refused(approve(&w, run, "olga").await);
    assert!(
        m.contains("olga may not approve in production")
            && m.contains("needs the approver or admin role")
            && m.contains("olga has only operator"),
        "{m}"
    );
    let m = approve(&w, run, "alice").await.unwrap();
    assert!(m.contains("approved gate canary-50"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    only_on(&w, "1.2.0");

    let refusals: Vec<(String, String)> = journal(&w, run)
        .iter()
        .filter_map(|k| match k {
            EventKind::CommandRefused { command, by, .. } => Some((by.clone(), command.clone())),
            _ => None,
        })
        .collect();
    let r = |by: &str, c: &str| (by.to_string(), c.to_string());
    assert_eq!(
        refusals,
        vec![
            r("vic", "pause"),
            r("vic", "resume"),
            r("vic", "promote"),
            r("vic", "rollback"),
            r("olga", "approve"),
        ]
    );
}

const BEFORE_START: &str = "
environments:
  - name: production
    approval:
      beforeStart: true
      approvers: {users: [bob, carol]}
      timeout: 1h
";

#[tokio::test(start_paused = true)]
async fn a_before_start_gate_rejected_changes_nothing() {
    let w = with_v1(BEFORE_START).await;
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    let first = &h.plan.steps[0];
    assert!(
        matches!(&first.action, Action::Gate { name } if name == "before-start"),
        "{first:?}"
    );
    assert_eq!(first.index, 0);
    assert_eq!(h.plan.gates, 2, "before-start and canary-50");
    assert!(h.plan.steps.iter().enumerate().all(|(i, s)| s.index == i));
    wait_status(&w.engine, run, Status::WaitingApproval).await;
    assert_eq!(snapshot(&w, run).gate.as_deref(), Some("before-start"));

    let m = reject(&w, run, "bob", "change freeze").await.unwrap();
    assert!(m.contains("rejected gate before-start"), "{m}");
    // An abort: the run failed, and nothing was rolled back because nothing had changed.
    assert_eq!(outcome_of(h).await, Outcome::Failed);
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("gate before-start rejected by bob: change freeze; nothing was changed"),
        "{reason}"
    );
    assert!(w.rec.calls().is_empty(), "{:?}", w.rec.calls());
    only_on(&w, "1.1.0");
    let events = journal(&w, run);
    assert!(
        !events.iter().any(|k| matches!(
            k,
            EventKind::TrafficShifted { .. }
                | EventKind::InstancesReady { .. }
                | EventKind::RollbackStarted { .. }
        )),
        "{events:?}"
    );
    let revs = w.store.revisions("api", "production", true).unwrap();
    let status = |v: &str| {
        revs.iter()
            .find(|r| r.version == v)
            .map(|r| r.status.as_str())
            .unwrap_or_default()
    };
    assert_eq!(status("1.1.0"), "active");
    assert_eq!(status("1.2.0"), "failed");

    // The ladder deciding a before-start gate aborts the same way.
    let h = start(&w, "1.3.0", "alice").await;
    let run = h.run_id;
    assert_eq!(outcome_of(h).await, Outcome::Failed);
    let reason = reason_of(&w, run);
    assert!(
        reason.contains("gate before-start rejected: timed out after 1h")
            && reason.contains("nothing was changed"),
        "{reason}"
    );
    assert!(w.rec.calls().is_empty(), "{:?}", w.rec.calls());
    only_on(&w, "1.1.0");
}

#[tokio::test(start_paused = true)]
async fn the_audit_trail_records_the_gate_and_detects_tampering() {
    let w = with_v1(QUORUM).await;
    let run = two_approvals(&w).await;

    let records = w.store.audit().unwrap();
    let head = w.store.audit_head().unwrap();
    let head_ref = head.as_ref().map(|(s, h)| (*s, h.as_str()));
    assert_eq!(audit::verify(&records, head_ref), Ok(records.len()));
    assert_eq!(head.as_ref().map(|h| h.0), records.last().map(|r| r.seq));

    let of_run: Vec<_> = records
        .iter()
        .filter(|r| r.entry.run == Some(run))
        .collect();
    assert!(of_run
        .iter()
        .all(|r| r.entry.deployment == "shop" && r.entry.environment == "production"));
    let story: Vec<(String, String)> = of_run
        .iter()
        .filter(|r| {
            matches!(
                r.entry.action.as_str(),
                "deploy.start" | "gate.open" | "gate.approve" | "refused" | "deploy.finish"
            )
        })
        .map(|r| (r.entry.actor.clone(), r.entry.action.clone()))
        .collect();
    let e = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        story,
        vec![
            e("alice", "deploy.start"),
            e("engine", "gate.open"),
            e("alice", "refused"),
            e("mallory", "refused"),
            e("bob", "gate.approve"),
            e("bob", "refused"),
            e("carol", "gate.approve"),
            e("engine", "deploy.finish"),
        ]
    );
    let find = |actor: &str, action: &str| {
        of_run
            .iter()
            .find(|r| r.entry.actor == actor && r.entry.action == action)
            .map(|r| r.entry.detail.clone())
            .unwrap_or_else(|| panic!("no {action} by {actor}"))
    };
    let d = find("mallory", "refused");
    assert_eq!(d["command"], "approve");
    assert!(
        d["reason"].as_str().unwrap().contains("not an approver"),
        "{d}"
    );
    let d = find("bob", "gate.approve");
    assert_eq!(
        (
            d["gate"].as_str(),
            d["approvals"].as_u64(),
            d["required"].as_u64()
        ),
        (Some(GATE), Some(1), Some(2)),
        "{d}"
    );
    let d = find("carol", "gate.approve");
    assert_eq!(d["passed"], true, "{d}");
    let d = find("engine", "deploy.finish");
    assert_eq!(d["outcome"], "succeeded", "{d}");

    // Tampering with the file is detected.
    let db = w.store.path().to_path_buf();
    assert!(db.ends_with("cutover.db"), "{}", db.display());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let verify = || {
        let records = w.store.audit().unwrap();
        let head = w.store.audit_head().unwrap();
        audit::verify(&records, head.as_ref().map(|(s, h)| (*s, h.as_str())))
    };
    let actor: String = conn
        .query_row("SELECT actor FROM audit WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    assert_ne!(actor, "mallory");
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(verify(), Err(Broken::Altered { seq: 3 }));
    conn.execute("UPDATE audit SET actor = ?1 WHERE seq = 3", [&actor])
        .unwrap();
    assert_eq!(verify(), Ok(records.len()), "restored");

    let last = records.last().unwrap().seq;
    conn.execute("DELETE FROM audit WHERE seq = ?1", [last])
        .unwrap();
    assert_eq!(
        verify(),
        Err(Broken::Truncated {
            last: last - 1,
            head: last
        })
    );
    conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    assert_eq!(verify(), Err(Broken::Removed { after: 1, at: 3 }));
}

#[tokio::test(start_paused = true)]
async fn promoting_never_skips_a_gate_the_promoter_could_not_pass_alone() {
    // A quorum of two: nobody may promote past the gate alone, least of all the initiator.
    let w = with_v1(QUORUM).await;
    let h = start(&w, "1.2.0", "alice").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::Progressing).await;
    let m = refused(w.engine.command(run, Command::Promote, "alice").await);
    assert!(
        m.contains("promoting would skip gate canary-50")
            && m.contains("alice started this deployment"),
        "{m}"
    );
    let m = refused(w.engine.command(run, Command::Promote, "bob").await);
    assert!(
        m.contains("bob may not pass alone") && m.contains("2 more distinct approvals (0 of 2"),
        "{m}"
    );
    wait_status(&w.engine, run, Status::WaitingApproval).await;
    let m = refused(w.engine.command(run, Command::Promote, "bob").await);
    assert!(m.contains("2 more distinct approvals"), "{m}");
    assert_eq!(snapshot(&w, run).status, Status::WaitingApproval);
    // Once one approval is in, another approver could pass the gate alone, so may promote.
    approve(&w, run, "bob").await.unwrap();
    let m = refused(w.engine.command(run, Command::Promote, "bob").await);
    assert!(m.contains("bob has already approved"), "{m}");
    let m = w
        .engine
        .command(run, Command::Promote, "carol")
        .await
        .unwrap();
    assert!(m.starts_with("promoting"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn an_operator_may_not_promote_past_a_gate_only_approvers_decide() {
    let w = with_v1(RBAC).await;
    let h = start(&w, "1.2.0", "olga").await;
    let run = h.run_id;
    wait_status(&w.engine, run, Status::Progressing).await;
    let m = refused(w.engine.command(run, Command::Promote, "olga").await);
    assert!(
        m.contains("promoting would skip gate canary-50")
            && m.contains("needs the approver or admin role"),
        "{m}"
    );
    let story = gate_story(&w, run);
    assert!(story.is_empty(), "nothing skipped: {story:?}");
    // An admin may (she could approve the gate herself).
    let t0 = Instant::now();
    let m = w
        .engine
        .command(run, Command::Promote, "alice")
        .await
        .unwrap();
    assert!(m.starts_with("promoting"), "{m}");
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    only_on(&w, "1.2.0");
    let refusals: Vec<(String, String)> = journal(&w, run)
        .iter()
        .filter_map(|k| match k {
            EventKind::CommandRefused { command, by, .. } => Some((by.clone(), command.clone())),
            EventKind::Promoted { by } => Some((by.clone(), "promoted".into())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            ("olga".to_string(), "promote".to_string()),
            ("alice".to_string(), "promoted".to_string())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn auto_approve_never_overrides_a_gates_rule() {
    let w = with_v1(QUORUM).await;
    let h = w
        .engine
        .start(spec_of("1.2.0"), opts("alice", true))
        .await
        .unwrap();
    let run = h.run_id;
    wait_status(&w.engine, run, Status::WaitingApproval).await;
    // The refusal is journaled just after the gate opens.
    let mut refusal = None;
    for _ in 0..100 {
        refusal = journal(&w, run).into_iter().find_map(|k| match k {
            EventKind::CommandRefused {
                command, reason, ..
            } if command == "auto-approve" => Some(reason),
            _ => None,
        });
        if refusal.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let why = refusal.unwrap_or_default();
    assert!(why.contains("alice started this deployment"), "{why}");
    approve(&w, run, "bob").await.unwrap();
    approve(&w, run, "carol").await.unwrap();
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_freeze_blocks_a_promotion_and_a_deployment() {
    let w = with_v1(
        "environments:
  - name: staging
  - name: production
    freezes:
      - {from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z', reason: the long freeze}
",
    )
    .await;
    let e = promotion_refused(&w).await;
    assert!(matches!(e, Refusal::Closed(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "production is frozen until 2100-01-01 00:00 UTC: the long freeze"
    );
    assert!(matches!(
        w.engine.start(spec_of("1.2.0"), opts("alice", false)).await,
        Err(EngineError::Refused(_))
    ));
    assert!(w.rec.calls().is_empty(), "nothing changed");
    let audit = w.store.audit().unwrap();
    assert!(audit.iter().any(|r| r.entry.action == "refused"
        && r.entry.detail["reason"]
            .as_str()
            .unwrap_or("")
            .contains("frozen")));
}

#[tokio::test(start_paused = true)]
async fn a_promotion_whose_overrides_break_a_rule_is_refused_with_the_rule() {
    // Before, `retarget` skipped the rules: a canary spec promoted with `strategy: blue-green`
    // ran default blue-green steps without a word.
    let w = with_v1(
        "environments:
  - name: staging
  - name: production
    overrides: {strategy: blue-green}
",
    )
    .await;
    let e = promotion_refused(&w).await;
    assert!(matches!(e, Refusal::InvalidSpec(_)), "{e:?}");
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains(
            "metadata.canaryConfig: configures canary, but strategy is blue-green; remove it or change strategy"
        ),
        "{e}"
    );
    assert!(w.rec.calls().is_empty(), "nothing changed");
}

/// 1.2.0 succeeds in staging (deployed there without governance); its promotion to production
/// is refused: the refusal. Nothing is recorded as changed afterwards.
async fn promotion_refused(w: &World) -> Refusal {
    let before = common::engine(&w.store, w.rec.clone(), Governance::default());
    let staging = spec_of("1.2.0")
        .amend(|s| s.environment = "staging".into())
        .unwrap();
    let h = before.start(staging, opts("alice", true)).await.unwrap();
    assert_eq!(outcome_of(h).await, Outcome::Succeeded);
    w.rec.clear();
    let ask = cutover::governance::promotion::Ask {
        deployment: spec_of("1.2.0").id.clone(),
        from: "staging".into(),
        to: "production".into(),
        override_reason: None,
    };
    match w.engine.promote(ask, opts("alice", false)).await {
        Err(EngineError::Refused(m)) => m,
        other => panic!("expected a refusal, got {:?}", other.map(|h| h.run_id)),
    }
}
