//! Providers: what a platform does for the engine, behind one trait.
//!
//! Owns: the [`Provider`] trait and the types that cross it. Implementations: `simulated` (tests and
//! dry runs); the local host and Kubernetes plug in here. Must not touch: strategy decisions, the store.

pub mod kubernetes;
pub mod lease;
pub mod simulated;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::spec::Component;

/// Names one revision of one component, unique in a state store.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RevisionKey(pub String);

impl std::fmt::Display for RevisionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything a provider needs to run a revision's instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionSpec {
    pub key: RevisionKey,
    pub deployment: String,
    pub version: String,
    pub environment: String,
    pub component: Component,
    /// The run that asks, and the plan step it is at (a platform may stamp its objects with
    /// them so that another machine can see who changed what).
    #[serde(default)]
    pub run: i64,
    #[serde(default)]
    pub step: usize,
}

/// One instance as the provider sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    /// Passing its readiness checks: may receive traffic.
    pub ready: bool,
    /// Failing its checks after having been ready, or crashed.
    pub unhealthy: bool,
    pub restarts: u32,
    /// The last probe error or exit, if any.
    pub detail: Option<String>,
    /// The probe type (http, tcp, exec, grpc), if the platform probes.
    #[serde(default)]
    pub probe: String,
    #[serde(default)]
    pub last_latency_ms: Option<f64>,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Where the platform has pods: the pod's phase (`Pending`, `Running`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// How long the instance has existed, in seconds, when it was looked at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
}

/// A revision's instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevisionStatus {
    pub desired: u32,
    pub instances: Vec<InstanceStatus>,
}

impl RevisionStatus {
    pub fn ready(&self) -> u32 {
        self.instances.iter().filter(|i| i.ready).count() as u32
    }
    pub fn unhealthy(&self) -> u32 {
        self.instances.iter().filter(|i| i.unhealthy).count() as u32
    }
}

/// Built-in metrics of one revision over the recent window: `request_rate` (req/s),
/// `error_rate` (0..1), `response_time` (p99 ms), and whatever else the provider measures.
pub type Metrics = BTreeMap<String, f64>;

/// How a platform split a component's traffic when asked for weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Split {
    /// The share (percent) each revision serves where the platform cannot split exactly as
    /// asked (a replica ratio: the nearest pod counts); empty when the split is exact.
    pub achieved: Vec<(RevisionKey, f64)>,
}

impl Split {
    /// Exactly as asked.
    pub fn exact() -> Split {
        Split::default()
    }

    /// The share a revision serves, when it differs from what was asked.
    pub fn of(&self, key: &RevisionKey) -> Option<f64> {
        self.achieved
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, w)| *w)
    }
}

/// A workload that serves a component without the store knowing it ([`Provider::running`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// What it is, for the plan and the events (`Deployment api (not created by cutover)`).
    pub what: String,
    pub version: String,
    pub replicas: u32,
    /// Its revision key where cutover (on another machine) created it; none for a workload
    /// cutover adopts.
    pub key: Option<RevisionKey>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Failed(String),
    #[error("revision {0} is not known to the provider")]
    UnknownRevision(RevisionKey),
    #[error("provider `{0}` is not available: {1}")]
    Unavailable(String, String),
}

/// What a platform does: start, scale, route, report, remove.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which platform this is (recorded with each run; events show its name).
    fn kind(&self) -> crate::spec::ProviderKind;
    /// Start the revision's instances, or scale them, to `replicas`. Returns without waiting for readiness.
    async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), ProviderError>;
    /// Set the traffic weights (percent, summing to 100 or 0) across a component's revisions;
    /// says what share each serves where the platform can only come near the weights asked.
    async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<Split, ProviderError>;
    /// Instance readiness and health.
    async fn revision_status(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<RevisionStatus, ProviderError>;
    /// Built-in metrics of one revision over the last `window`.
    async fn metrics(
        &self,
        component: &str,
        rev: &RevisionKey,
        window: std::time::Duration,
    ) -> Result<Metrics, ProviderError>;
    /// Stop and forget a revision's instances.
    async fn remove_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError>;
    /// Take a revision that served well out of service after a later one replaced it. A
    /// platform that can keeps what a rollback from elsewhere needs (a cluster keeps the
    /// Deployment at 0 replicas, as Argo Rollouts keeps old ReplicaSets); the default removes it.
    async fn retire_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError> {
        self.remove_revision(component, rev).await
    }
    /// What already serves `component` on the platform though the state store knows no revision
    /// of it: a workload cutover did not create, or a revision another machine's cutover
    /// started. A first rollout starts from it as its baseline. None by default (a platform
    /// only this store drives).
    async fn running(&self, component: &str) -> Result<Option<Running>, ProviderError> {
        let _ = component;
        Ok(None)
    }
    /// Take what [`Provider::running`] found as revision `key` of `component` (the store's
    /// name for it from now on).
    async fn adopt_revision(
        &self,
        component: &str,
        running: &Running,
        key: &RevisionKey,
    ) -> Result<(), ProviderError> {
        let _ = (component, running, key);
        Ok(())
    }
    /// Whether a revision of `component`, recorded earlier and possibly stopped since, can be
    /// started again here (a rollback may only target one that can); the error says why not.
    /// The default (the simulated platform's answer) is yes; `local` checks that the command's
    /// program is still there.
    fn can_restart(&self, component: &Component) -> Result<(), ProviderError> {
        let _ = component;
        Ok(())
    }
    /// The platform's own hold on targets, for a platform that other machines drive too; none
    /// (the default) where the state store's lock is the only way in (local, simulated).
    fn lease(&self) -> Option<std::sync::Arc<dyn lease::TargetLease>> {
        None
    }
}
