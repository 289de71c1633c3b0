//! One connection to one namespace of one cluster, and the writes cutover makes there.
//!
//! Owns: finding the kubeconfig and context as kubectl does (`KUBECONFIG`, `~/.kube/config`,
//! in-cluster), the namespace cutover works in, server-side apply under the field manager
//! `cutover` (optionally as a server-side dry run), scaling through the scale subresource,
//! deletes, reads, bounded retries of conflicting writes, and turning kube's errors into
//! [`KubeError`]s that name the cause and the fix. Must not touch: what the objects say
//! (`manifest`), watches (`health`), leases (`lease`).

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::Value;

use crate::error::KubeError;
use crate::labels::FIELD_MANAGER;

/// How long connecting and the first answer may take before the cluster counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one ordinary request (not a watch) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of a write that meets a conflict (409) before giving up.
pub const CONFLICT_TRIES: u32 = 5;

/// Where to connect: kubectl's `--context` and `--namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The kubeconfig context (default: the current context).
    pub context: Option<String>,
    /// The namespace; overrides the spec's and the context's.
    pub namespace: Option<String>,
}

/// The kinds of object cutover reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    Service,
    Pod,
    Event,
    Lease,
    HttpRoute,
}

impl Kind {
    /// (group, version, kind, plural).
    fn parts(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Kind::Service => ("", "v1", "Service", "services"),
            Kind::Pod => ("", "v1", "Pod", "pods"),
            Kind::Event => ("", "v1", "Event", "events"),
            Kind::Lease => ("coordination.k8s.io", "v1", "Lease", "leases"),
            Kind::HttpRoute => ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
        }
    }

    /// The resource's plural name, with its group where it has one (`httproutes.gateway.networking.k8s.io`).
    pub fn resource(self) -> String {
        let (group, _, _, plural) = self.parts();
        if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        }
    }

    pub fn name(self) -> &'static str {
        self.parts().2
    }

    /// The kind an object's `apiVersion` and `kind` name, if cutover knows it.
    pub fn of(obj: &Value) -> Option<Kind> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        [
            Kind::Deployment,
            Kind::Service,
            Kind::Pod,
            Kind::Event,
            Kind::Lease,
            Kind::HttpRoute,
        ]
        .into_iter()
        .find(|k| {
            let (group, version, name, _) = k.parts();
            let av = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            av == api_version && name == kind
        })
    }

    fn api_resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.parts();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }
}

