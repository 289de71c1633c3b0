//! The verbs of the fake API server: get, list, create, update, patch (apply, merge, strategic),
//! delete and deletecollection on objects and their `status` and `scale` subresources.
//!
//! Owns: argument checking, subresources, dryRun. Must not touch: HTTP framing and logging (see `http`), watch streams (see `watch`), the
//! controller and kubelet simulation (see `sim`).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::defaults::{defaults, initial_status, record_manager, scale_of, validate};
use super::kinds::Kind;
use super::select::{FieldSelector, LabelSelector};
use super::world::{normalize, now_rfc3339, ApiError, World};

/// A request on an object route, parsed.
pub(crate) struct Req {
    pub method: http::Method,
    pub kind: Kind,
    pub ns: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

impl Req {
    pub(crate) fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    pub(crate) fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or_default()
    }
    /// `dryRun=All` in the query, or (DELETE) `"dryRun": ["All"]` in the DeleteOptions body.
    pub(crate) fn dry_run(&self) -> bool {
        self.q("dryRun") == Some("All")
            || (self.method == http::Method::DELETE
                && serde_json::from_slice::<Value>(&self.body)
                    .ok()
                    .is_some_and(|b| {
                        b.get("dryRun")
                            .and_then(Value::as_array)
                            .is_some_and(|a| a.iter().any(|v| v == "All"))
                    }))
    }
    pub(crate) fn is_watch(&self) -> bool {
        self.name.is_none() && matches!(self.q("watch"), Some("true" | "1"))
    }
    /// The Kubernetes verb (RBAC's word for it).
    pub(crate) fn verb(&self) -> &'static str {
        match (self.method.as_str(), self.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if self.is_watch() => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }
    pub(crate) fn manager(&self) -> String {
        match self.q("fieldManager") {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => self
                .user_agent
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string(),
        }
    }
    pub(crate) fn body_json(&self) -> Result<Value, ApiError> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            )),
            Err(e) => Err(ApiError::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))),
        }
    }
}

/// The selectors of a list, watch or deletecollection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub(crate) fn from_query(req: &Req) -> Result<Selectors, ApiError> {
        let labels = LabelSelector::parse(req.q("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?;
        Ok(Selectors { labels, fields })
    }
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// Status code and body of a successful verb.
pub(crate) type Reply = (u16, Value);

/// Runs a non-watch verb against the store.
pub(crate) fn handle(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let kind = req.kind;
    match (req.method.as_str(), req.name.as_deref(), req.sub.as_deref()) {
        ("GET", None, _) => list(w, req),
        ("GET", Some(name), None | Some("status")) => w
            .get(kind, req.ns(), name)
            .cloned()
            .map(|o| (200, o))
            .ok_or_else(|| ApiError::not_found(kind, name)),
        ("GET", Some(name), Some("scale")) if kind == Kind::Deployment => {
            let d = w
                .get(kind, req.ns(), name)
                .ok_or_else(|| ApiError::not_found(kind, name))?;
            Ok((200, scale_of(d)))
        }
        ("GET", Some(_), Some(_)) => Err(ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: None,
        }),
        ("POST", None, None) => create(w, req),
        ("PUT", Some(name), sub) => {
            let body = req.body_json()?;
            if body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n != name)
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    body.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )));
            }
            let old = w
                .get(kind, req.ns(), name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(kind, name))?;
            check_rv(kind, name, &old, &body)?;
            let new = with_sub(kind, name, &old, body, sub)?;
            let out = write(w, req, name, &old, new, "Update")?;
            Ok((
                200,
                if sub == Some("scale") {
                    scale_of(&out)
                } else {
                    out
                },
            ))
        }
        ("PATCH", Some(name), sub) => super::patch::patch(w, req, name, sub),
        ("DELETE", Some(name), None) => delete(w, req, name),
        ("DELETE", None, None) => delete_collection(w, req),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn list(w: &World, req: &Req) -> Result<Reply, ApiError> {
    let sel = Selectors::from_query(req)?;
    let items: Vec<Value> = w
        .list(req.kind, req.ns.as_deref())
        .into_iter()
        .filter(|o| sel.matches(o))
        .cloned()
        .collect();
    Ok((200, list_body(req.kind, w.rv(), items)))
}

pub(crate) fn list_body(kind: Kind, rv: u64, items: Vec<Value>) -> Value {
    json!({"kind": format!("{}List", kind.name()), "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": rv.to_string()}, "items": items})
}

pub(crate) fn check_kind(kind: Kind, body: &Value) -> Result<(), ApiError> {
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str) {
        if v != kind.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str) {
        if k != kind.name() {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.name()
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_ns(req: &Req, body: &Value) -> Result<(), ApiError> {
    match body.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && req.kind.namespaced() && n != req.ns() => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_rv(kind: Kind, name: &str, old: &Value, body: &Value) -> Result<(), ApiError> {
    match body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv)
            if !rv.is_empty()
                && Some(rv)
                    != old
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str) =>
        {
            Err(ApiError::conflict(kind, name))
        }
        _ => Ok(()),
    }
}

