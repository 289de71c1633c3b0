//! PATCH: server-side apply (approximate: see the module doc of `fake`), JSON merge patch and
//! strategic merge patch (treated as a JSON merge patch), on objects and subresources.
//!
//! Owns: apply's create-if-absent, its field-manager conflicts and per-manager configurations.
//! Must not touch: HTTP, other verbs (see `ops`).

use serde_json::{json, Value};

use super::defaults::{defaults, initial_status, record_manager, scale_of, validate};
use super::kinds::Kind;
use super::ops::{check_kind, check_ns, check_rv, insert, with_sub, write, Reply, Req};
use super::select::{apply, merge_patch, strategic_merge};
use super::world::{normalize, ApiError, World};

pub(crate) fn patch(
    w: &mut World,
    req: &Req,
    name: &str,
    sub: Option<&str>,
) -> Result<Reply, ApiError> {
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
            message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (not served by the fake: {ct:?})"),
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
    if is_apply && sub != Some("scale") {
        for field in ["apiVersion", "kind"] {
            if body
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!(
                    "error decoding the apply configuration: Object '{}' is missing",
                    if field == "kind" {
                        "Kind"
                    } else {
                        "apiVersion"
                    }
                )));
            }
        }
    }
    if let Some(n) = body.pointer("/metadata/name").and_then(Value::as_str) {
        if n != name && sub.is_none() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
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
        if kind.has_status_subresource() {
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
        } else if !req.dry_run() {
            take_over(w, req, name, &body);
        }
        apply(
            &base,
            w.applied(kind, req.ns(), name, &req.manager()),
            &body,
        )
    } else {
        let mut m = base.clone();
        if ct == "application/strategic-merge-patch+json" {
            strategic_merge(&mut m, &body);
        } else {
            merge_patch(&mut m, &body);
        }
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

/// Fields (as key paths) that other Apply managers set to a different value than `body`.
fn conflicts(w: &World, req: &Req, name: &str, body: &Value) -> Vec<(String, Vec<Vec<String>>)> {
    let me = req.manager();
    w_applied_others(w, req, name, &me)
        .into_iter()
        .map(|(other, cfg)| {
            let mut paths = Vec::new();
            leaf_conflicts(&cfg, body, &mut Vec::new(), &mut paths);
            (other, paths)
        })
        .filter(|(_, paths)| !paths.is_empty())
        .collect()
}

/// Another field manager's applied value for a field this apply sets differently: 409, as the
/// real server answers an apply without `force`.
fn apply_conflicts(w: &World, req: &Req, name: &str, body: &Value) -> Result<(), ApiError> {
    if let Some((other, paths)) = conflicts(w, req, name, body).into_iter().next() {
        let first = paths
            .first()
            .map(|p| format!(".{}", p.join(".")))
            .unwrap_or_default();
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
    Ok(())
}

/// A forced apply takes the conflicting fields over: the other managers no longer own them
/// (their next apply without those fields does not remove them).
fn take_over(w: &mut World, req: &Req, name: &str, body: &Value) {
    for (other, paths) in conflicts(w, req, name, body) {
        if let Some(mut cfg) = w.applied(req.kind, req.ns(), name, &other).cloned() {
            for p in &paths {
                remove_path(&mut cfg, p);
            }
            w.set_applied(req.kind, req.ns(), name, &other, cfg);
        }
    }
}

fn remove_path(v: &mut Value, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            if let Some(m) = v.as_object_mut() {
                m.remove(last);
            }
        }
        [first, rest @ ..] => {
            if let Some(child) = v.get_mut(first) {
                remove_path(child, rest);
            }
        }
    }
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

fn leaf_conflicts(a: &Value, b: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if let Some(vb) = y.get(k) {
                    path.push(k.clone());
                    leaf_conflicts(va, vb, path, out);
                    path.pop();
                }
            }
        }
        (x, y) if x != y => out.push(path.clone()),
        _ => {}
    }
}
