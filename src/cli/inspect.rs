//! Read-only commands: `plan`, `status`, `history`, `approvals`.
//!
//! Owns: presenting plans and stored runs. Must not touch: the engine or any run's state.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;

use super::{load_spec, open_store, INVALID, OK};
use cutover::describe::weights;
use cutover::engine::{self, Snapshot};
use cutover::governance::gate::GateView;
use cutover::plan::{self, Plan, Previous};
use cutover::spec::human;
use cutover::store::{pid_alive, LagNote, RunRow};

fn print_plan(p: &Plan) {
    out!(
        "plan for {} {} ({}) in {}: {} step(s), expected {}",
        p.deployment,
        p.version,
        p.strategy,
        p.environment,
        p.steps.len(),
        p.expected_human()
    );
    for s in &p.steps {
        out!("  {:>2}. [{}] {}", s.index + 1, s.component, s.description);
        out!("      if it fails here: {}", s.on_failure);
    }
    out!("rollback: {}", p.rollback);
}

pub fn plan(dir: &Path, path: &Path, json: bool, manifests: bool) -> Result<u8> {
    let spec = match load_spec(path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let shown = path.display().to_string();
    let findings = cutover::spec::kubernetes::findings(&spec);
    if manifests {
        if let Some(code) = super::manifests::kube_only(
            &spec,
            &shown,
            "error: --manifests shows the Kubernetes provider's objects",
        ) {
            return Ok(code);
        }
    }
    for f in &findings {
        eprintln!("{}", f.render(&shown));
    }
    let previous = match cutover::store::Store::open(dir) {
        Ok(store) => engine::previous_revisions(&store, &spec, true).unwrap_or_default(),
        Err(_) => Default::default(),
    };
    let first = spec
        .components
        .iter()
        .any(|c| !previous.contains_key(&c.id));
    let actual = engine::plan_for(&spec, &previous);
    // What the strategy does against a running revision, even before one is recorded.
    let strategy_plan = plan::build(&spec, &|id| {
        Some(match previous.get(id) {
            Some(r) => Previous {
                version: r.version.clone(),
                replicas: r.replicas,
            },
            None => Previous {
                version: "the running revision".into(),
                replicas: spec
                    .components
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| c.replicas)
                    .unwrap_or_default(),
            },
        })
    });
    if json {
        let v = serde_json::json!({
            "deployment": strategy_plan.deployment,
            "version": strategy_plan.version,
            "strategy": strategy_plan.strategy,
            "environment": strategy_plan.environment,
            "steps": strategy_plan.steps,
            "expected_ms": strategy_plan.expected_ms,
            "expected": strategy_plan.expected_human(),
            "gates": strategy_plan.gates,
            "rollback": strategy_plan.rollback,
            "first_deployment": first,
            "first_deployment_steps": if first { Some(&actual.steps) } else { None },
        });
        let mut v = v;
        if manifests {
            v["manifests"] = serde_json::to_value(super::manifests::for_plan(
                &spec,
                &strategy_plan,
                &previous,
                true,
            ))?;
            if first {
                v["first_deployment_manifests"] = serde_json::to_value(
                    super::manifests::for_plan(&spec, &actual, &previous, false),
                )?;
            }
        }
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(OK);
    }
    print_plan(&strategy_plan);
    if first {
        out!();
        out!(
            "note: no revision of {} is recorded as serving in {}; this first apply will run:",
            spec.id,
            spec.environment
        );
        for s in &actual.steps {
            out!("  {:>2}. [{}] {}", s.index + 1, s.component, s.description);
        }
        if spec.infrastructure.provider == cutover::spec::ProviderKind::Kubernetes {
            out!(
                "  unless something already serves it on the cluster: a revision another cutover started \
                 (found by its labels), or a plain Deployment named as the component that cutover did not \
                 create, which is adopted as the baseline (replica-ratio traffic only: scaled down as the \
                 new revision takes over, annotated, never deleted); the steps above then run from it. \
                 `apply --dry-run=server` says which."
            );
        }
    }
    if manifests {
        print_manifests(&spec, &strategy_plan, &actual, &previous, first);
    }
    Ok(OK)
}

