//! What runs before a run of this process: a Deployment cutover did not create, adopted as a
//! first rollout's baseline; a revision another machine's cutover started; revisions kept at 0
//! replicas once replaced (so that a rollback from anywhere has somewhere to go); the labels a
//! team's own Service selects the baseline's pods by, carried to the new pods.
//!
//! Owns: finding, adopting, taking down (off the route, scaled to 0, then kept as retired or
//! deleted) and pruning revisions, and the carried labels. Must not touch: the weights a step
//! asks for (the provider sets them; a take-down only drops the revision from the route), the
//! store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cutover_kube::cluster::Kind;
use cutover_kube::health::{PodView, PodWatch};
use cutover_kube::labels::{self, annotations, dns_label, label_value, revision_name, short_hash};
use cutover_kube::workload::Traffic;
use serde_json::{json, Value};

use super::{failed, KubeProvider, DRAIN_WAIT};
use crate::provider::kubernetes::read::{plain_version, rev_of};
use crate::provider::{ProviderError, RevisionKey, Running};

/// Replaced revisions kept per component as Deployments at 0 replicas, newest first (Argo
/// Rollouts keeps 10 ReplicaSets; a rollback rarely goes further back than two).
pub const RETIRED_KEPT: usize = 2;

/// A Deployment cutover did not create, serving as revision `key`.
pub(super) struct Adopted {
    pub key: RevisionKey,
    pub name: String,
    /// Its pods, watched by its own selector.
    pub watch: Arc<PodWatch>,
}

