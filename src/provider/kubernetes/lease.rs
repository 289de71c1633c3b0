//! The engine's [`TargetLease`] on a cluster: one `coordination.k8s.io` Lease per target, in the
//! namespace cutover deploys to, so that a second cutover on any machine is refused while a run
//! drives the component, and may take over once the lease has expired.
//!
//! Owns: mapping targets to Lease names and the lease driver's answers to the engine's terms.
//! Must not touch: runs, the store (the engine decides when to take, renew and give back).

use std::time::Duration;

use async_trait::async_trait;
use cutover_kube::lease::{lease_name, LeaseHolder as KubeHolder, LeaseRefusal, Leases};

use crate::provider::lease::{LeaseError, LeaseHolder, Taken, TargetLease};

/// How long a lease lives without renewal: a driver that died frees its components this long
/// after its last renewal (the engine renews every third of it).
pub const TTL: Duration = Duration::from_secs(30);

pub struct KubeLease {
    leases: Leases,
}

impl KubeLease {
    pub fn new(client: cutover_kube::kube::Client, namespace: &str) -> KubeLease {
        KubeLease {
            leases: Leases::new(client, namespace, TTL),
        }
    }

    fn names(targets: &[String]) -> Vec<String> {
        targets.iter().map(|t| lease_name(t)).collect()
    }

    fn refusal(targets: &[String], r: LeaseRefusal) -> LeaseError {
        match r {
            LeaseRefusal::Held {
                name,
                holder_identity,
                deployment,
                run,
                expires_in,
            } => {
                let target = targets
                    .iter()
                    .find(|t| lease_name(t) == name)
                    .cloned()
                    .unwrap_or(name);
                let deployment = match run {
                    Some(run) if !run.is_empty() => format!("{deployment} (run {run})"),
                    _ => deployment,
                };
                LeaseError::Held(Taken {
                    target,
                    holder: LeaseHolder {
                        deployment,
                        identity: holder_identity,
                    },
                    expires_in,
                })
            }
            LeaseRefusal::Kube(e) => LeaseError::Unavailable(e.to_string()),
        }
    }
}

fn holder(h: &LeaseHolder) -> KubeHolder {
    KubeHolder {
        identity: h.identity.clone(),
        deployment: h.deployment.clone(),
        run: None,
    }
}

#[async_trait]
impl TargetLease for KubeLease {
    fn ttl(&self) -> Duration {
        TTL
    }

    async fn acquire(&self, targets: &[String], h: &LeaseHolder) -> Result<(), LeaseError> {
        bounded(self.leases.acquire(&Self::names(targets), &holder(h)))
            .await?
            .map_err(|r| Self::refusal(targets, r))
    }

    async fn renew(&self, targets: &[String], h: &LeaseHolder) -> Result<(), LeaseError> {
        bounded(self.leases.renew(&Self::names(targets), &holder(h)))
            .await?
            .map_err(|r| Self::refusal(targets, r))
    }

    async fn release(&self, targets: &[String], h: &LeaseHolder) {
        match bounded(self.leases.release(&Self::names(targets), &holder(h))).await {
            Ok(Ok(())) => {}
            // It expires by itself.
            Ok(Err(e)) => tracing::warn!("could not give back the leases of {targets:?}: {e}"),
            Err(e) => tracing::warn!("could not give back the leases of {targets:?}: {e}"),
        }
    }
}

/// A lease call that has not answered within a third of the lease's time to live has failed:
/// a renewal stuck longer than that would outlive the lease it keeps.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> Result<T, LeaseError> {
    tokio::time::timeout(TTL / 3, call).await.map_err(|_| {
        LeaseError::Unavailable(format!(
            "the API server did not answer within {}s",
            (TTL / 3).as_secs()
        ))
    })
}
