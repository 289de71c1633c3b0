//! What can go wrong talking to a cluster, each with its cause and its fix.
//!
//! Owns: [`KubeError`] and the mapping from kube's errors. Must not touch: retries (the callers
//! decide; `cluster` retries conflicts).

/// An error from the cluster, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KubeError {
    /// No kubeconfig, no such context, or an unreadable file.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// The API server did not answer in time, or refused the connection.
    #[error("cluster {server} is unreachable: {cause} (check the kube context with `kubectl cluster-info`, or pass --context)")]
    Unreachable { server: String, cause: String },
    /// 401: the credentials were refused.
    #[error("the cluster refused cutover's credentials (401): {0}; refresh them (e.g. `kubectl get ns` to re-login) or pick another --context")]
    Unauthorized(String),
    /// 403: a verb on a resource is not allowed.
    #[error("cutover needs {verb} on {resource} in namespace {namespace} (403 forbidden); apply deploy/kubernetes/rbac.yaml or ask for that permission")]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
    },
    /// The namespace does not exist.
    #[error("namespace {0} does not exist on the cluster (create it with `kubectl create namespace {0}`, or set infrastructure.namespace / --namespace)")]
    NoNamespace(String),
    /// An object that should be there is not.
    #[error("{kind} {name} not found in namespace {namespace}")]
    NotFound {
        kind: String,
        name: String,
        namespace: String,
    },
    /// A write lost a race with another writer, after retries.
    #[error("{kind} {name}: conflicting write (409) after {attempts} tries: {message}")]
    Conflict {
        kind: String,
        name: String,
        attempts: u32,
        message: String,
    },
    /// The API server refused the request for another reason.
    #[error("{verb} {resource} {name}: the API server said {code}: {message}")]
    Api {
        verb: String,
        resource: String,
        name: String,
        code: u16,
        message: String,
    },
    /// The cluster lacks an API cutover was asked to use (Gateway API CRDs).
    #[error("{0}")]
    Missing(String),
}

/// A kube error for `verb` on `resource` (plural, with its group) `name` in `namespace` of the
/// cluster at `server`, in an operator's words.
pub fn from_kube(
    e: kube::Error,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
    server: &str,
) -> KubeError {
    match e {
        kube::Error::Api(s) => match s.code {
            401 => KubeError::Unauthorized(s.message.clone()),
            403 => KubeError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                namespace: namespace.to_string(),
            },
            404 if s
                .details
                .as_ref()
                .is_some_and(|d| d.kind == "namespaces" && d.name == namespace) =>
            {
                KubeError::NoNamespace(namespace.to_string())
            }
            404 => KubeError::NotFound {
                kind: resource.to_string(),
                name: name.to_string(),
                namespace: namespace.to_string(),
            },
            409 => KubeError::Conflict {
                kind: resource.to_string(),
                name: name.to_string(),
                attempts: crate::cluster::CONFLICT_TRIES,
                message: s.message.clone(),
            },
            code => KubeError::Api {
                verb: verb.to_string(),
                resource: resource.to_string(),
                name: name.to_string(),
                code,
                message: s.message.clone(),
            },
        },
        kube::Error::HyperError(e) => KubeError::Unreachable {
            server: server.to_string(),
            cause: e.to_string(),
        },
        kube::Error::Service(e) => KubeError::Unreachable {
            server: server.to_string(),
            cause: source_chain(e.as_ref()),
        },
        other => KubeError::Api {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
            code: 0,
            message: other.to_string(),
        },
    }
}

/// An error and its causes on one line.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cur = c.source();
    }
    s
}
