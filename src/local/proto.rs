//! The local host's API: JSON lines over a Unix socket in the state dir.
//!
//! Owns: the request and response shapes shared by the host and its clients. Must not touch: I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::probe::ProbeStatus;
use crate::provider::{Metrics, RevisionKey, RevisionSpec, RevisionStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    ApplyRevision {
        rev: Box<RevisionSpec>,
        replicas: u32,
    },
    SetWeights {
        component: String,
        weights: Vec<(RevisionKey, u32)>,
    },
    RevisionStatus {
        component: String,
        rev: RevisionKey,
    },
    Metrics {
        component: String,
        rev: RevisionKey,
        window_ms: u64,
    },
    RemoveRevision {
        component: String,
        rev: RevisionKey,
    },
    Status,
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Pong {
        pid: u32,
        state_dir: String,
        started_at: String,
    },
    RevisionStatus {
        status: RevisionStatus,
    },
    Metrics {
        metrics: Metrics,
    },
    Status {
        status: HostStatus,
    },
    Error {
        message: String,
    },
}

/// Everything the host runs, for `cutover host status` and the console.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostStatus {
    /// The worker: the process that serves (`host.pid`).
    pub pid: u32,
    /// The supervisor that holds its sockets and restarts it, if one runs it.
    #[serde(default)]
    pub supervisor_pid: Option<u32>,
    pub state_dir: String,
    pub started_at: String,
    pub components: Vec<ComponentView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComponentView {
    pub component: String,
    pub listen: String,
    pub revisions: Vec<RevisionView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevisionView {
    pub key: RevisionKey,
    pub version: String,
    pub weight: u32,
    pub requests: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: String,
    pub pid: Option<u32>,
    pub ports: BTreeMap<String, u16>,
    pub running: bool,
    pub ready: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub inflight: usize,
    pub probe: ProbeStatus,
    pub log: String,
}
