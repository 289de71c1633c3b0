//! The orchestration engine: one tokio task per deployment run, commands in, events and snapshots out.
//!
//! Owns: starting runs (plan, revisions, journal), routing commands to the task that owns a run,
//! the event broadcast and the snapshot watch. Must not touch: any UI, terminal or printing.

mod adopt;
mod audit_map;
mod baseline;
mod control;
pub mod decide;
pub mod event;
mod gates;
pub mod journal;
mod metric_judge;
pub mod notify;
pub mod refusal;
pub mod remote;
mod rollback;
mod run;
mod shutdown;
pub mod signals;
pub mod sources;
mod standalone;
mod start;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::plan::{self, Plan, Previous};
use crate::provider::Provider;
use crate::spec::{Component, Diagnostic, Spec, ValidSpec};
use crate::store::{RevisionRow, Store, StoreError};

pub(crate) use audit_map::audit_entry;
pub use decide::{Counts, Tally};
pub use event::{Event, EventKind, IntentComponent, Outcome, RollbackIntent, Snapshot, Status};
pub use refusal::{Answer, Refusal};
pub use shutdown::Shutdown;
pub use signals::{Builtin, Judgement, SignalSource, Verdict};
pub use start::BEFORE_START;

/// What an operator (or another process) asks of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Pause,
    /// The engine holds its own run, with the cause (the platform's lease could not be kept):
    /// a pause that says why. Only the run's owner sends it.
    Hold {
        reason: String,
    },
    Resume,
    Approve {
        gate: Option<String>,
        comment: Option<String>,
    },
    Reject {
        reason: String,
    },
    Promote,
    Rollback {
        to: Option<String>,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Hold { .. } => "hold",
            Command::Resume => "resume",
            Command::Approve { .. } => "approve",
            Command::Reject { .. } => "reject",
            Command::Promote => "promote",
            Command::Rollback { .. } => "rollback",
        }
    }
}

/// A command with who sent it and where the answer goes.
#[derive(Debug)]
pub struct Envelope {
    pub command: Command,
    pub actor: String,
    pub reply: Option<oneshot::Sender<Answer>>,
    /// The row of a command that came through the store; answered there.
    pub store_id: Option<i64>,
    /// From the process that owns the run (its Ctrl-C, its console quitting): not subject to
    /// roles. Commands from people (keys, the CLI, the store) never are.
    pub owner: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("run {0} is not running in this process")]
    NotHere(i64),
}

impl EngineError {
    /// The exit code of the command-line contract for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Refused(r) => r.exit_code(),
            EngineError::Store(_) | EngineError::NotHere(_) => 1,
        }
    }
}

/// Rule problems in one line, for a refusal.
pub(crate) fn diag_text(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub auto_approve: bool,
    pub initiator: String,
}

/// Everything the engine is built from.
pub struct EngineConfig {
    pub store: Store,
    pub provider: Arc<dyn Provider>,
    pub signals: Arc<dyn SignalSource>,
    /// The clock is tokio's paused clock (dry runs): don't tick while only a human can move things.
    pub virtual_clock: bool,
    /// Take commands written to the store by other processes.
    pub poll_store: bool,
    /// Who may do what, and how gates decide.
    pub governance: crate::governance::Governance,
    /// Gate timeouts and escalation count real time even on a virtual clock: a dry run that
    /// people decide. (Tests on paused time leave it off, so ladders pass in virtual time.)
    pub wall_clock_gates: bool,
}

struct Inner {
    store: Store,
    provider: Arc<dyn Provider>,
    signals: Arc<dyn SignalSource>,
    virtual_clock: bool,
    governance: crate::governance::Governance,
    wall_clock_gates: bool,
    /// The workspace's webhooks, if it has any: published events' notices go there.
    webhooks: Option<crate::governance::notify::Webhooks>,
    /// Shutting down: no new runs or commands (see `shutdown`).
    closing: AtomicBool,
    events: broadcast::Sender<Event>,
    snapshots: watch::Sender<BTreeMap<i64, Snapshot>>,
    runs: Mutex<HashMap<i64, mpsc::UnboundedSender<Envelope>>>,
    /// The ordered queue of what runs write to the store (`journal`).
    journal: journal::Journal,
    stop: Arc<AtomicBool>,
    wall_start: chrono::DateTime<chrono::Utc>,
    clock_start: tokio::time::Instant,
}