fn text<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn replicas(d: &Value) -> u32 {
    d.pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `a=b,c=d` from a map of labels.
fn selector_text(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl KubeProvider {
    /// cutover's Deployments of `component` in the namespace (every revision, retired ones too).
    pub(super) async fn revision_deployments(
        &self,
        component: &str,
    ) -> Result<Vec<Value>, ProviderError> {
        let selector = format!(
            "{}={},{}={}",
            labels::COMPONENT,
            label_value(component),
            labels::MANAGED_BY,
            labels::FIELD_MANAGER
        );
        self.cluster
            .list(Kind::Deployment, &selector)
            .await
            .map_err(failed)
    }

    /// What serves `component` though this store knows nothing of it: the cutover revision
    /// with the most replicas (another machine's), else a Deployment named as the component
    /// that cutover did not create (adopted with replica-ratio traffic only: elsewhere the
    /// team's Service would keep sending to its pods after the switch, so it is refused).
    pub(super) async fn find_running(
        &self,
        component: &str,
    ) -> Result<Option<Running>, ProviderError> {
        let ours = self.revision_deployments(component).await?;
        let serving: Vec<&Value> = ours
            .iter()
            .filter(|d| replicas(d) > 0 && annotation(d, annotations::ROLLED_BACK).is_none())
            .collect();
        if serving.len() > 1 {
            let names: Vec<String> = serving
                .iter()
                .filter_map(|d| text(d, "/metadata/name").map(str::to_string))
                .collect();
            return Err(ProviderError::Failed(format!(
                "{} revisions of {component} serve on the cluster ({}): a run elsewhere did not \
                 finish; see `cutover status {} --cluster`, then finish it there or with \
                 `cutover rollback {} --cluster`",
                serving.len(),
                names.join(", "),
                self.spec.id,
                self.spec.id
            )));
        }
        let serving = serving.first();
        if let Some(d) = serving {
            let name = text(d, "/metadata/name").unwrap_or_default();
            if let Some(key) = annotation(d, annotations::REVISION_KEY) {
                let run = annotation(d, annotations::RUN).unwrap_or("an earlier run");
                return Ok(Some(Running {
                    what: format!("Deployment {name} (revision {key}, written by {run})"),
                    version: annotation(d, annotations::VERSION)
                        .or_else(|| {
                            d.pointer("/metadata/labels")
                                .and_then(|l| l.get(labels::VERSION))
                                .and_then(Value::as_str)
                        })
                        .unwrap_or("unknown")
                        .to_string(),
                    replicas: rev_of(name, d).full.max(1),
                    key: Some(RevisionKey(key.to_string())),
                }));
            }
        }
        let name = dns_label(component, 63);
        let Some(d) = self
            .cluster
            .get(Kind::Deployment, &name)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        if labels::is_managed(&d) || replicas(&d) == 0 {
            return Ok(None);
        }
        if self.traffic != Traffic::ReplicaRatio {
            return Err(ProviderError::Failed(format!(
                "Deployment {name} in namespace {} runs {component} and was not created by cutover; \
                 cutover adopts such a Deployment as the baseline only with replica-ratio traffic \
                 (a canary, rolling or recreate without trafficRouting), where the team's Service \
                 keeps serving both; here its Service would keep sending to its pods after the \
                 switch: scale it to 0 (or delete it) once cutover's revision serves, and deploy again",
                self.cluster.namespace()
            )));
        }
        if d.pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
        {
            return Err(ProviderError::Failed(format!(
                "Deployment {name} runs {component} and was not created by cutover, but selects its \
                 pods with matchExpressions only; cutover adopts a Deployment by its matchLabels"
            )));
        }
        // Adopted before by this deployment (a crash before the store recorded it, another
        // state dir, a cluster rollback to it): the same key again.
        let key = annotation(&d, annotations::REVISION_KEY)
            .filter(|_| annotation(&d, annotations::ADOPTED_BY) == Some(self.spec.id.as_str()))
            .map(|k| RevisionKey(k.to_string()));
        Ok(Some(Running {
            what: format!("Deployment {name} (not created by cutover; adopted)"),
            version: annotation(&d, annotations::VERSION)
                .map(str::to_string)
                .unwrap_or_else(|| plain_version(&d)),
            replicas: rev_of(&name, &d).full.max(replicas(&d)),
            key,
        }))
    }

    /// Take the Deployment named as the component (not cutover's) as revision `key`: it is
    /// annotated (never otherwise changed, never deleted), and its pods are watched by its own
    /// selector. A revision another machine's cutover started needs nothing: its Deployment
    /// is found by name.
    pub(super) async fn adopt(
        &self,
        component: &str,
        running: &Running,
        key: &RevisionKey,
    ) -> Result<(), ProviderError> {
        if running.key.is_some() {
            return Ok(());
        }
        let name = dns_label(component, 63);
        let body = json!({ "metadata": { "annotations": {
            annotations::REVISION_KEY: key.0,
            annotations::ADOPTED_BY: self.spec.id,
            // Its size and version when adopted: a rollback to it scales it back to that, and
            // `status --cluster` names it.
            annotations::FULL_REPLICAS: running.replicas.to_string(),
            annotations::VERSION: running.version,
        }}});
        self.cluster
            .merge_patch(Kind::Deployment, &name, &body)
            .await
            .map_err(failed)?;
        self.adopted_rev(component, key).await?;
        Ok(())
    }

    /// Revision `key` of `component` if it is the adopted Deployment (as this process adopted
    /// it, or as its annotation says, for a run taken over): recorded with its pod watch.
    pub(super) async fn adopted_rev(
        &self,
        component: &str,
        key: &RevisionKey,
    ) -> Result<Option<super::Rev>, ProviderError> {
        let name = dns_label(component, 63);
        let Some(d) = self
            .cluster
            .get(Kind::Deployment, &name)
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        if labels::is_managed(&d)
            || annotation(&d, annotations::REVISION_KEY) != Some(key.0.as_str())
        {
            return Ok(None);
        }
        let rev = rev_of(&name, &d);
        let selector = selector_text(&string_map(d.pointer("/spec/selector/matchLabels")));
        let watch = Arc::new(PodWatch::start(
            self.cluster.client(),
            self.cluster.namespace(),
            &selector,
        ));
        let mut comps = self.lock();
        let c = comps.entry(component.to_string()).or_default();
        c.revs.insert(key.clone(), rev.clone());
        c.adopted = Some(Adopted {
            key: key.clone(),
            name,
            watch,
        });
        Ok(Some(rev))
    }

    /// The watch that sees revision `key`'s pods, and those pods: the adopted Deployment's own
    /// watch for it, the component's watch (by revision label) for cutover's revisions.
    pub(super) async fn pods_of(
        &self,
        component: &str,
        key: &RevisionKey,
    ) -> (Arc<PodWatch>, Vec<PodView>) {
        let adopted = self
            .lock()
            .get(component)
            .and_then(|c| c.adopted.as_ref())
            .filter(|a| &a.key == key)
            .map(|a| (a.watch.clone(), a.name.clone()));
        match adopted {
            Some((w, name)) => {
                super::first_list(&w).await;
                let pods = w.pods_owned_by(&name);
                (w, pods)
            }
            None => {
                let w = self.watch(component).await;
                let pods = w.pods_of(&short_hash(&key.0));
                (w, pods)
            }
        }
    }

    /// Whether revision `key` is the adopted Deployment (scaled, never deleted).
    pub(super) fn is_adopted(&self, component: &str, key: &RevisionKey) -> bool {
        self.lock()
            .get(component)
            .and_then(|c| c.adopted.as_ref())
            .is_some_and(|a| &a.key == key)
    }

    /// Mark a revision replaced (kept at 0 replicas) and delete cutover's replaced revisions
    /// of the component past the [`RETIRED_KEPT`] newest.
    pub(super) async fn mark_retired(
        &self,
        component: &str,
        key: &RevisionKey,
        name: &str,
    ) -> Result<(), ProviderError> {
        let body = json!({ "metadata": { "annotations": { annotations::RETIRED: now() }}});
        match self
            .cluster
            .merge_patch(Kind::Deployment, name, &body)
            .await
        {
            // Gone already (deleted by hand): nothing to keep.
            Err(cutover_kube::KubeError::NotFound { .. }) => return Ok(()),
            r => r.map_err(failed)?,
        }
        if self.is_adopted(component, key) {
            return Ok(());
        }
        let ours = self.revision_deployments(component).await?;
        let mut retired: Vec<(String, String)> = ours
            .iter()
            .filter(|d| replicas(d) == 0 && annotation(d, annotations::ROLLED_BACK).is_none())
            .filter_map(|d| {
                Some((
                    annotation(d, annotations::RETIRED)?.to_string(),
                    text(d, "/metadata/name")?.to_string(),
                ))
            })
            .collect();
        retired.sort_by(|a, b| b.cmp(a));
        // Revisions a cluster rollback took off service are never targets: they stay for a
        // look until the next retirement.
        let rolled_back = ours
            .iter()
            .filter(|d| replicas(d) == 0 && annotation(d, annotations::ROLLED_BACK).is_some())
            .filter_map(|d| Some(text(d, "/metadata/name")?.to_string()));
        let doomed: Vec<String> = retired
            .into_iter()
            .skip(RETIRED_KEPT)
            .map(|(_, n)| n)
            .chain(rolled_back)
            .collect();
        for old in doomed {
            self.delete_revision(&old).await?;
        }
        Ok(())
    }

    /// Delete a revision's Deployment (and, with Gateway API, its Service).
    async fn delete_revision(&self, name: &str) -> Result<(), ProviderError> {
        if self.traffic == Traffic::GatewayApi {
            self.cluster
                .delete(Kind::Service, name)
                .await
                .map_err(failed)?;
        }
        self.cluster
            .delete(Kind::Deployment, name)
            .await
            .map_err(failed)
    }

    /// The labels a new revision's pods carry so that a team's own Services serve them as they
    /// serve the baseline's (replica-ratio traffic only): every Service whose selector picks
    /// the baseline's pods lends its selector's labels. Remembers the team's Service named as
    /// the component, if it is one of them: cutover then creates no stable Service of its own.
    pub(super) async fn carried_labels(
        &self,
        component: &str,
        new: &RevisionKey,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        if self.traffic != Traffic::ReplicaRatio {
            return Ok(BTreeMap::new());
        }
        let new_name = labels::revision_name(component, &new.0);
        let adopted = self
            .lock()
            .get(component)
            .and_then(|c| c.adopted.as_ref().map(|a| a.name.clone()));
        let mut candidates = self.revision_deployments(component).await?;
        if let Some(name) = adopted {
            if let Some(d) = self
                .cluster
                .get(Kind::Deployment, &name)
                .await
                .map_err(failed)?
            {
                candidates.push(d);
            }
        }
        let Some(baseline) = candidates
            .iter()
            .filter(|d| text(d, "/metadata/name") != Some(new_name.as_str()))
            .filter(|d| replicas(d) > 0)
            .max_by_key(|d| replicas(d))
        else {
            self.lock()
                .entry(component.to_string())
                .or_default()
                .team_services = Some(BTreeSet::new());
            return Ok(BTreeMap::new());
        };
        let pod_labels = string_map(baseline.pointer("/spec/template/metadata/labels"));
        let services = self.cluster.list(Kind::Service, "").await.map_err(failed)?;
        let mut carried = BTreeMap::new();
        let mut team = BTreeSet::new();
        for svc in &services {
            let selector = string_map(svc.pointer("/spec/selector"));
            let picks = !selector.is_empty()
                && selector
                    .iter()
                    .all(|(k, v)| !k.starts_with("cutover.dev/") && pod_labels.get(k) == Some(v));
            if picks {
                carried.extend(selector);
                if !labels::is_managed(svc) {
                    if let Some(n) = text(svc, "/metadata/name") {
                        team.insert(n.to_string());
                    }
                }
            }
        }
        self.lock()
            .entry(component.to_string())
            .or_default()
            .team_services = Some(team);
        Ok(carried)
    }
}

impl KubeProvider {
    /// Take a revision off service: off the route, its pods gone (they go first, and are gone
    /// before anything else is: a recreate never runs old and new pods side by side, and
    /// requests in flight end as their pods drain); then deleted, or kept at 0 replicas and
    /// marked retired when `keep` (a Deployment cutover adopted is always kept).
    pub(super) async fn take_down(
        &self,
        component: &str,
        rev: &RevisionKey,
        keep: bool,
    ) -> Result<(), ProviderError> {
        if self.traffic == Traffic::GatewayApi {
            // The route stops naming the revision before its Service goes.
            let remaining: Vec<(RevisionKey, u32)> = self
                .lock()
                .get(component)
                .map(|c| c.weights.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k != rev)
                .collect();
            if !remaining.is_empty() {
                self.route(component, &remaining).await?;
            }
        }
        let mut name = revision_name(component, &rev.0);
        match self.rev(component, rev).await {
            Ok(r) => {
                name = r.name;
                self.scale(component, rev, 0).await?;
                if !self.drained(component, rev).await {
                    tracing::warn!(
                        "{component}: pods of {name} still terminating after {}s; going on",
                        DRAIN_WAIT.as_secs()
                    );
                }
            }
            Err(ProviderError::UnknownRevision(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(c) = self.lock().get_mut(component) {
            c.weights.retain(|(k, _)| k != rev);
        }
        if keep || self.is_adopted(component, rev) {
            return self.mark_retired(component, rev, &name).await;
        }
        self.delete_revision(&name).await?;
        if let Some(c) = self.lock().get_mut(component) {
            c.revs.remove(rev);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_deployments_version_is_its_label_or_its_image_tag() {
        let d = |labels: Value, image: &str| {
            json!({ "metadata": { "labels": labels },
                    "spec": { "template": { "spec": { "containers": [{ "image": image }] } } } })
        };
        assert_eq!(
            plain_version(&d(json!({"app.kubernetes.io/version": "2.0"}), "api:1.0"),),
            "2.0"
        );
        assert_eq!(
            plain_version(&d(json!({}), "reg.io:5000/shop/api:1.4.2")),
            "1.4.2"
        );
        assert_eq!(
            plain_version(&d(json!({}), "api:1.4.2@sha256:abc")),
            "1.4.2"
        );
        assert_eq!(
            plain_version(&d(json!({}), "reg.io:5000/shop/api")),
            "unknown"
        );
        assert_eq!(
            plain_version(&d(json!({}), "shop/api@sha256:0123abcd")),
            "unknown"
        );
    }

    #[test]
    fn a_selector_is_written_as_kubectl_takes_it() {
        let m = string_map(Some(&json!({"app": "api", "tier": "web"})));
        assert_eq!(selector_text(&m), "app=api,tier=web");
    }
}
