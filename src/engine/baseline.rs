//! A run's baseline as the platform has it, where it differs from the store: a revision the
//! store calls active that the platform no longer runs (a stopped host, a deleted namespace, a
//! cluster where another machine rolled it back to 0 replicas), and what serves a component
//! though the store knows no revision of it (a cluster's plain Deployment, a revision another
//! machine's cutover started).
//!
//! Owns: reading that from the provider before a run starts, taking a found workload on the
//! platform once the platform's lease is held, and recording both once the run is recorded (a
//! refused start writes nothing to the store). Must not touch: the plan (`start` builds it from
//! what this returns), the run's own revisions.

use std::collections::BTreeMap;

use super::refusal::Refusal;
use super::{Engine, EngineError};
use crate::provider::{RevisionKey, Running};
use crate::spec::{Replicas, ValidSpec};
use crate::store::{RevisionRow, RevisionState};

impl Engine {
    /// Remove from `previous` the revisions the platform no longer runs (returned, to be
    /// retired in the store once the run is recorded), and find what serves the components
    /// the store knows nothing of (not for dry runs: the simulated world has only what the
    /// store says).
    pub(super) async fn platform_previous(
        &self,
        spec: &ValidSpec,
        previous: &mut BTreeMap<String, RevisionRow>,
        dry: bool,
    ) -> Result<(Vec<RevisionRow>, BTreeMap<String, Running>), Refusal> {
        let mut gone = Vec::new();
        let comps: Vec<String> = previous.keys().cloned().collect();
        for comp in comps {
            let Some(row) = previous.get(&comp) else {
                continue;
            };
            let key = RevisionKey(row.rev_key.clone());
            let status = self.inner.provider.revision_status(&comp, &key).await;
            if status.is_err() || status.is_ok_and(|s| s.desired == 0) {
                if let Some(row) = previous.remove(&comp) {
                    gone.push(row);
                }
            }
        }
        let mut found = BTreeMap::new();
        if dry {
            return Ok((gone, found));
        }
        for c in spec.ordered_components() {
            if previous.contains_key(&c.id) {
                continue;
            }
            match self.inner.provider.running(&c.id).await {
                Ok(Some(r)) => {
                    found.insert(c.id.clone(), r);
                }
                Ok(None) => {}
                Err(e) => return Err(Refusal::Platform(format!("{}: {e}", c.id))),
            }
        }
        Ok((gone, found))
    }

    /// Take each found workload cutover did not create as a revision, under a key chosen here
    /// (the platform records it first, so a crash before the store does leaves a workload
    /// the next start finds again under the same key). A failure refuses the start.
    pub(super) async fn adopt_found(
        &self,
        found: &mut BTreeMap<String, Running>,
    ) -> Result<(), Refusal> {
        for (comp, f) in found.iter_mut() {
            let key = match &f.key {
                Some(k) => k.clone(),
                None => RevisionKey(format!(
                    "{comp}@{}.adopted-{}",
                    f.version,
                    chrono::Utc::now().timestamp_millis()
                )),
            };
            self.inner
                .provider
                .adopt_revision(comp, f, &key)
                .await
                .map_err(|e| {
                    Refusal::Platform(format!(
                        "{comp}: cannot take {} as the baseline: {e}",
                        f.what
                    ))
                })?;
            tracing::info!("{comp}: {} is the baseline, as {key}", f.what);
            f.key = Some(key);
        }
        Ok(())
    }

    /// Once run `run_id` is recorded: retire the `gone` revisions in the store, and record the
    /// found ones as the active revisions `previous` now holds.
    pub(super) async fn record_found(
        &self,
        run_id: i64,
        spec: &ValidSpec,
        gone: Vec<RevisionRow>,
        found: &BTreeMap<String, Running>,
        previous: &mut BTreeMap<String, RevisionRow>,
    ) -> Result<(), EngineError> {
        let store = self.inner.store.clone();
        for row in gone {
            tracing::warn!(
                "{}: not running on the provider any more; retired",
                row.rev_key
            );
            store
                .call(move |s| s.set_revision_status(&row.rev_key, RevisionState::Retired))
                .await?;
        }
        for (comp, f) in found {
            let (Some(c), Some(key)) = (spec.components.iter().find(|c| &c.id == comp), &f.key)
            else {
                continue;
            };
            let rev = crate::store::NewRevision {
                run: run_id,
                component: comp.clone(),
                environment: spec.environment.clone(),
                version: f.version.clone(),
                dry_run: false,
                replicas: Replicas::new(i64::from(f.replicas)).unwrap_or(Replicas::ONE),
                config_json: serde_json::to_string(c).unwrap_or_default(),
            };
            let key = key.0.clone();
            let row = store
                .call(move |s| {
                    s.insert_found_revision(&rev, &key)?;
                    s.revision(&key)
                })
                .await?;
            if let Some(row) = row {
                previous.insert(comp.clone(), row);
            }
        }
        Ok(())
    }
}