/// A connected cluster and the namespace cutover works in.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    namespace: String,
    server: String,
    /// Set for a server-side dry run: every write is sent with `dryRun=All` and changes nothing.
    dry_run: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl Cluster {
    /// Connect as kubectl would: the kubeconfig in `KUBECONFIG` or `~/.kube/config` with the
    /// given or current context, else the in-cluster service account. The namespace is the
    /// first of `settings.namespace`, `spec_namespace`, the context's, `default`. Answers within
    /// [`CONNECT_TIMEOUT`]: an unreachable cluster is an error, not a hang.
    pub async fn connect(
        settings: &Settings,
        spec_namespace: Option<&str>,
    ) -> Result<Cluster, KubeError> {
        let config = load_config(settings.context.as_deref()).await?;
        let server = config.cluster_url.to_string();
        let namespace = settings
            .namespace
            .clone()
            .or_else(|| spec_namespace.map(str::to_string))
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| KubeError::Config(e.to_string()))?;
        let cluster = Cluster::from_client(client, &namespace, &server);
        cluster.check().await?;
        Ok(cluster)
    }

    /// A cluster from a client made elsewhere (tests, the fake API server).
    pub fn from_client(client: Client, namespace: &str, server: &str) -> Cluster {
        Cluster {
            client,
            namespace: namespace.to_string(),
            server: server.to_string(),
            dry_run: false,
        }
    }

    /// The same connection, sending every write as a server-side dry run.
    pub fn dry_run(&self) -> Cluster {
        Cluster {
            dry_run: true,
            ..self.clone()
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The API server answers, and the namespace exists (where cutover may read it: without
    /// `get` on namespaces this check is skipped and a missing namespace shows on first write).
    pub async fn check(&self) -> Result<(), KubeError> {
        let version = tokio::time::timeout(CONNECT_TIMEOUT, self.client.apiserver_version()).await;
        match version {
            Err(_) => {
                return Err(KubeError::Unreachable {
                    server: self.server.clone(),
                    cause: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
                })
            }
            Ok(Err(e)) => return Err(self.map(e, "get", "version", "")),
            Ok(Ok(_)) => {}
        }
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        match self.timed(namespaces.get_opt(&self.namespace)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(KubeError::NoNamespace(self.namespace.clone())),
            Err(e) => match self.map(e, "get", "namespaces", &self.namespace.clone()) {
                KubeError::Forbidden { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &kind.api_resource())
    }

    async fn timed<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(kube::Error::Service(
                format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()).into(),
            )),
        }
    }

    /// Server-side apply `obj` (which names its `apiVersion`, `kind` and `metadata.name`) under
    /// the field manager `cutover`, forcing ownership of the fields it sets. Returns the object
    /// as the server has it (or would have it, in a dry run).
    pub async fn apply(&self, obj: &Value) -> Result<Value, KubeError> {
        let kind = Kind::of(obj).ok_or_else(|| KubeError::Api {
            verb: "apply".into(),
            resource: "unknown".into(),
            name: String::new(),
            code: 400,
            message: "cutover does not manage this kind of object".into(),
        })?;
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        if self.dry_run {
            pp = pp.dry_run();
        }
        let api = self.api(kind);
        let out = self
            .retry_conflicts(kind, &name, || {
                let api = api.clone();
                let pp = pp.clone();
                let name = name.clone();
                async move { api.patch(&name, &pp, &Patch::Apply(obj)).await }
            })
            .await
            .map_err(|e| match self.map(e, "patch", &kind.resource(), &name) {
                // An apply creates what is missing: a 404 is the kind itself missing.
                KubeError::NotFound { .. } => KubeError::NoApi {
                    resource: kind.resource(),
                },
                other => other,
            })?;
        serde_json::to_value(out).map_err(|e| KubeError::Api {
            verb: "apply".into(),
            resource: kind.resource(),
            name,
            code: 0,
            message: format!("unreadable answer: {e}"),
        })
    }

    /// Set a Deployment's replicas through its scale subresource (the revision's other fields
    /// stay as last applied).
    pub async fn scale(&self, deployment: &str, replicas: u32) -> Result<(), KubeError> {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            dry_run: self.dry_run,
            ..PatchParams::default()
        };
        let body = serde_json::json!({ "spec": { "replicas": replicas } });
        self.retry_conflicts(Kind::Deployment, deployment, || {
            let api = api.clone();
            let pp = pp.clone();
            let body = body.clone();
            async move { api.patch_scale(deployment, &pp, &Patch::Merge(&body)).await }
        })
        .await
        .map_err(|e| self.map(e, "patch", "deployments/scale", deployment))?;
        Ok(())
    }

    /// A JSON merge patch of an existing object under the field manager `cutover` (the run and
    /// step annotations of a revision that already runs: its pod template is never rewritten).
    pub async fn merge_patch(&self, kind: Kind, name: &str, body: &Value) -> Result<(), KubeError> {
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            dry_run: self.dry_run,
            ..PatchParams::default()
        };
        let api = self.api(kind);
        self.retry_conflicts(kind, name, || {
            let api = api.clone();
            let pp = pp.clone();
            async move { api.patch(name, &pp, &Patch::Merge(body)).await }
        })
        .await
        .map_err(|e| self.map(e, "patch", &kind.resource(), name))?;
        Ok(())
    }

    /// Delete an object; one already gone is not an error.
    pub async fn delete(&self, kind: Kind, name: &str) -> Result<(), KubeError> {
        let mut dp = DeleteParams::background();
        if self.dry_run {
            dp = dp.dry_run();
        }
        match self.timed(self.api(kind).delete(name, &dp)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.map(e, "delete", &kind.resource(), name)),
        }
    }

    /// One object, if it exists.
    pub async fn get(&self, kind: Kind, name: &str) -> Result<Option<Value>, KubeError> {
        let got = self
            .timed(self.api(kind).get_opt(name))
            .await
            .map_err(|e| self.map(e, "get", &kind.resource(), name))?;
        got.map(serde_json::to_value)
            .transpose()
            .map_err(|e| KubeError::Api {
                verb: "get".into(),
                resource: kind.resource(),
                name: name.into(),
                code: 0,
                message: format!("unreadable answer: {e}"),
            })
    }

    /// The objects of a kind whose labels match `selector` (`key=value,...`).
    pub async fn list(&self, kind: Kind, selector: &str) -> Result<Vec<Value>, KubeError> {
        let lp = ListParams::default().labels(selector);
        let list = self
            .timed(self.api(kind).list(&lp))
            .await
            .map_err(|e| self.map(e, "list", &kind.resource(), ""))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }

    /// Run a write, again after a conflict (409), up to [`CONFLICT_TRIES`] times with a short,
    /// growing pause; each try is bounded by [`REQUEST_TIMEOUT`].
    async fn retry_conflicts<T, F, Fut>(
        &self,
        kind: Kind,
        name: &str,
        mut write: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        let mut pause = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.timed(write()).await {
                Err(kube::Error::Api(s)) if s.code == 409 && tries < CONFLICT_TRIES => {
                    tracing::debug!(kind = kind.name(), name, tries, "conflict; writing again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Err(kube::Error::Api(Box::new(kube::core::Status {
                        message: format!("{} (after {tries} tries)", s.message),
                        ..*s
                    })))
                }
                other => return other,
            }
        }
    }

    /// A kube error in an operator's words.
    pub fn map(&self, e: kube::Error, verb: &str, resource: &str, name: &str) -> KubeError {
        match crate::error::from_kube(e, verb, resource, &self.namespace, name)
            .with_server(&self.server)
        {
            // The write was tried as often as `retry_conflicts` allows.
            KubeError::Conflict {
                kind,
                name,
                message,
                ..
            } => KubeError::Conflict {
                kind,
                name,
                attempts: CONFLICT_TRIES,
                message,
            },
            other => other,
        }
    }
}

