//! The fake API server's store: objects, the global resourceVersion, a bounded change history and
//! the fan-out that watch streams and the simulator read.
//!
//! Owns: object metadata mechanics (uid, resourceVersion, creationTimestamp, generation) and the
//! errors the store raises as Kubernetes `Status` bodies. Must not touch: HTTP, verbs' argument
//! checking (see `ops`), pod or Deployment behaviour (see `sim`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;

use super::kinds::Kind;
pub(crate) use super::status::ApiError;

/// Changes kept for watches that resume from an older resourceVersion (older ones get 410).
const HISTORY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One stored change, as watches replay it.
#[derive(Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub typ: ChangeType,
    pub object: Value,
    /// The object before a modification (a watch with a selector turns a change of labels into
    /// ADDED or DELETED, as the real server does).
    pub prev: Option<Value>,
}

/// What the store broadcasts.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Change(Arc<Change>),
    /// Every open watch ends now (tests of watch resumption).
    CloseWatches,
}

type Key = (Kind, String, String);

/// Now, as the API server writes times.
pub(crate) fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A short lowercase alphanumeric hash (names, pod-template-hash).
pub(crate) fn short_id(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = Sha256::digest(seed.as_bytes());
    digest
        .iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub(crate) struct World {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    uids: u64,
    history: VecDeque<Arc<Change>>,
    /// Every change with a resourceVersion above this is in `history`.
    floor: u64,
    tx: broadcast::Sender<Signal>,
    /// The last configuration each field manager applied to each object.
    applied: HashMap<(Key, String), Value>,
}

impl World {
    pub(crate) fn new() -> World {
        let (tx, _) = broadcast::channel(8192);
        let mut w = World {
            objects: BTreeMap::new(),
            rv: 0,
            uids: 0,
            history: VecDeque::new(),
            floor: 0,
            tx,
            applied: HashMap::new(),
        };
        for ns in ["default", "kube-system"] {
            w.ensure_namespace(ns);
        }
        w
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }

    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// Changes after `rv`, or `None` when some of them are no longer kept (410 Gone).
    pub(crate) fn history_after(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.floor {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// Forgets the history and ends every watch: watches resuming from before now get 410.
    pub(crate) fn expire(&mut self) {
        self.rv += 1;
        self.floor = self.rv;
        self.history.clear();
        let _ = self.tx.send(Signal::CloseWatches);
    }

    pub(crate) fn ensure_namespace(&mut self, ns: &str) {
        if !self.namespace_exists(ns) {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let _ = self.create(Kind::Namespace, "", obj);
        }
    }

    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .contains_key(&(Kind::Namespace, String::new(), ns.to_string()))
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, ns.to_string(), name.to_string()))
    }

    /// Objects of a kind, in one namespace or (`None`) all.
    pub(crate) fn list(&self, kind: Kind, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
            .collect()
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        let h = hex(&Sha256::digest(format!("uid-{}", self.uids).as_bytes()));
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Stores a new object (metadata.name or generateName set by the caller's body).
    pub(crate) fn create(
        &mut self,
        kind: Kind,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if kind.namespaced() && !self.namespace_exists(ns) {
            return Err(ApiError::namespace_not_found(ns));
        }
        normalize(&mut obj);
        let mut name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!(
                "{prefix}{}",
                short_id(&format!("{prefix}{}", self.uids + 1), 5)
            );
        }
        let key = (kind, ns.to_string(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(kind, &name));
        }
        let uid = self.next_uid();
        self.rv += 1;
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.name());
        normalize(&mut obj);
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        if kind.namespaced() {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(uid);
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["creationTimestamp"] = json!(now_rfc3339());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
        }
        self.objects.insert(key, obj.clone());
        self.record(kind, ns, ChangeType::Added, obj.clone(), None);
        Ok(obj)
    }

    /// Replaces a stored object (the caller checked it exists and its resourceVersion). Writes
    /// nothing and keeps the resourceVersion when nothing changed, as the real server does.
    pub(crate) fn update(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let key = (kind, ns.to_string(), name.to_string());
        let Some(old) = self.objects.get(&key).cloned() else {
            return Err(ApiError::not_found(kind, name));
        };
        normalize(&mut obj);
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.name());
        let keep = [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
        ];
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        if let Some(meta) = obj["metadata"].as_object_mut() {
            for k in keep {
                match old_meta.get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
        }
        if without_managed_fields(&obj) == without_managed_fields(&old) {
            return Ok(old);
        }
        self.rv += 1;
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if old.get("spec") != obj.get("spec") {
            generation + 1
        } else {
            generation
        };
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        obj["metadata"]["generation"] = json!(generation);
        self.objects.insert(key, obj.clone());
        self.record(kind, ns, ChangeType::Modified, obj.clone(), Some(old));
        Ok(obj)
    }

    pub(crate) fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = (kind, ns.to_string(), name.to_string());
        let Some(mut obj) = self.objects.remove(&key) else {
            return Err(ApiError::not_found(kind, name));
        };
        self.applied.retain(|(k, _), _| *k != key);
        self.rv += 1;
        normalize(&mut obj);
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(kind, ns, ChangeType::Deleted, obj.clone(), None);
        if kind == Kind::Namespace {
            let doomed: Vec<Key> = self
                .objects
                .keys()
                .filter(|(k, n, _)| k.namespaced() && n == name)
                .cloned()
                .collect();
            for (k, n, o) in doomed {
                let _ = self.delete(k, &n, &o);
            }
        }
        Ok(obj)
    }

    pub(crate) fn applied(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        manager: &str,
    ) -> Option<&Value> {
        self.applied.get(&(
            (kind, ns.to_string(), name.to_string()),
            manager.to_string(),
        ))
    }

    pub(crate) fn set_applied(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        manager: &str,
        config: Value,
    ) {
        self.applied.insert(
            (
                (kind, ns.to_string(), name.to_string()),
                manager.to_string(),
            ),
            config,
        );
    }

    fn record(
        &mut self,
        kind: Kind,
        ns: &str,
        typ: ChangeType,
        object: Value,
        prev: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            namespace: ns.to_string(),
            typ,
            object,
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(c) = self.history.pop_front() {
                self.floor = c.rv;
            }
        }
        let _ = self.tx.send(Signal::Change(change));
    }
}

