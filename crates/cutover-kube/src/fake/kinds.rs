//! The resource kinds the fake API server serves, their REST paths and discovery documents.
//!
//! Owns: the kind table (group, version, plural, scope) and URL routing to a [`Route`].
//! Must not touch: stored objects (see `world`), HTTP (see `http`).

use serde_json::{json, Value};

/// A kind the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Namespace,
    Deployment,
    Service,
    Pod,
    Event,
    /// `events.k8s.io/v1` Events (what kube's `Recorder` writes), stored apart from core/v1 ones.
    EventV1,
    Lease,
    HttpRoute,
}

impl Kind {
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Namespace,
        Kind::Deployment,
        Kind::Service,
        Kind::Pod,
        Kind::Event,
        Kind::EventV1,
        Kind::Lease,
        Kind::HttpRoute,
    ];

    /// The `kind` field.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::Pod => "Pod",
            Kind::Event | Kind::EventV1 => "Event",
            Kind::Lease => "Lease",
            Kind::HttpRoute => "HTTPRoute",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Deployment => "deployments",
            Kind::Service => "services",
            Kind::Pod => "pods",
            Kind::Event | Kind::EventV1 => "events",
            Kind::Lease => "leases",
            Kind::HttpRoute => "httproutes",
        }
    }

    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Service | Kind::Pod | Kind::Event => "",
            Kind::Deployment => "apps",
            Kind::EventV1 => "events.k8s.io",
            Kind::Lease => "coordination.k8s.io",
            Kind::HttpRoute => "gateway.networking.k8s.io",
        }
    }

    /// The `apiVersion` field: `v1`, `apps/v1`, ...
    pub(crate) fn api_version(self) -> String {
        match self.group() {
            "" => "v1".to_string(),
            g => format!("{g}/v1"),
        }
    }

    pub(crate) fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    /// Kinds whose `status` is written only through the `/status` subresource.
    pub(crate) fn has_status_subresource(self) -> bool {
        matches!(
            self,
            Kind::Namespace | Kind::Deployment | Kind::Pod | Kind::HttpRoute
        )
    }

    /// `deployments.apps`, `pods`: the name the real server uses in messages.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }

    /// From a `kind` name or plural, case-insensitive ("Deployment", "pods", "httproute").
    /// `EventV1` (or `events.k8s.io`) names the events.k8s.io/v1 kind; `Event` the core one.
    pub(crate) fn parse(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        if s == "eventv1" || s == "events.k8s.io" {
            return Some(Kind::EventV1);
        }
        Kind::ALL.into_iter().find(|k| {
            k.name().to_ascii_lowercase() == s
                || k.plural() == s
                || format!("{}s", k.name().to_ascii_lowercase()) == s
        })
    }

    fn from_plural(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.plural() == plural)
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Version,
    /// `/api`: the core API versions.
    CoreVersions,
    /// `/apis`: the API groups.
    Groups,
    /// `/api/v1`, `/apis/{group}/v1`: the resources of one group version.
    Resources(&'static str),
    /// A collection, an object or an object's subresource.
    Object {
        kind: Kind,
        /// `None`: cluster-scoped kind, or a namespaced kind across all namespaces.
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
    Unknown,
}

const GROUPS: [&str; 4] = [
    "apps",
    "coordination.k8s.io",
    "events.k8s.io",
    "gateway.networking.k8s.io",
];

/// Routes a request path (without the query).
pub(crate) fn route(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, rest): (&'static str, &[&str]) = match segs.as_slice() {
        ["version"] => return Route::Version,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => match GROUPS.iter().find(|x| *x == g) {
            Some(g) => (g, rest),
            None => return Route::Unknown,
        },
        _ => return Route::Unknown,
    };
    let obj = |kind: Kind, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Route::Object {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            sub: sub.map(str::to_string),
        }
    };
    match rest {
        [] => Route::Resources(group),
        ["namespaces", ns, plural, tail @ ..] if Kind::from_plural(group, plural).is_some() => {
            let Some(kind) = Kind::from_plural(group, plural) else {
                return Route::Unknown;
            };
            match tail {
                [] => obj(kind, Some(ns), None, None),
                [name] => obj(kind, Some(ns), Some(name), None),
                [name, sub] => obj(kind, Some(ns), Some(name), Some(sub)),
                _ => Route::Unknown,
            }
        }
        [plural, tail @ ..] => {
            let Some(kind) = Kind::from_plural(group, plural) else {
                return Route::Unknown;
            };
            match (kind.namespaced(), tail) {
                (_, []) => obj(kind, None, None, None),
                (false, [name]) => obj(kind, None, Some(name), None),
                (false, [name, sub]) => obj(kind, None, Some(name), Some(sub)),
                _ => Route::Unknown,
            }
        }
    }
}

