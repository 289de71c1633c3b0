//! Events the engine emits and the snapshot it keeps of each deployment.
//!
//! Owns: the shapes of [`Event`] (journaled, broadcast, printed as JSON lines) and [`Snapshot`].
//! Must not touch: how they are produced or rendered.

use serde::{Deserialize, Serialize};

use super::signals::Verdict;
use crate::spec::keyword::keyword;

pub use crate::store::{Outcome, Status};

keyword! {
    /// What an analysis decided for the run.
    pub enum AnalysisDecision (default Continue) {
        Continue = "continue",
        Pause = "pause",
        Rollback = "rollback",
    }
}

keyword! {
    /// Why a run did not succeed, as a short category (a bounded metric label): an analysis
    /// judged a metric, rule or trigger bad; instances failed their health checks; an operator
    /// asked; a deadline or a gate's escalation ran out; someone rejected a gate; a validation
    /// check failed; the platform or the store failed.
    pub enum Cause (default Error) {
        Metric = "metric",
        Health = "health",
        Manual = "manual",
        Timeout = "timeout",
        Rejected = "rejected",
        Check = "check",
        Error = "error",
    }
}

/// A revision's share of a component's traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weight {
    pub revision: String,
    pub version: String,
    /// The weight asked, percent.
    pub weight: u32,
    /// The share the platform reached, percent, where it differs from the weight asked (a
    /// replica-ratio canary on Kubernetes); absent when the split is exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved: Option<f64>,
}

/// One thing that happened, as journaled and printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: String,
    pub deployment: String,
    pub run: i64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Started {
        version: String,
        strategy: String,
        environment: String,
        provider: String,
        steps: usize,
        dry_run: bool,
        initiator: String,
        /// What runs on the platform that the store did not know and the run starts from (a
        /// cluster's Deployment adopted as the baseline), per component.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        baseline: Vec<String>,
    },
    StepStarted {
        step: usize,
        component: String,
        description: String,
    },
    StepCompleted {
        step: usize,
        component: String,
    },
    InstancesReady {
        component: String,
        revision: String,
        ready: u32,
        desired: u32,
    },
    TrafficShifted {
        component: String,
        weights: Vec<Weight>,
    },
    /// An instance's process exited or crashed and was restarted.
    InstanceRestarted {
        component: String,
        instance: String,
        restarts: u32,
        detail: String,
    },
    Analysis {
        component: String,
        verdicts: Vec<Verdict>,
        /// Milliseconds until the next decision.
        next_in_ms: Option<u64>,
        #[serde(default)]
        decision: AnalysisDecision,
        /// Why, when the decision is not to continue.
        #[serde(default)]
        reason: Option<String>,
        /// Requests per second each revision of the component served over the interval, by
        /// revision key (the traffic pane's share served over time).
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        served: std::collections::BTreeMap<String, f64>,
    },
    /// Validation checks ran (pre- or post-deployment).
    Checks {
        category: String,
        results: Vec<crate::verify::CheckResult>,
        passed: bool,
    },
    GateWaiting {
        gate: String,
        component: String,
        hint: String,
    },
    GateApproved {
        gate: String,
        by: String,
        comment: Option<String>,
    },
    GateRejected {
        gate: String,
        by: String,
        reason: String,
    },
    /// One approval of a gate that needs more than one person.
    GateVote {
        gate: String,
        by: String,
        comment: Option<String>,
        approvals: u32,
        required: u32,
    },
    /// A step of the gate's escalation ladder was taken.
    GateEscalated {
        gate: String,
        step: usize,
        description: String,
        notify: Vec<String>,
        action: Option<String>,
    },
    Paused {
        by: String,
        reason: String,
    },
    Resumed {
        by: String,
    },
    Promoted {
        by: String,
    },
    Failure {
        reason: String,
    },
    RollbackStarted {
        reason: String,
        target: Vec<Weight>,
        plan: Vec<String>,
    },
    RollbackStep {
        component: String,
        description: String,
    },
    RollbackCompleted {
        component: String,
    },
    CommandRefused {
        command: String,
        by: String,
        reason: String,
    },
    /// The state store does not take the journal's lines for now (another process holds it,
    /// the disk is full, the file is read-only): `lines` of this run wait, in order, and are
    /// written as soon as it does. Broadcast only (it cannot be journaled while it lasts).
    JournalDelayed {
        lines: usize,
        error: String,
    },
    /// The lines that waited are in the journal now (this line is journaled after them).
    JournalCaughtUp {
        lines: usize,
        waited_ms: u64,
        error: String,
    },
    /// Retention replaced a finished run's routine analysis lines (every verdict a pass, the
    /// decision to continue) by their counts; lines with any other verdict or decision stay.
    Pruned {
        /// Lines removed.
        lines: usize,
        /// Verdicts of the removed lines, per signal: pass, fail, no data, error.
        verdicts: std::collections::BTreeMap<String, [u32; 4]>,
        /// The first and last of them.
        from: String,
        to: String,
    },
    /// The store rejected lines for good (not a passing fault): they are not in the journal.
    JournalLost {
        lines: usize,
        error: String,
    },
    Finished {
        outcome: Outcome,
        reason: String,
        /// Why, as a category, when it did not succeed (absent in journals written before it
        /// was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<Cause>,
        /// The run that ended this one, when another did (an operator's rollback of a run whose
        /// process had gone): that run's own end counts the rollback.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by_run: Option<i64>,
        /// Lines still waiting to be written to the store when the run ended (the run's end
        /// among them), in words; absent when everything is written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        journal: Option<String>,
    },
}

