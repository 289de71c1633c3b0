//! The provider on a cluster: a revision is a Deployment, traffic is a Service's selector, an
//! HTTPRoute's weights or a replica ratio, health is the pods as a watch sees them.
//!
//! Owns: what each [`Provider`] call writes to or reads from the cluster for one spec (its
//! namespace, its traffic mode, its components), and the revisions it has met. Must not touch:
//! strategy decisions (the engine's plan says what to do; this only does it), the store.

mod baseline;
mod front;

pub use baseline::RETIRED_KEPT;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use cutover_kube::cluster::{Cluster, Kind};
use cutover_kube::health::PodWatch;
use cutover_kube::labels::{self, annotations, revision_name};
use cutover_kube::manifest;
use cutover_kube::workload::{GatewayRef, Stamp, Traffic};
use cutover_kube::KubeError;
use serde_json::Value;

use super::lease::KubeLease;
use super::read::{failing, instance, rev_of, split_of, Rev};
use super::split;
use super::workload;
use crate::provider::lease::TargetLease;
use crate::provider::{
    Metrics, Provider, ProviderError, RevisionKey, RevisionSpec, RevisionStatus, Running, Split,
};
use crate::spec::{ProviderKind, Spec, Strategy};

/// How long a status read waits for a new pod watch's first list.
const WATCH_START: Duration = Duration::from_secs(10);
/// How long a blue-green switch waits for the new revision to be fully available.
const AVAILABLE_WAIT: Duration = Duration::from_secs(60);
/// How long a removal waits for a revision's pods to terminate (kubelet's default grace period
/// is 30 s).
const DRAIN_WAIT: Duration = Duration::from_secs(90);

#[derive(Default)]
struct Comp {
    revs: BTreeMap<RevisionKey, Rev>,
    watch: Option<Arc<PodWatch>>,
    /// The weights last set (a Gateway route is rewritten without a revision being removed).
    weights: Vec<(RevisionKey, u32)>,
    /// The shared Services are in place (stable, or preview) for this process.
    services: bool,
    /// Objects (`Kind/name`) found to be cutover's, or absent, in this process.
    checked: std::collections::BTreeSet<String>,
    /// The Deployment cutover did not create that serves as a revision (the first rollout's
    /// baseline), if any.
    adopted: Option<baseline::Adopted>,
    /// The run and step that last wrote a revision of the component: the route and the active
    /// Service are stamped with them when the weights move.
    stamp: Option<Stamp>,
    /// A team's own Services that select the component's pods (their labels are carried),
    /// once looked for in this process.
    team_services: Option<std::collections::BTreeSet<String>>,
}