/// The objects of each step as YAML, after the plan.
fn print_manifests(
    spec: &cutover::spec::ValidSpec,
    strategy_plan: &Plan,
    actual: &Plan,
    previous: &std::collections::BTreeMap<String, cutover::store::RevisionRow>,
    first: bool,
) {
    use super::manifests;
    let keys: Vec<String> = spec
        .components
        .iter()
        .map(|c| manifests::planned_key(&c.id, &spec.version))
        .collect();
    out!();
    out!(
        "# manifests: namespace {}; traffic: {}",
        spec.infrastructure
            .namespace
            .as_deref()
            .unwrap_or("(the kube context's)"),
        match cutover::provider::kubernetes::workload::traffic(spec) {
            cutover_kube::workload::Traffic::ReplicaRatio =>
                "replica ratio behind one stable Service",
            cutover_kube::workload::Traffic::GatewayApi =>
                "Gateway API (a Service per revision, HTTPRoute weights)",
            cutover_kube::workload::Traffic::ActivePreview => "active and preview Services",
        }
    );
    out!(
        "# names hash the revision key the store assigns at apply (component@version.rN); shown here as {}; the run as {}#N",
        keys.join(", "),
        spec.id
    );
    out!(
        "# Deployments and Services are server-side applied (field manager cutover); Scale is the deployments/scale subresource"
    );
    out!(
        "{}",
        manifests::render(&manifests::for_plan(spec, strategy_plan, previous, true)).trim_end()
    );
    if first {
        out!();
        out!("# the first apply (no revision recorded as serving) runs these steps instead:");
        out!(
            "{}",
            manifests::render(&manifests::for_plan(spec, actual, previous, false)).trim_end()
        );
    }
}

fn live_status(r: &RunRow) -> String {
    if r.is_finished() {
        return r.status.to_string();
    }
    match r.owner_pid {
        Some(pid) if pid_alive(pid) => r.status.to_string(),
        _ => format!("{} (not running: its process has exited)", r.status),
    }
}

/// Whether the local host answers, asked once per command and only for a run on it: while it
/// does not, the traffic a run shows is the last it recorded, not what the router does.
struct LocalHost {
    dir: std::path::PathBuf,
    answering: std::cell::OnceCell<bool>,
}

impl LocalHost {
    fn new(dir: &Path) -> LocalHost {
        LocalHost {
            dir: dir.to_path_buf(),
            answering: std::cell::OnceCell::new(),
        }
    }

    /// `None` for a run not on the local host (or a dry run); else whether the host answers.
    fn answers_for(&self, r: &RunRow) -> Option<bool> {
        if r.provider != cutover::spec::ProviderKind::Local || r.dry_run {
            return None;
        }
        Some(*self.answering.get_or_init(|| {
            let client = cutover::local::client::HostClient::new(&self.dir);
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(client.ping()))
                .unwrap_or(false)
        }))
    }
}

fn snapshot(r: &RunRow) -> Option<Snapshot> {
    serde_json::from_str(&r.snapshot_json).ok()
}