/// The engine. Clone to share.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A started run.
pub struct RunHandle {
    pub run_id: i64,
    pub deployment: String,
    pub plan: Plan,
    pub join: JoinHandle<Outcome>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The active (serving) revision of each component of a spec, from the store.
pub fn previous_revisions(
    store: &Store,
    spec: &Spec,
    dry_run: bool,
) -> Result<BTreeMap<String, RevisionRow>, StoreError> {
    let mut out = BTreeMap::new();
    for c in &spec.components {
        if let Some(r) = store.active_revision(&c.id, &spec.environment, dry_run)? {
            out.insert(c.id.clone(), r);
        }
    }
    Ok(out)
}

/// The plan for a checked spec given what the store says is running.
pub fn plan_for(spec: &ValidSpec, previous: &BTreeMap<String, RevisionRow>) -> Plan {
    plan::build(spec, &|id| {
        previous.get(id).map(|r| Previous {
            version: r.version.clone(),
            replicas: r.replicas,
        })
    })
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        let (events, _) = broadcast::channel(1024);
        let (snapshots, _) = watch::channel(BTreeMap::new());
        let engine = Engine {
            inner: Arc::new(Inner {
                store: cfg.store,
                provider: cfg.provider,
                signals: cfg.signals,
                virtual_clock: cfg.virtual_clock,
                webhooks: crate::governance::notify::Webhooks::start(
                    cfg.governance.workspace.clone(),
                ),
                governance: cfg.governance,
                wall_clock_gates: cfg.wall_clock_gates,
                closing: AtomicBool::new(false),
                events,
                snapshots,
                runs: Mutex::new(HashMap::new()),
                journal: journal::Journal::default(),
                stop: Arc::new(AtomicBool::new(false)),
                wall_start: chrono::Utc::now(),
                clock_start: tokio::time::Instant::now(),
            }),
        };
        if cfg.poll_store {
            engine.spawn_store_poller();
        }
        engine
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Events from every run of this engine.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The latest snapshot of every run of this engine.
    pub fn snapshots(&self) -> watch::Receiver<BTreeMap<i64, Snapshot>> {
        self.inner.snapshots.subscribe()
    }

    /// The engine's notion of now: wall time, advanced by tokio's clock (virtual in dry runs).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.inner.clock_start);
        self.inner.wall_start + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    /// Start a deployment run of a checked spec.
    pub async fn start(&self, spec: ValidSpec, opts: RunOptions) -> Result<RunHandle, EngineError> {
        self.accepting()?;
        self.start_as(spec, opts, None).await
    }

    /// Start a run that rolls a finished deployment back to its last good revision or a named version.
    pub async fn start_rollback(
        &self,
        spec: ValidSpec,
        dry_run: bool,
        from_run: i64,
        to: Option<String>,
        actor: &str,
    ) -> Result<RunHandle, EngineError> {
        self.accepting()?;
        standalone::start_standalone(self, spec, dry_run, from_run, to, actor).await
    }

    /// Send a person's command to a run owned by this engine and wait for its answer (roles apply).
    pub async fn command(
        &self,
        run_id: i64,
        command: Command,
        actor: &str,
    ) -> Result<String, EngineError> {
        self.accepting()?;
        self.send(run_id, command, actor, false).await
    }

    /// A command from the process that owns the run itself (its Ctrl-C, its console quitting),
    /// which roles do not restrict.
    pub async fn command_as_owner(
        &self,
        run_id: i64,
        command: Command,
        actor: &str,
    ) -> Result<String, EngineError> {
        self.accepting()?;
        self.send(run_id, command, actor, true).await
    }

    /// Append to the audit trail through the journal's queue (in order with the runs' lines;
    /// waited for only while the store is healthy): a failure is told, never fatal.
    pub(crate) async fn audit(&self, e: crate::store::audit::Entry) {
        let deployment = e.deployment.clone();
        let written = self.journal(&deployment, vec![crate::store::Write::Audit(e)]);
        self.journal_settle(written).await;
    }

    pub fn governance(&self) -> &crate::governance::Governance {
        &self.inner.governance
    }

    async fn send(
        &self,
        run_id: i64,
        command: Command,
        actor: &str,
        owner: bool,
    ) -> Result<String, EngineError> {
        let tx = self
            .lock_runs()
            .get(&run_id)
            .cloned()
            .ok_or(EngineError::NotHere(run_id))?;
        let (reply, rx) = oneshot::channel();
        tx.send(Envelope {
            command,
            actor: actor.to_string(),
            reply: Some(reply),
            store_id: None,
            owner,
        })
        .map_err(|_| EngineError::NotHere(run_id))?;
        match rx.await {
            Ok(Ok(msg)) => Ok(msg),
            Ok(Err(refusal)) => Err(EngineError::Refused(refusal)),
            Err(_) => Err(EngineError::NotHere(run_id)),
        }
    }

    /// Runs this engine owns now.
    pub fn owned_runs(&self) -> Vec<i64> {
        self.lock_runs().keys().copied().collect()
    }

    fn lock_runs(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<i64, mpsc::UnboundedSender<Envelope>>> {
        self.inner.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Poll the store for commands other processes wrote for our runs, on a real-time thread
    /// (so a paused tokio clock never spins while a human decides).
    fn spawn_store_poller(&self) {
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.stop.clone();
        let store = self.inner.store.clone();
        let spawned = std::thread::Builder::new()
            .name("cutover-commands".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let Some(inner) = weak.upgrade() else { break };
                    let owned: Vec<(i64, mpsc::UnboundedSender<Envelope>)> = inner
                        .runs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .map(|(k, v)| (*k, v.clone()))
                        .collect();
                    drop(inner);
                    if owned.is_empty() {
                        continue;
                    }
                    let ids: Vec<i64> = owned.iter().map(|(k, _)| *k).collect();
                    let Ok(rows) = store.take_commands(&ids) else {
                        continue;
                    };
                    for row in rows {
                        let failed = match serde_json::from_str::<Command>(&row.args_json) {
                            Err(e) => Some(refusal::encode_answer(&Err(Refusal::NotNow(format!(
                                "unreadable command: {e}"
                            ))))),
                            Ok(command) => match owned.iter().find(|(k, _)| *k == row.run_id) {
                                None => Some(refusal::encode_answer(&Err(Refusal::NotNow(
                                    "run is not active".into(),
                                )))),
                                Some((_, tx)) => tx
                                    .send(Envelope {
                                        command,
                                        actor: row.actor.clone(),
                                        reply: None,
                                        store_id: Some(row.id),
                                        owner: false,
                                    })
                                    .err()
                                    .map(|_| {
                                        refusal::encode_answer(&Err(Refusal::NotNow(
                                            "run has finished".into(),
                                        )))
                                    }),
                            },
                        };
                        if let Some(result) = failed {
                            // A command refused here never reaches its run: audit it here.
                            let (deployment, environment) = match store.run(row.run_id) {
                                Ok(Some(r)) => (r.deployment, r.environment),
                                _ => (String::new(), String::new()),
                            };
                            let audited = store.append_audit(&crate::store::audit::Entry {
                                actor: row.actor.clone(),
                                action: "refused".into(),
                                deployment,
                                run: Some(row.run_id),
                                environment,
                                detail: serde_json::json!({
                                    "command": row.kind,
                                    "reason": refusal::decode_answer(&result)
                                        .err()
                                        .map(|r| r.to_string()),
                                }),
                            });
                            if let Err(e) = audited {
                                tracing::error!("cannot audit refused command {}: {e}", row.id);
                            }
                            if let Err(e) = store.complete_command(row.id, &result) {
                                tracing::error!("cannot answer command {}: {e}", row.id);
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the command poller: {e}");
        }
    }
}

/// Look up the component spec a recorded revision ran with.
pub(crate) fn component_of(row: &RevisionRow) -> Option<Component> {
    serde_json::from_str(&row.config_json).ok()
}