/// Wait (bounded by [`WATCH_START`]) for a pod watch's first list.
async fn first_list(w: &PodWatch) {
    let mut changed = w.changed();
    let _ = tokio::time::timeout(WATCH_START, async {
        while !w.ready() {
            if changed.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
}

/// One spec's components on one namespace of one cluster.
pub struct KubeProvider {
    cluster: Cluster,
    spec: Spec,
    traffic: Traffic,
    gateway: Option<GatewayRef>,
    comps: Mutex<BTreeMap<String, Comp>>,
    lease: Arc<KubeLease>,
}

fn failed(e: KubeError) -> ProviderError {
    ProviderError::Failed(e.to_string())
}

impl KubeProvider {
    pub fn new(cluster: Cluster, spec: &Spec) -> KubeProvider {
        let lease = Arc::new(KubeLease::new(cluster.client(), cluster.namespace()));
        KubeProvider {
            traffic: workload::traffic(spec),
            gateway: workload::gateway(spec),
            spec: spec.clone(),
            comps: Mutex::new(BTreeMap::new()),
            lease,
            cluster,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Comp>> {
        // A panic elsewhere cannot leave this map half-written (every change is one insert).
        self.comps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stamp(rev: &RevisionSpec) -> Stamp {
        workload::stamp(
            &format!("{}#{}", rev.deployment, rev.run),
            Some(rev.step as u32),
            None,
        )
    }

    /// A revision of `component`: as met in this process, else as its Deployment on the
    /// cluster says (a run taken over from another process or machine).
    async fn rev(&self, component: &str, key: &RevisionKey) -> Result<Rev, ProviderError> {
        if let Some(r) = self
            .lock()
            .get(component)
            .and_then(|c| c.revs.get(key))
            .cloned()
        {
            return Ok(r);
        }
        let name = revision_name(component, &key.0);
        let Some(d) = self
            .cluster
            .get(Kind::Deployment, &name)
            .await
            .map_err(failed)?
        else {
            return match self.adopted_rev(component, key).await? {
                Some(r) => Ok(r),
                None => Err(ProviderError::UnknownRevision(key.clone())),
            };
        };
        let rev = rev_of(&name, &d);
        self.lock()
            .entry(component.to_string())
            .or_default()
            .revs
            .insert(key.clone(), rev.clone());
        Ok(rev)
    }

    /// The component's pod watch, started on first use; waits (bounded) for its first list.
    async fn watch(&self, component: &str) -> Arc<PodWatch> {
        let w = {
            let mut comps = self.lock();
            let c = comps.entry(component.to_string()).or_default();
            c.watch
                .get_or_insert_with(|| {
                    let selector =
                        format!("{}={}", labels::COMPONENT, labels::label_value(component));
                    Arc::new(PodWatch::start(
                        self.cluster.client(),
                        self.cluster.namespace(),
                        &selector,
                    ))
                })
                .clone()
        };
        first_list(&w).await;
        w
    }

    /// Wait until `rev`'s pods are all ready, as the watch sees them (a blue-green switch
    /// happens only once the new revision is fully available).
    async fn available(&self, component: &str, key: &RevisionKey, rev: &Rev) -> bool {
        let (w, _) = self.pods_of(component, key).await;
        let mut changed = w.changed();
        let want = rev.replicas.max(1);
        tokio::time::timeout(AVAILABLE_WAIT, async {
            loop {
                let ready = self
                    .pods_of(component, key)
                    .await
                    .1
                    .iter()
                    .filter(|p| p.ready)
                    .count() as u32;
                if ready >= want {
                    return true;
                }
                if changed.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Wait until no pod of `rev` is left, as the watch sees them (bounded by [`DRAIN_WAIT`]).
    async fn drained(&self, component: &str, rev: &RevisionKey) -> bool {
        let (w, _) = self.pods_of(component, rev).await;
        let mut changed = w.changed();
        tokio::time::timeout(DRAIN_WAIT, async {
            loop {
                if self.pods_of(component, rev).await.1.is_empty() {
                    return true;
                }
                if changed.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    async fn scale(&self, component: &str, key: &RevisionKey, n: u32) -> Result<(), ProviderError> {
        let rev = self.rev(component, key).await?;
        if rev.replicas == n {
            return Ok(());
        }
        self.cluster.scale(&rev.name, n).await.map_err(failed)?;
        if let Some(r) = self
            .lock()
            .get_mut(component)
            .and_then(|c| c.revs.get_mut(key))
        {
            r.replicas = n;
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for KubeProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Kubernetes
    }

    async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), ProviderError> {
        let mut w = workload::workload(
            &self.spec,
            &rev.component,
            &rev.key.0,
            &rev.version,
            Self::stamp(rev),
        );
        let name = revision_name(&rev.component.id, &rev.key.0);
        let existing = match self.rev(&rev.component.id, &rev.key).await {
            Ok(r) => Some(r),
            Err(ProviderError::UnknownRevision(_)) => None,
            Err(e) => return Err(e),
        };
        if existing.is_some() {
            // A revision that runs is only scaled and stamped: its Deployment is never applied
            // again, so its pod template (and its pods) stay as first written, whatever the
            // spec that scales it now says.
            self.scale(&rev.component.id, &rev.key, replicas).await?;
            // (A replaced revision serving again is no longer retired.)
            let body = serde_json::json!({ "metadata": { "annotations": {
                annotations::RUN: w.stamp.run,
                annotations::STEP: w.stamp.step.map(|s| s.to_string()),
                annotations::RETIRED: null,
                annotations::ROLLED_BACK: null,
            }}});
            let name = self.rev(&rev.component.id, &rev.key).await?.name;
            self.cluster
                .merge_patch(Kind::Deployment, &name, &body)
                .await
                .map_err(failed)?;
        } else {
            w.pod_labels = self.carried_labels(&rev.component.id, &rev.key).await?;
            self.apply(&manifest::deployment(&w, replicas)).await?;
            self.lock()
                .entry(rev.component.id.clone())
                .or_default()
                .revs
                .insert(
                    rev.key.clone(),
                    Rev {
                        name,
                        full: w.replicas,
                        replicas,
                        ports: w.ports.clone(),
                    },
                );
        }
        self.lock()
            .entry(rev.component.id.clone())
            .or_default()
            .stamp = Some(w.stamp.clone());
        self.services_for(rev, &w).await?;
        self.watch(&rev.component.id).await;
        Ok(())
    }

    async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<Split, ProviderError> {
        if weights.is_empty() {
            // Taking a revision off traffic before removing it: the removal does it here (its
            // pods leave the Service's endpoints; a route drops its backend first).
            return Ok(Split::exact());
        }
        let split = match self.traffic {
            // Rolling and recreate set both revisions' counts in their own plan steps: the
            // weight there is the share those counts give, and nothing is scaled for it.
            Traffic::ReplicaRatio if self.spec.strategy != Strategy::Canary => {
                let mut achieved = Vec::new();
                let mut all = 0;
                for (key, _) in weights {
                    let n = self.rev(component, key).await?.replicas;
                    all += n;
                    achieved.push((key.clone(), n));
                }
                let achieved: Vec<(RevisionKey, f64)> = achieved
                    .into_iter()
                    .map(|(k, n)| (k, cutover_kube::ratio::achieved(n, all - n)))
                    .collect();
                split_of(achieved, weights)
            }
            Traffic::ReplicaRatio => {
                let mut full = BTreeMap::new();
                for (key, _) in weights {
                    full.insert(key.clone(), self.rev(component, key).await?.full);
                }
                let counts = split::counts(weights, &|k| full.get(k).copied().unwrap_or(1));
                // Grow before shrinking, so that the component never has fewer pods than asked.
                let mut order = counts.replicas.clone();
                let current: BTreeMap<RevisionKey, u32> = {
                    let comps = self.lock();
                    order
                        .iter()
                        .filter_map(|(k, _)| {
                            comps
                                .get(component)
                                .and_then(|c| c.revs.get(k))
                                .map(|r| (k.clone(), r.replicas))
                        })
                        .collect()
                };
                order.sort_by_key(|(k, n)| *n < current.get(k).copied().unwrap_or(0));
                for (key, n) in &order {
                    self.scale(component, key, *n).await?;
                }
                split_of(counts.achieved, weights)
            }
            Traffic::GatewayApi => {
                self.route(component, weights).await?;
                Split::exact()
            }
            Traffic::ActivePreview => {
                // A Service selects one revision: the switch moves all traffic at once, to the
                // revision with the most weight (a gradual rollback's steps become one switch;
                // a gradual switch forward is refused before the run, as it needs Gateway API).
                let Some((key, top)) = weights
                    .iter()
                    .fold(None::<&(RevisionKey, u32)>, |best, kw| match best {
                        Some(b) if b.1 >= kw.1 => Some(b),
                        _ => Some(kw),
                    })
                    .cloned()
                else {
                    return Ok(Split::exact());
                };
                self.ours(component, Kind::Service, &manifest::service_name(component))
                    .await?;
                let key = &key;
                let rev = self.rev(component, key).await?;
                if !self.available(component, key, &rev).await {
                    return Err(ProviderError::Failed(format!(
                        "{component}: {} is not fully available after {}s; the active Service stays where it is",
                        rev.name,
                        AVAILABLE_WAIT.as_secs()
                    )));
                }
                let ports = if rev.ports.is_empty() {
                    self.ports_of(component)
                } else {
                    rev.ports.clone()
                };
                let mut svc = manifest::active_service(component, &self.spec.id, &ports, &key.0);
                self.stamp_of(component, &mut svc);
                let weights_text = weights
                    .iter()
                    .map(|(k, w)| format!("{k}={w}"))
                    .collect::<Vec<_>>()
                    .join(",");
                if let Some(a) = svc
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    a.insert(annotations::WEIGHTS.into(), Value::String(weights_text));
                }
                self.apply(&svc).await?;
                if top == 100 {
                    Split::exact()
                } else {
                    Split {
                        achieved: weights
                            .iter()
                            .map(|(k, _)| (k.clone(), if k == key { 100.0 } else { 0.0 }))
                            .collect(),
                    }
                }
            }
        };
        if let Some(c) = self.lock().get_mut(component) {
            c.weights = weights.to_vec();
        }
        Ok(split)
    }

    async fn revision_status(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<RevisionStatus, ProviderError> {
        let r = self.rev(component, rev).await?;
        let (w, pods) = self.pods_of(component, rev).await;
        if let Some(e) = w.last_error() {
            if !w.ready() {
                return Err(failed(e));
            }
        }
        let instances = pods.iter().map(instance).collect();
        Ok(RevisionStatus {
            desired: r.replicas,
            instances,
        })
    }

    /// What a cluster measures without a router: `failure_rate`, the share of the revision's
    /// pods that fail ([`failing`]), as the local host counts instances whose probe fails; a
    /// pod still starting is not failing. The router's request metrics (`request_rate`, `error_rate`,
    /// `response_time`) do not exist here: a spec reads them from Prometheus instead.
    async fn metrics(
        &self,
        component: &str,
        rev: &RevisionKey,
        _window: Duration,
    ) -> Result<Metrics, ProviderError> {
        self.rev(component, rev).await?;
        let (_, pods) = self.pods_of(component, rev).await;
        let mut m = Metrics::new();
        if !pods.is_empty() {
            let bad = pods.iter().filter(|p| failing(p)).count();
            m.insert("failure_rate".into(), bad as f64 / pods.len() as f64);
        }
        Ok(m)
    }

    async fn remove_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError> {
        self.take_down(component, rev, false).await
    }

    /// Scaled to 0 and kept, marked retired (the newest [`baseline::RETIRED_KEPT`] are kept):
    /// `cutover rollback --cluster` on any machine restores one.
    async fn retire_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError> {
        self.take_down(component, rev, true).await
    }

    async fn running(&self, component: &str) -> Result<Option<Running>, ProviderError> {
        self.find_running(component).await
    }

    async fn adopt_revision(
        &self,
        component: &str,
        running: &Running,
        key: &RevisionKey,
    ) -> Result<(), ProviderError> {
        self.adopt(component, running, key).await
    }

    fn lease(&self) -> Option<Arc<dyn TargetLease>> {
        if self.cluster.is_dry_run() {
            return None;
        }
        Some(self.lease.clone())
    }
}
