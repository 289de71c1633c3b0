//! The objects that carry a component's traffic to its revisions: the stable, preview and
//! active Services and the HTTPRoute, and the check that cutover writes only objects it made.
//!
//! Owns: writing those objects for the provider. Must not touch: Deployments (the provider
//! scales them), the store.

use cutover_kube::cluster::Kind;
use cutover_kube::labels::{self, annotations};
use cutover_kube::manifest::{self, Backend};
use cutover_kube::workload::{Port, Traffic};
use serde_json::Value;

use super::{failed, KubeProvider};
use crate::provider::{ProviderError, RevisionKey, RevisionSpec};

impl KubeProvider {
    /// Refuse to write over an object of that name that cutover did not create (a team's own
    /// Service `api`, managed by Helm or kubectl): taking it over would move its traffic.
    pub(super) async fn ours(
        &self,
        component: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(), ProviderError> {
        let key = format!("{}/{name}", kind.name());
        if self
            .lock()
            .get(component)
            .is_some_and(|c| c.checked.contains(&key))
        {
            return Ok(());
        }
        if let Some(obj) = self.cluster.get(kind, name).await.map_err(failed)? {
            if !labels::is_managed(&obj) {
                let owner = obj
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(labels::MANAGED_BY))
                    .and_then(Value::as_str);
                return Err(ProviderError::Failed(format!(
                    "{} {name} in namespace {} exists and is not managed by cutover ({}={}); cutover does not take it over: \
                     rename the component, or delete or rename that {} (a team's Service is used as it is only where it \
                     selects a Deployment cutover adopts, with replica-ratio traffic)",
                    kind.name(),
                    self.cluster.namespace(),
                    labels::MANAGED_BY,
                    owner.unwrap_or("unset"),
                    kind.name(),
                )));
            }
        }
        self.lock()
            .entry(component.to_string())
            .or_default()
            .checked
            .insert(key);
        Ok(())
    }

    /// Stamp `object` with the run and step that last wrote a revision of `component`.
    pub(super) fn stamp_of(&self, component: &str, object: &mut Value) {
        if let Some(st) = self.lock().get(component).and_then(|c| c.stamp.clone()) {
            manifest::stamp(object, &st);
        }
    }

    pub(super) fn ports_of(&self, component: &str) -> Vec<Port> {
        self.lock()
            .get(component)
            .and_then(|c| c.revs.values().next_back().map(|r| r.ports.clone()))
            .unwrap_or_default()
    }

    pub(super) async fn apply(&self, obj: &Value) -> Result<(), ProviderError> {
        self.cluster.apply(obj).await.map(|_| ()).map_err(failed)
    }

    /// The Services a revision needs in this traffic mode.
    pub(super) async fn services_for(
        &self,
        rev: &RevisionSpec,
        w: &cutover_kube::workload::Workload,
    ) -> Result<(), ProviderError> {
        let component = &rev.component.id;
        match self.traffic {
            Traffic::ReplicaRatio => {
                // A team's own Service named as the component, which selects the baseline's
                // pods (and so, by the carried labels, these), serves instead of cutover's.
                let known = self
                    .lock()
                    .get(component)
                    .is_some_and(|c| c.team_services.is_some());
                if !known {
                    self.carried_labels(component, &rev.key).await?;
                }
                let done = self.lock().get(component).is_some_and(|c| {
                    c.services
                        || c.team_services
                            .as_ref()
                            .is_some_and(|t| t.contains(&manifest::service_name(component)))
                });
                if !done {
                    self.ours(component, Kind::Service, &manifest::service_name(component))
                        .await?;
                    let mut svc = manifest::stable_service(component, &rev.deployment, &w.ports);
                    manifest::stamp(&mut svc, &w.stamp);
                    self.apply(&svc).await?;
                }
            }
            Traffic::GatewayApi => {
                let mut svc = manifest::revision_service(w);
                manifest::stamp(&mut svc, &w.stamp);
                self.apply(&svc).await?;
            }
            Traffic::ActivePreview => {
                // The preview Service follows the newest revision started (not one restarted
                // for a rollback: that one is, or becomes, the active one).
                let active = self.active_of(component).await?;
                if active.as_deref() != Some(rev.key.0.as_str()) {
                    self.ours(
                        component,
                        Kind::Service,
                        &manifest::preview_service_name(component),
                    )
                    .await?;
                    let mut svc =
                        manifest::preview_service(component, &rev.deployment, &w.ports, &rev.key.0);
                    manifest::stamp(&mut svc, &w.stamp);
                    self.apply(&svc).await?;
                }
            }
        }
        if let Some(c) = self.lock().get_mut(component) {
            c.services = true;
        }
        Ok(())
    }

    /// The revision key the active Service selects now, if it exists.
    pub(super) async fn active_of(&self, component: &str) -> Result<Option<String>, ProviderError> {
        let svc = self
            .cluster
            .get(Kind::Service, &manifest::service_name(component))
            .await
            .map_err(failed)?;
        Ok(svc.and_then(|s| {
            s.pointer("/metadata/annotations")
                .and_then(|a| a.get(annotations::REVISION_KEY))
                .and_then(Value::as_str)
                .map(str::to_string)
        }))
    }

    pub(super) async fn route(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<(), ProviderError> {
        let Some(gateway) = &self.gateway else {
            return Err(ProviderError::Failed(
                "trafficRouting.gatewayAPI names no gateway".into(),
            ));
        };
        self.ours(
            component,
            Kind::HttpRoute,
            &manifest::service_name(component),
        )
        .await?;
        let mut backends = Vec::new();
        for (key, weight) in weights {
            let rev = self.rev(component, key).await?;
            // The port that serves users: `http` where the component names one.
            let port = rev
                .ports
                .iter()
                .find(|p| p.name == "http")
                .or(rev.ports.first())
                .map(|p| p.number)
                .unwrap_or(80);
            backends.push(Backend {
                service: rev.name.clone(),
                port,
                weight: *weight,
            });
        }
        let mut route = manifest::http_route(component, &self.spec.id, gateway, &backends);
        self.stamp_of(component, &mut route);
        self.apply(&route).await
    }
}
