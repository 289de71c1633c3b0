//! What the real server adds to and checks on objects: defaults (Deployment replicas, strategy
//! and deadline; Service type and clusterIP), Deployment validation, `managedFields` entries,
//! and the autoscaling/v1 Scale view of a Deployment.
//!
//! Owns: these pure functions. Must not touch: the store, HTTP.

use serde_json::{json, Value};

use super::kinds::Kind;
use super::world::{normalize, now_rfc3339, ApiError};

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

pub(crate) fn initial_status(kind: Kind) -> Value {
    match kind {
        Kind::Pod => json!({"phase": "Pending", "qosClass": "BestEffort"}),
        Kind::Namespace => json!({"phase": "Active"}),
        _ => json!({}),
    }
}

/// Server-side defaults the provider may read back.
pub(crate) fn defaults(kind: Kind, obj: &mut Value, old: Option<&Value>) {
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
pub(crate) fn validate(
    kind: Kind,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
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
pub(crate) fn record_manager(
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
