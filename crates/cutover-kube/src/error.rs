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
    /// The cluster does not serve this kind of object at all (a server-side apply, which
    /// creates what is missing, answered 404): its API or CRD is not installed.
    #[error("the cluster does not serve {resource} (server-side apply answered 404): {}", no_api_hint(.resource))]
    NoApi { resource: String },
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
}

impl KubeError {
    /// The same error naming the API server's address (`from_kube` does not know it).
    pub fn with_server(self, server: &str) -> Self {
        match self {
            KubeError::Unreachable { cause, .. } => KubeError::Unreachable {
                server: server.to_string(),
                cause,
            },
            other => other,
        }
    }
}

/// What an operator reads for an error kube returned to `verb` on `resource` `name` in
/// `namespace` (`name` may be empty for list and watch):
/// 401 → [`KubeError::Unauthorized`]; 403 → [`KubeError::Forbidden`] with the verb and resource
/// needed; 404 on the namespace itself → [`KubeError::NoNamespace`], else
/// [`KubeError::NotFound`]; 409 (AlreadyExists or Conflict) → [`KubeError::Conflict`] after one
/// attempt (callers that retry read `Status::reason` before mapping); transport failures and
/// timeouts → [`KubeError::Unreachable`] (its `server` is "the API server" until
/// [`KubeError::with_server`] names it); kubeconfig failures → [`KubeError::Config`]; anything
/// else → [`KubeError::Api`].
pub fn from_kube(
    e: kube::Error,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> KubeError {
    match e {
        kube::Error::Api(status) => from_status(&status, verb, resource, namespace, name),
        kube::Error::HyperError(err) => unreachable(err.to_string()),
        kube::Error::Service(err) => unreachable(err.to_string()),
        kube::Error::ReadEvents(err) => unreachable(err.to_string()),
        kube::Error::Auth(err) => KubeError::Unauthorized(err.to_string()),
        kube::Error::InferConfig(err) => KubeError::Config(err.to_string()),
        kube::Error::InferKubeconfig(err) => KubeError::Config(err.to_string()),
        other => KubeError::Api {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
            code: 0,
            message: other.to_string(),
        },
    }
}

fn unreachable(cause: String) -> KubeError {
    KubeError::Unreachable {
        server: "the API server".into(),
        cause,
    }
}

fn from_status(
    status: &kube::core::Status,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> KubeError {
    let message = if status.message.is_empty() {
        status.reason.clone()
    } else {
        status.message.clone()
    };
    match status.code {
        401 => KubeError::Unauthorized(message),
        403 => KubeError::Forbidden {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
        },
        404 => {
            let details = status.details.as_ref();
            let about_namespace = resource != "namespaces"
                && details.is_some_and(|d| d.kind == "namespaces" && d.name == namespace);
            if about_namespace {
                KubeError::NoNamespace(namespace.to_string())
            } else {
                KubeError::NotFound {
                    kind: resource.to_string(),
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                }
            }
        }
        409 => KubeError::Conflict {
            kind: resource.to_string(),
            name: name.to_string(),
            attempts: 1,
            message,
        },
        code => KubeError::Api {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
            code,
            message,
        },
    }
}

/// What to do when the cluster lacks `resource`'s API.
fn no_api_hint(resource: &str) -> &'static str {
    if resource.starts_with("httproutes") {
        "install the Gateway API CRDs (standard channel, gateway.networking.k8s.io/v1) and a \
         Gateway controller, or remove infrastructure.trafficRouting.gatewayAPI to route by \
         replica ratio"
    } else {
        "check the cluster's Kubernetes version and installed CRDs (kubectl api-resources)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, details: Option<serde_json::Value>) -> kube::Error {
        let mut status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("{reason} message"), "reason": reason, "code": code,
        });
        if let Some(d) = details {
            status["details"] = d;
        }
        match serde_json::from_value::<kube::core::Status>(status) {
            Ok(s) => kube::Error::Api(Box::new(s)),
            Err(e) => panic!("status fixture: {e}"),
        }
    }

    #[test]
    fn status_codes_name_the_cause() {
        let e = from_kube(api(403, "Forbidden", None), "update", "leases", "shop", "x");
        assert_eq!(
            e,
            KubeError::Forbidden {
                verb: "update".into(),
                resource: "leases".into(),
                namespace: "shop".into()
            }
        );
        assert!(e
            .to_string()
            .starts_with("cutover needs update on leases in namespace shop"));
        assert_eq!(
            from_kube(api(401, "Unauthorized", None), "get", "pods", "shop", ""),
            KubeError::Unauthorized("Unauthorized message".into())
        );
        let missing_ns = api(
            404,
            "NotFound",
            Some(serde_json::json!({"name": "shop", "kind": "namespaces"})),
        );
        assert_eq!(
            from_kube(missing_ns, "create", "leases", "shop", "l"),
            KubeError::NoNamespace("shop".into())
        );
        let missing = api(
            404,
            "NotFound",
            Some(
                serde_json::json!({"name": "l", "group": "coordination.k8s.io", "kind": "leases"}),
            ),
        );
        assert_eq!(
            from_kube(missing, "get", "leases", "shop", "l"),
            KubeError::NotFound {
                kind: "leases".into(),
                name: "l".into(),
                namespace: "shop".into()
            }
        );
        assert!(matches!(
            from_kube(api(409, "Conflict", None), "update", "leases", "shop", "l"),
            KubeError::Conflict { attempts: 1, .. }
        ));
        assert!(matches!(
            from_kube(
                api(500, "InternalError", None),
                "update",
                "leases",
                "shop",
                "l"
            ),
            KubeError::Api { code: 500, .. }
        ));
    }

    #[test]
    fn transport_failures_are_unreachable() {
        let e = from_kube(
            kube::Error::Service("connection refused".into()),
            "get",
            "pods",
            "shop",
            "",
        )
        .with_server("https://10.0.0.1:6443");
        assert_eq!(
            e,
            KubeError::Unreachable {
                server: "https://10.0.0.1:6443".into(),
                cause: "connection refused".into()
            }
        );
    }
}
