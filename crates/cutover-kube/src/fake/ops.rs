//! The verbs of the fake API server: get, list, create, update, patch (apply, merge, strategic),
//! delete and deletecollection on objects and their `status` and `scale` subresources.
//!
//! Owns: argument checking, defaulting, validation and the approximate server-side apply.
//! Must not touch: HTTP framing and logging (see `http`), watch streams (see `watch`), the
//! controller and kubelet simulation (see `sim`).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::kinds::Kind;
use super::select::{apply, merge_patch, FieldSelector, LabelSelector};
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
    fn ns(&self) -> &str {
        self.ns.as_deref().unwrap_or_default()
    }
    /// `dryRun=All` in the query, or (DELETE) `"dryRun": ["All"]` in the DeleteOptions body.
    fn dry_run(&self) -> bool {
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
    fn manager(&self) -> String {
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
    fn body_json(&self) -> Result<Value, ApiError> {
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
            write(w, req, name, &old, new, "Update").map(|o| (200, o))
        }
        ("PATCH", Some(name), sub) => patch(w, req, name, sub),
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

fn check_kind(kind: Kind, body: &Value) -> Result<(), ApiError> {
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

fn check_ns(req: &Req, body: &Value) -> Result<(), ApiError> {
    match body.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(n) if !n.is_empty() && req.kind.namespaced() && n != req.ns() => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

fn check_rv(kind: Kind, name: &str, old: &Value, body: &Value) -> Result<(), ApiError> {
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
    if req.kind.has_status_subresource() && req.kind != Kind::Namespace {
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

fn insert(w: &mut World, req: &Req, body: Value) -> Result<Value, ApiError> {
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
fn write(
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
fn with_sub(
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
            new["spec"]["replicas"] = json!(replicas);
            Ok(new)
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown subresource {other:?}"
        ))),
    }
}

fn patch(w: &mut World, req: &Req, name: &str, sub: Option<&str>) -> Result<Reply, ApiError> {
    let kind = req.kind;
    let force = req.q("force") == Some("true");
    let ct = req
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let is_apply = ct == "application/apply-patch+yaml";
    if is_apply && req.q("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
            details: Some((String::new(), "meta.k8s.io".into(), "PatchOptions".into())),
        });
    }
    if force && !is_apply {
        return Err(ApiError::bad_request(
            "force: Forbidden: may not be specified for non-apply patch",
        ));
    }
    if !is_apply
        && ct != "application/merge-patch+json"
        && ct != "application/strategic-merge-patch+json"
    {
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (the fake serves {ct:?} not)"),
            details: None,
        });
    }
    let body = req.body_json().map_err(|e| {
        if is_apply {
            ApiError::bad_request(format!(
                "{} (the fake reads apply bodies as JSON only)",
                e.message
            ))
        } else {
            e
        }
    })?;
    let old = w.get(kind, req.ns(), name).cloned();
    let Some(old) = old else {
        if !is_apply || sub.is_some() {
            return Err(ApiError::not_found(kind, name));
        }
        check_kind(kind, &body)?;
        check_ns(req, &body)?;
        let mut obj = body.clone();
        normalize(&mut obj);
        obj["metadata"]["name"] = json!(name);
        if kind.has_status_subresource() && kind != Kind::Namespace {
            obj["status"] = initial_status(kind);
        }
        defaults(kind, &mut obj, None);
        obj["apiVersion"] = json!(kind.api_version());
        validate(kind, name, &obj, None)?;
        record_manager(&mut obj, None, &req.manager(), "Apply", None);
        let out = insert(w, req, obj)?;
        if !req.dry_run() {
            w.set_applied(kind, req.ns(), name, &req.manager(), body);
        }
        return Ok((201, out));
    };
    check_rv(kind, name, &old, &body)?;
    let base = match sub {
        Some("scale") if kind == Kind::Deployment => scale_of(&old),
        _ => old.clone(),
    };
    let merged = if is_apply {
        check_kind_for_sub(kind, sub, &body)?;
        if !force {
            apply_conflicts(w, req, name, &body)?;
        }
        apply(
            &base,
            w.applied(kind, req.ns(), name, &req.manager()),
            &body,
        )
    } else {
        let mut m = base.clone();
        merge_patch(&mut m, &body);
        m
    };
    let new = with_sub(kind, name, &old, merged, sub)?;
    let out = write(
        w,
        req,
        name,
        &old,
        new,
        if is_apply { "Apply" } else { "Update" },
    )?;
    if is_apply && !req.dry_run() {
        w.set_applied(kind, req.ns(), name, &req.manager(), body);
    }
    Ok((
        200,
        if sub == Some("scale") {
            scale_of(&out)
        } else {
            out
        },
    ))
}

fn check_kind_for_sub(kind: Kind, sub: Option<&str>, body: &Value) -> Result<(), ApiError> {
    match sub {
        Some("scale") => Ok(()),
        _ => check_kind(kind, body),
    }
}