pub fn status(dir: &Path, id: Option<&str>, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let host = LocalHost::new(dir);
    // A JSON line says whether its traffic is live (its host answers) or the last recorded.
    let with_host = |r: &RunRow| {
        let mut v = status_json(r);
        if let Some(answering) = host.answers_for(r) {
            v["host_answering"] = serde_json::json!(answering);
            v["traffic_live"] = serde_json::json!(answering);
        }
        v
    };
    match id {
        None => {
            // The latest run of each deployment in each environment, and every unfinished run
            // (a later run elsewhere never hides one that still holds its targets).
            let mut seen = BTreeSet::new();
            let runs: Vec<RunRow> = store
                .runs(None, 500)?
                .into_iter()
                .filter(|r| {
                    seen.insert((r.deployment.clone(), r.environment.clone())) || !r.is_finished()
                })
                .collect();
            let lags = store.lag_notes();
            if json {
                for r in &runs {
                    let mut v = with_host(r);
                    if let Some(p) = pending_json(&lags, r.run_id) {
                        v["journal_pending"] = p;
                    }
                    out!("{}", serde_json::to_string(&v)?);
                }
                return Ok(OK);
            }
            if runs.is_empty() {
                out!("no deployments recorded in {}", dir.display());
                return Ok(OK);
            }
            out!(
                "{:<28} {:>5} {:<12} {:<12} {:<11} {:<28} STEP",
                "DEPLOYMENT",
                "RUN",
                "VERSION",
                "ENV",
                "STRATEGY",
                "STATUS"
            );
            for r in &runs {
                let step = snapshot(r)
                    .map(|s| format!("{}/{}", (s.step + 1).min(s.steps), s.steps))
                    .unwrap_or_default();
                out!(
                    "{:<28} {:>5} {:<12} {:<12} {:<11} {:<28} {step}",
                    r.deployment,
                    r.run_id,
                    r.version,
                    r.environment,
                    r.strategy,
                    match host.answers_for(r) {
                        Some(false) if !r.is_finished() =>
                            format!("{} (local host down)", live_status(r)),
                        _ => live_status(r),
                    }
                );
            }
            for r in &runs {
                if let Some(line) = pending_line(&lags, r.run_id) {
                    out!("{} run #{}: {line}", r.deployment, r.run_id);
                }
            }
            Ok(OK)
        }
        Some(id) => {
            let Some(r) = store.find_run(id)? else {
                eprintln!(
                    "no deployment `{id}` in {} (one on Kubernetes that another machine drives: `cutover status {id} --cluster`)",
                    dir.display()
                );
                return Ok(INVALID);
            };
            let notices = journal_notices(&store, r.run_id)?;
            let lags = store.lag_notes();
            if json {
                let mut v = with_host(&r);
                v["journal"] = serde_json::to_value(&notices)?;
                if let Some(p) = pending_json(&lags, r.run_id) {
                    v["journal_pending"] = p;
                }
                out!("{}", serde_json::to_string(&v)?);
                return Ok(OK);
            }
            out!(
                "{} run #{} ({}): {} {} {} in {}",
                r.deployment,
                r.run_id,
                r.kind,
                r.name,
                r.version,
                r.strategy,
                r.environment
            );
            out!("  status:    {}", live_status(&r));
            out!("  started:   {} by {}", r.started_at, r.initiator);
            if let Some(f) = &r.finished_at {
                out!("  finished:  {f}");
            }
            if let Some(reason) = &r.reason {
                out!("  reason:    {reason}");
            }
            if let Some(s) = snapshot(&r) {
                if s.steps > 0 {
                    out!(
                        "  step:      {}/{} {}",
                        (s.step + 1).min(s.steps),
                        s.steps,
                        s.step_description
                    );
                }
                if let Some(g) = &s.gate {
                    out!(
                        "  gate:      {g} waits for approval: cutover approve {} --gate {g}",
                        r.deployment
                    );
                }
                let stale = host.answers_for(&r) == Some(false);
                if stale && !s.traffic.is_empty() {
                    out!(
                        "  host:      the local host does not answer (cutover host status); traffic below is the last recorded, not live"
                    );
                }
                for t in &s.traffic {
                    out!(
                        "  traffic:   {}: {}{}",
                        t.component,
                        weights(&t.weights),
                        if stale { " (last recorded)" } else { "" }
                    );
                }
                for v in &s.last_verdicts {
                    out!("  verdict:   {} {:?}: {}", v.signal, v.judgement, v.message);
                }
            }
            for ev in &notices {
                if let Some(line) = cutover::describe::human_line(ev, 0) {
                    out!("  journal:   {}", line.trim());
                }
            }
            if let Some(line) = pending_line(&lags, r.run_id) {
                out!("  journal:   {line}");
            }
            Ok(OK)
        }
    }
}

/// A live process's journal is behind for this run: what it says (the store cannot, meanwhile).
fn pending_of(lags: &[LagNote], run: i64) -> Option<(&LagNote, usize)> {
    lags.iter()
        .find_map(|n| n.lines_of(run).map(|lines| (n, lines)))
}

