//! The Kubernetes platform: the same plans as the local host, carried out on a cluster through
//! `cutover-kube` (which holds everything said to the API server).
//!
//! Owns: mapping a spec's components to workloads ([`workload`]), weights to replica counts
//! ([`split`]), the [`Provider`](crate::provider::Provider) on a cluster ([`KubeProvider`]) and
//! the engine's lease there ([`lease`]). Must not touch: strategy decisions, the store.

pub mod lease;
pub mod on_cluster;
mod provider;
mod read;
pub mod split;
pub mod workload;

pub use cutover_kube::cluster::Settings;
pub use provider::KubeProvider;

use cutover_kube::cluster::Cluster;
use cutover_kube::KubeError;

use crate::spec::Spec;

/// Connect to the cluster `settings` name (kubectl's `--context`, `--namespace`) for `spec`, in
/// the namespace the flag, the spec or the context says; a server-side dry run when `dry_run`.
pub async fn connect(
    spec: &Spec,
    settings: &Settings,
    dry_run: bool,
) -> Result<KubeProvider, KubeError> {
    let cluster = Cluster::connect(settings, spec.infrastructure.namespace.as_deref()).await?;
    let cluster = if dry_run { cluster.dry_run() } else { cluster };
    Ok(KubeProvider::new(cluster, spec))
}