impl EventKind {
    /// The `kind` tag as a string.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Started { .. } => "started",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::StepCompleted { .. } => "step_completed",
            EventKind::InstancesReady { .. } => "instances_ready",
            EventKind::TrafficShifted { .. } => "traffic_shifted",
            EventKind::InstanceRestarted { .. } => "instance_restarted",
            EventKind::Analysis { .. } => "analysis",
            EventKind::Checks { .. } => "checks",
            EventKind::GateWaiting { .. } => "gate_waiting",
            EventKind::GateApproved { .. } => "gate_approved",
            EventKind::GateRejected { .. } => "gate_rejected",
            EventKind::GateVote { .. } => "gate_vote",
            EventKind::GateEscalated { .. } => "gate_escalated",
            EventKind::Paused { .. } => "paused",
            EventKind::Resumed { .. } => "resumed",
            EventKind::Promoted { .. } => "promoted",
            EventKind::Failure { .. } => "failure",
            EventKind::RollbackStarted { .. } => "rollback_started",
            EventKind::RollbackStep { .. } => "rollback_step",
            EventKind::RollbackCompleted { .. } => "rollback_completed",
            EventKind::CommandRefused { .. } => "command_refused",
            EventKind::JournalDelayed { .. } => "journal_delayed",
            EventKind::JournalCaughtUp { .. } => "journal_caught_up",
            EventKind::JournalLost { .. } => "journal_lost",
            EventKind::Pruned { .. } => "pruned",
            EventKind::Finished { .. } => "finished",
        }
    }
}

/// The latest state of one deployment run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub deployment: String,
    pub run: i64,
    pub version: String,
    pub strategy: crate::spec::Strategy,
    pub environment: String,
    pub status: Status,
    pub step: usize,
    pub steps: usize,
    pub step_description: String,
    /// The gate being waited at, if any.
    pub gate: Option<String>,
    /// Who may still approve it, who has, and the time to its next escalation step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_view: Option<crate::governance::gate::GateView>,
    pub traffic: Vec<ComponentTraffic>,
    /// The instances of the revisions involved, as last seen.
    #[serde(default)]
    pub instances: Vec<InstanceHealth>,
    pub last_verdicts: Vec<Verdict>,
    pub reason: Option<String>,
    pub outcome: Option<Outcome>,
    /// What a rollback under way is doing, journaled before it acts, so that whoever takes the
    /// run over after a crash goes on rolling back to the same revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_back: Option<RollbackIntent>,
}

/// A rollback's intent: why, to which version if one was named, and per component the revision
/// being taken off and the one it returns to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackIntent {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// The version asked for (`rollback --to`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The version the run presents (the serving one, for a rollback of a finished deployment).
    pub version: String,
    pub components: Vec<IntentComponent>,
}

/// One component of a rollback's intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentComponent {
    pub component: String,
    /// The revision taken off traffic and removed.
    pub from: String,
    /// The revision the run knew as the previous one (the target unless `to` names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// One instance's health as the engine last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub component: String,
    pub revision: String,
    pub version: String,
    #[serde(flatten)]
    pub status: crate::provider::InstanceStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentTraffic {
    pub component: String,
    pub weights: Vec<Weight>,
    /// Requests per second each revision (by key) actually served, as last measured.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub measured_rps: std::collections::BTreeMap<String, f64>,
}
