//! One driver per target, as a platform holds it.
//!
//! Every run holds its targets (a component in an environment on a provider) in the state store
//! from its creation to its end (`store::locks`). That is the whole story where the store is the
//! only way in, as for the local host (one per state dir). A platform that other machines drive
//! too holds the same targets there as well, with an expiry: on Kubernetes, a
//! `coordination.k8s.io` Lease per component. The engine takes the lease before it records a
//! run, renews it while the run is driven (a third of its time to live), and gives it back when
//! the run has ended; a run whose process died keeps it until it expires, and may then be taken
//! over from anywhere.
//!
//! Owns: the [`TargetLease`] trait and what crosses it. Must not touch: the store, runs.

use std::time::Duration;

use async_trait::async_trait;

/// Who asks for or holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The deployment (spec id) whose run drives the targets.
    pub deployment: String,
    /// The person and process: `user pid N on HOST`.
    pub identity: String,
}

/// A target held by someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub target: String,
    pub holder: LeaseHolder,
    /// How long until the lease expires, if it is not renewed.
    pub expires_in: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("{} is held on the platform by {} for {} (expires in {}s unless renewed)",
        .0.target, .0.holder.identity, .0.holder.deployment, .0.expires_in.as_secs())]
    Held(Taken),
    #[error("the platform's lease cannot be reached: {0}")]
    Unavailable(String),
}

/// The platform's side of one driver per target.
#[async_trait]
pub trait TargetLease: Send + Sync {
    /// How long a lease lives without renewal.
    fn ttl(&self) -> Duration;
    /// Take every target for `holder`, all or none: one held by another holder that has not
    /// expired refuses them all. Taking what `holder` already holds renews it.
    async fn acquire(&self, targets: &[String], holder: &LeaseHolder) -> Result<(), LeaseError>;
    /// Keep them for another time to live; refused if another holder took one after expiry.
    async fn renew(&self, targets: &[String], holder: &LeaseHolder) -> Result<(), LeaseError>;
    /// Give them back (what `holder` does not hold is left alone).
    async fn release(&self, targets: &[String], holder: &LeaseHolder);
}
