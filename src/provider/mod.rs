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
    /// Set the traffic weights (percent, summing to 100 or 0) across a component's revisions.
    async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<(), ProviderError>;
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