fn create(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let mut body = req.body_json()?;
    check_kind(req.kind, &body)?;
    check_ns(req, &body)?;
    if body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if req.kind.has_status_subresource() {
        body["status"] = initial_status(req.kind);
    }
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    defaults(req.kind, &mut body, None);
    body["apiVersion"] = json!(req.kind.api_version());
    validate(req.kind, &name, &body, None)?;
    record_manager(&mut body, None, &req.manager(), "Update", None);
    insert(w, req, body).map(|o| (201, o))
}

pub(crate) fn insert(w: &mut World, req: &Req, body: Value) -> Result<Value, ApiError> {
    if req.kind.namespaced() && !w.namespace_exists(req.ns()) {
        return Err(ApiError::namespace_not_found(req.ns()));
    }
    if req.dry_run() {
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if w.get(req.kind, req.ns(), name).is_some() {
            return Err(ApiError::already_exists(req.kind, name));
        }
        let mut out = body;
        normalize(&mut out);
        out["apiVersion"] = json!(req.kind.api_version());
        out["kind"] = json!(req.kind.name());
        out["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        out["metadata"]["generation"] = json!(1);
        if req.kind.namespaced() {
            out["metadata"]["namespace"] = json!(req.ns());
        }
        return Ok(out);
    }
    w.create(req.kind, req.ns(), body)
}

/// Writes `new` over `old` (or only computes it under dryRun).
pub(crate) fn write(
    w: &mut World,
    req: &Req,
    name: &str,
    old: &Value,
    mut new: Value,
    op: &str,
) -> Result<Value, ApiError> {
    record_manager(&mut new, Some(old), &req.manager(), op, req.sub.as_deref());
    if req.dry_run() {
        normalize(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "name",
            "namespace",
        ] {
            if let Some(v) = old.pointer(&format!("/metadata/{k}")) {
                new["metadata"][k] = v.clone();
            }
        }
        return Ok(new);
    }
    w.update(req.kind, req.ns(), name, new)
}

/// The object after writing `body` to the main resource or a subresource of `old`.
pub(crate) fn with_sub(
    kind: Kind,
    name: &str,
    old: &Value,
    body: Value,
    sub: Option<&str>,
) -> Result<Value, ApiError> {
    match sub {
        None => {
            check_kind(kind, &body)?;
            let mut new = body;
            if kind.has_status_subresource() {
                new["status"] = old.get("status").cloned().unwrap_or(Value::Null);
                if new["status"].is_null() {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            // A replace or a patch keeps what the server owns (clusterIP).
            defaults(kind, &mut new, Some(old));
            validate(kind, name, &new, Some(old))?;
            Ok(new)
        }
        Some("status") => {
            let mut new = old.clone();
            new["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            Ok(new)
        }
        Some("scale") if kind == Kind::Deployment => {
            let replicas = body.pointer("/spec/replicas").and_then(Value::as_i64);
            let Some(replicas) = replicas.filter(|r| (0..=i64::from(i32::MAX)).contains(r)) else {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    "spec.replicas: Invalid value: must be a non-negative integer",
                ));
            };
            let mut new = old.clone();
            if !new["spec"].is_object() {
                new["spec"] = json!({});
            }
            new["spec"]["replicas"] = json!(replicas);
            Ok(new)
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown subresource {other:?}"
        ))),
    }
}

fn delete(w: &mut World, req: &Req, name: &str) -> Result<Reply, ApiError> {
    let kind = req.kind;
    let old = w
        .get(kind, req.ns(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, name))?;
    if let Ok(opts) = serde_json::from_slice::<Value>(&req.body) {
        if let Some(rv) = opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            if Some(rv)
                != old
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
            {
                return Err(ApiError::conflict(kind, name));
            }
        }
    }
    let uid = old.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
    if !req.dry_run() {
        w.delete(kind, req.ns(), name)?;
        if kind == Kind::Deployment {
            delete_owned(w, req.ns(), &uid);
        }
    }
    let mut details = json!({"name": name, "kind": kind.plural(), "uid": uid});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    Ok((
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
    ))
}

/// Deletes the pods a Deployment owns (the garbage collector's job on a real cluster).
pub(crate) fn delete_owned(w: &mut World, ns: &str, owner_uid: &Value) {
    let owned: Vec<String> = w
        .list(Kind::Pod, Some(ns))
        .into_iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r.get("uid") == Some(owner_uid)))
        })
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    for p in owned {
        let _ = w.delete(Kind::Pod, ns, &p);
    }
}

fn delete_collection(w: &mut World, req: &Req) -> Result<Reply, ApiError> {
    let sel = Selectors::from_query(req)?;
    let doomed: Vec<Value> = w
        .list(req.kind, req.ns.as_deref())
        .into_iter()
        .filter(|o| sel.matches(o))
        .cloned()
        .collect();
    let mut items = Vec::new();
    for o in doomed {
        let name = o
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = o
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if req.dry_run() {
            items.push(o);
        } else if let Ok(gone) = w.delete(req.kind, &ns, &name) {
            if req.kind == Kind::Deployment {
                delete_owned(w, &ns, &gone["metadata"]["uid"]);
            }
            items.push(gone);
        }
    }
    Ok((200, list_body(req.kind, w.rv(), items)))
}