/// The JSON of a discovery document.
pub(crate) fn discovery(route: &Route) -> Option<Value> {
    match route {
        Route::Version => Some(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-cutover-fake", "gitCommit": "0000000",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
            "compiler": "gc", "platform": "linux/amd64"
        })),
        Route::CoreVersions => Some(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
        })),
        Route::Groups => {
            let groups: Vec<Value> = GROUPS
                .iter()
                .map(|g| {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        Route::Resources(group) => {
            let mut resources = Vec::new();
            for k in Kind::ALL.into_iter().filter(|k| k.group() == *group) {
                let verbs = [
                    "create",
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "update",
                    "watch",
                ];
                resources.push(json!({
                    "name": k.plural(), "singularName": k.name().to_ascii_lowercase(),
                    "namespaced": k.namespaced(), "kind": k.name(), "verbs": verbs
                }));
                if k.has_status_subresource() {
                    resources.push(json!({"name": format!("{}/status", k.plural()), "singularName": "",
                        "namespaced": k.namespaced(), "kind": k.name(), "verbs": ["get", "patch", "update"]}));
                }
                if k == Kind::Deployment {
                    resources.push(json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
                }
            }
            let gv = if group.is_empty() {
                "v1".to_string()
            } else {
                format!("{group}/v1")
            };
            Some(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_what_kube_rs_sends() {
        let o = |kind, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Route::Object {
            kind,
            namespace: ns.map(Into::into),
            name: name.map(Into::into),
            sub: sub.map(Into::into),
        };
        assert_eq!(
            route("/apis/apps/v1/namespaces/shop/deployments"),
            o(Kind::Deployment, Some("shop"), None, None)
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/shop/deployments/web/scale"),
            o(Kind::Deployment, Some("shop"), Some("web"), Some("scale"))
        );
        assert_eq!(
            route("/api/v1/namespaces"),
            o(Kind::Namespace, None, None, None)
        );
        assert_eq!(
            route("/api/v1/namespaces/shop"),
            o(Kind::Namespace, None, Some("shop"), None)
        );
        assert_eq!(
            route("/api/v1/namespaces/shop/status"),
            o(Kind::Namespace, None, Some("shop"), Some("status"))
        );
        assert_eq!(route("/api/v1/pods"), o(Kind::Pod, None, None, None));
        assert_eq!(
            route("/api/v1/namespaces/a/events/e1"),
            o(Kind::Event, Some("a"), Some("e1"), None)
        );
        assert_eq!(
            route("/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes/r"),
            o(Kind::HttpRoute, Some("a"), Some("r"), None)
        );
        assert_eq!(route("/apis/apps/v1/namespaces/a/leases"), Route::Unknown);
        assert_eq!(route("/apis/batch/v1/jobs"), Route::Unknown);
        assert_eq!(route("/api/v1/pods/x"), Route::Unknown);
        assert_eq!(route("/apis/apps/v1"), Route::Resources("apps"));
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(Kind::parse("HTTPRoute"), Some(Kind::HttpRoute));
        assert_eq!(Kind::parse("pods"), Some(Kind::Pod));
    }
}