fn pending_line(lags: &[LagNote], run: i64) -> Option<String> {
    pending_of(lags, run).map(|(n, lines)| {
        format!(
            "!! {lines} journal line(s) not yet written by process {} since {}: {} (what `status` shows is older)",
            n.pid, n.since, n.error
        )
    })
}

fn pending_json(lags: &[LagNote], run: i64) -> Option<serde_json::Value> {
    pending_of(lags, run).map(|(n, lines)| {
        serde_json::json!({"lines": lines, "pid": n.pid, "since": n.since, "error": n.error})
    })
}

/// What the run's journal says about its own writing: lines that waited for the store
/// (`journal_caught_up`) or that it rejected (`journal_lost`), oldest first.
fn journal_notices(store: &cutover::store::Store, run: i64) -> Result<Vec<cutover::engine::Event>> {
    Ok(store
        .recent_events(run, 1000)?
        .into_iter()
        .filter(|e| e.kind.starts_with("journal_"))
        .filter_map(|e| serde_json::from_str(&e.json).ok())
        .collect())
}

fn status_json(r: &RunRow) -> serde_json::Value {
    serde_json::json!({
        "deployment": r.deployment,
        "run": r.run_id,
        "kind": r.kind,
        "version": r.version,
        "strategy": r.strategy,
        "environment": r.environment,
        "status": r.status,
        "running": !r.is_finished() && r.owner_pid.is_some_and(pid_alive),
        "owner_pid": r.owner_pid,
        "outcome": r.outcome,
        "reason": r.reason,
        "initiator": r.initiator,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "snapshot": snapshot(r),
    })
}

fn duration_of(r: &RunRow) -> Option<u64> {
    let start = chrono::DateTime::parse_from_rfc3339(&r.started_at).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(r.finished_at.as_ref()?).ok()?;
    u64::try_from((end - start).num_milliseconds()).ok()
}

pub fn history(dir: &Path, env: Option<&str>, json: bool, limit: usize) -> Result<u8> {
    let store = open_store(dir)?;
    let runs = store.runs(env, limit)?;
    if json {
        for r in &runs {
            let mut v = status_json(r);
            v["duration_ms"] = serde_json::json!(duration_of(r));
            v.as_object_mut().map(|o| o.remove("snapshot"));
            out!("{}", serde_json::to_string(&v)?);
        }
        return Ok(OK);
    }
    if runs.is_empty() {
        out!(
            "no deployments recorded{}",
            env.map(|e| format!(" in {e}")).unwrap_or_default()
        );
        return Ok(OK);
    }
    // Columns as wide as their content (six-digit run numbers, long names), in terminal cells
    // (a CJK name takes two a character).
    use cutover::text::{pad, width as cells};
    let width = |f: &dyn Fn(&RunRow) -> usize, head: &str| {
        runs.iter().map(f).max().unwrap_or(0).max(head.len())
    };
    let (rw, dw, vw, ew, bw) = (
        width(&|r| r.run_id.to_string().len(), "RUN"),
        width(&|r| cells(&r.deployment), "DEPLOYMENT"),
        width(&|r| cells(&r.version), "VERSION"),
        width(&|r| cells(&r.environment), "ENV"),
        width(&|r| cells(&r.initiator), "BY"),
    );
    out!(
        "{:>rw$}  {:<dw$}  {:<8}  {:<vw$}  {:<ew$}  {:<10}  {:<16}  {:>8}  {:<bw$}  REASON",
        "RUN",
        "DEPLOYMENT",
        "KIND",
        "VERSION",
        "ENV",
        "STRATEGY",
        "OUTCOME",
        "TOOK",
        "BY"
    );
    for r in &runs {
        out!(
            "{:>rw$}  {}  {:<8}  {}  {}  {:<10}  {:<16}  {:>8}  {}  {}",
            r.run_id,
            pad(&r.deployment, dw, false),
            r.kind.to_string(),
            pad(&r.version, vw, false),
            pad(&r.environment, ew, false),
            r.strategy.to_string(),
            r.outcome.map_or_else(|| live_status(r), |o| o.to_string()),
            duration_of(r).map(human).unwrap_or_else(|| "-".into()),
            pad(&r.initiator, bw, false),
            r.reason.clone().unwrap_or_default()
        );
    }
    Ok(OK)
}