/// The kubeconfig's client settings for `context` (or the current one), or the in-cluster
/// service account when there is no kubeconfig and no context was named.
async fn load_config(context: Option<&str>) -> Result<kube::Config, KubeError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let mut config = match Kubeconfig::read() {
        Ok(kc) => {
            if let Some(ctx) = context {
                if !kc.contexts.iter().any(|c| c.name == ctx) {
                    let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                    return Err(KubeError::Config(format!(
                        "no context {ctx} in the kubeconfig (known: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| KubeError::Config(e.to_string()))?
        }
        Err(read) if context.is_none() => kube::Config::incluster().map_err(|_| {
            KubeError::Config(format!(
                "no kubeconfig ({read}) and not running in a cluster; set KUBECONFIG or create ~/.kube/config"
            ))
        })?,
        Err(read) => return Err(KubeError::Config(read.to_string())),
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_from_objects() {
        assert_eq!(
            Kind::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment"})),
            Some(Kind::Deployment)
        );
        assert_eq!(
            Kind::of(&json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"})),
            Some(Kind::HttpRoute)
        );
        assert_eq!(
            Kind::of(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            None
        );
        assert_eq!(
            Kind::HttpRoute.resource(),
            "httproutes.gateway.networking.k8s.io"
        );
        assert_eq!(Kind::Service.resource(), "services");
    }
}
