//! Kubernetes `Status` failures as the real API server words them (NotFound, AlreadyExists,
//! Conflict, Invalid, Forbidden, ...), and the ones `fail_next` injects.
//!
//! Owns: the error type of the fake's verbs and its JSON. Must not touch: anything else.

use serde_json::{json, Value};

use super::kinds::Kind;

/// A Kubernetes `Status` failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `(name, group, plural)` for `details`.
    pub details: Option<(String, String, String)>,
}

impl ApiError {
    fn with(
        code: u16,
        reason: &'static str,
        message: String,
        kind: Option<Kind>,
        name: &str,
    ) -> ApiError {
        let details = kind.map(|k| {
            (
                name.to_string(),
                k.group().to_string(),
                k.plural().to_string(),
            )
        });
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }
    pub(crate) fn not_found(kind: Kind, name: &str) -> ApiError {
        let msg = format!("{} \"{name}\" not found", kind.qualified());
        ApiError::with(404, "NotFound", msg, Some(kind), name)
    }
    pub(crate) fn namespace_not_found(ns: &str) -> ApiError {
        ApiError::not_found(Kind::Namespace, ns)
    }
    pub(crate) fn already_exists(kind: Kind, name: &str) -> ApiError {
        let msg = format!("{} \"{name}\" already exists", kind.qualified());
        ApiError::with(409, "AlreadyExists", msg, Some(kind), name)
    }
    pub(crate) fn conflict(kind: Kind, name: &str) -> ApiError {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            kind.qualified()
        );
        ApiError::with(409, "Conflict", msg, Some(kind), name)
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }
    pub(crate) fn invalid(kind: Kind, name: &str, why: &str) -> ApiError {
        let msg = format!("{} \"{name}\" is invalid: {why}", kind.name());
        ApiError::with(422, "Invalid", msg, Some(kind), name)
    }
    pub(crate) fn gone(message: String) -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message,
            details: None,
        }
    }
    pub(crate) fn method_not_allowed() -> ApiError {
        let message = "the server does not allow this method on the requested resource".to_string();
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message,
            details: None,
        }
    }
    /// An injected failure (`fail_next`), worded like the real server's; `target` is the kind
    /// and the resource as RBAC names it (`deployments/scale`).
    pub(crate) fn injected(
        code: u16,
        verb: &str,
        target: Option<(Kind, &str)>,
        ns: Option<&str>,
        name: &str,
    ) -> ApiError {
        let kind = target.map(|t| t.0);
        let (reason, message) = match code {
            400 => ("BadRequest", "the request is invalid (injected)".to_string()),
            401 => ("Unauthorized", "Unauthorized".to_string()),
            403 => {
                let (res, group) = target.map_or(("resources".to_string(), String::new()), |(k, r)| {
                    (r.to_string(), k.group().to_string())
                });
                let what = kind.map_or(String::new(), |k| match name {
                    "" => format!("{} ", k.qualified()),
                    n => format!("{} \"{n}\" ", k.qualified()),
                });
                let scope = ns.map_or("at the cluster scope".to_string(), |n| format!("in the namespace \"{n}\""));
                let msg = format!(
                    "{what}is forbidden: User \"system:serviceaccount:default:cutover\" cannot {verb} resource \"{res}\" in API group \"{group}\" {scope}"
                );
                ("Forbidden", msg)
            }
            404 => ("NotFound", "the server could not find the requested resource (injected)".to_string()),
            409 => ("Conflict", "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again".to_string()),
            410 => ("Expired", "too old resource version (injected)".to_string()),
            422 => ("Invalid", "the object is invalid (injected)".to_string()),
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later".to_string()),
            500 => ("InternalError", "Internal error occurred: injected failure".to_string()),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_string()),
            504 => ("Timeout", "the server was unable to return a response in the time allotted".to_string()),
            _ => ("Unknown", format!("injected failure {code}")),
        };
        ApiError::with(code, reason, message, kind, name)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code
        });
        if let Some((name, group, kind)) = &self.details {
            let mut d = json!({"name": name, "kind": kind});
            if !group.is_empty() {
                d["group"] = json!(group);
            }
            status["details"] = d;
        }
        status
    }
}