/// Gates waiting for a decision. A gate whose run has no live driver (its process was killed
/// or interrupted) is listed apart: `approve` refuses it (the same test,
/// `RunRow::has_live_driver`) until `resume` takes the run over, or `rollback` ends it.
pub fn approvals(dir: &Path, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let (waiting, orphaned): (Vec<Waiting>, Vec<Waiting>) = store
        .active_runs()?
        .into_iter()
        .filter_map(|r| {
            let s = snapshot(&r)?;
            let gate = s.gate?;
            Some((r, gate, s.gate_view))
        })
        .partition(|(r, _, _)| r.has_live_driver());
    if json {
        let all = waiting.iter().map(|w| (w, true));
        for ((r, g, v), live) in all.chain(orphaned.iter().map(|w| (w, false))) {
            let mut line = serde_json::json!({"deployment": r.deployment, "run": r.run_id, "gate": g,
                "environment": r.environment, "version": r.version, "initiator": r.initiator,
                "approval": v, "owner_pid": r.owner_pid, "driver_alive": live});
            if !live {
                line["problem"] = no_driver(r).into();
                line["next"] = serde_json::json!([
                    format!("cutover resume {}#{}", r.deployment, r.run_id),
                    format!("cutover rollback {}#{}", r.deployment, r.run_id)
                ]);
            }
            out!("{line}");
        }
        return Ok(OK);
    }
    if waiting.is_empty() {
        out!("no gates are waiting");
    }
    for w in &waiting {
        print_gate(w);
        let (r, g, _) = w;
        // The run itself (ID#N): the id alone names the deployment's latest run, which may be
        // a later one in another environment.
        let id = format!("{}#{}", r.deployment, r.run_id);
        out!(
            "  cutover approve {id} --gate {g} [--comment T]   |   cutover reject {id} --reason T"
        );
    }
    if !orphaned.is_empty() {
        out!();
        out!(
            "gates of runs with no live driver (approve refuses them until the run is taken over):"
        );
    }
    for w in &orphaned {
        print_gate(w);
        let r = &w.0;
        out!("  {}", no_driver(r));
        let id = format!("{}#{}", r.deployment, r.run_id);
        out!(
            "  cutover resume {id}   (takes the run over here, headless; the gate waits again)   |   cutover rollback {id}"
        );
    }
    Ok(OK)
}

/// A run at a gate: the run, the gate's name, what the gate needs.
type Waiting = (RunRow, String, Option<GateView>);

/// Why nobody can decide a gate of `r` now.
fn no_driver(r: &RunRow) -> String {
    match r.owner_pid {
        Some(pid) => format!(
            "no live driver: process {pid}, which ran it, has gone; nothing can decide this gate now"
        ),
        None => "no live driver: its process let it go (interrupted); nothing can decide this gate now"
            .into(),
    }
}

fn print_gate((r, g, v): &Waiting) {
    let now = chrono::Utc::now();
    // Milliseconds from now until `after_ms` past the gate's opening.
    let left = |v: &GateView, after_ms: u64| -> Option<i64> {
        Some((v.due_at(after_ms)? - now).num_milliseconds())
    };
    out!(
        "{} run #{} {} in {}: gate {g} (started by {})",
        r.deployment,
        r.run_id,
        r.version,
        r.environment,
        r.initiator,
    );
    let Some(v) = v else {
        return;
    };
    out!(
        "  approvals: {} of {}{}",
        v.approved_by.len(),
        v.required,
        if v.approved_by.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.approved_by.join(", "))
        }
    );
    out!("  may approve: {}", v.may_approve);
    if let Some((what, after)) = &v.next_escalation {
        let when = left(v, *after)
            .map(|ms| format!("in {}", cutover::spec::human(ms.max(0) as u64)))
            .unwrap_or_default();
        out!("  next escalation {when}: {what}");
    }
    if let Some(t) = v.timeout_ms {
        if let Some(ms) = left(v, t) {
            out!("  times out in {}", cutover::spec::human(ms.max(0) as u64));
        }
    }
}
