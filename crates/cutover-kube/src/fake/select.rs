//! Label and field selectors, JSON merge patch and the server-side-apply approximation.
//!
//! Owns: pure functions on `serde_json::Value`. Must not touch: the store, HTTP.

use serde_json::{Map, Value};

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Req>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e,!f,g in (x,y),h notin (z)`.
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let bad = || {
                format!("unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt")
            };
            let req = if let Some((k, v)) = part.split_once("!=") {
                Req::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Req::NotIn(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Req::In(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Req::NotExists(k.trim().into())
            } else {
                Req::Exists(part.clone())
            };
            let key = match &req {
                Req::Eq(k, _)
                | Req::NotEq(k, _)
                | Req::In(k, _)
                | Req::NotIn(k, _)
                | Req::Exists(k)
                | Req::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(bad());
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed `fieldSelector`: `path=value` / `path!=value` on dotted JSON paths
/// (`metadata.name`, `involvedObject.name`, `status.phase`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            if !valid_key(k.trim()) {
                return Err(format!("invalid field selector key '{k}'"));
            }
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let got = match obj.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

/// RFC 7386 JSON merge patch (also used, approximately, for strategic merge patches).
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The fields that identify list elements in a strategic merge patch, most specific first
/// (container ports by `containerPort`, Service ports by `port`, containers, env and volumes by
/// `name`, conditions by `type`).
const MERGE_KEYS: [&str; 5] = ["containerPort", "port", "mountPath", "name", "type"];

/// A strategic merge patch, approximately: a JSON merge patch in which lists of objects that all
/// carry one of [`MERGE_KEYS`] merge element by element (`"$patch": "delete"` removes one);
/// other lists are replaced.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        match (slot.as_array_mut(), v.as_array()) {
            (Some(existing), Some(items)) => match merge_key(items) {
                Some(key) => merge_list(existing, items, key),
                None => *slot = v.clone(),
            },
            _ => strategic_merge(slot, v),
        }
    }
}

fn merge_key(items: &[Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    MERGE_KEYS
        .into_iter()
        .find(|k| items.iter().all(|i| i.get(*k).is_some()))
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let pos = existing.iter().position(|e| e.get(key) == item.get(key));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (Some(i), false) => {
                if let Some(e) = existing.get_mut(i) {
                    strategic_merge(e, item);
                }
            }
            (None, false) => existing.push(item.clone()),
            (None, true) => {}
        }
    }
}

/// Removes from `target` the fields `previous` set and `next` no longer sets (what a manager's
/// new apply configuration gives up). Lists are atomic.
pub(crate) fn remove_dropped(target: &mut Value, previous: &Value, next: &Value) {
    let (Value::Object(t), Value::Object(prev)) = (target, previous) else {
        return;
    };
    for (k, pv) in prev {
        match next.get(k) {
            None => {
                t.remove(k);
            }
            Some(nv) if pv.is_object() && nv.is_object() => {
                if let Some(tv) = t.get_mut(k) {
                    remove_dropped(tv, pv, nv);
                }
            }
            Some(_) => {}
        }
    }
}

/// Server-side apply, approximately: drop what this manager's previous apply set and the new one
/// does not, then merge the new configuration in (objects merge, lists are replaced).
pub(crate) fn apply(existing: &Value, previous: Option<&Value>, config: &Value) -> Value {
    let mut out = existing.clone();
    if let Some(prev) = previous {
        remove_dropped(&mut out, prev, config);
    }
    merge_patch(&mut out, &strip_nulls(config));
    out
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A JSON string with object keys sorted (hashing pod templates).
pub(crate) fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical(&m[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let m = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(&pod));
        assert_eq!(m("app=web"), Ok(true));
        assert_eq!(m("app==web,tier=front"), Ok(true));
        assert_eq!(m("app=web,tier!=front"), Ok(false));
        assert_eq!(m("app"), Ok(true));
        assert_eq!(m("!app"), Ok(false));
        assert_eq!(m("!missing"), Ok(true));
        assert_eq!(m("app in (api, web),tier notin (back)"), Ok(true));
        assert_eq!(m("app notin (web)"), Ok(false));
        assert_eq!(m(""), Ok(true));
        assert!(m("app in web").is_err());
        assert!(m("a b=c").is_err());
    }

    #[test]
    fn field_selectors() {
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"name": "p", "kind": "Pod"}});
        let m = |s: &str| FieldSelector::parse(s).map(|sel| sel.matches(&ev));
        assert_eq!(m("involvedObject.name=p,involvedObject.kind=Pod"), Ok(true));
        assert_eq!(m("metadata.name!=e"), Ok(false));
        assert_eq!(m("metadata.namespace="), Ok(true));
        assert!(m("nonsense").is_err());
    }

    #[test]
    fn merge_and_apply() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}, "l": [3]}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "l": [3]}));

        let existing = json!({"metadata": {"labels": {"x": "1", "y": "2", "other": "o"}}, "spec": {"replicas": 3}});
        let prev = json!({"metadata": {"labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 3}});
        let next = json!({"metadata": {"labels": {"x": "9"}}, "spec": {"replicas": 4}});
        let out = apply(&existing, Some(&prev), &next);
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"x": "9", "other": "o"}}, "spec": {"replicas": 4}})
        );
        assert_eq!(
            canonical(&json!({"b": 1, "a": [{"d": 1, "c": 2}]})),
            r#"{"a":[{"c":2,"d":1}],"b":1}"#
        );
    }
}