/// The object without `metadata.managedFields` (whose times change on every write).
fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// Makes `obj` an object whose `metadata` is an object, so that indexing into both cannot panic.
pub(crate) fn normalize(obj: &mut Value) {
    if !obj.is_object() {
        *obj = json!({});
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_generation_and_history() {
        let mut w = World::new();
        let d = w
            .create(
                Kind::Deployment,
                "default",
                json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}),
            )
            .unwrap();
        assert_eq!(d["metadata"]["generation"], json!(1));
        let rv1: u64 = d["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let same = w
            .update(Kind::Deployment, "default", "web", d.clone())
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"], d["metadata"]["resourceVersion"],
            "a no-op update writes nothing"
        );
        let mut labelled = d.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        let l = w
            .update(Kind::Deployment, "default", "web", labelled)
            .unwrap();
        assert_eq!(
            l["metadata"]["generation"],
            json!(1),
            "metadata changes keep the generation"
        );
        let mut scaled = l.clone();
        scaled["spec"]["replicas"] = json!(3);
        let s = w
            .update(Kind::Deployment, "default", "web", scaled)
            .unwrap();
        assert_eq!(s["metadata"]["generation"], json!(2));
        assert_eq!(w.history_after(rv1).unwrap().len(), 2);
        assert_eq!(
            w.create(Kind::Deployment, "default", d.clone())
                .unwrap_err()
                .code,
            409
        );
        assert_eq!(
            w.create(Kind::Pod, "nope", json!({"metadata": {"name": "p"}}))
                .unwrap_err()
                .message,
            "namespaces \"nope\" not found"
        );
        w.expire();
        assert!(
            w.history_after(rv1).is_none(),
            "expired history answers 410"
        );
        assert!(w.history_after(w.rv()).is_some());
        assert_eq!(
            w.delete(Kind::Deployment, "default", "web").unwrap()["metadata"]["name"],
            "web"
        );
        assert_eq!(
            w.delete(Kind::Deployment, "default", "web")
                .unwrap_err()
                .code,
            404
        );
    }
}