/// Another field manager's applied value for a field this apply sets differently: 409, as the
/// real server answers an apply without `force`.
fn apply_conflicts(w: &World, req: &Req, name: &str, body: &Value) -> Result<(), ApiError> {
    let me = req.manager();
    for (other, cfg) in w_applied_others(w, req, name, &me) {
        let mut paths = Vec::new();
        leaf_conflicts(&cfg, body, String::new(), &mut paths);
        if let Some(first) = paths.first() {
            let msg = format!(
                "Apply failed with {} conflict{}: conflict with \"{other}\" using {}: {first}",
                paths.len(),
                if paths.len() == 1 { "" } else { "s" },
                req.kind.api_version()
            );
            let mut e = ApiError::conflict(req.kind, name);
            e.message = msg;
            return Err(e);
        }
    }
    Ok(())
}

fn w_applied_others(w: &World, req: &Req, name: &str, me: &str) -> Vec<(String, Value)> {
    let managers: Vec<String> = w
        .get(req.kind, req.ns(), name)
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("manager").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    managers
        .into_iter()
        .filter(|m| m != me)
        .filter_map(|m| {
            w.applied(req.kind, req.ns(), name, &m)
                .cloned()
                .map(|c| (m, c))
        })
        .collect()
}

fn leaf_conflicts(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    leaf_conflicts(va, vb, format!("{path}.{k}"), out);
                }
            }
        }
        (x, y) if x != y => out.push(path),
        _ => {}
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

/// The autoscaling/v1 Scale of a Deployment.
pub(crate) fn scale_of(d: &Value) -> Value {
    let selector = d
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = &d["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": d.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": d.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector}
    })
}

fn initial_status(kind: Kind) -> Value {
    match kind {
        Kind::Pod => json!({"phase": "Pending", "qosClass": "BestEffort"}),
        _ => json!({}),
    }
}

/// Server-side defaults the provider may read back.
fn defaults(kind: Kind, obj: &mut Value, old: Option<&Value>) {
    normalize(obj);
    if !obj["spec"].is_object() && matches!(kind, Kind::Deployment | Kind::Service) {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    match kind {
        Kind::Deployment => {
            for (k, v) in [
                ("replicas", json!(1)),
                ("progressDeadlineSeconds", json!(600)),
                ("revisionHistoryLimit", json!(10)),
            ] {
                if spec[k].is_null() {
                    spec[k] = v;
                }
            }
            if spec["strategy"].is_null() {
                spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
            }
        }
        Kind::Service => {
            if spec["type"].is_null() {
                spec["type"] = json!("ClusterIP");
            }
            if spec["sessionAffinity"].is_null() {
                spec["sessionAffinity"] = json!("None");
            }
            if spec["clusterIP"].is_null() {
                let kept = old.and_then(|o| o.pointer("/spec/clusterIP")).cloned();
                let n = obj["metadata"]["name"]
                    .as_str()
                    .map_or(0, |s| s.bytes().map(u32::from).sum::<u32>());
                obj["spec"]["clusterIP"] = kept
                    .unwrap_or_else(|| json!(format!("10.96.{}.{}", n / 250 % 250, n % 250 + 2)));
                obj["spec"]["clusterIPs"] = json!([obj["spec"]["clusterIP"].clone()]);
            }
            if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
                for p in ports.iter_mut().filter(|p| p.is_object()) {
                    if p["protocol"].is_null() {
                        p["protocol"] = json!("TCP");
                    }
                    if p["targetPort"].is_null() {
                        p["targetPort"] = p["port"].clone();
                    }
                }
            }
        }
        _ => {}
    }
}

/// The checks of the real server that catch a wrong manifest early.
fn validate(kind: Kind, name: &str, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    if kind != Kind::Deployment {
        return Ok(());
    }
    let Some(sel) = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
    else {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.selector: Required value",
        ));
    };
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    if !sel
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    {
        return Err(ApiError::invalid(kind, name, "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"));
    }
    if obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.template.spec.containers: Required value",
        ));
    }
    if obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    if let Some(old) = old {
        if old.pointer("/spec/selector") != obj.pointer("/spec/selector") {
            return Err(ApiError::invalid(
                kind,
                name,
                "spec.selector: Invalid value: field is immutable",
            ));
        }
    }
    Ok(())
}

/// Keeps `metadata.managedFields` (one entry per manager, operation and subresource; no field sets).
fn record_manager(
    obj: &mut Value,
    old: Option<&Value>,
    manager: &str,
    op: &str,
    sub: Option<&str>,
) {
    normalize(obj);
    let mut entries: Vec<Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let sub = sub.unwrap_or_default();
    entries.retain(|e| {
        !(e["manager"] == json!(manager)
            && e["operation"] == json!(op)
            && e["subresource"].as_str().unwrap_or_default() == sub)
    });
    let mut entry = json!({"manager": manager, "operation": op, "apiVersion": obj["apiVersion"].clone(), "time": now_rfc3339(),
        "fieldsType": "FieldsV1", "fieldsV1": {}});
    if !sub.is_empty() {
        entry["subresource"] = json!(sub);
    }
    entries.push(entry);
    obj["metadata"]["managedFields"] = json!(entries);
}
