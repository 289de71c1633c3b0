//! Objects as multi-document YAML for people to read (`cutover plan --manifests`) and to
//! `kubectl apply` if they wish.
//!
//! Owns: the key order (apiVersion, kind, metadata, name, ... first) and the conversion from JSON
//! to yaml-rust2's emitter, which quotes any string YAML would read as something else ("true",
//! "1.0", "", ":" ...). Must not touch: what the objects say.

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// Keys written first, in this order, wherever they appear; the rest follow in the map's order.
const FIRST: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "image",
    "namespace",
    "labels",
    "annotations",
    "spec",
];

fn to_yaml_node(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => match n.as_u64() {
                // Above i64: written as text YAML reads back as a number.
                Some(u) => Yaml::Real(u.to_string()),
                None => {
                    let f = n.as_f64().unwrap_or(0.0);
                    // `{:?}` keeps a `.0` so the number reads back as a float.
                    Yaml::Real(format!("{f:?}"))
                }
            },
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(to_yaml_node).collect()),
        Value::Object(map) => {
            let mut h = Hash::new();
            for k in FIRST {
                if let Some(v) = map.get(*k) {
                    h.insert(Yaml::String((*k).to_string()), to_yaml_node(v));
                }
            }
            for (k, v) in map.iter().filter(|(k, _)| !FIRST.contains(&k.as_str())) {
                h.insert(Yaml::String(k.clone()), to_yaml_node(v));
            }
            Yaml::Hash(h)
        }
    }
}

/// The objects as one YAML stream: each a document starting with `---`, ending in a newline.
pub fn to_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        let mut doc = String::new();
        let mut emitter = YamlEmitter::new(&mut doc);
        emitter.multiline_strings(true);
        // Writing into a String cannot fail; an emitter error would only come from the writer.
        if emitter.dump(&to_yaml_node(o)).is_err() {
            continue;
        }
        out.push_str(&doc);
        out.push('\n');
    }
    out
}
